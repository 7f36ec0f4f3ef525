//! The webhook dispatcher against a real HTTP receiver and a real SQLite store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use activities::webhooks::{Dispatcher, SIGNATURE_HEADER, WebhookSettings, verify};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use domain::events::{EventType, SessionEvent};
use domain::ids::{ChargeStationId, ConnectorRef, OrganizationId, RateId, SessionId, UserId};
use domain::session::{PAYMENT_LINK, Session, SessionCost, SessionStatus, SessionTarget};
use store::{NewOrganization, NewWebhookEndpoint, OrganizationSettings, Store};

#[derive(Default)]
struct Receiver {
    /// (signature header, event id header, body)
    got: Vec<(String, String, Vec<u8>)>,
    fail_next: usize,
}

async fn receive(
    State(r): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut r = r.lock().unwrap();
    if r.fail_next > 0 {
        r.fail_next -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.got
        .push((h(SIGNATURE_HEADER), h("chargelink-event-id"), body.to_vec()));
    StatusCode::OK
}

async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

struct Fixture {
    store: Store,
    org: OrganizationId,
    secret: String,
    endpoint: String,
}

async fn fixture(url: &str) -> Fixture {
    let n: u64 = rand_id();
    let path = std::env::temp_dir().join(format!("chargelink-webhooks-{n:x}.db"));
    let store = Store::open(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let org = OrganizationId::from_unique("acme").unwrap();
    store
        .create_organization(
            NewOrganization {
                id: org.clone(),
                name: "acme".into(),
                settings: OrganizationSettings::default(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let endpoint = store
        .create_webhook_endpoint(
            &org,
            NewWebhookEndpoint {
                id: "we_1".into(),
                url: url.into(),
                events: vec![],
            },
            Utc::now(),
        )
        .await
        .unwrap();
    Fixture {
        store,
        org,
        secret: endpoint.secret,
        endpoint: endpoint.id,
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Records a session with `kinds` as its events 1..=n.
async fn session_with_events(f: &Fixture, kinds: &[EventType]) -> SessionId {
    let id = SessionId::from_unique(&format!("{:x}", rand_id())).unwrap();
    let now = Utc::now();
    let session = Session {
        id: id.clone(),
        user: UserId::from_unique("u").unwrap(),
        chargestation: "CP-1".parse::<ChargeStationId>().unwrap(),
        connector: ConnectorRef::from_unique("c").unwrap(),
        status: SessionStatus::Created,
        rate: RateId::from_unique("r").unwrap(),
        target: SessionTarget::default(),
        cost: SessionCost::default(),
        kind: PAYMENT_LINK.into(),
        payment: None,
        end_reason: None,
        idle: None,
        stop: None,
        started_at: None,
        ended_at: None,
        receipt_url: None,
        created_at: now,
        updated_at: now,
    };
    let events: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, &kind)| {
            let seq = u32::try_from(i + 1).unwrap();
            SessionEvent {
                id: SessionEvent::id_for(&id, seq),
                kind,
                seq,
                created_at: now,
                data: session.clone(),
            }
        })
        .collect();
    f.store
        .record_session(&f.org, &session, &events)
        .await
        .unwrap();
    id
}

fn fast() -> WebhookSettings {
    WebhookSettings {
        poll_interval: Duration::from_millis(10),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..WebhookSettings::default()
    }
}

async fn drain(d: &Dispatcher, rounds: usize) {
    for _ in 0..rounds {
        d.dispatch_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn events_arrive_signed_in_order_with_stable_ids() {
    let (url, rx) = receiver().await;
    let f = fixture(&url).await;
    let kinds = [
        EventType::SessionCreated,
        EventType::PaymentCreated,
        EventType::PaymentAuthorized,
    ];
    let id = session_with_events(&f, &kinds).await;
    let d = Dispatcher::new(f.store.clone(), fast()).unwrap();
    drain(&d, 6).await;

    let got = rx.lock().unwrap().got.clone();
    assert_eq!(got.len(), 3, "each event exactly once");
    for (i, (sig, event_id, body)) in got.iter().enumerate() {
        let seq = u32::try_from(i + 1).unwrap();
        assert_eq!(event_id, &SessionEvent::id_for(&id, seq), "in order");
        assert!(
            verify(&f.secret, sig, body, Utc::now().timestamp(), 300),
            "signature verifies"
        );
        let event: SessionEvent = serde_json::from_slice(body).unwrap();
        assert_eq!(event.kind, kinds[i]);
        assert_eq!(event.data.id, id, "the full session object rides along");
    }
}

#[tokio::test]
async fn a_failing_delivery_is_retried_and_holds_back_later_events() {
    let (url, rx) = receiver().await;
    rx.lock().unwrap().fail_next = 2;
    let f = fixture(&url).await;
    let id = session_with_events(&f, &[EventType::SessionCreated, EventType::PaymentCreated]).await;
    let d = Dispatcher::new(f.store.clone(), fast()).unwrap();
    d.dispatch_once().await.unwrap();
    assert!(
        rx.lock().unwrap().got.is_empty(),
        "first attempt failed, nothing delivered"
    );
    drain(&d, 10).await;

    let got = rx.lock().unwrap().got.clone();
    let ids: Vec<_> = got.iter().map(|g| g.1.clone()).collect();
    assert_eq!(
        ids,
        [SessionEvent::id_for(&id, 1), SessionEvent::id_for(&id, 2)],
        "order kept through retries"
    );
    let log = f
        .store
        .event_log(&f.org, Some(id.as_str()), 10)
        .await
        .unwrap();
    let first = log.iter().find(|e| e.event["seq"] == 1).unwrap();
    assert_eq!(
        first.deliveries[0].attempts, 3,
        "two failures, then success"
    );
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_and_the_log_says_why() {
    let (url, rx) = receiver().await;
    rx.lock().unwrap().fail_next = usize::MAX;
    let f = fixture(&url).await;
    let id = session_with_events(&f, &[EventType::SessionCreated]).await;
    let settings = WebhookSettings {
        disable_after_failures: 3,
        ..fast()
    };
    let d = Dispatcher::new(f.store.clone(), settings).unwrap();
    drain(&d, 10).await;

    let endpoint = &f.store.webhook_endpoints(&f.org).await.unwrap()[0];
    assert_eq!(endpoint.id, f.endpoint);
    assert!(!endpoint.enabled);
    let reason = endpoint.disabled_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("3 consecutive failed deliveries") && reason.contains("503"),
        "{reason}"
    );
    let log = f
        .store
        .event_log(&f.org, Some(id.as_str()), 10)
        .await
        .unwrap();
    assert_eq!(
        log[0].deliveries[0].attempts, 3,
        "no attempts after disabling"
    );
    assert_eq!(log[0].deliveries[0].last_status_code, Some(503));
}

#[tokio::test]
async fn a_dead_endpoint_does_not_delay_another_endpoint() {
    let (url, rx) = receiver().await;
    let f = fixture(&url).await;
    // A second endpoint of the same organization points nowhere (connection refused).
    let dead = f
        .store
        .create_webhook_endpoint(
            &f.org,
            NewWebhookEndpoint {
                id: "we_dead".into(),
                url: "http://127.0.0.1:9/hook".into(),
                events: vec![],
            },
            Utc::now(),
        )
        .await
        .unwrap();
    session_with_events(&f, &[EventType::SessionCreated]).await;
    let d = Dispatcher::new(f.store.clone(), fast()).unwrap();
    let started = std::time::Instant::now();
    drain(&d, 3).await;
    assert_eq!(
        rx.lock().unwrap().got.len(),
        1,
        "the live endpoint got its event"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let log = f.store.event_log(&f.org, None, 10).await.unwrap();
    let dead_state = log[0]
        .deliveries
        .iter()
        .find(|s| s.endpoint_id == dead.id)
        .unwrap();
    assert_eq!(dead_state.status, "pending");
    assert!(
        dead_state
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("unreachable")
    );
}
