//! `RemoteStartTransaction` (central system → station): start a transaction for an id tag.
//! `Accepted` only means the station will try; StartTransaction confirms.

use serde::{Deserialize, Serialize};

use super::action;
use super::types::{ChargingProfile, IdToken};

action!(
    /// RemoteStartTransaction.
    RemoteStartTransaction, RemoteStartTransactionRequest => RemoteStartTransactionResponse
);

/// RemoteStartTransaction.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteStartTransactionRequest {
    /// Connector (> 0); chargelink always sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<u32>,
    /// The session's id tag.
    pub id_tag: IdToken,
    /// A TxProfile without transaction id, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_profile: Option<ChargingProfile>,
}

/// `RemoteStartStopStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteStartStopStatus {
    /// Will try.
    Accepted,
    /// Will not.
    Rejected,
}

/// RemoteStartTransaction.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteStartTransactionResponse {
    /// The answer.
    pub status: RemoteStartStopStatus,
}
