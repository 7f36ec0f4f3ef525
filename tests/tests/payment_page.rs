//! A real browser (Debian's chromium driven by playwright-core, `tests/browser/pay.mjs`) opens a
//! session's payment page at the Stripe sandbox and pays: with the test card the session becomes
//! authorized through the signed webhook; with the decline card the page says why and the
//! session stays unpaid; the price page and the checkout page show the tariff's lines as the
//! engine charges them. The real payment activities, webhook receiver, store and workflow run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chargelink_tests::browser::{pay_in_browser, read_page};
use chargelink_tests::stack::{self, Tenant};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};

/// A scenario: borrows the environment for the life of its future.
type Scenario =
    fn(&Env) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + '_>>;

struct Env {
    handle: tokio::runtime::Handle,
    api: String,
    http: reqwest::Client,
    store: store::Store,
}

impl Env {
    async fn create_session(&self, t: &Tenant) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}/sessions", self.api))
            .bearer_auth(&t.key)
            .json(&json!({"user": t.user, "connector": t.connector, "type": "payment_link"}))
            .send()
            .await?;
        ensure!(res.status().is_success(), "create: {}", res.status());
        Ok(res.json().await?)
    }

    async fn session(&self, t: &Tenant, id: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/sessions/{id}", self.api))
            .bearer_auth(&t.key)
            .send()
            .await?
            .json()
            .await?)
    }
}

async fn the_test_card_authorizes_the_session(env: &Env) -> anyhow::Result<()> {
    let t = stack::tenant(&env.store).await?;
    let created = env.create_session(&t).await?;
    let id = created["_id"].as_str().context("id")?.to_owned();
    let url = created["payment"]["url"]
        .as_str()
        .context("payment url")?
        .to_owned();
    let seen =
        tokio::task::spawn_blocking(move || pay_in_browser(&url, "4242 4242 4242 4242")).await??;
    ensure!(
        seen["amount"].as_str().is_some_and(|a| a.contains("18.00")),
        "the page shows the hold: {seen}"
    );
    ensure!(
        seen["url"]
            .as_str()
            .is_some_and(|u| u.contains(&format!("/payments/{id}/success"))),
        "back on chargelink: {seen}"
    );
    for _ in 0..100 {
        let s = env.session(&t, &id).await?;
        if s["payment"]["status"] == "authorized" {
            ensure!(
                s["payment"]["stripe"]["intent_id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("pi_")),
                "{s}"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the session never became authorized")
}

async fn the_decline_card_leaves_the_session_unpaid(env: &Env) -> anyhow::Result<()> {
    let t = stack::tenant(&env.store).await?;
    let created = env.create_session(&t).await?;
    let id = created["_id"].as_str().context("id")?.to_owned();
    let url = created["payment"]["url"]
        .as_str()
        .context("payment url")?
        .to_owned();
    let seen =
        tokio::task::spawn_blocking(move || pay_in_browser(&url, "4000 0000 0000 0002")).await??;
    let error = seen["error"].as_str().unwrap_or_default().to_lowercase();
    ensure!(error.contains("declined"), "the page says why: {seen}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = env.session(&t, &id).await?;
    ensure!(
        s["status"] == "created" && s["payment"]["status"] == "created",
        "still unpaid: {s}"
    );
    Ok(())
}

/// The price before the card, in a real browser: the connector's price page and the hosted
/// checkout page of a session on it show the lines of a weekday tariff with energy, time and
/// parking, and each per-unit price shown is what the tariff engine charges for a session
/// priced like a CDR (a Wednesday 10:00 and a Saturday in Berlin, 10 kWh in an hour, then two
/// hours parked).
async fn the_price_is_shown_before_the_card_as_the_engine_charges_it(
    env: &Env,
) -> anyhow::Result<()> {
    use chrono::{DateTime, TimeZone, Utc};
    use domain::pricing::{CostSummary, LiveCost, MeterSample};
    use rust_decimal::Decimal;

    let rate = chargelink_tests::fixtures::weekday_tariff_rate();
    let t = stack::tenant_with(&env.store, rate.clone(), Some(50_000)).await?;
    let api: Value = env
        .http
        .get(format!(
            "{}/charge-stations/{}/connectors/1/price",
            env.api, t.station
        ))
        .send()
        .await?
        .json()
        .await?;
    let api_lines: Vec<String> = api["lines"]
        .as_array()
        .context("lines")?
        .iter()
        .filter_map(|l| l["text"].as_str().map(str::to_owned))
        .collect();
    ensure!(api_lines.len() == 6, "{api}");

    let url = format!("{}/price/{}/1", env.api, t.station);
    let page = tokio::task::spawn_blocking(move || read_page(&url)).await??;
    let lines = page["lines"].as_array().context("page lines")?;
    let shown: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    ensure!(shown == api_lines, "the page shows the API's lines: {page}");
    ensure!(
        page["estimate"]
            .as_str()
            .is_some_and(|e| e.starts_with("the 18.00 € hold buys about ") && e.contains("50 kW")),
        "{page}"
    );
    // The per-unit price the page shows for a line (VAT included), by kind and position.
    let shown_price = |kind: &str, nth: usize| -> anyhow::Result<(Decimal, String)> {
        let line = lines
            .iter()
            .filter(|l| l["kind"] == kind)
            .nth(nth)
            .with_context(|| format!("no {kind} line {nth}: {page}"))?;
        let price: Decimal = line["price"].as_str().context("data-price")?.parse()?;
        Ok((price, line["unit"].as_str().unwrap_or_default().to_owned()))
    };

    // The engine prices a CDR-like session: 10 kWh in the first hour, then 2 h parked.
    let price = |start: DateTime<Utc>| -> anyhow::Result<CostSummary> {
        let mut live = LiveCost::start(rate.clone(), start, 0);
        let charged = start + chrono::Duration::hours(1);
        live.record_meter(MeterSample::new(charged, 10_000, Some(10_000)));
        live.set_charging(charged, false);
        Ok(live.finish(charged + chrono::Duration::hours(2), 10_000)?)
    };
    let per_unit = |cost: &CostSummary,
                    dimension: domain::rate::Dimension|
     -> anyhow::Result<(Decimal, Decimal)> {
        let c = cost
            .breakdown
            .iter()
            .find(|c| c.dimension == dimension)
            .with_context(|| format!("{dimension:?} not charged: {cost:?}"))?;
        Ok((c.total / c.quantity, c.quantity))
    };
    let per_minute = Decimal::from(60);
    use domain::rate::Dimension::{Energy, ParkingTime, Time};
    // Wednesday 2 December 2026, 10:00 in Berlin (09:00 UTC): the weekday lines.
    let weekday = price(Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap())?;
    let (energy, kwh) = per_unit(&weekday, Energy)?;
    ensure!(kwh == Decimal::from(10), "{weekday:?}");
    ensure!(
        shown_price("energy", 0)? == (energy, "kwh".into()),
        "weekday energy {energy}"
    );
    let (time, _) = per_unit(&weekday, Time)?;
    ensure!(
        shown_price("time", 0)? == (time / per_minute, "minute".into()),
        "time {time}/h"
    );
    let (parking, hours) = per_unit(&weekday, ParkingTime)?;
    ensure!(
        hours == Decimal::ONE,
        "two hours parked, the first free (the line says after 60 min): {weekday:?}"
    );
    ensure!(
        shown_price("parking_time", 0)? == (parking / per_minute, "minute".into()),
        "parking {parking}/h"
    );
    // Saturday 5 December 2026, same hour: the energy line "otherwise", and no time price.
    let saturday = price(Utc.with_ymd_and_hms(2026, 12, 5, 9, 0, 0).unwrap())?;
    let (energy, _) = per_unit(&saturday, Energy)?;
    ensure!(
        shown_price("energy", 1)? == (energy, "kwh".into()),
        "weekend energy {energy}"
    );
    ensure!(
        saturday.breakdown.iter().all(|c| c.dimension != Time),
        "no time price at weekends: {saturday:?}"
    );

    // The hosted checkout page shows the same lines next to the pay button, and the estimate.
    let created = env.create_session(&t).await?;
    let url = created["payment"]["url"]
        .as_str()
        .context("payment url")?
        .to_owned();
    let checkout = tokio::task::spawn_blocking(move || read_page(&url)).await??;
    let custom: Vec<&str> = checkout["custom"]
        .as_array()
        .context("custom text")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        custom.len() == api_lines.len() + 1
            && custom[..api_lines.len()] == api_lines[..]
            && custom[api_lines.len()].starts_with("the 18.00 € hold buys about "),
        "the checkout page shows the price lines: {checkout}"
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let Some(tokio) = chargelink_tests::harness::runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    let result = tokio.block_on(async move {
        let stack::Stack {
            server,
            store,
            api,
            worker,
            runtime,
            sandbox,
            ..
        } = stack::start().await?;
        let env = Arc::new(Env {
            handle: tokio::runtime::Handle::current(),
            api,
            http: reqwest::Client::new(),
            store,
        });
        let trial = |name: &'static str, f: Scenario| {
            let env = env.clone();
            Trial::test(name, move || {
                env.handle
                    .block_on(f(&env))
                    .map_err(|e| Failed::from(format!("{e:#}")))
            })
        };
        let trials = vec![
            trial("the_test_card_authorizes_the_session", |e| {
                Box::pin(the_test_card_authorizes_the_session(e))
            }),
            trial("the_decline_card_leaves_the_session_unpaid", |e| {
                Box::pin(the_decline_card_leaves_the_session_unpaid(e))
            }),
            trial(
                "the_price_is_shown_before_the_card_as_the_engine_charges_it",
                |e| {
                    Box::pin(the_price_is_shown_before_the_card_as_the_engine_charges_it(
                        e,
                    ))
                },
            ),
        ];
        let conclusion = chargelink_tests::harness::run_next_to_worker(args, trials, worker).await;
        drop((sandbox, runtime, server));
        conclusion
    });
    match result {
        Ok(conclusion) => conclusion.exit_code(),
        Err(e) => {
            eprintln!("could not run the payment page tests: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
