//! `MeterValues` (station → central system): sampled energy and power of a connector, and how
//! they become the session's [`MeterSample`]s.

use domain::pricing::MeterSample;
use serde::{Deserialize, Serialize};

use super::action;
use super::types::{MeterValue, SampledValue};
use crate::metering::{self, Reading, to_base_unit};

action!(
    /// MeterValues.
    MeterValues, MeterValuesRequest => MeterValuesResponse
);

/// MeterValues.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeterValuesRequest {
    /// Connector (0 = the whole station).
    pub connector_id: u32,
    /// The transaction the values belong to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<i32>,
    /// The values, each with its station timestamp.
    pub meter_value: Vec<MeterValue>,
}

/// MeterValues.conf (empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MeterValuesResponse {}

/// Converts meter values to samples: the energy register in Wh (from Wh or kWh) and the power in
/// W (from W or kW), keeping the station's timestamps. Values measured at the EV, values of
/// single phases when a total exists, and meter values without an energy register are skipped:
/// a sample is only useful for pricing with the register.
pub fn samples(values: &[MeterValue]) -> Vec<MeterSample> {
    metering::samples(
        values
            .iter()
            .map(|mv| (mv.timestamp, mv.sampled_value.as_slice())),
    )
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
    fn signed(&self) -> bool {
        self.format.as_deref() == Some("SignedData")
    }
    /// OCPP 1.6 sends numbers as text.
    fn base_value(&self) -> Option<i64> {
        let number: f64 = self.value.trim().parse().ok()?;
        to_base_unit(number, self.unit.as_deref(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v16::types::{ENERGY_REGISTER, POWER_IMPORT};
    use chrono::{DateTime, Utc};

    fn value(v: &str, measurand: Option<&str>, unit: Option<&str>) -> SampledValue {
        SampledValue {
            value: v.into(),
            context: None,
            format: None,
            measurand: measurand.map(Into::into),
            phase: None,
            location: None,
            unit: unit.map(Into::into),
        }
    }

    #[test]
    fn kwh_and_kw_are_converted_and_timestamps_kept() {
        let at: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let mv = MeterValue {
            timestamp: at,
            sampled_value: vec![
                value("12.5", Some(ENERGY_REGISTER), Some("kWh")),
                value("7.2", Some(POWER_IMPORT), Some("kW")),
            ],
        };
        assert_eq!(
            samples(&[mv]),
            vec![MeterSample::new(at, 12_500, Some(7_200))]
        );
    }

    #[test]
    fn absent_measurand_is_the_energy_register_in_wh() {
        let at: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let mv = MeterValue {
            timestamp: at,
            sampled_value: vec![value("1000", None, None)],
        };
        assert_eq!(samples(&[mv]), vec![MeterSample::new(at, 1000, None)]);
    }

    #[test]
    fn phases_are_summed_only_without_a_total_and_power_alone_is_no_sample() {
        let at: DateTime<Utc> = "2026-01-01T10:00:00Z".parse().unwrap();
        let mut l1 = value("100", Some(POWER_IMPORT), Some("W"));
        l1.phase = Some("L1".into());
        let mut l2 = l1.clone();
        l2.phase = Some("L2".into());
        let only_power = MeterValue {
            timestamp: at,
            sampled_value: vec![l1.clone()],
        };
        let with_energy = MeterValue {
            timestamp: at,
            sampled_value: vec![value("5", Some(ENERGY_REGISTER), None), l1, l2],
        };
        assert_eq!(
            samples(&[only_power, with_energy]),
            vec![MeterSample::new(at, 5, Some(200))]
        );
    }
}
