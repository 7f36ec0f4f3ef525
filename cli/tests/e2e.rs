//! End to end with real processes (issue #7): a Temporal dev server and the `chargelink`
//! binary's `migrate`, `stripe-sandbox`, `worker`, `api`, `gateway`, `sim` and `webhooks listen`,
//! started once for this test binary on free ports with one SQLite store file, seeded through the
//! admin REST API. Every activity is the real one; the only stand-ins are the Stripe sandbox and
//! the simulated stations. Each scenario has its own organization, station and webhook receiver.
//! The crash scenarios (SIGKILL) are in `e2e_crash.rs`, the README walk-through in `readme.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use chargelink_tests::processes::{self, ProcessStack};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};

type Scenario =
    fn(&ProcessStack) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>;

fn id(session: &Value) -> String {
    session["_id"].as_str().unwrap_or_default().to_owned()
}

fn intent(session: &Value) -> anyhow::Result<String> {
    Ok(session["payment"]["stripe"]["intent_id"]
        .as_str()
        .context("the session has no payment intent")?
        .to_owned())
}

const ENERGY_AND_TIME: &str =
    r#"[{"type":"ENERGY","price":"0.30"},{"type":"TIME","price":"1.20"}]"#;

async fn happy_path_over_rest_with_a_browser_payment(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 2).await?;
    stack.sim(&station, &["--power-w", "22000"]).await?;
    let hooks = stack.receiver(&org, "hooks-happy").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    ensure!(created["payment"]["authorized_amount"] == 1800, "{created}");
    let url = created["payment"]["url"]
        .as_str()
        .context("payment url")?
        .to_owned();
    let seen =
        tokio::task::spawn_blocking(move || processes::pay_in_browser(&url, "4242 4242 4242 4242"))
            .await??;
    ensure!(
        seen["url"]
            .as_str()
            .is_some_and(|u| u.contains(&format!("/payments/{sid}/success"))),
        "the browser is back on chargelink: {seen}"
    );
    let started = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "charging", |s| {
            s["status"] == "started" && s["cost"]["details"]["energy_wh"].as_i64() > Some(0)
        })
        .await?;
    ensure!(started["payment"]["status"] == "authorized", "{started}");
    let (status, paused) = stack
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{sid}/pause"),
            &org.key,
            None,
        )
        .await?;
    ensure!(
        status == 200 && paused["status"] == "paused",
        "pause: {status} {paused}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resumed = stack
        .get(&format!("/sessions/{sid}/resume"), &org.key)
        .await?;
    ensure!(resumed["status"] == "started", "resume: {resumed}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack
        .post(&format!("/sessions/{sid}/stop"), &org.key, json!({}))
        .await?;
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    let cost = ended["cost"]["amount"].as_i64().context("cost")?;
    ensure!(
        ended["status"] == "ended" && ended["end_reason"] == "stopped_by_api",
        "{ended}"
    );
    ensure!(
        cost > 0 && ended["payment"]["captured_amount"] == cost,
        "captured the final cost: {ended}"
    );
    let (captures, cancels) = stack.money_moves(&intent(&ended)?).await?;
    ensure!(
        captures.len() == 1 && cancels == 0,
        "one capture: {captures:?}"
    );
    ensure!(
        captures[0]["params"]["amount_to_capture"] == cost.to_string().as_str(),
        "capture amount: {}",
        captures[0]
    );
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.started",
                "session.paused",
                "session.resumed",
                "session.ended",
                "session.payment.captured",
            ],
        )
        .await
}

async fn auto_stop_before_the_hold_is_passed(stack: &ProcessStack) -> anyhow::Result<()> {
    // 360 USD/h = 10 cents a second against a 1.00 USD hold: stops after a few seconds.
    let org = stack
        .org(
            json!({"minimum_amount_to_start_session": 100}),
            json!([{"type": "TIME", "price": "360.00"}]),
        )
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-autostop").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    stack.pay(&created).await?;
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(60), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    let cost = ended["cost"]["amount"].as_i64().context("cost")?;
    ensure!(ended["end_reason"] == "hold_limit", "{ended}");
    ensure!(
        cost > 0 && cost <= 100 && ended["payment"]["captured_amount"] == cost,
        "captured the final cost, never above the hold: {ended}"
    );
    let (captures, cancels) = stack.money_moves(&intent(&ended)?).await?;
    ensure!(captures.len() == 1 && cancels == 0, "{captures:?}");
    ensure!(
        captures[0]["params"]["amount_to_capture"] == cost.to_string().as_str(),
        "{}",
        captures[0]
    );
    // The rest of the hold is released: nothing is left capturable on the intent.
    let pi: Value = stack
        .http
        .get(format!(
            "{}/v1/payment_intents/{}",
            stack.sandbox,
            intent(&ended)?
        ))
        .bearer_auth("sk_test_chargelink_e2e")
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        pi["status"] == "succeeded"
            && pi["amount_received"] == cost
            && pi["amount_capturable"] == 0,
        "the intent after capture: {pi}"
    );
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.started",
                "session.ended",
                "session.payment.captured",
            ],
        )
        .await
}

async fn parking_time_refuses_stop_and_unplug_ends_it(stack: &ProcessStack) -> anyhow::Result<()> {
    // Parking: 36 USD/h = 1 cent a second while not charging (paused counts).
    let org = stack
        .org(
            json!({}),
            json!([{"type": "ENERGY", "price": "0.30"}, {"type": "PARKING_TIME", "price": "36.00"}]),
        )
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim(&station, &["--unplug-after", "8"]).await?;
    let hooks = stack.receiver(&org, "hooks-parking").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    stack.pay(&created).await?;
    stack
        .wait_session(&org, &sid, Duration::from_secs(30), "started", |s| {
            s["status"] == "started"
        })
        .await?;
    let (status, refused) = stack
        .call(
            reqwest::Method::POST,
            &format!("/sessions/{sid}/stop"),
            &org.key,
            None,
        )
        .await?;
    ensure!(
        (400..500).contains(&status) && refused.to_string().contains("stop_not_allowed"),
        "stop refused: {status} {refused}"
    );
    // Paused, the car stays parked until the driver unplugs.
    let paused = stack
        .post(&format!("/sessions/{sid}/pause"), &org.key, json!({}))
        .await?;
    ensure!(paused["status"] == "paused", "{paused}");
    let ended = stack
        .wait_session(&org, &sid, Duration::from_secs(40), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    ensure!(ended["end_reason"] == "unplugged", "{ended}");
    let parking = ended["cost"]["details"]["parking_seconds"]
        .as_i64()
        .context("parking_seconds")?;
    let cost = ended["cost"]["amount"].as_i64().context("cost")?;
    ensure!(
        parking >= 3 && cost >= parking,
        "parking billed at 1 cent a second: {ended}"
    );
    ensure!(ended["payment"]["captured_amount"] == cost, "{ended}");
    let (captures, cancels) = stack.money_moves(&intent(&ended)?).await?;
    ensure!(captures.len() == 1 && cancels == 0, "{captures:?}");
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.started",
                "session.paused",
                "session.ended",
                "session.payment.captured",
            ],
        )
        .await
}

async fn an_unpaid_session_expires(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 1).await?;
    // Sessions are only created on a connected station's working connector.
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-expiry").await?;
    let created = stack
        .create_session(
            &org,
            &station.connectors[0],
            json!({"target": {"payment_expiry_time": 2}}),
        )
        .await?;
    let sid = id(&created);
    let expired = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "expired", |s| {
            s["status"] == "expired"
        })
        .await?;
    ensure!(
        expired["payment"]["status"] == "expired" && expired["end_reason"] == "payment_expired",
        "{expired}"
    );
    // The page is closed at the provider: paying now is refused.
    let cs = expired["payment"]["stripe"]["checkout_session_id"]
        .as_str()
        .context("checkout id")?;
    let late = stack
        .http
        .post(format!("{}/_sandbox/checkout/{cs}/complete", stack.sandbox))
        .send()
        .await?;
    ensure!(
        !late.status().is_success(),
        "a late payment is refused: {}",
        late.status()
    );
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.expired",
            ],
        )
        .await
}

async fn the_driver_cancels_on_the_payment_page(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 1).await?;
    // Sessions are only created on a connected station's working connector.
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-cancel").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    // Where the hosted page's "back" link sends the driver.
    let page = stack
        .http
        .get(format!("{}/payments/{sid}/cancel", stack.api))
        .send()
        .await?
        .text()
        .await?;
    ensure!(page.contains("data-status=\"canceled\""), "{page}");
    let canceled = stack
        .wait_session(&org, &sid, Duration::from_secs(30), "canceled", |s| {
            s["status"] == "canceled"
        })
        .await?;
    ensure!(canceled["end_reason"] == "driver_canceled", "{canceled}");
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.canceled",
            ],
        )
        .await
}

/// A paid session whose station never starts: the hold is released with one cancel.
async fn paid_but_not_started(
    stack: &ProcessStack,
    sim_flag: &str,
    hooks_name: &str,
) -> anyhow::Result<()> {
    let org = stack
        .org(
            json!({"start_window": 5}),
            serde_json::from_str(ENERGY_AND_TIME)?,
        )
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim(&station, &[sim_flag]).await?;
    let hooks = stack.receiver(&org, hooks_name).await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    stack.pay(&created).await?;
    let canceled = stack
        .wait_session(&org, &sid, Duration::from_secs(40), "canceled", |s| {
            s["status"] == "canceled" && s["payment"]["status"] == "canceled"
        })
        .await?;
    ensure!(canceled["end_reason"] == "start_failed", "{canceled}");
    let (captures, cancels) = stack.money_moves(&intent(&canceled)?).await?;
    ensure!(
        captures.is_empty() && cancels == 1,
        "one cancel, no capture: {captures:?} {cancels}"
    );
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.canceled",
                "session.payment.canceled",
            ],
        )
        .await
}

async fn the_station_refuses_to_start(stack: &ProcessStack) -> anyhow::Result<()> {
    paid_but_not_started(stack, "--refuse-remote-start", "hooks-refused").await
}

async fn the_car_is_never_plugged_in(stack: &ProcessStack) -> anyhow::Result<()> {
    paid_but_not_started(stack, "--never-plugged-in", "hooks-unplugged").await
}

async fn webhooks_arrive_after_the_receiver_was_down(stack: &ProcessStack) -> anyhow::Result<()> {
    let org = stack
        .org(json!({}), serde_json::from_str(ENERGY_AND_TIME)?)
        .await?;
    let station = stack.station(&org, 1).await?;
    stack.sim(&station, &[]).await?;
    let hooks = stack.receiver(&org, "hooks-down").await?;
    let created = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    let sid = id(&created);
    // The first events arrive; then the receiver goes away for the rest of the session.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stack.received(&hooks, &sid).len() < 2 {
        ensure!(
            std::time::Instant::now() < deadline,
            "the first events never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.kill(&hooks.name)?;
    stack.pay(&created).await?;
    // Charged long enough that something is owed (1.20 USD/h: a cent every 30 s).
    stack
        .wait_session(&org, &sid, Duration::from_secs(60), "a cost", |s| {
            s["status"] == "started" && s["cost"]["amount"].as_i64() > Some(0)
        })
        .await?;
    stack
        .post(&format!("/sessions/{sid}/stop"), &org.key, json!({}))
        .await?;
    stack
        .wait_session(&org, &sid, Duration::from_secs(30), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await?;
    // Deliveries have been failing meanwhile.
    let log = stack.events(&org, &sid).await?;
    let failed_attempts: i64 = log
        .iter()
        .filter_map(|e| e["deliveries"][0]["last_error"].as_str().map(|_| 1))
        .sum();
    ensure!(
        failed_attempts >= 1,
        "deliveries failed while the receiver was down: {log:?}"
    );
    stack.restart(&hooks.name)?;
    stack
        .assert_webhooks(
            &org,
            &hooks,
            &sid,
            &[
                "session.created",
                "session.payment.created",
                "session.payment.authorized",
                "session.started",
                "session.ended",
                "session.payment.captured",
            ],
        )
        .await
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_chargelink"));
    let stack = match tokio.block_on(ProcessStack::start(bin, &[])) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("could not start the process stack: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let handle = tokio.handle().clone();
    let trial = |name: &'static str, f: Scenario| {
        let stack = stack.clone();
        let handle = handle.clone();
        Trial::test(name, move || {
            handle.block_on(f(&stack)).map_err(|e| {
                stack.diagnose();
                Failed::from(format!("{e:#}"))
            })
        })
    };
    let trials = vec![
        trial("happy_path_over_rest_with_a_browser_payment", |s| {
            Box::pin(happy_path_over_rest_with_a_browser_payment(s))
        }),
        trial("auto_stop_before_the_hold_is_passed", |s| {
            Box::pin(auto_stop_before_the_hold_is_passed(s))
        }),
        trial("parking_time_refuses_stop_and_unplug_ends_it", |s| {
            Box::pin(parking_time_refuses_stop_and_unplug_ends_it(s))
        }),
        trial("an_unpaid_session_expires", |s| {
            Box::pin(an_unpaid_session_expires(s))
        }),
        trial("the_driver_cancels_on_the_payment_page", |s| {
            Box::pin(the_driver_cancels_on_the_payment_page(s))
        }),
        trial("the_station_refuses_to_start", |s| {
            Box::pin(the_station_refuses_to_start(s))
        }),
        trial("the_car_is_never_plugged_in", |s| {
            Box::pin(the_car_is_never_plugged_in(s))
        }),
        trial("webhooks_arrive_after_the_receiver_was_down", |s| {
            Box::pin(webhooks_arrive_after_the_receiver_was_down(s))
        }),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    drop(stack);
    conclusion.exit_code()
}
