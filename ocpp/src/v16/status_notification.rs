//! `StatusNotification` (station → central system): a connector's status changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;
use super::types::ChargePointStatus;

action!(
    /// StatusNotification.
    StatusNotification, StatusNotificationRequest => StatusNotificationResponse
);

/// StatusNotification.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusNotificationRequest {
    /// Connector (0 = the whole station).
    pub connector_id: u32,
    /// `NoError`, `GroundFailure`, ... (kept as text).
    pub error_code: String,
    /// The new status.
    pub status: ChargePointStatus,
    /// When (station clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// Vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
    /// Vendor error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_error_code: Option<String>,
}

/// StatusNotification.conf (empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StatusNotificationResponse {}
