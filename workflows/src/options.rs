//! Activity options, set once per kind of activity: timeouts and retry policies live here and
//! nowhere else.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityOptions, LocalActivityOptions};

/// Failure type names activities use for business rejections that retrying cannot fix.
pub mod failure_types {
    /// The payment provider refused the request as invalid (bad amount, wrong state).
    pub const PAYMENT_REJECTED: &str = "PaymentRejected";
    /// The amount the provider reports differs from what was asked.
    pub const PAYMENT_MISMATCH: &str = "PaymentMismatch";
    /// The charge station is not connected to any gateway.
    pub const STATION_OFFLINE: &str = "ChargeStationOffline";
}

fn retry(initial: Duration, max: Duration, attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(initial)
        .backoff_coefficient(2.0)
        .maximum_interval(max)
        .maximum_attempts(attempts)
        .non_retryable_error_types([
            failure_types::PAYMENT_REJECTED,
            failure_types::PAYMENT_MISMATCH,
            failure_types::STATION_OFFLINE,
        ])
        .build()
}

/// Store writes: retried until they succeed; a session's state must never be lost.
pub fn store(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(
            Duration::from_millis(500),
            Duration::from_secs(30),
            0,
        ))
        .summary(summary)
        .build()
}

/// Store writes as a local activity: retried like [`store`] until they succeed. The worker runs
/// them inside the session's workflow task, so no activity task travels through the server
/// (each regular activity costs a schedule, a poll and a new workflow task).
pub fn store_local(summary: String) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(
            Duration::from_millis(500),
            Duration::from_secs(30),
            0,
        ))
        .summary(summary)
        .build()
}

/// Creating the payment page: bounded, the driver is waiting for the answer.
pub fn create_payment(summary: String) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(
        temporalio_sdk::ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: Duration::from_secs(60),
            start_to_close: Duration::from_secs(20),
        },
    )
    .retry_policy(retry(Duration::from_millis(500), Duration::from_secs(5), 0))
    .summary(summary)
    .build()
}

/// The longest an increment of the hold may take, retries included: the charging loop asks for
/// it at least this much (plus a margin) before the stop deadline, so a provider that does not
/// answer in time still leaves the stop on the old hold on time.
pub const INCREMENT_PAYMENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Raising the hold: bounded by `budget` (at most [`INCREMENT_PAYMENT_TIMEOUT`]), retried
/// within it (the same idempotency key on every attempt, so one increment at most).
pub fn increment_payment(summary: String, budget: Duration) -> ActivityOptions {
    let budget = budget.min(INCREMENT_PAYMENT_TIMEOUT);
    ActivityOptions::with_close_timeouts(
        temporalio_sdk::ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: budget,
            start_to_close: budget.min(Duration::from_secs(10)),
        },
    )
    .retry_policy(retry(Duration::from_millis(500), Duration::from_secs(2), 0))
    .summary(summary)
    .build()
}

/// Calls that settle money (capture, cancel, expire, retrieve): retried until they succeed,
/// safe because each carries an idempotency key.
pub fn settle_payment(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(Duration::from_secs(1), Duration::from_secs(60), 0))
        .summary(summary)
        .build()
}

/// Looking a station up in the registry.
pub fn locate(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(Duration::from_millis(500), Duration::from_secs(5), 3))
        .summary(summary)
        .build()
}

/// [`locate`] as a local activity: the registry is the store, which the session worker reaches.
pub fn locate_local(summary: String) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .schedule_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(Duration::from_millis(500), Duration::from_secs(5), 3))
        .summary(summary)
        .build()
}

/// How long a charger command may go without a heartbeat from its gateway.
pub const CHARGER_COMMAND_HEARTBEAT: Duration = Duration::from_secs(8);

/// A command to a station on its gateway's task queue. `attempts` is 1 where the workflow runs
/// its own attempts (RemoteStart within the start window).
pub fn charger_command(task_queue: String, summary: String, attempts: u32) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(45))
        // A gateway that died holds no socket: fail fast and locate the station again.
        .schedule_to_start_timeout(Duration::from_secs(20))
        // The gateway heartbeats while it waits for the station: one killed mid-command fails
        // the attempt within seconds, so the next one (or the next RemoteStart of the start
        // window) goes to the gateway that has the station now.
        .heartbeat_timeout(CHARGER_COMMAND_HEARTBEAT)
        .task_queue(task_queue)
        .retry_policy(retry(
            Duration::from_secs(1),
            Duration::from_secs(10),
            attempts,
        ))
        .summary(summary)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charger_command_on_a_dead_gateway_fails_within_the_start_window() {
        let options = charger_command("chargelink-gateway-gw1".into(), "remote start".into(), 1);
        assert_eq!(options.heartbeat_timeout, Some(CHARGER_COMMAND_HEARTBEAT));
        // The chaos run's start window is 20 s: an attempt lost with its gateway must fail in
        // time for another one (the gateway restarts in a few seconds).
        assert!(CHARGER_COMMAND_HEARTBEAT * 2 < Duration::from_secs(20));
    }
}
