//! The operator's rate as the API exposes it (eDRV-style): at most one price component per
//! dimension, a tax percent per component, an optional parking grace period. A session keeps a
//! snapshot of its rate, so a rate edited mid-session never changes what the driver pays.
//!
//! A rate is priced by the OCPI 2.2.1 engine ([`crate::tariff`]): [`Rate::to_tariff`] maps it
//! onto a tariff (one element per component; a grace period becomes a restriction on the
//! not-charging time so far). A rate may instead carry a full OCPI tariff (`tariff`) with
//! time-of-day and other restrictions, read in `time_zone`.

use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Currency;
use crate::tariff::engine::Pricer;
use crate::tariff::{PriceComponent, Tariff, TariffElement, TariffError, TariffRestrictions};

/// What a price component charges for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Dimension {
    /// Once per session.
    Flat,
    /// Per kWh delivered.
    Energy,
    /// Per hour of charging.
    Time,
    /// Per hour connected but not charging (overstay).
    ParkingTime,
}

/// One price component of a rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateComponent {
    /// What it charges for.
    #[serde(rename = "type")]
    pub dimension: Dimension,
    /// Price per unit in major units of the rate's currency, excluding tax
    /// (per kWh, per hour, or per session for FLAT).
    pub price: Decimal,
    /// Tax in percent, added on top of `price`; omitted = no tax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Decimal>,
    /// Billing granularity: seconds for TIME / PARKING_TIME, Wh for ENERGY (OCPI semantics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_size: Option<u32>,
    /// Hours of free parking before PARKING_TIME is billed (PARKING_TIME only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Decimal>,
}

/// A rate: the price list attached to a session.
///
/// Build with [`Rate::new`] or a literal ending in `..Default::default()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Currency of every price in the rate.
    pub currency: Currency,
    /// At most one component per dimension.
    pub price_components: Vec<RateComponent>,
    /// IANA time zone of the location, for a tariff's local times; omitted = UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// A full OCPI 2.2.1 tariff that, when present, prices the session instead of
    /// `price_components` (which then only describe it for display). Same currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff: Option<Tariff>,
}

impl Default for Rate {
    /// An empty USD rate (free), to complete struct literals.
    fn default() -> Self {
        Self::new(Currency::USD, Vec::new())
    }
}

/// Why a rate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Two components share a dimension; keep one per type.
    #[error("the rate has more than one {0:?} component; keep one component per type")]
    DuplicateDimension(Dimension),
    /// A negative price or tax.
    #[error("price_components[{index}]: {field} must not be negative")]
    Negative { index: usize, field: &'static str },
    /// A grace period on a component other than PARKING_TIME.
    #[error("price_components[{index}]: grace_period is only allowed on PARKING_TIME")]
    GraceOutsideParking { index: usize },
    /// `time_zone` is not an IANA name.
    #[error(
        "time_zone: `{0}` is not an IANA time zone name (e.g. Europe/Amsterdam); omit it for UTC"
    )]
    UnknownTimeZone(String),
    /// The embedded OCPI tariff is invalid.
    #[error("tariff.{0}")]
    Tariff(TariffError),
    /// The embedded tariff's currency differs from the rate's.
    #[error("tariff.currency: {tariff} differs from the rate's currency {rate}; use one currency")]
    TariffCurrency { rate: Currency, tariff: Currency },
}

impl Rate {
    /// A rate of `price_components` in `currency`, UTC, no OCPI tariff.
    pub fn new(currency: Currency, price_components: Vec<RateComponent>) -> Self {
        Self {
            currency,
            price_components,
            time_zone: None,
            tariff: None,
        }
    }

    /// Checks the rules the API enforces on rates.
    pub fn validate(&self) -> Result<(), RateError> {
        self.validate_components()?;
        self.pricer().map(|_| ())
    }

    fn validate_components(&self) -> Result<(), RateError> {
        let mut seen = Vec::new();
        for (index, c) in self.price_components.iter().enumerate() {
            if seen.contains(&c.dimension) {
                return Err(RateError::DuplicateDimension(c.dimension));
            }
            seen.push(c.dimension);
            if c.price.is_sign_negative() && !c.price.is_zero() {
                return Err(RateError::Negative {
                    index,
                    field: "price",
                });
            }
            if c.tax.is_some_and(|t| t.is_sign_negative() && !t.is_zero()) {
                return Err(RateError::Negative {
                    index,
                    field: "tax",
                });
            }
            if c.grace_period
                .is_some_and(|g| g.is_sign_negative() && !g.is_zero())
            {
                return Err(RateError::Negative {
                    index,
                    field: "grace_period",
                });
            }
            if c.grace_period.is_some() && c.dimension != Dimension::ParkingTime {
                return Err(RateError::GraceOutsideParking { index });
            }
        }
        Ok(())
    }

    /// The component for `dimension`, if the rate has one.
    pub fn component(&self, dimension: Dimension) -> Option<&RateComponent> {
        self.price_components
            .iter()
            .find(|c| c.dimension == dimension)
    }

    /// The time zone of local times (UTC when omitted).
    pub fn tz(&self) -> Result<Tz, RateError> {
        match &self.time_zone {
            None => Ok(Tz::UTC),
            Some(name) => name
                .parse()
                .map_err(|_| RateError::UnknownTimeZone(name.clone())),
        }
    }

    /// The OCPI tariff this rate prices with: the embedded one, or the components mapped one
    /// element each, in order: `tax` becomes `vat` (omitted stays omitted = no tax),
    /// `step_size` defaults to 1, and a PARKING_TIME `grace_period` (hours) becomes the
    /// restriction "not-charging time so far >= grace" so the first `grace` hours of parking
    /// are free. step_size then follows OCPI (the parking total is rounded, the free part
    /// deducted), so a grace that is not a multiple of the step bills `ceil(T/step)*step - grace`.
    pub fn to_tariff(&self) -> Tariff {
        if let Some(tariff) = &self.tariff {
            return tariff.clone();
        }
        let elements = self
            .price_components
            .iter()
            .map(|c| {
                let grace = c.grace_period.filter(|g| *g > Decimal::ZERO).map(|g| {
                    let secs = (g * Decimal::from(3600)).ceil();
                    i64::try_from(secs).unwrap_or(i64::MAX)
                });
                TariffElement {
                    price_components: vec![PriceComponent {
                        dimension: c.dimension,
                        price: c.price,
                        vat: c.tax,
                        step_size: c.step_size.unwrap_or(1),
                    }],
                    restrictions: grace.map(|g| TariffRestrictions {
                        min_parking_duration: Some(g),
                        ..TariffRestrictions::default()
                    }),
                }
            })
            .collect::<Vec<_>>();
        Tariff {
            id: None,
            currency: self.currency,
            min_price: None,
            max_price: None,
            elements,
        }
    }

    /// The engine for this rate. A rate without components prices as free.
    pub fn pricer(&self) -> Result<Pricer, RateError> {
        let tz = self.tz()?;
        let mut tariff = self.to_tariff();
        if tariff.currency != self.currency {
            return Err(RateError::TariffCurrency {
                rate: self.currency,
                tariff: tariff.currency,
            });
        }
        if self.tariff.is_none() && tariff.elements.is_empty() {
            // Free: OCPI's way of saying so is one FLAT component at 0.
            tariff.elements.push(TariffElement {
                price_components: vec![PriceComponent {
                    dimension: Dimension::Flat,
                    price: Decimal::ZERO,
                    vat: None,
                    step_size: 0,
                }],
                restrictions: None,
            });
        }
        Pricer::new(tariff, tz).map_err(RateError::Tariff)
    }

    /// Whether the rate bills overstay (with an embedded tariff: whether the tariff does). Such sessions cannot be stopped through the API: only
    /// unplugging (or the hold running out) ends them.
    pub fn has_parking_time(&self) -> bool {
        match &self.tariff {
            // The embedded tariff prices the session; the components only describe it.
            Some(t) => t
                .elements
                .iter()
                .flat_map(|e| &e.price_components)
                .any(|c| c.dimension == Dimension::ParkingTime),
            None => self.component(Dimension::ParkingTime).is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;
    use crate::pricing::{LiveCost, MeterSample};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// The eDRV example rate of docs/domain.md §1.5.
    fn edrv_example() -> Rate {
        serde_json::from_str(
            r#"{"currency":"eur","price_components":[
                {"type":"FLAT","price":5,"tax":10},
                {"type":"ENERGY","price":0.35,"tax":19},
                {"type":"TIME","price":2.5,"tax":0},
                {"type":"PARKING_TIME","price":0.35,"tax":19,"grace_period":1.5}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn existing_rate_json_still_deserializes_and_new_fields_stay_hidden() {
        let rate = edrv_example();
        rate.validate().unwrap();
        assert_eq!(rate.time_zone, None);
        assert_eq!(rate.tariff, None);
        let json = serde_json::to_string(&rate).unwrap();
        assert!(
            !json.contains("time_zone") && !json.contains("tariff"),
            "{json}"
        );
        assert!(
            serde_json::from_str::<Rate>(r#"{"currency":"usd","price_components":[],"bogus":1}"#)
                .is_err()
        );
    }

    #[test]
    fn tax_per_component_and_grace_period() {
        let mut live = LiveCost::start(edrv_example(), t(0), 0);
        live.record_meter(MeterSample::new(t(60), 10_000, Some(10_000)));
        live.set_charging(t(60), false);
        let cost = live.cost_at(t(180)).unwrap();
        // FLAT 5 x 1.10 = 5.50; ENERGY 10 x 0.35 x 1.19 = 4.165; TIME 1 h x 2.5 = 2.50;
        // PARKING (2 h - 1.5 h grace) x 0.35 x 1.19 = 0.20825. Total 12.37325.
        assert_eq!(cost.amount, Money::new(1237, Currency::EUR));
        // Excl. tax 11.175 rounds half away from zero to 11.18.
        assert_eq!(cost.amount_excl_vat, Some(Money::new(1118, Currency::EUR)));
        let taxes: Vec<(Dimension, Decimal, Decimal)> = cost
            .breakdown
            .iter()
            .map(|c| (c.dimension, c.tax, c.total))
            .collect();
        assert_eq!(
            taxes,
            vec![
                (Dimension::Flat, d("10"), d("5.5")),
                (Dimension::Energy, d("19"), d("4.165")),
                (Dimension::Time, d("0"), d("2.5")),
                (Dimension::ParkingTime, d("19"), d("0.20825")),
            ]
        );
        assert_eq!(
            cost.breakdown[3].quantity,
            d("0.5"),
            "only parking after the grace period is billed"
        );
        // Within the grace period parking is free.
        assert_eq!(
            live.cost_at(t(150)).unwrap().amount,
            Money::new(1217, Currency::EUR)
        );
    }

    #[test]
    fn edrv_tax_is_added_on_top() {
        // docs/domain.md §1.5: 10 kWh x $0.10 x (1 + 10 %) = $1.10.
        let rate = Rate::new(
            Currency::USD,
            vec![RateComponent {
                dimension: Dimension::Energy,
                price: d("0.10"),
                tax: Some(d("10")),
                step_size: None,
                grace_period: None,
            }],
        );
        let mut live = LiveCost::start(rate, t(0), 5_000);
        let cost = live.finish(t(45), 15_000).unwrap();
        assert_eq!(cost.amount, Money::new(110, Currency::USD));
        assert_eq!(cost.energy_wh, 10_000);
    }

    #[test]
    fn grace_period_with_step_size_follows_ocpi_rounding() {
        // Parking 6/h, step 3600 s, grace 0.5 h; 40 min parked: the parking total (40 min) is
        // rounded to 60 min and the free 30 min deducted, so 30 min are billed.
        let parking = RateComponent {
            dimension: Dimension::ParkingTime,
            price: d("6"),
            tax: None,
            step_size: Some(3600),
            grace_period: Some(d("0.5")),
        };
        let tariff = Rate::new(Currency::EUR, vec![parking.clone()]).to_tariff();
        assert_eq!(
            tariff.elements[0]
                .restrictions
                .as_ref()
                .unwrap()
                .min_parking_duration,
            Some(1800)
        );
        let mut live = LiveCost::start(Rate::new(Currency::EUR, vec![parking]), t(0), 0);
        live.set_charging(t(0), false);
        assert_eq!(
            live.cost_at(t(30)).unwrap().amount,
            Money::zero(Currency::EUR)
        );
        assert_eq!(
            live.cost_at(t(40)).unwrap().amount,
            Money::new(300, Currency::EUR)
        );
    }

    #[test]
    fn rounding_to_minor_units_follows_the_currency_exponent() {
        let energy = |price: &str| RateComponent {
            dimension: Dimension::Energy,
            price: d(price),
            tax: None,
            step_size: None,
            grace_period: None,
        };
        let one_kwh = |rate: Rate| {
            let mut live = LiveCost::start(rate, t(0), 0);
            live.finish(t(10), 1_000).unwrap().amount.amount
        };
        let kwd: Currency = "KWD".parse().unwrap();
        let jpy: Currency = "JPY".parse().unwrap();
        assert_eq!(one_kwh(Rate::new(kwd, vec![energy("0.1234")])), 123);
        assert_eq!(
            one_kwh(Rate::new(kwd, vec![energy("0.1235")])),
            124,
            "half away from zero"
        );
        assert_eq!(one_kwh(Rate::new(jpy, vec![energy("12.5")])), 13);
        assert_eq!(one_kwh(Rate::new(Currency::USD, vec![energy("0.125")])), 13);
        assert_eq!(
            one_kwh(Rate::new(Currency::USD, vec![energy("0.1249")])),
            12
        );
    }

    #[test]
    fn time_zone_and_embedded_tariff_are_validated() {
        let mut rate = edrv_example();
        rate.time_zone = Some("Europe/Nowhere".into());
        assert_eq!(
            rate.validate(),
            Err(RateError::UnknownTimeZone("Europe/Nowhere".into()))
        );
        rate.time_zone = Some("Europe/Amsterdam".into());
        rate.validate().unwrap();
        rate.tariff = Some(serde_json::from_str(r#"{"currency":"USD","elements":[{"price_components":[{"type":"FLAT","price":1,"step_size":0}]}]}"#).unwrap());
        assert!(matches!(
            rate.validate(),
            Err(RateError::TariffCurrency { .. })
        ));
        rate.tariff = Some(serde_json::from_str(r#"{"currency":"EUR","elements":[]}"#).unwrap());
        assert_eq!(
            rate.validate().unwrap_err().to_string(),
            "tariff.elements: must hold at least one element"
        );
        assert!(rate.tariff.is_some() && !rate.has_parking_time());
    }

    #[test]
    fn an_empty_rate_is_free() {
        let mut live = LiveCost::start(Rate::new(Currency::USD, Vec::new()), t(0), 0);
        assert_eq!(
            live.finish(t(60), 5_000).unwrap().amount,
            Money::zero(Currency::USD)
        );
    }
}
