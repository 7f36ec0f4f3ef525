//! chargelink's REST API: sessions, admin resources, payment return pages, OpenAPI.
//!
//! # Layout
//! - [`router`]: every route; [`serve`] runs it.
//! - `sessions`: `/sessions` create / get / list / pause / resume / stop.
//! - `admin`: organizations, settings, API keys, users, charge stations, rates, webhook endpoints,
//!   event log.
//! - `pages`: the driver's payment return pages.
//! - `price`: a connector's public price (JSON and an HTML page for a QR code), no key needed.
//! - `receipts`: receipts of settled sessions (public HTML and PDF by token, JSON by session).
//! - `auth`: bearer API keys (per organization) and the operator's admin token.
//! - [`limits`]: per-key request rate limits (429 with `Retry-After`).
//! - `error`: the JSON error body with stable codes, also for axum's own rejections.
//! - `openapi`: the error answers every operation documents.

pub mod admin;
pub mod auth;
pub mod error;
pub mod limits;
mod openapi;
pub mod pages;
pub mod price;
pub mod receipts;
pub mod sessions;

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use domain::config::SessionTimings;
use openapi::ErrorResponses;
use store::Store;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use workflows::client::SessionClient;

/// API configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Bearer token of the operator (creates organizations); `None` disables `/admin`.
    pub admin_token: Option<String>,
    /// Session durations; payment expiry and start window come from the organization.
    pub timings: SessionTimings,
    /// The most power a connector without its own `max_power_w` is assumed to deliver, W
    /// (the stop deadline's worst case); `None` assumes only what the station reports.
    pub default_max_power_w: Option<i64>,
    /// Requests per API key ([`limits::RateLimiter::default`]: 1,000/s, bursts of 5,000).
    pub rate_limit: limits::RateLimiter,
    /// Requests per client address on the public price routes
    /// ([`limits::RateLimiter::public`]: 20/s, bursts of 200).
    pub public_rate_limit: limits::RateLimiter,
    /// Receipts: the public base URL and the card lookup.
    pub receipts: receipts::ReceiptConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            timings: SessionTimings::default(),
            default_max_power_w: None,
            rate_limit: limits::RateLimiter::default(),
            public_rate_limit: limits::RateLimiter::public(),
            receipts: receipts::ReceiptConfig::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Session workflows.
    pub sessions: SessionClient,
    /// Configuration.
    pub config: ApiConfig,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "chargelink", description = "Pay-as-you-go EV charging sessions with card holds. Amounts are integer minor units."),
    paths(
        sessions::create, sessions::get, sessions::list, sessions::pause, sessions::resume, sessions::stop,
        receipts::for_session,
        admin::create_organization, admin::organization, admin::update_settings, admin::create_api_key,
        admin::revoke_api_key, admin::create_user, admin::create_charge_station, admin::list_charge_stations,
        admin::create_rate, admin::get_rate, admin::create_webhook_endpoint, admin::list_webhook_endpoints,
        admin::rotate_secret, admin::enable_endpoint, admin::disable_endpoint, admin::events, admin::redeliver,
        price::get,
    ),
    modifiers(&Security, &ErrorResponses)
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        components.add_security_scheme("admin_token", bearer());
    }
}

/// The OpenAPI 3.1 document, generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi())
}

async fn docs() -> Html<String> {
    // A self-contained reference page (no external assets): every operation with its
    // description, rendered from /openapi.json in the browser.
    Html(include_str!("docs.html").to_owned())
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sessions", post(sessions::create).get(sessions::list))
        .route("/sessions/{id}", get(sessions::get))
        .route(
            "/sessions/{id}/pause",
            get(sessions::pause).post(sessions::pause),
        )
        .route(
            "/sessions/{id}/resume",
            get(sessions::resume).post(sessions::resume),
        )
        .route(
            "/sessions/{id}/stop",
            get(sessions::stop).post(sessions::stop),
        )
        .route("/admin/organizations", post(admin::create_organization))
        .route("/organization", get(admin::organization))
        .route(
            "/organization/settings",
            axum::routing::put(admin::update_settings),
        )
        .route("/api-keys", post(admin::create_api_key))
        .route(
            "/api-keys/{id}",
            axum::routing::delete(admin::revoke_api_key),
        )
        .route("/users", post(admin::create_user))
        .route(
            "/charge-stations",
            post(admin::create_charge_station).get(admin::list_charge_stations),
        )
        .route("/rates", post(admin::create_rate))
        .route("/rates/{id}", get(admin::get_rate))
        .route(
            "/webhook-endpoints",
            post(admin::create_webhook_endpoint).get(admin::list_webhook_endpoints),
        )
        .route(
            "/webhook-endpoints/{id}/rotate-secret",
            post(admin::rotate_secret),
        )
        .route(
            "/webhook-endpoints/{id}/enable",
            post(admin::enable_endpoint),
        )
        .route(
            "/webhook-endpoints/{id}/disable",
            post(admin::disable_endpoint),
        )
        .route("/events", get(admin::events))
        .route("/events/{id}/redeliver", post(admin::redeliver))
        .route(
            "/charge-stations/{station}/connectors/{connector}/price",
            get(price::get),
        )
        .route("/price/{station}/{connector}", get(price::page_html))
        .route("/sessions/{id}/receipt", get(receipts::for_session))
        .route("/receipts/{token}", get(receipts::public))
        .route("/payments/{id}/success", get(pages::success))
        .route("/payments/{id}/cancel", get(pages::cancel))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn(error::object_bodies))
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(state)
}

/// The `chargelink_sessions{status}` gauge, read from the store at each scrape (the store is
/// shared by every API instance, so each reports the same whole-fleet figure).
pub fn sessions_by_status(store: store::Store) -> telemetry::Source {
    use domain::session::SessionStatus as S;
    std::sync::Arc::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match store.count_by_status().await {
                Ok(counts) => {
                    for status in [
                        S::Created,
                        S::Started,
                        S::Paused,
                        S::Ended,
                        S::Canceled,
                        S::Expired,
                    ] {
                        let n = counts
                            .iter()
                            .find(|(s, _)| s == status.as_str())
                            .map_or(0, |(_, n)| *n);
                        telemetry::sessions::by_status(status.as_str().to_owned(), n);
                    }
                    String::new()
                }
                Err(e) => format!("# counting sessions by status failed: {e}\n"),
            }
        })
    })
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(listener, router(state), shutdown).await
}

/// Serves `app` (HTTP/1.1 and h2c) on `listener` until `shutdown` resolves, with TCP_NODELAY:
/// without it, Nagle's algorithm holds back the small frames of HTTP/2 (gRPC) answers and every
/// call waits ~40 ms for the peer's delayed ACK.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // With the peer's address: the public routes are limited per client address.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
