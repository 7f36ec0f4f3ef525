//! Payments: outcomes, money captured and released per currency, and how close each capture
//! came to its hold (the auto-stop margin).

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

/// Payment outcomes, by `outcome` (`authorized`, `expired`, `canceled`, `captured`).
pub const OUTCOMES: &str = "chargelink_payments_total";
/// Captured money, minor units, by `currency` (lower-case ISO 4217, as the API writes it).
pub const CAPTURED: &str = "chargelink_captured_minor_units_total";
/// Released money (hold not captured), minor units, by `currency`.
pub const RELEASED: &str = "chargelink_released_minor_units_total";
/// Captured / hold per captured session.
pub const CAPTURE_HOLD_RATIO: &str = "chargelink_capture_hold_ratio";
/// Priced energy above the hold (given away), minor units, by `currency`.
pub const OVERRUN: &str = "chargelink_hold_overrun_minor_units_total";

pub(crate) fn describe() {
    describe_counter!(OUTCOMES, "Payment outcomes, by outcome");
    describe_counter!(CAPTURED, "Captured amounts, minor units, by currency");
    describe_counter!(
        RELEASED,
        "Released hold (not captured), minor units, by currency"
    );
    describe_histogram!(
        CAPTURE_HOLD_RATIO,
        Unit::Count,
        "Captured amount / hold of each captured session: how close auto-stop came to the hold"
    );
    describe_counter!(
        OVERRUN,
        "Priced cost above the hold (not charged), minor units, by currency"
    );
}

/// A payment reached `outcome`.
pub fn outcome(outcome: &'static str) {
    counter!(OUTCOMES, "outcome" => outcome).increment(1);
}

/// `captured` of a `hold` captured, the rest released; `overrun` priced above the hold.
pub fn captured(currency: String, captured: i64, hold: i64, overrun: i64) {
    let unsigned = |v: i64| u64::try_from(v.max(0)).unwrap_or(0);
    counter!(CAPTURED, "currency" => currency.clone()).increment(unsigned(captured));
    counter!(RELEASED, "currency" => currency.clone()).increment(unsigned(hold - captured));
    if overrun > 0 {
        counter!(OVERRUN, "currency" => currency).increment(unsigned(overrun));
    }
    if hold > 0 {
        // Minor units of one session are far below 2^53: exact in f64.
        #[allow(clippy::cast_precision_loss)]
        histogram!(CAPTURE_HOLD_RATIO).record(captured as f64 / hold as f64);
    }
}

/// A whole hold released without a capture.
pub fn released(currency: String, hold: i64) {
    counter!(RELEASED, "currency" => currency).increment(u64::try_from(hold.max(0)).unwrap_or(0));
}
