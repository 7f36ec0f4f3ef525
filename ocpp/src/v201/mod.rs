//! OCPP 2.0.1 messages: one file per action with its request and response, plus the types
//! several share. Hand-written like [`crate::v16`] (see docs/ARCHITECTURE.md, "Charge stations",
//! for why not `rust-ocpp`).
//!
//! As in 1.6, the enumerations a station may fill with vendor values (measurands, units,
//! phases, locations, reading contexts, trigger and stop reasons, charging states, id token
//! types) are kept as text, so an unexpected value never makes a whole message fail; the ones
//! the gateway branches on and the station cannot extend (event type, connector status) are
//! enums.

pub mod authorize;
pub mod boot_notification;
pub mod clear_charging_profile;
pub mod data_transfer;
pub mod heartbeat;
pub mod notify_event;
pub mod request_start_transaction;
pub mod request_stop_transaction;
pub mod set_charging_profile;
pub mod set_variables;
pub mod status_notification;
pub mod transaction_event;
pub mod trigger_message;
pub mod types;

pub use authorize::Authorize;
pub use boot_notification::BootNotification;
pub use clear_charging_profile::ClearChargingProfile;
pub use data_transfer::DataTransfer;
pub use heartbeat::Heartbeat;
pub use notify_event::NotifyEvent;
pub use request_start_transaction::RequestStartTransaction;
pub use request_stop_transaction::RequestStopTransaction;
pub use set_charging_profile::SetChargingProfile;
pub use set_variables::SetVariables;
pub use status_notification::StatusNotification;
pub use transaction_event::TransactionEvent;
pub use trigger_message::TriggerMessage;

pub(crate) use crate::protocol::action;

/// Actions of OCPP 2.0.1 a station may send that this CSMS does not handle: answered
/// `NotSupported`. Any other action name is answered `NotImplemented`.
pub const KNOWN_UNSUPPORTED: &[&str] = &[
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "SignCertificate",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "ReservationStatusUpdate",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
];

/// Notifications the CSMS acknowledges with `{}` without acting on them. (`MeterValues` in
/// 2.0.1 carries readings outside transactions; a transaction's readings come in
/// TransactionEvent.)
pub const ACKNOWLEDGED: &[&str] = &[
    "MeterValues",
    "SecurityEventNotification",
    "FirmwareStatusNotification",
    "LogStatusNotification",
    "PublishFirmwareStatusNotification",
    "NotifyReport",
    "NotifyMonitoringReport",
    "NotifyChargingLimit",
    "ClearedChargingLimit",
    "ReportChargingProfiles",
];
