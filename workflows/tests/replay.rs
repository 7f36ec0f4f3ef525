//! Replays the committed histories of real session runs against the current workflow code. A
//! change that would break a running session (a different command sequence) fails here.
//! Histories are recorded by `CHARGELINK_RECORD_HISTORIES=1 cargo test -p chargelink-tests
//! --test session_workflow`; record new ones when a new workflow shape ships (behind
//! `ctx.patched`), and keep the old ones.

use std::path::Path;

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::SessionWorkflow;

#[tokio::test]
async fn recorded_sessions_replay_on_current_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/histories exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    // Every scenario of the session test suite has a recorded history.
    assert!(
        files.len() >= 12,
        "expected at least 12 recorded histories, found {}",
        files.len()
    );

    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<SessionWorkflow>()
            .expect("register")
            .build(),
    )
    .expect("replayer");
    for file in files {
        let bytes = std::fs::read(&file).expect("read history");
        let history = WorkflowHistory::from_json(&bytes).expect("history decodes");
        if let Err(e) = replayer.replay_workflow(history).await {
            panic!("{} no longer replays: {e}", file.display());
        }
    }
}
