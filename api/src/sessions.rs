//! `/sessions`: create (answers with the payment page), read, list, pause, resume, stop.

use chrono::Utc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use domain::ids::{ConnectorRef, OrganizationId, PaymentId, RateId, SessionId, UserId};
use domain::money::{Currency, Money};
use domain::session::{PAYMENT_LINK, Session, SessionStatus, SessionTarget};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::SessionFilter;
use tracing::Instrument;
use workflows::client::SessionClientError;
use workflows::messages::CommandErrorCode;
use workflows::{SessionInput, TopUp};

use crate::AppState;
use crate::auth::Org;
use crate::error::ApiError;

/// `POST /sessions` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// The driver (`usr_…`).
    pub user: String,
    /// The connector (`con_…`).
    pub connector: String,
    /// Must be `payment_link`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Optional targets; `payment_expiry_time` in seconds.
    #[serde(default)]
    pub target: Option<SessionTarget>,
    /// Hold in minor units, within the organization's bounds; default
    /// `minimum_amount_to_start_session`.
    #[serde(default)]
    pub authorized_amount: Option<i64>,
}

/// A page of sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// Sessions, newest first.
    pub data: Vec<Session>,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<String>,
}

/// `GET /sessions` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this charge station.
    pub chargestation: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Longest payment expiry a session may ask for.
const MAX_PAYMENT_EXPIRY_SECS: u64 = 24 * 3600;
/// The largest energy target, kWh: more than any vehicle's battery takes in one session.
const MAX_TARGET_ENERGY_KWH: i64 = 1000;

fn session_id_for(org: &str, idempotency_key: Option<&str>) -> Result<SessionId, ApiError> {
    let body = match idempotency_key {
        // The same key always names the same session, so a retried POST attaches to it.
        Some(key) => hex::encode(&Sha256::digest(format!("{org}:{key}").as_bytes())[..16]),
        None => format!("{:032x}", rand::random::<u128>()),
    };
    SessionId::from_unique(&body).map_err(ApiError::internal)
}

/// Creates a payment-link session and answers with its payment page.
#[utoipa::path(post, path = "/sessions", request_body = CreateSession, tag = "sessions",
    responses((status = 201, description = "the session with its payment", body = Session),
              (status = 200, description = "the same session again: a retry with the same Idempotency-Key", body = Session),
              (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Org(org): Org,
    headers: HeaderMap,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let Json(req) = body.map_err(ApiError::from)?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let created = create_session(&state, org, req, key).await?;
    let status = if created.is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created.session)))
}

/// What [`create_session`] did.
#[derive(Debug)]
pub struct Created {
    /// The session with its payment.
    pub session: Session,
    /// `false` when the idempotency key named a session that already existed.
    pub is_new: bool,
}

/// Creates a payment-link session for `org`: validation, idempotency (`idempotency_key`), the
/// busy-connector check and the workflow start. REST and gRPC both call this.
pub async fn create_session(
    state: &AppState,
    org: OrganizationId,
    req: CreateSession,
    idempotency_key: Option<&str>,
) -> Result<Created, ApiError> {
    if req.kind != PAYMENT_LINK {
        return Err(ApiError::invalid(
            "type",
            format!("type must be \"payment_link\", not {:?}", req.kind),
        ));
    }
    let user: UserId = req
        .user
        .parse()
        .map_err(|e| ApiError::invalid("user", format!("{e}")))?;
    let connector_ref: ConnectorRef = req
        .connector
        .parse()
        .map_err(|e| ApiError::invalid("connector", format!("{e}")))?;
    if state.store.user(&org, user.as_str()).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            format!("user {user} not found"),
        )
        .field("user"));
    }
    let connector = state
        .store
        .connector(&org, connector_ref.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "connector_not_found",
                format!("connector {connector_ref} not found"),
            )
            .field("connector")
        })?;
    let settings = state.store.organization(&org).await?;
    let currency: Currency = settings.currency.parse().map_err(ApiError::internal)?;
    let rate_id: RateId = connector.rate_id.parse().map_err(ApiError::internal)?;
    let rate = state.store.rate(&org, &rate_id).await?;
    if rate.currency != currency {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
            format!(
                "the connector's rate is in {}, the organization charges in {currency}",
                rate.currency
            ),
        ));
    }
    let amount = req
        .authorized_amount
        .unwrap_or(settings.minimum_amount_to_start_session);
    if amount <= 0
        || amount < settings.minimum_amount_to_start_session
        || amount > settings.maximum_authorized_amount
    {
        return Err(ApiError::invalid(
            "authorized_amount",
            format!(
                "authorized_amount must be between {} and {} (minor units of {currency})",
                settings.minimum_amount_to_start_session, settings.maximum_authorized_amount
            ),
        ));
    }
    let mut target = req.target.unwrap_or_default();
    if target.energy.is_some() {
        // Applied to the Wh: the session shows the target it really has.
        let wh = target
            .energy_wh()
            .filter(|wh| (1..=MAX_TARGET_ENERGY_KWH * 1000).contains(wh))
            .ok_or_else(|| {
                ApiError::invalid(
                    "target.energy",
                    format!(
                        "energy is the target in kWh, more than 0 and at most {MAX_TARGET_ENERGY_KWH}"
                    ),
                )
            })?;
        target.energy = Some(rust_decimal::Decimal::new(wh, 3).normalize());
    }
    let expiry = match target.payment_expiry_time {
        Some(0) | Some(MAX_PAYMENT_EXPIRY_SECS..) => {
            return Err(ApiError::invalid(
                "target.payment_expiry_time",
                format!("payment_expiry_time is in seconds, from 1 to {MAX_PAYMENT_EXPIRY_SECS}"),
            ));
        }
        Some(secs) => Duration::from_secs(secs),
        None => Duration::from_secs(u64::try_from(settings.payment_expiry_seconds).unwrap_or(300)),
    };

    let session_id = session_id_for(org.as_str(), idempotency_key)?;
    let mut resuming = false;
    if let Some(existing) = state.store.session(&org, &session_id).await? {
        let same = existing.connector == connector_ref
            && existing.user == user
            && existing
                .payment
                .as_ref()
                .is_none_or(|p| p.authorized_amount == amount);
        if !same {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with other parameters; use a new key for a new session",
            ));
        }
        // A retry that overtook its own creation (the first answer was lost: a killed api, a
        // client timeout) waits for the payment page as the first request does, below, on the
        // same workflow (update-with-start on the existing id).
        let still_creating =
            existing.payment.is_none() && existing.status == SessionStatus::Created;
        if !still_creating {
            return Ok(Created {
                session: existing,
                is_new: false,
            });
        }
        resuming = true;
    }
    // The checks a new session passes; its own retry has passed them.
    if !resuming {
        if let Some(busy) = state
            .store
            .active_session_on(connector_ref.as_str())
            .await?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "connector_busy",
                format!(
                    "connector {connector_ref} is in use by session {}; try another connector",
                    busy.id
                ),
            )
            .field("connector"));
        }
        // The station registry keeps both current (and a dead gateway's lease runs out): a driver
        // must not pay for a hold on a connector that cannot start.
        let online = state
            .store
            .charge_station(&connector.charge_station_id)
            .await?
            .is_some_and(|s| s.is_online(Utc::now()));
        if !online {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "station_offline",
                format!(
                    "charge station {} of connector {connector_ref} is not connected; try again once it is online",
                    connector.charge_station_id
                ),
            )
            .field("connector"));
        }
        if matches!(connector.status.as_str(), "Faulted" | "Unavailable") {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "connector_unavailable",
                format!(
                    "connector {connector_ref} is {}; try another connector",
                    connector.status
                ),
            )
            .field("connector"));
        }
    }

    let mut timings = state.config.timings.clone();
    timings.payment_expiry = expiry;
    timings.start_window =
        Duration::from_secs(u64::try_from(settings.start_window_seconds).unwrap_or(300));
    let max_power_w = connector.max_power_w.or(state.config.default_max_power_w);
    let authorized_amount = Money::new(amount, currency);
    let price_text = price_text(&rate, authorized_amount, max_power_w, Utc::now());
    let input = SessionInput {
        payment_id: PaymentId::from_unique(
            session_id.as_str().trim_start_matches(SessionId::PREFIX),
        )
        .map_err(ApiError::internal)?,
        session_id: session_id.clone(),
        organization: org,
        user,
        charge_station: connector
            .charge_station_id
            .parse()
            .map_err(ApiError::internal)?,
        connector: connector_ref,
        connector_id: u32::try_from(connector.connector_number).map_err(ApiError::internal)?,
        rate_id,
        rate,
        authorized_amount,
        target,
        timings,
        max_power_w,
        price_text,
        // Only when the organization turned it on and its ceiling is above this hold.
        top_up: settings
            .top_up_ceiling
            .filter(|ceiling| *ceiling > amount)
            .map(|ceiling| TopUp {
                ceiling: Money::new(ceiling, currency),
                step: Money::new(settings.top_up_step.unwrap_or(amount), currency),
            }),
        continued: None,
    };
    // The request's span (`telemetry::http::track`) names the session it made.
    tracing::Span::current().record("session_id", tracing::field::display(&session_id));
    let span = tracing::info_span!("create_session", session_id = %session_id);
    // Instrumented (not only entered while the call is made): the workflow start is polled
    // inside the span, so its Temporal span is this one's child and its logs carry the id.
    let session = async {
        tracing::info!(amount, "creating session");
        state.sessions.start(input).await
    }
    .instrument(span)
    .await?;
    Ok(Created {
        session,
        is_new: !resuming,
    })
}

/// One session.
#[utoipa::path(get, path = "/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 404, body = crate::error::ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    get_session(&state, &org, &id).await.map(Json)
}

/// One session of `org`: the live state from its workflow while it runs, else the read model.
pub async fn get_session(
    state: &AppState,
    org: &OrganizationId,
    id: &str,
) -> Result<Session, ApiError> {
    let id = parse_id(id)?;
    let stored = state
        .store
        .session(org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    if stored.status.is_final() {
        return Ok(stored);
    }
    // A running session's cost moves with every meter value; the workflow has it now, the
    // read model only at each step. Fall back to the read model if the workflow is slow.
    match tokio::time::timeout(Duration::from_secs(2), state.sessions.session(&id)).await {
        // Ended in the workflow but not yet in the read model: shown as the read model has it
        // until then, because the busy-connector check of POST /sessions reads the read model.
        // A driver who saw "ended" and started the next session on the connector got 409
        // connector_busy naming the session just shown ended (chaos run, issue #13).
        Ok(Ok(live)) if !live.status.is_final() => Ok(live),
        _ => Ok(stored),
    }
}

/// Sessions of the organization, newest first.
#[utoipa::path(get, path = "/sessions", tag = "sessions", params(ListQuery),
    responses((status = 200, body = SessionList)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Org(org): Org,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let Query(q) = query.map_err(ApiError::from)?;
    list_sessions(&state, &org, q).await.map(Json)
}

/// A page of `org`'s sessions, newest first.
pub async fn list_sessions(
    state: &AppState,
    org: &OrganizationId,
    q: ListQuery,
) -> Result<SessionList, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<SessionStatus>(serde_json::Value::String(s.to_owned()))
                .map_err(|_| ApiError::invalid("status", format!("unknown status {s:?}")))?,
        ),
    };
    let charge_station = match q.chargestation.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|e| ApiError::invalid("chargestation", format!("{e}")))?,
        ),
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 100",
        ));
    }
    let page = state
        .store
        .list_sessions(
            org,
            &SessionFilter {
                status,
                charge_station,
            },
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(SessionList {
        data: page.sessions,
        next_cursor: page.next_cursor,
    })
}

fn parse_id(id: &str) -> Result<SessionId, ApiError> {
    id.parse()
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{e}")))
}

/// Checks the session belongs to the caller's organization (404 otherwise).
pub async fn owned(
    state: &AppState,
    org: &OrganizationId,
    id: &str,
) -> Result<SessionId, ApiError> {
    let id = parse_id(id)?;
    state
        .store
        .session(org, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {id}")))?;
    Ok(id)
}

/// Pauses charging (`session.paused`).
#[utoipa::path(post, path = "/sessions/{id}/pause", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 409, body = crate::error::ErrorBody)), security(("api_key" = [])))]
pub async fn pause(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    command(&state, &org, &id, Command::Pause).await.map(Json)
}

/// Resumes charging (`session.resumed`).
#[utoipa::path(post, path = "/sessions/{id}/resume", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 409, body = crate::error::ErrorBody)), security(("api_key" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    command(&state, &org, &id, Command::Resume).await.map(Json)
}

/// Stops the session; `session.ended` follows when the station confirms. The answer's `stop`
/// says what the station answered (a refused or unanswered stop is sent again, then the session
/// ends on its last meter values). Refused on rates with a
/// PARKING_TIME component (`stop_not_allowed`).
#[utoipa::path(post, path = "/sessions/{id}/stop", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 409, body = crate::error::ErrorBody)), security(("api_key" = [])))]
pub async fn stop(
    State(state): State<AppState>,
    Org(org): Org,
    Path(id): Path<String>,
) -> Result<Json<Session>, ApiError> {
    command(&state, &org, &id, Command::Stop).await.map(Json)
}

/// A command on a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Hold energy at zero (`session.paused`).
    Pause,
    /// Deliver energy again (`session.resumed`).
    Resume,
    /// End the session (`session.ended` follows).
    Stop,
}

/// Runs `command` on `org`'s session `id`: 404 for another organization's session, the
/// workflow's refusal (e.g. `stop_not_allowed`) otherwise.
pub async fn command(
    state: &AppState,
    org: &OrganizationId,
    id: &str,
    command: Command,
) -> Result<Session, ApiError> {
    let id = owned(state, org, id).await?;
    let span = tracing::info_span!("session_command", session_id = %id, ?command);
    let answer = async {
        match command {
            Command::Pause => state.sessions.pause(&id).await,
            Command::Resume => state.sessions.resume(&id).await,
            Command::Stop => state.sessions.stop(&id).await,
        }
    }
    .instrument(span)
    .await;
    match answer {
        // The store has this session, so Temporal not finding its workflow is either the end
        // (the workflow completed a moment ago) or Temporal coming back (a restart): never a 404.
        Err(SessionClientError::NotFound(_)) => {
            let ended = state
                .store
                .session(org, &id)
                .await?
                .is_some_and(|s| s.status.is_final());
            Err(if ended {
                ApiError::new(
                    StatusCode::CONFLICT,
                    CommandErrorCode::SessionFinished.as_str(),
                    format!("session {id} has ended"),
                )
            } else {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "workflow_service_unavailable",
                    format!(
                        "the workflow of session {id} could not be reached just now; try again"
                    ),
                )
            })
        }
        other => Ok(other?),
    }
}

/// The price lines and what the hold buys, for the payment page (Checkout's 1,200 characters);
/// `None` when the rate cannot be shown. Made here, once, so the workflow task runs no tariff
/// search for it.
fn price_text(
    rate: &domain::rate::Rate,
    hold: Money,
    max_power_w: Option<i64>,
    at: chrono::DateTime<Utc>,
) -> Option<String> {
    use domain::price_list::{CHECKOUT_MESSAGE_MAX_CHARS, hold_estimate, price_lines};
    let list = price_lines(rate).ok()?;
    let estimate = max_power_w
        .and_then(|power| hold_estimate(rate, hold, power, at).ok())
        .flatten()
        .map(|e| e.text);
    Some(list.text(
        &estimate.into_iter().collect::<Vec<_>>(),
        CHECKOUT_MESSAGE_MAX_CHARS,
    ))
}
