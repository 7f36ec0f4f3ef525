//! `RemoteStopTransaction` (central system → station): stop a transaction; StopTransaction
//! confirms.

use serde::{Deserialize, Serialize};

use super::action;
pub use super::remote_start_transaction::RemoteStartStopStatus;

action!(
    /// RemoteStopTransaction.
    RemoteStopTransaction, RemoteStopTransactionRequest => RemoteStopTransactionResponse
);

/// RemoteStopTransaction.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteStopTransactionRequest {
    /// The transaction.
    pub transaction_id: i32,
}

/// RemoteStopTransaction.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteStopTransactionResponse {
    /// The answer.
    pub status: RemoteStartStopStatus,
}
