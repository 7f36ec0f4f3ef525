//! Stand-ins for the payment and store activities: they answer like a provider that always
//! works and record every call.

use std::sync::{Arc, Mutex};

use domain::session::Session;
use serde_json::{Value, json};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use workflows::contracts::{
    CancelPaymentInput, CapturePaymentInput, CapturePaymentOutput, CreatePaymentInput,
    CreatePaymentOutput, PaymentRef, ProviderPaymentState, RecordSessionInput,
};

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Entry {
    pub activity: &'static str,
    pub session_id: String,
    pub detail: Value,
}

/// What the stand-ins were asked, shared with the test.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Entry>>>);

impl Journal {
    fn push(&self, activity: &'static str, session_id: &str, detail: Value) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Entry {
                activity,
                session_id: session_id.to_owned(),
                detail,
            });
    }

    /// Calls of `activity` for `session`.
    pub fn calls(&self, activity: &str, session: &str) -> Vec<Entry> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e.activity == activity && e.session_id == session)
            .cloned()
            .collect()
    }

    /// The last session state persisted.
    pub fn last_session(&self, session: &str) -> Option<Session> {
        self.calls("record_session", session)
            .pop()
            .and_then(|e| serde_json::from_value(e.detail["session"].clone()).ok())
    }

    /// Event types persisted, in order.
    pub fn events(&self, session: &str) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for e in self.calls("record_session", session) {
            for ev in e.detail["events"].as_array().cloned().unwrap_or_default() {
                if seen.insert(ev["id"].to_string()) {
                    out.push(ev["type"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        out
    }
}

/// The stand-in activities.
pub struct StandIns {
    journal: Journal,
}

impl StandIns {
    pub fn new(journal: Journal) -> Self {
        Self { journal }
    }
}

#[activities]
impl StandIns {
    #[activity(definition = workflows::contracts::RecordSession)]
    pub async fn record_session(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RecordSessionInput,
    ) -> Result<(), ActivityError> {
        let events: Vec<_> = input
            .events
            .iter()
            .map(|e| json!({"id": e.id, "type": e.kind.as_str()}))
            .collect();
        self.journal.push(
            "record_session",
            input.session.id.as_str(),
            json!({"events": events, "session": input.session}),
        );
        Ok(())
    }

    #[activity(definition = workflows::contracts::CreatePayment)]
    pub async fn create_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CreatePaymentInput,
    ) -> Result<CreatePaymentOutput, ActivityError> {
        self.journal
            .push("create_payment", input.session_id.as_str(), json!(input));
        Ok(CreatePaymentOutput {
            url: format!("https://pay.test/{}", input.session_id),
            checkout_session_id: format!("cs_test_{}", input.session_id),
            intent_id: None,
        })
    }

    #[activity(definition = workflows::contracts::ExpirePayment)]
    pub async fn expire_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PaymentRef,
    ) -> Result<ProviderPaymentState, ActivityError> {
        self.journal
            .push("expire_payment", input.session_id.as_str(), json!(input));
        Ok(ProviderPaymentState::Expired)
    }

    #[activity(definition = workflows::contracts::RetrievePayment)]
    pub async fn retrieve_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PaymentRef,
    ) -> Result<ProviderPaymentState, ActivityError> {
        self.journal
            .push("retrieve_payment", input.session_id.as_str(), json!(input));
        Ok(ProviderPaymentState::Open)
    }

    #[activity(definition = workflows::contracts::CapturePayment)]
    pub async fn capture_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CapturePaymentInput,
    ) -> Result<CapturePaymentOutput, ActivityError> {
        self.journal
            .push("capture_payment", input.session_id.as_str(), json!(input));
        Ok(CapturePaymentOutput {
            captured: input.amount,
        })
    }

    #[activity(definition = workflows::contracts::CancelPayment)]
    pub async fn cancel_payment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CancelPaymentInput,
    ) -> Result<(), ActivityError> {
        self.journal
            .push("cancel_payment", input.session_id.as_str(), json!(input));
        Ok(())
    }
}
