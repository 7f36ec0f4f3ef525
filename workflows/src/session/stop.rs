//! Stopping: the RemoteStop chargelink sends (first for a reason, then again until the
//! station confirms), what the station answered, and fresh readings before a stop decision.

use super::*;

/// Sends RemoteStop and returns what the station answered.
async fn remote_stop(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    summary: &str,
) -> StationAnswer {
    let Some(tx) = ctx.state(|s| s.transaction()) else {
        return StationAnswer::Unreachable;
    };
    let Some(queue) = gateway_queue(ctx, input).await else {
        return StationAnswer::Unreachable;
    };
    let reply = ctx
        .execute_activity(
            contracts::RemoteStop,
            tx,
            options::charger_command(queue, summary.to_owned(), 3),
        )
        .await;
    if reply.is_err() {
        ctx.state_mut(|s| s.gateway_queue = None);
    }
    match reply {
        Ok(r) if r.accepted => StationAnswer::Accepted,
        Ok(r) if r.no_transaction => StationAnswer::NoTransaction,
        Ok(_) => StationAnswer::Rejected,
        Err(_) => StationAnswer::Unreachable,
    }
}

impl SessionWorkflow {
    /// Records a stop attempt and its answer; "no such transaction" means the station lost it.
    fn stop_answered(&mut self, at: DateTime<Utc>, answer: StationAnswer) {
        if let (Some(request), Some(stop)) = (self.stop_request, self.session.stop.as_mut()) {
            stop.attempts = request.attempts;
            stop.station_answer = answer;
        }
        if answer == StationAnswer::NoTransaction {
            self.lost.get_or_insert(LostTransaction {
                noticed_at: at,
                reported_at: None,
            });
        }
    }
}

/// The first stop, for `reason`.
pub(super) async fn begin_stop(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
    reason: EndReason,
    due: DateTime<Utc>,
    summary: &str,
) {
    let answer = remote_stop(ctx, input, summary).await;
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.stop_request = Some(StopRequest {
            reason,
            attempts: 1,
            last_sent: at,
        });
        s.session.stop = Some(StopState {
            reason,
            requested_at: at,
            due_at: Some(due),
            attempts: 1,
            station_answer: answer,
        });
        s.stop_answered(at, answer);
    });
}

/// The stop again: the station refused, was unreachable, or did not confirm in time.
pub(super) async fn resend_stop(ctx: &WorkflowContext<SessionWorkflow>, input: &SessionInput) {
    let answer = remote_stop(ctx, input, "remote stop (retry)").await;
    let at = now(ctx);
    ctx.state_mut(|s| {
        if let Some(r) = s.stop_request.as_mut() {
            r.attempts += 1;
            r.last_sent = at;
        }
        s.stop_answered(at, answer);
    });
}

/// Asks the station for a fresh meter reading (best effort: without it the deadline stands).
pub(super) async fn request_reading(ctx: &WorkflowContext<SessionWorkflow>, input: &SessionInput) {
    let at = now(ctx);
    ctx.state_mut(|s| s.last_refresh = Some(at));
    let Some(tx) = ctx.state(|s| s.transaction()) else {
        return;
    };
    let Some(queue) = gateway_queue(ctx, input).await else {
        return;
    };
    let reply = ctx
        .execute_activity(
            contracts::RequestMeterValues,
            tx,
            options::charger_command(queue, "fresh meter reading".into(), 1),
        )
        .await;
    if reply.is_err() {
        ctx.state_mut(|s| s.gateway_queue = None);
    }
}

/// The gateway holding the station, as last found: the stop must not wait for a lookup on
/// its way out. Looked up again when unknown or after a command failed (the station may have
/// moved to another gateway).
async fn gateway_queue(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
) -> Option<String> {
    if let Some(queue) = ctx.state(|s| s.gateway_queue.clone()) {
        return Some(queue);
    }
    let found = locate(ctx, input).await;
    ctx.state_mut(|s| s.gateway_queue.clone_from(&found));
    found
}
