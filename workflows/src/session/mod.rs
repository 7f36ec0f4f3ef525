//! `SessionWorkflow`: one payment-link session, from the payment page to the capture.
//!
//! The main loop owns every side effect. Signals only record facts in the state; updates
//! (pause, resume, stop) are validated, queued as commands and answered by the main loop, so the
//! order of activities is decided in one place and replays identically.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::config::SessionTimings;
use domain::events::{EventType, SessionEvent};
use domain::ids::{
    ChargeStationId, ConnectorRef, IdTag, OrganizationId, PaymentId, RateId, SessionId, UserId,
};
use domain::money::Money;
use domain::pricing::{LiveCost, MeterSample, PricingError};
use domain::rate::Rate;
use domain::session::{
    ANONYMOUS, EndReason, PAYMENT_LINK, Payment, PaymentStatus, Session, SessionCost, SessionIdle,
    SessionStatus, SessionTarget, StationAnswer, StopState, StripeRefs,
};
use serde::{Deserialize, Serialize};
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ApplicationFailure, CancellableFuture, SyncWorkflowContext, TimerOptions, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

use crate::contracts::{
    self, CancelPaymentInput, CapturePaymentInput, CloseTransactionInput, CreatePaymentInput,
    IncrementPaymentInput, IncrementPaymentOutput, LocateChargeStationInput, PaymentRef,
    ProviderPaymentState, RecordSessionInput, RemoteStartInput, Step, TransactionRef,
    idempotency_key,
};
use crate::messages::{
    ChargingStarted, ChargingStopped, CommandError, CommandErrorCode, ConnectorState,
    ConnectorStatus, Explanation, MeterValues, PaymentAuthorized, PaymentClosed, SessionOutcome,
    StartFailed,
};
use crate::{names, options};

mod charging;
mod legacy;
mod payment;
mod settle;
mod start;
mod steps;
mod stop;

use charging::{charge, refresh_cost, run_command};
use payment::{create_and_await_payment, release_hold};
use settle::settle;
use start::{cancel_unstarted, start_charging};
use steps::*;
use stop::{begin_stop, request_reading, resend_stop};

/// Everything a session needs, fixed when it is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInput {
    /// Session id (= workflow id).
    pub session_id: SessionId,
    /// Payment id.
    pub payment_id: PaymentId,
    /// Owner.
    pub organization: OrganizationId,
    /// The driver.
    pub user: UserId,
    /// The charge station.
    pub charge_station: ChargeStationId,
    /// The connector as the API names it.
    pub connector: ConnectorRef,
    /// The connector's OCPP number on its station.
    pub connector_id: u32,
    /// Id of the rate applied.
    pub rate_id: RateId,
    /// Snapshot of the rate: a rate edited mid-session does not change this session.
    pub rate: Rate,
    /// The hold to place.
    pub authorized_amount: Money,
    /// Targets the caller set.
    pub target: SessionTarget,
    /// Durations (payment expiry already resolved from the target and the organization).
    pub timings: SessionTimings,
    /// The most power the connector can deliver, W (the operator's setting, else the
    /// deployment's default): the worst case the stop deadline assumes between readings.
    /// Absent in sessions created before it existed.
    #[serde(default)]
    pub max_power_w: Option<i64>,
    /// The price as the driver reads it before paying (`domain::price_list`: the lines and
    /// what the hold buys), shown on the payment page. Made by the API at creation, so the
    /// workflow task runs no tariff search for it; absent in sessions created before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_text: Option<String>,
    /// Raise the hold instead of stopping, when the organization enabled it (left out
    /// otherwise, so sessions without it serialize as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_up: Option<TopUp>,
    /// Set when this run continues a charging session whose history grew long
    /// (continue-as-new): everything the session knows, so it goes on where it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued: Option<Box<ContinuedSession>>,
}

/// Top-up: before the stop deadline, the hold is raised (incremental authorization) by `step`,
/// up to `ceiling`, while the card allows it; a refusal keeps the auto-stop on the hold as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    /// The most the hold may be raised to (the hold's currency).
    pub ceiling: Money,
    /// What each increment adds to the hold.
    pub step: Money,
}

/// A charging session's whole state, carried into the next run by continue-as-new. Taken only
/// at a quiet point of the charging loop (no command queued or running, no handler in flight),
/// so nothing else is in progress; signals and updates that arrive meanwhile reach the next run
/// (the server refuses a continue-as-new with unseen signals, and retries admitted updates on
/// the new run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuedSession {
    session: Session,
    events_emitted: u32,
    intent_id: String,
    capturable: Money,
    started: ChargingStarted,
    live: LiveCost,
    stop_request: Option<StopRequest>,
    lost: Option<LostTransaction>,
    fault: Option<Fault>,
    last_reading_seen: Option<DateTime<Utc>>,
    last_refresh: Option<DateTime<Utc>>,
    next_command: u64,
    /// Runs before this one.
    runs: u32,
    /// Increments asked for so far (top-up).
    #[serde(default, skip_serializing_if = "is_zero")]
    top_up_attempts: u32,
    /// No more increments: refused, unanswered in time, or the ceiling reached (top-up).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    top_up_over: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How a refused update crosses Temporal: the message is a [`CommandError`]'s display.
pub type UpdateError = Box<dyn std::error::Error + Send + Sync>;

/// Search attribute: the charge station.
pub const CHARGE_STATION: SearchAttributeKey<String> =
    SearchAttributeKey::keyword(names::SA_CHARGE_STATION);
/// Search attribute: the session status.
pub const SESSION_STATUS: SearchAttributeKey<String> =
    SearchAttributeKey::keyword(names::SA_SESSION_STATUS);
/// Search attribute: the organization.
pub const ORGANIZATION: SearchAttributeKey<String> =
    SearchAttributeKey::keyword(names::SA_ORGANIZATION);
/// Search attribute: the PaymentIntent, once the driver paid.
pub const PAYMENT_INTENT: SearchAttributeKey<String> =
    SearchAttributeKey::keyword(names::SA_PAYMENT_INTENT);

/// Outcome of the payment page, as far as the driver and the provider told us.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PaymentOutcome {
    Authorized {
        intent_id: String,
        amount_capturable: Money,
    },
    Expired,
    CanceledByDriver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Pause,
    Resume,
    Stop,
}

/// A stop the workflow has asked the station for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StopRequest {
    reason: EndReason,
    attempts: u32,
    last_sent: DateTime<Utc>,
}

/// The station lost the transaction: it reported the connector free, or answered a stop with
/// "no such transaction".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct LostTransaction {
    /// Workflow time it was noticed; the wait for the station's own StopTransaction runs from
    /// here.
    noticed_at: DateTime<Utc>,
    /// Station time of the `Available` report (`None` when a stop answer revealed it).
    reported_at: Option<DateTime<Utc>>,
}

/// The connector reported Faulted or Unavailable during the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Fault {
    /// Station time the fault began.
    since: DateTime<Utc>,
    /// Workflow time it was noticed; the fault grace runs from here.
    noticed_at: DateTime<Utc>,
}

/// How the charging phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ending {
    /// The end reason the session gets.
    reason: EndReason,
    /// Set when no StopTransaction ends it: the transaction is closed here, on the meter
    /// values measured up to then.
    closed_at: Option<DateTime<Utc>>,
}

/// The session workflow's state.
#[workflow]
pub struct SessionWorkflow {
    input: SessionInput,
    session: Session,
    events_emitted: u32,
    creation_failed: Option<CommandError>,
    /// The session with its payment page is persisted (the read model answers GET with it).
    creation_recorded: bool,
    payment_outcome: Option<PaymentOutcome>,
    intent_id: Option<String>,
    /// The hold that can really be captured (the provider may report less than asked).
    capturable: Option<Money>,
    started: Option<ChargingStarted>,
    start_failures: u32,
    start_window_closed: bool,
    late_start: Option<ChargingStarted>,
    /// Samples that arrived before the start signal.
    early_samples: Vec<MeterSample>,
    live: Option<LiveCost>,
    stopped: Option<ChargingStopped>,
    stop_request: Option<StopRequest>,
    commands: VecDeque<(u64, Command)>,
    replies: BTreeMap<u64, Result<Session, CommandError>>,
    next_command: u64,
    /// Bumped by every signal and command, so the main loop can wait for "anything new".
    wake: u64,
    /// The session runs the `charge-v2` shape (decided first thing, for every handler).
    v2: bool,
    /// The station lost the transaction (`charge-v2`).
    lost: Option<LostTransaction>,
    /// The connector is Faulted or Unavailable (`charge-v2`).
    fault: Option<Fault>,
    /// Workflow time the latest meter values arrived (`charge-v2`).
    last_reading_seen: Option<DateTime<Utc>>,
    /// Workflow time a fresh reading was last asked for (`charge-v2`).
    last_refresh: Option<DateTime<Utc>>,
    /// Earlier runs of this session (continue-as-new).
    runs: u32,
    /// The gateway task queue last found for the station (`charge-v2` stops and readings).
    gateway_queue: Option<String>,
    /// The energy target, Wh, for a session that has one (patch `energy-target`).
    energy_target_wh: Option<i64>,
    /// Tells when charging finishes while the car stays (patch `idle-event`, parking rates).
    idle_events: bool,
    /// `session.idle` is due: the loop records it.
    idle_to_announce: bool,
    /// The session raises its hold before stopping (patch `top-up`, sessions with top-up).
    top_up: Option<TopUp>,
    /// Increments asked for so far.
    top_up_attempts: u32,
    /// No more increments: refused, unanswered in time, or the ceiling reached.
    top_up_over: bool,
}

#[workflow_methods]
impl SessionWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: SessionInput) -> Self {
        let mut input = input;
        if let Some(continued) = input.continued.take() {
            return Self::continuing(input, *continued);
        }
        // The view has no clock; `run` stamps the real creation time first thing.
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let session = Session {
            id: input.session_id.clone(),
            user: input.user.clone(),
            chargestation: input.charge_station.clone(),
            connector: input.connector.clone(),
            status: SessionStatus::Created,
            rate: input.rate_id.clone(),
            target: input.target.clone(),
            cost: SessionCost::default(),
            kind: PAYMENT_LINK.to_owned(),
            payment: None,
            end_reason: None,
            idle: None,
            stop: None,
            started_at: None,
            ended_at: None,
            receipt_url: None,
            created_at: at,
            updated_at: at,
        };
        Self {
            input,
            session,
            events_emitted: 0,
            creation_failed: None,
            creation_recorded: false,
            payment_outcome: None,
            intent_id: None,
            capturable: None,
            started: None,
            start_failures: 0,
            start_window_closed: false,
            late_start: None,
            early_samples: Vec::new(),
            live: None,
            stopped: None,
            stop_request: None,
            commands: VecDeque::new(),
            replies: BTreeMap::new(),
            next_command: 0,
            wake: 0,
            v2: false,
            lost: None,
            fault: None,
            last_reading_seen: None,
            last_refresh: None,
            runs: 0,
            gateway_queue: None,
            energy_target_wh: None,
            idle_events: false,
            idle_to_announce: false,
            top_up: None,
            top_up_attempts: 0,
            top_up_over: false,
        }
    }

    /// Runs the session to its end.
    #[run(name = "session")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SessionOutcome> {
        // Decided first, so every signal handler knows which shape this session runs.
        let v2 = ctx.patched(names::PATCH_CHARGE_V2);
        ctx.state_mut(|s| s.v2 = v2);
        let input = ctx.state(|s| s.input.clone());
        // Asked only of a session with a target, so sessions without one record no marker.
        let target = input
            .target
            .energy_wh()
            .filter(|_| ctx.patched(names::PATCH_ENERGY_TARGET));
        ctx.state_mut(|s| s.energy_target_wh = target);
        let idle_events = input.rate.has_parking_time() && ctx.patched(names::PATCH_IDLE_EVENT);
        ctx.state_mut(|s| s.idle_events = idle_events);
        // Asked only of a session whose organization enabled top-up.
        let top_up = input.top_up.filter(|_| ctx.patched(names::PATCH_TOP_UP));
        ctx.state_mut(|s| s.top_up = top_up);
        if ctx.state(|s| s.runs > 0) {
            // A continued charging session: straight back into the charging loop.
            let authorization = ctx.state(|s| Authorization {
                intent_id: s.intent_id.clone().unwrap_or_default(),
                capturable: s.capturable.unwrap_or(input.authorized_amount),
            });
            let status = ctx.state(|s| s.session.status);
            ctx.upsert_search_attributes([SESSION_STATUS.value_set(status.as_str().to_owned())]);
            let ending = charging::resume(ctx, &input).await?;
            return settle(ctx, &input, &authorization, ending).await;
        }
        let at = now(ctx);
        ctx.state_mut(|s| {
            s.session.created_at = at;
            s.session.updated_at = at;
        });
        ctx.upsert_search_attributes([
            CHARGE_STATION.value_set(input.charge_station.to_string()),
            ORGANIZATION.value_set(input.organization.to_string()),
            SESSION_STATUS.value_set(SessionStatus::Created.as_str().to_owned()),
        ]);

        // 1. Create: persist, open the payment page, announce both.
        record(ctx, &[]).await?;
        let Some(authorization) = create_and_await_payment(ctx, &input).await? else {
            return Ok(outcome(ctx, None));
        };

        // 2. Authorized: start within the start window.
        let started = match start_charging(ctx, &input, &authorization).await? {
            Some(started) => started,
            None => return cancel_unstarted(ctx, &input, &authorization).await,
        };

        // 3. Charging until the station reports the stop (or the session ends without it).
        let ending = charge(ctx, &input, started).await?;

        // 4. End: final cost, capture or release.
        settle(ctx, &input, &authorization, ending).await
    }

    /// The session as the API shows it.
    #[query(name = "session")]
    pub fn session(&self, _ctx: &WorkflowContextView) -> Session {
        self.session.clone()
    }

    /// For an operator (`temporal workflow query --name explain`, or the Temporal UI's query
    /// tab): the live cost, the hold, the stop deadline and why a stop was decided. Read-only,
    /// so it needs no patch.
    #[query(name = "explain")]
    pub fn explain(&self, _ctx: &WorkflowContextView) -> Explanation {
        let hold = self.capturable.unwrap_or(self.input.authorized_amount);
        let cost = self.session.cost.amount.map(|amount| Money {
            amount,
            currency: hold.currency,
        });
        let charging = matches!(
            self.session.status,
            SessionStatus::Started | SessionStatus::Paused
        );
        // Seen from the latest reading: the deadline is an instant, wherever it is looked at from.
        let auto_stop = match (&self.live, self.stop_request, charging) {
            (Some(live), None, true) => {
                let at = self.last_reading_seen.unwrap_or(self.session.updated_at);
                self.auto_stop(live, at).ok().flatten()
            }
            _ => None,
        };
        let stop_deadline = auto_stop.map(|(deadline, _)| deadline);
        let money = |m: Option<Money>| m.map_or_else(|| "nothing".to_owned(), |m| m.to_string());
        let why = match (&self.session.stop, self.session.end_reason) {
            (Some(stop), end) => format!(
                "stop decided: {} (due {}, sent {}, attempt {}, station answered {:?}){}",
                stop.reason.as_str(),
                stop.due_at
                    .map_or_else(|| "-".to_owned(), |d| d.to_rfc3339()),
                stop.requested_at.to_rfc3339(),
                stop.attempts,
                stop.station_answer,
                end.map(|e| format!("; ended {}", e.as_str()))
                    .unwrap_or_default(),
            ),
            (None, Some(end)) => format!("ended {}: cost {}", end.as_str(), money(cost)),
            (None, None) => match auto_stop {
                Some((deadline, EndReason::TargetReached)) => format!(
                    "charging: cost {} of a {} hold{}, energy {} of a {} Wh target; auto-stop at {} for the target unless readings show less power",
                    money(cost),
                    hold,
                    self.top_up_note(),
                    self.live.as_ref().map_or(0, LiveCost::energy_wh),
                    self.energy_target_wh.unwrap_or_default(),
                    deadline.to_rfc3339(),
                ),
                Some((deadline, _)) => format!(
                    "charging: cost {} of a {} hold{}; auto-stop at {} unless readings show less than {} W",
                    money(cost),
                    hold,
                    self.top_up_note(),
                    deadline.to_rfc3339(),
                    self.assumed_power_w()
                ),
                None => format!("{}: cost {}", self.session.status.as_str(), money(cost)),
            },
        };
        Explanation {
            status: self.session.status,
            cost,
            hold,
            stop_deadline,
            assumed_power_w: self.assumed_power_w(),
            stop: self.session.stop.clone(),
            end_reason: self.session.end_reason,
            why,
        }
    }

    /// Waits until the payment page exists and returns the session with it. Used with
    /// update-with-start so `POST /sessions` can answer synchronously.
    #[update(name = "created")]
    pub async fn created(
        ctx: &mut WorkflowContext<Self>,
        _input: (),
    ) -> Result<Session, UpdateError> {
        let ready = ctx.wait_condition(|s| s.creation_recorded || s.creation_failed.is_some());
        if ready.await.is_err() {
            return Err(CommandError::new(
                CommandErrorCode::SessionFinished,
                "the session was cancelled",
            )
            .into());
        }
        ctx.state(|s| match &s.creation_failed {
            Some(e) => Err(e.clone().into()),
            None => Ok(s.session.clone()),
        })
    }

    #[update_validator(pause)]
    fn validate_pause(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_charging("pause").map_err(Into::into)
    }

    /// Pauses charging (TxProfile limit 0); `session.paused`.
    #[update(name = "pause")]
    pub async fn pause(
        ctx: &mut WorkflowContext<Self>,
        _input: (),
    ) -> Result<Session, UpdateError> {
        run_command(ctx, Command::Pause).await.map_err(Into::into)
    }

    #[update_validator(resume)]
    fn validate_resume(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_not_finished()?;
        if self.session.status != SessionStatus::Paused {
            return Err(CommandError::new(
                CommandErrorCode::NotPaused,
                format!(
                    "the session is {}, not paused; only a paused session can be resumed",
                    self.session.status.as_str()
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Resumes charging (clears the pause profile); `session.resumed`.
    #[update(name = "resume")]
    pub async fn resume(
        ctx: &mut WorkflowContext<Self>,
        _input: (),
    ) -> Result<Session, UpdateError> {
        run_command(ctx, Command::Resume).await.map_err(Into::into)
    }

    #[update_validator(stop)]
    fn validate_stop(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_not_finished()?;
        if self.input.rate.has_parking_time() {
            return Err(CommandError::new(
                CommandErrorCode::StopNotAllowed,
                "the session's rate bills PARKING_TIME, so it cannot be stopped through the API; \
                 it ends when the driver unplugs (or before the hold would be exceeded)",
            )
            .into());
        }
        if !matches!(
            self.session.status,
            SessionStatus::Started | SessionStatus::Paused
        ) {
            return Err(CommandError::new(
                CommandErrorCode::NotCharging,
                format!(
                    "the session is {}; only a started or paused session can be stopped",
                    self.session.status.as_str()
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Asks the station to stop. The session ends when the station confirms (`session.ended`).
    #[update(name = "stop")]
    pub async fn stop(ctx: &mut WorkflowContext<Self>, _input: ()) -> Result<Session, UpdateError> {
        run_command(ctx, Command::Stop).await.map_err(Into::into)
    }

    /// The card hold is placed.
    #[signal(name = "payment_authorized")]
    pub fn payment_authorized(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        signal: PaymentAuthorized,
    ) {
        self.payment_answered(PaymentOutcome::Authorized {
            intent_id: signal.intent_id,
            amount_capturable: signal.amount_capturable,
        });
    }

    /// The provider expired the payment page.
    #[signal(name = "payment_expired")]
    pub fn payment_expired(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        _signal: PaymentClosed,
    ) {
        self.payment_answered(PaymentOutcome::Expired);
    }

    /// The driver cancelled on the payment page.
    #[signal(name = "payment_canceled")]
    pub fn payment_canceled(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        _signal: PaymentClosed,
    ) {
        self.payment_answered(PaymentOutcome::CanceledByDriver);
    }

    /// StartTransaction for this session's id tag.
    #[signal(name = "charging_started")]
    pub fn charging_started(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        signal: ChargingStarted,
    ) {
        if self.start_window_closed {
            self.late_start.get_or_insert(signal);
        } else if self.started.is_none() {
            self.started = Some(signal);
        }
        self.wake += 1;
    }

    /// The station gave up on a start.
    #[signal(name = "start_failed")]
    pub fn start_failed(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _signal: StartFailed) {
        self.start_failures += 1;
        self.wake += 1;
    }

    /// Meter values of the transaction.
    #[signal(name = "meter_values")]
    pub fn meter_values(&mut self, ctx: &mut SyncWorkflowContext<Self>, signal: MeterValues) {
        if self
            .started
            .as_ref()
            .is_some_and(|s| s.transaction_id != signal.transaction_id)
        {
            return;
        }
        if self.v2 {
            self.last_reading_seen = Some(now_of(ctx.workflow_time()));
            // Readings measured after the station reported the connector free: it still runs
            // the transaction after all.
            if let Some(reported) = self.lost.and_then(|l| l.reported_at)
                && signal.samples.iter().any(|s| s.timestamp > reported)
            {
                self.lost = None;
            }
        }
        match self.live.as_mut() {
            Some(live) => signal
                .samples
                .into_iter()
                .for_each(|s| live.record_meter(s)),
            None => self.early_samples.extend(signal.samples),
        }
        self.wake += 1;
    }

    /// The connector's status changed; tells charging from not charging (EV full, suspended).
    #[signal(name = "connector_status")]
    pub fn connector_status(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        signal: ConnectorStatus,
    ) {
        if self.v2 {
            self.transaction_health(now_of(ctx.workflow_time()), &signal);
        }
        if self.session.status != SessionStatus::Started {
            // While paused, energy is held at zero by us; the pause owns the charging state.
            return;
        }
        if let Some(live) = self.live.as_mut() {
            match signal.status {
                ConnectorState::Charging => live.set_charging(signal.timestamp, true),
                ConnectorState::SuspendedEV | ConnectorState::SuspendedEvse => {
                    live.set_charging(signal.timestamp, false)
                }
                // Transaction still running with the cable in (a station that keeps it until
                // the unplug): no energy, parking (`idle-event` sessions only, so sessions
                // priced before it replay as they were).
                ConnectorState::Finishing if self.idle_events => {
                    live.set_charging(signal.timestamp, false)
                }
                _ => {}
            }
        }
        if self.idle_events {
            self.note_idle(&signal);
        }
        self.wake += 1;
    }

    /// StopTransaction of the session's transaction.
    #[signal(name = "charging_stopped")]
    pub fn charging_stopped(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        signal: ChargingStopped,
    ) {
        let ours = self
            .started
            .as_ref()
            .is_none_or(|s| s.transaction_id == signal.transaction_id);
        if ours && self.stopped.is_none() {
            self.stopped = Some(signal);
        }
        self.wake += 1;
    }
}

impl SessionWorkflow {
    /// The state of a continued run (see [`ContinuedSession`]).
    fn continuing(input: SessionInput, c: ContinuedSession) -> Self {
        Self {
            input,
            session: c.session,
            events_emitted: c.events_emitted,
            creation_failed: None,
            creation_recorded: true,
            payment_outcome: None,
            intent_id: Some(c.intent_id),
            capturable: Some(c.capturable),
            started: Some(c.started),
            start_failures: 0,
            start_window_closed: true,
            late_start: None,
            early_samples: Vec::new(),
            live: Some(c.live),
            stopped: None,
            stop_request: c.stop_request,
            commands: VecDeque::new(),
            replies: BTreeMap::new(),
            next_command: c.next_command,
            wake: 0,
            v2: true,
            lost: c.lost,
            fault: c.fault,
            last_reading_seen: c.last_reading_seen,
            last_refresh: c.last_refresh,
            runs: c.runs,
            gateway_queue: None,
            energy_target_wh: None,
            idle_events: false,
            idle_to_announce: false,
            top_up: None,
            top_up_attempts: c.top_up_attempts,
            top_up_over: c.top_up_over,
        }
    }

    /// For `explain`: where top-up stands (empty without it).
    fn top_up_note(&self) -> String {
        match (self.top_up, self.top_up_amount()) {
            (None, _) => String::new(),
            (Some(t), Some(next)) => format!(
                " (top-up: raised {} time(s), next to {next} before the stop deadline, ceiling {})",
                self.top_up_attempts, t.ceiling
            ),
            (Some(t), None) => format!(
                " (top-up over after {} attempt(s), ceiling {}: declined, unanswered or reached)",
                self.top_up_attempts, t.ceiling
            ),
        }
    }

    /// The whole session for the next run, its pricing compacted; `None` unless it is charging
    /// with nothing in progress.
    fn to_continue(&self) -> Option<SessionInput> {
        if !self.commands.is_empty() || !self.replies.is_empty() || self.stopped.is_some() {
            return None;
        }
        let mut live = self.live.clone()?;
        live.compact();
        let mut input = self.input.clone();
        input.continued = Some(Box::new(ContinuedSession {
            session: self.session.clone(),
            events_emitted: self.events_emitted,
            intent_id: self.intent_id.clone()?,
            capturable: self.capturable?,
            started: self.started.clone()?,
            live,
            stop_request: self.stop_request,
            lost: self.lost,
            fault: self.fault,
            last_reading_seen: self.last_reading_seen,
            last_refresh: self.last_refresh,
            top_up_attempts: self.top_up_attempts,
            top_up_over: self.top_up_over,
            next_command: self.next_command,
            runs: self.runs + 1,
        }));
        Some(input)
    }

    /// What a connector status says about the running transaction (`charge-v2`): `Available`
    /// after the start means the station lost it (a reboot); Faulted / Unavailable start a
    /// fault, a charging state ends it.
    fn transaction_health(&mut self, at: DateTime<Utc>, signal: &ConnectorStatus) {
        let Some(started) = &self.started else {
            return;
        };
        let running = self.stopped.is_none() && !self.session.status.is_final();
        // A status from before the start (queued offline, or the plug-in) says nothing.
        if !running || signal.timestamp < started.timestamp {
            return;
        }
        match signal.status {
            ConnectorState::Available => {
                self.lost.get_or_insert(LostTransaction {
                    noticed_at: at,
                    reported_at: Some(signal.timestamp),
                });
            }
            ConnectorState::Faulted | ConnectorState::Unavailable => {
                self.fault.get_or_insert(Fault {
                    since: signal.timestamp,
                    noticed_at: at,
                });
                if self.session.status == SessionStatus::Started
                    && let Some(live) = self.live.as_mut()
                {
                    live.set_charging(signal.timestamp, false);
                }
            }
            ConnectorState::Charging
            | ConnectorState::SuspendedEV
            | ConnectorState::SuspendedEvse => {
                self.fault = None;
            }
            _ => {}
        }
    }

    /// Charging finished (or resumed) while the transaction runs: sets or clears the session's
    /// `idle`, and asks the loop to announce a new idle stretch.
    fn note_idle(&mut self, signal: &ConnectorStatus) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        match signal.status {
            ConnectorState::Charging => self.session.idle = None,
            ConnectorState::SuspendedEV
            | ConnectorState::SuspendedEvse
            | ConnectorState::Finishing
                if self.session.idle.is_none() =>
            {
                let since = signal.timestamp.max(live.started_at());
                // Pricing failures surface in the loop's cost; here the fee start is unknown.
                let parking_fee_from = live
                    .parking_fee_from(since, chrono::Duration::hours(48))
                    .ok()
                    .flatten();
                self.session.idle = Some(SessionIdle {
                    since,
                    parking_fee_from,
                });
                self.idle_to_announce = true;
            }
            _ => {}
        }
    }

    /// The first answer about the payment page wins; later ones (duplicate or crossing
    /// webhooks) change nothing.
    fn payment_answered(&mut self, outcome: PaymentOutcome) {
        self.payment_outcome.get_or_insert(outcome);
        self.wake += 1;
    }

    fn check_not_finished(&self) -> Result<(), CommandError> {
        if self.session.status.is_final() || self.stopped.is_some() {
            return Err(CommandError::new(
                CommandErrorCode::SessionFinished,
                format!(
                    "the session is {} and accepts no more commands",
                    self.session.status.as_str()
                ),
            ));
        }
        Ok(())
    }

    fn check_charging(&self, verb: &str) -> Result<(), CommandError> {
        self.check_not_finished()?;
        if self.session.status != SessionStatus::Started || self.stop_request.is_some() {
            let state = if self.stop_request.is_some() {
                "stopping"
            } else {
                self.session.status.as_str()
            };
            return Err(CommandError::new(
                CommandErrorCode::NotCharging,
                format!("the session is {state}; only a charging session can {verb}"),
            ));
        }
        Ok(())
    }

    /// Appends `kinds` as events of the current session state and returns them.
    fn take_events(&mut self, kinds: &[EventType], at: DateTime<Utc>) -> Vec<SessionEvent> {
        self.session.updated_at = at;
        kinds
            .iter()
            .map(|&kind| {
                self.events_emitted += 1;
                SessionEvent {
                    id: SessionEvent::id_for(&self.session.id, self.events_emitted),
                    kind,
                    seq: self.events_emitted,
                    created_at: at,
                    data: self.session.clone(),
                }
            })
            .collect()
    }

    fn set_payment_status(&mut self, status: PaymentStatus, at: DateTime<Utc>) {
        if let Some(p) = self.session.payment.as_mut() {
            p.status = status;
            p.updated_at = at;
            p.stripe.intent_id = self.intent_id.clone().or(p.stripe.intent_id.take());
        }
    }

    fn transaction(&self) -> Option<TransactionRef> {
        let started = self.started.as_ref()?;
        Some(TransactionRef {
            session_id: self.input.session_id.clone(),
            charge_station: self.input.charge_station.clone(),
            connector_id: self.input.connector_id,
            transaction_id: started.transaction_id,
        })
    }
}
