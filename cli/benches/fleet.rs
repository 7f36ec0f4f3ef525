//! The fleet benchmark (issue #12): N concurrent paid sessions end to end on the real processes
//! — a Temporal dev server, `chargelink worker`, `api`, `gateway`, `stripe-sandbox` and two
//! `chargelink sim` processes holding one simulated OCPP 1.6J station per session, meter
//! interval 10 s — next to a bare-Temporal baseline of the same shape on the same dev server.
//!
//! A share of the sessions (`FLEET_HOLD_SHARE`) is priced so that its hold runs out half-way
//! through the measured window: auto-stop fires under load. The rest charge until the window
//! ends and are stopped through the API. Payment goes through the sandbox's API (no browser).
//!
//! Prints one table: sessions held, creation rate and `POST /sessions` latency, the bare
//! baseline and the ratio, meter-value-to-stop latency and the stop round trip, CPU and RSS of
//! each process per live session, history events per charging session-hour, and the money
//! audit from the sandbox's ledger and the store. Exits non-zero when the audit finds money out
//! of place (figures that miss a target are printed, not failed).
//!
//! Run: `cargo bench -p chargelink --bench fleet`. Sizes: `FLEET_SESSIONS` (default 200),
//! `FLEET_MINUTES` (measured window, default 2), `FLEET_CONCURRENCY` (clients creating
//! sessions, default 32), `FLEET_HOLD_SHARE` (default 0.25), `FLEET_MAX_CACHED` (the worker's
//! sticky cache, default sessions + 200). `CHARGELINK_WORKFLOW_POLLERS` and
//! `CHARGELINK_ACTIVITY_POLLERS` are passed to the worker and the gateway when set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark binary; a panic is a failed run"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chargelink_tests::audit::{audit_money, settled};
use chargelink_tests::baseline::{BareActivities, BareInput, BareSession, BareSignals};
use chargelink_tests::fixtures::random_body;
use chargelink_tests::processes::{Org, ProcessStack};
use domain::ids::SessionId;
use futures::StreamExt;
use serde_json::{Value, json};

/// Seconds between a station's meter values (`FLEET_METER_INTERVAL`, default 10): a shorter
/// interval ages a session's workflow history faster, to see what a long session holds.
fn meter_interval() -> u64 {
    setting("FLEET_METER_INTERVAL", 10)
}

/// Every simulated station's AuthorizationKey (provisioned by the operator at creation).
const STATION_KEY: &str = "fleet-benchmark-station-key";
/// Charging power of every station and its connector's `max_power_w`.
const POWER_W: i64 = 7_000;
const HOLD: i64 = 1_800;

fn setting<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nearest-rank percentile of `values` (milliseconds); 0 when empty.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// CPU seconds used so far and resident memory (bytes) of process `pid`, from `/proc`.
fn usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ).
    Some((ticks / 100.0, rss_kib * 1024))
}

/// Every measured process: name and pid.
fn processes(stack: &ProcessStack) -> Vec<(String, u32)> {
    let mut out = vec![("temporal dev server".to_owned(), stack.server.pid())];
    for name in [
        "worker",
        "api",
        "gateway",
        "stripe-sandbox",
        "sim-hold",
        "sim-long",
    ] {
        if let Some(pid) = stack.pid(name) {
            out.push((name.to_owned(), pid));
        }
    }
    out.push(("benchmark (bare worker)".to_owned(), std::process::id()));
    out
}

/// CPU seconds each process used from `before` to `after`.
fn cpu_between(
    before: &BTreeMap<String, (f64, u64)>,
    after: &BTreeMap<String, (f64, u64)>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(name, (cpu1, _))| Some((name.clone(), cpu1 - before.get(name)?.0)))
        .collect()
}

fn snapshot(stack: &ProcessStack) -> BTreeMap<String, (f64, u64)> {
    processes(stack)
        .into_iter()
        .filter_map(|(name, pid)| usage(pid).map(|u| (name, u)))
        .collect()
}

/// A seeded fleet: the organization and the connectors of each group.
struct Fleet {
    org: Org,
    hold_connectors: Vec<String>,
    long_connectors: Vec<String>,
}

/// USD per kWh so that the hold lasts `seconds` at [`POWER_W`], to 4 decimals (OCPI).
fn price_for(seconds: f64) -> String {
    let kwh = POWER_W as f64 / 1000.0 * seconds / 3600.0;
    format!("{:.4}", HOLD as f64 / 100.0 / kwh)
}

async fn seed(
    stack: &ProcessStack,
    sessions: usize,
    hold_share: f64,
    hold_seconds: f64,
) -> anyhow::Result<Fleet> {
    // The long group's rate: 0.30 USD/kWh, far from the hold in the window.
    let org = stack
        .org(json!({}), json!([{"type": "ENERGY", "price": "0.30"}]))
        .await?;
    let short_rate = stack
        .post(
            "/rates",
            &org.key,
            json!({"name": "runs into its hold", "currency": "usd",
                "price_components": [{"type": "ENERGY", "price": price_for(hold_seconds)}]}),
        )
        .await?["_id"]
        .as_str()
        .context("rate id")?
        .to_owned();
    let holds = ((sessions as f64) * hold_share).round() as usize;
    let plan: Vec<(String, String)> = (1..=holds)
        .map(|n| (format!("FLEET-H-{n}"), short_rate.clone()))
        .chain((1..=sessions - holds).map(|n| (format!("FLEET-L-{n}"), org.rate.clone())))
        .collect();
    let created: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(plan)
        .map(|(id, rate)| {
            let key = org.key.clone();
            async move {
                let body = json!({"id": id, "name": "fleet", "ocpp_password": STATION_KEY,
                    "connectors": [{"connector_id": 1, "rate": rate, "max_power_w": POWER_W}]});
                let station = stack.post("/charge-stations", &key, body).await?;
                let connector = station["connectors"][0]["_id"]
                    .as_str()
                    .context("connector id")?
                    .to_owned();
                Ok((id, connector))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut fleet = Fleet {
        org,
        hold_connectors: Vec::new(),
        long_connectors: Vec::new(),
    };
    for c in created {
        let (id, connector) = c?;
        if id.starts_with("FLEET-H-") {
            fleet.hold_connectors.push(connector);
        } else {
            fleet.long_connectors.push(connector);
        }
    }
    Ok(fleet)
}

/// Starts both sim processes and waits until the gateway has every station.
async fn connect_stations(stack: &ProcessStack, fleet: &Fleet) -> anyhow::Result<()> {
    let power = POWER_W.to_string();
    let interval = meter_interval().to_string();
    for (name, prefix, n) in [
        ("sim-hold", "FLEET-H-", fleet.hold_connectors.len()),
        ("sim-long", "FLEET-L-", fleet.long_connectors.len()),
    ] {
        if n == 0 {
            continue;
        }
        let n = n.to_string();
        stack.spawn(
            name,
            &[
                "sim",
                "--url",
                &stack.ocpp,
                "--stations",
                &n,
                "--id-prefix",
                prefix,
                "--connectors",
                "1",
                "--power-w",
                &power,
                "--meter-interval",
                &interval,
            ],
            &[("CHARGELINK_SIM_KEY", STATION_KEY)],
        )?;
    }
    let total = fleet.hold_connectors.len() + fleet.long_connectors.len();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let online = stack
            .log("gateway")
            .lines()
            .filter(|l| l.contains("FLEET-") && l.contains("connected"))
            .count();
        if online >= total {
            eprintln!("{total} stations online");
            // Their BootNotification and StatusNotifications follow the connection.
            tokio::time::sleep(Duration::from_secs(10)).await;
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{online} of {total} stations online after 300 s"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Throughput and latency of creating sessions (or bare sessions).
struct Creation {
    count: usize,
    wall: Duration,
    latencies_ms: Vec<f64>,
    retries: usize,
}

impl Creation {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.wall.as_secs_f64()
    }
}

/// The baseline's figures.
struct Bare {
    creation: Creation,
    /// CPU seconds of each process while the bare sessions were created and paid.
    creation_cpu: BTreeMap<String, f64>,
    /// Signal round trips while every bare session is held (ms).
    signal_ms: Vec<f64>,
    /// Share of a core the dev server used while they were held.
    server_core_share: f64,
}

/// The baseline: `sessions` bare sessions created at `concurrency` (timed) and paid, each then
/// signalled as a station signals a session (three signals as it starts, a meter value every
/// interval), held for `window`, then stopped; on the same dev server, before the real
/// sessions start.
async fn baseline(
    stack: &ProcessStack,
    sessions: usize,
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<Bare> {
    let client = chargelink_tests::devserver::connect(&stack.server.url).await?;
    let queue = format!("bare-{}", random_body());
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
    let mut options = temporalio_sdk::WorkerOptions::new(queue.clone())
        .register_workflow::<BareSession>()?
        .register_activities(BareActivities)
        .build();
    options.max_cached_workflows = sessions + 200;
    let mut worker = temporalio_sdk::Worker::new(&runtime, client.clone(), options)?;
    let shutdown = worker.shutdown_handle();
    let ids: Vec<String> = (0..sessions)
        .map(|i| format!("bare-{i}-{}", random_body()))
        .collect();
    // Paid bare sessions, which a station then signals as it does a session's: three signals
    // as charging starts (Preparing, StartTransaction, Charging), then a meter value every
    // interval, from the moment each is paid, so creation runs beside the same signal load as
    // the sessions' creation does.
    let paid: std::sync::Mutex<Vec<String>> = std::sync::Mutex::default();
    let creating = std::sync::atomic::AtomicBool::new(true);
    let holding = std::sync::atomic::AtomicBool::new(true);
    let meter_values = async {
        let mut signal_ms = Vec::new();
        let mut round = 0u64;
        while holding.load(std::sync::atomic::Ordering::Relaxed) {
            let tick = Instant::now();
            let now: Vec<String> = paid.lock().expect("paid list").clone();
            let timed: Vec<anyhow::Result<f64>> = futures::stream::iter(now.iter())
                .map(|id| {
                    let client = client.clone();
                    async move {
                        let at = Instant::now();
                        BareSignals::new(&client, id).meter_value(round).await?;
                        Ok(at.elapsed().as_secs_f64() * 1000.0)
                    }
                })
                .buffer_unordered(64)
                .collect()
                .await;
            // Only the held phase's round trips are reported (creation has its own figure).
            if !creating.load(std::sync::atomic::Ordering::Relaxed) {
                signal_ms.extend(timed.into_iter().filter_map(Result::ok));
            }
            round += 1;
            tokio::time::sleep(
                Duration::from_secs(meter_interval()).saturating_sub(tick.elapsed()),
            )
            .await;
        }
        signal_ms
    };
    let run = async {
        let started = Instant::now();
        let creation_cpu0 = snapshot(stack);
        let latencies: Vec<anyhow::Result<f64>> = futures::stream::iter(ids.iter())
            .map(|id| {
                let (client, queue, paid) = (client.clone(), queue.clone(), &paid);
                async move {
                    let input = BareInput {
                        payment_expiry_s: 300,
                        meter_interval_s: meter_interval(),
                    };
                    let at = Instant::now();
                    chargelink_tests::baseline::create(&client, &queue, id, input).await?;
                    let ms = at.elapsed().as_secs_f64() * 1000.0;
                    let signals = BareSignals::new(&client, id);
                    signals.paid().await?;
                    for n in 0..3 {
                        signals.meter_value(n).await?;
                    }
                    paid.lock().expect("paid list").push(id.clone());
                    Ok(ms)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let wall = started.elapsed();
        let creation_cpu = cpu_between(&creation_cpu0, &snapshot(stack));
        creating.store(false, std::sync::atomic::Ordering::Relaxed);
        let latencies_ms = latencies
            .into_iter()
            .collect::<anyhow::Result<Vec<f64>>>()?;
        eprintln!("{} bare sessions held for {window:?}", ids.len());
        let cpu0 = usage(stack.server.pid()).map(|u| u.0).unwrap_or(0.0);
        let held = Instant::now();
        tokio::time::sleep(window).await;
        holding.store(false, std::sync::atomic::Ordering::Relaxed);
        let cpu1 = usage(stack.server.pid()).map(|u| u.0).unwrap_or(0.0);
        let server_core_share = (cpu1 - cpu0) / held.elapsed().as_secs_f64();
        Ok::<_, anyhow::Error>((latencies_ms, wall, creation_cpu, server_core_share))
    };
    let settle = async {
        let (run, signal_ms) = tokio::join!(run, meter_values);
        let (latencies_ms, wall, creation_cpu, server_core_share) = run?;
        for id in &ids {
            BareSignals::new(&client, id).stop().await?;
        }
        // Let them settle before the worker goes.
        tokio::time::sleep(Duration::from_secs(20)).await;
        shutdown();
        Ok::<_, anyhow::Error>(Bare {
            creation: Creation {
                count: latencies_ms.len(),
                wall,
                latencies_ms,
                retries: 0,
            },
            signal_ms,
            server_core_share,
            creation_cpu,
        })
    };
    let (worker_result, bare) = tokio::join!(worker.run(), settle);
    worker_result?;
    bare
}

/// Creates and pays one session per connector at `concurrency`; the session ids in order.
async fn create_sessions(
    stack: &ProcessStack,
    fleet: &Fleet,
    concurrency: usize,
) -> anyhow::Result<(Creation, Vec<(String, bool)>)> {
    // The long group first: the hold group, created last, starts its countdown once nearly
    // every session charges, so the whole fleet is held at once before the first hold runs out.
    let connectors: Vec<(String, bool)> = fleet
        .long_connectors
        .iter()
        .map(|c| (c.clone(), false))
        .chain(fleet.hold_connectors.iter().map(|c| (c.clone(), true)))
        .collect();
    let started = Instant::now();
    let results: Vec<anyhow::Result<(String, bool, f64, usize)>> =
        futures::stream::iter(connectors)
            .map(|(connector, hold)| async move {
                let mut retries = 0;
                let first = Instant::now();
                loop {
                    let body = json!({"user": fleet.org.user, "connector": connector,
                        "type": "payment_link"});
                    let answer = stack
                        .http
                        .post(format!("{}/sessions", stack.api))
                        .bearer_auth(&fleet.org.key)
                        // Retried with the same key: one session whatever happens.
                        .header("Idempotency-Key", format!("fleet-{connector}"))
                        .json(&body)
                        .send()
                        .await;
                    let (status, session) = match answer {
                        Ok(r) => (
                            r.status().as_u16(),
                            r.json::<Value>().await.unwrap_or_default(),
                        ),
                        Err(e) if retries < 10 => {
                            eprintln!("POST /sessions failed ({e}); retrying with the same key");
                            retries += 1;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    // From the first attempt: a retried creation counts whole.
                    let ms = first.elapsed().as_secs_f64() * 1000.0;
                    // A connector whose StatusNotification is not in yet answers 409; a
                    // saturated workflow service 503.
                    if (status == 409 || status >= 500) && retries < 30 {
                        retries += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    ensure!(
                        status == 201 || status == 200,
                        "POST /sessions: {status} {session}"
                    );
                    stack.pay(&session).await?;
                    let id = session["_id"].as_str().context("id")?.to_owned();
                    return Ok((id, hold, ms, retries));
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let wall = started.elapsed();
    let mut creation = Creation {
        count: 0,
        wall,
        latencies_ms: Vec::new(),
        retries: 0,
    };
    let mut ids = Vec::new();
    for r in results {
        let (id, hold, ms, retries) = r?;
        creation.count += 1;
        creation.latencies_ms.push(ms);
        creation.retries += retries;
        ids.push((id, hold));
    }
    Ok((creation, ids))
}

/// Every session as the store has it now.
async fn sessions_now(
    store: &store::Store,
    ids: &[(String, bool)],
) -> anyhow::Result<Vec<(Value, bool)>> {
    let mut out = Vec::with_capacity(ids.len());
    for (id, hold) in ids {
        let sid = SessionId::from_str(id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let s = store.session_by_id(&sid).await?.context("session")?;
        out.push((serde_json::to_value(&s)?, *hold));
    }
    Ok(out)
}

fn charging(s: &Value) -> bool {
    matches!(s["status"].as_str(), Some("started" | "paused"))
}

/// History length and run id of workflow `id`.
async fn history(client: &temporalio_client::Client, id: &str) -> anyhow::Result<(usize, String)> {
    let d = client
        .get_workflow_handle::<workflows::SessionWorkflow>(id.to_owned())
        .describe(Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("describe {id}: {e}"))?;
    let run = d
        .raw_description
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.execution.as_ref())
        .map(|e| e.run_id.clone())
        .unwrap_or_default();
    Ok((d.history_length(), run))
}

/// Values of `key=` on the lines of `log` that contain every one of `needles`.
fn logged_values(log: &str, needles: &[&str], key: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| {
            let (_, rest) = l.split_once(&format!("{key}="))?;
            rest.split(|c: char| c.is_whitespace() || c == ',' || c == '}')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// For each hold-limit stop: from the moment it was due (`stop.due_at`, the stop deadline) to
/// the station's log line of the RemoteStopTransaction it received, milliseconds.
fn due_to_stop(sim_log: &str, sessions: &[&Value]) -> Vec<f64> {
    let received: BTreeMap<&str, chrono::DateTime<chrono::Utc>> = sim_log
        .lines()
        .filter(|l| l.contains("RemoteStopTransaction received"))
        .filter_map(|l| {
            let at = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
            let (_, rest) = l.split_once("station=")?;
            Some((rest.split_whitespace().next()?, at.to_utc()))
        })
        .collect();
    sessions
        .iter()
        .filter(|s| s["end_reason"] == "hold_limit")
        .filter_map(|s| {
            let due = chrono::DateTime::parse_from_rfc3339(s["stop"]["due_at"].as_str()?).ok()?;
            let at = received.get(s["chargestation"].as_str()?)?;
            Some((*at - due.to_utc()).num_microseconds()? as f64 / 1000.0)
        })
        .collect()
}

async fn bench() -> anyhow::Result<bool> {
    let sessions: usize = setting("FLEET_SESSIONS", 200);
    let minutes: f64 = setting("FLEET_MINUTES", 2.0);
    let concurrency: usize = setting("FLEET_CONCURRENCY", 32);
    let hold_share: f64 = setting("FLEET_HOLD_SHARE", 0.25);
    let window = Duration::from_secs_f64(minutes * 60.0);
    // Sessions the worker keeps in its sticky cache; fewer trade memory for replays.
    let cached: usize = setting("FLEET_MAX_CACHED", sessions + 200);
    let cached = cached.to_string();
    let interval = meter_interval().to_string();
    let bin = Path::new(env!("CARGO_BIN_EXE_chargelink"));
    // Poller counts are the first knob of a busy worker; passed through so runs can compare.
    let pollers: Vec<(&str, String)> =
        ["CHARGELINK_WORKFLOW_POLLERS", "CHARGELINK_ACTIVITY_POLLERS"]
            .into_iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
            .collect();
    for (k, v) in &pollers {
        println!("{k}={v}");
    }
    let mut env: Vec<(&str, &str)> = pollers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        ("CHARGELINK_METER_INTERVAL", interval.as_str()),
        ("CHARGELINK_STOP_LATENCY", "2"),
        ("CHARGELINK_START_ATTEMPT_TIMEOUT", "60"),
        ("CHARGELINK_START_RETRY_INITIAL", "1"),
        ("CHARGELINK_START_RETRY_MAX", "10"),
        ("CHARGELINK_STOP_CONFIRM_TIMEOUT", "60"),
        ("CHARGELINK_FAULT_GRACE", "300"),
        ("CHARGELINK_MAX_CACHED_SESSIONS", &cached),
        (
            "RUST_LOG",
            "warn,ocpp::server=info,ocpp::activities=info,sim=info",
        ),
    ]);
    let stack = ProcessStack::start(bin, &env).await?;
    let result = run(&stack, sessions, window, concurrency, hold_share).await;
    if result.is_err() {
        stack.diagnose();
    }
    result
}

async fn run(
    stack: &ProcessStack,
    sessions: usize,
    window: Duration,
    concurrency: usize,
    hold_share: f64,
) -> anyhow::Result<bool> {
    // The short group's hold lasts half the window at full power.
    let hold_seconds = window.as_secs_f64() / 2.0;
    let fleet = seed(stack, sessions, hold_share, hold_seconds).await?;
    connect_stations(stack, &fleet).await?;
    let idle = snapshot(stack);

    eprintln!("baseline: {sessions} bare sessions");
    let bare = baseline(stack, sessions, concurrency, window).await?;
    eprintln!("creating {sessions} sessions");
    let creation_cpu0 = snapshot(stack);
    let (created, ids) = create_sessions(stack, &fleet, concurrency).await?;
    let creation_cpu = cpu_between(&creation_cpu0, &snapshot(stack));
    let store =
        store::Store::connect(&format!("sqlite://{}/chargelink.db", stack.dir.display())).await?;
    let client = chargelink_tests::devserver::connect(&stack.server.url).await?;

    // Until every session charges (or ended: a short one may already have run out).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let now = sessions_now(&store, &ids).await?;
        let going = now
            .iter()
            .filter(|(s, _)| charging(s) || settled(s))
            .count();
        if going == ids.len() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{going} of {} sessions charging after 300 s",
            ids.len()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!("every session charging; measuring for {window:?}");

    // The measured window.
    let sample: Vec<String> = ids
        .iter()
        .filter(|(_, hold)| !hold)
        .take(20)
        .map(|(id, _)| id.clone())
        .collect();
    let mut history_start = Vec::new();
    for id in &sample {
        history_start.push(history(&client, id).await?);
    }
    let t0 = Instant::now();
    let start = snapshot(stack);
    let mut held_max = 0;
    let mut held_at_end = 0;
    while t0.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(10).min(window.saturating_sub(t0.elapsed()))).await;
        let now = sessions_now(&store, &ids).await?;
        held_at_end = now.iter().filter(|(s, _)| charging(s)).count();
        held_max = held_max.max(held_at_end);
    }
    let end = snapshot(stack);
    let elapsed = t0.elapsed();
    let mut events_per_hour = Vec::new();
    let mut crossed = 0;
    for (id, (len0, run0)) in sample.iter().zip(&history_start) {
        let (len1, run1) = history(&client, id).await?;
        if &run1 != run0 {
            crossed += 1;
            continue;
        }
        events_per_hour.push((len1 - len0) as f64 * 3600.0 / elapsed.as_secs_f64());
    }

    // Stop the long group through the API; wait until every session settled.
    eprintln!("stopping the long-running sessions");
    let key = &fleet.org.key;
    let stops: Vec<anyhow::Result<()>> = futures::stream::iter(ids.iter().filter(|(_, h)| !h))
        .map(|(id, _)| async move {
            let (status, body) = stack
                .call(
                    reqwest::Method::POST,
                    &format!("/sessions/{id}/stop"),
                    key,
                    None,
                )
                .await?;
            ensure!(status == 200, "stop {id}: {status} {body}");
            Ok(())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let refused = stops.iter().filter(|r| r.is_err()).count();
    let deadline = Instant::now() + Duration::from_secs(300);
    let finished = loop {
        let now = sessions_now(&store, &ids).await?;
        if now.iter().all(|(s, _)| settled(s)) || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    // Figures.
    let hold_sessions: Vec<&Value> = finished
        .iter()
        .filter(|(_, h)| *h)
        .map(|(s, _)| s)
        .collect();
    let auto_stopped = hold_sessions
        .iter()
        .filter(|s| s["end_reason"] == "hold_limit")
        .count();
    let due_to_stop = due_to_stop(&stack.log("sim-hold"), &hold_sessions);
    let meter_to_stop = logged_values(
        &stack.log("sim-hold"),
        &["RemoteStopTransaction received"],
        "since_meter_values_ms",
    );
    let round_trip = logged_values(
        &stack.log("gateway"),
        // The gateway's line for either OCPP version's stop command.
        &["remote stop answered", "FLEET-H-"],
        "round_trip_ms",
    );
    let overruns = stack
        .log("worker")
        .lines()
        .filter(|l| l.contains("overran the hold"))
        .count();
    let stored: Vec<Value> = finished.iter().map(|(s, _)| s.clone()).collect();
    let money = audit_money(stack, &stored).await?;

    let ms = |v: &[f64], p: f64| format!("{:.0} ms", percentile(v, p));
    let ratio = created.per_second() / bare.creation.per_second();
    println!(
        "\n## Fleet benchmark: {sessions} sessions, meter interval {} s, window {window:?}\n",
        meter_interval()
    );
    println!("| figure | value | target |");
    println!("|---|---:|---:|");
    println!(
        "| sessions held concurrently (max / at the window's end) | {held_max} / {held_at_end} | 2,000 |"
    );
    println!(
        "| sessions created/s (c={concurrency}) | {:.1} | |",
        created.per_second()
    );
    println!(
        "| `POST /sessions` p50 / p99 | {} / {} | |",
        ms(&created.latencies_ms, 50.0),
        ms(&created.latencies_ms, 99.0)
    );
    println!(
        "| `POST /sessions` answered 409 (station not reported yet), retried | {} | |",
        created.retries
    );
    println!(
        "| bare workflow created/s (c={concurrency}); p50 / p99 | {:.1}; {} / {} | |",
        bare.creation.per_second(),
        ms(&bare.creation.latencies_ms, 50.0),
        ms(&bare.creation.latencies_ms, 99.0)
    );
    println!(
        "| bare sessions held: signal p50 / p99; dev server CPU | {} / {}; {:.0} % of a core | |",
        ms(&bare.signal_ms, 50.0),
        ms(&bare.signal_ms, 99.0),
        bare.server_core_share * 100.0
    );
    println!("| ratio session / bare throughput | {ratio:.2} | >= 0.67 |");
    // Where creation's CPU goes: per session created (and paid), each process, both runs.
    let per_session = |cpu: &BTreeMap<String, f64>, n: usize| {
        cpu.iter()
            .filter(|(_, s)| **s > 0.0)
            .map(|(name, s)| format!("{name} {:.1}", s * 1000.0 / n.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| CPU ms per session created and paid: sessions | {} | |",
        per_session(&creation_cpu, created.count)
    );
    println!(
        "| CPU ms per session created and paid: bare | {} | |",
        per_session(&bare.creation_cpu, bare.creation.count)
    );
    println!(
        "| auto-stopped at the hold | {auto_stopped} of {} | all |",
        hold_sessions.len()
    );
    println!(
        "| stop due (deadline) -> RemoteStop received by the station, p50 / p99 ({} stops) | {} / {} | p99 < 500 ms |",
        due_to_stop.len(),
        ms(&due_to_stop, 50.0),
        ms(&due_to_stop, 99.0)
    );
    println!(
        "| last MeterValues sent -> RemoteStop received, p50 / p99 (includes the fresh reading's lead of STOP_LATENCY/2 = 1 s) | {} / {} | |",
        ms(&meter_to_stop, 50.0),
        ms(&meter_to_stop, 99.0)
    );
    println!(
        "| RemoteStop round trip p50 / p99 ({} stops) | {} / {} | |",
        round_trip.len(),
        ms(&round_trip, 50.0),
        ms(&round_trip, 99.0)
    );
    println!(
        "| history events per charging session-hour (p50 of {}; {crossed} crossed a continue-as-new) | {:.0} | |",
        events_per_hour.len(),
        percentile(&events_per_hour, 50.0)
    );
    let live = held_max.max(1) as f64;
    for (name, (cpu1, rss1)) in &end {
        let (cpu0, _) = start.get(name).copied().unwrap_or((*cpu1, 0));
        let (_, rss_idle) = idle.get(name).copied().unwrap_or((0.0, 0));
        let core_share = (cpu1 - cpu0) / elapsed.as_secs_f64();
        let target = if name == "worker" {
            "< 20 KiB/session"
        } else {
            ""
        };
        // At the window's start too: what a session's memory does as its history grows.
        let rss0 = start.get(name).map_or(0, |u| u.1);
        println!(
            "| {name}: CPU {:.1} % of a core ({:.3} ms/s per session); RSS {:.0} MiB, {:.1} KiB per session above idle ({:.1} at the window's start) | | {target} |",
            core_share * 100.0,
            core_share * 1000.0 / live,
            *rss1 as f64 / 1048576.0,
            rss1.saturating_sub(rss_idle) as f64 / 1024.0 / live,
            rss0.saturating_sub(rss_idle) as f64 / 1024.0 / live,
        );
    }
    println!("| stops refused by the API | {refused} | 0 |");
    println!("| worker logged a station overrunning the hold | {overruns} | 0 |");
    println!("\n### Money audit (sandbox ledger and store)\n");
    println!("{}", money.table());
    Ok(money.clean())
}

fn main() -> std::process::ExitCode {
    // `cargo bench` passes `--bench`; this binary takes no arguments.
    let Some(tokio) = chargelink_tests::harness::runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    match tokio.block_on(bench()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("the money audit failed: see the table");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("fleet benchmark failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
