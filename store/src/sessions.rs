//! The sessions read model and the write that keeps it and the outbox in step.

use chrono::{DateTime, Utc};
use domain::events::{EventType, SessionEvent};
use domain::ids::{ChargeStationId, OrganizationId, SessionId};
use domain::session::{Session, SessionStatus};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::entities::{session, webhook_delivery, webhook_endpoint, webhook_event};
use crate::{Store, StoreError, decode, encode};

/// Filters for listing sessions.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Only sessions in this status.
    pub status: Option<SessionStatus>,
    /// Only sessions on this charge station.
    pub charge_station: Option<ChargeStationId>,
}

/// One page of sessions, newest first.
#[derive(Debug, Clone)]
pub struct SessionPage {
    /// The sessions.
    pub sessions: Vec<Session>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl Store {
    /// Upserts the session and appends `events` to the outbox, fanning each new event out to the
    /// organization's enabled endpoints that subscribe to it, in one transaction. Idempotent: an
    /// event id already stored is skipped, and an older session state never overwrites a newer
    /// one, so a retried or late activity changes nothing. Returns the events stored now (not
    /// stored before), so each is counted once in the metrics.
    pub async fn record_session(
        &self,
        organization: &OrganizationId,
        session: &Session,
        events: &[SessionEvent],
    ) -> Result<Vec<EventType>, StoreError> {
        let mut stored = Vec::new();
        let txn = self.db.begin().await?;
        let document = encode("session", session)?;
        let last_seq = events.iter().map(|e| e.seq).max().unwrap_or(0);
        let last_seq = i32::try_from(last_seq).unwrap_or(i32::MAX);
        let existing = session::Entity::find_by_id(session.id.to_string())
            .one(&txn)
            .await?;
        match existing {
            Some(row)
                if row.updated_at > session.updated_at
                    || row.events_written > last_seq && last_seq > 0 =>
            {
                // A newer state is already stored.
            }
            Some(row) => {
                let mut active: session::ActiveModel = row.into();
                active.status = Set(session.status.as_str().to_owned());
                active.document = Set(document);
                active.updated_at = Set(session.updated_at);
                if last_seq > 0 {
                    active.events_written = Set(last_seq);
                }
                sea_orm::ActiveModelTrait::update(active, &txn).await?;
            }
            None => {
                session::Entity::insert(session::ActiveModel {
                    id: Set(session.id.to_string()),
                    organization_id: Set(organization.to_string()),
                    status: Set(session.status.as_str().to_owned()),
                    charge_station_id: Set(session.chargestation.to_string()),
                    connector_id: Set(session.connector.to_string()),
                    user_id: Set(session.user.to_string()),
                    document: Set(document),
                    events_written: Set(last_seq),
                    created_at: Set(session.created_at),
                    updated_at: Set(session.updated_at),
                })
                .exec(&txn)
                .await?;
            }
        }

        if !events.is_empty() {
            let endpoints = webhook_endpoint::Entity::find()
                .filter(webhook_endpoint::Column::OrganizationId.eq(organization.to_string()))
                .filter(webhook_endpoint::Column::Enabled.eq(true))
                .all(&txn)
                .await?;
            for event in events {
                let inserted = webhook_event::Entity::insert(webhook_event::ActiveModel {
                    id: Set(event.id.clone()),
                    organization_id: Set(organization.to_string()),
                    session_id: Set(session.id.to_string()),
                    seq: Set(i32::try_from(event.seq).unwrap_or(i32::MAX)),
                    event_type: Set(event.kind.as_str().to_owned()),
                    payload: Set(encode("event", event)?),
                    created_at: Set(event.created_at),
                })
                .on_conflict(
                    OnConflict::column(webhook_event::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
                if inserted == 0 {
                    continue;
                }
                stored.push(event.kind);
                for endpoint in endpoints.iter().filter(|e| subscribes(e, event)) {
                    insert_delivery(&txn, endpoint, event, &session.id).await?;
                }
            }
        }
        txn.commit().await?;
        Ok(stored)
    }

    /// Sessions by status, across organizations (the API's `chargelink_sessions` gauge).
    pub async fn count_by_status(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = session::Entity::find()
            .select_only()
            .column(session::Column::Status)
            .column_as(session::Column::Id.count(), "n")
            .group_by(session::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(status, n)| (status, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// The session, if it belongs to `organization`.
    pub async fn session(
        &self,
        organization: &OrganizationId,
        id: &SessionId,
    ) -> Result<Option<Session>, StoreError> {
        let row = session::Entity::find_by_id(id.to_string())
            .filter(session::Column::OrganizationId.eq(organization.to_string()))
            .one(&self.db)
            .await?;
        row.map(|r| decode("session", r.document)).transpose()
    }

    /// A session by id whatever its organization (driver-facing pages, where the random session
    /// id is the capability).
    pub async fn session_by_id(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let row = session::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?;
        row.map(|r| decode("session", r.document)).transpose()
    }

    /// The events of `organization`'s session `id` after position `after_seq` (0: all), in
    /// order, at most `limit`. The outbox keeps them for webhooks; gRPC `Watch` streams them.
    pub async fn session_events(
        &self,
        organization: &OrganizationId,
        id: &SessionId,
        after_seq: u32,
        limit: u64,
    ) -> Result<Vec<SessionEvent>, StoreError> {
        webhook_event::Entity::find()
            .filter(webhook_event::Column::SessionId.eq(id.to_string()))
            .filter(webhook_event::Column::OrganizationId.eq(organization.to_string()))
            .filter(webhook_event::Column::Seq.gt(i32::try_from(after_seq).unwrap_or(i32::MAX)))
            .order_by_asc(webhook_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| decode("event", row.payload))
            .collect()
    }

    /// The position of event `event_id` in `organization`'s session `id`, if it is one of its
    /// events.
    pub async fn session_event_seq(
        &self,
        organization: &OrganizationId,
        id: &SessionId,
        event_id: &str,
    ) -> Result<Option<u32>, StoreError> {
        let row = webhook_event::Entity::find_by_id(event_id.to_owned())
            .filter(webhook_event::Column::SessionId.eq(id.to_string()))
            .filter(webhook_event::Column::OrganizationId.eq(organization.to_string()))
            .one(&self.db)
            .await?;
        Ok(row.map(|r| u32::try_from(r.seq).unwrap_or(0)))
    }

    /// The session that holds `connector` now (created, started or paused), if any.
    pub async fn active_session_on(&self, connector: &str) -> Result<Option<Session>, StoreError> {
        let row = session::Entity::find()
            .filter(session::Column::ConnectorId.eq(connector.to_owned()))
            .filter(session::Column::Status.is_in([
                SessionStatus::Created.as_str(),
                SessionStatus::Started.as_str(),
                SessionStatus::Paused.as_str(),
            ]))
            .order_by_desc(session::Column::CreatedAt)
            .one(&self.db)
            .await?;
        row.map(|r| decode("session", r.document)).transpose()
    }

    /// Sessions of `organization`, newest first, `limit` at a time; `cursor` comes from the
    /// previous page.
    pub async fn list_sessions(
        &self,
        organization: &OrganizationId,
        filter: &SessionFilter,
        cursor: Option<&str>,
        limit: u64,
    ) -> Result<SessionPage, StoreError> {
        let mut query = session::Entity::find()
            .filter(session::Column::OrganizationId.eq(organization.to_string()));
        if let Some(status) = filter.status {
            query = query.filter(session::Column::Status.eq(status.as_str()));
        }
        if let Some(station) = &filter.charge_station {
            query = query.filter(session::Column::ChargeStationId.eq(station.to_string()));
        }
        if let Some((created, id)) = cursor.and_then(parse_cursor) {
            // Keyset pagination on (created_at, id), both descending.
            query = query.filter(
                Condition::any()
                    .add(session::Column::CreatedAt.lt(created))
                    .add(
                        Condition::all()
                            .add(session::Column::CreatedAt.eq(created))
                            .add(session::Column::Id.lt(id)),
                    ),
            );
        }
        let rows = query
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > limit;
        let rows: Vec<_> = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        let next_cursor = if more {
            rows.last().map(|r| make_cursor(r.created_at, &r.id))
        } else {
            None
        };
        let sessions = rows
            .into_iter()
            .map(|r| decode("session", r.document))
            .collect::<Result<_, _>>()?;
        Ok(SessionPage {
            sessions,
            next_cursor,
        })
    }
}

fn subscribes(endpoint: &webhook_endpoint::Model, event: &SessionEvent) -> bool {
    match endpoint.events.as_array() {
        Some(types) if !types.is_empty() => types
            .iter()
            .any(|t| t.as_str() == Some(event.kind.as_str())),
        _ => event.kind.in_spec(),
    }
}

async fn insert_delivery(
    txn: &sea_orm::DatabaseTransaction,
    endpoint: &webhook_endpoint::Model,
    event: &SessionEvent,
    session: &SessionId,
) -> Result<(), StoreError> {
    webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
        id: Set(format!("{}:{}", event.id, endpoint.id)),
        event_id: Set(event.id.clone()),
        endpoint_id: Set(endpoint.id.clone()),
        session_id: Set(session.to_string()),
        seq: Set(i32::try_from(event.seq).unwrap_or(i32::MAX)),
        status: Set("pending".to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(event.created_at),
        last_error: Set(None),
        last_status_code: Set(None),
        delivered_at: Set(None),
        created_at: Set(event.created_at),
    })
    .on_conflict(
        OnConflict::column(webhook_delivery::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

fn make_cursor(created: DateTime<Utc>, id: &str) -> String {
    format!("{}_{id}", created.timestamp_micros())
}

fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, id) = cursor.split_once('_')?;
    let created = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
    Some((created, id.to_owned()))
}
