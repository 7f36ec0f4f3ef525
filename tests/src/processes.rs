//! The chargelink stack as real processes, for end-to-end tests: a Temporal dev server, then
//! `chargelink migrate`, `stripe-sandbox`, `worker`, `api` and `gateway` on free ports, every one
//! in the same temporary working directory (so relative defaults such as `.data/…` resolve to the
//! same files) with one SQLite store file. Simulated stations (`chargelink sim`) and webhook
//! receivers (`chargelink webhooks listen`) are started per scenario. Everything is seeded through
//! the admin REST API, as an operator would. Any process can be killed with SIGKILL and started
//! again with the same arguments; each one's output goes to `<dir>/logs/<name>.log` (appended
//! across restarts) and [`ProcessStack::diagnose`] prints their tails when a test fails.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::devserver::{DevServer, free_port};
use crate::fixtures::random_body;

/// The Stripe secret key every process uses against the sandbox.
pub const STRIPE_SECRET_KEY: &str = "sk_test_chargelink_e2e";

/// The secret the sandbox signs its Stripe webhooks with.
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_chargelink_e2e";

/// Session timings short enough for whole sessions in seconds: the environment of every process
/// (`chargelink api` fixes them into each new session, the gateway pushes the meter interval).
pub const FAST_TIMINGS: [(&str, &str); 9] = [
    ("CHARGELINK_FAULT_GRACE", "3"),
    ("CHARGELINK_METER_INTERVAL", "1"),
    ("CHARGELINK_STOP_LATENCY", "1"),
    ("CHARGELINK_START_ATTEMPT_TIMEOUT", "3"),
    ("CHARGELINK_START_RETRY_INITIAL", "0.5"),
    ("CHARGELINK_START_RETRY_MAX", "1"),
    ("CHARGELINK_STOP_CONFIRM_TIMEOUT", "3"),
    ("CHARGELINK_WEBHOOK_RETRY_INITIAL", "0.5"),
    ("CHARGELINK_WEBHOOK_RETRY_MAX", "2"),
];

struct Proc {
    child: Child,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The Temporal dev server a stack runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    /// History in memory, no Web UI (the default).
    InMemory,
    /// History in a file in the stack's directory: the server can be restarted.
    Persistent,
    /// History in memory, with the Web UI on a free port (`server.ui`).
    WithUi,
}

impl Temporal {
    /// [`Temporal::Persistent`] if `persistent`, else [`Temporal::InMemory`].
    pub fn persistent_if(persistent: bool) -> Self {
        if persistent {
            Self::Persistent
        } else {
            Self::InMemory
        }
    }
}

/// A running stack of chargelink processes; every process is killed on drop.
pub struct ProcessStack {
    /// The working directory of every process (logs in `logs/`).
    pub dir: PathBuf,
    /// The `chargelink` binary.
    pub bin: PathBuf,
    /// The Temporal dev server.
    pub server: DevServer,
    /// Base URL of the API (`http://127.0.0.1:<port>`).
    pub api: String,
    /// The OCPP endpoint without the station id (`ws://127.0.0.1:<port>/ocpp`).
    pub ocpp: String,
    /// Base URL of the Stripe sandbox.
    pub sandbox: String,
    /// The worker's metrics (`http://127.0.0.1:<port>/metrics`); the API's are on its own port.
    pub worker_metrics: String,
    /// The gateway's metrics.
    pub gateway_metrics: String,
    /// The operator token for `/admin/*`.
    pub admin_token: String,
    /// The environment every process gets.
    pub env: Vec<(String, String)>,
    /// An HTTP client.
    pub http: reqwest::Client,
    procs: Mutex<BTreeMap<String, Proc>>,
    /// Set by [`Self::diagnose`]: the working directory (logs) is kept for a look afterwards.
    keep: std::sync::atomic::AtomicBool,
}

/// An organization seeded through the API.
#[derive(Debug, Clone)]
pub struct Org {
    /// Its API key.
    pub key: String,
    /// A driver.
    pub user: String,
    /// Its rate.
    pub rate: String,
}

/// A charge station seeded through the API.
#[derive(Debug, Clone)]
pub struct Station {
    /// Station id (ends in `1`: `chargelink sim` names stations `<prefix><n>`).
    pub id: String,
    /// Its OCPP Basic-auth password.
    pub password: String,
    /// Connector ids (`con_…`), connector 1 first.
    pub connectors: Vec<String>,
}

/// A registered webhook endpoint and the `chargelink webhooks listen --json` process behind it.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Process name (for kill / restart / log).
    pub name: String,
    /// Endpoint id (`we_…`).
    pub endpoint: String,
    /// Listen address.
    pub addr: String,
    /// The endpoint's signing secret (to start the receiver again with other flags).
    pub secret: String,
}

impl ProcessStack {
    /// Starts the dev server and the stack's processes, and waits until the API, the sandbox and
    /// the gateway answer. `extra_env` is added to (or overrides) every process's environment.
    pub async fn start(bin: &Path, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with(bin, extra_env, false).await
    }

    /// [`Self::start`]; with `persistent_temporal` the dev server keeps history in a file in the
    /// stack's directory, so it can be restarted without losing a session.
    pub async fn start_with(
        bin: &Path,
        extra_env: &[(&str, &str)],
        persistent_temporal: bool,
    ) -> anyhow::Result<Self> {
        Self::start_on(bin, extra_env, Temporal::persistent_if(persistent_temporal)).await
    }

    /// [`Self::start`] on the given kind of dev server.
    pub async fn start_on(
        bin: &Path,
        extra_env: &[(&str, &str)],
        temporal: Temporal,
    ) -> anyhow::Result<Self> {
        let persistent_temporal = temporal == Temporal::Persistent;
        ensure!(
            bin.exists(),
            "chargelink binary {} not found",
            bin.display()
        );
        let dir = std::env::temp_dir().join(format!("chargelink-e2e-{}", &random_body()[..12]));
        std::fs::create_dir_all(dir.join("logs"))?;
        std::fs::create_dir_all(dir.join(".data"))?;
        let server = match temporal {
            Temporal::Persistent => DevServer::start_persistent(dir.join("temporal.db")).await?,
            Temporal::InMemory => DevServer::start().await?,
            Temporal::WithUi => DevServer::start_with_ui().await?,
        };
        let (api_port, gw_port, sandbox_port) = (free_port()?, free_port()?, free_port()?);
        let worker_metrics = format!("127.0.0.1:{}", free_port()?);
        let gateway_metrics = format!("127.0.0.1:{}", free_port()?);
        let api = format!("http://127.0.0.1:{api_port}");
        let sandbox = format!("http://127.0.0.1:{sandbox_port}");
        let admin_token = random_body();
        let mut env: Vec<(String, String)> = vec![
            ("CHARGELINK_TEMPORAL_ADDRESS".into(), server.url.to_string()),
            (
                "CHARGELINK_DATABASE_URL".into(),
                format!("sqlite://{}/chargelink.db?mode=rwc", dir.display()),
            ),
            (
                "CHARGELINK_API_ADDR".into(),
                format!("127.0.0.1:{api_port}"),
            ),
            ("CHARGELINK_PUBLIC_URL".into(), api.clone()),
            (
                "CHARGELINK_GATEWAY_ADDR".into(),
                format!("127.0.0.1:{gw_port}"),
            ),
            ("CHARGELINK_ADMIN_TOKEN".into(), admin_token.clone()),
            (
                "CHARGELINK_STRIPE_SECRET_KEY".into(),
                STRIPE_SECRET_KEY.into(),
            ),
            ("CHARGELINK_STRIPE_API_BASE".into(), sandbox.clone()),
            (
                "CHARGELINK_STRIPE_WEBHOOK_SECRET".into(),
                STRIPE_WEBHOOK_SECRET.into(),
            ),
            (
                "CHARGELINK_SANDBOX_ADDR".into(),
                format!("127.0.0.1:{sandbox_port}"),
            ),
            (
                "CHARGELINK_SANDBOX_WEBHOOK_URL".into(),
                format!("{api}/stripe/webhook"),
            ),
            ("RUST_LOG".into(), "info,temporalio_sdk_core=warn".into()),
        ];
        if persistent_temporal {
            // Like Stripe, the sandbox must survive the restart of everything.
            env.push((
                "CHARGELINK_SANDBOX_STATE".into(),
                dir.join("stripe-sandbox.json").display().to_string(),
            ));
        }
        env.extend(
            FAST_TIMINGS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        for (k, v) in extra_env {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let stack = Self {
            dir,
            bin: bin.to_owned(),
            server,
            api,
            ocpp: format!("ws://127.0.0.1:{gw_port}/ocpp"),
            sandbox,
            worker_metrics: format!("http://{worker_metrics}/metrics"),
            gateway_metrics: format!("http://{gateway_metrics}/metrics"),
            admin_token,
            env,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            procs: Mutex::new(BTreeMap::new()),
            keep: std::sync::atomic::AtomicBool::new(
                std::env::var_os("CHARGELINK_E2E_KEEP").is_some(),
            ),
        };
        let migrated = stack
            .command(&["migrate"], &[])
            .stdout(stack.log_file("migrate")?)
            .stderr(stack.log_file("migrate")?)
            .status()?;
        ensure!(
            migrated.success(),
            "chargelink migrate failed: {}",
            stack.log("migrate")
        );
        stack.spawn("stripe-sandbox", &["stripe-sandbox"], &[])?;
        let metrics = "CHARGELINK_METRICS_ADDR";
        stack.spawn("worker", &["worker"], &[(metrics, &worker_metrics)])?;
        stack.spawn("api", &["api"], &[])?;
        stack.spawn("gateway", &["gateway"], &[(metrics, &gateway_metrics)])?;
        let wait = async {
            stack
                .wait_http(&format!("{}/healthz", stack.api), "api")
                .await?;
            stack
                .wait_http(
                    &format!("{}/_sandbox/requests", stack.sandbox),
                    "stripe-sandbox",
                )
                .await?;
            stack.wait_tcp(gw_port, "gateway").await
        };
        if let Err(e) = wait.await {
            stack.diagnose();
            return Err(e);
        }
        Ok(stack)
    }

    fn command(&self, args: &[&str], env: &[(String, String)]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(&self.dir)
            // Only what the stack decides: nothing from the developer's shell leaks in.
            .env_clear()
            .envs(std::env::var("PATH").map(|p| ("PATH".to_owned(), p)))
            .envs(self.env.iter().cloned())
            .envs(env.iter().cloned())
            .stdin(Stdio::null());
        cmd
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    fn log_file(&self, name: &str) -> anyhow::Result<std::fs::File> {
        Ok(OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))?)
    }

    /// Everything process `name` wrote so far (across restarts).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Starts `chargelink <args>` as process `name` (its output appended to `logs/<name>.log`).
    pub fn spawn(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = self
            .command(args, &env)
            .stdout(self.log_file(name)?)
            .stderr(self.log_file(name)?)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let proc = Proc {
            child,
            args: args.iter().map(|a| a.to_string()).collect(),
            env,
        };
        if let Some(mut old) = self.procs().insert(name.to_owned(), proc) {
            let _ = old.child.kill();
            let _ = old.child.wait();
        }
        Ok(())
    }

    fn procs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Proc>> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Kills process `name` with SIGKILL (no shutdown path runs) and reaps it.
    pub fn kill(&self, name: &str) -> anyhow::Result<()> {
        let mut procs = self.procs();
        let p = procs
            .get_mut(name)
            .with_context(|| format!("no process {name}"))?;
        // `Child::kill` is SIGKILL on Unix.
        let _ = p.child.kill();
        p.child.wait()?;
        Ok(())
    }

    /// Starts process `name` again with the arguments it was first started with.
    pub fn restart(&self, name: &str) -> anyhow::Result<()> {
        let (args, env) = {
            let procs = self.procs();
            let p = procs
                .get(name)
                .with_context(|| format!("no process {name}"))?;
            (p.args.clone(), p.env.clone())
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.spawn(name, &args, &env)
    }

    /// The names of every chargelink process started so far.
    pub fn process_names(&self) -> Vec<String> {
        self.procs().keys().cloned().collect()
    }

    /// The process id of process `name` (for the benchmarks' CPU and memory figures).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs().get(name).map(|p| p.child.id())
    }

    /// Whether process `name` is still running.
    pub fn running(&self, name: &str) -> bool {
        self.procs()
            .get_mut(name)
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Prints the last lines of every log to stderr (for a failed test's output) and keeps the
    /// working directory (otherwise removed on drop, unless `CHARGELINK_E2E_KEEP` is set).
    pub fn diagnose(&self) {
        self.keep.store(true, std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "--- process logs in {} ---",
            self.dir.join("logs").display()
        );
        let Ok(entries) = std::fs::read_dir(self.dir.join("logs")) else {
            return;
        };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(30);
            eprintln!(
                "--- {} (last {} lines) ---",
                path.display(),
                lines.len() - from
            );
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
    }

    async fn wait_http(&self, url: &str, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            ensure!(self.running(name), "{name} exited: {}", self.log(name));
            ensure!(Instant::now() < deadline, "{name} did not answer in 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_tcp(&self, port: u16, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            ensure!(self.running(name), "{name} exited: {}", self.log(name));
            ensure!(Instant::now() < deadline, "{name} did not listen in 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the gateway accepts connections again (after a restart).
    pub async fn wait_gateway(&self) -> anyhow::Result<()> {
        let port: u16 = self
            .ocpp
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches("/ocpp").parse().ok())
            .context("gateway port")?;
        self.wait_tcp(port, "gateway").await
    }

    /// `method path` on the API with `key` as bearer; the status and the JSON answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// POST that must succeed.
    pub async fn post(&self, path: &str, key: &str, body: Value) -> anyhow::Result<Value> {
        let (status, v) = self
            .call(reqwest::Method::POST, path, key, Some(body))
            .await?;
        ensure!((200..300).contains(&status), "POST {path}: {status} {v}");
        Ok(v)
    }

    /// GET that must succeed.
    pub async fn get(&self, path: &str, key: &str) -> anyhow::Result<Value> {
        let (status, v) = self.call(reqwest::Method::GET, path, key, None).await?;
        ensure!((200..300).contains(&status), "GET {path}: {status} {v}");
        Ok(v)
    }

    /// Seeds an organization with `settings` (merged over a USD default: hold 1800, max 10000,
    /// expiry and start window 300 s), a rate of `components` and a driver.
    pub async fn org(&self, settings: Value, components: Value) -> anyhow::Result<Org> {
        let mut all = json!({"currency": "usd", "minimum_amount_to_start_session": 1800,
            "maximum_authorized_amount": 10000, "payment_expiry_time": 300, "start_window": 300});
        if let (Some(all), Some(given)) = (all.as_object_mut(), settings.as_object()) {
            all.extend(given.clone());
        }
        let created = self
            .post(
                "/admin/organizations",
                &self.admin_token,
                json!({"name": "e2e", "settings": all}),
            )
            .await?;
        let key = created["api_key"]["key"]
            .as_str()
            .context("api key")?
            .to_owned();
        let rate = self
            .post(
                "/rates",
                &key,
                json!({"name": "e2e", "currency": "usd", "price_components": components}),
            )
            .await?["_id"]
            .as_str()
            .context("rate id")?
            .to_owned();
        let user = self.post("/users", &key, json!({"name": "driver"})).await?["_id"]
            .as_str()
            .context("user id")?
            .to_owned();
        Ok(Org { key, user, rate })
    }

    /// Seeds a station with `connectors` connectors on the organization's rate.
    pub async fn station(&self, org: &Org, connectors: u32) -> anyhow::Result<Station> {
        self.station_with_power(org, connectors, None).await
    }

    /// [`Self::station`] whose connectors deliver at most `max_power_w` (the operator's
    /// setting auto-stop assumes between readings).
    pub async fn station_with_power(
        &self,
        org: &Org,
        connectors: u32,
        max_power_w: Option<i64>,
    ) -> anyhow::Result<Station> {
        let id = format!("E2E-{}-1", &random_body()[..8].to_uppercase());
        let list: Vec<Value> = (1..=connectors)
            .map(|n| json!({"connector_id": n, "rate": org.rate, "max_power_w": max_power_w}))
            .collect();
        let created = self
            .post(
                "/charge-stations",
                &org.key,
                json!({"id": id, "name": "e2e", "connectors": list}),
            )
            .await?;
        let connectors = created["connectors"]
            .as_array()
            .context("connectors")?
            .iter()
            .filter_map(|c| c["_id"].as_str().map(str::to_owned))
            .collect();
        Ok(Station {
            id,
            password: created["ocpp"]["password"]
                .as_str()
                .context("ocpp password")?
                .to_owned(),
            connectors,
        })
    }

    /// Starts `chargelink sim` for `station` (process name = the station id) with extra flags
    /// (`--power-w`, `--refuse-remote-start`, `--unplug-after`, …), and waits until the gateway
    /// has it (online in the store, its connectors' statuses reported).
    pub async fn sim(&self, station: &Station, flags: &[&str]) -> anyhow::Result<()> {
        self.sim_at(&self.ocpp, station, flags).await
    }

    /// [`Self::sim`] with stations speaking OCPP `protocol` (`1.6` or `2.0.1`).
    pub async fn sim_speaking(
        &self,
        station: &Station,
        protocol: &str,
        flags: &[&str],
    ) -> anyhow::Result<()> {
        let mut all = vec!["--protocol", protocol];
        all.extend(flags);
        self.sim(station, &all).await?;
        // The gateway logs the version it negotiated with each connection.
        let negotiated = format!("ocpp_version={protocol}");
        ensure!(
            self.log("gateway").lines().any(|l| l.contains(&station.id)
                && l.contains("connected")
                && l.contains(&negotiated)),
            "{} did not connect with {negotiated}",
            station.id
        );
        Ok(())
    }

    /// [`Self::sim`] against the gateway URL `url` (`wss://…` for a gateway with TLS).
    pub async fn sim_at(&self, url: &str, station: &Station, flags: &[&str]) -> anyhow::Result<()> {
        let prefix = station.id.trim_end_matches('1');
        let mut args = vec![
            "sim",
            "--url",
            url,
            "--stations",
            "1",
            "--id-prefix",
            prefix,
            "--meter-interval",
            "1",
        ];
        let n = station.connectors.len().to_string();
        args.extend(["--connectors", &n]);
        args.extend(flags);
        self.spawn(
            &station.id,
            &args,
            &[("CHARGELINK_SIM_KEY", &station.password)],
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .log("gateway")
            .lines()
            .any(|l| l.contains(&station.id) && l.contains("connected"))
        {
            ensure!(
                self.running(&station.id),
                "sim exited: {}",
                self.log(&station.id)
            );
            ensure!(
                Instant::now() < deadline,
                "station {} never reached the gateway",
                station.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // BootNotification and StatusNotifications follow the connection: wait until the station
        // registry has them in the store (a session on an Unavailable connector gets a 409).
        let store =
            store::Store::connect(&format!("sqlite://{}/chargelink.db", self.dir.display()))
                .await?;
        loop {
            let online = store
                .charge_station(&station.id)
                .await?
                .is_some_and(|s| s.gateway_queue.is_some());
            let connectors = store.connectors_of(&station.id).await?;
            if online && connectors.iter().all(|c| c.status != "Unavailable") {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "station {} never reported its connectors: {:?}",
                station.id,
                connectors.iter().map(|c| &c.status).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Registers a webhook endpoint for `org` and starts `chargelink webhooks listen --json`
    /// behind it (process name `name`).
    pub async fn receiver(&self, org: &Org, name: &str) -> anyhow::Result<Receiver> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let created = self
            .post(
                "/webhook-endpoints",
                &org.key,
                json!({"url": format!("http://{addr}/hooks")}),
            )
            .await?;
        let secret = created["secret"].as_str().context("secret")?.to_owned();
        self.spawn(
            name,
            &["webhooks", "listen", "--json", "--listen", &addr],
            &[("CHARGELINK_WEBHOOK_SECRET", &secret)],
        )?;
        self.wait_tcp(
            addr.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .context("port")?,
            name,
        )
        .await?;
        Ok(Receiver {
            name: name.to_owned(),
            endpoint: created["_id"].as_str().context("endpoint id")?.to_owned(),
            addr,
            secret,
        })
    }

    /// The events `receiver` printed (verified) for `session`, in arrival order.
    pub fn received(&self, receiver: &Receiver, session: &str) -> Vec<Value> {
        self.log(&receiver.name)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["session"] == session)
            .collect()
    }

    /// Waits (up to 20 s) until `receiver` printed `n` events of `session`, then kills it: the
    /// rest of the session's deliveries fail until it is restarted.
    pub async fn take_receiver_down_after(
        &self,
        receiver: &Receiver,
        session: &str,
        n: usize,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.received(receiver, session).len() < n {
            ensure!(
                Instant::now() < deadline,
                "the first {n} events never arrived at {}",
                receiver.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill(&receiver.name)
    }

    /// An organization with an energy + time rate (0.30 / kWh, 1.20 / h) and one simulated
    /// 22 kW station with one connector, connected.
    pub async fn charging_tenant(&self) -> anyhow::Result<(Org, Station)> {
        let components = json!([
            {"type": "ENERGY", "price": "0.30"},
            {"type": "TIME", "price": "1.20"}
        ]);
        let org = self.org(json!({}), components).await?;
        let station = self.station(&org, 1).await?;
        self.sim(&station, &["--power-w", "22000"]).await?;
        Ok((org, station))
    }

    /// Stops session `id` through the API and waits (30 s) for its capture; the last session.
    pub async fn stop_until_captured(&self, org: &Org, id: &str) -> anyhow::Result<Value> {
        self.post(&format!("/sessions/{id}/stop"), &org.key, json!({}))
            .await?;
        self.wait_session(org, id, Duration::from_secs(30), "captured", |s| {
            s["payment"]["status"] == "captured"
        })
        .await
    }

    /// One whole paid session on `connector`: created, paid, charged until it costs something,
    /// stopped through the API and captured. Its id and its last JSON.
    pub async fn paid_session(
        &self,
        org: &Org,
        connector: &str,
    ) -> anyhow::Result<(String, Value)> {
        let created = self.create_session(org, connector, json!({})).await?;
        let sid = created["_id"].as_str().context("id")?.to_owned();
        self.pay(&created).await?;
        self.wait_session(org, &sid, Duration::from_secs(60), "a cost", |s| {
            s["status"] == "started" && s["cost"]["amount"].as_i64() > Some(0)
        })
        .await?;
        let ended = self.stop_until_captured(org, &sid).await?;
        Ok((sid, ended))
    }

    /// Creates a payment-link session; its JSON (with `payment.url`).
    pub async fn create_session(
        &self,
        org: &Org,
        connector: &str,
        extra: Value,
    ) -> anyhow::Result<Value> {
        let mut body = json!({"user": org.user, "connector": connector, "type": "payment_link"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.post("/sessions", &org.key, body).await
    }

    /// Pays `session` at the sandbox as the hosted page's test card would (no browser).
    pub async fn pay(&self, session: &Value) -> anyhow::Result<()> {
        self.pay_with(session, stripe_sandbox::CARD_SUCCESS).await
    }

    /// [`Self::pay`] with the test card `card_number`.
    pub async fn pay_with(&self, session: &Value, card_number: &str) -> anyhow::Result<()> {
        let url = session["payment"]["url"].as_str().context("payment url")?;
        let id = url
            .rsplit('/')
            .next()
            .context("checkout id")?
            .split('?')
            .next()
            .unwrap_or_default();
        let res = self
            .http
            .post(format!("{}/_sandbox/checkout/{id}/complete", self.sandbox))
            .json(&json!({ "card_number": card_number }))
            .send()
            .await?;
        ensure!(
            res.status().is_success(),
            "completing checkout {id}: {}",
            res.status()
        );
        Ok(())
    }

    /// Polls `GET /sessions/{id}` until `done` holds (at most `timeout`); the last session.
    pub async fn wait_session(
        &self,
        org: &Org,
        id: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.get(&format!("/sessions/{id}"), &org.key).await?;
            if done(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                bail!("session {id}: {what} not reached in {timeout:?}; last: {s}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The sandbox's log of `/v1` requests.
    pub async fn stripe_requests(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .http
            .get(format!("{}/_sandbox/requests", self.sandbox))
            .send()
            .await?
            .json()
            .await?)
    }

    /// The session's events from `GET /events?session=`, in sequence order.
    pub async fn events(&self, org: &Org, session: &str) -> anyhow::Result<Vec<Value>> {
        let log = self
            .get(&format!("/events?session={session}&limit=500"), &org.key)
            .await?;
        let mut events: Vec<Value> = log["data"].as_array().cloned().unwrap_or_default();
        events.sort_by_key(|e| e["event"]["seq"].as_u64());
        Ok(events)
    }

    /// Successful, non-replayed capture and cancel requests the sandbox saw for `intent`.
    pub async fn money_moves(&self, intent: &str) -> anyhow::Result<(Vec<Value>, usize)> {
        let requests = self.stripe_requests().await?;
        let done = |suffix: &str| {
            let path = format!("/v1/payment_intents/{intent}/{suffix}");
            requests
                .iter()
                .filter(|r| {
                    r["path"] == path.as_str() && r["status"] == 200 && r["replayed"] == false
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        Ok((done("capture"), done("cancel").len()))
    }

    /// Checks a finished session's money at the sandbox: exactly one capture, of the final cost,
    /// within the hold (or, when nothing is owed, exactly one cancel and no capture).
    pub async fn assert_settled_once(&self, session: &Value) -> anyhow::Result<()> {
        let sid = session["_id"].as_str().unwrap_or_default();
        let intent = session["payment"]["stripe"]["intent_id"]
            .as_str()
            .with_context(|| format!("{sid} has no payment intent: {session}"))?;
        let (captures, cancels) = self.money_moves(intent).await?;
        let cost = session["cost"]["amount"].as_i64().unwrap_or(0);
        let hold = session["payment"]["authorized_amount"]
            .as_i64()
            .context("hold")?;
        if cost == 0 {
            ensure!(
                captures.is_empty() && cancels == 1,
                "{sid}: nothing owed, one cancel: {captures:?} {cancels}"
            );
            return Ok(());
        }
        ensure!(
            captures.len() == 1 && cancels == 0,
            "{sid}: one capture, no cancel: {captures:?} {cancels}"
        );
        ensure!(
            captures[0]["params"]["amount_to_capture"] == cost.to_string().as_str()
                && session["payment"]["captured_amount"] == cost
                && cost <= hold,
            "{sid}: the capture is the final cost {cost}, within the hold {hold}: {}",
            captures[0]
        );
        Ok(())
    }

    /// The store's OCPP transactions of `session` (what the gateways recorded).
    pub async fn transactions(
        &self,
        session: &str,
    ) -> anyhow::Result<Vec<store::entities::ocpp_transaction::Model>> {
        let store =
            store::Store::connect(&format!("sqlite://{}/chargelink.db", self.dir.display()))
                .await?;
        Ok(store.session_transactions(session).await?)
    }

    /// Waits until `receiver` has printed `expected` for `session`, then checks that it got exactly
    /// those, in order, verified, once each, and that `/events` lists the same ids, all delivered.
    pub async fn assert_webhooks(
        &self,
        org: &Org,
        receiver: &Receiver,
        session: &str,
        expected: &[&str],
    ) -> anyhow::Result<()> {
        let duplicates = self
            .assert_webhooks_at_least_once(org, receiver, session, expected)
            .await?;
        ensure!(duplicates == 0, "{duplicates} events arrived twice");
        Ok(())
    }

    /// Like [`Self::assert_webhooks`], but an event may arrive more than once (delivery is at
    /// least once: a process killed between sending and recording sends again); receivers
    /// de-duplicate by event id. The number of duplicates.
    pub async fn assert_webhooks_at_least_once(
        &self,
        org: &Org,
        receiver: &Receiver,
        session: &str,
        expected: &[&str],
    ) -> anyhow::Result<usize> {
        let unique = |all: Vec<Value>| {
            let mut seen = std::collections::BTreeSet::new();
            let n = all.len();
            let kept: Vec<Value> = all
                .into_iter()
                .filter(|e| seen.insert(e["event_id"].to_string()))
                .collect();
            let duplicates = n - kept.len();
            (kept, duplicates)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (mut got, mut duplicates) = unique(self.received(receiver, session));
        while got.len() < expected.len() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            (got, duplicates) = unique(self.received(receiver, session));
        }
        let types: Vec<&str> = got.iter().filter_map(|e| e["type"].as_str()).collect();
        ensure!(
            types == expected,
            "events received for {session}: {types:?}, expected {expected:?}"
        );
        // In order from the first; a gap is an event the endpoint did not subscribe to
        // (`session.idle` on a parking rate), a lost one shows in the types above.
        let seqs: Vec<u64> = got.iter().filter_map(|e| e["seq"].as_u64()).collect();
        ensure!(
            seqs.len() == expected.len()
                && seqs.first().is_none_or(|s| *s == 1)
                && seqs.windows(2).all(|w| w[0] < w[1]),
            "sequence numbers {seqs:?}"
        );
        ensure!(
            got.iter().all(|e| e["signature"] == "verified"),
            "unverified: {got:?}"
        );
        // The receiver prints an event before it answers; the dispatcher records the delivery
        // only once the answer is back. Wait for the records, up to the same deadline.
        let delivered = |log: &[Value]| {
            log.iter()
                .all(|e| e["deliveries"][0]["status"] == "delivered")
        };
        // Only events for this endpoint: one it does not subscribe to (chargelink's own
        // `session.payment.increased` for an endpoint without an `events` list) has no delivery.
        let subscribed = |log: Vec<Value>| -> Vec<Value> {
            log.into_iter()
                .filter(|e| {
                    e["deliveries"].as_array().is_some_and(|d| {
                        d.iter()
                            .any(|d| d["endpoint_id"] == receiver.endpoint.as_str())
                    })
                })
                .collect()
        };
        let mut log = subscribed(self.events(org, session).await?);
        while (log.len() < got.len() || !delivered(&log)) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            log = subscribed(self.events(org, session).await?);
        }
        let logged: Vec<&str> = log
            .iter()
            .filter_map(|e| e["event"]["_id"].as_str())
            .collect();
        let printed: Vec<&str> = got.iter().filter_map(|e| e["event_id"].as_str()).collect();
        ensure!(
            logged == printed,
            "/events has {logged:?}, the receiver printed {printed:?}"
        );
        for e in &log {
            let d = &e["deliveries"][0];
            ensure!(
                d["endpoint_id"] == receiver.endpoint.as_str() && d["status"] == "delivered",
                "delivery of {}: {d}",
                e["event"]["_id"]
            );
        }
        Ok(duplicates)
    }
}

/// A scenario on the shared process stack.
pub type Scenario =
    fn(&ProcessStack) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + '_>>;

/// The `main` of an end-to-end test binary: starts one process stack of `bin` (with `extra_env`
/// for the chargelink processes), runs each named scenario on it as a trial (a failing one
/// prints the processes' log tails and keeps the logs), then stops the stack.
pub fn run_scenarios(
    bin: &Path,
    extra_env: &[(&str, &str)],
    scenarios: Vec<(&'static str, Scenario)>,
) -> std::process::ExitCode {
    run_scenarios_with(bin, extra_env, false, scenarios)
}

/// [`run_scenarios`] on a stack whose Temporal dev server keeps history in a file
/// (`persistent_temporal`), for scenarios that restart it.
pub fn run_scenarios_with(
    bin: &Path,
    extra_env: &[(&str, &str)],
    persistent_temporal: bool,
    scenarios: Vec<(&'static str, Scenario)>,
) -> std::process::ExitCode {
    run_scenarios_on(
        bin,
        extra_env,
        Temporal::persistent_if(persistent_temporal),
        scenarios,
    )
}

/// [`run_scenarios`] on the given kind of dev server.
pub fn run_scenarios_on(
    bin: &Path,
    extra_env: &[(&str, &str)],
    temporal: Temporal,
    scenarios: Vec<(&'static str, Scenario)>,
) -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let Some(tokio) = crate::harness::runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    let stack = match tokio.block_on(ProcessStack::start_on(bin, extra_env, temporal)) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("could not start the process stack: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let trials = scenarios
        .into_iter()
        .map(|(name, scenario)| {
            let stack = stack.clone();
            let handle = tokio.handle().clone();
            libtest_mimic::Trial::test(name, move || {
                handle.block_on(scenario(&stack)).map_err(|e| {
                    stack.diagnose();
                    libtest_mimic::Failed::from(format!("{e:#}"))
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(stack);
    conclusion.exit_code()
}

impl Drop for ProcessStack {
    fn drop(&mut self) {
        for p in self.procs().values_mut() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if !self.keep.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
