//! End to end with real processes (issue #7): a Temporal dev server and the `chargelink`
//! binary's `migrate`, `stripe-sandbox`, `worker`, `api`, `gateway`, `sim` and `webhooks listen`,
//! started once for this test binary on free ports with one SQLite store file, seeded through the
//! admin REST API. Every activity is the real one; the only stand-ins are the Stripe sandbox and
//! the simulated stations. Each scenario has its own organization, station and webhook receiver.
//! The crash scenarios (SIGKILL) are in `e2e_crash.rs`, the README walk-through in `readme.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use chargelink_tests::fixtures::{HAPPY_PATH_EVENTS, PAID_SESSION_EVENTS, random_body};
use chargelink_tests::grpc_client::{self, Watcher, auth};
use chargelink_tests::processes::{self, Org, ProcessStack, Receiver, Scenario, Station};
use grpc::pb;
use serde_json::{Value, json};

fn id(session: &Value) -> String {
    session["_id"].as_str().unwrap_or_default().to_owned()
}

fn intent(session: &Value) -> anyhow::Result<String> {
    Ok(session["payment"]["stripe"]["intent_id"]
        .as_str()
        .context("the session has no payment intent")?
        .to_owned())
}

const ENERGY_AND_TIME: &str =
    r#"[{"type":"ENERGY","price":"0.30"},{"type":"TIME","price":"1.20"}]"#;

/// The OCPP version a scenario's simulated stations speak (`chargelink sim --protocol`).
#[derive(Debug, Clone, Copy)]
struct Ocpp(&'static str);

/// OCPP 1.6J.
const V16: Ocpp = Ocpp("1.6");
/// OCPP 2.0.1.
const V201: Ocpp = Ocpp("2.0.1");

impl Ocpp {
    /// `base`, told apart per version (process names such as a webhook receiver's).
    fn name(self, base: &str) -> String {
        match self.0 {
            "1.6" => base.to_owned(),
            other => format!("{base}-v{}", other.replace('.', "")),
        }
    }
}

/// The happy paths' tenant: an energy + time rate, a 22 kW simulated station with two
/// connectors speaking `ocpp`, and a webhook receiver named `hooks`.
async fn happy_path_tenant(
    stack: &ProcessStack,
    ocpp: Ocpp,
    hooks: &str,
) -> anyhow::Result<(Org, Station, Receiver)> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 2).await?;
    stack
        .sim_speaking(&station, ocpp.0, &["--power-w", "22000"])
        .await?;
    let hooks = &ocpp.name(hooks);
    let hooks = stack.receiver(&org, hooks).await?;
    Ok((org, station, hooks))
}

/// Pays session `sid`'s hosted page `url` with a test card in headless chromium and checks the
/// browser ends up on chargelink's success page.
async fn pay_in_a_real_browser(url: String, sid: &str) -> anyhow::Result<()> {
    let seen = tokio::task::spawn_blocking(move || {
        chargelink_tests::browser::pay_in_browser(&url, "4242 4242 4242 4242")
    })
    .await??;
    ensure!(
        seen["url"]
            .as_str()
            .is_some_and(|u| u.contains(&format!("/payments/{sid}/success"))),
        "the browser is back on chargelink: {seen}"
    );
    Ok(())
}

/// The sandbox saw exactly one money movement for `intent`: a capture of `cost` (no cancel).
async fn captured_once(stack: &ProcessStack, intent: &str, cost: i64) -> anyhow::Result<()> {
    let (captures, cancels) = stack.money_moves(intent).await?;
    ensure!(
        captures.len() == 1 && cancels == 0,
        "one capture, no cancel: {captures:?} {cancels}"
    );
    ensure!(
        captures[0]["params"]["amount_to_capture"] == cost.to_string().as_str(),
        "capture amount (the final cost {cost}): {}",
        captures[0]
    );
    Ok(())
}

async fn happy_path_over_rest_with_a_browser_payment(
    stack: &ProcessStack,
    ocpp: Ocpp,
) -> anyhow::Result<()> {
    let (org, station, hooks) = happy_path_tenant(stack, ocpp, "hooks-happy").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    ensure!(created["payment"]["authorized_amount"] == 1800, "{created}");
    let url = created["payment"]["url"]
        .as_str()
        .context("payment url")?
        .to_owned();
    pay_in_a_real_browser(url, &sid).await?;
    let started = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "charging", |s| {
            s["status"] == "started" && s["cost"]["details"]["energy_wh"].as_i64() > Some(0)
        })
        .await?;
    ensure!(started["payment"]["status"] == "authorized", "{started}");
    let (status, paused) = stack
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{sid}/pause"),
            &org.key,
            None,
        )
        .await?;
    ensure!(
        status == 200 && paused["status"] == "paused",
        "pause: {status} {paused}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resumed = stack
        .get(&format!("/sessions/{sid}/resume"), &org.key)
        .await?;
    ensure!(resumed["status"] == "started", "resume: {resumed}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack
        .post(&format!("/sessions/{sid}/stop"), &org.key, json!({}))
        .await?;
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    let cost = ended["cost"]["amount"].as_i64().context("cost")?;
    ensure!(
        ended["status"] == "ended" && ended["end_reason"] == "stopped_by_api",
        "{ended}"
    );
    ensure!(
        cost > 0 && ended["payment"]["captured_amount"] == cost,
        "captured the final cost: {ended}"
    );
    captured_once(stack, &intent(&ended)?, cost).await?;
    stack
        .assert_webhooks(&org, &hooks, &sid, &HAPPY_PATH_EVENTS)
        .await
}

/// Polls gRPC `Get` until `done` holds (at most `timeout`); the last session.
async fn wait_grpc(
    client: &mut grpc_client::SessionClient,
    org: &Org,
    sid: &str,
    timeout: Duration,
    what: &str,
    done: impl Fn(&pb::Session) -> bool,
) -> anyhow::Result<pb::Session> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let get = pb::GetRequest { id: sid.to_owned() };
        let s = client.get(auth(&org.key, get)).await?.into_inner();
        if done(&s) {
            return Ok(s);
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "session {sid}: {what} not reached in {timeout:?}; last: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn amount(money: Option<&pb::Money>) -> Option<i64> {
    money.map(|m| m.amount)
}

async fn happy_path_over_grpc_with_a_browser_payment(stack: &ProcessStack) -> anyhow::Result<()> {
    const WAIT: Duration = Duration::from_secs(60);
    let (org, station, hooks) = happy_path_tenant(stack, V16, "hooks-happy-grpc").await?;
    let mut c = grpc_client::connect(&stack.api).await?;
    let create = pb::CreateRequest {
        user: org.user.clone(),
        connector: station.connectors[0].clone(),
        idempotency_key: "e2e-grpc-happy-path".into(),
        ..Default::default()
    };
    let first = c.create(auth(&org.key, create.clone())).await?.into_inner();
    let session = first.session.context("Create answered no session")?;
    let sid = session.id.clone();
    ensure!(
        first.created && sid.starts_with("ses_"),
        "created: {session:?}"
    );
    // Watched from right after creation: what was recorded so far, then the rest live.
    let watch = pb::WatchRequest {
        id: sid.clone(),
        ..Default::default()
    };
    let mut watcher = Watcher::spawn(c.watch(auth(&org.key, watch)).await?.into_inner());
    // A retry with the same idempotency key answers with the same session.
    let retried = c.create(auth(&org.key, create)).await?.into_inner();
    ensure!(
        !retried.created && retried.session.as_ref() == Some(&session),
        "the retry returns the first session: {retried:?}"
    );
    let payment = session.payment.clone().context("payment")?;
    ensure!(
        session.status() == pb::SessionStatus::Created
            && payment.status() == pb::PaymentStatus::Created
            && payment.authorized
                == Some(pb::Money {
                    amount: 1800,
                    currency: "usd".into()
                }),
        "a hold of the organization's minimum: {session:?}"
    );
    pay_in_a_real_browser(payment.url.clone(), &sid).await?;
    // Charging for long enough that something is owed.
    let charging = wait_grpc(&mut c, &org, &sid, WAIT, "charging", |s| {
        s.status() == pb::SessionStatus::Started
            && s.cost
                .as_ref()
                .is_some_and(|c| c.energy_wh > 0 && amount(c.amount.as_ref()) > Some(0))
    })
    .await?;
    ensure!(
        charging
            .payment
            .as_ref()
            .is_some_and(|p| p.status() == pb::PaymentStatus::Authorized),
        "{charging:?}"
    );
    watcher.until("session.started", WAIT).await?;
    let r = || auth(&org.key, pb::SessionRef { id: sid.clone() });
    let paused = c.pause(r()).await?.into_inner();
    ensure!(paused.status() == pb::SessionStatus::Paused, "{paused:?}");
    watcher.until("session.paused", WAIT).await?;
    let resumed = c.resume(r()).await?.into_inner();
    ensure!(
        resumed.status() == pb::SessionStatus::Started,
        "{resumed:?}"
    );
    watcher.until("session.resumed", WAIT).await?;
    let stopping = c.stop(r()).await?.into_inner();
    ensure!(
        stopping.status() == pb::SessionStatus::Started,
        "still started until the station confirms the stop: {stopping:?}"
    );

    // The server ends the stream by itself once the payment is captured.
    let events = watcher.end(WAIT).await?;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    ensure!(types == HAPPY_PATH_EVENTS, "watched {types:?}");
    for (e, seq) in events.iter().zip(1..) {
        ensure!(
            e.seq == seq && e.session.as_ref().is_some_and(|s| s.id == sid),
            "event {seq} of {sid}: {e:?}"
        );
    }
    let ended = c
        .get(auth(&org.key, pb::GetRequest { id: sid.clone() }))
        .await?
        .into_inner();
    let cost = ended
        .cost
        .as_ref()
        .and_then(|c| amount(c.amount.as_ref()))
        .context("the final cost")?;
    let paid = ended.payment.as_ref().context("payment")?;
    ensure!(
        ended.status() == pb::SessionStatus::Ended
            && ended.end_reason() == pb::EndReason::StoppedByApi
            && paid.status() == pb::PaymentStatus::Captured
            && cost > 0
            && amount(paid.captured.as_ref()) == Some(cost),
        "ended by the API, the final cost captured: {ended:?}"
    );
    ensure!(
        events.last().and_then(|e| e.session.as_ref()) == Some(&ended),
        "the last watched event carries the final session: {:?}",
        events.last()
    );
    captured_once(stack, &paid.stripe_intent_id, cost).await?;
    let listed = c
        .list(auth(&org.key, pb::ListRequest::default()))
        .await?
        .into_inner();
    ensure!(
        listed
            .sessions
            .iter()
            .any(|s| s.id == sid && s.status() == pb::SessionStatus::Ended),
        "List has the session: {listed:?}"
    );
    stack
        .assert_webhooks(&org, &hooks, &sid, &HAPPY_PATH_EVENTS)
        .await?;
    // The same events, by id, through both channels.
    let delivered: Vec<String> = stack
        .received(&hooks, &sid)
        .iter()
        .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
        .collect();
    let watched: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    ensure!(
        delivered == watched,
        "webhooks {delivered:?}, Watch {watched:?}"
    );
    Ok(())
}

async fn auto_stop_before_the_hold_is_passed(
    stack: &ProcessStack,
    ocpp: Ocpp,
) -> anyhow::Result<()> {
    // 360 USD/h = 10 cents a second against a 1.00 USD hold: stops after a few seconds.
    let org = stack
        .org(
            json!({"minimum_amount_to_start_session": 100}),
            json!([{"type": "TIME", "price": "360.00"}]),
        )
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim_speaking(&station, ocpp.0, &[]).await?;
    let hooks = stack.receiver(&org, &ocpp.name("hooks-autostop")).await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    stack.pay(&created).await?;
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(60), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    let cost = ended["cost"]["amount"].as_i64().context("cost")?;
    ensure!(ended["end_reason"] == "hold_limit", "{ended}");
    ensure!(
        cost > 0 && cost <= 100 && ended["payment"]["captured_amount"] == cost,
        "captured the final cost, never above the hold: {ended}"
    );
    captured_once(stack, &intent(&ended)?, cost).await?;
    // The rest of the hold is released: nothing is left capturable on the intent.
    let pi: Value = stack
        .http
        .get(format!(
            "{}/v1/payment_intents/{}",
            stack.sandbox,
            intent(&ended)?
        ))
        .bearer_auth("sk_test_chargelink_e2e")
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        pi["status"] == "succeeded"
            && pi["amount_received"] == cost
            && pi["amount_capturable"] == 0,
        "the intent after capture: {pi}"
    );
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.started",
                "session.ended",
                "session.payment.captured",
            ],
        )
        .await
}

/// Successful, non-replayed `increment_authorization` requests the sandbox saw for `intent`:
/// the new totals asked for.
async fn increments(stack: &ProcessStack, intent: &str) -> anyhow::Result<Vec<(u16, String)>> {
    let path = format!("/v1/payment_intents/{intent}/increment_authorization");
    Ok(stack
        .stripe_requests()
        .await?
        .iter()
        .filter(|r| r["path"] == path.as_str() && r["replayed"] == false)
        .map(|r| {
            let status = r["status"].as_u64().and_then(|s| u16::try_from(s).ok());
            let amount = r["params"]["amount"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (status.unwrap_or_default(), amount)
        })
        .collect())
}

/// Top-up: 360 USD/h against a 1.00 USD hold, the organization raising holds by 1.00 up to
/// 2.50. The card that allows it is raised twice (2.00, then the 2.50 ceiling), charges past
/// the first hold and is captured above it but within the raised hold; the card whose issuer
/// declines increments is asked once and stops on its 1.00 hold (`hold_limit`). The receiver,
/// which lists no events, gets exactly what it got before top-up existed.
async fn top_up_raises_the_hold_where_the_card_allows_it(
    stack: &ProcessStack,
) -> anyhow::Result<()> {
    let org = stack
        .org(
            json!({"minimum_amount_to_start_session": 100,
                   "top_up": {"ceiling": 250, "step": 100}}),
            json!([{"type": "TIME", "price": "360.00"}]),
        )
        .await?;
    let settings = stack.get("/organization", &org.key).await?;
    ensure!(
        settings["top_up"] == json!({"ceiling": 250, "step": 100}),
        "{settings}"
    );
    let station = stack.station(&org, 2).await?;
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-top-up").await?;
    let raised = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let declined = stack
        .create_session(&org, &station.connectors[1], json!({}))
        .await?;
    stack.pay(&raised).await?;
    stack
        .pay_with(&declined, stripe_sandbox::CARD_DECLINES_INCREMENTS)
        .await?;
    let mut ended = Vec::new();
    for session in [&raised, &declined] {
        let captured = |s: &Value| s["payment"]["status"] == "captured";
        let timeout = Duration::from_secs(90);
        ended.push(
            stack
                .wait_session(&org, &id(session), timeout, "captured", captured)
                .await?,
        );
    }
    let [raised, declined] =
        <[Value; 2]>::try_from(ended).map_err(|_| anyhow::anyhow!("two sessions"))?;

    let cost = raised["cost"]["amount"].as_i64().context("cost")?;
    ensure!(raised["end_reason"] == "hold_limit", "{raised}");
    ensure!(
        cost > 100 && cost <= 250 && raised["payment"]["authorized_amount"] == 250,
        "captured above the first hold, within the raised one: {raised}"
    );
    captured_once(stack, &intent(&raised)?, cost).await?;
    let asked = increments(stack, &intent(&raised)?).await?;
    ensure!(
        asked == [(200, "200".to_owned()), (200, "250".to_owned())],
        "two increments, to 2.00 then the ceiling: {asked:?}"
    );

    let cost = declined["cost"]["amount"].as_i64().context("cost")?;
    ensure!(declined["end_reason"] == "hold_limit", "{declined}");
    ensure!(
        cost > 0 && cost <= 100 && declined["payment"]["authorized_amount"] == 100,
        "stopped on the first hold: {declined}"
    );
    captured_once(stack, &intent(&declined)?, cost).await?;
    let asked = increments(stack, &intent(&declined)?).await?;
    ensure!(
        asked == [(402, "200".to_owned())],
        "asked once, declined: {asked:?}"
    );
    // The chaos run's money audit: every hold moved once, captured the cost, never above the
    // hold as the provider holds it (raised, for the first card).
    let audit =
        chargelink_tests::audit::audit_money(stack, &[raised.clone(), declined.clone()]).await?;
    ensure!(audit.clean(), "{}", audit.table());
    // The operator's log shows the increments; the receiver (no `events` list) gets none.
    let logged: Vec<Value> = stack.events(&org, &id(&raised)).await?;
    let increased: Vec<&Value> = logged
        .iter()
        .filter(|e| e["event"]["type"] == "session.payment.increased")
        .collect();
    ensure!(
        increased.len() == 2
            && increased[1]["event"]["data"]["payment"]["authorized_amount"] == 250,
        "/events: {logged:?}"
    );
    for session in [&raised, &declined] {
        stack
            .assert_webhooks(&org, &hooks, &id(session), &PAID_SESSION_EVENTS)
            .await?;
    }
    Ok(())
}

async fn an_energy_target_stops_the_session(stack: &ProcessStack) -> anyhow::Result<()> {
    // 10.00 USD/kWh against an 18.00 USD hold; the driver wants 0.05 kWh (50 Wh: 16 s at the
    // sim's 11 kW), so the target, not the hold, ends it.
    let org = stack
        .org(json!({}), json!([{"type": "ENERGY", "price": "10.00"}]))
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-target").await?;
    let created = stack
        .create_session(
            &org,
            &station.connectors[0],
            json!({"target": {"energy": 0.05}}),
        )
        .await?;
    ensure!(created["target"] == json!({"energy": 0.05}), "{created}");
    let sid = id(&created);
    stack.pay(&created).await?;
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(90), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    ensure!(ended["end_reason"] == "target_reached", "{ended}");
    ensure!(ended["stop"]["reason"] == "target_reached", "{ended}");
    // About the target: within a few seconds of energy at 11 kW (a reading a second) of it.
    let energy = ended["cost"]["details"]["energy_wh"]
        .as_i64()
        .context("energy")?;
    ensure!(
        (40..=70).contains(&energy),
        "delivered {energy} Wh for a 50 Wh target: {ended}"
    );
    let cost = ended["cost"]["amount"].as_i64().context("cost")?;
    ensure!(
        cost == energy && ended["payment"]["captured_amount"] == cost,
        "captured the energy delivered (1 cent per Wh), not the hold: {ended}"
    );
    captured_once(stack, &intent(&ended)?, cost).await?;
    stack
        .assert_webhooks(&org, &hooks, &sid, &PAID_SESSION_EVENTS)
        .await?;
    let received = stack.received(&hooks, &sid);
    let ended_event = received
        .iter()
        .find(|e| e["type"] == "session.ended")
        .context("session.ended delivered")?;
    ensure!(
        ended_event["end_reason"] == "target_reached",
        "the webhook says why: {ended_event}"
    );
    Ok(())
}

async fn parking_time_refuses_stop_and_unplug_ends_it(
    stack: &ProcessStack,
    ocpp: Ocpp,
) -> anyhow::Result<()> {
    // Parking: 36 USD/h = 1 cent a second while not charging (paused counts).
    let org = stack
        .org(
            json!({}),
            json!([{"type": "ENERGY", "price": "0.30"}, {"type": "PARKING_TIME", "price": "36.00"}]),
        )
        .await?;
    let station = stack.station(&org, 1).await?;
    stack
        .sim_speaking(&station, ocpp.0, &["--unplug-after", "8"])
        .await?;
    let hooks = stack.receiver(&org, &ocpp.name("hooks-parking")).await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    stack.pay(&created).await?;
    stack
        .wait_session(&org, &sid, Duration::from_secs(30), "started", |s| {
            s["status"] == "started"
        })
        .await?;
    let (status, refused) = stack
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{sid}/stop"),
            &org.key,
            None,
        )
        .await?;
    ensure!(
        (400..500).contains(&status) && refused.to_string().contains("stop_not_allowed"),
        "stop refused: {status} {refused}"
    );
    // Paused, the car stays parked until the driver unplugs.
    let paused = stack
        .post(&format!("/sessions/{sid}/pause"), &org.key, json!({}))
        .await?;
    ensure!(paused["status"] == "paused", "{paused}");
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(40), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    ensure!(ended["end_reason"] == "unplugged", "{ended}");
    let parking = ended["cost"]["details"]["parking_seconds"]
        .as_i64()
        .context("parking_seconds")?;
    let cost = ended["cost"]["amount"].as_i64().context("cost")?;
    ensure!(
        parking >= 3 && cost >= parking,
        "parking billed at 1 cent a second: {ended}"
    );
    ensure!(ended["payment"]["captured_amount"] == cost, "{ended}");
    captured_once(stack, &intent(&ended)?, cost).await?;
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.started",
                "session.paused",
                "session.ended",
                "session.payment.captured",
            ],
        )
        .await
}

async fn an_unpaid_session_expires(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 1).await?;
    // Sessions are only created on a connected station's working connector.
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-expiry").await?;
    let created = stack
        .create_session(
            &org,
            &station.connectors[0],
            json!({"target": {"payment_expiry_time": 2}}),
        )
        .await?;
    let sid = id(&created);
    let expired = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "expired", |s| {
            s["status"] == "expired"
        })
        .await?;
    ensure!(
        expired["payment"]["status"] == "expired" && expired["end_reason"] == "payment_expired",
        "{expired}"
    );
    // The page is closed at the provider: paying now is refused.
    let cs = expired["payment"]["stripe"]["checkout_session_id"]
        .as_str()
        .context("checkout id")?;
    let late = stack
        .http
        .post(format!("{}/_sandbox/checkout/{cs}/complete", stack.sandbox))
        .send()
        .await?;
    ensure!(
        !late.status().is_success(),
        "a late payment is refused: {}",
        late.status()
    );
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.expired",
            ],
        )
        .await
}

async fn the_driver_cancels_on_the_payment_page(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 1).await?;
    // Sessions are only created on a connected station's working connector.
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-cancel").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    // Where the hosted page's "back" link sends the driver.
    let page = stack
        .http
        .get(format!("{}/payments/{sid}/cancel", stack.api))
        .send()
        .await?
        .text()
        .await?;
    ensure!(page.contains("data-status=\"canceled\""), "{page}");
    let canceled = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "canceled", |s| {
            s["status"] == "canceled"
        })
        .await?;
    ensure!(canceled["end_reason"] == "driver_canceled", "{canceled}");
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.canceled",
            ],
        )
        .await
}

/// A paid session whose station never starts: the hold is released with one cancel.
async fn paid_but_not_started(
    stack: &ProcessStack,
    ocpp: Ocpp,
    sim_flag: &str,
    hooks_name: &str,
) -> anyhow::Result<()> {
    let org = stack
        .org(
            json!({"start_window": 5}),
            serde_json::from_str(ENERGY_AND_TIME)?,
        )
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim_speaking(&station, ocpp.0, &[sim_flag]).await?;
    let hooks = stack.receiver(&org, &ocpp.name(hooks_name)).await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    stack.pay(&created).await?;
    let canceled = stack
        .wait_session(&org, &sid, Duration::from_secs(40), "canceled", |s| {
            s["status"] == "canceled" && s["payment"]["status"] == "canceled"
        })
        .await?;
    ensure!(canceled["end_reason"] == "start_failed", "{canceled}");
    let (captures, cancels) = stack.money_moves(&intent(&canceled)?).await?;
    ensure!(
        captures.is_empty() && cancels == 1,
        "one cancel, no capture: {captures:?} {cancels}"
    );
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.canceled",
                "session.payment.canceled",
            ],
        )
        .await
}

async fn the_station_refuses_to_start(stack: &ProcessStack, ocpp: Ocpp) -> anyhow::Result<()> {
    paid_but_not_started(stack, ocpp, "--refuse-remote-start", "hooks-refused").await
}

async fn the_car_is_never_plugged_in(stack: &ProcessStack, ocpp: Ocpp) -> anyhow::Result<()> {
    paid_but_not_started(stack, ocpp, "--never-plugged-in", "hooks-unplugged").await
}

async fn webhooks_arrive_after_the_receiver_was_down(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-down").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    // The first events arrive; then the receiver goes away for the rest of the session.
    stack.take_receiver_down_after(&hooks, &sid, 2).await?;
    stack.pay(&created).await?;
    // Charged long enough that something is owed (1.20 USD/h: a cent every 30 s).
    stack
        .wait_session(&org, &sid, Duration::from_secs(60), "a cost", |s| {
            s["status"] == "started" && s["cost"]["amount"].as_i64() > Some(0)
        })
        .await?;
    stack
        .post(&format!("/sessions/{sid}/stop"), &org.key, json!({}))
        .await?;
    stack
        .wait_session(&org, &sid, Duration::from_secs(30), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    // Deliveries have been failing meanwhile.
    let log = stack.events(&org, &sid).await?;
    let failed_attempts: i64 = log
        .iter()
        .filter_map(|e| e["deliveries"][0]["last_error"].as_str().map(|_| 1))
        .sum();
    ensure!(
        failed_attempts >= 1,
        "deliveries failed while the receiver was down: {log:?}"
    );
    stack.restart(&hooks.name)?;
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.started",
                "session.ended",
                "session.payment.captured",
            ],
        )
        .await
}

/// Formats minor units of USD as the receipt does (`12.34 USD`).
fn usd(minor: i64) -> String {
    format!("{}.{:02} USD", minor / 100, minor % 100)
}

/// Issue #15, receipts: a session paid in a real browser, charged and stopped has a receipt
/// whose unguessable URL is in the session, in the `session.payment.captured` webhook and on
/// the payment return page; the HTML receipt (read in the browser) shows the energy, totals,
/// captured / released amounts and `visa •••• 4242`; the PDF renders with poppler and shows
/// the totals; a wrong token is 404, another organization's key is 404 on the JSON form, and a
/// session not settled yet is 409.
async fn a_receipt_after_the_capture(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(
            json!({"operator_name": "Receipt Charging GmbH", "tax_id": "DE123456789",
                   "operator_address": "Hauptstr. 1, 10115 Berlin"}),
            json!([{"type": "FLAT", "price": "0.50", "tax": "19"},
                   {"type": "ENERGY", "price": "0.30", "tax": "19"},
                   {"type": "TIME", "price": "1.20", "tax": "19"}]),
        )
        .await?;
    let station_id = format!("E2E-RCPT{}-1", &random_body()[..6].to_uppercase());
    let created = stack
        .post(
            "/charge-stations",
            &org.key,
            json!({"id": station_id, "name": "Receipt lane", "address": "Marktplatz 5, 10117 Berlin",
                   "connectors": [{"connector_id": 1, "rate": org.rate}]}),
        )
        .await?;
    let station = Station {
        id: station_id.clone(),
        password: created["ocpp"]["password"]
            .as_str()
            .context("password")?
            .to_owned(),
        connectors: vec![
            created["connectors"][0]["_id"]
                .as_str()
                .context("connector")?
                .to_owned(),
        ],
    };
    stack.sim(&station, &["--power-w", "22000"]).await?;
    let hooks = stack.receiver(&org, "hooks-receipt").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    ensure!(
        created["receipt_url"].is_null(),
        "no receipt before payment: {created}"
    );
    let url = created["payment"]["url"]
        .as_str()
        .context("payment url")?
        .to_owned();
    pay_in_a_real_browser(url, &sid).await?;
    stack
        .wait_session(&org, &sid, Duration::from_secs(30), "charging", |s| {
            s["status"] == "started" && s["cost"]["details"]["energy_wh"].as_i64() > Some(0)
        })
        .await?;
    let (status, early) = stack
        .call(
            reqwest::Method::GET,
            &format!("/sessions/{sid}/receipt"),
            &org.key,
            None,
        )
        .await?;
    ensure!(
        status == 409 && early["error"]["code"] == "session_not_settled",
        "a receipt before the capture: {status} {early}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ended = stack.stop_until_captured(&org, &sid).await?;
    let captured = ended["payment"]["captured_amount"]
        .as_i64()
        .context("captured")?;
    let energy_wh = ended["cost"]["details"]["energy_wh"]
        .as_i64()
        .context("energy")?;
    ensure!(
        captured > 50,
        "the flat fee and more were captured: {ended}"
    );

    // The URL: in the session, under the public URL, a 256-bit token unrelated to the id.
    let receipt_url = ended["receipt_url"]
        .as_str()
        .context("receipt_url")?
        .to_owned();
    let token = receipt_url
        .strip_prefix(&format!("{}/receipts/", stack.api))
        .with_context(|| format!("{receipt_url} is under the API's public URL"))?
        .to_owned();
    ensure!(
        token.len() == 4 + 64 && token.starts_with("rct_") && !token.contains(&sid[4..]),
        "an unguessable token: {token}"
    );
    // ... and in the captured webhook.
    stack
        .assert_webhooks(&org, &hooks, &sid, &PAID_SESSION_EVENTS)
        .await?;
    let events = stack.received(&hooks, &sid);
    for event in &events {
        let expected = match event["type"].as_str() {
            Some("session.payment.captured") => Value::from(receipt_url.as_str()),
            _ => Value::Null,
        };
        ensure!(
            event["receipt_url"] == expected,
            "the receipt URL only from the capture on: {event}"
        );
    }

    // The driver's view: the return page links the receipt, read in the browser.
    let page = format!("{}/payments/{sid}/success", stack.api);
    let seen = tokio::task::spawn_blocking(move || chargelink_tests::browser::read_receipt(&page))
        .await??;
    ensure!(
        seen["receipt_url"] == receipt_url.as_str(),
        "the return page links it: {seen}"
    );
    let field = |name: &str| seen["fields"][name].as_str().unwrap_or_default().to_owned();
    let expected_energy = format!("{}.{:03} kWh", energy_wh / 1000, energy_wh % 1000);
    ensure!(
        field("energy") == expected_energy,
        "energy {expected_energy}: {seen}"
    );
    ensure!(
        field("total-incl") == usd(captured),
        "total incl. VAT: {seen}"
    );
    ensure!(field("captured") == usd(captured), "captured: {seen}");
    ensure!(field("authorized") == usd(1800), "hold: {seen}");
    ensure!(
        field("released") == usd(1800 - captured),
        "released: {seen}"
    );
    ensure!(
        field("card") == "visa \u{2022}\u{2022}\u{2022}\u{2022} 4242",
        "card: {seen}"
    );
    ensure!(
        field("operator") == "Receipt Charging GmbH" && field("tax-id") == "DE123456789",
        "operator: {seen}"
    );
    ensure!(
        field("station-address") == "Marktplatz 5, 10117 Berlin",
        "station address: {seen}"
    );
    let lines = seen["lines"].as_array().context("lines")?;
    ensure!(
        lines.len() == 3 && lines.iter().all(|l| l[3] == "19 %"),
        "flat, energy and time, each with 19 % VAT: {seen}"
    );

    // The JSON form adds up; another organization cannot read it.
    let receipt = stack
        .get(&format!("/sessions/{sid}/receipt"), &org.key)
        .await?;
    ensure!(
        receipt["url"] == receipt_url.as_str() && receipt["card"]["brand"] == "visa",
        "{receipt}"
    );
    let sum = |key: &str| {
        receipt["lines"]
            .as_array()
            .map_or(0, |l| l.iter().filter_map(|l| l[key].as_i64()).sum::<i64>())
    };
    ensure!(
        sum("incl_vat") == captured
            && receipt["total_incl_vat"] == captured
            && sum("excl_vat") + sum("vat") == captured
            && receipt["total_vat"].as_i64() > Some(0)
            && receipt["released"] == 1800 - captured,
        "the lines add up to the capture: {receipt}"
    );
    let other = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let (status, body) = stack
        .call(
            reqwest::Method::GET,
            &format!("/sessions/{sid}/receipt"),
            &other.key,
            None,
        )
        .await?;
    ensure!(status == 404, "another organization: {status} {body}");

    // The PDF, as poppler renders it.
    let pdf = stack.http.get(format!("{receipt_url}.pdf")).send().await?;
    ensure!(
        pdf.status() == 200 && pdf.headers()["content-type"] == "application/pdf",
        "pdf: {pdf:?}"
    );
    let bytes = pdf.bytes().await?;
    ensure!(bytes.starts_with(b"%PDF-"), "a PDF");
    let file = stack.dir.join(format!("receipt-{sid}.pdf"));
    std::fs::write(&file, &bytes)?;
    let rendered = chargelink_tests::poppler::render_first_page(&file, &stack.dir.join("receipt"))?;
    ensure!(
        (rendered.width, rendered.height) == (595, 842) && rendered.ink > 2_000,
        "an A4 page with text on it: {rendered:?}"
    );
    let text = chargelink_tests::poppler::text(&file)?;
    for expected in [
        usd(captured),
        usd(1800 - captured),
        "visa".into(),
        "4242".into(),
        expected_energy,
    ] {
        ensure!(text.contains(&expected), "the PDF shows {expected}: {text}");
    }

    // A wrong token is not found, as HTML and as PDF.
    for wrong in ["rct_0000", &format!("{token}0"), &sid] {
        for suffix in ["", ".pdf"] {
            let res = stack
                .http
                .get(format!("{}/receipts/{wrong}{suffix}", stack.api))
                .send()
                .await?;
            ensure!(
                res.status() == 404,
                "/receipts/{wrong}{suffix}: {}",
                res.status()
            );
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let scenarios: Vec<(&'static str, Scenario)> = vec![
        ("happy_path_over_rest_with_a_browser_payment", |s| {
            Box::pin(happy_path_over_rest_with_a_browser_payment(s, V16))
        }),
        ("happy_path_over_rest_with_a_browser_payment_v201", |s| {
            Box::pin(happy_path_over_rest_with_a_browser_payment(s, V201))
        }),
        ("happy_path_over_grpc_with_a_browser_payment", |s| {
            Box::pin(happy_path_over_grpc_with_a_browser_payment(s))
        }),
        ("auto_stop_before_the_hold_is_passed", |s| {
            Box::pin(auto_stop_before_the_hold_is_passed(s, V16))
        }),
        ("auto_stop_before_the_hold_is_passed_v201", |s| {
            Box::pin(auto_stop_before_the_hold_is_passed(s, V201))
        }),
        ("top_up_raises_the_hold_where_the_card_allows_it", |s| {
            Box::pin(top_up_raises_the_hold_where_the_card_allows_it(s))
        }),
        ("an_energy_target_stops_the_session", |s| {
            Box::pin(an_energy_target_stops_the_session(s))
        }),
        ("parking_time_refuses_stop_and_unplug_ends_it", |s| {
            Box::pin(parking_time_refuses_stop_and_unplug_ends_it(s, V16))
        }),
        ("parking_time_refuses_stop_and_unplug_ends_it_v201", |s| {
            Box::pin(parking_time_refuses_stop_and_unplug_ends_it(s, V201))
        }),
        ("an_unpaid_session_expires", |s| {
            Box::pin(an_unpaid_session_expires(s))
        }),
        ("the_driver_cancels_on_the_payment_page", |s| {
            Box::pin(the_driver_cancels_on_the_payment_page(s))
        }),
        ("the_station_refuses_to_start", |s| {
            Box::pin(the_station_refuses_to_start(s, V16))
        }),
        ("the_station_refuses_to_start_v201", |s| {
            Box::pin(the_station_refuses_to_start(s, V201))
        }),
        ("the_car_is_never_plugged_in", |s| {
            Box::pin(the_car_is_never_plugged_in(s, V16))
        }),
        ("the_car_is_never_plugged_in_v201", |s| {
            Box::pin(the_car_is_never_plugged_in(s, V201))
        }),
        ("webhooks_arrive_after_the_receiver_was_down", |s| {
            Box::pin(webhooks_arrive_after_the_receiver_was_down(s))
        }),
        ("a_receipt_after_the_capture", |s| {
            Box::pin(a_receipt_after_the_capture(s))
        }),
    ];
    processes::run_scenarios(Path::new(env!("CARGO_BIN_EXE_chargelink")), &[], scenarios)
}
