//! The HTTP side: the axum router, the prelude every `/v1` call goes through (request log, API
//! key, injected failures, idempotency), the hosted page routes and the `/_sandbox` controls.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use tokio::net::TcpListener;
use url::Url;

use crate::error::ApiError;
use crate::form::Params;
use crate::state::{Failure, FailureKind, RecordedRequest, SessionSnapshot, State, Stored};
use crate::webhooks::spawn_delivery;
use crate::{SandboxConfig, SandboxError, api, page};

/// Stripe's limit on `Idempotency-Key`.
const MAX_KEY_LEN: usize = 255;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) public_base: Url,
    state: Mutex<State>,
    pub(crate) http: reqwest::Client,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, addr: SocketAddr) -> Result<Arc<Self>, SandboxError> {
        let public_base = match &config.public_base_url {
            Some(url) => url.clone(),
            // A wildcard bind (0.0.0.0) is no address a browser can open: link to localhost.
            None if addr.ip().is_unspecified() => {
                Url::parse(&format!("http://localhost:{}/", addr.port()))?
            }
            None => Url::parse(&format!("http://{addr}/"))?,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SandboxError::Io(std::io::Error::other(e)))?;
        let state = match &config.state_file {
            Some(path) if path.exists() => {
                let bad = |reason: String| SandboxError::State {
                    path: path.display().to_string(),
                    reason,
                };
                let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
                serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
            }
            _ => State::default(),
        };
        Ok(Arc::new(Self {
            config,
            public_base,
            state: Mutex::new(state),
            http,
        }))
    }

    /// Writes the state to the state file, if there is one (whole, to a temporary file renamed
    /// over it, so a crash leaves the old or the new state, never half of one).
    pub(crate) fn save(&self, state: &State) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let written = serde_json::to_vec(state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, path)
            });
        if let Err(e) = written {
            tracing::error!(path = %path.display(), error = %e, "sandbox state not saved");
        }
    }

    /// The state; a panic while holding the lock cannot leave it half-written (operations
    /// validate before mutating), so a poisoned lock is taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pays a session as the hosted page does and sends the resulting webhooks.
    pub(crate) fn pay(
        self: &Arc<Self>,
        id: &str,
        card_number: &str,
    ) -> Result<SessionSnapshot, ApiError> {
        let (result, events) = {
            let mut state = self.lock();
            let result = api::pay(&mut state, id, card_number).map(|s| s.snapshot());
            self.save(&state);
            (result, std::mem::take(&mut state.undelivered))
        };
        spawn_delivery(self.clone(), events);
        result
    }

    /// Runs `f` on the state and sends the webhooks it emitted.
    fn apply<T>(self: &Arc<Self>, f: impl FnOnce(&mut State) -> T) -> T {
        let (result, events) = {
            let mut state = self.lock();
            let result = f(&mut state);
            if !state.undelivered.is_empty() {
                self.save(&state);
            }
            (result, std::mem::take(&mut state.undelivered))
        };
        spawn_delivery(self.clone(), events);
        result
    }
}

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) -> Result<(), SandboxError> {
    let app = router(shared.clone());
    tokio::select! {
        served = axum::serve(listener, app) => served.map_err(SandboxError::from),
        () = expire_sessions(shared) => Ok(()),
    }
}

/// Stripe expires open sessions at `expires_at` on its own; so does the sandbox.
async fn expire_sessions(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        shared.apply(api::expire_due);
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/{*rest}", any(v1))
        .route("/c/pay/{id}", get(page::show).post(page::submit))
        .route("/_sandbox/checkout/{id}/complete", post(control_complete))
        .route("/_sandbox/checkout/{id}/decline", post(control_decline))
        .route("/_sandbox/payment_intents/{id}/lapse", post(control_lapse))
        .route(
            "/_sandbox/failures",
            post(control_fail).delete(control_clear_failures),
        )
        .route("/_sandbox/webhooks", get(control_webhooks))
        .route(
            "/_sandbox/webhook_faults",
            post(control_webhook_faults).delete(control_clear_webhook_faults),
        )
        .route("/_sandbox/requests", get(control_requests))
        .fallback(|method: Method, uri: Uri| async move {
            error_response(&ApiError::unrecognized(method.as_str(), uri.path()))
        })
        .with_state(shared)
}

fn json_response(status: u16, body: String, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

pub(crate) fn error_response(e: &ApiError) -> Response {
    json_response(e.status, e.body().to_string(), false)
}

/// The answer to one `/v1` call, before any injected hang.
struct Outcome {
    status: u16,
    body: String,
    replayed: bool,
    injected: Option<FailureKind>,
    /// An injected `slow` answer waits this long.
    slow: Option<Duration>,
}

fn check_api_key(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ApiError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    // Bearer as async-stripe sends it, or HTTP Basic with the key as the user and no password,
    // as Stripe's docs show every request (`curl -u sk_test_...:`).
    let basic = value
        .strip_prefix("Basic ")
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .map(|user_pass| user_pass.split(':').next().unwrap_or_default().to_owned());
    let key = match &basic {
        Some(user) => user.as_str(),
        None => value.strip_prefix("Bearer ").unwrap_or_default().trim(),
    };
    if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        Ok(())
    } else {
        let shown: String = key.chars().take(8).collect();
        Err(ApiError::unauthorized(format!(
            "Invalid API Key provided: {shown}***. The stripe sandbox accepts any sk_test_ or rk_test_ key."
        )))
    }
}

/// The `/v1` prelude and the operation, all under the state lock.
fn handle(
    shared: &Shared,
    method: &Method,
    path: &str,
    params: &Params,
    headers: &HeaderMap,
) -> Outcome {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut state = shared.lock();
    let outcome = handle_locked(
        &mut state,
        &shared.public_base,
        method,
        path,
        params,
        headers,
        key.as_deref(),
    );
    state.requests.push(RecordedRequest {
        method: method.as_str().to_owned(),
        path: path.to_owned(),
        idempotency_key: key,
        params: params.to_map(),
        status: outcome.status,
        replayed: outcome.replayed,
        injected: outcome.injected,
    });
    if *method == Method::POST {
        shared.save(&state);
    }
    outcome
}

fn handle_locked(
    state: &mut State,
    public_base: &Url,
    method: &Method,
    path: &str,
    params: &Params,
    headers: &HeaderMap,
    key: Option<&str>,
) -> Outcome {
    let fail = |e: ApiError, injected| Outcome {
        status: e.status,
        body: e.body().to_string(),
        replayed: false,
        injected,
        slow: None,
    };
    if let Err(e) = check_api_key(headers) {
        return fail(e, None);
    }
    let taken = state.take_failure(path);
    let injected = taken.map(|(kind, _)| kind);
    let slow = taken.and_then(|(kind, delay)| {
        (kind == FailureKind::Slow).then(|| Duration::from_millis(delay.unwrap_or(2_000)))
    });
    if matches!(
        injected,
        Some(FailureKind::ServerError | FailureKind::TimeoutBeforeExecution)
    ) {
        return fail(ApiError::internal(), injected);
    }
    // Stripe applies idempotency keys to POST only.
    let key = key.filter(|_| *method == Method::POST);
    let fingerprint = format!("{method} {path}?{}", params.fingerprint());
    if let Some(key) = key {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return fail(
                ApiError::invalid_param(
                    "idempotency_key_invalid",
                    "Idempotency-Key",
                    "Idempotency-Key must be between 1 and 255 characters.",
                ),
                injected,
            );
        }
        if let Some(stored) = state.idempotency.get(key) {
            if stored.fingerprint != fingerprint {
                return fail(
                    ApiError::idempotency(format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                    )),
                    injected,
                );
            }
            return Outcome {
                status: stored.status,
                body: stored.body.clone(),
                replayed: true,
                injected,
                slow,
            };
        }
    }
    let (status, body, store) =
        match api::dispatch(state, public_base, method.as_str(), path, params) {
            Ok(json) => (200, json.to_string(), true),
            Err(e) => (e.status, e.body().to_string(), e.stored),
        };
    if let Some(key) = key
        && store
    {
        state.idempotency.insert(
            key.to_owned(),
            Stored {
                fingerprint,
                status,
                body: body.clone(),
            },
        );
    }
    Outcome {
        status,
        body,
        replayed: false,
        injected,
        slow,
    }
}

async fn v1(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // async-stripe ends GET URLs in a bare `?`: the query, if any, holds the parameters.
    let params = if method == Method::GET {
        Params::parse(uri.query().unwrap_or_default().as_bytes())
    } else {
        Params::parse(&body)
    };
    let outcome = handle(&shared, &method, uri.path(), &params, &headers);
    let events = std::mem::take(&mut shared.lock().undelivered);
    spawn_delivery(shared.clone(), events);
    if matches!(
        outcome.injected,
        Some(FailureKind::Timeout | FailureKind::TimeoutBeforeExecution)
    ) {
        // The client gives up before this; if it is still there, it gets the answer late.
        tokio::time::sleep(shared.config.hang).await;
    }
    if let Some(pause) = outcome.slow {
        tokio::time::sleep(pause).await;
    }
    json_response(outcome.status, outcome.body, outcome.replayed)
}

#[derive(Debug, Default, Deserialize)]
struct CompleteBody {
    card_number: Option<String>,
}

async fn control_complete(
    AxState(shared): AxState<Arc<Shared>>,
    Path(id): Path<String>,
    body: Option<Json<CompleteBody>>,
) -> Response {
    let card = body
        .and_then(|Json(b)| b.card_number)
        .unwrap_or_else(|| crate::CARD_SUCCESS.to_owned());
    match shared.pay(&id, &card) {
        Ok(snapshot) => Json(snapshot).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn control_decline(
    AxState(shared): AxState<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    match shared.pay(&id, crate::CARD_DECLINED) {
        Ok(snapshot) => Json(snapshot).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn control_lapse(AxState(shared): AxState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.apply(|state| api::lapse_authorization(state, &id)) {
        Ok(json) => Json(json).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn control_fail(
    AxState(shared): AxState<Arc<Shared>>,
    Json(failure): Json<Failure>,
) -> StatusCode {
    shared.lock().failures.push(failure);
    StatusCode::NO_CONTENT
}

async fn control_clear_failures(AxState(shared): AxState<Arc<Shared>>) -> StatusCode {
    shared.lock().failures.clear();
    StatusCode::NO_CONTENT
}

async fn control_webhook_faults(
    AxState(shared): AxState<Arc<Shared>>,
    Json(faults): Json<crate::state::WebhookFaultsBody>,
) -> StatusCode {
    shared.lock().webhook_faults = Some(faults.into());
    StatusCode::NO_CONTENT
}

async fn control_clear_webhook_faults(AxState(shared): AxState<Arc<Shared>>) -> StatusCode {
    shared.lock().webhook_faults = None;
    StatusCode::NO_CONTENT
}

async fn control_webhooks(AxState(shared): AxState<Arc<Shared>>) -> Response {
    Json(shared.lock().deliveries.clone()).into_response()
}

async fn control_requests(AxState(shared): AxState<Arc<Shared>>) -> Response {
    Json(shared.lock().requests.clone()).into_response()
}
