//! `TriggerMessage` (central system → station): ask the station to send a message now.

use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// TriggerMessage.
    TriggerMessage, TriggerMessageRequest => TriggerMessageResponse
);

/// `MessageTrigger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageTrigger {
    /// BootNotification.
    BootNotification,
    /// DiagnosticsStatusNotification.
    DiagnosticsStatusNotification,
    /// FirmwareStatusNotification.
    FirmwareStatusNotification,
    /// Heartbeat.
    Heartbeat,
    /// MeterValues.
    MeterValues,
    /// StatusNotification.
    StatusNotification,
}

/// TriggerMessage.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerMessageRequest {
    /// What to send.
    pub requested_message: MessageTrigger,
    /// For connector-specific messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<u32>,
}

/// `TriggerMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerMessageStatus {
    /// Will send.
    Accepted,
    /// Will not.
    Rejected,
    /// Unknown trigger.
    NotImplemented,
}

/// TriggerMessage.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerMessageResponse {
    /// The answer.
    pub status: TriggerMessageStatus,
}
