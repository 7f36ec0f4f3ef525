//! The price before the card: a rate as the lines a driver reads before paying (AFIR / NEVI ask
//! for the ad-hoc price up front), money formatted for its currency, and what the hold buys.
//!
//! The lines are read from the tariff the session is priced with ([`Rate::to_tariff`]), element
//! by element, so what is shown is what the engine charges: unit prices include VAT (the engine
//! adds it on top of the OCPI price), time prices are shown per minute when that is exact and
//! per hour otherwise, and a restricted element is followed by "otherwise" on the element that
//! takes over. The hold estimate runs the engine itself ([`LiveCost::stop_deadline`]).

use chrono::{DateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::{Currency, Money};
use crate::pricing::{LiveCost, PricingError, to_minor_units};
use crate::rate::{Dimension, Rate, RateError};
use crate::tariff::{
    DayOfWeek, PriceBound, PriceComponent, ReservationRestriction, TariffRestrictions,
};

/// Longest text Stripe Checkout shows next to its pay button (`custom_text[submit][message]`).
pub const CHECKOUT_MESSAGE_MAX_CHARS: usize = 1_200;

/// How far ahead the hold estimate looks: a hold that lasts longer is "more than" this.
const ESTIMATE_HORIZON_HOURS: i64 = 24;

/// The symbol of a currency and where it goes; codes without one are written after the amount.
fn symbol(currency: Currency) -> (&'static str, bool) {
    // (symbol, before the amount)
    match currency.code() {
        "USD" => ("$", true),
        "EUR" => ("€", false),
        "GBP" => ("£", true),
        "JPY" => ("¥", true),
        "CNY" => ("CN¥", true),
        "KRW" => ("₩", true),
        "INR" => ("₹", true),
        "CAD" => ("CA$", true),
        "AUD" => ("A$", true),
        "NZD" => ("NZ$", true),
        "CHF" => ("CHF", true),
        "SEK" | "NOK" | "DKK" => ("kr", false),
        "PLN" => ("zł", false),
        _ => ("", false),
    }
}

/// `value` (major units, exact) with the currency's symbol and at least its ISO 4217 decimals;
/// more decimals only when the value has them (a 0.2345 €/kWh price stays exact).
pub fn format_amount(value: Decimal, currency: Currency) -> String {
    let value = value.normalize();
    let decimals = value.scale().max(currency.exponent());
    let digits = format!("{:.*}", usize::try_from(decimals).unwrap_or(4), value);
    match symbol(currency) {
        (s, true) if s.len() > 2 && s.chars().all(|c| c.is_ascii_alphabetic()) => {
            format!("{s} {digits}")
        }
        (s, true) => format!("{s}{digits}"),
        ("", false) => format!("{digits} {}", currency.code()),
        (s, false) => format!("{digits} {s}"),
    }
}

/// `money` (integer minor units) for a driver: `$18.00`, `0.35 €`, `¥500`, `1.234 KWD`.
pub fn format_money(money: Money) -> String {
    let major = Decimal::new(money.amount, money.currency.exponent());
    format_amount(major, money.currency)
}

/// An exact price as an integer: `amount` × 10^-`exponent` major units. `exponent` is the
/// currency's minor-unit exponent (so `amount` is minor units: 35 = 0.35 EUR) unless the price
/// has finer decimals (OCPI allows four: 0.2345 EUR is `2345` with exponent 4).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UnitAmount {
    /// The price in units of 10^-exponent of the major unit.
    pub amount: i64,
    /// Decimals of `amount`; the currency's exponent whenever the price is whole minor units.
    pub exponent: u32,
    /// ISO 4217 currency, lower-case.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Currency,
}

impl UnitAmount {
    /// The exact integer form of `value` (major units); `None` if it does not fit in 64 bits.
    pub fn of(value: Decimal, currency: Currency) -> Option<Self> {
        let value = value.normalize();
        let exponent = value.scale().max(currency.exponent());
        let mut scaled = value;
        scaled.rescale(exponent);
        let amount = i64::try_from(scaled.mantissa()).ok()?;
        Some(Self {
            amount,
            exponent,
            currency,
        })
    }

    /// The value in major units.
    pub fn value(&self) -> Decimal {
        Decimal::new(self.amount, self.exponent)
    }
}

/// What a price line is about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Per kWh.
    Energy,
    /// Per minute or hour of charging.
    Time,
    /// Per minute or hour connected but not charging (overstay, idle fee).
    ParkingTime,
    /// Once per session (start fee).
    Flat,
    /// The session's minimum and / or maximum price.
    PriceLimits,
    /// Whether prices include VAT, and how much.
    Vat,
}

/// The unit a price is per.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceUnit {
    /// Per kWh.
    Kwh,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Once per session.
    Session,
}

/// One line of the price as a driver reads it, with its figures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceLine {
    /// What the line is about.
    pub kind: LineKind,
    /// The line as shown, e.g. `0.05 € per minute charging, weekdays 08:00-18:00`.
    pub text: String,
    /// The unit `price` is per (priced lines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<PriceUnit>,
    /// What the driver pays per unit, VAT included (priced lines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<UnitAmount>,
    /// The tariff's price per unit before VAT (priced lines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_excl_vat: Option<UnitAmount>,
    /// VAT percent as a decimal string (`"19"`); absent when no VAT applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vat_percent: Option<String>,
    /// Local weekdays the line applies on (`MONDAY`…); empty = every day.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub days_of_week: Vec<String>,
    /// Local time of day from which it applies, `HH:MM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Local time of day until which it applies, `HH:MM` (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Parking is billed only after this many minutes of it (the grace period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_parking_minutes: Option<i64>,
    /// Every condition of the line in words (weekdays, times, dates, energy, power, duration).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// Minimum price of a session, VAT included (price limits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Money>,
    /// Maximum price of a session, VAT included (price limits only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Money>,
}

impl PriceLine {
    fn text_only(kind: LineKind, text: String) -> Self {
        Self {
            kind,
            text,
            unit: None,
            price: None,
            price_excl_vat: None,
            vat_percent: None,
            days_of_week: Vec::new(),
            start_time: None,
            end_time: None,
            after_parking_minutes: None,
            conditions: Vec::new(),
            minimum: None,
            maximum: None,
        }
    }
}

/// A rate as price lines, in the tariff's order (per dimension the first line whose conditions
/// hold applies, as in the engine).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceList {
    /// Currency of every price.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Currency,
    /// IANA time zone the times of day are in.
    pub time_zone: String,
    /// The lines.
    pub lines: Vec<PriceLine>,
}

impl PriceList {
    /// The lines as text, one per line, cut at a line boundary to fit `max_chars` (Stripe's
    /// custom text takes 1,200): a cut list ends with a line saying so.
    pub fn text(&self, extra: &[String], max_chars: usize) -> String {
        const CUT: &str = "… (full price list at the station)";
        let all: Vec<&str> = self
            .lines
            .iter()
            .map(|l| l.text.as_str())
            .chain(extra.iter().map(String::as_str))
            .collect();
        let mut out = String::new();
        for (i, line) in all.iter().enumerate() {
            let sep = usize::from(!out.is_empty());
            let rest_fits = i + 1 == all.len();
            let room_for_cut = if rest_fits {
                0
            } else {
                CUT.chars().count() + 1
            };
            if out.chars().count() + sep + line.chars().count() + room_for_cut > max_chars {
                if out.chars().count() + sep + CUT.chars().count() <= max_chars {
                    if sep == 1 {
                        out.push('\n');
                    }
                    out.push_str(CUT);
                }
                return out;
            }
            if sep == 1 {
                out.push('\n');
            }
            out.push_str(line);
        }
        out
    }
}

/// What the hold buys: energy at the connector's power until the cost reaches the hold.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldEstimate {
    /// The hold.
    pub hold: Money,
    /// The power assumed, W (the connector's maximum).
    pub power_w: i64,
    /// Energy delivered before the cost reaches the hold, Wh (rounded down).
    pub energy_wh: i64,
    /// Charging time that energy takes at `power_w`, seconds.
    pub charging_seconds: i64,
    /// `false` when the hold is not reached within 24 h (e.g. a maximum price below it): the
    /// figures are then what 24 h deliver.
    pub reaches_hold: bool,
    /// The estimate in words.
    pub text: String,
}

/// Why price lines could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceListError {
    /// The rate itself is invalid (rates are validated when created, so this is a stored bad rate).
    #[error(transparent)]
    Rate(#[from] RateError),
    /// A price does not fit in 64-bit integers.
    #[error("a price of the rate is too large to show")]
    Overflow,
}

/// The rate as driver-facing lines: one per price component (with its conditions), then the
/// price limits, then VAT.
pub fn price_lines(rate: &Rate) -> Result<PriceList, PriceListError> {
    // The pricer validates exactly what sessions are priced with.
    let pricer = rate.pricer()?;
    let tariff = pricer.tariff();
    let currency = tariff.currency;
    let vats: Vec<Option<Decimal>> = tariff
        .elements
        .iter()
        .flat_map(|e| &e.price_components)
        .map(|c| c.vat.map(|v| v.normalize()))
        .collect();
    let uniform_vat = vats
        .first()
        .copied()
        .filter(|first| vats.iter().all(|v| v == first));
    let mut lines = Vec::new();
    // Dimensions an earlier, restricted element already priced: a later one is "otherwise".
    let mut restricted_before: Vec<Dimension> = Vec::new();
    for element in &tariff.elements {
        let restrictions = element.restrictions.clone().unwrap_or_default();
        for component in &element.price_components {
            let otherwise = restricted_before.contains(&component.dimension);
            lines.push(component_line(
                component,
                &restrictions,
                currency,
                uniform_vat.is_none(),
                otherwise,
            )?);
        }
        if element.restrictions.is_some() {
            restricted_before.extend(element.price_components.iter().map(|c| c.dimension));
        }
    }
    if let Some(line) = limits_line(tariff.min_price, tariff.max_price, currency, uniform_vat)? {
        lines.push(line);
    }
    lines.push(vat_line(uniform_vat));
    Ok(PriceList {
        currency,
        time_zone: pricer.time_zone().name().to_owned(),
        lines,
    })
}

fn percent(v: Decimal) -> String {
    v.normalize().to_string()
}

fn incl_vat(price: Decimal, vat: Option<Decimal>) -> Result<Decimal, PriceListError> {
    match vat {
        None => Ok(price),
        Some(v) => price
            .checked_mul(Decimal::ONE_HUNDRED + v)
            .and_then(|p| p.checked_div(Decimal::ONE_HUNDRED))
            .ok_or(PriceListError::Overflow),
    }
}

fn component_line(
    c: &PriceComponent,
    r: &TariffRestrictions,
    currency: Currency,
    vat_per_line: bool,
    otherwise: bool,
) -> Result<PriceLine, PriceListError> {
    let gross = incl_vat(c.price, c.vat)?;
    // OCPI prices time per hour; per minute reads better and is shown when it is exact.
    let (unit, shown, shown_net) = match c.dimension {
        Dimension::Energy => (PriceUnit::Kwh, gross, c.price),
        Dimension::Flat => (PriceUnit::Session, gross, c.price),
        Dimension::Time | Dimension::ParkingTime => {
            let per_minute = (gross / Decimal::from(60)).normalize();
            if per_minute.scale() <= currency.exponent().max(4) {
                (
                    PriceUnit::Minute,
                    per_minute,
                    (c.price / Decimal::from(60)).normalize(),
                )
            } else {
                (PriceUnit::Hour, gross, c.price)
            }
        }
    };
    let money = format_amount(shown, currency);
    let unit_text = match unit {
        PriceUnit::Kwh => "per kWh",
        PriceUnit::Minute => "per minute",
        PriceUnit::Hour => "per hour",
        PriceUnit::Session => "",
    };
    let reservation = r.reservation.is_some();
    let mut text = match (c.dimension, reservation) {
        (Dimension::Flat, false) if c.price.is_zero() => "no start fee".to_owned(),
        (Dimension::Flat, false) => format!("start fee {money}"),
        (Dimension::Flat, true) => format!("reservation fee {money}"),
        (Dimension::Energy, _) => format!("{money} {unit_text}"),
        (Dimension::Time, false) => format!("{money} {unit_text} charging"),
        (Dimension::Time, true) => format!("{money} {unit_text} reserved"),
        (Dimension::ParkingTime, _) => format!("parking {money} {unit_text}"),
    };
    let grace_minutes = r.min_parking_duration.map(|s| s.div_euclid(60));
    let conditions = conditions(c, r);
    for condition in &conditions {
        text.push_str(", ");
        text.push_str(condition);
    }
    if otherwise && conditions.is_empty() {
        text.push_str(", otherwise");
    }
    if vat_per_line {
        match c.vat {
            Some(v) => text.push_str(&format!(" (incl. {} % VAT)", percent(v))),
            None => text.push_str(" (no VAT)"),
        }
    }
    let (start_time, end_time) = (r.start_time.map(hh_mm), r.end_time.map(hh_mm));
    Ok(PriceLine {
        kind: match c.dimension {
            Dimension::Energy => LineKind::Energy,
            Dimension::Time => LineKind::Time,
            Dimension::ParkingTime => LineKind::ParkingTime,
            Dimension::Flat => LineKind::Flat,
        },
        text,
        unit: Some(unit),
        price: Some(UnitAmount::of(shown, currency).ok_or(PriceListError::Overflow)?),
        price_excl_vat: Some(UnitAmount::of(shown_net, currency).ok_or(PriceListError::Overflow)?),
        vat_percent: c.vat.map(percent),
        days_of_week: r
            .day_of_week
            .iter()
            .map(|d| day_name(*d).0.to_owned())
            .collect(),
        start_time,
        end_time,
        after_parking_minutes: grace_minutes.filter(|_| c.dimension == Dimension::ParkingTime),
        conditions,
        minimum: None,
        maximum: None,
    })
}

fn hh_mm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// (`MONDAY`, `Mon`)
fn day_name(d: DayOfWeek) -> (&'static str, &'static str) {
    match d {
        DayOfWeek::Monday => ("MONDAY", "Mon"),
        DayOfWeek::Tuesday => ("TUESDAY", "Tue"),
        DayOfWeek::Wednesday => ("WEDNESDAY", "Wed"),
        DayOfWeek::Thursday => ("THURSDAY", "Thu"),
        DayOfWeek::Friday => ("FRIDAY", "Fri"),
        DayOfWeek::Saturday => ("SATURDAY", "Sat"),
        DayOfWeek::Sunday => ("SUNDAY", "Sun"),
    }
}

fn days_text(days: &[DayOfWeek]) -> Option<String> {
    use DayOfWeek::*;
    let mut days = days.to_vec();
    days.sort();
    days.dedup();
    match days.as_slice() {
        []
        | [
            Monday,
            Tuesday,
            Wednesday,
            Thursday,
            Friday,
            Saturday,
            Sunday,
        ] => None,
        [Monday, Tuesday, Wednesday, Thursday, Friday] => Some("weekdays".to_owned()),
        [Saturday, Sunday] => Some("weekends".to_owned()),
        other => Some(
            other
                .iter()
                .map(|d| day_name(*d).1)
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

/// A duration in seconds as minutes (or seconds when not whole minutes).
fn duration_text(secs: i64) -> String {
    if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

fn conditions(c: &PriceComponent, r: &TariffRestrictions) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(days) = days_text(&r.day_of_week) {
        out.push(days);
    }
    match (r.start_time, r.end_time) {
        (Some(s), Some(e)) => out.push(format!("{}-{}", hh_mm(s), hh_mm(e))),
        (Some(s), None) => out.push(format!("from {}", hh_mm(s))),
        (None, Some(e)) => out.push(format!("until {}", hh_mm(e))),
        (None, None) => {}
    }
    if let Some(d) = r.start_date {
        out.push(format!("from {d}"));
    }
    if let Some(d) = r.end_date {
        out.push(format!("before {d}"));
    }
    let n = |d: Decimal| d.normalize().to_string();
    if let Some(k) = r.min_kwh {
        out.push(format!("after the first {} kWh", n(k)));
    }
    if let Some(k) = r.max_kwh {
        out.push(format!("for the first {} kWh", n(k)));
    }
    if let Some(p) = r.min_power {
        out.push(format!("at {} kW or more", n(p)));
    }
    if let Some(p) = r.max_power {
        out.push(format!("below {} kW", n(p)));
    }
    if let Some(a) = r.min_current {
        out.push(format!("at {} A or more", n(a)));
    }
    if let Some(a) = r.max_current {
        out.push(format!("below {} A", n(a)));
    }
    if let Some(s) = r.min_duration {
        out.push(format!("after {} of the session", duration_text(s)));
    }
    if let Some(s) = r.max_duration {
        out.push(format!(
            "during the first {} of the session",
            duration_text(s)
        ));
    }
    if let Some(s) = r.min_parking_duration {
        out.push(match c.dimension {
            Dimension::ParkingTime => format!("after {}", duration_text(s)),
            _ => format!("after {} of parking", duration_text(s)),
        });
    }
    match r.reservation {
        Some(ReservationRestriction::Reservation) => out.push("while reserved".to_owned()),
        Some(ReservationRestriction::ReservationExpires) => {
            out.push("when a reservation expires unused".to_owned());
        }
        None => {}
    }
    // OCPI rounds the session's total up to the step (once per session).
    match c.dimension {
        Dimension::Energy if c.step_size > 1 => {
            out.push(format!(
                "billed per {} kWh",
                n(Decimal::new(i64::from(c.step_size), 3))
            ));
        }
        Dimension::Time | Dimension::ParkingTime if c.step_size > 1 => {
            out.push(format!(
                "billed per {}",
                duration_text(i64::from(c.step_size))
            ));
        }
        _ => {}
    }
    out
}

/// What the driver pays at most / at least: the bound incl. VAT when given, else the excl.
/// VAT bound with the rate's one VAT (the engine scales the incl. VAT total the same way).
fn bound_money(
    bound: PriceBound,
    currency: Currency,
    uniform_vat: Option<Option<Decimal>>,
) -> Result<Money, PriceListError> {
    let value = match (bound.incl_vat, uniform_vat) {
        (Some(v), _) => v,
        (None, Some(vat)) => incl_vat(bound.excl_vat, vat)?,
        (None, None) => bound.excl_vat,
    };
    to_minor_units(value, currency).map_err(|_| PriceListError::Overflow)
}

fn limits_line(
    min: Option<PriceBound>,
    max: Option<PriceBound>,
    currency: Currency,
    uniform_vat: Option<Option<Decimal>>,
) -> Result<Option<PriceLine>, PriceListError> {
    let minimum = min
        .map(|b| bound_money(b, currency, uniform_vat))
        .transpose()?;
    let maximum = max
        .map(|b| bound_money(b, currency, uniform_vat))
        .transpose()?;
    let text = match (minimum, maximum) {
        (None, None) => return Ok(None),
        (Some(lo), None) => format!("minimum {} per session", format_money(lo)),
        (None, Some(hi)) => format!("maximum {} per session", format_money(hi)),
        (Some(lo), Some(hi)) => format!(
            "minimum {}, maximum {} per session",
            format_money(lo),
            format_money(hi)
        ),
    };
    Ok(Some(PriceLine {
        minimum,
        maximum,
        ..PriceLine::text_only(LineKind::PriceLimits, text)
    }))
}

fn vat_line(uniform_vat: Option<Option<Decimal>>) -> PriceLine {
    let (text, vat) = match uniform_vat {
        Some(Some(v)) => (format!("VAT {} % included", percent(v)), Some(percent(v))),
        Some(None) => ("no VAT charged".to_owned(), None),
        None => ("VAT included as stated on each line".to_owned(), None),
    };
    PriceLine {
        vat_percent: vat,
        ..PriceLine::text_only(LineKind::Vat, text)
    }
}

/// How much energy `hold` buys on `rate` at `power_w`, starting to charge at `at` (its local
/// time and weekday select the tariff's elements): the engine prices a session charging at
/// `power_w` without pause (energy and time price, start fee, VAT, limits) and the energy is
/// what flowed when its cost reaches the hold. No parking is assumed (the driver unplugs when
/// done). `None` without a power.
pub fn hold_estimate(
    rate: &Rate,
    hold: Money,
    power_w: i64,
    at: DateTime<Utc>,
) -> Result<Option<HoldEstimate>, PricingError> {
    if power_w <= 0 {
        return Ok(None);
    }
    let live = LiveCost::start(rate.clone(), at, 0);
    let horizon = chrono::Duration::hours(ESTIMATE_HORIZON_HOURS);
    let deadline = live.stop_deadline(at, hold, power_w, chrono::Duration::zero(), horizon)?;
    let (until, reaches_hold) = match deadline {
        Some(t) => (t, true),
        None => (at + horizon, false),
    };
    let millis = (until - at).num_milliseconds().max(0);
    let energy_wh = i64::try_from(i128::from(power_w) * i128::from(millis) / 3_600_000)
        .map_err(|_| PricingError::Overflow)?;
    let kwh = Decimal::new(energy_wh, 3);
    let kwh_text = if energy_wh >= 10_000 {
        kwh.trunc().to_string()
    } else {
        kwh.trunc_with_scale(1).normalize().to_string()
    };
    let kw = Decimal::new(power_w, 3).normalize();
    let minutes = millis / 60_000;
    let text = if reaches_hold {
        format!(
            "the {} hold buys about {kwh_text} kWh at this station's power ({kw} kW, about {minutes} min of charging)",
            format_money(hold)
        )
    } else {
        format!(
            "the {} hold covers more than {kwh_text} kWh at this station's power ({kw} kW, {ESTIMATE_HORIZON_HOURS} h of charging)",
            format_money(hold)
        )
    };
    Ok(Some(HoldEstimate {
        hold,
        power_w,
        energy_wh,
        charging_seconds: millis / 1000,
        reaches_hold,
        text,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::MeterSample;
    use crate::rate::RateComponent;
    use chrono::TimeZone;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn component(dimension: Dimension, price: &str, tax: Option<&str>) -> RateComponent {
        RateComponent {
            dimension,
            price: d(price),
            tax: tax.map(d),
            step_size: None,
            grace_period: None,
        }
    }

    fn texts(list: &PriceList) -> Vec<&str> {
        list.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn money_is_formatted_with_the_currency_exponent_and_symbol() {
        assert_eq!(format_money(Money::new(1800, Currency::USD)), "$18.00");
        assert_eq!(format_money(Money::new(35, Currency::EUR)), "0.35 €");
        let jpy: Currency = "jpy".parse().unwrap();
        assert_eq!(format_money(Money::new(500, jpy)), "¥500");
        let kwd: Currency = "kwd".parse().unwrap();
        assert_eq!(format_money(Money::new(1234, kwd)), "1.234 KWD");
        assert_eq!(
            format_money(Money::new(250, "chf".parse().unwrap())),
            "CHF 2.50"
        );
        // Unit prices keep finer decimals exactly, never fewer than the currency has.
        assert_eq!(format_amount(d("0.2345"), Currency::EUR), "0.2345 €");
        assert_eq!(format_amount(d("2"), Currency::USD), "$2.00");
        assert_eq!(format_amount(d("12.5"), jpy), "¥12.5");
    }

    #[test]
    fn unit_amounts_are_minor_units_unless_the_price_is_finer() {
        let a = UnitAmount::of(d("0.35"), Currency::EUR).unwrap();
        assert_eq!((a.amount, a.exponent), (35, 2));
        let b = UnitAmount::of(d("0.2345"), Currency::EUR).unwrap();
        assert_eq!((b.amount, b.exponent), (2345, 4));
        let jpy: Currency = "JPY".parse().unwrap();
        let c = UnitAmount::of(d("40"), jpy).unwrap();
        assert_eq!((c.amount, c.exponent), (40, 0));
        assert_eq!(b.value(), d("0.2345"));
    }

    #[test]
    fn an_operator_rate_reads_as_lines_with_vat_included() {
        // The eDRV example rate: FLAT, ENERGY, TIME and PARKING_TIME after 1.5 h, one VAT each.
        let rate = Rate::new(
            Currency::EUR,
            vec![
                component(Dimension::Flat, "1", Some("19")),
                component(Dimension::Energy, "0.35", Some("19")),
                component(Dimension::Time, "3", Some("19")),
                RateComponent {
                    grace_period: Some(d("1")),
                    ..component(Dimension::ParkingTime, "6", Some("19"))
                },
            ],
        );
        let list = price_lines(&rate).unwrap();
        assert_eq!(
            texts(&list),
            vec![
                "start fee 1.19 €",
                "0.4165 € per kWh",
                "0.0595 € per minute charging",
                "parking 0.119 € per minute, after 60 min",
                "VAT 19 % included",
            ]
        );
        let parking = &list.lines[3];
        assert_eq!(parking.after_parking_minutes, Some(60));
        assert_eq!(parking.unit, Some(PriceUnit::Minute));
        let net = parking.price_excl_vat.unwrap();
        assert_eq!((net.amount, net.exponent), (10, 2), "0.10 € before VAT");
        assert_eq!(list.lines[4].vat_percent.as_deref(), Some("19"));
    }

    #[test]
    fn vat_excluded_and_mixed_vat_are_said_per_line() {
        let none = Rate::new(
            Currency::USD,
            vec![component(Dimension::Energy, "0.30", None)],
        );
        assert_eq!(
            texts(&price_lines(&none).unwrap()),
            vec!["$0.30 per kWh", "no VAT charged"]
        );
        let mixed = Rate::new(
            Currency::EUR,
            vec![
                component(Dimension::Flat, "0.50", Some("20")),
                component(Dimension::Energy, "0.25", Some("10")),
                component(Dimension::Time, "2.5", None),
            ],
        );
        assert_eq!(
            texts(&price_lines(&mixed).unwrap()),
            vec![
                "start fee 0.60 € (incl. 20 % VAT)",
                "0.275 € per kWh (incl. 10 % VAT)",
                // 2.50 / 60 is not exact: shown per hour.
                "2.50 € per hour charging (no VAT)",
                "VAT included as stated on each line",
            ]
        );
    }

    fn weekday_tariff_rate() -> Rate {
        let tariff = serde_json::from_str(
            r#"{"currency":"EUR","min_price":{"excl_vat":2,"incl_vat":2.38},"max_price":{"excl_vat":50,"incl_vat":59.5},
            "elements":[
              {"price_components":[{"type":"ENERGY","price":0.40,"vat":19,"step_size":1},
                                   {"type":"TIME","price":3,"vat":19,"step_size":60}],
               "restrictions":{"day_of_week":["MONDAY","TUESDAY","WEDNESDAY","THURSDAY","FRIDAY"],"start_time":"08:00","end_time":"18:00"}},
              {"price_components":[{"type":"ENERGY","price":0.30,"vat":19,"step_size":1}]},
              {"price_components":[{"type":"PARKING_TIME","price":6,"vat":19,"step_size":60}],
               "restrictions":{"min_parking_duration":3600}}]}"#,
        )
        .unwrap();
        Rate {
            time_zone: Some("Europe/Berlin".into()),
            tariff: Some(tariff),
            ..Rate::new(Currency::EUR, Vec::new())
        }
    }

    #[test]
    fn weekday_and_time_of_day_restrictions_are_shown_and_priced_alike() {
        let rate = weekday_tariff_rate();
        let list = price_lines(&rate).unwrap();
        assert_eq!(list.time_zone, "Europe/Berlin");
        assert_eq!(
            texts(&list),
            vec![
                "0.476 € per kWh, weekdays, 08:00-18:00",
                "0.0595 € per minute charging, weekdays, 08:00-18:00, billed per 1 min",
                "0.357 € per kWh, otherwise",
                "parking 0.119 € per minute, after 60 min, billed per 1 min",
                "minimum 2.38 €, maximum 59.50 € per session",
                "VAT 19 % included",
            ]
        );
        let weekday = &list.lines[0];
        assert_eq!(weekday.days_of_week.len(), 5);
        assert_eq!(weekday.start_time.as_deref(), Some("08:00"));
        assert_eq!(weekday.end_time.as_deref(), Some("18:00"));
        assert_eq!(list.lines[4].minimum, Some(Money::new(238, Currency::EUR)));
        assert_eq!(list.lines[4].maximum, Some(Money::new(5950, Currency::EUR)));

        // The engine charges what the lines say: 10 kWh in 1 h on a Wednesday at 10:00 Berlin
        // time (weekday prices), then on a Saturday (the energy price "otherwise", no TIME).
        let price = |at: DateTime<Utc>| {
            let mut live = LiveCost::start(rate.clone(), at, 0);
            live.record_meter(MeterSample::new(
                at + chrono::Duration::hours(1),
                10_000,
                None,
            ));
            live.cost_at(at + chrono::Duration::hours(1)).unwrap()
        };
        let wednesday = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        let per_unit = |c: &crate::pricing::CostComponent| c.total / c.quantity;
        let cost = price(wednesday);
        assert_eq!(per_unit(&cost.breakdown[0]), weekday.price.unwrap().value());
        assert_eq!(
            per_unit(&cost.breakdown[1]) / Decimal::from(60),
            list.lines[1].price.unwrap().value(),
            "TIME per hour / 60 = the per-minute line"
        );
        let saturday = Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap();
        let cost = price(saturday);
        assert_eq!(cost.breakdown.len(), 1, "{cost:?}");
        assert_eq!(
            per_unit(&cost.breakdown[0]),
            list.lines[2].price.unwrap().value()
        );
    }

    #[test]
    fn a_zero_decimal_currency_prices_and_formats_without_decimals() {
        let jpy: Currency = "JPY".parse().unwrap();
        let rate = Rate::new(
            jpy,
            vec![
                component(Dimension::Flat, "100", Some("10")),
                component(Dimension::Energy, "40", Some("10")),
            ],
        );
        let list = price_lines(&rate).unwrap();
        assert_eq!(
            texts(&list),
            vec!["start fee ¥110", "¥44 per kWh", "VAT 10 % included"]
        );
        let energy = list.lines[1].price.unwrap();
        assert_eq!((energy.amount, energy.exponent), (44, 0));
        // ¥2,000 hold at 22 kW: (2000 - 110) / 44 = 42.95 kWh, rounded down to whole yen of cost.
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        let est = hold_estimate(&rate, Money::new(2000, jpy), 22_000, at)
            .unwrap()
            .unwrap();
        assert!(est.reaches_hold);
        assert!((42_900..=42_966).contains(&est.energy_wh), "{est:?}");
        assert!(
            est.text.starts_with("the ¥2000 hold buys about 42 kWh"),
            "{}",
            est.text
        );
    }

    #[test]
    fn the_hold_estimate_counts_energy_and_time_at_the_connector_power() {
        // 0.30 $/kWh + 6 $/h charging, no VAT, at 50 kW: one hour costs 15 + 6 = 21 $, so an
        // $18.00 hold lasts 18/21 h = 51.43 min and buys 42.857 kWh.
        let rate = Rate::new(
            Currency::USD,
            vec![
                component(Dimension::Energy, "0.30", None),
                component(Dimension::Time, "6", None),
            ],
        );
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        let est = hold_estimate(&rate, Money::new(1800, Currency::USD), 50_000, at)
            .unwrap()
            .unwrap();
        assert!((42_850..=42_870).contains(&est.energy_wh), "{est:?}");
        assert_eq!(est.charging_seconds / 60, 51);
        assert_eq!(
            est.text,
            "the $18.00 hold buys about 42 kWh at this station's power (50 kW, about 51 min of charging)"
        );
        // The engine agrees: what the estimate says flows costs the hold, to the cent.
        let mut live = LiveCost::start(rate.clone(), at, 0);
        let end = at + chrono::Duration::seconds(est.charging_seconds);
        let cost = live.finish(end, est.energy_wh).unwrap();
        assert!((1798..=1800).contains(&cost.amount.amount), "{cost:?}");
        // A maximum price below the hold: the hold is never reached.
        let mut capped = rate.clone();
        let mut tariff = capped.to_tariff();
        tariff.max_price = Some(PriceBound {
            excl_vat: d("10"),
            incl_vat: None,
        });
        capped.tariff = Some(tariff);
        let est = hold_estimate(&capped, Money::new(1800, Currency::USD), 50_000, at)
            .unwrap()
            .unwrap();
        assert!(!est.reaches_hold);
        assert_eq!(est.energy_wh, 1_200_000);
        assert!(
            hold_estimate(&rate, Money::new(1800, Currency::USD), 0, at)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_checkout_text_fits_stripes_limit_at_a_line_boundary() {
        let list = price_lines(&weekday_tariff_rate()).unwrap();
        let extra = vec!["the hold buys about 42 kWh".to_owned()];
        let full = list.text(&extra, CHECKOUT_MESSAGE_MAX_CHARS);
        assert_eq!(full.lines().count(), list.lines.len() + 1);
        assert!(full.ends_with("about 42 kWh"));
        let cut = list.text(&extra, 80);
        assert!(cut.chars().count() <= 80, "{cut}");
        assert_eq!(cut.lines().next(), Some(list.lines[0].text.as_str()));
        assert!(cut.ends_with("(full price list at the station)"), "{cut}");
    }
}
