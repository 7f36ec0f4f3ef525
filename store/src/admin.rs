//! Organizations and what they configure: API keys, users, charge stations and connectors,
//! rates, webhook endpoints. Every lookup is scoped to an organization: another organization's
//! row is "not found".

use chrono::{DateTime, Utc};
use domain::ids::{OrganizationId, RateId};
use domain::money::Currency;
use domain::rate::Rate;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};

use crate::entities::{
    api_key, charge_station, connector, organization, rate, user, webhook_endpoint,
};
use crate::{Store, StoreError, decode, encode, secrets};

/// An organization's session settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationSettings {
    /// Currency of its holds.
    pub currency: Currency,
    /// The default hold, minor units (the spec's `minimum_amount_to_start_session`).
    pub minimum_amount_to_start_session: i64,
    /// The largest hold a session may ask for, minor units.
    pub maximum_authorized_amount: i64,
    /// Seconds the driver has to pay.
    pub payment_expiry_seconds: i64,
    /// Seconds from authorization to a started transaction.
    pub start_window_seconds: i64,
    /// Top-up: raise a hold up to this many minor units instead of stopping, where the card
    /// allows it (`None`, the default: off).
    pub top_up_ceiling: Option<i64>,
    /// Top-up: minor units each increment adds (`None`: the session's first hold).
    pub top_up_step: Option<i64>,
}

impl Default for OrganizationSettings {
    fn default() -> Self {
        Self {
            currency: Currency::USD,
            minimum_amount_to_start_session: 1800,
            maximum_authorized_amount: 20_000,
            payment_expiry_seconds: 300,
            start_window_seconds: 300,
            top_up_ceiling: None,
            top_up_step: None,
        }
    }
}

/// A new organization.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    /// Its id.
    pub id: OrganizationId,
    /// Display name.
    pub name: String,
    /// Settings.
    pub settings: OrganizationSettings,
}

/// A freshly created API key: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Key id.
    pub id: String,
    /// The bearer token.
    pub secret: String,
}

/// A new charge station with its OCPP Basic-auth key.
#[derive(Debug, Clone)]
pub struct NewChargeStation {
    /// OCPP identity.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The station's AuthorizationKey (stored salted and hashed).
    pub auth_key: String,
    /// How the station must connect.
    pub security_profile: domain::station::SecurityProfile,
}

/// A new connector.
#[derive(Debug, Clone)]
pub struct NewConnector {
    /// Connector id (`con_…`).
    pub id: String,
    /// Its station.
    pub charge_station_id: String,
    /// OCPP connector number.
    pub connector_number: i32,
    /// The rate it charges.
    pub rate_id: RateId,
    /// The most power it delivers, W.
    pub max_power_w: Option<i64>,
}

/// A new webhook endpoint.
#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    /// Endpoint id.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types to send; empty = all.
    pub events: Vec<String>,
}

impl Store {
    /// Creates an organization.
    pub async fn create_organization(
        &self,
        new: NewOrganization,
        now: DateTime<Utc>,
    ) -> Result<organization::Model, StoreError> {
        if organization::Entity::find_by_id(new.id.to_string())
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!("organization {}", new.id)));
        }
        let s = new.settings;
        Ok(organization::ActiveModel {
            id: Set(new.id.to_string()),
            name: Set(new.name),
            currency: Set(String::from(s.currency)),
            minimum_amount_to_start_session: Set(s.minimum_amount_to_start_session),
            maximum_authorized_amount: Set(s.maximum_authorized_amount),
            payment_expiry_seconds: Set(s.payment_expiry_seconds),
            start_window_seconds: Set(s.start_window_seconds),
            top_up_ceiling: Set(s.top_up_ceiling),
            top_up_step: Set(s.top_up_step),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await?)
    }

    /// An organization.
    pub async fn organization(
        &self,
        id: &OrganizationId,
    ) -> Result<organization::Model, StoreError> {
        organization::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("organization {id}")))
    }

    /// Replaces an organization's settings.
    pub async fn update_settings(
        &self,
        id: &OrganizationId,
        s: OrganizationSettings,
        now: DateTime<Utc>,
    ) -> Result<organization::Model, StoreError> {
        let mut row: organization::ActiveModel = self.organization(id).await?.into();
        row.currency = Set(String::from(s.currency));
        row.minimum_amount_to_start_session = Set(s.minimum_amount_to_start_session);
        row.maximum_authorized_amount = Set(s.maximum_authorized_amount);
        row.payment_expiry_seconds = Set(s.payment_expiry_seconds);
        row.start_window_seconds = Set(s.start_window_seconds);
        row.top_up_ceiling = Set(s.top_up_ceiling);
        row.top_up_step = Set(s.top_up_step);
        row.updated_at = Set(now);
        Ok(row.update(&self.db).await?)
    }

    /// Creates an API key; only its hash is kept.
    pub async fn create_api_key(
        &self,
        org: &OrganizationId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<NewApiKey, StoreError> {
        self.organization(org).await?;
        let secret = secrets::generate("ck_");
        let id = secrets::generate("key_");
        api_key::ActiveModel {
            id: Set(id.clone()),
            organization_id: Set(org.to_string()),
            name: Set(name.to_owned()),
            prefix: Set(secret.chars().take(10).collect()),
            key_hash: Set(secrets::hash(&secret)),
            created_at: Set(now),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(NewApiKey { id, secret })
    }

    /// The organization an API key belongs to, if the key is valid and not revoked.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<OrganizationId>, StoreError> {
        let row = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(secrets::hash(secret)))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?;
        Ok(row.and_then(|r| r.organization_id.parse().ok()))
    }

    /// Revokes an API key of the organization.
    pub async fn revoke_api_key(
        &self,
        org: &OrganizationId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = api_key::Entity::find_by_id(id.to_owned())
            .filter(api_key::Column::OrganizationId.eq(org.to_string()))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("api key {id}")))?;
        let mut row: api_key::ActiveModel = row.into();
        row.revoked_at = Set(Some(now));
        row.update(&self.db).await?;
        Ok(())
    }

    /// Creates a user (driver) of the organization.
    pub async fn create_user(
        &self,
        org: &OrganizationId,
        id: &str,
        name: Option<String>,
        email: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<user::Model, StoreError> {
        Ok(user::ActiveModel {
            id: Set(id.to_owned()),
            organization_id: Set(org.to_string()),
            name: Set(name),
            email: Set(email),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await?)
    }

    /// A user of the organization.
    pub async fn user(
        &self,
        org: &OrganizationId,
        id: &str,
    ) -> Result<Option<user::Model>, StoreError> {
        Ok(user::Entity::find_by_id(id.to_owned())
            .filter(user::Column::OrganizationId.eq(org.to_string()))
            .one(&self.db)
            .await?)
    }

    /// Creates a charge station; its key is stored salted and hashed.
    pub async fn create_charge_station(
        &self,
        org: &OrganizationId,
        new: NewChargeStation,
        now: DateTime<Utc>,
    ) -> Result<charge_station::Model, StoreError> {
        if charge_station::Entity::find_by_id(new.id.clone())
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!("charge station {}", new.id)));
        }
        let salt = secrets::generate("");
        Ok(charge_station::ActiveModel {
            id: Set(new.id),
            organization_id: Set(org.to_string()),
            name: Set(new.name),
            auth_key_hash: Set(secrets::hash_salted(&salt, &new.auth_key)),
            auth_key_salt: Set(salt),
            security_profile: Set(new.security_profile.number().into()),
            gateway_queue: Set(None),
            last_seen_at: Set(None),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&self.db)
        .await?)
    }

    /// Checks a station's Basic-auth credentials (constant-time on the digest).
    pub async fn verify_charge_station(&self, id: &str, key: &str) -> Result<bool, StoreError> {
        let Some(row) = charge_station::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(false);
        };
        Ok(secrets::same_digest(
            &row.auth_key_hash,
            &secrets::hash_salted(&row.auth_key_salt, key),
        ))
    }

    /// A charge station by OCPP identity, whatever its organization (for the gateway).
    pub async fn charge_station(
        &self,
        id: &str,
    ) -> Result<Option<charge_station::Model>, StoreError> {
        Ok(charge_station::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// The organization's charge stations.
    pub async fn charge_stations(
        &self,
        org: &OrganizationId,
    ) -> Result<Vec<charge_station::Model>, StoreError> {
        Ok(charge_station::Entity::find()
            .filter(charge_station::Column::OrganizationId.eq(org.to_string()))
            .order_by_asc(charge_station::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Creates a connector on one of the organization's stations, charging one of its rates.
    pub async fn create_connector(
        &self,
        org: &OrganizationId,
        new: NewConnector,
        now: DateTime<Utc>,
    ) -> Result<connector::Model, StoreError> {
        let station = self.charge_station(&new.charge_station_id).await?;
        if station.is_none_or(|s| s.organization_id != org.to_string()) {
            return Err(StoreError::NotFound(format!(
                "charge station {}",
                new.charge_station_id
            )));
        }
        self.rate(org, &new.rate_id).await?;
        Ok(connector::ActiveModel {
            id: Set(new.id),
            organization_id: Set(org.to_string()),
            charge_station_id: Set(new.charge_station_id),
            connector_number: Set(new.connector_number),
            rate_id: Set(new.rate_id.to_string()),
            status: Set("Unavailable".to_owned()),
            max_power_w: Set(new.max_power_w),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?)
    }

    /// A connector of the organization.
    pub async fn connector(
        &self,
        org: &OrganizationId,
        id: &str,
    ) -> Result<Option<connector::Model>, StoreError> {
        Ok(connector::Entity::find_by_id(id.to_owned())
            .filter(connector::Column::OrganizationId.eq(org.to_string()))
            .one(&self.db)
            .await?)
    }

    /// The connectors of a station.
    pub async fn connectors_of(&self, station: &str) -> Result<Vec<connector::Model>, StoreError> {
        Ok(connector::Entity::find()
            .filter(connector::Column::ChargeStationId.eq(station.to_owned()))
            .order_by_asc(connector::Column::ConnectorNumber)
            .all(&self.db)
            .await?)
    }

    /// Creates a rate after checking it.
    pub async fn create_rate(
        &self,
        org: &OrganizationId,
        id: &RateId,
        name: &str,
        r: &Rate,
        now: DateTime<Utc>,
    ) -> Result<rate::Model, StoreError> {
        Ok(rate::ActiveModel {
            id: Set(id.to_string()),
            organization_id: Set(org.to_string()),
            name: Set(name.to_owned()),
            document: Set(encode("rate", r)?),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?)
    }

    /// A rate of the organization.
    pub async fn rate(&self, org: &OrganizationId, id: &RateId) -> Result<Rate, StoreError> {
        let row = rate::Entity::find_by_id(id.to_string())
            .filter(rate::Column::OrganizationId.eq(org.to_string()))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("rate {id}")))?;
        decode("rate", row.document)
    }

    /// Creates a webhook endpoint with a fresh signing secret.
    pub async fn create_webhook_endpoint(
        &self,
        org: &OrganizationId,
        new: NewWebhookEndpoint,
        now: DateTime<Utc>,
    ) -> Result<webhook_endpoint::Model, StoreError> {
        Ok(webhook_endpoint::ActiveModel {
            id: Set(new.id),
            organization_id: Set(org.to_string()),
            url: Set(new.url),
            secret: Set(secrets::generate("whsec_")),
            events: Set(serde_json::json!(new.events)),
            enabled: Set(true),
            disabled_reason: Set(None),
            consecutive_failures: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?)
    }

    /// The organization's webhook endpoints.
    pub async fn webhook_endpoints(
        &self,
        org: &OrganizationId,
    ) -> Result<Vec<webhook_endpoint::Model>, StoreError> {
        Ok(webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::OrganizationId.eq(org.to_string()))
            .order_by_asc(webhook_endpoint::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// A new signing secret for an endpoint (the old one stops working at once).
    pub async fn rotate_webhook_secret(
        &self,
        org: &OrganizationId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<webhook_endpoint::Model, StoreError> {
        let row = self.endpoint(org, id).await?;
        let mut row: webhook_endpoint::ActiveModel = row.into();
        row.secret = Set(secrets::generate("whsec_"));
        row.updated_at = Set(now);
        Ok(row.update(&self.db).await?)
    }

    /// Enables (clearing the failure count and reason) or disables an endpoint.
    pub async fn set_webhook_enabled(
        &self,
        org: &OrganizationId,
        id: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> Result<webhook_endpoint::Model, StoreError> {
        let row = self.endpoint(org, id).await?;
        let mut row: webhook_endpoint::ActiveModel = row.into();
        row.enabled = Set(enabled);
        if enabled {
            row.disabled_reason = Set(None);
            row.consecutive_failures = Set(0);
        } else {
            row.disabled_reason = Set(Some("disabled through the API".to_owned()));
        }
        row.updated_at = Set(now);
        Ok(row.update(&self.db).await?)
    }

    async fn endpoint(
        &self,
        org: &OrganizationId,
        id: &str,
    ) -> Result<webhook_endpoint::Model, StoreError> {
        webhook_endpoint::Entity::find_by_id(id.to_owned())
            .filter(webhook_endpoint::Column::OrganizationId.eq(org.to_string()))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("webhook endpoint {id}")))
    }
}
