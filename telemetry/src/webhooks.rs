//! Customer webhook deliveries: attempts by result, failures, lag from event to delivery, and
//! endpoints disabled.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

/// Delivery attempts, by `result` (`delivered`, `failed`).
pub const ATTEMPTS: &str = "chargelink_webhook_delivery_attempts_total";
/// Failed delivery attempts.
pub const FAILURES: &str = "chargelink_webhook_delivery_failures_total";
/// Seconds from an event to its successful delivery.
pub const LAG: &str = "chargelink_webhook_delivery_lag_seconds";
/// Endpoints disabled after failing too often.
pub const DISABLED: &str = "chargelink_webhook_endpoints_disabled_total";

pub(crate) fn describe() {
    describe_counter!(ATTEMPTS, "Customer webhook delivery attempts, by result");
    describe_counter!(FAILURES, "Customer webhook deliveries that failed");
    describe_histogram!(
        LAG,
        Unit::Seconds,
        "From an event until its delivery succeeded (retries included)"
    );
    describe_counter!(
        DISABLED,
        "Webhook endpoints disabled after consecutive failures"
    );
    counter!(FAILURES).absolute(0);
    counter!(DISABLED).absolute(0);
}

/// An event delivered `lag` after it happened.
pub fn delivered(lag: Duration) {
    counter!(ATTEMPTS, "result" => "delivered").increment(1);
    histogram!(LAG).record(crate::secs(lag));
}

/// An attempt failed.
pub fn failed() {
    counter!(ATTEMPTS, "result" => "failed").increment(1);
    counter!(FAILURES).increment(1);
}

/// An endpoint was disabled.
pub fn endpoint_disabled() {
    counter!(DISABLED).increment(1);
}
