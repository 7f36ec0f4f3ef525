//! Everything the sandbox remembers: checkout sessions, PaymentIntents, stored idempotent
//! answers, the request log, injected failures and webhook deliveries.

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Status of a checkout session (Stripe `checkout.session.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Waiting for the customer.
    Open,
    /// Paid (for manual capture: authorized).
    Complete,
    /// Expired, by `expires_at` or the expire call.
    Expired,
}

/// Status of a PaymentIntent (the subset a Checkout card payment goes through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// A card was declined; the customer may try another.
    RequiresPaymentMethod,
    /// The hold is placed.
    RequiresCapture,
    /// Captured.
    Succeeded,
    /// Released.
    Canceled,
}

impl IntentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresCapture => "requires_capture",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

impl SessionStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Complete => "complete",
            Self::Expired => "expired",
        }
    }
}

/// A checkout session as the sandbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CheckoutSession {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) expires_at: i64,
    pub(crate) status: SessionStatus,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) product_name: String,
    /// `custom_text[<position>][message]` by position (`submit`, `after_submit`, ...); a state
    /// file written before it existed reads as none.
    #[serde(default)]
    pub(crate) custom_text: BTreeMap<String, String>,
    pub(crate) client_reference_id: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) success_url: Option<String>,
    pub(crate) cancel_url: Option<String>,
    /// `manual`, `automatic` or `automatic_async`.
    pub(crate) capture_method: String,
    pub(crate) intent_metadata: BTreeMap<String, String>,
    /// Set once the session completes (API versions since 2022-08-01 create the PaymentIntent
    /// only on confirmation and show it on the session only when paid).
    pub(crate) payment_intent: Option<String>,
    /// The PaymentIntent of a declined attempt, reused by the next attempt.
    pub(crate) attempt_intent: Option<String>,
    /// `payment_method_options[card][request_incremental_authorization]=if_available`.
    #[serde(default)]
    pub(crate) request_incremental: bool,
    pub(crate) url: String,
}

/// A PaymentIntent as the sandbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PaymentIntent {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) amount_capturable: i64,
    pub(crate) amount_received: i64,
    pub(crate) capture_method: String,
    pub(crate) status: IntentStatus,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) latest_charge: Option<String>,
    pub(crate) canceled_at: Option<i64>,
    pub(crate) cancellation_reason: Option<String>,
    /// (code, decline_code, message) of the last failed attempt.
    pub(crate) last_payment_error: Option<(String, Option<String>, String)>,
    /// The card of the successful attempt (absent in state files from before cards).
    #[serde(default)]
    pub(crate) card: Option<Card>,
    /// Incremental authorization was requested at creation (`if_available`).
    #[serde(default)]
    pub(crate) request_incremental: bool,
    /// `increment_authorization` attempts so far, declines included (Stripe allows 10).
    #[serde(default)]
    pub(crate) increment_attempts: u32,
}

/// A test card as Stripe reports it on a charge (`payment_method_details.card`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Card {
    pub(crate) brand: String,
    pub(crate) last4: String,
    /// The issuer declines every incremental authorization
    /// ([`crate::CARD_DECLINES_INCREMENTS`]).
    #[serde(default)]
    pub(crate) declines_increments: bool,
}

/// A checkout session, for assertions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    /// `cs_test_...`.
    pub id: String,
    /// Current status.
    pub status: SessionStatus,
    /// Total in minor units.
    pub amount: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// Set once paid.
    pub payment_intent: Option<String>,
    /// The client reference given at creation.
    pub client_reference_id: Option<String>,
    /// The hosted page (also after the session closed, unlike Stripe's `url`).
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A PaymentIntent, for assertions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentSnapshot {
    /// `pi_...`.
    pub id: String,
    /// Current status.
    pub status: IntentStatus,
    /// The authorized amount.
    pub amount: i64,
    /// What can still be captured.
    pub amount_capturable: i64,
    /// What was captured.
    pub amount_received: i64,
    /// Lower-case ISO code.
    pub currency: String,
    /// Metadata (from `payment_intent_data[metadata]`).
    pub metadata: BTreeMap<String, String>,
    /// Set when canceled.
    pub cancellation_reason: Option<String>,
}

impl CheckoutSession {
    pub(crate) fn snapshot(&self) -> SessionSnapshot {
        SessionSnapshot {
            id: self.id.clone(),
            status: self.status,
            amount: self.amount,
            currency: self.currency.clone(),
            payment_intent: self.payment_intent.clone(),
            client_reference_id: self.client_reference_id.clone(),
            url: self.url.clone(),
            expires_at: self.expires_at,
        }
    }

    /// The Stripe JSON, limited to fields async-stripe rc.10 requires plus the ones chargelink
    /// reads. `payment_status` stays `unpaid` for a manual capture: the funds are only held.
    pub(crate) fn to_json(&self, intent: Option<&PaymentIntent>) -> Value {
        let paid = intent.is_some_and(|pi| pi.status == IntentStatus::Succeeded);
        json!({
            "id": self.id,
            "object": "checkout.session",
            "amount_subtotal": self.amount,
            "amount_total": self.amount,
            "automatic_tax": { "enabled": false },
            "cancel_url": self.cancel_url,
            "client_reference_id": self.client_reference_id,
            "created": self.created,
            "currency": self.currency,
            "custom_fields": [],
            "custom_text": custom_text_json(&self.custom_text),
            "expires_at": self.expires_at,
            "livemode": false,
            "metadata": self.metadata,
            "mode": "payment",
            "payment_intent": self.payment_intent,
            "payment_method_types": ["card"],
            "payment_status": if paid { "paid" } else { "unpaid" },
            "shipping_options": [],
            "status": self.status.as_str(),
            "success_url": self.success_url,
            // Stripe shows the URL only while the session can still be paid.
            "url": (self.status == SessionStatus::Open).then_some(&self.url),
        })
    }
}

/// Stripe's `custom_text` object: every position, `null` or `{"message": …}`.
fn custom_text_json(messages: &BTreeMap<String, String>) -> Value {
    let mut out = serde_json::Map::new();
    for position in crate::api::CUSTOM_TEXT_POSITIONS {
        let value = messages
            .get(position)
            .map_or(Value::Null, |m| json!({ "message": m }));
        out.insert(position.to_owned(), value);
    }
    Value::Object(out)
}

impl PaymentIntent {
    pub(crate) fn snapshot(&self) -> IntentSnapshot {
        IntentSnapshot {
            id: self.id.clone(),
            status: self.status,
            amount: self.amount,
            amount_capturable: self.amount_capturable,
            amount_received: self.amount_received,
            currency: self.currency.clone(),
            metadata: self.metadata.clone(),
            cancellation_reason: self.cancellation_reason.clone(),
        }
    }

    /// The latest charge as Stripe shows it (`GET /v1/charges/{id}`): the amounts, and the
    /// card in `payment_method_details.card`.
    pub(crate) fn charge_json(&self) -> Option<Value> {
        let id = self.latest_charge.as_ref()?;
        let card = self.card.as_ref()?;
        let captured = self.status == IntentStatus::Succeeded;
        let refunded = match self.status {
            IntentStatus::Succeeded => self.amount - self.amount_received,
            IntentStatus::Canceled => self.amount,
            _ => 0,
        };
        Some(json!({
            "id": id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount_received,
            "amount_refunded": refunded,
            "captured": captured,
            "created": self.created,
            "currency": self.currency,
            "livemode": false,
            "metadata": self.metadata,
            "paid": true,
            "payment_intent": self.id,
            "refunded": refunded == self.amount,
            "status": "succeeded",
            "payment_method_details": {
                "type": "card",
                "card": {
                    "brand": card.brand,
                    "last4": card.last4,
                    "country": "US",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "funding": "credit",
                    "incremental_authorization": {
                        "status": if self.incremental_available() { "available" } else { "unavailable" },
                    },
                },
            },
        }))
    }

    /// Whether `increment_authorization` may be tried: requested at creation, on a card that
    /// supports it (every sandbox card does; whether the issuer approves is another matter).
    pub(crate) fn incremental_available(&self) -> bool {
        self.request_incremental && self.card.is_some()
    }

    /// The Stripe JSON (fields async-stripe rc.10 requires plus the ones chargelink reads).
    pub(crate) fn to_json(&self) -> Value {
        let last_payment_error = self.last_payment_error.as_ref().map(|(code, decline_code, message)| {
            json!({ "type": "card_error", "code": code, "decline_code": decline_code, "message": message })
        });
        json!({
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_received": self.amount_received,
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": self.capture_method,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "last_payment_error": last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": false,
            "metadata": self.metadata,
            "payment_method_options": {
                "card": {
                    "request_incremental_authorization": if self.request_incremental { "if_available" } else { "never" },
                },
            },
            "payment_method_types": ["card"],
            "status": self.status.as_str(),
        })
    }
}

/// What an injected failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Answer 500 `api_error` without executing (a front-end failure: nothing stored under the
    /// idempotency key, so a retry executes).
    ServerError,
    /// Execute and store the answer, then hold the response back for the configured hang, so
    /// the client times out and never sees it (the case idempotency keys exist for).
    Timeout,
    /// Hold the request for the configured hang without executing it.
    TimeoutBeforeExecution,
    /// Execute and answer, but only after the failure's `delay_ms` (default 2 s): a slow
    /// provider whose answer still arrives.
    Slow,
}

/// Makes the next `count` `/v1` requests (whose path contains `path_contains`, if set) fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What happens.
    pub kind: FailureKind,
    /// How many requests fail.
    #[serde(default = "one")]
    pub count: u32,
    /// Only requests whose path contains this text (e.g. `/capture`).
    #[serde(default)]
    pub path_contains: Option<String>,
    /// How long a `slow` answer waits, milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

impl Failure {
    /// The next `count` requests fail with `kind`.
    pub fn next(kind: FailureKind, count: u32) -> Self {
        Self {
            kind,
            count,
            path_contains: None,
            delay_ms: None,
        }
    }

    /// Only requests whose path contains `text`.
    pub fn on_path(mut self, text: impl Into<String>) -> Self {
        self.path_contains = Some(text.into());
        self
    }
}

/// One `/v1` request as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// Form (or query) parameters.
    pub params: BTreeMap<String, String>,
    /// HTTP status answered (for a timeout: the status the client never saw).
    pub status: u16,
    /// The answer was replayed from the idempotency store.
    pub replayed: bool,
    /// The failure injected into this request, if any.
    pub injected: Option<FailureKind>,
}

/// Where a webhook event's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryStatus {
    /// Not yet answered with 2xx; attempts go on.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Lost on purpose (webhook fault injection): never sent.
    Dropped,
    /// No endpoint is configured; the event is only recorded.
    NoEndpoint,
}

/// A webhook event and its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// `evt_...`.
    pub event_id: String,
    /// E.g. `checkout.session.completed`.
    pub event_type: String,
    /// The id of the event's object.
    pub object_id: String,
    /// Delivery status.
    pub status: WebhookDeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last attempt, if it got one.
    pub last_http_status: Option<u16>,
    /// The exact body that is signed and posted.
    pub payload: String,
}

/// A stored idempotent answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) fingerprint: String,
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// The sandbox's whole state, behind one mutex: every operation runs under the lock, so
/// requests never interleave (Stripe's concurrent-request conflicts cannot happen here).
/// With a state file, everything but the injected failures and the events in flight is saved
/// after each change and loaded at start, so a restarted sandbox, like Stripe, forgets nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct State {
    pub(crate) sessions: HashMap<String, CheckoutSession>,
    pub(crate) intents: HashMap<String, PaymentIntent>,
    pub(crate) idempotency: HashMap<String, Stored>,
    pub(crate) requests: Vec<RecordedRequest>,
    #[serde(skip)]
    pub(crate) failures: Vec<Failure>,
    #[serde(skip)]
    pub(crate) webhook_faults: Option<WebhookFaults>,
    pub(crate) deliveries: Vec<WebhookDelivery>,
    /// Events emitted by the current operation, handed to the delivery task afterwards.
    #[serde(skip)]
    pub(crate) undelivered: Vec<String>,
}

impl State {
    /// Takes the first injected failure matching `path`, if any.
    pub(crate) fn take_failure(&mut self, path: &str) -> Option<(FailureKind, Option<u64>)> {
        let i = self.failures.iter().position(|f| {
            f.count > 0 && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
        })?;
        let failure = &mut self.failures[i];
        failure.count -= 1;
        let taken = (failure.kind, failure.delay_ms);
        if failure.count == 0 {
            self.failures.remove(i);
        }
        Some(taken)
    }

    /// What happens to the next webhook event under the injected faults: dropped, sent after a
    /// delay, sent twice.
    pub(crate) fn webhook_fate(&mut self) -> WebhookFate {
        let Some(f) = self.webhook_faults.as_mut() else {
            return WebhookFate::default();
        };
        let rng = &mut f.rng;
        WebhookFate {
            dropped: rng.random_bool(f.drop_share.clamp(0.0, 1.0)),
            duplicated: rng.random_bool(f.duplicate_share.clamp(0.0, 1.0)),
            delay: std::time::Duration::from_millis(if f.max_delay_ms == 0 {
                0
            } else {
                rng.random_range(0..=f.max_delay_ms)
            }),
        }
    }
}

/// Faults injected into webhook delivery (`POST /_sandbox/webhook_faults`): each event is lost
/// with `drop_share`, sent twice with `duplicate_share`, and held back up to `max_delay_ms`
/// (events then arrive out of order). Seeded, so a run can be replayed.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WebhookFaultsBody {
    /// Share of events never sent (0..1).
    #[serde(default)]
    pub drop_share: f64,
    /// Share of events sent twice (0..1).
    #[serde(default)]
    pub duplicate_share: f64,
    /// Longest hold-back of one event, milliseconds.
    #[serde(default)]
    pub max_delay_ms: u64,
    /// Seed of the draws.
    #[serde(default)]
    pub seed: u64,
}

/// Webhook faults in force, with their random source.
#[derive(Debug)]
pub(crate) struct WebhookFaults {
    drop_share: f64,
    duplicate_share: f64,
    max_delay_ms: u64,
    rng: rand::rngs::StdRng,
}

impl From<WebhookFaultsBody> for WebhookFaults {
    fn from(b: WebhookFaultsBody) -> Self {
        use rand::SeedableRng as _;
        Self {
            drop_share: b.drop_share,
            duplicate_share: b.duplicate_share,
            max_delay_ms: b.max_delay_ms,
            rng: rand::rngs::StdRng::seed_from_u64(b.seed),
        }
    }
}

/// What happens to one webhook event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WebhookFate {
    pub(crate) dropped: bool,
    pub(crate) duplicated: bool,
    pub(crate) delay: std::time::Duration,
}

/// A Stripe-looking id: `prefix` + 24 random alphanumerics.
pub(crate) fn new_id(prefix: &str) -> String {
    let body: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs).unwrap_or(i64::MAX)
}
