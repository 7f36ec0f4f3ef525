//! `MeterValues` (station → central system): sampled energy and power of a connector, and how
//! they become the session's [`MeterSample`]s.

use chrono::{DateTime, Utc};
use domain::pricing::MeterSample;
use serde::{Deserialize, Serialize};

use super::action;
use super::types::{ENERGY_REGISTER, MeterValue, POWER_IMPORT, SampledValue};

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
    values
        .iter()
        .filter_map(|mv| sample(mv.timestamp, &mv.sampled_value))
        .collect()
}

fn sample(at: DateTime<Utc>, values: &[SampledValue]) -> Option<MeterSample> {
    let energy = pick(values, ENERGY_REGISTER, true)?;
    let power = pick(values, POWER_IMPORT, false);
    Some(MeterSample::new(at, energy, power))
}

/// The value of `measurand` in Wh or W: the total when the station sends one, else the sum of
/// its phases.
fn pick(values: &[SampledValue], measurand: &str, is_default: bool) -> Option<i64> {
    let matching = values.iter().filter(|v| {
        let m = v.measurand.as_deref();
        let ours = m == Some(measurand) || (m.is_none() && is_default);
        let at_outlet = !matches!(v.location.as_deref(), Some("EV"));
        let raw = !matches!(v.format.as_deref(), Some("SignedData"));
        ours && at_outlet && raw
    });
    let (totals, phases): (Vec<&SampledValue>, Vec<&SampledValue>) =
        matching.partition(|v| v.phase.is_none());
    if let Some(total) = totals.first() {
        return to_base_unit(total);
    }
    let per_phase: Option<Vec<i64>> = phases
        .iter()
        .filter(|v| !v.phase.as_deref().is_some_and(|p| p.contains('-')))
        .map(|v| to_base_unit(v))
        .collect();
    per_phase.filter(|p| !p.is_empty()).map(|p| p.iter().sum())
}

/// Wh or W, rounded; `None` for a value that is not a number or a unit we do not price.
fn to_base_unit(v: &SampledValue) -> Option<i64> {
    let number: f64 = v.value.trim().parse().ok()?;
    let factor = match v.unit.as_deref() {
        None | Some("Wh") | Some("W") => 1.0,
        Some("kWh") | Some("kW") => 1000.0,
        Some(_) => return None,
    };
    let scaled = (number * factor).round();
    // f64 → i64 saturates; a register beyond 9.2e18 Wh is not a real reading.
    scaled.is_finite().then_some(scaled as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

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
