//! `ClearChargingProfile` (central system → station): remove charging profiles; chargelink's
//! resume clears the pause profile by id.

use serde::{Deserialize, Serialize};

use super::action;
use super::types::ChargingProfilePurpose;

action!(
    /// ClearChargingProfile.
    ClearChargingProfile, ClearChargingProfileRequest => ClearChargingProfileResponse
);

/// ClearChargingProfile.req: every field is a filter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearChargingProfileRequest {
    /// Profile id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// Connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<i32>,
    /// Purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_profile_purpose: Option<ChargingProfilePurpose>,
    /// Stack level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_level: Option<i32>,
}

/// `ClearChargingProfileStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClearChargingProfileStatus {
    /// Cleared.
    Accepted,
    /// No matching profile.
    Unknown,
}

/// ClearChargingProfile.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearChargingProfileResponse {
    /// The outcome.
    pub status: ClearChargingProfileStatus,
}
