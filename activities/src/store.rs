//! Store activities.

use std::sync::Arc;

use domain::events::EventType;
use domain::session::Session;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;
use workflows::contracts::RecordSessionInput;

/// Activities that write the store.
pub struct StoreActivities {
    store: store::Store,
    /// chargelink's public base URL.
    public_url: String,
}

impl StoreActivities {
    /// Activities on `store`.
    pub fn new(store: store::Store) -> Self {
        Self {
            store,
            public_url: domain::config::DEFAULT_PUBLIC_URL.to_owned(),
        }
    }

    /// Receipt URLs under `public_url` (chargelink's public base, where the API serves
    /// `/receipts/{token}`).
    pub fn with_public_url(mut self, public_url: url::Url) -> Self {
        self.public_url = public_url.to_string();
        self
    }
}

#[activities]
impl StoreActivities {
    /// Upserts the session and appends its events to the outbox. Database errors are retried by
    /// Temporal (the write is idempotent).
    #[activity(definition = workflows::contracts::RecordSession)]
    pub async fn record_session(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RecordSessionInput,
    ) -> Result<(), ActivityError> {
        let span = tracing::info_span!("record_session", session_id = %input.session.id, status = input.session.status.as_str());
        async {
            let (mut session, mut events) = (input.session, input.events);
            // A captured session gets its receipt: the token is made once (a retry finds it),
            // and its URL goes into the read model and every event showing the capture
            // (`session.payment.captured`), so the workflow needs no change.
            if session.captured_payment().is_some() {
                let receipt = self
                    .store
                    .ensure_receipt(&input.organization, &session.id, chrono::Utc::now())
                    .await?;
                let url = domain::receipt::receipt_url(&self.public_url, &receipt.token);
                session.receipt_url = Some(url.clone());
                for event in events
                    .iter_mut()
                    .filter(|e| e.data.captured_payment().is_some())
                {
                    event.data.receipt_url = Some(url.clone());
                }
            }
            let stored = self
                .store
                .record_session(&input.organization, &session, &events)
                .await?;
            // Counted only when stored now, so a retried activity counts nothing twice.
            for kind in &stored {
                count(*kind, &session);
            }
            if events.iter().any(|e| e.kind == EventType::SessionEnded) {
                report_overrun(&session);
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// The metrics of one newly stored event.
fn count(kind: EventType, session: &Session) {
    use telemetry::{payments, sessions};
    sessions::event(kind.as_str());
    let payment = session.payment.as_ref();
    match kind {
        EventType::SessionEnded => {
            sessions::ended(session.end_reason.map_or("unknown", |r| r.as_str()));
        }
        EventType::PaymentAuthorized => payments::outcome("authorized"),
        EventType::PaymentExpired => payments::outcome("expired"),
        EventType::PaymentCaptured => {
            payments::outcome("captured");
            if let Some(p) = payment {
                let captured = p.captured_amount.unwrap_or(0);
                payments::captured(
                    p.currency.to_string().to_lowercase(),
                    captured,
                    p.authorized_amount,
                    overrun(session).unwrap_or(0),
                );
            }
        }
        EventType::PaymentCanceled => {
            payments::outcome("canceled");
            // A hold placed and released whole; a page never paid held nothing.
            if let Some(p) = payment.filter(|_| authorized(session)) {
                payments::released(p.currency.to_string().to_lowercase(), p.authorized_amount);
            }
        }
        _ => {}
    }
}

/// Whether the session's card hold was placed (its Stripe PaymentIntent is known).
fn authorized(session: &Session) -> bool {
    session
        .payment
        .as_ref()
        .is_some_and(|p| p.stripe.intent_id.is_some())
}

/// The energy the station delivered, priced, above the hold: the operator gives it away (the
/// driver is never charged more than the hold). Logged once per session, when it ends.
pub fn overrun(session: &Session) -> Option<i64> {
    let priced = session.cost.details.as_ref()?.amount.amount;
    let hold = session.payment.as_ref()?.authorized_amount;
    (priced > hold).then_some(priced - hold)
}

fn report_overrun(session: &Session) {
    let (Some(over), Some(payment)) = (overrun(session), session.payment.as_ref()) else {
        return;
    };
    let hold = payment.authorized_amount.max(1);
    tracing::warn!(
        charge_point_id = %session.chargestation,
        connector = %session.connector,
        overrun_minor = over,
        hold_minor = payment.authorized_amount,
        currency = %payment.currency,
        overrun_percent = over * 100 / hold,
        end_reason = session.end_reason.map(|r| r.as_str()),
        "charge station overran the hold: it delivered more than the hold pays for"
    );
}
