//! `SetChargingProfile` (central system → station): chargelink's pause is a TxProfile with a
//! single period of limit 0 for the transaction (OCPP 1.6 §5.16); resume clears it by id.

use serde::{Deserialize, Serialize};

use super::action;
use super::types::{
    ChargingProfile, ChargingProfileKind, ChargingProfilePurpose, ChargingRateUnit,
    ChargingSchedule, ChargingSchedulePeriod,
};

action!(
    /// SetChargingProfile.
    SetChargingProfile, SetChargingProfileRequest => SetChargingProfileResponse
);

/// Pause profiles have the id `PAUSE_PROFILE_BASE + transaction id`, so resume can clear exactly
/// the profile it set and a repeated pause replaces it.
pub const PAUSE_PROFILE_BASE: i32 = 100;
/// Stack level of the pause profile.
pub const PAUSE_STACK_LEVEL: i32 = 1;

/// SetChargingProfile.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetChargingProfileRequest {
    /// Connector (> 0 for a TxProfile).
    pub connector_id: u32,
    /// The profile.
    pub cs_charging_profiles: ChargingProfile,
}

/// `ChargingProfileStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingProfileStatus {
    /// Applied.
    Accepted,
    /// Refused.
    Rejected,
    /// Smart charging not supported.
    NotSupported,
}

/// SetChargingProfile.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetChargingProfileResponse {
    /// The outcome.
    pub status: ChargingProfileStatus,
}

/// The id of the pause profile of `transaction_id`; `None` if it would overflow.
pub fn pause_profile_id(transaction_id: i32) -> Option<i32> {
    PAUSE_PROFILE_BASE.checked_add(transaction_id)
}

/// The pause: a TxProfile for the transaction holding the current at 0 A from its start.
pub fn pause(connector_id: u32, transaction_id: i32, profile_id: i32) -> SetChargingProfileRequest {
    SetChargingProfileRequest {
        connector_id,
        cs_charging_profiles: ChargingProfile {
            charging_profile_id: profile_id,
            transaction_id: Some(transaction_id),
            stack_level: PAUSE_STACK_LEVEL,
            charging_profile_purpose: ChargingProfilePurpose::TxProfile,
            charging_profile_kind: ChargingProfileKind::Relative,
            recurrency_kind: None,
            valid_from: None,
            valid_to: None,
            charging_schedule: ChargingSchedule {
                duration: None,
                start_schedule: None,
                charging_rate_unit: ChargingRateUnit::A,
                charging_schedule_period: vec![ChargingSchedulePeriod {
                    start_period: 0,
                    limit: 0.0,
                    number_phases: None,
                }],
                min_charging_rate: None,
            },
        },
    }
}
