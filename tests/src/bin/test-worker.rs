//! A session worker with recording activities, as its own process, so tests can kill it
//! (SIGKILL) mid-session and start it again.

use std::path::PathBuf;

use chargelink_tests::recording::{Behaviour, Recorder};
use clap::Parser;
use temporalio_sdk::{Worker, WorkerOptions};
use workflows::SessionWorkflow;

#[derive(Parser)]
struct Args {
    /// Temporal frontend, e.g. http://127.0.0.1:7233.
    #[arg(long)]
    address: url::Url,
    /// Task queue for workflows and activities.
    #[arg(long)]
    task_queue: String,
    /// Journal file the activities append to.
    #[arg(long)]
    journal: PathBuf,
    /// Behaviour as JSON.
    #[arg(long, default_value = "{}")]
    behaviour: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let behaviour: Behaviour = serde_json::from_str(&args.behaviour)?;
    let client = chargelink_tests::devserver::connect(&args.address).await?;
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
    let options = WorkerOptions::new(args.task_queue.clone())
        .register_workflow::<SessionWorkflow>()?
        .register_activities(Recorder::new(args.journal, behaviour, args.task_queue))
        .build();
    let mut worker = Worker::new(&runtime, client, options)?;
    println!("ready");
    worker.run().await?;
    Ok(())
}
