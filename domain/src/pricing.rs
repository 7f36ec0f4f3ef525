//! Live and final cost of a session: the seam between the session workflow and the tariff
//! engine. The workflow feeds meter samples and charging / not-charging transitions in; it asks
//! for the cost now, a projection a given time ahead, and the final cost. Pure and
//! deterministic: every time is passed in, nothing reads a clock, no floats, no hash maps.
//!
//! Every price goes through [`crate::tariff::engine`]: the rate is mapped onto an OCPI tariff
//! ([`Rate::pricer`]) and the session is cut into pieces between meter samples, charging
//! transitions and the tariff's own boundaries (local times, durations, energy thresholds).
//!
//! Incremental: the engine state after the latest sample is kept, so an in-order sample costs
//! O(1) in session length and `cost_at` only prices the stretch since the last sample. A late
//! sample or transition (stations resend queued values after a reconnect, with their original
//! timestamps) rewinds to the nearest checkpoint (one every [`CHECKPOINT_EVERY`] samples) and
//! replays the samples after it, so it costs O(samples after it).

use std::collections::BTreeMap;
use std::ops::Bound;

use chrono::{DateTime, SubsecRound, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};
use crate::rate::{Dimension, Rate, RateError};
use crate::tariff::engine::{
    Accumulator, EngineError, Pricer, Range, SessionContext, Span, TariffCost,
};

/// Why a cost could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// Money arithmetic failed (overflow or mixed currencies).
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The amount does not fit in minor units.
    #[error("cost does not fit in 64-bit minor units")]
    Overflow,
    /// The session's rate cannot be priced (validate rates before attaching them).
    #[error("the session's rate is invalid: {0}")]
    Rate(#[from] RateError),
    /// The engine's decimals overflowed.
    #[error(transparent)]
    Engine(#[from] EngineError),
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
    /// Current.Import in A summed over phases, when the station sends it (for OCPI
    /// `min_current` / `max_current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_a: Option<Decimal>,
}

impl MeterSample {
    /// A sample of the energy register and, when known, the power.
    pub fn new(timestamp: DateTime<Utc>, energy_wh: i64, power_w: Option<i64>) -> Self {
        Self {
            timestamp,
            energy_wh,
            power_w,
            current_a: None,
        }
    }

    /// The same sample with the current (A, summed over phases).
    pub fn with_current(mut self, current_a: Decimal) -> Self {
        self.current_a = Some(current_a);
        self
    }
}

/// Cost of one priced component.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostComponent {
    /// The dimension billed.
    #[serde(rename = "type")]
    pub dimension: Dimension,
    /// Quantity billed after step_size: kWh for ENERGY, hours for TIME and PARKING_TIME, 1 for FLAT.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub quantity: Decimal,
    /// Price per unit, excluding tax.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_price: Decimal,
    /// Tax percent applied (0 when the component has none).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tax: Decimal,
    /// Cost excluding tax, in major units (exact).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub before_tax: Decimal,
    /// Cost including tax, in major units (exact).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Decimal,
}

/// The cost of a session at some instant.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Priced components in tariff order (for a rate: its component order). Sums to the
    /// total unless the tariff's min / max price applied.
    pub breakdown: Vec<CostComponent>,
    /// Total excluding tax, rounded to minor units. Always set by the engine; optional only
    /// so summaries stored before it existed still deserialize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_excl_vat: Option<Money>,
}

/// Converts an exact amount in major units to minor units.
///
/// The one rounding rule of chargelink: round half away from zero to the currency's minor unit
/// (its ISO 4217 exponent), applied once, to the session total (incl. and excl. VAT
/// separately). Components and VAT are kept exact until then.
pub fn to_minor_units(major: Decimal, currency: Currency) -> Result<Money, PricingError> {
    let scaled = major
        .checked_mul(Decimal::from(10_i64.pow(currency.exponent())))
        .ok_or(PricingError::Overflow)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let minor = i64::try_from(scaled).map_err(|_| PricingError::Overflow)?;
    Ok(Money::new(minor, currency))
}

/// Samples between two checkpoints: a late sample replays at most this many plus those after it.
pub const CHECKPOINT_EVERY: usize = 32;

/// The engine state after the samples up to `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    /// Time of the last sample folded in (the session start for the initial one).
    at: DateTime<Utc>,
    /// Whether no sample is folded in yet (samples at exactly `at` still to come).
    initial: bool,
    /// Rank of the last sample folded in (0 for the initial checkpoint).
    position: usize,
    /// Highest register value so far, Wh.
    register_wh: i64,
    acc: Accumulator,
    /// Power (kW) and current (A) reported by the last sample, for restrictions.
    power_kw: Option<Decimal>,
    current_a: Option<Decimal>,
    /// Power for projections, W: the last reported power, else the last interval's average.
    projection_power_w: Option<Decimal>,
}

/// The running cost of one session, fed incrementally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "LiveCostData", from = "LiveCostData")]
pub struct LiveCost {
    rate: Rate,
    started_at: DateTime<Utc>,
    meter_start_wh: i64,
    pricer: Result<Pricer, RateError>,
    samples: BTreeMap<DateTime<Utc>, MeterSample>,
    /// Charging (`true`) / not charging from this instant on; charging before the first.
    transitions: BTreeMap<DateTime<Utc>, bool>,
    head: Checkpoint,
    /// `checkpoints[0]` is the session start; then one every [`CHECKPOINT_EVERY`] samples.
    checkpoints: Vec<Checkpoint>,
}

/// How a stretch gets its energy.
#[derive(Clone, Copy)]
enum Fill {
    /// This much energy, Wh, spread over the charging part (or all of it if never charging).
    Total(Decimal),
    /// This power, W, over the charging part.
    Power(Decimal),
}

impl LiveCost {
    /// Starts pricing a session that began charging at `started_at` with the register at
    /// `meter_start_wh`. An invalid rate is reported by every cost query.
    pub fn start(rate: Rate, started_at: DateTime<Utc>, meter_start_wh: i64) -> Self {
        let initial = Checkpoint {
            at: started_at,
            initial: true,
            position: 0,
            register_wh: meter_start_wh,
            acc: Accumulator::default(),
            power_kw: None,
            current_a: None,
            projection_power_w: None,
        };
        Self {
            pricer: rate.pricer(),
            rate,
            started_at,
            meter_start_wh,
            samples: BTreeMap::new(),
            transitions: BTreeMap::new(),
            head: initial.clone(),
            checkpoints: vec![initial],
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

    /// Records a meter sample, priced at its own timestamp. Late, duplicate and out-of-order
    /// samples are harmless: a duplicate timestamp keeps the higher register value, and the
    /// register never goes backwards (a lower value adds no energy).
    pub fn record_meter(&mut self, sample: MeterSample) {
        let mut sample = sample;
        let base = self.base();
        if !base.initial && sample.timestamp <= base.at {
            // Behind a compaction: its energy is already in the base register.
            return;
        }
        sample.timestamp = sample.timestamp.max(self.floor());
        let at = sample.timestamp;
        if let Some(existing) = self.samples.get(&at)
            && (*existing == sample || existing.energy_wh > sample.energy_wh)
        {
            return;
        }
        self.samples.insert(at, sample);
        if at > self.head.at {
            let position = self.samples.len();
            self.fold(sample, position);
        } else {
            self.rewind(at);
        }
    }

    /// Records that energy started (`true`) or stopped (`false`) flowing at `at` (pause /
    /// resume, EV full, suspended by the EV or the station). Not charging is PARKING_TIME.
    pub fn set_charging(&mut self, at: DateTime<Utc>, charging: bool) {
        let at = at.max(self.floor());
        if self.transitions.get(&at) == Some(&charging) {
            return;
        }
        self.transitions.insert(at, charging);
        if at < self.head.at {
            self.rewind(at);
        }
    }

    /// Whether energy is flowing (as of the latest transition).
    pub fn is_charging(&self) -> bool {
        self.transitions.last_key_value().is_none_or(|(_, c)| *c)
    }

    /// Energy delivered so far, Wh.
    pub fn energy_wh(&self) -> i64 {
        self.head
            .register_wh
            .saturating_sub(self.meter_start_wh)
            .max(0)
    }

    /// The cost if the session ended at `at` with the energy seen so far. Time is billed up
    /// to `at`, or to the latest sample if a station clock ran ahead of `at`.
    pub fn cost_at(&self, at: DateTime<Utc>) -> Result<CostSummary, PricingError> {
        let pricer = self
            .pricer
            .as_ref()
            .map_err(|e| PricingError::Rate(e.clone()))?;
        let mut acc = self.head.acc.clone();
        let until = at.max(self.head.at);
        self.advance(
            pricer,
            &mut acc,
            self.head.at,
            until,
            Fill::Total(Decimal::ZERO),
            at,
        );
        let cost = pricer.finalize(&acc)?;
        summary(&cost, self.energy_wh())
    }

    /// The cost `ahead` after `at`, assuming the charging state at `at` goes on and energy
    /// flows at the latest reported power (else the average power of the latest sample
    /// interval) from the latest sample on. Never below [`LiveCost::cost_at`] for `at`: where
    /// OCPI's step_size rule would make a later cost smaller, the current cost is returned.
    pub fn projected_cost(
        &self,
        at: DateTime<Utc>,
        ahead: chrono::Duration,
    ) -> Result<Money, PricingError> {
        let power = self
            .head
            .projection_power_w
            .unwrap_or(Decimal::ZERO)
            .max(Decimal::ZERO);
        let until = at.max(self.head.at) + ahead.max(chrono::Duration::zero());
        self.projected_with_power(at, until, power)
    }

    /// The final cost when the station reports the stop at `at` with the register at
    /// `meter_stop_wh`.
    pub fn finish(
        &mut self,
        at: DateTime<Utc>,
        meter_stop_wh: i64,
    ) -> Result<CostSummary, PricingError> {
        self.record_meter(MeterSample::new(at, meter_stop_wh, None));
        self.cost_at(at)
    }

    /// When the latest sample was measured (`None` before the first one).
    pub fn last_sample_at(&self) -> Option<DateTime<Utc>> {
        self.samples.last_key_value().map(|(at, _)| *at)
    }

    /// The energy register as last measured at or before `at`, Wh (the start's before any).
    pub fn register_until(&self, at: DateTime<Utc>) -> i64 {
        self.samples
            .range(..=at)
            .next_back()
            .map_or(self.base().register_wh, |(_, s)| s.energy_wh)
    }

    /// When the latest sample at or before `until` was measured.
    pub fn last_sample_until(&self, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let base = self.base();
        self.samples
            .range(..=until)
            .next_back()
            .map(|(at, _)| *at)
            .or((!base.initial && base.at <= until).then_some(base.at))
    }

    /// Folds everything measured so far into one checkpoint and forgets the samples and
    /// transitions behind it, so the state stays small however long the session runs (it is
    /// carried across a workflow's continue-as-new). Exact for everything after the head; a
    /// sample that arrives later with a timestamp before it is ignored (its energy is already in
    /// the register, which never goes back), a transition before it counts as at the head.
    pub fn compact(&mut self) {
        let head = self.head.clone();
        // The charging state at the head, kept as the one transition the future needs.
        let charging = self.charging_at(head.at);
        self.samples.retain(|at, _| *at > head.at);
        self.transitions.retain(|at, _| *at > head.at);
        if !charging {
            self.transitions.insert(head.at, false);
        }
        let mut base = head;
        base.position = 0;
        self.head = base.clone();
        self.checkpoints = vec![base];
    }

    /// The oldest state kept: the session start, or where it was last compacted.
    fn base(&self) -> &Checkpoint {
        self.checkpoints.first().unwrap_or(&self.head)
    }

    /// Nothing is priced before this instant.
    fn floor(&self) -> DateTime<Utc> {
        self.base().at.max(self.started_at)
    }

    /// The power the latest sample reported, else the average over its interval, W.
    pub fn projection_power_w(&self) -> Option<i64> {
        self.head
            .projection_power_w
            .and_then(|w| i64::try_from(w.trunc()).ok())
    }

    /// Ends the transaction at `at` on what was measured up to then: samples and transitions
    /// after `at` are dropped, and the register stays at the last sample at or before `at`.
    /// For a transaction the station lost (a reboot, a long fault, a stop it never confirmed):
    /// nothing after the evidence is billed. The final cost at `at`.
    pub fn close(&mut self, at: DateTime<Utc>) -> Result<CostSummary, PricingError> {
        let at = at.max(self.floor());
        let later: Vec<DateTime<Utc>> = self
            .samples
            .range((Bound::Excluded(at), Bound::Unbounded))
            .map(|(t, _)| *t)
            .collect();
        let rewound = !later.is_empty()
            || self
                .transitions
                .range((Bound::Excluded(at), Bound::Unbounded))
                .next()
                .is_some();
        for t in later {
            self.samples.remove(&t);
        }
        self.transitions.retain(|t, _| *t <= at);
        if rewound {
            self.rewind(at);
        }
        let register = self.register_until(at);
        self.finish(at, register)
    }

    /// The latest instant, from `at` on, at which a stop can still be sent so that the cost,
    /// with energy flowing at `power_w` from the latest sample until `latency` after the stop,
    /// stays at or below `limit`. `at` itself when even a stop now could pass it; `None` when no
    /// stop is needed within `horizon` (nothing would reach the limit). Pure: a binary search on
    /// the projection, to the millisecond.
    pub fn stop_deadline(
        &self,
        at: DateTime<Utc>,
        limit: Money,
        power_w: i64,
        latency: chrono::Duration,
        horizon: chrono::Duration,
    ) -> Result<Option<DateTime<Utc>>, PricingError> {
        let power = Decimal::from(power_w.max(0));
        let latency = latency.max(chrono::Duration::zero());
        let exceeds = |stop_at: DateTime<Utc>| -> Result<bool, PricingError> {
            let cost = self.projected_with_power(at, stop_at + latency, power)?;
            Ok(cost.checked_cmp(&limit)?.is_gt())
        };
        if exceeds(at)? {
            return Ok(Some(at));
        }
        let last = at + horizon.max(chrono::Duration::zero());
        if !exceeds(last)? {
            return Ok(None);
        }
        let lo = last_before(at, last, chrono::Duration::milliseconds(1), exceeds)?;
        Ok(Some(lo))
    }

    /// The latest instant, from `at` on, at which a stop can be sent so that the energy
    /// delivered, flowing at `power_w` from the latest sample until `latency` after the stop,
    /// reaches `target_wh` and no more. `at` itself once the target is (or would be) reached;
    /// `None` while no energy flows towards it (not charging, or no power).
    pub fn energy_deadline(
        &self,
        at: DateTime<Utc>,
        target_wh: i64,
        power_w: i64,
        latency: chrono::Duration,
    ) -> Option<DateTime<Utc>> {
        let remaining = target_wh.saturating_sub(self.energy_wh());
        if remaining <= 0 {
            return Some(at);
        }
        if !self.is_charging() || power_w <= 0 {
            return None;
        }
        // Wh / W = hours; in whole milliseconds, rounded down (never later than the target).
        let ms = i128::from(remaining) * 3_600_000 / i128::from(power_w);
        let reached = self.head.at + chrono::Duration::milliseconds(i64::try_from(ms).ok()?);
        Some((reached - latency.max(chrono::Duration::zero())).max(at))
    }

    /// When staying plugged in starts to cost more, from `since` on, if nothing changes (no
    /// energy, the charging state as recorded): the last instant (to the second) at the cost
    /// of `since`, within `horizon`; `since` itself when it costs more at once, `None` when it
    /// never does. A parking grace period, min_price and time-of-day elements all show in it,
    /// since it asks the tariff engine rather than reading the rate.
    pub fn parking_fee_from(
        &self,
        since: DateTime<Utc>,
        horizon: chrono::Duration,
    ) -> Result<Option<DateTime<Utc>>, PricingError> {
        let base = self.cost_at(since)?.amount;
        let more = |t: DateTime<Utc>| -> Result<bool, PricingError> {
            Ok(self.cost_at(t)?.amount.checked_cmp(&base)?.is_gt())
        };
        let last = since + horizon.max(chrono::Duration::zero());
        if !more(last)? {
            return Ok(None);
        }
        let lo = last_before(since, last, chrono::Duration::seconds(1), more)?;
        Ok(Some(lo.trunc_subsecs(0).max(since)))
    }

    /// The cost at `until` (not before `at`) with energy flowing at `power` W while charging,
    /// from the latest sample on; never below the cost at `at`.
    fn projected_with_power(
        &self,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
        power: Decimal,
    ) -> Result<Money, PricingError> {
        let now = self.cost_at(at)?.amount;
        let pricer = self
            .pricer
            .as_ref()
            .map_err(|e| PricingError::Rate(e.clone()))?;
        let until = until.max(at).max(self.head.at);
        let mut acc = self.head.acc.clone();
        self.advance(
            pricer,
            &mut acc,
            self.head.at,
            until,
            Fill::Power(power),
            at,
        );
        let projected = to_minor_units(
            pricer.finalize(&acc)?.total_cost.incl_vat,
            self.rate.currency,
        )?;
        Ok(if projected.amount > now.amount {
            projected
        } else {
            now
        })
    }

    /// Whether the state is charging at `at` (transitions at `at` included).
    fn charging_at(&self, at: DateTime<Utc>) -> bool {
        self.transitions
            .range(..=at)
            .next_back()
            .is_none_or(|(_, c)| *c)
    }

    /// Folds a sample at or after the head into the head state; `position` is its 1-based
    /// rank among all samples, for checkpointing.
    fn fold(&mut self, sample: MeterSample, position: usize) {
        let Ok(pricer) = &self.pricer else {
            self.head.at = sample.timestamp;
            self.head.initial = false;
            self.head.register_wh = self.head.register_wh.max(sample.energy_wh);
            return;
        };
        let mut head = self.head.clone();
        let register = head.register_wh.max(sample.energy_wh);
        let energy = Decimal::from(register.saturating_sub(head.register_wh));
        let secs = crate::tariff::engine::nanos_decimal(sample.timestamp - head.at);
        self.advance(
            pricer,
            &mut head.acc,
            head.at,
            sample.timestamp,
            Fill::Total(energy),
            sample.timestamp,
        );
        let average_w = if secs.is_zero() {
            None
        } else {
            energy
                .checked_mul(Decimal::from(3600))
                .and_then(|e| e.checked_div(secs))
        };
        head.projection_power_w = sample
            .power_w
            .map(Decimal::from)
            .or(average_w)
            .or(head.projection_power_w);
        head.power_kw = sample
            .power_w
            .map(|w| Decimal::from(w) / Decimal::from(1000));
        head.current_a = sample.current_a;
        head.at = sample.timestamp;
        head.initial = false;
        head.position = position;
        head.register_wh = register;
        self.head = head;
        if position.is_multiple_of(CHECKPOINT_EVERY) {
            self.checkpoints.push(self.head.clone());
        }
    }

    /// Replays everything from the last checkpoint before `at`.
    fn rewind(&mut self, at: DateTime<Utc>) {
        while self.checkpoints.len() > 1 && self.checkpoints.last().is_some_and(|c| c.at >= at) {
            self.checkpoints.pop();
        }
        let Some(base) = self.checkpoints.last().cloned() else {
            return;
        };
        // Samples before a checkpoint never move, so its rank still holds.
        let mut position = base.position;
        let from = if base.initial {
            Bound::Included(base.at)
        } else {
            Bound::Excluded(base.at)
        };
        let replay: Vec<MeterSample> = self
            .samples
            .range((from, Bound::Unbounded))
            .map(|(_, s)| *s)
            .collect();
        self.head = base;
        for sample in replay {
            position += 1;
            self.fold(sample, position);
        }
    }

    /// Prices `[from, to)` into `acc`: cut at charging transitions up to `horizon`, energy
    /// from `fill`, power and current of the head sample.
    fn advance(
        &self,
        pricer: &Pricer,
        acc: &mut Accumulator,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        fill: Fill,
        horizon: DateTime<Utc>,
    ) {
        if to < from {
            return;
        }
        let mut subs = Vec::new();
        let mut state = self.charging_at(from);
        let mut cursor = from;
        // BTreeMap refuses an empty excluded range, hence the guard.
        let inside = if to > from {
            Some(
                self.transitions
                    .range((Bound::Excluded(from), Bound::Excluded(to))),
            )
        } else {
            None
        };
        for (&t, &charging) in inside.into_iter().flatten() {
            if t > horizon {
                break;
            }
            if charging != state {
                subs.push((cursor, t, state));
                cursor = t;
                state = charging;
            }
        }
        subs.push((cursor, to, state));
        let secs = |s: &(DateTime<Utc>, DateTime<Utc>, bool)| {
            crate::tariff::engine::nanos_decimal(s.1 - s.0)
        };
        let charging_secs: Decimal = subs.iter().filter(|s| s.2).map(secs).sum();
        let all_secs: Decimal = subs.iter().map(secs).sum();
        let (energy, weights_charging) = match fill {
            Fill::Total(e) => (e, !charging_secs.is_zero()),
            Fill::Power(w) => ((w * charging_secs / Decimal::from(3600)).round_dp(3), true),
        };
        let weight_total = if weights_charging {
            charging_secs
        } else {
            all_secs
        };
        let weighted: Vec<bool> = subs.iter().map(|s| !weights_charging || s.2).collect();
        let last_weighted = weighted.iter().rposition(|w| *w);
        let power_kw = match fill {
            Fill::Power(w) => Some(Range::at(w / Decimal::from(1000))),
            Fill::Total(_) => self.head.power_kw.map(Range::at),
        };
        let current_a = self.head.current_a.map(Range::at);
        let ctx = SessionContext {
            start: self.started_at,
            reservation_expired: false,
        };
        let mut left = energy;
        for (i, sub) in subs.iter().enumerate() {
            let share = if !weighted[i] {
                Decimal::ZERO
            } else if Some(i) == last_weighted || weight_total.is_zero() {
                std::mem::take(&mut left)
            } else {
                let part = (energy * secs(sub) / weight_total)
                    .round_dp_with_strategy(3, RoundingStrategy::ToZero);
                left -= part;
                part
            };
            let span = Span {
                start: sub.0,
                end: sub.1,
                charging: sub.2,
                energy_wh: share,
                power_kw,
                current_a,
            };
            pricer.add_span(acc, &span, &ctx);
        }
    }
}

fn summary(cost: &TariffCost, energy_wh: i64) -> Result<CostSummary, PricingError> {
    let whole = |secs: Decimal| i64::try_from(secs.trunc()).unwrap_or(i64::MAX);
    let breakdown = cost
        .lines
        .iter()
        .map(|l| CostComponent {
            dimension: l.dimension,
            quantity: l.volume,
            unit_price: l.price,
            tax: l.vat.unwrap_or(Decimal::ZERO),
            before_tax: l.cost.excl_vat,
            total: l.cost.incl_vat,
        })
        .collect();
    Ok(CostSummary {
        amount: to_minor_units(cost.total_cost.incl_vat, cost.currency)?,
        energy_wh,
        charging_seconds: whole(cost.charging_secs),
        parking_seconds: whole(cost.parking_secs),
        breakdown,
        amount_excl_vat: Some(to_minor_units(cost.total_cost.excl_vat, cost.currency)?),
    })
}

/// What a [`LiveCost`] serializes to: its inputs only; the engine state is rebuilt on load.
#[derive(Serialize, Deserialize)]
struct LiveCostData {
    rate: Rate,
    started_at: DateTime<Utc>,
    meter_start_wh: i64,
    #[serde(default)]
    samples: Vec<MeterSample>,
    #[serde(default)]
    transitions: Vec<(DateTime<Utc>, bool)>,
    /// The compacted state the samples fold onto (absent: the session start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<Checkpoint>,
}

impl From<LiveCost> for LiveCostData {
    fn from(live: LiveCost) -> Self {
        let base = live.checkpoints.first().filter(|c| !c.initial).cloned();
        Self {
            base,
            rate: live.rate,
            started_at: live.started_at,
            meter_start_wh: live.meter_start_wh,
            samples: live.samples.into_values().collect(),
            transitions: live.transitions.into_iter().collect(),
        }
    }
}

impl From<LiveCostData> for LiveCost {
    fn from(data: LiveCostData) -> Self {
        let mut live = LiveCost::start(data.rate, data.started_at, data.meter_start_wh);
        if let Some(base) = data.base {
            live.head = base.clone();
            live.checkpoints = vec![base];
        }
        for (at, charging) in data.transitions {
            live.set_charging(at, charging);
        }
        for sample in data.samples {
            live.record_meter(sample);
        }
        live
    }
}

/// The last instant (to `precision`) before `test` turns true, for a `test` false at `lo`,
/// true at `hi` and monotone between: a binary search, so pure and cheap enough for a
/// workflow task.
fn last_before(
    mut lo: DateTime<Utc>,
    mut hi: DateTime<Utc>,
    precision: chrono::Duration,
    test: impl Fn(DateTime<Utc>) -> Result<bool, PricingError>,
) -> Result<DateTime<Utc>, PricingError> {
    while hi - lo > precision {
        let mid = lo + (hi - lo) / 2;
        if test(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(lo)
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
            ..Default::default()
        };
        let mut live = LiveCost::start(rate, t(0), 1000);
        live.record_meter(MeterSample::new(t(30), 11_000, Some(20_000)));
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
        let rate = Rate::new(
            Currency::EUR,
            vec![comp(Dimension::Flat, "1", None), parking],
        );
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

    fn tariff_rate(tariff: &str, tz: Option<&str>) -> Rate {
        Rate {
            currency: Currency::EUR,
            tariff: Some(serde_json::from_str(tariff).unwrap()),
            time_zone: tz.map(str::to_owned),
            ..Default::default()
        }
    }

    const NIGHT_AND_DAY: &str = r#"{"currency":"EUR","elements":[
        {"price_components":[{"type":"ENERGY","price":0.10,"step_size":1}],"restrictions":{"start_time":"22:00","end_time":"13:00"}},
        {"price_components":[{"type":"ENERGY","price":0.50,"step_size":1},{"type":"TIME","price":1.00,"step_size":1}]}]}"#;

    #[test]
    fn energy_between_samples_is_split_at_a_price_change() {
        // 12:50 -> 13:10 UTC with 2 kWh: 1 kWh at night price, 1 kWh at day price. TIME comes
        // from the unrestricted day element all along: the night element has no TIME component.
        let mut live = LiveCost::start(tariff_rate(NIGHT_AND_DAY, None), t(50), 0);
        live.record_meter(MeterSample::new(t(70), 2_000, None));
        let cost = live.cost_at(t(70)).unwrap();
        // 0.10 + 0.50 + 20 min x 1.00/h (0.3333…) = 0.9333… -> 0.93
        assert_eq!(cost.amount, Money::new(93, Currency::EUR));
        assert_eq!(
            cost.breakdown[0].quantity,
            Decimal::ONE,
            "1 kWh at the night price"
        );
        assert_eq!(cost.charging_seconds, 1200);
    }

    #[test]
    fn energy_threshold_is_cut_inside_a_sample_interval() {
        // First kWh free, then 0.20/kWh; one interval of 3 kWh: 2 kWh billed.
        let tariff = r#"{"currency":"EUR","elements":[
            {"price_components":[{"type":"ENERGY","price":0,"step_size":1}],"restrictions":{"max_kwh":1}},
            {"price_components":[{"type":"ENERGY","price":0.20,"step_size":1}]}]}"#;
        let mut live = LiveCost::start(tariff_rate(tariff, None), t(0), 10_000);
        live.record_meter(MeterSample::new(t(30), 13_000, Some(6_000)));
        assert_eq!(
            live.cost_at(t(30)).unwrap().amount,
            Money::new(40, Currency::EUR)
        );
    }

    #[test]
    fn late_and_duplicate_samples_are_priced_at_their_timestamps() {
        let samples: Vec<MeterSample> = (1..=100)
            .map(|i| MeterSample::new(t(i), i * 200, Some(12_000)))
            .collect();
        let mut in_order =
            LiveCost::start(tariff_rate(NIGHT_AND_DAY, Some("Europe/Paris")), t(0), 0);
        for s in &samples {
            in_order.record_meter(*s);
        }
        // Live stream with a 40-minute outage whose queued samples arrive after later ones.
        let mut late = LiveCost::start(tariff_rate(NIGHT_AND_DAY, Some("Europe/Paris")), t(0), 0);
        for s in samples
            .iter()
            .filter(|s| !(30..70).contains(&(s.timestamp - t(0)).num_minutes()))
        {
            late.record_meter(*s);
        }
        let before = late.cost_at(t(100)).unwrap();
        for s in samples
            .iter()
            .filter(|s| (30..70).contains(&(s.timestamp - t(0)).num_minutes()))
        {
            late.record_meter(*s);
            late.record_meter(*s);
        }
        late.record_meter(samples[10]);
        assert_eq!(
            late.cost_at(t(100)).unwrap(),
            in_order.cost_at(t(100)).unwrap()
        );
        // Same energy either way, but where it fell across 13:00 Paris (12:00 UTC) changed.
        assert_eq!(before.energy_wh, 20_000);
        assert_eq!(late, in_order);
    }

    #[test]
    fn late_transition_rewinds() {
        let rate = Rate::new(
            Currency::EUR,
            vec![
                comp(Dimension::Time, "6", None),
                comp(Dimension::ParkingTime, "12", None),
            ],
        );
        let mut a = LiveCost::start(rate.clone(), t(0), 0);
        let mut b = LiveCost::start(rate, t(0), 0);
        for i in 1..=60 {
            a.record_meter(MeterSample::new(t(i), i * 100, None));
            b.record_meter(MeterSample::new(t(i), i * 100, None));
            if i == 20 {
                a.set_charging(t(20), false);
            }
        }
        b.set_charging(t(20), false);
        assert!(!a.is_charging() && !b.is_charging());
        // 20 min charging at 6/h + 40 min parking at 12/h = 2 + 8.
        assert_eq!(
            a.cost_at(t(60)).unwrap().amount,
            Money::new(1000, Currency::EUR)
        );
        assert_eq!(a.cost_at(t(60)).unwrap(), b.cost_at(t(60)).unwrap());
    }

    #[test]
    fn station_clock_ahead_keeps_reported_energy() {
        let rate = Rate::new(Currency::EUR, vec![comp(Dimension::Energy, "1", None)]);
        let mut live = LiveCost::start(rate, t(0), 0);
        live.record_meter(MeterSample::new(t(10), 1_000, None));
        assert_eq!(
            live.cost_at(t(9)).unwrap().amount,
            Money::new(100, Currency::EUR)
        );
    }

    #[test]
    fn projection_uses_power_or_the_last_interval() {
        let rate = Rate::new(Currency::EUR, vec![comp(Dimension::Energy, "1", None)]);
        let mut live = LiveCost::start(rate, t(0), 0);
        // No power reported: 1 kWh in 6 min = 10 kW average.
        live.record_meter(MeterSample::new(t(6), 1_000, None));
        let p = live
            .projected_cost(t(6), chrono::Duration::minutes(6))
            .unwrap();
        assert_eq!(p, Money::new(200, Currency::EUR));
        // Not charging: projection adds no energy.
        live.set_charging(t(6), false);
        assert_eq!(
            live.projected_cost(t(6), chrono::Duration::hours(1))
                .unwrap(),
            Money::new(100, Currency::EUR)
        );
    }

    #[test]
    fn invalid_rate_is_reported_not_panicked() {
        let mut rate = Rate::new(Currency::EUR, vec![comp(Dimension::Energy, "1", None)]);
        rate.time_zone = Some("Nowhere/Land".into());
        let mut live = LiveCost::start(rate, t(0), 0);
        live.record_meter(MeterSample::new(t(1), 10, None));
        assert!(matches!(
            live.cost_at(t(1)),
            Err(PricingError::Rate(RateError::UnknownTimeZone(_)))
        ));
        assert!(
            live.projected_cost(t(1), chrono::Duration::minutes(1))
                .is_err()
        );
    }

    #[test]
    fn serializes_inputs_and_rebuilds_the_same_state() {
        let mut live = LiveCost::start(tariff_rate(NIGHT_AND_DAY, Some("Europe/Paris")), t(0), 500);
        for i in 1..=70 {
            live.record_meter(
                MeterSample::new(t(i), 500 + i * 150, Some(9_000)).with_current(Decimal::from(13)),
            );
        }
        live.set_charging(t(45), false);
        live.set_charging(t(50), true);
        let json = serde_json::to_string(&live).unwrap();
        let back: LiveCost = serde_json::from_str(&json).unwrap();
        assert_eq!(back, live);
        assert_eq!(back.cost_at(t(80)).unwrap(), live.cost_at(t(80)).unwrap());
    }

    #[test]
    fn close_bills_nothing_after_the_evidence() {
        let rate = Rate::new(
            Currency::EUR,
            vec![
                comp(Dimension::Energy, "0.30", None),
                comp(Dimension::Time, "6", None),
            ],
        );
        let mut live = LiveCost::start(rate, t(0), 1_000);
        live.record_meter(MeterSample::new(t(5), 6_000, Some(60_000)));
        live.record_meter(MeterSample::new(t(8), 9_000, Some(60_000)));
        live.set_charging(t(9), false);
        // Closed at minute 5 (say a fault began there): the later reading and transition go.
        let cost = live.close(t(5)).unwrap();
        // 5 kWh * 0.30 + 5 min * 6/h = 1.50 + 0.50
        assert_eq!(cost.amount, Money::new(200, Currency::EUR));
        assert_eq!((cost.energy_wh, cost.charging_seconds), (5_000, 300));
        assert_eq!(live.last_sample_at(), Some(t(5)));
        assert_eq!(live.register_until(t(30)), 6_000);
        assert_eq!(live.last_sample_until(t(4)), None);
    }

    #[test]
    fn the_parking_fee_starts_after_the_grace_period() {
        // 6.00/h parking after a 15 min grace; the EV is full at minute 5.
        let mut parking = comp(Dimension::ParkingTime, "6", None);
        parking.grace_period = Some("0.25".parse().unwrap());
        let rate = Rate::new(
            Currency::EUR,
            vec![comp(Dimension::Energy, "0.30", None), parking],
        );
        let mut live = LiveCost::start(rate.clone(), t(0), 0);
        live.record_meter(MeterSample::new(t(5), 5_000, Some(0)));
        live.set_charging(t(5), false);
        let day = chrono::Duration::hours(24);
        // To within the seconds a first cent of parking takes (6.00/h: a cent in 6 s, rounded half up).
        let within = |from: Option<DateTime<Utc>>, expected: DateTime<Utc>| {
            let off = (from.unwrap() - expected).num_seconds();
            assert!((0..=3).contains(&off), "{from:?} vs {expected}");
        };
        within(
            live.parking_fee_from(t(5), day).unwrap(),
            t(20), // 15 min of free parking from minute 5
        );
        // The grace counts parking so far: 10 min parked earlier leaves 5.
        let mut twice = LiveCost::start(rate, t(0), 0);
        twice.set_charging(t(1), false);
        twice.set_charging(t(11), true);
        twice.record_meter(MeterSample::new(t(20), 5_000, Some(0)));
        twice.set_charging(t(20), false);
        within(twice.parking_fee_from(t(20), day).unwrap(), t(25));
        // No parking price: staying costs nothing more.
        let free = LiveCost::start(
            Rate::new(Currency::EUR, vec![comp(Dimension::Energy, "0.30", None)]),
            t(0),
            0,
        );
        let mut free = free;
        free.set_charging(t(5), false);
        assert_eq!(free.parking_fee_from(t(5), day).unwrap(), None);
    }

    #[test]
    fn the_energy_deadline_stops_at_the_target() {
        let rate = Rate::new(Currency::EUR, vec![comp(Dimension::Energy, "1", None)]);
        let mut live = LiveCost::start(rate, t(0), 1_000);
        // 4 kWh by minute 24 (10 kW); a 10 kWh target at 10 kW is reached 36 min later, at
        // minute 60; a 1 min stop latency means stop at 59.
        live.record_meter(MeterSample::new(t(24), 5_000, Some(10_000)));
        let minute = chrono::Duration::minutes(1);
        assert_eq!(
            live.energy_deadline(t(25), 10_000, 10_000, minute),
            Some(t(59))
        );
        // A higher assumed power brings it earlier (20 kW: 6 kWh in 18 min -> 42, less 1).
        assert_eq!(
            live.energy_deadline(t(25), 10_000, 20_000, minute),
            Some(t(41))
        );
        // Reached (or within the latency of it): stop now.
        assert_eq!(
            live.energy_deadline(t(25), 4_000, 10_000, minute),
            Some(t(25))
        );
        assert_eq!(
            live.energy_deadline(t(25), 4_100, 10_000, minute),
            Some(t(25))
        );
        // Nothing flowing: no deadline until energy flows again.
        assert_eq!(live.energy_deadline(t(25), 10_000, 0, minute), None);
        live.set_charging(t(26), false);
        assert_eq!(live.energy_deadline(t(27), 10_000, 10_000, minute), None);
    }

    #[test]
    fn the_stop_deadline_leaves_room_for_the_latency() {
        // 1.00/kWh, a 5.00 hold, 10 kW: 5 kWh in 30 min. With a 1 min stop latency the stop
        // must go out by minute 29.
        let rate = Rate::new(Currency::EUR, vec![comp(Dimension::Energy, "1", None)]);
        let live = LiveCost::start(rate, t(0), 0);
        let hold = Money::new(500, Currency::EUR);
        let deadline = live
            .stop_deadline(
                t(0),
                hold,
                10_000,
                chrono::Duration::minutes(1),
                chrono::Duration::hours(6),
            )
            .unwrap()
            .unwrap();
        // Rounded to the cent, 5.0049 still fits: up to 1.8 s more at 10 kW.
        let off = (deadline - t(29)).num_milliseconds();
        assert!(
            (0..=1_800).contains(&off),
            "deadline {deadline} vs minute 29"
        );
        // At the deadline the projection stays within the hold; a second later it would not.
        let at = |d: DateTime<Utc>| {
            live.projected_with_power(
                t(0),
                d + chrono::Duration::minutes(1),
                Decimal::from(10_000),
            )
            .unwrap()
        };
        assert!(at(deadline).amount <= hold.amount);
        assert!(at(deadline + chrono::Duration::seconds(3)).amount > hold.amount);
        // Already past: stop now. Nothing flowing and no time component: no deadline.
        let mut spent = live.clone();
        spent.record_meter(MeterSample::new(t(40), 6_000, Some(0)));
        let now = spent
            .stop_deadline(
                t(40),
                hold,
                10_000,
                chrono::Duration::zero(),
                chrono::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(now, Some(t(40)));
        let idle = live
            .stop_deadline(
                t(0),
                hold,
                0,
                chrono::Duration::minutes(1),
                chrono::Duration::hours(6),
            )
            .unwrap();
        assert_eq!(idle, None);
    }

    #[test]
    fn compacting_keeps_the_cost_and_forgets_the_samples() {
        let rate = tariff_rate(NIGHT_AND_DAY, Some("Europe/Paris"));
        let mut whole = LiveCost::start(rate.clone(), t(0), 500);
        let mut compacted = LiveCost::start(rate, t(0), 500);
        for i in 1..=2_000 {
            let sample = MeterSample::new(t(i), 500 + i * 150, Some(9_000));
            whole.record_meter(sample);
            compacted.record_meter(sample);
            if i == 700 {
                whole.set_charging(t(700), false);
                compacted.set_charging(t(700), false);
            }
            if i == 710 {
                whole.set_charging(t(710), true);
                compacted.set_charging(t(710), true);
            }
            if i % 500 == 0 {
                compacted.compact();
                // Carried across a continue-as-new: the JSON stays small.
                let json = serde_json::to_string(&compacted).unwrap();
                assert!(json.len() < 4_000, "{} bytes after {i} samples", json.len());
                compacted = serde_json::from_str(&json).unwrap();
            }
        }
        assert_eq!(
            compacted.cost_at(t(2_001)).unwrap(),
            whole.cost_at(t(2_001)).unwrap()
        );
        assert_eq!(
            compacted
                .projected_cost(t(2_001), chrono::Duration::minutes(10))
                .unwrap(),
            whole
                .projected_cost(t(2_001), chrono::Duration::minutes(10))
                .unwrap()
        );
        // A late sample from before the compaction adds nothing (its energy is in the register).
        compacted.record_meter(MeterSample::new(t(1_200), 500 + 1_200 * 150, Some(9_000)));
        assert_eq!(compacted.energy_wh(), whole.energy_wh());
        assert_eq!(
            compacted.clone().close(t(2_000)).unwrap(),
            whole.clone().close(t(2_000)).unwrap()
        );
        assert_eq!(
            compacted.register_until(t(1_000)),
            compacted.register_until(t(2_000))
        );
    }
}
