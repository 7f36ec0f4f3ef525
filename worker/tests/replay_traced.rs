//! The committed session histories replay with the OpenTelemetry plugin installed as the
//! worker installs it (`TemporalSettings::traces`): its workflow interceptor changes no command,
//! and a replay exports no workflow span (they were exported when the workflow first ran, under
//! the same ids from `WorkflowIdGenerator`).

#![allow(clippy::expect_used, reason = "a panic in a test is a failed test")]

use std::path::Path;

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
use temporalio_client::WorkflowHistory;
use temporalio_sdk::opentelemetry::{
    OpenTelemetryPlugin, WorkflowIdGenerator, WorkflowSpanProcessor,
};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::SessionWorkflow;

#[tokio::test]
async fn recorded_sessions_replay_with_the_tracing_plugin() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(WorkflowSpanProcessor::new(SimpleSpanProcessor::new(
            exporter.clone(),
        )))
        .with_id_generator(WorkflowIdGenerator::default())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/tests/histories");
    let mut files: Vec<_> = ["v1", "v2", "v3", "v4", "v5"]
        .iter()
        .flat_map(|shape| std::fs::read_dir(dir.join(shape)).expect("histories/<shape>"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 75, "75 histories, found {}", files.len());

    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<SessionWorkflow>()
            .expect("register")
            .worker_plugin(OpenTelemetryPlugin::builder().build())
            .build(),
    )
    .expect("replayer");
    for file in &files {
        let bytes = std::fs::read(file).expect("read history");
        let history = WorkflowHistory::from_json(&bytes).expect("history decodes");
        if let Err(e) = replayer.replay_workflow(history).await {
            panic!("{} does not replay with the plugin: {e}", file.display());
        }
    }
    // The pipeline does export: a span outside any workflow goes through.
    {
        use opentelemetry::trace::{Span as _, Tracer as _};
        opentelemetry::global::tracer("test").start("control").end();
    }
    provider.force_flush().expect("flush");
    let exported: Vec<String> = exporter
        .get_finished_spans()
        .expect("spans")
        .into_iter()
        .map(|s| s.name.into_owned())
        .collect();
    assert_eq!(
        exported,
        ["control"],
        "a replay exported workflow spans (only the control span may be there)"
    );
}
