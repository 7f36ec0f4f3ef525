//! What the protocol layer reports about sessions. The OCPP code knows a session only by id and
//! hands facts to a [`SessionEvents`] sink; the gateway's sink turns them into Temporal signals
//! ([`crate::signals`]), so framing and message handling never know about Temporal.

use domain::ids::{ChargeStationId, SessionId};
use tokio::sync::{mpsc, oneshot};
use workflows::messages::{
    ChargingStarted, ChargingStopped, ConnectorStatus, MeterValues, StartFailed,
};

/// A fact about a session, as a station reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A transaction started for the session's id tag (1.6 StartTransaction; 2.0.1 the
    /// TransactionEvent carrying the token).
    Started {
        /// The station (to stop the transaction if the session is gone).
        station: ChargeStationId,
        /// The connector.
        connector_id: u32,
        /// OCPP 2.0.1: the station's own id of the transaction (to stop it); `None` for 1.6,
        /// where `started.transaction_id` is the OCPP id.
        station_transaction_id: Option<String>,
        /// What the station reported.
        started: ChargingStarted,
    },
    /// The station accepted a RemoteStart and then gave up, or started elsewhere.
    StartFailed(StartFailed),
    /// Meter values of the session's transaction, with the station's timestamps.
    MeterValues(MeterValues),
    /// The session's connector changed status.
    ConnectorStatus(ConnectorStatus),
    /// StopTransaction of the session's transaction.
    Stopped(ChargingStopped),
}

/// Receives session events. `publish` must return quickly: it is called from a station's read
/// loop right after the station was answered.
pub trait SessionEvents: Send + Sync + 'static {
    /// Reports `event` for `session`. Events of one session must be delivered in order.
    fn publish(&self, session: &SessionId, event: SessionEvent);

    /// Reports `event` like [`SessionEvents::publish`] and answers `true` once it is delivered
    /// (or no longer wanted: the session is gone), `false` if delivery gave up. The gateway
    /// answers StopTransaction only then: a gateway killed before the
    /// signal went out leaves the station's message unanswered, so the station sends it again
    /// after reconnecting (OCPP-J retries transaction messages) instead of the fact being lost.
    /// By default the event counts as delivered once published.
    fn publish_confirmed(
        &self,
        session: &SessionId,
        event: SessionEvent,
    ) -> oneshot::Receiver<bool> {
        self.publish(session, event);
        answered(true)
    }
}

/// A delivery confirmation that is already in.
fn answered(delivered: bool) -> oneshot::Receiver<bool> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(delivered);
    rx
}

/// A sink that forwards events to a channel (tests, tools).
#[derive(Debug, Clone)]
pub struct ChannelEvents(pub mpsc::UnboundedSender<(SessionId, SessionEvent)>);

impl SessionEvents for ChannelEvents {
    fn publish(&self, session: &SessionId, event: SessionEvent) {
        let _ = self.0.send((session.clone(), event));
    }
}
