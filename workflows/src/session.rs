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
use domain::pricing::{LiveCost, MeterSample};
use domain::rate::Rate;
use domain::session::{
    ANONYMOUS, EndReason, PAYMENT_LINK, Payment, PaymentStatus, Session, SessionCost,
    SessionStatus, SessionTarget, StripeRefs,
};
use serde::{Deserialize, Serialize};
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ApplicationFailure, CancellableFuture, SyncWorkflowContext, TimerOptions, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

use crate::contracts::{
    self, CancelPaymentInput, CapturePaymentInput, CreatePaymentInput, LocateChargeStationInput,
    PaymentRef, ProviderPaymentState, RecordSessionInput, RemoteStartInput, Step, TransactionRef,
    idempotency_key,
};
use crate::messages::{
    ChargingStarted, ChargingStopped, CommandError, CommandErrorCode, ConnectorState,
    ConnectorStatus, MeterValues, PaymentAuthorized, PaymentClosed, SessionOutcome, StartFailed,
};
use crate::{names, options};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StopRequest {
    reason: EndReason,
    attempts: u32,
    last_sent: DateTime<Utc>,
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
}

fn now_of(time: Option<std::time::SystemTime>) -> DateTime<Utc> {
    time.map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn now(ctx: &WorkflowContext<SessionWorkflow>) -> DateTime<Utc> {
    now_of(ctx.workflow_time())
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn activity_failed(what: &str, e: impl std::fmt::Display) -> WorkflowTermination {
    ApplicationFailure::new(format!("{what} failed: {e}")).into()
}

#[workflow_methods]
impl SessionWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: SessionInput) -> Self {
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
            started_at: None,
            ended_at: None,
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
        }
    }

    /// Runs the session to its end.
    #[run(name = "session")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SessionOutcome> {
        let input = ctx.state(|s| s.input.clone());
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

        // 3. Charging until the station reports the stop.
        charge(ctx, &input, started).await?;

        // 4. End: final cost, capture or release.
        settle(ctx, &input, &authorization).await
    }

    /// The session as the API shows it.
    #[query(name = "session")]
    pub fn session(&self, _ctx: &WorkflowContextView) -> Session {
        self.session.clone()
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
    pub fn meter_values(&mut self, _ctx: &mut SyncWorkflowContext<Self>, signal: MeterValues) {
        if self
            .started
            .as_ref()
            .is_some_and(|s| s.transaction_id != signal.transaction_id)
        {
            return;
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
        _ctx: &mut SyncWorkflowContext<Self>,
        signal: ConnectorStatus,
    ) {
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
                _ => {}
            }
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

/// The hold, once placed.
#[derive(Debug, Clone)]
struct Authorization {
    intent_id: String,
    capturable: Money,
}

/// Persists the current session with `kinds` events (possibly none).
async fn record(ctx: &WorkflowContext<SessionWorkflow>, kinds: &[EventType]) -> WorkflowResult<()> {
    let at = now(ctx);
    let (organization, session, events) = ctx.state_mut(|s| {
        let events = s.take_events(kinds, at);
        (s.input.organization.clone(), s.session.clone(), events)
    });
    let summary = if kinds.is_empty() {
        format!("save session ({})", session.status.as_str())
    } else {
        kinds
            .iter()
            .map(EventType::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    ctx.execute_activity(
        contracts::RecordSession,
        RecordSessionInput {
            organization,
            session,
            events,
        },
        options::store(summary),
    )
    .await
    .map_err(|e| activity_failed("record_session", e))
}

/// Moves the session to `status` (and its search attribute).
fn set_status(ctx: &WorkflowContext<SessionWorkflow>, status: SessionStatus) {
    ctx.state_mut(|s| s.session.status = status);
    ctx.upsert_search_attributes([SESSION_STATUS.value_set(status.as_str().to_owned())]);
}

/// Waits until `condition` holds or `timeout` passes; `true` if the condition held.
/// The timer is cancelled when the condition wins, so the history says what happened.
async fn wait_until(
    ctx: &WorkflowContext<SessionWorkflow>,
    condition: impl FnMut(&SessionWorkflow) -> bool,
    timeout: Duration,
    summary: &str,
) -> WorkflowResult<bool> {
    let mut condition = condition;
    if ctx.state(&mut condition) {
        return Ok(true);
    }
    if timeout.is_zero() {
        return Ok(false);
    }
    let timer = ctx.timer(
        TimerOptions::builder(timeout)
            .summary(summary.to_owned())
            .build(),
    );
    let met = ctx.wait_condition(condition);
    futures::pin_mut!(timer, met);
    temporalio_sdk::workflows::select! {
        result = met => {
            timer.cancel();
            result?;
            Ok(true)
        }
        _ = timer => Ok(false),
    }
}

fn outcome(ctx: &WorkflowContext<SessionWorkflow>, captured: Option<Money>) -> SessionOutcome {
    ctx.state(|s| SessionOutcome {
        status: s.session.status,
        end_reason: s.session.end_reason,
        captured,
    })
}

/// Steps 1 and 2: the payment page, then the driver's answer racing the expiry.
/// `None` when the session ended without a hold.
async fn create_and_await_payment(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
) -> WorkflowResult<Option<Authorization>> {
    let sid = &input.session_id;
    let created = ctx
        .execute_activity(
            contracts::CreatePayment,
            CreatePaymentInput {
                session_id: sid.clone(),
                payment_id: input.payment_id.clone(),
                amount: input.authorized_amount,
                idempotency_key: idempotency_key(sid, Step::CreatePayment),
            },
            options::create_payment(format!("hold {}", input.authorized_amount)),
        )
        .await;
    let created = match created {
        Ok(created) => created,
        Err(e) => {
            let error = CommandError::new(
                CommandErrorCode::PaymentUnavailable,
                format!("the payment page could not be created ({e}); try again later"),
            );
            ctx.state_mut(|s| {
                s.creation_failed = Some(error);
                s.session.end_reason = Some(EndReason::PaymentExpired);
            });
            set_status(ctx, SessionStatus::Canceled);
            record(ctx, &[]).await?;
            return Ok(None);
        }
    };
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.session.payment = Some(Payment {
            id: input.payment_id.clone(),
            session: sid.clone(),
            url: created.url.clone(),
            currency: input.authorized_amount.currency,
            authorized_amount: input.authorized_amount.amount,
            captured_amount: None,
            kind: ANONYMOUS.to_owned(),
            stripe: StripeRefs {
                intent_id: created.intent_id.clone(),
                checkout_session_id: Some(created.checkout_session_id.clone()),
            },
            status: PaymentStatus::Created,
            created_at: at,
            updated_at: at,
        });
    });
    record(ctx, &[EventType::SessionCreated, EventType::PaymentCreated]).await?;
    ctx.state_mut(|s| s.creation_recorded = true);

    let payment = PaymentRef {
        session_id: sid.clone(),
        checkout_session_id: created.checkout_session_id,
        idempotency_key: idempotency_key(sid, Step::ExpirePayment),
    };
    let answered = wait_until(
        ctx,
        |s| s.payment_outcome.is_some(),
        input.timings.payment_expiry,
        "payment expiry",
    )
    .await?;
    let mut outcome = if answered {
        ctx.state(|s| s.payment_outcome.clone())
    } else {
        None
    };
    if outcome.is_none() {
        // The expiry passed without word: a webhook may be late or lost, so ask the provider
        // before giving up, then expire the page (which may still find the driver just paid).
        let state = ctx
            .execute_activity(
                contracts::RetrievePayment,
                payment.clone(),
                options::settle_payment("check payment".into()),
            )
            .await
            .map_err(|e| activity_failed("retrieve_payment", e))?;
        outcome = Some(match state {
            ProviderPaymentState::Authorized {
                intent_id,
                amount_capturable,
            } => PaymentOutcome::Authorized {
                intent_id,
                amount_capturable,
            },
            _ => expire_page(ctx, &payment).await?,
        });
    }

    match outcome {
        Some(PaymentOutcome::Authorized {
            intent_id,
            amount_capturable,
        }) => {
            let capturable = amount_capturable
                .checked_min(input.authorized_amount)
                .unwrap_or(input.authorized_amount);
            let at = now(ctx);
            ctx.state_mut(|s| {
                s.intent_id = Some(intent_id.clone());
                s.capturable = Some(capturable);
                s.set_payment_status(PaymentStatus::Authorized, at);
            });
            record(ctx, &[EventType::PaymentAuthorized]).await?;
            Ok(Some(Authorization {
                intent_id,
                capturable,
            }))
        }
        Some(PaymentOutcome::CanceledByDriver) => {
            // The page stays payable at the provider until expired: close it, and release a hold
            // that a payment racing the cancel may have placed.
            if let PaymentOutcome::Authorized { intent_id, .. } = expire_page(ctx, &payment).await?
            {
                release_hold(ctx, sid, &intent_id).await?;
            }
            let at = now(ctx);
            ctx.state_mut(|s| {
                s.session.end_reason = Some(EndReason::DriverCanceled);
                s.set_payment_status(PaymentStatus::Canceled, at);
            });
            set_status(ctx, SessionStatus::Canceled);
            record(ctx, &[EventType::SessionCanceled]).await?;
            Ok(None)
        }
        Some(PaymentOutcome::Expired) | None => {
            let at = now(ctx);
            ctx.state_mut(|s| {
                s.session.end_reason = Some(EndReason::PaymentExpired);
                s.set_payment_status(PaymentStatus::Expired, at);
            });
            set_status(ctx, SessionStatus::Expired);
            record(ctx, &[EventType::PaymentExpired]).await?;
            Ok(None)
        }
    }
}

/// Expires the payment page; reports `Authorized` if the driver paid in the same instant.
async fn expire_page(
    ctx: &WorkflowContext<SessionWorkflow>,
    payment: &PaymentRef,
) -> WorkflowResult<PaymentOutcome> {
    let state = ctx
        .execute_activity(
            contracts::ExpirePayment,
            payment.clone(),
            options::settle_payment("expire payment page".into()),
        )
        .await
        .map_err(|e| activity_failed("expire_payment", e))?;
    Ok(match state {
        ProviderPaymentState::Authorized {
            intent_id,
            amount_capturable,
        } => PaymentOutcome::Authorized {
            intent_id,
            amount_capturable,
        },
        _ => PaymentOutcome::Expired,
    })
}

async fn release_hold(
    ctx: &WorkflowContext<SessionWorkflow>,
    sid: &SessionId,
    intent_id: &str,
) -> WorkflowResult<()> {
    ctx.execute_activity(
        contracts::CancelPayment,
        CancelPaymentInput {
            session_id: sid.clone(),
            intent_id: intent_id.to_owned(),
            idempotency_key: idempotency_key(sid, Step::Cancel),
        },
        options::settle_payment("release hold".into()),
    )
    .await
    .map_err(|e| activity_failed("cancel_payment", e))
}

/// Finds the gateway queue of the station; `None` when it is offline or the lookup failed.
async fn locate(ctx: &WorkflowContext<SessionWorkflow>, input: &SessionInput) -> Option<String> {
    let found = ctx
        .execute_activity(
            contracts::LocateChargeStation,
            LocateChargeStationInput {
                session_id: input.session_id.clone(),
                charge_station: input.charge_station.clone(),
            },
            options::locate(format!("locate {}", input.charge_station)),
        )
        .await;
    found.ok().and_then(|l| l.task_queue)
}

/// Step 3: RemoteStart attempts with backoff until the station starts or the window closes.
async fn start_charging(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    _authorization: &Authorization,
) -> WorkflowResult<Option<ChargingStarted>> {
    let t = &input.timings;
    let deadline = now(ctx) + to_chrono(t.start_window);
    let mut backoff = t.start_retry_initial;
    let mut attempt = 0_u32;
    loop {
        if let Some(started) = ctx.state(|s| s.started.clone()) {
            return Ok(Some(started));
        }
        let remaining = (deadline - now(ctx)).to_std().unwrap_or(Duration::ZERO);
        if remaining.is_zero() {
            ctx.state_mut(|s| s.start_window_closed = true);
            return Ok(None);
        }
        attempt += 1;
        let accepted = match locate(ctx, input).await {
            Some(queue) => ctx
                .execute_activity(
                    contracts::RemoteStart,
                    RemoteStartInput {
                        session_id: input.session_id.clone(),
                        charge_station: input.charge_station.clone(),
                        connector_id: input.connector_id,
                        id_tag: IdTag::for_session(&input.session_id),
                    },
                    options::charger_command(queue, format!("remote start, attempt {attempt}"), 1),
                )
                .await
                .is_ok_and(|reply| reply.accepted),
            None => false,
        };
        let remaining = (deadline - now(ctx)).to_std().unwrap_or(Duration::ZERO);
        if accepted {
            // The station will try: give the driver time to plug in, unless it reports failure.
            let failures = ctx.state(|s| s.start_failures);
            let wait = t.start_attempt_timeout.min(remaining);
            wait_until(
                ctx,
                move |s| s.started.is_some() || s.start_failures > failures,
                wait,
                "await StartTransaction",
            )
            .await?;
        } else {
            wait_until(
                ctx,
                |s| s.started.is_some(),
                backoff.min(remaining),
                "start retry backoff",
            )
            .await?;
            backoff = (backoff * 2).min(t.start_retry_max);
        }
    }
}

/// No start in the window: stop what may have started late, release the hold.
async fn cancel_unstarted(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    authorization: &Authorization,
) -> WorkflowResult<SessionOutcome> {
    release_hold(ctx, &input.session_id, &authorization.intent_id).await?;
    if let Some(late) = ctx.state(|s| s.late_start.clone()) {
        // The station started after the window closed: nobody pays for that transaction.
        if let Some(queue) = locate(ctx, input).await {
            let tx = TransactionRef {
                session_id: input.session_id.clone(),
                charge_station: input.charge_station.clone(),
                connector_id: input.connector_id,
                transaction_id: late.transaction_id,
            };
            let _ = ctx
                .execute_activity(
                    contracts::RemoteStop,
                    tx,
                    options::charger_command(queue, "stop late start".into(), 3),
                )
                .await;
        }
    }
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.session.end_reason = Some(EndReason::StartFailed);
        s.set_payment_status(PaymentStatus::Canceled, at);
    });
    set_status(ctx, SessionStatus::Canceled);
    record(
        ctx,
        &[EventType::SessionCanceled, EventType::PaymentCanceled],
    )
    .await?;
    Ok(outcome(ctx, None))
}

/// Queues a command for the main loop and waits for its answer.
async fn run_command(
    ctx: &WorkflowContext<SessionWorkflow>,
    command: Command,
) -> Result<Session, CommandError> {
    let id = ctx.state_mut(|s| {
        s.next_command += 1;
        s.commands.push_back((s.next_command, command));
        s.wake += 1;
        s.next_command
    });
    if ctx
        .wait_condition(move |s| s.replies.contains_key(&id))
        .await
        .is_err()
    {
        return Err(CommandError::new(
            CommandErrorCode::SessionFinished,
            "the session was cancelled",
        ));
    }
    ctx.state_mut(|s| s.replies.remove(&id)).unwrap_or_else(|| {
        Err(CommandError::new(
            CommandErrorCode::SessionFinished,
            "the session finished before the command ran",
        ))
    })
}

/// Sends `command` to the station on its gateway's queue.
async fn station_command(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    command: Command,
    summary: String,
) -> Result<(), CommandError> {
    let unavailable = || {
        CommandError::new(
            CommandErrorCode::StationUnavailable,
            format!(
                "charge station {} is not reachable; try again in a moment",
                input.charge_station
            ),
        )
    };
    let tx = ctx.state(|s| s.transaction()).ok_or_else(unavailable)?;
    let queue = locate(ctx, input).await.ok_or_else(unavailable)?;
    let opts = options::charger_command(queue, summary, 3);
    let reply = match command {
        Command::Pause => {
            ctx.execute_activity(contracts::PauseCharging, tx, opts)
                .await
        }
        Command::Resume => {
            ctx.execute_activity(contracts::ResumeCharging, tx, opts)
                .await
        }
        Command::Stop => ctx.execute_activity(contracts::RemoteStop, tx, opts).await,
    };
    match reply {
        Ok(r) if r.accepted => Ok(()),
        Ok(_) => Err(CommandError::new(
            CommandErrorCode::StationRejected,
            format!(
                "charge station {} rejected the command",
                input.charge_station
            ),
        )),
        Err(_) => Err(unavailable()),
    }
}

/// Runs one queued pause / resume / stop and answers it.
async fn handle_command(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    id: u64,
    command: Command,
) -> WorkflowResult<()> {
    // Re-check: the state may have moved since the validator accepted the update.
    let precheck = ctx.state(|s| match command {
        Command::Pause => s.check_charging("pause"),
        Command::Resume if s.session.status != SessionStatus::Paused => Err(CommandError::new(
            CommandErrorCode::NotPaused,
            "the session is not paused",
        )),
        Command::Stop if s.stop_request.is_some() => Ok(()),
        _ => s.check_not_finished(),
    });
    let already_stopping = command == Command::Stop && ctx.state(|s| s.stop_request.is_some());
    let result = match precheck {
        Err(e) => Err(e),
        Ok(()) if already_stopping => Ok(()),
        Ok(()) => {
            let summary = match command {
                Command::Pause => "pause (TxProfile limit 0)",
                Command::Resume => "resume (clear pause profile)",
                Command::Stop => "remote stop (API)",
            };
            station_command(ctx, input, command, summary.to_owned()).await
        }
    };
    let result = match result {
        Ok(()) if !already_stopping => {
            let at = now(ctx);
            match command {
                Command::Pause => {
                    ctx.state_mut(|s| s.live.iter_mut().for_each(|l| l.set_charging(at, false)));
                    set_status(ctx, SessionStatus::Paused);
                    record(ctx, &[EventType::SessionPaused]).await?;
                }
                Command::Resume => {
                    ctx.state_mut(|s| s.live.iter_mut().for_each(|l| l.set_charging(at, true)));
                    set_status(ctx, SessionStatus::Started);
                    record(ctx, &[EventType::SessionResumed]).await?;
                }
                Command::Stop => ctx.state_mut(|s| {
                    s.stop_request = Some(StopRequest {
                        reason: EndReason::StoppedByApi,
                        attempts: 1,
                        last_sent: at,
                    });
                }),
            }
            Ok(ctx.state(|s| s.session.clone()))
        }
        Ok(()) => Ok(ctx.state(|s| s.session.clone())),
        Err(e) => Err(e),
    };
    ctx.state_mut(|s| s.replies.insert(id, result));
    Ok(())
}

/// Step 4: charging until StopTransaction; stops before the hold can be passed.
async fn charge(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    started: ChargingStarted,
) -> WorkflowResult<()> {
    let t = &input.timings;
    ctx.state_mut(|s| {
        let mut live = LiveCost::start(
            input.rate.clone(),
            started.timestamp,
            started.meter_start_wh,
        );
        s.early_samples
            .drain(..)
            .for_each(|sample| live.record_meter(sample));
        s.live = Some(live);
        s.session.started_at = Some(started.timestamp);
    });
    set_status(ctx, SessionStatus::Started);
    record(ctx, &[EventType::SessionStarted]).await?;

    loop {
        while let Some((id, command)) = ctx.state_mut(|s| s.commands.pop_front()) {
            handle_command(ctx, input, id, command).await?;
        }
        if ctx.state(|s| s.stopped.is_some()) {
            return Ok(());
        }
        let at = now(ctx);
        refresh_cost(ctx, at)?;

        let (projected, limit, stop_request) = ctx.state(|s| {
            let projected = s
                .live
                .as_ref()
                .map(|l| l.projected_cost(at, to_chrono(t.stop_horizon())));
            (
                projected,
                s.capturable.unwrap_or(input.authorized_amount),
                s.stop_request,
            )
        });
        let projected = projected
            .transpose()
            .map_err(|e| ApplicationFailure::new(format!("pricing failed: {e}")))?
            .unwrap_or(Money::zero(limit.currency));
        let over = projected.checked_cmp(&limit).is_ok_and(|o| o.is_ge());

        let next_check = match stop_request {
            None if over => {
                // The next meter interval plus the station's stop latency could pass the hold.
                ctx.state_mut(|s| {
                    s.stop_request = Some(StopRequest {
                        reason: EndReason::HoldLimit,
                        attempts: 0,
                        last_sent: at,
                    });
                });
                send_stop(ctx, input, "remote stop (hold limit)").await;
                continue;
            }
            None => t.meter_interval,
            Some(request) => {
                let due = request.last_sent + to_chrono(t.stop_confirm_timeout);
                if at < due {
                    (due - at)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(t.meter_interval)
                } else if request.attempts < t.stop_attempts {
                    send_stop(ctx, input, "remote stop (retry)").await;
                    continue;
                } else {
                    // The station never confirmed: end on the last meter values rather than
                    // keep the hold (and the driver's money) waiting forever.
                    let (energy, tx) = ctx.state(|s| {
                        (
                            s.live.as_ref().map_or(0, |l| l.energy_wh()),
                            s.started.clone(),
                        )
                    });
                    let meter_start = tx.as_ref().map_or(0, |t| t.meter_start_wh);
                    ctx.state_mut(|s| {
                        s.stop_request = Some(StopRequest {
                            reason: EndReason::StationUnresponsive,
                            ..request
                        });
                        s.stopped = Some(ChargingStopped {
                            transaction_id: tx.map_or(0, |t| t.transaction_id),
                            meter_stop_wh: meter_start + energy,
                            timestamp: at,
                            reason: None,
                        });
                    });
                    return Ok(());
                }
            }
        };
        let seen = ctx.state(|s| s.wake);
        wait_until(ctx, move |s| s.wake != seen, next_check, "cost check").await?;
    }
}

/// Sends (or re-sends) the remote stop and counts the attempt.
async fn send_stop(ctx: &WorkflowContext<SessionWorkflow>, input: &SessionInput, summary: &str) {
    let _ = station_command(ctx, input, Command::Stop, summary.to_owned()).await;
    let at = now(ctx);
    ctx.state_mut(|s| {
        if let Some(r) = s.stop_request.as_mut() {
            r.attempts += 1;
            r.last_sent = at;
        }
    });
}

/// Updates the session's cost view to `at`.
fn refresh_cost(ctx: &WorkflowContext<SessionWorkflow>, at: DateTime<Utc>) -> WorkflowResult<()> {
    let summary = ctx.state(|s| s.live.as_ref().map(|l| l.cost_at(at)));
    if let Some(summary) = summary {
        let summary =
            summary.map_err(|e| ApplicationFailure::new(format!("pricing failed: {e}")))?;
        ctx.state_mut(|s| s.session.cost = SessionCost::from_summary(&summary));
    }
    Ok(())
}

/// Step 5: final cost (never above the hold), `session.ended`, then capture or release.
async fn settle(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    authorization: &Authorization,
) -> WorkflowResult<SessionOutcome> {
    let sid = &input.session_id;
    let stopped = ctx
        .state(|s| s.stopped.clone())
        .ok_or_else(|| ApplicationFailure::new("settle called before the station stopped"))?;
    let summary = ctx
        .state_mut(|s| {
            s.live
                .as_mut()
                .map(|l| l.finish(stopped.timestamp, stopped.meter_stop_wh))
        })
        .transpose()
        .map_err(|e| ApplicationFailure::new(format!("pricing failed: {e}")))?
        .ok_or_else(|| ApplicationFailure::new("no running cost at the end of the session"))?;
    let owed = summary
        .amount
        .checked_min(authorization.capturable)
        .map_err(|e| ApplicationFailure::new(format!("final cost: {e}")))?
        .amount
        .max(0);
    let owed = Money::new(owed, authorization.capturable.currency);

    let reason =
        ctx.state(
            |s| match (s.stop_request.map(|r| r.reason), stopped.reason.as_deref()) {
                (Some(reason), _) => reason,
                (None, Some("EVDisconnected")) => EndReason::Unplugged,
                (None, _) => EndReason::Station,
            },
        );
    ctx.state_mut(|s| {
        let mut cost = SessionCost::from_summary(&summary);
        cost.amount = Some(owed.amount);
        s.session.cost = cost;
        s.session.end_reason = Some(reason);
        s.session.ended_at = Some(stopped.timestamp);
    });
    set_status(ctx, SessionStatus::Ended);
    record(ctx, &[EventType::SessionEnded]).await?;

    if owed.is_zero() {
        release_hold(ctx, sid, &authorization.intent_id).await?;
        let at = now(ctx);
        ctx.state_mut(|s| s.set_payment_status(PaymentStatus::Canceled, at));
        record(ctx, &[EventType::PaymentCanceled]).await?;
        return Ok(outcome(ctx, None));
    }
    let captured = ctx
        .execute_activity(
            contracts::CapturePayment,
            CapturePaymentInput {
                session_id: sid.clone(),
                intent_id: authorization.intent_id.clone(),
                amount: owed,
                idempotency_key: idempotency_key(sid, Step::Capture),
            },
            options::settle_payment(format!("capture {owed}")),
        )
        .await
        .map_err(|e| activity_failed("capture_payment", e))?;
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.set_payment_status(PaymentStatus::Captured, at);
        if let Some(p) = s.session.payment.as_mut() {
            p.captured_amount = Some(captured.captured.amount);
        }
    });
    record(ctx, &[EventType::PaymentCaptured]).await?;
    Ok(outcome(ctx, Some(captured.captured)))
}
