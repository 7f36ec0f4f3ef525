//! The operator's metrics end to end (issue #14): the stack of real processes with `/metrics` on
//! the API's port and `--metrics` on the worker and the gateway. One paid session runs (a
//! webhook receiver down meanwhile), a Stripe webhook is sent twice, a station sends an action
//! the gateway does not know and reconnects; then every family is scraped again and must have
//! moved, money to the minor unit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chargelink_tests::processes::{self, ProcessStack, Scenario};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One scrape: `(series, value)` per sample line (`name{labels}`).
struct Scrape(Vec<(String, f64)>);

impl Scrape {
    async fn of(stack: &ProcessStack, url: &str) -> anyhow::Result<Self> {
        let text = stack.http.get(url).send().await?.text().await?;
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Ok(Self(samples))
    }

    /// The sum of the samples of metric `name` (exactly, before `{`) whose labels contain every
    /// `labels` pair (`key="value"`).
    fn sum(&self, name: &str, labels: &[&str]) -> Option<f64> {
        let matching: Vec<f64> = self
            .0
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series, ""));
                n == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| *v)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }
}

/// Asserts that `name{labels}` exists after and grew by at least `by` since `before` (a
/// family absent before counts as 0 there).
fn moved(
    before: &Scrape,
    after: &Scrape,
    name: &str,
    labels: &[&str],
    by: f64,
) -> anyhow::Result<f64> {
    let now = after
        .sum(name, labels)
        .with_context(|| format!("{name}{labels:?} is not exported"))?;
    let then = before.sum(name, labels).unwrap_or(0.0);
    ensure!(
        now - then >= by,
        "{name}{labels:?} moved by {} (from {then} to {now}), expected at least {by}",
        now - then
    );
    Ok(now - then)
}

struct Scrapes {
    api: Scrape,
    worker: Scrape,
    gateway: Scrape,
}

async fn scrape_all(stack: &ProcessStack) -> anyhow::Result<Scrapes> {
    Ok(Scrapes {
        api: Scrape::of(stack, &format!("{}/metrics", stack.api)).await?,
        worker: Scrape::of(stack, &stack.worker_metrics).await?,
        gateway: Scrape::of(stack, &stack.gateway_metrics).await?,
    })
}

/// Opens a raw OCPP socket as `station`.
async fn ocpp_socket(
    stack: &ProcessStack,
    station: &str,
    password: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request = format!("{}/{station}", stack.ocpp).into_client_request()?;
    let credentials = base64(format!("{station}:{password}").as_bytes());
    let headers = request.headers_mut();
    headers.insert("Authorization", format!("Basic {credentials}").parse()?);
    headers.insert("Sec-WebSocket-Protocol", "ocpp1.6".parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A station that sends an action the gateway does not implement (answered with a CALLERROR),
/// then connects again (a reconnect).
async fn misbehaving_station(stack: &ProcessStack, id: &str, password: &str) -> anyhow::Result<()> {
    for attempt in 0..2 {
        let mut socket = ocpp_socket(stack, id, password).await?;
        socket
            .send(Message::text(format!(
                r#"[2,"m-{attempt}","NoSuchAction",{{}}]"#
            )))
            .await?;
        let answer = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await?
            .context("socket closed")??;
        let frame: Value = serde_json::from_str(answer.to_text()?)?;
        ensure!(
            frame[0] == 4 && frame[2] == "NotImplemented",
            "a CALLERROR NotImplemented: {frame}"
        );
        socket.close(None).await?;
    }
    Ok(())
}

/// The webhook the sandbox sent first for `session`'s checkout, sent again.
async fn resend_a_stripe_webhook(stack: &ProcessStack, checkout: &str) -> anyhow::Result<()> {
    let deliveries: Vec<Value> = stack
        .http
        .get(format!("{}/_sandbox/webhooks", stack.sandbox))
        .send()
        .await?
        .json()
        .await?;
    let event = deliveries
        .iter()
        .find(|d| d["object_id"] == checkout && d["status"] == "delivered")
        .with_context(|| format!("no delivered webhook for {checkout}: {deliveries:?}"))?;
    let id = event["event_id"].as_str().context("event id")?;
    let res = stack
        .http
        .post(format!("{}/_sandbox/webhooks/{id}/resend", stack.sandbox))
        .send()
        .await?;
    ensure!(res.status().is_success(), "resend: {}", res.status());
    Ok(())
}

async fn every_family_appears_and_moves(stack: &ProcessStack) -> anyhow::Result<()> {
    let before = scrape_all(stack).await?;
    // Families that exist before anything happened (rare events, at 0).
    for (scrape, name) in [
        (&before.api, "chargelink_stripe_webhook_duplicates_total"),
        (
            &before.worker,
            "chargelink_webhook_endpoints_disabled_total",
        ),
        (&before.worker, "chargelink_webhook_delivery_failures_total"),
        (&before.worker, "chargelink_sessions_created_total"),
        (&before.gateway, "chargelink_ocpp_reconnects_total"),
    ] {
        ensure!(scrape.sum(name, &[]).is_some(), "{name} missing at start");
    }

    let (org, station) = stack.charging_tenant().await?;
    let hooks = stack.receiver(&org, "hooks-metrics").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = created["_id"].as_str().context("id")?.to_owned();
    // The receiver goes away after the first events: deliveries fail until it is back.
    stack.take_receiver_down_after(&hooks, &sid, 2).await?;
    stack.pay(&created).await?;
    stack
        .wait_session(&org, &sid, Duration::from_secs(60), "a cost", |s| {
            s["status"] == "started" && s["cost"]["amount"].as_i64() > Some(0)
        })
        .await?;
    let ended = stack.stop_until_captured(&org, &sid).await?;
    stack.restart(&hooks.name)?;
    let checkout = ended["payment"]["stripe"]["checkout_session_id"]
        .as_str()
        .context("checkout id")?;
    resend_a_stripe_webhook(stack, checkout).await?;
    let spare = stack.station(&org, 1).await?;
    misbehaving_station(stack, &spare.id, &spare.password).await?;

    // Every event reaches the receiver once it is back; the duplicate is answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = scrape_all(stack).await?;
        let delivered = stack.received(&hooks, &sid).len() >= 6;
        let duplicate = after
            .api
            .sum("chargelink_stripe_webhook_duplicates_total", &[])
            .unwrap_or(0.0)
            > before
                .api
                .sum("chargelink_stripe_webhook_duplicates_total", &[])
                .unwrap_or(0.0);
        if delivered && duplicate {
            break after;
        }
        if Instant::now() > deadline {
            bail!(
                "deliveries or the duplicate webhook not seen: delivered {delivered}, duplicate {duplicate}"
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    let captured = ended["payment"]["captured_amount"]
        .as_i64()
        .context("captured")?;
    let hold = ended["payment"]["authorized_amount"]
        .as_i64()
        .context("hold")?;
    let currency = ended["payment"]["currency"].as_str().context("currency")?;
    let cur = format!("currency=\"{currency}\"");

    // API: requests, sessions by status, Stripe webhooks.
    let (a0, a1) = (&before.api, &after.api);
    all_moved(
        a0,
        a1,
        &[
            (
                "chargelink_http_requests_total",
                &[r#"route="/sessions""#, r#"status="201""#],
                1.0,
            ),
            (
                "chargelink_http_request_duration_seconds_count",
                &[r#"route="/sessions/{id}""#],
                1.0,
            ),
            (
                "chargelink_stripe_webhooks_received_total",
                &[r#"outcome="signalled""#],
                1.0,
            ),
            (
                "chargelink_stripe_webhooks_received_total",
                &[r#"outcome="duplicate""#],
                1.0,
            ),
            ("chargelink_stripe_webhook_duplicates_total", &[], 1.0),
        ],
    )?;
    ensure!(
        a1.sum("chargelink_sessions", &[r#"status="ended""#]) >= Some(1.0),
        "sessions by status: ended"
    );

    // Worker: sessions, payments, Stripe calls, customer webhooks, the Temporal SDK's own
    // worker metrics on the same port.
    let (w0, w1) = (&before.worker, &after.worker);
    all_moved(
        w0,
        w1,
        &[
            ("chargelink_sessions_created_total", &[], 1.0),
            (
                "chargelink_session_events_total",
                &[r#"type="session.started""#],
                1.0,
            ),
            (
                "chargelink_sessions_ended_total",
                &[r#"end_reason="stopped_by_api""#],
                1.0,
            ),
            (
                "chargelink_payments_total",
                &[r#"outcome="authorized""#],
                1.0,
            ),
            ("chargelink_payments_total", &[r#"outcome="captured""#], 1.0),
            ("chargelink_capture_hold_ratio_count", &[], 1.0),
            (
                "chargelink_stripe_requests_total",
                &[r#"operation="create_checkout""#, r#"result="ok""#],
                1.0,
            ),
            (
                "chargelink_stripe_requests_total",
                &[r#"operation="capture_intent""#, r#"result="ok""#],
                1.0,
            ),
            (
                "chargelink_stripe_request_duration_seconds_count",
                &[r#"operation="capture_intent""#],
                1.0,
            ),
            (
                "chargelink_webhook_delivery_attempts_total",
                &[r#"result="delivered""#],
                6.0,
            ),
            (
                "chargelink_webhook_delivery_attempts_total",
                &[r#"result="failed""#],
                1.0,
            ),
            ("chargelink_webhook_delivery_failures_total", &[], 1.0),
            ("chargelink_webhook_delivery_lag_seconds_count", &[], 6.0),
            ("temporal_activity_task_received_total", &[], 1.0),
            ("temporal_workflow_completed_total", &[], 1.0),
        ],
    )?;
    ensure!(
        w1.sum("chargelink_webhook_endpoints_disabled_total", &[])
            .is_some(),
        "disabled endpoints"
    );
    // Money to the minor unit: the capture, and the rest of the hold released.
    for (name, expected) in [
        ("chargelink_captured_minor_units_total", captured),
        ("chargelink_released_minor_units_total", hold - captured),
    ] {
        let got = moved(w0, w1, name, &[&cur], 0.0)?;
        #[allow(clippy::cast_precision_loss)]
        let expected = expected as f64;
        ensure!(
            got == expected,
            "{name} moved by {got}, the session says {expected}"
        );
    }

    // Gateway: stations, frames, CALLERRORs, reconnects, command round trips, reading latency.
    let (g0, g1) = (&before.gateway, &after.gateway);
    all_moved(
        g0,
        g1,
        &[
            ("chargelink_ocpp_connections_total", &[], 3.0),
            ("chargelink_ocpp_reconnects_total", &[], 1.0),
            (
                "chargelink_ocpp_frames_total",
                &[r#"direction="in""#, r#"action="MeterValues""#],
                1.0,
            ),
            (
                "chargelink_ocpp_frames_total",
                &[r#"direction="in""#, r#"action="other""#],
                2.0,
            ),
            (
                "chargelink_ocpp_frames_total",
                &[r#"direction="out""#, r#"action="RemoteStartTransaction""#],
                1.0,
            ),
            (
                "chargelink_ocpp_callerrors_total",
                &[r#"direction="out""#, r#"code="NotImplemented""#],
                2.0,
            ),
            (
                "chargelink_ocpp_command_duration_seconds_count",
                &[r#"action="RemoteStopTransaction""#, r#"result="answered""#],
                1.0,
            ),
            ("chargelink_meter_value_to_decision_seconds_count", &[], 1.0),
            ("temporal_activity_task_received_total", &[], 1.0),
        ],
    )?;
    ensure!(
        g1.sum("chargelink_ocpp_connected_stations", &[]) >= Some(1.0),
        "connected stations"
    );
    Ok(())
}

/// [`moved`] for each `(name, labels, by)`.
fn all_moved(
    before: &Scrape,
    after: &Scrape,
    cases: &[(&str, &[&str], f64)],
) -> anyhow::Result<()> {
    for (name, labels, by) in cases {
        moved(before, after, name, labels, *by)?;
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let scenarios: Vec<(&'static str, Scenario)> = vec![("every_family_appears_and_moves", |s| {
        Box::pin(every_family_appears_and_moves(s))
    })];
    processes::run_scenarios(Path::new(env!("CARGO_BIN_EXE_chargelink")), &[], scenarios)
}
