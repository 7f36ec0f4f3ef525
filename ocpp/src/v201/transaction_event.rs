//! `TransactionEvent` (station → CSMS): the whole life of a transaction in one message, with
//! `Started`, `Updated` (meter values, charging state, the token once known) and `Ended`. The
//! station chooses the transaction id; `seqNo` numbers its events; `offline` marks an event
//! queued while the station had no connection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::action;
use super::types::{Evse, IdToken, IdTokenInfo, MeterValue};

action!(
    /// TransactionEvent.
    TransactionEvent, TransactionEventRequest => TransactionEventResponse
);

/// `TransactionEventEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// The first event of a transaction.
    Started,
    /// Anything in between.
    Updated,
    /// The last event.
    Ended,
}

/// `TransactionType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionInfo {
    /// The station's id of the transaction (at most 36 characters).
    pub transaction_id: super::types::CiString<36>,
    /// `Charging`, `EVConnected`, `SuspendedEV`, `SuspendedEVSE`, `Idle` (kept as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_state: Option<String>,
    /// Seconds spent charging so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_spent_charging: Option<i64>,
    /// Why it ended (`Remote`, `EVDisconnected`, ..., kept as text); in the `Ended` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// The `remoteStartId` of the RequestStartTransaction that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_start_id: Option<i32>,
}

/// TransactionEventRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionEventRequest {
    /// Started, Updated or Ended.
    pub event_type: EventType,
    /// When it happened (station clock).
    pub timestamp: DateTime<Utc>,
    /// What caused it (`RemoteStart`, `MeterValuePeriodic`, ..., kept as text).
    pub trigger_reason: String,
    /// Sequence number of the station's transaction messages.
    pub seq_no: i64,
    /// Queued while the station was offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<bool>,
    /// Phases used for charging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_phases_used: Option<i32>,
    /// Maximum current of the cable, A.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cable_max_current: Option<i32>,
    /// The reservation used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<i32>,
    /// The transaction.
    pub transaction_info: TransactionInfo,
    /// The token, in the first event after it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    /// The EVSE, in the first event of the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evse: Option<Evse>,
    /// Readings since the previous event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_value: Option<Vec<MeterValue>>,
}

/// TransactionEventResponse: the token's verdict when the request carried one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionEventResponse {
    /// The token's verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_info: Option<IdTokenInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_values_do_not_fail_the_event() {
        let r: TransactionEventRequest = serde_json::from_value(serde_json::json!({
            "eventType": "Ended",
            "timestamp": "2026-01-01T10:00:00Z",
            "triggerReason": "VendorSpecificStop",
            "seqNo": 7,
            "offline": true,
            "transactionInfo": {"transactionId": "b7f1-22", "chargingState": "Cooling",
                                "stoppedReason": "VendorReason"},
            "meterValue": [{"timestamp": "2026-01-01T10:00:00Z",
                            "sampledValue": [{"value": 1500.0, "context": "Transaction.End",
                                              "measurand": "Vendor.Register"}]}]
        }))
        .unwrap();
        assert_eq!(r.event_type, EventType::Ended);
        assert_eq!(r.offline, Some(true));
        assert_eq!(
            r.transaction_info.stopped_reason.as_deref(),
            Some("VendorReason")
        );
    }

    #[test]
    fn an_unknown_event_type_is_refused() {
        let e = serde_json::from_value::<TransactionEventRequest>(serde_json::json!({
            "eventType": "Paused", "timestamp": "2026-01-01T10:00:00Z",
            "triggerReason": "Other", "seqNo": 1, "transactionInfo": {"transactionId": "x"}
        }))
        .unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }
}
