//! Store tests, each run on a fresh SQLite file AND a fresh PostgreSQL database (scripts/test
//! starts PostgreSQL and sets CHARGELINK_TEST_POSTGRES_URL).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a panic in a test is a failed test"
)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::events::{EventType, SessionEvent};
use domain::ids::{ChargeStationId, ConnectorRef, OrganizationId, RateId, SessionId, UserId};
use domain::money::Currency;
use domain::rate::{Dimension, Rate, RateComponent};
use domain::session::{PAYMENT_LINK, Session, SessionCost, SessionStatus, SessionTarget};
use sea_orm::{ConnectionTrait, Statement};
use store::{
    NewChargeStation, NewConnector, NewOrganization, NewWebhookEndpoint, OrganizationSettings,
    SessionFilter, Store,
};

fn unique() -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")
}

/// A fresh SQLite file and a fresh PostgreSQL database, migrated.
async fn stores() -> Vec<(&'static str, Store)> {
    let mut out = Vec::new();
    for (backend, store) in unmigrated().await {
        store.migrate().await.expect("migrate");
        out.push((backend, store));
    }
    out
}

/// A fresh SQLite file and a fresh PostgreSQL database, empty.
async fn unmigrated() -> Vec<(&'static str, Store)> {
    let path = std::env::temp_dir().join(format!("chargelink-store-{}.db", unique()));
    let sqlite = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("sqlite store");
    let url = std::env::var("CHARGELINK_TEST_POSTGRES_URL")
        .expect("CHARGELINK_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL for these tests");
    let admin = Store::connect(&url).await.expect("PostgreSQL reachable");
    let db = format!("store_test_{}", unique());
    admin
        .connection()
        .execute(Statement::from_string(
            admin.connection().get_database_backend(),
            format!("CREATE DATABASE {db}"),
        ))
        .await
        .expect("create database");
    let pg_url = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db}"),
        None => panic!("bad postgres url {url}"),
    };
    let postgres = Store::connect(&pg_url).await.expect("postgres store");
    vec![("sqlite", sqlite), ("postgres", postgres)]
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap() + Duration::seconds(secs)
}

fn org(id: &str) -> OrganizationId {
    OrganizationId::from_unique(id).unwrap()
}

async fn seeded(store: &Store, id: &str) -> OrganizationId {
    let org = org(id);
    store
        .create_organization(
            NewOrganization {
                id: org.clone(),
                name: id.into(),
                settings: OrganizationSettings::default(),
            },
            t(0),
        )
        .await
        .unwrap();
    org
}

fn session(id: &SessionId, status: SessionStatus, at: DateTime<Utc>) -> Session {
    Session {
        id: id.clone(),
        user: UserId::from_unique("u1").unwrap(),
        chargestation: "CP-1".parse::<ChargeStationId>().unwrap(),
        connector: ConnectorRef::from_unique("c1").unwrap(),
        status,
        rate: RateId::from_unique("r1").unwrap(),
        target: SessionTarget::default(),
        cost: SessionCost::default(),
        kind: PAYMENT_LINK.into(),
        payment: None,
        end_reason: None,
        idle: None,
        stop: None,
        started_at: None,
        ended_at: None,
        receipt_url: None,
        created_at: t(0),
        updated_at: at,
    }
}

fn event(s: &Session, seq: u32, kind: EventType) -> SessionEvent {
    SessionEvent {
        id: SessionEvent::id_for(&s.id, seq),
        kind,
        seq,
        created_at: s.updated_at,
        data: s.clone(),
    }
}

#[tokio::test]
async fn record_session_is_idempotent_and_never_goes_back_in_time() {
    for (backend, store) in stores().await {
        let org = seeded(&store, "a").await;
        let id = SessionId::from_unique(&unique()).unwrap();
        let created = session(&id, SessionStatus::Created, t(1));
        let evs = [
            event(&created, 1, EventType::SessionCreated),
            event(&created, 2, EventType::PaymentCreated),
        ];
        let first = store.record_session(&org, &created, &evs).await.unwrap();
        assert_eq!(
            first,
            [EventType::SessionCreated, EventType::PaymentCreated],
            "{backend}: the new events are reported"
        );
        // A retried activity writes the same thing again: nothing changes, no duplicate event.
        let again = store.record_session(&org, &created, &evs).await.unwrap();
        assert!(again.is_empty(), "{backend}: a retry stores no event again");
        let started = session(&id, SessionStatus::Started, t(5));
        store
            .record_session(
                &org,
                &started,
                &[event(&started, 3, EventType::SessionStarted)],
            )
            .await
            .unwrap();
        // A late retry of the older state does not overwrite the newer one.
        store.record_session(&org, &created, &evs).await.unwrap();

        let got = store.session(&org, &id).await.unwrap().expect("stored");
        assert_eq!(got.status, SessionStatus::Started, "{backend}");
        let counts = store.count_by_status().await.unwrap();
        assert!(
            counts.iter().any(|(s, n)| s == "started" && *n >= 1),
            "{backend}: {counts:?}"
        );
        let log = store.event_log(&org, Some(id.as_str()), 10).await.unwrap();
        assert_eq!(log.len(), 3, "{backend}: one row per event id");
        // Another organization does not see it.
        let other = seeded(&store, "b").await;
        assert!(
            store.session(&other, &id).await.unwrap().is_none(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn sessions_list_with_filters_and_cursor_pagination() {
    for (backend, store) in stores().await {
        let org = seeded(&store, "a").await;
        for i in 0..5_i64 {
            let id = SessionId::from_unique(&format!("{i:02}{}", unique())).unwrap();
            let status = if i % 2 == 0 {
                SessionStatus::Ended
            } else {
                SessionStatus::Started
            };
            let mut s = session(&id, status, t(i));
            s.created_at = t(i);
            store.record_session(&org, &s, &[]).await.unwrap();
        }
        let first = store
            .list_sessions(&org, &SessionFilter::default(), None, 2)
            .await
            .unwrap();
        assert_eq!(first.sessions.len(), 2, "{backend}");
        assert_eq!(
            first.sessions[0].created_at,
            t(4),
            "{backend}: newest first"
        );
        let second = store
            .list_sessions(
                &org,
                &SessionFilter::default(),
                first.next_cursor.as_deref(),
                2,
            )
            .await
            .unwrap();
        let third = store
            .list_sessions(
                &org,
                &SessionFilter::default(),
                second.next_cursor.as_deref(),
                2,
            )
            .await
            .unwrap();
        assert_eq!(second.sessions[0].created_at, t(2), "{backend}");
        assert_eq!(third.sessions.len(), 1, "{backend}");
        assert!(third.next_cursor.is_none(), "{backend}: last page");
        let ended = SessionFilter {
            status: Some(SessionStatus::Ended),
            ..SessionFilter::default()
        };
        assert_eq!(
            store
                .list_sessions(&org, &ended, None, 10)
                .await
                .unwrap()
                .sessions
                .len(),
            3,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn api_keys_are_stored_hashed_and_can_be_revoked() {
    for (backend, store) in stores().await {
        let org = seeded(&store, "a").await;
        let key = store.create_api_key(&org, "ci", t(0)).await.unwrap();
        assert_eq!(
            store.authenticate(&key.secret).await.unwrap(),
            Some(org.clone()),
            "{backend}"
        );
        assert_eq!(
            store.authenticate("ck_wrong").await.unwrap(),
            None,
            "{backend}"
        );
        let rows = store
            .connection()
            .query_all(Statement::from_string(
                store.connection().get_database_backend(),
                "SELECT key_hash FROM api_keys",
            ))
            .await
            .unwrap();
        let hash: String = rows[0].try_get("", "key_hash").unwrap();
        assert_ne!(
            hash, key.secret,
            "{backend}: the secret itself is not stored"
        );
        store.revoke_api_key(&org, &key.id, t(1)).await.unwrap();
        assert_eq!(
            store.authenticate(&key.secret).await.unwrap(),
            None,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn stations_connectors_and_rates_are_scoped_to_their_organization() {
    for (backend, store) in stores().await {
        let org = seeded(&store, "a").await;
        let other = seeded(&store, "b").await;
        let rate_id = RateId::from_unique("r1").unwrap();
        let rate = Rate::new(
            Currency::USD,
            vec![RateComponent {
                dimension: Dimension::Energy,
                price: "0.35".parse().unwrap(),
                tax: None,
                step_size: None,
                grace_period: None,
            }],
        );
        store
            .create_rate(&org, &rate_id, "standard", &rate, t(0))
            .await
            .unwrap();
        assert_eq!(store.rate(&org, &rate_id).await.unwrap(), rate, "{backend}");
        assert!(store.rate(&other, &rate_id).await.is_err(), "{backend}");
        let station = format!("CP-{}", unique());
        store
            .create_charge_station(
                &org,
                NewChargeStation {
                    id: station.clone(),
                    name: "demo".into(),
                    auth_key: "s3cret-key".into(),
                    security_profile: Default::default(),
                },
                t(0),
            )
            .await
            .unwrap();
        assert!(
            store
                .verify_charge_station(&station, "s3cret-key")
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !store
                .verify_charge_station(&station, "wrong")
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !store
                .verify_charge_station("CP-unknown", "s3cret-key")
                .await
                .unwrap(),
            "{backend}"
        );
        let connector = NewConnector {
            id: format!("con_{}", unique()),
            charge_station_id: station.clone(),
            connector_number: 1,
            rate_id: rate_id.clone(),
            max_power_w: Some(22_000),
        };
        store
            .create_connector(&org, connector.clone(), t(0))
            .await
            .unwrap();
        assert!(
            store
                .connector(&org, &connector.id)
                .await
                .unwrap()
                .is_some(),
            "{backend}"
        );
        assert!(
            store
                .connector(&other, &connector.id)
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
        let foreign = NewConnector {
            id: format!("con_{}", unique()),
            ..connector
        };
        assert!(
            store.create_connector(&other, foreign, t(0)).await.is_err(),
            "{backend}: not their station"
        );
    }
}

#[tokio::test]
async fn outbox_delivers_in_order_per_session_and_records_failures() {
    for (backend, store) in stores().await {
        let org = seeded(&store, "a").await;
        let endpoint = store
            .create_webhook_endpoint(
                &org,
                NewWebhookEndpoint {
                    id: format!("we_{}", unique()),
                    url: "http://127.0.0.1:9/hook".into(),
                    events: vec![],
                },
                t(0),
            )
            .await
            .unwrap();
        assert!(endpoint.secret.starts_with("whsec_"), "{backend}");
        let id = SessionId::from_unique(&unique()).unwrap();
        let s = session(&id, SessionStatus::Created, t(1));
        store
            .record_session(
                &org,
                &s,
                &[
                    event(&s, 1, EventType::SessionCreated),
                    event(&s, 2, EventType::PaymentCreated),
                ],
            )
            .await
            .unwrap();

        // Only the first event of the session is due: order per session.
        let due = store.due_deliveries(t(10), 10).await.unwrap();
        assert_eq!(due.len(), 1, "{backend}");
        assert_eq!(due[0].event_id, SessionEvent::id_for(&id, 1), "{backend}");
        // It fails and is retried later: the second event still waits behind it.
        let failures = store
            .delivery_failed(&due[0].id, "connection refused", None, Some(t(60)))
            .await
            .unwrap();
        assert_eq!(failures, 1, "{backend}");
        assert!(
            store.due_deliveries(t(10), 10).await.unwrap().is_empty(),
            "{backend}: head not due yet"
        );
        let due = store.due_deliveries(t(61), 10).await.unwrap();
        assert_eq!(due[0].event_id, SessionEvent::id_for(&id, 1), "{backend}");
        store
            .delivery_succeeded(&due[0].id, 200, t(61))
            .await
            .unwrap();
        let due = store.due_deliveries(t(61), 10).await.unwrap();
        assert_eq!(due[0].event_id, SessionEvent::id_for(&id, 2), "{backend}");

        // A disabled endpoint gets nothing, and the event log says why.
        store
            .disable_endpoint(&endpoint.id, "20 consecutive failures", t(62))
            .await
            .unwrap();
        assert!(
            store.due_deliveries(t(100), 10).await.unwrap().is_empty(),
            "{backend}"
        );
        let endpoints = store.webhook_endpoints(&org).await.unwrap();
        assert_eq!(
            endpoints[0].disabled_reason.as_deref(),
            Some("20 consecutive failures"),
            "{backend}"
        );
        let log = store.event_log(&org, Some(id.as_str()), 10).await.unwrap();
        assert_eq!(log.len(), 2, "{backend}");
        assert!(
            log.iter().any(|e| e.deliveries[0].status == "delivered"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn session_idle_reaches_only_endpoints_that_ask_for_it() {
    for (backend, store) in stores().await {
        let org = seeded(&store, "idle").await;
        let endpoint = |events: Vec<String>| {
            let store = &store;
            let org = org.clone();
            async move {
                store
                    .create_webhook_endpoint(
                        &org,
                        NewWebhookEndpoint {
                            id: format!("we_{}", unique()),
                            url: "http://127.0.0.1:9/hook".into(),
                            events,
                        },
                        t(0),
                    )
                    .await
                    .unwrap()
            }
        };
        // An eDRV-style endpoint (no list), and one that asks for the idle notice.
        let spec = endpoint(vec![]).await;
        let idle = endpoint(vec!["session.idle".into(), "session.ended".into()]).await;
        let id = SessionId::from_unique(&unique()).unwrap();
        let s = session(&id, SessionStatus::Started, t(1));
        store
            .record_session(
                &org,
                &s,
                &[
                    event(&s, 1, EventType::SessionIdle),
                    event(&s, 2, EventType::SessionEnded),
                ],
            )
            .await
            .unwrap();
        let due = store.due_deliveries(t(10), 10).await.unwrap();
        let to = |e: &str| -> Vec<String> {
            due.iter()
                .filter(|d| d.endpoint_id == e)
                .map(|d| d.event_id.clone())
                .collect()
        };
        assert_eq!(
            to(&spec.id),
            vec![SessionEvent::id_for(&id, 2)],
            "{backend}: no session.idle for an endpoint that did not ask"
        );
        assert_eq!(
            to(&idle.id),
            vec![SessionEvent::id_for(&id, 1)],
            "{backend}: session.idle first for the endpoint that asked"
        );
    }
}

#[tokio::test]
async fn the_registry_migration_upgrades_a_database_of_the_first_release() {
    use sea_orm_migration::MigratorTrait;
    for (backend, store) in unmigrated().await {
        // A database in the field: only the initial migration, with a station in it.
        store::migration::Migrator::up(store.connection(), Some(1))
            .await
            .unwrap();
        let org = seeded(&store, "a").await;
        store
            .create_charge_station(
                &org,
                NewChargeStation {
                    id: "CP-OLD".into(),
                    name: "old".into(),
                    auth_key: "k".into(),
                    security_profile: Default::default(),
                },
                t(0),
            )
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store
            .station_connected("CP-OLD", "gw1", "q-gw1", "c1", t(5))
            .await
            .unwrap();
        let row = store.charge_station("CP-OLD").await.unwrap().unwrap();
        assert_eq!(row.gateway_queue.as_deref(), Some("q-gw1"), "{backend}");
        assert_eq!(row.last_seen_at, Some(t(5)), "{backend}");
        let tx = store
            .insert_ocpp_transaction(store::NewOcppTransaction {
                station_id: "CP-OLD".into(),
                connector_id: 1,
                id_tag: "T".into(),
                session_id: None,
                meter_start: 0,
                started_at: t(6),
            })
            .await
            .unwrap();
        assert!(tx.id >= 1, "{backend}");
    }
}

#[tokio::test]
async fn stations_keep_their_security_profile_and_old_ones_get_profile_1() {
    use domain::station::SecurityProfile;
    use sea_orm_migration::MigratorTrait;
    for (backend, store) in stores().await {
        let org = seeded(&store, "p").await;
        for (id, profile) in [
            ("CP-P2", SecurityProfile::TlsBasic),
            ("CP-P3", SecurityProfile::TlsClientCertificate),
        ] {
            store
                .create_charge_station(
                    &org,
                    NewChargeStation {
                        id: id.into(),
                        name: id.into(),
                        auth_key: "k".into(),
                        security_profile: profile,
                    },
                    t(0),
                )
                .await
                .unwrap();
            let row = store.charge_station(id).await.unwrap().unwrap();
            assert_eq!(row.security_profile(), profile, "{backend}");
        }
        // A database of the release before profiles: the column is not there yet (dropped
        // here, with its migration unrecorded), and its stations connected with Basic auth.
        let db = store.connection();
        for sql in [
            "ALTER TABLE charge_stations DROP COLUMN security_profile",
            "DELETE FROM seaql_migrations WHERE version = 'm20261206_000004_station_security_profile'",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        store::migration::Migrator::up(db, None).await.unwrap();
        for id in ["CP-P2", "CP-P3"] {
            let row = store.charge_station(id).await.unwrap().unwrap();
            assert_eq!(row.security_profile(), SecurityProfile::Basic, "{backend}");
        }
    }
}

#[tokio::test]
async fn receipts_get_one_random_token_and_the_migration_keeps_existing_rows() {
    use sea_orm_migration::MigratorTrait;
    for (backend, store) in stores().await {
        let org = seeded(&store, "r").await;
        let other = seeded(&store, "s").await;
        store
            .create_charge_station(
                &org,
                NewChargeStation {
                    id: "CP-R".into(),
                    name: "receipts".into(),
                    auth_key: "k".into(),
                    security_profile: Default::default(),
                },
                t(0),
            )
            .await
            .unwrap();
        // A database of the release before receipts: the columns and the table are not there
        // yet (dropped here, with the migration unrecorded); its rows must come through as
        // they were, with the new fields empty.
        let db = store.connection();
        for sql in [
            "DROP TABLE receipts",
            "ALTER TABLE organizations DROP COLUMN operator_name",
            "ALTER TABLE organizations DROP COLUMN tax_id",
            "ALTER TABLE organizations DROP COLUMN operator_address",
            "ALTER TABLE charge_stations DROP COLUMN address",
            "DELETE FROM seaql_migrations WHERE version = 'm20261207_000005_receipts'",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        store::migration::Migrator::up(db, None).await.unwrap();
        let row = store.organization(&org).await.unwrap();
        assert_eq!(
            (row.name.as_str(), row.minimum_amount_to_start_session),
            (
                "r",
                OrganizationSettings::default().minimum_amount_to_start_session
            ),
            "{backend}"
        );
        assert_eq!(
            (row.operator_name, row.tax_id, row.operator_address),
            (None, None, None),
            "{backend}"
        );
        let station = store.charge_station("CP-R").await.unwrap().unwrap();
        assert_eq!(
            (station.name.as_str(), station.address),
            ("receipts", None),
            "{backend}"
        );

        // One token per session, random, kept across calls; scoped to the organization.
        let a = SessionId::from_unique(&unique()).unwrap();
        let b = SessionId::from_unique(&unique()).unwrap();
        let first = store.ensure_receipt(&org, &a, t(10)).await.unwrap();
        let again = store.ensure_receipt(&org, &a, t(20)).await.unwrap();
        let second = store.ensure_receipt(&org, &b, t(10)).await.unwrap();
        assert_eq!(first, again, "{backend}");
        assert!(
            first.token.starts_with("rct_") && first.token.len() == 68,
            "{backend}"
        );
        assert_ne!(first.token, second.token, "{backend}");
        assert!(!first.token.contains(&a.as_str()[4..]), "{backend}");
        assert_eq!(
            store.receipt_by_token(&first.token).await.unwrap(),
            Some(first.clone()),
            "{backend}"
        );
        assert_eq!(
            store.receipt_by_token("rct_00").await.unwrap(),
            None,
            "{backend}"
        );
        assert!(store.receipt_for_session(&org, &a).await.unwrap().is_some());
        assert_eq!(
            store.receipt_for_session(&other, &a).await.unwrap(),
            None,
            "{backend}"
        );
        store.set_receipt_card(&a, "visa", "4242").await.unwrap();
        let carded = store.receipt_for_session(&org, &a).await.unwrap().unwrap();
        assert_eq!(
            (
                carded.card_brand.as_deref(),
                carded.card_last4.as_deref(),
                carded.token
            ),
            (Some("visa"), Some("4242"), first.token),
            "{backend}"
        );

        // Operator details: omitted fields stay, empty ones clear.
        let set = |name: Option<&str>, tax_id: Option<&str>, address: Option<&str>| {
            store::OperatorDetails {
                name: name.map(str::to_owned),
                tax_id: tax_id.map(str::to_owned),
                address: address.map(str::to_owned),
            }
        };
        store
            .set_operator_details(&org, set(Some("Op"), Some("DE1"), Some("Street 1")), t(30))
            .await
            .unwrap();
        let row = store
            .set_operator_details(&org, set(None, Some(""), None), t(31))
            .await
            .unwrap();
        assert_eq!(
            (
                row.operator_name.as_deref(),
                row.tax_id,
                row.operator_address.as_deref()
            ),
            (Some("Op"), None, Some("Street 1")),
            "{backend}"
        );
        let station = store
            .set_charge_station_address(&org, "CP-R", "Square 2".into())
            .await
            .unwrap();
        assert_eq!(station.address.as_deref(), Some("Square 2"), "{backend}");
        assert!(matches!(
            store
                .set_charge_station_address(&other, "CP-R", "x".into())
                .await,
            Err(store::StoreError::NotFound(_))
        ));
    }
}

/// Top-up settings: off for an organization created without them and for one migrated from
/// the release before them (the columns dropped, the migration unrecorded), kept as set.
#[tokio::test]
async fn top_up_is_off_by_default_and_kept_once_set() {
    use sea_orm_migration::MigratorTrait;
    for (backend, store) in stores().await {
        let org = seeded(&store, "u").await;
        let row = store.organization(&org).await.unwrap();
        assert_eq!(
            (row.top_up_ceiling, row.top_up_step),
            (None, None),
            "{backend}"
        );
        let db = store.connection();
        for sql in [
            "ALTER TABLE organizations DROP COLUMN top_up_ceiling",
            "ALTER TABLE organizations DROP COLUMN top_up_step",
            "DELETE FROM seaql_migrations WHERE version = 'm20261207_000006_top_up'",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        store::migration::Migrator::up(db, None).await.unwrap();
        let row = store.organization(&org).await.unwrap();
        assert_eq!(
            (row.top_up_ceiling, row.top_up_step),
            (None, None),
            "{backend}"
        );
        let settings = OrganizationSettings {
            top_up_ceiling: Some(10_000),
            top_up_step: Some(2_000),
            ..OrganizationSettings::default()
        };
        let row = store.update_settings(&org, settings, t(1)).await.unwrap();
        assert_eq!(
            (row.top_up_ceiling, row.top_up_step),
            (Some(10_000), Some(2_000)),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn ocpp_201_transactions_map_station_ids_to_numbers_and_see_each_seq_no_once() {
    use sea_orm_migration::MigratorTrait;
    for (backend, store) in unmigrated().await {
        // A database of the release before 2.0.1, with a 1.6 transaction in it.
        store::migration::Migrator::up(store.connection(), Some(6))
            .await
            .unwrap();
        let new = |tag: &str| store::NewOcppTransaction {
            station_id: "CP-201".into(),
            connector_id: 1,
            id_tag: tag.into(),
            session_id: None,
            meter_start: 0,
            started_at: t(0),
        };
        store
            .connection()
            .execute_unprepared(
                "INSERT INTO ocpp_transactions (station_id, connector_id, id_tag, meter_start, started_at) \
                 VALUES ('CP-201', 1, 'T16', 0, '2026-11-24T12:00:00Z')",
            )
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let old = store
            .find_repeated_transaction(&new("T16"))
            .await
            .unwrap()
            .expect("the 1.6 transaction is still there");
        store.migrate().await.unwrap();
        // A second 1.6 transaction: NULL station ids do not clash in the unique index.
        let mut other = new("T16b");
        other.started_at = t(1);
        let old2 = store.insert_ocpp_transaction(other).await.unwrap();
        assert_ne!(old.id, old2.id, "{backend}");
        assert_eq!(old2.station_transaction_id, None, "{backend}");

        // The station's own id gets a number; the same id again is the same row.
        let (a, inserted) = store
            .insert_station_transaction(new(""), "tx-a")
            .await
            .unwrap();
        assert!(inserted, "{backend}");
        assert!(a.id > old2.id, "{backend}: one sequence for both versions");
        let (again, inserted) = store
            .insert_station_transaction(new(""), "tx-a")
            .await
            .unwrap();
        assert_eq!((again.id, inserted), (a.id, false), "{backend}");
        // Another station may use the same text.
        let mut elsewhere = new("");
        elsewhere.station_id = "CP-OTHER".into();
        let (b, _) = store
            .insert_station_transaction(elsewhere, "tx-a")
            .await
            .unwrap();
        assert_ne!(b.id, a.id, "{backend}");
        let found = store.station_transaction("CP-201", "tx-a").await.unwrap();
        assert_eq!(found.map(|r| r.id), Some(a.id), "{backend}");

        // Bound once, with the session's start.
        assert!(
            store
                .bind_ocpp_transaction(a.id, "TAG", "ses_1", t(5), 1_000)
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !store
                .bind_ocpp_transaction(a.id, "OTHER", "ses_2", t(9), 9)
                .await
                .unwrap(),
            "{backend}"
        );
        let bound = store.ocpp_transaction(a.id).await.unwrap().unwrap();
        assert_eq!(
            (
                bound.session_id.as_deref(),
                bound.id_tag.as_str(),
                bound.meter_start,
                bound.started_at
            ),
            (Some("ses_1"), "TAG", 1_000, t(5)),
            "{backend}"
        );

        // Each seqNo once.
        assert!(
            !store.transaction_event_seen(a.id, 3).await.unwrap(),
            "{backend}"
        );
        assert!(
            store.record_transaction_event(a.id, 3, t(6)).await.unwrap(),
            "{backend}"
        );
        assert!(
            !store.record_transaction_event(a.id, 3, t(7)).await.unwrap(),
            "{backend}"
        );
        assert!(
            store.transaction_event_seen(a.id, 3).await.unwrap(),
            "{backend}"
        );
        assert!(
            !store.transaction_event_seen(b.id, 3).await.unwrap(),
            "{backend}"
        );
    }
}
