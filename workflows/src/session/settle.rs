//! Step 5: the final cost (never above the hold), `session.ended`, then capture or release.

use super::*;

/// Step 5: final cost (never above the hold), `session.ended`, then capture or release.
pub(super) async fn settle(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    authorization: &Authorization,
    ending: Ending,
) -> WorkflowResult<SessionOutcome> {
    let sid = &input.session_id;
    let (summary, ended_at) = ctx
        .state_mut(|s| {
            let stopped = s.stopped.clone();
            let live = s.live.as_mut()?;
            Some(match (ending.closed_at, stopped) {
                (Some(at), _) => (live.close(at), at),
                (None, Some(st)) => (live.finish(st.timestamp, st.meter_stop_wh), st.timestamp),
                (None, None) => return None,
            })
        })
        .ok_or_else(|| ApplicationFailure::new("no running cost at the end of the session"))?;
    let summary = summary.map_err(|e| ApplicationFailure::new(format!("pricing failed: {e}")))?;
    // The hold as it stands: raised by top-up, else the one the driver authorized.
    let hold = ctx
        .state(|s| s.capturable)
        .unwrap_or(authorization.capturable);
    let owed = summary
        .amount
        .checked_min(hold)
        .map_err(|e| ApplicationFailure::new(format!("final cost: {e}")))?
        .amount
        .max(0);
    let owed = Money::new(owed, hold.currency);

    let reason = ending.reason;
    ctx.state_mut(|s| {
        let mut cost = SessionCost::from_summary(&summary);
        cost.amount = Some(owed.amount);
        s.session.cost = cost;
        s.session.end_reason = Some(reason);
        s.session.ended_at = Some(ended_at);
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
