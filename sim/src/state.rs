//! What a simulated station shows the outside: its connection, connectors, and the last CALLs it
//! received and sent.

use std::time::Duration;

use ocpp::v16::types::ChargePointStatus;
use serde_json::Value;

/// How many received and sent CALLs are kept.
const LOG_LEN: usize = 200;

/// One connector as the station sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorView {
    /// Connector number (1-based).
    pub id: u32,
    /// Last status sent.
    pub status: ChargePointStatus,
    /// The running transaction's id, once the central system assigned it.
    pub transaction_id: Option<i32>,
    /// Energy register, Wh.
    pub energy_wh: i64,
    /// Held at zero power by a charging profile.
    pub paused: bool,
}

/// A snapshot of a simulated station.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimState {
    /// The WebSocket is open.
    pub connected: bool,
    /// BootNotification was accepted.
    pub booted: bool,
    /// The connectors.
    pub connectors: Vec<ConnectorView>,
    /// Messages waiting to be sent (including the one awaiting its answer).
    pub queued: usize,
    /// Meter values produced so far (sent or queued).
    pub meter_samples: u64,
    /// The current `MeterValueSampleInterval`.
    pub meter_interval: Duration,
    /// CALLs received from the central system (action, payload), oldest first.
    pub received: Vec<(String, Value)>,
    /// Actions of the CALLs sent, oldest first.
    pub sent: Vec<String>,
    /// The last connection failure or CALLERROR.
    pub last_error: Option<String>,
}

impl SimState {
    /// Connector `id`.
    pub fn connector(&self, id: u32) -> Option<&ConnectorView> {
        self.connectors.iter().find(|c| c.id == id)
    }

    /// Payloads of the received CALLs of `action`.
    pub fn received(&self, action: &str) -> Vec<&Value> {
        self.received
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, p)| p)
            .collect()
    }

    /// How many CALLs of `action` were sent.
    pub fn sent_count(&self, action: &str) -> usize {
        self.sent.iter().filter(|a| *a == action).count()
    }

    pub(crate) fn push_received(&mut self, action: &str, payload: Value) {
        if self.received.len() >= LOG_LEN {
            self.received.remove(0);
        }
        self.received.push((action.to_owned(), payload));
    }

    pub(crate) fn push_sent(&mut self, action: &str) {
        if self.sent.len() >= LOG_LEN {
            self.sent.remove(0);
        }
        self.sent.push(action.to_owned());
    }
}
