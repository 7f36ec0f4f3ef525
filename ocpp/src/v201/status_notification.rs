//! `StatusNotification` (station → CSMS): a connector of an EVSE changed status. In 2.0.1 the
//! status says only whether the connector is free; whether energy flows comes with
//! TransactionEvent's `chargingState`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// StatusNotification.
    StatusNotification, StatusNotificationRequest => StatusNotificationResponse
);

/// `ConnectorStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnectorStatus {
    /// Free.
    Available,
    /// A cable is plugged in (or the connector is otherwise in use).
    Occupied,
    /// Reserved.
    Reserved,
    /// Out of service.
    Unavailable,
    /// In error.
    Faulted,
}

/// StatusNotificationRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusNotificationRequest {
    /// When (station clock).
    pub timestamp: DateTime<Utc>,
    /// The new status.
    pub connector_status: ConnectorStatus,
    /// The EVSE.
    pub evse_id: u32,
    /// The connector of the EVSE.
    pub connector_id: u32,
}

/// StatusNotificationResponse (empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StatusNotificationResponse {}
