//! What every libtest-mimic test binary of the workspace does around its trials: a tokio
//! runtime, a session worker with the recording stand-ins, and running the trials next to that
//! worker.

use std::path::Path;
use std::time::Duration;

use libtest_mimic::{Arguments, Conclusion, Trial};
use temporalio_sdk::{Worker, WorkerOptions};
use workflows::SessionWorkflow;

use crate::recording::{Behaviour, Recorder};

/// A multi-thread tokio runtime for a test binary's `main`; `None`, after saying why, when the
/// machine cannot give one (the binary then exits with a failure).
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            None
        }
    }
}

/// Options of a worker on `queue` running `SessionWorkflow` with the recording stand-ins
/// (journal at `journal`) and the real store activity, registered after them so that it
/// replaces their `record_session`. Register more real activities on the result to replace more
/// stand-ins.
pub fn recording_worker_options(
    queue: &str,
    journal: &Path,
    store: &store::Store,
) -> anyhow::Result<WorkerOptions> {
    Ok(WorkerOptions::new(queue.to_owned())
        .register_workflow::<SessionWorkflow>()?
        .register_activities(Recorder::new(
            journal.to_path_buf(),
            Behaviour::default(),
            queue.to_owned(),
        ))
        .register_activities(activities::store::StoreActivities::new(store.clone()))
        .graceful_shutdown_period(Duration::from_secs(2))
        .build())
}

/// Runs `trials` on blocking threads while `worker` runs on this task (its future is not
/// `Send`), then shuts the worker down. The trials enter the runtime through a handle.
pub async fn run_next_to_worker(
    args: Arguments,
    trials: Vec<Trial>,
    mut worker: Worker,
) -> anyhow::Result<Conclusion> {
    let shutdown = worker.shutdown_handle();
    let tests = tokio::task::spawn_blocking(move || libtest_mimic::run(&args, trials));
    let (worker_result, conclusion) = tokio::join!(worker.run(), async {
        let conclusion = tests.await;
        shutdown();
        conclusion
    });
    if let Err(e) = worker_result {
        eprintln!("worker: {e}");
    }
    Ok(conclusion?)
}
