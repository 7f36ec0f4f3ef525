//! The session workflow's charger commands, run by the gateway that holds the station's socket
//! (on its own task queue, [`workflows::queues::gateway`]), and the station lookup the sessions
//! worker runs.
//!
//! Failures: a station not connected here is a non-retryable `ChargeStationOffline` failure (the
//! workflow locates it again); a timeout or a dropped connection is retryable; a `Rejected`
//! answer, or a CALLERROR `NotSupported` / `NotImplemented`, is `accepted: false`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::ids::ChargeStationId;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{Instrument, info, info_span, warn};
use workflows::contracts::{
    ChargeStationLocation, CloseTransactionInput, CommandReply, LocateChargeStationInput,
    RemoteStartInput, TransactionRef,
};
use workflows::options::failure_types;

use crate::connection::{CallFailed, StationHandle};
use crate::frame::ErrorCode;
use crate::registry::{Connections, PendingStart, Registry, RegistryError, TransactionStop};
use crate::v16;
use crate::v16::clear_charging_profile::{ClearChargingProfileRequest, ClearChargingProfileStatus};
use crate::v16::remote_start_transaction::{RemoteStartStopStatus, RemoteStartTransactionRequest};
use crate::v16::remote_stop_transaction::RemoteStopTransactionRequest;
use crate::v16::set_charging_profile::{ChargingProfileStatus, pause, pause_profile_id};
use crate::v16::trigger_message::{MessageTrigger, TriggerMessageRequest, TriggerMessageStatus};
use crate::v16::types::IdToken;

fn offline(station: &ChargeStationId) -> ActivityError {
    ApplicationFailure::builder(format!(
        "charge station {station} is not connected to this gateway"
    ))
    .type_name(failure_types::STATION_OFFLINE.to_owned())
    .non_retryable(true)
    .build()
    .into()
}

fn invalid(message: String) -> ActivityError {
    ApplicationFailure::non_retryable(message).into()
}

fn registry_failed(e: RegistryError) -> ActivityError {
    ApplicationFailure::new(e).into()
}

/// `Ok(None)` for a CALLERROR meaning "this station does not do that" (answered as not
/// accepted); retryable failures otherwise.
fn call_failed(station: &ChargeStationId, e: CallFailed) -> Result<(), ActivityError> {
    match e {
        CallFailed::NotConnected(_) => Err(offline(station)),
        CallFailed::Refused {
            code: ErrorCode::NotSupported | ErrorCode::NotImplemented,
            ..
        } => Ok(()),
        other => Err(ApplicationFailure::new(other).into()),
    }
}

fn transaction_id(tx: &TransactionRef) -> Result<i32, ActivityError> {
    i32::try_from(tx.transaction_id).map_err(|_| {
        invalid(format!(
            "transaction id {} is not an OCPP integer",
            tx.transaction_id
        ))
    })
}

/// Charger commands (RemoteStart, RemoteStop, pause, resume) on this gateway's stations.
pub struct GatewayActivities {
    connections: Connections,
    registry: Arc<dyn Registry>,
    offline_grace: Duration,
}

impl GatewayActivities {
    /// Commands go to `connections`; a station missing there is waited for up to
    /// `offline_grace` (it may be reconnecting) before the command fails as offline.
    pub fn new(
        connections: Connections,
        registry: Arc<dyn Registry>,
        offline_grace: Duration,
    ) -> Self {
        Self {
            connections,
            registry,
            offline_grace,
        }
    }

    async fn station(&self, station: &ChargeStationId) -> Result<StationHandle, ActivityError> {
        let deadline = tokio::time::Instant::now() + self.offline_grace;
        loop {
            if let Some(handle) = self.connections.get(station) {
                return Ok(handle);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(offline(station));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[activities]
impl GatewayActivities {
    /// RemoteStartTransaction: records the id tag → session first, so the StartTransaction that
    /// may follow within milliseconds finds it.
    #[activity(definition = workflows::contracts::RemoteStart)]
    pub async fn remote_start(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RemoteStartInput,
    ) -> Result<CommandReply, ActivityError> {
        let span = info_span!("remote_start", session_id = %input.session_id, charge_point_id = %input.charge_station, connector_id = input.connector_id);
        let work = async {
            let handle = self.station(&input.charge_station).await?;
            let id_tag = IdToken::new(input.id_tag.as_str()).ok_or_else(|| {
                invalid(format!(
                    "id tag {} is longer than 20",
                    input.id_tag.as_str()
                ))
            })?;
            // A driver who plugged in before paying left the connector Preparing already.
            let preparing = self
                .registry
                .connectors(&input.charge_station)
                .await
                .map_err(registry_failed)?
                .iter()
                .any(|c| c.connector_id == input.connector_id && c.status == "Preparing");
            let pending = PendingStart {
                id_tag: input.id_tag.as_str().to_owned(),
                session_id: input.session_id.clone(),
                station: input.charge_station.clone(),
                connector_id: input.connector_id,
                created_at: Utc::now(),
                // Armed before the answer: the station may report Preparing before the
                // activity sees its Accepted.
                armed: true,
                preparing,
            };
            self.registry
                .put_pending_start(pending)
                .await
                .map_err(registry_failed)?;
            let request = RemoteStartTransactionRequest {
                connector_id: Some(input.connector_id),
                id_tag,
                charging_profile: None,
            };
            let reply = handle.call::<v16::RemoteStartTransaction>(&request).await;
            let accepted = match reply {
                Ok(r) => r.status == RemoteStartStopStatus::Accepted,
                Err(e) => {
                    self.disarm(input.id_tag.as_str()).await;
                    call_failed(&input.charge_station, e)?;
                    false
                }
            };
            if !accepted {
                self.disarm(input.id_tag.as_str()).await;
            }
            info!(accepted, "RemoteStartTransaction answered");
            Ok(CommandReply {
                accepted,
                no_transaction: false,
            })
        };
        heartbeating(&ctx, work.instrument(span)).await
    }

    /// RemoteStopTransaction.
    #[activity(definition = workflows::contracts::RemoteStop)]
    pub async fn remote_stop(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        let span = command_span("remote_stop", &input);
        let work = async {
            let handle = self.station(&input.charge_station).await?;
            let request = RemoteStopTransactionRequest {
                transaction_id: transaction_id(&input)?,
            };
            let sent = std::time::Instant::now();
            let accepted = match handle.call::<v16::RemoteStopTransaction>(&request).await {
                Ok(r) => r.status == RemoteStartStopStatus::Accepted,
                Err(e) => call_failed(&input.charge_station, e).map(|()| false)?,
            };
            let round_trip_ms = sent.elapsed().as_secs_f64() * 1000.0;
            // OCPP 1.6 gives no reason for a Rejected stop; the connector's own report tells a
            // station that lost the transaction (free since the start) from one that refuses.
            let no_transaction = !accepted && self.lost_transaction(&input).await;
            info!(
                accepted,
                no_transaction, round_trip_ms, "RemoteStopTransaction answered"
            );
            Ok(CommandReply {
                accepted,
                no_transaction,
            })
        };
        heartbeating(&ctx, work.instrument(span)).await
    }

    /// SetChargingProfile: a TxProfile with limit 0 for the transaction.
    #[activity(definition = workflows::contracts::PauseCharging)]
    pub async fn pause_charging(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        let span = command_span("pause_charging", &input);
        let work = async {
            let handle = self.station(&input.charge_station).await?;
            let tx = transaction_id(&input)?;
            let profile = pause_profile_id(tx)
                .ok_or_else(|| invalid(format!("no pause profile id for transaction {tx}")))?;
            let request = pause(input.connector_id, tx, profile);
            let accepted = match handle.call::<v16::SetChargingProfile>(&request).await {
                Ok(r) => r.status == ChargingProfileStatus::Accepted,
                Err(e) => call_failed(&input.charge_station, e).map(|()| false)?,
            };
            info!(accepted, "SetChargingProfile (pause) answered");
            Ok(CommandReply {
                accepted,
                no_transaction: false,
            })
        };
        heartbeating(&ctx, work.instrument(span)).await
    }

    /// TriggerMessage MeterValues for the transaction's connector.
    #[activity(definition = workflows::contracts::RequestMeterValues)]
    pub async fn request_meter_values(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        let span = command_span("request_meter_values", &input);
        let work = async {
            let handle = self.station(&input.charge_station).await?;
            let request = TriggerMessageRequest {
                requested_message: MessageTrigger::MeterValues,
                connector_id: Some(input.connector_id),
            };
            let accepted = match handle.call::<v16::TriggerMessage>(&request).await {
                Ok(r) => r.status == TriggerMessageStatus::Accepted,
                Err(e) => call_failed(&input.charge_station, e).map(|()| false)?,
            };
            info!(accepted, "TriggerMessage (MeterValues) answered");
            Ok(if accepted {
                CommandReply::accepted()
            } else {
                CommandReply::rejected()
            })
        };
        heartbeating(&ctx, work.instrument(span)).await
    }

    /// ClearChargingProfile of the pause profile. `Unknown` counts as accepted: without the
    /// profile nothing holds the energy back (e.g. the station rebooted and forgot it).
    #[activity(definition = workflows::contracts::ResumeCharging)]
    pub async fn resume_charging(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: TransactionRef,
    ) -> Result<CommandReply, ActivityError> {
        let span = command_span("resume_charging", &input);
        let work = async {
            let handle = self.station(&input.charge_station).await?;
            let tx = transaction_id(&input)?;
            let request = ClearChargingProfileRequest {
                id: pause_profile_id(tx),
                ..ClearChargingProfileRequest::default()
            };
            let accepted = match handle.call::<v16::ClearChargingProfile>(&request).await {
                Ok(r) => matches!(
                    r.status,
                    ClearChargingProfileStatus::Accepted | ClearChargingProfileStatus::Unknown
                ),
                Err(e) => call_failed(&input.charge_station, e).map(|()| false)?,
            };
            info!(accepted, "ClearChargingProfile (resume) answered");
            Ok(CommandReply {
                accepted,
                no_transaction: false,
            })
        };
        heartbeating(&ctx, work.instrument(span)).await
    }
}

impl GatewayActivities {
    /// Whether the station reported the transaction's connector free (Available or Preparing)
    /// since the transaction started and never sent its StopTransaction: it no longer has it.
    async fn lost_transaction(&self, tx: &TransactionRef) -> bool {
        let Ok(Some(recorded)) = self.registry.transaction(tx.transaction_id).await else {
            return false;
        };
        if recorded.stop.is_some() {
            return false;
        }
        let Ok(connectors) = self.registry.connectors(&tx.charge_station).await else {
            return false;
        };
        connectors.iter().any(|c| {
            c.connector_id == tx.connector_id
                && matches!(c.status.as_str(), "Available" | "Preparing")
                && c.at >= recorded.started_at
        })
    }

    async fn disarm(&self, id_tag: &str) {
        if let Err(e) = self
            .registry
            .update_pending_start(id_tag, false, false)
            .await
        {
            warn!(error = %e, "could not disarm the pending start");
        }
    }
}

/// How often a charger command tells Temporal it is alive while it waits for the station.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// Runs a charger command, heartbeating meanwhile: a gateway killed in the middle then fails
/// the attempt after the heartbeat timeout ([`workflows::options::charger_command`]), not after
/// the whole start-to-close timeout. Without it a RemoteStart lost with its gateway held the
/// session for 45 s, past its 20 s start window, with no second attempt (chaos run, issue #13).
async fn heartbeating<F: Future>(ctx: &ActivityContext, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                if let Err(e) = ctx.record_heartbeat(()).await {
                    warn!(error = %e, "heartbeat not recorded");
                }
            }
        }
    }
}

fn command_span(activity: &'static str, tx: &TransactionRef) -> tracing::Span {
    info_span!("charger_command", activity, session_id = %tx.session_id, charge_point_id = %tx.charge_station, connector_id = tx.connector_id, transaction_id = tx.transaction_id)
}

/// `LocateChargeStation`: reads the registry. Registered by the sessions worker, on the sessions
/// task queue, next to the payment and store activities.
pub struct StationLocator {
    registry: Arc<dyn Registry>,
}

impl StationLocator {
    /// A locator over `registry` (the same one the gateways write).
    pub fn new(registry: Arc<dyn Registry>) -> Self {
        Self { registry }
    }
}

#[activities]
impl StationLocator {
    /// The task queue of the gateway holding the station's socket; `None` when offline.
    #[activity(definition = workflows::contracts::LocateChargeStation)]
    pub async fn locate_charge_station(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: LocateChargeStationInput,
    ) -> Result<ChargeStationLocation, ActivityError> {
        let found = self
            .registry
            .locate(&input.charge_station)
            .await
            .map_err(registry_failed)?;
        info!(session_id = %input.session_id, charge_point_id = %input.charge_station, queue = ?found.as_ref().map(|l| &l.task_queue), "located");
        Ok(ChargeStationLocation {
            task_queue: found.map(|l| l.task_queue),
        })
    }

    /// Records the stop of a transaction the station never closed (first stop wins: a
    /// StopTransaction recorded before this one stands).
    #[activity(definition = workflows::contracts::CloseTransaction)]
    pub async fn close_transaction(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CloseTransactionInput,
    ) -> Result<(), ActivityError> {
        let tx = &input.transaction;
        let stop = TransactionStop {
            meter_stop: input.meter_stop_wh,
            at: input.at,
            reason: Some(input.reason.clone()),
        };
        let stopped = self
            .registry
            .stop_transaction(tx.transaction_id, stop)
            .await
            .map_err(registry_failed)?;
        let first = stopped.is_some_and(|(_, first)| first);
        info!(session_id = %tx.session_id, charge_point_id = %tx.charge_station, transaction_id = tx.transaction_id, reason = %input.reason, first, "transaction closed by chargelink");
        Ok(())
    }
}
