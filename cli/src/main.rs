//! `chargelink`: one binary, one subcommand per process of the stack.

mod telemetry;

use std::time::Duration;

use clap::{Parser, Subcommand};
use url::Url;

#[derive(Parser)]
#[command(
    name = "chargelink",
    version,
    about = "Pay-as-you-go EV charging with card holds, on Temporal"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
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

#[derive(Subcommand)]
enum Commands {
    /// Serve the REST API (sessions, admin resources, payment return pages, OpenAPI at /docs).
    Api {
        #[command(flatten)]
        temporal: TemporalArgs,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Address to listen on.
        #[arg(long, env = "CHARGELINK_API_ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Operator token for `/admin/*` (creating organizations); unset disables them.
        #[arg(long, env = "CHARGELINK_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Task queue of session workflows.
        #[arg(long, env = "CHARGELINK_TASK_QUEUE", default_value = workflows::queues::SESSIONS)]
        task_queue: String,
    },
    /// Price an OCPI 2.2.1 CDR's charging periods with a tariff; prints every total as JSON.
    Price {
        /// OCPI 2.2.1 tariff JSON file.
        #[arg(long)]
        tariff: std::path::PathBuf,
        /// OCPI 2.2.1 CDR JSON file (needs start/end_date_time, currency, charging_periods).
        #[arg(long)]
        cdr: std::path::PathBuf,
        /// IANA time zone of the location, for the tariff's local times.
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
    /// Apply the store's migrations and exit (the services also apply them at start).
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Run the session worker (workflows and their activities).
    Worker {
        #[command(flatten)]
        temporal: TemporalArgs,
        #[command(flatten)]
        database: DatabaseArgs,
        /// Task queue of session workflows.
        #[arg(long, env = "CHARGELINK_TASK_QUEUE", default_value = workflows::queues::SESSIONS)]
        task_queue: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    match run(Cli::parse()).await {
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
        Commands::Api {
            temporal,
            database,
            listen,
            admin_token,
            task_queue,
        } => {
            let store = store::Store::open(&database.database_url).await?;
            let client = worker::connect(&temporal.settings(), Duration::from_secs(60)).await?;
            let state = api::AppState {
                store,
                sessions: workflows::client::SessionClient::new(client, task_queue),
                config: api::ApiConfig {
                    admin_token,
                    timings: Default::default(),
                },
            };
            let listener = tokio::net::TcpListener::bind(listen).await?;
            tracing::info!(%listen, "API listening; docs at /docs");
            api::serve(listener, state, worker::shutdown_signal()).await?;
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
        Commands::Migrate { database } => {
            store::Store::open(&database.database_url).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Commands::Worker {
            temporal,
            database,
            task_queue,
        } => {
            let store = store::Store::open(&database.database_url).await?;
            let client = worker::connect(&temporal.settings(), Duration::from_secs(60)).await?;
            // The webhook dispatcher runs beside the worker, never inside a workflow.
            let dispatcher =
                activities::webhooks::Dispatcher::new(store.clone(), Default::default())?;
            let dispatching =
                tokio::spawn(async move { dispatcher.run(worker::shutdown_signal()).await });
            let store_activities = activities::store::StoreActivities::new(store);
            worker::run(client, &task_queue, move |options| {
                options.register_activities(store_activities);
            })
            .await?;
            dispatching.abort();
            Ok(())
        }
    }
}
