//! `Heartbeat` (station → CSMS): alive; answered with the CSMS's clock.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// Heartbeat.
    Heartbeat, HeartbeatRequest => HeartbeatResponse
);

/// HeartbeatRequest (empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HeartbeatRequest {}

/// HeartbeatResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// The CSMS's clock.
    pub current_time: DateTime<Utc>,
}
