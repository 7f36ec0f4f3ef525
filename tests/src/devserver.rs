//! A Temporal dev server for tests and the local stack, from the CLI the scripts install.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use url::Url;

/// The installed Temporal CLI: `$TEMPORAL_CLI`, else `<repo>/.tools/bin/temporal`.
pub fn temporal_cli() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("TEMPORAL_CLI") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/temporal"),
    };
    if !path.exists() {
        bail!(
            "Temporal CLI not found at {}: run scripts/test (it installs it) or set TEMPORAL_CLI",
            path.display()
        );
    }
    Ok(path)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running `temporal server start-dev`; killed on drop.
pub struct DevServer {
    child: std::sync::Mutex<Child>,
    /// `http://127.0.0.1:<port>`.
    pub url: Url,
    /// The Web UI (`http://127.0.0.1:<ui port>`), when started with it.
    pub ui: Option<Url>,
    port: u16,
    ui_port: Option<u16>,
    /// The SQLite file history is kept in (`None`: in memory).
    db: Option<PathBuf>,
}

impl DevServer {
    /// Starts an in-memory dev server on a free port with chargelink's search attributes, and
    /// waits (up to a minute, not the SDK's fixed 5 s) until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        Self::launch(free_port()?, None, None).await
    }

    /// Like [`Self::start`], with history in the SQLite file `db`, so [`Self::restart`] keeps
    /// every workflow.
    pub async fn start_persistent(db: PathBuf) -> anyhow::Result<Self> {
        Self::launch(free_port()?, None, Some(db)).await
    }

    /// Like [`Self::start`], with the Web UI on a free port ([`Self::ui`]); the other servers are
    /// headless.
    pub async fn start_with_ui() -> anyhow::Result<Self> {
        Self::launch(free_port()?, Some(free_port()?), None).await
    }

    fn spawn(port: u16, ui_port: Option<u16>, db: Option<&Path>) -> anyhow::Result<Child> {
        let mut cmd = Command::new(temporal_cli()?);
        cmd.args([
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--namespace",
            "default",
        ]);
        match ui_port {
            Some(ui) => cmd.args(["--ui-ip", "127.0.0.1", "--ui-port", &ui.to_string()]),
            None => cmd.arg("--headless"),
        };
        cmd.args(["--port", &port.to_string(), "--log-level", "error"])
            .args([
                "--dynamic-config-value",
                "frontend.enableUpdateWorkflowExecution=true",
            ])
            .args([
                "--dynamic-config-value",
                "frontend.enableUpdateWorkflowExecutionAsyncAccepted=true",
            ]);
        if let Some(db) = db {
            cmd.arg("--db-filename").arg(db);
        }
        for name in workflows::names::SEARCH_ATTRIBUTES {
            cmd.args(["--search-attribute", &format!("{name}=Keyword")]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting the Temporal dev server")
    }

    async fn launch(port: u16, ui_port: Option<u16>, db: Option<PathBuf>) -> anyhow::Result<Self> {
        let child = Self::spawn(port, ui_port, db.as_deref())?;
        let server = Self {
            child: std::sync::Mutex::new(child),
            url: Url::from_str(&format!("http://127.0.0.1:{port}"))?,
            ui: ui_port
                .map(|p| Url::from_str(&format!("http://127.0.0.1:{p}")))
                .transpose()?,
            port,
            ui_port,
            db,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match connect(&self.url).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("the dev server did not come up in 60 s"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server's process id (for the benchmarks' CPU and memory figures).
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Kills the server with SIGKILL (history stays in its file, if it has one).
    pub fn kill(&self) {
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server and starts it again on the same port and file, and waits until it
    /// answers. Only a persistent server keeps its workflows.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.kill();
        *self.child() = Self::spawn(self.port, self.ui_port, self.db.as_deref())?;
        self.wait_ready().await
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A client of the `default` namespace at `url`.
pub async fn connect(url: &Url) -> anyhow::Result<Client> {
    let connection = Connection::connect(
        ConnectionOptions::new(url.clone())
            .identity("chargelink-tests")
            .connect_timeout(Duration::from_secs(5))
            .build(),
    )
    .await?;
    Ok(Client::new(
        connection,
        ClientOptions::new("default").build(),
    )?)
}
