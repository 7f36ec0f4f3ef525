//! The sandbox over HTTP, as a Stripe client and a browser see it: idempotency, error shapes,
//! the hosted page, signed webhooks and the test controls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use stripe_sandbox::{
    CARD_DECLINED, CARD_DECLINES_INCREMENTS, CARD_SUCCESS, Failure, FailureKind, IntentStatus,
    Sandbox, SessionStatus, WebhookDeliveryStatus,
};
use stripe_webhook::{EventObject, Webhook};
use url::Url;

const KEY: &str = "sk_test_sandbox";
const SECRET: &str = "whsec_test_secret";

/// A webhook endpoint that records what it receives; the first `fail_first` posts get a 500.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(String, String)>>>,
    fail_first: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(fail_first: u32) -> (Self, Url) {
        let receiver = Receiver {
            fail_first: Arc::new(Mutex::new(fail_first)),
            ..Default::default()
        };
        let state = receiver.clone();
        let app = Router::new().route(
            "/stripe/webhook",
            post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let mut fail = state.fail_first.lock().unwrap();
                    if *fail > 0 {
                        *fail -= 1;
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let sig = headers
                        .get("stripe-signature")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    state.received.lock().unwrap().push((sig, body));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/stripe/webhook",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    /// Waits until `n` events arrived and verifies each signature like a real endpoint does.
    async fn events(&self, n: usize) -> Vec<stripe_webhook::Event> {
        for _ in 0..100 {
            if self.received.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let received = self.received.lock().unwrap().clone();
        assert!(
            received.len() >= n,
            "expected {n} webhooks, got {}",
            received.len()
        );
        received
            .iter()
            .map(|(sig, body)| Webhook::construct_event(body, sig, SECRET).unwrap())
            .collect()
    }
}

async fn sandbox_with_receiver(fail_first: u32) -> (Sandbox, Receiver) {
    let (receiver, url) = Receiver::start(fail_first).await;
    let sandbox = Sandbox::builder()
        .webhook_endpoint(url)
        .webhook_secret(SECRET)
        .webhook_retries(4, Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    (sandbox, receiver)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn session_form(amount: i64, session_id: &str) -> Vec<(String, String)> {
    let in_31_min = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 31 * 60;
    [
        ("mode", "payment".to_owned()),
        ("line_items[0][price_data][currency]", "eur".to_owned()),
        ("line_items[0][price_data][unit_amount]", amount.to_string()),
        ("line_items[0][price_data][product_data][name]", "EV charging pre-authorization".to_owned()),
        ("line_items[0][quantity]", "1".to_owned()),
        ("payment_intent_data[capture_method]", "manual".to_owned()),
        ("payment_intent_data[metadata][session_id]", session_id.to_owned()),
        ("metadata[session_id]", session_id.to_owned()),
        ("client_reference_id", session_id.to_owned()),
        ("expires_at", in_31_min.to_string()),
        ("success_url", "http://chargelink.test/payments/ses_1/success?checkout_session_id={CHECKOUT_SESSION_ID}".to_owned()),
        ("cancel_url", "http://chargelink.test/payments/ses_1/cancel".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn post_form(
    sandbox: &Sandbox,
    path: &str,
    form: &[(String, String)],
    key: Option<&str>,
) -> (u16, Value, HeaderMap) {
    let mut req = http()
        .post(sandbox.base_url().join(path).unwrap())
        .bearer_auth(KEY)
        .form(form);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.json().await.unwrap(), headers)
}

async fn create(sandbox: &Sandbox, amount: i64) -> Value {
    let (status, body, _) = post_form(
        sandbox,
        "v1/checkout/sessions",
        &session_form(amount, "ses_1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Creates a session and pays it: returns (checkout session id, payment intent id).
async fn authorized(sandbox: &Sandbox, amount: i64) -> (String, String) {
    paid_with(sandbox, &session_form(amount, "ses_1"), CARD_SUCCESS).await
}

#[tokio::test]
async fn same_key_and_parameters_replay_the_first_response() {
    let sandbox = Sandbox::start().await.unwrap();
    let form = session_form(5000, "ses_1");
    let (s1, first, _) = post_form(
        &sandbox,
        "v1/checkout/sessions",
        &form,
        Some("ses_1:create_payment"),
    )
    .await;
    let (s2, second, headers) = post_form(
        &sandbox,
        "v1/checkout/sessions",
        &form,
        Some("ses_1:create_payment"),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second);
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
    let requests = sandbox.requests();
    assert_eq!(requests.len(), 2);
    assert!(!requests[0].replayed && requests[1].replayed);
    assert_eq!(
        requests[1].idempotency_key.as_deref(),
        Some("ses_1:create_payment")
    );
}

#[tokio::test]
async fn same_key_with_other_parameters_is_an_idempotency_error() {
    let sandbox = Sandbox::start().await.unwrap();
    let (s1, _, _) = post_form(
        &sandbox,
        "v1/checkout/sessions",
        &session_form(5000, "ses_1"),
        Some("k1"),
    )
    .await;
    let (s2, body, _) = post_form(
        &sandbox,
        "v1/checkout/sessions",
        &session_form(6000, "ses_1"),
        Some("k1"),
    )
    .await;
    assert_eq!(s1, 200);
    assert_eq!(s2, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");
}

#[tokio::test]
async fn errors_after_execution_began_are_replayed_but_validation_errors_are_not() {
    let sandbox = Sandbox::start().await.unwrap();
    let (_, pi) = authorized(&sandbox, 5000).await;
    let path = format!("v1/payment_intents/{pi}/capture");
    let too_much = [("amount_to_capture".to_owned(), "6000".to_owned())];
    let (s1, first, _) = post_form(&sandbox, &path, &too_much, Some("cap")).await;
    let (s2, second, headers) = post_form(&sandbox, &path, &too_much, Some("cap")).await;
    assert_eq!((s1, s2), (400, 400));
    assert_eq!(first, second);
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");

    // A parameter validation failure is not stored: the same key then works with a fixed value.
    let bad = [("amount_to_capture".to_owned(), "lots".to_owned())];
    let (s3, body, _) = post_form(&sandbox, &path, &bad, Some("cap2")).await;
    assert_eq!(
        (s3, body["error"]["code"].as_str()),
        (400, Some("parameter_invalid_integer"))
    );
    let ok = [("amount_to_capture".to_owned(), "4000".to_owned())];
    let (s4, captured, _) = post_form(&sandbox, &path, &ok, Some("cap2")).await;
    assert_eq!(
        (s4, captured["amount_received"].as_i64()),
        (200, Some(4000))
    );
}

#[tokio::test]
async fn state_errors_have_stripes_shapes_and_statuses() {
    let sandbox = Sandbox::start().await.unwrap();
    let (cs, pi) = authorized(&sandbox, 5000).await;

    let (status, body, _) = post_form(
        &sandbox,
        &format!("v1/payment_intents/{pi}/capture"),
        &[("amount_to_capture".into(), "5001".into())],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "amount_too_large");
    assert_eq!(body["error"]["param"], "amount_to_capture");

    let (status, body, _) = post_form(
        &sandbox,
        &format!("v1/checkout/sessions/{cs}/expire"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("complete"),
        "{body}"
    );

    let (status, _, _) = post_form(
        &sandbox,
        &format!("v1/payment_intents/{pi}/capture"),
        &[("amount_to_capture".into(), "1200".into())],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body, _) = post_form(
        &sandbox,
        &format!("v1/payment_intents/{pi}/cancel"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "payment_intent_unexpected_state");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("succeeded"),
        "{body}"
    );

    let res = http()
        .get(
            sandbox
                .base_url()
                .join("v1/payment_intents/pi_nope?")
                .unwrap(),
        )
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn capture_releases_the_remainder_and_a_second_capture_is_refused() {
    let sandbox = Sandbox::start().await.unwrap();
    let (_, pi) = authorized(&sandbox, 5000).await;
    let path = format!("v1/payment_intents/{pi}/capture");
    let (status, body, _) = post_form(
        &sandbox,
        &path,
        &[("amount_to_capture".into(), "1234".into())],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["amount_received"], 1234);
    assert_eq!(body["amount_capturable"], 0);
    let (status, body, _) = post_form(&sandbox, &path, &[], None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "payment_intent_unexpected_state");
}

/// The latest charge carries the test card Stripe-shaped (`payment_method_details.card`), and
/// its amounts follow the capture; an unknown charge is `resource_missing`.
#[tokio::test]
async fn the_latest_charge_shows_the_card_brand_and_last4() {
    let sandbox = Sandbox::start().await.unwrap();
    let (_, pi) = authorized(&sandbox, 5000).await;
    let get = |path: String| {
        let url = sandbox.base_url().join(&path).unwrap();
        async move {
            let res = http().get(url).bearer_auth(KEY).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (_, intent) = get(format!("v1/payment_intents/{pi}")).await;
    let charge_id = intent["latest_charge"].as_str().unwrap().to_owned();
    assert!(charge_id.starts_with("ch_"), "{intent}");
    let (status, charge) = get(format!("v1/charges/{charge_id}")).await;
    assert_eq!(status, 200, "{charge}");
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["payment_intent"], pi.as_str());
    assert_eq!(charge["payment_method_details"]["type"], "card");
    assert_eq!(charge["payment_method_details"]["card"]["brand"], "visa");
    assert_eq!(charge["payment_method_details"]["card"]["last4"], "4242");
    assert_eq!(charge["captured"], false);
    let path = format!("v1/payment_intents/{pi}/capture");
    let form = [("amount_to_capture".into(), "1234".into())];
    assert_eq!(post_form(&sandbox, &path, &form, None).await.0, 200);
    let (_, charge) = get(format!("v1/charges/{charge_id}")).await;
    assert_eq!(charge["captured"], true);
    assert_eq!(charge["amount_captured"], 1234);
    assert_eq!(charge["amount_refunded"], 5000 - 1234);
    let (status, body) = get("v1/charges/ch_unknown".to_owned()).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn a_missing_or_live_api_key_is_refused_with_401() {
    let sandbox = Sandbox::start().await.unwrap();
    let url = sandbox.base_url().join("v1/checkout/sessions").unwrap();
    let res = http()
        .post(url.clone())
        .form(&session_form(5000, "ses_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let res = http()
        .post(url)
        .bearer_auth("sk_live_real")
        .form(&session_form(5000, "ses_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn expires_at_must_be_at_least_30_minutes_away() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut form = session_form(5000, "ses_1");
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 29 * 60;
    form.retain(|(k, _)| k != "expires_at");
    form.push(("expires_at".into(), soon.to_string()));
    let (status, body, _) = post_form(&sandbox, "v1/checkout/sessions", &form, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "expires_at");
}

#[tokio::test]
async fn the_checkout_page_shows_amount_currency_form_and_cancel_link() {
    let sandbox = Sandbox::start().await.unwrap();
    let cs = create(&sandbox, 5000).await;
    let page = http()
        .get(cs["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("50.00 EUR"), "{html}");
    assert!(html.contains(r#"<form method="post""#));
    assert!(html.contains(r#"name="card_number""#));
    assert!(html.contains(r#"id="error""#));
    assert!(html.contains(r#"href="http://chargelink.test/payments/ses_1/cancel""#));
}

#[tokio::test]
async fn paying_with_4242_places_the_hold_redirects_and_sends_signed_webhooks() {
    let (sandbox, receiver) = sandbox_with_receiver(0).await;
    let cs = create(&sandbox, 5000).await;
    let id = cs["id"].as_str().unwrap();

    let res = http()
        .post(cs["url"].as_str().unwrap())
        .form(&[("card_number", "4242 4242 4242 4242")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers().get("location").unwrap().to_str().unwrap(),
        format!("http://chargelink.test/payments/ses_1/success?checkout_session_id={id}")
    );

    let session = sandbox.session(id).unwrap();
    assert_eq!(session.status, SessionStatus::Complete);
    let intent = sandbox
        .intent(session.payment_intent.as_deref().unwrap())
        .unwrap();
    assert_eq!(intent.status, IntentStatus::RequiresCapture);
    assert_eq!(
        (intent.amount_capturable, intent.amount_received),
        (5000, 0)
    );
    assert_eq!(
        intent.metadata.get("session_id").map(String::as_str),
        Some("ses_1")
    );

    let events = receiver.events(2).await;
    let mut saw_completed = false;
    let mut saw_capturable = false;
    for event in events {
        match event.data.object {
            EventObject::CheckoutSessionCompleted(cs) => {
                saw_completed = true;
                assert_eq!(cs.client_reference_id.as_deref(), Some("ses_1"));
                assert_eq!(
                    cs.payment_intent
                        .as_ref()
                        .map(|p| p.id().as_str().to_owned()),
                    Some(intent.id.clone())
                );
            }
            EventObject::PaymentIntentAmountCapturableUpdated(pi) => {
                saw_capturable = true;
                assert_eq!(pi.amount_capturable, 5000);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(saw_completed && saw_capturable);
    let deliveries = sandbox.webhook_deliveries();
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == WebhookDeliveryStatus::Delivered),
        "{deliveries:?}"
    );
}

#[tokio::test]
async fn a_declined_card_leaves_the_session_open_and_the_page_says_why() {
    let sandbox = Sandbox::start().await.unwrap();
    let cs = create(&sandbox, 5000).await;
    let id = cs["id"].as_str().unwrap();
    let res = http()
        .post(cs["url"].as_str().unwrap())
        .form(&[("card_number", CARD_DECLINED)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 402);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"<p id="error" role="alert">Your card was declined.</p>"#),
        "{html}"
    );
    let session = sandbox.session(id).unwrap();
    assert_eq!(
        (session.status, session.payment_intent),
        (SessionStatus::Open, None)
    );

    // The failed attempt's event parses as Stripe's, with the decline reason.
    let failed = sandbox
        .webhook_deliveries()
        .into_iter()
        .find(|d| d.event_type == "payment_intent.payment_failed")
        .unwrap();
    let header = Webhook::generate_test_header(&failed.payload, sandbox.webhook_secret(), None);
    let event =
        Webhook::construct_event(&failed.payload, &header, sandbox.webhook_secret()).unwrap();
    let EventObject::PaymentIntentPaymentFailed(pi) = event.data.object else {
        panic!("wrong event object")
    };
    let error = pi.last_payment_error.unwrap();
    assert_eq!(error.decline_code.as_deref(), Some("generic_decline"));

    // The driver can still pay with another card.
    assert_eq!(
        sandbox.pay(id, CARD_SUCCESS).unwrap().status,
        SessionStatus::Complete
    );
}

#[tokio::test]
async fn expire_cancel_and_capture_send_their_events() {
    let (sandbox, receiver) = sandbox_with_receiver(0).await;
    let open = create(&sandbox, 5000).await;
    let (status, expired, _) = post_form(
        &sandbox,
        &format!(
            "v1/checkout/sessions/{}/expire",
            open["id"].as_str().unwrap()
        ),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (status, expired["status"].as_str(), &expired["url"]),
        (200, Some("expired"), &Value::Null)
    );

    let (_, pi1) = authorized(&sandbox, 5000).await;
    let (_, pi2) = authorized(&sandbox, 5000).await;
    let (s1, _, _) = post_form(
        &sandbox,
        &format!("v1/payment_intents/{pi1}/cancel"),
        &[("cancellation_reason".into(), "abandoned".into())],
        None,
    )
    .await;
    let (s2, _, _) = post_form(
        &sandbox,
        &format!("v1/payment_intents/{pi2}/capture"),
        &[],
        None,
    )
    .await;
    assert_eq!((s1, s2), (200, 200));

    // expired + 2 x (capturable_updated, completed) + canceled + succeeded
    let events = receiver.events(7).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.data.object {
            EventObject::CheckoutSessionExpired(_) => "expired",
            EventObject::PaymentIntentCanceled(pi) if pi.id.as_str() == pi1 => "canceled",
            EventObject::PaymentIntentSucceeded(pi)
                if pi.id.as_str() == pi2 && pi.amount_received == 5000 =>
            {
                "succeeded"
            }
            _ => "other",
        })
        .collect();
    for kind in ["expired", "canceled", "succeeded"] {
        assert!(kinds.contains(&kind), "{kind} missing in {kinds:?}");
    }
}

#[tokio::test]
async fn failed_webhook_deliveries_are_retried() {
    let (sandbox, receiver) = sandbox_with_receiver(2).await;
    let (_, _) = authorized(&sandbox, 5000).await;
    let events = receiver.events(2).await;
    assert_eq!(events.len(), 2);
    let deliveries = sandbox.webhook_deliveries();
    assert_eq!(deliveries[0].status, WebhookDeliveryStatus::Delivered);
    assert_eq!(deliveries[0].attempts, 3, "{deliveries:?}");
}

#[tokio::test]
async fn injected_failures_and_logs_are_reachable_over_http() {
    let sandbox = Sandbox::start().await.unwrap();
    let res = http()
        .post(sandbox.base_url().join("_sandbox/failures").unwrap())
        .json(&Failure::next(FailureKind::ServerError, 1).on_path("/v1/checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let form = session_form(5000, "ses_1");
    let (s1, body, _) = post_form(&sandbox, "v1/checkout/sessions", &form, Some("k")).await;
    let (s2, _, _) = post_form(&sandbox, "v1/checkout/sessions", &form, Some("k")).await;
    assert_eq!(
        (s1, body["error"]["type"].as_str(), s2),
        (500, Some("api_error"), 200)
    );

    let log: Vec<Value> = http()
        .get(sandbox.base_url().join("_sandbox/requests").unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["injected"], "server_error");
    assert_eq!(log[1]["idempotency_key"], "k");
    assert_eq!(log[1]["replayed"], false);

    assert_eq!(log[1]["status"], 200);
}

#[tokio::test]
async fn the_control_routes_complete_and_decline_a_checkout() {
    let sandbox = Sandbox::start().await.unwrap();
    let a = create(&sandbox, 5000).await;
    let b = create(&sandbox, 5000).await;
    let url = |id: &Value, action: &str| {
        sandbox
            .base_url()
            .join(&format!(
                "_sandbox/checkout/{}/{action}",
                id.as_str().unwrap()
            ))
            .unwrap()
    };
    let declined = http().post(url(&a["id"], "decline")).send().await.unwrap();
    assert_eq!(declined.status(), 402);
    let completed: Value = http()
        .post(url(&b["id"], "complete"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completed["status"], "complete");
    let webhooks: Vec<Value> = http()
        .get(sandbox.base_url().join("_sandbox/webhooks").unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = webhooks
        .iter()
        .map(|w| w["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "payment_intent.payment_failed",
            "payment_intent.amount_capturable_updated",
            "checkout.session.completed"
        ]
    );
    assert!(
        webhooks.iter().all(|w| w["status"] != "delivered"),
        "no endpoint configured"
    );
}

#[tokio::test]
async fn http_basic_auth_with_the_key_as_user_is_accepted_as_at_stripe() {
    let sandbox = Sandbox::start().await.unwrap();
    let url = sandbox.base_url().join("v1/checkout/sessions").unwrap();
    // `curl -u sk_test_...:` as Stripe's docs show every request.
    let res = http()
        .post(url.clone())
        .basic_auth(KEY, Some(""))
        .form(&session_form(5000, "ses_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = http()
        .post(url)
        .basic_auth("sk_live_real", None::<&str>)
        .form(&session_form(5000, "ses_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a live key is refused over Basic too");
}

#[tokio::test]
async fn with_a_state_file_a_restarted_sandbox_remembers_holds_and_keys() {
    let dir = std::env::temp_dir().join(format!("sandbox-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let _ = std::fs::remove_file(&file);
    let config = || stripe_sandbox::SandboxConfig {
        state_file: Some(file.clone()),
        ..Default::default()
    };
    let first = Sandbox::builder().config(config()).start().await.unwrap();
    let (_, intent) = authorized(&first, 1800).await;
    let capture = [("amount_to_capture".to_owned(), "700".to_owned())];
    let path = format!("v1/payment_intents/{intent}/capture");
    let (status, _, _) = post_form(&first, &path, &capture, Some("ses_1:capture")).await;
    assert_eq!(status, 200);
    drop(first);

    let second = Sandbox::builder().config(config()).start().await.unwrap();
    let kept = second.intent(&intent).expect("the PaymentIntent survived");
    assert_eq!(
        (kept.status, kept.amount_received),
        (IntentStatus::Succeeded, 700)
    );
    // The idempotency key survived too: the retry replays, nothing is captured twice.
    let (status, _, headers) = post_form(&second, &path, &capture, Some("ses_1:capture")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["idempotent-replayed"], "true");
    let captures = second
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/capture") && !r.replayed && r.status == 200)
        .count();
    assert_eq!(captures, 1, "the request log (the ledger) survived as well");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_slow_answer_executes_and_arrives_after_its_delay() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut slow = Failure::next(FailureKind::Slow, 1).on_path("/v1/checkout");
    slow.delay_ms = Some(600);
    let res = http()
        .post(sandbox.base_url().join("_sandbox/failures").unwrap())
        .json(&slow)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let form = session_form(5000, "ses_slow");
    let started = std::time::Instant::now();
    let (status, body, _) = post_form(&sandbox, "v1/checkout/sessions", &form, Some("s")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "answered after {:?}",
        started.elapsed()
    );
    // Executed once: the same key replays, quickly this time.
    let started = std::time::Instant::now();
    let (_, again, headers) = post_form(&sandbox, "v1/checkout/sessions", &form, Some("s")).await;
    assert_eq!(again["id"], body["id"]);
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
    assert!(started.elapsed() < Duration::from_millis(600));
}

#[tokio::test]
async fn webhook_faults_drop_duplicate_and_delay_events() {
    let (sandbox, receiver) = sandbox_with_receiver(0).await;
    let set = |body: Value| {
        let url = sandbox.base_url().join("_sandbox/webhook_faults").unwrap();
        async move { http().post(url).json(&body).send().await.unwrap().status() }
    };
    // Every event lost.
    assert_eq!(set(json!({"drop_share": 1.0, "seed": 1})).await, 204);
    let _ = authorized(&sandbox, 5000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received.lock().unwrap().is_empty());
    assert!(
        sandbox
            .webhook_deliveries()
            .iter()
            .all(|d| d.status == WebhookDeliveryStatus::Dropped),
        "{:?}",
        sandbox.webhook_deliveries()
    );
    // Every event twice, held back up to 200 ms.
    assert_eq!(
        set(json!({"duplicate_share": 1.0, "max_delay_ms": 200, "seed": 2})).await,
        204
    );
    let _ = authorized(&sandbox, 5000).await;
    let events = receiver.events(4).await;
    let mut ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids.len(), 4, "two events, each twice");
    ids.dedup();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let cleared = http()
        .delete(sandbox.base_url().join("_sandbox/webhook_faults").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
}

/// `custom_text[submit][message]` is kept, answered in Stripe's `custom_text` shape, shown line
/// by line next to the pay button, and refused over 1,200 characters or at an unknown position.
#[tokio::test]
async fn custom_text_is_echoed_and_shown_next_to_the_pay_button() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut form = session_form(5000, "ses_1");
    form.push((
        "custom_text[submit][message]".to_owned(),
        "0.35 € per kWh\nVAT <19 %> included".to_owned(),
    ));
    let (status, cs, _) = post_form(&sandbox, "v1/checkout/sessions", &form, None).await;
    assert_eq!(status, 200, "{cs}");
    assert_eq!(
        cs["custom_text"],
        json!({"after_submit": null, "shipping_address": null,
               "submit": {"message": "0.35 € per kWh\nVAT <19 %> included"},
               "terms_of_service_acceptance": null})
    );
    let page = http()
        .get(cs["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<ul id="custom-text-submit" class="custom-text"><li class="custom-text-line">0.35 € per kWh</li><li class="custom-text-line">VAT &lt;19 %&gt; included</li></ul>"#),
        "{page}"
    );
    let text_at = page.find("custom-text-submit").unwrap();
    assert!(
        text_at < page.find(r#"id="pay""#).unwrap(),
        "before the pay button"
    );

    let mut long = session_form(5000, "ses_2");
    long.push(("custom_text[submit][message]".to_owned(), "x".repeat(1201)));
    let (status, body, _) = post_form(&sandbox, "v1/checkout/sessions", &long, None).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("custom_text[submit][message]"))
    );
    let mut unknown = session_form(5000, "ses_3");
    unknown.push(("custom_text[footer][message]".to_owned(), "hi".to_owned()));
    let (status, body, _) = post_form(&sandbox, "v1/checkout/sessions", &unknown, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("parameter_unknown"))
    );
    // Without custom_text the object is all nulls and the page has no such list.
    let plain = create(&sandbox, 5000).await;
    assert!(plain["custom_text"]["submit"].is_null());
}

/// A held intent created with `request_incremental_authorization=if_available`, paid with
/// `card`: (checkout session id, payment intent id).
async fn incremental(sandbox: &Sandbox, amount: i64, card: &str) -> (String, String) {
    let mut form = session_form(amount, "ses_1");
    form.push((
        "payment_method_options[card][request_incremental_authorization]".into(),
        "if_available".into(),
    ));
    paid_with(sandbox, &form, card).await
}

/// `POST increment_authorization amount=<amount>` on `path`.
async fn increment(sandbox: &Sandbox, path: &str, amount: &str) -> (u16, Value, HeaderMap) {
    post_form(sandbox, path, &[("amount".into(), amount.into())], None).await
}

/// Creates a session from `form` and pays it with `card`: (checkout session id, intent id).
async fn paid_with(sandbox: &Sandbox, form: &[(String, String)], card: &str) -> (String, String) {
    let (status, cs, _) = post_form(sandbox, "v1/checkout/sessions", form, None).await;
    assert_eq!(status, 200, "{cs}");
    let id = cs["id"].as_str().unwrap().to_owned();
    let paid = sandbox.pay(&id, card).unwrap();
    (id, paid.payment_intent.unwrap())
}

/// `increment_authorization` raises the hold to the new total (amount and amount_capturable),
/// replays under the same Idempotency-Key without a second attempt, and the capture may then
/// take up to the raised amount; the charge shows `incremental_authorization.status`.
#[tokio::test]
async fn increment_authorization_raises_the_hold_once_per_key() {
    let sandbox = Sandbox::start().await.unwrap();
    let (_, pi) = incremental(&sandbox, 5000, CARD_SUCCESS).await;
    let intent = sandbox.intent(&pi).unwrap();
    assert_eq!(intent.amount_capturable, 5000);
    let path = format!("v1/payment_intents/{pi}/increment_authorization");
    let form = [("amount".to_owned(), "8000".to_owned())];
    let (status, body, _) = post_form(&sandbox, &path, &form, Some("ses_1:increment:1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["amount"], 8000);
    assert_eq!(body["amount_capturable"], 8000);
    assert_eq!(
        body["payment_method_options"]["card"]["request_incremental_authorization"],
        "if_available"
    );
    let (status, again, headers) =
        post_form(&sandbox, &path, &form, Some("ses_1:increment:1")).await;
    assert_eq!(status, 200);
    assert_eq!(again, body);
    assert_eq!(headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(sandbox.intent(&pi).unwrap().amount_capturable, 8000);
    let url = sandbox
        .base_url()
        .join(&format!(
            "v1/charges/{}",
            body["latest_charge"].as_str().unwrap()
        ))
        .unwrap();
    let charge: Value = http()
        .get(url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        charge["payment_method_details"]["card"]["incremental_authorization"]["status"],
        "available"
    );
    let capture = format!("v1/payment_intents/{pi}/capture");
    let (status, body, _) = post_form(
        &sandbox,
        &capture,
        &[("amount_to_capture".into(), "7000".into())],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sandbox.intent(&pi).unwrap().amount_received, 7000);
    // Captured: no longer incrementable.
    let (status, body, _) = increment(&sandbox, &path, "9000").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "payment_intent_unexpected_state");
}

/// The card that declines increments: 402 `card_error` / `card_declined`, the hold stays at
/// its previous amount. Without the request at creation, or at or below the current amount,
/// or above Stripe's maximum, the increment is refused as Stripe does; the eleventh attempt
/// is over Stripe's limit of ten.
#[tokio::test]
async fn increment_authorization_refusals_have_stripes_shapes() {
    let sandbox = Sandbox::start().await.unwrap();
    let (_, pi) = incremental(&sandbox, 5000, CARD_DECLINES_INCREMENTS).await;
    let path = format!("v1/payment_intents/{pi}/increment_authorization");
    let (status, body, _) = increment(&sandbox, &path, "8000").await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["type"], "card_error");
    assert_eq!(body["error"]["code"], "card_declined");
    let intent = sandbox.intent(&pi).unwrap();
    assert_eq!((intent.amount, intent.amount_capturable), (5000, 5000));
    assert_eq!(intent.status, IntentStatus::RequiresCapture);

    let (_, plain) = authorized(&sandbox, 5000).await;
    let plain_path = format!("v1/payment_intents/{plain}/increment_authorization");
    let (status, body, _) = increment(&sandbox, &plain_path, "8000").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (_, ok) = incremental(&sandbox, 5000, CARD_SUCCESS).await;
    let ok_path = format!("v1/payment_intents/{ok}/increment_authorization");
    for (amount, code) in [
        ("5000", "parameter_invalid_integer"),
        ("100000000", "amount_too_large"),
    ] {
        let (status, body, _) = increment(&sandbox, &ok_path, amount).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["param"], "amount");
    }
    let (status, body, _) = post_form(&sandbox, &ok_path, &[], None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("parameter_missing"))
    );

    for attempt in 1..=10 {
        let (status, body, _) = increment(&sandbox, &path, &(5000 + attempt).to_string()).await;
        if attempt < 10 {
            assert_eq!(status, 402, "{body}");
        } else {
            assert_eq!(status, 400, "attempt {attempt}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("maximum")
            );
        }
    }
}
