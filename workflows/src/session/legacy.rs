//! The charging loop as it ran before `charge-v2` (deadline stops, station resets, faults,
//! fresh readings). Frozen: sessions that started charging on the old code replay through it,
//! so nothing in this file may change. New behaviour goes into `charging` and `stop`.

use super::*;

/// Runs one queued pause / resume / stop and answers it.
pub(super) async fn handle_command_v1(
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

/// Charging until StopTransaction; stops when the cost projected one meter interval plus the
/// stop latency ahead reaches the hold.
pub(super) async fn charge_v1(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
) -> WorkflowResult<Ending> {
    let t = &input.timings;
    loop {
        while let Some((id, command)) = ctx.state_mut(|s| s.commands.pop_front()) {
            handle_command_v1(ctx, input, id, command).await?;
        }
        if ctx.state(|s| s.stopped.is_some()) {
            return Ok(ending_v1(ctx));
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
                send_stop_v1(ctx, input, "remote stop (hold limit)").await;
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
                    send_stop_v1(ctx, input, "remote stop (retry)").await;
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
                    return Ok(ending_v1(ctx));
                }
            }
        };
        let seen = ctx.state(|s| s.wake);
        wait_until(ctx, move |s| s.wake != seen, next_check, "cost check").await?;
    }
}

/// Sends (or re-sends) the remote stop and counts the attempt.
pub(super) async fn send_stop_v1(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    summary: &str,
) {
    let _ = station_command(ctx, input, Command::Stop, summary.to_owned()).await;
    let at = now(ctx);
    ctx.state_mut(|s| {
        if let Some(r) = s.stop_request.as_mut() {
            r.attempts += 1;
            r.last_sent = at;
        }
    });
}

/// Why a session of the old loop ended: the stop chargelink asked for, else the station's.
fn ending_v1(ctx: &WorkflowContext<SessionWorkflow>) -> Ending {
    ctx.state(|s| {
        let reason = match (
            s.stop_request.map(|r| r.reason),
            s.stopped.as_ref().and_then(|st| st.reason.as_deref()),
        ) {
            (Some(reason), _) => reason,
            (None, Some("EVDisconnected")) => EndReason::Unplugged,
            (None, _) => EndReason::Station,
        };
        Ending {
            reason,
            closed_at: None,
        }
    })
}
