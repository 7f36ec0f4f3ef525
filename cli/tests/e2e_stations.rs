//! Stations that misbehave, with real processes (issue #17): a station that reboots mid-session
//! (with and without its queued StopTransaction), a short and a long fault, and a station that
//! accepts the stop and keeps charging. Each session must end, with exactly one capture of its
//! final cost within the hold, no time billed after the station lost the transaction, and every
//! webhook delivered in order. One stack for the binary; each scenario has its own
//! organization, simulated station (`chargelink sim` with behaviour flags) and receiver.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use chargelink_tests::fixtures::PAID_SESSION_EVENTS;
use chargelink_tests::processes::{self, Org, ProcessStack, Receiver, Scenario};
use serde_json::{Value, json};

/// 0.30 USD/kWh and 36.00 USD/h: one cent a second, so time billed after the station lost
/// the transaction shows in the capture.
const ENERGY_AND_TIME: &str =
    r#"[{"type":"ENERGY","price":"0.30"},{"type":"TIME","price":"36.00"}]"#;

/// An organization with `rate`, a one-connector station run with `flags`, a receiver, and a
/// paid session on it that is charging.
async fn charging_session(
    stack: &ProcessStack,
    rate: &str,
    settings: Value,
    flags: &[&str],
    hooks: &str,
) -> anyhow::Result<(Org, Receiver, Value)> {
    let org = stack.org(settings, serde_json::from_str(rate)?).await?;
    let station = stack.station(&org, 1).await?;
    stack.sim(&station, flags).await?;
    let receiver = stack.receiver(&org, hooks).await?;
    let session = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    stack.pay(&session).await?;
    let sid = session["_id"].as_str().context("id")?.to_owned();
    let session = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "charging", |s| {
            s["status"] == "started"
        })
        .await?;
    Ok((org, receiver, session))
}

/// Waits until the session and its payment are final; the session then.
async fn finished(stack: &ProcessStack, org: &Org, session: &Value) -> anyhow::Result<Value> {
    let sid = session["_id"].as_str().context("id")?;
    stack
        .wait_session(org, sid, Duration::from_secs(60), "settled", |s| {
            matches!(
                s["payment"]["status"].as_str(),
                Some("captured" | "canceled")
            )
        })
        .await
}

/// The session ended for `reason`, its money moved once, every webhook arrived in order.
async fn ended_and_settled(
    stack: &ProcessStack,
    org: &Org,
    receiver: &Receiver,
    done: &Value,
    reason: &str,
) -> anyhow::Result<()> {
    ensure!(done["end_reason"] == reason, "end reason {reason}: {done}");
    stack.assert_settled_once(done).await?;
    let sid = done["_id"].as_str().context("id")?;
    stack
        .assert_webhooks(org, receiver, sid, &PAID_SESSION_EVENTS)
        .await
}

fn charging_seconds(session: &Value) -> i64 {
    session["cost"]["details"]["charging_seconds"]
        .as_i64()
        .unwrap_or(i64::MAX)
}

async fn a_station_that_reboots_ends_the_session_on_its_last_reading(
    stack: &ProcessStack,
) -> anyhow::Result<()> {
    let (org, hooks, session) = charging_session(
        stack,
        ENERGY_AND_TIME,
        json!({}),
        &["--reboot-after", "3"],
        "hooks-reboot",
    )
    .await?;
    let done = finished(stack, &org, &session).await?;
    ended_and_settled(stack, &org, &hooks, &done, "station_reset").await?;
    // The reboot came 3 s in (a reading every second): nothing after the last reading is
    // billed, although the session waited for a StopTransaction that never came.
    ensure!(
        charging_seconds(&done) <= 4,
        "time billed after the station lost the transaction: {done}"
    );
    let txs = stack
        .transactions(done["_id"].as_str().unwrap_or(""))
        .await?;
    ensure!(
        txs.len() == 1 && txs[0].stop_reason.as_deref() == Some("chargelink:station_reset"),
        "the registry's transaction is closed by chargelink: {txs:?}"
    );
    Ok(())
}

async fn a_stop_transaction_queued_before_the_reboot_wins(
    stack: &ProcessStack,
) -> anyhow::Result<()> {
    let (org, hooks, session) = charging_session(
        stack,
        ENERGY_AND_TIME,
        json!({}),
        &["--reboot-after", "3", "--stop-queued-on-reboot"],
        "hooks-queued-stop",
    )
    .await?;
    let done = finished(stack, &org, &session).await?;
    ended_and_settled(stack, &org, &hooks, &done, "station_reset").await?;
    let txs = stack
        .transactions(done["_id"].as_str().unwrap_or(""))
        .await?;
    ensure!(
        txs.len() == 1 && txs[0].stop_reason.as_deref() == Some("PowerLoss"),
        "the station's own StopTransaction is the stop: {txs:?}"
    );
    let delivered = txs[0].meter_stop.context("meter stop")? - txs[0].meter_start;
    ensure!(
        done["cost"]["details"]["energy_wh"] == delivered,
        "billed on the station's StopTransaction ({delivered} Wh): {done}"
    );
    Ok(())
}

async fn a_short_fault_does_not_end_the_session(stack: &ProcessStack) -> anyhow::Result<()> {
    let (org, hooks, session) = charging_session(
        stack,
        ENERGY_AND_TIME,
        json!({}),
        &["--fault-after", "1", "--fault-for", "1"],
        "hooks-blip",
    )
    .await?;
    let sid = session["_id"].as_str().context("id")?;
    // Past the fault and the fault grace (3 s): still charging.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now = stack.get(&format!("/sessions/{sid}"), &org.key).await?;
    ensure!(
        now["status"] == "started",
        "a short fault is not the end: {now}"
    );
    stack
        .post(&format!("/sessions/{sid}/stop"), &org.key, json!({}))
        .await?;
    let done = finished(stack, &org, &session).await?;
    ended_and_settled(stack, &org, &hooks, &done, "stopped_by_api").await
}

async fn a_long_fault_ends_the_session(stack: &ProcessStack) -> anyhow::Result<()> {
    let (org, hooks, session) = charging_session(
        stack,
        ENERGY_AND_TIME,
        json!({}),
        &["--fault-after", "2", "--fault-for", "120"],
        "hooks-fault",
    )
    .await?;
    let done = finished(stack, &org, &session).await?;
    ended_and_settled(stack, &org, &hooks, &done, "station_fault").await?;
    ensure!(
        charging_seconds(&done) <= 3,
        "nothing billed after the fault began (2 s in): {done}"
    );
    Ok(())
}

async fn a_station_that_ignores_the_stop_still_ends_within_the_hold(
    stack: &ProcessStack,
) -> anyhow::Result<()> {
    // 10 cents a second against a 2.00 USD hold: auto-stop at ~19 s, ignored by the station.
    let (org, hooks, session) = charging_session(
        stack,
        r#"[{"type":"TIME","price":"360.00"}]"#,
        json!({"minimum_amount_to_start_session": 200}),
        &["--ignore-remote-stop"],
        "hooks-ignore",
    )
    .await?;
    let done = finished(stack, &org, &session).await?;
    ended_and_settled(stack, &org, &hooks, &done, "station_unresponsive").await?;
    ensure!(
        done["stop"]["attempts"].as_u64() >= Some(2) && done["stop"]["reason"] == "hold_limit",
        "the stop was sent again before giving up: {}",
        done["stop"]
    );
    let over = done["cost"]["details"]["amount"]["amount"]
        .as_i64()
        .unwrap_or(0)
        - 200;
    ensure!(over > 0, "the station kept charging past the hold: {done}");
    let station = done["chargestation"].as_str().unwrap_or_default();
    let logged = stack.log("worker").lines().any(|l| {
        l.contains("overran the hold")
            && l.contains(station)
            && l.contains(&format!("overrun_minor={over}"))
    });
    ensure!(logged, "the worker logs which station overran by how much");
    Ok(())
}

fn main() -> std::process::ExitCode {
    // A stop is given up after two RemoteStop attempts, 3 s apart.
    processes::run_scenarios(
        Path::new(env!("CARGO_BIN_EXE_chargelink")),
        &[("CHARGELINK_STOP_ATTEMPTS", "2")],
        vec![
            (
                "a_station_that_reboots_ends_the_session_on_its_last_reading",
                (|s| {
                    Box::pin(a_station_that_reboots_ends_the_session_on_its_last_reading(
                        s,
                    ))
                }) as Scenario,
            ),
            ("a_stop_transaction_queued_before_the_reboot_wins", |s| {
                Box::pin(a_stop_transaction_queued_before_the_reboot_wins(s))
            }),
            ("a_short_fault_does_not_end_the_session", |s| {
                Box::pin(a_short_fault_does_not_end_the_session(s))
            }),
            ("a_long_fault_ends_the_session", |s| {
                Box::pin(a_long_fault_ends_the_session(s))
            }),
            (
                "a_station_that_ignores_the_stop_still_ends_within_the_hold",
                |s| {
                    Box::pin(a_station_that_ignores_the_stop_still_ends_within_the_hold(
                        s,
                    ))
                },
            ),
        ],
    )
}
