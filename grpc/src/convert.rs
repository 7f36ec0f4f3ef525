//! Domain objects to their protobuf form (the REST JSON shapes, field for field).

use chrono::{DateTime, Utc};
use domain::events::SessionEvent;
use domain::money::Money;
use domain::pricing::CostSummary;
use domain::rate::Dimension;
use domain::session::{EndReason, Payment, PaymentStatus, Session, SessionStatus};
use rust_decimal::prelude::ToPrimitive;

use crate::pb;

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn money(m: Money) -> pb::Money {
    pb::Money {
        amount: m.amount,
        // Lower-case, as the REST API and Stripe write it.
        currency: m.currency.code().to_ascii_lowercase(),
    }
}

pub(crate) fn session_status(s: SessionStatus) -> pb::SessionStatus {
    match s {
        SessionStatus::Created => pb::SessionStatus::Created,
        SessionStatus::Started => pb::SessionStatus::Started,
        SessionStatus::Paused => pb::SessionStatus::Paused,
        SessionStatus::Ended => pb::SessionStatus::Ended,
        SessionStatus::Canceled => pb::SessionStatus::Canceled,
        SessionStatus::Expired => pb::SessionStatus::Expired,
    }
}

/// The REST word for a status filter; `None` for UNSPECIFIED.
pub(crate) fn status_word(s: pb::SessionStatus) -> Option<&'static str> {
    let status = match s {
        pb::SessionStatus::Unspecified => return None,
        pb::SessionStatus::Created => SessionStatus::Created,
        pb::SessionStatus::Started => SessionStatus::Started,
        pb::SessionStatus::Paused => SessionStatus::Paused,
        pb::SessionStatus::Ended => SessionStatus::Ended,
        pb::SessionStatus::Canceled => SessionStatus::Canceled,
        pb::SessionStatus::Expired => SessionStatus::Expired,
    };
    Some(status.as_str())
}

fn payment_status(s: PaymentStatus) -> pb::PaymentStatus {
    match s {
        PaymentStatus::Created => pb::PaymentStatus::Created,
        PaymentStatus::Authorized => pb::PaymentStatus::Authorized,
        PaymentStatus::Expired => pb::PaymentStatus::Expired,
        PaymentStatus::Canceled => pb::PaymentStatus::Canceled,
        PaymentStatus::Captured => pb::PaymentStatus::Captured,
    }
}

fn end_reason(r: EndReason) -> pb::EndReason {
    match r {
        EndReason::StoppedByApi => pb::EndReason::StoppedByApi,
        EndReason::HoldLimit => pb::EndReason::HoldLimit,
        EndReason::Unplugged => pb::EndReason::Unplugged,
        EndReason::Station => pb::EndReason::Station,
        EndReason::StationUnresponsive => pb::EndReason::StationUnresponsive,
        EndReason::DriverCanceled => pb::EndReason::DriverCanceled,
        EndReason::PaymentExpired => pb::EndReason::PaymentExpired,
        EndReason::StartFailed => pb::EndReason::StartFailed,
        EndReason::StationReset => pb::EndReason::StationReset,
        EndReason::StationFault => pb::EndReason::StationFault,
        EndReason::TargetReached => pb::EndReason::TargetReached,
    }
}

fn dimension(d: Dimension) -> &'static str {
    match d {
        Dimension::Flat => "FLAT",
        Dimension::Energy => "ENERGY",
        Dimension::Time => "TIME",
        Dimension::ParkingTime => "PARKING_TIME",
    }
}

fn payment(p: &Payment) -> pb::Payment {
    pb::Payment {
        id: p.id.to_string(),
        session: p.session.to_string(),
        url: p.url.clone(),
        authorized: Some(money(p.authorized())),
        captured: p
            .captured_amount
            .map(|amount| money(Money::new(amount, p.currency))),
        r#type: p.kind.clone(),
        status: payment_status(p.status).into(),
        stripe_intent_id: p.stripe.intent_id.clone().unwrap_or_default(),
        stripe_checkout_session_id: p.stripe.checkout_session_id.clone().unwrap_or_default(),
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

fn cost(c: &domain::session::SessionCost) -> pb::Cost {
    let details: Option<&CostSummary> = c.details.as_ref();
    pb::Cost {
        amount: c
            .amount
            .zip(c.currency)
            .map(|(amount, currency)| money(Money::new(amount, currency))),
        amount_excl_vat: details.and_then(|d| d.amount_excl_vat).map(money),
        energy_wh: details.map_or(0, |d| d.energy_wh),
        charging_seconds: details.map_or(0, |d| d.charging_seconds),
        parking_seconds: details.map_or(0, |d| d.parking_seconds),
        breakdown: details
            .map(|d| {
                d.breakdown
                    .iter()
                    .map(|c| pb::CostComponent {
                        r#type: dimension(c.dimension).to_owned(),
                        quantity: c.quantity.to_string(),
                        unit_price: c.unit_price.to_string(),
                        tax: c.tax.to_string(),
                        before_tax: c.before_tax.to_string(),
                        total: c.total.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A session as gRPC shows it.
pub fn session(s: &Session) -> pb::Session {
    pb::Session {
        id: s.id.to_string(),
        user: s.user.to_string(),
        charge_station: s.chargestation.to_string(),
        connector: s.connector.to_string(),
        status: session_status(s.status).into(),
        rate: s.rate.to_string(),
        r#type: s.kind.clone(),
        payment_expiry_time: s.target.payment_expiry_time.unwrap_or(0),
        target_energy: s.target.energy.and_then(|kwh| kwh.to_f64()).unwrap_or(0.0),
        cost: Some(cost(&s.cost)),
        payment: s.payment.as_ref().map(payment),
        end_reason: s
            .end_reason
            .map_or(pb::EndReason::Unspecified, end_reason)
            .into(),
        started_at: s.started_at.map(timestamp),
        ended_at: s.ended_at.map(timestamp),
        created_at: Some(timestamp(s.created_at)),
        updated_at: Some(timestamp(s.updated_at)),
        receipt_url: s.receipt_url.clone().unwrap_or_default(),
    }
}

/// A session event as gRPC shows it.
pub fn event(e: &SessionEvent) -> pb::SessionEvent {
    pb::SessionEvent {
        id: e.id.clone(),
        r#type: e.kind.as_str().to_owned(),
        seq: e.seq,
        created_at: Some(timestamp(e.created_at)),
        session: Some(session(&e.data)),
    }
}
