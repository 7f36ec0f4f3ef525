//! What a simulated station is and how it behaves.

use std::time::Duration;

/// How a simulated station behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Answer RemoteStartTransaction with `Rejected`.
    pub refuse_remote_start: bool,
    /// Accept RemoteStart but never see a car: the connector stays `Available`.
    pub never_plugged_in: bool,
    /// Send `Authorize` before StartTransaction (`AuthorizeRemoteTxRequests = true`).
    pub authorize_remote_start: bool,
    /// The driver unplugs this long after the transaction started.
    pub unplug_after: Option<Duration>,
    /// Drop the connection this long after the transaction started, stay offline for the
    /// second duration (queueing meter values), then reconnect and send them.
    pub drop_connection: Option<(Duration, Duration)>,
    /// Wait this long before answering the central system's CALLs.
    pub reply_delay: Duration,
    /// Lose power this long after the transaction started (a reboot: transactions forgotten).
    pub reboot_after: Option<Duration>,
    /// On a reboot, keep each running transaction's StopTransaction (`PowerLoss`) in the
    /// offline queue and send it after the boot, as OCPP 1.6 stations do.
    pub stop_queued_on_reboot: bool,
    /// The connector faults this long after the transaction started, for the second duration.
    pub fault: Option<(Duration, Duration)>,
    /// Accept RemoteStopTransaction and keep charging (a station that ignores the stop).
    pub ignore_remote_stop: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            refuse_remote_start: false,
            never_plugged_in: false,
            authorize_remote_start: true,
            unplug_after: None,
            drop_connection: None,
            reply_delay: Duration::ZERO,
            reboot_after: None,
            stop_queued_on_reboot: false,
            fault: None,
            ignore_remote_stop: false,
        }
    }
}

/// One simulated charge station.
#[derive(Debug, Clone, PartialEq)]
pub struct StationSpec {
    /// Base URL of the central system, without the station id (`ws://127.0.0.1:9000/ocpp`).
    pub url: String,
    /// The station id (appended to the URL; also the Basic auth username).
    pub id: String,
    /// The station's AuthorizationKey (Basic auth password).
    pub key: String,
    /// Number of connectors (1-based).
    pub connectors: u32,
    /// Power while charging, W.
    pub power_w: i64,
    /// Energy register at power-on, Wh.
    pub meter_start_wh: i64,
    /// `MeterValueSampleInterval` until the central system changes it.
    pub meter_interval: Duration,
    /// Heartbeat interval; `None` uses the one BootNotification returns.
    pub heartbeat_interval: Option<Duration>,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// First wait before reconnecting after a lost connection (doubles up to 30 s).
    pub reconnect_backoff: Duration,
    /// TLS for a `wss://` URL (the CA, and a client certificate for security profile 3);
    /// `None` for `ws://`.
    pub tls: Option<crate::SimTls>,
    /// The OCPP version the station speaks (the only subprotocol it offers).
    pub protocol: ocpp::Protocol,
}

impl StationSpec {
    /// An OCPP 1.6 station with one 11 kW connector sampling every 10 s.
    pub fn new(url: impl Into<String>, id: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            id: id.into(),
            key: key.into(),
            connectors: 1,
            power_w: 11_000,
            meter_start_wh: 1_000,
            meter_interval: Duration::from_secs(10),
            heartbeat_interval: None,
            behaviour: Behaviour::default(),
            reconnect_backoff: Duration::from_millis(200),
            tls: None,
            protocol: ocpp::Protocol::V16,
        }
    }

    /// The station's WebSocket URL.
    pub fn station_url(&self) -> String {
        format!("{}/{}", self.url.trim_end_matches('/'), self.id)
    }
}

/// Many stations for `chargelink sim`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Base URL of the central system (`ws://127.0.0.1:9000/ocpp`).
    pub url: String,
    /// How many stations.
    pub stations: usize,
    /// Station ids are `<prefix><n>` with n from 1.
    pub id_prefix: String,
    /// The key every station uses (`chargelink sim` writes a matching stations file).
    pub key: String,
    /// The template every station copies (url, id and key are replaced).
    pub template: StationSpec,
    /// Pause between two stations connecting, to spread the boot storm.
    pub ramp: Duration,
}
