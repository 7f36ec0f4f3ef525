//! The figures of a session's receipt (EU AFIR / US NEVI ad-hoc charging): each priced
//! component with its VAT in minor units, the totals, and what was captured and released.
//!
//! The tariff engine keeps components exact and rounds only the session totals
//! ([`crate::pricing::to_minor_units`]), so rounding each component on its own would not add up
//! to the total. Here each column (excl. VAT, incl. VAT) is split over the components by the
//! largest remainder, so the lines add up to the engine's rounded totals to the minor unit; a
//! min / max price and the hold cap appear as their own lines, so the lines always add up to
//! the captured amount.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};
use crate::pricing::CostSummary;
use crate::rate::Dimension;

/// The public address of the receipt with `token` under chargelink's public base URL (a
/// trailing slash on `base` is ignored): where the API serves `GET /receipts/{token}`.
pub fn receipt_url(base: &str, token: &str) -> String {
    format!("{}/receipts/{token}", base.trim_end_matches('/'))
}

/// Why a receipt's figures cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The captured amount is in another currency than the cost: a bug upstream.
    #[error("captured {captured} but the cost is in {cost}")]
    CurrencyMismatch {
        /// Currency of the cost.
        cost: Currency,
        /// Currency of the capture.
        captured: Currency,
    },
    /// More was captured than the session cost: chargelink never does this; report it.
    #[error("captured {captured} is above the session's cost {cost}")]
    CapturedAboveCost {
        /// The priced cost.
        cost: Money,
        /// The capture.
        captured: Money,
    },
    /// An amount does not fit in minor units.
    #[error("an amount of the receipt does not fit in 64-bit minor units")]
    Overflow,
}

/// What a receipt line is for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A priced tariff component (`dimension` says which).
    Component,
    /// The tariff's minimum or maximum price moved the total.
    PriceLimit,
    /// The station delivered more than the card hold pays for; the rest is not charged.
    HoldCap,
}

/// One line of a receipt; amounts in minor units of the receipt's currency.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLine {
    /// What the line is for.
    pub kind: LineKind,
    /// The priced dimension, for a component.
    #[serde(default)]
    pub dimension: Option<Dimension>,
    /// Shown text, e.g. `Energy`.
    pub description: String,
    /// Quantity billed (kWh for energy, hours for time and parking, 1 for a flat fee), exact
    /// decimal as text; `null` for an adjustment.
    #[serde(default)]
    pub quantity: Option<String>,
    /// Unit of `quantity`: `kWh`, `h` or empty.
    pub unit: String,
    /// Price per unit excluding VAT, major units as decimal text; `null` for an adjustment.
    #[serde(default)]
    pub unit_price: Option<String>,
    /// VAT percent as decimal text (`0` when none).
    pub vat_percent: String,
    /// Amount excluding VAT.
    pub excl_vat: i64,
    /// VAT.
    pub vat: i64,
    /// Amount including VAT (`excl_vat + vat`).
    pub incl_vat: i64,
}

/// The money figures of a receipt, minor units of `currency`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptFigures {
    /// Currency of every amount (ISO 4217, lower case).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub currency: Currency,
    /// The lines; they add up to the totals.
    pub lines: Vec<ReceiptLine>,
    /// Sum of the lines excluding VAT.
    pub total_excl_vat: i64,
    /// Sum of the lines' VAT.
    pub total_vat: i64,
    /// Sum of the lines including VAT: the captured amount.
    pub total_incl_vat: i64,
    /// The card hold.
    pub authorized: i64,
    /// What was captured.
    pub captured: i64,
    /// What was released back to the card: `authorized - captured`.
    pub released: i64,
}

impl ReceiptFigures {
    /// The figures of a settled session: its final `cost`, the `authorized` hold and what was
    /// `captured` (at most the cost: chargelink captures `min(cost, hold)`).
    pub fn new(
        cost: &CostSummary,
        authorized: Money,
        captured: Money,
    ) -> Result<Self, ReceiptError> {
        let currency = cost.amount.currency;
        for other in [authorized.currency, captured.currency] {
            if other != currency {
                return Err(ReceiptError::CurrencyMismatch {
                    cost: currency,
                    captured: other,
                });
            }
        }
        if captured.amount > cost.amount.amount {
            return Err(ReceiptError::CapturedAboveCost {
                cost: cost.amount,
                captured,
            });
        }
        let before_tax: Vec<Decimal> = cost.breakdown.iter().map(|c| c.before_tax).collect();
        let with_tax: Vec<Decimal> = cost.breakdown.iter().map(|c| c.total).collect();
        let excl = allocate(&before_tax, currency)?;
        let incl = allocate(&with_tax, currency)?;
        let mut lines: Vec<ReceiptLine> = cost
            .breakdown
            .iter()
            .zip(excl.iter().zip(&incl))
            .map(|(c, (&excl_vat, &incl_vat))| ReceiptLine {
                kind: LineKind::Component,
                dimension: Some(c.dimension),
                description: describe(c.dimension).to_owned(),
                quantity: Some(c.quantity.normalize().to_string()),
                unit: unit(c.dimension).to_owned(),
                unit_price: Some(c.unit_price.normalize().to_string()),
                vat_percent: c.tax.normalize().to_string(),
                excl_vat,
                vat: incl_vat - excl_vat,
                incl_vat,
            })
            .collect();

        // The engine's totals differ from the components' sum only when a min / max price
        // applied; the difference is its own line.
        let priced_incl = cost.amount.amount;
        let priced_excl = match cost.amount_excl_vat {
            Some(m) => m.amount,
            None => excl.iter().sum(),
        };
        let (sum_excl, sum_incl) = (excl.iter().sum::<i64>(), incl.iter().sum::<i64>());
        if sum_excl != priced_excl || sum_incl != priced_incl {
            lines.push(adjustment(
                LineKind::PriceLimit,
                "Minimum / maximum price",
                priced_excl - sum_excl,
                priced_incl - sum_incl,
            ));
        }
        // Captured below the priced cost: the station overran the hold, and the driver pays
        // the hold, no more. The VAT share of the part not charged follows the cost's.
        if captured.amount < priced_incl {
            let cut_incl = captured.amount - priced_incl;
            let cut_excl = if priced_incl == 0 {
                cut_incl
            } else {
                let share = Decimal::from(cut_incl) * Decimal::from(priced_excl)
                    / Decimal::from(priced_incl);
                share
                    .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                    .to_i64()
                    .ok_or(ReceiptError::Overflow)?
            };
            lines.push(adjustment(
                LineKind::HoldCap,
                "Not charged: above the card hold",
                cut_excl,
                cut_incl,
            ));
        }
        let total_excl_vat = lines.iter().map(|l| l.excl_vat).sum();
        let total_incl_vat = lines.iter().map(|l| l.incl_vat).sum();
        Ok(Self {
            currency,
            lines,
            total_excl_vat,
            total_vat: total_incl_vat - total_excl_vat,
            total_incl_vat,
            authorized: authorized.amount,
            captured: captured.amount,
            released: authorized.amount - captured.amount,
        })
    }
}

/// Who sold the charge (the organization's operator settings).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptOperator {
    /// Operator name (the organization's `operator_name`, else its name).
    pub name: String,
    /// VAT / tax id, if set.
    #[serde(default)]
    pub tax_id: Option<String>,
    /// Postal address, if set.
    #[serde(default)]
    pub address: Option<String>,
}

/// Where the car charged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptStation {
    /// Charge station id (OCPP identity).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Postal address, if set.
    #[serde(default)]
    pub address: Option<String>,
    /// Connector id (`con_…`).
    pub connector: String,
}

/// The card the driver paid with, as the payment provider reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCard {
    /// Card brand as Stripe names it (`visa`, `mastercard`, `amex`, ...).
    pub brand: String,
    /// Last four digits.
    pub last4: String,
}

/// A settled session's receipt (`GET /sessions/{id}/receipt`; the same figures as the HTML and
/// PDF forms). Amounts are minor units of `currency`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The session.
    pub session: String,
    /// The HTML receipt (public, unguessable); `pdf_url` is the same as PDF.
    pub url: String,
    /// The PDF receipt.
    pub pdf_url: String,
    /// When the receipt was issued (the capture was recorded).
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// Who sold the charge.
    pub operator: ReceiptOperator,
    /// Where.
    pub station: ReceiptStation,
    /// When charging started.
    #[serde(default)]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the session ended.
    #[serde(default)]
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Energy delivered, Wh.
    pub energy_wh: i64,
    /// From start to end, seconds.
    pub duration_seconds: i64,
    /// Seconds charging.
    pub charging_seconds: i64,
    /// Seconds connected but not charging.
    pub parking_seconds: i64,
    /// Lines, totals, hold, capture and release.
    #[serde(flatten)]
    pub figures: ReceiptFigures,
    /// The card, once the provider told it (`null` if it could not be asked yet).
    #[serde(default)]
    pub card: Option<ReceiptCard>,
}

fn adjustment(kind: LineKind, description: &str, excl_vat: i64, incl_vat: i64) -> ReceiptLine {
    ReceiptLine {
        kind,
        dimension: None,
        description: description.to_owned(),
        quantity: None,
        unit: String::new(),
        unit_price: None,
        vat_percent: if excl_vat == 0 {
            "0".to_owned()
        } else {
            (Decimal::from(incl_vat - excl_vat) * Decimal::from(100) / Decimal::from(excl_vat))
                .round_dp(2)
                .normalize()
                .to_string()
        },
        excl_vat,
        vat: incl_vat - excl_vat,
        incl_vat,
    }
}

/// The shown name of a dimension.
pub fn describe(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Flat => "Session fee",
        Dimension::Energy => "Energy",
        Dimension::Time => "Charging time",
        Dimension::ParkingTime => "Parking time",
    }
}

fn unit(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Flat => "",
        Dimension::Energy => "kWh",
        Dimension::Time | Dimension::ParkingTime => "h",
    }
}

/// Splits exact major-unit `amounts` into minor units that add up to their sum rounded once
/// (half away from zero, as the engine rounds totals): each gets its floor, and the units left
/// go to the largest remainders (the earlier line on a tie, so equal inputs split equally).
fn allocate(amounts: &[Decimal], currency: Currency) -> Result<Vec<i64>, ReceiptError> {
    let scale = Decimal::from(10_i64.pow(currency.exponent()));
    let mut exact = Vec::with_capacity(amounts.len());
    for a in amounts {
        exact.push(a.checked_mul(scale).ok_or(ReceiptError::Overflow)?);
    }
    let target = exact
        .iter()
        .try_fold(Decimal::ZERO, |acc, x| acc.checked_add(*x))
        .ok_or(ReceiptError::Overflow)?
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .ok_or(ReceiptError::Overflow)?;
    let mut floors = Vec::with_capacity(exact.len());
    for x in &exact {
        floors.push(x.floor().to_i64().ok_or(ReceiptError::Overflow)?);
    }
    let mut order: Vec<usize> = (0..exact.len()).collect();
    // Stable sort: ties keep line order.
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).cmp(&(exact[a] - exact[a].floor())));
    let mut left = target - floors.iter().sum::<i64>();
    // `left` is within 0..=len: the sum rounded lies between the sum of floors and that plus
    // one per line.
    for &i in order.iter().cycle().take(exact.len().max(1) * 2) {
        if left <= 0 || exact.is_empty() {
            break;
        }
        floors[i] += 1;
        left -= 1;
    }
    Ok(floors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::CostComponent;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn component(dimension: Dimension, quantity: &str, price: &str, tax: &str) -> CostComponent {
        let before_tax = dec(quantity) * dec(price);
        let total = before_tax * (Decimal::ONE + dec(tax) / Decimal::from(100));
        CostComponent {
            dimension,
            quantity: dec(quantity),
            unit_price: dec(price),
            tax: dec(tax),
            before_tax,
            total,
        }
    }

    fn summary(currency: &str, breakdown: Vec<CostComponent>) -> CostSummary {
        let c: Currency = currency.parse().unwrap();
        let incl: Decimal = breakdown.iter().map(|b| b.total).sum();
        let excl: Decimal = breakdown.iter().map(|b| b.before_tax).sum();
        CostSummary {
            amount: crate::pricing::to_minor_units(incl, c).unwrap(),
            energy_wh: 12_345,
            charging_seconds: 1800,
            parking_seconds: 600,
            breakdown,
            amount_excl_vat: Some(crate::pricing::to_minor_units(excl, c).unwrap()),
        }
    }

    fn money(amount: i64, currency: &str) -> Money {
        Money::new(amount, currency.parse().unwrap())
    }

    fn assert_adds_up(f: &ReceiptFigures) {
        for l in &f.lines {
            assert_eq!(l.excl_vat + l.vat, l.incl_vat, "line {l:?}");
        }
        assert_eq!(
            f.lines.iter().map(|l| l.excl_vat).sum::<i64>(),
            f.total_excl_vat
        );
        assert_eq!(f.lines.iter().map(|l| l.vat).sum::<i64>(), f.total_vat);
        assert_eq!(f.total_excl_vat + f.total_vat, f.total_incl_vat);
        assert_eq!(f.total_incl_vat, f.captured);
        assert_eq!(f.released, f.authorized - f.captured);
    }

    #[test]
    fn components_and_vat_add_up_to_the_captured_total() {
        // Three components whose exact VAT amounts each end in a fraction of a cent.
        let cost = summary(
            "EUR",
            vec![
                component(Dimension::Energy, "12.345", "0.3333", "19"),
                component(Dimension::Time, "0.5", "1.111", "19"),
                component(Dimension::ParkingTime, "0.1667", "2.4999", "7"),
            ],
        );
        let f = ReceiptFigures::new(&cost, money(5000, "EUR"), cost.amount).unwrap();
        assert_adds_up(&f);
        assert_eq!(f.total_incl_vat, cost.amount.amount);
        assert_eq!(
            f.total_excl_vat,
            cost.amount_excl_vat.unwrap().amount,
            "the engine's excl. VAT total"
        );
        assert_eq!(f.lines.len(), 3, "no adjustment line: {:?}", f.lines);
        assert_eq!(f.released, 5000 - cost.amount.amount);
        // 12.345 kWh * 0.3333 = 4.1145885 excl. VAT: 411 or 412 cents, never further off.
        assert!(
            (411..=412).contains(&f.lines[0].excl_vat),
            "{:?}",
            f.lines[0]
        );
        assert_eq!(f.lines[0].description, "Energy");
        assert_eq!(f.lines[0].unit, "kWh");
        assert_eq!(f.lines[0].vat_percent, "19");
    }

    #[test]
    fn a_capture_at_the_hold_shows_the_part_not_charged() {
        let cost = summary(
            "USD",
            vec![component(Dimension::Energy, "80", "0.30", "10")],
        );
        assert_eq!(cost.amount.amount, 2640);
        let f = ReceiptFigures::new(&cost, money(1800, "USD"), money(1800, "USD")).unwrap();
        assert_adds_up(&f);
        assert_eq!(f.captured, 1800);
        assert_eq!(f.released, 0);
        let cut = f.lines.last().unwrap();
        assert_eq!(cut.kind, LineKind::HoldCap);
        assert_eq!(cut.incl_vat, 1800 - 2640);
        // 840 incl. 10 % VAT: 764 (763.6) excl.
        assert_eq!(cut.excl_vat, -764);
        assert_eq!(f.total_excl_vat, 2400 - 764);
    }

    #[test]
    fn a_zero_decimal_currency_adds_up_in_whole_units() {
        let cost = summary(
            "JPY",
            vec![
                component(Dimension::Flat, "1", "100.5", "10"),
                component(Dimension::Energy, "7.777", "55.5", "10"),
            ],
        );
        let f = ReceiptFigures::new(&cost, money(3000, "JPY"), cost.amount).unwrap();
        assert_adds_up(&f);
        // 100.5 + 431.6235 = 532.1235 yen excl. VAT, 585.33585 incl.: whole yen.
        assert_eq!(f.total_excl_vat, 532);
        assert_eq!(f.total_incl_vat, 585);
        assert_eq!(f.released, 3000 - 585);
        assert_eq!(f.lines[0].excl_vat + f.lines[1].excl_vat, 532);
    }

    #[test]
    fn a_minimum_price_is_its_own_line() {
        let mut cost = summary("EUR", vec![component(Dimension::Energy, "1", "0.25", "0")]);
        cost.amount = money(200, "EUR");
        cost.amount_excl_vat = Some(money(200, "EUR"));
        let f = ReceiptFigures::new(&cost, money(1000, "EUR"), money(200, "EUR")).unwrap();
        assert_adds_up(&f);
        let limit = f.lines.last().unwrap();
        assert_eq!(limit.kind, LineKind::PriceLimit);
        assert_eq!((limit.excl_vat, limit.incl_vat), (175, 175));
    }

    #[test]
    fn a_capture_above_the_cost_is_refused() {
        let cost = summary("USD", vec![component(Dimension::Energy, "1", "1", "0")]);
        let err = ReceiptFigures::new(&cost, money(1800, "USD"), money(101, "USD")).unwrap_err();
        assert!(matches!(err, ReceiptError::CapturedAboveCost { .. }));
        let err = ReceiptFigures::new(&cost, money(1800, "EUR"), money(100, "USD")).unwrap_err();
        assert!(matches!(err, ReceiptError::CurrencyMismatch { .. }));
    }

    #[test]
    fn largest_remainders_get_the_units_left() {
        let eur: Currency = "EUR".parse().unwrap();
        // 3 x 0.333... cents round to 1 cent in total: the first of equal remainders gets it.
        let third = dec("0.003333333");
        assert_eq!(
            allocate(&[third, third, third], eur).unwrap(),
            vec![1, 0, 0]
        );
        let parts = allocate(&[dec("0.335"), dec("0.335"), dec("0.33")], eur).unwrap();
        assert_eq!(parts.iter().sum::<i64>(), 100);
        assert_eq!(parts, vec![34, 33, 33]);
        assert_eq!(allocate(&[], eur).unwrap(), Vec::<i64>::new());
    }
}
