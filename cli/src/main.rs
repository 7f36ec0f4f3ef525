//! `chargelink`: one binary, one subcommand per process of the stack.

mod listen;
mod logs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use temporalio_sdk::runtime::{AutoscalingOptions, PollerBehavior};
use url::Url;

#[derive(Parser)]
#[command(
    name = "chargelink",
    version,
    about = "Pay-as-you-go EV charging with card holds, on Temporal"
)]
struct Cli {
    /// Log lines as readable `text` or as JSON objects (`json`, one per line, with the span
    /// fields such as `session_id`).
    #[arg(
        long,
        global = true,
        env = "CHARGELINK_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: logs::LogFormat,
    #[command(subcommand)]
    command: Commands,
}

#[derive(clap::Args, Clone)]
struct MetricsArgs {
    /// Serve Prometheus metrics at `http://<addr>/metrics` (this process's families and the
    /// Temporal SDK's worker metrics); unset serves none.
    #[arg(long = "metrics", env = "CHARGELINK_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

impl MetricsArgs {
    /// The Temporal runtime, and the metrics endpoint when asked for.
    async fn start(&self) -> anyhow::Result<temporalio_sdk::Runtime> {
        let (runtime, temporal) = worker::temporal_runtime(self.metrics_addr.is_some())?;
        if let Some(addr) = self.metrics_addr {
            let mut exporter = telemetry::Exporter::install();
            if let Some(url) = temporal {
                exporter = exporter.with_scraped(url);
            }
            exporter
                .serve(addr, worker::shutdown_signal())
                .await
                .with_context(|| format!("binding the metrics address {addr}"))?;
        }
        Ok(runtime)
    }
}

/// How many task polls a Temporal worker keeps open. Temporal's default (5 of each, with
/// autoscaling where the server offers it) starves a busy worker: every workflow task waits for
/// a poller to come back, which is queueing on top of the engine's own latency.
#[derive(clap::Args, Clone, Default)]
struct PollerArgs {
    /// Workflow task pollers: a number (at least 2), or `auto` for Temporal's poller autoscaling
    /// (1 to 100, starting at 5); unset keeps the SDK's default.
    #[arg(long, env = "CHARGELINK_WORKFLOW_POLLERS", value_parser = pollers)]
    workflow_pollers: Option<PollerBehavior>,
    /// Activity task pollers: a number, or `auto`; unset keeps the SDK's default.
    #[arg(long, env = "CHARGELINK_ACTIVITY_POLLERS", value_parser = pollers)]
    activity_pollers: Option<PollerBehavior>,
}

impl PollerArgs {
    /// Unset stays `None`, which is the SDK's own default.
    fn apply(&self, options: &mut temporalio_sdk::WorkerOptions) {
        options.workflow_task_poller_behavior = self.workflow_pollers;
        options.activity_task_poller_behavior = self.activity_pollers;
    }
}

fn pollers(text: &str) -> Result<PollerBehavior, String> {
    if text == "auto" {
        return Ok(PollerBehavior::Autoscaling(
            AutoscalingOptions::builder()
                .minimum(1)
                .maximum(100)
                .initial(5)
                .build(),
        ));
    }
    match text.parse::<usize>() {
        Ok(n) if n >= 2 => Ok(PollerBehavior::SimpleMaximum(n)),
        _ => Err(format!(
            "`{text}` is not a poller count: give a number of at least 2, or `auto`"
        )),
    }
}

#[derive(clap::Args, Clone)]
struct TemporalArgs {
    /// Temporal frontend address.
    #[arg(
        long,
        env = "CHARGELINK_TEMPORAL_ADDRESS",
        default_value = "http://127.0.0.1:7233"
    )]
    temporal_address: Url,
    /// Temporal namespace.
    #[arg(long, env = "CHARGELINK_TEMPORAL_NAMESPACE", default_value = "default")]
    temporal_namespace: String,
}

impl TemporalArgs {
    fn settings(&self) -> worker::TemporalSettings {
        worker::TemporalSettings {
            address: self.temporal_address.clone(),
            namespace: self.temporal_namespace.clone(),
            // The trace context rides along with workflow starts, updates, signals and
            // activities only when this process exports traces.
            traces: telemetry::traces::configured(),
        }
    }
}

#[derive(clap::Args, Clone)]
struct DatabaseArgs {
    /// Store: `sqlite://path.db?mode=rwc` (default, a file under .data/) or `postgres://...`.
    #[arg(
        long,
        env = "CHARGELINK_DATABASE_URL",
        default_value = "sqlite://.data/chargelink.db?mode=rwc"
    )]
    database_url: String,
}

#[derive(clap::Args, Clone)]
struct StripeArgs {
    /// Stripe secret key (`sk_test_...` / `sk_live_...`); unset = no payment activities here.
    #[arg(long, env = "CHARGELINK_STRIPE_SECRET_KEY", hide_env_values = true)]
    stripe_secret_key: Option<String>,
    /// Stripe API base; unset = the real Stripe. `http://127.0.0.1:12111` for the sandbox.
    #[arg(long, env = "CHARGELINK_STRIPE_API_BASE")]
    stripe_api_base: Option<Url>,
    /// Public URL of the API, for the payment pages' return links.
    #[arg(
        long,
        env = "CHARGELINK_PUBLIC_URL",
        default_value = domain::config::DEFAULT_PUBLIC_URL
    )]
    public_url: Url,
}

impl StripeArgs {
    /// The payment settings, when a key is set.
    fn settings(&self) -> Option<activities::payments::StripeSettings> {
        Some(activities::payments::StripeSettings {
            secret_key: self.stripe_secret_key.clone()?,
            api_base: self.stripe_api_base.clone(),
            public_base_url: self.public_url.clone(),
            request_timeout: Duration::from_secs(15),
        })
    }

    /// The card lookup receipts use, when a key is set.
    fn card_lookup(&self) -> anyhow::Result<Option<activities::payments::CardLookup>> {
        self.settings()
            .map(|s| activities::payments::CardLookup::new(&s))
            .transpose()
            .context("the Stripe client for receipts")
    }
}

/// Parses seconds (`10`, `0.5`) into a duration.
fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds (e.g. 10 or 0.5)"))
}

/// An OCPP version for `--protocol`: `1.6` or `2.0.1`.
fn ocpp_version(text: &str) -> Result<ocpp::Protocol, String> {
    ocpp::Protocol::parse(text).ok_or_else(|| format!("`{text}` is not 1.6 or 2.0.1"))
}

/// The durations fixed into each new session (`SessionTimings`); payment expiry and start window
/// come from the organization's settings. Seconds, fractions allowed.
#[derive(clap::Args, Clone)]
struct TimingArgs {
    /// The stations' meter value interval the workflow expects (the gateway pushes its own
    /// `--meter-interval`; keep them equal).
    #[arg(long = "session-meter-interval", env = "CHARGELINK_METER_INTERVAL", default_value = "60", value_parser = seconds)]
    meter_interval: Duration,
    /// How long a station takes to act on a stop; auto-stop looks this far ahead.
    #[arg(long, env = "CHARGELINK_STOP_LATENCY", default_value = "30", value_parser = seconds)]
    stop_latency: Duration,
    /// After an accepted RemoteStart, how long to wait for the transaction before trying again.
    #[arg(long, env = "CHARGELINK_START_ATTEMPT_TIMEOUT", default_value = "90", value_parser = seconds)]
    start_attempt_timeout: Duration,
    /// First pause between start attempts (doubles up to the maximum).
    #[arg(long, env = "CHARGELINK_START_RETRY_INITIAL", default_value = "5", value_parser = seconds)]
    start_retry_initial: Duration,
    /// Longest pause between start attempts.
    #[arg(long, env = "CHARGELINK_START_RETRY_MAX", default_value = "30", value_parser = seconds)]
    start_retry_max: Duration,
    /// After a RemoteStop, how long to wait for the station's stop before sending it again.
    #[arg(long, env = "CHARGELINK_STOP_CONFIRM_TIMEOUT", default_value = "120", value_parser = seconds)]
    stop_confirm_timeout: Duration,
    /// RemoteStop attempts before a session is ended on its last meter values.
    #[arg(long, env = "CHARGELINK_STOP_ATTEMPTS", default_value_t = 5)]
    stop_attempts: u32,
    /// How long a connector may stay Faulted or Unavailable during a transaction before the
    /// session is ended on the meter values from before the fault.
    #[arg(long, env = "CHARGELINK_FAULT_GRACE", default_value = "300", value_parser = seconds)]
    fault_grace: Duration,
    /// History events after which a charging session continues as a new workflow run.
    #[arg(long, env = "CHARGELINK_HISTORY_LIMIT", default_value_t = 2_000)]
    history_limit: u32,
}

impl TimingArgs {
    fn timings(&self) -> domain::config::SessionTimings {
        domain::config::SessionTimings {
            meter_interval: self.meter_interval,
            stop_latency: self.stop_latency,
            start_attempt_timeout: self.start_attempt_timeout,
            start_retry_initial: self.start_retry_initial,
            start_retry_max: self.start_retry_max,
            stop_confirm_timeout: self.stop_confirm_timeout,
            stop_attempts: self.stop_attempts,
            fault_grace: self.fault_grace,
            history_limit: self.history_limit,
            // Set per session from the organization (or the request).
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum Commands {
    /// Run the session worker: workflows, payment / store / station-lookup activities, and the
    /// customer webhook dispatcher.
    Worker {
        #[command(flatten)]
        temporal: TemporalArgs,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        stripe: StripeArgs,
        #[command(flatten)]
        metrics: MetricsArgs,
        /// Task queue of session workflows.
        #[arg(long, env = "CHARGELINK_TASK_QUEUE", default_value = workflows::queues::SESSIONS)]
        task_queue: String,
        /// First retry delay of a failed customer webhook delivery, seconds (doubles per attempt).
        #[arg(long, env = "CHARGELINK_WEBHOOK_RETRY_INITIAL", default_value = "5", value_parser = seconds)]
        webhook_retry_initial: Duration,
        /// Longest retry delay of a customer webhook delivery, seconds.
        #[arg(long, env = "CHARGELINK_WEBHOOK_RETRY_MAX", default_value = "3600", value_parser = seconds)]
        webhook_retry_max: Duration,
        /// Session workflows kept in memory between their tasks (Temporal's sticky cache). A
        /// session outside it replays its whole history on its next signal: size it to the live
        /// sessions one worker holds.
        #[arg(long, env = "CHARGELINK_MAX_CACHED_SESSIONS", default_value_t = 1000)]
        max_cached_sessions: usize,
        #[command(flatten)]
        pollers: PollerArgs,
    },
    /// Serve the REST API (sessions, admin resources, payment return pages, the Stripe webhook
    /// receiver, OpenAPI at /docs) and, on the same port, the gRPC `chargelink.v1.SessionService`
    /// with server reflection.
    Api {
        #[command(flatten)]
        temporal: TemporalArgs,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Address to listen on.
        #[arg(long, env = "CHARGELINK_API_ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Operator token for `/admin/*` (creating organizations); unset disables them.
        #[arg(long, env = "CHARGELINK_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Stripe webhook signing secret (`whsec_...`); unset disables `/stripe/webhook`.
        #[arg(long, env = "CHARGELINK_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
        stripe_webhook_secret: Option<String>,
        /// Receipts: the public URL, and the Stripe key the card on a receipt is asked with
        /// (unset: receipts show no card).
        #[command(flatten)]
        stripe: StripeArgs,
        /// Task queue of session workflows.
        #[arg(long, env = "CHARGELINK_TASK_QUEUE", default_value = workflows::queues::SESSIONS)]
        task_queue: String,
        #[command(flatten)]
        timings: TimingArgs,
        /// The most power a connector without its own `max_power_w` is assumed to deliver, W:
        /// auto-stop assumes it between meter readings so no hold is passed (350 kW, the most
        /// a CCS connector delivers, by default; 0 assumes only what stations report).
        #[arg(long, env = "CHARGELINK_DEFAULT_MAX_POWER", default_value_t = 350_000)]
        default_max_power: i64,
        /// Requests per second each API key may send (REST and gRPC); over it, 429 with
        /// `Retry-After`. 0 turns limits off.
        #[arg(long, env = "CHARGELINK_API_RATE_LIMIT", default_value_t = api::limits::RateLimiter::DEFAULT_PER_SECOND)]
        rate_limit: u32,
        /// Requests an API key may send at once before the rate applies.
        #[arg(long, env = "CHARGELINK_API_RATE_BURST", default_value_t = api::limits::RateLimiter::DEFAULT_BURST)]
        rate_burst: u32,
        /// Requests per second each client address may send to the public price routes (no
        /// key to count); over it, 429 with `Retry-After`. 0 turns the limit off.
        #[arg(long, env = "CHARGELINK_PUBLIC_RATE_LIMIT", default_value_t = api::limits::RateLimiter::DEFAULT_PUBLIC_PER_SECOND)]
        public_rate_limit: u32,
        /// Requests a client address may send at once to the public price routes.
        #[arg(long, env = "CHARGELINK_PUBLIC_RATE_BURST", default_value_t = api::limits::RateLimiter::DEFAULT_PUBLIC_BURST)]
        public_rate_burst: u32,
    },
    /// Run an OCPP 1.6J gateway (WebSocket CSMS + the worker for charger commands).
    Gateway {
        #[command(flatten)]
        temporal: TemporalArgs,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Address to listen on.
        #[arg(long, env = "CHARGELINK_GATEWAY_ADDR", default_value = "0.0.0.0:9000")]
        listen: SocketAddr,
        /// This gateway's id (unique per instance); its task queue is derived from it.
        #[arg(long, env = "CHARGELINK_GATEWAY_ID", default_value = "gw1")]
        instance_id: String,
        /// A JSON stations file instead of the store's charge stations.
        #[arg(long, env = "CHARGELINK_STATIONS_FILE")]
        stations_file: Option<PathBuf>,
        /// TLS certificate (PEM) for security profile 2.
        #[arg(long, env = "CHARGELINK_GATEWAY_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, env = "CHARGELINK_GATEWAY_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// CA certificate(s) (PEM) that sign station client certificates, for security
        /// profile 3: certificates presented are verified against it; stations without one
        /// (profiles 1 and 2) still connect.
        #[arg(long, env = "CHARGELINK_GATEWAY_TLS_CLIENT_CA", requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// MeterValueSampleInterval pushed to stations, seconds.
        #[arg(long, env = "CHARGELINK_METER_INTERVAL", default_value_t = 60)]
        meter_interval: u64,
        #[command(flatten)]
        metrics: MetricsArgs,
        #[command(flatten)]
        pollers: PollerArgs,
    },
    /// Run simulated charge stations that speak OCPP 1.6J over WebSocket.
    Sim {
        /// Central system URL, without the station id.
        #[arg(long, default_value = "ws://127.0.0.1:9000/ocpp")]
        url: String,
        /// How many stations.
        #[arg(long, default_value_t = 1)]
        stations: usize,
        /// Station ids are `<prefix><n>`.
        #[arg(long, default_value = "CP-SIM-")]
        id_prefix: String,
        /// The stations' Basic-auth key.
        #[arg(long, env = "CHARGELINK_SIM_KEY", hide_env_values = true)]
        key: String,
        /// Connectors per station.
        #[arg(long, default_value_t = 2)]
        connectors: u32,
        /// Charging power, W.
        #[arg(long, default_value_t = 11_000)]
        power_w: i64,
        /// Seconds between meter values.
        #[arg(long, default_value_t = 10)]
        meter_interval: u64,
        /// The OCPP version the stations speak: `1.6` or `2.0.1`.
        #[arg(long, default_value = "1.6", value_parser = ocpp_version)]
        protocol: ocpp::Protocol,
        /// Answer RemoteStartTransaction with `Rejected`.
        #[arg(long)]
        refuse_remote_start: bool,
        /// Accept RemoteStart but never see a car plugged in.
        #[arg(long)]
        never_plugged_in: bool,
        /// The driver unplugs this many seconds after a transaction started.
        #[arg(long, value_parser = seconds)]
        unplug_after: Option<Duration>,
        /// Lose power this many seconds after a transaction started: the station reboots and
        /// forgets its transactions.
        #[arg(long, value_parser = seconds)]
        reboot_after: Option<Duration>,
        /// On a reboot, send each lost transaction's StopTransaction (`PowerLoss`) after the
        /// boot, from the offline queue.
        #[arg(long)]
        stop_queued_on_reboot: bool,
        /// The connector faults this many seconds after a transaction started...
        #[arg(long, value_parser = seconds, requires = "fault_for")]
        fault_after: Option<Duration>,
        /// ...for this many seconds.
        #[arg(long, value_parser = seconds, requires = "fault_after")]
        fault_for: Option<Duration>,
        /// Accept RemoteStopTransaction and keep charging.
        #[arg(long)]
        ignore_remote_stop: bool,
        /// Drop the WebSocket this many seconds after a transaction started...
        #[arg(long, value_parser = seconds, requires = "offline_for")]
        drop_after: Option<Duration>,
        /// ...stay offline this long (queueing MeterValues and StopTransaction), then reconnect
        /// and send them.
        #[arg(long, value_parser = seconds, requires = "drop_after")]
        offline_for: Option<Duration>,
        /// Answer the central system's CALLs this many milliseconds late.
        #[arg(long, default_value_t = 0)]
        reply_delay_ms: u64,
        /// CA certificate (PEM) the gateway's TLS certificate chains to, for a `wss://` URL.
        #[arg(long, env = "CHARGELINK_SIM_TLS_CA")]
        tls_ca: Option<PathBuf>,
        /// The stations' client certificate (PEM), for security profile 3; `{id}` in the path
        /// is replaced by each station's id (one certificate per station).
        #[arg(long, env = "CHARGELINK_SIM_CLIENT_CERT", requires_all = ["client_key", "tls_ca"])]
        client_cert: Option<PathBuf>,
        /// The client certificate's private key (PEM); `{id}` as for `--client-cert`.
        #[arg(long, env = "CHARGELINK_SIM_CLIENT_KEY", requires = "client_cert")]
        client_key: Option<PathBuf>,
    },
    /// Run the Stripe-compatible sandbox (hosted checkout page, signed webhooks).
    StripeSandbox {
        /// Address to listen on.
        #[arg(
            long,
            env = "CHARGELINK_SANDBOX_ADDR",
            default_value = "127.0.0.1:12111"
        )]
        listen: SocketAddr,
        /// Where to POST signed webhook events (chargelink's `/stripe/webhook`).
        #[arg(long, env = "CHARGELINK_SANDBOX_WEBHOOK_URL")]
        webhook_url: Option<Url>,
        /// The webhook signing secret.
        #[arg(long, env = "CHARGELINK_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
        /// Base URL of the checkout pages it hands out.
        #[arg(long, env = "CHARGELINK_SANDBOX_PUBLIC_URL")]
        public_url: Option<Url>,
        /// Keep the state (checkouts, PaymentIntents, idempotency keys, the request log) in
        /// this JSON file across restarts; unset keeps it in memory only.
        #[arg(long, env = "CHARGELINK_SANDBOX_STATE")]
        state_file: Option<PathBuf>,
    },
    /// Price an OCPI 2.2.1 CDR's charging periods with a tariff; prints every total as JSON.
    Price {
        /// OCPI 2.2.1 tariff JSON file.
        #[arg(long)]
        tariff: PathBuf,
        /// OCPI 2.2.1 CDR JSON file (needs start/end_date_time, currency, charging_periods).
        #[arg(long)]
        cdr: PathBuf,
        /// IANA time zone of the location, for the tariff's local times.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
    /// Customer webhooks: `listen` runs a small receiver that verifies and prints every event.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Apply the store's migrations and exit (the services also apply them at start).
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Receive webhook events: verify `chargelink-signature`, print one line per event, answer
    /// 200 (a bad or missing signature is refused with 400 / 401 and a warning).
    Listen {
        /// Address to listen on; register `http://<this>/` with `POST /webhook-endpoints`.
        #[arg(
            long,
            env = "CHARGELINK_WEBHOOKS_LISTEN",
            default_value = "127.0.0.1:8787"
        )]
        listen: SocketAddr,
        /// The endpoint's signing secret (`whsec_...`, in the answer of `POST /webhook-endpoints`).
        #[arg(long, env = "CHARGELINK_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// Largest accepted distance between a signature's timestamp and now, seconds.
        #[arg(long, default_value_t = 300)]
        tolerance: i64,
        /// Print one JSON object per line instead of a readable line.
        #[arg(long)]
        json: bool,
        /// Answer verified events with this status instead of 200, without printing them (to
        /// see chargelink retry a failing endpoint).
        #[arg(long)]
        answer_status: Option<u16>,
        /// Wait this many milliseconds before answering (a slow endpoint).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

impl Commands {
    /// The `service.name` of the processes that export traces (`OTEL_SERVICE_NAME` overrides
    /// it); the tools (sim, sandbox, price, ...) export none.
    fn traced_service(&self) -> Option<&'static str> {
        match self {
            Commands::Api { .. } => Some("chargelink-api"),
            Commands::Worker { .. } => Some("chargelink-worker"),
            Commands::Gateway { .. } => Some("chargelink-gateway"),
            _ => None,
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let traces = match cli
        .command
        .traced_service()
        .map(telemetry::traces::Traces::from_env)
        .transpose()
    {
        Ok(traces) => traces.flatten(),
        Err(e) => {
            eprintln!("chargelink: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    logs::init(cli.log_format, traces.as_ref());
    if let Some(traces) = &traces {
        tracing::info!(service = traces.service(), "exporting traces over OTLP");
    }
    let outcome = run(cli).await;
    if let Some(traces) = traces {
        // Blocks until the batch processor's thread has sent what is queued.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line.
            eprintln!("chargelink: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Worker {
            temporal,
            database,
            stripe,
            metrics,
            task_queue,
            webhook_retry_initial,
            webhook_retry_max,
            max_cached_sessions,
            pollers,
        } => {
            let runtime = metrics.start().await?;
            let store = store::Store::open(&database.database_url).await?;
            let client = worker::connect(&temporal.settings(), Duration::from_secs(60)).await?;
            let payments = match stripe.settings() {
                Some(settings) => Some(activities::payments::PaymentActivities::new(&settings)?),
                None => {
                    tracing::warn!(
                        "no CHARGELINK_STRIPE_SECRET_KEY: this worker serves no payment activities"
                    );
                    None
                }
            };
            // The station registry the gateways keep, in the same database.
            let locator =
                ocpp::StationLocator::new(Arc::new(ocpp::StoreRegistry::new(store.clone())));
            // The webhook dispatcher runs beside the worker, never inside a workflow.
            let dispatcher = activities::webhooks::Dispatcher::new(
                store.clone(),
                activities::webhooks::WebhookSettings {
                    initial_backoff: webhook_retry_initial,
                    max_backoff: webhook_retry_max,
                    ..Default::default()
                },
            )?;
            let dispatching =
                tokio::spawn(async move { dispatcher.run(worker::shutdown_signal()).await });
            let store_activities = activities::store::StoreActivities::new(store)
                .with_public_url(stripe.public_url.clone());
            worker::run(&runtime, client, &task_queue, move |options| {
                options.max_cached_workflows = max_cached_sessions;
                pollers.apply(options);
                options
                    .register_activities(store_activities)
                    .register_activities(locator);
                if let Some(payments) = payments {
                    options.register_activities(payments);
                }
            })
            .await?;
            dispatching.abort();
            Ok(())
        }
        Commands::Api {
            temporal,
            database,
            listen,
            admin_token,
            stripe_webhook_secret,
            stripe,
            task_queue,
            timings,
            default_max_power,
            rate_limit,
            rate_burst,
            public_rate_limit,
            public_rate_burst,
        } => {
            let store = store::Store::open(&database.database_url).await?;
            let client = worker::connect(&temporal.settings(), Duration::from_secs(60)).await?;
            let state = api::AppState {
                store,
                sessions: workflows::client::SessionClient::new(client.clone(), task_queue),
                config: api::ApiConfig {
                    admin_token,
                    timings: timings.timings(),
                    default_max_power_w: (default_max_power > 0).then_some(default_max_power),
                    rate_limit: api::limits::RateLimiter::new(rate_limit, rate_burst),
                    public_rate_limit: api::limits::RateLimiter::new(
                        public_rate_limit,
                        public_rate_burst,
                    ),
                    receipts: api::receipts::ReceiptConfig {
                        public_url: stripe.public_url.to_string(),
                        cards: stripe.card_lookup()?,
                    },
                },
            };
            // gRPC (`chargelink.v1.SessionService` + reflection) shares the port: its paths never
            // collide with REST ones and the server speaks HTTP/2 (h2c) as well as HTTP/1.1.
            let exporter = telemetry::Exporter::install()
                .with_source(api::sessions_by_status(state.store.clone()));
            let mut app = grpc::with_rest(state).context("gRPC reflection descriptors")?;
            match stripe_webhook_secret {
                Some(secret) => {
                    app = app.merge(stripe_webhooks::router(stripe_webhooks::WebhookState::new(
                        client, secret,
                    )));
                }
                None => {
                    tracing::warn!("no CHARGELINK_STRIPE_WEBHOOK_SECRET: /stripe/webhook is off")
                }
            }
            // `/metrics` on the API's own port; every request counted by route and status.
            let app = app
                .merge(exporter.router())
                .layer(axum::middleware::from_fn(telemetry::http::track));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(%listen, "API listening (REST and gRPC); docs at /docs, metrics at /metrics");
            api::serve_app(listener, app, worker::shutdown_signal()).await?;
            Ok(())
        }
        Commands::Gateway {
            temporal,
            database,
            listen,
            instance_id,
            stations_file,
            tls_cert,
            tls_key,
            tls_client_ca,
            meter_interval,
            metrics,
            pollers,
        } => {
            let runtime = metrics.start().await?;
            let client = worker::connect(&temporal.settings(), Duration::from_secs(60)).await?;
            let mut config =
                ocpp::GatewayConfig::new(instance_id, stations_file.clone().unwrap_or_default());
            config.bind = listen;
            config.meter_sample_interval = Duration::from_secs(meter_interval);
            config.activity_pollers = pollers.activity_pollers;
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                config.tls = Some(ocpp::TlsPaths {
                    cert,
                    key,
                    client_ca: tls_client_ca,
                });
            }
            // The registry lives in the store's database, whichever directory checks the keys.
            let store = store::Store::open(&database.database_url).await?;
            let directory: Arc<dyn ocpp::StationDirectory> = match &stations_file {
                Some(file) => Arc::new(ocpp::FileStationDirectory::load(file)?),
                None => Arc::new(ocpp::StoreStationDirectory::new(store.clone())),
            };
            let registry = Arc::new(ocpp::StoreRegistry::new(store));
            let gateway = ocpp::Gateway::bind_with(config, directory, registry).await?;
            tracing::info!(addr = %gateway.local_addr(), task_queue = gateway.task_queue(), "OCPP gateway listening");
            gateway
                .run(&runtime, client, worker::shutdown_signal())
                .await
        }
        Commands::Sim {
            url,
            stations,
            id_prefix,
            key,
            connectors,
            power_w,
            meter_interval,
            protocol,
            refuse_remote_start,
            never_plugged_in,
            unplug_after,
            reboot_after,
            stop_queued_on_reboot,
            fault_after,
            fault_for,
            ignore_remote_stop,
            drop_after,
            offline_for,
            reply_delay_ms,
            tls_ca,
            client_cert,
            client_key,
        } => {
            let mut template = sim::StationSpec::new(url.clone(), "", key.clone());
            template.connectors = connectors;
            template.power_w = power_w;
            template.meter_interval = Duration::from_secs(meter_interval);
            template.protocol = protocol;
            template.behaviour.refuse_remote_start = refuse_remote_start;
            template.behaviour.never_plugged_in = never_plugged_in;
            template.behaviour.unplug_after = unplug_after;
            template.behaviour.reboot_after = reboot_after;
            template.behaviour.stop_queued_on_reboot = stop_queued_on_reboot;
            template.behaviour.fault = fault_after.zip(fault_for);
            template.behaviour.ignore_remote_stop = ignore_remote_stop;
            template.behaviour.drop_connection = drop_after.zip(offline_for);
            template.behaviour.reply_delay = Duration::from_millis(reply_delay_ms);
            template.tls = tls_ca.map(|ca| sim::SimTls {
                ca,
                client: client_cert.zip(client_key),
            });
            let config = sim::SimConfig {
                url,
                stations,
                id_prefix,
                key,
                template,
                ramp: Duration::from_millis(20),
            };
            tracing::info!(stations, "simulated charge stations starting");
            let states = sim::run(config, worker::shutdown_signal()).await;
            tracing::info!(stations = states.len(), "simulated charge stations stopped");
            Ok(())
        }
        Commands::StripeSandbox {
            listen,
            webhook_url,
            webhook_secret,
            public_url,
            state_file,
        } => {
            let config = stripe_sandbox::SandboxConfig {
                webhook_endpoint: webhook_url,
                webhook_secret,
                public_base_url: public_url,
                state_file,
                ..Default::default()
            };
            tracing::info!(%listen, "Stripe sandbox listening");
            stripe_sandbox::run(listen, config).await?;
            Ok(())
        }
        Commands::Price {
            tariff,
            cdr,
            time_zone,
        } => {
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
            };
            let priced = domain::tariff::price_cdr_json(&read(&tariff)?, &read(&cdr)?, &time_zone)?;
            println!("{}", serde_json::to_string_pretty(&priced)?);
            Ok(())
        }
        Commands::Webhooks {
            command:
                WebhooksCommand::Listen {
                    listen,
                    secret,
                    tolerance,
                    json,
                    answer_status,
                    delay_ms,
                },
        } => {
            listen::run(
                listen::ListenConfig {
                    listen,
                    secret,
                    tolerance_secs: tolerance,
                    json,
                    answer_status,
                    delay: Duration::from_millis(delay_ms),
                },
                worker::shutdown_signal(),
            )
            .await
        }
        Commands::Migrate { database } => {
            store::Store::open(&database.database_url).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
