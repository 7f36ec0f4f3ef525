//! The Temporal CLI as an operator's tool (issue #14), on the stack of real processes: a paid
//! session is found with `temporal workflow list --query` by its `ChargeStation`,
//! `SessionStatus`, `Organization` and `PaymentIntent` search attributes, and `temporal
//! workflow query --name explain` shows its live cost, hold and stop deadline while it charges,
//! and why it stopped once it has.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chargelink_tests::devserver::temporal_cli;
use chargelink_tests::processes::{self, ProcessStack, Scenario};
use serde_json::{Value, json};

/// Runs the Temporal CLI against the stack's dev server with `--output json`; its JSON answer.
fn temporal(stack: &ProcessStack, args: &[&str]) -> anyhow::Result<Value> {
    let address = format!(
        "{}:{}",
        stack.server.url.host_str().unwrap_or("127.0.0.1"),
        stack.server.url.port().unwrap_or(7233)
    );
    let out = std::process::Command::new(temporal_cli()?)
        .args(args)
        .args([
            "--address",
            &address,
            "--namespace",
            "default",
            "--output",
            "json",
        ])
        .output()?;
    ensure!(
        out.status.success(),
        "temporal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    // `workflow list` prints one JSON object per line or one array; accept both.
    serde_json::from_str(&text).or_else(|_| {
        Ok(Value::Array(
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
        ))
    })
}

/// The first object inside `v` (at any depth) with a `why` field: the query's result, however
/// the CLI wraps it.
fn explanation(v: &Value) -> Option<&Value> {
    match v {
        Value::Object(m) if m.contains_key("why") => Some(v),
        Value::Object(m) => m.values().find_map(explanation),
        Value::Array(a) => a.iter().find_map(explanation),
        _ => None,
    }
}

fn explain(stack: &ProcessStack, sid: &str) -> anyhow::Result<Value> {
    let answer = temporal(
        stack,
        &[
            "workflow",
            "query",
            "--workflow-id",
            sid,
            "--name",
            "explain",
        ],
    )?;
    explanation(&answer)
        .cloned()
        .with_context(|| format!("no explanation in {answer}"))
}

/// `temporal workflow list --query <query>` finds the workflow `sid` (visibility is eventually
/// consistent: retried for up to 15 s).
async fn found_by(stack: &ProcessStack, query: &str, sid: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = temporal(stack, &["workflow", "list", "--query", query])?;
        if listed.to_string().contains(&format!("\"{sid}\"")) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("`{query}` does not list {sid}: {listed}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Checkout creates the PaymentIntent only when the driver pays (README, "Running in
/// production"): `payment.stripe.intent_id` is null in the session and events before the
/// payment, and carries the same `pi_…` in the session and in every event from
/// `session.payment.authorized` on.
async fn intent_in_every_object_after_payment(
    stack: &ProcessStack,
    org: &processes::Org,
    sid: &str,
    intent: &str,
    charging: &Value,
) -> anyhow::Result<()> {
    ensure!(intent.starts_with("pi_"), "a PaymentIntent id: {intent}");
    ensure!(
        charging["payment"]["stripe"]["intent_id"] == intent,
        "GET /sessions while charging: {charging}"
    );
    let events = stack.events(org, sid).await?;
    let paid_at = events
        .iter()
        .position(|e| e["event"]["type"] == "session.payment.authorized")
        .context("no session.payment.authorized")?;
    ensure!(events.len() >= 6, "every event of the session: {events:?}");
    for (n, e) in events.iter().enumerate() {
        let got = &e["event"]["data"]["payment"]["stripe"]["intent_id"];
        let kind = &e["event"]["type"];
        if n < paid_at {
            ensure!(
                got.is_null(),
                "{kind} before the payment has no intent: {got}"
            );
        } else {
            ensure!(got == intent, "{kind} carries the intent {intent}: {got}");
        }
    }
    Ok(())
}

async fn an_operator_finds_and_explains_a_session(stack: &ProcessStack) -> anyhow::Result<()> {
    let (org, station) = stack.charging_tenant().await?;
    let organization = stack.get("/organization", &org.key).await?;
    let org_id = organization["_id"].as_str().context("organization id")?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = created["_id"].as_str().context("id")?.to_owned();
    stack.pay(&created).await?;
    let charging = stack
        .wait_session(&org, &sid, Duration::from_secs(60), "a cost", |s| {
            s["status"] == "started" && s["cost"]["amount"].as_i64() > Some(0)
        })
        .await?;

    // While it charges: the live cost, the hold, the stop deadline.
    let live = explain(stack, &sid)?;
    ensure!(live["status"] == "started", "{live}");
    ensure!(
        live["hold"]["amount"] == charging["payment"]["authorized_amount"],
        "the hold: {live}"
    );
    ensure!(
        live["cost"]["amount"].as_i64() > Some(0),
        "a live cost: {live}"
    );
    ensure!(live["stop_deadline"].is_string(), "a stop deadline: {live}");
    ensure!(
        live["why"]
            .as_str()
            .is_some_and(|w| w.contains("auto-stop at")),
        "{live}"
    );

    let ended = stack.stop_until_captured(&org, &sid).await?;

    // Once ended: why the stop was decided.
    let done = explain(stack, &sid)?;
    ensure!(
        done["stop"]["reason"] == "stopped_by_api" && done["end_reason"] == "stopped_by_api",
        "{done}"
    );
    ensure!(
        done["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("stop decided: stopped_by_api")),
        "{done}"
    );
    ensure!(
        done["cost"]["amount"] == ended["cost"]["amount"],
        "the final cost: {done}"
    );

    // Found by each search attribute.
    let intent = ended["payment"]["stripe"]["intent_id"]
        .as_str()
        .context("intent id")?;
    intent_in_every_object_after_payment(stack, &org, &sid, intent, &charging).await?;
    found_by(stack, &format!("ChargeStation = '{}'", station.id), &sid).await?;
    found_by(stack, "SessionStatus = 'ended'", &sid).await?;
    found_by(stack, &format!("Organization = '{org_id}'"), &sid).await?;
    found_by(stack, &format!("PaymentIntent = '{intent}'"), &sid).await?;
    Ok(())
}

/// `--log-format json` (any subcommand; here `migrate`) writes one JSON object per line;
/// the default stays readable text.
async fn logs_are_json_lines_with_log_format_json(stack: &ProcessStack) -> anyhow::Result<()> {
    let db = format!("sqlite://{}/logs.db?mode=rwc", stack.dir.display());
    let run = |format: &str| {
        std::process::Command::new(&stack.bin)
            .args(["--log-format", format, "migrate", "--database-url", &db])
            .env_clear()
            .env("RUST_LOG", "info")
            .output()
    };
    let json = run("json")?;
    ensure!(
        json.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&json.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(json.stderr)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("a log line that is not JSON")?;
    ensure!(
        lines
            .iter()
            .any(|l| l["message"] == "migrations applied" && l["level"] == "INFO"),
        "{lines:?}"
    );
    let text = String::from_utf8(run("text")?.stderr)?;
    let last = text.lines().last().unwrap_or_default();
    ensure!(
        last.contains("migrations applied") && serde_json::from_str::<Value>(last).is_err(),
        "{text}"
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let scenarios: Vec<(&'static str, Scenario)> = vec![
        ("an_operator_finds_and_explains_a_session", |s| {
            Box::pin(an_operator_finds_and_explains_a_session(s))
        }),
        ("logs_are_json_lines_with_log_format_json", |s| {
            Box::pin(logs_are_json_lines_with_log_format_json(s))
        }),
    ];
    processes::run_scenarios(Path::new(env!("CARGO_BIN_EXE_chargelink")), &[], scenarios)
}
