//! The chargelink stack for end-to-end tests: a Temporal dev server, the store (SQLite file), a
//! session worker, the API (with the Stripe webhook receiver) on a real port, and the Stripe
//! sandbox delivering signed webhooks to it. Payment and store activities are the real ones;
//! the charger commands are recording stand-ins until a gateway joins.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use domain::ids::{OrganizationId, RateId};
use domain::money::Currency;
use domain::rate::{Dimension, Rate};
use store::{NewChargeStation, NewConnector, NewOrganization, OrganizationSettings, Store};
use temporalio_client::Client;
use temporalio_sdk::Worker;
use url::Url;
use workflows::client::SessionClient;

use crate::devserver::{DevServer, connect};
use crate::fixtures::{component, random_body};

/// The webhook secret the sandbox signs with and the receiver checks.
pub const WEBHOOK_SECRET: &str = "whsec_chargelink_tests";

/// A running stack. Run `worker` on the current task (its future is !Send).
pub struct Stack {
    /// The Temporal dev server (killed on drop).
    pub server: DevServer,
    /// A Temporal client.
    pub client: Client,
    /// The store.
    pub store: Store,
    /// Base URL of the API.
    pub api: String,
    /// Session workflows.
    pub sessions: SessionClient,
    /// The Stripe sandbox.
    pub sandbox: stripe_sandbox::Sandbox,
    /// The session worker, not yet running.
    pub worker: Worker,
    /// Journal of the recording stand-ins.
    pub journal: PathBuf,
    /// Keeps the SDK runtime alive as long as the worker.
    pub runtime: temporalio_sdk::Runtime,
}

/// Starts the stack.
pub async fn start() -> anyhow::Result<Stack> {
    let server = DevServer::start().await?;
    let client = connect(&server.url).await?;
    let db = std::env::temp_dir().join(format!("chargelink-stack-{}.db", random_body()));
    let store = Store::open(&format!("sqlite://{}?mode=rwc", db.display())).await?;
    let queue = format!("stack-{}", random_body());
    let journal = std::env::temp_dir().join(format!("{queue}.jsonl"));

    // The API's address is needed before the sandbox (its webhook target) and the payment
    // activities (their return URLs) exist.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let sandbox = stripe_sandbox::Sandbox::builder()
        .webhook_endpoint(Url::parse(&format!("{api}/stripe/webhook"))?)
        .webhook_secret(WEBHOOK_SECRET)
        .start()
        .await?;
    let payments =
        activities::payments::PaymentActivities::new(&activities::payments::StripeSettings {
            secret_key: "sk_test_chargelink".into(),
            api_base: Some(sandbox.base_url().clone()),
            public_base_url: Url::parse(&api)?,
            request_timeout: Duration::from_secs(10),
        })?;
    // Registered last, the real payment and store activities replace the recorder's.
    let mut options = crate::harness::recording_worker_options(&queue, &journal, &store)?;
    options.register_activities(payments);
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
    let worker = Worker::new(&runtime, client.clone(), options)?;

    let sessions = SessionClient::new(client.clone(), queue);
    let state = api::AppState {
        store: store.clone(),
        sessions: sessions.clone(),
        config: api::ApiConfig {
            public_rate_limit: api::limits::RateLimiter::public(),
            rate_limit: Default::default(),
            receipts: Default::default(),
            default_max_power_w: None,
            admin_token: None,
            timings: Default::default(),
        },
    };
    // As `chargelink api` serves it: REST and gRPC on one port, plus the Stripe webhook receiver.
    let app = grpc::with_rest(state)?.merge(stripe_webhooks::router(
        stripe_webhooks::WebhookState::new(client.clone(), WEBHOOK_SECRET),
    ));
    tokio::spawn(api::serve_app(listener, app, std::future::pending()));
    // The stand-in gateway renews its lease like a real one, so long runs (the benchmark) keep
    // their stations online.
    let leases = store.clone();
    tokio::spawn(async move {
        let queue = workflows::queues::gateway(STAND_IN_GATEWAY);
        loop {
            tokio::time::sleep(store::GATEWAY_LEASE / 3).await;
            if let Err(e) = leases.renew_gateway_lease(&queue, Utc::now()).await {
                eprintln!("renewing the stand-in gateway's lease failed: {e}");
            }
        }
    });
    Ok(Stack {
        server,
        client,
        store,
        api,
        sessions,
        sandbox,
        worker,
        journal,
        runtime,
    })
}

/// The gateway instance the recording stand-ins play in the station registry.
pub const STAND_IN_GATEWAY: &str = "recording-stand-in";

/// Records in the store's station registry what a gateway would on a station's connection and
/// first StatusNotifications: `station` is connected and `connectors` are Available. The
/// recording stand-ins answer the charger commands, so the queue is only informative.
pub async fn stand_in_online(
    store: &Store,
    station: &str,
    connectors: &[i32],
) -> anyhow::Result<()> {
    let now = Utc::now();
    store
        .station_connected(
            station,
            STAND_IN_GATEWAY,
            &workflows::queues::gateway(STAND_IN_GATEWAY),
            &format!("{STAND_IN_GATEWAY}-{}", random_body()),
            now,
        )
        .await?;
    for &n in connectors {
        store
            .record_connector_status(station, n, "Available", "NoError", now)
            .await?;
    }
    Ok(())
}

/// An organization with an API key, a driver and a station `CP-…` with one connector on an
/// energy rate (0.30 USD/kWh, hold 1800), online and Available (see [`stand_in_online`]).
pub struct Tenant {
    /// The organization.
    pub org: OrganizationId,
    /// The station (OCPP identity); the connector is its number 1.
    pub station: String,
    /// Its API key.
    pub key: String,
    /// A driver.
    pub user: String,
    /// The connector.
    pub connector: String,
}

/// Creates a tenant directly in the store.
pub async fn tenant(store: &Store) -> anyhow::Result<Tenant> {
    let rate = Rate::new(
        Currency::USD,
        vec![component(Dimension::Energy, "0.30", None)],
    );
    tenant_with(store, rate, None).await
}

/// Creates a tenant whose connector charges `rate` (the organization's currency is the
/// rate's, hold 1800 minor units) and delivers at most `max_power_w`.
pub async fn tenant_with(
    store: &Store,
    rate: Rate,
    max_power_w: Option<i64>,
) -> anyhow::Result<Tenant> {
    let now = Utc::now();
    let org = OrganizationId::from_unique(&random_body())?;
    store
        .create_organization(
            NewOrganization {
                id: org.clone(),
                name: "tests".into(),
                settings: OrganizationSettings {
                    currency: rate.currency,
                    ..OrganizationSettings::default()
                },
            },
            now,
        )
        .await?;
    let key = store.create_api_key(&org, "tests", now).await?.secret;
    let rate_id = RateId::from_unique(&random_body())?;
    store
        .create_rate(&org, &rate_id, "energy", &rate, now)
        .await?;
    let user = format!("usr_{}", random_body());
    store.create_user(&org, &user, None, None, now).await?;
    let station = format!("CP-{}", &random_body()[..10]);
    store
        .create_charge_station(
            &org,
            NewChargeStation {
                id: station.clone(),
                name: "test".into(),
                auth_key: random_body(),
                security_profile: Default::default(),
            },
            now,
        )
        .await?;
    let connector = format!("con_{}", random_body());
    store
        .create_connector(
            &org,
            NewConnector {
                id: connector.clone(),
                charge_station_id: station.clone(),
                connector_number: 1,
                rate_id,
                max_power_w,
            },
            now,
        )
        .await
        .context("connector")?;
    stand_in_online(store, &station, &[1]).await?;
    Ok(Tenant {
        org,
        station,
        key,
        user,
        connector,
    })
}
