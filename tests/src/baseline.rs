//! The fleet benchmark's baseline: what Temporal alone costs for a session's shape. A bare
//! workflow runs the same activities, signals, updates and timers as a paid session that
//! charges and is stopped (three activities before `POST /sessions` answers, two to start,
//! one re-armed deadline timer per meter value, four to stop and settle), with activities that
//! do nothing (store writes and the station lookup as local activities, as the session runs
//! them). A session run next to it on the same dev server, divided by this run, is what
//! chargelink's own work (store, Stripe, API, gateway) costs above the engine.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowSignalOptions, WorkflowUpdateWithStartOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityOptions, LocalActivityOptions, SyncWorkflowContext, TimerOptions, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

/// How a bare session is created and what it waits for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BareInput {
    /// Seconds the "payment page" waits before the session ends unpaid.
    pub payment_expiry_s: u64,
    /// Seconds between meter values the deadline timer assumes.
    pub meter_interval_s: u64,
}

/// Activities that answer at once.
pub struct BareActivities;

#[activities]
impl BareActivities {
    /// One step of a session (`record`, `create_payment`, `remote_start`, …), done at once.
    #[activity(name = "bare_step")]
    pub async fn step(_ctx: ActivityContext, step: String) -> Result<String, ActivityError> {
        Ok(step)
    }
}

/// A session's shape with nothing behind it.
#[workflow]
pub struct BareSession {
    input: BareInput,
    created: bool,
    paid: bool,
    stop: bool,
    meter_values: u32,
    wake: u64,
}

/// One step, run as the session runs it: store writes (`record`) and the station lookup as
/// local activities, everything else as a regular activity.
async fn step(ctx: &WorkflowContext<BareSession>, name: &str) -> WorkflowResult<()> {
    if matches!(name, "record" | "locate_charge_station") {
        ctx.execute_local_activity(
            BareActivities::step,
            name.to_owned(),
            LocalActivityOptions::builder()
                .start_to_close_timeout(Duration::from_secs(30))
                .build(),
        )
        .await?;
    } else {
        ctx.execute_activity(
            BareActivities::step,
            name.to_owned(),
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30)).build(),
        )
        .await?;
    }
    Ok(())
}

/// Waits until `condition` holds or `timeout` passes (as the session's `wait_until`): whether
/// it held.
async fn wait_until(
    ctx: &WorkflowContext<BareSession>,
    condition: impl FnMut(&BareSession) -> bool,
    timeout: Duration,
) -> WorkflowResult<bool> {
    let timer = ctx.timer(TimerOptions::builder(timeout).build());
    let met = ctx.wait_condition(condition);
    futures::pin_mut!(timer, met);
    temporalio_sdk::workflows::select! {
        result = met => {
            use temporalio_sdk::CancellableFuture as _;
            timer.cancel();
            result?;
            Ok(true)
        }
        _ = timer => Ok(false),
    }
}

#[workflow_methods]
impl BareSession {
    /// A new bare session.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: BareInput) -> Self {
        Self {
            input,
            created: false,
            paid: false,
            stop: false,
            meter_values: 0,
            wake: 0,
        }
    }

    /// Created, paid (or expired), started, charging until stopped, settled. Returns the meter
    /// values it saw.
    #[run(name = "bare_session")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u32> {
        let input = ctx.state(|s| s.input.clone());
        for name in ["record", "create_payment", "record"] {
            step(ctx, name).await?;
        }
        ctx.state_mut(|s| s.created = true);
        let expiry = Duration::from_secs(input.payment_expiry_s);
        if !wait_until(ctx, |s| s.paid, expiry).await? {
            step(ctx, "expire_payment").await?;
            step(ctx, "record").await?;
            return Ok(0);
        }
        for name in ["locate_charge_station", "remote_start", "record"] {
            step(ctx, name).await?;
        }
        // The session's charging loop: every meter value re-arms the stop deadline.
        let deadline = Duration::from_secs(input.meter_interval_s * 6);
        while !ctx.state(|s| s.stop) {
            let seen = ctx.state(|s| s.wake);
            wait_until(ctx, move |s| s.wake != seen, deadline).await?;
        }
        for name in ["remote_stop", "record", "capture_payment", "record"] {
            step(ctx, name).await?;
        }
        Ok(ctx.state(|s| s.meter_values))
    }

    /// Answers once the "payment page" exists (as the session's `created` update).
    #[update(name = "created")]
    pub async fn created(
        ctx: &mut WorkflowContext<Self>,
        _input: (),
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        ctx.wait_condition(|s| s.created).await?;
        Ok(true)
    }

    /// The driver paid.
    #[signal(name = "paid")]
    pub fn paid(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _input: ()) {
        self.paid = true;
        self.wake += 1;
    }

    /// A MeterValues.
    #[signal(name = "meter_values")]
    pub fn meter_value(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _input: u64) {
        self.meter_values += 1;
        self.wake += 1;
    }

    /// The session is to stop.
    #[signal(name = "stop")]
    pub fn stop(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _input: ()) {
        self.stop = true;
        self.wake += 1;
    }
}

/// Creates bare session `id` as `POST /sessions` creates a session: update-with-start, answered
/// once the first three activities ran.
pub async fn create(
    client: &Client,
    task_queue: &str,
    id: &str,
    input: BareInput,
) -> anyhow::Result<()> {
    let options = WorkflowUpdateWithStartOptions::new(
        task_queue.to_owned(),
        id.to_owned(),
        WorkflowIdConflictPolicy::UseExisting,
    )
    .build();
    let handle = client
        .start_update_with_start_workflow(
            BareSession::run,
            input,
            BareSession::created,
            (),
            options,
        )
        .await
        .map_err(|e| anyhow::anyhow!("update-with-start {id}: {e}"))?;
    handle
        .get_result(Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("created {id}: {e}"))?;
    Ok(())
}

/// Signals of a bare session, as the Stripe webhook and the gateway send a session's.
pub struct BareSignals<'a> {
    client: &'a Client,
    id: &'a str,
}

impl<'a> BareSignals<'a> {
    /// Signals for bare session `id`.
    pub fn new(client: &'a Client, id: &'a str) -> Self {
        Self { client, id }
    }

    fn handle(&self) -> temporalio_client::WorkflowHandle<Client, BareSession> {
        self.client
            .get_workflow_handle::<BareSession>(self.id.to_owned())
    }

    /// The driver paid.
    pub async fn paid(&self) -> anyhow::Result<()> {
        self.handle()
            .signal(BareSession::paid, (), WorkflowSignalOptions::default())
            .await
            .map_err(|e| anyhow::anyhow!("paid {}: {e}", self.id))
    }

    /// Meter value number `n`.
    pub async fn meter_value(&self, n: u64) -> anyhow::Result<()> {
        self.handle()
            .signal(
                BareSession::meter_value,
                n,
                WorkflowSignalOptions::default(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("meter value {}: {e}", self.id))
    }

    /// Stop.
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.handle()
            .signal(BareSession::stop, (), WorkflowSignalOptions::default())
            .await
            .map_err(|e| anyhow::anyhow!("stop {}: {e}", self.id))
    }
}
