//! The session worker: connects to Temporal and polls the sessions task queue, running
//! `SessionWorkflow` and the activities registered with it.
//!
//! # Layout
//! - [`TemporalSettings`] and [`connect`]: one place for the Temporal connection.
//! - [`run`]: registers the workflow, lets the caller register activities, runs until Ctrl-C or
//!   SIGTERM, then drains gracefully.

use std::time::Duration;

use anyhow::Context;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_sdk::opentelemetry::OpenTelemetryPlugin;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use url::Url;
use workflows::SessionWorkflow;

/// Where Temporal is.
#[derive(Debug, Clone)]
pub struct TemporalSettings {
    /// Frontend address with scheme, e.g. `http://127.0.0.1:7233`.
    pub address: Url,
    /// Namespace.
    pub namespace: String,
    /// Carry the OpenTelemetry context through Temporal (the SDK's plugin): client calls,
    /// workflows and activities become spans of the caller's trace. On when the process exports
    /// traces (`telemetry::traces`).
    pub traces: bool,
}

/// Connects, retrying for up to `patience` (the server may still be starting under compose).
pub async fn connect(settings: &TemporalSettings, patience: Duration) -> anyhow::Result<Client> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let attempt = Connection::connect(
            ConnectionOptions::new(settings.address.clone())
                .identity(format!("chargelink@{}", std::process::id()))
                .connect_timeout(Duration::from_secs(5))
                .build(),
        )
        .await;
        match attempt {
            Ok(connection) => {
                let options = ClientOptions::new(settings.namespace.clone());
                // On the client, the plugin also reaches every worker made from it: the
                // workflow interceptor (replay-safe span ids, nothing exported on replay) and
                // the activity interceptor that continues the workflow's trace.
                let options = if settings.traces {
                    options
                        .plugin(OpenTelemetryPlugin::builder().build())
                        .build()
                } else {
                    options.build()
                };
                return Ok(Client::new(connection, options)?);
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e)
                    .with_context(|| format!("cannot reach Temporal at {}", settings.address));
            }
            Err(e) => {
                tracing::warn!(address = %settings.address, error = %e, "Temporal not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The Temporal SDK runtime of a worker process. With `metrics`, the core SDK's own worker
/// metrics (poll latency, task slots, sticky cache, activity and workflow task counts, all
/// `temporal_*`) go to a Prometheus registry served on a loopback port; the URL returned is
/// appended to the process's `/metrics` (`telemetry::Exporter::with_scraped`), so operators
/// scrape one port.
pub fn temporal_runtime(metrics: bool) -> anyhow::Result<(Runtime, Option<String>)> {
    use temporalio_common::telemetry::{
        PrometheusExporterOptions, TelemetryOptions, start_prometheus_metric_exporter,
    };
    if !metrics {
        return Ok((Runtime::from_current_tokio(Default::default())?, None));
    }
    let exporter = start_prometheus_metric_exporter(
        PrometheusExporterOptions::builder()
            .socket_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .counters_total_suffix(true)
            .use_seconds_for_durations(true)
            .unit_suffix(true)
            .build(),
    )
    .context("starting the Temporal SDK's metrics exporter")?;
    let url = format!("http://{}/metrics", exporter.bound_addr);
    let meter: std::sync::Arc<dyn temporalio_common::telemetry::metrics::CoreMeter> =
        exporter.meter;
    let telemetry = TelemetryOptions::builder().metrics(meter).build();
    let options = temporalio_sdk::runtime::RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| anyhow::anyhow!("Temporal runtime options: {e}"))?;
    Ok((Runtime::from_current_tokio(options)?, Some(url)))
}

/// Runs the session worker on `task_queue` until Ctrl-C / SIGTERM. `register` adds the activity
/// implementations this process serves.
pub async fn run(
    runtime: &Runtime,
    client: Client,
    task_queue: &str,
    register: impl FnOnce(&mut WorkerOptions),
) -> anyhow::Result<()> {
    let mut options = WorkerOptions::new(task_queue)
        .register_workflow::<SessionWorkflow>()?
        .graceful_shutdown_period(Duration::from_secs(20))
        .build();
    register(&mut options);
    let mut worker = Worker::new(runtime, client, options)?;
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down the worker (draining for up to 20 s)");
        shutdown();
    });
    tracing::info!(task_queue, "session worker running");
    worker.run().await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
