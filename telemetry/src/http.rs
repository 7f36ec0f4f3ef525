//! HTTP requests of the API, by route template (never the raw path: ids would explode the
//! label set) and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

/// Requests, by `method`, `route` and `status`.
pub const REQUESTS: &str = "chargelink_http_requests_total";
/// Request latency, by `route`.
pub const DURATION: &str = "chargelink_http_request_duration_seconds";

pub(crate) fn describe() {
    describe_counter!(REQUESTS, "API requests, by method, route and status");
    describe_histogram!(DURATION, Unit::Seconds, "API request latency, by route");
}

/// Axum middleware (`axum::middleware::from_fn(telemetry::http::track)`).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    histogram!(DURATION, "route" => route.clone()).record(crate::secs(started.elapsed()));
    counter!(
        REQUESTS,
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}
