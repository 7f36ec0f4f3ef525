//! `SetChargingProfile` (CSMS → station): chargelink's pause is a TxProfile with a single
//! period of limit 0 for the transaction, as in 1.6; resume clears it by id.

use serde::{Deserialize, Serialize};

use super::action;
use super::types::{
    ChargingProfile, ChargingProfileKind, ChargingProfilePurpose, ChargingRateUnit,
    ChargingSchedule, ChargingSchedulePeriod,
};
pub use crate::v16::set_charging_profile::{PAUSE_STACK_LEVEL, pause_profile_id};

action!(
    /// SetChargingProfile.
    SetChargingProfile, SetChargingProfileRequest => SetChargingProfileResponse
);

/// SetChargingProfileRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetChargingProfileRequest {
    /// The EVSE (> 0 for a TxProfile).
    pub evse_id: u32,
    /// The profile.
    pub charging_profile: ChargingProfile,
}

/// `ChargingProfileStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingProfileStatus {
    /// Applied.
    Accepted,
    /// Refused.
    Rejected,
}

/// SetChargingProfileResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetChargingProfileResponse {
    /// The outcome.
    pub status: ChargingProfileStatus,
}

/// The pause: a TxProfile for the station's transaction holding the current at 0 A from its
/// start. `profile_id` is [`pause_profile_id`] of chargelink's transaction number.
pub fn pause(evse_id: u32, transaction_id: &str, profile_id: i32) -> SetChargingProfileRequest {
    SetChargingProfileRequest {
        evse_id,
        charging_profile: ChargingProfile {
            id: profile_id,
            stack_level: PAUSE_STACK_LEVEL,
            charging_profile_purpose: ChargingProfilePurpose::TxProfile,
            charging_profile_kind: ChargingProfileKind::Relative,
            recurrency_kind: None,
            valid_from: None,
            valid_to: None,
            transaction_id: Some(transaction_id.to_owned()),
            charging_schedule: vec![ChargingSchedule {
                id: 1,
                start_schedule: None,
                duration: None,
                charging_rate_unit: ChargingRateUnit::A,
                charging_schedule_period: vec![ChargingSchedulePeriod {
                    start_period: 0,
                    limit: 0.0,
                    number_phases: None,
                }],
                min_charging_rate: None,
            }],
        },
    }
}
