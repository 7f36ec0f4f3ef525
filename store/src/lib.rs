//! chargelink's store: organizations, API keys, users, charge stations and connectors, rates,
//! the sessions read model, webhook endpoints, the webhook outbox with its deliveries, and the
//! OCPP station registry (which gateway holds each station, connector statuses, transactions).
//! SQLite file by default, PostgreSQL in production; the same migrations run on both.
//!
//! # Layout
//! - [`entities`]: sea-orm entities, one per table.
//! - [`migration`]: the migrations (`Store::migrate`, `chargelink migrate`).
//! - [`Store`]: the queries the rest of chargelink uses; each method says what it guarantees.
//! - [`secrets`]: API-key and station-key hashing.

pub mod entities;
pub mod migration;
pub mod secrets;

mod admin;
mod outbox;
mod receipts;
mod sessions;
mod stations;

pub use admin::{
    NewApiKey, NewChargeStation, NewConnector, NewOrganization, NewWebhookEndpoint,
    OrganizationSettings,
};
pub use outbox::{DueDelivery, EventLogEntry};
pub use receipts::OperatorDetails;
pub use sessions::{SessionFilter, SessionPage};
pub use stations::{GATEWAY_LEASE, NewOcppTransaction};

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the statement; retrying may help.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// A stored document does not decode; the row was written by an incompatible version.
    #[error("stored {what} does not decode: {source}")]
    Corrupt {
        /// Which document.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// A referenced row does not exist (or belongs to another organization).
    #[error("{0} not found")]
    NotFound(String),
    /// The row already exists.
    #[error("{0} already exists")]
    Conflict(String),
}

/// A connection pool to the store.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db?mode=rwc`, `sqlite::memory:` or
    /// `postgres://user:pass@host/db`) without migrating.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            .max_connections(if url.starts_with("sqlite") { 1 } else { 10 });
        let db = Database::connect(options).await?;
        if url.starts_with("sqlite") {
            // Several processes (api, worker, gateway) share the file locally: readers must not
            // block the writer, and a writer waits for another instead of failing at once.
            use sea_orm::ConnectionTrait;
            db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;")
                .await?;
        }
        Ok(Self { db })
    }

    /// Connects and applies pending migrations (what the services do at start).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // Several services may start at once and race to apply the same migration; the loser
        // fails on the version's unique key, then finds it applied on the next attempt.
        let mut attempt = 0;
        loop {
            match migration::Migrator::up(&self.db, None).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "migration raced another process; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(300 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The underlying connection (for tests and tools).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    value: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|source| StoreError::Corrupt { what, source })
}

fn encode<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|source| StoreError::Corrupt { what, source })
}
