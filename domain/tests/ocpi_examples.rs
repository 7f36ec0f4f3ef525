//! The worked examples of OCPI 2.2.1 (docs/domain.md §2.3 step_size and §2.5), through both
//! entry points: CDR pricing (`price_cdr_json`) and live pricing (`LiveCost` with a rate that
//! embeds the same tariff), so both are shown to be one engine.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a panic is a failed test.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::money::{Currency, Money};
use domain::pricing::{LiveCost, MeterSample};
use domain::rate::Rate;
use domain::tariff::{PricedCdr, Tariff, price_cdr_json};
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A CDR starting at `start` (UTC) with periods `(minutes from start, [(type, volume)])`.
fn cdr(start: &str, minutes: i64, periods: &[(i64, &[(&str, &str)])]) -> String {
    let t0: DateTime<Utc> = start.parse().unwrap();
    let at = |m: i64| (t0 + Duration::minutes(m)).to_rfc3339();
    let periods: Vec<String> = periods
        .iter()
        .map(|(m, dims)| {
            let dims: Vec<String> = dims
                .iter()
                .map(|(t, v)| format!(r#"{{"type":"{t}","volume":{v}}}"#))
                .collect();
            format!(
                r#"{{"start_date_time":"{}","dimensions":[{}]}}"#,
                at(*m),
                dims.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"start_date_time":"{}","end_date_time":"{}","currency":"EUR","charging_periods":[{}]}}"#,
        at(0),
        at(minutes),
        periods.join(",")
    )
}

fn tariff(elements: &str, extra: &str) -> String {
    format!(r#"{{"currency":"EUR",{extra}"elements":[{elements}]}}"#)
}

fn totals(p: &PricedCdr) -> (Decimal, Decimal) {
    (p.total_cost.excl_vat, p.total_cost.incl_vat)
}

const ENERGY_025: &str =
    r#"{"price_components":[{"type":"ENERGY","price":0.25,"vat":10.0,"step_size":1}]}"#;
const START_FEE: &str =
    r#"{"price_components":[{"type":"FLAT","price":0.50,"vat":20.0,"step_size":1}]}"#;

#[test]
fn energy_start_fee_and_parking() {
    let t = tariff(ENERGY_025, "");
    let p = price_cdr_json(
        &t,
        &cdr("2026-03-02T10:00:00Z", 60, &[(0, &[("ENERGY", "20")])]),
        "UTC",
    )
    .unwrap();
    assert_eq!(totals(&p), (d("5.00"), d("5.50")));

    let t = tariff(&format!("{START_FEE},{ENERGY_025}"), "");
    let p = price_cdr_json(
        &t,
        &cdr("2026-03-02T10:00:00Z", 60, &[(0, &[("ENERGY", "20")])]),
        "UTC",
    )
    .unwrap();
    assert_eq!(totals(&p), (d("5.50"), d("6.10")));

    // + parking 2.00/h, 20 % VAT, step 900 s: 40 min parked bills 45 min.
    let parking =
        r#"{"price_components":[{"type":"PARKING_TIME","price":2.00,"vat":20.0,"step_size":900}]}"#;
    let t = tariff(&format!("{START_FEE},{ENERGY_025},{parking}"), "");
    let c = cdr(
        "2026-03-02T10:00:00Z",
        100,
        &[
            (0, &[("ENERGY", "20"), ("TIME", "1")]),
            (60, &[("PARKING_TIME", "0.6667")]),
        ],
    );
    let p = price_cdr_json(&t, &c, "UTC").unwrap();
    assert_eq!(totals(&p), (d("7.00"), d("7.90")));
    assert_eq!(p.billed_parking_time, d("0.75"));
}

#[test]
fn max_price_caps_excl_and_incl_independently() {
    let t = tariff(
        &format!("{START_FEE},{ENERGY_025}"),
        r#""max_price":{"excl_vat":10.00,"incl_vat":11.00},"#,
    );
    let p = price_cdr_json(
        &t,
        &cdr("2026-03-02T10:00:00Z", 60, &[(0, &[("ENERGY", "50")])]),
        "UTC",
    )
    .unwrap();
    assert_eq!(totals(&p), (d("10.00"), d("11.00")));
    assert!(p.max_price_applied);
    let p = price_cdr_json(
        &t,
        &cdr("2026-03-02T10:00:00Z", 60, &[(0, &[("ENERGY", "30")])]),
        "UTC",
    )
    .unwrap();
    assert_eq!(totals(&p), (d("8.00"), d("8.85")));
    assert!(!p.max_price_applied);
}

#[test]
fn min_price_lifts_a_low_total_but_is_not_a_flat_fee() {
    let t = tariff(
        ENERGY_025,
        r#""min_price":{"excl_vat":0.50,"incl_vat":0.55},"#,
    );
    let p = price_cdr_json(
        &t,
        &cdr("2026-03-02T10:00:00Z", 60, &[(0, &[("ENERGY", "1.2")])]),
        "UTC",
    )
    .unwrap();
    assert_eq!(totals(&p), (d("0.50"), d("0.55")));
    assert_eq!(
        p.total_energy_cost.excl_vat,
        d("0.30"),
        "components stay as priced"
    );
    let p = price_cdr_json(
        &t,
        &cdr("2026-03-02T10:00:00Z", 60, &[(0, &[("ENERGY", "20")])]),
        "UTC",
    )
    .unwrap();
    assert_eq!(
        totals(&p),
        (d("5.00"), d("5.50")),
        "above the minimum nothing changes"
    );
}

#[test]
fn time_then_parking_rounds_only_parking() {
    // 3 €/h charging (step 60) + 5 €/h parking (step 300): 150 min + 42 min.
    let t = tariff(
        r#"{"price_components":[{"type":"TIME","price":3.00,"vat":10.0,"step_size":60},{"type":"PARKING_TIME","price":5.00,"vat":20.0,"step_size":300}]}"#,
        "",
    );
    let c = cdr(
        "2026-03-02T10:00:00Z",
        192,
        &[(0, &[("TIME", "2.5")]), (150, &[("PARKING_TIME", "0.7")])],
    );
    let p = price_cdr_json(&t, &c, "UTC").unwrap();
    assert_eq!(totals(&p), (d("11.25"), d("12.75")));

    // 21 min charging + 7 min parking, both step 5 min: 21 + 10 billed.
    let t = tariff(
        r#"{"price_components":[{"type":"TIME","price":6.00,"step_size":300},{"type":"PARKING_TIME","price":6.00,"step_size":300}]}"#,
        "",
    );
    let c = cdr(
        "2026-03-02T10:00:00Z",
        28,
        &[
            (0, &[("TIME", "0.35")]),
            (21, &[("PARKING_TIME", "0.1166666667")]),
        ],
    );
    let p = price_cdr_json(&t, &c, "UTC").unwrap();
    assert_eq!(p.billed_time, d("0.35"), "charging time billed exactly");
    assert_eq!(
        p.billed_parking_time,
        d("0.1667"),
        "7 min of parking billed as 10"
    );
    assert_eq!(p.total_cost.excl_vat, d("3.10"));

    // Without parking, the charging time is the one rounded: 6 min at step 300 bills 10.
    let c = cdr("2026-03-02T10:00:00Z", 6, &[(0, &[("TIME", "0.1")])]);
    let p = price_cdr_json(&t, &c, "UTC").unwrap();
    assert_eq!(p.total_time_cost.excl_vat, d("1.00"));
}

#[test]
fn energy_step_one_rounds_to_whole_wh() {
    let t = tariff(
        r#"{"price_components":[{"type":"ENERGY","price":1.00,"step_size":1}]}"#,
        "",
    );
    let p = price_cdr_json(
        &t,
        &cdr("2026-03-02T10:00:00Z", 10, &[(0, &[("ENERGY", "0.1152")])]),
        "UTC",
    )
    .unwrap();
    assert_eq!(p.billed_energy, d("0.116"));
    assert_eq!(p.total_energy, d("0.1152"));
}

/// Two elements switching at 17:00 local time, each with ENERGY and TIME.
fn five_pm_tariff() -> String {
    tariff(
        r#"{"price_components":[{"type":"ENERGY","price":0.20,"step_size":500},{"type":"TIME","price":1.20,"step_size":600}],
            "restrictions":{"start_time":"00:00","end_time":"17:00"}},
           {"price_components":[{"type":"ENERGY","price":0.30,"step_size":500},{"type":"TIME","price":2.40,"step_size":600}],
            "restrictions":{"start_time":"17:00","end_time":"00:00"}}"#,
        "",
    )
}

#[test]
fn step_size_across_a_price_change_rounds_the_session_total_once() {
    // 4.3 kWh before 17:00 + 1.1 kWh after, step 500 Wh: 5.4 -> 5.5 kWh; the extra 0.1 kWh
    // is billed at the after-17:00 price; energy after 17:00 is NOT rounded to 1.5 kWh.
    // 6 min + 22 min, step 10 min: 28 -> 30 min, 24 min billed after 17:00.
    let c = cdr(
        "2026-03-02T16:54:00Z",
        28,
        &[
            (0, &[("ENERGY", "4.3"), ("TIME", "0.1")]),
            (6, &[("ENERGY", "1.1"), ("TIME", "0.3666666667")]),
        ],
    );
    let p = price_cdr_json(&five_pm_tariff(), &c, "UTC").unwrap();
    assert_eq!(p.billed_energy, d("5.5"));
    assert_eq!(
        p.total_energy_cost.excl_vat,
        d("1.22"),
        "4.3 x 0.20 + 1.2 x 0.30"
    );
    assert_eq!(p.billed_time, d("0.5"));
    assert_eq!(
        p.total_time_cost.excl_vat,
        d("1.08"),
        "0.1 h x 1.20 + 0.4 h x 2.40"
    );
}

#[test]
fn live_pricing_cuts_at_local_17_00_in_the_rate_time_zone() {
    // Same session live, in Europe/Amsterdam (UTC+1 in March): 17:00 local is 16:00 UTC.
    let tariff: Tariff = serde_json::from_str(&five_pm_tariff()).unwrap();
    let rate = Rate {
        currency: Currency::EUR,
        time_zone: Some("Europe/Amsterdam".into()),
        tariff: Some(tariff),
        ..Default::default()
    };
    rate.validate().unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 15, 54, 0).unwrap();
    let mut live = LiveCost::start(rate, t0, 100_000);
    // One sample exactly at the switch and one at the end: no interpolation needed.
    live.record_meter(MeterSample::new(
        t0 + Duration::minutes(6),
        104_300,
        Some(43_000),
    ));
    live.record_meter(MeterSample::new(
        t0 + Duration::minutes(28),
        105_400,
        Some(3_000),
    ));
    let cost = live.cost_at(t0 + Duration::minutes(28)).unwrap();
    // 1.22 energy + 1.08 time, no VAT.
    assert_eq!(cost.amount, Money::new(230, Currency::EUR));
    assert_eq!(cost.amount_excl_vat, Some(Money::new(230, Currency::EUR)));
}

#[test]
fn switching_to_an_element_without_parking_still_rounds_with_the_last_parking_step() {
    let t = tariff(
        r#"{"price_components":[{"type":"PARKING_TIME","price":1.00,"step_size":900}],"restrictions":{"start_time":"08:00","end_time":"20:00"}},
           {"price_components":[{"type":"FLAT","price":0,"step_size":1}]}"#,
        "",
    );
    // 10 min paid parking before 20:00, 30 min free after: total 40 min -> 45, extra 5 min at 1.00.
    let c = cdr(
        "2026-03-02T19:50:00Z",
        40,
        &[
            (0, &[("PARKING_TIME", "0.1666666667")]),
            (10, &[("PARKING_TIME", "0.5")]),
        ],
    );
    let p = price_cdr_json(&t, &c, "UTC").unwrap();
    assert_eq!(p.total_parking_cost.excl_vat, d("0.25"));
}

#[test]
fn vat_omitted_prices_like_zero_but_is_reported_as_absent() {
    let omitted = tariff(
        r#"{"price_components":[{"type":"ENERGY","price":0.25,"step_size":1}]}"#,
        "",
    );
    let zero = tariff(
        r#"{"price_components":[{"type":"ENERGY","price":0.25,"vat":0,"step_size":1}]}"#,
        "",
    );
    let c = cdr("2026-03-02T10:00:00Z", 60, &[(0, &[("ENERGY", "10")])]);
    let a = price_cdr_json(&omitted, &c, "UTC").unwrap();
    let b = price_cdr_json(&zero, &c, "UTC").unwrap();
    assert_eq!(totals(&a), (d("2.50"), d("2.50")));
    assert_eq!(totals(&a), totals(&b));
    assert_eq!(a.exact.lines[0].vat, None);
    assert_eq!(b.exact.lines[0].vat, Some(Decimal::ZERO));
}

#[test]
fn max_power_tiers_are_instantaneous() {
    let t = tariff(
        r#"{"price_components":[{"type":"ENERGY","price":0.20,"step_size":1}],"restrictions":{"max_power":16.00}},
           {"price_components":[{"type":"ENERGY","price":0.35,"step_size":1}],"restrictions":{"max_power":32.00}},
           {"price_components":[{"type":"ENERGY","price":0.50,"step_size":1}]}"#,
        "",
    );
    let c = cdr(
        "2026-03-02T10:00:00Z",
        70,
        &[
            (0, &[("ENERGY", "1"), ("POWER", "6")]),
            (10, &[("ENERGY", "40"), ("POWER", "48")]),
            (60, &[("ENERGY", "0.5"), ("POWER", "4")]),
        ],
    );
    assert_eq!(
        price_cdr_json(&t, &c, "UTC").unwrap().total_cost.excl_vat,
        d("20.30")
    );
}

#[test]
fn max_duration_first_half_hour_free() {
    let t = tariff(
        r#"{"price_components":[{"type":"ENERGY","price":0.00,"step_size":1}],"restrictions":{"max_duration":1800}},
           {"price_components":[{"type":"ENERGY","price":0.25,"step_size":1}],"restrictions":{"max_duration":3600}},
           {"price_components":[{"type":"ENERGY","price":0.40,"step_size":1}]}"#,
        "",
    );
    let c = cdr(
        "2026-03-02T10:00:00Z",
        40,
        &[(0, &[("ENERGY", "5")]), (30, &[("ENERGY", "1.2")])],
    );
    assert_eq!(
        price_cdr_json(&t, &c, "UTC").unwrap().total_cost.excl_vat,
        d("0.30")
    );

    // Live, with a sample every 5 minutes at constant power: the engine itself cuts at 30 min.
    let tariff: Tariff = serde_json::from_str(&t).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let mut live = LiveCost::start(
        Rate {
            currency: Currency::EUR,
            tariff: Some(tariff),
            ..Default::default()
        },
        t0,
        0,
    );
    for i in 1..=8 {
        // 1 kWh per 5 min up to 30 min, then 0.6 kWh per 5 min.
        let wh = if i <= 6 {
            i * 5000 / 6
        } else {
            5000 + (i - 6) * 600
        };
        live.record_meter(MeterSample::new(t0 + Duration::minutes(5 * i), wh, None));
    }
    assert_eq!(
        live.cost_at(t0 + Duration::minutes(40)).unwrap().amount,
        Money::new(30, Currency::EUR)
    );
}
