//! Crash safety with real processes: the worker and the gateway are killed with SIGKILL while
//! sessions are charging (and one is waiting for its payment), then started again. Every session
//! must finish with exactly one capture or one cancel at the Stripe sandbox (its request log),
//! never above the hold, and every webhook event must reach the receiver, in order, signed.
//! Its own stack: the kills would disturb the timing of the scenarios in `e2e.rs`. The stations
//! are a mixed fleet, OCPP 1.6 and 2.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use chargelink_tests::fixtures::PAID_SESSION_EVENTS;
use chargelink_tests::processes::{self, Org, ProcessStack};
use serde_json::{Value, json};

fn id(session: &Value) -> String {
    session["_id"].as_str().unwrap_or_default().to_owned()
}

/// Checks one finished session: one money movement, the capture equal to the final cost and
/// within the hold, every event received in order.
async fn check_finished(
    stack: &ProcessStack,
    org: &Org,
    receiver: &chargelink_tests::processes::Receiver,
    session: &Value,
) -> anyhow::Result<usize> {
    let sid = id(session);
    let intent = session["payment"]["stripe"]["intent_id"]
        .as_str()
        .context("intent")?;
    let (captures, cancels) = stack.money_moves(intent).await?;
    ensure!(
        captures.len() + cancels == 1,
        "{sid}: exactly one capture or cancel, got {} captures {captures:?} and {cancels} cancels",
        captures.len()
    );
    ensure!(
        captures.len() == 1,
        "{sid} was charged, so captured: {session}"
    );
    let cost = session["cost"]["amount"].as_i64().context("cost")?;
    let hold = session["payment"]["authorized_amount"]
        .as_i64()
        .context("hold")?;
    ensure!(
        session["payment"]["captured_amount"] == cost
            && captures[0]["params"]["amount_to_capture"] == cost.to_string().as_str()
            && cost <= hold,
        "{sid}: the capture is the final cost within the hold: {session} {}",
        captures[0]
    );
    stack
        .assert_webhooks_at_least_once(org, receiver, &sid, &PAID_SESSION_EVENTS)
        .await
}

async fn sessions_survive_sigkill_of_worker_and_gateway(
    stack: &ProcessStack,
) -> anyhow::Result<()> {
    // Auto-stopping sessions: 10 cents a second against a 2.00 USD hold.
    let auto = stack
        .org(
            json!({"minimum_amount_to_start_session": 200}),
            json!([{"type": "TIME", "price": "360.00"}]),
        )
        .await?;
    // Sessions stopped through the API.
    let manual = stack
        .org(
            json!({}),
            json!([{"type": "ENERGY", "price": "0.30"}, {"type": "TIME", "price": "36.00"}]),
        )
        .await?;
    // A mixed fleet: of each kind of session, one on an OCPP 1.6 station and one (or two) on
    // an OCPP 2.0.1 station.
    let auto_16 = stack.station(&auto, 1).await?;
    let auto_201 = stack.station(&auto, 1).await?;
    let manual_16 = stack.station(&manual, 1).await?;
    let manual_201 = stack.station(&manual, 2).await?;
    stack.sim_speaking(&auto_16, "1.6", &[]).await?;
    stack.sim_speaking(&auto_201, "2.0.1", &[]).await?;
    for (station, protocol) in [(&manual_16, "1.6"), (&manual_201, "2.0.1")] {
        stack
            .sim_speaking(station, protocol, &["--power-w", "22000"])
            .await?;
    }
    let auto_hooks = stack.receiver(&auto, "hooks-auto").await?;
    let manual_hooks = stack.receiver(&manual, "hooks-manual").await?;

    let mut auto_sessions = Vec::new();
    for c in auto_16.connectors.iter().chain(&auto_201.connectors) {
        auto_sessions.push(stack.create_session(&auto, c, json!({})).await?);
    }
    let mut manual_sessions = Vec::new();
    for c in manual_16.connectors.iter().chain(&manual_201.connectors) {
        manual_sessions.push(stack.create_session(&manual, c, json!({})).await?);
    }
    // The last one (on the 2.0.1 station) is paid only while the worker is down.
    let late = manual_sessions.pop().context("three manual sessions")?;
    for s in auto_sessions.iter().chain(&manual_sessions) {
        stack.pay(s).await?;
    }
    for (org, s) in auto_sessions
        .iter()
        .map(|s| (&auto, s))
        .chain(manual_sessions.iter().map(|s| (&manual, s)))
    {
        stack
            .wait_session(org, &id(s), Duration::from_secs(30), "charging", |s| {
                s["status"] == "started" && s["cost"]["details"]["energy_wh"].as_i64() > Some(0)
            })
            .await?;
    }

    // Mid-charging: both die without any shutdown path.
    stack.kill("worker")?;
    stack.kill("gateway")?;
    stack.pay(&late).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.restart("gateway")?;
    stack.restart("worker")?;
    stack.wait_gateway().await?;

    // The late session starts once the worker is back; then everything manual is stopped.
    stack
        .wait_session(
            &manual,
            &id(&late),
            Duration::from_secs(60),
            "charging",
            |s| s["status"] == "started" && s["cost"]["amount"].as_i64() > Some(0),
        )
        .await?;
    manual_sessions.push(late);
    for s in &manual_sessions {
        let sid = id(s);
        stack
            .wait_session(&manual, &sid, Duration::from_secs(30), "charging", |s| {
                s["status"] == "started"
            })
            .await?;
        stack
            .post(&format!("/sessions/{sid}/stop"), &manual.key, json!({}))
            .await?;
    }

    let mut duplicates = 0;
    for (org, hooks, s, reason) in auto_sessions
        .iter()
        .map(|s| (&auto, &auto_hooks, s, "hold_limit"))
        .chain(
            manual_sessions
                .iter()
                .map(|s| (&manual, &manual_hooks, s, "stopped_by_api")),
        )
    {
        let done = stack
            .wait_session(org, &id(s), Duration::from_secs(90), "finished", |s| {
                s["payment"]["status"] == "captured" || s["payment"]["status"] == "canceled"
            })
            .await?;
        ensure!(done["end_reason"] == reason, "{done}");
        duplicates += check_finished(stack, org, hooks, &done).await?;
    }
    eprintln!(
        "5 sessions (1.6 and 2.0.1 stations) finished after SIGKILL of worker and gateway; {duplicates} webhook events were delivered twice (at least once)"
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    // A station reconnects to a restarted gateway with backoff (up to ~13 s here): RemoteStop
    // attempts get 5 x 5 s, so a hold-limit stop is not given up while the station is away.
    processes::run_scenarios(
        Path::new(env!("CARGO_BIN_EXE_chargelink")),
        &[("CHARGELINK_STOP_CONFIRM_TIMEOUT", "5")],
        vec![("sessions_survive_sigkill_of_worker_and_gateway", |s| {
            Box::pin(sessions_survive_sigkill_of_worker_and_gateway(s))
        })],
    )
}
