//! The central system's answers to the CALLs a station sends, and the session facts they
//! reveal (published through [`SessionEvents`] after the answer is decided).
//!
//! Rules that matter for billing:
//! - StartTransaction is `Accepted` only for the id tag of a pending remote start on the same
//!   station and connector; a repeat gets the same transaction id and verdict.
//! - StopTransaction and MeterValues are always answered, also when late or repeated.
//! - A RemoteStart the station accepted and then abandoned (connector Faulted, or Preparing
//!   and back to Available without a StartTransaction) becomes a `StartFailed` event.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::ids::{ChargeStationId, SessionId};
use domain::pricing::MeterSample;
use serde_json::{Value, json};
use tracing::{Instrument, info, warn};
use workflows::messages::{
    ChargingStarted, ChargingStopped, ConnectorState, ConnectorStatus, MeterValues as MeterSignal,
    StartFailed,
};

use crate::connection::{CallHandler, StationHandle};
use crate::events::{SessionEvent, SessionEvents};
use crate::frame::{Call, CallError, CallResult, ErrorCode, Frame, decode};
use crate::registry::{
    ConnectorInfo, NewTransaction, PendingStart, Registry, RegistryError, Transaction,
    TransactionStop,
};
use crate::v16::authorize::{AuthorizeRequest, AuthorizeResponse};
use crate::v16::boot_notification::{
    BootNotificationRequest, BootNotificationResponse, RegistrationStatus,
};
use crate::v16::change_configuration::{
    ChangeConfigurationRequest, METER_VALUE_SAMPLE_INTERVAL, METER_VALUES_SAMPLED_DATA,
};
use crate::v16::data_transfer::{DataTransferRequest, DataTransferResponse, DataTransferStatus};
use crate::v16::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use crate::v16::meter_values::{MeterValuesRequest, MeterValuesResponse, samples};
use crate::v16::start_transaction::{StartTransactionRequest, StartTransactionResponse};
use crate::v16::status_notification::{StatusNotificationRequest, StatusNotificationResponse};
use crate::v16::stop_transaction::{StopTransactionRequest, StopTransactionResponse};
use crate::v16::trigger_message::{MessageTrigger, TriggerMessageRequest};
use crate::v16::types::{AuthorizationStatus, ChargePointStatus, IdTagInfo};
use crate::v16::{self, Action};

/// Measurands asked for at boot.
pub const SAMPLED_DATA: &str = "Energy.Active.Import.Register,Power.Active.Import";

#[async_trait::async_trait]
impl CallHandler for Central {
    async fn handle_call(&self, station: &StationHandle, call: Call) -> (Frame, Option<Followup>) {
        Central::handle_call(self, station, call).await
    }

    async fn configure(&self, station: StationHandle) {
        Central::configure(self, station).await
    }
}

/// Protocol settings of the central system.
#[derive(Debug, Clone)]
pub(crate) struct ProtocolSettings {
    pub(crate) heartbeat_interval: Duration,
    pub(crate) meter_sample_interval: Duration,
    /// How long a RemoteStart's id tag stays valid for StartTransaction.
    pub(crate) pending_start_ttl: Duration,
}

/// Work to do once the answer has been sent (a CALL of ours must not overtake it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Followup {
    /// Push the metering configuration (after BootNotification).
    Configure,
}

/// How long a StopTransaction answer waits for its signal's delivery: the
/// signal retries take about 3 s, each attempt a few seconds more while Temporal is away.
const CONFIRM_WAIT: Duration = Duration::from_secs(10);

/// A failed CALL: its CALLERROR code and description.
pub(crate) type Fail = (ErrorCode, String);

pub(crate) fn internal(e: RegistryError) -> Fail {
    warn!(error = %e, "registry failed");
    (
        ErrorCode::InternalError,
        "the central system could not record the message; send it again".into(),
    )
}

/// The central system: decides answers with the registry, reports facts to the event sink.
pub(crate) struct Central {
    pub(crate) registry: Arc<dyn Registry>,
    pub(crate) events: Arc<dyn SessionEvents>,
    pub(crate) settings: ProtocolSettings,
    /// Running transactions whose start this gateway process has published. A start is
    /// answered before its signal is delivered (see [`Central::start`]), so a gateway killed in
    /// between loses it; the first meter values this process sees of a transaction not in here
    /// publish its start again from the registry (idempotent for the session).
    pub(crate) starts_published: std::sync::Mutex<std::collections::HashSet<i64>>,
}

pub(crate) async fn answer<A, F, Fut>(payload: Value, handler: F) -> Result<Value, Fail>
where
    A: Action,
    F: FnOnce(A::Request) -> Fut,
    Fut: Future<Output = Result<A::Response, Fail>>,
{
    let request = decode::<A::Request>(payload)?;
    let response = handler(request).await?;
    serde_json::to_value(response).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

/// The answer to CALL `id`: its CALLRESULT, or the CALLERROR of a failure (logged, counted).
pub(crate) fn reply(id: String, result: Result<Value, Fail>) -> Frame {
    match result {
        Ok(payload) => Frame::CallResult(CallResult { id, payload }),
        Err((code, description)) => {
            warn!(%code, %description, "answered with CALLERROR");
            telemetry::ocpp::call_error(true, code.as_str());
            Frame::CallError(CallError::new(id, code, description))
        }
    }
}

/// The answer to an action a version's central system does not handle itself: `{}` for a
/// notification it only acknowledges, `NotSupported` for one it knows and does not do,
/// `NotImplemented` for any other name.
pub(crate) fn unhandled(
    action: &str,
    payload: &Value,
    acknowledged: &[&str],
    unsupported: &[&str],
) -> Result<Value, Fail> {
    if acknowledged.contains(&action) {
        info!(action, payload = %payload, "notification acknowledged");
        Ok(json!({}))
    } else if unsupported.contains(&action) {
        Err((
            ErrorCode::NotSupported,
            format!("{action} is not supported by this central system"),
        ))
    } else {
        Err((
            ErrorCode::NotImplemented,
            format!("unknown action {action}"),
        ))
    }
}

/// OCPP 1.6 `ChargePointStatus` → the session's view of it.
pub(crate) fn connector_state(s: ChargePointStatus) -> ConnectorState {
    match s {
        ChargePointStatus::Available => ConnectorState::Available,
        ChargePointStatus::Preparing => ConnectorState::Preparing,
        ChargePointStatus::Charging => ConnectorState::Charging,
        ChargePointStatus::SuspendedEV => ConnectorState::SuspendedEV,
        ChargePointStatus::SuspendedEVSE => ConnectorState::SuspendedEvse,
        ChargePointStatus::Finishing => ConnectorState::Finishing,
        ChargePointStatus::Reserved => ConnectorState::Reserved,
        ChargePointStatus::Unavailable => ConnectorState::Unavailable,
        ChargePointStatus::Faulted => ConnectorState::Faulted,
    }
}

impl Central {
    /// Answers one CALL.
    pub(crate) async fn handle_call(
        &self,
        station: &StationHandle,
        call: Call,
    ) -> (Frame, Option<Followup>) {
        let id = call.id.clone();
        let mut followup = None;
        let result = self.dispatch(station, call, &mut followup).await;
        (reply(id, result), followup)
    }

    async fn dispatch(
        &self,
        station: &StationHandle,
        call: Call,
        followup: &mut Option<Followup>,
    ) -> Result<Value, Fail> {
        let cp = station.station();
        let payload = call.payload;
        match call.action.as_str() {
            v16::BootNotification::NAME => {
                *followup = Some(Followup::Configure);
                answer::<v16::BootNotification, _, _>(payload, |r| self.boot(cp, r)).await
            }
            v16::Heartbeat::NAME => {
                answer::<v16::Heartbeat, _, _>(payload, |_: HeartbeatRequest| async {
                    Ok(HeartbeatResponse {
                        current_time: Utc::now(),
                    })
                })
                .await
            }
            v16::StatusNotification::NAME => {
                answer::<v16::StatusNotification, _, _>(payload, |r| self.status(cp, r)).await
            }
            v16::Authorize::NAME => {
                answer::<v16::Authorize, _, _>(payload, |r| self.authorize(r)).await
            }
            v16::StartTransaction::NAME => {
                answer::<v16::StartTransaction, _, _>(payload, |r| self.start(cp, r)).await
            }
            v16::MeterValues::NAME => {
                answer::<v16::MeterValues, _, _>(payload, |r| self.meter_values(cp, r)).await
            }
            v16::StopTransaction::NAME => {
                answer::<v16::StopTransaction, _, _>(payload, |r| self.stop(cp, r)).await
            }
            v16::DataTransfer::NAME => {
                answer::<v16::DataTransfer, _, _>(payload, |r: DataTransferRequest| async move {
                    info!(vendor_id = %r.vendor_id, "DataTransfer from an unknown vendor");
                    Ok(DataTransferResponse {
                        status: DataTransferStatus::UnknownVendorId,
                        data: None,
                    })
                })
                .await
            }
            other => unhandled(other, &payload, v16::ACKNOWLEDGED, v16::KNOWN_UNSUPPORTED),
        }
    }

    async fn boot(
        &self,
        cp: &ChargeStationId,
        r: BootNotificationRequest,
    ) -> Result<BootNotificationResponse, Fail> {
        info!(
            vendor = %r.charge_point_vendor,
            model = %r.charge_point_model,
            firmware = r.firmware_version.as_ref().map(|f| f.as_str()),
            "boot notification from {cp}"
        );
        Ok(BootNotificationResponse {
            status: RegistrationStatus::Accepted,
            current_time: Utc::now(),
            interval: secs_i32(self.settings.heartbeat_interval),
        })
    }

    async fn status(
        &self,
        cp: &ChargeStationId,
        r: StatusNotificationRequest,
    ) -> Result<StatusNotificationResponse, Fail> {
        let at = r.timestamp.unwrap_or_else(Utc::now);
        self.connector_reported(
            cp,
            r.connector_id,
            connector_state(r.status),
            r.status.as_str(),
            &r.error_code,
            at,
        )
        .await?;
        Ok(StatusNotificationResponse {})
    }

    /// A connector's status, as either protocol reports it (`wire` is what the registry keeps,
    /// in 1.6 vocabulary): recorded, published to the session of its open transaction or armed
    /// remote start, and, for an armed start, a fault or a plug-out before the start is the
    /// start's failure.
    pub(crate) async fn connector_reported(
        &self,
        cp: &ChargeStationId,
        connector_id: u32,
        state: ConnectorState,
        wire: &str,
        error_code: &str,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), Fail> {
        let info = ConnectorInfo {
            connector_id,
            status: wire.to_owned(),
            error_code: error_code.to_owned(),
            at,
        };
        self.registry
            .set_connector_status(cp, info)
            .await
            .map_err(internal)?;
        if connector_id == 0 {
            return Ok(());
        }
        let signal = ConnectorStatus {
            status: state,
            timestamp: at,
        };
        let open = self
            .registry
            .open_transaction_on(cp, connector_id)
            .await
            .map_err(internal)?;
        if let Some(tx) = open {
            if let Some(session) = tx.session_id {
                self.events
                    .publish(&session, SessionEvent::ConnectorStatus(signal));
            }
            return Ok(());
        }
        let armed = self
            .registry
            .armed_start_on(cp, connector_id)
            .await
            .map_err(internal)?;
        if let Some(p) = armed {
            self.events
                .publish(&p.session_id, SessionEvent::ConnectorStatus(signal));
            match state {
                ConnectorState::Preparing if !p.preparing => {
                    self.registry
                        .update_pending_start(&p.id_tag, true, true)
                        .await
                        .map_err(internal)?;
                }
                ConnectorState::Faulted => {
                    let why = format!(
                        "connector {connector_id} faulted ({error_code}) before the transaction started"
                    );
                    self.start_failed(&p, why).await?;
                }
                ConnectorState::Available if p.preparing => {
                    let why = format!(
                        "connector {connector_id} went back to Available without starting a transaction"
                    );
                    self.start_failed(&p, why).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) async fn start_failed(&self, p: &PendingStart, reason: String) -> Result<(), Fail> {
        info!(session_id = %p.session_id, %reason, "remote start failed");
        self.registry
            .update_pending_start(&p.id_tag, false, false)
            .await
            .map_err(internal)?;
        self.events.publish(
            &p.session_id,
            SessionEvent::StartFailed(StartFailed { reason }),
        );
        Ok(())
    }

    pub(crate) fn fresh(&self, p: &PendingStart) -> bool {
        let ttl = chrono::Duration::from_std(self.settings.pending_start_ttl)
            .unwrap_or(chrono::Duration::MAX);
        p.created_at + ttl > Utc::now()
    }

    async fn authorize(&self, r: AuthorizeRequest) -> Result<AuthorizeResponse, Fail> {
        let status = if self.known_token(r.id_tag.as_str()).await? {
            AuthorizationStatus::Accepted
        } else {
            AuthorizationStatus::Invalid
        };
        Ok(AuthorizeResponse {
            id_tag_info: IdTagInfo::status(status),
        })
    }

    /// Whether `tag` is a session's: a fresh pending remote start, or an open transaction.
    pub(crate) async fn known_token(&self, tag: &str) -> Result<bool, Fail> {
        let pending = self.registry.pending_start(tag).await.map_err(internal)?;
        let known = match pending {
            Some(p) if self.fresh(&p) => true,
            _ => self
                .registry
                .open_transaction_for_tag(tag)
                .await
                .map_err(internal)?
                .is_some(),
        };
        Ok(known)
    }

    async fn start(
        &self,
        cp: &ChargeStationId,
        r: StartTransactionRequest,
    ) -> Result<StartTransactionResponse, Fail> {
        let span = tracing::info_span!(
            "start_transaction",
            connector_id = r.connector_id,
            transaction_id = tracing::field::Empty,
            session_id = tracing::field::Empty
        );
        async {
            let mut new = NewTransaction {
                station: cp.clone(),
                connector_id: r.connector_id,
                id_tag: r.id_tag.as_str().to_owned(),
                session_id: None,
                meter_start: i64::from(r.meter_start),
                started_at: r.timestamp,
            };
            let repeat = self.registry.find_transaction(&new).await.map_err(internal)?;
            let (tx, accepted) = match repeat {
                Some(tx) => {
                    info!(transaction_id = tx.id, "repeated StartTransaction");
                    let accepted = tx.session_id.is_some();
                    (tx, accepted)
                }
                None => {
                    let pending = self
                        .registry
                        .pending_start(&new.id_tag)
                        .await
                        .map_err(internal)?
                        .filter(|p| self.fresh(p));
                    match pending {
                        Some(p) if p.station == *cp && p.connector_id == r.connector_id => {
                            new.session_id = Some(p.session_id.clone());
                            let tx = self
                                .registry
                                .insert_transaction(new)
                                .await
                                .map_err(internal)?;
                            self.registry
                                .remove_pending_start(&p.id_tag)
                                .await
                                .map_err(internal)?;
                            (tx, true)
                        }
                        Some(p) => {
                            // The station picked another connector (or the tag was presented
                            // elsewhere): the session pays for the connector it chose, so no.
                            let tx = self
                                .registry
                                .insert_transaction(new)
                                .await
                                .map_err(internal)?;
                            let why = format!(
                                "the station started on {cp} connector {} instead of {} connector {}",
                                r.connector_id, p.station, p.connector_id
                            );
                            self.start_failed(&p, why).await?;
                            (tx, false)
                        }
                        None => {
                            let tx = self
                                .registry
                                .insert_transaction(new)
                                .await
                                .map_err(internal)?;
                            (tx, false)
                        }
                    }
                }
            };
            let span = tracing::Span::current();
            span.record("transaction_id", tx.id);
            let transaction_id = i32::try_from(tx.id).map_err(|_| {
                (
                    ErrorCode::InternalError,
                    "transaction ids are exhausted".to_owned(),
                )
            })?;
            if let (Some(session), None) = (&tx.session_id, &tx.stop) {
                span.record("session_id", tracing::field::display(session));
                // Published, not confirmed: a StartTransaction for a finished session is
                // stopped remotely by the delivery, which must come after this answer.
                self.publish_start(session, &tx);
            }
            let status = if accepted {
                AuthorizationStatus::Accepted
            } else {
                AuthorizationStatus::Invalid
            };
            info!(?status, "StartTransaction answered");
            Ok(StartTransactionResponse {
                id_tag_info: IdTagInfo::status(status),
                transaction_id,
            })
        }
        .instrument(span)
        .await
    }

    async fn meter_values(
        &self,
        cp: &ChargeStationId,
        r: MeterValuesRequest,
    ) -> Result<MeterValuesResponse, Fail> {
        let Some(tx_id) = r.transaction_id else {
            return Ok(MeterValuesResponse {});
        };
        let tx = self
            .registry
            .transaction(i64::from(tx_id))
            .await
            .map_err(internal)?;
        match tx {
            Some(tx) if tx.station == *cp => self.publish_readings(&tx, samples(&r.meter_value)),
            Some(_) => warn!(
                transaction_id = tx_id,
                "meter values for another station's transaction; ignored"
            ),
            None => warn!(
                transaction_id = tx_id,
                "meter values for an unknown transaction; ignored"
            ),
        }
        Ok(MeterValuesResponse {})
    }

    /// Publishes meter readings of `tx` to its session (none without one, or without
    /// readings). The first readings this process sees of a running transaction whose start it
    /// did not publish publish the start again first: the start may have died with another
    /// gateway process before it reached the session (found by the long chaos run, issue #13).
    pub(crate) fn publish_readings(&self, tx: &Transaction, samples: Vec<MeterSample>) {
        let Some(session) = &tx.session_id else {
            return;
        };
        if samples.is_empty() {
            return;
        }
        let published = self
            .starts_published
            .lock()
            .is_ok_and(|p| p.contains(&tx.id));
        if !published && tx.stop.is_none() {
            info!(transaction_id = tx.id, %session, "start published again before the first meter values");
            self.publish_start(session, tx);
        }
        self.events.publish(
            session,
            SessionEvent::MeterValues(MeterSignal {
                transaction_id: tx.id,
                samples,
            }),
        );
    }

    /// Publishes the start of `tx` for `session` and remembers that this process did.
    pub(crate) fn publish_start(&self, session: &SessionId, tx: &Transaction) {
        if let Ok(mut published) = self.starts_published.lock() {
            published.insert(tx.id);
        }
        self.events.publish(
            session,
            SessionEvent::Started {
                station: tx.station.clone(),
                connector_id: tx.connector_id,
                station_transaction_id: tx.station_transaction_id.clone(),
                started: ChargingStarted {
                    transaction_id: tx.id,
                    meter_start_wh: tx.meter_start,
                    timestamp: tx.started_at,
                },
            },
        );
    }

    async fn stop(
        &self,
        cp: &ChargeStationId,
        r: StopTransactionRequest,
    ) -> Result<StopTransactionResponse, Fail> {
        let stop = TransactionStop {
            meter_stop: i64::from(r.meter_stop),
            at: r.timestamp,
            reason: r.reason.clone(),
        };
        let stopped = self
            .registry
            .stop_transaction(i64::from(r.transaction_id), stop)
            .await
            .map_err(internal)?;
        match stopped {
            Some((tx, first)) if tx.station == *cp => {
                info!(transaction_id = tx.id, first, reason = ?r.reason, "StopTransaction");
                let data = samples(r.transaction_data.as_deref().unwrap_or_default());
                self.publish_stop(&tx, data).await;
            }
            Some(_) => warn!(
                transaction_id = r.transaction_id,
                "StopTransaction for another station's transaction"
            ),
            None => warn!(
                transaction_id = r.transaction_id,
                "StopTransaction for an unknown transaction; accepted"
            ),
        }
        Ok(StopTransactionResponse {
            id_tag_info: r
                .id_tag
                .map(|_| IdTagInfo::status(AuthorizationStatus::Accepted)),
        })
    }

    /// Publishes the stop of `tx` (recorded in the registry; a repeat carries the first stop),
    /// after the readings that came with it, and waits for its delivery (see
    /// [`Central::publish_before_answering`]). Returns whether it was delivered in time.
    pub(crate) async fn publish_stop(&self, tx: &Transaction, data: Vec<MeterSample>) -> bool {
        if let Ok(mut published) = self.starts_published.lock() {
            published.remove(&tx.id);
        }
        let (Some(session), Some(stop)) = (&tx.session_id, &tx.stop) else {
            return true;
        };
        if !data.is_empty() {
            self.events.publish(
                session,
                SessionEvent::MeterValues(MeterSignal {
                    transaction_id: tx.id,
                    samples: data,
                }),
            );
        }
        // A repeat re-sends the first stop: harmless for the session, and it gives a signal
        // lost while Temporal was unreachable another chance.
        let stopped = SessionEvent::Stopped(ChargingStopped {
            transaction_id: tx.id,
            meter_stop_wh: stop.meter_stop,
            timestamp: stop.at,
            reason: stop.reason.clone(),
        });
        self.publish_before_answering(session, stopped).await
    }

    /// Publishes a stop and waits (at most [`CONFIRM_WAIT`]) until its signal is
    /// delivered before the station is answered. Answered first, a gateway killed in between
    /// would lose the fact for good: the station, answered, never sends it again, and the
    /// session charges on until its hold runs out (found by the long chaos run, issue #13).
    /// Unanswered, the station sends it again after reconnecting, and the repeat publishes it
    /// again. Past the wait (Temporal away) the station is answered anyway: it must not be
    /// held up, and the stop is in the registry.
    async fn publish_before_answering(&self, session: &SessionId, event: SessionEvent) -> bool {
        let confirmed = self.events.publish_confirmed(session, event);
        match tokio::time::timeout(CONFIRM_WAIT, confirmed).await {
            Ok(Ok(true)) => true,
            _ => {
                warn!(%session, "answering the station before its signal was delivered");
                false
            }
        }
    }

    /// Pushes the metering configuration chargelink relies on (after BootNotification).
    pub(crate) async fn configure(&self, station: StationHandle) {
        let settings = [
            (
                METER_VALUE_SAMPLE_INTERVAL,
                secs_i32(self.settings.meter_sample_interval).to_string(),
            ),
            (METER_VALUES_SAMPLED_DATA, SAMPLED_DATA.to_owned()),
        ];
        for (key, value) in settings {
            let request = ChangeConfigurationRequest {
                key: key.to_owned(),
                value: value.clone(),
            };
            match station.call::<v16::ChangeConfiguration>(&request).await {
                Ok(r) => info!(key, value, status = ?r.status, "configuration pushed"),
                Err(e) => warn!(key, error = %e, "configuration not pushed"),
            }
        }
        self.recheck_open_transactions(&station).await;
    }

    /// A station that boots may have lost its transactions (power loss, firmware crash): ask
    /// for the status of every connector the registry still has a transaction on, so a
    /// connector that comes back `Available` ends its session (the session workflow decides).
    async fn recheck_open_transactions(&self, station: &StationHandle) {
        for (connector_id, transaction_id) in self.open_transactions(station.station()).await {
            let request = TriggerMessageRequest {
                requested_message: MessageTrigger::StatusNotification,
                connector_id: Some(connector_id),
            };
            let asked = station.call::<v16::TriggerMessage>(&request).await;
            log_recheck(connector_id, transaction_id, asked.map(|r| r.status));
        }
    }

    /// The connectors (> 0) of `cp` the registry still has an open transaction on, with the
    /// transaction: after a boot each is asked for its status (either version).
    pub(crate) async fn open_transactions(&self, cp: &ChargeStationId) -> Vec<(u32, i64)> {
        let Ok(connectors) = self.registry.connectors(cp).await else {
            return Vec::new();
        };
        let mut open = Vec::new();
        for c in connectors.iter().filter(|c| c.connector_id > 0) {
            if let Ok(Some(tx)) = self.registry.open_transaction_on(cp, c.connector_id).await {
                open.push((c.connector_id, tx.id));
            }
        }
        open
    }
}

/// Logs the answer to the status request of a connector with an open transaction.
pub(crate) fn log_recheck<S: std::fmt::Debug>(
    connector_id: u32,
    transaction_id: i64,
    asked: Result<S, crate::connection::CallFailed>,
) {
    match asked {
        Ok(status) => {
            info!(
                connector_id,
                transaction_id,
                ?status,
                "asked for the status of a connector with an open transaction"
            )
        }
        Err(e) => {
            warn!(connector_id, error = %e, "status of a connector with an open transaction not asked for")
        }
    }
}

pub(crate) fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}
