//! One error type for every handler: a stable machine `code`, a message safe to show, and the
//! offending field. 5xx bodies stay opaque; their cause is logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::StoreError;
use workflows::client::SessionClientError;
use workflows::messages::CommandErrorCode;

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `stop_not_allowed`.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// The offending request field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A handler's failure.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// A 4xx with a stable code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 429 rate_limited: the key's rate limit; `Retry-After` says when to send again.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0);
        Self {
            retry_after: Some(std::time::Duration::from_secs_f64(secs)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests with this API key; retry in {secs} s"),
            )
        }
    }

    /// How long to wait before retrying, for a rate-limited request.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// Names the field to blame.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 invalid_request on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message).field(field)
    }

    /// 404 for `what` (also for other organizations' resources).
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable machine code, e.g. `stop_not_allowed`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What was wrong and what to do.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending request field, when one is to blame.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// 500 with an opaque body; the cause is logged.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; try again later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(wait.as_secs()),
            );
        }
        response
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        let text = rejection.body_text();
        let field = rejected_field(&text);
        let e = Self::new(
            rejection.status(),
            "invalid_request",
            format!("the request body is not valid: {text}"),
        );
        match field {
            Some(f) => e.field(f),
            None => e,
        }
    }
}

/// The field a JSON rejection is about. axum writes `…target type: <path>: <serde message>`
/// (no path at the root). The path ends at an unknown field but stops at the struct missing
/// one; serde quotes values in backquotes too (`unknown variant `SPARKLE``), so only a missing
/// field's quoted name is added to the path.
fn rejected_field(text: &str) -> Option<String> {
    let detail = text.split_once("target type: ")?.1;
    let quoted = |msg: &str, kind: &str| {
        msg.strip_prefix(kind)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(name) =
        quoted(detail, "unknown field `").or_else(|| quoted(detail, "missing field `"))
    {
        return Some(name);
    }
    let (path, msg) = detail.split_once(": ")?;
    if path.contains(' ') {
        // Not a path: a message about the whole body.
        return None;
    }
    Some(match quoted(msg, "missing field `") {
        Some(name) => format!("{path}.{name}"),
        None => path.to_owned(),
    })
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("{what} already exists"),
            ),
            other => Self::internal(other),
        }
    }
}

impl From<SessionClientError> for ApiError {
    fn from(e: SessionClientError) -> Self {
        match e {
            SessionClientError::NotFound(id) => Self::not_found(format!("session {id}")),
            SessionClientError::Refused(refused) => {
                let status = match refused.code {
                    CommandErrorCode::StationUnavailable | CommandErrorCode::PaymentUnavailable => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    CommandErrorCode::StationRejected => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::CONFLICT,
                };
                Self::new(status, refused.code.as_str(), refused.message)
            }
            SessionClientError::Temporal(e) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "workflow_service_unavailable",
                format!("the workflow service did not answer ({e}); try again"),
            ),
        }
    }
}

/// Gives every error answer the JSON error shape, including the ones axum writes itself in
/// plain text before a handler runs (a path segment that is not UTF-8, a method the route does
/// not have, an oversized body, a query that does not parse): the status and headers (`Allow`,
/// `Retry-After`) stay, the text becomes the message.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // The driver-facing HTML pages (the price page) answer their own errors as pages.
    let is_html = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_request",
    };
    let message = match (text.is_empty(), status) {
        (_, s) if s.is_server_error() => "internal error; try again later".to_owned(),
        (true, _) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
        (false, _) => text,
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let mut rewritten = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        // `Failed to deserialize query string: limit: invalid digit found in string`
        let text = rejection.body_text();
        let field = text
            .split_once("query string: ")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(f, _)| f.to_owned())
            .filter(|f| !f.contains(' '));
        Self {
            field,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the query string is not valid: {text}"),
            )
        }
    }
}

/// Largest request body the API reads (axum's default for `Json` too).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Refuses a JSON body that is not an object before a handler reads it: serde would take an
/// array (`[null, null]`) for a struct, field by field.
pub async fn object_bodies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
        .into_response();
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "the request body must be a JSON object",
        )
        .into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await
}
