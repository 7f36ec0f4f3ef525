//! OCPI 2.2.1 tariffs and the one exact cost engine every price in chargelink goes through.
//!
//! - this module: the tariff as OCPI 2.2.1 defines it (`elements`, `price_components`,
//!   `restrictions`, `min_price` / `max_price`) and its validation;
//! - [`engine`]: element selection, step_size, VAT and min/max price over "pieces" of a session;
//! - [`cdr`]: pricing an OCPI CDR's `charging_periods` ([`price_cdr_json`], used by the CLI);
//! - [`crate::pricing`] feeds live sessions through the same engine, and
//!   [`crate::rate::Rate::to_tariff`] maps the operator's eDRV-style rate onto it.
//!
//! Numbers: OCPI sends JSON numbers with at most 4 decimals. They are read with serde_json's
//! number parser and converted through the shortest round-trip representation (rust_decimal's
//! default), which reproduces every decimal literal of up to 15 significant digits exactly;
//! strings are accepted too. No arithmetic ever happens in floating point.

pub mod cdr;
pub mod engine;

use chrono::{NaiveDate, NaiveTime, Weekday};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::Currency;
use crate::rate::Dimension;

pub use cdr::{CdrError, PricedCdr, price_cdr_json};
pub use engine::{CostLine, Price, TariffCost};

/// An OCPI 2.2.1 Tariff. Fields chargelink does not price with (`country_code`, `party_id`,
/// `tariff_alt_text`, `energy_mix`, `type`, `last_updated`, …) are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    /// The tariff's id, kept for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// ISO 4217 currency of every price.
    pub currency: Currency,
    /// The session costs at least this much (excl. and incl. VAT clamp independently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<PriceBound>,
    /// The session costs at most this much (excl. and incl. VAT clamp independently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<PriceBound>,
    /// Elements in priority order: per dimension the first matching element wins.
    pub elements: Vec<TariffElement>,
}

/// OCPI `Price` as used by `min_price` / `max_price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceBound {
    /// Amount excluding VAT, major units.
    pub excl_vat: Decimal,
    /// Amount including VAT, major units. When omitted, the incl. VAT total is scaled by the
    /// same factor as the excl. VAT total (or equals it when nothing was charged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incl_vat: Option<Decimal>,
}

/// OCPI `TariffElement`: price components valid while all restrictions hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffElement {
    /// At least one component; at most one per dimension is used.
    pub price_components: Vec<PriceComponent>,
    /// Conditions, all AND-ed; none = always valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<TariffRestrictions>,
}

/// OCPI `PriceComponent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceComponent {
    /// ENERGY (per kWh), TIME (per hour charging), PARKING_TIME (per hour not charging), FLAT.
    #[serde(rename = "type")]
    pub dimension: Dimension,
    /// Price per unit excluding VAT, major units.
    pub price: Decimal,
    /// VAT percent. Omitted means no VAT applies (shown as such), which prices like 0 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat: Option<Decimal>,
    /// Rounding granularity: Wh for ENERGY, seconds for TIME / PARKING_TIME; 0 or 1 = none.
    pub step_size: u32,
}

/// OCPI `TariffRestrictions`, plus one chargelink extension (`min_parking_duration`) used to
/// express an operator rate's parking grace period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffRestrictions {
    /// Local time of day from which the element is valid (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hh_mm")]
    pub start_time: Option<NaiveTime>,
    /// Local time of day until which it is valid (exclusive); before `start_time` = wraps past
    /// midnight; `00:00` = end of day.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hh_mm")]
    pub end_time: Option<NaiveTime>,
    /// First local date it is valid (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// Local date from which it is no longer valid (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    /// Session energy so far, kWh (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kwh: Option<Decimal>,
    /// Session energy so far, kWh (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_kwh: Option<Decimal>,
    /// Instantaneous current, A summed over phases (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_current: Option<Decimal>,
    /// Instantaneous current, A (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_current: Option<Decimal>,
    /// Instantaneous power, kW (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_power: Option<Decimal>,
    /// Instantaneous power, kW (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_power: Option<Decimal>,
    /// Session duration so far, seconds (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<i64>,
    /// Session duration so far, seconds (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<i64>,
    /// Local days of the week it is valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub day_of_week: Vec<DayOfWeek>,
    /// Makes the element a reservation element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationRestriction>,
    /// chargelink extension, not OCPI: not-charging time so far in the session, seconds
    /// (inclusive). Expresses a parking grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_parking_duration: Option<i64>,
}

/// OCPI `DayOfWeek`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl DayOfWeek {
    /// Whether this is chrono's `day`.
    pub fn is(self, day: Weekday) -> bool {
        let me = match self {
            Self::Monday => Weekday::Mon,
            Self::Tuesday => Weekday::Tue,
            Self::Wednesday => Weekday::Wed,
            Self::Thursday => Weekday::Thu,
            Self::Friday => Weekday::Fri,
            Self::Saturday => Weekday::Sat,
            Self::Sunday => Weekday::Sun,
        };
        me == day
    }
}

/// OCPI `ReservationRestrictionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationRestriction {
    /// Valid during reservation time.
    Reservation,
    /// Valid when a reservation expires without a charging session.
    ReservationExpires,
}

/// Why a tariff was refused. The message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct TariffError {
    /// JSON path of the field, e.g. `elements[0].price_components[1].price`.
    pub field: String,
    /// What is wrong and what to do.
    pub problem: String,
}

impl TariffError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

fn negative(value: Option<Decimal>) -> bool {
    value.is_some_and(|v| v < Decimal::ZERO)
}

impl Tariff {
    /// Checks what serde cannot: non-empty lists, no negative prices, VAT or limits,
    /// consistent min/max pairs, reservation elements with FLAT / TIME only.
    pub fn validate(&self) -> Result<(), TariffError> {
        if self.elements.is_empty() {
            return Err(TariffError::new(
                "elements",
                "must hold at least one element",
            ));
        }
        for (name, bound) in [
            ("min_price", &self.min_price),
            ("max_price", &self.max_price),
        ] {
            if let Some(b) = bound {
                if b.excl_vat < Decimal::ZERO {
                    return Err(TariffError::new(
                        format!("{name}.excl_vat"),
                        "must not be negative",
                    ));
                }
                if negative(b.incl_vat) {
                    return Err(TariffError::new(
                        format!("{name}.incl_vat"),
                        "must not be negative",
                    ));
                }
            }
        }
        if let (Some(min), Some(max)) = (&self.min_price, &self.max_price)
            && min.excl_vat > max.excl_vat
        {
            return Err(TariffError::new(
                "min_price.excl_vat",
                "is above max_price.excl_vat",
            ));
        }
        for (e, element) in self.elements.iter().enumerate() {
            if element.price_components.is_empty() {
                return Err(TariffError::new(
                    format!("elements[{e}].price_components"),
                    "must hold at least one price component",
                ));
            }
            for (c, comp) in element.price_components.iter().enumerate() {
                let at = format!("elements[{e}].price_components[{c}]");
                if comp.price < Decimal::ZERO {
                    return Err(TariffError::new(
                        format!("{at}.price"),
                        "must not be negative",
                    ));
                }
                if negative(comp.vat) {
                    return Err(TariffError::new(
                        format!("{at}.vat"),
                        "must not be negative",
                    ));
                }
            }
            if let Some(r) = &element.restrictions {
                validate_restrictions(e, element, r)?;
            }
        }
        Ok(())
    }
}

fn validate_restrictions(
    e: usize,
    element: &TariffElement,
    r: &TariffRestrictions,
) -> Result<(), TariffError> {
    let at = |f: &str| format!("elements[{e}].restrictions.{f}");
    let pairs = [
        ("min_kwh", r.min_kwh, r.max_kwh),
        ("min_current", r.min_current, r.max_current),
        ("min_power", r.min_power, r.max_power),
        (
            "min_duration",
            r.min_duration.map(Decimal::from),
            r.max_duration.map(Decimal::from),
        ),
    ];
    for (name, min, max) in pairs {
        if negative(min) || negative(max) {
            return Err(TariffError::new(at(name), "limits must not be negative"));
        }
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            return Err(TariffError::new(
                at(name),
                "is above the matching max_ limit",
            ));
        }
    }
    if r.min_parking_duration.is_some_and(|d| d < 0) {
        return Err(TariffError::new(
            at("min_parking_duration"),
            "must not be negative",
        ));
    }
    if r.reservation.is_some()
        && let Some((c, comp)) = element
            .price_components
            .iter()
            .enumerate()
            .find(|(_, c)| !matches!(c.dimension, Dimension::Flat | Dimension::Time))
    {
        return Err(TariffError::new(
            format!("elements[{e}].price_components[{c}].type"),
            format!(
                "{:?} is not allowed in a reservation element (only FLAT and TIME)",
                comp.dimension
            ),
        ));
    }
    Ok(())
}

/// OCPI "HH:MM" local times.
mod hh_mm {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<NaiveTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(t) => s.serialize_str(&t.format("%H:%M").to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<NaiveTime>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        NaiveTime::parse_from_str(&text, "%H:%M")
            .map(Some)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a local time as HH:MM (e.g. 17:00)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_restrictions_and_ignores_unpriced_fields() {
        let json = r#"{"country_code":"DE","party_id":"ALL","id":"1","currency":"EUR","last_updated":"2018-12-17T11:16:55Z",
            "elements":[{"price_components":[{"type":"TIME","price":2.4,"step_size":900}],
            "restrictions":{"start_time":"20:00","end_time":"00:00","day_of_week":["MONDAY","SUNDAY"],"max_kwh":50}}]}"#;
        let t: Tariff = serde_json::from_str(json).unwrap();
        t.validate().unwrap();
        let r = t.elements[0].restrictions.as_ref().unwrap();
        assert_eq!(r.start_time, NaiveTime::from_hms_opt(20, 0, 0));
        assert_eq!(r.end_time, NaiveTime::from_hms_opt(0, 0, 0));
        assert_eq!(r.max_kwh, Some(Decimal::from(50)));
        assert!(r.day_of_week[1].is(Weekday::Sun));
        assert_eq!(
            t.elements[0].price_components[0].price,
            "2.4".parse::<Decimal>().unwrap()
        );
        // Round trip through our own serialization.
        let again: Tariff = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn numbers_with_four_decimals_are_exact() {
        let t: Tariff = serde_json::from_str(
            r#"{"currency":"EUR","elements":[{"price_components":[{"type":"ENERGY","price":0.0834,"vat":0.1,"step_size":1}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            t.elements[0].price_components[0].price.to_string(),
            "0.0834"
        );
        assert_eq!(
            t.elements[0].price_components[0].vat.unwrap().to_string(),
            "0.1"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut t: Tariff = serde_json::from_str(
            r#"{"currency":"EUR","elements":[{"price_components":[{"type":"ENERGY","price":1,"step_size":1}],
                "restrictions":{"reservation":"RESERVATION"}}]}"#,
        )
        .unwrap();
        let err = t.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("elements[0].price_components[0].type:"),
            "{err}"
        );
        t.elements[0].restrictions = None;
        t.elements[0].price_components[0].price = Decimal::NEGATIVE_ONE;
        assert_eq!(
            t.validate().unwrap_err().field,
            "elements[0].price_components[0].price"
        );
        t.elements.clear();
        assert_eq!(t.validate().unwrap_err().field, "elements");
    }

    #[test]
    fn bad_local_time_is_refused() {
        let err =
            serde_json::from_str::<TariffRestrictions>(r#"{"start_time":"5pm"}"#).unwrap_err();
        assert!(err.to_string().contains("HH:MM"), "{err}");
    }
}
