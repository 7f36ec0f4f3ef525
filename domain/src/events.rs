//! Webhook events: one per step of a session, each carrying the full session object.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::session::Session;

/// The event types of the Payment Links spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// The session exists.
    #[serde(rename = "session.created")]
    SessionCreated,
    /// Its payment page exists.
    #[serde(rename = "session.payment.created")]
    PaymentCreated,
    /// The card hold is placed.
    #[serde(rename = "session.payment.authorized")]
    PaymentAuthorized,
    /// The payment page expired or the card was refused.
    #[serde(rename = "session.payment.expired")]
    PaymentExpired,
    /// Cancelled by the driver, or the station never started.
    #[serde(rename = "session.canceled")]
    SessionCanceled,
    /// Charging started.
    #[serde(rename = "session.started")]
    SessionStarted,
    /// Charging paused through the API.
    #[serde(rename = "session.paused")]
    SessionPaused,
    /// Charging resumed through the API.
    #[serde(rename = "session.resumed")]
    SessionResumed,
    /// The station reported the stop; carries the final cost.
    #[serde(rename = "session.ended")]
    SessionEnded,
    /// The final cost was captured and the rest released.
    #[serde(rename = "session.payment.captured")]
    PaymentCaptured,
    /// The hold was released without a capture.
    #[serde(rename = "session.payment.canceled")]
    PaymentCanceled,
    /// Charging finished (the EV or the station suspended it) on a rate with parking time; the
    /// session's `idle` says since when and when the parking fee starts. Beyond the spec's
    /// catalogue: delivered only to endpoints that list it in their `events`.
    #[serde(rename = "session.idle")]
    SessionIdle,
    /// The card hold was raised (top-up, incremental authorization); the session's
    /// `payment.authorized_amount` shows the new hold. Beyond the spec's catalogue: delivered
    /// only to endpoints that list it in their `events`.
    #[serde(rename = "session.payment.increased")]
    PaymentIncreased,
}

impl EventType {
    /// Every event type, in the order a session can emit them.
    pub const ALL: [EventType; 13] = [
        Self::SessionCreated,
        Self::PaymentCreated,
        Self::PaymentAuthorized,
        Self::PaymentExpired,
        Self::SessionCanceled,
        Self::SessionStarted,
        Self::SessionPaused,
        Self::SessionResumed,
        Self::SessionIdle,
        Self::PaymentIncreased,
        Self::SessionEnded,
        Self::PaymentCaptured,
        Self::PaymentCanceled,
    ];

    /// Whether the payment-links spec lists it: an endpoint that names no `events` gets these
    /// (and only these), so an eDRV-style client receives what the spec promises and nothing
    /// new; chargelink's own additions go to endpoints that ask for them.
    pub fn in_spec(&self) -> bool {
        !matches!(self, Self::SessionIdle | Self::PaymentIncreased)
    }

    /// The wire name, e.g. `session.payment.captured`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SessionCreated => "session.created",
            Self::PaymentCreated => "session.payment.created",
            Self::PaymentAuthorized => "session.payment.authorized",
            Self::PaymentExpired => "session.payment.expired",
            Self::SessionCanceled => "session.canceled",
            Self::SessionStarted => "session.started",
            Self::SessionPaused => "session.paused",
            Self::SessionResumed => "session.resumed",
            Self::SessionEnded => "session.ended",
            Self::PaymentCaptured => "session.payment.captured",
            Self::PaymentCanceled => "session.payment.canceled",
            Self::SessionIdle => "session.idle",
            Self::PaymentIncreased => "session.payment.increased",
        }
    }
}

/// A webhook event. `id` is derived from the session id and the event's sequence number in the
/// session, so a retried step produces the same id and receivers can de-duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Stable event id: `evt_<session body>_<seq>`.
    #[serde(rename = "_id")]
    pub id: String,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Position in the session's event stream, from 1.
    pub seq: u32,
    /// When the step happened (workflow time).
    #[serde(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
    /// The session after the step.
    pub data: Session,
}

impl SessionEvent {
    /// The stable id of the `seq`-th event of a session.
    pub fn id_for(session: &crate::ids::SessionId, seq: u32) -> String {
        let body = session
            .as_str()
            .trim_start_matches(crate::ids::SessionId::PREFIX);
        format!("evt_{body}_{seq:04}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's eleven go to every endpoint; chargelink's additions only to those that ask.
    #[test]
    fn only_chargelinks_additions_are_outside_the_spec() {
        let outside: Vec<&str> = EventType::ALL
            .iter()
            .filter(|e| !e.in_spec())
            .map(EventType::as_str)
            .collect();
        assert_eq!(outside, ["session.idle", "session.payment.increased"]);
        assert_eq!(EventType::ALL.iter().filter(|e| e.in_spec()).count(), 11);
        let wire = serde_json::to_string(&EventType::PaymentIncreased).unwrap();
        assert_eq!(wire, "\"session.payment.increased\"");
    }
}
