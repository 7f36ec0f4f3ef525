//! `chargelink webhooks listen` as a user runs it: a signed event is accepted and printed, a
//! tampered, unsigned or wrongly signed one is refused with a warning.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const SECRET: &str = "whsec_listen_test";

struct Listener {
    child: Child,
    lines: mpsc::Receiver<String>,
    url: String,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen(json: bool) -> Listener {
    let port = chargelink_tests::devserver::free_port().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chargelink"));
    cmd.args([
        "webhooks",
        "listen",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .env("CHARGELINK_WEBHOOK_SECRET", SECRET)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd.spawn().unwrap();
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    Listener {
        child,
        lines,
        url: format!("http://127.0.0.1:{port}/hooks"),
    }
}

impl Listener {
    /// The next line that contains `text`, within 10 s.
    fn line_with(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {text:?} within 10 s"),
            }
        }
    }
}

fn event() -> Value {
    json!({
        "_id": "evt_0123456789abcdef_0006",
        "type": "session.payment.captured",
        "seq": 6,
        "createdAt": "2026-11-24T10:00:00Z",
        "data": {
            "_id": "ses_0123456789abcdef",
            "status": "ended",
            "cost": {"amount": 612, "currency": "usd"},
            "payment": {"status": "captured", "currency": "usd", "authorized_amount": 1800, "captured_amount": 612}
        }
    })
}

async fn post(url: &str, body: &[u8], signature: Option<String>) -> u16 {
    // The receiver may still be binding its port.
    for _ in 0..100 {
        let mut req = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = &signature {
            req = req.header("chargelink-signature", s);
        }
        match req.send().await {
            Ok(r) => return r.status().as_u16(),
            Err(e) if e.is_connect() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the receiver never listened")
}

fn sign(body: &[u8]) -> String {
    activities::webhooks::sign(SECRET, chrono::Utc::now().timestamp(), body)
}

#[tokio::test]
async fn a_signed_event_is_accepted_and_printed() {
    let l = listen(false);
    let body = serde_json::to_vec(&event()).unwrap();
    assert_eq!(post(&l.url, &body, Some(sign(&body))).await, 200);
    let line = l.line_with("evt_0123456789abcdef_0006");
    for part in [
        "session.payment.captured",
        "ses_0123456789abcdef",
        "status=ended",
        "payment=captured",
        "cost=612",
        "hold=1800",
        "captured=612",
        "USD",
        "signature verified",
    ] {
        assert!(line.contains(part), "{part:?} in {line:?}");
    }
}

#[tokio::test]
async fn json_lines_carry_the_event() {
    let l = listen(true);
    let body = serde_json::to_vec(&event()).unwrap();
    assert_eq!(post(&l.url, &body, Some(sign(&body))).await, 200);
    let line: Value = serde_json::from_str(&l.line_with("evt_0123456789abcdef_0006")).unwrap();
    assert_eq!(line["type"], "session.payment.captured");
    assert_eq!(line["session"], "ses_0123456789abcdef");
    assert_eq!(line["captured_amount"], 612);
    assert_eq!(line["signature"], "verified");
}

#[tokio::test]
async fn tampered_unsigned_and_wrongly_signed_events_are_refused() {
    let l = listen(false);
    let body = serde_json::to_vec(&event()).unwrap();
    let mut tampered = event();
    tampered["data"]["payment"]["captured_amount"] = json!(1);
    let tampered = serde_json::to_vec(&tampered).unwrap();
    assert_eq!(post(&l.url, &tampered, Some(sign(&body))).await, 400);
    assert!(l.line_with("warning").contains("signature does not match"));
    assert_eq!(post(&l.url, &body, None).await, 401);
    assert!(l.line_with("warning").contains("no chargelink-signature"));
    let other = activities::webhooks::sign("whsec_other", chrono::Utc::now().timestamp(), &body);
    assert_eq!(post(&l.url, &body, Some(other)).await, 400);
    assert!(l.line_with("warning").contains("refused (400)"));
    // A good one after the bad ones still goes through.
    assert_eq!(post(&l.url, &body, Some(sign(&body))).await, 200);
    assert!(l.line_with("evt_").contains("signature verified"));
}
