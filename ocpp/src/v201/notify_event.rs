//! `NotifyEvent` (station → CSMS): monitoring events of the station's device model.
//! Acknowledged and logged; chargelink acts on none of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// NotifyEvent.
    NotifyEvent, NotifyEventRequest => NotifyEventResponse
);

/// NotifyEventRequest. The event data are kept as sent (they are only logged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyEventRequest {
    /// When the station generated the message.
    pub generated_at: DateTime<Utc>,
    /// More parts follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tbc: Option<bool>,
    /// Part number.
    pub seq_no: i64,
    /// The events.
    pub event_data: Vec<serde_json::Value>,
}

/// NotifyEventResponse (empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NotifyEventResponse {}
