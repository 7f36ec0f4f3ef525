//! Payments with Stripe Checkout and a manual-capture card hold: the five payment contracts of
//! `workflows::contracts` (create, expire, retrieve, capture, cancel).
//!
//! - Every state-changing call carries the idempotency key from its input, so a Temporal retry
//!   after a timeout replays Stripe's stored answer instead of charging twice.
//! - Errors: transport failures, timeouts, 5xx, 429, 409 and lock timeouts are retryable;
//!   card and invalid-request errors fail the activity for good with type
//!   [`PAYMENT_REJECTED`](workflows::options::failure_types::PAYMENT_REJECTED); a capture Stripe
//!   reports differently from what was asked fails with
//!   [`PAYMENT_MISMATCH`](workflows::options::failure_types::PAYMENT_MISMATCH).
//! - Races the workflow must not lose money on are answered as states, not errors: expiring a
//!   session the driver just paid answers `Authorized`; cancelling a released hold succeeds.

mod cards;
mod client;
mod transformers;

pub use cards::{Card, CardLookup};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use domain::money::Money;
use serde::Deserialize;
use stripe_shared::PaymentIntentStatus;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use url::Url;
use workflows::contracts::{
    CancelPaymentInput, CapturePaymentInput, CapturePaymentOutput, CreatePaymentInput,
    CreatePaymentOutput, IncrementPaymentInput, IncrementPaymentOutput, PaymentRef,
    ProviderPaymentState,
};
use workflows::options::failure_types::{PAYMENT_MISMATCH, PAYMENT_REJECTED};

use self::client::StripeClient;
use self::transformers::{CheckoutState, checkout_state, intent_state};

/// Stripe's error code for an operation the object's status forbids.
const UNEXPECTED_STATE: &str = "payment_intent_unexpected_state";

/// How to reach Stripe. Part of the binary's `Settings` tree (`APP_STRIPE__SECRET_KEY`, ...).
#[derive(Clone, Deserialize)]
pub struct StripeSettings {
    /// `sk_test_...` / `sk_live_...`; kept out of `Debug`.
    pub secret_key: String,
    /// API base (the sandbox, e.g. `http://127.0.0.1:12111/`); `None` is the real Stripe.
    #[serde(default)]
    pub api_base: Option<Url>,
    /// chargelink's public base URL; the hosted page returns the driver under it.
    pub public_base_url: Url,
    /// Per-request timeout; keep it below the activities' start-to-close timeouts (20 s).
    #[serde(default = "default_timeout", deserialize_with = "duration_secs")]
    pub request_timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(15)
}

/// A timeout in whole seconds (`request_timeout: 15`).
fn duration_secs<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Show only the key's mode prefix (sk_test_ / sk_live_), never the key.
        let mode: String = self.secret_key.chars().take(8).collect();
        f.debug_struct("StripeSettings")
            .field("secret_key", &format!("{mode}***"))
            .field("api_base", &self.api_base.as_ref().map(Url::as_str))
            .field("public_base_url", &self.public_base_url.as_str())
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl StripeSettings {
    /// An async-stripe client for these settings (one attempt per call, with the timeout).
    pub fn client(&self) -> Result<stripe::Client, PaymentError> {
        let mut builder =
            stripe::ClientBuilder::new(self.secret_key.clone()).timeout(self.request_timeout);
        if let Some(base) = &self.api_base {
            // async-stripe appends `v1/...` to the base as text: it must end in a slash.
            let mut base = base.to_string();
            if !base.ends_with('/') {
                base.push('/');
            }
            builder = builder.url(base);
        }
        builder
            .build()
            .map_err(|e| PaymentError::Config(e.to_string()))
    }
}

/// What went wrong talking to Stripe.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Stripe was unreachable, timed out, or answered 5xx / 429 / 409 / 401: retry with the same
    /// idempotency key.
    #[error("Stripe is unavailable")]
    Unavailable(#[source] stripe::StripeError),
    /// Stripe refused the request (declined card, invalid request, wrong state): retrying the
    /// same request cannot succeed.
    #[error("Stripe refused the request (HTTP {status}, {kind}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Stripe error type (`card_error`, `invalid_request_error`, `idempotency_error`).
        kind: String,
        /// Stripe error code (`card_declined`, `amount_too_large`, ...).
        code: Option<String>,
        /// Issuer's reason for a card decline.
        decline_code: Option<String>,
        /// Stripe's message.
        message: String,
    },
    /// The hold was already captured by someone else: stop, do not charge on it.
    #[error("PaymentIntent {intent_id} is already captured")]
    AlreadyCaptured {
        /// The PaymentIntent.
        intent_id: String,
    },
    /// Stripe reports another amount or currency than was asked: investigate before anything
    /// else moves.
    #[error("Stripe reports {reported} captured, but {asked} was asked")]
    Mismatch {
        /// What chargelink asked for.
        asked: Money,
        /// What Stripe reports.
        reported: Money,
    },
    /// Stripe's answer is incomplete or contradicts itself; retried, then investigate.
    #[error("unexpected answer from Stripe: {0}")]
    Unexpected(String),
    /// The settings or a request cannot be built: fix the configuration.
    #[error("invalid Stripe configuration: {0}")]
    Config(String),
}

impl PaymentError {
    /// The activity failure: rejections and mismatches are non-retryable with their failure
    /// type; everything else is a plain retryable failure.
    ///
    /// A function, not `From`: the SDK's blanket `From<E: Into<anyhow::Error>>` already covers
    /// every error type.
    pub fn into_activity_error(self) -> ActivityError {
        let kind = match &self {
            Self::Rejected { .. } | Self::AlreadyCaptured { .. } => Some(PAYMENT_REJECTED),
            Self::Mismatch { .. } => Some(PAYMENT_MISMATCH),
            Self::Unavailable(_) | Self::Unexpected(_) | Self::Config(_) => None,
        };
        match kind {
            Some(kind) => {
                tracing::warn!(error = %self, failure_type = kind, "payment failed for good");
                ActivityError::application(
                    ApplicationFailure::builder(self)
                        .type_name(kind.to_owned())
                        .non_retryable(true)
                        .build(),
                )
            }
            None => {
                tracing::warn!(error = %chain(&self), "payment call failed; will be retried");
                ActivityError::from(anyhow::Error::new(self))
            }
        }
    }

    fn is_unexpected_state(&self) -> bool {
        matches!(self, Self::Rejected { code: Some(code), .. } if code == UNEXPECTED_STATE)
    }
}

/// An error and its sources, for logs.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The payment activities. Register with `WorkerOptions::register_activities(PaymentActivities::new(&settings)?)`.
#[derive(Debug)]
pub struct PaymentActivities {
    client: StripeClient,
    public_base_url: Url,
}

impl PaymentActivities {
    /// Activities talking to the Stripe (or sandbox) of `settings`.
    pub fn new(settings: &StripeSettings) -> Result<Self, PaymentError> {
        Ok(Self {
            client: StripeClient::new(settings.client()?),
            public_base_url: settings.public_base_url.clone(),
        })
    }

    /// `scheduled` must be the same on every retry: it fixes `expires_at`, and Stripe refuses a
    /// retried key whose parameters changed.
    async fn create(
        &self,
        input: &CreatePaymentInput,
        scheduled: SystemTime,
    ) -> Result<CreatePaymentOutput, PaymentError> {
        let request =
            transformers::checkout_request(input, &self.public_base_url, unix_secs(scheduled));
        let session = self
            .client
            .create_checkout(&request, &input.idempotency_key)
            .await?;
        let url = session.url.clone().ok_or_else(|| {
            PaymentError::Unexpected(format!(
                "checkout session {} has no url",
                session.id.as_str()
            ))
        })?;
        Ok(CreatePaymentOutput {
            url,
            checkout_session_id: session.id.as_str().to_owned(),
            // Stripe creates the PaymentIntent only when the driver pays (API 2022-08-01+).
            intent_id: session
                .payment_intent
                .as_ref()
                .map(|p| p.id().as_str().to_owned()),
        })
    }

    async fn state_of(
        &self,
        session: &stripe_shared::CheckoutSession,
    ) -> Result<ProviderPaymentState, PaymentError> {
        match checkout_state(session)? {
            CheckoutState::Open => Ok(ProviderPaymentState::Open),
            CheckoutState::Expired => Ok(ProviderPaymentState::Expired),
            CheckoutState::Complete { intent_id } => {
                intent_state(&self.client.retrieve_intent(&intent_id).await?)
            }
        }
    }

    async fn retrieve(&self, input: &PaymentRef) -> Result<ProviderPaymentState, PaymentError> {
        let session = self
            .client
            .retrieve_checkout(&input.checkout_session_id)
            .await?;
        self.state_of(&session).await
    }

    async fn expire(&self, input: &PaymentRef) -> Result<ProviderPaymentState, PaymentError> {
        match self
            .client
            .expire_checkout(&input.checkout_session_id, &input.idempotency_key)
            .await
        {
            Ok(session) => self.state_of(&session).await,
            // Stripe expires only open sessions. Not open any more means the driver paid in
            // the same instant, or the session expired already: read which.
            Err(refused @ PaymentError::Rejected { status: 400, .. }) => {
                let session = self
                    .client
                    .retrieve_checkout(&input.checkout_session_id)
                    .await?;
                match checkout_state(&session)? {
                    CheckoutState::Open => Err(refused),
                    _ => self.state_of(&session).await,
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn capture(
        &self,
        input: &CapturePaymentInput,
    ) -> Result<CapturePaymentOutput, PaymentError> {
        let intent = match self
            .client
            .capture(
                &input.intent_id,
                input.amount.amount,
                &input.idempotency_key,
            )
            .await
        {
            Ok(intent) => intent,
            // Captured already, by an attempt whose stored answer Stripe has since pruned (keys
            // live 24 h): that capture is the answer, checked like a fresh one below.
            Err(refused) if refused.is_unexpected_state() => {
                let intent = self.client.retrieve_intent(&input.intent_id).await?;
                if intent.status != PaymentIntentStatus::Succeeded {
                    return Err(refused);
                }
                intent
            }
            Err(e) => return Err(e),
        };
        Ok(CapturePaymentOutput {
            captured: transformers::captured(&intent, input.amount)?,
        })
    }

    /// A refusal (a declined increment, an intent or card that does not allow one) is an
    /// answer: the hold stays as it was. Only transient failures are errors, retried with the
    /// same key.
    async fn increment(
        &self,
        input: &IncrementPaymentInput,
    ) -> Result<IncrementPaymentOutput, PaymentError> {
        match self
            .client
            .increment(
                &input.intent_id,
                input.amount.amount,
                &input.idempotency_key,
            )
            .await
        {
            Ok(intent) => {
                let capturable = transformers::money(intent.amount_capturable, &intent.currency)?;
                if capturable.currency != input.amount.currency
                    || capturable.amount != input.amount.amount
                {
                    return Err(PaymentError::Mismatch {
                        asked: input.amount,
                        reported: capturable,
                    });
                }
                Ok(IncrementPaymentOutput::Raised {
                    amount_capturable: capturable,
                })
            }
            Err(PaymentError::Rejected { code, message, .. }) => {
                tracing::info!(code = ?code, %message, "increment refused; the hold stays");
                Ok(IncrementPaymentOutput::Refused { code, message })
            }
            Err(e) => Err(e),
        }
    }

    async fn cancel(&self, input: &CancelPaymentInput) -> Result<(), PaymentError> {
        match self
            .client
            .cancel(&input.intent_id, &input.idempotency_key)
            .await
        {
            Ok(_) => Ok(()),
            // Releasing a released hold is done, not an error.
            Err(refused) if refused.is_unexpected_state() => {
                let intent = self.client.retrieve_intent(&input.intent_id).await?;
                if intent.status == PaymentIntentStatus::Canceled {
                    Ok(())
                } else {
                    Err(refused)
                }
            }
            Err(e) => Err(e),
        }
    }
}

fn unix_secs(at: SystemTime) -> i64 {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[activities]
impl PaymentActivities {
    /// Creates the hosted payment page (Checkout Session, manual capture).
    #[activity(definition = workflows::contracts::CreatePayment)]
    #[tracing::instrument(name = "create_payment", skip_all, fields(session_id = %input.session_id, activity = "create_payment"))]
    pub async fn create_payment(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CreatePaymentInput,
    ) -> Result<CreatePaymentOutput, ActivityError> {
        // The first attempt's schedule time is the same on every retry (unlike "now").
        let scheduled = ctx.info().scheduled_time.unwrap_or_else(SystemTime::now);
        self.create(&input, scheduled)
            .await
            .map_err(PaymentError::into_activity_error)
    }

    /// Expires the page; answers `Authorized` if the driver paid in the same instant.
    #[activity(definition = workflows::contracts::ExpirePayment)]
    #[tracing::instrument(name = "expire_payment", skip_all, fields(session_id = %input.session_id, activity = "expire_payment"))]
    pub async fn expire_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PaymentRef,
    ) -> Result<ProviderPaymentState, ActivityError> {
        self.expire(&input)
            .await
            .map_err(PaymentError::into_activity_error)
    }

    /// Reads the payment's state (fallback for late or lost webhooks).
    #[activity(definition = workflows::contracts::RetrievePayment)]
    #[tracing::instrument(name = "retrieve_payment", skip_all, fields(session_id = %input.session_id, activity = "retrieve_payment"))]
    pub async fn retrieve_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PaymentRef,
    ) -> Result<ProviderPaymentState, ActivityError> {
        self.retrieve(&input)
            .await
            .map_err(PaymentError::into_activity_error)
    }

    /// Captures the final cost (the rest of the hold is released) and checks what Stripe reports.
    #[activity(definition = workflows::contracts::CapturePayment)]
    #[tracing::instrument(name = "capture_payment", skip_all, fields(session_id = %input.session_id, activity = "capture_payment", payment_intent_id = %input.intent_id))]
    pub async fn capture_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CapturePaymentInput,
    ) -> Result<CapturePaymentOutput, ActivityError> {
        self.capture(&input)
            .await
            .map_err(PaymentError::into_activity_error)
    }

    /// Raises the hold (incremental authorization); a refusal is an answer, not a failure.
    #[activity(definition = workflows::contracts::IncrementPayment)]
    #[tracing::instrument(name = "increment_payment", skip_all, fields(session_id = %input.session_id, activity = "increment_payment", payment_intent_id = %input.intent_id))]
    pub async fn increment_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: IncrementPaymentInput,
    ) -> Result<IncrementPaymentOutput, ActivityError> {
        self.increment(&input)
            .await
            .map_err(PaymentError::into_activity_error)
    }

    /// Releases the whole hold; succeeds if it is already released.
    #[activity(definition = workflows::contracts::CancelPayment)]
    #[tracing::instrument(name = "cancel_payment", skip_all, fields(session_id = %input.session_id, activity = "cancel_payment", payment_intent_id = %input.intent_id))]
    pub async fn cancel_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CancelPaymentInput,
    ) -> Result<(), ActivityError> {
        self.cancel(&input)
            .await
            .map_err(PaymentError::into_activity_error)
    }
}

#[cfg(test)]
mod tests {
    use workflows::names;

    use super::*;

    #[test]
    fn activities_register_under_the_pinned_contract_names() {
        assert_eq!(
            PaymentActivities::create_payment.name(),
            names::CREATE_PAYMENT
        );
        assert_eq!(
            PaymentActivities::expire_payment.name(),
            names::EXPIRE_PAYMENT
        );
        assert_eq!(
            PaymentActivities::retrieve_payment.name(),
            names::RETRIEVE_PAYMENT
        );
        assert_eq!(
            PaymentActivities::capture_payment.name(),
            names::CAPTURE_PAYMENT
        );
        assert_eq!(
            PaymentActivities::cancel_payment.name(),
            names::CANCEL_PAYMENT
        );
        assert_eq!(
            PaymentActivities::increment_payment.name(),
            names::INCREMENT_PAYMENT
        );
    }

    #[test]
    fn rejections_and_mismatches_fail_for_good_with_their_type() {
        let rejected = PaymentError::Rejected {
            status: 402,
            kind: "card_error".into(),
            code: Some("card_declined".into()),
            decline_code: Some("generic_decline".into()),
            message: "Your card was declined.".into(),
        };
        let mismatch = PaymentError::Mismatch {
            asked: Money::new(100, domain::money::Currency::EUR),
            reported: Money::new(90, domain::money::Currency::EUR),
        };
        for (error, kind) in [(rejected, PAYMENT_REJECTED), (mismatch, PAYMENT_MISMATCH)] {
            let ActivityError::Application(failure) = error.into_activity_error() else {
                panic!("not an application failure")
            };
            assert_eq!(
                (failure.type_name(), failure.is_non_retryable()),
                (Some(kind), true)
            );
        }
        let ActivityError::Application(failure) =
            PaymentError::Unexpected("x".into()).into_activity_error()
        else {
            panic!("not an application failure")
        };
        assert!(!failure.is_non_retryable());
    }
}
