//! The session workflow against a real Temporal dev server (started once for this binary), with
//! recording activities standing in for Stripe, the store and the charge station. Every scenario
//! of the payment-links spec, plus a worker killed mid-session.
//!
//! `CHARGELINK_RECORD_HISTORIES=1` writes each scenario's history to
//! `workflows/tests/histories/`, where the replay test guards running sessions against changes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chargelink_tests::devserver::{DevServer, connect};
use chargelink_tests::fixtures::{
    HAPPY_PATH_EVENTS, PAID_SESSION_EVENTS, component, fast_timings, random_body, rate,
    session_input,
};
use chargelink_tests::recording::{Behaviour, Entry, Recorder, read_journal};
use chrono::Utc;
use domain::money::{Currency, Money};
use domain::pricing::MeterSample;
use domain::rate::Dimension;
use domain::session::{EndReason, PaymentStatus, Session, SessionStatus, StationAnswer};
use futures::StreamExt;
use libtest_mimic::{Arguments, Failed, Trial};
use temporalio_client::{
    Client, WorkflowExecutionInfo, WorkflowGetResultOptions, WorkflowHistory, WorkflowListOptions,
};
use temporalio_common::protos::temporal::api::history::v1::{
    History, HistoryEvent, history_event::Attributes,
};
use temporalio_sdk::{Worker, WorkerOptions};
use tokio::runtime::Runtime as Tokio;
use url::Url;
use workflows::client::{SessionClient, SessionClientError};
use workflows::messages::{
    ChargingStarted, ChargingStopped, CommandErrorCode, ConnectorState, ConnectorStatus,
    MeterValues, PaymentAuthorized, PaymentClosed, SessionOutcome,
};
use workflows::{SessionInput, SessionWorkflow, TopUp};

struct Env {
    tokio: Tokio,
    temporal: temporalio_sdk::Runtime,
    server: Url,
    journals: PathBuf,
}

/// What a scenario works with.
struct Scenario {
    name: &'static str,
    client: Client,
    sessions: SessionClient,
    journal: PathBuf,
    task_queue: String,
}

impl Scenario {
    fn journal(&self) -> Vec<Entry> {
        read_journal(&self.journal)
    }

    fn calls(&self, activity: &str) -> Vec<Entry> {
        self.journal()
            .into_iter()
            .filter(|e| e.activity == activity)
            .collect()
    }

    /// Waits until `activity` has been called `n` times.
    async fn await_calls(&self, activity: &str, n: usize) -> anyhow::Result<Vec<Entry>> {
        for _ in 0..150 {
            let calls = self.calls(activity);
            if calls.len() >= n {
                return Ok(calls);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{activity} was not called {n} time(s); journal: {:?}",
            self.journal()
                .iter()
                .map(|e| &e.activity)
                .collect::<Vec<_>>()
        )
    }

    /// Event types in the order they were recorded (de-duplicated by event id).
    fn events(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for e in self.calls("record_session") {
            for ev in e.detail["events"].as_array().cloned().unwrap_or_default() {
                if seen.insert(ev["id"].as_str().unwrap_or_default().to_owned()) {
                    out.push(ev["type"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        out
    }

    /// The last session state the workflow persisted.
    fn last_saved(&self) -> anyhow::Result<Session> {
        let last = self
            .calls("record_session")
            .pop()
            .context("nothing recorded")?;
        Ok(serde_json::from_value(last.detail["session"].clone())?)
    }

    async fn outcome(&self, input: &SessionInput) -> anyhow::Result<SessionOutcome> {
        let handle = self
            .client
            .get_workflow_handle::<SessionWorkflow>(input.session_id.to_string());
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .context("session did not finish in 30 s")??;
        self.save_history(input).await?;
        Ok(outcome)
    }

    /// [`Self::outcome`] without recording the history (for sessions too long to commit).
    async fn outcome_unrecorded(&self, input: &SessionInput) -> anyhow::Result<SessionOutcome> {
        let handle = self
            .client
            .get_workflow_handle::<SessionWorkflow>(input.session_id.to_string());
        Ok(tokio::time::timeout(
            Duration::from_secs(120),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .context("session did not finish in 120 s")??)
    }

    async fn save_history(&self, input: &SessionInput) -> anyhow::Result<()> {
        if std::env::var_os("CHARGELINK_RECORD_HISTORIES").is_none() {
            return Ok(());
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows/tests/histories/v5");
        std::fs::create_dir_all(&dir)?;
        let runs = self.runs(input).await?;
        let many = runs.len() > 1;
        for (n, events) in runs.into_iter().enumerate() {
            let json = WorkflowHistory::from(History { events }).to_json().await?;
            let name = if many {
                format!("session-{}-run{}.json", self.name, n + 1)
            } else {
                format!("session-{}.json", self.name)
            };
            std::fs::write(dir.join(name), json)?;
        }
        Ok(())
    }

    /// Every run of the session's workflow, first to last, with its history: the chain of
    /// continue-as-new, followed back from the latest run.
    async fn runs(&self, input: &SessionInput) -> anyhow::Result<Vec<Vec<HistoryEvent>>> {
        let mut runs = Vec::new();
        let mut run: Option<String> = None;
        loop {
            let events = WorkflowExecutionInfo::builder()
                .namespace("default")
                .workflow_id(input.session_id.to_string())
                .maybe_run_id(run.clone())
                .build()
                .bind_untyped(self.client.clone())
                .fetch_history(Default::default())
                .into_events()
                .await?;
            let previous = events.first().and_then(|e| match &e.attributes {
                Some(Attributes::WorkflowExecutionStartedEventAttributes(a))
                    if !a.continued_execution_run_id.is_empty() =>
                {
                    Some(a.continued_execution_run_id.clone())
                }
                _ => None,
            });
            runs.push(events);
            match previous {
                Some(p) => run = Some(p),
                None => break,
            }
        }
        runs.reverse();
        Ok(runs)
    }

    /// Creates a session and authorizes its payment.
    async fn authorized(&self, input: &SessionInput) -> anyhow::Result<Session> {
        let session = self.sessions.start(input.clone()).await?;
        self.sessions
            .payment_authorized(
                &input.session_id,
                PaymentAuthorized {
                    intent_id: "pi_test_1".into(),
                    amount_capturable: input.authorized_amount,
                },
            )
            .await?;
        Ok(session)
    }

    /// Creates, authorizes and starts a session (transaction 7, register at `meter_start`).
    async fn charging(
        &self,
        input: &SessionInput,
        meter_start: i64,
        at: chrono::DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.authorized(input).await?;
        self.await_calls("remote_start", 1).await?;
        let started = ChargingStarted {
            transaction_id: 7,
            meter_start_wh: meter_start,
            timestamp: at,
        };
        self.sessions
            .charging_started(&input.session_id, started)
            .await?;
        self.await_status(input, SessionStatus::Started).await
    }

    async fn meter(
        &self,
        input: &SessionInput,
        energy_wh: i64,
        power_w: i64,
    ) -> anyhow::Result<()> {
        let samples = vec![MeterSample::new(Utc::now(), energy_wh, Some(power_w))];
        Ok(self
            .sessions
            .meter_values(
                &input.session_id,
                MeterValues {
                    transaction_id: 7,
                    samples,
                },
            )
            .await?)
    }

    async fn meter_at(
        &self,
        input: &SessionInput,
        at: chrono::DateTime<Utc>,
        energy_wh: i64,
        power_w: i64,
    ) -> anyhow::Result<()> {
        let samples = vec![MeterSample::new(at, energy_wh, Some(power_w))];
        Ok(self
            .sessions
            .meter_values(
                &input.session_id,
                MeterValues {
                    transaction_id: 7,
                    samples,
                },
            )
            .await?)
    }

    async fn status(
        &self,
        input: &SessionInput,
        status: ConnectorState,
        timestamp: chrono::DateTime<Utc>,
    ) -> anyhow::Result<()> {
        Ok(self
            .sessions
            .connector_status(&input.session_id, ConnectorStatus { status, timestamp })
            .await?)
    }

    async fn station_stops(
        &self,
        input: &SessionInput,
        meter_stop: i64,
        reason: &str,
    ) -> anyhow::Result<()> {
        let stopped = ChargingStopped {
            transaction_id: 7,
            meter_stop_wh: meter_stop,
            timestamp: Utc::now(),
            reason: Some(reason.into()),
        };
        Ok(self
            .sessions
            .charging_stopped(&input.session_id, stopped)
            .await?)
    }

    async fn await_status(
        &self,
        input: &SessionInput,
        status: SessionStatus,
    ) -> anyhow::Result<()> {
        for _ in 0..100 {
            if self.sessions.session(&input.session_id).await?.status == status {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("session never became {}", status.as_str())
    }
}

/// Runs `body` with a worker (recording activities, `behaviour`) on a fresh task queue.
fn scenario<F, Fut>(
    env: &Env,
    name: &'static str,
    behaviour: Behaviour,
    body: F,
) -> Result<(), Failed>
where
    F: FnOnce(Arc<Scenario>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    env.tokio
        .block_on(async {
            let client = connect(&env.server).await?;
            let task_queue = format!("test-{name}-{}", random_body());
            let journal = env.journals.join(format!("{task_queue}.jsonl"));
            let options = WorkerOptions::new(task_queue.clone())
                .register_workflow::<SessionWorkflow>()?
                .register_activities(Recorder::new(
                    journal.clone(),
                    behaviour,
                    task_queue.clone(),
                ))
                .graceful_shutdown_period(Duration::from_secs(2))
                .build();
            let mut worker = Worker::new(&env.temporal, client.clone(), options)?;
            let shutdown = worker.shutdown_handle();
            let sessions = SessionClient::new(client.clone(), task_queue.clone());
            let sc = Arc::new(Scenario {
                name,
                client,
                sessions,
                journal,
                task_queue,
            });
            let test = async {
                let result = body(sc).await;
                shutdown();
                result
            };
            let (worker, result) = tokio::join!(worker.run(), test);
            result?;
            worker?;
            Ok::<_, anyhow::Error>(())
        })
        .map_err(|e: anyhow::Error| Failed::from(format!("{e:#}")))
}

fn energy_rate() -> domain::rate::Rate {
    rate(vec![component(Dimension::Energy, "0.30", None)])
}

async fn paid_and_charged_with_partial_capture(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input("CP-HAPPY", energy_rate(), 1800, fast_timings())?;

    // Arrange / Act: create answers synchronously with the payment page.
    let created = sc.sessions.start(input.clone()).await?;
    let payment = created
        .payment
        .clone()
        .context("created session has no payment")?;
    ensure!(created.status == SessionStatus::Created);
    ensure!(
        payment
            .url
            .starts_with("https://pay.test/checkout/cs_test_"),
        "payment url {}",
        payment.url
    );
    ensure!(payment.authorized_amount == 1800 && payment.currency == Currency::USD);
    ensure!(payment.status == PaymentStatus::Created && payment.kind == "anonymous");
    let create = sc.calls("create_payment");
    ensure!(
        create.len() == 1
            && create[0].detail["idempotency_key"]
                == format!("{}:create_payment", input.session_id)
    );
    // Top-up off (the default): the page asks for nothing more than before.
    ensure!(
        create[0].detail.get("incremental").is_none(),
        "{:?}",
        create[0].detail
    );
    // Retrying the create with the same session id attaches to the same session.
    let again = sc.sessions.start(input.clone()).await?;
    ensure!(again.payment.as_ref().map(|p| &p.url) == Some(&payment.url));
    ensure!(
        sc.calls("create_payment").len() == 1,
        "a retried create must not create a second payment"
    );

    sc.charging(&input, 1_000, Utc::now()).await?;
    let start = sc.calls("remote_start");
    ensure!(
        start[0].detail["id_tag"]
            .as_str()
            .is_some_and(|t| t.len() <= 20 && t.starts_with("CL"))
    );
    sc.meter(&input, 11_000, 7_000).await?;
    let mut live = sc.sessions.session(&input.session_id).await?;
    for _ in 0..50 {
        if live.cost.amount == Some(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        live = sc.sessions.session(&input.session_id).await?;
    }
    ensure!(
        live.cost.amount == Some(300),
        "10 kWh at 0.30 = 300 cents, got {:?}",
        live.cost.amount
    );

    // The driver unplugs: 20 kWh in all.
    sc.station_stops(&input, 21_000, "EVDisconnected").await?;
    let outcome = sc.outcome(&input).await?;

    // Assert: partial capture of the cost, rest released, every event in order.
    ensure!(
        outcome.captured == Some(Money::new(600, Currency::USD)),
        "captured {:?}",
        outcome.captured
    );
    ensure!(outcome.end_reason == Some(EndReason::Unplugged));
    let captures = sc.calls("capture_payment");
    ensure!(
        captures.len() == 1,
        "exactly one capture, got {}",
        captures.len()
    );
    ensure!(captures[0].detail["idempotency_key"] == format!("{}:capture", input.session_id));
    ensure!(captures[0].detail["intent_id"] == "pi_test_1");
    ensure!(
        sc.calls("increment_payment").is_empty(),
        "top-up off: the hold is never raised"
    );
    ensure!(sc.calls("cancel_payment").is_empty());
    ensure!(
        sc.events() == PAID_SESSION_EVENTS,
        "events: {:?}",
        sc.events()
    );
    let saved = sc.last_saved()?;
    ensure!(saved.status == SessionStatus::Ended && saved.cost.amount == Some(600));
    let saved_payment = saved.payment.context("payment")?;
    ensure!(
        saved_payment.status == PaymentStatus::Captured
            && saved_payment.captured_amount == Some(600)
    );

    // An operator finds the session by id, charge station and status.
    let query = format!(
        "WorkflowId = '{}' AND ChargeStation = 'CP-HAPPY' AND SessionStatus = 'ended' AND Organization = 'org_test'",
        input.session_id
    );
    for _ in 0..50 {
        let found = sc
            .client
            .list_workflows(query.clone(), WorkflowListOptions::default())
            .collect::<Vec<_>>()
            .await;
        if found.iter().filter(|r| r.is_ok()).count() == 1 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("visibility query found nothing: {query}")
}

async fn payment_expired(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input("CP-EXPIRE", energy_rate(), 1800, fast_timings())?;
    sc.sessions.start(input.clone()).await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.status == SessionStatus::Expired
            && outcome.end_reason == Some(EndReason::PaymentExpired)
    );
    // The provider is asked before giving up (late webhook), then the page is expired.
    ensure!(sc.calls("retrieve_payment").len() == 1 && sc.calls("expire_payment").len() == 1);
    ensure!(sc.calls("remote_start").is_empty() && sc.calls("capture_payment").is_empty());
    ensure!(
        sc.events()
            == [
                "session.created",
                "session.payment.created",
                "session.payment.expired"
            ],
        "{:?}",
        sc.events()
    );
    ensure!(sc.last_saved()?.payment.context("payment")?.status == PaymentStatus::Expired);
    Ok(())
}

async fn authorization_found_by_poll_when_webhook_is_lost(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input("CP-POLL", energy_rate(), 1800, fast_timings())?;
    sc.sessions.start(input.clone()).await?;
    // No webhook ever arrives; the expiry poll finds the hold.
    sc.await_calls("remote_start", 1).await?;
    ensure!(
        sc.calls("expire_payment").is_empty(),
        "an authorized payment must not be expired"
    );
    let started = ChargingStarted {
        transaction_id: 7,
        meter_start_wh: 0,
        timestamp: Utc::now(),
    };
    sc.sessions
        .charging_started(&input.session_id, started)
        .await?;
    sc.station_stops(&input, 2_000, "Local").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.captured == Some(Money::new(60, Currency::USD)),
        "{outcome:?}"
    );
    let captures = sc.calls("capture_payment");
    ensure!(
        captures.len() == 1
            && captures[0].detail["intent_id"]
                .as_str()
                .is_some_and(|i| i.starts_with("pi_test_"))
    );
    Ok(())
}

async fn driver_cancelled(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input("CP-CANCEL", energy_rate(), 1800, fast_timings())?;
    sc.sessions.start(input.clone()).await?;
    sc.sessions
        .payment_canceled(
            &input.session_id,
            PaymentClosed {
                reason: "driver pressed cancel".into(),
            },
        )
        .await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.status == SessionStatus::Canceled
            && outcome.end_reason == Some(EndReason::DriverCanceled)
    );
    ensure!(
        sc.calls("expire_payment").len() == 1,
        "the page must be closed at the provider"
    );
    ensure!(sc.calls("remote_start").is_empty());
    ensure!(
        sc.events()
            == [
                "session.created",
                "session.payment.created",
                "session.canceled"
            ],
        "{:?}",
        sc.events()
    );
    Ok(())
}

async fn no_start(sc: Arc<Scenario>, station: &str) -> anyhow::Result<()> {
    let input = session_input(station, energy_rate(), 1800, fast_timings())?;
    sc.authorized(&input).await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.status == SessionStatus::Canceled
            && outcome.end_reason == Some(EndReason::StartFailed),
        "{outcome:?}"
    );
    ensure!(
        sc.calls("remote_start").len() >= 2,
        "several start attempts, got {}",
        sc.calls("remote_start").len()
    );
    let cancels = sc.calls("cancel_payment");
    ensure!(
        cancels.len() == 1
            && cancels[0].detail["idempotency_key"] == format!("{}:cancel", input.session_id)
    );
    ensure!(sc.calls("capture_payment").is_empty());
    ensure!(
        sc.events()
            == [
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.canceled",
                "session.payment.canceled"
            ],
        "{:?}",
        sc.events()
    );
    Ok(())
}

async fn every_start_attempt_refused(sc: Arc<Scenario>) -> anyhow::Result<()> {
    no_start(sc, "CP-REFUSE").await
}

async fn authorized_but_never_plugged_in(sc: Arc<Scenario>) -> anyhow::Result<()> {
    no_start(sc, "CP-NOPLUG").await
}

async fn pause_and_resume(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input("CP-PAUSE", energy_rate(), 1800, fast_timings())?;
    // Pausing before charging is a clear error.
    sc.sessions.start(input.clone()).await?;
    match sc.sessions.pause(&input.session_id).await {
        Err(SessionClientError::Refused(e)) if e.code == CommandErrorCode::NotCharging => {}
        other => bail!("pause before start must be refused as not charging, got {other:?}"),
    }
    sc.charging(&input, 0, Utc::now()).await?;

    let paused = sc.sessions.pause(&input.session_id).await?;
    ensure!(paused.status == SessionStatus::Paused);
    ensure!(sc.calls("pause_charging").len() == 1);
    match sc.sessions.pause(&input.session_id).await {
        Err(SessionClientError::Refused(e)) if e.code == CommandErrorCode::NotCharging => {}
        other => bail!("pausing a paused session must be refused, got {other:?}"),
    }
    let resumed = sc.sessions.resume(&input.session_id).await?;
    ensure!(resumed.status == SessionStatus::Started);
    ensure!(sc.calls("resume_charging").len() == 1);
    match sc.sessions.resume(&input.session_id).await {
        Err(SessionClientError::Refused(e)) if e.code == CommandErrorCode::NotPaused => {}
        other => bail!("resuming a charging session must be refused, got {other:?}"),
    }
    sc.sessions.stop(&input.session_id).await?;
    sc.await_calls("remote_stop", 1).await?;
    sc.station_stops(&input, 3_000, "Remote").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.captured == Some(Money::new(90, Currency::USD)),
        "{outcome:?}"
    );
    let events = sc.events();
    ensure!(events == HAPPY_PATH_EVENTS, "{events:?}");
    Ok(())
}

async fn stop_through_the_update(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input("CP-STOP", energy_rate(), 1800, fast_timings())?;
    sc.charging(&input, 500, Utc::now()).await?;
    sc.meter(&input, 2_500, 11_000).await?;
    let stopping = sc.sessions.stop(&input.session_id).await?;
    ensure!(
        stopping.status == SessionStatus::Started,
        "stop is confirmed by the station, not by the API"
    );
    let stops = sc.await_calls("remote_stop", 1).await?;
    ensure!(stops[0].detail["transaction_id"] == 7);
    // A second stop while stopping is accepted and sends nothing new.
    sc.sessions.stop(&input.session_id).await?;
    sc.station_stops(&input, 4_500, "Remote").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(outcome.end_reason == Some(EndReason::StoppedByApi));
    ensure!(
        outcome.captured == Some(Money::new(120, Currency::USD)),
        "{outcome:?}"
    );
    ensure!(
        sc.calls("remote_stop").len() == 1,
        "one remote stop, got {}",
        sc.calls("remote_stop").len()
    );
    match sc.sessions.stop(&input.session_id).await {
        Err(
            SessionClientError::NotFound(_)
            | SessionClientError::Refused(_)
            | SessionClientError::Temporal(_),
        ) => Ok(()),
        Ok(s) => bail!("stop after the end must fail, got {:?}", s.status),
    }
}

async fn stop_refused_on_a_parking_time_rate(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let rate = rate(vec![
        component(Dimension::Energy, "0.30", None),
        component(Dimension::ParkingTime, "6.00", None),
    ]);
    let input = session_input("CP-PARK", rate, 1800, fast_timings())?;
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    sc.charging(&input, 0, t0).await?;
    match sc.sessions.stop(&input.session_id).await {
        Err(SessionClientError::Refused(e)) if e.code == CommandErrorCode::StopNotAllowed => {
            ensure!(
                e.message.contains("PARKING_TIME"),
                "message should say why: {}",
                e.message
            );
        }
        other => bail!("stop on a PARKING_TIME rate must be refused, got {other:?}"),
    }
    ensure!(sc.calls("remote_stop").is_empty());
    // The EV is full after 5 minutes and stays plugged in for 5 more: parking time.
    let full = ConnectorStatus {
        status: ConnectorState::SuspendedEV,
        timestamp: t0 + chrono::Duration::minutes(5),
    };
    sc.sessions
        .connector_status(&input.session_id, full)
        .await?;
    let unplugged = ChargingStopped {
        transaction_id: 7,
        meter_stop_wh: 10_000,
        timestamp: t0 + chrono::Duration::minutes(10),
        reason: Some("EVDisconnected".into()),
    };
    sc.sessions
        .charging_stopped(&input.session_id, unplugged)
        .await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(outcome.end_reason == Some(EndReason::Unplugged));
    // 10 kWh * 0.30 + 5 min * 6.00/h = 3.00 + 0.50
    ensure!(
        outcome.captured == Some(Money::new(350, Currency::USD)),
        "{outcome:?}"
    );
    let details = sc.last_saved()?.cost.details.context("cost details")?;
    ensure!(
        details.parking_seconds == 300 && details.charging_seconds == 300,
        "{details:?}"
    );
    Ok(())
}

async fn charging_finished_on_a_parking_rate_is_announced(sc: Arc<Scenario>) -> anyhow::Result<()> {
    // Parking 6.00/h after a 15 min grace period.
    let mut parking = component(Dimension::ParkingTime, "6.00", None);
    parking.grace_period = Some("0.25".parse()?);
    let rate = rate(vec![component(Dimension::Energy, "0.30", None), parking]);
    let input = session_input("CP-IDLE", rate, 1800, fast_timings())?;
    let t0 = Utc::now() - chrono::Duration::minutes(30);
    sc.charging(&input, 0, t0).await?;
    sc.meter_at(&input, t0 + chrono::Duration::minutes(5), 5_000, 60_000)
        .await?;
    // The EV is full at minute 5 and stays plugged in.
    let full_at = t0 + chrono::Duration::minutes(5);
    let full = ConnectorStatus {
        status: ConnectorState::SuspendedEV,
        timestamp: full_at,
    };
    sc.sessions
        .connector_status(&input.session_id, full)
        .await?;
    for _ in 0..100 {
        if sc.events().iter().any(|e| e == "session.idle") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle = sc
        .last_saved()?
        .idle
        .context("session.idle recorded with `idle`")?;
    ensure!(idle.since == full_at, "{idle:?}");
    let fee = idle.parking_fee_from.context("a parking fee start")? - full_at;
    ensure!(
        (900..=903).contains(&fee.num_seconds()),
        "the fee starts after the 15 min grace: {idle:?}"
    );
    // The same stretch is announced once; charging again clears it, a new stretch is
    // announced again; unplugging ends the session as usual.
    let status = |status, minutes| ConnectorStatus {
        status,
        timestamp: full_at + chrono::Duration::minutes(minutes),
    };
    let id = &input.session_id;
    sc.sessions
        .connector_status(id, status(ConnectorState::SuspendedEvse, 1))
        .await?;
    sc.sessions
        .connector_status(id, status(ConnectorState::Charging, 2))
        .await?;
    let live = sc.sessions.session(id).await?;
    ensure!(live.idle.is_none(), "charging again: {:?}", live.idle);
    sc.sessions
        .connector_status(id, status(ConnectorState::Finishing, 3))
        .await?;
    sc.station_stops(&input, 5_000, "EVDisconnected").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::Unplugged),
        "{outcome:?}"
    );
    let events = sc.events();
    ensure!(
        events.iter().filter(|e| *e == "session.idle").count() == 2
            && events.iter().rposition(|e| e == "session.idle")
                < events.iter().position(|e| e == "session.ended"),
        "{events:?}"
    );
    Ok(())
}

async fn auto_stop_before_the_hold_is_exceeded(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input(
        "CP-LIMIT",
        rate(vec![component(Dimension::Energy, "1.00", None)]),
        500,
        fast_timings(),
    )?;
    sc.charging(&input, 0, Utc::now()).await?;
    sc.meter(&input, 4_000, 22_000).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        sc.calls("remote_stop").is_empty(),
        "4.00 of 5.00 used: too early to stop"
    );
    // 4.99 kWh + 2 s at 22 kW would pass 5.00: stop now.
    sc.meter(&input, 4_990, 22_000).await?;
    sc.await_calls("remote_stop", 1).await?;
    // The station takes a moment and delivers a little more than the hold.
    sc.station_stops(&input, 5_050, "Remote").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(outcome.end_reason == Some(EndReason::HoldLimit));
    ensure!(
        outcome.captured == Some(Money::new(500, Currency::USD)),
        "never more than the hold: {outcome:?}"
    );
    Ok(())
}

async fn energy_target_stops_the_session(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let mut input = session_input("CP-TARGET", energy_rate(), 1800, fast_timings())?;
    input.target.energy = Some("2".parse()?);
    sc.charging(&input, 0, Utc::now()).await?;
    sc.meter(&input, 1_000, 22_000).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        sc.calls("remote_stop").is_empty(),
        "1 of 2 kWh delivered: too early to stop"
    );
    // 1.995 kWh: the last 5 Wh take 0.8 s at 22 kW, less than the 1 s stop latency: stop now,
    // long before the 18.00 hold.
    sc.meter(&input, 1_995, 22_000).await?;
    sc.await_calls("remote_stop", 1).await?;
    sc.station_stops(&input, 2_010, "Remote").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::TargetReached)
            // 2.01 kWh * 0.30 = 0.603: what was delivered, not the hold.
            && outcome.captured == Some(Money::new(60, Currency::USD)),
        "{outcome:?}"
    );
    let ended = sc.last_saved()?;
    ensure!(
        ended.stop.as_ref().map(|s| s.reason) == Some(EndReason::TargetReached),
        "{:?}",
        ended.stop
    );
    ensure!(
        ended.target.energy_wh() == Some(2_000),
        "the session shows its target"
    );
    Ok(())
}

async fn nothing_owed_cancels_the_hold(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = session_input("CP-ZERO", energy_rate(), 1800, fast_timings())?;
    sc.charging(&input, 42_000, Utc::now()).await?;
    sc.station_stops(&input, 42_000, "EVDisconnected").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(outcome.captured.is_none() && outcome.status == SessionStatus::Ended);
    ensure!(
        sc.calls("capture_payment").is_empty(),
        "nothing owed must not be captured"
    );
    ensure!(sc.calls("cancel_payment").len() == 1);
    ensure!(
        sc.events().last().map(String::as_str) == Some("session.payment.canceled"),
        "{:?}",
        sc.events()
    );
    Ok(())
}

/// ENERGY 0.30/kWh + TIME 6.00/h: time billed after the station lost the transaction would
/// show in the capture.
fn energy_and_time_rate() -> domain::rate::Rate {
    rate(vec![
        component(Dimension::Energy, "0.30", None),
        component(Dimension::Time, "6.00", None),
    ])
}

/// A session that started 10 minutes ago and read 5 kWh at minute 5: 1.50 + 0.50 = 2.00 if it
/// ends on that reading.
async fn charged_for_five_minutes(
    sc: &Scenario,
    station: &str,
) -> anyhow::Result<(SessionInput, chrono::DateTime<Utc>)> {
    let input = session_input(station, energy_and_time_rate(), 1800, fast_timings())?;
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    sc.charging(&input, 0, t0).await?;
    sc.meter_at(&input, t0 + chrono::Duration::minutes(5), 5_000, 60_000)
        .await?;
    Ok((input, t0))
}

async fn station_reset_ends_on_the_last_meter_value(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let (input, t0) = charged_for_five_minutes(&sc, "CP-RESET").await?;
    // The station rebooted: it reports the connector free, and no StopTransaction follows.
    sc.status(
        &input,
        ConnectorState::Available,
        t0 + chrono::Duration::minutes(9),
    )
    .await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::StationReset),
        "{outcome:?}"
    );
    ensure!(
        outcome.captured == Some(Money::new(200, Currency::USD)),
        "billed up to the last reading only (5 kWh, 5 min): {outcome:?}"
    );
    ensure!(sc.calls("capture_payment").len() == 1);
    let closed = sc.calls("close_transaction");
    ensure!(
        closed.len() == 1
            && closed[0].detail["meter_stop_wh"] == 5_000
            && closed[0].detail["reason"] == "chargelink:station_reset",
        "the registry's transaction is closed on the last reading: {closed:?}"
    );
    ensure!(sc.calls("remote_stop").is_empty(), "nothing to stop");
    let saved = sc.last_saved()?;
    ensure!(
        saved.ended_at == Some(t0 + chrono::Duration::minutes(5)),
        "{:?}",
        saved.ended_at
    );
    ensure!(sc.events() == PAID_SESSION_EVENTS, "{:?}", sc.events());
    Ok(())
}

async fn late_stop_transaction_after_a_reset_wins(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let (input, t0) = charged_for_five_minutes(&sc, "CP-LATE").await?;
    sc.status(
        &input,
        ConnectorState::Available,
        t0 + chrono::Duration::minutes(9),
    )
    .await?;
    // The queued StopTransaction arrives after the reboot, within the wait for it.
    let stopped = ChargingStopped {
        transaction_id: 7,
        meter_stop_wh: 5_200,
        timestamp: t0 + chrono::Duration::minutes(6),
        reason: Some("PowerLoss".into()),
    };
    sc.sessions
        .charging_stopped(&input.session_id, stopped.clone())
        .await?;
    // A repeat of it changes nothing.
    sc.sessions
        .charging_stopped(&input.session_id, stopped)
        .await?;
    let outcome = sc.outcome(&input).await?;
    // 5.2 kWh * 0.30 + 6 min * 6.00/h = 1.56 + 0.60
    ensure!(
        outcome.end_reason == Some(EndReason::StationReset)
            && outcome.captured == Some(Money::new(216, Currency::USD)),
        "the station's own stop wins: {outcome:?}"
    );
    ensure!(sc.calls("capture_payment").len() == 1, "captured once");
    ensure!(
        sc.calls("close_transaction").is_empty(),
        "the station closed it"
    );
    Ok(())
}

async fn stop_that_finds_no_transaction_ends_the_session(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let (input, _) = charged_for_five_minutes(&sc, "CP-NOTX").await?;
    let answered = sc.sessions.stop(&input.session_id).await?;
    let stop = answered
        .stop
        .context("the answer says what the stop led to")?;
    ensure!(
        stop.station_answer == StationAnswer::NoTransaction
            && stop.reason == EndReason::StoppedByApi,
        "{stop:?}"
    );
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::StationReset)
            && outcome.captured == Some(Money::new(200, Currency::USD)),
        "{outcome:?}"
    );
    ensure!(
        sc.calls("remote_stop").len() == 1,
        "no retry: nothing to stop"
    );
    Ok(())
}

async fn refused_stop_is_retried_then_ends_on_the_last_meter_values(
    sc: Arc<Scenario>,
) -> anyhow::Result<()> {
    let (input, _) = charged_for_five_minutes(&sc, "CP-REFUSE").await?;
    let answered = sc.sessions.stop(&input.session_id).await?;
    let stop = answered.stop.context("stop state")?;
    ensure!(
        stop.station_answer == StationAnswer::Rejected && stop.attempts == 1,
        "{stop:?}"
    );
    ensure!(answered.status == SessionStatus::Started);
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::StationUnresponsive)
            && outcome.captured == Some(Money::new(200, Currency::USD)),
        "{outcome:?}"
    );
    let attempts = sc.calls("remote_stop").len();
    ensure!(attempts == 2, "stop_attempts = 2, sent {attempts}");
    let saved = sc.last_saved()?;
    ensure!(
        saved.stop.as_ref().is_some_and(|s| s.attempts == 2),
        "{:?}",
        saved.stop
    );
    Ok(())
}

async fn short_fault_does_not_end_the_session(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let (input, t0) = charged_for_five_minutes(&sc, "CP-BLIP").await?;
    sc.status(
        &input,
        ConnectorState::Faulted,
        t0 + chrono::Duration::minutes(6),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sc.status(
        &input,
        ConnectorState::Charging,
        t0 + chrono::Duration::minutes(7),
    )
    .await?;
    // Past the fault grace (3 s): the fault was over in time, nothing happens.
    tokio::time::sleep(Duration::from_secs(4)).await;
    ensure!(
        sc.sessions.session(&input.session_id).await?.status == SessionStatus::Started,
        "a short fault is not the end"
    );
    ensure!(sc.calls("remote_stop").is_empty());
    sc.station_stops(&input, 6_000, "EVDisconnected").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::Unplugged),
        "{outcome:?}"
    );
    Ok(())
}

/// The connector reports `state` 8 minutes in and stays so past the fault grace.
async fn long_outage_ends_the_session(
    sc: &Scenario,
    station: &str,
    state: ConnectorState,
) -> anyhow::Result<()> {
    let (input, t0) = charged_for_five_minutes(sc, station).await?;
    sc.status(&input, state, t0 + chrono::Duration::minutes(8))
        .await?;
    let outcome = sc.outcome(&input).await?;
    // 5 kWh * 0.30 + 8 min * 6.00/h: nothing after the fault began.
    ensure!(
        outcome.end_reason == Some(EndReason::StationFault)
            && outcome.captured == Some(Money::new(230, Currency::USD)),
        "{outcome:?}"
    );
    ensure!(
        sc.calls("remote_stop").len() == 1,
        "the station is told to stop, in case it still holds the transaction"
    );
    ensure!(sc.calls("close_transaction").len() == 1);
    Ok(())
}

async fn long_unavailability_ends_the_session(sc: Arc<Scenario>) -> anyhow::Result<()> {
    long_outage_ends_the_session(&sc, "CP-FAULT", ConnectorState::Unavailable).await
}

async fn long_fault_ends_the_session(sc: Arc<Scenario>) -> anyhow::Result<()> {
    long_outage_ends_the_session(&sc, "CP-FAULTED", ConnectorState::Faulted).await
}

/// The most history events one run of a session may hold: the continue-as-new limit
/// (`history_limit`, 2,000) plus what arrives between the check and the continue-as-new (one
/// loop turn, at most a few dozen events, and the signals of the last workflow task: this test
/// floods 16 at a time). Far below Temporal's warning at 10,240 events.
const RUN_EVENTS_BOUND: usize = 3_000;

async fn twenty_thousand_meter_values_stay_in_bounded_runs(
    sc: Arc<Scenario>,
) -> anyhow::Result<()> {
    const SAMPLES: i64 = 20_000;
    let rate = energy_and_time_rate();
    // A 100.00 USD hold the session never reaches; one reading a second for 5.5 hours.
    let input = session_input("CP-LONG", rate.clone(), 10_000, fast_timings())?;
    let t0 = Utc::now() - chrono::Duration::seconds(SAMPLES + 60);
    sc.charging(&input, 0, t0).await?;
    let sample = |i: i64| MeterSample::new(t0 + chrono::Duration::seconds(i), i * 10, Some(36_000));
    let started = std::time::Instant::now();
    let sent: Vec<anyhow::Result<()>> = futures::stream::iter(1..=SAMPLES)
        .map(|i| {
            let sc = sc.clone();
            let input = input.clone();
            async move {
                Ok(sc
                    .sessions
                    .meter_values(
                        &input.session_id,
                        MeterValues {
                            transaction_id: 7,
                            samples: vec![sample(i)],
                        },
                    )
                    .await?)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    sent.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let sending = started.elapsed();
    let stop_at = t0 + chrono::Duration::seconds(SAMPLES + 1);
    let stopped = ChargingStopped {
        transaction_id: 7,
        meter_stop_wh: SAMPLES * 10 + 10,
        timestamp: stop_at,
        reason: Some("EVDisconnected".into()),
    };
    sc.sessions
        .charging_stopped(&input.session_id, stopped.clone())
        .await?;
    // 12 runs of 2,000 events: too big to commit; `commands_during_continue_as_new_...`
    // records a history that crosses continue-as-new.
    let outcome = sc.outcome_unrecorded(&input).await?;

    // The same readings priced outside the workflow.
    let mut expected = domain::pricing::LiveCost::start(rate, t0, 0);
    for i in 1..=SAMPLES {
        expected.record_meter(sample(i));
    }
    let expected = expected.finish(stop_at, stopped.meter_stop_wh)?.amount;
    ensure!(
        outcome.end_reason == Some(EndReason::Unplugged) && outcome.captured == Some(expected),
        "{outcome:?}, expected {expected}"
    );
    ensure!(
        sc.calls("capture_payment").len() == 1,
        "captured once across the runs"
    );
    let runs = sc.runs(&input).await?;
    let sizes: Vec<usize> = runs.iter().map(Vec::len).collect();
    eprintln!(
        "20,000 meter values (sent in {sending:?}): {} runs, history events per run {sizes:?}",
        runs.len()
    );
    ensure!(runs.len() >= 5, "continued as new: {sizes:?}");
    ensure!(
        sizes.iter().all(|n| *n <= RUN_EVENTS_BOUND),
        "a run above {RUN_EVENTS_BOUND} events: {sizes:?}"
    );
    // One event sequence across the runs: nothing lost, nothing twice.
    ensure!(sc.events() == PAID_SESSION_EVENTS, "{:?}", sc.events());
    Ok(())
}

async fn commands_during_continue_as_new_are_honoured(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let mut timings = fast_timings();
    // Continue as new every few dozen events, while readings stream in.
    timings.history_limit = 150;
    let input = session_input("CP-CAN", energy_and_time_rate(), 100_000, timings)?;
    let t0 = Utc::now();
    sc.charging(&input, 0, t0).await?;
    let streaming = {
        let sc = sc.clone();
        let input = input.clone();
        tokio::spawn(async move {
            for i in 1..=600_i64 {
                let at = t0 + chrono::Duration::milliseconds(i * 10);
                sc.sessions
                    .meter_values(
                        &input.session_id,
                        MeterValues {
                            transaction_id: 7,
                            samples: vec![MeterSample::new(at, i * 10, Some(22_000))],
                        },
                    )
                    .await?;
            }
            anyhow::Ok(())
        })
    };
    for round in 0..8 {
        let paused = sc.sessions.pause(&input.session_id).await;
        let paused = paused.with_context(|| format!("pause {round}"))?;
        ensure!(paused.status == SessionStatus::Paused, "pause {round}");
        let resumed = sc.sessions.resume(&input.session_id).await;
        let resumed = resumed.with_context(|| format!("resume {round}"))?;
        ensure!(resumed.status == SessionStatus::Started, "resume {round}");
    }
    streaming.await??;
    // The driver unplugs while the session keeps continuing as new.
    sc.station_stops(&input, 6_010, "EVDisconnected").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::Unplugged),
        "{outcome:?}"
    );
    let runs = sc.runs(&input).await?;
    ensure!(runs.len() >= 4, "{} runs", runs.len());
    let events = sc.events();
    let pauses = events.iter().filter(|e| *e == "session.paused").count();
    let resumes = events.iter().filter(|e| *e == "session.resumed").count();
    ensure!(
        (pauses, resumes) == (8, 8),
        "every pause and resume answered and announced once: {events:?}"
    );
    ensure!(sc.calls("pause_charging").len() == 8);
    let last = sc.last_saved()?;
    ensure!(
        last.cost
            .details
            .as_ref()
            .is_some_and(|d| d.energy_wh == 6_010),
        "{:?}",
        last.cost
    );
    eprintln!(
        "8 pauses and resumes and an unplug across {} runs",
        runs.len()
    );
    Ok(())
}

/// 100.00 USD/kWh, a 5.00 USD hold: 50 Wh, which a 22 kW connector delivers in 8.2 s.
fn hold_for_eight_seconds(meter_interval: Duration) -> anyhow::Result<SessionInput> {
    let mut timings = fast_timings();
    timings.meter_interval = meter_interval;
    let mut input = session_input(
        "CP-DEADLINE",
        rate(vec![component(Dimension::Energy, "100.00", None)]),
        500,
        timings,
    )?;
    input.max_power_w = Some(22_000);
    Ok(input)
}

async fn stop_deadline_comes_from_the_connectors_power(sc: Arc<Scenario>) -> anyhow::Result<()> {
    // A 300 s meter interval: no reading comes before the hold would be used up.
    let input = hold_for_eight_seconds(Duration::from_secs(300))?;
    let started = std::time::Instant::now();
    sc.charging(&input, 0, Utc::now()).await?;
    // Before the deadline (8.2 s less the 1 s stop latency), a fresh reading is asked for.
    sc.await_calls("request_meter_values", 1).await?;
    ensure!(
        sc.calls("remote_stop").is_empty(),
        "the reading is asked for before the stop"
    );
    let stop = sc.await_calls("remote_stop", 1).await?;
    let elapsed = started.elapsed();
    ensure!(
        elapsed < Duration::from_millis(8_200),
        "stopped {elapsed:?} after the start; at 22 kW the hold is used up at 8.2 s"
    );
    ensure!(stop.len() == 1);
    // The station stops at once, having delivered 22 kW for ~7 s.
    sc.station_stops(&input, 45, "Remote").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::HoldLimit)
            && outcome.captured == Some(Money::new(450, Currency::USD)),
        "{outcome:?}"
    );
    Ok(())
}

/// [`hold_for_eight_seconds`] with top-up on: up to 7.00 USD, in steps of 5.00 (so one
/// increment, capped at the ceiling).
fn topped_up_hold() -> anyhow::Result<SessionInput> {
    let mut input = hold_for_eight_seconds(Duration::from_secs(300))?;
    input.top_up = Some(TopUp {
        ceiling: Money::new(700, Currency::USD),
        step: Money::new(500, Currency::USD),
    });
    Ok(input)
}

/// Top-up: the first stop deadline (8.2 s at 22 kW on a 5.00 hold) is within the increment's
/// lead at once, so the hold is raised to the 7.00 ceiling (one increment, its own key), the
/// session shows the raised hold and records `session.payment.increased`; the auto-stop then
/// comes on the raised hold, after the first deadline, and the capture is above the first hold
/// but within the raised one.
async fn top_up_raises_the_hold_instead_of_stopping(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = topped_up_hold()?;
    let started = std::time::Instant::now();
    sc.charging(&input, 0, Utc::now()).await?;
    let created = sc.calls("create_payment");
    ensure!(
        created[0].detail["incremental"] == true,
        "incremental authorization asked for: {:?}",
        created[0].detail
    );
    let increments = sc.await_calls("increment_payment", 1).await?;
    ensure!(
        increments[0].detail["amount"]["amount"] == 700
            && increments[0].detail["idempotency_key"]
                == format!("{}:increment_payment:1", input.session_id).as_str(),
        "{:?}",
        increments[0].detail
    );
    let stop = sc.await_calls("remote_stop", 1).await?;
    let elapsed = started.elapsed();
    ensure!(
        elapsed > Duration::from_millis(8_200),
        "stopped {elapsed:?} after the start: the raised hold moves the deadline past 8.2 s"
    );
    ensure!(stop.len() == 1 && sc.calls("increment_payment").len() == 1);
    // 65 Wh at 100.00 USD/kWh: 6.50, above the first hold, within the raised one.
    sc.station_stops(&input, 65, "Remote").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::HoldLimit)
            && outcome.captured == Some(Money::new(650, Currency::USD)),
        "{outcome:?}"
    );
    let events = sc.events();
    ensure!(
        events
            .iter()
            .filter(|e| *e == "session.payment.increased")
            .count()
            == 1,
        "{events:?}"
    );
    let saved = sc.last_saved()?;
    let payment = saved.payment.context("no payment")?;
    ensure!(payment.authorized_amount == 700, "{payment:?}");
    ensure!(payment.captured_amount == Some(650), "{payment:?}");
    Ok(())
}

/// Top-up on a card that declines increments: one increment asked for, refused, no more; the
/// auto-stop comes on the first hold in time, as without top-up.
async fn top_up_declined_stops_on_the_first_hold(sc: Arc<Scenario>) -> anyhow::Result<()> {
    stops_on_the_first_hold(sc).await
}

/// Top-up with a provider that does not answer within the time left before the stop deadline:
/// the increment is given up on (its schedule-to-close ends a second before the deadline) and
/// the auto-stop still comes on the first hold in time.
async fn top_up_unanswered_stops_on_the_first_hold(sc: Arc<Scenario>) -> anyhow::Result<()> {
    stops_on_the_first_hold(sc).await
}

/// One increment asked for, not granted; the stop on the first hold before its 8.2 s.
async fn stops_on_the_first_hold(sc: Arc<Scenario>) -> anyhow::Result<()> {
    let input = topped_up_hold()?;
    let started = std::time::Instant::now();
    sc.charging(&input, 0, Utc::now()).await?;
    sc.await_calls("increment_payment", 1).await?;
    sc.await_calls("remote_stop", 1).await?;
    let elapsed = started.elapsed();
    ensure!(
        elapsed < Duration::from_millis(8_200),
        "stopped {elapsed:?} after the start; at 22 kW the first hold is used up at 8.2 s"
    );
    sc.station_stops(&input, 45, "Remote").await?;
    let outcome = sc.outcome(&input).await?;
    ensure!(
        outcome.end_reason == Some(EndReason::HoldLimit)
            && outcome.captured == Some(Money::new(450, Currency::USD)),
        "{outcome:?}"
    );
    ensure!(sc.calls("increment_payment").len() == 1, "asked once");
    ensure!(!sc.events().iter().any(|e| e == "session.payment.increased"));
    let payment = sc.last_saved()?.payment.context("no payment")?;
    ensure!(payment.authorized_amount == 500, "{payment:?}");
    Ok(())
}

fn spawn_worker(server: &Url, sc: &Scenario) -> anyhow::Result<Child> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-worker"))
        .args(["--address", server.as_str(), "--task-queue", &sc.task_queue])
        .arg("--journal")
        .arg(&sc.journal)
        .stdout(Stdio::piped())
        .spawn()?;
    // Wait for "ready" so the kill below lands on a running worker.
    let mut out = child.stdout.take().context("worker stdout")?;
    let mut buf = [0_u8; 5];
    std::io::Read::read_exact(&mut out, &mut buf)?;
    Ok(child)
}

/// The worker process is killed (SIGKILL) mid-charging and started again: the session
/// completes with exactly one capture and no lost event.
fn worker_killed_mid_session(env: &Env) -> Result<(), Failed> {
    env.tokio
        .block_on(async {
            let client = connect(&env.server).await?;
            let task_queue = format!("test-crash-{}", random_body());
            let journal = env.journals.join(format!("{task_queue}.jsonl"));
            let sessions = SessionClient::new(client.clone(), task_queue.clone());
            let sc = Scenario {
                name: "worker-killed",
                client,
                sessions,
                journal,
                task_queue,
            };
            let input = session_input("CP-CRASH", energy_rate(), 1800, fast_timings())?;

            let mut worker = spawn_worker(&env.server, &sc)?;
            sc.charging(&input, 0, Utc::now()).await?;
            sc.meter(&input, 5_000, 7_000).await?;
            sc.await_status(&input, SessionStatus::Started).await?;
            worker.kill()?;
            worker.wait()?;

            // The station goes on while no worker runs; signals wait in the history.
            sc.meter(&input, 8_000, 7_000).await?;
            sc.station_stops(&input, 10_000, "EVDisconnected").await?;
            let mut worker = spawn_worker(&env.server, &sc)?;
            let outcome = sc.outcome(&input).await;
            let _ = worker.kill();
            let _ = worker.wait();
            let outcome = outcome?;

            ensure!(
                outcome.captured == Some(Money::new(300, Currency::USD)),
                "{outcome:?}"
            );
            ensure!(
                sc.calls("capture_payment").len() == 1,
                "exactly one capture after the restart"
            );
            let events = sc.events();
            ensure!(events == PAID_SESSION_EVENTS, "{events:?}");
            Ok::<_, anyhow::Error>(())
        })
        .map_err(|e: anyhow::Error| Failed::from(format!("{e:#}")))
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let Some(tokio) = chargelink_tests::harness::runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    let started = tokio.block_on(async {
        let server = DevServer::start().await?;
        let temporal = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
        Ok::<_, anyhow::Error>((server, temporal))
    });
    let (server, temporal) = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("could not start the Temporal dev server: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let journals = std::env::temp_dir().join(format!("chargelink-journals-{}", random_body()));
    if let Err(e) = std::fs::create_dir_all(&journals) {
        eprintln!("journal dir: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let env = Arc::new(Env {
        tokio,
        temporal,
        server: server.url.clone(),
        journals,
    });

    macro_rules! trial {
        ($name:ident) => {
            trial!($name, Behaviour::default())
        };
        ($name:ident, $behaviour:expr) => {{
            let env = env.clone();
            Trial::test(stringify!($name), move || {
                scenario(&env, stringify!($name), $behaviour, $name)
            })
        }};
    }
    let trials = vec![
        trial!(paid_and_charged_with_partial_capture),
        trial!(payment_expired),
        trial!(
            authorization_found_by_poll_when_webhook_is_lost,
            Behaviour {
                authorized_on_poll: Some(Money::new(1800, Currency::USD)),
                ..Behaviour::default()
            }
        ),
        trial!(driver_cancelled),
        trial!(
            every_start_attempt_refused,
            Behaviour {
                refuse_start: true,
                ..Behaviour::default()
            }
        ),
        trial!(authorized_but_never_plugged_in),
        trial!(pause_and_resume),
        trial!(stop_through_the_update),
        trial!(stop_refused_on_a_parking_time_rate),
        trial!(auto_stop_before_the_hold_is_exceeded),
        trial!(nothing_owed_cancels_the_hold),
        trial!(energy_target_stops_the_session),
        trial!(charging_finished_on_a_parking_rate_is_announced),
        trial!(station_reset_ends_on_the_last_meter_value),
        trial!(late_stop_transaction_after_a_reset_wins),
        trial!(
            stop_that_finds_no_transaction_ends_the_session,
            Behaviour {
                stop_finds_no_transaction: true,
                ..Behaviour::default()
            }
        ),
        trial!(
            refused_stop_is_retried_then_ends_on_the_last_meter_values,
            Behaviour {
                refuse_stop: true,
                ..Behaviour::default()
            }
        ),
        trial!(short_fault_does_not_end_the_session),
        trial!(long_unavailability_ends_the_session),
        trial!(long_fault_ends_the_session),
        trial!(stop_deadline_comes_from_the_connectors_power),
        trial!(top_up_raises_the_hold_instead_of_stopping),
        trial!(
            top_up_declined_stops_on_the_first_hold,
            Behaviour {
                decline_increments: true,
                ..Behaviour::default()
            }
        ),
        trial!(
            top_up_unanswered_stops_on_the_first_hold,
            Behaviour {
                increment_delay_ms: 10_000,
                ..Behaviour::default()
            }
        ),
        trial!(twenty_thousand_meter_values_stay_in_bounded_runs),
        trial!(commands_during_continue_as_new_are_honoured),
        {
            let env = env.clone();
            Trial::test("worker_killed_mid_session", move || {
                worker_killed_mid_session(&env)
            })
        },
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    drop(env);
    drop(server);
    conclusion.exit_code()
}
