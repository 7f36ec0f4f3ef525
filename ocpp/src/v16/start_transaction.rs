//! `StartTransaction` (station → central system): a transaction began; the central system
//! assigns its id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;
use super::types::{IdTagInfo, IdToken};

action!(
    /// StartTransaction.
    StartTransaction, StartTransactionRequest => StartTransactionResponse
);

/// StartTransaction.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTransactionRequest {
    /// Connector (> 0).
    pub connector_id: u32,
    /// The id tag the transaction runs for.
    pub id_tag: IdToken,
    /// Energy register at start, Wh.
    pub meter_start: i32,
    /// Reservation used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<i32>,
    /// When it started (station clock; may be long ago for a queued message).
    pub timestamp: DateTime<Utc>,
}

/// StartTransaction.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTransactionResponse {
    /// The verdict on the id tag.
    pub id_tag_info: IdTagInfo,
    /// The transaction id assigned.
    pub transaction_id: i32,
}
