//! Traces over OTLP end to end (issue #14): the stack of real processes exports to a small
//! OTLP/HTTP receiver in this test (`POST /v1/traces`, protobuf bodies decoded with
//! `opentelemetry-proto`). One paid session runs to its capture; then its spans must have
//! arrived from the api, the worker and the gateway, in one trace that starts at the API's
//! `POST /sessions` request and goes through the workflow's update-with-start, the workflow, the
//! Stripe checkout creation on the worker and the RemoteStart on the gateway; every parent of
//! that trace's spans must be in it (the context crossed every process), and each service's spans
//! name the session. The tools of the stack (simulated stations, the Stripe sandbox) get the same
//! environment and export nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::body::Bytes;
use axum::http::StatusCode;
use chargelink_tests::processes::{self, ProcessStack, Scenario};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    trace: String,
    id: String,
    parent: String,
    name: String,
    attributes: BTreeMap<String, String>,
}

impl Received {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// Every span received so far.
static SPANS: Mutex<Vec<Received>> = Mutex::new(Vec::new());
/// Export requests received (and whether any failed to decode).
static EXPORTS: Mutex<(usize, usize)> = Mutex::new((0, 0));

fn spans() -> Vec<Received> {
    SPANS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /v1/traces`: an OTLP/HTTP export (protobuf), answered like a collector.
async fn export(body: Bytes) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        EXPORTS.lock().unwrap_or_else(|p| p.into_inner()).1 += 1;
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/plain")],
            b"not an ExportTraceServiceRequest".to_vec(),
        );
    };
    let mut got = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = attributes(
            &resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                got.push(Received {
                    service: service.clone(),
                    trace: hex(&span.trace_id),
                    id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name,
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    EXPORTS.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
    SPANS.lock().unwrap_or_else(|p| p.into_inner()).extend(got);
    // An empty ExportTraceServiceResponse: everything accepted.
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        Vec::new(),
    )
}

/// Serves the receiver on `listener` on a thread of its own (it must be up before the stack
/// starts and outlive every trial).
fn start_receiver(listener: std::net::TcpListener) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("receiver runtime");
        runtime.block_on(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let app = axum::Router::new().route("/v1/traces", axum::routing::post(export));
            axum::serve(listener, app).await.expect("receiver");
        });
    });
}

/// The spans of trace `trace`.
fn of_trace<'a>(all: &'a [Received], trace: &str) -> Vec<&'a Received> {
    all.iter().filter(|s| s.trace == trace).collect()
}

/// What the session's trace must show; `Err` says what is still missing. The trace id, and the
/// paths from the Stripe call and the charger command up to the request.
fn session_trace_complete(
    all: &[Received],
    sid: &str,
) -> anyhow::Result<(String, Vec<Vec<String>>)> {
    let services: BTreeSet<&str> = all.iter().map(|s| s.service.as_str()).collect();
    for service in ["chargelink-api", "chargelink-worker", "chargelink-gateway"] {
        ensure!(
            services.contains(service),
            "no span from {service} yet (services: {services:?})"
        );
        ensure!(
            all.iter()
                .any(|s| s.service == service && s.attr("session_id") == Some(sid)),
            "no span of {service} carries session_id {sid}"
        );
    }
    let request = all
        .iter()
        .find(|s| {
            s.service == "chargelink-api"
                && s.name == "POST /sessions"
                && s.attr("session_id") == Some(sid)
        })
        .with_context(|| format!("no `POST /sessions` span with session_id {sid}"))?;
    ensure!(
        request.parent.chars().all(|c| c == '0') || request.parent.is_empty(),
        "the request span is the trace's root: {request:?}"
    );
    ensure!(
        request.attr("http.response.status_code") == Some("201")
            && request.attr("http.route") == Some("/sessions"),
        "the request span has its route and status: {request:?}"
    );
    let trace = of_trace(all, &request.trace);
    let find = |service: &str, name: &str| {
        trace
            .iter()
            .find(|s| s.service == service && s.name == name)
            .copied()
            .with_context(|| {
                let names: Vec<_> = trace
                    .iter()
                    .map(|s| format!("{}:{}", s.service, s.name))
                    .collect();
                format!("no {name} span of {service} in the request's trace: {names:?}")
            })
    };
    let start = find("chargelink-api", "UpdateWithStartWorkflow:session")?;
    ensure!(
        start.attr("temporalWorkflowID") == Some(sid),
        "the workflow start names the session's workflow: {start:?}"
    );
    find("chargelink-worker", "RunActivity:create_payment")?;
    let checkout = find("chargelink-worker", "stripe create_checkout")?;
    ensure!(
        checkout.attr("result") == Some("ok"),
        "the Stripe call's result: {checkout:?}"
    );
    find("chargelink-gateway", "RunActivity:remote_start")?;
    let command = find("chargelink-gateway", "ocpp RemoteStartTransaction")?;
    ensure!(
        command.attr("result") == Some("answered") && command.attr("action").is_some(),
        "the charger command's action and result: {command:?}"
    );
    // Every parent is in the trace: request -> create_session -> update-with-start (api) ->
    // workflow -> activity scheduling (worker) -> activities (worker, gateway) -> their calls.
    let ids: BTreeMap<&str, &Received> = trace.iter().map(|s| (s.id.as_str(), *s)).collect();
    let mut paths = Vec::new();
    for span in [checkout, command] {
        let mut at = span;
        let mut path = vec![format!("{}:{}", at.service, at.name)];
        while at.id != request.id {
            at = ids
                .get(at.parent.as_str())
                .copied()
                .with_context(|| format!("parent {} of {path:?} not received (yet)", at.parent))?;
            path.push(format!("{}:{}", at.service, at.name));
        }
        ensure!(
            path.iter()
                .any(|p| p == "chargelink-worker:RunWorkflow:session"),
            "the path to the request goes through the workflow: {path:?}"
        );
        paths.push(path);
    }
    Ok((request.trace.clone(), paths))
}

async fn a_sessions_spans_reach_the_collector(stack: &ProcessStack) -> anyhow::Result<()> {
    let (org, station) = stack.charging_tenant().await?;
    let (sid, _) = stack.paid_session(&org, &station.connectors[0]).await?;

    // The batch processors export every 200 ms (OTEL_BSP_SCHEDULE_DELAY); the workflow's own
    // span ends when the workflow does, a moment after the capture.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (trace, paths) = loop {
        let all = spans();
        match session_trace_complete(&all, &sid) {
            Ok(found) => break found,
            Err(e) if Instant::now() > deadline => {
                let (exports, bad) = *EXPORTS.lock().unwrap_or_else(|p| p.into_inner());
                bail!(
                    "{e:#} ({} spans in {exports} exports, {bad} undecodable)",
                    all.len()
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    let all = spans();
    let trace_spans = of_trace(&all, &trace);
    let by_service: BTreeMap<&str, usize> = trace_spans.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.service.as_str()).or_default() += 1;
        m
    });
    eprintln!(
        "session {sid}: trace {trace} has {} spans {by_service:?}; {} spans received in all",
        trace_spans.len(),
        all.len()
    );
    for path in paths {
        eprintln!("  {}", path.join(" <- "));
    }
    let (_, bad) = *EXPORTS.lock().unwrap_or_else(|p| p.into_inner());
    ensure!(bad == 0, "{bad} exports did not decode");
    // The tools (sim, stripe-sandbox, migrate) got the same environment and export nothing.
    let services: BTreeSet<&str> = all.iter().map(|s| s.service.as_str()).collect();
    ensure!(
        services == BTreeSet::from(["chargelink-api", "chargelink-gateway", "chargelink-worker"]),
        "only the api, the worker and the gateway export: {services:?}"
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("receiver port");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    start_receiver(listener);
    let scenarios: Vec<(&'static str, Scenario)> =
        vec![("a_sessions_spans_reach_the_collector", |s| {
            Box::pin(a_sessions_spans_reach_the_collector(s))
        })];
    processes::run_scenarios(
        Path::new(env!("CARGO_BIN_EXE_chargelink")),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
        scenarios,
    )
}
