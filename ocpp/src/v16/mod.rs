//! OCPP 1.6 messages: one file per action with its request and response (and, for messages a
//! station sends, how the central system answers them), plus the types several share.
//!
//! The enumerations a station may fill with vendor values (measurands, units, stop reasons,
//! error codes) are kept as text so an unexpected value never makes a whole message fail.

pub mod authorize;
pub mod boot_notification;
pub mod change_configuration;
pub mod clear_charging_profile;
pub mod data_transfer;
pub mod heartbeat;
pub mod meter_values;
pub mod remote_start_transaction;
pub mod remote_stop_transaction;
pub mod set_charging_profile;
pub mod start_transaction;
pub mod status_notification;
pub mod stop_transaction;
pub mod trigger_message;
pub mod types;

pub use authorize::Authorize;
pub use boot_notification::BootNotification;
pub use change_configuration::ChangeConfiguration;
pub use clear_charging_profile::ClearChargingProfile;
pub use data_transfer::DataTransfer;
pub use heartbeat::Heartbeat;
pub use meter_values::MeterValues;
pub use remote_start_transaction::RemoteStartTransaction;
pub use remote_stop_transaction::RemoteStopTransaction;
pub use set_charging_profile::SetChargingProfile;
pub use start_transaction::StartTransaction;
pub use status_notification::StatusNotification;
pub use stop_transaction::StopTransaction;
pub use trigger_message::TriggerMessage;

pub use crate::protocol::Action;
pub(crate) use crate::protocol::action;

/// Actions of OCPP 1.6 (core and the other feature profiles, plus the security white paper)
/// that a station may send and this central system does not handle: answered `NotSupported`.
/// Any other action name is answered `NotImplemented`.
pub const KNOWN_UNSUPPORTED: &[&str] = &[
    "LogStatusNotification",
    "SignCertificate",
    "SignedFirmwareStatusNotification",
    "Reset",
    "UnlockConnector",
    "GetConfiguration",
    "ChangeAvailability",
    "ClearCache",
    "GetDiagnostics",
    "UpdateFirmware",
    "SendLocalList",
    "GetLocalListVersion",
    "ReserveNow",
    "CancelReservation",
    "GetCompositeSchedule",
];

/// Notifications the central system acknowledges with `{}` without acting on them.
pub const ACKNOWLEDGED: &[&str] = &[
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "SecurityEventNotification",
];
