//! Types shared by several OCPP 1.6 messages (OCPP 1.6 edition 2, §7).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// A case-insensitive string of at most `N` characters (`CiString20Type`, ...). A longer value
/// is refused while decoding, which the frame layer answers with `PropertyConstraintViolation`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CiString<const N: usize>(String);

impl<const N: usize> CiString<N> {
    /// Checks the length; `None` when longer than `N`.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (value.chars().count() <= N).then_some(Self(value))
    }

    /// The first `N` characters of `value`.
    pub fn truncated(value: &str) -> Self {
        Self(value.chars().take(N).collect())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Display for CiString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for CiString<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let len = s.chars().count();
        if len > N {
            return Err(serde::de::Error::invalid_length(
                len,
                &format!("at most {N} characters").as_str(),
            ));
        }
        Ok(Self(s))
    }
}

/// `IdToken`: at most 20 characters.
pub type IdToken = CiString<20>;

/// Status in `IdTagInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizationStatus {
    /// Allowed.
    Accepted,
    /// Blocked.
    Blocked,
    /// Expired.
    Expired,
    /// Unknown or not allowed.
    Invalid,
    /// Already in another transaction.
    ConcurrentTx,
}

/// The central system's verdict on an id tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdTagInfo {
    /// The verdict.
    pub status: AuthorizationStatus,
    /// Cache expiry, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_date: Option<DateTime<Utc>>,
    /// Group id tag, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id_tag: Option<IdToken>,
}

impl IdTagInfo {
    /// Just a status.
    pub fn status(status: AuthorizationStatus) -> Self {
        Self {
            status,
            expiry_date: None,
            parent_id_tag: None,
        }
    }
}

/// `ChargePointStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChargePointStatus {
    /// Free.
    Available,
    /// Plugged in or authorized, not yet charging.
    Preparing,
    /// Energy flows.
    Charging,
    /// The EV does not take energy.
    SuspendedEV,
    /// The EVSE offers no energy (e.g. a charging profile with limit 0).
    SuspendedEVSE,
    /// Transaction stopped, cable not yet removed.
    Finishing,
    /// Reserved.
    Reserved,
    /// Out of service.
    Unavailable,
    /// In error.
    Faulted,
}

impl ChargePointStatus {
    /// The status as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "Available",
            Self::Preparing => "Preparing",
            Self::Charging => "Charging",
            Self::SuspendedEV => "SuspendedEV",
            Self::SuspendedEVSE => "SuspendedEVSE",
            Self::Finishing => "Finishing",
            Self::Reserved => "Reserved",
            Self::Unavailable => "Unavailable",
            Self::Faulted => "Faulted",
        }
    }

    /// Reads a wire status.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// One metered value set at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterValue {
    /// When it was measured (station clock).
    pub timestamp: DateTime<Utc>,
    /// The values.
    pub sampled_value: Vec<SampledValue>,
}

/// One sampled value. The enumerations are kept as text: stations send vendor values, and a
/// value we do not use must not make the whole message fail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampledValue {
    /// The value, as text (OCPP 1.6 sends numbers as strings).
    pub value: String,
    /// `Sample.Periodic`, `Transaction.Begin`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `Raw` or `SignedData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Absent means `Energy.Active.Import.Register`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurand: Option<String>,
    /// `L1`, `L1-N`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `Outlet` (default), `Inlet`, `Body`, `Cable`, `EV`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Absent means `Wh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

pub use crate::metering::{ENERGY_REGISTER, POWER_IMPORT};

/// `ChargingProfilePurposeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingProfilePurpose {
    /// Limits of the whole station.
    ChargePointMaxProfile,
    /// Default for new transactions.
    TxDefaultProfile,
    /// For one transaction.
    TxProfile,
}

/// `ChargingProfileKindType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingProfileKind {
    /// Periods relative to `startSchedule`.
    Absolute,
    /// Repeats.
    Recurring,
    /// Periods relative to the start of the transaction.
    Relative,
}

/// `ChargingRateUnitType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargingRateUnit {
    /// Watts.
    W,
    /// Amperes.
    A,
}

/// One period of a charging schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingSchedulePeriod {
    /// Seconds from the schedule's start.
    pub start_period: i32,
    /// Limit in the schedule's unit (one decimal).
    pub limit: f64,
    /// Phases, when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_phases: Option<i32>,
}

/// A charging schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingSchedule {
    /// Seconds; absent means "until the transaction ends".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i32>,
    /// Absolute start, for `Absolute` profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_schedule: Option<DateTime<Utc>>,
    /// Unit of the limits.
    pub charging_rate_unit: ChargingRateUnit,
    /// The periods.
    pub charging_schedule_period: Vec<ChargingSchedulePeriod>,
    /// Minimum rate the EV supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_charging_rate: Option<f64>,
}

/// `ChargingProfile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargingProfile {
    /// Id; a profile with the same id replaces the old one.
    pub charging_profile_id: i32,
    /// The transaction, for `TxProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<i32>,
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
    /// The schedule.
    pub charging_schedule: ChargingSchedule,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_tokens_longer_than_20_are_refused() {
        assert!(serde_json::from_str::<IdToken>("\"ABCDEFGHIJKLMNOPQRST\"").is_ok());
        let e = serde_json::from_str::<IdToken>("\"ABCDEFGHIJKLMNOPQRSTU\"").unwrap_err();
        assert!(e.to_string().starts_with("invalid length"), "{e}");
    }

    #[test]
    fn statuses_parse_by_wire_name() {
        assert_eq!(
            ChargePointStatus::parse("SuspendedEVSE"),
            Some(ChargePointStatus::SuspendedEVSE)
        );
        assert_eq!(ChargePointStatus::parse("Sleeping"), None);
    }
}
