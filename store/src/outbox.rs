//! Webhook deliveries: which are due (in order per endpoint and session), and their outcomes.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use domain::ids::OrganizationId;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entities::{webhook_delivery, webhook_endpoint, webhook_event};
use crate::{Store, StoreError};

/// A delivery ready to be attempted.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// Delivery id.
    pub id: String,
    /// Event id (stable; receivers de-duplicate on it).
    pub event_id: String,
    /// Endpoint id.
    pub endpoint_id: String,
    /// Where to POST.
    pub url: String,
    /// Signing secret.
    pub secret: String,
    /// The event as delivered (JSON).
    pub payload: serde_json::Value,
    /// Attempts so far.
    pub attempts: i32,
}

/// An event with the state of its deliveries, for the event log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventLogEntry {
    /// The event.
    pub event: serde_json::Value,
    /// One per endpoint.
    pub deliveries: Vec<DeliveryState>,
}

/// The state of one delivery, for the event log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryState {
    /// Endpoint id.
    pub endpoint_id: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Last HTTP status, if any.
    pub last_status_code: Option<i32>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Deliveries due at `now`: for each (endpoint, session) only the oldest pending one, so
    /// events reach each endpoint in order; only enabled endpoints.
    pub async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let pending = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq("pending"))
            .order_by_asc(webhook_delivery::Column::SessionId)
            .order_by_asc(webhook_delivery::Column::Seq)
            .limit(2000)
            .all(&self.db)
            .await?;
        let endpoints: Vec<webhook_endpoint::Model> = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .all(&self.db)
            .await?;
        let mut heads = BTreeSet::new();
        let mut due = Vec::new();
        for d in pending {
            if !heads.insert((d.endpoint_id.clone(), d.session_id.clone()))
                || d.next_attempt_at > now
            {
                continue;
            }
            let Some(endpoint) = endpoints.iter().find(|e| e.id == d.endpoint_id) else {
                continue;
            };
            let Some(event) = webhook_event::Entity::find_by_id(d.event_id.clone())
                .one(&self.db)
                .await?
            else {
                continue;
            };
            due.push(DueDelivery {
                id: d.id,
                event_id: d.event_id,
                endpoint_id: d.endpoint_id,
                url: endpoint.url.clone(),
                secret: endpoint.secret.clone(),
                payload: event.payload,
                attempts: d.attempts,
            });
            if due.len() >= limit {
                break;
            }
        }
        Ok(due)
    }

    /// The endpoint answered 2xx.
    pub async fn delivery_succeeded(
        &self,
        id: &str,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = self.delivery(id).await?;
        let endpoint_id = row.endpoint_id.clone();
        let attempts = row.attempts + 1;
        let mut active: webhook_delivery::ActiveModel = row.into();
        active.status = Set("delivered".to_owned());
        active.attempts = Set(attempts);
        active.last_status_code = Set(Some(i32::from(status)));
        active.last_error = Set(None);
        active.delivered_at = Set(Some(now));
        active.update(&self.db).await?;
        if let Some(endpoint) = webhook_endpoint::Entity::find_by_id(endpoint_id)
            .one(&self.db)
            .await?
        {
            let mut e: webhook_endpoint::ActiveModel = endpoint.into();
            e.consecutive_failures = Set(0);
            e.update(&self.db).await?;
        }
        Ok(())
    }

    /// The attempt failed. The delivery is retried at `retry_at`, or given up when `None`.
    /// Returns the endpoint's consecutive failures.
    pub async fn delivery_failed(
        &self,
        id: &str,
        error: &str,
        status: Option<u16>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<i32, StoreError> {
        let row = self.delivery(id).await?;
        let endpoint_id = row.endpoint_id.clone();
        let attempts = row.attempts + 1;
        let mut active: webhook_delivery::ActiveModel = row.into();
        active.attempts = Set(attempts);
        active.last_error = Set(Some(error.to_owned()));
        active.last_status_code = Set(status.map(i32::from));
        match retry_at {
            Some(at) => active.next_attempt_at = Set(at),
            None => active.status = Set("failed".to_owned()),
        }
        active.update(&self.db).await?;
        let endpoint = webhook_endpoint::Entity::find_by_id(endpoint_id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook endpoint {endpoint_id}")))?;
        let failures = endpoint.consecutive_failures + 1;
        let mut e: webhook_endpoint::ActiveModel = endpoint.into();
        e.consecutive_failures = Set(failures);
        e.update(&self.db).await?;
        Ok(failures)
    }

    /// Disables an endpoint that keeps failing, saying why. Its pending deliveries wait.
    pub async fn disable_endpoint(
        &self,
        id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let endpoint = webhook_endpoint::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook endpoint {id}")))?;
        let mut e: webhook_endpoint::ActiveModel = endpoint.into();
        e.enabled = Set(false);
        e.disabled_reason = Set(Some(reason.to_owned()));
        e.updated_at = Set(now);
        e.update(&self.db).await?;
        Ok(())
    }

    /// The organization's events, newest first, with their deliveries; optionally one session's.
    pub async fn event_log(
        &self,
        organization: &OrganizationId,
        session: Option<&str>,
        limit: u64,
    ) -> Result<Vec<EventLogEntry>, StoreError> {
        let mut query = webhook_event::Entity::find()
            .filter(webhook_event::Column::OrganizationId.eq(organization.to_string()));
        if let Some(session) = session {
            query = query.filter(webhook_event::Column::SessionId.eq(session));
        }
        let events = query
            .order_by_desc(webhook_event::Column::CreatedAt)
            .order_by_desc(webhook_event::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut log = Vec::with_capacity(events.len());
        for event in events {
            let deliveries = webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::EventId.eq(event.id.clone()))
                .order_by_asc(webhook_delivery::Column::EndpointId)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|d| DeliveryState {
                    endpoint_id: d.endpoint_id,
                    status: d.status,
                    attempts: d.attempts,
                    last_error: d.last_error,
                    last_status_code: d.last_status_code,
                    delivered_at: d.delivered_at,
                })
                .collect();
            log.push(EventLogEntry {
                event: event.payload,
                deliveries,
            });
        }
        Ok(log)
    }

    /// Queues an event again for every endpoint it was meant for (e.g. after fixing a receiver).
    pub async fn redeliver(
        &self,
        organization: &OrganizationId,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let event = webhook_event::Entity::find_by_id(event_id.to_owned())
            .filter(webhook_event::Column::OrganizationId.eq(organization.to_string()))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("event {event_id}")))?;
        let deliveries = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EventId.eq(event.id))
            .all(&self.db)
            .await?;
        let count = deliveries.len();
        for d in deliveries {
            let mut active: webhook_delivery::ActiveModel = d.into();
            active.status = Set("pending".to_owned());
            active.next_attempt_at = Set(now);
            active.update(&self.db).await?;
        }
        Ok(count)
    }

    async fn delivery(&self, id: &str) -> Result<webhook_delivery::Model, StoreError> {
        webhook_delivery::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook delivery {id}")))
    }
}
