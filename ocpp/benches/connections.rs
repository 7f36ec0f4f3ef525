//! Connection benchmark (prints figures; not a timed test):
//! - how many station connections the gateway holds while they heartbeat,
//! - the gateway's memory per connection (RSS delta / n, from /proc/self/status),
//! - round-trip latency (p50 / p99) of a command (TriggerMessage) under that load.
//!
//! The fleet is mixed: every other station speaks OCPP 2.0.1, the rest 1.6
//! (`OCPP_BENCH_V201_EVERY`: every n-th station speaks 2.0.1; 2 by default, 0 for none), so the
//! figures hold both central systems and both command paths.
//!
//! The stations run in a child process (this binary again, `OCPP_BENCH_ROLE=stations`), so
//! each process needs about n file descriptors (10 000 fit under the usual 20 000 limit) and
//! the gateway's RSS holds only the server side.
//!
//! `cargo bench -p ocpp --bench connections` (env: `OCPP_BENCH_STATIONS`, default 10000;
//! `OCPP_BENCH_HEARTBEAT_S`, default 10; `OCPP_BENCH_CALLS`, default 2000;
//! `OCPP_BENCH_V201_EVERY`, default 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ocpp::auth::{StationEntry, StationsFile};
use ocpp::{CallFailed, ChannelEvents, Gateway, GatewayConfig, Protocol, StationHandle, v16, v201};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const KEY: &str = "bench-key-0123456789";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn station_id(n: u64) -> String {
    format!("BENCH{n:05}")
}

/// The version station `n` speaks.
fn protocol_of(n: u64) -> Protocol {
    match env_num("OCPP_BENCH_V201_EVERY", 2) {
        0 => Protocol::V16,
        every if n.is_multiple_of(every) => Protocol::V201,
        _ => Protocol::V16,
    }
}

/// The command of the latency figures: TriggerMessage Heartbeat, in the station's version.
async fn trigger_heartbeat(h: &StationHandle) -> Result<(), CallFailed> {
    match h.protocol() {
        Protocol::V16 => {
            let request = v16::trigger_message::TriggerMessageRequest {
                requested_message: v16::trigger_message::MessageTrigger::Heartbeat,
                connector_id: None,
            };
            h.call::<v16::TriggerMessage>(&request).await.map(drop)
        }
        Protocol::V201 => {
            let request = v201::trigger_message::TriggerMessageRequest {
                requested_message: v201::trigger_message::MessageTrigger::Heartbeat,
                evse: None,
            };
            h.call::<v201::TriggerMessage>(&request).await.map(drop)
        }
    }
}

fn main() {
    if std::env::var("OCPP_BENCH_ROLE").as_deref() == Ok("stations") {
        stations_main();
    } else {
        gateway_main();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn gateway_main() {
    let n = env_num("OCPP_BENCH_STATIONS", 10_000);
    let heartbeat = env_num("OCPP_BENCH_HEARTBEAT_S", 10);
    let calls = env_num("OCPP_BENCH_CALLS", 2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = std::env::temp_dir().join(format!("ocpp-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = StationsFile {
            stations: (1..=n)
                .map(|i| StationEntry::hashed(station_id(i).parse().unwrap(), KEY.as_bytes()))
                .collect(),
        };
        file.write(&dir.join("stations.json")).unwrap();
        let mut config = GatewayConfig::new("bench", dir.join("stations.json"));
        config.bind = ([127, 0, 0, 1], 0).into();
        config.heartbeat_interval = Duration::from_secs(heartbeat);
        config.call_timeout = Duration::from_secs(30);
        // The station registry in a SQLite store file, as `chargelink gateway` keeps it by default.
        let _ = std::fs::remove_file(dir.join("store.db"));
        let store = store::Store::open(&format!(
            "sqlite://{}?mode=rwc",
            dir.join("store.db").display()
        ))
        .await
        .unwrap();
        let gateway = Gateway::bind(config, store).await.unwrap();
        let addr = gateway.local_addr();
        let connections = gateway.connections();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sink = Arc::new(ChannelEvents(tokio::sync::mpsc::unbounded_channel().0));
        let server = tokio::spawn(gateway.run_without_temporal(sink, async {
            let _ = stopped.await;
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_before = rss_kib();

        // The stations, in a child process.
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("OCPP_BENCH_ROLE", "stations")
            .env("OCPP_BENCH_URL", format!("ws://{addr}/ocpp"))
            .env("OCPP_BENCH_STATIONS", n.to_string())
            .env("OCPP_BENCH_HEARTBEAT_S", heartbeat.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let connect_started = Instant::now();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::task::spawn_blocking(move || {
            let line = lines.next().and_then(Result::ok).unwrap_or_default();
            (line, lines)
        });
        let (line, mut lines) = ready.await.unwrap();
        let connect_time = connect_started.elapsed();
        let held = connections.len();
        println!("stations child: {line}");
        // Let the boot-time configuration pushes and a few heartbeat rounds settle.
        tokio::time::sleep(Duration::from_secs(heartbeat.max(5))).await;
        let rss_after = rss_kib();
        let per_conn = (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / held.max(1) as f64;

        // Latency of a command under that load: sequential, then 32 in flight.
        let ids: Vec<_> = (1..=n).map(|i| station_id(i).parse().unwrap()).collect();
        let v201_held = ids
            .iter()
            .filter_map(|id| connections.get(id))
            .filter(|h| h.protocol() == Protocol::V201)
            .count();
        let mut sequential = Vec::with_capacity(calls as usize);
        for i in 0..calls {
            let id = &ids[(i * 7919 % n) as usize];
            let Some(h) = connections.get(id) else { continue };
            let t = Instant::now();
            if trigger_heartbeat(&h).await.is_ok() {
                sequential.push(t.elapsed());
            }
        }
        let concurrent = Arc::new(std::sync::Mutex::new(Vec::with_capacity(calls as usize)));
        let next = Arc::new(AtomicU64::new(0));
        let concurrent_started = Instant::now();
        let workers: Vec<_> = (0..32)
            .map(|_| {
                let (connections, ids, concurrent, next) = (
                    connections.clone(),
                    ids.clone(),
                    concurrent.clone(),
                    next.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= calls {
                            break;
                        }
                        let id = &ids[(i * 104_729 % n) as usize];
                        let Some(h) = connections.get(id) else { continue };
                        let t = Instant::now();
                        if trigger_heartbeat(&h).await.is_ok() {
                            concurrent.lock().unwrap().push(t.elapsed());
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let concurrent_elapsed = concurrent_started.elapsed();
        let mut concurrent = concurrent.lock().unwrap().clone();
        sequential.sort();
        concurrent.sort();

        // Stop the stations; they report the heartbeats they got answered.
        drop(child.stdin.take());
        let report = tokio::task::spawn_blocking(move || lines.next().and_then(Result::ok))
            .await
            .unwrap()
            .unwrap_or_default();
        let _ = child.wait();
        let _ = stop.send(());
        let _ = server.await;
        let _ = std::fs::remove_dir_all(&dir);

        println!();
        println!("== OCPP gateway connection benchmark ==");
        println!("cores: {}", std::thread::available_parallelism().map_or(0, |n| n.get()));
        println!(
            "stations requested: {n}, held by the gateway: {held} ({} OCPP 1.6, {v201_held} OCPP 2.0.1)",
            held.saturating_sub(v201_held)
        );
        println!("connect + BootNotification of all: {connect_time:.2?}");
        println!("heartbeat interval: {heartbeat} s (≈ {} heartbeats/s)", n / heartbeat.max(1));
        println!(
            "gateway RSS: {} MiB before, {} MiB with the connections → {:.1} KiB per connection",
            rss_before / 1024,
            rss_after / 1024,
            per_conn / 1024.0
        );
        println!(
            "TriggerMessage round trip, sequential ({} calls): p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            sequential.len(),
            percentile(&sequential, 50.0),
            percentile(&sequential, 99.0),
            sequential.last().copied().unwrap_or_default()
        );
        println!(
            "TriggerMessage round trip, 32 in flight ({} calls, {:.0}/s): p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            concurrent.len(),
            concurrent.len() as f64 / concurrent_elapsed.as_secs_f64(),
            percentile(&concurrent, 50.0),
            percentile(&concurrent, 99.0),
            concurrent.last().copied().unwrap_or_default()
        );
        println!("stations child at exit: {report}");
    });
}

/// The child: `n` raw stations that boot, heartbeat and answer every CALL with Accepted.
fn stations_main() {
    let url = std::env::var("OCPP_BENCH_URL").unwrap();
    let n = env_num("OCPP_BENCH_STATIONS", 10_000);
    let heartbeat = Duration::from_secs(env_num("OCPP_BENCH_HEARTBEAT_S", 10));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let answered = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let booted = Arc::new(tokio::sync::Semaphore::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        let rss_before = rss_kib();
        for i in 1..=n {
            let (url, answered, failed, booted, gate) = (
                url.clone(),
                answered.clone(),
                failed.clone(),
                booted.clone(),
                gate.clone(),
            );
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.unwrap();
                let id = station_id(i);
                let result = station(
                    &url,
                    &id,
                    protocol_of(i),
                    heartbeat,
                    &answered,
                    &booted,
                    permit,
                )
                .await;
                if result.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    booted.add_permits(1);
                }
            });
        }
        let all = booted
            .acquire_many(u32::try_from(n).unwrap())
            .await
            .unwrap();
        all.forget();
        println!(
            "ready: {} connected, {} failed, child RSS {} MiB",
            n - failed.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            rss_kib().saturating_sub(rss_before) / 1024
        );
        std::io::stdout().flush().unwrap();
        // Run until the parent closes stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await
        .unwrap();
        println!(
            "{} heartbeats/commands answered, {} stations failed",
            answered.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed)
        );
        std::io::stdout().flush().unwrap();
    });
}

async fn station(
    url: &str,
    id: &str,
    protocol: Protocol,
    heartbeat: Duration,
    answered: &AtomicU64,
    booted: &tokio::sync::Semaphore,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let mut req = format!("{url}/{id}").into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(protocol.subprotocol()),
    );
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&ocpp::auth::basic_header(id, KEY))?,
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
    let (mut tx, mut rx) = ws.split();
    let boot = match protocol {
        Protocol::V16 => {
            r#"[2,"boot","BootNotification",{"chargePointVendor":"bench","chargePointModel":"b"}]"#
        }
        Protocol::V201 => {
            r#"[2,"boot","BootNotification",{"chargingStation":{"vendorName":"bench","model":"b"},"reason":"PowerUp"}]"#
        }
    };
    tx.send(Message::text(boot)).await?;
    let mut boot_pending = true;
    drop(permit);
    // Spread the heartbeats over the interval.
    let offset = Duration::from_millis(rand::random::<u64>() % heartbeat.as_millis().max(1) as u64);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, heartbeat);
    let mut n = 0_u64;
    loop {
        tokio::select! {
            msg = rx.next() => {
                let Some(msg) = msg else { anyhow::bail!("closed") };
                let Message::Text(text) = msg? else { continue };
                let v: serde_json::Value = serde_json::from_str(text.as_str())?;
                match v[0].as_u64() {
                    Some(2) => {
                        // The gateway's own CALLs: the metering configuration after the boot
                        // (2.0.1: SetVariables, one result per variable) and TriggerMessage.
                        let payload = if v[2] == "SetVariables" {
                            let results: Vec<serde_json::Value> = v[3]["setVariableData"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|d| serde_json::json!({"attributeStatus": "Accepted",
                                    "component": d["component"], "variable": d["variable"]}))
                                .collect();
                            serde_json::json!({"setVariableResult": results})
                        } else {
                            serde_json::json!({"status": "Accepted"})
                        };
                        let reply = serde_json::json!([3, v[1], payload]);
                        tx.send(Message::text(reply.to_string())).await?;
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(3) if boot_pending && v[1] == "boot" => {
                        boot_pending = false;
                        booted.add_permits(1);
                    }
                    Some(3) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            _ = ticker.tick() => {
                n += 1;
                tx.send(Message::text(format!(r#"[2,"hb{n}","Heartbeat",{{}}]"#))).await?;
            }
        }
    }
}
