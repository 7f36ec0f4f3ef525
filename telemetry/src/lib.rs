//! chargelink's metrics: every family the processes record ([`sessions`], [`payments`],
//! [`stripe`], [`webhooks`], [`ocpp`], [`http`]), and the Prometheus text endpoint that serves
//! them ([`Exporter`]); and traces over OTLP ([`traces`]), on when an endpoint is configured.
//!
//! Recording goes through the `metrics` facade, so a library only calls the functions here (a
//! counter increment is a few atomic operations; without an installed recorder it is a no-op,
//! which is what unit tests get). A process that serves `/metrics` calls [`Exporter::install`]
//! once; the exporter renders its own families and appends the text of any extra source (the
//! Temporal SDK's own Prometheus registry, see `worker::temporal_runtime`), so one scrape of one
//! port gives the whole process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub mod http;
pub mod ocpp;
pub mod payments;
pub mod sessions;
pub mod stripe;
pub mod traces;
pub mod webhooks;

/// Extra text appended to a scrape (computed at scrape time), e.g. gauges read from the store.
pub type Source =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// The process's metrics endpoint: our recorder plus extra sources.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    sources: Vec<Source>,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets (seconds) for HTTP, Stripe and OCPP calls: 1 ms to 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Lag buckets (seconds) for webhook deliveries and meter values: 10 ms to 1 h.
const LAG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Captured / hold: how much of the hold auto-stop used (1.0 = all of it).
const RATIO_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 1.0, 1.05,
];

impl Exporter {
    /// Installs the global recorder (once per process; later calls share it) and describes
    /// every family, so each shows with its help text from the first scrape.
    pub fn install() -> Self {
        let handle = HANDLE
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Suffix("_lag_seconds".into()),
                            LAG_BUCKETS,
                        )
                    })
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full(sessions::METER_VALUE_TO_DECISION.into()),
                            LAG_BUCKETS,
                        )
                    })
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full(payments::CAPTURE_HOLD_RATIO.into()),
                            RATIO_BUCKETS,
                        )
                    });
                let recorder = match builder {
                    Ok(b) => b.build_recorder(),
                    // Only an empty bucket list fails; ours are constants.
                    Err(_) => PrometheusBuilder::new().build_recorder(),
                };
                let handle = recorder.handle();
                if metrics::set_global_recorder(recorder).is_err() {
                    tracing::warn!(
                        "a metrics recorder was already installed; /metrics may be empty"
                    );
                }
                describe();
                handle
            })
            .clone();
        Self {
            handle,
            sources: Vec::new(),
        }
    }

    /// Appends `source`'s text to every scrape.
    pub fn with_source(mut self, source: Source) -> Self {
        self.sources.push(source);
        self
    }

    /// Appends the Prometheus text served at `url` (e.g. the Temporal SDK's exporter on a
    /// loopback port) to every scrape; a failing fetch adds a comment, not an error.
    pub fn with_scraped(self, url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        self.with_source(Arc::new(move || {
            let (client, url) = (client.clone(), url.clone());
            Box::pin(async move {
                match client.get(&url).send().await {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(e) => format!("# scraping {url} failed: {e}\n"),
                }
            })
        }))
    }

    /// The whole scrape: our families, then each source's text. Sources run first, so one
    /// may also set gauges read at scrape time (sessions by status from the store).
    pub async fn render(&self) -> String {
        let mut extra = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            extra.push(source().await);
        }
        let mut text = self.handle.render();
        for part in extra.iter().filter(|p| !p.is_empty()) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(part);
        }
        text
    }

    /// `GET /metrics`, to merge into a process's own router.
    pub fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(scrape))
            .with_state(Arc::new(self))
    }

    /// Serves `GET /metrics` on `addr` until `shutdown` (worker and gateway: `--metrics`).
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "metrics endpoint stopped");
            }
        });
        tracing::info!(%bound, "metrics at /metrics");
        Ok(bound)
    }
}

async fn scrape(State(exporter): State<Arc<Exporter>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        exporter.render().await,
    )
}

fn describe() {
    sessions::describe();
    payments::describe();
    stripe::describe();
    webhooks::describe();
    ocpp::describe();
    http::describe();
}

/// Seconds as f64, for histograms.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
