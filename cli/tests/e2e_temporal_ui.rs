//! A finished session in the Temporal Web UI (issue #14), in a real browser: the stack runs on a
//! dev server with its UI on; after one paid session has been captured, headless chromium opens
//! the session's workflow page, waits for the history to render and saves a screenshot (its path
//! is printed). The page must show the workflow's static summary and details (user metadata set
//! at the start) and the summaries of its activities, so the history reads as the session's
//! story.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;

use anyhow::{Context, ensure};
use chargelink_tests::browser::temporal_ui_page;
use chargelink_tests::processes::{self, ProcessStack, Scenario, Temporal};
use domain::money::Money;
use serde_json::Value;

fn money(v: &Value) -> anyhow::Result<Money> {
    let amount = v["amount"].as_i64().context("amount")?;
    let currency = v["currency"].as_str().context("currency")?.parse()?;
    Ok(Money::new(amount, currency))
}

async fn a_finished_session_reads_as_its_story(stack: &ProcessStack) -> anyhow::Result<()> {
    let (org, station) = stack.charging_tenant().await?;
    let (sid, ended) = stack.paid_session(&org, &station.connectors[0]).await?;
    let payment = &ended["payment"];
    let hold = Money::new(
        payment["authorized_amount"].as_i64().context("hold")?,
        payment["currency"].as_str().context("currency")?.parse()?,
    );
    let cost = money(&ended["cost"])?;

    let ui = stack
        .server
        .ui
        .as_ref()
        .context("the dev server has no UI")?;
    let url = format!("{ui}namespaces/default/workflows/{sid}");
    let shot = std::env::temp_dir().join(format!("chargelink-temporal-ui-{sid}.png"));
    let summary = format!("Session {sid} on {} connector 1, hold {hold}", station.id);
    let views = [
        (
            // The history: activity and timer summaries (workflows::session) tell the story.
            "",
            vec![
                format!("locate {}", station.id),
                "remote start, attempt 1".to_owned(),
                "stop deadline".to_owned(),
                format!("capture {cost}"),
            ],
        ),
        (
            // The workflow's user metadata, set at its start, and its current details (from its
            // last record, answered by the metadata query).
            "User Metadata",
            vec![
                summary,
                format!("Station: {} connector 1", station.id),
                format!("Payment: Captured, hold {hold}, captured {cost}"),
            ],
        ),
    ];
    // The browser is a child process waited for: off the runtime's threads.
    let page = tokio::task::spawn_blocking({
        let (url, shot) = (url.clone(), shot.clone());
        move || temporal_ui_page(&url, &shot, &views)
    })
    .await??;
    for shot in page["shots"].as_array().context("shots")? {
        let shot = Path::new(shot.as_str().context("shot path")?);
        eprintln!("screenshot of {url}: {}", shot.display());
        ensure!(
            shot.metadata().map(|m| m.len()).unwrap_or(0) > 10_000,
            "no screenshot at {}",
            shot.display()
        );
    }
    let missing = page["missing"].as_array().context("missing")?;
    ensure!(
        missing.is_empty(),
        "the UI page lacks {missing:?} (found {}); its text:\n{}",
        page["found"],
        page["text"].as_str().unwrap_or_default()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let scenarios: Vec<(&'static str, Scenario)> =
        vec![("a_finished_session_reads_as_its_story", |s| {
            Box::pin(a_finished_session_reads_as_its_story(s))
        })];
    processes::run_scenarios_on(
        Path::new(env!("CARGO_BIN_EXE_chargelink")),
        &[],
        Temporal::WithUi,
        scenarios,
    )
}
