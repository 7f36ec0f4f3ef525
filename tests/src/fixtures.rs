//! Session inputs, rates and timings short enough for tests to run in seconds.

use std::time::Duration;

use domain::config::SessionTimings;
use domain::ids::{
    ChargeStationId, ConnectorRef, OrganizationId, PaymentId, RateId, SessionId, UserId,
};
use domain::money::{Currency, Money};
use domain::rate::{Dimension, Rate, RateComponent};
use domain::session::SessionTarget;
use rand::Rng;
use workflows::SessionInput;

/// Every event of a session paid, charged, paused, resumed, stopped and captured, in order
/// (the webhook types).
pub const HAPPY_PATH_EVENTS: [&str; 8] = [
    "session.created",
    "session.payment.created",
    "session.payment.authorized",
    "session.started",
    "session.paused",
    "session.resumed",
    "session.ended",
    "session.payment.captured",
];

/// The events of a session that was paid, charged and captured, in order.
pub const PAID_SESSION_EVENTS: [&str; 6] = [
    "session.created",
    "session.payment.created",
    "session.payment.authorized",
    "session.started",
    "session.ended",
    "session.payment.captured",
];

/// A random id body (hex), like the API mints.
pub fn random_body() -> String {
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

/// Timings that keep every wait to a few seconds.
pub fn fast_timings() -> SessionTimings {
    SessionTimings {
        payment_expiry: Duration::from_secs(2),
        start_window: Duration::from_secs(4),
        start_attempt_timeout: Duration::from_millis(1500),
        start_retry_initial: Duration::from_millis(300),
        start_retry_max: Duration::from_secs(1),
        meter_interval: Duration::from_secs(1),
        stop_latency: Duration::from_secs(1),
        stop_confirm_timeout: Duration::from_secs(2),
        stop_attempts: 2,
        fault_grace: Duration::from_secs(3),
        history_limit: 2_000,
    }
}

/// A rate component without step size or grace period.
pub fn component(dimension: Dimension, price: &str, tax: Option<&str>) -> RateComponent {
    RateComponent {
        dimension,
        price: price.parse().unwrap_or_default(),
        tax: tax.and_then(|t| t.parse().ok()),
        step_size: None,
        grace_period: None,
    }
}

/// A USD rate from components.
pub fn rate(components: Vec<RateComponent>) -> Rate {
    Rate::new(Currency::USD, components)
}

/// A session on `station` connector 1 with a USD hold of `hold` cents.
pub fn session_input(
    station: &str,
    rate: Rate,
    hold: i64,
    timings: SessionTimings,
) -> anyhow::Result<SessionInput> {
    let body = random_body();
    Ok(SessionInput {
        session_id: SessionId::from_unique(&body)?,
        payment_id: PaymentId::from_unique(&body)?,
        organization: OrganizationId::from_unique("test")?,
        user: UserId::from_unique("driver")?,
        charge_station: station.parse::<ChargeStationId>()?,
        connector: ConnectorRef::from_unique(&format!("{station}-1"))?,
        connector_id: 1,
        rate_id: RateId::from_unique("test")?,
        rate,
        authorized_amount: Money::new(hold, Currency::USD),
        target: SessionTarget::default(),
        timings,
        max_power_w: None,
        price_text: None,
        top_up: None,
        continued: None,
    })
}

/// A EUR rate priced by an OCPI tariff in Europe/Berlin with energy, time, parking and a
/// weekday restriction: 0.40 €/kWh and 3 €/h charging on weekdays 08:00-18:00, 0.30 €/kWh
/// otherwise, parking 6 €/h after a free hour, 19 % VAT, minimum 2.38 €, maximum 59.50 €
/// (incl. VAT). Every price is exact per minute, so the price lines show minutes.
pub fn weekday_tariff_rate() -> Rate {
    let tariff = serde_json::from_value(serde_json::json!({
        "currency": "EUR",
        "min_price": {"excl_vat": "2", "incl_vat": "2.38"},
        "max_price": {"excl_vat": "50", "incl_vat": "59.5"},
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": "0.40", "vat": "19", "step_size": 1},
                                  {"type": "TIME", "price": "3", "vat": "19", "step_size": 1}],
             "restrictions": {"day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                              "start_time": "08:00", "end_time": "18:00"}},
            {"price_components": [{"type": "ENERGY", "price": "0.30", "vat": "19", "step_size": 1}]},
            {"price_components": [{"type": "PARKING_TIME", "price": "6", "vat": "19", "step_size": 1}],
             "restrictions": {"min_parking_duration": 3600}}
        ]
    }))
    .unwrap_or_else(|e| panic!("the test tariff does not parse: {e}"));
    Rate {
        time_zone: Some("Europe/Berlin".into()),
        tariff: Some(tariff),
        ..Rate::new(Currency::EUR, Vec::new())
    }
}
