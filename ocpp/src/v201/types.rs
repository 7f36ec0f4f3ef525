//! Types shared by several OCPP 2.0.1 messages (OCPP 2.0.1 part 2, §2 datatypes, §3
//! enumerations).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::metering::{Reading, to_base_unit};
pub use crate::v16::types::CiString;

/// `IdTokenType`: the token and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdToken {
    /// The token (at most 36 characters).
    pub id_token: CiString<36>,
    /// `Central`, `ISO14443`, `eMAID`, ... (kept as text).
    #[serde(rename = "type")]
    pub kind: String,
}

/// The kind of the tokens chargelink issues for its sessions.
pub const CENTRAL: &str = "Central";

impl IdToken {
    /// A `Central` token (chargelink's sessions); `None` when longer than 36.
    pub fn central(token: &str) -> Option<Self> {
        Some(Self {
            id_token: CiString::new(token)?,
            kind: CENTRAL.to_owned(),
        })
    }
}

/// `AuthorizationStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizationStatus {
    /// Allowed.
    Accepted,
    /// Blocked.
    Blocked,
    /// Already in another transaction.
    ConcurrentTx,
    /// Expired.
    Expired,
    /// Not allowed.
    Invalid,
    /// No credit.
    NoCredit,
    /// Not for this EVSE type.
    NotAllowedTypeEVSE,
    /// Not here.
    NotAtThisLocation,
    /// Not now.
    NotAtThisTime,
    /// Unknown token.
    Unknown,
}

/// `IdTokenInfoType`: the CSMS's verdict on a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdTokenInfo {
    /// The verdict.
    pub status: AuthorizationStatus,
}

/// `EVSEType`: an EVSE and, optionally, one of its connectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evse {
    /// EVSE number (> 0).
    pub id: u32,
    /// Connector of the EVSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<u32>,
}

/// One metered value set at a point in time (`MeterValueType`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterValue {
    /// When it was measured (station clock).
    pub timestamp: DateTime<Utc>,
    /// The values.
    pub sampled_value: Vec<SampledValue>,
}

/// `UnitOfMeasureType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitOfMeasure {
    /// Absent means `Wh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Power of ten the value is multiplied by; absent means 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<i32>,
}

/// One sampled value (`SampledValueType`). Unlike 1.6 the value is a JSON number; the
/// enumerations are kept as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampledValue {
    /// The value. A float is exact for any register a meter shows (up to 2^53 Wh); it is
    /// rounded to whole Wh or W before it meets money.
    pub value: f64,
    /// `Sample.Periodic`, `Transaction.Begin`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Absent means `Energy.Active.Import.Register`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurand: Option<String>,
    /// `L1`, `L1-N`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `Outlet` (default), `Inlet`, `Body`, `Cable`, `EV`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Signed meter data, when the station signs; kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_meter_value: Option<serde_json::Value>,
    /// Unit and multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_of_measure: Option<UnitOfMeasure>,
}

impl Reading for SampledValue {
    fn measurand(&self) -> Option<&str> {
        self.measurand.as_deref()
    }
    fn phase(&self) -> Option<&str> {
        self.phase.as_deref()
    }
    fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
    /// In 2.0.1 the value is always the raw number; a signature rides along beside it.
    fn signed(&self) -> bool {
        false
    }
    fn base_value(&self) -> Option<i64> {
        let unit = self.unit_of_measure.as_ref();
        to_base_unit(
            self.value,
            unit.and_then(|u| u.unit.as_deref()),
            unit.and_then(|u| u.multiplier).unwrap_or(0),
        )
    }
}

/// Converts meter values to the session's samples (energy register and power), keeping the
/// station's timestamps.
pub fn samples(values: &[MeterValue]) -> Vec<domain::pricing::MeterSample> {
    crate::metering::samples(
        values
            .iter()
            .map(|mv| (mv.timestamp, mv.sampled_value.as_slice())),
    )
}

/// `ComponentType` (only the name: chargelink sets controller variables of the station).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// E.g. `SampledDataCtrlr`.
    pub name: String,
}

/// `VariableType` (only the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    /// E.g. `TxUpdatedInterval`.
    pub name: String,
}

/// `ChargingRateUnitEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingRateUnit {
    /// Watts.
    W,
    /// Amperes.
    A,
}

/// `ChargingProfilePurposeEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingProfilePurpose {
    /// Limits of the whole station.
    ChargingStationMaxProfile,
    /// Limits set outside the CSMS.
    ChargingStationExternalConstraints,
    /// Default for new transactions.
    TxDefaultProfile,
    /// For one transaction.
    TxProfile,
}

/// `ChargingProfileKindEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingProfileKind {
    /// Periods relative to `startSchedule`.
    Absolute,
    /// Repeats.
    Recurring,
    /// Periods relative to the start of the transaction.
    Relative,
}

/// `ChargingSchedulePeriodType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingSchedulePeriod {
    /// Seconds from the schedule's start.
    pub start_period: i32,
    /// Limit in the schedule's unit.
    pub limit: f64,
    /// Phases, when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_phases: Option<i32>,
}

/// `ChargingScheduleType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingSchedule {
    /// Id of the schedule within the profile.
    pub id: i32,
    /// Absolute start, for `Absolute` profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_schedule: Option<DateTime<Utc>>,
    /// Seconds; absent means "until the transaction ends".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i32>,
    /// Unit of the limits.
    pub charging_rate_unit: ChargingRateUnit,
    /// The periods.
    pub charging_schedule_period: Vec<ChargingSchedulePeriod>,
    /// Minimum rate the EV supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_charging_rate: Option<f64>,
}

/// `ChargingProfileType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingProfile {
    /// Id; a profile with the same id replaces the old one.
    pub id: i32,
    /// Priority among profiles of the same purpose.
    pub stack_level: i32,
    /// Purpose.
    pub charging_profile_purpose: ChargingProfilePurpose,
    /// Kind.
    pub charging_profile_kind: ChargingProfileKind,
    /// For `Recurring`: `Daily` or `Weekly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrency_kind: Option<String>,
    /// Valid from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
    /// The transaction (the station's id), for `TxProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// One to three schedules.
    pub charging_schedule: Vec<ChargingSchedule>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::pricing::MeterSample;

    #[test]
    fn numbers_units_and_multipliers_become_wh_and_w() {
        let at: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let json = serde_json::json!({
            "timestamp": "2026-01-01T10:00:00Z",
            "sampledValue": [
                {"value": 12.5, "measurand": "Energy.Active.Import.Register",
                 "unitOfMeasure": {"unit": "kWh"}},
                {"value": 72, "measurand": "Power.Active.Import",
                 "unitOfMeasure": {"unit": "W", "multiplier": 2}},
                {"value": 21.5, "measurand": "Temperature", "context": "Vendor.Special",
                 "unitOfMeasure": {"unit": "Celsius"}}
            ]
        });
        let mv: MeterValue = serde_json::from_value(json).unwrap();
        assert_eq!(
            samples(&[mv]),
            vec![MeterSample::new(at, 12_500, Some(7_200))]
        );
    }

    #[test]
    fn a_value_at_the_ev_is_no_register() {
        let mv: MeterValue = serde_json::from_value(serde_json::json!({
            "timestamp": "2026-01-01T10:00:00Z",
            "sampledValue": [{"value": 500, "location": "EV"}]
        }))
        .unwrap();
        assert!(samples(&[mv]).is_empty());
    }
}
