//! OCPP security profile 3 on the stack of real processes (issue #13): `chargelink gateway`
//! with `--tls-cert`/`--tls-key`/`--tls-client-ca` (through their environment variables), a
//! station registered through the API with `"security_profile": 3`, and `chargelink sim` with
//! `--tls-ca`/`--client-cert`/`--client-key` (`{id}` in the paths) charging through a paid
//! session. The same station without its certificate is refused, and the gateway logs why.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chargelink_tests::fixtures::random_body;
use chargelink_tests::pki::Ca;
use chargelink_tests::processes::{self, ProcessStack, Scenario, Station};
use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
use serde_json::json;

/// The test PKI's files: the CA and where station certificates go.
struct Pki {
    ca: Ca,
    dir: PathBuf,
    ca_pem: PathBuf,
}

static PKI: OnceLock<Pki> = OnceLock::new();

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

async fn a_profile_3_station_charges_with_its_certificate_only(
    stack: &ProcessStack,
) -> anyhow::Result<()> {
    let pki = PKI.get().context("PKI")?;
    let org = stack
        // 36.00 USD/h: a cent a second, so a short session has a cost to capture.
        .org(
            json!({}),
            json!([{"type": "ENERGY", "price": "0.30"}, {"type": "TIME", "price": "36.00"}]),
        )
        .await?;
    let id = format!("MTLS-{}-1", &random_body()[..8].to_uppercase());
    let created = stack
        .post(
            "/charge-stations",
            &org.key,
            json!({"id": id, "name": "mtls", "security_profile": 3,
                   "connectors": [{"connector_id": 1, "rate": org.rate}]}),
        )
        .await?;
    ensure!(created["security_profile"] == 3, "{created}");
    let station = Station {
        id: id.clone(),
        // Profile 3 uses no password: the simulator sends a wrong one to show it.
        password: "not-the-station-password".into(),
        connectors: vec![
            created["connectors"][0]["_id"]
                .as_str()
                .context("connector")?
                .to_owned(),
        ],
    };
    pki.ca
        .issue(&pki.dir, &format!("client-{id}"), &id, ClientAuth)?;
    let wss = stack.ocpp.replacen("ws://", "wss://", 1);
    let cert = pki.dir.join("client-{id}.pem");
    let key = pki.dir.join("client-{id}.key");

    // Without the certificate: refused, and the gateway says why.
    let bare = Station {
        id: format!("{id}-bare"),
        ..station.clone()
    };
    stack.spawn(
        &bare.id,
        &[
            "sim",
            "--url",
            &wss,
            "--stations",
            "1",
            "--id-prefix",
            id.trim_end_matches('1'),
            "--connectors",
            "1",
            "--tls-ca",
            path(&pki.ca_pem),
        ],
        &[("CHARGELINK_SIM_KEY", &station.password)],
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stack.log("gateway").lines().any(|l| {
        l.contains(&id) && l.contains("refused") && l.contains("a client certificate is required")
    }) {
        ensure!(
            Instant::now() < deadline,
            "no refusal logged: {}",
            stack.log("gateway")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.kill(&bare.id)?;

    // With its certificate: connects, and a paid session charges and is captured.
    stack
        .sim_at(
            &wss,
            &station,
            &[
                "--tls-ca",
                path(&pki.ca_pem),
                "--client-cert",
                path(&cert),
                "--client-key",
                path(&key),
            ],
        )
        .await?;
    let session = stack
        .create_session(&org, &station.connectors[0], json!({}))
        .await?;
    stack.pay(&session).await?;
    let sid = session["_id"].as_str().context("id")?.to_owned();
    stack
        .wait_session(&org, &sid, Duration::from_secs(30), "charging", |s| {
            s["status"] == "started"
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let done = stack.stop_until_captured(&org, &sid).await?;
    ensure!(
        done["cost"]["amount"].as_i64().is_some_and(|c| c > 0),
        "energy was charged and billed: {done}"
    );
    stack.assert_settled_once(&done).await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let dir = std::env::temp_dir().join(format!("chargelink-e2e-mtls-{}", &random_body()[..8]));
    let made = (|| {
        std::fs::create_dir_all(&dir)?;
        let ca = Ca::new("chargelink e2e CA")?;
        let ca_pem = ca.write(&dir, "ca")?;
        let server = ca.issue(&dir, "server", "gateway", ServerAuth)?;
        Ok::<_, anyhow::Error>((
            Pki {
                ca,
                dir: dir.clone(),
                ca_pem,
            },
            server,
        ))
    })();
    let (pki, (cert, key)) = match made {
        Ok(m) => m,
        Err(e) => {
            eprintln!("test PKI: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ca_pem = pki.ca_pem.clone();
    let _ = PKI.set(pki);
    let scenarios: Vec<(&'static str, Scenario)> = vec![(
        "a_profile_3_station_charges_with_its_certificate_only",
        |s| Box::pin(a_profile_3_station_charges_with_its_certificate_only(s)),
    )];
    let code = processes::run_scenarios(
        Path::new(env!("CARGO_BIN_EXE_chargelink")),
        &[
            ("CHARGELINK_GATEWAY_TLS_CERT", path(&cert)),
            ("CHARGELINK_GATEWAY_TLS_KEY", path(&key)),
            ("CHARGELINK_GATEWAY_TLS_CLIENT_CA", path(&ca_pem)),
        ],
        scenarios,
    );
    let _ = std::fs::remove_dir_all(&dir);
    code
}
