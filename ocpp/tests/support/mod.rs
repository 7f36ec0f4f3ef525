//! A gateway and a sessions worker against the test binary's Temporal dev server.
//!
//! Each test gets its own gateway instance (own task queue, store file holding the station
//! registry, and port) and its own
//! sessions task queue, where the real `SessionWorkflow` runs with the real `StationLocator` and
//! stand-ins for the payment and store activities only.

#![allow(dead_code, unreachable_pub)]

pub mod python;
pub mod raw;
pub mod standins;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chargelink_tests::devserver::connect;
use chargelink_tests::fixtures::{component, fast_timings, random_body, rate, session_input};
use domain::money::Money;
use domain::rate::Dimension;
use libtest_mimic::Failed;
use ocpp::auth::{StationEntry, StationsFile};
use ocpp::registry::Registry;
use ocpp::{Connections, Gateway, GatewayConfig, StationLocator};
use sim::{SimHandle, StationSpec};
use temporalio_client::{Client, WorkflowGetResultOptions};
use temporalio_sdk::{Worker, WorkerOptions};
use tokio::runtime::Runtime as Tokio;
use url::Url;
use workflows::client::SessionClient;
use workflows::messages::{PaymentAuthorized, SessionOutcome};
use workflows::{SessionInput, SessionWorkflow};

use standins::{Journal, StandIns};

/// The key of every test station.
pub const KEY: &str = "test-key-0123456789";
/// Stations listed in every test's stations file.
pub const STATIONS: [&str; 7] = ["CP1", "CP2", "CP3", "CP4", "CP5", "PY1", "PY2"];
/// Simulated power: 360 kW = 100 Wh per 1 s meter interval, 3 cents at 0.30 USD/kWh.
pub const POWER_W: i64 = 360_000;
/// Register of a fresh simulated station.
pub const METER_START_WH: i64 = 1_000;

/// Shared by every test of the binary.
pub struct Env {
    pub tokio: Tokio,
    pub temporal: temporalio_sdk::Runtime,
    pub server: Url,
    pub dir: PathBuf,
}

/// A running gateway plus sessions worker.
pub struct Stack {
    pub name: String,
    pub client: Client,
    pub sessions: SessionClient,
    pub journal: Journal,
    pub registry: Arc<dyn Registry>,
    pub connections: Connections,
    pub addr: SocketAddr,
    pub gateway_queue: String,
    pub dir: PathBuf,
    /// The store holding the station registry (a SQLite file in `dir`).
    pub store: store::Store,
    /// Its URL, for a second gateway acting as another process.
    pub store_url: String,
}

/// A migrated SQLite store file in `dir`.
pub async fn test_store(dir: &std::path::Path) -> anyhow::Result<(store::Store, String)> {
    let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
    Ok((store::Store::open(&url).await?, url))
}

/// Writes the stations file of a test.
pub fn stations_file(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let file = StationsFile {
        stations: STATIONS
            .iter()
            .map(|id| Ok(StationEntry::hashed(id.parse()?, KEY.as_bytes())))
            .collect::<anyhow::Result<_>>()?,
    };
    let path = dir.join("stations.json");
    file.write(&path)?;
    Ok(path)
}

/// A gateway config for tests: 127.0.0.1:0, short timeouts, 1 s meter interval.
pub fn test_config(name: &str, dir: &std::path::Path) -> anyhow::Result<GatewayConfig> {
    let mut config = GatewayConfig::new(
        format!("{name}-{}", &random_body()[..8]),
        stations_file(dir)?,
    );
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.heartbeat_interval = Duration::from_secs(30);
    config.call_timeout = Duration::from_secs(3);
    config.meter_sample_interval = Duration::from_secs(1);
    config.offline_grace = Duration::from_secs(2);
    Ok(config)
}

/// Runs `body` against a fresh stack.
pub fn with_stack<F, Fut>(
    env: &Env,
    name: &str,
    tweak: impl FnOnce(&mut GatewayConfig),
    body: F,
) -> Result<(), Failed>
where
    F: FnOnce(Arc<Stack>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    env.tokio
        .block_on(async {
            let client = connect(&env.server).await?;
            let dir = env.dir.join(format!("{name}-{}", &random_body()[..8]));
            std::fs::create_dir_all(&dir)?;
            let mut config = test_config(name, &dir)?;
            tweak(&mut config);
            let (store, store_url) = test_store(&dir).await?;
            let gateway = Gateway::bind(config, store.clone()).await?;
            let journal = Journal::default();
            let sessions_queue = format!("sessions-{name}-{}", &random_body()[..8]);
            let options = WorkerOptions::new(sessions_queue.clone())
                .register_workflow::<SessionWorkflow>()?
                .register_activities(StandIns::new(journal.clone()))
                .register_activities(StationLocator::new(gateway.registry()))
                .graceful_shutdown_period(Duration::from_secs(2))
                .build();
            let mut worker = Worker::new(&env.temporal, client.clone(), options)?;
            let stop_worker = worker.shutdown_handle();
            let (stop_gateway, gateway_stopped) = tokio::sync::oneshot::channel::<()>();
            let stack = Arc::new(Stack {
                name: name.to_owned(),
                sessions: SessionClient::new(client.clone(), sessions_queue),
                client: client.clone(),
                journal,
                registry: gateway.registry(),
                connections: gateway.connections(),
                addr: gateway.local_addr(),
                gateway_queue: gateway.task_queue(),
                dir,
                store,
                store_url,
            });
            let test = async {
                let result = body(stack).await;
                stop_worker();
                let _ = stop_gateway.send(());
                result
            };
            let gateway_run = gateway.run(&env.temporal, client, async {
                let _ = gateway_stopped.await;
            });
            let (worked, served, result) = tokio::join!(worker.run(), gateway_run, test);
            result?;
            worked?;
            served?;
            Ok::<_, anyhow::Error>(())
        })
        .map_err(|e: anyhow::Error| Failed::from(format!("{e:#}")))
}

/// Booted, with the metering configuration the gateway pushes after the boot (1.6: two
/// ChangeConfiguration keys; 2.0.1: one SetVariables).
pub fn configured(s: &sim::SimState) -> bool {
    s.booted
        && (s.received("ChangeConfiguration").len() >= 2 || !s.received("SetVariables").is_empty())
}

/// The names of the messages a session's path goes through, in each OCPP version.
#[derive(Debug, Clone, Copy)]
pub struct Wire {
    /// The version.
    pub protocol: ocpp::Protocol,
    /// The remote start the station receives.
    pub remote_start: &'static str,
    /// The remote stop it receives.
    pub remote_stop: &'static str,
    /// What it sends to start a transaction.
    pub start: &'static str,
}

impl Wire {
    /// The names in `protocol`.
    pub fn of(protocol: ocpp::Protocol) -> Self {
        match protocol {
            ocpp::Protocol::V16 => Self {
                protocol,
                remote_start: "RemoteStartTransaction",
                remote_stop: "RemoteStopTransaction",
                start: "StartTransaction",
            },
            ocpp::Protocol::V201 => Self {
                protocol,
                remote_start: "RequestStartTransaction",
                remote_stop: "RequestStopTransaction",
                start: "TransactionEvent",
            },
        }
    }
}

/// 0.30 USD per kWh.
/// Creates `id` as one of the store's charge stations (key [`KEY`]), in an organization of its
/// own, with `connectors` on [`energy_rate`].
pub async fn store_station(
    store: &store::Store,
    id: &str,
    connectors: &[i32],
) -> anyhow::Result<()> {
    use domain::ids::{OrganizationId, RateId};
    use store::{NewChargeStation, NewConnector, NewOrganization};
    let now = chrono::Utc::now();
    let org = OrganizationId::from_unique(&random_body())?;
    store
        .create_organization(
            NewOrganization {
                id: org.clone(),
                name: "ops".into(),
                settings: Default::default(),
            },
            now,
        )
        .await?;
    let rate = RateId::from_unique(&random_body())?;
    store
        .create_rate(&org, &rate, "energy", &energy_rate(), now)
        .await?;
    store
        .create_charge_station(
            &org,
            NewChargeStation {
                id: id.into(),
                name: id.into(),
                auth_key: KEY.into(),
                security_profile: Default::default(),
            },
            now,
        )
        .await?;
    for &n in connectors {
        store
            .create_connector(
                &org,
                NewConnector {
                    id: format!("con_{}", random_body()),
                    charge_station_id: id.into(),
                    connector_number: n,
                    rate_id: rate.clone(),
                    max_power_w: None,
                },
                now,
            )
            .await?;
    }
    Ok(())
}

pub fn energy_rate() -> domain::rate::Rate {
    rate(vec![component(Dimension::Energy, "0.30", None)])
}

/// Cents owed for `wh` at [`energy_rate`] (rounded half away from zero).
pub fn cents_for(wh: i64) -> i64 {
    (wh * 3 + 50) / 100
}

impl Stack {
    /// `ws://addr/ocpp`.
    pub fn url(&self) -> String {
        format!("ws://{}/ocpp", self.addr)
    }

    /// A simulated OCPP 1.6 station spec for this gateway.
    pub fn spec(&self, id: &str) -> StationSpec {
        self.spec_on(id, ocpp::Protocol::V16)
    }

    /// A simulated station spec for this gateway, speaking `protocol`.
    pub fn spec_on(&self, id: &str, protocol: ocpp::Protocol) -> StationSpec {
        let mut spec = StationSpec::new(self.url(), id, KEY);
        spec.protocol = protocol;
        spec.power_w = POWER_W;
        spec.meter_start_wh = METER_START_WH;
        spec.meter_interval = Duration::from_secs(1);
        spec
    }

    /// Starts a simulated station and waits until it is booted and configured.
    pub async fn station(&self, spec: StationSpec) -> anyhow::Result<SimHandle> {
        let station = sim::run_station(spec);
        station
            .wait_for(
                "boot and configuration",
                Duration::from_secs(10),
                configured,
            )
            .await?;
        self.await_located(station.id()).await?;
        Ok(station)
    }

    /// Waits until the registry says the station is connected to this gateway.
    pub async fn await_located(&self, station: &str) -> anyhow::Result<()> {
        let id = station.parse()?;
        for _ in 0..100 {
            if let Some(l) = self.registry.locate(&id).await?
                && l.task_queue == self.gateway_queue
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{station} is not located at this gateway")
    }

    /// A session on `station` connector 1 with a 100 USD hold.
    pub fn input(&self, station: &str) -> anyhow::Result<SessionInput> {
        session_input(station, energy_rate(), 10_000, fast_timings())
    }

    /// Creates the session and authorizes its payment.
    pub async fn start_paid(&self, input: &SessionInput) -> anyhow::Result<()> {
        self.sessions.start(input.clone()).await?;
        self.sessions
            .payment_authorized(
                &input.session_id,
                PaymentAuthorized {
                    intent_id: "pi_test".into(),
                    amount_capturable: input.authorized_amount,
                },
            )
            .await?;
        Ok(())
    }

    /// Waits for the session's status.
    pub async fn await_status(
        &self,
        input: &SessionInput,
        status: domain::session::SessionStatus,
    ) -> anyhow::Result<domain::session::Session> {
        let mut last = None;
        for _ in 0..150 {
            let s = self.sessions.session(&input.session_id).await?;
            if s.status == status {
                return Ok(s);
            }
            last = Some(s.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "session never became {} (last {:?})",
            status.as_str(),
            last.map(|s| s.as_str())
        )
    }

    /// The session's result.
    pub async fn outcome(&self, input: &SessionInput) -> anyhow::Result<SessionOutcome> {
        let handle = self
            .client
            .get_workflow_handle::<SessionWorkflow>(input.session_id.to_string());
        let outcome = tokio::time::timeout(
            Duration::from_secs(40),
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .context("session did not finish in 40 s")??;
        Ok(outcome)
    }

    /// Signals the session workflow received, by name, with their inputs (from its history).
    pub async fn signals(
        &self,
        input: &SessionInput,
    ) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let handle = self
            .client
            .get_workflow_handle::<SessionWorkflow>(input.session_id.to_string());
        let json = handle.fetch_history(Default::default()).to_json().await?;
        let history: serde_json::Value = serde_json::from_slice(&json)?;
        let mut out = Vec::new();
        for event in history["events"].as_array().cloned().unwrap_or_default() {
            let attrs = &event["attributes"]["WorkflowExecutionSignaledEventAttributes"];
            let Some(name) = attrs["signal_name"].as_str() else {
                continue;
            };
            let data = attrs["input"]["payloads"][0]["data"]
                .as_str()
                .unwrap_or_default();
            let bytes = base64_decode(data)?;
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let mut value = value;
            if let Some(time) = event["event_time"].as_str() {
                value["_event_time"] = serde_json::Value::String(time.to_owned());
            }
            out.push((name.to_owned(), value));
        }
        Ok(out)
    }
}

fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

/// Money helper.
pub fn usd(cents: i64) -> Money {
    Money::new(cents, domain::money::Currency::USD)
}
