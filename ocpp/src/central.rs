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
use serde_json::{Value, json};
use tracing::{Instrument, info, warn};
use workflows::messages::{
    ChargingStarted, ChargingStopped, ConnectorState, ConnectorStatus, MeterValues as MeterSignal,
    StartFailed,
};

use crate::connection::StationHandle;
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
type Fail = (ErrorCode, String);

fn internal(e: RegistryError) -> Fail {
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

async fn answer<A, F, Fut>(payload: Value, handler: F) -> Result<Value, Fail>
where
    A: Action,
    F: FnOnce(A::Request) -> Fut,
    Fut: Future<Output = Result<A::Response, Fail>>,
{
    let request = decode::<A::Request>(payload)?;
    let response = handler(request).await?;
    serde_json::to_value(response).map_err(|e| (ErrorCode::InternalError, e.to_string()))
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
        let frame = match result {
            Ok(payload) => Frame::CallResult(CallResult { id, payload }),
            Err((code, description)) => {
                warn!(%code, %description, "answered with CALLERROR");
                telemetry::ocpp::call_error(true, code.as_str());
                Frame::CallError(CallError::new(id, code, description))
            }
        };
        (frame, followup)
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
            other if v16::ACKNOWLEDGED.contains(&other) => {
                info!(action = other, payload = %payload, "notification acknowledged");
                Ok(json!({}))
            }
            other if v16::KNOWN_UNSUPPORTED.contains(&other) => Err((
                ErrorCode::NotSupported,
                format!("{other} is not supported by this central system"),
            )),
            other => Err((ErrorCode::NotImplemented, format!("unknown action {other}"))),
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
        let info = ConnectorInfo {
            connector_id: r.connector_id,
            status: r.status.as_str().to_owned(),
            error_code: r.error_code.clone(),
            at,
        };
        self.registry
            .set_connector_status(cp, info)
            .await
            .map_err(internal)?;
        if r.connector_id == 0 {
            return Ok(StatusNotificationResponse {});
        }
        let signal = ConnectorStatus {
            status: connector_state(r.status),
            timestamp: at,
        };
        let open = self
            .registry
            .open_transaction_on(cp, r.connector_id)
            .await
            .map_err(internal)?;
        if let Some(tx) = open {
            if let Some(session) = tx.session_id {
                self.events
                    .publish(&session, SessionEvent::ConnectorStatus(signal));
            }
            return Ok(StatusNotificationResponse {});
        }
        let armed = self
            .registry
            .armed_start_on(cp, r.connector_id)
            .await
            .map_err(internal)?;
        if let Some(p) = armed {
            self.events
                .publish(&p.session_id, SessionEvent::ConnectorStatus(signal));
            match r.status {
                ChargePointStatus::Preparing if !p.preparing => {
                    self.registry
                        .update_pending_start(&p.id_tag, true, true)
                        .await
                        .map_err(internal)?;
                }
                ChargePointStatus::Faulted => {
                    let why = format!(
                        "connector {} faulted ({}) before the transaction started",
                        r.connector_id, r.error_code
                    );
                    self.start_failed(&p, why).await?;
                }
                ChargePointStatus::Available if p.preparing => {
                    let why = format!(
                        "connector {} went back to Available without starting a transaction",
                        r.connector_id
                    );
                    self.start_failed(&p, why).await?;
                }
                _ => {}
            }
        }
        Ok(StatusNotificationResponse {})
    }

    async fn start_failed(&self, p: &PendingStart, reason: String) -> Result<(), Fail> {
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

    fn fresh(&self, p: &PendingStart) -> bool {
        let ttl = chrono::Duration::from_std(self.settings.pending_start_ttl)
            .unwrap_or(chrono::Duration::MAX);
        p.created_at + ttl > Utc::now()
    }

    async fn authorize(&self, r: AuthorizeRequest) -> Result<AuthorizeResponse, Fail> {
        let tag = r.id_tag.as_str();
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
        let status = if known {
            AuthorizationStatus::Accepted
        } else {
            AuthorizationStatus::Invalid
        };
        Ok(AuthorizeResponse {
            id_tag_info: IdTagInfo::status(status),
        })
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
            Some(tx) if tx.station == *cp => {
                let samples = samples(&r.meter_value);
                if let (Some(session), false) = (&tx.session_id, samples.is_empty()) {
                    let published = self
                        .starts_published
                        .lock()
                        .is_ok_and(|p| p.contains(&tx.id));
                    if !published && tx.stop.is_none() {
                        // Its start may have died with another gateway process before it
                        // reached the session (found by the long chaos run, issue #13).
                        info!(transaction_id = tx.id, %session, "start published again before the first meter values");
                        self.publish_start(session, &tx);
                    }
                    self.events.publish(
                        session,
                        SessionEvent::MeterValues(MeterSignal {
                            transaction_id: tx.id,
                            samples,
                        }),
                    );
                }
            }
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

    /// Publishes the start of `tx` for `session` and remembers that this process did.
    fn publish_start(&self, session: &SessionId, tx: &Transaction) {
        if let Ok(mut published) = self.starts_published.lock() {
            published.insert(tx.id);
        }
        self.events.publish(
            session,
            SessionEvent::Started {
                station: tx.station.clone(),
                connector_id: tx.connector_id,
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
                if let Ok(mut published) = self.starts_published.lock() {
                    published.remove(&tx.id);
                }
                if let (Some(session), Some(stop)) = (&tx.session_id, &tx.stop) {
                    let data = samples(r.transaction_data.as_deref().unwrap_or_default());
                    if !data.is_empty() {
                        self.events.publish(
                            session,
                            SessionEvent::MeterValues(MeterSignal {
                                transaction_id: tx.id,
                                samples: data,
                            }),
                        );
                    }
                    // A repeat re-sends the first stop: harmless for the session, and it gives a
                    // signal lost while Temporal was unreachable another chance.
                    let stopped = SessionEvent::Stopped(ChargingStopped {
                        transaction_id: tx.id,
                        meter_stop_wh: stop.meter_stop,
                        timestamp: stop.at,
                        reason: stop.reason.clone(),
                    });
                    self.publish_before_answering(session, stopped).await;
                }
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

    /// Publishes a stop and waits (at most [`CONFIRM_WAIT`]) until its signal is
    /// delivered before the station is answered. Answered first, a gateway killed in between
    /// would lose the fact for good: the station, answered, never sends it again, and the
    /// session charges on until its hold runs out (found by the long chaos run, issue #13).
    /// Unanswered, the station sends it again after reconnecting, and the repeat publishes it
    /// again. Past the wait (Temporal away) the station is answered anyway: it must not be
    /// held up, and the stop is in the registry.
    async fn publish_before_answering(&self, session: &SessionId, event: SessionEvent) {
        let confirmed = self.events.publish_confirmed(session, event);
        match tokio::time::timeout(CONFIRM_WAIT, confirmed).await {
            Ok(Ok(true)) => {}
            _ => warn!(%session, "answering the station before its signal was delivered"),
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
        let cp = station.station();
        let Ok(connectors) = self.registry.connectors(cp).await else {
            return;
        };
        for c in connectors.iter().filter(|c| c.connector_id > 0) {
            let open = self.registry.open_transaction_on(cp, c.connector_id).await;
            let Ok(Some(tx)) = open else {
                continue;
            };
            let request = TriggerMessageRequest {
                requested_message: MessageTrigger::StatusNotification,
                connector_id: Some(c.connector_id),
            };
            match station.call::<v16::TriggerMessage>(&request).await {
                Ok(r) => {
                    info!(connector_id = c.connector_id, transaction_id = tx.id, status = ?r.status, "asked for the status of a connector with an open transaction")
                }
                Err(e) => {
                    warn!(connector_id = c.connector_id, error = %e, "status of a connector with an open transaction not asked for")
                }
            }
        }
    }
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}
