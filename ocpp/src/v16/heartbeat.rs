//! `Heartbeat` (station → central system): alive; answered with the central system's clock.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// Heartbeat.
    Heartbeat, HeartbeatRequest => HeartbeatResponse
);

/// Heartbeat.req (empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HeartbeatRequest {}

/// Heartbeat.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// The central system's clock.
    pub current_time: DateTime<Utc>,
}
