//! Contract test against Stripe's test mode: the same activities as `payments.rs`, against the
//! real API, to catch drift between Stripe and the sandbox. Needs network and a `sk_test_` key:
//!
//! ```text
//! STRIPE_SECRET_KEY=sk_test_... cargo test -p activities --test stripe_contract -- --ignored
//! ```
//!
//! Without the key it reports SKIPPED and fails, so it can never count as a pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use activities::payments::{PaymentActivities, StripeSettings};
use domain::ids::SessionId;
use domain::money::{Currency, Money};
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, RetrievePaymentIntent,
};
use stripe_shared::{PaymentIntentCaptureMethod, PaymentIntentStatus};
use temporalio_sdk::testing::{ActivityEnvironment, TestActivityInfoOptions};
use url::Url;
use workflows::contracts::{
    CancelPaymentInput, CapturePaymentInput, CreatePaymentInput, PaymentRef, ProviderPaymentState,
    Step, idempotency_key,
};

/// A manual-capture PaymentIntent confirmed server-side with Stripe's test card: the state a
/// Checkout payment leaves behind, without a browser.
async fn held_intent(client: &stripe::Client, session: &SessionId) -> String {
    let mut apm = CreatePaymentIntentAutomaticPaymentMethods::new(true);
    apm.allow_redirects = Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
    let pi = CreatePaymentIntent::new(5000, stripe_types::Currency::EUR)
        .capture_method(PaymentIntentCaptureMethod::Manual)
        .automatic_payment_methods(apm)
        .confirm(true)
        .payment_method("pm_card_visa")
        .metadata(HashMap::from([(
            "session_id".to_owned(),
            session.to_string(),
        )]))
        .send(client)
        .await
        .unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::RequiresCapture);
    pi.id.as_str().to_owned()
}

#[tokio::test]
#[ignore = "needs STRIPE_SECRET_KEY"]
async fn payment_activities_hold_to_stripe_test_mode() {
    let Ok(secret_key) = std::env::var("STRIPE_SECRET_KEY") else {
        println!("SKIPPED: STRIPE_SECRET_KEY not set");
        panic!("SKIPPED: STRIPE_SECRET_KEY not set");
    };
    assert!(
        secret_key.starts_with("sk_test_") || secret_key.starts_with("rk_test_"),
        "test-mode keys only"
    );
    let settings = StripeSettings {
        secret_key,
        api_base: None,
        public_base_url: Url::parse("https://chargelink.example/").unwrap(),
        request_timeout: Duration::from_secs(20),
    };
    let env = ActivityEnvironment::builder()
        .register_activities(PaymentActivities::new(&settings).unwrap())
        .info(
            TestActivityInfoOptions::builder()
                .scheduled_time(Some(SystemTime::now()))
                .build(),
        )
        .build();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let session: SessionId = format!("ses_contract{nanos}").parse().unwrap();
    let eur = |minor| Money::new(minor, Currency::EUR);

    // Hosted page: open, then expired; expiring again still answers Expired.
    let input = CreatePaymentInput {
        session_id: session.clone(),
        payment_id: format!("pay_contract{nanos}").parse().unwrap(),
        amount: eur(5000),
        idempotency_key: idempotency_key(&session, Step::CreatePayment),
        price_text: Some("0.35 € per kWh\nVAT 19 % included".to_owned()),
        incremental: false,
    };
    let created = env
        .run(PaymentActivities::create_payment, input.clone())
        .await
        .unwrap();
    assert!(created.checkout_session_id.starts_with("cs_test_"));
    assert!(created.url.starts_with("https://"), "{}", created.url);
    let again = env
        .run(PaymentActivities::create_payment, input)
        .await
        .unwrap();
    assert_eq!(
        again.checkout_session_id, created.checkout_session_id,
        "the idempotency key replays"
    );
    let page = PaymentRef {
        session_id: session.clone(),
        checkout_session_id: created.checkout_session_id.clone(),
        idempotency_key: idempotency_key(&session, Step::ExpirePayment),
    };
    assert_eq!(
        env.run(PaymentActivities::retrieve_payment, page.clone())
            .await
            .unwrap(),
        ProviderPaymentState::Open
    );
    assert_eq!(
        env.run(PaymentActivities::expire_payment, page.clone())
            .await
            .unwrap(),
        ProviderPaymentState::Expired
    );
    let other_key = PaymentRef {
        idempotency_key: format!("{nanos}:expire-again"),
        ..page
    };
    assert_eq!(
        env.run(PaymentActivities::expire_payment, other_key)
            .await
            .unwrap(),
        ProviderPaymentState::Expired
    );

    // Partial capture; the retry with the same key replays.
    let client = settings.client().unwrap();
    let intent = held_intent(&client, &session).await;
    let capture = CapturePaymentInput {
        session_id: session.clone(),
        intent_id: intent.clone(),
        amount: eur(1234),
        idempotency_key: format!("{session}:capture"),
    };
    assert_eq!(
        env.run(PaymentActivities::capture_payment, capture.clone())
            .await
            .unwrap()
            .captured,
        eur(1234)
    );
    assert_eq!(
        env.run(PaymentActivities::capture_payment, capture)
            .await
            .unwrap()
            .captured,
        eur(1234)
    );
    let pi = RetrievePaymentIntent::new(intent.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        (pi.status, pi.amount_received, pi.amount_capturable),
        (PaymentIntentStatus::Succeeded, 1234, 0)
    );

    // Release a hold, twice.
    let intent = held_intent(&client, &session).await;
    let cancel = CancelPaymentInput {
        session_id: session.clone(),
        intent_id: intent.clone(),
        idempotency_key: idempotency_key(&session, Step::Cancel),
    };
    env.run(PaymentActivities::cancel_payment, cancel.clone())
        .await
        .unwrap();
    let other = CancelPaymentInput {
        idempotency_key: format!("{nanos}:cancel-again"),
        ..cancel
    };
    env.run(PaymentActivities::cancel_payment, other)
        .await
        .unwrap();
    let pi = RetrievePaymentIntent::new(intent.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(pi.status, PaymentIntentStatus::Canceled);
}
