//! Who is connected where, and which transaction belongs to which session.
//!
//! Two halves:
//! - [`Registry`]: the persistent part (stations and the gateway holding them, connector
//!   statuses, pending remote starts, transactions), behind a trait. [`StoreRegistry`] keeps it
//!   in the store's database (SQLite or PostgreSQL), shared by every gateway and sessions
//!   worker: a gateway restart keeps its transactions, and a station that reconnects to another
//!   gateway, on any host, is found there.
//! - [`Connections`]: the live sockets of this process, to send CALLs to a station.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use domain::ids::{ChargeStationId, SessionId};
use store::entities::{ocpp_transaction, pending_start};
use store::{NewOcppTransaction, Store, StoreError};

use crate::connection::StationHandle;

/// Why the registry could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The store failed; retry later (activities fail retryably, the station gets an
    /// `InternalError` CALLERROR and resends).
    #[error("registry: {0}")]
    Store(#[from] StoreError),
    /// A stored value cannot be read back; a bug or a hand-edited database.
    #[error("registry holds an invalid value: {0}")]
    Corrupt(String),
}

/// Where a station is connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationLocation {
    /// The gateway instance holding its socket.
    pub instance_id: String,
    /// That gateway's task queue.
    pub task_queue: String,
}

/// A connector's last reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// OCPP connector number (0 = the whole station).
    pub connector_id: u32,
    /// OCPP `ChargePointStatus` as sent.
    pub status: String,
    /// OCPP `ChargePointErrorCode` as sent.
    pub error_code: String,
    /// Station time of the report.
    pub at: DateTime<Utc>,
}

/// A RemoteStart the station has been asked for: its id tag maps the StartTransaction back to
/// the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStart {
    /// The session's id tag.
    pub id_tag: String,
    /// The session.
    pub session_id: SessionId,
    /// The station asked.
    pub station: ChargeStationId,
    /// The connector asked.
    pub connector_id: u32,
    /// When the RemoteStart was (last) sent.
    pub created_at: DateTime<Utc>,
    /// The station accepted the RemoteStart and has not started or given up yet: a Faulted (or
    /// Preparing → Available) connector now means the start failed.
    pub armed: bool,
    /// The connector reported Preparing since the RemoteStart.
    pub preparing: bool,
}

/// A transaction to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransaction {
    /// The station.
    pub station: ChargeStationId,
    /// The connector.
    pub connector_id: u32,
    /// The id tag it runs for.
    pub id_tag: String,
    /// The session, when the id tag is a session's.
    pub session_id: Option<SessionId>,
    /// Energy register at start, Wh.
    pub meter_start: i64,
    /// Station time of the start.
    pub started_at: DateTime<Utc>,
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionStop {
    /// Energy register at stop, Wh.
    pub meter_stop: i64,
    /// Station time of the stop.
    pub at: DateTime<Utc>,
    /// OCPP reason, as sent.
    pub reason: Option<String>,
}

/// A recorded transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// OCPP transaction id, assigned here.
    pub id: i64,
    /// The station.
    pub station: ChargeStationId,
    /// The connector.
    pub connector_id: u32,
    /// The id tag.
    pub id_tag: String,
    /// The session, when the id tag was a session's.
    pub session_id: Option<SessionId>,
    /// Energy register at start, Wh.
    pub meter_start: i64,
    /// Station time of the start.
    pub started_at: DateTime<Utc>,
    /// Set once the station reported the stop.
    pub stop: Option<TransactionStop>,
    /// OCPP 2.0.1: the station's own id of the transaction (`id` is the number assigned to
    /// it here, the one the session knows). `None` for 1.6, where `id` is the OCPP id.
    pub station_transaction_id: Option<String>,
}

/// The persistent registry. Every method is idempotent where the protocol repeats itself.
#[async_trait::async_trait]
pub trait Registry: Send + Sync + 'static {
    /// `station` is now connected to gateway `instance_id` (queue `task_queue`) through
    /// connection `connection_id`; replaces any earlier connection.
    async fn station_connected(
        &self,
        station: &ChargeStationId,
        location: &StationLocation,
        connection_id: &str,
    ) -> Result<(), RegistryError>;

    /// Connection `connection_id` of `station` closed. A no-op when the station has connected
    /// again since (possibly to another gateway).
    async fn station_disconnected(
        &self,
        station: &ChargeStationId,
        connection_id: &str,
    ) -> Result<(), RegistryError>;

    /// Gateway `instance_id` (re)started: none of the sockets it held exist any more.
    async fn instance_started(&self, instance_id: &str) -> Result<(), RegistryError>;

    /// The gateway at `location` is alive: renews the lease of every station it holds.
    async fn renew_lease(&self, location: &StationLocation) -> Result<(), RegistryError>;

    /// Where `station` is connected; `None` when offline or unknown.
    async fn locate(
        &self,
        station: &ChargeStationId,
    ) -> Result<Option<StationLocation>, RegistryError>;

    /// Records a connector status.
    async fn set_connector_status(
        &self,
        station: &ChargeStationId,
        status: ConnectorInfo,
    ) -> Result<(), RegistryError>;

    /// Last statuses of the station's connectors, by connector number.
    async fn connectors(
        &self,
        station: &ChargeStationId,
    ) -> Result<Vec<ConnectorInfo>, RegistryError>;

    /// Records (or re-arms) a pending remote start.
    async fn put_pending_start(&self, pending: PendingStart) -> Result<(), RegistryError>;

    /// The pending start of `id_tag`.
    async fn pending_start(&self, id_tag: &str) -> Result<Option<PendingStart>, RegistryError>;

    /// The newest armed pending start on a connector.
    async fn armed_start_on(
        &self,
        station: &ChargeStationId,
        connector_id: u32,
    ) -> Result<Option<PendingStart>, RegistryError>;

    /// Updates the flags of a pending start.
    async fn update_pending_start(
        &self,
        id_tag: &str,
        armed: bool,
        preparing: bool,
    ) -> Result<(), RegistryError>;

    /// Forgets a pending start (it became a transaction).
    async fn remove_pending_start(&self, id_tag: &str) -> Result<(), RegistryError>;

    /// The transaction a repeated StartTransaction refers to: the open one of the same id tag on
    /// the same connector, or a stopped one with the same start register and time.
    async fn find_transaction(
        &self,
        tx: &NewTransaction,
    ) -> Result<Option<Transaction>, RegistryError>;

    /// Records a new transaction and assigns its id, unique across gateways. The very same
    /// start recorded twice at once (a duplicate handled by two gateways) is one transaction.
    async fn insert_transaction(&self, tx: NewTransaction) -> Result<Transaction, RegistryError>;

    /// A transaction by id.
    async fn transaction(&self, id: i64) -> Result<Option<Transaction>, RegistryError>;

    /// The open transaction on a connector.
    async fn open_transaction_on(
        &self,
        station: &ChargeStationId,
        connector_id: u32,
    ) -> Result<Option<Transaction>, RegistryError>;

    /// An open transaction of `id_tag` that belongs to a session.
    async fn open_transaction_for_tag(
        &self,
        id_tag: &str,
    ) -> Result<Option<Transaction>, RegistryError>;

    /// Records the stop. Returns the transaction (with its first stop kept when this one is a
    /// repeat) and whether this was the first stop; `None` for an unknown transaction.
    async fn stop_transaction(
        &self,
        id: i64,
        stop: TransactionStop,
    ) -> Result<Option<(Transaction, bool)>, RegistryError>;

    /// OCPP 2.0.1: records the station's transaction `station_transaction_id` and assigns its
    /// number (unique across gateways, like a 1.6 transaction id). Returns the transaction and
    /// whether this call recorded it; a repeat returns the first record.
    async fn insert_station_transaction(
        &self,
        tx: NewTransaction,
        station_transaction_id: &str,
    ) -> Result<(Transaction, bool), RegistryError>;

    /// OCPP 2.0.1: the transaction `station_transaction_id` of `station`.
    async fn station_transaction(
        &self,
        station: &ChargeStationId,
        station_transaction_id: &str,
    ) -> Result<Option<Transaction>, RegistryError>;

    /// OCPP 2.0.1: gives transaction `id`, recorded before its token was known, to `session`
    /// for `id_tag`; the session's part of it starts at `started_at` with register
    /// `meter_start`. `false` when it already belongs to a session.
    async fn bind_transaction(
        &self,
        id: i64,
        id_tag: &str,
        session: &SessionId,
        started_at: DateTime<Utc>,
        meter_start: i64,
    ) -> Result<bool, RegistryError>;

    /// OCPP 2.0.1: whether transaction `id` had the event `seq_no` already.
    async fn transaction_event_seen(&self, id: i64, seq_no: i64) -> Result<bool, RegistryError>;

    /// OCPP 2.0.1: records that transaction `id` had the event `seq_no`; `false` for a repeat.
    async fn record_transaction_event(&self, id: i64, seq_no: i64) -> Result<bool, RegistryError>;
}

/// [`Registry`] on the store's database.
#[derive(Clone, Debug)]
pub struct StoreRegistry {
    store: Store,
}

impl StoreRegistry {
    /// A registry over `store` (already migrated).
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn parse<T: FromStr>(s: &str) -> Result<T, RegistryError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| RegistryError::Corrupt(format!("{s}: {e}")))
}

fn connector_number(n: u32) -> Result<i32, RegistryError> {
    i32::try_from(n).map_err(|_| RegistryError::Corrupt(format!("connector id {n} is too large")))
}

fn stored_connector(n: i32) -> Result<u32, RegistryError> {
    u32::try_from(n).map_err(|_| RegistryError::Corrupt(format!("connector id {n}")))
}

fn to_transaction(r: ocpp_transaction::Model) -> Result<Transaction, RegistryError> {
    let stop = match (r.meter_stop, r.stopped_at) {
        (Some(meter_stop), Some(at)) => Some(TransactionStop {
            meter_stop,
            at,
            reason: r.stop_reason,
        }),
        _ => None,
    };
    Ok(Transaction {
        id: r.id,
        station: parse(&r.station_id)?,
        connector_id: stored_connector(r.connector_id)?,
        id_tag: r.id_tag,
        session_id: r.session_id.as_deref().map(parse).transpose()?,
        meter_start: r.meter_start,
        started_at: r.started_at,
        stop,
        station_transaction_id: r.station_transaction_id,
    })
}

fn to_pending(r: pending_start::Model) -> Result<PendingStart, RegistryError> {
    Ok(PendingStart {
        id_tag: r.id_tag,
        session_id: parse(&r.session_id)?,
        station: parse(&r.station_id)?,
        connector_id: stored_connector(r.connector_id)?,
        created_at: r.created_at,
        armed: r.armed,
        preparing: r.preparing,
    })
}

fn new_row(tx: &NewTransaction) -> Result<NewOcppTransaction, RegistryError> {
    Ok(NewOcppTransaction {
        station_id: tx.station.to_string(),
        connector_id: connector_number(tx.connector_id)?,
        id_tag: tx.id_tag.clone(),
        session_id: tx.session_id.as_ref().map(ToString::to_string),
        meter_start: tx.meter_start,
        started_at: tx.started_at,
    })
}

#[async_trait::async_trait]
impl Registry for StoreRegistry {
    async fn station_connected(
        &self,
        station: &ChargeStationId,
        location: &StationLocation,
        connection_id: &str,
    ) -> Result<(), RegistryError> {
        Ok(self
            .store
            .station_connected(
                station.as_str(),
                &location.instance_id,
                &location.task_queue,
                connection_id,
                Utc::now(),
            )
            .await?)
    }

    async fn station_disconnected(
        &self,
        station: &ChargeStationId,
        connection_id: &str,
    ) -> Result<(), RegistryError> {
        Ok(self
            .store
            .station_disconnected(station.as_str(), connection_id, Utc::now())
            .await?)
    }

    async fn instance_started(&self, instance_id: &str) -> Result<(), RegistryError> {
        Ok(self.store.instance_started(instance_id, Utc::now()).await?)
    }

    async fn renew_lease(&self, location: &StationLocation) -> Result<(), RegistryError> {
        self.store
            .renew_gateway_lease(&location.task_queue, Utc::now())
            .await?;
        Ok(())
    }

    async fn locate(
        &self,
        station: &ChargeStationId,
    ) -> Result<Option<StationLocation>, RegistryError> {
        Ok(self
            .store
            .station_connection(station.as_str())
            .await?
            .filter(|c| c.connected)
            .map(|c| StationLocation {
                instance_id: c.instance_id,
                task_queue: c.task_queue,
            }))
    }

    async fn set_connector_status(
        &self,
        station: &ChargeStationId,
        s: ConnectorInfo,
    ) -> Result<(), RegistryError> {
        Ok(self
            .store
            .record_connector_status(
                station.as_str(),
                connector_number(s.connector_id)?,
                &s.status,
                &s.error_code,
                s.at,
            )
            .await?)
    }

    async fn connectors(
        &self,
        station: &ChargeStationId,
    ) -> Result<Vec<ConnectorInfo>, RegistryError> {
        self.store
            .connector_statuses(station.as_str())
            .await?
            .into_iter()
            .map(|r| {
                Ok(ConnectorInfo {
                    connector_id: stored_connector(r.connector_id)?,
                    status: r.status,
                    error_code: r.error_code,
                    at: r.reported_at,
                })
            })
            .collect()
    }

    async fn put_pending_start(&self, p: PendingStart) -> Result<(), RegistryError> {
        Ok(self
            .store
            .put_pending_start(pending_start::Model {
                id_tag: p.id_tag,
                session_id: p.session_id.to_string(),
                station_id: p.station.to_string(),
                connector_id: connector_number(p.connector_id)?,
                created_at: p.created_at,
                armed: p.armed,
                preparing: p.preparing,
            })
            .await?)
    }

    async fn pending_start(&self, id_tag: &str) -> Result<Option<PendingStart>, RegistryError> {
        self.store
            .pending_start(id_tag)
            .await?
            .map(to_pending)
            .transpose()
    }

    async fn armed_start_on(
        &self,
        station: &ChargeStationId,
        connector_id: u32,
    ) -> Result<Option<PendingStart>, RegistryError> {
        self.store
            .armed_start_on(station.as_str(), connector_number(connector_id)?)
            .await?
            .map(to_pending)
            .transpose()
    }

    async fn update_pending_start(
        &self,
        id_tag: &str,
        armed: bool,
        preparing: bool,
    ) -> Result<(), RegistryError> {
        Ok(self
            .store
            .update_pending_start(id_tag, armed, preparing)
            .await?)
    }

    async fn remove_pending_start(&self, id_tag: &str) -> Result<(), RegistryError> {
        Ok(self.store.remove_pending_start(id_tag).await?)
    }

    async fn find_transaction(
        &self,
        tx: &NewTransaction,
    ) -> Result<Option<Transaction>, RegistryError> {
        self.store
            .find_repeated_transaction(&new_row(tx)?)
            .await?
            .map(to_transaction)
            .transpose()
    }

    async fn insert_transaction(&self, tx: NewTransaction) -> Result<Transaction, RegistryError> {
        to_transaction(self.store.insert_ocpp_transaction(new_row(&tx)?).await?)
    }

    async fn transaction(&self, id: i64) -> Result<Option<Transaction>, RegistryError> {
        self.store
            .ocpp_transaction(id)
            .await?
            .map(to_transaction)
            .transpose()
    }

    async fn open_transaction_on(
        &self,
        station: &ChargeStationId,
        connector_id: u32,
    ) -> Result<Option<Transaction>, RegistryError> {
        self.store
            .open_transaction_on(station.as_str(), connector_number(connector_id)?)
            .await?
            .map(to_transaction)
            .transpose()
    }

    async fn open_transaction_for_tag(
        &self,
        id_tag: &str,
    ) -> Result<Option<Transaction>, RegistryError> {
        self.store
            .open_session_transaction_for_tag(id_tag)
            .await?
            .map(to_transaction)
            .transpose()
    }

    async fn stop_transaction(
        &self,
        id: i64,
        stop: TransactionStop,
    ) -> Result<Option<(Transaction, bool)>, RegistryError> {
        self.store
            .stop_ocpp_transaction(id, stop.meter_stop, stop.at, stop.reason)
            .await?
            .map(|(t, first)| Ok((to_transaction(t)?, first)))
            .transpose()
    }

    async fn insert_station_transaction(
        &self,
        tx: NewTransaction,
        station_transaction_id: &str,
    ) -> Result<(Transaction, bool), RegistryError> {
        let (row, inserted) = self
            .store
            .insert_station_transaction(new_row(&tx)?, station_transaction_id)
            .await?;
        Ok((to_transaction(row)?, inserted))
    }

    async fn station_transaction(
        &self,
        station: &ChargeStationId,
        station_transaction_id: &str,
    ) -> Result<Option<Transaction>, RegistryError> {
        self.store
            .station_transaction(station.as_str(), station_transaction_id)
            .await?
            .map(to_transaction)
            .transpose()
    }

    async fn bind_transaction(
        &self,
        id: i64,
        id_tag: &str,
        session: &SessionId,
        started_at: DateTime<Utc>,
        meter_start: i64,
    ) -> Result<bool, RegistryError> {
        Ok(self
            .store
            .bind_ocpp_transaction(id, id_tag, session.as_str(), started_at, meter_start)
            .await?)
    }

    async fn transaction_event_seen(&self, id: i64, seq_no: i64) -> Result<bool, RegistryError> {
        Ok(self.store.transaction_event_seen(id, seq_no).await?)
    }

    async fn record_transaction_event(&self, id: i64, seq_no: i64) -> Result<bool, RegistryError> {
        Ok(self
            .store
            .record_transaction_event(id, seq_no, Utc::now())
            .await?)
    }
}

/// The stations connected to this process, by id.
#[derive(Clone, Default)]
pub struct Connections {
    inner: Arc<Mutex<HashMap<ChargeStationId, StationHandle>>>,
}

impl Connections {
    /// Registers a connection; returns the one it replaces (to be closed).
    pub(crate) fn insert(&self, handle: StationHandle) -> Option<StationHandle> {
        let mut map = self.lock();
        map.insert(handle.station().clone(), handle)
    }

    /// Removes the connection if it is still the current one for its station.
    pub(crate) fn remove(&self, handle: &StationHandle) {
        let mut map = self.lock();
        if map
            .get(handle.station())
            .is_some_and(|h| h.connection_id() == handle.connection_id())
        {
            map.remove(handle.station());
        }
    }

    /// The live connection of `station`.
    pub fn get(&self, station: &ChargeStationId) -> Option<StationHandle> {
        self.lock().get(station).cloned()
    }

    /// How many stations are connected.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no station is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ChargeStationId, StationHandle>> {
        // A panic while holding this lock cannot leave the map inconsistent (single insert or
        // remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
