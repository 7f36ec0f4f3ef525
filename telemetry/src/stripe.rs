//! Stripe: API calls by operation and result with their latency; webhooks received and
//! duplicates.

use std::future::Future;
use std::time::Instant;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use tracing::Instrument;

/// Stripe API calls, by `operation` and `result` (`ok`, `rejected`, `unavailable`).
pub const REQUESTS: &str = "chargelink_stripe_requests_total";
/// Stripe API call latency, by `operation`.
pub const DURATION: &str = "chargelink_stripe_request_duration_seconds";
/// Stripe webhooks received, by `type` and `outcome` (`signalled`, `duplicate`, `ignored`, ...).
pub const WEBHOOKS: &str = "chargelink_stripe_webhooks_received_total";
/// Stripe webhooks already handled (Stripe delivers at least once).
pub const DUPLICATES: &str = "chargelink_stripe_webhook_duplicates_total";

pub(crate) fn describe() {
    describe_counter!(REQUESTS, "Stripe API calls, by operation and result");
    describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Stripe API call latency, by operation"
    );
    describe_counter!(WEBHOOKS, "Stripe webhooks received, by type and outcome");
    describe_counter!(
        DUPLICATES,
        "Stripe webhooks received again (already handled)"
    );
    counter!(DUPLICATES).absolute(0);
}

/// Runs one Stripe call in a `stripe_request` span (`operation`, `result`), recording its
/// result (`classify` names it) and latency.
pub async fn timed<T, E>(
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
    classify: impl FnOnce(&E) -> &'static str,
) -> Result<T, E> {
    let span = tracing::info_span!(
        "stripe_request",
        otel.name = %format_args!("stripe {operation}"),
        otel.kind = "client",
        operation,
        result = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => classify(e),
    };
    span.record("result", label);
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    histogram!(DURATION, "operation" => operation).record(crate::secs(started.elapsed()));
    counter!(REQUESTS, "operation" => operation, "result" => label).increment(1);
    result
}

/// A webhook of `kind` was answered with `outcome`.
pub fn webhook(kind: String, outcome: &'static str) {
    counter!(WEBHOOKS, "type" => kind, "outcome" => outcome).increment(1);
    if outcome == "duplicate" {
        counter!(DUPLICATES).increment(1);
    }
}
