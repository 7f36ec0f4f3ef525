//! `chargelink webhooks listen`: a small receiver for chargelink's customer webhooks. It checks
//! each request's `chargelink-signature` with the same code the dispatcher signs with, prints one
//! line per event, and answers 2xx, so a newcomer (and the end-to-end tests) can watch a
//! session's events arrive.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

/// What the receiver needs.
pub(crate) struct ListenConfig {
    /// Listen address.
    pub(crate) listen: SocketAddr,
    /// The endpoint's signing secret (`POST /webhook-endpoints` answers it).
    pub(crate) secret: String,
    /// How far a signature's timestamp may be from now, seconds.
    pub(crate) tolerance_secs: i64,
    /// Print JSON lines instead of readable ones.
    pub(crate) json: bool,
    /// Answer verified events with this status (unprinted) instead of 200.
    pub(crate) answer_status: Option<u16>,
    /// Wait this long before answering.
    pub(crate) delay: std::time::Duration,
}

struct Receiver {
    secret: String,
    tolerance_secs: i64,
    json: bool,
    answer_status: Option<StatusCode>,
    delay: std::time::Duration,
}

/// Serves until `shutdown` resolves.
pub(crate) async fn run(
    config: ListenConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let receiver = Arc::new(Receiver {
        secret: config.secret,
        tolerance_secs: config.tolerance_secs,
        json: config.json,
        answer_status: config
            .answer_status
            .map(StatusCode::from_u16)
            .transpose()
            .context("--answer-status is an HTTP status code (100-999)")?,
        delay: config.delay,
    });
    // Any path: the endpoint URL registered may carry one.
    let app = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "binding {}: is another receiver running there? pick another with --listen",
                config.listen
            )
        })?;
    eprintln!(
        "chargelink: listening for webhooks on http://{}/",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(signature) = headers
        .get(activities::webhooks::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        r.warn("no chargelink-signature header; refused (401)");
        return (StatusCode::UNAUTHORIZED, "missing chargelink-signature\n");
    };
    let now = chrono::Utc::now().timestamp();
    if !activities::webhooks::verify(&r.secret, signature, &body, now, r.tolerance_secs) {
        r.warn(
            "signature does not match (wrong --secret, a modified body, or a stale timestamp); refused (400)",
        );
        return (StatusCode::BAD_REQUEST, "bad chargelink-signature\n");
    }
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            r.warn(&format!("signed body is not JSON ({e}); refused (400)"));
            return (StatusCode::BAD_REQUEST, "body is not JSON\n");
        }
    };
    tokio::time::sleep(r.delay).await;
    if let Some(status) = r.answer_status {
        r.warn(&format!(
            "answered {status} as asked (--answer-status); not accepted"
        ));
        return (status, "refused on purpose\n");
    }
    println!("{}", r.line(&event));
    (StatusCode::OK, "ok\n")
}

impl Receiver {
    fn warn(&self, what: &str) {
        if self.json {
            println!("{}", json!({"warning": what}));
        } else {
            eprintln!("warning: {what}");
        }
    }

    fn line(&self, event: &Value) -> String {
        let data = &event["data"];
        let payment = &data["payment"];
        let currency = payment["currency"]
            .as_str()
            .or(data["cost"]["currency"].as_str())
            .unwrap_or("")
            .to_uppercase();
        if self.json {
            return json!({
                "event_id": event["_id"],
                "type": event["type"],
                "seq": event["seq"],
                "session": data["_id"],
                "status": data["status"],
                "end_reason": data["end_reason"],
                "payment_status": payment["status"],
                "currency": currency,
                "cost": data["cost"]["amount"],
                "authorized_amount": payment["authorized_amount"],
                "captured_amount": payment["captured_amount"],
                "receipt_url": data["receipt_url"],
                "signature": "verified",
            })
            .to_string();
        }
        let amount = |v: &Value| match v.as_i64() {
            Some(n) => format!("{n}"),
            None => "-".to_owned(),
        };
        format!(
            "{} {:<26} {} status={} payment={} cost={} hold={} captured={} {currency}  signature verified",
            event["_id"].as_str().unwrap_or("?"),
            event["type"].as_str().unwrap_or("?"),
            data["_id"].as_str().unwrap_or("?"),
            data["status"].as_str().unwrap_or("?"),
            payment["status"].as_str().unwrap_or("-"),
            amount(&data["cost"]["amount"]),
            amount(&payment["authorized_amount"]),
            amount(&payment["captured_amount"]),
        )
    }
}
