//! OCPP: connected stations, connections and reconnects, CALL frames by action and direction,
//! CALLERRORs by code, and each command's round trip by action and result.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

/// Stations connected now.
pub const CONNECTED: &str = "chargelink_ocpp_connected_stations";
/// WebSocket connections accepted.
pub const CONNECTIONS: &str = "chargelink_ocpp_connections_total";
/// Connections of a station this gateway had seen before (since it started).
pub const RECONNECTS: &str = "chargelink_ocpp_reconnects_total";
/// CALL frames, by `direction` (`in`: from stations, `out`: commands) and `action`.
pub const FRAMES: &str = "chargelink_ocpp_frames_total";
/// CALLERROR frames, by `direction` and `code`.
pub const CALL_ERRORS: &str = "chargelink_ocpp_callerrors_total";
/// Command round trip (CALL sent until answered), by `action` and `result`.
pub const COMMAND: &str = "chargelink_ocpp_command_duration_seconds";

pub(crate) fn describe() {
    describe_gauge!(CONNECTED, "Charge stations connected to this gateway");
    describe_counter!(CONNECTIONS, "Station WebSocket connections accepted");
    describe_counter!(
        RECONNECTS,
        "Connections of a station seen before by this gateway"
    );
    describe_counter!(FRAMES, "OCPP CALL frames, by direction and action");
    describe_counter!(CALL_ERRORS, "OCPP CALLERROR frames, by direction and code");
    describe_histogram!(
        COMMAND,
        Unit::Seconds,
        "Charger command round trip (CALL to answer), by action and result"
    );
    counter!(RECONNECTS).absolute(0);
}

/// A station connected; `seen_before` if this gateway had it before.
pub fn connected(seen_before: bool) {
    gauge!(CONNECTED).increment(1.0);
    counter!(CONNECTIONS).increment(1);
    if seen_before {
        counter!(RECONNECTS).increment(1);
    }
}

/// A station's connection ended.
pub fn disconnected() {
    gauge!(CONNECTED).decrement(1.0);
}

/// The actions a station may send in OCPP 1.6J; anything else is counted as `other`, so a
/// misbehaving station cannot grow the label set.
const STATION_ACTIONS: [&str; 10] = [
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
];

/// A CALL received from a station.
pub fn call_in(action: &str) {
    let action = STATION_ACTIONS
        .iter()
        .find(|a| **a == action)
        .copied()
        .unwrap_or("other");
    counter!(FRAMES, "direction" => "in", "action" => action).increment(1);
}

/// A CALLERROR, `sent` by the gateway or received from a station.
pub fn call_error(sent: bool, code: &'static str) {
    let direction = if sent { "out" } else { "in" };
    counter!(CALL_ERRORS, "direction" => direction, "code" => code).increment(1);
}

/// A command CALL answered (or not) after `took`.
pub fn command(action: &'static str, result: &'static str, took: Duration) {
    counter!(FRAMES, "direction" => "out", "action" => action).increment(1);
    histogram!(COMMAND, "action" => action, "result" => result).record(crate::secs(took));
}
