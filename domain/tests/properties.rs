//! Property tests of live pricing over random operator rates and random sessions.
//!
//! Monotonicity has one documented exception, inherent to OCPI 2.2.1's step_size rule: when
//! PARKING_TIME becomes the last priced time dimension, TIME stops being rounded, so with a
//! TIME step_size > 1 the cost can drop at that moment (see docs/tariff-engine.md). The
//! time-monotonicity property is therefore checked across the whole session when TIME has no
//! rounding (step_size 1) and within the charging phase otherwise.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a panic is a failed test.

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::money::Currency;
use domain::pricing::{LiveCost, MeterSample, to_minor_units};
use domain::rate::{Dimension, Rate, RateComponent};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn component(dimension: Dimension) -> impl Strategy<Value = RateComponent> {
    (
        0i64..=500_000,
        proptest::option::of(0i64..=30),
        proptest::option::of(prop_oneof![Just(1u32), 1u32..=3600]),
        proptest::option::of(0i64..=30),
    )
        .prop_map(move |(price, tax, step, grace)| RateComponent {
            dimension,
            price: Decimal::new(price, 4),
            tax: tax.map(Decimal::from),
            step_size: step,
            grace_period: grace
                .filter(|_| dimension == Dimension::ParkingTime)
                .map(|g| Decimal::new(g, 1)),
        })
}

fn rate() -> impl Strategy<Value = Rate> {
    let currency = prop_oneof![Just("USD"), Just("EUR"), Just("JPY"), Just("KWD")];
    (
        currency,
        proptest::option::of(component(Dimension::Flat)),
        proptest::option::of(component(Dimension::Energy)),
        proptest::option::of(component(Dimension::Time)),
        proptest::option::of(component(Dimension::ParkingTime)),
    )
        .prop_map(|(c, f, e, t, p)| {
            Rate::new(
                c.parse().unwrap(),
                [f, e, t, p].into_iter().flatten().collect(),
            )
        })
}

#[derive(Debug, Clone)]
struct Session {
    start: DateTime<Utc>,
    /// (seconds since the previous sample, Wh since the previous sample, power W)
    steps: Vec<(i64, i64, Option<i64>)>,
    /// Charging stops after this many samples (none = charging throughout).
    park_after: Option<usize>,
}

fn session() -> impl Strategy<Value = Session> {
    (
        0i64..(365 * 86_400),
        proptest::collection::vec(
            (1i64..=900, 0i64..=600, proptest::option::of(0i64..=150_000)),
            1..80,
        ),
        proptest::option::of(0usize..80),
    )
        .prop_map(|(offset, steps, park_after)| Session {
            start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(offset),
            steps,
            park_after,
        })
}

impl Session {
    fn samples(&self, extra_wh: i64) -> Vec<MeterSample> {
        let (mut at, mut wh) = (self.start, 1_000_000);
        self.steps
            .iter()
            .map(|(secs, energy, power)| {
                at += Duration::seconds(*secs);
                wh += energy + extra_wh;
                MeterSample::new(at, wh, *power)
            })
            .collect()
    }

    fn park_at(&self, samples: &[MeterSample]) -> Option<DateTime<Utc>> {
        self.park_after.map(|k| {
            if k == 0 {
                self.start
            } else {
                samples[(k - 1).min(samples.len() - 1)].timestamp
            }
        })
    }
}

fn time_step_rounds(rate: &Rate) -> bool {
    rate.component(Dimension::Time)
        .is_some_and(|c| c.step_size.unwrap_or(1) > 1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn cost_is_never_negative_and_in_whole_minor_units(rate in rate(), s in session()) {
        let samples = s.samples(0);
        let mut live = LiveCost::start(rate.clone(), s.start, 1_000_000);
        if let Some(p) = s.park_at(&samples) { live.set_charging(p, false); }
        for sample in &samples {
            live.record_meter(*sample);
            let cost = live.cost_at(sample.timestamp).unwrap();
            prop_assert!(cost.amount.amount >= 0);
            prop_assert_eq!(cost.amount.currency, rate.currency);
            let excl = cost.amount_excl_vat.unwrap();
            prop_assert!(excl.amount >= 0 && excl.amount <= cost.amount.amount, "tax is never negative");
            // The amount is the exact sum of the components, rounded once.
            let exact: Decimal = cost.breakdown.iter().map(|c| c.total).sum();
            prop_assert_eq!(cost.amount, to_minor_units(exact, rate.currency).unwrap());
        }
    }

    #[test]
    fn cost_never_decreases_as_time_grows(rate in rate(), s in session()) {
        let samples = s.samples(0);
        let park = s.park_at(&samples);
        let mut live = LiveCost::start(rate.clone(), s.start, 1_000_000);
        if let Some(p) = park { live.set_charging(p, false); }
        let mut previous: Option<(DateTime<Utc>, i64)> = None;
        for sample in &samples {
            live.record_meter(*sample);
            // Check at the sample and half-way to the next one (a tail without samples).
            for at in [sample.timestamp, sample.timestamp + Duration::seconds(450)] {
                let amount = live.cost_at(at).unwrap().amount.amount;
                if let Some((t0, a0)) = previous {
                    let crossed_into_parking = park.is_some_and(|p| at > p);
                    if !time_step_rounds(&rate) || !crossed_into_parking {
                        prop_assert!(amount >= a0, "cost fell from {} at {} to {} at {}", a0, t0, amount, at);
                    }
                }
                if at == sample.timestamp { previous = Some((at, amount)); }
            }
        }
    }

    #[test]
    fn cost_never_decreases_as_energy_grows(rate in rate(), s in session(), extra in 1i64..=200) {
        let mut less = LiveCost::start(rate.clone(), s.start, 1_000_000);
        let mut more = LiveCost::start(rate, s.start, 1_000_000);
        for (a, b) in s.samples(0).into_iter().zip(s.samples(extra)) {
            less.record_meter(a);
            more.record_meter(b);
            prop_assert!(more.cost_at(b.timestamp).unwrap().amount.amount >= less.cost_at(a.timestamp).unwrap().amount.amount);
        }
        prop_assert!(more.energy_wh() > less.energy_wh());
    }

    #[test]
    fn projection_is_at_least_the_cost_now_and_grows_with_the_horizon(rate in rate(), s in session(), minutes in 0i64..=120) {
        let samples = s.samples(0);
        let park = s.park_at(&samples);
        let mut live = LiveCost::start(rate.clone(), s.start, 1_000_000);
        if let Some(p) = park { live.set_charging(p, false); }
        for sample in &samples {
            live.record_meter(*sample);
            let now = live.cost_at(sample.timestamp).unwrap().amount;
            let near = live.projected_cost(sample.timestamp, Duration::minutes(minutes)).unwrap();
            let far = live.projected_cost(sample.timestamp, Duration::minutes(minutes + 30)).unwrap();
            prop_assert!(near.amount >= now.amount);
            if live.is_charging() || !time_step_rounds(&rate) {
                prop_assert!(far.amount >= near.amount, "projection fell from {} to {}", near, far);
            }
        }
    }

    #[test]
    fn sample_order_does_not_matter(rate in rate(), s in session(), seed in any::<u64>()) {
        let samples = s.samples(0);
        let park = s.park_at(&samples);
        let end = samples.last().unwrap().timestamp;
        let mut in_order = LiveCost::start(rate.clone(), s.start, 1_000_000);
        let mut shuffled = LiveCost::start(rate, s.start, 1_000_000);
        if let Some(p) = park { in_order.set_charging(p, false); }
        for sample in &samples { in_order.record_meter(*sample); }
        // Deterministic shuffle, with the transition arriving somewhere in the middle.
        let mut order: Vec<usize> = (0..samples.len()).collect();
        let mut x = seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, usize::try_from(x % (u64::try_from(i).unwrap() + 1)).unwrap());
        }
        for (n, i) in order.into_iter().enumerate() {
            shuffled.record_meter(samples[i]);
            if n == samples.len() / 2 && let Some(p) = park { shuffled.set_charging(p, false); }
        }
        prop_assert_eq!(shuffled.cost_at(end).unwrap(), in_order.cost_at(end).unwrap());
    }
}

#[test]
fn a_time_step_drops_when_parking_becomes_the_rounded_dimension() {
    // The documented exception, pinned: TIME step 900 s bills 1 min of charging as 15 min;
    // once priced parking follows, charging is billed exactly and only parking is rounded.
    let rate = Rate::new(
        Currency::EUR,
        vec![
            RateComponent {
                dimension: Dimension::Time,
                price: Decimal::from(12),
                tax: None,
                step_size: Some(900),
                grace_period: None,
            },
            RateComponent {
                dimension: Dimension::ParkingTime,
                price: Decimal::from(1),
                tax: None,
                step_size: Some(60),
                grace_period: None,
            },
        ],
    );
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    let mut live = LiveCost::start(rate, t0, 0);
    live.set_charging(t0 + Duration::minutes(1), false);
    assert_eq!(
        live.cost_at(t0 + Duration::minutes(1))
            .unwrap()
            .amount
            .amount,
        300
    );
    // 1 min x 12/h + 1 min x 1/h = 0.20 + 0.0167
    assert_eq!(
        live.cost_at(t0 + Duration::minutes(2))
            .unwrap()
            .amount
            .amount,
        22
    );
}
