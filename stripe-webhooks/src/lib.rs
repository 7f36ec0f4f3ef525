//! Receives Stripe webhooks and turns the payment events chargelink cares about into signals to
//! the session's workflow (workflow id = session id).
//!
//! - `POST /stripe/webhook` verifies `Stripe-Signature` on the raw body (HMAC-SHA256 with the
//!   endpoint secret, 300 s tolerance, via async-stripe-webhook) and answers 400 when it is bad
//!   or missing.
//! - `checkout.session.completed` and `payment_intent.amount_capturable_updated` signal
//!   `payment_authorized`; `checkout.session.expired` signals `payment_expired`;
//!   `payment_intent.canceled` signals `payment_canceled`. Other event types are acknowledged and
//!   ignored.
//! - Events are de-duplicated by id in an in-process LRU set (bounded, lost on restart; Stripe's
//!   redelivery after a restart then signals again, which the workflow tolerates).
//! - Events for unknown sessions (not chargelink's, or a finished workflow) are logged and
//!   acknowledged. Only a failure to reach Temporal answers 5xx, so Stripe retries.
//!
//! # Layout
//! - [`router`], [`WebhookState`]: the axum route.
//! - [`SessionSignals`], [`SignalError`]: how events reach workflows; implemented for
//!   [`temporalio_client::Client`] with untyped signals named in `workflows::names`.
//! - `events`: Stripe event -> signal (pure).
//! - `dedup`: the bounded set of seen event ids.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod dedup;
mod events;
mod signals;

use std::num::NonZeroUsize;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use stripe_webhook::{Webhook, WebhookError};

pub use signals::{SessionSignals, SignalError};

use crate::dedup::SeenEvents;
use crate::events::Action;

/// The path Stripe posts to.
pub const WEBHOOK_PATH: &str = "/stripe/webhook";

/// Event ids remembered for de-duplication by default.
pub const DEFAULT_DEDUP_CAPACITY: usize = 10_000;

/// What the webhook route needs: where signals go, the endpoint secret, the seen-event set.
pub struct WebhookState<S> {
    signals: Arc<S>,
    secret: Arc<str>,
    seen: Arc<SeenEvents>,
}

impl<S> Clone for WebhookState<S> {
    fn clone(&self) -> Self {
        Self {
            signals: self.signals.clone(),
            secret: self.secret.clone(),
            seen: self.seen.clone(),
        }
    }
}

impl<S> std::fmt::Debug for WebhookState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The endpoint secret stays out of logs.
        f.debug_struct("WebhookState").finish_non_exhaustive()
    }
}

impl<S: SessionSignals> WebhookState<S> {
    /// Signals through `signals`; verifies with the endpoint secret `whsec_...`.
    pub fn new(signals: S, webhook_secret: impl Into<String>) -> Self {
        Self::with_dedup_capacity(signals, webhook_secret, DEFAULT_DEDUP_CAPACITY)
    }

    /// As [`WebhookState::new`], remembering at most `capacity` event ids (at least 1).
    pub fn with_dedup_capacity(
        signals: S,
        webhook_secret: impl Into<String>,
        capacity: usize,
    ) -> Self {
        Self {
            signals: Arc::new(signals),
            secret: webhook_secret.into().into(),
            seen: Arc::new(SeenEvents::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }
}

/// `POST /stripe/webhook`, with its state applied; merge it into the API router.
pub fn router<S: SessionSignals>(state: WebhookState<S>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive::<S>))
        .with_state(state)
}

fn answer(status: StatusCode, outcome: &str) -> Response {
    (
        status,
        Json(json!({ "received": status.is_success(), "outcome": outcome })),
    )
        .into_response()
}

#[tracing::instrument(
    name = "stripe_webhook",
    skip_all,
    fields(event_id, event_type, session_id)
)]
async fn receive<S: SessionSignals>(
    State(state): State<WebhookState<S>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(signature) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        tracing::warn!("webhook without Stripe-Signature refused");
        return answer(StatusCode::BAD_REQUEST, "missing Stripe-Signature header");
    };
    let event = match Webhook::construct_event(&body, signature, &state.secret) {
        Ok(event) => event,
        Err(WebhookError::BadParse(why)) => {
            // The signature is valid (it is checked first), only the shape is not understood.
            let event_type = events::peek_type(&body);
            if events::is_handled(&event_type) {
                tracing::error!(
                    event_type,
                    why,
                    "a signed event chargelink needs could not be parsed"
                );
                return answer(StatusCode::INTERNAL_SERVER_ERROR, "event not understood");
            }
            return answer(StatusCode::OK, "ignored");
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhook signature refused");
            // An unverified body names no type worth a label.
            telemetry::stripe::webhook("unverified".to_owned(), "invalid_signature");
            return answer(StatusCode::BAD_REQUEST, "invalid signature");
        }
    };
    let event_id = event.id.as_str().to_owned();
    let span = tracing::Span::current();
    span.record("event_id", event_id.as_str());
    span.record("event_type", event.type_.as_str());

    let kind = event.type_.as_str().to_owned();
    if state.seen.contains(&event_id) {
        telemetry::stripe::webhook(kind, "duplicate");
        return answer(StatusCode::OK, "duplicate");
    }
    // Events of a connected account (Stripe Connect sets `account`) are not chargelink's, even
    // when one names a chargelink session: its payments live on this account only.
    if let Some(account) = &event.account {
        tracing::warn!(account, "event of another Stripe account ignored");
        state.seen.insert(event_id);
        return answer(StatusCode::OK, "another account");
    }
    let action = events::action(&event);
    let result = match action {
        Action::Ignore(why) => {
            tracing::debug!(why, "event ignored");
            state.seen.insert(event_id);
            telemetry::stripe::webhook(kind, "ignored");
            return answer(StatusCode::OK, "ignored");
        }
        Action::Authorized { session, payload } => {
            span.record("session_id", session.as_str());
            state.signals.signal_authorized(&session, payload).await
        }
        Action::Expired { session, payload } => {
            span.record("session_id", session.as_str());
            state.signals.signal_expired(&session, payload).await
        }
        Action::Canceled { session, payload } => {
            span.record("session_id", session.as_str());
            state.signals.signal_canceled(&session, payload).await
        }
    };
    match result {
        Ok(()) => {
            state.seen.insert(event_id);
            telemetry::stripe::webhook(kind, "signalled");
            answer(StatusCode::OK, "signalled")
        }
        Err(SignalError::UnknownSession(session)) => {
            tracing::warn!(session_id = %session, "event for a session without a running workflow acknowledged");
            state.seen.insert(event_id);
            telemetry::stripe::webhook(kind, "unknown_session");
            answer(StatusCode::OK, "unknown session")
        }
        Err(e) => {
            // Not marked as seen: Stripe redelivers and the next attempt signals again.
            tracing::error!(error = %e, "signalling the session workflow failed; Stripe will retry");
            telemetry::stripe::webhook(kind, "signal_failed");
            answer(StatusCode::SERVICE_UNAVAILABLE, "signal failed")
        }
    }
}
