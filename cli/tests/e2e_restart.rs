//! A restart of the whole stack, Temporal included (issue #17): every process is killed with
//! SIGKILL while sessions charge and one waits for its payment — the Temporal dev server
//! (history in its SQLite file), the Stripe sandbox (state in its file, as Stripe keeps
//! everything), worker, api, gateway and the simulated stations — then everything is started
//! again. The stations come back as freshly booted chargers without their transactions, as
//! after a power cut. Every charging session must end (`station_reset`) with one capture of
//! its cost up to the station's last reading, the waiting one must still be payable, and every
//! webhook must arrive in order. Its own stack: the restart would disturb other scenarios.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chargelink_tests::fixtures::PAID_SESSION_EVENTS;
use chargelink_tests::processes::{self, ProcessStack};
use serde_json::{Value, json};

fn id(session: &Value) -> String {
    session["_id"].as_str().unwrap_or_default().to_owned()
}

fn settled(s: &Value) -> bool {
    matches!(
        s["payment"]["status"].as_str(),
        Some("captured" | "canceled")
    )
}

async fn a_restart_of_the_whole_stack_ends_every_running_session(
    stack: &ProcessStack,
) -> anyhow::Result<()> {
    let energy_and_time = stack
        .org(
            json!({}),
            json!([{"type": "ENERGY", "price": "0.30"}, {"type": "TIME", "price": "36.00"}]),
        )
        .await?;
    // A PARKING_TIME rate: no stop through the API, yet the reset must end it.
    let parking = stack
        .org(
            json!({}),
            json!([{"type": "ENERGY", "price": "30.00"}, {"type": "PARKING_TIME", "price": "36.00"}]),
        )
        .await?;
    let station = stack.station(&energy_and_time, 3).await?;
    let parking_station = stack.station(&parking, 1).await?;
    stack.sim(&station, &["--power-w", "22000"]).await?;
    stack.sim(&parking_station, &[]).await?;
    let hooks = stack.receiver(&energy_and_time, "hooks").await?;
    let parking_hooks = stack.receiver(&parking, "hooks-parking").await?;

    let mut charging = Vec::new();
    for c in &station.connectors[..2] {
        charging.push((
            &energy_and_time,
            &hooks,
            stack.create_session(&energy_and_time, c, json!({})).await?,
        ));
    }
    charging.push((
        &parking,
        &parking_hooks,
        stack
            .create_session(&parking, &parking_station.connectors[0], json!({}))
            .await?,
    ));
    // Created before the restart, paid after it.
    let waiting = stack
        .create_session(&energy_and_time, &station.connectors[2], json!({}))
        .await?;
    for (_, _, s) in &charging {
        stack.pay(s).await?;
    }
    let paid_at = Instant::now();
    for (org, _, s) in &charging {
        stack
            .wait_session(org, &id(s), Duration::from_secs(30), "charging", |s| {
                s["status"] == "started" && s["cost"]["details"]["energy_wh"].as_i64() > Some(0)
            })
            .await?;
    }

    // Everything dies at once, as when `scripts/dev` loses its Temporal server.
    let before_kill = paid_at.elapsed();
    let names: Vec<String> = stack
        .process_names()
        .into_iter()
        .filter(|n| !n.starts_with("hooks"))
        .collect();
    for name in &names {
        stack.kill(name)?;
    }
    stack.server.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.server.restart().await?;
    for name in ["stripe-sandbox", "worker", "api", "gateway"] {
        stack.restart(name)?;
    }
    stack.wait_gateway().await?;
    for name in names.iter().filter(|n| n.starts_with("E2E-")) {
        stack.restart(name)?;
    }

    for (org, receiver, s) in &charging {
        let sid = id(s);
        let done = stack
            .wait_session(org, &sid, Duration::from_secs(90), "settled", settled)
            .await?;
        ensure!(
            done["end_reason"] == "station_reset",
            "the rebooted station lost the transaction: {done}"
        );
        stack.assert_settled_once(&done).await?;
        // Billed up to the last reading before the kill, not through the downtime.
        let billed = done["cost"]["details"]["charging_seconds"]
            .as_i64()
            .unwrap_or(i64::MAX);
        let limit = i64::try_from(before_kill.as_secs()).unwrap_or(i64::MAX) + 2;
        ensure!(
            billed <= limit,
            "{sid}: {billed} s billed, the station charged at most {limit} s: {done}"
        );
        stack
            .assert_webhooks_at_least_once(org, receiver, &sid, &PAID_SESSION_EVENTS)
            .await?;
    }

    // The session that waited for its payment is paid now, starts, and stops as usual.
    stack.pay(&waiting).await?;
    let sid = id(&waiting);
    stack
        .wait_session(
            &energy_and_time,
            &sid,
            Duration::from_secs(60),
            "charging",
            |s| s["status"] == "started",
        )
        .await?;
    stack
        .post(
            &format!("/sessions/{sid}/stop"),
            &energy_and_time.key,
            json!({}),
        )
        .await?;
    let done = stack
        .wait_session(
            &energy_and_time,
            &sid,
            Duration::from_secs(60),
            "settled",
            settled,
        )
        .await?;
    ensure!(done["end_reason"] == "stopped_by_api", "{done}");
    stack.assert_settled_once(&done).await?;
    stack
        .assert_webhooks_at_least_once(&energy_and_time, &hooks, &sid, &PAID_SESSION_EVENTS)
        .await
        .context("the session paid after the restart")?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    processes::run_scenarios_with(
        Path::new(env!("CARGO_BIN_EXE_chargelink")),
        &[],
        true,
        vec![(
            "a_restart_of_the_whole_stack_ends_every_running_session",
            |s| Box::pin(a_restart_of_the_whole_stack_ends_every_running_session(s)),
        )],
    )
}
