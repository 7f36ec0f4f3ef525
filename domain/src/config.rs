//! The durations and limits that drive a session. Every one comes from configuration (the
//! organization's settings, then the deployment's), so tests can run a session in seconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// chargelink's public base URL when `CHARGELINK_PUBLIC_URL` is not set: the API's default
/// address (payment return pages and receipts are served there).
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Timings of one session, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTimings {
    /// How long the driver has to pay (spec default: 5 minutes).
    pub payment_expiry: Duration,
    /// From authorization to a started transaction, plugging in included (spec default: 5 minutes).
    pub start_window: Duration,
    /// After an accepted RemoteStart, how long to wait for StartTransaction before trying again.
    pub start_attempt_timeout: Duration,
    /// First pause between start attempts; doubles up to `start_retry_max`.
    pub start_retry_initial: Duration,
    /// Longest pause between start attempts.
    pub start_retry_max: Duration,
    /// The station's meter value interval; the cost is re-checked at least this often.
    pub meter_interval: Duration,
    /// How long a station takes to act on a stop (eDRV measures ~30 s).
    pub stop_latency: Duration,
    /// After a RemoteStop, how long to wait for StopTransaction before sending it again.
    pub stop_confirm_timeout: Duration,
    /// RemoteStop attempts before the session is ended on its last meter values.
    pub stop_attempts: u32,
    /// How long a connector may stay Faulted or Unavailable during a transaction before the
    /// session is ended on the meter values from before the fault. Absent in sessions created
    /// before it existed: the default applies.
    #[serde(default = "default_fault_grace")]
    pub fault_grace: Duration,
    /// History events after which a charging session continues as a new run (see the
    /// workflow's continue-as-new); well below Temporal's 10,240-event warning.
    #[serde(default = "default_history_limit")]
    pub history_limit: u32,
}

/// 2,000 (about 500 meter values: 80 minutes at a 10 s interval). Far below Temporal's
/// warning at 10,240 events and its 10,000 signals per run, and small enough that the run's
/// replay, which a continue-as-new costs when signals arrive during it, takes milliseconds.
fn default_history_limit() -> u32 {
    2_000
}

fn default_fault_grace() -> Duration {
    Duration::from_secs(5 * 60)
}

impl Default for SessionTimings {
    fn default() -> Self {
        Self {
            payment_expiry: Duration::from_secs(5 * 60),
            start_window: Duration::from_secs(5 * 60),
            start_attempt_timeout: Duration::from_secs(90),
            start_retry_initial: Duration::from_secs(5),
            start_retry_max: Duration::from_secs(30),
            meter_interval: Duration::from_secs(60),
            stop_latency: Duration::from_secs(30),
            stop_confirm_timeout: Duration::from_secs(120),
            stop_attempts: 5,
            fault_grace: default_fault_grace(),
            history_limit: default_history_limit(),
        }
    }
}

impl SessionTimings {
    /// How far ahead the cost is projected when deciding to stop before the hold is passed:
    /// a meter interval (the next sample may come that late) plus the station's stop latency.
    pub fn stop_horizon(&self) -> Duration {
        self.meter_interval + self.stop_latency
    }
}
