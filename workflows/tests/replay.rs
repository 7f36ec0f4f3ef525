//! Replays the committed histories of real session runs against the current workflow code. A
//! change that would break a running session (a different command sequence) fails here.
//! Histories are recorded by `CHARGELINK_RECORD_HISTORIES=1 cargo test -p chargelink-tests
//! --test session_workflow` (into `histories/v5`); record new ones when a new workflow shape
//! ships (behind `ctx.patched`), and keep the old ones (`histories/v1`: before `charge-v2`;
//! `v2`: before `payment-intent-search`; `v3`: before `local-store-and-lookup`; `v4`: before
//! `energy-target`).

use std::path::Path;

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::SessionWorkflow;

#[tokio::test]
async fn recorded_sessions_replay_on_current_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let histories = |shape: &str| -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(shape))
            .expect("tests/histories/<shape> exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    };
    // v1: sessions recorded before `charge-v2` (they replay the frozen loop); v2: every
    // scenario of the session test suite on the current shape.
    // v3: the same with the `payment-intent-search` patch; v4: with store writes and station
    // lookups as local activities (`local-store-and-lookup`); v5: a session with an energy
    // target (`energy-target`).
    let (v1, v2, v3, v4, v5) = (
        histories("v1"),
        histories("v2"),
        histories("v3"),
        histories("v4"),
        histories("v5"),
    );
    assert!(
        v1.len() >= 12,
        "expected 12 v1 histories, found {}",
        v1.len()
    );
    assert!(
        v2.len() >= 20,
        "expected 20 v2 histories, found {}",
        v2.len()
    );
    assert!(
        v3.len() >= 20,
        "expected 20 v3 histories, found {}",
        v3.len()
    );
    assert!(
        v4.len() >= 20,
        "expected 20 v4 histories, found {}",
        v4.len()
    );
    assert!(
        v5.iter()
            .any(|f| f.to_string_lossy().contains("energy_target")),
        "expected the energy-target history in v5"
    );
    let files: Vec<_> = v1
        .into_iter()
        .chain(v2)
        .chain(v3)
        .chain(v4)
        .chain(v5)
        .collect();

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
