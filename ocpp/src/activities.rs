//! The session workflow's charger commands, run by the gateway that holds the station's socket
//! (on its own task queue, [`workflows::queues::gateway`]), and the station lookup the sessions
//! worker runs.
//!
//! Each command is sent in the OCPP version of the station's connection
//! ([`crate::commands`]); the workflow knows only transaction and connector numbers.
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

use crate::commands::{self, CommandError, Target};
use crate::connection::{CallFailed, StationHandle};
use crate::frame::ErrorCode;
use crate::protocol::Protocol;
use crate::registry::{Connections, PendingStart, Registry, RegistryError, TransactionStop};

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

/// `Ok(false)` (not accepted) for a CALLERROR meaning "this station does not do that";
/// retryable failures otherwise, and a non-retryable one for a command that cannot be sent.
fn not_accepted(station: &ChargeStationId, e: CommandError) -> Result<bool, ActivityError> {
    match e {
        CommandError::Call(CallFailed::NotConnected(_)) => Err(offline(station)),
        CommandError::Call(CallFailed::Refused {
            code: ErrorCode::NotSupported | ErrorCode::NotImplemented,
            ..
        }) => Ok(false),
        CommandError::Call(other) => Err(ApplicationFailure::new(other).into()),
        CommandError::Invalid(message) => Err(invalid(message)),
    }
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
            let reply = commands::of(handle.protocol())
                .remote_start(&handle, input.connector_id, input.id_tag.as_str())
                .await;
            let accepted = match reply {
                Ok(accepted) => accepted,
                Err(e) => {
                    self.disarm(input.id_tag.as_str()).await;
                    not_accepted(&input.charge_station, e)?
                }
            };
            if !accepted {
                self.disarm(input.id_tag.as_str()).await;
            }
            info!(accepted, protocol = %handle.protocol(), "remote start answered");
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
            let target = self.target(&input, handle.protocol()).await?;
            let sent = std::time::Instant::now();
            let accepted = match commands::of(handle.protocol())
                .remote_stop(&handle, &target)
                .await
            {
                Ok(accepted) => accepted,
                Err(e) => not_accepted(&input.charge_station, e)?,
            };
            let round_trip_ms = sent.elapsed().as_secs_f64() * 1000.0;
            // OCPP gives no reason for a Rejected stop; the connector's own report tells a
            // station that lost the transaction (free since the start) from one that refuses.
            let no_transaction = !accepted && self.lost_transaction(&input).await;
            info!(
                accepted,
                no_transaction, round_trip_ms, "remote stop answered"
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
            let target = self.target(&input, handle.protocol()).await?;
            let accepted = match commands::of(handle.protocol())
                .pause(&handle, &target)
                .await
            {
                Ok(accepted) => accepted,
                Err(e) => not_accepted(&input.charge_station, e)?,
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
            let target = self.target(&input, handle.protocol()).await?;
            let accepted = match commands::of(handle.protocol())
                .request_meter_values(&handle, &target)
                .await
            {
                Ok(accepted) => accepted,
                Err(e) => not_accepted(&input.charge_station, e)?,
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
            let target = self.target(&input, handle.protocol()).await?;
            let accepted = match commands::of(handle.protocol())
                .resume(&handle, &target)
                .await
            {
                Ok(accepted) => accepted,
                Err(e) => not_accepted(&input.charge_station, e)?,
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
    /// The transaction a command is about, with the station's own id from the registry for
    /// 2.0.1 (a 1.6 command needs only the number, so it does not wait for the registry).
    async fn target(
        &self,
        tx: &TransactionRef,
        protocol: Protocol,
    ) -> Result<Target, ActivityError> {
        let station_transaction_id = match protocol {
            Protocol::V16 => None,
            Protocol::V201 => self
                .registry
                .transaction(tx.transaction_id)
                .await
                .map_err(registry_failed)?
                .and_then(|t| t.station_transaction_id),
        };
        Ok(Target {
            transaction_id: tx.transaction_id,
            connector_id: tx.connector_id,
            station_transaction_id,
        })
    }

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
