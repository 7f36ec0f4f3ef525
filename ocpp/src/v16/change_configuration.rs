//! `ChangeConfiguration` (central system → station): set one configuration key.

use serde::{Deserialize, Serialize};

use super::action;

action!(
    /// ChangeConfiguration.
    ChangeConfiguration, ChangeConfigurationRequest => ChangeConfigurationResponse
);

/// Seconds between sampled meter values during a transaction.
pub const METER_VALUE_SAMPLE_INTERVAL: &str = "MeterValueSampleInterval";
/// Measurands sampled during a transaction (comma separated).
pub const METER_VALUES_SAMPLED_DATA: &str = "MeterValuesSampledData";

/// ChangeConfiguration.req.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeConfigurationRequest {
    /// The key (at most 50 characters).
    pub key: String,
    /// The value (at most 500 characters).
    pub value: String,
}

/// `ConfigurationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigurationStatus {
    /// Set.
    Accepted,
    /// Not set.
    Rejected,
    /// Set, applied after a reboot.
    RebootRequired,
    /// Unknown key.
    NotSupported,
}

/// ChangeConfiguration.conf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeConfigurationResponse {
    /// The outcome.
    pub status: ConfigurationStatus,
}
