//! Stripe-shaped errors: `{"error":{"type":..,"code":..,"message":..,"param":..}}` with Stripe's
//! HTTP status for each kind.

use serde_json::{Map, Value, json};

/// An error as Stripe answers it.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) kind: &'static str,
    pub(crate) code: Option<&'static str>,
    pub(crate) decline_code: Option<&'static str>,
    pub(crate) param: Option<String>,
    pub(crate) message: String,
    /// Whether Stripe would store this answer under the request's idempotency key: only errors
    /// raised after the endpoint began executing are stored, not parameter validation failures.
    pub(crate) stored: bool,
}

impl ApiError {
    fn new(
        status: u16,
        kind: &'static str,
        code: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            decline_code: None,
            param: None,
            message: message.into(),
            stored: true,
        }
    }

    /// A parameter failed validation (400, not stored under the idempotency key).
    pub(crate) fn invalid_param(
        code: &'static str,
        param: &str,
        message: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(400, "invalid_request_error", Some(code), message);
        e.param = Some(param.to_owned());
        e.stored = false;
        e
    }

    /// `Missing required param: x.`
    pub(crate) fn missing(param: &str) -> Self {
        Self::invalid_param(
            "parameter_missing",
            param,
            format!("Missing required param: {param}."),
        )
    }

    /// The object does not exist (404 `resource_missing`).
    pub(crate) fn no_such(object: &str, param: &str, id: &str) -> Self {
        let mut e = Self::new(
            404,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such {object}: '{id}'"),
        );
        e.param = Some(param.to_owned());
        e.stored = false;
        e
    }

    /// The request is valid but the object's state forbids it (400, stored).
    pub(crate) fn state(code: Option<&'static str>, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", code, message)
    }

    /// A card was refused (402 `card_error`).
    pub(crate) fn card(
        code: &'static str,
        decline_code: Option<&'static str>,
        message: &str,
    ) -> Self {
        let mut e = Self::new(402, "card_error", Some(code), message);
        e.decline_code = decline_code;
        e
    }

    /// 401: no or a malformed API key.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(401, "invalid_request_error", None, message);
        e.stored = false;
        e
    }

    /// 400 `idempotency_error`: the key was used with other parameters.
    pub(crate) fn idempotency(message: impl Into<String>) -> Self {
        let mut e = Self::new(400, "idempotency_error", None, message);
        e.stored = false;
        e
    }

    /// 500 `api_error`, as an injected failure answers.
    pub(crate) fn internal() -> Self {
        let mut e = Self::new(
            500,
            "api_error",
            None,
            "An unknown error occurred (injected by the stripe sandbox).",
        );
        e.stored = false;
        e
    }

    /// 404 for a path Stripe does not know.
    pub(crate) fn unrecognized(method: &str, path: &str) -> Self {
        let mut e = Self::new(
            404,
            "invalid_request_error",
            None,
            format!(
                "Unrecognized request URL ({method}: {path}). The stripe sandbox implements only the routes chargelink uses."
            ),
        );
        e.stored = false;
        e
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
        }
        if let Some(decline) = self.decline_code {
            error.insert("decline_code".into(), json!(decline));
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        json!({ "error": error })
    }
}
