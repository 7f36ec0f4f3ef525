//! Security profile 3 (mutual TLS) with real sockets: a test PKI made with rcgen (a CA, the
//! gateway's server certificate, one client certificate per station, and a CA nobody trusts),
//! stations in the store with their profiles, and the real gateway on a TLS listener with the
//! client CA, plus a plain `ws://` one on the same store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use chargelink_tests::fixtures::random_body;
use chargelink_tests::pki::Ca;
use domain::station::SecurityProfile;
use futures::{SinkExt, StreamExt};
use ocpp::{Gateway, GatewayConfig, StoreRegistry, StoreStationDirectory, TlsPaths};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::Value;
use sim::SimTls;
use support::KEY;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Two gateways on one store: `tls` (server certificate and client CA) and `plain` (`ws://`).
/// Stations CP1 and CP3 are profile 3, CP2 profile 2, CP0 profile 1.
struct Setup {
    dir: PathBuf,
    ca: PathBuf,
    tls: std::net::SocketAddr,
    plain: std::net::SocketAddr,
    pki: Ca,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Setup {
    async fn start() -> anyhow::Result<Setup> {
        let dir = std::env::temp_dir().join(format!("chargelink-mtls-{}", &random_body()[..8]));
        std::fs::create_dir_all(&dir)?;
        let pki = Ca::new("chargelink test CA")?;
        let ca = pki.write(&dir, "ca")?;
        let (cert, key) = pki.issue(
            &dir,
            "server",
            "gateway",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (store, _) = support::test_store(&dir).await?;
        stations(
            &store,
            &[
                ("CP0", SecurityProfile::Basic),
                ("CP1", SecurityProfile::TlsClientCertificate),
                ("CP2", SecurityProfile::TlsBasic),
                ("CP3", SecurityProfile::TlsClientCertificate),
            ],
        )
        .await?;
        let mut stops = Vec::new();
        let mut addrs = Vec::new();
        for tls in [
            Some(TlsPaths {
                cert,
                key,
                client_ca: Some(ca.clone()),
            }),
            None,
        ] {
            let mut config =
                GatewayConfig::new(format!("mtls-{}", &random_body()[..8]), PathBuf::new());
            config.bind = ([127, 0, 0, 1], 0).into();
            config.tls = tls;
            let gateway = Gateway::bind_with(
                config,
                Arc::new(StoreStationDirectory::new(store.clone())),
                Arc::new(StoreRegistry::new(store.clone())),
            )
            .await?;
            addrs.push(gateway.local_addr());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let events = Arc::new(ocpp::ChannelEvents(
                tokio::sync::mpsc::unbounded_channel().0,
            ));
            tokio::spawn(gateway.run_without_temporal(events, async {
                let _ = stopped.await;
            }));
            stops.push(stop);
        }
        Ok(Setup {
            dir,
            ca,
            tls: addrs[0],
            plain: addrs[1],
            pki,
            stops,
        })
    }

    /// A client certificate from the test CA for `cn`.
    fn client_cert(&self, cn: &str) -> (PathBuf, PathBuf) {
        self.pki
            .issue(
                &self.dir,
                &format!("client-{cn}"),
                cn,
                ExtendedKeyUsagePurpose::ClientAuth,
            )
            .unwrap()
    }

    fn wss(&self) -> String {
        format!("wss://{}/ocpp", self.tls)
    }

    /// TLS trusting the test CA, with `client` as the client certificate.
    fn tls(&self, client: Option<(PathBuf, PathBuf)>) -> SimTls {
        SimTls {
            ca: self.ca.clone(),
            client,
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates the stations in an organization of their own (key [`KEY`]).
async fn stations(store: &store::Store, list: &[(&str, SecurityProfile)]) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let org = domain::ids::OrganizationId::from_unique(&random_body())?;
    store
        .create_organization(
            store::NewOrganization {
                id: org.clone(),
                name: "ops".into(),
                settings: Default::default(),
            },
            now,
        )
        .await?;
    for &(id, security_profile) in list {
        store
            .create_charge_station(
                &org,
                store::NewChargeStation {
                    id: id.into(),
                    name: id.into(),
                    auth_key: KEY.into(),
                    security_profile,
                },
                now,
            )
            .await?;
    }
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What an upgrade attempt came to.
#[derive(Debug)]
enum Outcome {
    /// Upgraded with `ocpp1.6`.
    Connected(Box<Socket>),
    /// An HTTP answer instead of the upgrade: status and body.
    Refused(u16, String),
    /// No HTTP answer at all (TLS or connection failure).
    Failed(String),
}

/// Opens `<url>/<station>` with `ocpp1.6`, Basic credentials of `station` unless `basic` is
/// false, and `tls` for a `wss://` URL.
async fn open(url: &str, station: &str, basic: bool, tls: Option<SimTls>) -> Outcome {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut req = format!("{url}/{station}").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("ocpp1.6"),
    );
    if basic {
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&ocpp::auth::basic_header(station, KEY)).unwrap(),
        );
    }
    let connector = tls.map(|t| Connector::Rustls(t.client_config().unwrap()));
    match tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector).await {
        Ok((socket, response)) => {
            assert_eq!(
                response
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok()),
                Some("ocpp1.6")
            );
            Outcome::Connected(Box::new(socket))
        }
        Err(WsError::Http(response)) => Outcome::Refused(
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Sends BootNotification and returns the answer's payload.
async fn boot(socket: &mut Socket) -> anyhow::Result<Value> {
    socket
        .send(Message::text(
            r#"[2,"b1","BootNotification",{"chargePointVendor":"test","chargePointModel":"mtls"}]"#,
        ))
        .await?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .context("no answer to BootNotification")?
            .context("closed")??;
        if let Message::Text(text) = next {
            let frame: Value = serde_json::from_str(text.as_str())?;
            // The gateway may send its own CALLs (configuration) after the answer.
            if frame[0] == 3 && frame[1] == "b1" {
                return Ok(frame[2].clone());
            }
        }
    }
}

fn refused_with(outcome: &Outcome, needle: &str) -> anyhow::Result<()> {
    match outcome {
        Outcome::Refused(401, body) if body.contains(needle) => Ok(()),
        other => anyhow::bail!("expected 401 mentioning {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_profile_3_station_with_its_own_certificate_boots_accepted() -> anyhow::Result<()> {
    let s = Setup::start().await?;
    // The certificate alone authenticates: no Basic header.
    let tls = s.tls(Some(s.client_cert("CP1")));
    let Outcome::Connected(mut socket) = open(&s.wss(), "CP1", false, Some(tls.clone())).await
    else {
        anyhow::bail!("CP1 with its certificate was not let in");
    };
    let answer = boot(&mut socket).await?;
    ensure!(answer["status"] == "Accepted", "{answer}");
    // A Basic header alongside changes nothing.
    ensure!(matches!(
        open(&s.wss(), "CP1", true, Some(tls)).await,
        Outcome::Connected(_)
    ));
    Ok(())
}

#[tokio::test]
async fn the_simulator_connects_as_a_profile_3_station() -> anyhow::Result<()> {
    let s = Setup::start().await?;
    // `{id}` in the paths picks each station's own certificate, as `chargelink sim` does.
    s.client_cert("CP3");
    let template = s.tls(Some((
        s.dir.join("client-{id}.pem"),
        s.dir.join("client-{id}.key"),
    )));
    let mut spec = sim::StationSpec::new(s.wss(), "CP3", "not-the-key-but-unused");
    spec.tls = Some(template.for_station("CP3"));
    let station = sim::run_station(spec);
    let state = station
        .wait_for("booted over mutual TLS", Duration::from_secs(10), |st| {
            st.booted
        })
        .await?;
    ensure!(state.connected, "{state:?}");
    station.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_profile_3_station_without_a_certificate_is_refused() -> anyhow::Result<()> {
    let s = Setup::start().await?;
    // Right Basic credentials do not stand in for the certificate.
    let outcome = open(&s.wss(), "CP1", true, Some(s.tls(None))).await;
    refused_with(&outcome, "a client certificate is required")
}

#[tokio::test]
async fn another_stations_certificate_is_refused() -> anyhow::Result<()> {
    let s = Setup::start().await?;
    let cp3 = s.tls(Some(s.client_cert("CP3")));
    let outcome = open(&s.wss(), "CP1", true, Some(cp3.clone())).await;
    refused_with(&outcome, "another charge station")?;
    // The same certificate still opens its own station.
    ensure!(matches!(
        open(&s.wss(), "CP3", false, Some(cp3)).await,
        Outcome::Connected(_)
    ));
    Ok(())
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_handshake() -> anyhow::Result<()> {
    let s = Setup::start().await?;
    let rogue = Ca::new("someone else's CA")?;
    let dir = s.dir.join("rogue");
    std::fs::create_dir_all(&dir)?;
    let client = rogue.issue(&dir, "CP1", "CP1", ExtendedKeyUsagePurpose::ClientAuth)?;
    let outcome = open(&s.wss(), "CP1", true, Some(s.tls(Some(client)))).await;
    // No HTTP answer at all: the gateway aborts the TLS handshake.
    match outcome {
        Outcome::Failed(why) => {
            eprintln!("refused at the handshake, as it should: {why}");
            Ok(())
        }
        other => anyhow::bail!("a foreign CA's certificate got {other:?}"),
    }
}

#[tokio::test]
async fn a_profile_2_station_without_a_certificate_connects_on_the_same_listener()
-> anyhow::Result<()> {
    let s = Setup::start().await?;
    let Outcome::Connected(mut socket) = open(&s.wss(), "CP2", true, Some(s.tls(None))).await
    else {
        anyhow::bail!("CP2 (profile 2) was not let in over TLS");
    };
    let answer = boot(&mut socket).await?;
    ensure!(answer["status"] == "Accepted", "{answer}");
    // ...but never over plain ws://, and never without its password.
    refused_with(
        &open(&format!("ws://{}/ocpp", s.plain), "CP2", true, None).await,
        "wss://",
    )?;
    refused_with(
        &open(&s.wss(), "CP2", false, Some(s.tls(None))).await,
        "Basic credentials required",
    )?;
    // A profile-1 station keeps today's behaviour: Basic auth over ws:// and wss:// alike.
    ensure!(matches!(
        open(&format!("ws://{}/ocpp", s.plain), "CP0", true, None).await,
        Outcome::Connected(_)
    ));
    ensure!(matches!(
        open(&s.wss(), "CP0", true, Some(s.tls(None))).await,
        Outcome::Connected(_)
    ));
    Ok(())
}

#[tokio::test]
async fn a_profile_3_station_over_plain_ws_is_refused() -> anyhow::Result<()> {
    let s = Setup::start().await?;
    let outcome = open(&format!("ws://{}/ocpp", s.plain), "CP1", true, None).await;
    refused_with(&outcome, "security profile 3: connect over wss://")
}
