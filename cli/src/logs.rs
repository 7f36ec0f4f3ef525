//! Structured logs: readable text by default, JSON lines with `--log-format json`
//! (`CHARGELINK_LOG_FORMAT=json`); the level comes from `RUST_LOG` (default `info`). With
//! traces on, the same spans also go to the OTLP collector (`telemetry::traces`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Readable lines.
    Text,
    /// One JSON object per line, span fields (`session_id`, ...) included.
    Json,
}

/// Installs the global subscriber once: the level filter, the log lines, and the traces layer
/// when `traces` is on. The filter applies to both, so `RUST_LOG` also picks the spans.
pub(crate) fn init(format: LogFormat, traces: Option<&telemetry::traces::Traces>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,temporalio_sdk_core=warn"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let lines = match format {
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
        LogFormat::Text => lines.boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(traces.map(telemetry::traces::Traces::layer))
        .init();
}
