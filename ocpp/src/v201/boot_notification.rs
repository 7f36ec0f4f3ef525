//! `BootNotification` (station → CSMS): the station introduces itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;
use super::types::CiString;

action!(
    /// BootNotification.
    BootNotification, BootNotificationRequest => BootNotificationResponse
);

/// `ChargingStationType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingStation {
    /// Model.
    pub model: CiString<20>,
    /// Vendor.
    pub vendor_name: CiString<50>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<CiString<25>>,
    /// Firmware version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<CiString<50>>,
    /// Modem (ICCID, IMSI), kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modem: Option<serde_json::Value>,
}

/// BootNotificationRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootNotificationRequest {
    /// The station.
    pub charging_station: ChargingStation,
    /// `PowerUp`, `RemoteReset`, ... (kept as text).
    pub reason: String,
}

/// `RegistrationStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistrationStatus {
    /// Registered.
    Accepted,
    /// Not yet.
    Pending,
    /// Not allowed.
    Rejected,
}

/// BootNotificationResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootNotificationResponse {
    /// The CSMS's clock.
    pub current_time: DateTime<Utc>,
    /// Heartbeat interval (Accepted) or retry interval, seconds.
    pub interval: i32,
    /// The verdict.
    pub status: RegistrationStatus,
}
