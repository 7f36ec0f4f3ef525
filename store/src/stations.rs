//! The OCPP station registry: which gateway instance holds each station's socket, connector
//! statuses, pending remote starts and OCPP transactions. Shared by every gateway and sessions
//! worker on the store's database, so it works across hosts.
//!
//! What the store's admin tables see: a station's `gateway_queue` / `last_seen_at` and its
//! connectors' `status` / `updated_at` are kept in step with the registry, in the same
//! database transaction, when the station is one of the store's charge stations.
//!
//! Races between gateways are settled by the database: connection changes are conditional
//! updates keyed by the connection id, connector statuses are conditional upserts (the newest
//! report wins), transaction ids come from an auto-increment key, and a unique index on the
//! StartTransaction's fields makes a duplicate start one transaction.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Alias, Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait, TryInsertResult,
};

use crate::entities::{
    charge_station, connector, ocpp_transaction, ocpp_transaction_event, pending_start,
    station_connection, station_connector,
};
use crate::{Store, StoreError};

/// How long a gateway's word that it holds a station lasts. Gateways renew it for every station
/// they hold at a third of this ([`Store::renew_gateway_lease`]); a station whose gateway missed
/// three renewals counts as offline even though no disconnect was recorded.
pub const GATEWAY_LEASE: std::time::Duration = std::time::Duration::from_secs(90);

/// Times are kept to the millisecond on every backend, so a repeated message's timestamp
/// compares equal to the stored one whatever the database's precision.
fn ms(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(3)
}

/// A transaction to record (a StartTransaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOcppTransaction {
    /// The station.
    pub station_id: String,
    /// The connector.
    pub connector_id: i32,
    /// The id tag it runs for.
    pub id_tag: String,
    /// The session, when the id tag is a session's.
    pub session_id: Option<String>,
    /// Energy register at start, Wh.
    pub meter_start: i64,
    /// Station time of the start.
    pub started_at: DateTime<Utc>,
}

impl Store {
    /// `station` is now connected to gateway `instance_id` (queue `task_queue`) through
    /// `connection_id`; replaces any earlier connection, wherever it was.
    pub async fn station_connected(
        &self,
        station: &str,
        instance_id: &str,
        task_queue: &str,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ms(now);
        let txn = self.db.begin().await?;
        // The write comes first: on SQLite the transaction takes the write lock at once instead
        // of failing to upgrade a read lock another process raced.
        station_connection::Entity::insert(station_connection::ActiveModel {
            station_id: Set(station.to_owned()),
            instance_id: Set(instance_id.to_owned()),
            task_queue: Set(task_queue.to_owned()),
            connection_id: Set(connection_id.to_owned()),
            connected: Set(true),
            connected_at: Set(now),
            disconnected_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(station_connection::Column::StationId)
                .update_columns([
                    station_connection::Column::InstanceId,
                    station_connection::Column::TaskQueue,
                    station_connection::Column::ConnectionId,
                    station_connection::Column::Connected,
                    station_connection::Column::ConnectedAt,
                    station_connection::Column::DisconnectedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        mirror_gateway(&txn, station, Some(task_queue.to_owned()), now).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Connection `connection_id` of `station` closed. Changes nothing when the station has
    /// connected again since (to this gateway or another).
    pub async fn station_disconnected(
        &self,
        station: &str,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ms(now);
        let txn = self.db.begin().await?;
        let closed = station_connection::Entity::update_many()
            .col_expr(station_connection::Column::Connected, Expr::value(false))
            .col_expr(
                station_connection::Column::DisconnectedAt,
                Expr::value(Some(now)),
            )
            .filter(station_connection::Column::StationId.eq(station))
            .filter(station_connection::Column::ConnectionId.eq(connection_id))
            .filter(station_connection::Column::Connected.eq(true))
            .exec(&txn)
            .await?;
        if closed.rows_affected == 1 {
            mirror_gateway(&txn, station, None, now).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Gateway queue `task_queue` is alive and still holds its stations: renews their lease
    /// (one statement, whatever the number of stations).
    pub async fn renew_gateway_lease(
        &self,
        task_queue: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let renewed = charge_station::Entity::update_many()
            .col_expr(
                charge_station::Column::LastSeenAt,
                Expr::value(Some(ms(now))),
            )
            .filter(charge_station::Column::GatewayQueue.eq(task_queue))
            .exec(&self.db)
            .await?;
        Ok(renewed.rows_affected)
    }

    /// Gateway `instance_id` (re)started: every station it held is offline until it reconnects.
    pub async fn instance_started(
        &self,
        instance_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ms(now);
        let held = station_connection::Entity::find()
            .filter(station_connection::Column::InstanceId.eq(instance_id))
            .filter(station_connection::Column::Connected.eq(true))
            .all(&self.db)
            .await?;
        for row in held {
            // Row by row, each conditional on the connection still being the one we saw: a
            // station that moved to another gateway meanwhile stays online.
            self.station_disconnected(&row.station_id, &row.connection_id, now)
                .await?;
        }
        Ok(())
    }

    /// The station's connection row (connected or not); `None` if it never connected.
    pub async fn station_connection(
        &self,
        station: &str,
    ) -> Result<Option<station_connection::Model>, StoreError> {
        Ok(station_connection::Entity::find_by_id(station.to_owned())
            .one(&self.db)
            .await?)
    }

    /// Records a connector status unless a newer report is already stored (reports may arrive
    /// out of order after an offline period), and mirrors the newest into the store's
    /// connector rows.
    pub async fn record_connector_status(
        &self,
        station: &str,
        connector_id: i32,
        status: &str,
        error_code: &str,
        reported_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use station_connector::Column as C;
        let txn = self.db.begin().await?;
        station_connector::Entity::insert(station_connector::ActiveModel {
            station_id: Set(station.to_owned()),
            connector_id: Set(connector_id),
            status: Set(status.to_owned()),
            error_code: Set(error_code.to_owned()),
            reported_at: Set(ms(reported_at)),
        })
        .on_conflict(
            OnConflict::columns([C::StationId, C::ConnectorId])
                .update_columns([C::Status, C::ErrorCode, C::ReportedAt])
                .action_and_where(
                    Expr::col((station_connector::Entity, C::ReportedAt))
                        .lte(Expr::col((Alias::new("excluded"), C::ReportedAt))),
                )
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        // Read back what won (ours or a newer one) while this transaction holds the row.
        let newest = station_connector::Entity::find_by_id((station.to_owned(), connector_id))
            .one(&txn)
            .await?;
        if let Some(newest) = newest {
            connector::Entity::update_many()
                .col_expr(connector::Column::Status, Expr::value(newest.status))
                .col_expr(
                    connector::Column::UpdatedAt,
                    Expr::value(newest.reported_at),
                )
                .filter(connector::Column::ChargeStationId.eq(station))
                .filter(connector::Column::ConnectorNumber.eq(connector_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// The last status of each of the station's connectors, by connector number.
    pub async fn connector_statuses(
        &self,
        station: &str,
    ) -> Result<Vec<station_connector::Model>, StoreError> {
        Ok(station_connector::Entity::find()
            .filter(station_connector::Column::StationId.eq(station))
            .order_by_asc(station_connector::Column::ConnectorId)
            .all(&self.db)
            .await?)
    }

    /// Records a pending remote start, or re-arms the one of the same id tag.
    pub async fn put_pending_start(&self, p: pending_start::Model) -> Result<(), StoreError> {
        use pending_start::Column as C;
        pending_start::Entity::insert(pending_start::ActiveModel {
            id_tag: Set(p.id_tag),
            session_id: Set(p.session_id),
            station_id: Set(p.station_id),
            connector_id: Set(p.connector_id),
            created_at: Set(ms(p.created_at)),
            armed: Set(p.armed),
            preparing: Set(p.preparing),
        })
        .on_conflict(
            OnConflict::column(C::IdTag)
                .update_columns([
                    C::SessionId,
                    C::StationId,
                    C::ConnectorId,
                    C::CreatedAt,
                    C::Armed,
                    C::Preparing,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// The pending start of `id_tag`.
    pub async fn pending_start(
        &self,
        id_tag: &str,
    ) -> Result<Option<pending_start::Model>, StoreError> {
        Ok(pending_start::Entity::find_by_id(id_tag.to_owned())
            .one(&self.db)
            .await?)
    }

    /// The newest armed pending start on a connector.
    pub async fn armed_start_on(
        &self,
        station: &str,
        connector_id: i32,
    ) -> Result<Option<pending_start::Model>, StoreError> {
        Ok(pending_start::Entity::find()
            .filter(pending_start::Column::StationId.eq(station))
            .filter(pending_start::Column::ConnectorId.eq(connector_id))
            .filter(pending_start::Column::Armed.eq(true))
            .order_by_desc(pending_start::Column::CreatedAt)
            .one(&self.db)
            .await?)
    }

    /// Sets the flags of a pending start (no-op when there is none).
    pub async fn update_pending_start(
        &self,
        id_tag: &str,
        armed: bool,
        preparing: bool,
    ) -> Result<(), StoreError> {
        pending_start::Entity::update_many()
            .col_expr(pending_start::Column::Armed, Expr::value(armed))
            .col_expr(pending_start::Column::Preparing, Expr::value(preparing))
            .filter(pending_start::Column::IdTag.eq(id_tag))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets a pending start.
    pub async fn remove_pending_start(&self, id_tag: &str) -> Result<(), StoreError> {
        pending_start::Entity::delete_by_id(id_tag.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The transaction a repeated StartTransaction refers to: the newest open one of the same
    /// id tag on the same connector, or a stopped one with the same start register and time.
    pub async fn find_repeated_transaction(
        &self,
        tx: &NewOcppTransaction,
    ) -> Result<Option<ocpp_transaction::Model>, StoreError> {
        use ocpp_transaction::Column as C;
        Ok(ocpp_transaction::Entity::find()
            .filter(C::StationId.eq(tx.station_id.as_str()))
            .filter(C::ConnectorId.eq(tx.connector_id))
            .filter(C::IdTag.eq(tx.id_tag.as_str()))
            .filter(
                Condition::any().add(C::StoppedAt.is_null()).add(
                    Condition::all()
                        .add(C::MeterStart.eq(tx.meter_start))
                        .add(C::StartedAt.eq(ms(tx.started_at))),
                ),
            )
            .order_by_desc(C::Id)
            .one(&self.db)
            .await?)
    }

    /// Records a transaction and assigns its id (the next of the database's sequence, unique
    /// across gateways). The same start recorded twice (a duplicate StartTransaction handled
    /// by two gateways at once) is one transaction: the first row is returned.
    pub async fn insert_ocpp_transaction(
        &self,
        tx: NewOcppTransaction,
    ) -> Result<ocpp_transaction::Model, StoreError> {
        use ocpp_transaction::Column as C;
        let started_at = ms(tx.started_at);
        ocpp_transaction::Entity::insert(ocpp_transaction::ActiveModel {
            station_id: Set(tx.station_id.clone()),
            connector_id: Set(tx.connector_id),
            id_tag: Set(tx.id_tag.clone()),
            session_id: Set(tx.session_id),
            meter_start: Set(tx.meter_start),
            started_at: Set(started_at),
            meter_stop: Set(None),
            stopped_at: Set(None),
            stop_reason: Set(None),
            station_transaction_id: Set(None),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                C::StationId,
                C::ConnectorId,
                C::IdTag,
                C::MeterStart,
                C::StartedAt,
            ])
            .do_nothing()
            .to_owned(),
        )
        .do_nothing()
        .exec_without_returning(&self.db)
        .await?;
        ocpp_transaction::Entity::find()
            .filter(C::StationId.eq(tx.station_id.as_str()))
            .filter(C::ConnectorId.eq(tx.connector_id))
            .filter(C::IdTag.eq(tx.id_tag.as_str()))
            .filter(C::MeterStart.eq(tx.meter_start))
            .filter(C::StartedAt.eq(started_at))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "transaction just recorded for {} connector {}",
                    tx.station_id, tx.connector_id
                ))
            })
    }

    /// Records an OCPP 2.0.1 transaction under the station's own id and assigns its number
    /// (the next of the database's sequence). The same station transaction recorded twice (a
    /// repeated or duplicated event) is one row: the first is returned, with `false`.
    pub async fn insert_station_transaction(
        &self,
        tx: NewOcppTransaction,
        station_transaction_id: &str,
    ) -> Result<(ocpp_transaction::Model, bool), StoreError> {
        use ocpp_transaction::Column as C;
        let inserted = ocpp_transaction::Entity::insert(ocpp_transaction::ActiveModel {
            station_id: Set(tx.station_id.clone()),
            connector_id: Set(tx.connector_id),
            id_tag: Set(tx.id_tag.clone()),
            session_id: Set(tx.session_id),
            meter_start: Set(tx.meter_start),
            started_at: Set(ms(tx.started_at)),
            meter_stop: Set(None),
            stopped_at: Set(None),
            stop_reason: Set(None),
            station_transaction_id: Set(Some(station_transaction_id.to_owned())),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([C::StationId, C::StationTransactionId])
                .do_nothing()
                .to_owned(),
        )
        .do_nothing()
        .exec_without_returning(&self.db)
        .await?;
        let row = self
            .station_transaction(&tx.station_id, station_transaction_id)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "transaction {station_transaction_id} just recorded for {}",
                    tx.station_id
                ))
            })?;
        Ok((row, matches!(inserted, TryInsertResult::Inserted(1))))
    }

    /// The OCPP 2.0.1 transaction `station_transaction_id` of `station`.
    pub async fn station_transaction(
        &self,
        station: &str,
        station_transaction_id: &str,
    ) -> Result<Option<ocpp_transaction::Model>, StoreError> {
        use ocpp_transaction::Column as C;
        Ok(ocpp_transaction::Entity::find()
            .filter(C::StationId.eq(station))
            .filter(C::StationTransactionId.eq(station_transaction_id))
            .one(&self.db)
            .await?)
    }

    /// Gives transaction `id`, recorded without a session, to `session_id` (OCPP 2.0.1: the
    /// token may come in a later event than the start), whose part of it starts at
    /// `started_at` with register `meter_start`. Returns whether this call bound it; `false`
    /// when it already had a session.
    pub async fn bind_ocpp_transaction(
        &self,
        id: i64,
        id_tag: &str,
        session_id: &str,
        started_at: DateTime<Utc>,
        meter_start: i64,
    ) -> Result<bool, StoreError> {
        use ocpp_transaction::Column as C;
        let bound = ocpp_transaction::Entity::update_many()
            .col_expr(C::IdTag, Expr::value(id_tag))
            .col_expr(C::SessionId, Expr::value(Some(session_id.to_owned())))
            .col_expr(C::StartedAt, Expr::value(ms(started_at)))
            .col_expr(C::MeterStart, Expr::value(meter_start))
            .filter(C::Id.eq(id))
            .filter(C::SessionId.is_null())
            .exec(&self.db)
            .await?;
        Ok(bound.rows_affected == 1)
    }

    /// Whether transaction `id` had the event numbered `seq_no` already.
    pub async fn transaction_event_seen(&self, id: i64, seq_no: i64) -> Result<bool, StoreError> {
        Ok(ocpp_transaction_event::Entity::find_by_id((id, seq_no))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Records that transaction `id` had the event numbered `seq_no`. Returns `false` when it
    /// had it already (a repeat), so the caller acts on each event once.
    pub async fn record_transaction_event(
        &self,
        id: i64,
        seq_no: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use ocpp_transaction_event::Column as C;
        let inserted =
            ocpp_transaction_event::Entity::insert(ocpp_transaction_event::ActiveModel {
                transaction_id: Set(id),
                seq_no: Set(seq_no),
                received_at: Set(ms(at)),
            })
            .on_conflict(
                OnConflict::columns([C::TransactionId, C::SeqNo])
                    .do_nothing()
                    .to_owned(),
            )
            .do_nothing()
            .exec_without_returning(&self.db)
            .await?;
        Ok(matches!(inserted, TryInsertResult::Inserted(1)))
    }

    /// An OCPP transaction by id.
    pub async fn ocpp_transaction(
        &self,
        id: i64,
    ) -> Result<Option<ocpp_transaction::Model>, StoreError> {
        Ok(ocpp_transaction::Entity::find_by_id(id)
            .one(&self.db)
            .await?)
    }

    /// The OCPP transactions of a session, oldest first (one, unless a station started twice).
    pub async fn session_transactions(
        &self,
        session_id: &str,
    ) -> Result<Vec<ocpp_transaction::Model>, StoreError> {
        Ok(ocpp_transaction::Entity::find()
            .filter(ocpp_transaction::Column::SessionId.eq(session_id))
            .order_by_asc(ocpp_transaction::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// The newest open transaction on a connector.
    pub async fn open_transaction_on(
        &self,
        station: &str,
        connector_id: i32,
    ) -> Result<Option<ocpp_transaction::Model>, StoreError> {
        use ocpp_transaction::Column as C;
        Ok(ocpp_transaction::Entity::find()
            .filter(C::StationId.eq(station))
            .filter(C::ConnectorId.eq(connector_id))
            .filter(C::StoppedAt.is_null())
            .order_by_desc(C::Id)
            .one(&self.db)
            .await?)
    }

    /// The newest open transaction of `id_tag` that belongs to a session.
    pub async fn open_session_transaction_for_tag(
        &self,
        id_tag: &str,
    ) -> Result<Option<ocpp_transaction::Model>, StoreError> {
        use ocpp_transaction::Column as C;
        Ok(ocpp_transaction::Entity::find()
            .filter(C::IdTag.eq(id_tag))
            .filter(C::SessionId.is_not_null())
            .filter(C::StoppedAt.is_null())
            .order_by_desc(C::Id)
            .one(&self.db)
            .await?)
    }

    /// Records the stop of transaction `id` unless it is already stopped. Returns the
    /// transaction (with the first stop when this was a repeat) and whether this was the first
    /// stop; `None` for an unknown id.
    pub async fn stop_ocpp_transaction(
        &self,
        id: i64,
        meter_stop: i64,
        at: DateTime<Utc>,
        reason: Option<String>,
    ) -> Result<Option<(ocpp_transaction::Model, bool)>, StoreError> {
        use ocpp_transaction::Column as C;
        let stopped = ocpp_transaction::Entity::update_many()
            .col_expr(C::MeterStop, Expr::value(Some(meter_stop)))
            .col_expr(C::StoppedAt, Expr::value(Some(ms(at))))
            .col_expr(C::StopReason, Expr::value(reason))
            .filter(C::Id.eq(id))
            .filter(C::StoppedAt.is_null())
            .exec(&self.db)
            .await?;
        let first = stopped.rows_affected == 1;
        Ok(self.ocpp_transaction(id).await?.map(|t| (t, first)))
    }
}

/// Keeps the store's charge-station row (if the station is one) in step with the registry.
async fn mirror_gateway<C: sea_orm::ConnectionTrait>(
    db: &C,
    station: &str,
    queue: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    charge_station::Entity::update_many()
        .col_expr(charge_station::Column::GatewayQueue, Expr::value(queue))
        .col_expr(charge_station::Column::LastSeenAt, Expr::value(Some(now)))
        .filter(charge_station::Column::Id.eq(station))
        .exec(db)
        .await?;
    Ok(())
}
