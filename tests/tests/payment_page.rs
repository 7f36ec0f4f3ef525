//! A real browser (Debian's chromium driven by playwright-core, `tests/browser/pay.mjs`) opens a
//! session's payment page at the Stripe sandbox and pays: with the test card the session becomes
//! authorized through the signed webhook; with the decline card the page says why and the
//! session stays unpaid. The real payment activities, webhook receiver, store and workflow run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chargelink_tests::browser::pay_in_browser;
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
