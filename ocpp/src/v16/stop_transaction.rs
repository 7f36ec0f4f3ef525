//! `StopTransaction` (station → central system): a transaction ended. Always accepted: the
//! central system cannot prevent a stop (OCPP 1.6 §4.10), and a late or repeated one is normal
//! after an offline period.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;
use super::types::{IdTagInfo, IdToken, MeterValue};

action!(
    /// StopTransaction.
    StopTransaction, StopTransactionRequest => StopTransactionResponse
);

/// StopTransaction.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTransactionRequest {
    /// Id tag that stopped it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_tag: Option<IdToken>,
    /// Energy register at stop, Wh.
    pub meter_stop: i32,
    /// When it stopped (station clock).
    pub timestamp: DateTime<Utc>,
    /// The transaction.
    pub transaction_id: i32,
    /// `Remote`, `EVDisconnected`, `Local`, ... (kept as text); absent means `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Meter values of the transaction (`StopTxnSampledData`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_data: Option<Vec<MeterValue>>,
}

/// StopTransaction.conf.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTransactionResponse {
    /// Verdict on the stopping id tag, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_tag_info: Option<IdTagInfo>,
}
