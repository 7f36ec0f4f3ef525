//! How sampled values of any OCPP version become the session's [`MeterSample`]s: the energy
//! register in Wh and the power in W, the total when a station sends one, else the sum of its
//! phases; values measured at the EV or signed are skipped.

use chrono::{DateTime, Utc};
use domain::pricing::MeterSample;

/// The measurand of the energy register.
pub const ENERGY_REGISTER: &str = "Energy.Active.Import.Register";
/// The measurand of the active power.
pub const POWER_IMPORT: &str = "Power.Active.Import";

/// One sampled value as a version's wire type carries it.
pub(crate) trait Reading {
    /// The measurand; `None` means the energy register (both versions).
    fn measurand(&self) -> Option<&str>;
    /// `L1`, `L1-N`, ...; `None` for a total.
    fn phase(&self) -> Option<&str>;
    /// Where it was measured (`Outlet` by default, `EV`, ...).
    fn location(&self) -> Option<&str>;
    /// Whether the value is signed data rather than a raw number.
    fn signed(&self) -> bool;
    /// The value in Wh or W, rounded; `None` when it is not a number in a unit we price.
    fn base_value(&self) -> Option<i64>;
}

/// The samples of meter values given as (station time, sampled values), in the order given.
pub(crate) fn samples<'a, R: Reading + 'a>(
    values: impl IntoIterator<Item = (DateTime<Utc>, &'a [R])>,
) -> Vec<MeterSample> {
    values
        .into_iter()
        .filter_map(|(at, sampled)| sample(at, sampled))
        .collect()
}

/// The sample of one meter value (taken at `at`); `None` without an energy register, as a sample
/// is only useful for pricing with the register.
fn sample<R: Reading>(at: DateTime<Utc>, values: &[R]) -> Option<MeterSample> {
    let energy = pick(values, ENERGY_REGISTER, true)?;
    let power = pick(values, POWER_IMPORT, false);
    Some(MeterSample::new(at, energy, power))
}

/// The value of `measurand` in Wh or W: the total when the station sends one, else the sum of
/// its phases (line-to-neutral and single-phase values only).
fn pick<R: Reading>(values: &[R], measurand: &str, is_default: bool) -> Option<i64> {
    let matching = values.iter().filter(|v| {
        let m = v.measurand();
        let ours = m == Some(measurand) || (m.is_none() && is_default);
        let at_outlet = v.location() != Some("EV");
        ours && at_outlet && !v.signed()
    });
    let (totals, phases): (Vec<&R>, Vec<&R>) = matching.partition(|v| v.phase().is_none());
    if let Some(total) = totals.first() {
        return total.base_value();
    }
    let per_phase: Option<Vec<i64>> = phases
        .iter()
        .filter(|v| !v.phase().is_some_and(|p| p.contains('-')))
        .map(|v| v.base_value())
        .collect();
    per_phase.filter(|p| !p.is_empty()).map(|p| p.iter().sum())
}

/// `number` in `unit` (scaled by 10^`multiplier`) as Wh or W, rounded; `None` for a unit we do
/// not price or a value that is not finite.
pub(crate) fn to_base_unit(number: f64, unit: Option<&str>, multiplier: i32) -> Option<i64> {
    let factor = match unit {
        None | Some("Wh") | Some("W") => 1.0,
        Some("kWh") | Some("kW") => 1000.0,
        Some(_) => return None,
    };
    let scaled = (number * factor * 10f64.powi(multiplier)).round();
    // f64 → i64 saturates; a register beyond 9.2e18 Wh is not a real reading.
    scaled.is_finite().then_some(scaled as i64)
}
