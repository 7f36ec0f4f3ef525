//! Webhook events: the envelope Stripe sends, the `Stripe-Signature` header, and delivery in a
//! background task with a few retries.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::server::Shared;
use crate::state::{State, WebhookDelivery, WebhookDeliveryStatus, new_id, now};

/// The API version events are rendered in: the one async-stripe rc.10 is generated for, so
/// `construct_event` parses them without a version warning.
pub(crate) const API_VERSION: &str = "2026-09-30.endive";

/// Records an event for `object` and queues it for delivery after the current operation.
pub(crate) fn emit(state: &mut State, event_type: &str, object_id: &str, object: Value) {
    let event_id = new_id("evt_");
    let payload = json!({
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
    })
    .to_string();
    state.deliveries.push(WebhookDelivery {
        event_id: event_id.clone(),
        event_type: event_type.to_owned(),
        object_id: object_id.to_owned(),
        status: WebhookDeliveryStatus::Pending,
        attempts: 0,
        last_http_status: None,
        payload,
    });
    state.undelivered.push(event_id);
}

/// `t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{payload}" keyed with the endpoint secret>`.
pub(crate) fn signature_header(payload: &str, secret: &str, timestamp: i64) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return format!("t={timestamp},v1="),
    };
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Delivers `event_ids` in order, in the background, so the request that caused them is not
/// held up. Each event gets `webhook_attempts` tries with doubling backoff.
pub(crate) fn spawn_delivery(shared: Arc<Shared>, event_ids: Vec<String>) {
    if event_ids.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for event_id in event_ids {
            let fate = shared.lock().webhook_fate();
            if fate.dropped {
                tracing::info!(event_id, "webhook event dropped (fault injection)");
                set_status(
                    &shared,
                    &event_id,
                    WebhookDeliveryStatus::Dropped,
                    None,
                    false,
                );
                continue;
            }
            let sends = if fate.duplicated { 2 } else { 1 };
            if fate.delay.is_zero() {
                for _ in 0..sends {
                    deliver(&shared, &event_id).await;
                }
            } else {
                // Held back on its own task: later events overtake it.
                let shared = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(fate.delay).await;
                    for _ in 0..sends {
                        deliver(&shared, &event_id).await;
                    }
                });
            }
        }
    });
}

async fn deliver(shared: &Shared, event_id: &str) {
    let Some(endpoint) = shared.config.webhook_endpoint.clone() else {
        set_status(
            shared,
            event_id,
            WebhookDeliveryStatus::NoEndpoint,
            None,
            false,
        );
        return;
    };
    let Some(payload) = shared
        .lock()
        .deliveries
        .iter()
        .find(|d| d.event_id == event_id)
        .map(|d| d.payload.clone())
    else {
        return;
    };
    let attempts = shared.config.webhook_attempts.max(1);
    let mut backoff = shared.config.webhook_backoff;
    for attempt in 1..=attempts {
        // Signed per attempt, as Stripe does: a retry carries a fresh timestamp.
        let signature = signature_header(&payload, &shared.config.webhook_secret, now());
        let result = shared
            .http
            .post(endpoint.clone())
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .body(payload.clone())
            .send()
            .await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        if let Err(e) = &result {
            tracing::warn!(event_id, attempt, error = %e, "webhook delivery failed");
        }
        let final_status = if ok {
            WebhookDeliveryStatus::Delivered
        } else if attempt == attempts {
            WebhookDeliveryStatus::Failed
        } else {
            WebhookDeliveryStatus::Pending
        };
        set_status(shared, event_id, final_status, status, true);
        if ok {
            return;
        }
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

fn set_status(
    shared: &Shared,
    event_id: &str,
    status: WebhookDeliveryStatus,
    http: Option<u16>,
    attempted: bool,
) {
    let mut state = shared.lock();
    if let Some(d) = state.deliveries.iter_mut().find(|d| d.event_id == event_id) {
        d.status = status;
        if attempted {
            d.attempts += 1;
            d.last_http_status = http;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_stripes_documented_scheme() {
        // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently with
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac whsec_test`.
        let header = signature_header("{}", "whsec_test", 1_700_000_000);
        assert_eq!(
            header,
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
        assert_ne!(header, signature_header("{ }", "whsec_test", 1_700_000_000));
        assert_ne!(header, signature_header("{}", "whsec_other", 1_700_000_000));
    }
}
