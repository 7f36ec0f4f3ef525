//! The public price of a connector, before the card: what AFIR and NEVI ask an ad-hoc charger to
//! show before a session starts. JSON at `/charge-stations/{station}/connectors/{connector}/price`
//! and an HTML page at `/price/{station}/{connector}` for a QR code on the charger.
//!
//! No API key: the station id and connector number are printed on the charger. The answer holds
//! only what a driver sees anyway: the lines of the rate the session is priced with, the default
//! hold, the connector's power and what the hold buys; never the organization, its keys, its
//! other rates or any session. Requests are limited per client address
//! ([`crate::ApiConfig::public_rate_limit`]), since no key can be counted.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use domain::ids::{OrganizationId, RateId};
use domain::money::{Currency, Money};
use domain::price_list::{HoldEstimate, PriceLine, format_money, hold_estimate, price_lines};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::pages::{escape, page};

/// The price of one connector as a driver reads it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectorPrice {
    /// The charge station (its OCPP identity, as on the charger).
    pub charge_station: String,
    /// The connector number on the station (1-based, as on the charger).
    pub connector: i32,
    /// The rate sessions on this connector are priced with (`rate_…`).
    pub rate: String,
    /// Currency of every price, lower-case ISO 4217.
    #[schema(value_type = String)]
    pub currency: Currency,
    /// IANA time zone of the times of day in `lines`.
    pub time_zone: String,
    /// The price lines, in the tariff's order: per kind, the first line whose conditions hold
    /// applies. Each has its text and its figures (integer amounts).
    pub lines: Vec<PriceLine>,
    /// The card hold a session places, integer minor units (the organization's
    /// `minimum_amount_to_start_session`); only the final cost is captured.
    pub hold: Money,
    /// The connector's maximum power, W, as auto-stop assumes it (the connector's own setting,
    /// else the deployment's default); absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_power_w: Option<i64>,
    /// How much energy the hold buys charging at `max_power_w` from now (energy and time
    /// prices, start fee, VAT, limits; no parking); absent without a power.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<HoldEstimate>,
}

/// The client's address, when the server was started with connection info (`serve_app`).
pub struct ClientAddr(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

fn unknown(station: &str, connector: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "connector_not_found",
        format!(
            "charge station {station} has no connector {connector}; check the id and number on the charger"
        ),
    )
}

/// Looks the connector up (by number, or by its `con_…` id) and prices it.
async fn connector_price(
    state: &AppState,
    client: &ClientAddr,
    station: &str,
    connector: &str,
) -> Result<ConnectorPrice, ApiError> {
    // Keyed by address only: one client cannot use up another's requests.
    let key = client
        .0
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    state
        .config
        .public_rate_limit
        .check(&key)
        .map_err(ApiError::rate_limited)?;
    let number = connector.parse::<i32>().ok();
    let found = state
        .store
        .connectors_of(station)
        .await?
        .into_iter()
        .find(|c| Some(c.connector_number) == number || c.id == connector)
        .ok_or_else(|| unknown(station, connector))?;
    let org: OrganizationId = found.organization_id.parse().map_err(ApiError::internal)?;
    let rate_id: RateId = found.rate_id.parse().map_err(ApiError::internal)?;
    let rate = state.store.rate(&org, &rate_id).await?;
    let settings = state.store.organization(&org).await?;
    let currency: Currency = settings.currency.parse().map_err(ApiError::internal)?;
    let hold = Money::new(settings.minimum_amount_to_start_session, currency);
    let list = price_lines(&rate).map_err(ApiError::internal)?;
    let max_power_w = found.max_power_w.or(state.config.default_max_power_w);
    // A rate in another currency than the hold cannot start a session (POST /sessions answers
    // currency_mismatch), so there is nothing to estimate.
    let estimate = match max_power_w {
        Some(power) if rate.currency == currency => {
            hold_estimate(&rate, hold, power, Utc::now()).map_err(ApiError::internal)?
        }
        _ => None,
    };
    Ok(ConnectorPrice {
        charge_station: found.charge_station_id,
        connector: found.connector_number,
        rate: rate_id.to_string(),
        currency: list.currency,
        time_zone: list.time_zone,
        lines: list.lines,
        hold,
        max_power_w,
        estimate,
    })
}

/// The price of a connector, before paying. Public: no API key. The connector is its number
/// on the station (or its `con_…` id).
#[utoipa::path(get, path = "/charge-stations/{station}/connectors/{connector}/price", tag = "price",
    params(("station" = String, Path, description = "the station's OCPP identity"),
           ("connector" = String, Path, description = "the connector number (1, 2, …) or its `con_…` id")),
    responses((status = 200, body = ConnectorPrice),
              (status = 404, description = "connector_not_found: no such station or connector", body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    client: ClientAddr,
    Path((station, connector)): Path<(String, String)>,
) -> Result<Json<ConnectorPrice>, ApiError> {
    connector_price(&state, &client, &station, &connector)
        .await
        .map(Json)
}

/// The same price as an HTML page (no external assets), for a QR code on the charger. Each
/// line carries its figures as `data-` attributes.
pub async fn page_html(
    State(state): State<AppState>,
    client: ClientAddr,
    Path((station, connector)): Path<(String, String)>,
) -> Response {
    match connector_price(&state, &client, &station, &connector).await {
        Ok(price) => render(&price).into_response(),
        Err(e) => {
            let status = e.status();
            let html = page(
                "Price not available",
                &format!(
                    "<p id=\"error\" data-code=\"{}\">{}</p>",
                    e.code(),
                    escape(e.message())
                ),
            );
            (status, html).into_response()
        }
    }
}

fn render(price: &ConnectorPrice) -> Html<String> {
    let lines: String = price
        .lines
        .iter()
        .map(|l| {
            let kind = serde_json::to_value(l.kind).unwrap_or_default();
            let unit = l
                .unit
                .and_then(|u| serde_json::to_value(u).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let figures = l
                .price
                .map(|p| format!(" data-price=\"{}\"", p.value().normalize()))
                .unwrap_or_default();
            format!(
                "<li class=\"price-line\" data-kind=\"{}\" data-unit=\"{unit}\"{figures}>{}</li>",
                kind.as_str().unwrap_or_default(),
                escape(&l.text)
            )
        })
        .collect();
    let estimate = price
        .estimate
        .as_ref()
        .map(|e| {
            format!(
                "<p id=\"estimate\" data-energy-wh=\"{}\">{}</p>",
                e.energy_wh,
                escape(&e.text)
            )
        })
        .unwrap_or_default();
    page(
        &format!(
            "Price at {} connector {}",
            escape(&price.charge_station),
            price.connector
        ),
        &format!(
            "<ul id=\"price-lines\">{lines}</ul>\
             <p id=\"hold\" data-amount=\"{}\" data-currency=\"{}\">Card hold before charging: {}. Only the final cost is charged; the rest is released.</p>\
             {estimate}<p><small>Times of day are local ({}).</small></p>",
            price.hold.amount,
            String::from(price.hold.currency),
            escape(&format_money(price.hold)),
            escape(&price.time_zone)
        ),
    )
}
