//! One simulated station: a task owning the WebSocket and the connectors' state machine.
//!
//! Its own CALLs go through an outbox, one outstanding at a time (OCPP-J §4.1.1). The outbox
//! survives a lost connection: messages produced offline (meter values with their timestamps,
//! a StopTransaction) are sent after the reconnect, in order.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use ocpp::auth::basic_header;
use ocpp::frame::{Call, CallError, CallResult, ErrorCode, Frame, Parsed, decode};
use ocpp::v16::authorize::AuthorizeRequest;
use ocpp::v16::boot_notification::{BootNotificationRequest, BootNotificationResponse};
use ocpp::v16::change_configuration::{
    ChangeConfigurationRequest, ChangeConfigurationResponse, ConfigurationStatus,
    METER_VALUE_SAMPLE_INTERVAL, METER_VALUES_SAMPLED_DATA,
};
use ocpp::v16::clear_charging_profile::{
    ClearChargingProfileRequest, ClearChargingProfileResponse, ClearChargingProfileStatus,
};
use ocpp::v16::data_transfer::{DataTransferResponse, DataTransferStatus};
use ocpp::v16::meter_values::MeterValuesRequest;
use ocpp::v16::remote_start_transaction::{
    RemoteStartStopStatus, RemoteStartTransactionRequest, RemoteStartTransactionResponse,
};
use ocpp::v16::remote_stop_transaction::{
    RemoteStopTransactionRequest, RemoteStopTransactionResponse,
};
use ocpp::v16::set_charging_profile::{
    ChargingProfileStatus, SetChargingProfileRequest, SetChargingProfileResponse,
};
use ocpp::v16::start_transaction::{StartTransactionRequest, StartTransactionResponse};
use ocpp::v16::status_notification::StatusNotificationRequest;
use ocpp::v16::stop_transaction::StopTransactionRequest;
use ocpp::v16::trigger_message::{
    MessageTrigger, TriggerMessageRequest, TriggerMessageResponse, TriggerMessageStatus,
};
use ocpp::v16::types::{
    AuthorizationStatus, ChargePointStatus, ChargingProfilePurpose, CiString, ENERGY_REGISTER,
    MeterValue, POWER_IMPORT, SampledValue,
};
use ocpp::v16::{self, Action};
use ocpp::{Protocol, v201};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};

use crate::config::StationSpec;
use crate::state::{ConnectorView, SimState};
use crate::v201::Wire201;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Commands from a [`crate::SimHandle`].
#[derive(Debug)]
pub(crate) enum Command {
    Unplug(u32),
    Disconnect(Duration),
    Stop(oneshot::Sender<()>),
}

/// Work the station scheduled for itself.
#[derive(Debug)]
enum Internal {
    Reply(Frame),
    PlugIn { connector: u32, id_tag: String },
}

/// Why a message is queued: what to do with its answer.
#[derive(Debug, Clone)]
enum Purpose {
    Boot,
    Plain,
    Authorize { connector: u32 },
    Start { connector: u32 },
}

#[derive(Debug, Clone)]
struct Queued {
    action: &'static str,
    payload: Value,
    purpose: Purpose,
}

#[derive(Debug)]
struct Outstanding {
    id: String,
    queued: Queued,
    sent_at: Instant,
}

#[derive(Debug, Clone)]
struct Tx {
    id: Option<i32>,
    id_tag: String,
    meter_start: i64,
    started: Instant,
}

#[derive(Debug, Clone)]
struct Connector {
    id: u32,
    status: ChargePointStatus,
    /// The energy register in mWh: power is integrated over real time, so a reading or a
    /// stop at any instant reports what flowed until then.
    energy_mwh: i64,
    /// Since when `energy_mwh` is current.
    integrated_at: Instant,
    paused: bool,
    tx: Option<Tx>,
    /// A RemoteStart being prepared (authorize, then start).
    starting: Option<String>,
}

impl Connector {
    fn power(&self, nominal: i64) -> i64 {
        match (&self.tx, self.status, self.paused) {
            (Some(_), ChargePointStatus::Charging, false) => nominal,
            _ => 0,
        }
    }

    /// Brings the register up to now at the current power (call before anything that changes
    /// the power: status, pause, the transaction).
    fn integrate(&mut self, nominal: i64) {
        let now = Instant::now();
        let ms = i64::try_from(now.duration_since(self.integrated_at).as_millis()).unwrap_or(0);
        self.energy_mwh += self.power(nominal).saturating_mul(ms) / 3_600;
        self.integrated_at = now;
    }

    /// The register in Wh.
    fn energy_wh(&self) -> i64 {
        self.energy_mwh / 1_000
    }
}

/// What a station does by itself, at a given instant.
#[derive(Debug, Clone, Copy)]
enum Scheduled {
    /// The driver unplugs.
    Unplug(u32),
    /// The connector faults for this long.
    FaultStart(u32, Duration),
    /// The fault clears.
    FaultEnd(u32),
    /// Power loss: the station restarts with nothing in memory.
    Reboot,
}

/// A CALL of ours that got no answer in this long is sent again (after a reconnect).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Station {
    spec: StationSpec,
    connectors: Vec<Connector>,
    outbox: VecDeque<Queued>,
    outstanding: Option<Outstanding>,
    /// When the latest MeterValues frame went out (the fleet benchmark's meter-to-stop figure).
    meter_values_sent: Option<Instant>,
    next_id: u64,
    booted: bool,
    meter_interval: Duration,
    heartbeat_interval: Duration,
    offline_until: Option<Instant>,
    /// Things the station does by itself at a given instant.
    scheduled: Vec<(Instant, Scheduled)>,
    drop_at: Option<Instant>,
    state: watch::Sender<SimState>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    commands: mpsc::Receiver<Command>,
    /// OCPP 2.0.1: the wire adapter (the state machine speaks 1.6 terms); `None` for 1.6.
    wire: Option<Wire201>,
    /// Connected now (messages queued while not are 2.0.1 `offline` events).
    online: bool,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn interval(period: Duration) -> Interval {
    let start = Instant::now() + period;
    let mut i = tokio::time::interval_at(start, period.max(Duration::from_millis(10)));
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

async fn next_message(socket: &mut Option<Socket>) -> Option<Result<Message, String>> {
    match socket.as_mut() {
        Some(s) => s.next().await.map(|r| r.map_err(|e| e.to_string())),
        None => std::future::pending().await,
    }
}

async fn tick_if(enabled: bool, i: &mut Interval) {
    if enabled {
        i.tick().await;
    } else {
        std::future::pending::<()>().await;
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Station {
    pub(crate) fn new(
        spec: StationSpec,
        state: watch::Sender<SimState>,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        let connectors = (1..=spec.connectors.max(1))
            .map(|id| Connector {
                id,
                status: ChargePointStatus::Available,
                energy_mwh: spec.meter_start_wh * 1_000,
                integrated_at: Instant::now(),
                paused: false,
                tx: None,
                starting: None,
            })
            .collect();
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let wire = (spec.protocol == Protocol::V201).then(|| Wire201::new(&spec.id));
        Self {
            wire,
            online: false,
            meter_interval: spec.meter_interval,
            heartbeat_interval: spec.heartbeat_interval.unwrap_or(Duration::from_secs(300)),
            spec,
            connectors,
            outbox: VecDeque::new(),
            outstanding: None,
            meter_values_sent: None,
            next_id: 1,
            booted: false,
            offline_until: None,
            scheduled: Vec::new(),
            drop_at: None,
            state,
            internal_tx,
            internal_rx,
            commands,
        }
    }

    async fn connect(&self) -> Result<Socket, String> {
        let mut request = self
            .spec
            .station_url()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(self.spec.protocol.subprotocol()),
        );
        let auth = basic_header(&self.spec.id, &self.spec.key);
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&auth).map_err(|e| e.to_string())?,
        );
        let connector = match &self.spec.tls {
            None => None,
            Some(tls) => Some(tokio_tungstenite::Connector::Rustls(tls.client_config()?)),
        };
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
                .await
                .map_err(|e| e.to_string())?;
        Ok(socket)
    }

    /// Runs until stopped.
    pub(crate) async fn run(mut self) {
        let mut socket: Option<Socket> = None;
        let mut backoff = self.spec.reconnect_backoff;
        let mut reconnect_at = Some(Instant::now());
        let mut heartbeat = interval(self.heartbeat_interval);
        let mut meter = interval(self.meter_interval);
        loop {
            self.publish(socket.is_some());
            if socket.is_some()
                && let Err(e) = self.pump(&mut socket).await
            {
                self.lost(&mut socket, &e, &mut reconnect_at, backoff);
            }
            let heartbeat_on = socket.is_some() && self.booted;
            let meter_on = !self.meter_interval.is_zero()
                && self
                    .connectors
                    .iter()
                    .any(|c| c.tx.as_ref().is_some_and(|t| t.id.is_some()));
            let next_scheduled = self.scheduled.iter().map(|(at, _)| *at).min();
            let resend_at = self
                .outstanding
                .as_ref()
                .map(|o| o.sent_at + ANSWER_TIMEOUT);
            tokio::select! {
                () = sleep_until_opt(reconnect_at), if socket.is_none() => {
                    if self.offline_until.is_some_and(|u| Instant::now() < u) {
                        reconnect_at = self.offline_until;
                        continue;
                    }
                    self.offline_until = None;
                    match self.connect().await {
                        Ok(s) => {
                            info!(station = %self.spec.id, "connected");
                            socket = Some(s);
                            reconnect_at = None;
                            backoff = self.spec.reconnect_backoff;
                            self.on_connected();
                        }
                        Err(e) => {
                            warn!(station = %self.spec.id, error = %e, "connect failed");
                            self.state.send_modify(|s| s.last_error = Some(e));
                            reconnect_at = Some(Instant::now() + backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                        }
                    }
                }
                msg = next_message(&mut socket) => match msg {
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
                    Some(Ok(Message::Close(_))) | None => {
                        self.lost(&mut socket, "closed by the central system", &mut reconnect_at, backoff);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => self.lost(&mut socket, &e, &mut reconnect_at, backoff),
                },
                Some(internal) = self.internal_rx.recv() => match internal {
                    Internal::Reply(frame) => {
                        let text = frame.to_text_for(self.spec.protocol);
                        if let Some(s) = socket.as_mut()
                            && let Err(e) = s.send(Message::text(text)).await
                        {
                            self.lost(&mut socket, &e.to_string(), &mut reconnect_at, backoff);
                        }
                    }
                    Internal::PlugIn { connector, id_tag } => self.plug_in(connector, id_tag),
                },
                command = self.commands.recv() => match command {
                    Some(Command::Unplug(connector)) => self.unplug(connector),
                    Some(Command::Disconnect(offline)) => {
                        self.offline_until = Some(Instant::now() + offline);
                        if let Some(mut s) = socket.take() {
                            let _ = s.close(None).await;
                        }
                        self.requeue_outstanding();
                        reconnect_at = self.offline_until;
                        info!(station = %self.spec.id, ?offline, "disconnected on purpose");
                    }
                    Some(Command::Stop(done)) => {
                        if let Some(mut s) = socket.take() {
                            let _ = s.close(None).await;
                        }
                        self.publish(false);
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                _ = tick_if(heartbeat_on, &mut heartbeat) => {
                    self.enqueue(v16::Heartbeat::NAME, json!({}), Purpose::Plain);
                }
                _ = tick_if(meter_on, &mut meter) => self.sample(),
                () = sleep_until_opt(next_scheduled) => {
                    let due = Instant::now();
                    let (now_due, later): (Vec<_>, Vec<_>) =
                        self.scheduled.drain(..).partition(|(at, _)| *at <= due);
                    self.scheduled = later;
                    for (_, what) in now_due {
                        match what {
                            Scheduled::Unplug(connector) => self.unplug(connector),
                            Scheduled::FaultStart(connector, lasting) => {
                                self.status(connector, ChargePointStatus::Faulted);
                                self.scheduled
                                    .push((Instant::now() + lasting, Scheduled::FaultEnd(connector)));
                            }
                            Scheduled::FaultEnd(connector) => {
                                if self.connectors.iter().any(|c| c.id == connector && c.tx.is_some()) {
                                    self.status(connector, ChargePointStatus::Charging);
                                }
                            }
                            Scheduled::Reboot => {
                                self.reboot();
                                socket = None;
                                reconnect_at = Some(Instant::now() + self.spec.reconnect_backoff);
                            }
                        }
                    }
                }
                () = sleep_until_opt(self.drop_at), if socket.is_some() => {
                    self.drop_at = None;
                    if let Some((_, offline)) = self.spec.behaviour.drop_connection {
                        self.offline_until = Some(Instant::now() + offline);
                        // Drop without a close handshake, like a lost mobile link.
                        socket = None;
                        self.requeue_outstanding();
                        reconnect_at = self.offline_until;
                        info!(station = %self.spec.id, ?offline, "connection dropped");
                    }
                }
                () = sleep_until_opt(resend_at), if socket.is_some() => {
                    warn!(station = %self.spec.id, "no answer; sending again");
                    self.requeue_outstanding();
                }
            }
            if self.meter_interval != meter.period() && !self.meter_interval.is_zero() {
                meter = interval(self.meter_interval);
            }
            if self.heartbeat_interval != heartbeat.period() {
                heartbeat = interval(self.heartbeat_interval);
            }
        }
    }

    /// A power loss: the connection drops, every transaction and queued message is forgotten
    /// and the connectors come back Available after the next boot; with
    /// `stop_queued_on_reboot`, each running transaction's StopTransaction (`PowerLoss`, the
    /// register at the loss) survives in the offline queue and is sent after the boot.
    fn reboot(&mut self) {
        let nominal = self.spec.power_w;
        let keep_stops = self.spec.behaviour.stop_queued_on_reboot;
        let mut stops = Vec::new();
        for c in &mut self.connectors {
            c.integrate(nominal);
            if let Some(tx) = c.tx.take()
                && let (Some(transaction_id), true) = (tx.id, keep_stops)
            {
                let request = StopTransactionRequest {
                    id_tag: Some(ci(&tx.id_tag)),
                    meter_stop: i32::try_from(c.energy_wh()).unwrap_or(i32::MAX),
                    timestamp: now(),
                    transaction_id,
                    reason: Some("PowerLoss".to_owned()),
                    transaction_data: None,
                };
                stops.push(to_value(&request));
            }
            c.starting = None;
            c.paused = false;
            c.status = ChargePointStatus::Available;
        }
        self.outbox.clear();
        for stop in stops {
            if let Some(queued) = self.wire_out(v16::StopTransaction::NAME, stop, Purpose::Plain) {
                self.outbox.push_back(queued);
            }
        }
        self.outstanding = None;
        self.booted = false;
        self.scheduled.clear();
        self.drop_at = None;
        info!(station = %self.spec.id, "rebooted (power loss)");
    }

    fn lost(
        &mut self,
        socket: &mut Option<Socket>,
        why: &str,
        reconnect_at: &mut Option<Instant>,
        backoff: Duration,
    ) {
        if socket.take().is_some() {
            info!(station = %self.spec.id, why, "connection lost");
        }
        self.requeue_outstanding();
        *reconnect_at = Some(self.offline_until.unwrap_or(Instant::now() + backoff));
    }

    fn requeue_outstanding(&mut self) {
        if let Some(o) = self.outstanding.take() {
            self.outbox.push_front(o.queued);
        }
    }

    fn on_connected(&mut self) {
        if !self.booted {
            let boot = BootNotificationRequest {
                charge_point_vendor: ci("chargelink"),
                charge_point_model: ci("sim"),
                charge_point_serial_number: None,
                charge_box_serial_number: None,
                firmware_version: None,
                iccid: None,
                imsi: None,
                meter_type: None,
                meter_serial_number: None,
            };
            // The boot goes first, before anything queued.
            if let Some(queued) =
                self.wire_out(v16::BootNotification::NAME, to_value(&boot), Purpose::Boot)
            {
                self.outbox.push_front(queued);
            }
        }
    }

    /// Sends the next queued CALL when none is outstanding.
    async fn pump(&mut self, socket: &mut Option<Socket>) -> Result<(), String> {
        let Some(s) = socket.as_mut() else {
            return Ok(());
        };
        if self.outstanding.is_some() {
            return Ok(());
        }
        // Nothing but the boot before the boot is accepted.
        if !self.booted
            && !matches!(self.outbox.front(), Some(q) if matches!(q.purpose, Purpose::Boot))
        {
            return Ok(());
        }
        let Some(queued) = self.outbox.pop_front() else {
            return Ok(());
        };
        let id = format!("{}-{}", self.spec.id, self.next_id);
        self.next_id += 1;
        let frame = Frame::Call(Call {
            id: id.clone(),
            action: queued.action.to_owned(),
            payload: queued.payload.clone(),
        });
        debug!(station = %self.spec.id, action = queued.action, "sending");
        self.state.send_modify(|st| st.push_sent(queued.action));
        let result = s
            .send(Message::text(frame.to_text_for(self.spec.protocol)))
            .await;
        if queued.action == v16::MeterValues::NAME || queued.action == v201::TransactionEvent::NAME
        {
            self.meter_values_sent = Some(Instant::now());
        }
        self.outstanding = Some(Outstanding {
            id,
            queued,
            sent_at: Instant::now(),
        });
        result.map_err(|e| e.to_string())
    }

    fn enqueue(&mut self, action: &'static str, payload: Value, purpose: Purpose) {
        if let Some(queued) = self.wire_out(action, payload, purpose) {
            self.outbox.push_back(queued);
        }
    }

    /// A message of the state machine (in 1.6 terms) as it goes on the wire: as is for 1.6,
    /// translated for 2.0.1 (`None`: 2.0.1 has no such message).
    fn wire_out(
        &mut self,
        action: &'static str,
        payload: Value,
        purpose: Purpose,
    ) -> Option<Queued> {
        let offline = !self.online;
        let (action, payload) = match self.wire.as_mut() {
            None => (action, payload),
            Some(wire) => wire.outgoing(action, &payload, offline)?,
        };
        Some(Queued {
            action,
            payload,
            purpose,
        })
    }

    fn status(&mut self, connector: u32, status: ChargePointStatus) {
        let nominal = self.spec.power_w;
        if let Some(c) = self.connector_mut(connector) {
            c.integrate(nominal);
            c.status = status;
        }
        let request = StatusNotificationRequest {
            connector_id: connector,
            error_code: "NoError".into(),
            status,
            timestamp: Some(now()),
            info: None,
            vendor_id: None,
            vendor_error_code: None,
        };
        self.enqueue(
            v16::StatusNotification::NAME,
            to_value(&request),
            Purpose::Plain,
        );
    }

    fn connector_mut(&mut self, id: u32) -> Option<&mut Connector> {
        self.connectors.iter_mut().find(|c| c.id == id)
    }

    fn on_text(&mut self, text: &str) {
        match Frame::parse(text) {
            Parsed::Frame(Frame::Call(call)) => self.on_call(call),
            Parsed::Frame(Frame::CallResult(r)) => self.on_answer(&r.id, Ok(r.payload)),
            Parsed::Frame(Frame::CallError(e)) => self.on_answer(&e.id.clone(), Err(e)),
            Parsed::Ignore(why) => warn!(station = %self.spec.id, why, "ignored"),
            Parsed::Reject(e) => self.reply(Frame::CallError(e)),
        }
    }

    fn reply(&self, frame: Frame) {
        let delay = self.spec.behaviour.reply_delay;
        let tx = self.internal_tx.clone();
        if delay.is_zero() {
            let _ = tx.send(Internal::Reply(frame));
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(Internal::Reply(frame));
            });
        }
    }

    fn on_answer(&mut self, id: &str, answer: Result<Value, CallError>) {
        let Some(o) = self.outstanding.take_if(|o| o.id == id) else {
            warn!(station = %self.spec.id, id, "answer to nothing outstanding");
            return;
        };
        let payload = match answer {
            Ok(p) => p,
            Err(e) => {
                warn!(station = %self.spec.id, action = o.queued.action, code = %e.code, "CALLERROR");
                self.state.send_modify(|s| {
                    s.last_error = Some(format!("{}: {}", e.code, e.description));
                });
                return;
            }
        };
        let payload = match (self.wire.as_mut(), &o.queued.purpose) {
            (Some(wire), Purpose::Authorize { .. }) => {
                wire.answer(v16::Authorize::NAME, payload, None)
            }
            (Some(wire), Purpose::Start { connector }) => {
                wire.answer(v16::StartTransaction::NAME, payload, Some(*connector))
            }
            _ => payload,
        };
        match o.queued.purpose {
            Purpose::Plain => {}
            Purpose::Boot => match decode::<BootNotificationResponse>(payload) {
                Ok(b) => {
                    self.booted = true;
                    if self.spec.heartbeat_interval.is_none() && b.interval > 0 {
                        self.heartbeat_interval =
                            Duration::from_secs(u64::try_from(b.interval).unwrap_or(300));
                    }
                    for id in 0..=self.spec.connectors.max(1) {
                        let status = self
                            .connectors
                            .iter()
                            .find(|c| c.id == id)
                            .map_or(ChargePointStatus::Available, |c| c.status);
                        self.status(id, status);
                    }
                }
                Err((_, e)) => warn!(station = %self.spec.id, error = %e, "bad boot answer"),
            },
            Purpose::Authorize { connector } => {
                let accepted = payload["idTagInfo"]["status"] == "Accepted";
                let tag = self
                    .connector_mut(connector)
                    .and_then(|c| c.starting.clone());
                match (accepted, tag) {
                    (true, Some(tag)) => self.start_transaction(connector, tag),
                    (_, _) => {
                        info!(station = %self.spec.id, connector, "not authorized");
                        if let Some(c) = self.connector_mut(connector) {
                            c.starting = None;
                        }
                        self.status(connector, ChargePointStatus::Available);
                    }
                }
            }
            Purpose::Start { connector } => match decode::<StartTransactionResponse>(payload) {
                Ok(r) => self.started(connector, r),
                Err((_, e)) => {
                    warn!(station = %self.spec.id, error = %e, "bad StartTransaction answer")
                }
            },
        }
    }

    fn on_call(&mut self, call: Call) {
        let received = (call.action.clone(), call.payload.clone());
        let id = call.id.clone();
        let result = match self.wire.as_mut() {
            None => self.dispatch(&call.action, call.payload),
            Some(wire) => match wire.incoming(&call.action, &call.payload) {
                Err(e) => Err(e),
                Ok((calls, reply)) => calls
                    .into_iter()
                    .map(|c| self.dispatch(c.action, c.payload))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|answers| reply.build(answers)),
            },
        };
        // Recorded once acted on, with the state it left: whoever sees the call sees its
        // effect (a 2.0.1 SetVariables is several 1.6 changes, applied before this).
        self.publish(self.online);
        self.state
            .send_modify(|s| s.push_received(&received.0, received.1));
        let frame = match result {
            Ok(payload) => Frame::CallResult(CallResult { id, payload }),
            Err(mut e) => {
                e.id = id;
                Frame::CallError(e)
            }
        };
        self.reply(frame);
    }

    /// Answers a CALL in 1.6 terms.
    fn dispatch(&mut self, action: &str, payload: Value) -> Result<Value, CallError> {
        match action {
            v16::RemoteStartTransaction::NAME => {
                self.handle::<v16::RemoteStartTransaction>(payload, Self::remote_start)
            }
            v16::RemoteStopTransaction::NAME => {
                self.handle::<v16::RemoteStopTransaction>(payload, Self::remote_stop)
            }
            v16::SetChargingProfile::NAME => {
                self.handle::<v16::SetChargingProfile>(payload, Self::set_profile)
            }
            v16::ClearChargingProfile::NAME => {
                self.handle::<v16::ClearChargingProfile>(payload, Self::clear_profile)
            }
            v16::ChangeConfiguration::NAME => {
                self.handle::<v16::ChangeConfiguration>(payload, Self::change_configuration)
            }
            v16::TriggerMessage::NAME => self.handle::<v16::TriggerMessage>(payload, Self::trigger),
            v16::DataTransfer::NAME => Ok(to_value(&DataTransferResponse {
                status: DataTransferStatus::Rejected,
                data: None,
            })),
            other => Err(CallError::new(
                "",
                ErrorCode::NotImplemented,
                format!("{other} is not implemented by the simulator"),
            )),
        }
    }

    fn handle<A: Action>(
        &mut self,
        payload: Value,
        f: fn(&mut Self, A::Request) -> A::Response,
    ) -> Result<Value, CallError> {
        let request = decode::<A::Request>(payload)
            .map_err(|(code, description)| CallError::new("", code, description))?;
        Ok(to_value(&f(self, request)))
    }

    fn remote_start(&mut self, r: RemoteStartTransactionRequest) -> RemoteStartTransactionResponse {
        let connector = r.connector_id.unwrap_or(1);
        let free = self
            .connectors
            .iter()
            .find(|c| c.id == connector)
            .is_some_and(|c| c.tx.is_none() && c.starting.is_none());
        let status = if self.spec.behaviour.refuse_remote_start || !free {
            RemoteStartStopStatus::Rejected
        } else {
            RemoteStartStopStatus::Accepted
        };
        if status == RemoteStartStopStatus::Accepted && !self.spec.behaviour.never_plugged_in {
            // After the answer is sent: the car is plugged in.
            let _ = self.internal_tx.send(Internal::PlugIn {
                connector,
                id_tag: r.id_tag.as_str().to_owned(),
            });
        }
        RemoteStartTransactionResponse { status }
    }

    fn plug_in(&mut self, connector: u32, id_tag: String) {
        if let Some(c) = self.connector_mut(connector) {
            c.starting = Some(id_tag.clone());
        }
        self.status(connector, ChargePointStatus::Preparing);
        if self.spec.behaviour.authorize_remote_start {
            let request = AuthorizeRequest {
                id_tag: ci(&id_tag),
            };
            self.enqueue(
                v16::Authorize::NAME,
                to_value(&request),
                Purpose::Authorize { connector },
            );
        } else {
            self.start_transaction(connector, id_tag);
        }
    }

    fn start_transaction(&mut self, connector: u32, id_tag: String) {
        let Some(c) = self.connector_mut(connector) else {
            return;
        };
        let meter_start = c.energy_wh();
        c.starting = None;
        c.tx = Some(Tx {
            id: None,
            id_tag: id_tag.clone(),
            meter_start,
            started: Instant::now(),
        });
        let request = StartTransactionRequest {
            connector_id: connector,
            id_tag: ci(&id_tag),
            meter_start: i32::try_from(meter_start).unwrap_or(i32::MAX),
            reservation_id: None,
            timestamp: now(),
        };
        self.enqueue(
            v16::StartTransaction::NAME,
            to_value(&request),
            Purpose::Start { connector },
        );
    }

    fn started(&mut self, connector: u32, r: StartTransactionResponse) {
        let accepted = r.id_tag_info.status == AuthorizationStatus::Accepted;
        let Some(c) = self.connector_mut(connector) else {
            return;
        };
        let Some(tx) = c.tx.as_mut() else {
            return;
        };
        tx.id = Some(r.transaction_id);
        if !accepted {
            // StopTransactionOnInvalidId: end it at once.
            info!(station = %self.spec.id, connector, "StartTransaction refused; stopping");
            self.stop_transaction(connector, "DeAuthorized");
            return;
        }
        self.status(connector, ChargePointStatus::Charging);
        let b = &self.spec.behaviour;
        let now = Instant::now();
        if let Some(after) = b.unplug_after {
            self.scheduled
                .push((now + after, Scheduled::Unplug(connector)));
        }
        if let Some((after, lasting)) = b.fault {
            self.scheduled
                .push((now + after, Scheduled::FaultStart(connector, lasting)));
        }
        if let Some(after) = b.reboot_after {
            self.scheduled.push((now + after, Scheduled::Reboot));
        }
        if let Some((after, _)) = b.drop_connection {
            self.drop_at = Some(Instant::now() + after);
        }
    }

    fn stop_transaction(&mut self, connector: u32, reason: &str) {
        let nominal = self.spec.power_w;
        let Some(c) = self.connector_mut(connector) else {
            return;
        };
        c.integrate(nominal);
        let Some(tx) = c.tx.take() else {
            return;
        };
        c.paused = false;
        let meter_stop = c.energy_wh();
        let Some(transaction_id) = tx.id else {
            warn!(station = %self.spec.id, "stopping a transaction that never got an id");
            return;
        };
        let request = StopTransactionRequest {
            id_tag: Some(ci(&tx.id_tag)),
            meter_stop: i32::try_from(meter_stop).unwrap_or(i32::MAX),
            timestamp: now(),
            transaction_id,
            reason: Some(reason.to_owned()),
            transaction_data: None,
        };
        self.enqueue(
            v16::StopTransaction::NAME,
            to_value(&request),
            Purpose::Plain,
        );
        self.status(connector, ChargePointStatus::Finishing);
        self.status(connector, ChargePointStatus::Available);
        debug!(meter_start = tx.meter_start, meter_stop, elapsed = ?tx.started.elapsed(), "stopped");
    }

    fn remote_stop(&mut self, r: RemoteStopTransactionRequest) -> RemoteStopTransactionResponse {
        let connector = self
            .connectors
            .iter()
            .find(|c| {
                c.tx.as_ref()
                    .is_some_and(|t| t.id == Some(r.transaction_id))
            })
            .map(|c| c.id);
        let status = match connector {
            Some(_) if self.spec.behaviour.ignore_remote_stop => {
                warn!(station = %self.spec.id, "RemoteStopTransaction accepted and ignored");
                RemoteStartStopStatus::Accepted
            }
            Some(connector) => {
                // From the reading that led to the stop to the stop itself: gateway, signal,
                // decision, activity, gateway again.
                let since_meter_values_ms = self
                    .meter_values_sent
                    .map(|at| at.elapsed().as_secs_f64() * 1000.0);
                info!(station = %self.spec.id, connector, since_meter_values_ms, "RemoteStopTransaction received");
                self.stop_transaction(connector, "Remote");
                RemoteStartStopStatus::Accepted
            }
            None => RemoteStartStopStatus::Rejected,
        };
        RemoteStopTransactionResponse { status }
    }

    /// The driver pulls the cable: SuspendedEV, StopTransaction(EVDisconnected), Finishing,
    /// Available (OCA test case TC_005).
    fn unplug(&mut self, connector: u32) {
        let has_tx = self
            .connectors
            .iter()
            .any(|c| c.id == connector && c.tx.is_some());
        if !has_tx {
            return;
        }
        self.status(connector, ChargePointStatus::SuspendedEV);
        self.stop_transaction(connector, "EVDisconnected");
    }

    fn set_profile(&mut self, r: SetChargingProfileRequest) -> SetChargingProfileResponse {
        let profile = r.cs_charging_profiles;
        let tx_matches = self.connectors.iter().any(|c| {
            c.id == r.connector_id
                && c.tx.as_ref().is_some_and(|t| {
                    t.id.is_some()
                        && (profile.transaction_id.is_none() || t.id == profile.transaction_id)
                })
        });
        if profile.charging_profile_purpose != ChargingProfilePurpose::TxProfile || !tx_matches {
            return SetChargingProfileResponse {
                status: ChargingProfileStatus::Rejected,
            };
        }
        let limit = profile
            .charging_schedule
            .charging_schedule_period
            .first()
            .map_or(f64::MAX, |p| p.limit);
        let pause = limit <= 0.0;
        let nominal = self.spec.power_w;
        if let Some(c) = self.connector_mut(r.connector_id) {
            c.integrate(nominal);
            c.paused = pause;
        }
        let status = if pause {
            ChargePointStatus::SuspendedEVSE
        } else {
            ChargePointStatus::Charging
        };
        self.status(r.connector_id, status);
        SetChargingProfileResponse {
            status: ChargingProfileStatus::Accepted,
        }
    }

    fn clear_profile(&mut self, _r: ClearChargingProfileRequest) -> ClearChargingProfileResponse {
        let paused: Vec<u32> = self
            .connectors
            .iter()
            .filter(|c| c.paused)
            .map(|c| c.id)
            .collect();
        if paused.is_empty() {
            return ClearChargingProfileResponse {
                status: ClearChargingProfileStatus::Unknown,
            };
        }
        let nominal = self.spec.power_w;
        for connector in paused {
            if let Some(c) = self.connector_mut(connector) {
                c.integrate(nominal);
                c.paused = false;
            }
            self.status(connector, ChargePointStatus::Charging);
        }
        ClearChargingProfileResponse {
            status: ClearChargingProfileStatus::Accepted,
        }
    }

    fn change_configuration(
        &mut self,
        r: ChangeConfigurationRequest,
    ) -> ChangeConfigurationResponse {
        let status = match r.key.as_str() {
            METER_VALUE_SAMPLE_INTERVAL => match r.value.parse::<u64>() {
                Ok(secs) => {
                    self.meter_interval = Duration::from_secs(secs);
                    ConfigurationStatus::Accepted
                }
                Err(_) => ConfigurationStatus::Rejected,
            },
            "HeartbeatInterval" => match r.value.parse::<u64>() {
                Ok(secs) if secs > 0 => {
                    self.heartbeat_interval = Duration::from_secs(secs);
                    ConfigurationStatus::Accepted
                }
                _ => ConfigurationStatus::Rejected,
            },
            METER_VALUES_SAMPLED_DATA => ConfigurationStatus::Accepted,
            _ => ConfigurationStatus::NotSupported,
        };
        ChangeConfigurationResponse { status }
    }

    fn trigger(&mut self, r: TriggerMessageRequest) -> TriggerMessageResponse {
        let status = match r.requested_message {
            MessageTrigger::MeterValues => {
                let connectors: Vec<u32> = self
                    .connectors
                    .iter()
                    .filter(|c| r.connector_id.is_none_or(|id| id == c.id))
                    .map(|c| c.id)
                    .collect();
                for c in connectors {
                    self.meter_values(c);
                }
                TriggerMessageStatus::Accepted
            }
            MessageTrigger::Heartbeat => {
                self.enqueue(v16::Heartbeat::NAME, json!({}), Purpose::Plain);
                TriggerMessageStatus::Accepted
            }
            MessageTrigger::StatusNotification => {
                let statuses: Vec<(u32, ChargePointStatus)> =
                    self.connectors.iter().map(|c| (c.id, c.status)).collect();
                for (id, status) in statuses {
                    if r.connector_id.is_none_or(|c| c == id) {
                        self.status(id, status);
                    }
                }
                TriggerMessageStatus::Accepted
            }
            _ => TriggerMessageStatus::NotImplemented,
        };
        TriggerMessageResponse { status }
    }

    /// A meter interval passed: meter every charging connector.
    fn sample(&mut self) {
        let ids: Vec<u32> = self
            .connectors
            .iter()
            .filter(|c| c.tx.as_ref().is_some_and(|t| t.id.is_some()))
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.meter_values(id);
        }
    }

    /// Queues MeterValues of `connector`: the register as of now (power integrated over time)
    /// and the power at this instant.
    fn meter_values(&mut self, connector: u32) {
        let nominal = self.spec.power_w;
        let Some(c) = self.connector_mut(connector) else {
            return;
        };
        c.integrate(nominal);
        let power = c.power(nominal);
        let transaction_id = c.tx.as_ref().and_then(|t| t.id);
        let energy = c.energy_wh();
        let request = MeterValuesRequest {
            connector_id: connector,
            transaction_id,
            meter_value: vec![MeterValue {
                timestamp: now(),
                sampled_value: vec![
                    sampled(energy.to_string(), ENERGY_REGISTER, "Wh"),
                    sampled(power.to_string(), POWER_IMPORT, "W"),
                ],
            }],
        };
        self.state.send_modify(|s| s.meter_samples += 1);
        self.enqueue(v16::MeterValues::NAME, to_value(&request), Purpose::Plain);
    }

    fn publish(&mut self, connected: bool) {
        self.online = connected;
        let connectors = self
            .connectors
            .iter()
            .map(|c| ConnectorView {
                id: c.id,
                status: c.status,
                transaction_id: c.tx.as_ref().and_then(|t| t.id),
                energy_wh: c.energy_wh(),
                paused: c.paused,
            })
            .collect();
        let queued = self.outbox.len() + usize::from(self.outstanding.is_some());
        self.state.send_if_modified(|s| {
            let changed = s.connected != connected
                || s.booted != self.booted
                || s.connectors != connectors
                || s.queued != queued
                || s.meter_interval != self.meter_interval;
            s.connected = connected;
            s.booted = self.booted;
            s.connectors = connectors;
            s.queued = queued;
            s.meter_interval = self.meter_interval;
            changed
        });
    }
}

fn sampled(value: String, measurand: &str, unit: &str) -> SampledValue {
    SampledValue {
        value,
        context: Some("Sample.Periodic".into()),
        format: None,
        measurand: Some(measurand.into()),
        phase: None,
        location: Some("Outlet".into()),
        unit: Some(unit.into()),
    }
}

fn ci<const N: usize>(s: &str) -> CiString<N> {
    CiString::truncated(s)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
