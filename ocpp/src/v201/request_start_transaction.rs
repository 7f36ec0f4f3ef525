//! `RequestStartTransaction` (CSMS → station): start a transaction for a token on an EVSE.
//! `Accepted` only means the station will try; the TransactionEvent carrying the token (and
//! the `remoteStartId`) confirms.

use serde::{Deserialize, Serialize};

use super::action;
use super::types::IdToken;

action!(
    /// RequestStartTransaction.
    RequestStartTransaction, RequestStartTransactionRequest => RequestStartTransactionResponse
);

/// RequestStartTransactionRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStartTransactionRequest {
    /// The EVSE (> 0); chargelink always sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evse_id: Option<u32>,
    /// Returned in the transaction's `remoteStartId`.
    pub remote_start_id: i32,
    /// The session's token.
    pub id_token: IdToken,
}

/// `RequestStartStopStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStartStopStatus {
    /// Will do.
    Accepted,
    /// Will not.
    Rejected,
}

/// RequestStartTransactionResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStartTransactionResponse {
    /// The answer.
    pub status: RequestStartStopStatus,
    /// The transaction already running on the EVSE (cable plugged in first), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

/// The `remoteStartId` of a session's token: a stable positive 31-bit FNV-1a hash, so the
/// station's TransactionEvent can be matched to the pending start on its EVSE by number as
/// well as by token, without storing another column.
pub fn remote_start_id(id_token: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id_token.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    // Masked to 31 bits: the value always fits a positive i32.
    i32::try_from(hash & 0x7fff_ffff).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_start_ids_are_stable_and_positive() {
        assert_eq!(remote_start_id("abc"), remote_start_id("abc"));
        assert_ne!(remote_start_id("abc"), remote_start_id("abd"));
        assert!(remote_start_id("") >= 0);
    }
}
