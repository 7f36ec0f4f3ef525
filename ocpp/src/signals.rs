//! Session events become signals to the session workflows.
//!
//! Each session gets its own ordered queue and delivery task, so a slow or unreachable Temporal
//! never holds up a station's read loop, and a session sees its events in the order the station
//! sent them. Failed signals are retried a few times; a session that no longer exists is logged
//! and its events dropped, and a transaction started for such a session is stopped again
//! remotely (nobody would pay for it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::ids::{ChargeStationId, SessionId};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, error, info, info_span, warn};
use workflows::client::{SessionClient, SessionClientError};

use crate::commands::{self, Target};
use crate::events::{SessionEvent, SessionEvents};
use crate::registry::Connections;

/// How signals are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignalRetry {
    pub(crate) attempts: u32,
    pub(crate) first_backoff: Duration,
}

impl Default for SignalRetry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(200),
        }
    }
}

/// A delivery task with no event for this long ends (a new one starts on the next event).
const IDLE: Duration = Duration::from_secs(60);

struct Inner {
    sessions: SessionClient,
    connections: Connections,
    queues: Mutex<Queues>,
    retry: SignalRetry,
}

/// [`SessionEvents`] delivered as Temporal signals through [`SessionClient`].
#[derive(Clone)]
pub struct TemporalEvents {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TemporalEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporalEvents").finish_non_exhaustive()
    }
}

impl TemporalEvents {
    /// Signals through `sessions`; orphan transactions are stopped through `connections`.
    pub fn new(sessions: SessionClient, connections: Connections) -> Self {
        Self::with_retry(sessions, connections, SignalRetry::default())
    }

    pub(crate) fn with_retry(
        sessions: SessionClient,
        connections: Connections,
        retry: SignalRetry,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions,
                connections,
                queues: Mutex::new(HashMap::new()),
                retry,
            }),
        }
    }
}

/// An event and, for [`SessionEvents::publish_confirmed`], who waits for its delivery.
type Queued = (SessionEvent, Option<oneshot::Sender<bool>>);

type Queues = HashMap<SessionId, mpsc::UnboundedSender<Queued>>;

impl Inner {
    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TemporalEvents {
    fn enqueue(&self, session: &SessionId, item: Queued) {
        let mut queues = self.inner.queues();
        let item = match queues.get(session) {
            Some(tx) => match tx.send(item) {
                Ok(()) => return,
                Err(mpsc::error::SendError(item)) => item,
            },
            None => item,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // Cannot fail: `rx` is alive.
        let _ = tx.send(item);
        queues.insert(session.clone(), tx);
        let inner = self.inner.clone();
        let span = info_span!("session_signals", session_id = %session);
        tokio::spawn(deliver_all(inner, session.clone(), rx).instrument(span));
    }
}

impl SessionEvents for TemporalEvents {
    fn publish(&self, session: &SessionId, event: SessionEvent) {
        self.enqueue(session, (event, None));
    }

    fn publish_confirmed(
        &self,
        session: &SessionId,
        event: SessionEvent,
    ) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(session, (event, Some(tx)));
        rx
    }
}

async fn deliver_all(
    inner: Arc<Inner>,
    session: SessionId,
    mut rx: mpsc::UnboundedReceiver<Queued>,
) {
    // An event taken from the queue while coalescing, delivered next.
    let mut held: Option<Queued> = None;
    loop {
        let item = match held.take() {
            Some(item) => item,
            None => match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(item)) => item,
                Ok(None) => return,
                Err(_) => {
                    // Publishers send while holding the lock, so "empty under the lock" is final.
                    let mut queues = inner.queues();
                    if rx.is_empty() {
                        queues.remove(&session);
                        return;
                    }
                    continue;
                }
            },
        };
        let ((event, ack), next) = coalesce(item, &mut rx);
        held = next;
        let delivered = deliver(&inner, &session, event).await;
        if let Some(ack) = ack {
            let _ = ack.send(delivered);
        }
    }
}

/// Meter values queued behind each other (a station flushing its offline queue, or a burst
/// while a signal was in flight) become one signal: each signal is a history event and a
/// workflow task, and the session needs the samples, not how they were framed. Stops at the
/// first other event, which is handed back to go next, so the order is kept.
fn coalesce(item: Queued, rx: &mut mpsc::UnboundedReceiver<Queued>) -> (Queued, Option<Queued>) {
    // Only plain meter values merge (a confirmed event is delivered as itself).
    let (SessionEvent::MeterValues(mut meter), None) = item else {
        return (item, None);
    };
    while meter.samples.len() < MAX_SAMPLES_PER_SIGNAL {
        match rx.try_recv() {
            Ok((SessionEvent::MeterValues(more), None))
                if more.transaction_id == meter.transaction_id =>
            {
                meter.samples.extend(more.samples);
            }
            Ok(other) => return ((SessionEvent::MeterValues(meter), None), Some(other)),
            Err(_) => break,
        }
    }
    ((SessionEvent::MeterValues(meter), None), None)
}

/// Keeps a coalesced signal's payload small (Temporal refuses payloads over 2 MB).
const MAX_SAMPLES_PER_SIGNAL: usize = 500;

fn kind(event: &SessionEvent) -> &'static str {
    match event {
        SessionEvent::Started { .. } => "charging_started",
        SessionEvent::StartFailed(_) => "start_failed",
        SessionEvent::MeterValues(_) => "meter_values",
        SessionEvent::ConnectorStatus(_) => "connector_status",
        SessionEvent::Stopped(_) => "charging_stopped",
    }
}

/// `true` once delivered or no longer wanted (the session is gone), `false` after giving up.
async fn deliver(inner: &Inner, session: &SessionId, event: SessionEvent) -> bool {
    let signal = kind(&event);
    let mut backoff = inner.retry.first_backoff;
    for attempt in 1..=inner.retry.attempts.max(1) {
        let s = &inner.sessions;
        let result = match &event {
            SessionEvent::Started { started, .. } => {
                s.charging_started(session, started.clone()).await
            }
            SessionEvent::StartFailed(f) => s.start_failed(session, f.clone()).await,
            SessionEvent::MeterValues(m) => s.meter_values(session, m.clone()).await,
            SessionEvent::ConnectorStatus(c) => s.connector_status(session, c.clone()).await,
            SessionEvent::Stopped(st) => s.charging_stopped(session, st.clone()).await,
        };
        match result {
            Ok(()) => {
                info!(signal, "signalled");
                if let SessionEvent::MeterValues(m) = &event {
                    record_latency(m);
                }
                return true;
            }
            Err(SessionClientError::NotFound(_)) => {
                warn!(
                    signal,
                    "the session does not exist or has finished; signal dropped"
                );
                if let SessionEvent::Started {
                    station,
                    connector_id,
                    station_transaction_id,
                    started,
                } = &event
                {
                    let tx = Target {
                        transaction_id: started.transaction_id,
                        connector_id: *connector_id,
                        station_transaction_id: station_transaction_id.clone(),
                    };
                    stop_orphan(&inner.connections, station, &tx).await;
                }
                return true;
            }
            Err(e) => {
                warn!(signal, attempt, error = %e, "signal failed");
                if attempt < inner.retry.attempts {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }
    error!(signal, "signal not delivered; giving up");
    false
}

/// Age of the newest reading once its workflow holds it (station clock against ours: a station
/// whose clock runs ahead shows 0).
fn record_latency(meter: &workflows::messages::MeterValues) {
    if let Some(newest) = meter.samples.iter().map(|s| s.timestamp).max() {
        let age = (chrono::Utc::now() - newest).to_std().unwrap_or_default();
        telemetry::sessions::meter_value_delivered(age);
    }
}

/// A transaction started for a session that is gone: ask the station to stop it, in the
/// version its connection speaks.
async fn stop_orphan(connections: &Connections, station: &ChargeStationId, tx: &Target) {
    let transaction_id = tx.transaction_id;
    let Some(handle) = connections.get(station) else {
        warn!(%station, transaction_id, "orphan transaction on a disconnected station; not stopped");
        return;
    };
    match commands::of(handle.protocol())
        .remote_stop(&handle, tx)
        .await
    {
        Ok(accepted) => info!(%station, transaction_id, accepted, "orphan transaction stopped"),
        Err(e) => warn!(%station, transaction_id, error = %e, "orphan transaction not stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use domain::pricing::MeterSample;
    use workflows::messages::{MeterValues, StartFailed};

    fn meter(tx: i64, wh: i64) -> Queued {
        let event = SessionEvent::MeterValues(MeterValues {
            transaction_id: tx,
            samples: vec![MeterSample::new(Utc::now(), wh, None)],
        });
        (event, None)
    }

    fn energies(item: &Queued) -> Vec<i64> {
        match &item.0 {
            SessionEvent::MeterValues(m) => m.samples.iter().map(|s| s.energy_wh).collect(),
            _ => Vec::new(),
        }
    }

    fn failed(reason: &str) -> SessionEvent {
        SessionEvent::StartFailed(StartFailed {
            reason: reason.into(),
        })
    }

    #[test]
    fn queued_meter_values_become_one_signal_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for e in [meter(7, 2), meter(7, 3), meter(8, 4), (failed("x"), None)] {
            tx.send(e).unwrap();
        }
        let (first, held) = coalesce(meter(7, 1), &mut rx);
        assert_eq!(energies(&first), [1, 2, 3]);
        // Another transaction's readings are not merged in: they go next, on their own.
        let held = held.expect("the next event is kept");
        assert_eq!(energies(&held), [4]);
        let (next, held) = coalesce(held, &mut rx);
        assert_eq!(energies(&next), [4]);
        assert!(matches!(held, Some((SessionEvent::StartFailed(_), None))));
        // Anything else passes through untouched.
        let (same, none) = coalesce((failed("y"), None), &mut rx);
        assert!(matches!(same.0, SessionEvent::StartFailed(_)) && none.is_none());
    }

    #[tokio::test]
    async fn a_confirmed_event_is_not_merged_and_keeps_its_waiter() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (ack, waiter) = oneshot::channel();
        tx.send((meter(7, 2).0, Some(ack))).unwrap();
        let (first, held) = coalesce(meter(7, 1), &mut rx);
        assert_eq!(energies(&first), [1]);
        let (event, ack) = held.expect("the confirmed reading goes next, on its own");
        assert!(matches!(event, SessionEvent::MeterValues(_)));
        ack.expect("its waiter is kept").send(true).unwrap();
        assert!(waiter.await.unwrap());
    }
}
