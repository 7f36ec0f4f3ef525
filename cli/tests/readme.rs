//! The README's walk-through, run exactly as written: the shell blocks marked
//! `<!-- walkthrough:N -->` are fed, in order, to one `bash` against a stack of real processes
//! set up the way `scripts/dev` sets it up (seeded by `scripts/seed-demo`, `.data/demo.env` with
//! the addresses, the demo station `CP-DEMO-1` simulated, `target/debug/chargelink` at hand). The
//! browser step between the blocks is a real headless Chromium paying on the hosted page; the
//! waits between blocks are the ones a reader makes. Then the outcome is checked: the capture,
//! the receipt, and every webhook event printed by `chargelink webhooks listen` with its signature verified.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chargelink_tests::fixtures::HAPPY_PATH_EVENTS;
use chargelink_tests::processes::{self, Org, ProcessStack};
use serde_json::Value;

/// The marked blocks of README.md, in order.
fn walkthrough_blocks() -> anyhow::Result<Vec<String>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))?;
    let mut blocks = Vec::new();
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("<!-- walkthrough:") {
        rest = &rest[at..];
        let n: usize = rest["<!-- walkthrough:".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .context("a walkthrough marker without a number")?;
        ensure!(
            n == blocks.len() + 1,
            "walkthrough block {n} is out of order"
        );
        let open = rest
            .find("```sh\n")
            .context("no ```sh block after a marker")?
            + "```sh\n".len();
        let close = rest[open..].find("\n```").context("an unclosed block")? + open;
        blocks.push(rest[open..close].to_owned());
        rest = &rest[close..];
    }
    Ok(blocks)
}

/// One `bash` fed the blocks through stdin; its output (stdout and stderr) collected in lines.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<Vec<String>>>,
}

impl Shell {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new("bash")
            // Its own process group, so the receiver it starts in the background ends with it.
            .process_group(0)
            .current_dir(dir)
            .env_clear()
            .envs(std::env::var("PATH").map(|p| ("PATH", p)))
            .envs(std::env::var("HOME").map(|p| ("HOME", p)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().context("stdout")?),
            Box::new(child.stderr.take().context("stderr")?),
        ];
        for stream in streams {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line);
                }
            });
        }
        let stdin = child.stdin.take().context("stdin")?;
        Ok(Self { child, stdin, out })
    }

    fn lines(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    /// Runs `block`; the lines it printed (the background receiver's included).
    fn run(&mut self, n: usize, block: &str) -> anyhow::Result<Vec<String>> {
        let before = self.lines().len();
        let marker = format!("__walkthrough_block_{n}_done__");
        // On a line of its own even if the block's last output has no newline.
        writeln!(self.stdin, "{block}\nprintf '\\n%s\\n' {marker}")?;
        self.stdin.flush()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let lines = self.lines();
            if lines[before..].iter().any(|l| l == &marker) {
                return Ok(lines[before..]
                    .iter()
                    .filter(|l| **l != marker)
                    .cloned()
                    .collect());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("bash exited ({status}) in block {n}: {lines:#?}");
            }
            ensure!(
                Instant::now() < deadline,
                "block {n} did not finish in 60 s: {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every JSON value printed in `lines` (a line may hold several, or text before them).
fn json_values(lines: &[String]) -> Vec<Value> {
    let mut values = Vec::new();
    for line in lines {
        let Some(at) = line.find(['{', '[']) else {
            continue;
        };
        values.extend(
            serde_json::Deserializer::from_str(&line[at..])
                .into_iter::<Value>()
                .map_while(Result::ok),
        );
    }
    values
}

/// The first JSON value among `lines` that satisfies `is`.
fn json_line(lines: &[String], is: impl Fn(&Value) -> bool) -> Option<Value> {
    json_values(lines).into_iter().find(|v| is(v))
}

/// `KEY=value` lines of a `.env` file.
fn env_value(env: &str, key: &str) -> anyhow::Result<String> {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .with_context(|| format!("{key} missing from demo.env:\n{env}"))
}

/// The receiver's verified lines for `session`: the event types in order.
fn printed_events(lines: &[String], session: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains(session) && l.ends_with("signature verified"))
        // The receiver's line starts at its event id, whatever was printed before it.
        .filter_map(|l| l.rfind("evt_").map(|at| &l[at..]))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

async fn the_walkthrough_runs_as_written(stack: &ProcessStack) -> anyhow::Result<()> {
    let blocks = walkthrough_blocks()?;
    ensure!(blocks.len() == 4, "4 marked blocks, found {}", blocks.len());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");

    // What scripts/dev does: seed with scripts/seed-demo, add this run's addresses, start the
    // demo station; and the binary where `cargo build` puts it.
    let seeded = Command::new(root.join("scripts/seed-demo"))
        .args([&stack.api, &stack.admin_token])
        .output()?;
    ensure!(
        seeded.status.success(),
        "seed-demo: {}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let webhooks = format!("127.0.0.1:{}", chargelink_tests::devserver::free_port()?);
    let env = format!(
        "{}DEMO_API={}\nDEMO_WEBHOOKS={webhooks}\n",
        String::from_utf8(seeded.stdout)?,
        stack.api
    );
    std::fs::write(stack.dir.join(".data/demo.env"), &env)?;
    std::fs::create_dir_all(stack.dir.join("target/debug"))?;
    std::os::unix::fs::symlink(&stack.bin, stack.dir.join("target/debug/chargelink"))?;
    let station = processes::Station {
        id: "CP-DEMO-1".into(),
        password: env_value(&env, "DEMO_STATION_KEY")?,
        connectors: vec![
            env_value(&env, "DEMO_CONNECTOR_1")?,
            env_value(&env, "DEMO_CONNECTOR_2")?,
        ],
    };
    stack.sim(&station, &[]).await?;
    let org = Org {
        key: env_value(&env, "DEMO_API_KEY")?,
        user: env_value(&env, "DEMO_USER")?,
        rate: env_value(&env, "DEMO_RATE")?,
    };

    let mut shell = Shell::start(&stack.dir)?;
    // 1-3: receiver, session, payment page.
    let out = shell.run(1, &blocks[0])?;
    let created = json_line(&out, |v| {
        v["_id"].as_str().is_some_and(|i| i.starts_with("ses_"))
    })
    .with_context(|| format!("the created session is printed: {out:#?}"))?;
    let sid = created["_id"].as_str().context("id")?.to_owned();
    let url = out
        .iter()
        .find(|l| l.starts_with("http") && l.contains("/c/pay/"))
        .with_context(|| format!("the payment url is printed: {out:#?}"))?
        .clone();
    ensure!(
        Some(url.as_str()) == created["payment"]["url"].as_str(),
        "{url} vs {created}"
    );
    let seen = tokio::task::spawn_blocking(move || {
        chargelink_tests::browser::pay_in_browser(&url, "4242 4242 4242 4242")
    })
    .await??;
    ensure!(
        seen["amount"].as_str().is_some_and(|a| a.contains("18.00")),
        "the page shows the demo hold: {seen}"
    );
    // The reader waits until the station charges and something is owed (about 4 s here; with
    // nothing owed the hold would be released instead of captured).
    stack
        .wait_session(&org, &sid, Duration::from_secs(60), "a cost", |s| {
            s["status"] == "started" && s["cost"]["amount"].as_i64() > Some(0)
        })
        .await?;

    // 4: watch.
    let out = shell.run(2, &blocks[1])?;
    let watched = json_line(&out, |v| v["_id"] == sid.as_str())
        .with_context(|| format!("the session is printed: {out:#?}"))?;
    ensure!(
        watched["status"] == "started" && watched["cost"]["amount"].is_i64(),
        "{watched}"
    );

    // 5: pause, resume, stop.
    let out = shell.run(3, &blocks[2])?;
    let answers: Vec<Value> = json_values(&out)
        .into_iter()
        .filter(|v| v["_id"] == sid.as_str())
        .collect();
    let statuses: Vec<&str> = answers
        .iter()
        .filter_map(|v| v["status"].as_str())
        .collect();
    ensure!(
        statuses.len() == 3 && statuses[0] == "paused" && statuses[1] == "started",
        "pause, resume and stop answer the session: {out:#?}"
    );
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    // The reader sees the receiver print the last events.
    let deadline = Instant::now() + Duration::from_secs(20);
    while printed_events(&shell.lines(), &sid).len() < HAPPY_PATH_EVENTS.len()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 6: the capture and the event log.
    let out = shell.run(4, &blocks[3])?;
    let last = json_line(&out, |v| v["_id"] == sid.as_str())
        .with_context(|| format!("the session is printed: {out:#?}"))?;
    let cost = last["cost"]["amount"].as_i64().context("cost")?;
    ensure!(
        last["status"] == "ended"
            && last["payment"]["status"] == "captured"
            && last["payment"]["captured_amount"] == cost
            && cost > 0
            && last == ended,
        "captured the final cost: {last}"
    );
    // 7: the receipt adds up to the capture, at the URL the session shows, with the card.
    let receipt = json_line(&out, |v| v["session"] == sid.as_str())
        .with_context(|| format!("the receipt is printed: {out:#?}"))?;
    ensure!(
        receipt["total_incl_vat"] == cost
            && receipt["captured"] == cost
            && receipt["released"].as_i64()
                == last["payment"]["authorized_amount"]
                    .as_i64()
                    .map(|a| a - cost)
            && receipt["url"] == last["receipt_url"]
            && last["receipt_url"]
                .as_str()
                .is_some_and(|u| u.contains("/receipts/rct_"))
            && receipt["card"]["last4"] == "4242"
            && receipt["operator"]["tax_id"] == "US 12-3456789",
        "the receipt: {receipt}"
    );
    let log = json_line(&out, |v| v["data"].is_array())
        .with_context(|| format!("the event log is printed: {out:#?}"))?;
    let mut logged: Vec<(u64, String)> = log["data"]
        .as_array()
        .context("data")?
        .iter()
        .map(|e| {
            (
                e["event"]["seq"].as_u64().unwrap_or(0),
                e["event"]["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    logged.sort();
    let logged: Vec<&str> = logged.iter().map(|(_, t)| t.as_str()).collect();
    ensure!(logged == HAPPY_PATH_EVENTS, "/events lists {logged:?}");
    let printed = printed_events(&shell.lines(), &sid);
    ensure!(
        printed == HAPPY_PATH_EVENTS,
        "the receiver printed {printed:?}; all output: {:#?}",
        shell.lines()
    );
    // `kill $RECEIVER` ended it: nothing listens there any more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        tokio::net::TcpStream::connect(&webhooks).await.is_err(),
        "the receiver was stopped"
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    processes::run_scenarios(
        Path::new(env!("CARGO_BIN_EXE_chargelink")),
        &[],
        vec![("the_walkthrough_runs_as_written", |s| {
            Box::pin(the_walkthrough_runs_as_written(s))
        })],
    )
}
