//! Typed access to session workflows for the API, the gateway and the tests: start with
//! update-with-start, query, pause / resume / stop, and the signals stations and Stripe send.

use domain::ids::SessionId;
use domain::session::Session;
use temporalio_client::errors::{
    WorkflowInteractionError, WorkflowQueryError, WorkflowUpdateError, WorkflowUpdateWithStartError,
};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowQueryOptions, WorkflowSignalOptions, WorkflowUpdateWithStartOptions,
};
use temporalio_common::{HasWorkflowDefinition, SignalDefinition};

use crate::messages::{
    ChargingStarted, ChargingStopped, CommandError, ConnectorStatus, MeterValues,
    PaymentAuthorized, PaymentClosed, StartFailed,
};
use crate::session::{SessionInput, SessionWorkflow};

/// Why a call to a session workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionClientError {
    /// No session workflow with that id exists (or it was never started).
    #[error("session {0} not found")]
    NotFound(SessionId),
    /// The session refused the command (stable code + message).
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// Temporal could not be reached or failed; retry later.
    #[error("workflow service error: {0}")]
    Temporal(String),
}

fn update_error(id: &SessionId, e: WorkflowUpdateError) -> SessionClientError {
    match e {
        WorkflowUpdateError::NotFound(_) => SessionClientError::NotFound(id.clone()),
        WorkflowUpdateError::Failed(failure) => match CommandError::parse(&failure.message) {
            Some(refused) => SessionClientError::Refused(refused),
            None => SessionClientError::Temporal(failure.message),
        },
        other => SessionClientError::Temporal(other.to_string()),
    }
}

fn interaction_error(id: &SessionId, e: WorkflowInteractionError) -> SessionClientError {
    match e {
        WorkflowInteractionError::NotFound(_) => SessionClientError::NotFound(id.clone()),
        other => SessionClientError::Temporal(other.to_string()),
    }
}

/// One line for the Temporal UI: `Session ses_… on CP-1 connector 1, hold 50.00 EUR`.
pub fn summary(input: &SessionInput) -> String {
    format!(
        "Session {} on {} connector {}, hold {}",
        input.session_id, input.charge_station, input.connector_id, input.authorized_amount
    )
}

/// The session's setting for the Temporal UI, one fact an item of a Markdown list (the UI
/// renders Markdown): organization, driver, station and connector, rate (its price components),
/// hold.
pub fn details(input: &SessionInput) -> String {
    let prices: Vec<String> = input
        .rate
        .price_components
        .iter()
        .map(|c| format!("{:?} {}", c.dimension, c.price))
        .collect();
    let prices = if input.rate.tariff.is_some() {
        "OCPI tariff".to_owned()
    } else if prices.is_empty() {
        "free".to_owned()
    } else {
        prices.join(", ")
    };
    format!(
        "- Organization: {}\n- Driver: {}\n- Station: {} connector {} ({})\n- Rate: {} ({} {})\n- Hold: {}",
        input.organization,
        input.user,
        input.charge_station,
        input.connector_id,
        input.connector,
        input.rate_id,
        input.rate.currency,
        prices,
        input.authorized_amount
    )
}

/// A client for session workflows on one task queue.
#[derive(Clone)]
pub struct SessionClient {
    client: Client,
    task_queue: String,
}

impl SessionClient {
    /// Sessions are started on `task_queue` (normally [`crate::queues::SESSIONS`]).
    pub fn new(client: Client, task_queue: impl Into<String>) -> Self {
        Self {
            client,
            task_queue: task_queue.into(),
        }
    }

    /// The underlying Temporal client.
    pub fn temporal(&self) -> &Client {
        &self.client
    }

    /// Starts the session's workflow (or attaches to it when the same session id is retried) and
    /// returns the session with its payment page, once the page exists.
    pub async fn start(&self, input: SessionInput) -> Result<Session, SessionClientError> {
        let id = input.session_id.clone();
        let options = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            id.to_string(),
            WorkflowIdConflictPolicy::UseExisting,
        )
        // A finished session's id is never reused for a new one.
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        // The Temporal UI heads the session's history with these (user metadata; not seen
        // by the workflow, so not part of replay).
        .static_summary(summary(&input))
        .static_details(details(&input))
        .build();
        let handle = self
            .client
            .start_update_with_start_workflow(
                SessionWorkflow::run,
                input,
                SessionWorkflow::created,
                (),
                options,
            )
            .await
            .map_err(|e| match e {
                WorkflowUpdateWithStartError::Update(u) => update_error(&id, u),
                other => SessionClientError::Temporal(other.to_string()),
            })?;
        handle
            .get_result(Default::default())
            .await
            .map_err(|e| update_error(&id, e))
    }

    /// The session as it is now.
    pub async fn session(&self, id: &SessionId) -> Result<Session, SessionClientError> {
        self.handle(id)
            .query(
                SessionWorkflow::session,
                (),
                WorkflowQueryOptions::default(),
            )
            .await
            .map_err(|e| match e {
                WorkflowQueryError::NotFound(_) => SessionClientError::NotFound(id.clone()),
                other => SessionClientError::Temporal(other.to_string()),
            })
    }

    /// Pauses charging.
    pub async fn pause(&self, id: &SessionId) -> Result<Session, SessionClientError> {
        let h = self.handle(id);
        h.execute_update(
            SessionWorkflow::pause,
            (),
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| update_error(id, e))
    }

    /// Resumes charging.
    pub async fn resume(&self, id: &SessionId) -> Result<Session, SessionClientError> {
        let h = self.handle(id);
        h.execute_update(
            SessionWorkflow::resume,
            (),
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| update_error(id, e))
    }

    /// Asks the station to stop; the session ends when the station confirms.
    pub async fn stop(&self, id: &SessionId) -> Result<Session, SessionClientError> {
        let h = self.handle(id);
        h.execute_update(
            SessionWorkflow::stop,
            (),
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
        .map_err(|e| update_error(id, e))
    }

    /// The card hold is placed.
    pub async fn payment_authorized(
        &self,
        id: &SessionId,
        s: PaymentAuthorized,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::payment_authorized, s)
            .await
    }

    /// The provider expired the payment page.
    pub async fn payment_expired(
        &self,
        id: &SessionId,
        s: PaymentClosed,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::payment_expired, s).await
    }

    /// The driver cancelled on the payment page.
    pub async fn payment_canceled(
        &self,
        id: &SessionId,
        s: PaymentClosed,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::payment_canceled, s).await
    }

    /// StartTransaction arrived.
    pub async fn charging_started(
        &self,
        id: &SessionId,
        s: ChargingStarted,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::charging_started, s).await
    }

    /// The station gave up on a start.
    pub async fn start_failed(
        &self,
        id: &SessionId,
        s: StartFailed,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::start_failed, s).await
    }

    /// Meter values arrived.
    pub async fn meter_values(
        &self,
        id: &SessionId,
        s: MeterValues,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::meter_values, s).await
    }

    /// The connector's status changed.
    pub async fn connector_status(
        &self,
        id: &SessionId,
        s: ConnectorStatus,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::connector_status, s).await
    }

    /// StopTransaction arrived.
    pub async fn charging_stopped(
        &self,
        id: &SessionId,
        s: ChargingStopped,
    ) -> Result<(), SessionClientError> {
        self.signal(id, SessionWorkflow::charging_stopped, s).await
    }

    fn handle(&self, id: &SessionId) -> temporalio_client::WorkflowHandle<Client, SessionWorkflow> {
        self.client
            .get_workflow_handle::<SessionWorkflow>(id.to_string())
    }

    async fn signal<S>(
        &self,
        id: &SessionId,
        signal: S,
        input: S::Input,
    ) -> Result<(), SessionClientError>
    where
        S: SignalDefinition<Workflow = <SessionWorkflow as HasWorkflowDefinition>::Run>,
        S::Input: Send,
    {
        self.handle(id)
            .signal(signal, input, WorkflowSignalOptions::default())
            .await
            .map_err(|e| interaction_error(id, e))
    }
}
