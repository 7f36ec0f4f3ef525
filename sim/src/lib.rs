//! Simulated OCPP 1.6J or 2.0.1 charge stations over real WebSockets: for end-to-end tests,
//! demos (`chargelink sim`, `--protocol 2.0.1`) and load.
//!
//! A station boots, reports its connectors, heartbeats, and answers the central system:
//! RemoteStartTransaction (Preparing → Authorize → StartTransaction → Charging, then MeterValues
//! every interval with the energy register and the power), SetChargingProfile with limit 0
//! (SuspendedEVSE, power 0) and ClearChargingProfile (Charging), RemoteStopTransaction
//! (StopTransaction `Remote`, Finishing, Available), ChangeConfiguration
//! (`MeterValueSampleInterval` is honoured) and TriggerMessage. The driver unplugging is
//! SuspendedEV → StopTransaction `EVDisconnected` → Finishing → Available.
//!
//! A 2.0.1 station ([`StationSpec::protocol`]) behaves the same, on the 2.0.1 wire: the state
//! machine speaks in 1.6 terms and `v201` translates (RequestStartTransaction, TransactionEvent
//! Started / Updated / Ended with the station's own transaction id and `seqNo`, `offline`
//! events while disconnected, SetVariables for the meter interval, charging profiles by EVSE).
//!
//! # Layout
//! - [`config`]: [`StationSpec`], [`Behaviour`], [`SimConfig`].
//! - `station`: the station task (socket, outbox, connector state machine).
//! - `v201`: the OCPP 2.0.1 wire adapter.
//! - [`state`]: [`SimState`], the snapshot tests wait on.
//! - [`tls`]: [`SimTls`], `wss://` with an optional client certificate (security profile 3).

use domain::ids as domain_ids;

pub mod config;
pub mod state;
mod station;
pub mod tls;
mod v201;

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

pub use config::{Behaviour, SimConfig, StationSpec};
pub use state::{ConnectorView, SimState};
pub use tls::SimTls;

use station::{Command, Station};

/// Why a simulated station could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The station task has ended.
    #[error("the simulated station {0} has stopped")]
    Stopped(String),
    /// The condition did not hold in time; the message has the station's last state.
    #[error("station {station}: {what} not reached within {timeout:?}; last state: {state}")]
    Timeout {
        /// The station.
        station: String,
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
        /// The last state seen.
        state: String,
    },
}

/// Drives and observes one running simulated station.
#[derive(Debug, Clone)]
pub struct SimHandle {
    id: String,
    commands: mpsc::Sender<Command>,
    state: watch::Receiver<SimState>,
}

impl SimHandle {
    /// The station id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The latest snapshot.
    pub fn state(&self) -> SimState {
        self.state.borrow().clone()
    }

    /// Waits until `condition` holds, at most `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&SimState) -> bool,
    ) -> Result<SimState, SimError> {
        let mut rx = self.state.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|s| condition(s))).await;
        match waited {
            Ok(Ok(state)) => Ok(state.clone()),
            Ok(Err(_)) => Err(SimError::Stopped(self.id.clone())),
            Err(_) => Err(SimError::Timeout {
                station: self.id.clone(),
                what: what.to_owned(),
                timeout,
                state: format!("{:?}", self.state()),
            }),
        }
    }

    /// The driver unplugs the cable of `connector`.
    pub async fn unplug(&self, connector: u32) -> Result<(), SimError> {
        self.send(Command::Unplug(connector)).await
    }

    /// Closes the connection and stays offline for `offline` (messages are queued), then
    /// reconnects.
    pub async fn disconnect(&self, offline: Duration) -> Result<(), SimError> {
        self.send(Command::Disconnect(offline)).await
    }

    /// Stops the station (closes its connection) and waits until it has.
    pub async fn stop(&self) -> Result<(), SimError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stop(tx)).await?;
        rx.await.map_err(|_| SimError::Stopped(self.id.clone()))
    }

    async fn send(&self, command: Command) -> Result<(), SimError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| SimError::Stopped(self.id.clone()))
    }
}

/// Starts a simulated station on its own task; it connects (and reconnects) by itself.
pub fn run_station(spec: StationSpec) -> SimHandle {
    let (commands_tx, commands_rx) = mpsc::channel(16);
    let (state_tx, state_rx) = watch::channel(SimState::default());
    let id = spec.id.clone();
    let station = Station::new(spec, state_tx, commands_rx);
    tokio::spawn(station.run());
    SimHandle {
        id,
        commands: commands_tx,
        state: state_rx,
    }
}

/// The station ids of `config`: `<prefix>1` to `<prefix><stations>`.
pub fn station_ids(config: &SimConfig) -> Vec<String> {
    (1..=config.stations)
        .map(|n| format!("{}{n}", config.id_prefix))
        .collect()
}

/// A stations file for the gateway that lets every station of `config` in (hashed keys).
pub fn stations_file(config: &SimConfig) -> Result<ocpp::StationsFile, domain_ids::IdError> {
    let stations = station_ids(config)
        .iter()
        .map(|id| {
            Ok(ocpp::StationEntry::hashed(
                id.parse()?,
                config.key.as_bytes(),
            ))
        })
        .collect::<Result<_, domain_ids::IdError>>()?;
    Ok(ocpp::StationsFile { stations })
}

/// Runs `config.stations` stations until `shutdown` completes: what `chargelink sim` calls.
pub async fn run(config: SimConfig, shutdown: impl Future<Output = ()>) -> Vec<SimState> {
    let mut handles = Vec::with_capacity(config.stations);
    let start = async {
        for n in 1..=config.stations {
            let mut spec = config.template.clone();
            spec.url = config.url.clone();
            spec.id = format!("{}{n}", config.id_prefix);
            // Ids are checked by `stations_file`; the gateway refuses any other.
            spec.key = config.key.clone();
            spec.tls = spec.tls.map(|t| t.for_station(&spec.id));
            handles.push(run_station(spec));
            if !config.ramp.is_zero() {
                tokio::time::sleep(config.ramp).await;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = shutdown => {}
        () = start => {}
    }
    info!(stations = handles.len(), "stopping simulated stations");
    let mut states = Vec::with_capacity(handles.len());
    for h in &handles {
        let _ = h.stop().await;
        states.push(h.state());
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stations_file_lists_every_simulated_station() {
        let config = SimConfig {
            url: "ws://127.0.0.1:9000/ocpp".into(),
            stations: 3,
            id_prefix: "SIM".into(),
            key: "k".repeat(16),
            template: StationSpec::new("", "", ""),
            ramp: Duration::ZERO,
        };
        let file = stations_file(&config).unwrap();
        let ids: Vec<_> = file.stations.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(ids, ["SIM1", "SIM2", "SIM3"]);
    }
}
