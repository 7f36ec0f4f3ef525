//! Step 4: charging. The main loop runs queued commands, keeps the cost current, and decides
//! what comes next from the state alone ([`SessionWorkflow::next_step`]): wait, ask for a fresh
//! reading, stop, or end the session.
//!
//! The stop deadline: the latest instant a RemoteStop can be sent so that the cost, with
//! energy flowing at the worst-case power (the connector's maximum, or the latest reading if
//! higher) from the latest reading until the stop latency after the stop, stays within the
//! hold. One timer waits for it and is only replaced when the deadline moves earlier, so a
//! meter value costs its signal and one workflow task in history, no timer churn. When the
//! next periodic reading would come after the deadline, a fresh one is asked for
//! (TriggerMessage) a little before it, which moves the deadline later when the real power is
//! below the worst case.

use super::*;

/// The furthest ahead the stop deadline is searched; with none within it the loop looks again
/// when it passes.
const DEADLINE_HORIZON: Duration = Duration::from_secs(6 * 3600);

/// Queues a command for the main loop and waits for its answer.
pub(super) async fn run_command(
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

/// Runs one queued pause / resume / stop and answers it.
pub(super) async fn handle_command(
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
        _ => s.check_not_finished(),
    });
    let result = match (precheck, command) {
        (Err(e), _) => Err(e),
        (Ok(()), Command::Stop) => {
            // A stop is chargelink's to finish once asked: refused or unanswered stops are sent
            // again, and the session ends on its last meter values if the station never
            // confirms. `session.stop` says what the station answered.
            if ctx.state(|s| s.stop_request.is_none()) {
                let due = now(ctx);
                begin_stop(
                    ctx,
                    input,
                    EndReason::StoppedByApi,
                    due,
                    "remote stop (API)",
                )
                .await;
            }
            Ok(ctx.state(|s| s.session.clone()))
        }
        (Ok(()), Command::Pause) => {
            match station_command(ctx, input, command, "pause (TxProfile limit 0)".into()).await {
                Ok(()) => {
                    let at = now(ctx);
                    ctx.state_mut(|s| s.live.iter_mut().for_each(|l| l.set_charging(at, false)));
                    set_status(ctx, SessionStatus::Paused);
                    record(ctx, &[EventType::SessionPaused]).await?;
                    Ok(ctx.state(|s| s.session.clone()))
                }
                Err(e) => Err(e),
            }
        }
        (Ok(()), Command::Resume) => {
            match station_command(ctx, input, command, "resume (clear pause profile)".into()).await
            {
                Ok(()) => {
                    let at = now(ctx);
                    ctx.state_mut(|s| s.live.iter_mut().for_each(|l| l.set_charging(at, true)));
                    set_status(ctx, SessionStatus::Started);
                    record(ctx, &[EventType::SessionResumed]).await?;
                    Ok(ctx.state(|s| s.session.clone()))
                }
                Err(e) => Err(e),
            }
        }
    };
    ctx.state_mut(|s| s.replies.insert(id, result));
    Ok(())
}

/// Prices from the start of the transaction, `session.started`.
async fn begin_charging(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    started: ChargingStarted,
) -> WorkflowResult<()> {
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
    record(ctx, &[EventType::SessionStarted]).await
}

/// What the charging loop does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    /// The charging phase is over.
    End(Ending),
    /// Send the first stop, for this reason.
    /// Stop now for this reason; the stop was due at the given time.
    Stop(EndReason, DateTime<Utc>),
    /// Send the stop again.
    Resend,
    /// Ask the station for a fresh meter reading.
    Refresh,
    /// Raise the hold to this total (top-up), within this time budget (it ends before the
    /// stop deadline, so a refusal still stops on time).
    TopUp(Money, Duration),
    /// Nothing to do until `until`, unless a signal or command arrives.
    Wait {
        until: DateTime<Utc>,
        summary: &'static str,
    },
}

/// A timer the loop keeps across iterations.
type Alarm<'a> =
    std::pin::Pin<Box<dyn CancellableFuture<Output = temporalio_sdk::TimerResult> + 'a>>;

/// Step 4: charging until the station reports the stop, or until the session must end without
/// it (the station lost the transaction, a long fault, a stop never confirmed).
pub(super) async fn charge(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    started: ChargingStarted,
) -> WorkflowResult<Ending> {
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.last_reading_seen.get_or_insert(at);
    });
    begin_charging(ctx, input, started).await?;
    if !ctx.state(|s| s.v2) {
        return legacy::charge_v1(ctx, input).await;
    }
    resume(ctx, input).await
}

/// The charging loop, from where the session is: right after the start, or in a run that
/// continues a long session.
pub(super) async fn resume(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
) -> WorkflowResult<Ending> {
    // The pending wake-up: when it fires, and the timer.
    let mut alarm: Option<(DateTime<Utc>, Alarm<'_>)> = None;
    loop {
        while let Some((id, command)) = ctx.state_mut(|s| s.commands.pop_front()) {
            handle_command(ctx, input, id, command).await?;
        }
        if ctx.state_mut(|s| std::mem::take(&mut s.idle_to_announce)) {
            record(ctx, &[EventType::SessionIdle]).await?;
        }
        let long =
            ctx.history_length() >= input.timings.history_limit || ctx.continue_as_new_suggested();
        if long
            && ctx.all_handlers_finished()
            && let Some(next) = ctx.state(|s| s.to_continue())
        {
            if let Some((_, timer)) = alarm.as_mut() {
                timer.as_ref().get_ref().cancel();
            }
            ctx.continue_as_new(next, temporalio_sdk::ContinueAsNewOptions::default())?;
        }
        let at = now(ctx);
        refresh_cost(ctx, at)?;
        let next = ctx
            .state(|s| s.next_step(at))
            .map_err(|e| ApplicationFailure::new(format!("pricing failed: {e}")))?;
        match next {
            Next::End(ending) => {
                if let Some((_, timer)) = alarm.as_mut() {
                    timer.as_ref().get_ref().cancel();
                }
                if ending.reason == EndReason::StationFault {
                    // The station may still hold the transaction: stop it, so energy does not
                    // flow unpaid once the fault clears.
                    let _ = station_command(
                        ctx,
                        input,
                        Command::Stop,
                        "remote stop (long fault)".into(),
                    )
                    .await;
                }
                if let Some(at) = ending.closed_at {
                    close_transaction(ctx, at, ending.reason).await?;
                }
                return Ok(ending);
            }
            Next::Stop(reason, due) => {
                let summary = match reason {
                    EndReason::TargetReached => "remote stop (energy target)",
                    _ => "remote stop (hold limit)",
                };
                begin_stop(ctx, input, reason, due, summary).await;
            }
            Next::Resend => resend_stop(ctx, input).await,
            Next::Refresh => request_reading(ctx, input).await,
            Next::TopUp(amount, budget) => top_up(ctx, input, amount, budget).await?,
            Next::Wait { until, summary } => {
                let replace = alarm.as_ref().is_none_or(|(fires, _)| *fires > until);
                if replace {
                    if let Some((_, old)) = alarm.as_mut() {
                        old.as_ref().get_ref().cancel();
                    }
                    let wait = (until - at)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .max(Duration::from_millis(1));
                    let timer = ctx.timer(
                        TimerOptions::builder(wait)
                            .summary(summary.to_owned())
                            .build(),
                    );
                    alarm = Some((until, Box::pin(timer)));
                }
                let seen = ctx.state(|s| s.wake);
                let woken = ctx.wait_condition(move |s| s.wake != seen);
                futures::pin_mut!(woken);
                let mut fired = false;
                if let Some((_, timer)) = alarm.as_mut() {
                    temporalio_sdk::workflows::select! {
                        result = woken => result?,
                        _ = timer.as_mut() => fired = true,
                    }
                }
                if fired {
                    alarm = None;
                }
            }
        }
    }
}

/// Records in the registry that the transaction ended at `at` on its last reading, so the
/// connector's later reports no longer reach this session.
async fn close_transaction(
    ctx: &WorkflowContext<SessionWorkflow>,
    at: DateTime<Utc>,
    reason: EndReason,
) -> WorkflowResult<()> {
    let Some((transaction, meter_stop_wh)) = ctx.state(|s| {
        let register = s.live.as_ref().map_or(0, |l| l.register_until(at));
        s.transaction().map(|tx| (tx, register))
    }) else {
        return Ok(());
    };
    ctx.execute_activity(
        contracts::CloseTransaction,
        CloseTransactionInput {
            transaction,
            meter_stop_wh,
            at,
            reason: format!("chargelink:{}", reason.as_str()),
        },
        options::store(format!("close transaction ({})", reason.as_str())),
    )
    .await
    .map_err(|e| activity_failed("close_transaction", e))
}

impl SessionWorkflow {
    /// The charging loop's next step, from the state at `at` (pure, so it replays the same).
    pub(super) fn next_step(&self, at: DateTime<Utc>) -> Result<Next, PricingError> {
        let t = &self.input.timings;
        if let Some(stopped) = &self.stopped {
            return Ok(Next::End(self.station_ending(stopped)));
        }
        if let Some(lost) = self.lost {
            let due = lost.noticed_at + to_chrono(t.stop_confirm_timeout);
            if at >= due {
                return Ok(Next::End(Ending {
                    reason: EndReason::StationReset,
                    closed_at: Some(self.close_point(lost.reported_at)),
                }));
            }
            return Ok(Next::Wait {
                until: due,
                summary: "await StopTransaction after the station lost the transaction",
            });
        }
        let fault_due = self
            .fault
            .map(|f| (f.since, f.noticed_at + to_chrono(t.fault_grace)));
        if let Some((since, due)) = fault_due
            && at >= due
        {
            let start = self.started.as_ref().map_or(since, |s| s.timestamp);
            return Ok(Next::End(Ending {
                reason: EndReason::StationFault,
                closed_at: Some(since.max(start)),
            }));
        }
        let next = match self.stop_request {
            Some(request) => {
                let due = request.last_sent + to_chrono(t.stop_confirm_timeout);
                if at < due {
                    Next::Wait {
                        until: due,
                        summary: "await StopTransaction",
                    }
                } else if request.attempts < t.stop_attempts {
                    Next::Resend
                } else {
                    // Never confirmed: end on the last meter values rather than keep the hold
                    // (and the driver's money) waiting forever.
                    Next::End(Ending {
                        reason: EndReason::StationUnresponsive,
                        closed_at: Some(self.close_point(None)),
                    })
                }
            }
            None => self.hold_step(at)?,
        };
        Ok(match (next, fault_due) {
            (Next::Wait { until, .. }, Some((_, due))) if due < until => Next::Wait {
                until: due,
                summary: "fault grace",
            },
            (next, _) => next,
        })
    }

    /// The power auto-stop assumes: the connector's maximum, or the latest reading if higher.
    pub(super) fn assumed_power_w(&self) -> i64 {
        let reported = self
            .live
            .as_ref()
            .and_then(LiveCost::projection_power_w)
            .unwrap_or(0);
        self.input.max_power_w.unwrap_or(0).max(reported)
    }

    /// The stop deadline seen from `at` (`None`: beyond the look-ahead horizon).
    pub(super) fn stop_deadline(
        &self,
        live: &LiveCost,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, PricingError> {
        let limit = self.capturable.unwrap_or(self.input.authorized_amount);
        live.stop_deadline(
            at,
            limit,
            self.assumed_power_w(),
            to_chrono(self.input.timings.stop_latency),
            to_chrono(DEADLINE_HORIZON),
        )
    }

    /// The earlier of the stop deadline (the hold) and the energy target's deadline, with the
    /// end reason it gives; `None`: neither within the look-ahead horizon.
    pub(super) fn auto_stop(
        &self,
        live: &LiveCost,
        at: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, EndReason)>, PricingError> {
        let hold = self.stop_deadline(live, at)?;
        // At the power the readings show, not the worst case: a target is what the driver wants
        // delivered, so stopping early by the stop latency at full power would short them.
        let target = self.energy_target_wh.and_then(|wh| {
            live.energy_deadline(
                at,
                wh,
                live.projection_power_w().unwrap_or(0),
                to_chrono(self.input.timings.stop_latency),
            )
        });
        Ok(match (hold, target) {
            (Some(h), Some(e)) if e < h => Some((e, EndReason::TargetReached)),
            (None, Some(e)) => Some((e, EndReason::TargetReached)),
            (h, _) => h.map(|h| (h, EndReason::HoldLimit)),
        })
    }

    /// The next total to raise the hold to, while top-up may still ask: the hold plus a step,
    /// never above the ceiling; `None` once refused or at the ceiling.
    pub(super) fn top_up_amount(&self) -> Option<Money> {
        // Stripe allows 10 attempts per PaymentIntent, declines included.
        let top_up = self
            .top_up
            .filter(|_| !self.top_up_over && self.top_up_attempts < 10)?;
        let hold = self.capturable.unwrap_or(self.input.authorized_amount);
        if top_up.ceiling.currency != hold.currency || top_up.step.currency != hold.currency {
            return None;
        }
        let next = hold
            .amount
            .saturating_add(top_up.step.amount.max(1))
            .min(top_up.ceiling.amount);
        (next > hold.amount).then(|| Money::new(next, hold.currency))
    }

    /// Before any stop: wait for the stop deadline, ask for a fresh reading before it, or stop.
    /// With top-up, the hold is raised first, early enough that a refusal (or no answer) still
    /// leaves the stop on time.
    fn hold_step(&self, at: DateTime<Utc>) -> Result<Next, PricingError> {
        let next = self.hold_step_v1(at)?;
        let Some(amount) = self.top_up_amount() else {
            return Ok(next);
        };
        let Some(live) = &self.live else {
            return Ok(next);
        };
        let Some((deadline, EndReason::HoldLimit)) = self.auto_stop(live, at)? else {
            return Ok(next);
        };
        if deadline <= at {
            return Ok(next);
        }
        let ask_at = deadline - top_up_lead();
        if at >= ask_at {
            // A reading may bring the deadline closer than the lead: the increment then gets
            // what is left, or is not asked at all and the hold stops as it is.
            let left = (deadline - at - to_chrono(TOP_UP_MARGIN))
                .to_std()
                .unwrap_or(Duration::ZERO);
            let budget = left.min(options::INCREMENT_PAYMENT_TIMEOUT);
            if budget >= MIN_TOP_UP_BUDGET {
                return Ok(Next::TopUp(amount, budget));
            }
            return Ok(next);
        }
        Ok(match next {
            Next::Wait { until, .. } if until > ask_at => Next::Wait {
                until: ask_at,
                summary: "raise the hold before the stop deadline",
            },
            next => next,
        })
    }

    /// Before any stop, without top-up: wait for the stop deadline, ask for a fresh reading
    /// before it, or stop.
    fn hold_step_v1(&self, at: DateTime<Utc>) -> Result<Next, PricingError> {
        let t = &self.input.timings;
        let horizon = at + to_chrono(DEADLINE_HORIZON);
        let Some(live) = &self.live else {
            return Ok(Next::Wait {
                until: at + to_chrono(t.meter_interval),
                summary: "cost check",
            });
        };
        let Some((deadline, reason)) = self.auto_stop(live, at)? else {
            return Ok(Next::Wait {
                until: horizon,
                summary: "cost check",
            });
        };
        if deadline <= at {
            return Ok(Next::Stop(reason, deadline));
        }
        let lead = reading_lead(t);
        let read_at = deadline - lead;
        let seen = self.last_reading_seen.unwrap_or(at);
        let periodic_too_late = seen + to_chrono(t.meter_interval) > read_at;
        let asked_since = self.last_refresh.is_some_and(|r| r >= seen);
        if periodic_too_late && !asked_since {
            if at < read_at {
                return Ok(Next::Wait {
                    until: read_at,
                    summary: "fresh reading before the stop deadline",
                });
            }
            if at - seen >= lead {
                return Ok(Next::Refresh);
            }
        }
        Ok(Next::Wait {
            until: deadline,
            summary: "stop deadline",
        })
    }

    /// Why the station's StopTransaction ended the session.
    fn station_ending(&self, stopped: &ChargingStopped) -> Ending {
        let reason = stopped.reason.as_deref();
        let reason = match (reason, self.stop_request) {
            (Some("Reboot" | "PowerLoss" | "HardReset" | "SoftReset"), _) => {
                EndReason::StationReset
            }
            (_, Some(request)) => request.reason,
            (Some("EVDisconnected"), None) => EndReason::Unplugged,
            _ if self.lost.is_some() => EndReason::StationReset,
            _ => EndReason::Station,
        };
        Ending {
            reason,
            closed_at: None,
        }
    }

    /// Where a transaction the station never closed ends: its last reading (at or before
    /// `until` when given), never after a fault began, never before the start.
    fn close_point(&self, until: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let start = self
            .started
            .as_ref()
            .map_or(DateTime::<Utc>::UNIX_EPOCH, |s| s.timestamp);
        let last = self.live.as_ref().and_then(|l| match until {
            Some(until) => l.last_sample_until(until),
            None => l.last_sample_at(),
        });
        let mut at = last.unwrap_or(start).max(start);
        if let Some(fault) = self.fault {
            at = at.min(fault.since.max(start));
        }
        at
    }
}

/// How long before the stop deadline the hold is raised: the increment's whole time budget,
/// retries included, plus a margin for the workflow tasks around it. A refusal or a provider
/// that does not answer still leaves the stop its due time.
fn top_up_lead() -> chrono::Duration {
    to_chrono(options::INCREMENT_PAYMENT_TIMEOUT + TOP_UP_MARGIN)
}

/// Time kept between an increment's budget and the stop deadline, for the workflow tasks
/// that decide and send the stop.
const TOP_UP_MARGIN: Duration = Duration::from_secs(1);

/// Below this, an increment is not worth asking for: the hold stops as it is.
const MIN_TOP_UP_BUDGET: Duration = Duration::from_secs(1);

/// Raises the hold to `amount` (top-up). Raised: the stop deadline moves with the new hold,
/// `payment.authorized_amount` shows it and `session.payment.increased` is recorded. Refused,
/// failed or unanswered within its budget: no more increments, the auto-stop keeps the hold
/// as it is.
async fn top_up(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    amount: Money,
    budget: Duration,
) -> WorkflowResult<()> {
    let Some(intent_id) = ctx.state(|s| s.intent_id.clone()) else {
        ctx.state_mut(|s| s.top_up_over = true);
        return Ok(());
    };
    let attempt = ctx.state_mut(|s| {
        s.top_up_attempts += 1;
        s.top_up_attempts
    });
    let sid = &input.session_id;
    let answer = ctx
        .execute_activity(
            contracts::IncrementPayment,
            IncrementPaymentInput {
                session_id: sid.clone(),
                intent_id,
                amount,
                idempotency_key: contracts::increment_key(sid, attempt),
            },
            options::increment_payment(format!("raise the hold to {amount}"), budget),
        )
        .await;
    // Never above what was asked for (the ceiling bounds what may be captured), and only in
    // the hold's currency; anything else counts as no increment.
    let raised = match answer {
        Ok(IncrementPaymentOutput::Raised { amount_capturable })
            if amount_capturable.currency == amount.currency =>
        {
            Some(Money::new(
                amount_capturable.amount.min(amount.amount),
                amount.currency,
            ))
        }
        Ok(_) | Err(_) => None,
    };
    match raised {
        Some(raised) => {
            let at = now(ctx);
            ctx.state_mut(|s| {
                s.capturable = Some(raised);
                if let Some(p) = s.session.payment.as_mut() {
                    p.authorized_amount = raised.amount;
                    p.updated_at = at;
                }
                s.session.updated_at = at;
                if s.top_up_amount().is_none() {
                    s.top_up_over = true;
                }
            });
            record(ctx, &[EventType::PaymentIncreased]).await
        }
        None => {
            ctx.state_mut(|s| s.top_up_over = true);
            Ok(())
        }
    }
}

/// How long before the stop deadline a fresh reading is asked for: half the stop latency,
/// between half a second and five seconds (a TriggerMessage and its MeterValues round trip).
fn reading_lead(t: &SessionTimings) -> chrono::Duration {
    to_chrono((t.stop_latency / 2).clamp(Duration::from_millis(500), Duration::from_secs(5)))
}

/// Updates the session's cost view to `at`.
pub(super) fn refresh_cost(
    ctx: &WorkflowContext<SessionWorkflow>,
    at: DateTime<Utc>,
) -> WorkflowResult<()> {
    let summary = ctx.state(|s| s.live.as_ref().map(|l| l.cost_at(at)));
    if let Some(summary) = summary {
        let summary =
            summary.map_err(|e| ApplicationFailure::new(format!("pricing failed: {e}")))?;
        ctx.state_mut(|s| s.session.cost = SessionCost::from_summary(&summary));
    }
    Ok(())
}
