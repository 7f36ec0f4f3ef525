//! Traces over OTLP: on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set,
//! off otherwise (no exporter, no layer, no Temporal plugin).
//!
//! [`Traces::from_env`] builds a tracer provider that batches spans to the collector over
//! OTLP/HTTP with protobuf bodies (`<endpoint>/v1/traces`; the standard `OTEL_EXPORTER_OTLP_*`
//! and `OTEL_BSP_*` variables apply), names the process with `service.name` (`OTEL_SERVICE_NAME`
//! overrides the default), and installs itself as the global provider, which the Temporal SDK's
//! OpenTelemetry plugin uses. [`Traces::layer`] turns the process's `tracing` spans into OTel
//! spans (with their fields, `session_id` among them, as attributes); entering one makes it the
//! current OTel context, so a Temporal client call made inside a span is its child.
//!
//! Replay: the provider takes its ids from [`WorkflowIdGenerator`], so a workflow's spans keep
//! their ids when it replays, and every processor is wrapped in [`WorkflowSpanProcessor`], so
//! nothing that starts during a replay is exported twice.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use temporalio_sdk::opentelemetry::{WorkflowIdGenerator, WorkflowSpanProcessor};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

/// The variables that turn traces on (the standard OTLP exporter ones).
pub const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("the OTLP span exporter: {0}")]
pub struct TracesError(String);

/// The process's tracer provider; flush it with [`Traces::shutdown`] before exiting.
#[derive(Debug, Clone)]
pub struct Traces {
    provider: SdkTracerProvider,
    service: String,
}

/// Makes `span` the root of a trace of its own while it stays where it is in the `tracing`
/// tree (its log lines keep the parents' fields): for work that arrives on a long-lived span,
/// such as a station's message on its WebSocket connection, so that a connection open for days
/// is not one endless trace. Call it before the span is first entered; a no-op with traces off.
pub fn new_trace(span: &tracing::Span) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    // Fails only without the OTel layer (traces off): nothing to detach then.
    let _ = span.set_parent(opentelemetry::Context::new());
}

/// Whether an OTLP endpoint is configured.
pub fn configured() -> bool {
    ENDPOINT_VARS
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

impl Traces {
    /// The provider when an OTLP endpoint is configured, `None` otherwise. `default_service` is
    /// `service.name` unless `OTEL_SERVICE_NAME` is set.
    pub fn from_env(default_service: &str) -> Result<Option<Self>, TracesError> {
        if !configured() {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| TracesError(e.to_string()))?;
        let service = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| default_service.to_owned());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(WorkflowSpanProcessor::new(
                BatchSpanProcessor::builder(exporter).build(),
            ))
            .with_id_generator(WorkflowIdGenerator::default())
            .with_resource(
                Resource::builder()
                    .with_service_name(service.clone())
                    .build(),
            )
            .build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        Ok(Some(Self { provider, service }))
    }

    /// The `service.name` spans are exported under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The `tracing` layer exporting this process's spans. The Temporal SDK's own `tracing`
    /// spans are left out: its OpenTelemetry plugin makes the Temporal spans, with the context
    /// that crosses processes (the SDK's spans would start unrelated traces of their own).
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("chargelink"))
            .with_filter(filter_fn(|meta| !meta.target().starts_with("temporalio")))
    }

    /// Exports what is still queued and stops the exporter (waits up to 5 s: it runs on the
    /// batch processor's own thread).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }
}
