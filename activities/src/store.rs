//! Store activities.

use std::sync::Arc;

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
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
        let _enter = span.enter();
        self.store
            .record_session(&input.organization, &input.session, &input.events)
            .await?;
        Ok(())
    }
}
