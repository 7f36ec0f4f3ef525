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
}

impl StoreActivities {
    /// Activities on `store`.
    pub fn new(store: store::Store) -> Self {
        Self { store }
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
            self.store
                .record_session(&input.organization, &input.session, &input.events)
                .await?;
            if input
                .events
                .iter()
                .any(|e| e.kind == EventType::SessionEnded)
            {
                report_overrun(&input.session);
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
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
