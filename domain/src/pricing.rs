//! Live and final cost of a session: the seam between the session workflow and the tariff
//! engine. The workflow feeds meter samples and charging / not-charging transitions in; it asks
//! for the cost now, a projection a given time ahead, and the final cost. Pure and
//! deterministic: every time is passed in, nothing reads a clock.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};
use crate::rate::{Dimension, Rate};

/// Why a cost could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// Money arithmetic failed (overflow or mixed currencies).
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The amount does not fit in minor units.
    #[error("cost does not fit in 64-bit minor units")]
    Overflow,
}

/// One meter reading of the session's connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterSample {
    /// When the station measured it (station clock).
    pub timestamp: DateTime<Utc>,
    /// Energy.Active.Import.Register in Wh (not re-based to zero).
    pub energy_wh: i64,
    /// Power.Active.Import in W, when the station sends it.
    pub power_w: Option<i64>,
}

impl MeterSample {
    /// A sample of the energy register and, when known, the power.
    pub fn new(timestamp: DateTime<Utc>, energy_wh: i64, power_w: Option<i64>) -> Self {
        Self {
            timestamp,
            energy_wh,
            power_w,
        }
    }
}

/// Cost of one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostComponent {
    /// The dimension billed.
    #[serde(rename = "type")]
    pub dimension: Dimension,
    /// Quantity billed: kWh for ENERGY, hours for TIME and PARKING_TIME, 1 for FLAT.
    pub quantity: Decimal,
    /// Price per unit, excluding tax.
    pub unit_price: Decimal,
    /// Tax percent applied.
    pub tax: Decimal,
    /// Cost excluding tax, in major units (exact).
    pub before_tax: Decimal,
    /// Cost including tax, in major units (exact).
    pub total: Decimal,
}

/// The cost of a session at some instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostSummary {
    /// Total including tax, rounded to minor units (see [`to_minor_units`]).
    pub amount: Money,
    /// Energy delivered so far, Wh.
    pub energy_wh: i64,
    /// Seconds spent charging.
    pub charging_seconds: i64,
    /// Seconds connected but not charging.
    pub parking_seconds: i64,
    /// Per-dimension costs, in the rate's component order.
    pub breakdown: Vec<CostComponent>,
}

/// Converts an exact amount in major units to minor units.
///
/// The one rounding rule of chargelink: round half away from zero to the currency's minor unit,
/// applied once, to the session total. Components are kept exact until then.
pub fn to_minor_units(major: Decimal, currency: Currency) -> Result<Money, PricingError> {
    let scaled = major
        .checked_mul(Decimal::from(10_i64.pow(currency.exponent())))
        .ok_or(PricingError::Overflow)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let minor = i64::try_from(scaled).map_err(|_| PricingError::Overflow)?;
    Ok(Money::new(minor, currency))
}

/// The running cost of one session, fed incrementally: each new sample is O(1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCost {
    rate: Rate,
    started_at: DateTime<Utc>,
    meter_start_wh: i64,
    /// Highest register value seen (samples may arrive late or out of order).
    meter_latest_wh: i64,
    /// Latest sample by station timestamp, for the power used in projections.
    latest_sample: Option<MeterSample>,
    charging_seconds: i64,
    parking_seconds: i64,
    /// Whether energy is flowing since `state_since`.
    charging: bool,
    state_since: DateTime<Utc>,
}

impl LiveCost {
    /// Starts pricing a session that began charging at `started_at` with the register at
    /// `meter_start_wh`.
    pub fn start(rate: Rate, started_at: DateTime<Utc>, meter_start_wh: i64) -> Self {
        Self {
            rate,
            started_at,
            meter_start_wh,
            meter_latest_wh: meter_start_wh,
            latest_sample: None,
            charging_seconds: 0,
            parking_seconds: 0,
            charging: true,
            state_since: started_at,
        }
    }

    /// The rate being applied.
    pub fn rate(&self) -> &Rate {
        &self.rate
    }

    /// When the session started.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Records a meter sample. Late, duplicate and out-of-order samples are harmless.
    pub fn record_meter(&mut self, sample: MeterSample) {
        self.meter_latest_wh = self.meter_latest_wh.max(sample.energy_wh);
        let newer = self
            .latest_sample
            .is_none_or(|s| sample.timestamp >= s.timestamp);
        if newer {
            self.latest_sample = Some(sample);
        }
    }

    /// Records that energy started (`true`) or stopped (`false`) flowing at `at`
    /// (pause / resume, EV full, suspended by the EV or the station).
    pub fn set_charging(&mut self, at: DateTime<Utc>, charging: bool) {
        if charging == self.charging {
            return;
        }
        let at = at.max(self.state_since);
        let elapsed = (at - self.state_since).num_seconds();
        if self.charging {
            self.charging_seconds += elapsed;
        } else {
            self.parking_seconds += elapsed;
        }
        self.charging = charging;
        self.state_since = at;
    }

    /// Whether energy is flowing.
    pub fn is_charging(&self) -> bool {
        self.charging
    }

    /// Energy delivered so far, Wh.
    pub fn energy_wh(&self) -> i64 {
        (self.meter_latest_wh - self.meter_start_wh).max(0)
    }

    /// The cost if the session ended at `at` with the energy seen so far.
    pub fn cost_at(&self, at: DateTime<Utc>) -> Result<CostSummary, PricingError> {
        self.price(at, self.energy_wh())
    }

    /// The cost `ahead` after `at`, assuming charging goes on at the latest reported power.
    /// Never below [`LiveCost::cost_at`] for the same instant.
    pub fn projected_cost(
        &self,
        at: DateTime<Utc>,
        ahead: chrono::Duration,
    ) -> Result<Money, PricingError> {
        let ahead = ahead.max(chrono::Duration::zero());
        let until = at + ahead;
        let mut energy = self.energy_wh();
        if self.charging
            && let Some(MeterSample {
                timestamp,
                power_w: Some(power),
                ..
            }) = self.latest_sample
        {
            // Energy since the last sample up to the horizon, at that sample's power.
            let secs = (until - timestamp.max(self.started_at))
                .num_seconds()
                .max(0);
            energy += power.max(0).saturating_mul(secs) / 3600;
        }
        Ok(self.price(until, energy)?.amount)
    }

    /// The final cost when the station reports the stop at `at` with the register at
    /// `meter_stop_wh`.
    pub fn finish(
        &mut self,
        at: DateTime<Utc>,
        meter_stop_wh: i64,
    ) -> Result<CostSummary, PricingError> {
        self.meter_latest_wh = self.meter_latest_wh.max(meter_stop_wh);
        self.cost_at(at)
    }

    fn price(&self, at: DateTime<Utc>, energy_wh: i64) -> Result<CostSummary, PricingError> {
        let elapsed = (at.max(self.state_since) - self.state_since).num_seconds();
        let (charging_seconds, parking_seconds) = if self.charging {
            (self.charging_seconds + elapsed, self.parking_seconds)
        } else {
            (self.charging_seconds, self.parking_seconds + elapsed)
        };
        let hundred = Decimal::ONE_HUNDRED;
        let mut breakdown = Vec::with_capacity(self.rate.price_components.len());
        let mut total = Decimal::ZERO;
        for c in &self.rate.price_components {
            let step = i64::from(c.step_size.unwrap_or(1).max(1));
            let quantity = match c.dimension {
                Dimension::Flat => Decimal::ONE,
                Dimension::Energy => Decimal::new(round_up(energy_wh, step), 3),
                Dimension::Time => {
                    Decimal::from(round_up(charging_seconds, step)) / Decimal::from(3600)
                }
                Dimension::ParkingTime => {
                    let grace = c.grace_period.unwrap_or(Decimal::ZERO) * Decimal::from(3600);
                    let grace = i64::try_from(grace.trunc()).unwrap_or(i64::MAX);
                    Decimal::from(round_up((parking_seconds - grace).max(0), step))
                        / Decimal::from(3600)
                }
            };
            let tax = c.tax.unwrap_or(Decimal::ZERO);
            let before_tax = quantity
                .checked_mul(c.price)
                .ok_or(PricingError::Overflow)?;
            let with_tax = before_tax + before_tax * tax / hundred;
            total += with_tax;
            breakdown.push(CostComponent {
                dimension: c.dimension,
                quantity,
                unit_price: c.price,
                tax,
                before_tax,
                total: with_tax,
            });
        }
        Ok(CostSummary {
            amount: to_minor_units(total, self.rate.currency)?,
            energy_wh,
            charging_seconds,
            parking_seconds,
            breakdown,
        })
    }
}

fn round_up(value: i64, step: i64) -> i64 {
    if value <= 0 {
        0
    } else {
        (value + step - 1) / step * step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::RateComponent;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn comp(dimension: Dimension, price: &str, tax: Option<&str>) -> RateComponent {
        RateComponent {
            dimension,
            price: price.parse().unwrap(),
            tax: tax.map(|t| t.parse().unwrap()),
            step_size: None,
            grace_period: None,
        }
    }

    #[test]
    fn energy_and_time_with_tax() {
        let rate = Rate {
            currency: Currency::USD,
            price_components: vec![
                comp(Dimension::Energy, "0.35", Some("10")),
                comp(Dimension::Time, "1.20", None),
            ],
        };
        let mut live = LiveCost::start(rate, t(0), 1000);
        live.record_meter(MeterSample {
            timestamp: t(30),
            energy_wh: 11_000,
            power_w: Some(20_000),
        });
        // 10 kWh * 0.35 * 1.1 = 3.85 ; 0.5 h * 1.20 = 0.60
        assert_eq!(
            live.cost_at(t(30)).unwrap().amount,
            Money::new(445, Currency::USD)
        );
        // +30 min at 20 kW = +10 kWh -> 7.70 + 1.20
        assert_eq!(
            live.projected_cost(t(30), chrono::Duration::minutes(30))
                .unwrap(),
            Money::new(890, Currency::USD)
        );
    }

    #[test]
    fn paused_time_is_parking_and_grace_applies() {
        let mut parking = comp(Dimension::ParkingTime, "6", None);
        parking.grace_period = Some("0.25".parse().unwrap());
        let rate = Rate {
            currency: Currency::EUR,
            price_components: vec![comp(Dimension::Flat, "1", None), parking],
        };
        let mut live = LiveCost::start(rate, t(0), 0);
        live.set_charging(t(10), false);
        // 30 min not charging, 15 free: 0.25 h * 6 = 1.50, + 1.00 flat
        let cost = live.cost_at(t(40)).unwrap();
        assert_eq!(cost.amount, Money::new(250, Currency::EUR));
        assert_eq!((cost.charging_seconds, cost.parking_seconds), (600, 1800));
    }

    #[test]
    fn rounding_is_half_away_from_zero_once() {
        assert_eq!(
            to_minor_units("0.005".parse().unwrap(), Currency::USD)
                .unwrap()
                .amount,
            1
        );
        assert_eq!(
            to_minor_units("0.0049".parse().unwrap(), Currency::USD)
                .unwrap()
                .amount,
            0
        );
        assert_eq!(
            to_minor_units("12.5".parse().unwrap(), "JPY".parse().unwrap())
                .unwrap()
                .amount,
            13
        );
    }
}
