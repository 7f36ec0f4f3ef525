//! Stripe event -> what to tell the session workflow. Pure, so every mapping is unit-tested.

use domain::ids::SessionId;
use domain::money::{Currency, Money};
use stripe_shared::{CheckoutSession, PaymentIntent, PaymentIntentStatus};
use stripe_webhook::{Event, EventObject};
use workflows::messages::{PaymentAuthorized, PaymentClosed};

/// The event types chargelink acts on.
const HANDLED: [&str; 4] = [
    "checkout.session.completed",
    "checkout.session.expired",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
];

/// What an event asks of the session workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Authorized {
        session: SessionId,
        payload: PaymentAuthorized,
    },
    Expired {
        session: SessionId,
        payload: PaymentClosed,
    },
    Canceled {
        session: SessionId,
        payload: PaymentClosed,
    },
    /// Nothing to do, and why.
    Ignore(&'static str),
}

pub(crate) fn is_handled(event_type: &str) -> bool {
    HANDLED.contains(&event_type)
}

/// The `type` of an event body that did not parse (for deciding whether to care).
pub(crate) fn peek_type(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// chargelink puts the session id in `client_reference_id` and in `metadata[session_id]`.
fn checkout_session_id(cs: &CheckoutSession) -> Option<SessionId> {
    cs.client_reference_id
        .as_deref()
        .and_then(|c| c.parse().ok())
        .or_else(|| cs.metadata.as_ref()?.get("session_id")?.parse().ok())
}

/// ... and in the PaymentIntent's `metadata[session_id]` (`payment_intent_data[metadata]`).
fn intent_session_id(pi: &PaymentIntent) -> Option<SessionId> {
    pi.metadata.get("session_id")?.parse().ok()
}

fn money(amount: i64, currency: &impl std::fmt::Display) -> Option<Money> {
    let currency: Currency = currency.to_string().parse().ok()?;
    Some(Money::new(amount, currency))
}

pub(crate) fn action(event: &Event) -> Action {
    match &event.data.object {
        EventObject::CheckoutSessionCompleted(cs) => {
            let Some(session) = checkout_session_id(cs) else {
                return Action::Ignore("not a chargelink session");
            };
            let Some(intent_id) = cs
                .payment_intent
                .as_ref()
                .map(|p| p.id().as_str().to_owned())
            else {
                return Action::Ignore("completed without a PaymentIntent");
            };
            // With manual capture the hold is the session's total.
            let held = cs
                .amount_total
                .zip(cs.currency.as_ref())
                .and_then(|(a, c)| money(a, c));
            let Some(amount_capturable) = held else {
                return Action::Ignore("no amount on the session");
            };
            Action::Authorized {
                session,
                payload: PaymentAuthorized {
                    intent_id,
                    amount_capturable,
                },
            }
        }
        EventObject::PaymentIntentAmountCapturableUpdated(pi) => {
            let Some(session) = intent_session_id(pi) else {
                return Action::Ignore("not a chargelink payment");
            };
            if pi.status != PaymentIntentStatus::RequiresCapture || pi.amount_capturable <= 0 {
                return Action::Ignore("nothing capturable");
            }
            let Some(amount_capturable) = money(pi.amount_capturable, &pi.currency) else {
                return Action::Ignore("unknown currency");
            };
            Action::Authorized {
                session,
                payload: PaymentAuthorized {
                    intent_id: pi.id.as_str().to_owned(),
                    amount_capturable,
                },
            }
        }
        EventObject::CheckoutSessionExpired(cs) => match checkout_session_id(cs) {
            Some(session) => Action::Expired {
                session,
                payload: PaymentClosed {
                    reason: format!("Stripe checkout session {} expired", cs.id.as_str()),
                },
            },
            None => Action::Ignore("not a chargelink session"),
        },
        EventObject::PaymentIntentCanceled(pi) => match intent_session_id(pi) {
            Some(session) => {
                let why = pi
                    .cancellation_reason
                    .as_ref()
                    .map(|r| r.as_str().to_owned())
                    .unwrap_or_else(|| "no reason".into());
                Action::Canceled {
                    session,
                    payload: PaymentClosed {
                        reason: format!("PaymentIntent {} canceled ({why})", pi.id.as_str()),
                    },
                }
            }
            None => Action::Ignore("not a chargelink payment"),
        },
        _ => Action::Ignore("event type not used"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stripe_webhook::Webhook;

    fn event(event_type: &str, object: serde_json::Value) -> Event {
        let body = serde_json::json!({
            "id": "evt_1", "object": "event", "api_version": "2026-09-30.endive", "created": 1_700_000_000,
            "data": { "object": object }, "livemode": false, "pending_webhooks": 1, "type": event_type,
        });
        Webhook::insecure(&body.to_string()).unwrap()
    }

    fn session(status: &str, client_reference_id: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "id": "cs_test_1", "object": "checkout.session", "amount_total": 5000, "currency": "eur",
            "automatic_tax": {"enabled": false}, "created": 1_700_000_000, "custom_fields": [], "custom_text": {},
            "expires_at": 1_700_001_800, "livemode": false, "mode": "payment", "payment_method_types": ["card"],
            "payment_status": "unpaid", "shipping_options": [], "status": status, "payment_intent": "pi_1",
            "client_reference_id": client_reference_id, "metadata": {"session_id": "ses_meta"},
        })
    }

    fn intent(status: &str, capturable: i64, session: Option<&str>) -> serde_json::Value {
        let metadata = session
            .map(|s| serde_json::json!({"session_id": s}))
            .unwrap_or(serde_json::json!({}));
        serde_json::json!({
            "id": "pi_1", "object": "payment_intent", "amount": 5000, "amount_capturable": capturable,
            "amount_received": 0, "capture_method": "manual", "confirmation_method": "automatic",
            "created": 1_700_000_000, "currency": "eur", "livemode": false, "metadata": metadata,
            "payment_method_types": ["card"], "status": status, "cancellation_reason": "abandoned",
        })
    }

    fn ses(id: &str) -> SessionId {
        id.parse().unwrap()
    }

    #[test]
    fn a_completed_checkout_authorizes_the_session_of_its_client_reference() {
        let a = action(&event(
            "checkout.session.completed",
            session("complete", Some("ses_1")),
        ));
        let payload = PaymentAuthorized {
            intent_id: "pi_1".into(),
            amount_capturable: Money::new(5000, Currency::EUR),
        };
        assert_eq!(
            a,
            Action::Authorized {
                session: ses("ses_1"),
                payload
            }
        );
        // Without a client reference, the metadata names the session.
        let a = action(&event(
            "checkout.session.completed",
            session("complete", None),
        ));
        assert!(matches!(a, Action::Authorized { session, .. } if session == ses("ses_meta")));
    }

    #[test]
    fn a_capturable_intent_authorizes_and_a_canceled_one_cancels() {
        let a = action(&event(
            "payment_intent.amount_capturable_updated",
            intent("requires_capture", 4000, Some("ses_1")),
        ));
        let payload = PaymentAuthorized {
            intent_id: "pi_1".into(),
            amount_capturable: Money::new(4000, Currency::EUR),
        };
        assert_eq!(
            a,
            Action::Authorized {
                session: ses("ses_1"),
                payload
            }
        );
        let a = action(&event(
            "payment_intent.canceled",
            intent("canceled", 0, Some("ses_1")),
        ));
        assert!(
            matches!(a, Action::Canceled { session, payload } if session == ses("ses_1") && payload.reason.contains("abandoned"))
        );
    }

    #[test]
    fn an_expired_checkout_expires_the_session() {
        let a = action(&event(
            "checkout.session.expired",
            session("expired", Some("ses_1")),
        ));
        assert!(matches!(a, Action::Expired { session, .. } if session == ses("ses_1")));
    }

    #[test]
    fn foreign_and_unused_events_are_ignored() {
        assert!(matches!(
            action(&event(
                "payment_intent.amount_capturable_updated",
                intent("requires_capture", 4000, None)
            )),
            Action::Ignore(_)
        ));
        assert!(matches!(
            action(&event(
                "payment_intent.succeeded",
                intent("succeeded", 0, Some("ses_1"))
            )),
            Action::Ignore(_)
        ));
        assert!(is_handled("checkout.session.completed") && !is_handled("charge.refunded"));
        assert_eq!(
            peek_type(r#"{"type":"charge.refunded","data":{}}"#),
            "charge.refunded"
        );
    }
}
