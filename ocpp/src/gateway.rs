//! The gateway process: the WebSocket server and the Temporal worker serving charger commands
//! for the stations connected to it.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use temporalio_client::Client;
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Worker, WorkerOptions};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};
use workflows::client::SessionClient;

use crate::activities::GatewayActivities;
use crate::auth::{FileStationDirectory, StationDirectory};
use crate::central::{Central, ProtocolSettings};
use crate::central201::Central201;
use crate::connection::SocketLimits;
use crate::events::SessionEvents;
use crate::registry::{Connections, Registry, StationLocation, StoreRegistry};
use crate::server::{ServerState, accept_loop, router};
use crate::shutdown;
use crate::signals::TemporalEvents;
use crate::tls::{self, TlsPaths};

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen (`0.0.0.0:9000`; port 0 in tests).
    pub bind: SocketAddr,
    /// This gateway instance; its task queue is `workflows::queues::gateway(instance_id)`.
    pub instance_id: String,
    /// Heartbeat interval given to stations in BootNotification.
    pub heartbeat_interval: Duration,
    /// A connection without any message for this long is closed; defaults to three heartbeat
    /// intervals.
    pub idle_timeout: Option<Duration>,
    /// How long a CALL to a station may take; a timeout fails the activity so Temporal retries.
    pub call_timeout: Duration,
    /// `MeterValueSampleInterval` pushed to stations at boot.
    pub meter_sample_interval: Duration,
    /// TLS certificate and key (security profiles 2 and 3) and the client CA (profile 3);
    /// `None` serves plain `ws://`.
    pub tls: Option<TlsPaths>,
    /// The JSON stations file with hashed keys.
    pub stations_file: PathBuf,
    /// Most simultaneous station connections.
    pub max_connections: usize,
    /// How long a RemoteStart's id tag is accepted in StartTransaction.
    pub pending_start_ttl: Duration,
    /// How long a command waits for a station that is not connected (it may be reconnecting).
    pub offline_grace: Duration,
    /// Pollers of the charger-command task queue; `None` keeps the Temporal SDK's default.
    pub activity_pollers: Option<PollerBehavior>,
}

impl GatewayConfig {
    /// Defaults: `0.0.0.0:9000`, heartbeat 300 s, call timeout 30 s, meter values every 60 s,
    /// no TLS, 20 000 connections.
    pub fn new(instance_id: impl Into<String>, stations_file: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 9000)),
            instance_id: instance_id.into(),
            heartbeat_interval: Duration::from_secs(300),
            idle_timeout: None,
            call_timeout: Duration::from_secs(30),
            meter_sample_interval: Duration::from_secs(60),
            tls: None,
            stations_file,
            max_connections: 20_000,
            pending_start_ttl: Duration::from_secs(15 * 60),
            offline_grace: Duration::from_secs(5),
            activity_pollers: None,
        }
    }

    /// This gateway's Temporal task queue.
    pub fn task_queue(&self) -> String {
        workflows::queues::gateway(&self.instance_id)
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The stations file could not be loaded.
    #[error(transparent)]
    Directory(#[from] crate::auth::DirectoryError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound gateway, not yet running. Bind to port 0 and read [`Gateway::local_addr`] in tests.
pub struct Gateway {
    config: GatewayConfig,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    directory: Arc<dyn StationDirectory>,
    registry: Arc<dyn Registry>,
    connections: Connections,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("instance_id", &self.config.instance_id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads the stations file, keeps the registry in `store` (migrated), sets up TLS and
    /// binds the listener.
    pub async fn bind(config: GatewayConfig, store: store::Store) -> Result<Self, GatewayError> {
        let directory = Arc::new(FileStationDirectory::load(&config.stations_file)?);
        let registry = Arc::new(StoreRegistry::new(store));
        Self::bind_with(config, directory, registry).await
    }

    /// Like [`Gateway::bind`] with a given directory and registry (the store-backed ones, or
    /// test doubles); the paths in `config` are not used.
    pub async fn bind_with(
        config: GatewayConfig,
        directory: Arc<dyn StationDirectory>,
        registry: Arc<dyn Registry>,
    ) -> Result<Self, GatewayError> {
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: config.bind,
            source,
        })?;
        Ok(Self {
            config,
            listener,
            local_addr,
            tls,
            directory,
            registry,
            connections: Connections::default(),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The registry (for a [`crate::StationLocator`] in the same process).
    pub fn registry(&self) -> Arc<dyn Registry> {
        self.registry.clone()
    }

    /// The live connections.
    pub fn connections(&self) -> Connections {
        self.connections.clone()
    }

    /// This gateway's Temporal task queue.
    pub fn task_queue(&self) -> String {
        self.config.task_queue()
    }

    /// Runs the WebSocket server and the gateway's Temporal worker until `shutdown` completes
    /// (or the worker fails). Station events are signalled to the session workflows through
    /// `temporal`. The future is not `Send` (the worker's is not): run it on the main task.
    pub async fn run(
        self,
        runtime: &temporalio_sdk::Runtime,
        temporal: Client,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let events = Arc::new(TemporalEvents::new(
            SessionClient::new(temporal.clone(), workflows::queues::SESSIONS),
            self.connections.clone(),
        ));
        let activities = GatewayActivities::new(
            self.connections.clone(),
            self.registry.clone(),
            self.config.offline_grace,
        );
        let mut options = WorkerOptions::new(self.task_queue())
            .register_activities(activities)
            .graceful_shutdown_period(Duration::from_secs(5))
            .build();
        options.activity_task_poller_behavior = self.config.activity_pollers;
        let mut worker = Worker::new(runtime, temporal, options)
            .context("creating the gateway's Temporal worker")?;
        let stop_worker = worker.shutdown_handle();
        let (trigger, listener) = shutdown::channel();
        let server = self.serve(events, listener);
        let worker_run = async {
            let result = worker.run().await;
            // A worker that stopped on its own takes the server down with it.
            trigger.trigger();
            result
        };
        let stopper = async {
            tokio::select! {
                () = shutdown => {}
                // Also stop on an internal shutdown (the worker ended).
                () = wait_triggered(&trigger) => {}
            }
            trigger.trigger();
            stop_worker();
        };
        let (served, worked, ()) = tokio::join!(server, worker_run, stopper);
        served?;
        worked.context("the gateway's Temporal worker failed")?;
        Ok(())
    }

    /// Runs only the WebSocket server, reporting session events to `events` (protocol tests,
    /// benchmarks, a gateway without Temporal).
    pub async fn run_without_temporal(
        self,
        events: Arc<dyn SessionEvents>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let (trigger, listener) = shutdown::channel();
        let stopper = async {
            shutdown.await;
            trigger.trigger();
        };
        let (served, ()) = tokio::join!(self.serve(events, listener), stopper);
        served
    }

    async fn serve(
        self,
        events: Arc<dyn SessionEvents>,
        shutdown: shutdown::Shutdown,
    ) -> anyhow::Result<()> {
        let location = StationLocation {
            instance_id: self.config.instance_id.clone(),
            task_queue: self.task_queue(),
        };
        self.registry
            .instance_started(&location.instance_id)
            .await
            .context("resetting this instance's stations in the registry")?;
        // A gateway killed outright never records its stations' disconnects; its lapsed lease
        // tells the API instead.
        tokio::spawn(renew_lease_until_shutdown(
            self.registry.clone(),
            location.clone(),
            shutdown.clone(),
        ));
        let central = Arc::new(Central {
            registry: self.registry.clone(),
            events,
            settings: ProtocolSettings {
                heartbeat_interval: self.config.heartbeat_interval,
                meter_sample_interval: self.config.meter_sample_interval,
                pending_start_ttl: self.config.pending_start_ttl,
            },
            starts_published: Default::default(),
        });
        let central201 = Arc::new(Central201::new(central.clone()));
        let idle_timeout = self
            .config
            .idle_timeout
            .unwrap_or(self.config.heartbeat_interval.saturating_mul(3));
        let state = Arc::new(ServerState {
            directory: self.directory.clone(),
            central,
            central201,
            registry: self.registry.clone(),
            connections: self.connections.clone(),
            location,
            limits: SocketLimits { idle_timeout },
            call_timeout: self.config.call_timeout,
            permits: Arc::new(Semaphore::new(self.config.max_connections)),
            shutdown: shutdown.clone(),
            seen: Default::default(),
        });
        info!(
            addr = %self.local_addr,
            tls = self.tls.is_some(),
            client_certificates = self.config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            task_queue = %self.task_queue(),
            "OCPP gateway listening"
        );
        accept_loop(self.listener, self.tls, router(state), shutdown).await;
        // Connections saw the same signal and are closing; give them a moment to say goodbye.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.connections.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        info!("OCPP gateway stopped");
        Ok(())
    }
}

/// Renews this gateway's lease on the stations it holds, at a third of
/// [`store::GATEWAY_LEASE`] so that two failed renewals in a row (a database hiccup) still
/// leave its stations online.
async fn renew_lease_until_shutdown(
    registry: Arc<dyn Registry>,
    location: StationLocation,
    mut shutdown: shutdown::Shutdown,
) {
    let mut ticks = tokio::time::interval(store::GATEWAY_LEASE / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.recv() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = registry.renew_lease(&location).await {
            warn!(%error, task_queue = %location.task_queue, "renewing the gateway's lease on its stations failed; retrying at the next tick");
        }
    }
}

async fn wait_triggered(trigger: &shutdown::ShutdownTrigger) {
    trigger.triggered().await;
}

/// Binds and runs a gateway (stations file, registry in `store`) with its own Temporal runtime.
pub async fn run(
    config: GatewayConfig,
    store: store::Store,
    temporal: Client,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
        .context("creating the Temporal runtime")?;
    let gateway = Gateway::bind(config, store).await?;
    gateway.run(&runtime, temporal, shutdown).await
}
