//! `DataTransfer` (either way): vendor-specific data. chargelink has no vendor extensions and
//! answers `UnknownVendorId`.

use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// DataTransfer.
    DataTransfer, DataTransferRequest => DataTransferResponse
);

/// DataTransfer.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataTransferRequest {
    /// Vendor (at most 255 characters).
    pub vendor_id: String,
    /// Message within the vendor's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Data, free form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `DataTransferStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataTransferStatus {
    /// Handled.
    Accepted,
    /// Refused.
    Rejected,
    /// Vendor message unknown.
    UnknownMessageId,
    /// Vendor unknown.
    UnknownVendorId,
}

/// DataTransfer.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataTransferResponse {
    /// The outcome.
    pub status: DataTransferStatus,
    /// Answer data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}
