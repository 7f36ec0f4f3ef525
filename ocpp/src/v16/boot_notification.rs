//! `BootNotification` (station → central system): the station introduces itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;
use super::types::CiString;

action!(
    /// BootNotification.
    BootNotification, BootNotificationRequest => BootNotificationResponse
);

/// BootNotification.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootNotificationRequest {
    /// Vendor.
    pub charge_point_vendor: CiString<20>,
    /// Model.
    pub charge_point_model: CiString<20>,
    /// Serial number of the charge point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_point_serial_number: Option<CiString<25>>,
    /// Serial number of the charge box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_box_serial_number: Option<CiString<25>>,
    /// Firmware version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<CiString<50>>,
    /// SIM ICCID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<CiString<20>>,
    /// SIM IMSI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imsi: Option<CiString<20>>,
    /// Meter type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_type: Option<CiString<25>>,
    /// Meter serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_serial_number: Option<CiString<25>>,
}

/// `RegistrationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistrationStatus {
    /// Registered.
    Accepted,
    /// Not yet; the central system will configure the station first.
    Pending,
    /// Not allowed.
    Rejected,
}

/// BootNotification.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootNotificationResponse {
    /// The verdict.
    pub status: RegistrationStatus,
    /// The central system's clock.
    pub current_time: DateTime<Utc>,
    /// Heartbeat interval (Accepted) or retry interval, seconds.
    pub interval: i32,
}
