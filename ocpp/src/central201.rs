//! The OCPP 2.0.1 central system: answers a 2.0.1 station's CALLs and reports the same session
//! facts as the 1.6 one ([`Central`], whose registry, event sink and shared rules it uses), so
//! nothing above the gateway knows which version a station speaks.
//!
//! Transactions:
//! - The station chooses the transaction id (text). The first event of a transaction records it
//!   in the registry, which assigns the number the session knows it by (`Transaction::id`, the
//!   same sequence as 1.6 transaction ids), so commands map back to the station's id.
//! - The event carrying the session's token (or the `remoteStartId` of its
//!   RequestStartTransaction) binds the transaction to the session and publishes the start, with
//!   the energy register of that event; the token may come after the start (cable plugged in
//!   before paying). An event without a register binds at the next one with a register.
//! - Each event is acted on once per `seqNo`: the number is recorded after the event's facts
//!   are published, so a repeat after a lost answer is acknowledged and ignored, and an event
//!   whose stop could not be delivered is acted on again when the station repeats it.
//! - Offline events (queued, `offline: true`) are handled like any other: their readings keep
//!   the station's timestamps, and the session prices samples by timestamp whatever the order
//!   they arrive in; the stop is recorded once (first `Ended` wins).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use domain::ids::ChargeStationId;
use domain::pricing::MeterSample;
use serde_json::{Value, json};
use tracing::{Instrument, info, warn};

use crate::central::{
    Central, Fail, Followup, SAMPLED_DATA, answer, internal, log_recheck, reply, secs_i32,
    unhandled,
};
use crate::connection::{CallHandler, StationHandle};
use crate::frame::{Call, ErrorCode, Frame};
use crate::protocol::Action;
use crate::registry::{NewTransaction, Transaction, TransactionStop};
use crate::v16::types::ChargePointStatus;
use crate::v201::authorize::{AuthorizeRequest, AuthorizeResponse};
use crate::v201::boot_notification::{
    BootNotificationRequest, BootNotificationResponse, RegistrationStatus,
};
use crate::v201::data_transfer::{DataTransferRequest, DataTransferResponse, DataTransferStatus};
use crate::v201::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use crate::v201::notify_event::{NotifyEventRequest, NotifyEventResponse};
use crate::v201::request_start_transaction::remote_start_id;
use crate::v201::set_variables::{
    SAMPLED_DATA_CTRLR, SetVariableData, SetVariablesRequest, TX_ENDED_MEASURANDS,
    TX_STARTED_MEASURANDS, TX_UPDATED_INTERVAL, TX_UPDATED_MEASURANDS,
};
use crate::v201::status_notification::{
    ConnectorStatus, StatusNotificationRequest, StatusNotificationResponse,
};
use crate::v201::transaction_event::{
    EventType, TransactionEventRequest, TransactionEventResponse,
};
use crate::v201::trigger_message::{MessageTrigger, TriggerMessageRequest};
use crate::v201::types::{AuthorizationStatus, Evse, IdTokenInfo};
use crate::v201::{self, types::samples};

/// The OCPP 2.0.1 central system.
pub(crate) struct Central201 {
    /// The 1.6 central system: registry, event sink, settings and the rules both share.
    pub(crate) core: Arc<Central>,
    /// Tokens that came in an event without an energy register, by transaction number: the
    /// transaction binds at its next event with one (a register is needed to bill from).
    /// In memory only: a gateway restart in between leaves the session to its start window.
    tokens_waiting: Mutex<HashMap<i64, String>>,
}

/// The session's view of a 2.0.1 connector status, and the 1.6 name the registry keeps (the API
/// and the charger commands read the registry in 1.6 vocabulary). `Occupied` (plugged in) is
/// 1.6's `Preparing`.
fn status_of(s: ConnectorStatus) -> ChargePointStatus {
    match s {
        ConnectorStatus::Available => ChargePointStatus::Available,
        ConnectorStatus::Occupied => ChargePointStatus::Preparing,
        ConnectorStatus::Reserved => ChargePointStatus::Reserved,
        ConnectorStatus::Unavailable => ChargePointStatus::Unavailable,
        ConnectorStatus::Faulted => ChargePointStatus::Faulted,
    }
}

/// A transaction's `chargingState` as a 1.6 connector status: whether energy flows is what the
/// session prices (energy vs. parking time). `EVConnected` in the first event is 1.6's
/// `Preparing` (plugged in, not yet charging); later it means the EV stopped taking energy.
/// `Idle` (no EV) and vendor values say nothing.
fn charging_state(state: &str, event: EventType) -> Option<ChargePointStatus> {
    match (state, event) {
        ("Charging", _) => Some(ChargePointStatus::Charging),
        ("SuspendedEV", _) => Some(ChargePointStatus::SuspendedEV),
        ("SuspendedEVSE", _) => Some(ChargePointStatus::SuspendedEVSE),
        ("EVConnected", EventType::Started) => Some(ChargePointStatus::Preparing),
        ("EVConnected", _) => Some(ChargePointStatus::SuspendedEV),
        _ => None,
    }
}

/// The energy register at the first (by station time) and the last reading of `samples`.
fn registers(samples: &[MeterSample]) -> Option<(i64, i64)> {
    let first = samples.iter().min_by_key(|s| s.timestamp)?;
    let last = samples.iter().max_by_key(|s| s.timestamp)?;
    Some((first.energy_wh, last.energy_wh))
}

fn verdict(accepted: bool) -> IdTokenInfo {
    IdTokenInfo {
        status: if accepted {
            AuthorizationStatus::Accepted
        } else {
            AuthorizationStatus::Invalid
        },
    }
}

#[async_trait::async_trait]
impl CallHandler for Central201 {
    async fn handle_call(&self, station: &StationHandle, call: Call) -> (Frame, Option<Followup>) {
        let id = call.id.clone();
        let mut followup = None;
        let result = self.dispatch(station, call, &mut followup).await;
        (reply(id, result), followup)
    }

    async fn configure(&self, station: StationHandle) {
        let settings = &self.core.settings;
        let interval = secs_i32(settings.meter_sample_interval).to_string();
        let request = SetVariablesRequest {
            set_variable_data: vec![
                SetVariableData::new(SAMPLED_DATA_CTRLR, TX_UPDATED_INTERVAL, interval),
                SetVariableData::new(SAMPLED_DATA_CTRLR, TX_UPDATED_MEASURANDS, SAMPLED_DATA),
                // The registers a session starts and stops at come with Started and Ended.
                SetVariableData::new(
                    SAMPLED_DATA_CTRLR,
                    TX_STARTED_MEASURANDS,
                    crate::metering::ENERGY_REGISTER,
                ),
                SetVariableData::new(
                    SAMPLED_DATA_CTRLR,
                    TX_ENDED_MEASURANDS,
                    crate::metering::ENERGY_REGISTER,
                ),
            ],
        };
        match station.call::<v201::SetVariables>(&request).await {
            Ok(r) => {
                for result in r.set_variable_result {
                    info!(
                        component = %result.component.name,
                        variable = %result.variable.name,
                        status = %result.attribute_status,
                        "variable set"
                    );
                }
            }
            Err(e) => warn!(error = %e, "metering variables not set"),
        }
        self.recheck_open_transactions(&station).await;
    }
}

impl Central201 {
    /// A 2.0.1 central system over `core`'s registry and events.
    pub(crate) fn new(core: Arc<Central>) -> Self {
        Self {
            core,
            tokens_waiting: Mutex::default(),
        }
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
            v201::BootNotification::NAME => {
                *followup = Some(Followup::Configure);
                answer::<v201::BootNotification, _, _>(payload, |r| self.boot(cp, r)).await
            }
            v201::Heartbeat::NAME => {
                answer::<v201::Heartbeat, _, _>(payload, |_: HeartbeatRequest| async {
                    Ok(HeartbeatResponse {
                        current_time: Utc::now(),
                    })
                })
                .await
            }
            v201::StatusNotification::NAME => {
                answer::<v201::StatusNotification, _, _>(payload, |r| self.status(cp, r)).await
            }
            v201::Authorize::NAME => {
                answer::<v201::Authorize, _, _>(payload, |r: AuthorizeRequest| async move {
                    let known = self.core.known_token(r.id_token.id_token.as_str()).await?;
                    Ok(AuthorizeResponse {
                        id_token_info: verdict(known),
                    })
                })
                .await
            }
            v201::TransactionEvent::NAME => {
                answer::<v201::TransactionEvent, _, _>(payload, |r| self.transaction_event(cp, r))
                    .await
            }
            v201::NotifyEvent::NAME => {
                answer::<v201::NotifyEvent, _, _>(payload, |r: NotifyEventRequest| async move {
                    info!(seq_no = r.seq_no, events = %json!(r.event_data), "NotifyEvent");
                    Ok(NotifyEventResponse {})
                })
                .await
            }
            v201::DataTransfer::NAME => {
                answer::<v201::DataTransfer, _, _>(payload, |r: DataTransferRequest| async move {
                    info!(vendor_id = %r.vendor_id, "DataTransfer from an unknown vendor");
                    Ok(DataTransferResponse {
                        status: DataTransferStatus::UnknownVendorId,
                    })
                })
                .await
            }
            other => unhandled(other, &payload, v201::ACKNOWLEDGED, v201::KNOWN_UNSUPPORTED),
        }
    }

    async fn boot(
        &self,
        cp: &ChargeStationId,
        r: BootNotificationRequest,
    ) -> Result<BootNotificationResponse, Fail> {
        let s = &r.charging_station;
        info!(
            vendor = %s.vendor_name,
            model = %s.model,
            firmware = s.firmware_version.as_ref().map(|f| f.as_str()),
            reason = %r.reason,
            "boot notification from {cp}"
        );
        Ok(BootNotificationResponse {
            current_time: Utc::now(),
            interval: secs_i32(self.core.settings.heartbeat_interval),
            status: RegistrationStatus::Accepted,
        })
    }

    /// chargelink's connector N is the station's EVSE N (one connector per EVSE, as public
    /// chargers are built); the connector number within the EVSE is not kept.
    async fn status(
        &self,
        cp: &ChargeStationId,
        r: StatusNotificationRequest,
    ) -> Result<StatusNotificationResponse, Fail> {
        let open = self
            .core
            .registry
            .open_transaction_on(cp, r.evse_id)
            .await
            .map_err(internal)?;
        if r.connector_status == ConnectorStatus::Occupied && open.is_some() {
            // Plugged in during the transaction: whether energy flows is the transaction's
            // charging state, which a status of Occupied must not overwrite.
            return Ok(StatusNotificationResponse {});
        }
        self.report(cp, r.evse_id, status_of(r.connector_status), r.timestamp)
            .await?;
        Ok(StatusNotificationResponse {})
    }

    /// Records and publishes an EVSE's status, in the 1.6 vocabulary the registry keeps.
    async fn report(
        &self,
        cp: &ChargeStationId,
        evse: u32,
        status: ChargePointStatus,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), Fail> {
        let state = crate::central::connector_state(status);
        self.core
            .connector_reported(cp, evse, state, status.as_str(), "NoError", at)
            .await
    }

    async fn transaction_event(
        &self,
        cp: &ChargeStationId,
        r: TransactionEventRequest,
    ) -> Result<TransactionEventResponse, Fail> {
        let span = tracing::info_span!(
            "transaction_event",
            station_transaction_id = %r.transaction_info.transaction_id,
            event_type = ?r.event_type,
            seq_no = r.seq_no,
            offline = r.offline.unwrap_or(false),
            transaction_id = tracing::field::Empty,
            session_id = tracing::field::Empty
        );
        self.transaction_event_in(cp, r).instrument(span).await
    }

    async fn transaction_event_in(
        &self,
        cp: &ChargeStationId,
        r: TransactionEventRequest,
    ) -> Result<TransactionEventResponse, Fail> {
        let registry = &self.core.registry;
        let station_tx = r.transaction_info.transaction_id.as_str();
        let token = r.id_token.as_ref().map(|t| t.id_token.as_str().to_owned());
        let readings = samples(r.meter_value.as_deref().unwrap_or_default());
        let tx = match registry
            .station_transaction(cp, station_tx)
            .await
            .map_err(internal)?
        {
            Some(tx) => tx,
            None => {
                let Some(Evse { id: evse, .. }) = r.evse else {
                    warn!("first event of an unknown transaction without its EVSE; ignored");
                    return self.answer_token(token.as_deref(), None).await;
                };
                let new = NewTransaction {
                    station: cp.clone(),
                    connector_id: evse,
                    id_tag: String::new(),
                    session_id: None,
                    meter_start: registers(&readings).map_or(0, |(first, _)| first),
                    started_at: r.timestamp,
                };
                let (tx, recorded) = registry
                    .insert_station_transaction(new, station_tx)
                    .await
                    .map_err(internal)?;
                info!(transaction_id = tx.id, recorded, "transaction recorded");
                tx
            }
        };
        let span = tracing::Span::current();
        span.record("transaction_id", tx.id);
        if tx.station_transaction_id.as_deref() != Some(station_tx) || tx.station != *cp {
            return Err((
                ErrorCode::InternalError,
                "the registry returned another transaction".into(),
            ));
        }

        // A repeat (same seqNo) was acted on already: acknowledged, nothing published again.
        // (Numbers are recorded only after an event's facts are out; see below.)
        let repeat = registry
            .transaction_event_seen(tx.id, r.seq_no)
            .await
            .map_err(internal)?;
        if repeat {
            info!("repeated event (same seqNo); acknowledged and ignored");
            return self.answer_token(token.as_deref(), Some(&tx)).await;
        }

        let tx = self.bind(cp, tx, &r, token.as_deref(), &readings).await?;
        if let Some(session) = &tx.session_id {
            span.record("session_id", tracing::field::display(session));
        }
        // The charging state is the connector's status while the transaction runs. Not from
        // Ended: the end, not the EV, decides what comes next, and the station's
        // StatusNotification reports the connector after it.
        if let Some(state) = r
            .transaction_info
            .charging_state
            .as_deref()
            .and_then(|s| charging_state(s, r.event_type))
            && r.event_type != EventType::Ended
            && tx.session_id.is_some()
            && tx.stop.is_none()
        {
            self.report(cp, tx.connector_id, state, r.timestamp).await?;
        }

        let delivered = if r.event_type == EventType::Ended {
            // The register it stopped at: the last reading of the event; without one, the
            // start (the session keeps the energy of the readings it had: its register never
            // goes back).
            let meter_stop = registers(&readings).map_or(tx.meter_start, |(_, last)| last);
            let stop = TransactionStop {
                meter_stop,
                at: r.timestamp,
                reason: r.transaction_info.stopped_reason.clone(),
            };
            let stopped = registry
                .stop_transaction(tx.id, stop)
                .await
                .map_err(internal)?;
            match stopped {
                Some((tx, first)) => {
                    if let Ok(mut waiting) = self.tokens_waiting.lock() {
                        waiting.remove(&tx.id);
                    }
                    info!(first, reason = ?tx.stop.as_ref().and_then(|s| s.reason.clone()), "transaction ended");
                    self.core.publish_stop(&tx, readings).await
                }
                None => true,
            }
        } else {
            self.core.publish_readings(&tx, readings);
            true
        };
        if delivered {
            registry
                .record_transaction_event(tx.id, r.seq_no)
                .await
                .map_err(internal)?;
        }
        self.answer_token(token.as_deref(), Some(&tx)).await
    }

    /// Binds an unbound transaction to the session whose token (or `remoteStartId`) the event
    /// carries, once a register is known, and publishes its start. Returns the transaction as
    /// it now is.
    async fn bind(
        &self,
        cp: &ChargeStationId,
        tx: Transaction,
        r: &TransactionEventRequest,
        token: Option<&str>,
        readings: &[MeterSample],
    ) -> Result<Transaction, Fail> {
        if tx.session_id.is_some() || tx.stop.is_some() {
            return Ok(tx);
        }
        let registry = &self.core.registry;
        let waiting = self
            .tokens_waiting
            .lock()
            .ok()
            .and_then(|w| w.get(&tx.id).cloned());
        let pending = match token.map(str::to_owned).or(waiting) {
            Some(token) => registry.pending_start(&token).await.map_err(internal)?,
            None => match r.transaction_info.remote_start_id {
                // Only the remoteStartId: the armed start on this EVSE with that number.
                Some(id) => registry
                    .armed_start_on(cp, tx.connector_id)
                    .await
                    .map_err(internal)?
                    .filter(|p| remote_start_id(&p.id_tag) == id),
                None => None,
            },
        };
        let Some(p) = pending.filter(|p| self.core.fresh(p)) else {
            return Ok(tx);
        };
        if p.station != *cp || p.connector_id != tx.connector_id {
            // The station picked another EVSE: the session pays for the connector it chose.
            let why = format!(
                "the station started on {cp} EVSE {} instead of {} connector {}",
                tx.connector_id, p.station, p.connector_id
            );
            self.core.start_failed(&p, why).await?;
            return Ok(tx);
        }
        let Some((register, _)) = registers(readings) else {
            // No register to bill from yet: bind at the next event with one.
            info!(id_tag = %p.id_tag, "token known, waiting for a register to start the session");
            if let Ok(mut waiting) = self.tokens_waiting.lock() {
                waiting.insert(tx.id, p.id_tag.clone());
            }
            return Ok(tx);
        };
        let bound = registry
            .bind_transaction(tx.id, &p.id_tag, &p.session_id, r.timestamp, register)
            .await
            .map_err(internal)?;
        if let Ok(mut waiting) = self.tokens_waiting.lock() {
            waiting.remove(&tx.id);
        }
        let tx = registry
            .transaction(tx.id)
            .await
            .map_err(internal)?
            .unwrap_or(tx);
        if !bound {
            return Ok(tx);
        }
        registry
            .remove_pending_start(&p.id_tag)
            .await
            .map_err(internal)?;
        info!(session_id = %p.session_id, meter_start = register, "transaction bound to its session");
        // Published, not confirmed, like a 1.6 start: the readings that follow publish it again
        // if it is lost.
        self.core.publish_start(&p.session_id, &tx);
        Ok(tx)
    }

    /// The answer to a TransactionEvent of transaction `bound` (when the gateway could place
    /// it): the token's verdict when the event carried one.
    async fn answer_token(
        &self,
        token: Option<&str>,
        bound: Option<&Transaction>,
    ) -> Result<TransactionEventResponse, Fail> {
        let Some(token) = token else {
            return Ok(TransactionEventResponse::default());
        };
        let accepted = match bound {
            // Bound: its own token only.
            Some(tx) if tx.session_id.is_some() => tx.id_tag == token,
            // Not bound (yet): a session's token waiting for a register is still valid.
            _ => self.core.known_token(token).await?,
        };
        Ok(TransactionEventResponse {
            id_token_info: Some(verdict(accepted)),
        })
    }

    /// After a boot, ask for the status of every EVSE the registry still has a transaction on
    /// (as 1.6 does), so one the station lost ends its session.
    async fn recheck_open_transactions(&self, station: &StationHandle) {
        for (evse, transaction_id) in self.core.open_transactions(station.station()).await {
            let request = TriggerMessageRequest {
                requested_message: MessageTrigger::StatusNotification,
                evse: Some(Evse {
                    id: evse,
                    connector_id: Some(1),
                }),
            };
            let asked = station.call::<v201::TriggerMessage>(&request).await;
            log_recheck(evse, transaction_id, asked.map(|r| r.status));
        }
    }
}
