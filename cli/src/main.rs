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

#[derive(Subcommand)]
enum Commands {
    /// Run the session worker (workflows and their activities).
    Worker {
        #[command(flatten)]
        temporal: TemporalArgs,
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
            tracing::error!(error.cause_chain = ?e, "{e:#}");
            eprintln!("chargelink: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Worker {
            temporal,
            task_queue,
        } => {
            let client = worker::connect(&temporal.settings(), Duration::from_secs(60)).await?;
            worker::run(client, &task_queue, |_options| {}).await
        }
    }
}
