//! HTTP requests of the API, by route template (never the raw path: ids would explode the
//! label set) and status; and one span per request (the root of its trace).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Requests, by `method`, `route` and `status`.
pub const REQUESTS: &str = "chargelink_http_requests_total";
/// Request latency, by `route`.
pub const DURATION: &str = "chargelink_http_request_duration_seconds";

pub(crate) fn describe() {
    describe_counter!(REQUESTS, "API requests, by method, route and status");
    describe_histogram!(DURATION, Unit::Seconds, "API request latency, by route");
}

/// The routes whose second path segment is a session id.
const SESSION_ROUTE: &str = "/sessions/{id}";

/// Axum middleware (`axum::middleware::from_fn(telemetry::http::track)`): counts the request
/// and runs it in an `http_request` span (`otel.name` `"<method> <route>"`, the status, and
/// `session_id` when the route names one; a handler that makes a session records it). A
/// caller's W3C `traceparent` makes the span a child of the caller's.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!(
        "http_request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = Empty,
        otel.status_code = Empty,
        session_id = Empty,
    );
    if route.starts_with(SESSION_ROUTE)
        && let Some(id) = request.uri().path().split('/').nth(2)
    {
        span.record("session_id", id);
    }
    if request.headers().contains_key("traceparent") {
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .extract(&Headers(request.headers()));
        // Only fails when traces are off (no OTel layer): nothing to link then.
        let _ = span.set_parent(parent);
    }
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    histogram!(DURATION, "route" => route.clone()).record(crate::secs(started.elapsed()));
    counter!(
        REQUESTS,
        "method" => method,
        "route" => route,
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    response
}

/// Request headers as an OTel propagation carrier.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
