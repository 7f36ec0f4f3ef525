//! `DataTransfer` (either way): vendor-specific data. chargelink has no vendor extensions and
//! answers every request `UnknownVendorId`.

use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// DataTransfer.
    DataTransfer, DataTransferRequest => DataTransferResponse
);

/// DataTransferRequest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataTransferRequest {
    /// Vendor.
    pub vendor_id: String,
    /// Message kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Any JSON (unlike 1.6, where it is text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// `DataTransferStatusEnumType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataTransferStatus {
    /// Handled.
    Accepted,
    /// Refused.
    Rejected,
    /// Unknown message id.
    UnknownMessageId,
    /// Unknown vendor.
    UnknownVendorId,
}

/// DataTransferResponse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataTransferResponse {
    /// The outcome.
    pub status: DataTransferStatus,
}
