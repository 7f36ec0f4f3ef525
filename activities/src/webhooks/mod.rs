//! Customer webhooks: the dispatcher that drains the outbox.

mod signature;

pub use signature::{SIGNATURE_HEADER, sign, verify};

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use store::{DueDelivery, Store};

/// How deliveries are retried and when an endpoint is given up on.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How often the outbox is polled.
    pub poll_interval: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Attempts before one delivery is given up (marked failed).
    pub max_attempts: i32,
    /// Consecutive failed attempts after which the endpoint is disabled.
    pub disable_after_failures: i32,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            request_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 20,
            disable_after_failures: 50,
            concurrency: 16,
        }
    }
}

/// Delivers due outbox events until `shutdown` resolves.
pub struct Dispatcher {
    store: Store,
    http: reqwest::Client,
    settings: WebhookSettings,
}

impl Dispatcher {
    /// A dispatcher over `store`.
    pub fn new(store: Store, settings: WebhookSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .user_agent("chargelink-webhooks/1")
            .build()?;
        Ok(Self {
            store,
            http,
            settings,
        })
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.dispatch_once().await {
                tracing::warn!(error = %e, "webhook dispatch round failed; retrying");
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// One round: delivers every delivery due now (at most one per endpoint and session, which
    /// keeps each session's events in order). Returns how many were attempted.
    pub async fn dispatch_once(&self) -> anyhow::Result<usize> {
        let due = self.store.due_deliveries(Utc::now(), 500).await?;
        let n = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(self.settings.concurrency, |d| async move {
                if let Err(e) = self.deliver(d).await {
                    tracing::warn!(error = %e, "recording a webhook delivery failed");
                }
            })
            .await;
        Ok(n)
    }

    async fn deliver(&self, d: DueDelivery) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&d.payload)?;
        let now = Utc::now();
        let signature = sign(&d.secret, now.timestamp(), &body);
        let event_type = d.payload["type"].as_str().unwrap_or_default().to_owned();
        let sent = self
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("chargelink-event-id", &d.event_id)
            .header("chargelink-event-type", &event_type)
            .body(body)
            .send()
            .await;
        let (error, status) = match sent {
            Ok(r) if r.status().is_success() => {
                tracing::info!(event_id = %d.event_id, endpoint = %d.endpoint_id, event_type, "webhook delivered");
                let delivered_at = Utc::now();
                self.store
                    .delivery_succeeded(&d.id, r.status().as_u16(), delivered_at)
                    .await?;
                telemetry::webhooks::delivered(lag(&d.payload, delivered_at));
                return Ok(());
            }
            Ok(r) => (
                format!("endpoint answered HTTP {}", r.status()),
                Some(r.status().as_u16()),
            ),
            Err(e) if e.is_timeout() => ("endpoint timed out".to_owned(), None),
            Err(e) => (format!("endpoint unreachable: {e}"), None),
        };
        let attempts = d.attempts + 1;
        let retry_at =
            (attempts < self.settings.max_attempts).then(|| now + self.backoff(attempts));
        tracing::warn!(event_id = %d.event_id, endpoint = %d.endpoint_id, attempts, error, "webhook delivery failed");
        telemetry::webhooks::failed();
        let failures = self
            .store
            .delivery_failed(&d.id, &error, status, retry_at)
            .await?;
        if failures >= self.settings.disable_after_failures {
            let reason =
                format!("disabled after {failures} consecutive failed deliveries; last: {error}");
            tracing::error!(endpoint = %d.endpoint_id, reason, "webhook endpoint disabled");
            self.store
                .disable_endpoint(&d.endpoint_id, &reason, Utc::now())
                .await?;
            telemetry::webhooks::endpoint_disabled();
        }
        Ok(())
    }

    fn backoff(&self, attempts: i32) -> chrono::Duration {
        let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
        let delay = self
            .settings
            .initial_backoff
            .saturating_mul(2_u32.saturating_pow(exp))
            .min(self.settings.max_backoff);
        chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
    }
}

/// How long after the event (its `createdAt`) a delivery succeeded.
fn lag(payload: &serde_json::Value, delivered_at: chrono::DateTime<Utc>) -> std::time::Duration {
    payload["createdAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|created| (delivered_at - created.with_timezone(&Utc)).to_std().ok())
        .unwrap_or_default()
}
