//! The webhook route over HTTP with a recording `SessionSignals`: signatures, staleness,
//! duplicates, unknown sessions, and the events the Stripe sandbox really sends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::ids::SessionId;
use domain::money::{Currency, Money};
use serde_json::{Value, json};
use stripe_sandbox::{CARD_SUCCESS, Sandbox};
use stripe_webhook::Webhook;
use stripe_webhooks::{SessionSignals, SignalError, WEBHOOK_PATH, WebhookState, router};
use temporalio_client::errors::WorkflowInteractionError;
use url::Url;
use workflows::messages::{PaymentAuthorized, PaymentClosed};

const SECRET: &str = "whsec_receiver_test";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Authorized(String, PaymentAuthorized),
    Expired(String),
    Canceled(String),
}

/// Records signals; sessions starting with `ses_gone` are unknown; the first `fail` calls fail
/// as if Temporal were down.
#[derive(Clone, Default)]
struct Recording {
    calls: Arc<Mutex<Vec<Call>>>,
    fail: Arc<AtomicU32>,
}

impl Recording {
    fn record(&self, session: &SessionId, call: Call) -> Result<(), SignalError> {
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err(SignalError::Temporal(WorkflowInteractionError::Other(
                "temporal is down".into(),
            )));
        }
        self.calls.lock().unwrap().push(call);
        if session.as_str().starts_with("ses_gone") {
            return Err(SignalError::UnknownSession(session.clone()));
        }
        Ok(())
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl SessionSignals for Recording {
    async fn signal_authorized(
        &self,
        session: &SessionId,
        payload: PaymentAuthorized,
    ) -> Result<(), SignalError> {
        self.record(session, Call::Authorized(session.to_string(), payload))
    }
    async fn signal_expired(
        &self,
        session: &SessionId,
        _payload: PaymentClosed,
    ) -> Result<(), SignalError> {
        self.record(session, Call::Expired(session.to_string()))
    }
    async fn signal_canceled(
        &self,
        session: &SessionId,
        _payload: PaymentClosed,
    ) -> Result<(), SignalError> {
        self.record(session, Call::Canceled(session.to_string()))
    }
}

async fn start(signals: Recording) -> Url {
    let app = router(WebhookState::new(signals, SECRET));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!(
        "http://{}{WEBHOOK_PATH}",
        listener.local_addr().unwrap()
    ))
    .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn completed_event(event_id: &str, session: &str) -> String {
    json!({
        "id": event_id, "object": "event", "api_version": "2026-09-30.endive", "created": now(),
        "livemode": false, "pending_webhooks": 1, "type": "checkout.session.completed",
        "data": { "object": {
            "id": "cs_test_1", "object": "checkout.session", "amount_total": 5000, "currency": "eur",
            "automatic_tax": {"enabled": false}, "created": now(), "custom_fields": [], "custom_text": {},
            "expires_at": now() + 1800, "livemode": false, "mode": "payment", "payment_method_types": ["card"],
            "payment_status": "unpaid", "shipping_options": [], "status": "complete", "payment_intent": "pi_1",
            "client_reference_id": session, "metadata": {"session_id": session},
        }},
    })
    .to_string()
}

async fn post(url: &Url, body: &str, signature: Option<String>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url.clone())
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header("Stripe-Signature", sig);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn signed(body: &str) -> Option<String> {
    Some(Webhook::generate_test_header(body, SECRET, None))
}

fn authorized(session: &str) -> Call {
    Call::Authorized(
        session.to_owned(),
        PaymentAuthorized {
            intent_id: "pi_1".into(),
            amount_capturable: Money::new(5000, Currency::EUR),
        },
    )
}

#[tokio::test]
async fn a_valid_completed_checkout_signals_payment_authorized() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    let body = completed_event("evt_1", "ses_1");
    let (status, answer) = post(&url, &body, signed(&body)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("signalled"))
    );
    assert_eq!(signals.calls(), vec![authorized("ses_1")]);
}

#[tokio::test]
async fn tampered_unsigned_and_wrongly_keyed_events_are_refused() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    let body = completed_event("evt_1", "ses_1");
    let tampered = body.replace("5000", "1");
    assert_eq!(post(&url, &tampered, signed(&body)).await.0, 400);
    assert_eq!(post(&url, &body, None).await.0, 400);
    assert_eq!(
        post(
            &url,
            &body,
            Some(Webhook::generate_test_header(&body, "whsec_other", None))
        )
        .await
        .0,
        400
    );
    assert_eq!(post(&url, &body, Some("garbage".into())).await.0, 400);
    assert!(signals.calls().is_empty());
}

#[tokio::test]
async fn an_event_signed_more_than_300_seconds_ago_is_refused() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    let body = completed_event("evt_1", "ses_1");
    let stale = Webhook::generate_test_header(&body, SECRET, Some(now() - 301));
    assert_eq!(post(&url, &body, Some(stale)).await.0, 400);
    let recent = Webhook::generate_test_header(&body, SECRET, Some(now() - 200));
    assert_eq!(post(&url, &body, Some(recent)).await.0, 200);
    assert_eq!(signals.calls().len(), 1);
}

#[tokio::test]
async fn a_redelivered_event_is_signalled_once() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    let body = completed_event("evt_dup", "ses_1");
    let (s1, _) = post(&url, &body, signed(&body)).await;
    let (s2, answer) = post(&url, &body, signed(&body)).await;
    assert_eq!(
        (s1, s2, answer["outcome"].as_str()),
        (200, 200, Some("duplicate"))
    );
    assert_eq!(signals.calls().len(), 1);
}

#[tokio::test]
async fn an_event_for_an_unknown_session_is_acknowledged() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    let body = completed_event("evt_gone", "ses_gone1");
    let (status, answer) = post(&url, &body, signed(&body)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("unknown session"))
    );
    // An event that names no chargelink session at all is acknowledged without a signal.
    let foreign = completed_event("evt_foreign", "order-42").replace(
        r#""metadata":{"session_id":"order-42"}"#,
        r#""metadata":{}"#,
    );
    let (status, answer) = post(&url, &foreign, signed(&foreign)).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("ignored")));
    assert_eq!(signals.calls(), vec![authorized("ses_gone1")]);
}

#[tokio::test]
async fn an_event_of_another_account_signals_nothing() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    // Correctly signed, naming a real session, but a connected account's (Stripe Connect).
    let body = completed_event("evt_connect", "ses_1").replacen(
        r#""id":"evt_connect","#,
        r#""id":"evt_connect","account":"acct_someone_else","#,
        1,
    );
    assert!(body.contains("acct_someone_else"), "{body}");
    let (status, answer) = post(&url, &body, signed(&body)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("another account"))
    );
    assert!(signals.calls().is_empty());
    // The same event of this account signals.
    let own = completed_event("evt_own", "ses_1");
    let (status, answer) = post(&url, &own, signed(&own)).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("signalled"))
    );
    assert_eq!(signals.calls(), vec![authorized("ses_1")]);
}

#[tokio::test]
async fn a_temporal_outage_answers_5xx_and_the_redelivery_signals() {
    let signals = Recording::default();
    signals.fail.store(1, Ordering::SeqCst);
    let url = start(signals.clone()).await;
    let body = completed_event("evt_retry", "ses_1");
    assert_eq!(post(&url, &body, signed(&body)).await.0, 503);
    assert_eq!(post(&url, &body, signed(&body)).await.0, 200);
    assert_eq!(signals.calls(), vec![authorized("ses_1")]);
}

#[tokio::test]
async fn unused_event_types_are_acknowledged_without_a_signal() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    let body = json!({
        "id": "evt_x", "object": "event", "api_version": "2026-09-30.endive", "created": now(),
        "livemode": false, "pending_webhooks": 1, "type": "customer.created",
        "data": { "object": { "id": "cus_1", "object": "customer", "created": now(), "livemode": false } },
    })
    .to_string();
    let (status, _) = post(&url, &body, signed(&body)).await;
    assert_eq!(status, 200);
    assert!(signals.calls().is_empty());
}

/// The events the sandbox sends when a driver pays, a page expires and a hold is released.
#[tokio::test]
async fn sandbox_events_become_the_right_signals() {
    let signals = Recording::default();
    let url = start(signals.clone()).await;
    let sandbox = Sandbox::builder()
        .webhook_endpoint(url)
        .webhook_secret(SECRET)
        .start()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let in_31_min = (now() + 31 * 60).to_string();
    let create = |session: &'static str| {
        let form = vec![
            ("mode", "payment".to_owned()),
            ("line_items[0][price_data][currency]", "eur".to_owned()),
            ("line_items[0][price_data][unit_amount]", "5000".to_owned()),
            (
                "line_items[0][price_data][product_data][name]",
                "hold".to_owned(),
            ),
            ("line_items[0][quantity]", "1".to_owned()),
            ("payment_intent_data[capture_method]", "manual".to_owned()),
            (
                "payment_intent_data[metadata][session_id]",
                session.to_owned(),
            ),
            ("client_reference_id", session.to_owned()),
            ("expires_at", in_31_min.clone()),
        ];
        let req = http
            .post(sandbox.base_url().join("v1/checkout/sessions").unwrap())
            .bearer_auth("sk_test_x")
            .form(&form);
        async move {
            req.send().await.unwrap().json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let paid = create("ses_paid").await;
    let expired = create("ses_expired").await;
    let released = create("ses_released").await;
    let intent = sandbox
        .pay(&paid, CARD_SUCCESS)
        .unwrap()
        .payment_intent
        .unwrap();
    let released_intent = sandbox
        .pay(&released, CARD_SUCCESS)
        .unwrap()
        .payment_intent
        .unwrap();
    let post = |path: String| {
        http.post(sandbox.base_url().join(&path).unwrap())
            .bearer_auth("sk_test_x")
            .send()
    };
    assert_eq!(
        post(format!("v1/checkout/sessions/{expired}/expire"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post(format!("v1/payment_intents/{released_intent}/cancel"))
            .await
            .unwrap()
            .status(),
        200
    );

    // paid: completed + capturable_updated; released: the same two + canceled; expired: one.
    for _ in 0..100 {
        if signals.calls().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = signals.calls();
    let hold = PaymentAuthorized {
        intent_id: intent,
        amount_capturable: Money::new(5000, Currency::EUR),
    };
    assert_eq!(
        calls
            .iter()
            .filter(|c| **c == Call::Authorized("ses_paid".into(), hold.clone()))
            .count(),
        2,
        "{calls:?}"
    );
    assert!(
        calls.contains(&Call::Expired("ses_expired".into())),
        "{calls:?}"
    );
    assert!(
        calls.contains(&Call::Canceled("ses_released".into())),
        "{calls:?}"
    );
    assert_eq!(calls.len(), 6, "{calls:?}");
}
