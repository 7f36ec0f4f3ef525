//! The gRPC `chargelink.v1.SessionService` against the running stack: a real Temporal dev
//! server, a worker running `SessionWorkflow` with the real store activity (SQLite file) and
//! recording stand-ins for the payment provider and the stations, and the API (REST + gRPC on
//! one port, as `chargelink api` serves it) over real TCP; tonic clients over HTTP/2.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers; a panic is a failed test"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chargelink_tests::devserver::{DevServer, connect};
use chargelink_tests::fixtures::{HAPPY_PATH_EVENTS, random_body};
use chargelink_tests::grpc_client::auth;
use chargelink_tests::harness;
use chargelink_tests::recording::read_journal;
use chrono::Utc;
use grpc::pb;
use grpc::pb::session_service_client::SessionServiceClient;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};
use temporalio_sdk::Worker;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use workflows::client::SessionClient;
use workflows::messages::{ChargingStarted, ChargingStopped, PaymentAuthorized};

const ADMIN_TOKEN: &str = "test-admin-token";

/// What the tests talk to.
struct Stack {
    tokio: tokio::runtime::Handle,
    api: String,
    http: reqwest::Client,
    channel: Channel,
    sessions: SessionClient,
    journal: PathBuf,
    store: store::Store,
}

/// An organization set up through the REST admin API.
struct Tenant {
    key: String,
    user: String,
    connectors: Vec<String>,
    parking_connector: String,
}

/// Checks a refusal: the gRPC code, the stable code first in the message and in
/// `chargelink-error-code`, and the field in `chargelink-error-field`.
fn refused(status: &Status, code: Code, error: &str, field: Option<&str>) -> anyhow::Result<()> {
    ensure!(status.code() == code, "want {code:?}, got {status:?}");
    ensure!(
        status.message().starts_with(&format!("{error}: ")),
        "the message starts with the code {error}: {status:?}"
    );
    let meta = |k: &str| {
        status
            .metadata()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    ensure!(
        meta("chargelink-error-code").as_deref() == Some(error),
        "{status:?}"
    );
    ensure!(
        meta("chargelink-error-field").as_deref() == field,
        "field {field:?}: {status:?}"
    );
    Ok(())
}

impl Stack {
    fn run(&self, f: impl std::future::Future<Output = anyhow::Result<()>>) -> Result<(), Failed> {
        self.tokio
            .block_on(f)
            .map_err(|e| Failed::from(format!("{e:#}")))
    }

    fn client(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel.clone())
    }

    async fn rest(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut req = self
            .http
            .request(method.parse()?, format!("{}{path}", self.api))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await?;
        let status = res.status();
        Ok((status, res.json().await?))
    }

    async fn ok(&self, method: &str, path: &str, key: &str, body: Value) -> anyhow::Result<Value> {
        let (status, v) = self.rest(method, path, key, Some(body), None).await?;
        ensure!(status.is_success(), "{method} {path} -> {status}: {v}");
        Ok(v)
    }

    /// An organization with a user, two connectors on an energy rate and one on a PARKING_TIME
    /// rate.
    async fn tenant(&self) -> anyhow::Result<Tenant> {
        let org = self
            .ok("POST", "/admin/organizations", ADMIN_TOKEN, json!({"name": "acme", "settings": {
                "currency": "usd", "minimum_amount_to_start_session": 1800, "maximum_authorized_amount": 5000,
                "payment_expiry_time": 300, "start_window": 300}}))
            .await?;
        let key = org["api_key"]["key"].as_str().context("key")?.to_owned();
        let energy = self
            .ok(
                "POST",
                "/rates",
                &key,
                json!({"name": "energy", "currency": "usd",
                "price_components": [{"type": "ENERGY", "price": "0.30"}]}),
            )
            .await?;
        let parking = self
            .ok("POST", "/rates", &key, json!({"name": "overstay", "currency": "usd",
                "price_components": [{"type": "ENERGY", "price": "0.30"}, {"type": "PARKING_TIME", "price": "6", "grace_period": "0.25"}]}))
            .await?;
        let user = self
            .ok("POST", "/users", &key, json!({"name": "driver"}))
            .await?;
        let station = format!("CP-{}", &random_body()[..8]);
        let cs = self
            .ok("POST", "/charge-stations", &key, json!({"id": station, "name": "demo", "connectors": [
                {"connector_id": 1, "rate": energy["_id"]}, {"connector_id": 2, "rate": energy["_id"]},
                {"connector_id": 3, "rate": parking["_id"]}]}))
            .await?;
        // The recording stand-ins play the gateway: the registry must show the station online.
        chargelink_tests::stack::stand_in_online(&self.store, &station, &[1, 2, 3]).await?;
        let connectors: Vec<String> = cs["connectors"]
            .as_array()
            .context("connectors")?
            .iter()
            .filter_map(|c| c["_id"].as_str().map(str::to_owned))
            .collect();
        Ok(Tenant {
            key,
            user: user["_id"].as_str().context("user")?.to_owned(),
            parking_connector: connectors[2].clone(),
            connectors,
        })
    }

    /// Waits for the recording station to have been sent `activity` for `session`.
    async fn await_call(&self, activity: &str, session: &str) -> anyhow::Result<()> {
        for _ in 0..200 {
            if read_journal(&self.journal)
                .iter()
                .any(|e| e.activity == activity && e.session_id == session)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{activity} was never called for {session}")
    }
}

/// Creates a session on `connector` over gRPC; the session it answers with.
async fn created(
    c: &mut SessionServiceClient<Channel>,
    t: &Tenant,
    connector: &str,
) -> anyhow::Result<pb::Session> {
    c.create(auth(&t.key, create(t, connector)))
        .await?
        .into_inner()
        .session
        .context("session")
}

/// A `Watch` of session `id` from its first event.
async fn watch(
    c: &mut SessionServiceClient<Channel>,
    key: &str,
    id: &str,
) -> anyhow::Result<tonic::Streaming<pb::SessionEvent>> {
    let request = pb::WatchRequest {
        id: id.to_owned(),
        ..Default::default()
    };
    Ok(c.watch(auth(key, request)).await?.into_inner())
}

fn create(t: &Tenant, connector: &str) -> pb::CreateRequest {
    pb::CreateRequest {
        user: t.user.clone(),
        connector: connector.to_owned(),
        ..Default::default()
    }
}

/// A Watch whose client goes away stops polling (its poller leaves `grpc::watching`), and a
/// request over the message limit is refused before it is decoded, the connection still usable.
async fn watch_stops_when_the_client_goes_away_and_huge_requests_are_refused(
    s: &Stack,
) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let session = created(&mut c, &t, &t.connectors[0]).await?;
    let stream = watch(&mut c, &t.key, &session.id).await?;
    let wait_for = |n: usize| {
        let id = session.id.clone();
        async move {
            for _ in 0..50 {
                if grpc::watching(&id) == n {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bail!("{} pollers for {id}, expected {n}", grpc::watching(&id))
        }
    };
    wait_for(1).await?;
    drop(stream);
    wait_for(0).await?;

    let huge = pb::CreateRequest {
        user: "u".repeat(grpc::MAX_REQUEST_BYTES + 1),
        ..create(&t, &t.connectors[0])
    };
    let refused = c
        .create(auth(&t.key, huge))
        .await
        .err()
        .context("a request over the limit")?;
    ensure!(
        refused.code() == Code::OutOfRange || refused.code() == Code::ResourceExhausted,
        "{refused:?}"
    );
    let again = c
        .get(auth(
            &t.key,
            pb::GetRequest {
                id: session.id.clone(),
            },
        ))
        .await?;
    ensure!(again.into_inner().id == session.id);
    Ok(())
}

async fn create_get_and_list(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let created = c
        .create(auth(&t.key, create(&t, &t.connectors[0])))
        .await?
        .into_inner();
    ensure!(created.created, "a new session");
    let session = created.session.context("session")?;
    ensure!(session.id.starts_with("ses_"), "{session:?}");
    ensure!(session.status() == pb::SessionStatus::Created);
    ensure!(session.r#type == "payment_link" && session.connector == t.connectors[0]);
    let payment = session.payment.clone().context("payment")?;
    ensure!(payment.url.starts_with("https://"), "{payment:?}");
    ensure!(payment.status() == pb::PaymentStatus::Created);
    ensure!(
        payment.authorized
            == Some(pb::Money {
                amount: 1800,
                currency: "usd".into()
            }),
        "the organization's minimum hold in cents: {payment:?}"
    );
    ensure!(payment.session == session.id);

    let got = c
        .get(auth(
            &t.key,
            pb::GetRequest {
                id: session.id.clone(),
            },
        ))
        .await?
        .into_inner();
    ensure!(got.id == session.id && got.payment.map(|p| p.url) == Some(payment.url.clone()));
    // The same session through REST: one implementation, one store.
    let (status, rest) = s
        .rest(
            "GET",
            &format!("/sessions/{}", session.id),
            &t.key,
            None,
            None,
        )
        .await?;
    ensure!(status.is_success() && rest["payment"]["url"] == payment.url.as_str());

    let list = |status: pb::SessionStatus, limit: u32| {
        let mut c = s.client();
        let key = t.key.clone();
        async move {
            c.list(auth(
                &key,
                pb::ListRequest {
                    status: status.into(),
                    limit,
                    ..Default::default()
                },
            ))
            .await
        }
    };
    let all = list(pb::SessionStatus::Unspecified, 0).await?.into_inner();
    ensure!(
        all.sessions.len() == 1 && all.sessions[0].id == session.id && all.next_cursor.is_empty(),
        "{all:?}"
    );
    let created_only = list(pb::SessionStatus::Created, 10).await?.into_inner();
    ensure!(created_only.sessions.len() == 1);
    let ended = list(pb::SessionStatus::Ended, 10).await?.into_inner();
    ensure!(ended.sessions.is_empty(), "{ended:?}");
    let too_many = list(pb::SessionStatus::Unspecified, 1000)
        .await
        .unwrap_err();
    refused(
        &too_many,
        Code::InvalidArgument,
        "invalid_request",
        Some("limit"),
    )?;
    let unknown = c
        .list(auth(
            &t.key,
            pb::ListRequest {
                status: 42,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    refused(
        &unknown,
        Code::InvalidArgument,
        "invalid_request",
        Some("status"),
    )?;
    Ok(())
}

async fn missing_or_wrong_api_key(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let none = c
        .list(Request::new(pb::ListRequest::default()))
        .await
        .unwrap_err();
    refused(&none, Code::Unauthenticated, "unauthorized", None)?;
    ensure!(none.message().contains("Bearer"), "says what to send");
    let wrong = c
        .create(auth("ck_not_a_key", create(&t, &t.connectors[0])))
        .await
        .unwrap_err();
    refused(&wrong, Code::Unauthenticated, "unauthorized", None)?;
    // Without `Bearer `, the key is not taken.
    let mut bare = Request::new(pb::ListRequest::default());
    bare.metadata_mut()
        .insert("authorization", t.key.parse().unwrap());
    refused(
        &c.list(bare).await.unwrap_err(),
        Code::Unauthenticated,
        "unauthorized",
        None,
    )?;
    let watch = c
        .watch(auth(
            "ck_not_a_key",
            pb::WatchRequest {
                id: "ses_x".into(),
                ..Default::default()
            },
        ))
        .await
        .err()
        .context("Watch needs a key")?;
    refused(&watch, Code::Unauthenticated, "unauthorized", None)?;
    Ok(())
}

async fn another_orgs_session_is_not_found(s: &Stack) -> anyhow::Result<()> {
    let a = s.tenant().await?;
    let b = s.tenant().await?;
    let mut c = s.client();
    let session = c
        .create(auth(&a.key, create(&a, &a.connectors[0])))
        .await?
        .into_inner()
        .session
        .context("session")?;
    let id = session.id;
    let r = || pb::SessionRef { id: id.clone() };
    let get = c
        .get(auth(&b.key, pb::GetRequest { id: id.clone() }))
        .await
        .unwrap_err();
    refused(&get, Code::NotFound, "not_found", None)?;
    for e in [
        c.pause(auth(&b.key, r())).await.unwrap_err(),
        c.resume(auth(&b.key, r())).await.unwrap_err(),
        c.stop(auth(&b.key, r())).await.unwrap_err(),
    ] {
        refused(&e, Code::NotFound, "not_found", None)?;
    }
    let watch = c
        .watch(auth(
            &b.key,
            pb::WatchRequest {
                id: id.clone(),
                ..Default::default()
            },
        ))
        .await
        .err()
        .context("B cannot watch A's session")?;
    refused(&watch, Code::NotFound, "not_found", None)?;
    let theirs = c
        .create(auth(&b.key, create(&b, &a.connectors[1])))
        .await
        .unwrap_err();
    refused(
        &theirs,
        Code::NotFound,
        "connector_not_found",
        Some("connector"),
    )?;
    let listed = c
        .list(auth(&b.key, pb::ListRequest::default()))
        .await?
        .into_inner();
    ensure!(listed.sessions.is_empty(), "{listed:?}");
    // A still sees it.
    c.get(auth(&a.key, pb::GetRequest { id })).await?;
    Ok(())
}

async fn validation_errors_name_the_field(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let base = || create(&t, &t.connectors[0]);
    let cases = [
        (
            pb::CreateRequest {
                r#type: "wallet".into(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_request",
            "type",
        ),
        (
            pb::CreateRequest {
                user: "bob".into(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_request",
            "user",
        ),
        (
            pb::CreateRequest {
                connector: "con_nope".into(),
                ..base()
            },
            Code::NotFound,
            "connector_not_found",
            "connector",
        ),
        (
            pb::CreateRequest {
                authorized_amount: Some(-5),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_request",
            "authorized_amount",
        ),
        (
            pb::CreateRequest {
                authorized_amount: Some(999_999),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_request",
            "authorized_amount",
        ),
        (
            pb::CreateRequest {
                payment_expiry_time: Some(0),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_request",
            "target.payment_expiry_time",
        ),
        (
            pb::CreateRequest {
                target_energy: Some(-1.0),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_request",
            "target.energy",
        ),
    ];
    for (req, code, error, field) in cases {
        let e = c
            .create(auth(&t.key, req.clone()))
            .await
            .err()
            .with_context(|| format!("{req:?} must be refused"))?;
        refused(&e, code, error, Some(field)).with_context(|| format!("{req:?}"))?;
    }
    let bad_id = c
        .get(auth(
            &t.key,
            pb::GetRequest {
                id: "not-a-session".into(),
            },
        ))
        .await
        .unwrap_err();
    ensure!(bad_id.code() == Code::NotFound, "{bad_id:?}");
    // Nothing was created by the refused requests.
    let listed = c
        .list(auth(&t.key, pb::ListRequest::default()))
        .await?
        .into_inner();
    ensure!(listed.sessions.is_empty(), "{listed:?}");
    Ok(())
}

async fn create_is_idempotent(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let key = format!("retry-{}", random_body());
    let req = pb::CreateRequest {
        idempotency_key: key.clone(),
        authorized_amount: Some(2000),
        ..create(&t, &t.connectors[1])
    };
    let first = c.create(auth(&t.key, req.clone())).await?.into_inner();
    let again = c.create(auth(&t.key, req.clone())).await?.into_inner();
    ensure!(first.created && !again.created, "{first:?} / {again:?}");
    let (a, b) = (
        first.session.context("first")?,
        again.session.context("again")?,
    );
    ensure!(a.id == b.id && a.payment == b.payment, "{a:?} vs {b:?}");
    // REST with the same Idempotency-Key attaches to the same session.
    let (status, rest) = s
        .rest(
            "POST",
            "/sessions",
            &t.key,
            Some(json!({"user": t.user, "connector": t.connectors[1], "type": "payment_link", "authorized_amount": 2000})),
            Some(&key),
        )
        .await?;
    ensure!(
        status == reqwest::StatusCode::OK && rest["_id"] == a.id.as_str(),
        "{status} {rest}"
    );
    let other = c
        .create(auth(
            &t.key,
            pb::CreateRequest {
                authorized_amount: Some(2500),
                ..req
            },
        ))
        .await
        .unwrap_err();
    refused(
        &other,
        Code::FailedPrecondition,
        "idempotency_key_reused",
        None,
    )?;
    let listed = c
        .list(auth(&t.key, pb::ListRequest::default()))
        .await?
        .into_inner();
    ensure!(listed.sessions.len() == 1, "one session: {listed:?}");
    Ok(())
}

async fn refused_commands(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let session = created(&mut c, &t, &t.connectors[0]).await?;
    let busy = c
        .create(auth(&t.key, create(&t, &t.connectors[0])))
        .await
        .unwrap_err();
    refused(
        &busy,
        Code::FailedPrecondition,
        "connector_busy",
        Some("connector"),
    )?;
    let r = pb::SessionRef {
        id: session.id.clone(),
    };
    let pause = c.pause(auth(&t.key, r.clone())).await.unwrap_err();
    refused(
        &pause,
        Code::FailedPrecondition,
        "session_not_charging",
        None,
    )?;
    let resume = c.resume(auth(&t.key, r)).await.unwrap_err();
    refused(
        &resume,
        Code::FailedPrecondition,
        "session_not_paused",
        None,
    )?;
    let parked = created(&mut c, &t, &t.parking_connector).await?;
    let stop = c
        .stop(auth(&t.key, pb::SessionRef { id: parked.id }))
        .await
        .unwrap_err();
    refused(&stop, Code::FailedPrecondition, "stop_not_allowed", None)?;
    ensure!(stop.message().contains("PARKING_TIME"), "{stop:?}");
    Ok(())
}

/// Reads a Watch stream to its end (or fails after a minute).
async fn drain(
    mut stream: tonic::Streaming<pb::SessionEvent>,
) -> anyhow::Result<Vec<pb::SessionEvent>> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => bail!(
                "the stream did not end; got {:?}",
                events
                    .iter()
                    .map(|e: &pb::SessionEvent| &e.r#type)
                    .collect::<Vec<_>>()
            ),
            Ok(None) => return Ok(events),
            Ok(Some(event)) => events.push(event?),
        }
    }
}

async fn watch_follows_a_session_to_its_end(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let session = created(&mut c, &t, &t.connectors[0]).await?;
    let id: domain::ids::SessionId = session.id.parse()?;
    // Watch from the start, while the session runs: the recorded events first, then live ones.
    let stream = watch(&mut c, &t.key, &session.id).await?;
    let watching = tokio::spawn(drain(stream));

    s.sessions
        .payment_authorized(
            &id,
            PaymentAuthorized {
                intent_id: "pi_grpc".into(),
                amount_capturable: domain::money::Money::new(1800, domain::money::Currency::USD),
            },
        )
        .await?;
    s.await_call("remote_start", id.as_str()).await?;
    s.sessions
        .charging_started(
            &id,
            ChargingStarted {
                transaction_id: 7,
                meter_start_wh: 0,
                timestamp: Utc::now(),
            },
        )
        .await?;
    let r = pb::SessionRef {
        id: session.id.clone(),
    };
    // `session.started` is recorded before the workflow takes commands; retry until it does.
    let mut paused = None;
    for _ in 0..100 {
        match c.pause(auth(&t.key, r.clone())).await {
            Ok(p) => {
                paused = Some(p.into_inner());
                break;
            }
            Err(e) if e.code() == Code::FailedPrecondition => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let paused = paused.context("pause was never accepted")?;
    ensure!(paused.status() == pb::SessionStatus::Paused, "{paused:?}");
    let resumed = c.resume(auth(&t.key, r.clone())).await?.into_inner();
    ensure!(
        resumed.status() == pb::SessionStatus::Started,
        "{resumed:?}"
    );
    let stopping = c.stop(auth(&t.key, r.clone())).await?.into_inner();
    ensure!(
        stopping.status() == pb::SessionStatus::Started,
        "the station confirms the stop: {stopping:?}"
    );
    s.await_call("remote_stop", id.as_str()).await?;
    s.sessions
        .charging_stopped(
            &id,
            ChargingStopped {
                transaction_id: 7,
                meter_stop_wh: 3_000,
                timestamp: Utc::now(),
                reason: Some("Remote".into()),
            },
        )
        .await?;

    let events = watching.await??;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    ensure!(types == HAPPY_PATH_EVENTS, "{types:?}");
    for (i, e) in events.iter().enumerate() {
        let seq = u32::try_from(i + 1)?;
        ensure!(e.seq == seq, "in order: {e:?}");
        ensure!(e.id == domain::events::SessionEvent::id_for(&id, seq));
        ensure!(e.session.as_ref().is_some_and(|s| s.id == session.id));
    }
    let last = events[7].session.as_ref().context("last session")?;
    ensure!(last.status() == pb::SessionStatus::Ended);
    ensure!(last.end_reason() == pb::EndReason::StoppedByApi);
    let payment = last.payment.as_ref().context("payment")?;
    ensure!(
        payment.status() == pb::PaymentStatus::Captured
            && payment.captured
                == Some(pb::Money {
                    amount: 90,
                    currency: "usd".into()
                }),
        "3 kWh at 0.30 USD: {payment:?}"
    );
    ensure!(
        last.cost
            .as_ref()
            .and_then(|c| c.amount.as_ref())
            .map(|m| m.amount)
            == Some(90),
        "{last:?}"
    );

    // A settled session: from a given event, the rest, then the end at once.
    let rest = c
        .watch(auth(
            &t.key,
            pb::WatchRequest {
                id: session.id.clone(),
                after_event_id: events[5].id.clone(),
            },
        ))
        .await?
        .into_inner();
    let rest = drain(rest).await?;
    ensure!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>() == [7, 8],
        "{rest:?}"
    );
    let unknown = c
        .watch(auth(
            &t.key,
            pb::WatchRequest {
                id: session.id.clone(),
                after_event_id: "evt_nope_0001".into(),
            },
        ))
        .await
        .err()
        .context("an unknown event id is refused")?;
    refused(
        &unknown,
        Code::InvalidArgument,
        "invalid_request",
        Some("after_event_id"),
    )?;
    // After the end, commands are refused.
    let late = c.pause(auth(&t.key, r)).await.unwrap_err();
    ensure!(
        matches!(late.code(), Code::FailedPrecondition | Code::NotFound),
        "{late:?}"
    );
    Ok(())
}

async fn watch_ends_when_a_driver_cancels(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let mut c = s.client();
    let session = created(&mut c, &t, &t.connectors[1]).await?;
    let stream = watch(&mut c, &t.key, &session.id).await?;
    let watching = tokio::spawn(drain(stream));
    // The driver leaves the payment page.
    s.http
        .get(format!("{}/payments/{}/cancel", s.api, session.id))
        .send()
        .await?
        .error_for_status()?;
    let events = watching.await??;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    ensure!(
        types
            == [
                "session.created",
                "session.payment.created",
                "session.canceled"
            ],
        "{types:?}"
    );
    Ok(())
}

async fn reflection_lists_the_service(s: &Stack) -> anyhow::Result<()> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let mut client = ServerReflectionClient::new(s.channel.clone());
    let ask = |m: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let requests = tokio_stream::iter([
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "chargelink.v1.SessionService".into(),
        )),
    ]);
    let answers: Vec<ServerReflectionResponse> = client
        .server_reflection_info(requests)
        .await?
        .into_inner()
        .collect::<Result<_, _>>()
        .await?;
    ensure!(answers.len() == 2, "{answers:?}");
    let Some(MessageResponse::ListServicesResponse(list)) = &answers[0].message_response else {
        bail!("not a service list: {:?}", answers[0]);
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    ensure!(names.contains(&"chargelink.v1.SessionService"), "{names:?}");
    let Some(MessageResponse::FileDescriptorResponse(files)) = &answers[1].message_response else {
        bail!("no descriptor: {:?}", answers[1]);
    };
    let file = files.file_descriptor_proto.first().context("a file")?;
    let text = String::from_utf8_lossy(file);
    // The encoded descriptor names the service and its methods.
    for name in ["SessionService", "Watch", "chargelink/v1/sessions.proto"] {
        ensure!(text.contains(name), "{name} in the descriptor");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let Some(tokio) = chargelink_tests::harness::runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    let result = tokio.block_on(async move {
        let server = DevServer::start().await?;
        let client = connect(&server.url).await?;
        let db = std::env::temp_dir().join(format!("chargelink-grpc-{}.db", random_body()));
        let store = store::Store::open(&format!("sqlite://{}?mode=rwc", db.display())).await?;
        let queue = format!("grpc-{}", random_body());
        let journal = std::env::temp_dir().join(format!("{queue}.jsonl"));
        // Recording stand-ins for Stripe and the stations; the real store activity.
        let options = harness::recording_worker_options(&queue, &journal, &store)?;
        let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
        let worker = Worker::new(&runtime, client.clone(), options)?;

        let sessions = SessionClient::new(client, queue);
        let state = api::AppState {
            store: store.clone(),
            sessions: sessions.clone(),
            config: api::ApiConfig {
                public_rate_limit: api::limits::RateLimiter::public(),
                rate_limit: Default::default(),
                receipts: Default::default(),
                admin_token: Some(ADMIN_TOKEN.into()),
                timings: Default::default(),
                default_max_power_w: None,
            },
        };
        // As `chargelink api` serves it: REST and gRPC on one port.
        let app = grpc::with_rest(state)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = format!("http://{}", listener.local_addr()?);
        tokio::spawn(api::serve_app(listener, app, std::future::pending()));
        let channel = Channel::from_shared(api.clone())?.connect().await?;

        let stack = Arc::new(Stack {
            tokio: tokio::runtime::Handle::current(),
            api,
            http: reqwest::Client::new(),
            channel,
            sessions,
            journal,
            store,
        });
        macro_rules! trial {
            ($name:ident) => {{
                let s = stack.clone();
                Trial::test(stringify!($name), move || s.run($name(&s)))
            }};
        }
        let trials = vec![
            trial!(create_get_and_list),
            trial!(missing_or_wrong_api_key),
            trial!(another_orgs_session_is_not_found),
            trial!(validation_errors_name_the_field),
            trial!(create_is_idempotent),
            trial!(refused_commands),
            trial!(watch_follows_a_session_to_its_end),
            trial!(watch_ends_when_a_driver_cancels),
            trial!(watch_stops_when_the_client_goes_away_and_huge_requests_are_refused),
            trial!(reflection_lists_the_service),
        ];
        let conclusion = harness::run_next_to_worker(args, trials, worker).await;
        drop(server);
        conclusion
    });
    match result {
        Ok(conclusion) => conclusion.exit_code(),
        Err(e) => {
            eprintln!("could not run the gRPC tests: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
