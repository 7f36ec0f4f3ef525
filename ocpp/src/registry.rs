//! Who is connected where, and which transaction belongs to which session.
//!
//! Two halves:
//! - [`Registry`]: the persistent part (stations and the gateway holding them, connector
//!   statuses, pending remote starts, transactions), behind a trait so the store issue can move
//!   it into the shared database. [`SqliteRegistry`] keeps it in a SQLite file: a gateway restart
//!   keeps its transactions, and gateway instances pointed at the same file see each other's
//!   stations.
//! - [`Connections`]: the live sockets of this process, to send CALLs to a station.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use domain::ids::{ChargeStationId, SessionId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::connection::StationHandle;

/// Why the registry could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The database failed; retry later (activities fail retryably, the station gets an
    /// `InternalError` CALLERROR and resends).
    #[error("registry database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A stored value cannot be read back; a bug or a hand-edited database.
    #[error("registry holds an invalid value: {0}")]
    Corrupt(String),
    /// The blocking task running the query died.
    #[error("registry task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
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

    /// Records a new transaction and assigns its id.
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
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stations (
    station_id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    task_queue TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    connected INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connectors (
    station_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (station_id, connector_id)
);
CREATE TABLE IF NOT EXISTS pending_starts (
    id_tag TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    station_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    armed INTEGER NOT NULL,
    preparing INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    transaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    id_tag TEXT NOT NULL,
    session_id TEXT,
    meter_start INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    meter_stop INTEGER,
    stopped_at TEXT,
    stop_reason TEXT
);
CREATE INDEX IF NOT EXISTS transactions_open
    ON transactions (station_id, connector_id) WHERE stopped_at IS NULL;
CREATE INDEX IF NOT EXISTS transactions_tag ON transactions (id_tag);
";

/// [`Registry`] on a SQLite file (WAL mode; queries run on the blocking pool).
#[derive(Clone)]
pub struct SqliteRegistry {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRegistry").finish_non_exhaustive()
    }
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, RegistryError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| RegistryError::Corrupt(format!("timestamp {s}: {e}")))
}

fn parse<T: FromStr>(s: &str) -> Result<T, RegistryError>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| RegistryError::Corrupt(format!("{s}: {e}")))
}

impl SqliteRegistry {
    /// Opens (and creates) the registry file.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| RegistryError::Corrupt(format!("{}: {e}", dir.display())))?;
        }
        Self::init(Connection::open(path)?)
    }

    /// A registry that lives as long as the value (tests).
    pub fn in_memory() -> Result<Self, RegistryError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, RegistryError> {
        // Several gateway processes may share the file: wait for the lock rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, RegistryError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let guard: MutexGuard<'_, Connection> = conn
                .lock()
                .map_err(|_| RegistryError::Corrupt("registry lock poisoned".into()))?;
            f(&guard)
        })
        .await?
    }
}

type TxRow = (
    i64,
    String,
    u32,
    String,
    Option<String>,
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
);

const TX_COLUMNS: &str = "transaction_id, station_id, connector_id, id_tag, session_id, \
     meter_start, started_at, meter_stop, stopped_at, stop_reason";

fn tx_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TxRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn to_transaction(r: TxRow) -> Result<Transaction, RegistryError> {
    let (id, station, connector_id, id_tag, session, meter_start, started, stop, stopped, why) = r;
    let stop = match (stop, stopped) {
        (Some(meter_stop), Some(at)) => Some(TransactionStop {
            meter_stop,
            at: parse_ts(&at)?,
            reason: why,
        }),
        _ => None,
    };
    Ok(Transaction {
        id,
        station: parse(&station)?,
        connector_id,
        id_tag,
        session_id: session.as_deref().map(parse).transpose()?,
        meter_start,
        started_at: parse_ts(&started)?,
        stop,
    })
}

fn query_tx(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Option<Transaction>, RegistryError> {
    let sql = format!("SELECT {TX_COLUMNS} FROM transactions WHERE {filter}");
    conn.query_row(&sql, params, tx_row)
        .optional()?
        .map(to_transaction)
        .transpose()
}

type PendingRow = (String, String, String, u32, String, bool, bool);

fn pending_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn to_pending(r: PendingRow) -> Result<PendingStart, RegistryError> {
    let (id_tag, session, station, connector_id, created, armed, preparing) = r;
    Ok(PendingStart {
        id_tag,
        session_id: parse(&session)?,
        station: parse(&station)?,
        connector_id,
        created_at: parse_ts(&created)?,
        armed,
        preparing,
    })
}

const PENDING_COLUMNS: &str =
    "id_tag, session_id, station_id, connector_id, created_at, armed, preparing";

#[async_trait::async_trait]
impl Registry for SqliteRegistry {
    async fn station_connected(
        &self,
        station: &ChargeStationId,
        location: &StationLocation,
        connection_id: &str,
    ) -> Result<(), RegistryError> {
        let (station, loc, conn_id) = (
            station.to_string(),
            location.clone(),
            connection_id.to_owned(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO stations (station_id, instance_id, task_queue, connection_id, connected, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)
                 ON CONFLICT (station_id) DO UPDATE SET instance_id = ?2, task_queue = ?3,
                     connection_id = ?4, connected = 1, updated_at = ?5",
                params![station, loc.instance_id, loc.task_queue, conn_id, ts(Utc::now())],
            )?;
            Ok(())
        })
        .await
    }

    async fn station_disconnected(
        &self,
        station: &ChargeStationId,
        connection_id: &str,
    ) -> Result<(), RegistryError> {
        let (station, conn_id) = (station.to_string(), connection_id.to_owned());
        self.with(move |c| {
            c.execute(
                "UPDATE stations SET connected = 0, updated_at = ?3
                 WHERE station_id = ?1 AND connection_id = ?2",
                params![station, conn_id, ts(Utc::now())],
            )?;
            Ok(())
        })
        .await
    }

    async fn instance_started(&self, instance_id: &str) -> Result<(), RegistryError> {
        let instance = instance_id.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE stations SET connected = 0 WHERE instance_id = ?1",
                params![instance],
            )?;
            Ok(())
        })
        .await
    }

    async fn locate(
        &self,
        station: &ChargeStationId,
    ) -> Result<Option<StationLocation>, RegistryError> {
        let station = station.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT instance_id, task_queue FROM stations WHERE station_id = ?1 AND connected = 1",
                params![station],
                |r| {
                    Ok(StationLocation {
                        instance_id: r.get(0)?,
                        task_queue: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn set_connector_status(
        &self,
        station: &ChargeStationId,
        s: ConnectorInfo,
    ) -> Result<(), RegistryError> {
        let station = station.to_string();
        self.with(move |c| {
            // Statuses may arrive out of order after an offline period: keep the newest.
            c.execute(
                "INSERT INTO connectors (station_id, connector_id, status, error_code, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (station_id, connector_id) DO UPDATE
                     SET status = ?3, error_code = ?4, at = ?5 WHERE at <= ?5",
                params![station, s.connector_id, s.status, s.error_code, ts(s.at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn connectors(
        &self,
        station: &ChargeStationId,
    ) -> Result<Vec<ConnectorInfo>, RegistryError> {
        let station = station.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT connector_id, status, error_code, at FROM connectors
                 WHERE station_id = ?1 ORDER BY connector_id",
            )?;
            let rows = stmt
                .query_map(params![station], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
                })?
                .collect::<Result<Vec<(u32, String, String, String)>, _>>()?;
            rows.into_iter()
                .map(|(connector_id, status, error_code, at)| {
                    Ok(ConnectorInfo {
                        connector_id,
                        status,
                        error_code,
                        at: parse_ts(&at)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn put_pending_start(&self, p: PendingStart) -> Result<(), RegistryError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO pending_starts (id_tag, session_id, station_id, connector_id, created_at, armed, preparing)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id_tag) DO UPDATE SET session_id = ?2, station_id = ?3,
                     connector_id = ?4, created_at = ?5, armed = ?6, preparing = ?7",
                params![
                    p.id_tag,
                    p.session_id.to_string(),
                    p.station.to_string(),
                    p.connector_id,
                    ts(p.created_at),
                    p.armed,
                    p.preparing
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn pending_start(&self, id_tag: &str) -> Result<Option<PendingStart>, RegistryError> {
        let id_tag = id_tag.to_owned();
        self.with(move |c| {
            let sql = format!("SELECT {PENDING_COLUMNS} FROM pending_starts WHERE id_tag = ?1");
            c.query_row(&sql, params![id_tag], pending_row)
                .optional()?
                .map(to_pending)
                .transpose()
        })
        .await
    }

    async fn armed_start_on(
        &self,
        station: &ChargeStationId,
        connector_id: u32,
    ) -> Result<Option<PendingStart>, RegistryError> {
        let station = station.to_string();
        self.with(move |c| {
            let sql = format!(
                "SELECT {PENDING_COLUMNS} FROM pending_starts
                 WHERE station_id = ?1 AND connector_id = ?2 AND armed = 1
                 ORDER BY created_at DESC LIMIT 1"
            );
            c.query_row(&sql, params![station, connector_id], pending_row)
                .optional()?
                .map(to_pending)
                .transpose()
        })
        .await
    }

    async fn update_pending_start(
        &self,
        id_tag: &str,
        armed: bool,
        preparing: bool,
    ) -> Result<(), RegistryError> {
        let id_tag = id_tag.to_owned();
        self.with(move |c| {
            c.execute(
                "UPDATE pending_starts SET armed = ?2, preparing = ?3 WHERE id_tag = ?1",
                params![id_tag, armed, preparing],
            )?;
            Ok(())
        })
        .await
    }

    async fn remove_pending_start(&self, id_tag: &str) -> Result<(), RegistryError> {
        let id_tag = id_tag.to_owned();
        self.with(move |c| {
            c.execute(
                "DELETE FROM pending_starts WHERE id_tag = ?1",
                params![id_tag],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_transaction(
        &self,
        tx: &NewTransaction,
    ) -> Result<Option<Transaction>, RegistryError> {
        let tx = tx.clone();
        self.with(move |c| {
            query_tx(
                c,
                "station_id = ?1 AND connector_id = ?2 AND id_tag = ?3
                 AND (stopped_at IS NULL OR (meter_start = ?4 AND started_at = ?5))
                 ORDER BY transaction_id DESC LIMIT 1",
                params![
                    tx.station.to_string(),
                    tx.connector_id,
                    tx.id_tag,
                    tx.meter_start,
                    ts(tx.started_at)
                ],
            )
        })
        .await
    }

    async fn insert_transaction(&self, tx: NewTransaction) -> Result<Transaction, RegistryError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO transactions (station_id, connector_id, id_tag, session_id, meter_start, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    tx.station.to_string(),
                    tx.connector_id,
                    tx.id_tag,
                    tx.session_id.as_ref().map(ToString::to_string),
                    tx.meter_start,
                    ts(tx.started_at)
                ],
            )?;
            let id = c.last_insert_rowid();
            Ok(Transaction {
                id,
                station: tx.station,
                connector_id: tx.connector_id,
                id_tag: tx.id_tag,
                session_id: tx.session_id,
                meter_start: tx.meter_start,
                started_at: tx.started_at,
                stop: None,
            })
        })
        .await
    }

    async fn transaction(&self, id: i64) -> Result<Option<Transaction>, RegistryError> {
        self.with(move |c| query_tx(c, "transaction_id = ?1", params![id]))
            .await
    }

    async fn open_transaction_on(
        &self,
        station: &ChargeStationId,
        connector_id: u32,
    ) -> Result<Option<Transaction>, RegistryError> {
        let station = station.to_string();
        self.with(move |c| {
            query_tx(
                c,
                "station_id = ?1 AND connector_id = ?2 AND stopped_at IS NULL
                 ORDER BY transaction_id DESC LIMIT 1",
                params![station, connector_id],
            )
        })
        .await
    }

    async fn open_transaction_for_tag(
        &self,
        id_tag: &str,
    ) -> Result<Option<Transaction>, RegistryError> {
        let id_tag = id_tag.to_owned();
        self.with(move |c| {
            query_tx(
                c,
                "id_tag = ?1 AND session_id IS NOT NULL AND stopped_at IS NULL
                 ORDER BY transaction_id DESC LIMIT 1",
                params![id_tag],
            )
        })
        .await
    }

    async fn stop_transaction(
        &self,
        id: i64,
        stop: TransactionStop,
    ) -> Result<Option<(Transaction, bool)>, RegistryError> {
        self.with(move |c| {
            let changed = c.execute(
                "UPDATE transactions SET meter_stop = ?2, stopped_at = ?3, stop_reason = ?4
                 WHERE transaction_id = ?1 AND stopped_at IS NULL",
                params![id, stop.meter_stop, ts(stop.at), stop.reason],
            )?;
            Ok(query_tx(c, "transaction_id = ?1", params![id])?.map(|t| (t, changed == 1)))
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn station(s: &str) -> ChargeStationId {
        s.parse().unwrap()
    }

    fn new_tx(tag: &str, at: &str) -> NewTransaction {
        NewTransaction {
            station: station("CP1"),
            connector_id: 1,
            id_tag: tag.into(),
            session_id: Some("ses_a".parse().unwrap()),
            meter_start: 100,
            started_at: at.parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn a_reconnect_elsewhere_survives_the_old_disconnect() {
        let r = SqliteRegistry::in_memory().unwrap();
        let cp = station("CP1");
        let a = StationLocation {
            instance_id: "a".into(),
            task_queue: "qa".into(),
        };
        let b = StationLocation {
            instance_id: "b".into(),
            task_queue: "qb".into(),
        };
        r.station_connected(&cp, &a, "c1").await.unwrap();
        r.station_connected(&cp, &b, "c2").await.unwrap();
        r.station_disconnected(&cp, "c1").await.unwrap();
        assert_eq!(r.locate(&cp).await.unwrap(), Some(b));
        r.station_disconnected(&cp, "c2").await.unwrap();
        assert_eq!(r.locate(&cp).await.unwrap(), None);
    }

    #[tokio::test]
    async fn transactions_are_found_again_and_stopped_once() {
        let r = SqliteRegistry::in_memory().unwrap();
        let first = new_tx("T1", "2026-01-01T10:00:00Z");
        let tx = r.insert_transaction(first.clone()).await.unwrap();
        assert_eq!(
            r.find_transaction(&first).await.unwrap().map(|t| t.id),
            Some(tx.id)
        );
        let stop = TransactionStop {
            meter_stop: 500,
            at: "2026-01-01T11:00:00Z".parse().unwrap(),
            reason: Some("Remote".into()),
        };
        let (t, first_stop) = r
            .stop_transaction(tx.id, stop.clone())
            .await
            .unwrap()
            .unwrap();
        assert!(first_stop);
        assert_eq!(t.stop, Some(stop.clone()));
        let later = TransactionStop {
            meter_stop: 999,
            ..stop.clone()
        };
        let (t, first_stop) = r.stop_transaction(tx.id, later).await.unwrap().unwrap();
        assert!(!first_stop);
        assert_eq!(t.stop, Some(stop));
        // A late duplicate of the start still maps to the stopped transaction...
        assert_eq!(
            r.find_transaction(&first).await.unwrap().map(|t| t.id),
            Some(tx.id)
        );
        // ...but a new start of the same tag is a new transaction.
        assert_eq!(
            r.find_transaction(&new_tx("T1", "2026-01-02T10:00:00Z"))
                .await
                .unwrap(),
            None
        );
        assert!(
            r.stop_transaction(9999, t.stop.clone().unwrap())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_file_keeps_transactions_across_reopen() {
        let dir = std::env::temp_dir().join(format!("ocpp-reg-{}", rand::random::<u64>()));
        let path = dir.join("registry.sqlite");
        let id = {
            let r = SqliteRegistry::open(&path).unwrap();
            r.insert_transaction(new_tx("T2", "2026-01-01T10:00:00Z"))
                .await
                .unwrap()
                .id
        };
        let r = SqliteRegistry::open(&path).unwrap();
        let tx = r.transaction(id).await.unwrap().unwrap();
        assert_eq!(tx.id_tag, "T2");
        assert_eq!(tx.session_id.unwrap().as_str(), "ses_a");
        let _ = std::fs::remove_dir_all(dir);
    }
}
