//! Per-sample cost of live pricing over a 24-hour session with one meter sample a minute.
//!
//! For each sample the session workflow records it, asks for the cost now and for a projection
//! (`record_meter` + `cost_at` + `projected_cost`); this bench times exactly that, per sample,
//! and prints the median for the second, middle and last hour: flat figures show the cost does
//! not grow with session length. It also times a late burst (queued samples arriving after
//! newer ones) and, for scale, re-pricing the whole session from scratch.
//!
//! Run: `cargo bench -p domain --bench live_pricing`

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::money::Currency;
use domain::pricing::{LiveCost, MeterSample};
use domain::rate::{Dimension, Rate, RateComponent};
use rust_decimal::Decimal;

const SAMPLES: i64 = 24 * 60;
const RUNS: usize = 20;

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

fn edrv_rate() -> Rate {
    let c = |dimension, price: &str, tax: Option<&str>, grace: Option<&str>| RateComponent {
        dimension,
        price: d(price),
        tax: tax.map(d),
        step_size: Some(60),
        grace_period: grace.map(d),
    };
    Rate::new(
        Currency::EUR,
        vec![
            c(Dimension::Flat, "1", Some("20"), None),
            c(Dimension::Energy, "0.35", Some("19"), None),
            c(Dimension::Time, "1.20", Some("19"), None),
            c(Dimension::ParkingTime, "6", Some("19"), Some("0.5")),
        ],
    )
}

fn time_of_day_rate() -> Rate {
    let tariff = r#"{"currency":"EUR","max_price":{"excl_vat":500,"incl_vat":600},"elements":[
        {"price_components":[{"type":"ENERGY","price":0.25,"vat":19,"step_size":1}],"restrictions":{"start_time":"22:00","end_time":"07:00"}},
        {"price_components":[{"type":"ENERGY","price":0.45,"vat":19,"step_size":1}],"restrictions":{"max_power":22}},
        {"price_components":[{"type":"ENERGY","price":0.55,"vat":19,"step_size":1},{"type":"TIME","price":2.40,"vat":19,"step_size":60}],
         "restrictions":{"day_of_week":["MONDAY","TUESDAY","WEDNESDAY","THURSDAY","FRIDAY"]}},
        {"price_components":[{"type":"ENERGY","price":0.50,"vat":19,"step_size":1},{"type":"PARKING_TIME","price":3,"vat":19,"step_size":300}]}]}"#;
    Rate {
        currency: Currency::EUR,
        time_zone: Some("Europe/Amsterdam".into()),
        tariff: serde_json::from_str(tariff).ok(),
        ..Default::default()
    }
}

fn sample(start: DateTime<Utc>, minute: i64) -> MeterSample {
    // ~11 kW with some wobble.
    let wh = minute * 183 + (minute % 7) * 3;
    MeterSample::new(
        start + Duration::minutes(minute),
        1_000_000 + wh,
        Some(11_000 + (minute % 5) * 100),
    )
}

/// ns per sample for each minute of the session, one row per run.
fn per_sample_ns(rate: &Rate, start: DateTime<Utc>) -> Vec<Vec<u128>> {
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let mut row = Vec::new();
        let mut live = LiveCost::start(rate.clone(), start, 1_000_000);
        for minute in 1..=SAMPLES {
            let at = start + Duration::minutes(minute);
            let s = sample(start, minute);
            let began = Instant::now();
            if minute == 20 {
                live.set_charging(at, false);
            }
            if minute == 40 {
                live.set_charging(at, true);
            }
            live.record_meter(black_box(s));
            black_box(live.cost_at(at).ok());
            black_box(live.projected_cost(at, Duration::minutes(2)).ok());
            row.push(began.elapsed().as_nanos());
        }
        runs.push(row);
    }
    runs
}

/// Median and mean ns over minutes `from..to` of every run (the median resists the noise of
/// other builds sharing the machine).
fn stats(runs: &[Vec<u128>], from: usize, to: usize) -> (u128, u128) {
    let mut all: Vec<u128> = runs
        .iter()
        .flat_map(|r| r[from..to].iter().copied())
        .collect();
    all.sort_unstable();
    let mean = all.iter().sum::<u128>() / all.len().max(1) as u128;
    (all[all.len() / 2], mean)
}

fn late_burst_ns(rate: &Rate, start: DateTime<Utc>) -> (f64, f64) {
    // 23 h in order, then 30 minutes of outage whose queued samples arrive after 30 newer ones.
    let mut live = LiveCost::start(rate.clone(), start, 1_000_000);
    for minute in 1..=(SAMPLES - 60) {
        live.record_meter(sample(start, minute));
    }
    for minute in (SAMPLES - 30)..=SAMPLES {
        live.record_meter(sample(start, minute));
    }
    let began = Instant::now();
    for minute in (SAMPLES - 59)..(SAMPLES - 30) {
        live.record_meter(black_box(sample(start, minute)));
    }
    let late = began.elapsed().as_nanos() as f64 / 29.0;
    // For scale: pricing the whole 24 h from scratch (what a non-incremental engine does per sample).
    let began = Instant::now();
    let mut scratch = LiveCost::start(rate.clone(), start, 1_000_000);
    for minute in 1..=SAMPLES {
        scratch.record_meter(sample(start, minute));
    }
    black_box(scratch.cost_at(start + Duration::minutes(SAMPLES)).ok());
    (late, began.elapsed().as_nanos() as f64)
}

fn main() {
    // A Friday 18:00 UTC start: the session crosses 22:00 and 07:00 local, midnight and the weekend.
    let start = Utc
        .with_ymd_and_hms(2026, 3, 6, 18, 0, 0)
        .single()
        .unwrap_or_default();
    println!("live pricing, 24 h session, 1 sample/min ({SAMPLES} samples), {RUNS} runs");
    println!("per sample = record_meter + cost_at + projected_cost(2 min)\n");
    println!("median (mean) ns per sample; the car pauses (PARKING_TIME) in minutes 20-40");
    println!(
        "{:<30} {:>16} {:>16} {:>16} {:>7}",
        "rate", "hour 2", "hour 12", "hour 24", "24/2"
    );
    for (name, rate) in [
        ("eDRV-style (4 components)", edrv_rate()),
        ("OCPI time-of-day, Amsterdam", time_of_day_rate()),
    ] {
        let runs = per_sample_ns(&rate, start);
        let n = usize::try_from(SAMPLES).unwrap_or(0);
        let cols = [
            stats(&runs, 0, 60),
            stats(&runs, 690, 750),
            stats(&runs, n - 60, n),
        ];
        let cell = |(median, mean): (u128, u128)| format!("{median} ({mean})");
        let ratio = cols[2].0 as f64 / cols[0].0.max(1) as f64;
        println!(
            "{name:<30} {:>16} {:>16} {:>16} {ratio:>7.2}",
            cell(cols[0]),
            cell(cols[1]),
            cell(cols[2])
        );
        let (late, scratch) = late_burst_ns(&rate, start);
        println!("  late sample (rewind + replay ~30-60 samples): {late:>10.0} ns each");
        println!("  re-pricing all {SAMPLES} samples from scratch:    {scratch:>10.0} ns\n");
    }
}
