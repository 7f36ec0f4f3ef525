//! Pricing an OCPI 2.2.1 CDR's `charging_periods` with a tariff: the pure function behind
//! `chargelink price --tariff TARIFF.json --cdr CDR.json [--time-zone TZ]`.
//!
//! Each charging period is one engine piece (the CPO already cut periods where the tariff
//! switches); restrictions are checked at the period's start. Only `start_date_time`,
//! `end_date_time`, `currency` and `charging_periods` of the CDR are read.
//!
//! Result numbers are exact decimals rounded to OCPI's 4 decimals (half away from zero),
//! serialized as strings so no float ever touches them; `amount` is the incl. VAT total in
//! minor units by [`crate::pricing::to_minor_units`].

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize};

use super::engine::{
    Accumulator, EngineError, Piece, Price, Pricer, Range, SessionContext, TariffCost,
    secs_to_hours,
};
use super::{Tariff, TariffError};
use crate::money::{Currency, Money};
use crate::pricing::{PricingError, to_minor_units};

/// Why a CDR could not be priced. The message names the input and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdrError {
    /// The tariff JSON does not parse or has a wrong field.
    #[error("tariff: {0}")]
    TariffJson(String),
    /// The tariff parses but breaks a rule.
    #[error("tariff: {0}")]
    Tariff(#[from] TariffError),
    /// The CDR JSON does not parse or has a wrong field.
    #[error("cdr: {0}")]
    CdrJson(String),
    /// The CDR parses but cannot be priced as is.
    #[error("cdr: {field}: {problem}")]
    Cdr {
        /// JSON path of the field.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// The time zone is not an IANA name.
    #[error("time zone: `{0}` is not an IANA time zone name (e.g. UTC, Europe/Amsterdam)")]
    TimeZone(String),
    /// Amounts out of range.
    #[error("pricing: {0}")]
    Pricing(String),
}

impl From<EngineError> for CdrError {
    fn from(e: EngineError) -> Self {
        Self::Pricing(e.to_string())
    }
}

impl From<PricingError> for CdrError {
    fn from(e: PricingError) -> Self {
        Self::Pricing(e.to_string())
    }
}

/// The CDR fields pricing needs; everything else is ignored.
#[derive(Debug, Clone, Deserialize)]
struct Cdr {
    #[serde(deserialize_with = "ocpi_date_time")]
    start_date_time: DateTime<Utc>,
    #[serde(deserialize_with = "ocpi_date_time")]
    end_date_time: DateTime<Utc>,
    currency: Currency,
    charging_periods: Vec<ChargingPeriod>,
}

#[derive(Debug, Clone, Deserialize)]
struct ChargingPeriod {
    #[serde(deserialize_with = "ocpi_date_time")]
    start_date_time: DateTime<Utc>,
    dimensions: Vec<CdrDimension>,
}

#[derive(Debug, Clone, Deserialize)]
struct CdrDimension {
    #[serde(rename = "type")]
    kind: CdrDimensionType,
    volume: Decimal,
}

/// OCPI 2.2.1 `CdrDimensionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum CdrDimensionType {
    Current,
    Energy,
    EnergyExport,
    EnergyImport,
    MaxCurrent,
    MinCurrent,
    MaxPower,
    MinPower,
    ParkingTime,
    Power,
    ReservationTime,
    StateOfCharge,
    Time,
}

/// OCPI DateTime: RFC 3339, or without offset (then UTC).
fn ocpi_date_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an OCPI DateTime (e.g. 2015-06-29T20:39:09Z)"
            ))
        })
}

/// A priced CDR: OCPI's CDR totals under OCPI's names, plus the minor-unit amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PricedCdr {
    /// Currency of every amount.
    pub currency: Currency,
    /// Time zone used for the tariff's local times.
    pub time_zone: String,
    /// Total after min / max price.
    pub total_cost: Price,
    /// FLAT components.
    pub total_fixed_cost: Price,
    /// Energy, kWh.
    pub total_energy: Decimal,
    /// ENERGY components.
    pub total_energy_cost: Price,
    /// Session duration (charging + not charging), hours.
    pub total_time: Decimal,
    /// TIME components.
    pub total_time_cost: Price,
    /// Not-charging time, hours.
    pub total_parking_time: Decimal,
    /// PARKING_TIME components.
    pub total_parking_cost: Price,
    /// Reservation elements.
    pub total_reservation_cost: Price,
    /// Energy billed after step_size, kWh.
    pub billed_energy: Decimal,
    /// Charging time billed after step_size, hours.
    pub billed_time: Decimal,
    /// Parking time billed after step_size, hours.
    pub billed_parking_time: Decimal,
    /// Whether `min_price` lifted / `max_price` capped the total.
    pub min_price_applied: bool,
    /// See `min_price_applied`.
    pub max_price_applied: bool,
    /// `total_cost.incl_vat` in minor units (the amount a card is charged).
    pub amount: Money,
    /// The exact engine result (unrounded), for audits.
    pub exact: TariffCost,
}

/// Prices an OCPI 2.2.1 CDR's `charging_periods` with an OCPI 2.2.1 tariff, local times in
/// `time_zone` (IANA name, e.g. "UTC").
pub fn price_cdr_json(
    tariff_json: &str,
    cdr_json: &str,
    time_zone: &str,
) -> Result<PricedCdr, CdrError> {
    let tz: Tz = time_zone
        .parse()
        .map_err(|_| CdrError::TimeZone(time_zone.to_owned()))?;
    let tariff: Tariff = parse(tariff_json).map_err(CdrError::TariffJson)?;
    let cdr: Cdr = parse(cdr_json).map_err(CdrError::CdrJson)?;
    let pricer = Pricer::new(tariff, tz)?;
    price_cdr(&pricer, &cdr, time_zone)
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

fn cdr_error(field: String, problem: &str) -> CdrError {
    CdrError::Cdr {
        field,
        problem: problem.to_owned(),
    }
}

fn price_cdr(pricer: &Pricer, cdr: &Cdr, time_zone: &str) -> Result<PricedCdr, CdrError> {
    if cdr.currency != pricer.tariff().currency {
        return Err(cdr_error(
            "currency".into(),
            &format!(
                "{} differs from the tariff's {}",
                cdr.currency,
                pricer.tariff().currency
            ),
        ));
    }
    if cdr.end_date_time < cdr.start_date_time {
        return Err(cdr_error(
            "end_date_time".into(),
            "is before start_date_time",
        ));
    }
    let mut pieces = Vec::with_capacity(cdr.charging_periods.len());
    let mut previous = cdr.start_date_time;
    for (i, period) in cdr.charging_periods.iter().enumerate() {
        if period.start_date_time < previous {
            return Err(cdr_error(
                format!("charging_periods[{i}].start_date_time"),
                "periods must be in time order and within the session",
            ));
        }
        previous = period.start_date_time;
        let mut piece = Piece::at(period.start_date_time);
        let (mut power, mut current) = (Bounds::default(), Bounds::default());
        for (j, dim) in period.dimensions.iter().enumerate() {
            let v = dim.volume;
            if v < Decimal::ZERO {
                return Err(cdr_error(
                    format!("charging_periods[{i}].dimensions[{j}].volume"),
                    "must not be negative",
                ));
            }
            let scaled = |unit: i64| {
                v.checked_mul(Decimal::from(unit)).ok_or_else(|| {
                    cdr_error(
                        format!("charging_periods[{i}].dimensions[{j}].volume"),
                        "is too large",
                    )
                })
            };
            let add = |to: Decimal, unit: i64| {
                scaled(unit)?.checked_add(to).ok_or_else(|| {
                    cdr_error(
                        format!("charging_periods[{i}].dimensions[{j}].volume"),
                        "is too large",
                    )
                })
            };
            match dim.kind {
                CdrDimensionType::Energy => piece.energy_wh = add(piece.energy_wh, 1000)?,
                CdrDimensionType::Time => piece.charging_secs = add(piece.charging_secs, 3600)?,
                CdrDimensionType::ParkingTime => {
                    piece.parking_secs = add(piece.parking_secs, 3600)?
                }
                CdrDimensionType::ReservationTime => {
                    piece.reservation_secs = add(piece.reservation_secs, 3600)?;
                    piece.reservation = true;
                }
                CdrDimensionType::Power => power.both(v),
                CdrDimensionType::MinPower => power.min = Some(v),
                CdrDimensionType::MaxPower => power.max = Some(v),
                CdrDimensionType::Current => current.both(v),
                CdrDimensionType::MinCurrent => current.min = Some(v),
                CdrDimensionType::MaxCurrent => current.max = Some(v),
                // Not priced by OCPI 2.2.1 tariffs.
                CdrDimensionType::EnergyExport
                | CdrDimensionType::EnergyImport
                | CdrDimensionType::StateOfCharge => {}
            }
        }
        piece.power_kw = power.range();
        piece.current_a = current.range();
        pieces.push(piece);
    }
    // A reservation that expired: reservation time and nothing else.
    let reservation_expired = pieces.iter().any(|p| p.reservation)
        && pieces.iter().all(|p| {
            p.reservation
                || (p.energy_wh.is_zero() && p.charging_secs.is_zero() && p.parking_secs.is_zero())
        });
    let ctx = SessionContext {
        start: cdr.start_date_time,
        reservation_expired,
    };
    let mut acc = Accumulator::default();
    for piece in &pieces {
        pricer.add(&mut acc, piece, &ctx);
    }
    let cost = pricer.finalize(&acc)?;
    let four = |d: Decimal| {
        d.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
            .normalize()
    };
    let price4 = |p: Price| Price {
        excl_vat: four(p.excl_vat),
        incl_vat: four(p.incl_vat),
    };
    let total_time = secs_to_hours(Decimal::from(
        (cdr.end_date_time - cdr.start_date_time).num_seconds(),
    ));
    Ok(PricedCdr {
        currency: cost.currency,
        time_zone: time_zone.to_owned(),
        total_cost: price4(cost.total_cost),
        total_fixed_cost: price4(cost.fixed_cost),
        total_energy: four(cost.energy_wh / Decimal::from(1000)),
        total_energy_cost: price4(cost.energy_cost),
        total_time: four(total_time),
        total_time_cost: price4(cost.time_cost),
        total_parking_time: four(secs_to_hours(cost.parking_secs)),
        total_parking_cost: price4(cost.parking_cost),
        total_reservation_cost: price4(cost.reservation_cost),
        billed_energy: four(cost.billed_energy_wh / Decimal::from(1000)),
        billed_time: four(secs_to_hours(cost.billed_charging_secs)),
        billed_parking_time: four(secs_to_hours(cost.billed_parking_secs)),
        min_price_applied: cost.min_price_applied,
        max_price_applied: cost.max_price_applied,
        amount: to_minor_units(cost.total_cost.incl_vat, cost.currency)?,
        exact: cost,
    })
}

/// Min / max of an instantaneous value over a period, from POWER / MIN_POWER / MAX_POWER.
#[derive(Default)]
struct Bounds {
    min: Option<Decimal>,
    max: Option<Decimal>,
}

impl Bounds {
    fn both(&mut self, v: Decimal) {
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }

    fn range(&self) -> Option<Range> {
        match (self.min, self.max) {
            (None, None) => None,
            (min, max) => {
                let min = min.or(max).unwrap_or_default();
                Some(Range {
                    min,
                    max: max.unwrap_or(min),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARIFF: &str = r#"{"currency":"EUR","elements":[{"price_components":[{"type":"ENERGY","price":0.25,"vat":10,"step_size":1}]}]}"#;

    #[test]
    fn bad_component_type_names_the_field() {
        let tariff = r#"{"currency":"EUR","elements":[{"price_components":[{"type":"ENERGY","price":1,"step_size":1},{"type":"FOO","price":1,"step_size":1}]}]}"#;
        let err = price_cdr_json(tariff, "{}", "UTC").unwrap_err().to_string();
        assert!(
            err.starts_with("tariff: elements[0].price_components[1].type: unknown variant `FOO`"),
            "{err}"
        );
    }

    #[test]
    fn missing_and_bad_cdr_fields_are_named() {
        let err = price_cdr_json(
            TARIFF,
            r#"{"start_date_time":"2022-01-13T14:30:00Z"}"#,
            "UTC",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("cdr: missing field `end_date_time`"),
            "{err}"
        );
        let cdr = r#"{"start_date_time":"2022-01-13T14:30:00Z","end_date_time":"2022-01-13T15:30:00Z","currency":"EUR",
            "charging_periods":[{"start_date_time":"x","dimensions":[]}]}"#;
        let err = price_cdr_json(TARIFF, cdr, "UTC").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "cdr: charging_periods[0].start_date_time: `x` is not an OCPI DateTime"
            ),
            "{err}"
        );
        let err = price_cdr_json(TARIFF, "not json", "UTC")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cdr: expected"), "{err}");
        let err = price_cdr_json(TARIFF, "{}", "Mars/Base")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Base"), "{err}");
    }

    #[test]
    fn currency_mismatch_is_refused() {
        let cdr = r#"{"start_date_time":"2022-01-13T14:30:00Z","end_date_time":"2022-01-13T15:30:00Z","currency":"USD","charging_periods":[]}"#;
        let err = price_cdr_json(TARIFF, cdr, "UTC").unwrap_err();
        assert!(
            matches!(err, CdrError::Cdr { ref field, .. } if field == "currency"),
            "{err}"
        );
    }

    #[test]
    fn result_uses_ocpi_names() {
        let cdr = r#"{"start_date_time":"2022-01-13T14:30:00","end_date_time":"2022-01-13T15:30:00Z","currency":"EUR",
            "charging_periods":[{"start_date_time":"2022-01-13T14:30:00Z","dimensions":[{"type":"ENERGY","volume":20}]}]}"#;
        let priced = price_cdr_json(TARIFF, cdr, "UTC").unwrap();
        let json = serde_json::to_value(&priced).unwrap();
        assert_eq!(json["total_cost"]["incl_vat"], "5.5");
        assert_eq!(json["total_energy_cost"]["excl_vat"], "5");
        assert_eq!(json["total_energy"], "20");
        assert_eq!(json["total_time"], "1");
        for key in [
            "total_time_cost",
            "total_parking_cost",
            "total_fixed_cost",
            "total_parking_time",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(priced.amount, Money::new(550, Currency::EUR));
    }

    fn cdr_with(periods: &str) -> String {
        format!(
            r#"{{"start_date_time":"2026-03-02T10:00:00Z","end_date_time":"2026-03-02T11:00:00Z","currency":"EUR","charging_periods":[{periods}]}}"#
        )
    }

    #[test]
    fn reservation_time_is_priced_by_reservation_elements_only() {
        let tariff = r#"{"currency":"EUR","elements":[
            {"price_components":[{"type":"FLAT","price":4.0,"vat":20,"step_size":1}],"restrictions":{"reservation":"RESERVATION_EXPIRES"}},
            {"price_components":[{"type":"FLAT","price":2.0,"vat":20,"step_size":1},{"type":"TIME","price":5.0,"vat":20,"step_size":300}],"restrictions":{"reservation":"RESERVATION"}},
            {"price_components":[{"type":"FLAT","price":0.5,"vat":20,"step_size":1},{"type":"ENERGY","price":0.25,"vat":10,"step_size":1}]}]}"#;
        // Reserved 15 min, then charged 10 kWh: 2.00 fee + 0.25 h x 5.00 reservation; 0.50 + 2.50.
        let used = cdr_with(
            r#"{"start_date_time":"2026-03-02T10:00:00Z","dimensions":[{"type":"RESERVATION_TIME","volume":0.25}]},
               {"start_date_time":"2026-03-02T10:15:00Z","dimensions":[{"type":"ENERGY","volume":10}]}"#,
        );
        let p = price_cdr_json(tariff, &used, "UTC").unwrap();
        assert_eq!(
            p.total_reservation_cost,
            Price {
                excl_vat: "3.25".parse().unwrap(),
                incl_vat: "3.9".parse().unwrap()
            }
        );
        assert_eq!(
            p.total_fixed_cost.excl_vat,
            "0.5".parse::<Decimal>().unwrap()
        );
        assert_eq!(p.total_cost.excl_vat, "6.25".parse::<Decimal>().unwrap());
        // Reserved 12 min and never charged: the expiry fee replaces the reservation fee; the
        // reservation time (12 min, rounded to 15) is still billed.
        let expired = cdr_with(
            r#"{"start_date_time":"2026-03-02T10:00:00Z","dimensions":[{"type":"RESERVATION_TIME","volume":0.2}]}"#,
        );
        let p = price_cdr_json(tariff, &expired, "UTC").unwrap();
        assert_eq!(
            p.total_reservation_cost.excl_vat,
            "5.25".parse::<Decimal>().unwrap()
        );
        assert_eq!(p.total_fixed_cost.excl_vat, Decimal::ZERO);
    }

    #[test]
    fn absurd_volumes_are_an_error_not_a_panic() {
        let huge = cdr_with(
            r#"{"start_date_time":"2026-03-02T10:00:00Z","dimensions":[{"type":"ENERGY","volume":1e27}]}"#,
        );
        let err = price_cdr_json(TARIFF, &huge, "UTC")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cdr: charging_periods[0].dimensions[0].volume: is too large"
        );
        let big = cdr_with(
            r#"{"start_date_time":"2026-03-02T10:00:00Z","dimensions":[{"type":"ENERGY","volume":1e24}]}"#,
        );
        assert!(matches!(
            price_cdr_json(TARIFF, &big, "UTC"),
            Err(CdrError::Pricing(_))
        ));
    }
}
