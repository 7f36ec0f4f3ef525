//! The cost engine: prices a session given as a sequence of *pieces* (stretches during which
//! one set of tariff elements applies) with an OCPI 2.2.1 tariff.
//!
//! Rules, in the order they apply (OCPI 2.2.1 mod_tariffs / mod_cdrs, see docs/tariff-engine.md):
//! 1. Per piece and per dimension, the first element in list order whose restrictions all hold
//!    at the piece's start and that has a component of that dimension prices the piece.
//!    Restrictions see local time / date / weekday in the tariff's time zone, session energy and
//!    duration so far, and the instantaneous power and current.
//! 2. FLAT is charged once per session (the first piece offering one); a reservation FLAT once
//!    more if the session has reservation time. Reservation time is priced only by elements
//!    with a `reservation` restriction, other time only by elements without one:
//!    RESERVATION elements apply to all reservation time, RESERVATION_EXPIRES elements only
//!    when the reservation expired without charging (so an expiry fee can replace the fee).
//! 3. step_size is applied once per session: ENERGY on the session total with the step of the
//!    last ENERGY component used; TIME and PARKING_TIME together, rounding only the last
//!    priced time dimension (charging time is billed exactly when parking follows). The
//!    rounding extra is billed at the last component's price.
//! 4. VAT per component (`vat` omitted = no VAT, priced like 0 % but reported as `None`).
//! 5. `min_price` / `max_price` clamp the excl. and incl. VAT totals independently.
//!
//! Everything is exact [`Decimal`]; divisions by 3600 (seconds to hours) and 1000 (Wh to kWh)
//! happen last, once per cost line. No clock reads, no floats, no hash maps.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::{
    PriceBound, PriceComponent, ReservationRestriction, Tariff, TariffElement, TariffError,
};
use crate::money::Currency;
use crate::rate::Dimension;

/// OCPI `Price`: an amount excl. and incl. VAT, major units, exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Excluding VAT.
    pub excl_vat: Decimal,
    /// Including VAT.
    pub incl_vat: Decimal,
}

impl Price {
    fn checked_add(self, other: Price) -> Option<Price> {
        Some(Price {
            excl_vat: self.excl_vat.checked_add(other.excl_vat)?,
            incl_vat: self.incl_vat.checked_add(other.incl_vat)?,
        })
    }
}

/// Instantaneous values over a piece (min and max seen), for power / current restrictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Lowest value in the piece.
    pub min: Decimal,
    /// Highest value in the piece.
    pub max: Decimal,
}

impl Range {
    /// A single value.
    pub fn at(value: Decimal) -> Self {
        Self {
            min: value,
            max: value,
        }
    }
}

/// A stretch of a session priced as one unit; restrictions are checked at `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// When the piece starts.
    pub start: DateTime<Utc>,
    /// Energy delivered in the piece, Wh.
    pub energy_wh: Decimal,
    /// Charging time in the piece (OCPI TIME), seconds.
    pub charging_secs: Decimal,
    /// Not-charging time in the piece (OCPI PARKING_TIME), seconds.
    pub parking_secs: Decimal,
    /// Reservation time in the piece, seconds (priced by reservation elements only).
    pub reservation_secs: Decimal,
    /// Whether the piece is reservation time.
    pub reservation: bool,
    /// Power in kW, when known. Unknown power satisfies power restrictions (as OCPI CDRs
    /// without power dimensions do).
    pub power_kw: Option<Range>,
    /// Current in A summed over phases, when known (unknown satisfies current restrictions).
    pub current_a: Option<Range>,
}

impl Piece {
    /// An empty piece at `start`.
    pub fn at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            energy_wh: Decimal::ZERO,
            charging_secs: Decimal::ZERO,
            parking_secs: Decimal::ZERO,
            reservation_secs: Decimal::ZERO,
            reservation: false,
            power_kw: None,
            current_a: None,
        }
    }
}

/// What is known about the whole session when pricing a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionContext {
    /// Session start, for `min_duration` / `max_duration`.
    pub start: DateTime<Utc>,
    /// The session was a reservation that expired without charging (selects
    /// RESERVATION_EXPIRES elements for reservation time).
    pub reservation_expired: bool,
}

/// Index of a price component: (element, component).
type CompRef = (u32, u32);

/// Volume billed at one component so far (Wh, seconds, or 1 for FLAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    element: u32,
    component: u32,
    volume: Decimal,
}

/// The running state of a priced session: totals and the volume billed per component. Small
/// and independent of session length (one line per component used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accumulator {
    /// Session energy so far, Wh.
    pub energy_wh: Decimal,
    /// Charging time so far, seconds.
    pub charging_secs: Decimal,
    /// Not-charging time so far, seconds.
    pub parking_secs: Decimal,
    /// Reservation time so far, seconds.
    pub reservation_secs: Decimal,
    lines: Vec<Line>,
    flat: Option<CompRef>,
    reservation_flat: Option<CompRef>,
    last_energy: Option<CompRef>,
    last_time: Option<CompRef>,
    last_parking: Option<CompRef>,
    last_reservation: Option<CompRef>,
    /// TIME or PARKING_TIME: the last priced time dimension (the one step_size rounds).
    last_time_dimension: Option<Dimension>,
    overflow: bool,
}

impl Accumulator {
    fn bill(&mut self, comp: CompRef, volume: Decimal) {
        if let Some(line) = self
            .lines
            .iter_mut()
            .find(|l| (l.element, l.component) == comp)
        {
            match line.volume.checked_add(volume) {
                Some(v) => line.volume = v,
                None => self.overflow = true,
            }
        } else {
            self.lines.push(Line {
                element: comp.0,
                component: comp.1,
                volume,
            });
        }
    }

    fn total(&mut self, into: fn(&mut Self) -> &mut Decimal, volume: Decimal) {
        let slot = into(self);
        match slot.checked_add(volume) {
            Some(v) => *slot = v,
            None => self.overflow = true,
        }
    }
}

/// One priced line of the result: a component and the volume billed at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    /// Dimension billed.
    #[serde(rename = "type")]
    pub dimension: Dimension,
    /// Whether it is reservation cost.
    pub reservation: bool,
    /// Index of the tariff element.
    pub element: usize,
    /// Index of the component in the element.
    pub component: usize,
    /// Billed volume after step_size: kWh for ENERGY, hours for TIME / PARKING_TIME, 1 for FLAT.
    pub volume: Decimal,
    /// Price per unit excl. VAT.
    pub price: Decimal,
    /// VAT percent; `None` = no VAT applicable.
    pub vat: Option<Decimal>,
    /// Cost of the line.
    pub cost: Price,
}

/// The priced session: every OCPI CDR total, exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffCost {
    /// Currency of every amount.
    pub currency: Currency,
    /// Total after min / max price.
    pub total_cost: Price,
    /// FLAT (excl. reservation FLAT).
    pub fixed_cost: Price,
    /// ENERGY.
    pub energy_cost: Price,
    /// TIME (charging).
    pub time_cost: Price,
    /// PARKING_TIME.
    pub parking_cost: Price,
    /// Reservation elements (FLAT and TIME).
    pub reservation_cost: Price,
    /// Session energy, Wh.
    pub energy_wh: Decimal,
    /// Charging time, seconds.
    pub charging_secs: Decimal,
    /// Not-charging time, seconds.
    pub parking_secs: Decimal,
    /// Energy billed after step_size, Wh.
    pub billed_energy_wh: Decimal,
    /// Charging time billed after step_size, seconds.
    pub billed_charging_secs: Decimal,
    /// Parking time billed after step_size, seconds.
    pub billed_parking_secs: Decimal,
    /// Whether `min_price` lifted the total.
    pub min_price_applied: bool,
    /// Whether `max_price` capped the total.
    pub max_price_applied: bool,
    /// Every component billed, in tariff order.
    pub lines: Vec<CostLine>,
}

/// Why the engine could not price.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// An amount or volume exceeded the decimal range.
    #[error("amount out of range: check the tariff prices and the session volumes")]
    Overflow,
}

/// A validated tariff in a time zone, ready to price pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricer {
    tariff: Tariff,
    tz: Tz,
    /// Local times of day where an element may switch.
    cut_times: Vec<NaiveTime>,
    /// Session durations (s) where an element may switch.
    cut_durations: Vec<i64>,
    /// Parking durations (s) where an element may switch.
    cut_parking: Vec<i64>,
    /// Session energies (Wh) where an element may switch.
    cut_energy_wh: Vec<Decimal>,
}

const SECS_PER_HOUR: Decimal = Decimal::from_parts(3600, 0, 0, false, 0);
const WH_PER_KWH: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

impl Pricer {
    /// Validates `tariff` and prepares it for pricing in time zone `tz`.
    pub fn new(tariff: Tariff, tz: Tz) -> Result<Self, TariffError> {
        tariff.validate()?;
        let mut cut_times = Vec::new();
        let mut cut_durations = Vec::new();
        let mut cut_parking = Vec::new();
        let mut cut_energy_wh = Vec::new();
        for r in tariff
            .elements
            .iter()
            .filter_map(|e| e.restrictions.as_ref())
        {
            cut_times.extend(r.start_time.iter().chain(r.end_time.iter()).copied());
            if r.start_date.is_some() || r.end_date.is_some() || !r.day_of_week.is_empty() {
                cut_times.push(NaiveTime::MIN);
            }
            cut_durations.extend(r.min_duration.iter().chain(r.max_duration.iter()).copied());
            cut_parking.extend(r.min_parking_duration.iter().copied());
            for kwh in r.min_kwh.iter().chain(r.max_kwh.iter()) {
                if let Some(wh) = kwh.checked_mul(WH_PER_KWH) {
                    cut_energy_wh.push(wh);
                }
            }
        }
        for v in [&mut cut_durations, &mut cut_parking] {
            v.sort_unstable();
            v.dedup();
        }
        cut_times.sort_unstable();
        cut_times.dedup();
        cut_energy_wh.sort_unstable();
        cut_energy_wh.dedup();
        Ok(Self {
            tariff,
            tz,
            cut_times,
            cut_durations,
            cut_parking,
            cut_energy_wh,
        })
    }

    /// The tariff priced.
    pub fn tariff(&self) -> &Tariff {
        &self.tariff
    }

    /// The time zone of the tariff's local times.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    fn matches(
        &self,
        element: &TariffElement,
        piece: &Piece,
        acc: &Accumulator,
        ctx: &SessionContext,
    ) -> bool {
        let Some(r) = &element.restrictions else {
            return !piece.reservation;
        };
        match r.reservation {
            None if piece.reservation => return false,
            Some(_) if !piece.reservation => return false,
            Some(ReservationRestriction::ReservationExpires) if !ctx.reservation_expired => {
                return false;
            }
            _ => {}
        }
        let local = piece.start.with_timezone(&self.tz);
        let time = local.time();
        let in_time = match (r.start_time, r.end_time) {
            (Some(s), Some(e)) if e < s => time >= s || time < e,
            (Some(s), Some(e)) if e == s => true,
            (s, e) => s.is_none_or(|s| time >= s) && e.is_none_or(|e| time < e),
        };
        let date = local.date_naive();
        let energy_kwh = acc.energy_wh / WH_PER_KWH;
        let duration = (piece.start - ctx.start).num_seconds();
        let parking = acc.parking_secs;
        in_time
            && r.start_date.is_none_or(|d| date >= d)
            && r.end_date.is_none_or(|d| date < d)
            && (r.day_of_week.is_empty() || r.day_of_week.iter().any(|d| d.is(local.weekday())))
            && r.min_kwh.is_none_or(|v| energy_kwh >= v)
            && r.max_kwh.is_none_or(|v| energy_kwh < v)
            && r.min_duration.is_none_or(|v| duration >= v)
            && r.max_duration.is_none_or(|v| duration < v)
            && r.min_parking_duration
                .is_none_or(|v| parking >= Decimal::from(v))
            && piece.power_kw.is_none_or(|p| {
                r.min_power.is_none_or(|v| p.min >= v) && r.max_power.is_none_or(|v| p.max < v)
            })
            && piece.current_a.is_none_or(|c| {
                r.min_current.is_none_or(|v| c.min >= v) && r.max_current.is_none_or(|v| c.max < v)
            })
    }

    /// Adds one piece as is (no cutting): the CDR path, where the CPO already cut periods.
    pub fn add(&self, acc: &mut Accumulator, piece: &Piece, ctx: &SessionContext) {
        let mut found: [Option<CompRef>; 4] = [None; 4];
        let mut open = 4;
        for (e, element) in self.tariff.elements.iter().enumerate() {
            if open == 0 || !self.matches(element, piece, acc, ctx) {
                continue;
            }
            for (c, comp) in element.price_components.iter().enumerate() {
                let slot = &mut found[dimension_index(comp.dimension)];
                if slot.is_none() {
                    *slot = Some((to_u32(e), to_u32(c)));
                    open -= 1;
                }
            }
        }
        let [flat, energy, time, parking] = found;
        if piece.reservation {
            if acc.reservation_flat.is_none() {
                acc.reservation_flat = flat;
            }
            if let Some(comp) = time.filter(|_| piece.reservation_secs > Decimal::ZERO) {
                acc.bill(comp, piece.reservation_secs);
                acc.last_reservation = Some(comp);
            }
            acc.total(|a| &mut a.reservation_secs, piece.reservation_secs);
            return;
        }
        if acc.flat.is_none() {
            acc.flat = flat;
        }
        if let Some(comp) = energy.filter(|_| !piece.energy_wh.is_zero()) {
            acc.bill(comp, piece.energy_wh);
            acc.last_energy = Some(comp);
        }
        if let Some(comp) = time.filter(|_| piece.charging_secs > Decimal::ZERO) {
            acc.bill(comp, piece.charging_secs);
            acc.last_time = Some(comp);
            acc.last_time_dimension = Some(Dimension::Time);
        }
        if let Some(comp) = parking.filter(|_| piece.parking_secs > Decimal::ZERO) {
            acc.bill(comp, piece.parking_secs);
            acc.last_parking = Some(comp);
            acc.last_time_dimension = Some(Dimension::ParkingTime);
        }
        acc.total(|a| &mut a.energy_wh, piece.energy_wh);
        acc.total(|a| &mut a.charging_secs, piece.charging_secs);
        acc.total(|a| &mut a.parking_secs, piece.parking_secs);
    }

    /// Adds the stretch `[start, end)` of a live session, cutting it wherever an element may
    /// switch (local times of day, midnight, duration, parking and energy thresholds) and
    /// spreading `energy_wh` over it in proportion to time.
    pub fn add_span(&self, acc: &mut Accumulator, span: &Span, ctx: &SessionContext) {
        let mut at = span.start;
        let mut energy_left = span.energy_wh;
        // Terminates: every round either moves `at` forward to the next cut or passes an
        // energy threshold, and there are finitely many of those before `span.end`.
        loop {
            let mut end = span.end;
            if let Some(cut) = self.next_cut(at, acc, span.charging, ctx) {
                end = end.min(cut);
            }
            let secs_total = nanos_decimal(span.end - at);
            let secs = nanos_decimal(end - at);
            let mut energy = if end >= span.end || secs_total.is_zero() {
                energy_left
            } else {
                (energy_left * secs / secs_total)
                    .round_dp_with_strategy(3, RoundingStrategy::ToZero)
            };
            // Energy thresholds: cut where the session energy crosses one.
            if let Some(threshold) = self
                .cut_energy_wh
                .iter()
                .find(|&&t| acc.energy_wh < t && acc.energy_wh + energy > t)
            {
                let part = *threshold - acc.energy_wh;
                let nanos = (Decimal::from((end - at).num_nanoseconds().unwrap_or(i64::MAX))
                    * part
                    / energy)
                    .trunc();
                end = at + Duration::nanoseconds(i64::try_from(nanos).unwrap_or(0));
                energy = part;
            }
            let secs = nanos_decimal(end - at);
            let mut piece = Piece::at(at);
            piece.energy_wh = energy;
            piece.power_kw = span.power_kw;
            piece.current_a = span.current_a;
            if span.charging {
                piece.charging_secs = secs;
            } else {
                piece.parking_secs = secs;
            }
            self.add(acc, &piece, ctx);
            energy_left -= energy;
            if end >= span.end {
                return;
            }
            at = end;
        }
    }

    /// The next instant after `at` where a restriction may change its verdict.
    fn next_cut(
        &self,
        at: DateTime<Utc>,
        acc: &Accumulator,
        charging: bool,
        ctx: &SessionContext,
    ) -> Option<DateTime<Utc>> {
        let mut best: Option<DateTime<Utc>> = None;
        let mut offer = |t: DateTime<Utc>| {
            if t > at && best.is_none_or(|b| t < b) {
                best = Some(t);
            }
        };
        if !self.cut_times.is_empty() {
            let local_date = at.with_timezone(&self.tz).date_naive();
            for day in [local_date, local_date + Duration::days(1)] {
                for time in &self.cut_times {
                    if let Some(t) = self.local_to_utc(day.and_time(*time)) {
                        offer(t);
                    }
                }
            }
        }
        for d in &self.cut_durations {
            offer(ctx.start + Duration::seconds(*d));
        }
        if !charging {
            for p in &self.cut_parking {
                let left = Decimal::from(*p) - acc.parking_secs;
                if left > Decimal::ZERO {
                    let nanos = (left * Decimal::from(1_000_000_000)).ceil();
                    offer(at + Duration::nanoseconds(i64::try_from(nanos).unwrap_or(i64::MAX)));
                }
            }
        }
        best
    }

    /// A local wall-clock time as an instant; in a DST gap, the first instant after it.
    fn local_to_utc(&self, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut probe = local;
        for _ in 0..4 {
            if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                return Some(t.with_timezone(&Utc));
            }
            probe += Duration::minutes(30);
        }
        None
    }

    /// Applies step_size, VAT and min / max price to the session so far.
    pub fn finalize(&self, acc: &Accumulator) -> Result<TariffCost, EngineError> {
        if acc.overflow {
            return Err(EngineError::Overflow);
        }
        let mut lines = acc.lines.clone();
        let step = |total: Decimal, last: Option<CompRef>, lines: &mut Vec<Line>| -> Option<()> {
            let comp = last?;
            let step = Decimal::from(self.component(comp)?.step_size);
            if step.is_zero() || total <= Decimal::ZERO {
                return Some(());
            }
            let rounded = (total / step).ceil().checked_mul(step)?;
            let extra = rounded - total;
            let line = lines
                .iter_mut()
                .find(|l| (l.element, l.component) == comp)?;
            line.volume = line.volume.checked_add(extra)?;
            Some(())
        };
        step(acc.energy_wh, acc.last_energy, &mut lines);
        match acc.last_time_dimension {
            Some(Dimension::Time) => step(acc.charging_secs, acc.last_time, &mut lines),
            Some(Dimension::ParkingTime) => step(acc.parking_secs, acc.last_parking, &mut lines),
            _ => None,
        };
        step(acc.reservation_secs, acc.last_reservation, &mut lines);

        let mut out = TariffCost {
            currency: self.tariff.currency,
            total_cost: Price::default(),
            fixed_cost: Price::default(),
            energy_cost: Price::default(),
            time_cost: Price::default(),
            parking_cost: Price::default(),
            reservation_cost: Price::default(),
            energy_wh: acc.energy_wh,
            charging_secs: acc.charging_secs,
            parking_secs: acc.parking_secs,
            billed_energy_wh: Decimal::ZERO,
            billed_charging_secs: Decimal::ZERO,
            billed_parking_secs: Decimal::ZERO,
            min_price_applied: false,
            max_price_applied: false,
            lines: Vec::new(),
        };
        let flats = [acc.flat, acc.reservation_flat];
        let flat_lines = flats.iter().flatten().map(|&(e, c)| Line {
            element: e,
            component: c,
            volume: Decimal::ONE,
        });
        let mut all: Vec<Line> = lines.into_iter().chain(flat_lines).collect();
        all.sort_by_key(|l| (l.element, l.component));
        for line in all {
            let comp_ref = (line.element, line.component);
            let (Some(comp), Some(element)) = (
                self.component(comp_ref),
                self.tariff.elements.get(to_usize(line.element)),
            ) else {
                continue;
            };
            let reservation = element
                .restrictions
                .as_ref()
                .is_some_and(|r| r.reservation.is_some());
            let (unit, volume) = match comp.dimension {
                Dimension::Flat => (Decimal::ONE, Decimal::ONE),
                Dimension::Energy => (WH_PER_KWH, line.volume),
                Dimension::Time | Dimension::ParkingTime => (SECS_PER_HOUR, line.volume),
            };
            let cost = line_cost(comp, volume, unit).ok_or(EngineError::Overflow)?;
            let bucket = match (reservation, comp.dimension) {
                (true, _) => &mut out.reservation_cost,
                (false, Dimension::Flat) => &mut out.fixed_cost,
                (false, Dimension::Energy) => {
                    out.billed_energy_wh = checked_sum(out.billed_energy_wh, volume)?;
                    &mut out.energy_cost
                }
                (false, Dimension::Time) => {
                    out.billed_charging_secs = checked_sum(out.billed_charging_secs, volume)?;
                    &mut out.time_cost
                }
                (false, Dimension::ParkingTime) => {
                    out.billed_parking_secs = checked_sum(out.billed_parking_secs, volume)?;
                    &mut out.parking_cost
                }
            };
            *bucket = bucket.checked_add(cost).ok_or(EngineError::Overflow)?;
            out.total_cost = out
                .total_cost
                .checked_add(cost)
                .ok_or(EngineError::Overflow)?;
            out.lines.push(CostLine {
                dimension: comp.dimension,
                reservation,
                element: to_usize(line.element),
                component: to_usize(line.component),
                volume: volume / unit,
                price: comp.price,
                vat: comp.vat,
                cost,
            });
        }
        let (total, min_applied, max_applied) =
            clamp(out.total_cost, self.tariff.min_price, self.tariff.max_price);
        out.total_cost = total;
        out.min_price_applied = min_applied;
        out.max_price_applied = max_applied;
        Ok(out)
    }

    fn component(&self, (e, c): CompRef) -> Option<&PriceComponent> {
        self.tariff
            .elements
            .get(to_usize(e))?
            .price_components
            .get(to_usize(c))
    }
}

/// A stretch of a live session in one charging state, for [`Pricer::add_span`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Energy flowing (TIME) or not (PARKING_TIME).
    pub charging: bool,
    /// Energy delivered over the span, Wh.
    pub energy_wh: Decimal,
    /// Power over the span, kW, when known.
    pub power_kw: Option<Range>,
    /// Current over the span, A, when known.
    pub current_a: Option<Range>,
}

fn line_cost(comp: &PriceComponent, volume: Decimal, unit: Decimal) -> Option<Price> {
    let excl_vat = volume.checked_mul(comp.price)?.checked_div(unit)?;
    let incl_vat = match comp.vat {
        Some(vat) => excl_vat
            .checked_mul(Decimal::ONE_HUNDRED.checked_add(vat)?)?
            .checked_div(Decimal::ONE_HUNDRED)?,
        None => excl_vat,
    };
    Some(Price { excl_vat, incl_vat })
}

/// Clamps excl. and incl. VAT independently. A bound without `incl_vat` scales the incl. VAT
/// total by the factor applied to the excl. VAT total (keeping the session's VAT ratio).
fn clamp(total: Price, min: Option<PriceBound>, max: Option<PriceBound>) -> (Price, bool, bool) {
    let mut out = total;
    let mut apply = |bound: PriceBound, lift: bool| -> bool {
        let beyond =
            |value: Decimal, limit: Decimal| if lift { value < limit } else { value > limit };
        let mut applied = false;
        if beyond(out.excl_vat, bound.excl_vat) {
            let old = out.excl_vat;
            out.excl_vat = bound.excl_vat;
            if bound.incl_vat.is_none() {
                out.incl_vat = if old.is_zero() {
                    bound.excl_vat
                } else {
                    out.incl_vat
                        .checked_mul(bound.excl_vat)
                        .and_then(|v| v.checked_div(old))
                        .unwrap_or(bound.excl_vat)
                };
            }
            applied = true;
        }
        if let Some(limit) = bound.incl_vat
            && beyond(out.incl_vat, limit)
        {
            out.incl_vat = limit;
            applied = true;
        }
        applied
    };
    let min_applied = min.is_some_and(|b| apply(b, true));
    let max_applied = max.is_some_and(|b| apply(b, false));
    (out, min_applied, max_applied)
}

fn checked_sum(a: Decimal, b: Decimal) -> Result<Decimal, EngineError> {
    a.checked_add(b).ok_or(EngineError::Overflow)
}

fn dimension_index(d: Dimension) -> usize {
    match d {
        Dimension::Flat => 0,
        Dimension::Energy => 1,
        Dimension::Time => 2,
        Dimension::ParkingTime => 3,
    }
}

fn to_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn to_usize(i: u32) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// A duration in seconds, exact to the nanosecond.
pub(crate) fn nanos_decimal(d: Duration) -> Decimal {
    let nanos = d.num_nanoseconds().unwrap_or(i64::MAX).max(0);
    Decimal::new(nanos, 9).normalize()
}

/// Hours from seconds, for reports.
pub(crate) fn secs_to_hours(secs: Decimal) -> Decimal {
    secs / SECS_PER_HOUR
}
