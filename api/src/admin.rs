//! Admin resources. The operator (admin token) creates organizations; an organization (its API
//! key) configures its settings, keys, users, charge stations with connectors, rates, webhook
//! endpoints, and reads its event log.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use domain::ids::{OrganizationId, RateId};
use domain::rate::Rate;
use domain::station::SecurityProfile;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{
    NewChargeStation, NewConnector, NewOrganization, NewWebhookEndpoint, OrganizationSettings,
};

use crate::AppState;
use crate::auth::{Operator, Org};
use crate::error::ApiError;

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(ApiError::from)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

fn settings_json(o: &store::entities::organization::Model) -> Value {
    let mut v = json!({
        "_id": o.id, "name": o.name, "currency": o.currency,
        "minimum_amount_to_start_session": o.minimum_amount_to_start_session,
        "maximum_authorized_amount": o.maximum_authorized_amount,
        "payment_expiry_time": o.payment_expiry_seconds,
        "start_window": o.start_window_seconds,
        "operator_name": o.operator_name, "tax_id": o.tax_id, "operator_address": o.operator_address,
        "createdAt": o.created_at, "updatedAt": o.updated_at,
    });
    // Shown only when on, so an organization without top-up reads as before.
    if let Some(ceiling) = o.top_up_ceiling {
        v["top_up"] = json!({ "ceiling": ceiling, "step": o.top_up_step });
    }
    v
}

/// `POST /admin/organizations` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// Display name.
    pub name: String,
    /// Settings; defaults apply where omitted.
    #[serde(default)]
    pub settings: Option<SettingsBody>,
}

/// Organization settings (amounts in minor units, times in seconds).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// ISO 4217 currency of holds.
    pub currency: String,
    /// Default hold.
    pub minimum_amount_to_start_session: i64,
    /// Largest hold a session may ask for.
    pub maximum_authorized_amount: i64,
    /// Seconds the driver has to pay.
    pub payment_expiry_time: i64,
    /// Seconds from authorization to start.
    pub start_window: i64,
    /// The operator's name on receipts (default: the organization's name). Omitted: left as
    /// it is; `""` clears it.
    #[serde(default)]
    pub operator_name: Option<String>,
    /// The operator's VAT / tax id on receipts. Omitted: left as it is; `""` clears it.
    #[serde(default)]
    pub tax_id: Option<String>,
    /// The operator's postal address on receipts. Omitted: left as it is; `""` clears it.
    #[serde(default)]
    pub operator_address: Option<String>,
    /// Top-up: raise a session's hold (incremental authorization) instead of stopping it,
    /// where the card allows it. Omitted: left as it is (off for a new organization);
    /// `{"ceiling": null}` turns it off.
    #[serde(default)]
    pub top_up: Option<TopUpBody>,
}

/// Top-up settings (minor units of the organization's currency).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// The most a hold may be raised to; `null` turns top-up off.
    pub ceiling: Option<i64>,
    /// What each increment adds (default: the session's first hold).
    #[serde(default)]
    pub step: Option<i64>,
}

impl SettingsBody {
    fn operator_details(&self) -> store::OperatorDetails {
        store::OperatorDetails {
            name: self.operator_name.clone(),
            tax_id: self.tax_id.clone(),
            address: self.operator_address.clone(),
        }
    }

    fn has_operator_details(&self) -> bool {
        self.operator_name.is_some() || self.tax_id.is_some() || self.operator_address.is_some()
    }
}

fn validate_settings(s: &SettingsBody) -> Result<OrganizationSettings, ApiError> {
    let currency = s
        .currency
        .parse()
        .map_err(|e| ApiError::invalid("currency", format!("{e}")))?;
    if s.minimum_amount_to_start_session <= 0 {
        return Err(ApiError::invalid(
            "minimum_amount_to_start_session",
            "must be a positive amount in minor units",
        ));
    }
    if s.maximum_authorized_amount < s.minimum_amount_to_start_session {
        return Err(ApiError::invalid(
            "maximum_authorized_amount",
            "must not be below minimum_amount_to_start_session",
        ));
    }
    if !(1..=86_400).contains(&s.payment_expiry_time) {
        return Err(ApiError::invalid(
            "payment_expiry_time",
            "seconds, from 1 to 86400",
        ));
    }
    if !(1..=86_400).contains(&s.start_window) {
        return Err(ApiError::invalid(
            "start_window",
            "seconds, from 1 to 86400",
        ));
    }
    let top_up = s.top_up.as_ref().filter(|t| t.ceiling.is_some());
    if let Some(t) = top_up {
        let ceiling = t.ceiling.unwrap_or_default();
        // Stripe's largest card amount is 99,999,999 minor units.
        if !(s.minimum_amount_to_start_session..=99_999_999).contains(&ceiling) {
            return Err(ApiError::invalid(
                "top_up.ceiling",
                "minor units, from minimum_amount_to_start_session to 99999999",
            ));
        }
        if t.step.is_some_and(|step| step <= 0) {
            return Err(ApiError::invalid(
                "top_up.step",
                "must be a positive amount in minor units",
            ));
        }
    }
    Ok(OrganizationSettings {
        currency,
        minimum_amount_to_start_session: s.minimum_amount_to_start_session,
        maximum_authorized_amount: s.maximum_authorized_amount,
        payment_expiry_seconds: s.payment_expiry_time,
        start_window_seconds: s.start_window,
        top_up_ceiling: top_up.and_then(|t| t.ceiling),
        top_up_step: top_up.and_then(|t| t.step),
    })
}

/// Creates an organization and its first API key (shown once).
#[utoipa::path(post, path = "/admin/organizations", tag = "admin", request_body = CreateOrganization,
    responses((status = 201, body = Object)), security(("admin_token" = [])))]
pub async fn create_organization(
    State(state): State<AppState>,
    _op: Operator,
    req: Result<Json<CreateOrganization>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body(req)?;
    if req.name.trim().is_empty() {
        return Err(ApiError::invalid("name", "name must not be empty"));
    }
    let settings = match &req.settings {
        Some(s) => validate_settings(s)?,
        None => OrganizationSettings::default(),
    };
    let id = OrganizationId::from_unique(&format!("{:032x}", rand::random::<u128>()))
        .map_err(ApiError::internal)?;
    let now = Utc::now();
    let org = state
        .store
        .create_organization(
            NewOrganization {
                id: id.clone(),
                name: req.name,
                settings,
            },
            now,
        )
        .await?;
    let org = match req.settings.as_ref().filter(|s| s.has_operator_details()) {
        Some(s) => {
            state
                .store
                .set_operator_details(&id, s.operator_details(), now)
                .await?
        }
        None => org,
    };
    let key = state.store.create_api_key(&id, "initial", now).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "organization": settings_json(&org), "api_key": { "_id": key.id, "key": key.secret } }),
        ),
    ))
}

/// The caller's organization and settings.
#[utoipa::path(get, path = "/organization", tag = "admin", responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn organization(
    State(state): State<AppState>,
    Org(org): Org,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(settings_json(&state.store.organization(&org).await?)))
}

/// Replaces the organization's settings.
#[utoipa::path(put, path = "/organization/settings", tag = "admin", request_body = SettingsBody,
    responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn update_settings(
    State(state): State<AppState>,
    Org(org): Org,
    req: Result<Json<SettingsBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let req = body(req)?;
    let mut s = validate_settings(&req)?;
    if req.top_up.is_none() {
        // A client that does not know top-up leaves it as it is.
        let current = state.store.organization(&org).await?;
        s.top_up_ceiling = current.top_up_ceiling;
        s.top_up_step = current.top_up_step;
    }
    let now = Utc::now();
    let mut row = state.store.update_settings(&org, s, now).await?;
    if req.has_operator_details() {
        row = state
            .store
            .set_operator_details(&org, req.operator_details(), now)
            .await?;
    }
    Ok(Json(settings_json(&row)))
}

/// `POST /api-keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for.
    pub name: String,
}

/// Creates an API key (the secret is shown once).
#[utoipa::path(post, path = "/api-keys", tag = "admin", request_body = CreateApiKey, responses((status = 201, body = Object)), security(("api_key" = [])))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Org(org): Org,
    req: Result<Json<CreateApiKey>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body(req)?;
    let key = state
        .store
        .create_api_key(&org, &req.name, Utc::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "_id": key.id, "key": key.secret, "name": req.name })),
    ))
}

/// Revokes an API key.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 204)), security(("api_key" = [])))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_api_key(&org, &id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /users` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Optional name.
    pub name: Option<String>,
    /// Optional e-mail (for receipts).
    pub email: Option<String>,
}

/// Creates a driver.
#[utoipa::path(post, path = "/users", tag = "admin", request_body = CreateUser, responses((status = 201, body = Object)), security(("api_key" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Org(org): Org,
    req: Result<Json<CreateUser>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body(req)?;
    let u = state
        .store
        .create_user(&org, &new_id("usr_"), req.name, req.email, Utc::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "_id": u.id, "name": u.name, "email": u.email, "createdAt": u.created_at })),
    ))
}

/// A connector in `POST /charge-stations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorBody {
    /// OCPP connector number (1-based).
    pub connector_id: i32,
    /// The rate it charges (`rat_…`).
    pub rate: String,
    /// The most power it delivers, W (1 W to 1 MW). Auto-stop assumes it between meter
    /// readings so a hold is never passed; without it the deployment's
    /// `CHARGELINK_DEFAULT_MAX_POWER` applies.
    #[serde(default)]
    pub max_power_w: Option<i64>,
}

/// `POST /charge-stations` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChargeStation {
    /// OCPP identity (the last segment of the station's URL).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Connectors.
    pub connectors: Vec<ConnectorBody>,
    /// The station's OCPP AuthorizationKey (Basic-auth password), when the operator provisioned
    /// one at the factory or in the field: 16 to 40 printable ASCII characters. Omitted: a
    /// random 40-character key is made and shown once in the answer.
    #[serde(default)]
    pub ocpp_password: Option<String>,
    /// The OCPP 1.6 security profile the station must connect with: 1 = Basic auth over
    /// `ws://` or `wss://` (the default), 2 = Basic auth over `wss://` only, 3 = `wss://` with a
    /// client certificate from the gateway's client CA whose subject CN is the station id (no
    /// password is used). A station connecting any other way is refused with 401.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3)]
    pub security_profile: Option<i64>,
    /// Postal address, shown on receipts.
    #[serde(default)]
    pub address: Option<String>,
}

/// Shortest and longest AuthorizationKey accepted (OCPP 1.6 security: 16 to 20 bytes, sent as
/// text; 40 allows the hex form of 20 bytes).
const AUTH_KEY_LEN: std::ops::RangeInclusive<usize> = 16..=40;

/// Creates a charge station with its connectors and OCPP Basic-auth credentials (shown once).
#[utoipa::path(post, path = "/charge-stations", tag = "admin", request_body = CreateChargeStation, responses((status = 201, body = Object)), security(("api_key" = [])))]
pub async fn create_charge_station(
    State(state): State<AppState>,
    Org(org): Org,
    req: Result<Json<CreateChargeStation>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body(req)?;
    req.id
        .parse::<domain::ids::ChargeStationId>()
        .map_err(|e| ApiError::invalid("id", format!("{e}")))?;
    let security_profile = req
        .security_profile
        .map(SecurityProfile::from_number)
        .transpose()
        .map_err(|e| ApiError::invalid("security_profile", e.to_string()))?
        .unwrap_or_default();
    if req.connectors.is_empty() {
        return Err(ApiError::invalid(
            "connectors",
            "a charge station needs at least one connector",
        ));
    }
    for (i, c) in req.connectors.iter().enumerate() {
        if c.connector_id < 1 {
            return Err(ApiError::invalid(
                &format!("connectors[{i}].connector_id"),
                "connector numbers start at 1",
            ));
        }
        if c.max_power_w.is_some_and(|w| !(1..=1_000_000).contains(&w)) {
            return Err(ApiError::invalid(
                &format!("connectors[{i}].max_power_w"),
                "max_power_w is in watts, between 1 and 1000000",
            ));
        }
        let rate: RateId = c
            .rate
            .parse()
            .map_err(|e| ApiError::invalid(&format!("connectors[{i}].rate"), format!("{e}")))?;
        state.store.rate(&org, &rate).await.map_err(|_| {
            ApiError::invalid(
                &format!("connectors[{i}].rate"),
                format!("rate {rate} not found"),
            )
        })?;
    }
    let auth_key = match req.ocpp_password.clone() {
        Some(key)
            if AUTH_KEY_LEN.contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            key
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "ocpp_password",
                "the AuthorizationKey is 16 to 40 printable ASCII characters without spaces; omit it to get a random one",
            ));
        }
        // OCPP 1.6 security: a random AuthorizationKey of 16+ bytes, here 40 hex characters.
        None => hex::encode(rand::random::<[u8; 20]>()),
    };
    let now = Utc::now();
    state
        .store
        .create_charge_station(
            &org,
            NewChargeStation {
                id: req.id.clone(),
                name: req.name.clone(),
                auth_key: auth_key.clone(),
                security_profile,
            },
            now,
        )
        .await?;
    if let Some(address) = req.address.clone() {
        state
            .store
            .set_charge_station_address(&org, &req.id, address)
            .await?;
    }
    let mut connectors = Vec::new();
    for c in req.connectors {
        let rate_id: RateId = c.rate.parse().map_err(ApiError::internal)?;
        let row = state
            .store
            .create_connector(
                &org,
                NewConnector {
                    id: new_id("con_"),
                    charge_station_id: req.id.clone(),
                    connector_number: c.connector_id,
                    rate_id,
                    max_power_w: c.max_power_w,
                },
                now,
            )
            .await?;
        connectors.push(json!({ "_id": row.id, "connector_id": row.connector_number, "rate": row.rate_id, "status": row.status, "max_power_w": row.max_power_w }));
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "_id": req.id, "name": req.name, "connectors": connectors,
            "security_profile": security_profile.number(), "address": req.address,
            "ocpp": { "username": req.id, "password": auth_key, "path": format!("/ocpp/{}", req.id) },
        })),
    ))
}

/// The organization's charge stations with their connectors.
#[utoipa::path(get, path = "/charge-stations", tag = "admin", responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn list_charge_stations(
    State(state): State<AppState>,
    Org(org): Org,
) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for s in state.store.charge_stations(&org).await? {
        let connectors: Vec<_> = state
            .store
            .connectors_of(&s.id)
            .await?
            .into_iter()
            .map(|c| json!({ "_id": c.id, "connector_id": c.connector_number, "rate": c.rate_id, "status": c.status, "max_power_w": c.max_power_w }))
            .collect();
        out.push(json!({ "_id": s.id, "name": s.name, "security_profile": s.security_profile().number(), "address": s.address, "online": s.is_online(Utc::now()), "last_seen_at": s.last_seen_at, "connectors": connectors }));
    }
    Ok(Json(json!({ "data": out })))
}

/// `POST /rates` body: an operator rate.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRate {
    /// Display name.
    pub name: String,
    /// Currency (ISO 4217).
    pub currency: String,
    /// One component per type: FLAT, ENERGY (per kWh), TIME and PARKING_TIME (per hour).
    #[schema(value_type = Vec<Object>)]
    pub price_components: Vec<domain::rate::RateComponent>,
}

/// Creates a rate.
#[utoipa::path(post, path = "/rates", tag = "admin", request_body = CreateRate, responses((status = 201, body = Object)), security(("api_key" = [])))]
pub async fn create_rate(
    State(state): State<AppState>,
    Org(org): Org,
    req: Result<Json<CreateRate>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body(req)?;
    let currency = req
        .currency
        .parse()
        .map_err(|e| ApiError::invalid("currency", format!("{e}")))?;
    let rate = Rate::new(currency, req.price_components);
    rate.validate()
        .map_err(|e| ApiError::invalid("price_components", e.to_string()))?;
    let id = RateId::from_unique(&format!("{:032x}", rand::random::<u128>()))
        .map_err(ApiError::internal)?;
    state
        .store
        .create_rate(&org, &id, &req.name, &rate, Utc::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "_id": id, "name": req.name, "currency": rate.currency, "price_components": rate.price_components }),
        ),
    ))
}

/// A rate.
#[utoipa::path(get, path = "/rates/{id}", tag = "admin", params(("id" = String, Path)), responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn get_rate(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rid: RateId = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("rate {id}")))?;
    let rate = state.store.rate(&org, &rid).await?;
    Ok(Json(
        json!({ "_id": rid, "currency": rate.currency, "price_components": rate.price_components }),
    ))
}

/// `POST /webhook-endpoints` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// Where events are POSTed (http or https).
    pub url: String,
    /// Event types to receive; empty or omitted = the payment-links spec's eleven.
    /// chargelink's own (`session.idle`, `session.payment.increased`) only when listed.
    #[serde(default)]
    pub events: Vec<String>,
}

fn endpoint_json(e: &store::entities::webhook_endpoint::Model, with_secret: bool) -> Value {
    let mut v = json!({
        "_id": e.id, "url": e.url, "events": e.events, "enabled": e.enabled,
        "disabled_reason": e.disabled_reason, "consecutive_failures": e.consecutive_failures,
        "createdAt": e.created_at, "updatedAt": e.updated_at,
    });
    if with_secret {
        v["secret"] = json!(e.secret);
    }
    v
}

/// Creates a webhook endpoint; the answer carries its signing secret.
#[utoipa::path(post, path = "/webhook-endpoints", tag = "admin", request_body = CreateWebhookEndpoint, responses((status = 201, body = Object)), security(("api_key" = [])))]
pub async fn create_webhook_endpoint(
    State(state): State<AppState>,
    Org(org): Org,
    req: Result<Json<CreateWebhookEndpoint>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = body(req)?;
    if !(req.url.starts_with("http://") || req.url.starts_with("https://")) {
        return Err(ApiError::invalid("url", "url must be an http(s) URL"));
    }
    let known: Vec<&str> = domain::events::EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect();
    if let Some(bad) = req.events.iter().find(|e| !known.contains(&e.as_str())) {
        return Err(ApiError::invalid(
            "events",
            format!("unknown event type {bad:?}; known: {}", known.join(", ")),
        ));
    }
    let e = state
        .store
        .create_webhook_endpoint(
            &org,
            NewWebhookEndpoint {
                id: new_id("we_"),
                url: req.url,
                events: req.events,
            },
            Utc::now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(endpoint_json(&e, true))))
}

/// The organization's webhook endpoints.
#[utoipa::path(get, path = "/webhook-endpoints", tag = "admin", responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn list_webhook_endpoints(
    State(state): State<AppState>,
    Org(org): Org,
) -> Result<Json<Value>, ApiError> {
    let list: Vec<_> = state
        .store
        .webhook_endpoints(&org)
        .await?
        .iter()
        .map(|e| endpoint_json(e, false))
        .collect();
    Ok(Json(json!({ "data": list })))
}

/// Gives an endpoint a new signing secret (the old one stops at once).
#[utoipa::path(post, path = "/webhook-endpoints/{id}/rotate-secret", tag = "admin", params(("id" = String, Path)), responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(endpoint_json(
        &state
            .store
            .rotate_webhook_secret(&org, &id, Utc::now())
            .await?,
        true,
    )))
}

/// Enables an endpoint (clearing its failure count).
#[utoipa::path(post, path = "/webhook-endpoints/{id}/enable", tag = "admin", params(("id" = String, Path)), responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn enable_endpoint(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&state, &org, &id, true).await
}

/// Disables an endpoint.
#[utoipa::path(post, path = "/webhook-endpoints/{id}/disable", tag = "admin", params(("id" = String, Path)), responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn disable_endpoint(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(&state, &org, &id, false).await
}

async fn set_enabled(
    state: &AppState,
    org: &OrganizationId,
    id: &str,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let endpoint = state
        .store
        .set_webhook_enabled(org, id, enabled, Utc::now())
        .await?;
    Ok(Json(endpoint_json(&endpoint, false)))
}

/// `GET /events` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this session's events.
    pub session: Option<String>,
    /// At most this many (default 50, max 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// The event log with each event's deliveries.
#[utoipa::path(get, path = "/events", tag = "admin", params(EventsQuery), responses((status = 200, body = Object)), security(("api_key" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Org(org): Org,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(ApiError::from)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    let log = state
        .store
        .event_log(&org, q.session.as_deref(), limit)
        .await?;
    Ok(Json(json!({ "data": log })))
}

/// Queues an event again for its endpoints.
#[utoipa::path(post, path = "/events/{id}/redeliver", tag = "admin", params(("id" = String, Path)), responses((status = 202, body = Object)), security(("api_key" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let n = state.store.redeliver(&org, &id, Utc::now()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": n }))))
}
