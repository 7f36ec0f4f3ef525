//! A small, stateful, Stripe-compatible server for tests and for the one-command local stack
//! (`chargelink stripe-sandbox`). It implements only what chargelink uses: Checkout Sessions in
//! `mode=payment` with a manual-capture PaymentIntent, partial capture, cancel, expire,
//! incremental authorization (`increment_authorization`), Stripe's idempotency keys and error
//! shapes, a hosted checkout page and signed webhooks. JSON answers
//! decode with async-stripe 1.0.0-rc.10.
//!
//! It is not a Stripe emulator: anything outside those routes answers 404 like an unknown Stripe
//! path, and no card network is simulated beyond three test card numbers.
//!
//! # Layout
//! - [`SandboxConfig`], [`Sandbox`] (a running instance and its test helpers), [`serve`], [`run`].
//! - `server`: the axum router, the `/v1` prelude (auth, failure injection, request log,
//!   idempotency) and the `/_sandbox` test controls.
//! - `api`: the Stripe operations as pure functions over the state.
//! - `state`: objects, idempotency records, request log, injected failures.
//! - `form`: form-encoded (serde_qs style) parameters.
//! - `error`: Stripe-shaped errors.
//! - `page`: the hosted checkout page.
//! - `webhooks`: event envelopes, `Stripe-Signature`, delivery with retries.
//!
//! # Test cards
//! - `4242 4242 4242 4242`: authorized (hold placed); its charge (`GET /v1/charges/{id}`, the
//!   intent's `latest_charge`) reports the card as Stripe does: `visa`, last 4 `4242`.
//! - `4000 0000 0000 0002`: declined (`card_declined` / `generic_decline`).
//! - `4000 0000 0000 6975` (the sandbox's own, not Stripe's): authorized like 4242, but its
//!   issuer declines every incremental authorization (402 `card_declined`, the hold unchanged).
//!
//! # Incremental authorization
//! Asked for at creation with `payment_method_options[card][request_incremental_authorization]
//! =if_available` (the intent echoes it; the charge shows `incremental_authorization.status`
//! `available`). `POST /v1/payment_intents/{id}/increment_authorization amount=<new total>`
//! raises `amount` and `amount_capturable` on a `requires_capture` intent; refused as Stripe
//! does: another status (`payment_intent_unexpected_state`), not requested at creation, an
//! amount not above the current one or above 99,999,999, and more than 10 attempts (declines
//! count). No webhook is sent for an increment.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod api;
mod error;
mod form;
mod page;
mod server;
mod state;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use url::Url;

pub use state::{
    Failure, FailureKind, IntentSnapshot, IntentStatus, RecordedRequest, SessionSnapshot,
    SessionStatus, WebhookDelivery, WebhookDeliveryStatus,
};

/// The card number that authorizes.
pub const CARD_SUCCESS: &str = "4242424242424242";
/// The card number that is declined.
pub const CARD_DECLINED: &str = "4000000000000002";
/// The card number that authorizes but whose issuer declines every incremental authorization
/// (the sandbox's own; Stripe publishes no such test card).
pub const CARD_DECLINES_INCREMENTS: &str = "4000000000006975";

/// How the sandbox runs. Plain fields, no CLI parser: the binary maps its flags onto this.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Where signed webhook events are POSTed (plain HTTP); `None` records events without
    /// delivering them.
    pub webhook_endpoint: Option<Url>,
    /// The endpoint secret (`whsec_...`) the `Stripe-Signature` header is computed with.
    pub webhook_secret: String,
    /// Base of the links the sandbox hands out (the checkout page `url`); `None` uses the bound
    /// address (`http://127.0.0.1:<port>`).
    pub public_base_url: Option<Url>,
    /// Delivery attempts per webhook event (at least 1).
    pub webhook_attempts: u32,
    /// Pause before the second attempt; doubled for each further one.
    pub webhook_backoff: Duration,
    /// How long an injected `timeout` failure holds its answer back.
    pub hang: Duration,
    /// Where the state is kept across restarts (`None`: in memory only).
    pub state_file: Option<std::path::PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            webhook_endpoint: None,
            webhook_secret: "whsec_sandbox".to_owned(),
            public_base_url: None,
            webhook_attempts: 4,
            webhook_backoff: Duration::from_millis(200),
            hang: Duration::from_secs(30),
            state_file: None,
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The webhook secret stays out of logs.
        f.debug_struct("SandboxConfig")
            .field(
                "webhook_endpoint",
                &self.webhook_endpoint.as_ref().map(Url::as_str),
            )
            .field(
                "public_base_url",
                &self.public_base_url.as_ref().map(Url::as_str),
            )
            .field("webhook_attempts", &self.webhook_attempts)
            .field("webhook_backoff", &self.webhook_backoff)
            .field("hang", &self.hang)
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Binding or serving the socket failed; pick another address.
    #[error("sandbox socket error")]
    Io(#[from] std::io::Error),
    /// The public base URL could not be built from the bound address.
    #[error("invalid public base URL")]
    Url(#[from] url::ParseError),
    /// The state file exists but cannot be read back; move it away to start empty.
    #[error("sandbox state file {path} cannot be read: {reason}")]
    State {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Why paying a checkout session failed (declined card, closed or unknown session).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (HTTP {status})")]
pub struct PayError {
    /// The HTTP status Stripe would answer (402 for a card error).
    pub status: u16,
    /// Stripe error code (`card_declined`, ...).
    pub code: Option<String>,
    /// What the page shows.
    pub message: String,
}

/// Serves the sandbox on `listener` until the task is dropped or the socket fails.
pub async fn serve(listener: TcpListener, config: SandboxConfig) -> Result<(), SandboxError> {
    let shared = server::Shared::new(config, listener.local_addr()?)?;
    server::serve(listener, shared).await
}

/// Binds `addr` and serves the sandbox there (the `chargelink stripe-sandbox` entry point; the
/// conventional port is [`DEFAULT_PORT`]).
pub async fn run(addr: SocketAddr, config: SandboxConfig) -> Result<(), SandboxError> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "stripe sandbox listening");
    serve(listener, config).await
}

/// The port `chargelink stripe-sandbox` listens on by default (stripe-mock's port).
pub const DEFAULT_PORT: u16 = 12111;

/// Starts a [`Sandbox`] on `127.0.0.1:0`.
#[derive(Debug, Default)]
pub struct SandboxBuilder {
    config: SandboxConfig,
}

impl SandboxBuilder {
    /// Deliver webhooks to `url`.
    pub fn webhook_endpoint(mut self, url: Url) -> Self {
        self.config.webhook_endpoint = Some(url);
        self
    }

    /// Sign webhooks with `secret`.
    pub fn webhook_secret(mut self, secret: impl Into<String>) -> Self {
        self.config.webhook_secret = secret.into();
        self
    }

    /// Hand out links under `url` instead of the bound address.
    pub fn public_base_url(mut self, url: Url) -> Self {
        self.config.public_base_url = Some(url);
        self
    }

    /// How long an injected `timeout` failure hangs.
    pub fn hang(mut self, hang: Duration) -> Self {
        self.config.hang = hang;
        self
    }

    /// Webhook delivery attempts and the first backoff.
    pub fn webhook_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.config.webhook_attempts = attempts;
        self.config.webhook_backoff = backoff;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: SandboxConfig) -> Self {
        self.config = config;
        self
    }

    /// Binds `127.0.0.1:0` and serves in a background task.
    pub async fn start(self) -> Result<Sandbox, SandboxError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = server::Shared::new(self.config, addr)?;
        let base_url = Url::parse(&format!("http://{addr}/"))?;
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(Sandbox {
            base_url,
            shared,
            task,
        })
    }
}

/// A running sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct Sandbox {
    base_url: Url,
    shared: Arc<server::Shared>,
    task: tokio::task::JoinHandle<Result<(), SandboxError>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sandbox {
    /// A builder with the default configuration.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Starts a sandbox with the default configuration.
    pub async fn start() -> Result<Sandbox, SandboxError> {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:<port>/`: the API base for `ClientBuilder::url`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The webhook signing secret.
    pub fn webhook_secret(&self) -> &str {
        &self.shared.config.webhook_secret
    }

    /// Pays an open checkout session as the hosted page would, with `card_number`.
    pub fn pay(
        &self,
        checkout_session_id: &str,
        card_number: &str,
    ) -> Result<SessionSnapshot, PayError> {
        self.shared
            .pay(checkout_session_id, card_number)
            .map_err(|e| PayError {
                status: e.status,
                code: e.code.map(str::to_owned),
                message: e.message,
            })
    }

    /// Makes the next `count` matching `/v1` calls fail.
    pub fn fail_next(&self, failure: Failure) {
        self.shared.lock().failures.push(failure);
    }

    /// Every `/v1` request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Every webhook event and its delivery status, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.lock().deliveries.clone()
    }

    /// The raw JSON body of a webhook event as it was (or will be) delivered.
    pub fn webhook_payload(&self, event_id: &str) -> Option<String> {
        self.shared
            .lock()
            .deliveries
            .iter()
            .find(|d| d.event_id == event_id)
            .map(|d| d.payload.clone())
    }

    /// A checkout session's current state.
    pub fn session(&self, id: &str) -> Option<SessionSnapshot> {
        self.shared.lock().sessions.get(id).map(|s| s.snapshot())
    }

    /// A PaymentIntent's current state.
    pub fn intent(&self, id: &str) -> Option<IntentSnapshot> {
        self.shared.lock().intents.get(id).map(|p| p.snapshot())
    }
}
