//! `TriggerMessage` (CSMS → station): ask the station to send a message now.

use serde::{Deserialize, Serialize};

use super::action;
use super::types::Evse;

action!(
    /// TriggerMessage.
    TriggerMessage, TriggerMessageRequest => TriggerMessageResponse
);

/// `MessageTriggerEnumType` (the ones chargelink asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageTrigger {
    /// BootNotification.
    BootNotification,
    /// Heartbeat.
    Heartbeat,
    /// MeterValues (outside transactions).
    MeterValues,
    /// StatusNotification.
    StatusNotification,
    /// TransactionEvent (Updated, with the transaction's current meter values).
    TransactionEvent,
}

/// TriggerMessageRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerMessageRequest {
    /// What to send.
    pub requested_message: MessageTrigger,
    /// For EVSE-specific messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evse: Option<Evse>,
}

/// `TriggerMessageStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerMessageStatus {
    /// Will send.
    Accepted,
    /// Will not.
    Rejected,
    /// Unknown trigger.
    NotImplemented,
}

/// TriggerMessageResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerMessageResponse {
    /// The answer.
    pub status: TriggerMessageStatus,
}
