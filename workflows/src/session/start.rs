//! Step 3: RemoteStart attempts inside the start window; releasing the hold when none starts.

use super::*;

/// Step 3: RemoteStart attempts with backoff until the station starts or the window closes.
pub(super) async fn start_charging(
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
pub(super) async fn cancel_unstarted(
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
