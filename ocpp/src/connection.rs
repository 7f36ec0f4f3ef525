//! One station's WebSocket: frames in, frames out, and the CALLs the central system sends.
//!
//! A writer task owns the socket's sink and is fed by a channel, so the read loop, the handlers
//! and the charger-command activities can all send. Outgoing CALLs go through
//! [`StationHandle::call`]: one outstanding CALL per station (OCPP-J §4.1.1), its reply matched
//! by message id, bounded by the call timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use domain::ids::ChargeStationId;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::central::Followup;
use crate::frame::{Call, CallError, ErrorCode, Frame, Parsed};
use crate::protocol::{Action, Protocol};
use crate::shutdown::Shutdown;

/// Why a CALL to a station did not get a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CallFailed {
    /// The station is not connected to this gateway; locate it again.
    #[error("charge station {0} is not connected to this gateway")]
    NotConnected(ChargeStationId),
    /// No answer within the call timeout; the station may be slow or gone, retry.
    #[error("no answer to {action} within {timeout:?}")]
    Timeout {
        /// The action sent.
        action: &'static str,
        /// The timeout applied.
        timeout: Duration,
    },
    /// The connection closed before the answer came; retry once the station is back.
    #[error("the connection closed before {0} was answered")]
    Disconnected(&'static str),
    /// The station answered with a CALLERROR.
    #[error("the station answered {action} with {code}: {description}")]
    Refused {
        /// The action sent.
        action: &'static str,
        /// Its error code.
        code: ErrorCode,
        /// Its description.
        description: String,
    },
    /// The station's answer does not match the action's response schema.
    #[error("the answer to {action} is malformed: {reason}")]
    BadResponse {
        /// The action sent.
        action: &'static str,
        /// What was wrong.
        reason: String,
    },
}

enum Reply {
    Result(Value),
    Error(CallError),
}

/// A message for the writer task.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Text(String),
    Close(u16, &'static str),
}

/// Largest WebSocket message (and frame) a station may send. OCPP 1.6 messages are a few KB; a
/// bigger one is closed with 1009 (message too big) before it is buffered whole, so a station
/// cannot make the gateway hold more than this per connection.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The close code for a message over [`MAX_MESSAGE_BYTES`] (RFC 6455 §7.4.1).
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

struct Inner {
    station: ChargeStationId,
    connection_id: String,
    protocol: Protocol,
    outbox: mpsc::Sender<Outgoing>,
    turn: tokio::sync::Mutex<()>,
    pending: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    next_id: AtomicU64,
    call_timeout: Duration,
    closed: watch::Sender<bool>,
}

/// A live station connection: sends CALLs and closes the socket. Cheap to clone.
#[derive(Clone)]
pub struct StationHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StationHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationHandle")
            .field("station", &self.inner.station)
            .field("connection_id", &self.inner.connection_id)
            .field("protocol", &self.inner.protocol)
            .finish()
    }
}

impl StationHandle {
    pub(crate) fn new(
        station: ChargeStationId,
        connection_id: String,
        protocol: Protocol,
        outbox: mpsc::Sender<Outgoing>,
        call_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                station,
                connection_id,
                protocol,
                outbox,
                turn: tokio::sync::Mutex::new(()),
                pending: Mutex::new(None),
                next_id: AtomicU64::new(1),
                call_timeout,
                closed: watch::channel(false).0,
            }),
        }
    }

    /// The station.
    pub fn station(&self) -> &ChargeStationId {
        &self.inner.station
    }

    /// The OCPP version negotiated for this connection.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    /// Unique id of this connection (a reconnect gets a new one).
    pub fn connection_id(&self) -> &str {
        &self.inner.connection_id
    }

    /// Sends a CALL and waits for its answer. Waits for the station's previous CALL to be
    /// answered first; the whole wait is bounded by the call timeout.
    pub async fn call<A: Action>(&self, request: &A::Request) -> Result<A::Response, CallFailed> {
        let timeout = self.inner.call_timeout;
        let started = std::time::Instant::now();
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("cs-{n}");
        let span = info_span!(
            "ocpp_call",
            otel.name = %format_args!("ocpp {}", A::NAME),
            otel.kind = "client",
            charge_point_id = %self.inner.station,
            ocpp_message_id = %id,
            action = A::NAME,
            ocpp_version = %self.inner.protocol,
            result = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let work = async {
            let payload = serde_json::to_value(request).map_err(|e| CallFailed::BadResponse {
                action: A::NAME,
                reason: format!("request does not serialize: {e}"),
            })?;
            let _turn = self.inner.turn.lock().await;
            let (tx, rx) = oneshot::channel();
            *self.pending() = Some((id.clone(), tx));
            let text = Frame::Call(Call {
                id: id.clone(),
                action: A::NAME.to_owned(),
                payload,
            })
            .to_text_for(self.inner.protocol);
            if self.inner.outbox.send(Outgoing::Text(text)).await.is_err() {
                return Err(CallFailed::Disconnected(A::NAME));
            }
            debug!("sent");
            match rx.await {
                Ok(Reply::Result(value)) => {
                    serde_json::from_value(value).map_err(|e| CallFailed::BadResponse {
                        action: A::NAME,
                        reason: e.to_string(),
                    })
                }
                Ok(Reply::Error(e)) => Err(CallFailed::Refused {
                    action: A::NAME,
                    code: e.code,
                    description: e.description,
                }),
                Err(_) => Err(CallFailed::Disconnected(A::NAME)),
            }
        };
        let result = match tokio::time::timeout(timeout, work.instrument(span.clone())).await {
            Ok(r) => r,
            Err(_) => {
                // Free the slot: a late answer to this id is logged and dropped.
                let mut pending = self.pending();
                if pending.as_ref().is_some_and(|(p, _)| *p == id) {
                    *pending = None;
                }
                Err(CallFailed::Timeout {
                    action: A::NAME,
                    timeout,
                })
            }
        };
        span.in_scope(|| match &result {
            Ok(_) => debug!("answered"),
            Err(e) => warn!(error = %e, "call failed"),
        });
        span.record("result", outcome(&result));
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        telemetry::ocpp::command(A::NAME, outcome(&result), started.elapsed());
        result
    }

    /// Closes the connection (a newer one replaced it, or the gateway shuts down).
    pub fn close(&self, reason: &'static str) {
        self.close_with(1000, reason);
    }

    /// Closes the connection with close `code` (queued after what is already being sent).
    fn close_with(&self, code: u16, reason: &'static str) {
        let _ = self.inner.outbox.try_send(Outgoing::Close(code, reason));
        self.inner.closed.send_replace(true);
    }

    pub(crate) async fn send(&self, frame: &Frame) -> bool {
        self.inner
            .outbox
            .send(Outgoing::Text(frame.to_text_for(self.inner.protocol)))
            .await
            .is_ok()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<(String, oneshot::Sender<Reply>)>> {
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a CALLRESULT / CALLERROR to the CALL waiting for it.
    fn resolve(&self, id: &str, reply: Reply) {
        let waiting = {
            let mut pending = self.pending();
            match pending.as_ref() {
                Some((p, _)) if p == id => pending.take(),
                _ => None,
            }
        };
        match waiting {
            Some((_, tx)) => {
                let _ = tx.send(reply);
            }
            None => warn!(
                ocpp_message_id = id,
                "answer to no outstanding CALL (late or unknown); dropped"
            ),
        }
    }

    fn closed(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }
}

/// Answers the CALLs a station sends, in one OCPP version (`central` for 1.6, `central201`
/// for 2.0.1), behind the same session events and registry.
#[async_trait::async_trait]
pub(crate) trait CallHandler: Send + Sync + 'static {
    /// Answers one CALL, and says what to do once the answer is sent.
    async fn handle_call(&self, station: &StationHandle, call: Call) -> (Frame, Option<Followup>);

    /// Pushes the configuration chargelink relies on (after BootNotification).
    async fn configure(&self, station: StationHandle);
}

/// Socket tuning: OCPP messages are small, so small buffers keep 10k connections cheap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketLimits {
    pub(crate) idle_timeout: Duration,
}

/// Runs a connection until the station or the gateway closes it.
/// The `result` label of a command's round trip.
fn outcome<T>(result: &Result<T, CallFailed>) -> &'static str {
    match result {
        Ok(_) => "answered",
        Err(CallFailed::NotConnected(_)) => "not_connected",
        Err(CallFailed::Timeout { .. }) => "timeout",
        Err(CallFailed::Disconnected(_)) => "disconnected",
        Err(CallFailed::Refused { .. }) => "callerror",
        Err(CallFailed::BadResponse { .. }) => "bad_response",
    }
}

pub(crate) async fn serve(
    socket: WebSocket,
    handle: StationHandle,
    mut outbox_rx: mpsc::Receiver<Outgoing>,
    central: Arc<dyn CallHandler>,
    limits: SocketLimits,
    mut shutdown: Shutdown,
) {
    let (mut sink, mut stream) = socket.split();
    let mut writer_closed = handle.closed();
    let writer = tokio::spawn(
        async move {
            loop {
                let out = tokio::select! {
                    // What is queued (a close with its own code included) goes out first.
                    biased;
                    out = outbox_rx.recv() => out,
                    _ = writer_closed.wait_for(|c| *c) => Some(Outgoing::Close(1000, "closed")),
                };
                let result = match out {
                    Some(Outgoing::Text(text)) => sink.send(Message::text(text)).await,
                    Some(Outgoing::Close(code, reason)) => {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let close = sink.send(Message::Close(Some(frame)));
                        let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
                        break;
                    }
                    None => break,
                };
                if result.is_err() {
                    break;
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
        }
        .in_current_span(),
    );

    let mut closed = handle.closed();
    loop {
        let next = tokio::select! {
            _ = shutdown.recv() => {
                handle.close("gateway shutting down");
                break;
            }
            _ = closed.wait_for(|c| *c) => break,
            next = tokio::time::timeout(limits.idle_timeout, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                info!("no message within the idle timeout; closing");
                handle.close("idle");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                // tungstenite refuses a message over the limit as it reads it ("Space limit
                // exceeded: Message too long"); say so to the station instead of just dropping it.
                let text = e.to_string();
                if text.contains("Message too long") || text.contains("Space limit exceeded") {
                    warn!(error = %text, max_bytes = MAX_MESSAGE_BYTES, "message too big; closing with 1009");
                    handle.close_with(CLOSE_MESSAGE_TOO_BIG, "message too big (max 1 MiB)");
                } else {
                    debug!(error = %text, "socket error");
                }
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        let text = match message {
            Message::Text(t) => t,
            Message::Close(_) => break,
            // Pings are answered by the socket layer; OCPP-J uses text frames only.
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                let e = CallError::new(
                    crate::frame::UNKNOWN_MESSAGE_ID,
                    ErrorCode::FormationViolation,
                    "OCPP-J messages are text frames",
                );
                telemetry::ocpp::call_error(true, e.code.as_str());
                handle.send(&Frame::CallError(e)).await;
                continue;
            }
        };
        match Frame::parse(text.as_str()) {
            Parsed::Frame(Frame::Call(call)) => {
                telemetry::ocpp::call_in(&call.action);
                let span = info_span!(
                    "ocpp_message",
                    otel.name = %format_args!("ocpp {} received", call.action),
                    otel.kind = "server",
                    ocpp_message_id = %call.id,
                    action = %call.action,
                );
                // Each CALL from the station starts its own trace, not one of the connection.
                telemetry::traces::new_trace(&span);
                let (reply, followup) = central
                    .handle_call(&handle, call)
                    .instrument(span.clone())
                    .await;
                if !handle.send(&reply).await {
                    break;
                }
                if let Some(Followup::Configure) = followup {
                    let (central, station) = (central.clone(), handle.clone());
                    tokio::spawn(async move { central.configure(station).await }.instrument(span));
                }
            }
            Parsed::Frame(Frame::CallResult(r)) => handle.resolve(&r.id, Reply::Result(r.payload)),
            Parsed::Frame(Frame::CallError(e)) => {
                telemetry::ocpp::call_error(false, e.code.as_str());
                handle.resolve(&e.id.clone(), Reply::Error(e));
            }
            Parsed::Ignore(why) => warn!(reason = %why, "message ignored"),
            Parsed::Reject(e) => {
                warn!(code = %e.code, description = %e.description, "malformed message");
                telemetry::ocpp::call_error(true, e.code.as_str());
                if !handle.send(&Frame::CallError(e)).await {
                    break;
                }
            }
        }
    }
    // Wake a CALL waiting for an answer that will not come.
    handle.pending().take();
    handle.close("closed");
    let _ = writer.await;
}
