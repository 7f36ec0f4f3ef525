//! Sessions: created, every event (status changes), ends by reason, live sessions by status, and
//! how long a meter reading takes to reach its session workflow.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// Sessions created (their `session.created` event stored; once per session).
pub const CREATED: &str = "chargelink_sessions_created_total";
/// Session events stored, by `type` (`session.started`, ...): the status changes.
pub const EVENTS: &str = "chargelink_session_events_total";
/// Sessions ended, by `end_reason`.
pub const ENDED: &str = "chargelink_sessions_ended_total";
/// Sessions in the store by `status` (set at scrape time by the API).
pub const BY_STATUS: &str = "chargelink_sessions";
/// Seconds from a meter reading's timestamp to its session workflow holding it.
pub const METER_VALUE_TO_DECISION: &str = "chargelink_meter_value_to_decision_seconds";

pub(crate) fn describe() {
    describe_counter!(CREATED, "Sessions created");
    describe_counter!(EVENTS, "Session events stored (status changes), by type");
    describe_counter!(ENDED, "Sessions ended, by end reason");
    describe_gauge!(BY_STATUS, "Sessions in the store, by status");
    describe_histogram!(
        METER_VALUE_TO_DECISION,
        metrics::Unit::Seconds,
        "From a meter reading's timestamp at the station until its session workflow holds it \
         (the workflow decides on the task the signal starts)"
    );
    counter!(CREATED).absolute(0);
}

/// A newly stored session event of `kind`.
pub fn event(kind: &'static str) {
    counter!(EVENTS, "type" => kind).increment(1);
    if kind == "session.created" {
        counter!(CREATED).increment(1);
    }
}

/// A session ended with `reason`.
pub fn ended(reason: &'static str) {
    counter!(ENDED, "end_reason" => reason).increment(1);
}

/// The store holds `count` sessions in `status`.
pub fn by_status(status: String, count: u64) {
    // Counts of sessions fit f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    gauge!(BY_STATUS, "status" => status).set(count as f64);
}

/// A reading measured `age` ago reached its workflow.
pub fn meter_value_delivered(age: Duration) {
    histogram!(METER_VALUE_TO_DECISION).record(crate::secs(age));
}
