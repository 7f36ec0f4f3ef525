//! `RequestStopTransaction` (CSMS → station): stop a transaction by the station's id.

use serde::{Deserialize, Serialize};

use super::action;
use super::request_start_transaction::RequestStartStopStatus;

action!(
    /// RequestStopTransaction.
    RequestStopTransaction, RequestStopTransactionRequest => RequestStopTransactionResponse
);

/// RequestStopTransactionRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStopTransactionRequest {
    /// The station's transaction id.
    pub transaction_id: String,
}

/// RequestStopTransactionResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStopTransactionResponse {
    /// The answer.
    pub status: RequestStartStopStatus,
}
