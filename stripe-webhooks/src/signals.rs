//! How events reach session workflows: a small trait, so the route can be tested with a fake,
//! and its implementation for a Temporal client (untyped signals by their pinned names).

use std::future::Future;

use domain::ids::SessionId;
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::{
    Client, NamespacedClient, UntypedSignal, UntypedWorkflow, WorkflowSignalOptions,
};
use temporalio_common::data_converters::{
    GenericPayloadConverter, PayloadConversionError, RawValue, SerializationContext,
    SerializationContextData, TemporalSerializable,
};
use workflows::messages::{PaymentAuthorized, PaymentClosed};
use workflows::names;

/// Why a signal did not reach its workflow.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// No running workflow has this id: acknowledge the event, there is nobody to tell.
    #[error("no running session workflow `{0}`")]
    UnknownSession(SessionId),
    /// The payload could not be encoded: a bug; the event is redelivered and fails again.
    #[error("signal payload could not be encoded")]
    Encode(#[source] PayloadConversionError),
    /// Temporal could not be reached or refused: answer 5xx so Stripe redelivers.
    #[error("signalling the workflow failed")]
    Temporal(#[source] WorkflowInteractionError),
}

/// Signals to a session's workflow.
pub trait SessionSignals: Send + Sync + 'static {
    /// The card hold is placed.
    fn signal_authorized(
        &self,
        session: &SessionId,
        payload: PaymentAuthorized,
    ) -> impl Future<Output = Result<(), SignalError>> + Send;
    /// The payment page expired.
    fn signal_expired(
        &self,
        session: &SessionId,
        payload: PaymentClosed,
    ) -> impl Future<Output = Result<(), SignalError>> + Send;
    /// The hold was cancelled (by chargelink, or lapsed).
    fn signal_canceled(
        &self,
        session: &SessionId,
        payload: PaymentClosed,
    ) -> impl Future<Output = Result<(), SignalError>> + Send;
}

async fn send<T: TemporalSerializable + 'static>(
    client: &Client,
    session: &SessionId,
    name: &str,
    payload: &T,
) -> Result<(), SignalError> {
    // Encoded with the client's own payload converter (its codec is applied when sending).
    let converter = client.data_converter().payload_converter();
    let context = SerializationContext::new(&SerializationContextData::None, converter);
    let payload = converter
        .to_payload(&context, payload)
        .map_err(SignalError::Encode)?;
    let handle = client.get_workflow_handle::<UntypedWorkflow>(session.as_str());
    match handle
        .signal(
            UntypedSignal::<UntypedWorkflow>::new(name),
            RawValue::new(vec![payload]),
            WorkflowSignalOptions::default(),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(WorkflowInteractionError::NotFound(_)) => {
            Err(SignalError::UnknownSession(session.clone()))
        }
        Err(e) => Err(SignalError::Temporal(e)),
    }
}

impl SessionSignals for Client {
    async fn signal_authorized(
        &self,
        session: &SessionId,
        payload: PaymentAuthorized,
    ) -> Result<(), SignalError> {
        send(self, session, names::SIGNAL_PAYMENT_AUTHORIZED, &payload).await
    }

    async fn signal_expired(
        &self,
        session: &SessionId,
        payload: PaymentClosed,
    ) -> Result<(), SignalError> {
        send(self, session, names::SIGNAL_PAYMENT_EXPIRED, &payload).await
    }

    async fn signal_canceled(
        &self,
        session: &SessionId,
        payload: PaymentClosed,
    ) -> Result<(), SignalError> {
        send(self, session, names::SIGNAL_PAYMENT_CANCELED, &payload).await
    }
}
