//! A thin wrapper over async-stripe: one method per Stripe call. State-changing calls carry the
//! idempotency key of their step, so a retry after a timeout replays Stripe's stored answer
//! instead of moving money twice. Retries themselves are Temporal's job (one attempt here).

use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CancelPaymentIntentCancellationReason, CapturePaymentIntent,
    IncrementAuthorizationPaymentIntent, RetrievePaymentIntent,
};
use stripe_shared::{ApiErrorsCode, ApiErrorsType, CheckoutSession, PaymentIntent};

use super::PaymentError;

/// async-stripe's client, with chargelink's error classification.
#[derive(Clone)]
pub(crate) struct StripeClient {
    inner: stripe::Client,
}

fn idempotent(key: &str) -> Result<RequestStrategy, PaymentError> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| PaymentError::Config(format!("invalid idempotency key `{key}`: {e}")))
}

/// One Stripe call, counted and timed (`chargelink_stripe_requests_total` by operation and result).
async fn timed<T>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, StripeError>>,
) -> Result<T, PaymentError> {
    let classify = |e: &StripeError| match PaymentError::classify(e) {
        Retry::Retryable => "unavailable",
        Retry::Final => "rejected",
    };
    Ok(telemetry::stripe::timed(operation, call, classify).await?)
}

impl StripeClient {
    pub(crate) fn new(inner: stripe::Client) -> Self {
        Self { inner }
    }

    pub(crate) async fn create_checkout(
        &self,
        request: &CreateCheckoutSession,
        key: &str,
    ) -> Result<CheckoutSession, PaymentError> {
        let send = request
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.inner);
        timed("create_checkout", send).await
    }

    pub(crate) async fn retrieve_checkout(
        &self,
        id: &str,
    ) -> Result<CheckoutSession, PaymentError> {
        timed(
            "retrieve_checkout",
            RetrieveCheckoutSession::new(id).send(&self.inner),
        )
        .await
    }

    pub(crate) async fn expire_checkout(
        &self,
        id: &str,
        key: &str,
    ) -> Result<CheckoutSession, PaymentError> {
        let request = ExpireCheckoutSession::new(id);
        let send = request
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.inner);
        timed("expire_checkout", send).await
    }

    pub(crate) async fn retrieve_intent(&self, id: &str) -> Result<PaymentIntent, PaymentError> {
        timed(
            "retrieve_intent",
            RetrievePaymentIntent::new(id).send(&self.inner),
        )
        .await
    }

    pub(crate) async fn capture(
        &self,
        id: &str,
        amount: i64,
        key: &str,
    ) -> Result<PaymentIntent, PaymentError> {
        let request = CapturePaymentIntent::new(id).amount_to_capture(amount);
        let send = request
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.inner);
        timed("capture_intent", send).await
    }

    /// Raises the hold to `amount`, the new total.
    pub(crate) async fn increment(
        &self,
        id: &str,
        amount: i64,
        key: &str,
    ) -> Result<PaymentIntent, PaymentError> {
        let request = IncrementAuthorizationPaymentIntent::new(id, amount);
        let send = request
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.inner);
        timed("increment_authorization", send).await
    }

    pub(crate) async fn cancel(&self, id: &str, key: &str) -> Result<PaymentIntent, PaymentError> {
        let request = CancelPaymentIntent::new(id)
            .cancellation_reason(CancelPaymentIntentCancellationReason::Abandoned);
        let send = request
            .customize()
            .request_strategy(idempotent(key)?)
            .send(&self.inner);
        timed("cancel_intent", send).await
    }
}

/// Whether a Stripe error heals with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Retryable,
    Final,
}

impl PaymentError {
    fn classify(error: &StripeError) -> Retry {
        let StripeError::Stripe(api, status) = error else {
            return Retry::Retryable;
        };
        let transient_code = matches!(
            api.code,
            Some(
                ApiErrorsCode::LockTimeout
                    | ApiErrorsCode::RateLimit
                    | ApiErrorsCode::IdempotencyKeyInUse
            )
        );
        let transient_status = *status >= 500 || matches!(status, 401 | 403 | 409 | 429);
        if transient_code || transient_status || api.type_ == ApiErrorsType::ApiError {
            Retry::Retryable
        } else {
            Retry::Final
        }
    }
}

impl From<StripeError> for PaymentError {
    /// Transport failures, timeouts, 5xx, 429, 409 (idempotency key in use) and lock timeouts
    /// heal with time: retryable. 401/403 heal when an operator fixes the key, and money must
    /// not be given up on meanwhile: retryable too. Card and other invalid-request errors never
    /// heal: rejected.
    fn from(error: StripeError) -> Self {
        let StripeError::Stripe(api, status) = &error else {
            return PaymentError::Unavailable(error);
        };
        if PaymentError::classify(&error) == Retry::Retryable {
            return PaymentError::Unavailable(error);
        }
        PaymentError::Rejected {
            status: *status,
            kind: api.type_.as_str().to_owned(),
            code: api.code.as_ref().map(|c| c.as_str().to_owned()),
            decline_code: api.decline_code.clone(),
            message: api
                .message
                .clone()
                .unwrap_or_else(|| "no message".to_owned()),
        }
    }
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // async-stripe's Debug would print the secret key.
        f.debug_struct("StripeClient").finish_non_exhaustive()
    }
}
