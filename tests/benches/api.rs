//! API benchmark on this machine: `GET /sessions/:id` and `POST /sessions` latency (p50 / p99)
//! and throughput, sequential and concurrent, against the real stack — a Temporal dev server,
//! the SQLite store, a session worker, the Stripe sandbox (creating each session's checkout
//! page over HTTP) and the API over TCP. Also `chargelink.v1.SessionService/Get` over gRPC on
//! the same port, for comparison.
//!
//! Run: `cargo bench -p chargelink-tests --bench api` (release build). Sizes:
//! `CHARGELINK_BENCH_SCALE` multiplies the request counts (default 1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark binary; a panic is a failed run"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chargelink_tests::fixtures::random_body;
use chargelink_tests::stack;
use chrono::Utc;
use domain::ids::RateId;
use serde_json::{Value, json};
use store::{NewChargeStation, NewConnector};

/// One measured scenario.
struct Report {
    name: String,
    requests: usize,
    concurrency: usize,
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Report {
    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        // Nearest rank.
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {:<38} | {:>5} | {:>3} | {:>8.2} | {:>8.2} | {:>8.0} |",
            self.name,
            self.requests,
            self.concurrency,
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            self.requests as f64 / self.wall.as_secs_f64(),
        );
    }
}

/// Runs `op(i)` for i in 0..requests on `concurrency` tasks; each call is timed.
async fn measure<F, Fut>(
    name: &str,
    requests: usize,
    concurrency: usize,
    op: F,
) -> anyhow::Result<Report>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return Ok::<_, anyhow::Error>(latencies);
                    }
                    let t = Instant::now();
                    op(i).await.with_context(|| format!("request {i}"))?;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    for t in tasks {
        latencies.extend(t.await?.with_context(|| name.to_owned())?);
    }
    Ok(Report {
        name: name.to_owned(),
        requests,
        concurrency,
        latencies,
        wall: started.elapsed(),
    })
}

async fn get_ok(http: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<()> {
    let res = http.get(url).bearer_auth(key).send().await?;
    let status = res.status();
    let body = res.bytes().await?;
    ensure!(status == reqwest::StatusCode::OK, "{status}");
    ensure!(!body.is_empty());
    Ok(())
}

async fn post_session(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let res = http
        .post(format!("{api}/sessions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await?;
    let status = res.status();
    let v: Value = res.json().await?;
    ensure!(status == reqwest::StatusCode::CREATED, "{status}: {v}");
    Ok(v)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let scale: usize = std::env::var("CHARGELINK_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut s = stack::start().await?;
        let shutdown = s.worker.shutdown_handle();
        let t = stack::tenant(&s.store).await?;

        // Every POST needs a free connector (a busy one is refused): one station with enough.
        let post_seq = 100 * scale;
        let post_conc = 200 * scale;
        let rate_id: RateId = s
            .store
            .connector(&t.org, &t.connector)
            .await?
            .context("tenant connector")?
            .rate_id
            .parse()?;
        let station = format!("CP-BENCH-{}", &random_body()[..8]);
        let now = Utc::now();
        s.store
            .create_charge_station(
                &t.org,
                NewChargeStation {
                    id: station.clone(),
                    name: "bench".into(),
                    auth_key: random_body(),
                    security_profile: Default::default(),
                },
                now,
            )
            .await?;
        let mut connectors = Vec::new();
        for n in 0..post_seq + post_conc {
            let id = format!("con_{}", random_body());
            s.store
                .create_connector(
                    &t.org,
                    NewConnector {
                        id: id.clone(),
                        charge_station_id: station.clone(),
                        connector_number: i32::try_from(n + 1)?,
                        rate_id: rate_id.clone(),
                        max_power_w: None,
                    },
                    now,
                )
                .await?;
            connectors.push(id);
        }
        let numbers: Vec<i32> = (1..=i32::try_from(connectors.len())?).collect();
        stack::stand_in_online(&s.store, &station, &numbers).await?;
        let connectors = Arc::new(connectors);

        let api = s.api.clone();
        let key = t.key.clone();
        let user = t.user.clone();
        let http = reqwest::Client::new();
        let bench = async move {
            // A running session (GET asks its workflow for the live cost) and a finished one
            // (GET answers from the read model).
            let running = post_session(
                &http,
                &api,
                &key,
                json!({"user": user, "connector": t.connector, "type": "payment_link"}),
            )
            .await?;
            let running_id = running["_id"].as_str().context("id")?.to_owned();
            let finished = post_session(
                &http,
                &api,
                &key,
                json!({"user": user, "connector": connectors[0], "type": "payment_link"}),
            )
            .await?;
            let finished_id = finished["_id"].as_str().context("id")?.to_owned();
            http.get(format!("{api}/payments/{finished_id}/cancel"))
                .send()
                .await?
                .error_for_status()?;
            for _ in 0..100 {
                let v: Value = http
                    .get(format!("{api}/sessions/{finished_id}"))
                    .bearer_auth(&key)
                    .send()
                    .await?
                    .json()
                    .await?;
                if v["status"] == "canceled" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }

            let mut reports = Vec::new();
            for (label, id) in [("running", &running_id), ("finished", &finished_id)] {
                let url = Arc::new(format!("{api}/sessions/{id}"));
                // Warm the connection pool and caches.
                for _ in 0..20 {
                    get_ok(&http, &url, &key).await?;
                }
                for (n, c) in [(500 * scale, 1), (2000 * scale, 8)] {
                    let (http, url, key) = (http.clone(), url.clone(), key.clone());
                    reports.push(
                        measure(&format!("GET /sessions/:id ({label})"), n, c, move |_| {
                            let (http, url, key) = (http.clone(), url.clone(), key.clone());
                            async move { get_ok(&http, &url, &key).await }
                        })
                        .await?,
                    );
                }
            }

            // gRPC Get of the running session over the same port, for comparison.
            let channel = tonic::transport::Channel::from_shared(api.clone())?
                .connect()
                .await?;
            for (n, c) in [(500 * scale, 1), (2000 * scale, 8)] {
                let (channel, key, id) = (channel.clone(), key.clone(), running_id.clone());
                reports.push(
                    measure("gRPC SessionService/Get (running)", n, c, move |_| {
                        let mut client =
                            grpc::pb::session_service_client::SessionServiceClient::new(
                                channel.clone(),
                            );
                        let mut req = tonic::Request::new(grpc::pb::GetRequest { id: id.clone() });
                        req.metadata_mut()
                            .insert("authorization", format!("Bearer {key}").parse().unwrap());
                        async move {
                            client.get(req).await?;
                            Ok(())
                        }
                    })
                    .await?,
                );
            }

            // POST /sessions: each on its own connector (index 0 is the finished session's).
            let free = Arc::new(AtomicUsize::new(1));
            for (n, c) in [(post_seq - 1, 1), (post_conc, 8)] {
                let (http, api, key, user, connectors, free) = (
                    http.clone(),
                    api.clone(),
                    key.clone(),
                    user.clone(),
                    connectors.clone(),
                    free.clone(),
                );
                reports.push(
                    measure("POST /sessions", n, c, move |_| {
                        let connector = connectors[free.fetch_add(1, Ordering::Relaxed)].clone();
                        let body =
                            json!({"user": user, "connector": connector, "type": "payment_link"});
                        let (http, api, key) = (http.clone(), api.clone(), key.clone());
                        async move { post_session(&http, &api, &key, body).await.map(drop) }
                    })
                    .await?,
                );
            }

            println!();
            println!(
                "chargelink API benchmark ({} CPUs, release build, SQLite, Temporal dev server)",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            );
            println!(
                "| {:<38} | {:>5} | {:>3} | {:>8} | {:>8} | {:>8} |",
                "request", "n", "c", "p50 ms", "p99 ms", "req/s"
            );
            println!(
                "|{:-<40}|{:->7}|{:->5}|{:->10}|{:->10}|{:->10}|",
                "", "", "", "", "", ""
            );
            for r in &reports {
                r.print();
            }
            Ok::<_, anyhow::Error>(())
        };
        let (worker, result) = tokio::join!(s.worker.run(), async {
            let r = bench.await;
            shutdown();
            r
        });
        if let Err(e) = worker {
            eprintln!("worker: {e}");
        }
        result
    })
}
