//! The payment activities against the Stripe sandbox, run through Temporal's
//! `ActivityEnvironment`: the real async-stripe client, the real wire format, the sandbox's
//! state as the witness. Retries are driven by running the activity again with the same input,
//! as Temporal does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime};

use activities::payments::{PaymentActivities, StripeSettings};
use domain::ids::{PaymentId, SessionId};
use domain::money::{Currency, Money};
use stripe_sandbox::{
    CARD_DECLINES_INCREMENTS, CARD_SUCCESS, Failure, FailureKind, IntentStatus, RecordedRequest,
    Sandbox, SessionStatus,
};
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::testing::{
    ActivityEnvironment, ActivityEnvironmentError, TestActivityInfoOptions,
};
use url::Url;
use workflows::contracts::{
    CancelPaymentInput, CapturePaymentInput, CreatePaymentInput, CreatePaymentOutput,
    IncrementPaymentInput, IncrementPaymentOutput, PaymentRef, ProviderPaymentState, Step,
    idempotency_key, increment_key,
};
use workflows::options::failure_types::{PAYMENT_MISMATCH, PAYMENT_REJECTED};

// Generous for a loaded CI machine, well below the sandbox's 3 s hang.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1000);

struct Harness {
    sandbox: Sandbox,
    env: ActivityEnvironment,
    session: SessionId,
}

fn env_for(settings: &StripeSettings) -> ActivityEnvironment {
    ActivityEnvironment::builder()
        .register_activities(PaymentActivities::new(settings).unwrap())
        // The first attempt's schedule time: fixed across the retries of one execution.
        .info(
            TestActivityInfoOptions::builder()
                .scheduled_time(Some(SystemTime::now()))
                .build(),
        )
        .build()
}

fn settings(api_base: Url) -> StripeSettings {
    StripeSettings {
        secret_key: "sk_test_chargelink".into(),
        api_base: Some(api_base),
        public_base_url: Url::parse("http://chargelink.test/").unwrap(),
        request_timeout: CLIENT_TIMEOUT,
    }
}

async fn harness() -> Harness {
    let sandbox = Sandbox::builder()
        .hang(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let env = env_for(&settings(sandbox.base_url().clone()));
    let session: SessionId = format!("ses_{}", std::process::id()).parse().unwrap();
    Harness {
        sandbox,
        env,
        session,
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// The price lines the workflow hands the payment page.
const PRICE_TEXT: &str = "0.4165 € per kWh\nVAT 19 % included";

impl Harness {
    async fn create(&self) -> CreatePaymentOutput {
        self.env
            .run(PaymentActivities::create_payment, self.create_input())
            .await
            .unwrap()
    }

    fn create_input(&self) -> CreatePaymentInput {
        CreatePaymentInput {
            session_id: self.session.clone(),
            payment_id: "pay_1".parse::<PaymentId>().unwrap(),
            amount: eur(5000),
            idempotency_key: idempotency_key(&self.session, Step::CreatePayment),
            price_text: Some(PRICE_TEXT.to_owned()),
            incremental: false,
        }
    }

    /// Creates a page asking for incremental authorization and pays it with `card`: the
    /// PaymentIntent id.
    async fn incremental(&self, card: &str) -> String {
        let mut input = self.create_input();
        input.incremental = true;
        // Another page than `create`'s: its own key.
        input.idempotency_key = format!("{}:create_payment_incremental", self.session);
        let created = self
            .env
            .run(PaymentActivities::create_payment, input)
            .await
            .unwrap();
        let paid = self
            .sandbox
            .pay(&created.checkout_session_id, card)
            .unwrap();
        paid.payment_intent.unwrap()
    }

    /// Runs the increment activity (first attempt's key) to `amount`.
    async fn increment(
        &self,
        intent_id: &str,
        amount: Money,
    ) -> Result<IncrementPaymentOutput, ActivityEnvironmentError> {
        let input = IncrementPaymentInput {
            session_id: self.session.clone(),
            intent_id: intent_id.to_owned(),
            amount,
            idempotency_key: increment_key(&self.session, 1),
        };
        self.env
            .run(PaymentActivities::increment_payment, input)
            .await
    }

    fn page(&self, created: &CreatePaymentOutput) -> PaymentRef {
        PaymentRef {
            session_id: self.session.clone(),
            checkout_session_id: created.checkout_session_id.clone(),
            idempotency_key: idempotency_key(&self.session, Step::ExpirePayment),
        }
    }

    /// Creates the page and pays it with 4242…: returns the PaymentIntent id.
    async fn authorized(&self) -> (CreatePaymentOutput, String) {
        let created = self.create().await;
        let paid = self
            .sandbox
            .pay(&created.checkout_session_id, CARD_SUCCESS)
            .unwrap();
        (created, paid.payment_intent.unwrap())
    }

    fn capture_input(&self, intent_id: &str, amount: Money) -> CapturePaymentInput {
        CapturePaymentInput {
            session_id: self.session.clone(),
            intent_id: intent_id.to_owned(),
            amount,
            idempotency_key: idempotency_key(&self.session, Step::Capture),
        }
    }

    fn cancel_input(&self, intent_id: &str) -> CancelPaymentInput {
        CancelPaymentInput {
            session_id: self.session.clone(),
            intent_id: intent_id.to_owned(),
            idempotency_key: idempotency_key(&self.session, Step::Cancel),
        }
    }

    fn requests_to(&self, path_end: &str) -> Vec<RecordedRequest> {
        self.sandbox
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(path_end))
            .collect()
    }

    fn events_of_type(&self, event_type: &str) -> usize {
        self.sandbox
            .webhook_deliveries()
            .iter()
            .filter(|d| d.event_type == event_type)
            .count()
    }
}

/// (type name, non-retryable) of a failed activity.
fn failure(
    result: Result<impl std::fmt::Debug, ActivityEnvironmentError>,
) -> (Option<String>, bool) {
    match result {
        Err(ActivityEnvironmentError::Activity(ActivityError::Application(f))) => {
            (f.type_name().map(str::to_owned), f.is_non_retryable())
        }
        other => panic!("expected an application failure, got {other:?}"),
    }
}

#[tokio::test]
async fn create_opens_a_manual_capture_checkout_bound_to_the_session() {
    let h = harness().await;
    let created = h.create().await;

    assert!(
        created
            .url
            .ends_with(&format!("/c/pay/{}", created.checkout_session_id)),
        "{}",
        created.url
    );
    assert_eq!(
        created.intent_id, None,
        "Stripe creates the PaymentIntent only on payment"
    );
    let cs = h.sandbox.session(&created.checkout_session_id).unwrap();
    assert_eq!(
        (cs.status, cs.amount, cs.currency.as_str()),
        (SessionStatus::Open, 5000, "eur")
    );
    assert_eq!(cs.client_reference_id.as_deref(), Some(h.session.as_str()));

    let create = &h.requests_to("/v1/checkout/sessions")[0];
    assert_eq!(
        create.idempotency_key.as_deref(),
        Some(format!("{}:create_payment", h.session).as_str())
    );
    let p = &create.params;
    let sid = h.session.as_str();
    assert_eq!(p["mode"], "payment");
    assert_eq!(p["payment_intent_data[capture_method]"], "manual");
    assert_eq!(p["payment_intent_data[metadata][session_id]"], sid);
    assert_eq!(p["metadata[session_id]"], sid);
    assert_eq!(p["line_items[0][quantity]"], "1");
    // The price lines go where Stripe shows them next to the pay button.
    assert_eq!(p["custom_text[submit][message]"], PRICE_TEXT);
    assert_eq!(
        p["success_url"],
        format!(
            "http://chargelink.test/payments/{sid}/success?checkout_session_id={{CHECKOUT_SESSION_ID}}"
        )
    );
    assert_eq!(
        p["cancel_url"],
        format!("http://chargelink.test/payments/{sid}/cancel")
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at: u64 = p["expires_at"].parse().unwrap();
    assert!(
        (now + 30 * 60..=now + 32 * 60).contains(&expires_at),
        "expires_at {expires_at}, now {now}"
    );

    // The PaymentIntent created on payment carries the session id too.
    let paid = h
        .sandbox
        .pay(&created.checkout_session_id, CARD_SUCCESS)
        .unwrap();
    let intent = h
        .sandbox
        .intent(paid.payment_intent.as_deref().unwrap())
        .unwrap();
    assert_eq!(
        intent.metadata.get("session_id").map(String::as_str),
        Some(sid)
    );
}

#[tokio::test]
async fn retrieve_reports_open_then_authorized_with_the_capturable_amount() {
    let h = harness().await;
    let created = h.create().await;
    let state = h
        .env
        .run(PaymentActivities::retrieve_payment, h.page(&created))
        .await
        .unwrap();
    assert_eq!(state, ProviderPaymentState::Open);

    let intent_id = h
        .sandbox
        .pay(&created.checkout_session_id, CARD_SUCCESS)
        .unwrap()
        .payment_intent
        .unwrap();
    let state = h
        .env
        .run(PaymentActivities::retrieve_payment, h.page(&created))
        .await
        .unwrap();
    assert_eq!(
        state,
        ProviderPaymentState::Authorized {
            intent_id,
            amount_capturable: eur(5000)
        }
    );
}

#[tokio::test]
async fn expire_closes_an_open_page_and_answers_expired_again_when_repeated() {
    let h = harness().await;
    let created = h.create().await;
    let state = h
        .env
        .run(PaymentActivities::expire_payment, h.page(&created))
        .await
        .unwrap();
    assert_eq!(state, ProviderPaymentState::Expired);
    assert_eq!(
        h.sandbox
            .session(&created.checkout_session_id)
            .unwrap()
            .status,
        SessionStatus::Expired
    );
    assert_eq!(h.events_of_type("checkout.session.expired"), 1);

    // A retry with the same key replays; a later expire with another key meets an expired page.
    let again = h
        .env
        .run(PaymentActivities::expire_payment, h.page(&created))
        .await
        .unwrap();
    let other_key = PaymentRef {
        idempotency_key: "other".into(),
        ..h.page(&created)
    };
    let later = h
        .env
        .run(PaymentActivities::expire_payment, other_key)
        .await
        .unwrap();
    assert_eq!(
        (again, later),
        (ProviderPaymentState::Expired, ProviderPaymentState::Expired)
    );
    assert_eq!(h.events_of_type("checkout.session.expired"), 1);
}

#[tokio::test]
async fn expire_after_the_driver_paid_answers_authorized() {
    let h = harness().await;
    let (created, intent_id) = h.authorized().await;
    let state = h
        .env
        .run(PaymentActivities::expire_payment, h.page(&created))
        .await
        .unwrap();
    assert_eq!(
        state,
        ProviderPaymentState::Authorized {
            intent_id: intent_id.clone(),
            amount_capturable: eur(5000)
        }
    );
    // The hold is untouched.
    assert_eq!(
        h.sandbox.intent(&intent_id).unwrap().status,
        IntentStatus::RequiresCapture
    );
}

#[tokio::test]
async fn partial_capture_takes_the_cost_and_releases_the_rest() {
    let h = harness().await;
    let (_, intent_id) = h.authorized().await;
    let out = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(1234)),
        )
        .await
        .unwrap();
    assert_eq!(out.captured, eur(1234));

    let intent = h.sandbox.intent(&intent_id).unwrap();
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(intent.amount_received, 1234);
    assert_eq!(
        intent.amount_capturable, 0,
        "the remaining 37.66 EUR are released"
    );
    let capture = &h.requests_to("/capture")[0];
    assert_eq!(capture.params["amount_to_capture"], "1234");
    assert_eq!(
        capture.idempotency_key.as_deref(),
        Some(format!("{}:capture", h.session).as_str())
    );
}

#[tokio::test]
async fn capture_above_the_hold_is_rejected_for_good() {
    let h = harness().await;
    let (_, intent_id) = h.authorized().await;
    let result = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(5001)),
        )
        .await;
    assert_eq!(failure(result), (Some(PAYMENT_REJECTED.to_owned()), true));
    assert_eq!(
        h.sandbox.intent(&intent_id).unwrap().amount_capturable,
        5000
    );
}

#[tokio::test]
async fn a_capture_stripe_reports_differently_is_a_mismatch() {
    let h = harness().await;
    let (_, intent_id) = h.authorized().await;
    // Someone captured 10.00 EUR under another key; chargelink then asks for 12.34 EUR.
    let other = CapturePaymentInput {
        idempotency_key: "manual-capture".into(),
        ..h.capture_input(&intent_id, eur(1000))
    };
    h.env
        .run(PaymentActivities::capture_payment, other)
        .await
        .unwrap();
    let result = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(1234)),
        )
        .await;
    assert_eq!(failure(result), (Some(PAYMENT_MISMATCH.to_owned()), true));
}

#[tokio::test]
async fn cancel_releases_the_hold_and_is_idempotent() {
    let h = harness().await;
    let (_, intent_id) = h.authorized().await;
    h.env
        .run(
            PaymentActivities::cancel_payment,
            h.cancel_input(&intent_id),
        )
        .await
        .unwrap();
    let intent = h.sandbox.intent(&intent_id).unwrap();
    assert_eq!(
        (intent.status, intent.amount_capturable),
        (IntentStatus::Canceled, 0)
    );

    // Same key (a retry) and another key (a second release) both succeed.
    h.env
        .run(
            PaymentActivities::cancel_payment,
            h.cancel_input(&intent_id),
        )
        .await
        .unwrap();
    let other = CancelPaymentInput {
        idempotency_key: "again".into(),
        ..h.cancel_input(&intent_id)
    };
    h.env
        .run(PaymentActivities::cancel_payment, other)
        .await
        .unwrap();
    assert_eq!(h.events_of_type("payment_intent.canceled"), 1);
}

#[tokio::test]
async fn cancel_after_capture_is_rejected() {
    let h = harness().await;
    let (_, intent_id) = h.authorized().await;
    h.env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(5000)),
        )
        .await
        .unwrap();
    let result = h
        .env
        .run(
            PaymentActivities::cancel_payment,
            h.cancel_input(&intent_id),
        )
        .await;
    assert_eq!(failure(result), (Some(PAYMENT_REJECTED.to_owned()), true));
}

#[tokio::test]
async fn capture_retried_after_a_500_captures_exactly_once() {
    let h = harness().await;
    let (_, intent_id) = h.authorized().await;
    h.sandbox
        .fail_next(Failure::next(FailureKind::ServerError, 1).on_path("/capture"));

    let first = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(1234)),
        )
        .await;
    assert_eq!(failure(first), (None, false), "a 500 is retryable");
    let second = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(1234)),
        )
        .await
        .unwrap();
    assert_eq!(second.captured, eur(1234));

    let captures = h.requests_to("/capture");
    assert_eq!(captures.len(), 2);
    assert_eq!(captures[0].injected, Some(FailureKind::ServerError));
    let key = format!("{}:capture", h.session);
    assert!(
        captures
            .iter()
            .all(|c| c.idempotency_key.as_deref() == Some(key.as_str())),
        "{captures:?}"
    );
    assert_eq!(h.sandbox.intent(&intent_id).unwrap().amount_received, 1234);
    assert_eq!(
        h.events_of_type("payment_intent.succeeded"),
        1,
        "exactly one capture happened"
    );
}

#[tokio::test]
async fn capture_retried_after_a_timeout_replays_and_captures_exactly_once() {
    let h = harness().await;
    let (_, intent_id) = h.authorized().await;
    // The sandbox captures, then holds the answer back past the client timeout.
    h.sandbox
        .fail_next(Failure::next(FailureKind::Timeout, 1).on_path("/capture"));

    let started = Instant::now();
    let first = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(1234)),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the client timeout ends the attempt"
    );
    assert_eq!(failure(first), (None, false), "a timeout is retryable");
    let second = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(1234)),
        )
        .await
        .unwrap();
    assert_eq!(second.captured, eur(1234));

    let captures = h.requests_to("/capture");
    assert_eq!(captures.len(), 2);
    let key = format!("{}:capture", h.session);
    assert!(
        captures
            .iter()
            .all(|c| c.idempotency_key.as_deref() == Some(key.as_str())),
        "{captures:?}"
    );
    assert!(
        !captures[0].replayed && captures[1].replayed,
        "the retry got the stored answer"
    );
    assert_eq!(
        h.events_of_type("payment_intent.succeeded"),
        1,
        "exactly one capture happened"
    );
}

#[tokio::test]
async fn create_retried_after_a_timeout_returns_the_same_page() {
    let h = harness().await;
    h.sandbox
        .fail_next(Failure::next(FailureKind::Timeout, 1).on_path("/v1/checkout/sessions"));
    let first = h
        .env
        .run(PaymentActivities::create_payment, h.create_input())
        .await;
    assert_eq!(failure(first), (None, false));
    let created = h.create().await;

    let creates = h.requests_to("/v1/checkout/sessions");
    assert_eq!(creates.len(), 2);
    assert_eq!(
        creates[0].params, creates[1].params,
        "a retry sends the same parameters"
    );
    assert!(creates[1].replayed);
    assert!(h.sandbox.session(&created.checkout_session_id).is_some());
}

#[tokio::test]
async fn unknown_intents_are_rejected_and_an_unreachable_stripe_is_retried() {
    let h = harness().await;
    let result = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input("pi_missing", eur(100)),
        )
        .await;
    assert_eq!(failure(result), (Some(PAYMENT_REJECTED.to_owned()), true));

    // Nothing listens on a port that was just released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let env = env_for(&settings(Url::parse(&format!("http://{closed}/")).unwrap()));
    let result = env
        .run(PaymentActivities::create_payment, h.create_input())
        .await;
    assert_eq!(failure(result), (None, false));
}

#[tokio::test]
async fn a_refused_api_key_is_retried_not_given_up() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut bad = settings(sandbox.base_url().clone());
    bad.secret_key = "sk_live_wrong".into();
    let h = harness().await;
    let result = env_for(&bad)
        .run(PaymentActivities::create_payment, h.create_input())
        .await;
    assert_eq!(failure(result), (None, false));
    assert_eq!(sandbox.requests()[0].status, 401);
}

#[test]
fn settings_debug_hides_the_secret_key() {
    let mut s = settings(Url::parse("http://127.0.0.1:1/").unwrap());
    s.secret_key = "sk_test_supersecretvalue".into();
    let debug = format!("{s:?}");
    assert!(!debug.contains("supersecret"), "{debug}");
    assert!(debug.contains("sk_test_"));
}

/// Receipts: the card of a paid PaymentIntent comes from its latest charge
/// (`payment_method_details.card`); an unknown intent is an error; the key never shows in Debug.
#[tokio::test]
async fn the_card_of_a_paid_intent_is_read_from_its_latest_charge() {
    use activities::payments::{Card, CardLookup};
    let h = harness().await;
    let (_, intent) = h.authorized().await;
    let lookup = CardLookup::new(&settings(h.sandbox.base_url().clone())).unwrap();
    let card = lookup.card(&intent).await.unwrap();
    assert_eq!(
        card,
        Some(Card {
            brand: "visa".into(),
            last4: "4242".into(),
        })
    );
    assert!(lookup.card("pi_missing").await.is_err());
    assert!(!format!("{lookup:?}").contains("sk_test"), "{lookup:?}");
    let charges: Vec<_> = h
        .sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1/charges/ch_"))
        .collect();
    assert_eq!(charges.len(), 1, "one charge read: {charges:?}");
}

/// A page created with `incremental` asks Stripe for incremental authorization; the increment
/// raises the hold to the new total, and the capture may then take more than the first hold.
/// A page created without it sends no such parameter (what sessions without top-up send).
#[tokio::test]
async fn an_increment_raises_the_hold_and_the_capture_may_use_it() {
    let h = harness().await;
    let (_, plain) = h.authorized().await;
    let intent_id = h.incremental(CARD_SUCCESS).await;
    let creates = h.requests_to("/v1/checkout/sessions");
    let param = "payment_method_options[card][request_incremental_authorization]";
    assert_eq!(creates[0].params.get(param), None, "{:?}", creates[0]);
    assert_eq!(
        creates[1].params.get(param).map(String::as_str),
        Some("if_available")
    );

    let raised = h.increment(&intent_id, eur(8000)).await.unwrap();
    assert_eq!(
        raised,
        IncrementPaymentOutput::Raised {
            amount_capturable: eur(8000)
        }
    );
    assert_eq!(
        h.sandbox.intent(&intent_id).unwrap().amount_capturable,
        8000
    );
    let captured = h
        .env
        .run(
            PaymentActivities::capture_payment,
            h.capture_input(&intent_id, eur(7000)),
        )
        .await
        .unwrap();
    assert_eq!(captured.captured, eur(7000));
    // Without the request at creation the intent cannot be incremented: refused, as an answer.
    let refused = h.increment(&plain, eur(8000)).await.unwrap();
    assert!(
        matches!(refused, IncrementPaymentOutput::Refused { .. }),
        "{refused:?}"
    );
    assert_eq!(h.sandbox.intent(&plain).unwrap().amount_capturable, 5000);
}

/// A declined increment is a typed answer (`Refused`, `card_declined`), not a retryable
/// failure; the hold stays at its first amount.
#[tokio::test]
async fn a_declined_increment_is_refused_and_the_hold_stays() {
    let h = harness().await;
    let intent_id = h.incremental(CARD_DECLINES_INCREMENTS).await;
    let answer = h.increment(&intent_id, eur(8000)).await.unwrap();
    assert_eq!(
        answer,
        IncrementPaymentOutput::Refused {
            code: Some("card_declined".into()),
            message: "Your card was declined.".into()
        }
    );
    let intent = h.sandbox.intent(&intent_id).unwrap();
    assert_eq!((intent.amount, intent.amount_capturable), (5000, 5000));
}

/// A 500 fails the attempt retryably; the retry, with the same key, raises the hold once.
#[tokio::test]
async fn an_increment_retried_after_a_500_raises_the_hold_once() {
    let h = harness().await;
    let intent_id = h.incremental(CARD_SUCCESS).await;
    h.sandbox
        .fail_next(Failure::next(FailureKind::ServerError, 1).on_path("/increment_authorization"));
    let first = h.increment(&intent_id, eur(8000)).await;
    assert_eq!(failure(first), (None, false), "a 500 is retryable");
    for _ in 0..2 {
        let answer = h.increment(&intent_id, eur(8000)).await.unwrap();
        assert_eq!(
            answer,
            IncrementPaymentOutput::Raised {
                amount_capturable: eur(8000)
            }
        );
    }
    let calls = h.requests_to("/increment_authorization");
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].injected, Some(FailureKind::ServerError));
    assert!(!calls[1].replayed && calls[2].replayed, "{calls:?}");
    let key = increment_key(&h.session, 1);
    assert!(
        calls
            .iter()
            .all(|c| c.idempotency_key.as_deref() == Some(key.as_str()))
    );
    assert_eq!(
        h.sandbox.intent(&intent_id).unwrap().amount_capturable,
        8000
    );
}
