//! The station registry on the store ([`StoreRegistry`]), each test on a fresh SQLite file AND
//! a fresh PostgreSQL database (scripts/test starts PostgreSQL and sets
//! CHARGELINK_TEST_POSTGRES_URL). "Two gateways" are two registries with their own connection
//! pools on the same database, as two processes would have.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

mod support;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use domain::ids::ChargeStationId;
use ocpp::StoreRegistry;
use ocpp::registry::{
    ConnectorInfo, NewTransaction, PendingStart, Registry, StationLocation, TransactionStop,
};
use sea_orm::{ConnectionTrait, Statement};
use store::Store;

fn unique() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// URLs of a fresh, migrated SQLite file and PostgreSQL database.
async fn databases() -> Vec<(&'static str, String)> {
    let path = std::env::temp_dir().join(format!("chargelink-registry-{}.db", unique()));
    let sqlite = format!("sqlite://{}?mode=rwc", path.display());
    let url = std::env::var("CHARGELINK_TEST_POSTGRES_URL").expect(
        "CHARGELINK_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL for these tests",
    );
    let admin = Store::connect(&url).await.expect("PostgreSQL reachable");
    let db = format!("registry_test_{}", unique());
    admin
        .connection()
        .execute(Statement::from_string(
            admin.connection().get_database_backend(),
            format!("CREATE DATABASE {db}"),
        ))
        .await
        .expect("create database");
    let postgres = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => panic!("bad postgres url {url}"),
    };
    for u in [&sqlite, &postgres] {
        Store::open(u).await.expect("migrated store");
    }
    vec![("sqlite", sqlite), ("postgres", postgres)]
}

/// A registry with its own pool on `url` (one gateway process).
async fn gateway(url: &str) -> (StoreRegistry, Store) {
    let store = Store::connect(url).await.expect("store");
    (StoreRegistry::new(store.clone()), store)
}

fn station(s: &str) -> ChargeStationId {
    s.parse().unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn location(instance: &str) -> StationLocation {
    StationLocation {
        instance_id: instance.into(),
        task_queue: format!("chargelink-gateway-{instance}"),
    }
}

fn new_tx(tag: &str, started: &str) -> NewTransaction {
    NewTransaction {
        station: station("CP1"),
        connector_id: 1,
        id_tag: tag.into(),
        session_id: Some("ses_a".parse().unwrap()),
        meter_start: 100,
        started_at: at(started),
    }
}

#[tokio::test]
async fn a_reconnect_elsewhere_survives_the_old_disconnect_and_restarts() {
    for (backend, url) in databases().await {
        let (gw1, _) = gateway(&url).await;
        let (gw2, _) = gateway(&url).await;
        let (cp1, cp2) = (station("CP1"), station("CP2"));
        gw1.station_connected(&cp1, &location("a"), "a-1")
            .await
            .unwrap();
        gw1.station_connected(&cp2, &location("a"), "a-2")
            .await
            .unwrap();
        assert_eq!(gw2.locate(&cp1).await.unwrap(), Some(location("a")));
        // CP1 moves to gw2; gw1 notices its old socket closed only afterwards.
        gw2.station_connected(&cp1, &location("b"), "b-1")
            .await
            .unwrap();
        gw1.station_disconnected(&cp1, "a-1").await.unwrap();
        assert_eq!(
            gw1.locate(&cp1).await.unwrap(),
            Some(location("b")),
            "{backend}"
        );
        // gw1 restarts: what it held is offline, what moved away is not.
        gw1.instance_started("a").await.unwrap();
        assert_eq!(gw1.locate(&cp2).await.unwrap(), None, "{backend}");
        assert_eq!(
            gw1.locate(&cp1).await.unwrap(),
            Some(location("b")),
            "{backend}"
        );
        gw2.station_disconnected(&cp1, "b-1").await.unwrap();
        assert_eq!(gw1.locate(&cp1).await.unwrap(), None, "{backend}");
        assert_eq!(gw1.locate(&station("NEVER")).await.unwrap(), None);
    }
}

#[tokio::test]
async fn transactions_are_found_again_and_stopped_once() {
    for (backend, url) in databases().await {
        let (r, _) = gateway(&url).await;
        let first = new_tx("T1", "2026-01-01T10:00:00.123456Z");
        let tx = r.insert_transaction(first.clone()).await.unwrap();
        assert!(tx.id > 0, "{backend}");
        assert_eq!(tx.session_id.as_ref().map(|s| s.as_str()), Some("ses_a"));
        assert_eq!(
            r.find_transaction(&first).await.unwrap().map(|t| t.id),
            Some(tx.id),
            "{backend}"
        );
        assert_eq!(
            r.open_transaction_on(&station("CP1"), 1)
                .await
                .unwrap()
                .map(|t| t.id),
            Some(tx.id)
        );
        assert_eq!(
            r.open_transaction_for_tag("T1")
                .await
                .unwrap()
                .map(|t| t.id),
            Some(tx.id)
        );
        let stop = TransactionStop {
            meter_stop: 500,
            at: at("2026-01-01T11:00:00Z"),
            reason: Some("Remote".into()),
        };
        let (t, first_stop) = r
            .stop_transaction(tx.id, stop.clone())
            .await
            .unwrap()
            .unwrap();
        assert!(first_stop, "{backend}");
        assert_eq!(t.stop, Some(stop.clone()));
        let later = TransactionStop {
            meter_stop: 999,
            ..stop.clone()
        };
        let (t, first_stop) = r.stop_transaction(tx.id, later).await.unwrap().unwrap();
        assert!(!first_stop, "{backend}");
        assert_eq!(t.stop, Some(stop), "{backend}: the first stop is kept");
        assert_eq!(
            r.open_transaction_on(&station("CP1"), 1).await.unwrap(),
            None
        );
        assert_eq!(r.open_transaction_for_tag("T1").await.unwrap(), None);
        // A late duplicate of the start still maps to the stopped transaction...
        assert_eq!(
            r.find_transaction(&first).await.unwrap().map(|t| t.id),
            Some(tx.id),
            "{backend}"
        );
        // ...but a new start of the same tag is a new transaction.
        assert_eq!(
            r.find_transaction(&new_tx("T1", "2026-01-02T10:00:00Z"))
                .await
                .unwrap(),
            None
        );
        assert!(
            r.stop_transaction(987_654, t.stop.clone().unwrap())
                .await
                .unwrap()
                .is_none()
        );
        // Another pool (a restarted gateway) reads the same transaction back.
        let (again, _) = gateway(&url).await;
        let stored = again.transaction(tx.id).await.unwrap().unwrap();
        assert_eq!(stored, t, "{backend}");
    }
}

#[tokio::test]
async fn transaction_ids_are_unique_across_gateways_and_a_racing_duplicate_is_one() {
    for (backend, url) in databases().await {
        let (gw1, _) = gateway(&url).await;
        let (gw2, _) = gateway(&url).await;
        let starts = |prefix: &'static str| {
            (0..20).map(move |i| NewTransaction {
                id_tag: format!("{prefix}{i}"),
                ..new_tx("x", "2026-01-01T10:00:00Z")
            })
        };
        let one = async {
            let mut ids = Vec::new();
            for tx in starts("A") {
                ids.push(gw1.insert_transaction(tx).await.unwrap().id);
            }
            ids
        };
        let two = async {
            let mut ids = Vec::new();
            for tx in starts("B") {
                ids.push(gw2.insert_transaction(tx).await.unwrap().id);
            }
            ids
        };
        let (a, b) = tokio::join!(one, two);
        let all: HashSet<i64> = a.iter().chain(&b).copied().collect();
        assert_eq!(
            all.len(),
            40,
            "{backend}: ids handed out twice: {a:?} {b:?}"
        );
        assert!(a.windows(2).all(|w| w[0] < w[1]), "{backend}: {a:?}");
        assert!(all.iter().all(|id| i32::try_from(*id).is_ok()));

        // The same StartTransaction handled by both gateways at once.
        let dup = new_tx("DUP", "2026-01-01T12:00:00Z");
        let (x, y) = tokio::join!(
            gw1.insert_transaction(dup.clone()),
            gw2.insert_transaction(dup.clone())
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.id, y.id, "{backend}");
        assert_eq!(x, y, "{backend}");
    }
}

#[tokio::test]
async fn pending_starts_are_rearmed_flagged_and_removed() {
    for (backend, url) in databases().await {
        let (r, _) = gateway(&url).await;
        let pending = |tag: &str, created: &str| PendingStart {
            id_tag: tag.into(),
            session_id: "ses_a".parse().unwrap(),
            station: station("CP1"),
            connector_id: 2,
            created_at: at(created),
            armed: true,
            preparing: false,
        };
        assert_eq!(r.pending_start("P1").await.unwrap(), None);
        r.put_pending_start(pending("P1", "2026-01-01T10:00:00Z"))
            .await
            .unwrap();
        r.put_pending_start(pending("P2", "2026-01-01T10:01:00Z"))
            .await
            .unwrap();
        let newest = r.armed_start_on(&station("CP1"), 2).await.unwrap();
        assert_eq!(newest.map(|p| p.id_tag).as_deref(), Some("P2"), "{backend}");
        assert_eq!(r.armed_start_on(&station("CP1"), 1).await.unwrap(), None);
        r.update_pending_start("P2", false, false).await.unwrap();
        let newest = r.armed_start_on(&station("CP1"), 2).await.unwrap();
        assert_eq!(newest.map(|p| p.id_tag).as_deref(), Some("P1"), "{backend}");
        r.update_pending_start("P1", true, true).await.unwrap();
        let p1 = r.pending_start("P1").await.unwrap().unwrap();
        assert!(p1.armed && p1.preparing, "{backend}");
        // Re-sent RemoteStart: re-armed with a new time, flags reset.
        r.put_pending_start(pending("P1", "2026-01-01T10:05:00Z"))
            .await
            .unwrap();
        let p1 = r.pending_start("P1").await.unwrap().unwrap();
        assert_eq!(p1, pending("P1", "2026-01-01T10:05:00Z"), "{backend}");
        r.remove_pending_start("P1").await.unwrap();
        r.remove_pending_start("P1").await.unwrap();
        assert_eq!(r.pending_start("P1").await.unwrap(), None, "{backend}");
    }
}

#[tokio::test]
async fn connector_statuses_keep_the_newest_and_reach_the_stores_rows() {
    for (backend, url) in databases().await {
        let (r, store) = gateway(&url).await;
        // CP9 is one of the store's stations (two connectors); CP1 is only in a stations file.
        support::store_station(&store, "CP9", &[1, 2])
            .await
            .unwrap();
        let info = |n: u32, status: &str, when: &str| ConnectorInfo {
            connector_id: n,
            status: status.into(),
            error_code: "NoError".into(),
            at: at(when),
        };
        for (cp, s) in [
            ("CP9", info(0, "Available", "2026-01-01T10:00:00Z")),
            ("CP9", info(1, "Charging", "2026-01-01T10:02:00Z")),
            ("CP9", info(1, "Available", "2026-01-01T10:01:00Z")),
            ("CP9", info(2, "Faulted", "2026-01-01T10:00:00Z")),
            ("CP1", info(1, "Preparing", "2026-01-01T10:00:00Z")),
        ] {
            r.set_connector_status(&station(cp), s).await.unwrap();
        }
        let cp9 = r.connectors(&station("CP9")).await.unwrap();
        assert_eq!(
            cp9,
            vec![
                info(0, "Available", "2026-01-01T10:00:00Z"),
                info(1, "Charging", "2026-01-01T10:02:00Z"),
                info(2, "Faulted", "2026-01-01T10:00:00Z"),
            ],
            "{backend}"
        );
        let rows = store.connectors_of("CP9").await.unwrap();
        let mirrored: Vec<(i32, &str, DateTime<Utc>)> = rows
            .iter()
            .map(|c| (c.connector_number, c.status.as_str(), c.updated_at))
            .collect();
        assert_eq!(
            mirrored,
            vec![
                (1, "Charging", at("2026-01-01T10:02:00Z")),
                (2, "Faulted", at("2026-01-01T10:00:00Z")),
            ],
            "{backend}"
        );
        assert_eq!(
            r.connectors(&station("CP1")).await.unwrap(),
            vec![info(1, "Preparing", "2026-01-01T10:00:00Z")]
        );

        // The station row shows the gateway while connected.
        r.station_connected(&station("CP9"), &location("a"), "a-9")
            .await
            .unwrap();
        let row = store.charge_station("CP9").await.unwrap().unwrap();
        assert_eq!(
            row.gateway_queue.as_deref(),
            Some("chargelink-gateway-a"),
            "{backend}"
        );
        r.instance_started("a").await.unwrap();
        let row = store.charge_station("CP9").await.unwrap().unwrap();
        assert_eq!(row.gateway_queue, None, "{backend}");
        assert!(row.last_seen_at.is_some());
    }
}

#[tokio::test]
async fn a_gateway_that_stops_renewing_its_lease_leaves_its_stations_offline() {
    for (backend, url) in databases().await {
        let (r, store) = gateway(&url).await;
        support::store_station(&store, "CP7", &[1]).await.unwrap();
        support::store_station(&store, "CP8", &[1]).await.unwrap();
        r.station_connected(&station("CP7"), &location("a"), "a-7")
            .await
            .unwrap();
        r.station_connected(&station("CP8"), &location("b"), "b-8")
            .await
            .unwrap();
        let now = Utc::now();
        let lease = chrono::Duration::from_std(store::GATEWAY_LEASE).unwrap();
        let after_lease = now + lease + chrono::Duration::seconds(1);
        let cp7 = store.charge_station("CP7").await.unwrap().unwrap();
        assert!(cp7.is_online(now), "{backend}: just connected");
        assert!(
            !cp7.is_online(after_lease),
            "{backend}: an unrenewed lease runs out although no disconnect was recorded"
        );
        // Gateway a is alive and renews; gateway b was killed and does not.
        let renewed = store
            .renew_gateway_lease(&location("a").task_queue, now + lease / 2)
            .await
            .unwrap();
        assert_eq!(
            renewed, 1,
            "{backend}: one statement renews exactly a's stations"
        );
        let cp7 = store.charge_station("CP7").await.unwrap().unwrap();
        let cp8 = store.charge_station("CP8").await.unwrap().unwrap();
        assert!(cp7.is_online(after_lease), "{backend}");
        assert!(!cp8.is_online(after_lease), "{backend}");
        // Through the registry, as the gateway's renewal task calls it.
        r.renew_lease(&location("b")).await.unwrap();
        let cp8 = store.charge_station("CP8").await.unwrap().unwrap();
        assert!(
            cp8.last_seen_at
                .is_some_and(|t| t >= now - chrono::Duration::seconds(1)),
            "{backend}"
        );
        // A disconnected station is offline whatever its lease.
        r.station_disconnected(&station("CP7"), "a-7")
            .await
            .unwrap();
        let cp7 = store.charge_station("CP7").await.unwrap().unwrap();
        assert!(!cp7.is_online(Utc::now()), "{backend}");
    }
}
