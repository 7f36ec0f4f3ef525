//! `ClearChargingProfile` (CSMS → station): remove charging profiles; chargelink's resume
//! clears the pause profile by id.

use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// ClearChargingProfile.
    ClearChargingProfile, ClearChargingProfileRequest => ClearChargingProfileResponse
);

/// ClearChargingProfileRequest: the profile id, or criteria (not used by chargelink, kept as
/// sent).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearChargingProfileRequest {
    /// Profile id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_profile_id: Option<i32>,
    /// Criteria: EVSE, purpose, stack level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_profile_criteria: Option<serde_json::Value>,
}

/// `ClearChargingProfileStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClearChargingProfileStatus {
    /// Cleared.
    Accepted,
    /// No matching profile.
    Unknown,
}

/// ClearChargingProfileResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearChargingProfileResponse {
    /// The outcome.
    pub status: ClearChargingProfileStatus,
}
