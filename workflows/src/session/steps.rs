//! Helpers every phase uses: persisting the session, status, waiting, the workflow clock, finding the station and sending it a command.

use super::*;

pub(super) fn now_of(time: Option<std::time::SystemTime>) -> DateTime<Utc> {
    time.map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

pub(super) fn now(ctx: &WorkflowContext<SessionWorkflow>) -> DateTime<Utc> {
    now_of(ctx.workflow_time())
}

pub(super) fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub(super) fn activity_failed(what: &str, e: impl std::fmt::Display) -> WorkflowTermination {
    ApplicationFailure::new(format!("{what} failed: {e}")).into()
}

#[derive(Debug, Clone)]
pub(super) struct Authorization {
    pub(super) intent_id: String,
    pub(super) capturable: Money,
}

/// Persists the current session with `kinds` events (possibly none).
pub(super) async fn record(
    ctx: &WorkflowContext<SessionWorkflow>,
    kinds: &[EventType],
) -> WorkflowResult<()> {
    let at = now(ctx);
    let (organization, session, events) = ctx.state_mut(|s| {
        let events = s.take_events(kinds, at);
        (s.input.organization.clone(), s.session.clone(), events)
    });
    // What the Temporal UI shows as the workflow's current details (answered from memory by
    // the SDK's metadata query; no command, so nothing for replay to compare).
    ctx.set_current_details(current_details(&session));
    let summary = if kinds.is_empty() {
        format!("save session ({})", session.status.as_str())
    } else {
        kinds
            .iter()
            .map(EventType::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let input = RecordSessionInput {
        organization,
        session,
        events,
    };
    let recorded = if local_store_and_lookup(ctx) {
        ctx.execute_local_activity(
            contracts::RecordSession,
            input,
            options::store_local(summary),
        )
        .await
    } else {
        ctx.execute_activity(contracts::RecordSession, input, options::store(summary))
            .await
    };
    recorded.map_err(|e| activity_failed("record_session", e))
}

/// Whether store writes and station lookups run as local activities (new command shape: behind
/// a patch, so sessions recorded before it replay with regular activities).
fn local_store_and_lookup(ctx: &WorkflowContext<SessionWorkflow>) -> bool {
    ctx.patched(names::PATCH_LOCAL_STORE_AND_LOOKUP)
}

/// The session as last recorded, a Markdown list: status (and why it ended), cost, payment.
pub(super) fn current_details(session: &Session) -> String {
    let mut lines = vec![format!("- Status: {}", session.status.as_str())];
    if let Some(reason) = session.end_reason {
        lines.push(format!("- Ended: {}", reason.as_str()));
    }
    if let (Some(amount), Some(currency)) = (session.cost.amount, session.cost.currency) {
        lines.push(format!("- Cost: {}", Money::new(amount, currency)));
    }
    if let Some(p) = &session.payment {
        let mut line = format!(
            "- Payment: {:?}, hold {}",
            p.status,
            Money::new(p.authorized_amount, p.currency)
        );
        if let Some(captured) = p.captured_amount {
            line.push_str(&format!(", captured {}", Money::new(captured, p.currency)));
        }
        lines.push(line);
    }
    lines.join("\n")
}

/// Moves the session to `status` (and its search attribute).
pub(super) fn set_status(ctx: &WorkflowContext<SessionWorkflow>, status: SessionStatus) {
    ctx.state_mut(|s| s.session.status = status);
    ctx.upsert_search_attributes([SESSION_STATUS.value_set(status.as_str().to_owned())]);
}

/// Waits until `condition` holds or `timeout` passes; `true` if the condition held.
/// The timer is cancelled when the condition wins, so the history says what happened.
pub(super) async fn wait_until(
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

pub(super) fn outcome(
    ctx: &WorkflowContext<SessionWorkflow>,
    captured: Option<Money>,
) -> SessionOutcome {
    ctx.state(|s| SessionOutcome {
        status: s.session.status,
        end_reason: s.session.end_reason,
        captured,
    })
}

/// Finds the gateway queue of the station; `None` when it is offline or the lookup failed.
pub(super) async fn locate(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
) -> Option<String> {
    let lookup = LocateChargeStationInput {
        session_id: input.session_id.clone(),
        charge_station: input.charge_station.clone(),
    };
    let summary = format!("locate {}", input.charge_station);
    let found = if local_store_and_lookup(ctx) {
        ctx.execute_local_activity(
            contracts::LocateChargeStation,
            lookup,
            options::locate_local(summary),
        )
        .await
    } else {
        ctx.execute_activity(
            contracts::LocateChargeStation,
            lookup,
            options::locate(summary),
        )
        .await
    };
    found.ok().and_then(|l| l.task_queue)
}

/// Sends `command` to the station on its gateway's queue.
pub(super) async fn station_command(
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
