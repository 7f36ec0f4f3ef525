//! The REST API against the running stack: a real Temporal dev server, a worker running
//! `SessionWorkflow` with the real store activity (SQLite file) and recording stand-ins for the
//! payment provider and the stations, the API on a real port, the webhook dispatcher, and a
//! webhook receiver. Started once for this binary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chargelink_tests::devserver::{DevServer, connect};
use chargelink_tests::fixtures::random_body;
use chargelink_tests::harness;
use domain::events::SessionEvent;
use libtest_mimic::{Arguments, Failed, Trial};
use reqwest::StatusCode;
use serde_json::{Value, json};
use temporalio_sdk::Worker;
use workflows::client::SessionClient;
use workflows::messages::PaymentAuthorized;

/// Webhooks the test receiver got: (signature header, body).
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

const ADMIN_TOKEN: &str = "test-admin-token";

/// What the tests talk to.
struct Stack {
    tokio: tokio::runtime::Handle,
    api: String,
    http: reqwest::Client,
    sessions: SessionClient,
    hooks: Received,
    hook_url: String,
    store: store::Store,
}

/// An organization set up through the API.
struct Tenant {
    key: String,
    station: String,
    user: String,
    connectors: Vec<String>,
    parking_connector: String,
}

impl Stack {
    fn run(&self, f: impl std::future::Future<Output = anyhow::Result<()>>) -> Result<(), Failed> {
        self.tokio
            .block_on(f)
            .map_err(|e| Failed::from(format!("{e:#}")))
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self
            .http
            .request(method.parse()?, format!("{}{path}", self.api));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    async fn ok(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, key, body).await?;
        ensure!(status.is_success(), "{method} {path} -> {status}: {v}");
        Ok(v)
    }

    /// A session of `t` on its first connector, as `POST /sessions` answered it.
    async fn created(&self, t: &Tenant) -> anyhow::Result<Value> {
        self.ok(
            "POST",
            "/sessions",
            Some(&t.key),
            Some(session_body(t, &t.connectors[0])),
        )
        .await
    }

    /// Creates an organization with a rate, a user, a station with two connectors on an energy
    /// rate and one on a PARKING_TIME rate, and a webhook endpoint at the test receiver.
    async fn tenant(&self) -> anyhow::Result<Tenant> {
        let org = self
            .ok("POST", "/admin/organizations", Some(ADMIN_TOKEN), Some(json!({"name": "acme", "settings": {
                "currency": "usd", "minimum_amount_to_start_session": 1800, "maximum_authorized_amount": 5000,
                "payment_expiry_time": 300, "start_window": 300}})))
            .await?;
        let key = org["api_key"]["key"]
            .as_str()
            .context("api key")?
            .to_owned();
        let k = Some(key.as_str());
        let energy = self
            .ok(
                "POST",
                "/rates",
                k,
                Some(json!({"name": "energy", "currency": "usd",
                "price_components": [{"type": "ENERGY", "price": "0.30"}]})),
            )
            .await?;
        let parking = self
            .ok("POST", "/rates", k, Some(json!({"name": "overstay", "currency": "usd",
                "price_components": [{"type": "ENERGY", "price": "0.30"}, {"type": "PARKING_TIME", "price": "6", "grace_period": "0.25"}]})))
            .await?;
        let user = self
            .ok("POST", "/users", k, Some(json!({"name": "driver"})))
            .await?;
        let station = format!("CP-{}", &random_body()[..8]);
        let cs = self
            .ok("POST", "/charge-stations", k, Some(json!({"id": station, "name": "demo", "connectors": [
                {"connector_id": 1, "rate": energy["_id"]}, {"connector_id": 2, "rate": energy["_id"]},
                {"connector_id": 3, "rate": parking["_id"]}]})))
            .await?;
        ensure!(
            cs["ocpp"]["password"]
                .as_str()
                .is_some_and(|p| p.len() == 40),
            "OCPP key shown once: {cs}"
        );
        let connectors: Vec<String> = cs["connectors"]
            .as_array()
            .context("connectors")?
            .iter()
            .filter_map(|c| c["_id"].as_str().map(str::to_owned))
            .collect();
        // No gateway runs here: the station comes online the way a gateway would record it.
        chargelink_tests::stack::stand_in_online(&self.store, &station, &[1, 2, 3]).await?;
        self.ok(
            "POST",
            "/webhook-endpoints",
            k,
            Some(json!({"url": self.hook_url})),
        )
        .await?;
        Ok(Tenant {
            key,
            station,
            user: user["_id"].as_str().context("user id")?.to_owned(),
            parking_connector: connectors[2].clone(),
            connectors,
        })
    }
}

fn session_body(t: &Tenant, connector: &str) -> Value {
    json!({"user": t.user, "connector": connector, "type": "payment_link"})
}

async fn create_session_answers_with_the_payment(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let (status, v) = s
        .call(
            "POST",
            "/sessions",
            Some(&t.key),
            Some(session_body(&t, &t.connectors[0])),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "{status}: {v}");
    // The spec's shape: every field, amounts in cents.
    for field in [
        "_id",
        "user",
        "chargestation",
        "connector",
        "status",
        "rate",
        "target",
        "cost",
        "type",
        "payment",
        "createdAt",
        "updatedAt",
    ] {
        ensure!(v.get(field).is_some(), "session lacks {field}: {v}");
    }
    ensure!(v["type"] == "payment_link" && v["status"] == "created");
    let p = &v["payment"];
    for field in [
        "_id",
        "session",
        "url",
        "currency",
        "authorized_amount",
        "type",
        "stripe",
        "status",
        "createdAt",
        "updatedAt",
    ] {
        ensure!(p.get(field).is_some(), "payment lacks {field}: {p}");
    }
    ensure!(
        p["authorized_amount"] == 1800
            && p["currency"] == "usd"
            && p["type"] == "anonymous"
            && p["status"] == "created",
        "{p}"
    );
    ensure!(p["session"] == v["_id"]);
    // The read model has it, and the event log shows both creation events.
    let id = v["_id"].as_str().context("id")?;
    let got = s
        .ok("GET", &format!("/sessions/{id}"), Some(&t.key), None)
        .await?;
    ensure!(got["payment"]["url"] == p["url"]);
    let log = s
        .ok("GET", &format!("/events?session={id}"), Some(&t.key), None)
        .await?;
    let types: Vec<_> = log["data"]
        .as_array()
        .context("log")?
        .iter()
        .map(|e| e["event"]["type"].clone())
        .collect();
    ensure!(
        types.contains(&json!("session.created"))
            && types.contains(&json!("session.payment.created")),
        "{types:?}"
    );
    // No target asked: `target` stays `{}` as in the spec.
    ensure!(v["target"] == json!({}), "{}", v["target"]);
    // An energy target (kWh, as eDRV's) is applied to the Wh and shown so.
    let mut body = session_body(&t, &t.connectors[1]);
    body["target"] = json!({"energy": 12.3456});
    let (status, v) = s
        .call("POST", "/sessions", Some(&t.key), Some(body))
        .await?;
    ensure!(status == StatusCode::CREATED, "{status}: {v}");
    ensure!(v["target"] == json!({"energy": 12.346}), "{}", v["target"]);
    let id = v["_id"].as_str().context("id")?;
    let got = s
        .ok("GET", &format!("/sessions/{id}"), Some(&t.key), None)
        .await?;
    ensure!(got["target"] == v["target"], "{}", got["target"]);
    Ok(())
}

async fn authentication_and_isolation(s: &Stack) -> anyhow::Result<()> {
    let a = s.tenant().await?;
    let b = s.tenant().await?;
    let (status, v) = s.call("GET", "/sessions", None, None).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED && v["error"]["code"] == "unauthorized",
        "{status} {v}"
    );
    let (status, _) = s
        .call("GET", "/sessions", Some("ck_not_a_key"), None)
        .await?;
    ensure!(status == StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .call(
            "POST",
            "/admin/organizations",
            Some(&a.key),
            Some(json!({"name": "x"})),
        )
        .await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "an API key is not the admin token"
    );

    let created = s.created(&a).await?;
    let id = created["_id"].as_str().context("id")?;
    // B sees nothing of A: not the session, not its connector, not its controls.
    for (method, path) in [
        ("GET", format!("/sessions/{id}")),
        ("POST", format!("/sessions/{id}/stop")),
        ("GET", format!("/sessions/{id}/pause")),
    ] {
        let (status, v) = s.call(method, &path, Some(&b.key), None).await?;
        ensure!(
            status == StatusCode::NOT_FOUND,
            "{method} {path} by another org: {status} {v}"
        );
    }
    let (status, v) = s
        .call(
            "POST",
            "/sessions",
            Some(&b.key),
            Some(session_body(&b, &a.connectors[0])),
        )
        .await?;
    ensure!(
        status == StatusCode::NOT_FOUND && v["error"]["code"] == "connector_not_found",
        "{status} {v}"
    );
    let listed = s.ok("GET", "/sessions", Some(&b.key), None).await?;
    ensure!(
        listed["data"].as_array().is_some_and(Vec::is_empty),
        "{listed}"
    );
    Ok(())
}

/// Who gets in, beyond `authentication_and_isolation`: another organization's key sees none of
/// a session's reads, commands (GET and POST), events or redeliveries; the operator token is not
/// an API key; the payment return pages show a session's id and status and nothing else, and
/// an unknown id the same page as a malformed one.
async fn access_boundaries(s: &Stack) -> anyhow::Result<()> {
    let (a, b) = (s.tenant().await?, s.tenant().await?);
    let created = s.created(&a).await?;
    let id = created["_id"].as_str().context("id")?.to_owned();
    let events = wait_for_events(s, &a.key, &id).await?;
    let event_id = events[0]["event"]["_id"]
        .as_str()
        .context("event id")?
        .to_owned();
    for (method, path) in [
        ("GET", format!("/sessions/{id}")),
        ("GET", format!("/sessions/{id}/pause")),
        ("POST", format!("/sessions/{id}/pause")),
        ("GET", format!("/sessions/{id}/resume")),
        ("POST", format!("/sessions/{id}/resume")),
        ("GET", format!("/sessions/{id}/stop")),
        ("POST", format!("/sessions/{id}/stop")),
        ("POST", format!("/events/{event_id}/redeliver")),
    ] {
        let (status, v) = s.call(method, &path, Some(&b.key), None).await?;
        ensure!(
            status == StatusCode::NOT_FOUND && v["error"]["code"] == "not_found",
            "{method} {path} with another organization's key: {status} {v}"
        );
    }
    for path in [
        format!("/events?session={id}"),
        "/events".to_owned(),
        "/sessions?status=created".to_owned(),
        format!("/sessions?chargestation={}", a.station),
    ] {
        let v = s.ok("GET", &path, Some(&b.key), None).await?;
        ensure!(
            v["data"].as_array().is_some_and(Vec::is_empty),
            "{path} with another organization's key: {v}"
        );
    }
    // The operator token opens /admin only (an API key on /admin: authentication_and_isolation).
    for (method, path) in [
        ("GET", "/sessions"),
        ("GET", "/organization"),
        ("GET", "/events"),
    ] {
        let (status, v) = s.call(method, path, Some(ADMIN_TOKEN), None).await?;
        ensure!(
            status == StatusCode::UNAUTHORIZED && v["error"]["code"] == "unauthorized",
            "{method} {path} with the admin token: {status} {v}"
        );
    }
    // Payment return pages: the id is the capability, and the page shows only the status.
    let page = |path: String| {
        let http = s.http.clone();
        let url = format!("{}{path}", s.api);
        async move { anyhow::Ok(http.get(url).send().await?.text().await?) }
    };
    let success = page(format!("/payments/{id}/success")).await?;
    ensure!(
        success.contains(&id) && success.contains("data-status"),
        "{success}"
    );
    let payment_url = created["payment"]["url"].as_str().unwrap_or("payment url");
    for private in [
        a.user.as_str(),
        a.station.as_str(),
        a.connectors[0].as_str(),
        payment_url,
        "1800",
        "usd",
    ] {
        ensure!(
            !success.contains(private),
            "the return page shows {private}: {success}"
        );
    }
    let unknown = format!("ses_{}", random_body());
    for path in [
        format!("/payments/{unknown}/success"),
        format!("/payments/{unknown}/cancel"),
        "/payments/not-an-id/success".to_owned(),
    ] {
        let body = page(path.clone()).await?;
        ensure!(
            body.contains("This link is not valid") && !body.contains(&id),
            "{path}: {body}"
        );
    }
    // An unknown id's cancel page cancelled nothing.
    let still = s
        .ok("GET", &format!("/sessions/{id}"), Some(&a.key), None)
        .await?;
    ensure!(still["status"] == "created", "{still}");
    Ok(())
}

/// The session's events in `/events`, once the outbox recorded them.
async fn wait_for_events(s: &Stack, key: &str, id: &str) -> anyhow::Result<Vec<Value>> {
    for _ in 0..100 {
        let v = s
            .ok("GET", &format!("/events?session={id}"), Some(key), None)
            .await?;
        if let Some(events) = v["data"].as_array().filter(|e| !e.is_empty()) {
            return Ok(events.clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no events recorded for {id}")
}

async fn validation_errors_name_the_field(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let k = Some(t.key.as_str());
    let cases = [
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "payment_link", "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            Some("colour"),
        ),
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "wallet"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("type"),
        ),
        (
            json!({"user": "bob", "connector": t.connectors[0], "type": "payment_link"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("user"),
        ),
        (
            json!({"user": t.user, "connector": "con_nope", "type": "payment_link"}),
            StatusCode::NOT_FOUND,
            "connector_not_found",
            Some("connector"),
        ),
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "payment_link", "authorized_amount": -5}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("authorized_amount"),
        ),
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "payment_link", "authorized_amount": 0}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("authorized_amount"),
        ),
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "payment_link", "authorized_amount": 999_999}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("authorized_amount"),
        ),
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "payment_link", "target": {"payment_expiry_time": 0}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("target.payment_expiry_time"),
        ),
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "payment_link", "target": {"energy": 0}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("target.energy"),
        ),
        (
            json!({"user": t.user, "connector": t.connectors[0], "type": "payment_link", "target": {"energy": 1000.5}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("target.energy"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, v) = s.call("POST", "/sessions", k, Some(body.clone())).await?;
        ensure!(
            got == status && v["error"]["code"] == code,
            "{body} -> {got} {v}"
        );
        ensure!(
            v["error"]["field"].as_str() == field,
            "{body}: field {:?}",
            v["error"]["field"]
        );
        ensure!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, v) = s
        .call(
            "POST",
            "/rates",
            k,
            Some(json!({"name": "x", "currency": "dollars", "price_components": []})),
        )
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && v["error"]["field"] == "currency",
        "{v}"
    );
    let (status, v) = s
        .call("POST", "/rates", k, Some(json!({"name": "x", "currency": "usd", "price_components": [{"type": "ENERGY", "price": "1"}, {"type": "ENERGY", "price": "2"}]})))
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && v["error"]["field"] == "price_components",
        "{v}"
    );
    Ok(())
}

async fn idempotency_key_makes_retries_safe(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let key = format!("retry-{}", random_body());
    let post = |body: Value| {
        s.http
            .post(format!("{}/sessions", s.api))
            .bearer_auth(&t.key)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
    };
    let first: Value = post(session_body(&t, &t.connectors[1]))
        .await?
        .json()
        .await?;
    let again = post(session_body(&t, &t.connectors[1])).await?;
    ensure!(again.status().is_success());
    let again: Value = again.json().await?;
    ensure!(
        first["_id"] == again["_id"] && first["payment"]["url"] == again["payment"]["url"],
        "{first} vs {again}"
    );
    let other = post(json!({"user": t.user, "connector": t.connectors[1], "type": "payment_link", "authorized_amount": 2500})).await?;
    ensure!(other.status() == StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = other.json().await?;
    ensure!(v["error"]["code"] == "idempotency_key_reused", "{v}");
    Ok(())
}

async fn busy_connector_and_refused_commands(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let k = Some(t.key.as_str());
    let first = s
        .ok(
            "POST",
            "/sessions",
            k,
            Some(session_body(&t, &t.connectors[0])),
        )
        .await?;
    let (status, v) = s
        .call(
            "POST",
            "/sessions",
            k,
            Some(session_body(&t, &t.connectors[0])),
        )
        .await?;
    ensure!(
        status == StatusCode::CONFLICT && v["error"]["code"] == "connector_busy",
        "{status} {v}"
    );
    let id = first["_id"].as_str().context("id")?;
    let (status, v) = s
        .call("GET", &format!("/sessions/{id}/pause"), k, None)
        .await?;
    ensure!(
        status == StatusCode::CONFLICT && v["error"]["code"] == "session_not_charging",
        "{status} {v}"
    );
    let parked = s
        .ok(
            "POST",
            "/sessions",
            k,
            Some(session_body(&t, &t.parking_connector)),
        )
        .await?;
    let pid = parked["_id"].as_str().context("id")?;
    let (status, v) = s
        .call("POST", &format!("/sessions/{pid}/stop"), k, None)
        .await?;
    ensure!(
        status == StatusCode::CONFLICT && v["error"]["code"] == "stop_not_allowed",
        "{status} {v}"
    );
    ensure!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("PARKING_TIME")),
        "{v}"
    );
    Ok(())
}

/// The admin listing shows the registry's live state, and a session is refused (409) on a
/// Faulted connector or an offline station before any payment is created.
async fn offline_stations_and_unavailable_connectors_are_refused(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let k = Some(t.key.as_str());
    let listed = |v: &Value| -> anyhow::Result<(Value, Vec<Value>)> {
        let station = v["data"]
            .as_array()
            .and_then(|d| d.iter().find(|st| st["_id"] == t.station.as_str()))
            .context("station listed")?;
        let statuses = station["connectors"]
            .as_array()
            .context("connectors")?
            .iter()
            .map(|c| c["status"].clone())
            .collect();
        Ok((station["online"].clone(), statuses))
    };
    let (online, statuses) = listed(&s.ok("GET", "/charge-stations", k, None).await?)?;
    ensure!(online == true, "{online}");
    ensure!(statuses == vec![json!("Available"); 3], "{statuses:?}");

    // Connector 2 faults (what the gateway records from a StatusNotification).
    s.store
        .record_connector_status(
            &t.station,
            2,
            "Faulted",
            "GroundFailure",
            chrono::Utc::now(),
        )
        .await?;
    let (_, statuses) = listed(&s.ok("GET", "/charge-stations", k, None).await?)?;
    ensure!(
        statuses == [json!("Available"), json!("Faulted"), json!("Available")],
        "{statuses:?}"
    );
    let (status, v) = s
        .call(
            "POST",
            "/sessions",
            k,
            Some(session_body(&t, &t.connectors[1])),
        )
        .await?;
    ensure!(
        status == StatusCode::CONFLICT
            && v["error"]["code"] == "connector_unavailable"
            && v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Faulted")),
        "{status} {v}"
    );

    // The station goes offline.
    let connection = s
        .store
        .station_connection(&t.station)
        .await?
        .context("connected")?;
    s.store
        .station_disconnected(&t.station, &connection.connection_id, chrono::Utc::now())
        .await?;
    let (online, _) = listed(&s.ok("GET", "/charge-stations", k, None).await?)?;
    ensure!(online == false, "{online}");
    let (status, v) = s
        .call(
            "POST",
            "/sessions",
            k,
            Some(session_body(&t, &t.connectors[0])),
        )
        .await?;
    ensure!(
        status == StatusCode::CONFLICT
            && v["error"]["code"] == "station_offline"
            && v["error"]["field"] == "connector",
        "{status} {v}"
    );
    let listed = s.ok("GET", "/sessions", k, None).await?;
    ensure!(
        listed["data"].as_array().is_some_and(Vec::is_empty),
        "no session was created: {listed}"
    );
    Ok(())
}

async fn list_filters_and_cursor(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let k = Some(t.key.as_str());
    for c in &t.connectors {
        s.ok("POST", "/sessions", k, Some(session_body(&t, c)))
            .await?;
    }
    let page1 = s.ok("GET", "/sessions?limit=2", k, None).await?;
    ensure!(
        page1["data"].as_array().is_some_and(|d| d.len() == 2),
        "{page1}"
    );
    let cursor = page1["next_cursor"].as_str().context("next_cursor")?;
    let page2 = s
        .ok(
            "GET",
            &format!("/sessions?limit=2&cursor={cursor}"),
            k,
            None,
        )
        .await?;
    ensure!(
        page2["data"].as_array().is_some_and(|d| d.len() == 1) && page2["next_cursor"].is_null(),
        "{page2}"
    );
    let created = s.ok("GET", "/sessions?status=created", k, None).await?;
    ensure!(created["data"].as_array().is_some_and(|d| d.len() == 3));
    let ended = s.ok("GET", "/sessions?status=ended", k, None).await?;
    ensure!(ended["data"].as_array().is_some_and(Vec::is_empty));
    let (status, v) = s.call("GET", "/sessions?status=flying", k, None).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && v["error"]["field"] == "status",
        "{v}"
    );
    let (status, _) = s.call("GET", "/sessions?limit=1000", k, None).await?;
    ensure!(status == StatusCode::BAD_REQUEST);
    Ok(())
}

async fn webhooks_arrive_signed_with_the_session(s: &Stack) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    let endpoints = s
        .ok("GET", "/webhook-endpoints", Some(&t.key), None)
        .await?;
    ensure!(
        endpoints["data"][0].get("secret").is_none(),
        "listing never shows the secret"
    );
    let rotated = s
        .ok(
            "POST",
            &format!(
                "/webhook-endpoints/{}/rotate-secret",
                endpoints["data"][0]["_id"].as_str().context("id")?
            ),
            Some(&t.key),
            None,
        )
        .await?;
    let secret = rotated["secret"].as_str().context("secret")?.to_owned();
    let created = s.created(&t).await?;
    let id: domain::ids::SessionId = created["_id"].as_str().context("id")?.parse()?;
    s.sessions
        .payment_authorized(
            &id,
            PaymentAuthorized {
                intent_id: "pi_1".into(),
                amount_capturable: domain::money::Money::new(1800, domain::money::Currency::USD),
            },
        )
        .await?;
    let want = [
        SessionEvent::id_for(&id, 1),
        SessionEvent::id_for(&id, 2),
        SessionEvent::id_for(&id, 3),
    ];
    for _ in 0..100 {
        let got: Vec<(String, Vec<u8>)> = s
            .hooks
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?
            .iter()
            .filter(|(_, b)| String::from_utf8_lossy(b).contains(id.as_str()))
            .cloned()
            .collect();
        if got.len() >= 3 {
            let ids: Vec<String> = got
                .iter()
                .map(|(_, b)| {
                    serde_json::from_slice::<Value>(b)
                        .map(|v| v["_id"].as_str().unwrap_or_default().to_owned())
                })
                .collect::<Result<_, _>>()?;
            ensure!(ids == want, "in order: {ids:?}");
            for (sig, body) in &got {
                ensure!(
                    activities::webhooks::verify(
                        &secret,
                        sig,
                        body,
                        chrono::Utc::now().timestamp(),
                        300
                    ),
                    "signature"
                );
            }
            let last: Value = serde_json::from_slice(&got[2].1)?;
            ensure!(
                last["type"] == "session.payment.authorized"
                    && last["data"]["payment"]["status"] == "authorized",
                "{last}"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("webhooks did not arrive")
}

async fn openapi_docs_and_return_pages(s: &Stack) -> anyhow::Result<()> {
    let doc = s.ok("GET", "/openapi.json", None, None).await?;
    ensure!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        doc["openapi"]
    );
    for path in [
        "/sessions",
        "/sessions/{id}/stop",
        "/webhook-endpoints",
        "/events/{id}/redeliver",
    ] {
        ensure!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let profile =
        &doc["components"]["schemas"]["CreateChargeStation"]["properties"]["security_profile"];
    ensure!(
        profile["minimum"] == 1 && profile["maximum"] == 3,
        "security_profile documented with its range: {profile}"
    );
    let docs = s
        .http
        .get(format!("{}/docs", s.api))
        .send()
        .await?
        .text()
        .await?;
    ensure!(docs.contains("/openapi.json"));
    let t = s.tenant().await?;
    let created = s.created(&t).await?;
    let id = created["_id"].as_str().context("id")?;
    let page = s
        .http
        .get(format!("{}/payments/{id}/cancel", s.api))
        .send()
        .await?
        .text()
        .await?;
    ensure!(page.contains("No money was taken"), "{page}");
    for _ in 0..50 {
        let got = s
            .ok("GET", &format!("/sessions/{id}"), Some(&t.key), None)
            .await?;
        if got["status"] == "canceled" {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cancel page did not cancel the session")
}

/// schemathesis (installed by `scripts/python-deps` into `.tools/schemathesis`) fuzzes every
/// operation of `/openapi.json` with an organization's API key: valid and invalid bodies,
/// parameters and headers, bounded per operation so the run stays short. No answer may be a 5xx,
/// and every answer must match its documented status, content type and schema (errors: the
/// `{"error": {"code", "message", "field"}}` body).
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer(
    s: &Stack,
) -> anyhow::Result<()> {
    let t = s.tenant().await?;
    // A session, so that list pages hold one.
    s.ok(
        "POST",
        "/sessions",
        Some(&t.key),
        Some(session_body(&t, &t.connectors[0])),
    )
    .await?;
    // What schemathesis found, pinned: axum's own rejections carry the JSON error shape, an
    // array is not an object body, and the documented query parameters are in the query.
    let k = Some(t.key.as_str());
    for (method, path, body, status, field) in [
        ("GET", "/sessions?limit=abc", None, 400, Some("limit")),
        ("GET", "/events?limit=0", None, 400, Some("limit")),
        ("GET", "/sessions/%FF", None, 400, None),
        ("DELETE", "/sessions", None, 405, None),
        ("POST", "/users", Some(json!([null, null])), 422, None),
    ] {
        let (got, v) = s.call(method, path, k, body).await?;
        ensure!(
            got.as_u16() == status
                && v["error"]["code"].is_string()
                && v["error"]["message"].is_string()
                && v["error"]["field"].as_str() == field,
            "{method} {path}: {got} {v}"
        );
    }
    let doc = s.ok("GET", "/openapi.json", None, None).await?;
    let limit = &doc["paths"]["/sessions"]["get"]["parameters"];
    ensure!(
        limit
            .as_array()
            .is_some_and(|ps| ps.iter().all(|p| p["in"] == "query")),
        "{limit}"
    );
    // The session object is documented field by field (not a bare object), so schemathesis
    // checks every session answer against it.
    let session = &doc["components"]["schemas"]["Session"];
    for field in ["_id", "status", "payment", "cost", "createdAt"] {
        ensure!(
            session["properties"][field].is_object(),
            "Session schema lacks {field}: {session}"
        );
    }
    let created = &doc["paths"]["/sessions"]["post"]["responses"]["201"];
    ensure!(
        created.to_string().contains("#/components/schemas/Session"),
        "POST /sessions 201 is not the Session schema: {created}"
    );
    let bin = std::env::var_os("CHARGELINK_SCHEMATHESIS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.tools/schemathesis/bin/schemathesis")
        });
    ensure!(
        bin.exists(),
        "schemathesis is not installed at {}: run scripts/python-deps (or set CHARGELINK_SCHEMATHESIS)",
        bin.display()
    );
    let report = std::env::temp_dir().join(format!("schemathesis-{}", random_body()));
    let out = tokio::process::Command::new(&bin)
        .arg("run")
        .arg(format!("{}/openapi.json", s.api))
        .args(["--checks", "all"])
        // Random ids name no resource: a well-formed request for one is rightly a 404.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", "25", "--seed", "13", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "10", "--no-color"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", t.key))
        .args(["--report", "vcr", "--report-dir"])
        .arg(&report)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        // schemathesis keeps its example database in the working directory.
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true)
        .output()
        .await
        .context("running schemathesis")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "schemathesis found problems (exit {:?}; requests and answers in {}):\n{stdout}\n{}",
        out.status.code(),
        report.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // "Test cases:" and the count under it.
    let counts = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    println!("schemathesis: {counts}");
    Ok(())
}

/// Per-key rate limits on a second API over the same store and workflows, with a tight limit
/// (2 requests, then 1/s): the third request in a row is a 429 `rate_limited` with
/// `Retry-After`, over gRPC too (`RESOURCE_EXHAUSTED`); another key is not slowed; after the
/// wait the key is served again.
async fn rate_limits_answer_429_with_retry_after(s: &Stack) -> anyhow::Result<()> {
    let state = api::AppState {
        store: s.store.clone(),
        sessions: s.sessions.clone(),
        config: api::ApiConfig {
            public_rate_limit: api::limits::RateLimiter::public(),
            rate_limit: api::limits::RateLimiter::new(1, 2),
            receipts: Default::default(),
            admin_token: Some(ADMIN_TOKEN.into()),
            timings: Default::default(),
            default_max_power_w: None,
        },
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let limited = format!("http://{}", listener.local_addr()?);
    tokio::spawn(api::serve_app(
        listener,
        grpc::with_rest(state)?,
        std::future::pending(),
    ));
    let (a, b) = (s.tenant().await?, s.tenant().await?);
    let get = |key: String| {
        let url = format!("{limited}/sessions");
        let http = s.http.clone();
        async move { http.get(url).bearer_auth(key).send().await }
    };
    for _ in 0..2 {
        let r = get(a.key.clone()).await?;
        ensure!(
            r.status() == StatusCode::OK,
            "within the burst: {}",
            r.status()
        );
    }
    let r = get(a.key.clone()).await?;
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let status = r.status();
    let body: Value = r.json().await?;
    ensure!(
        status == StatusCode::TOO_MANY_REQUESTS
            && body["error"]["code"] == "rate_limited"
            && retry == Some(1),
        "{status} retry-after {retry:?} {body}"
    );
    let mut grpc = chargelink_tests::grpc_client::connect(&limited).await?;
    let refused = grpc
        .list(chargelink_tests::grpc_client::auth(
            &a.key,
            grpc::pb::ListRequest::default(),
        ))
        .await
        .err()
        .context("gRPC over the limit")?;
    ensure!(
        refused.code() == tonic::Code::ResourceExhausted
            && refused.metadata().get("retry-after").is_some(),
        "{refused:?}"
    );
    let r = get(b.key.clone()).await?;
    ensure!(r.status() == StatusCode::OK, "another key: {}", r.status());
    // Unknown keys are refused as before, not counted.
    let r = get("ck_unknown".into()).await?;
    ensure!(r.status() == StatusCode::UNAUTHORIZED, "{}", r.status());
    tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1))).await;
    let r = get(a.key.clone()).await?;
    ensure!(
        r.status() == StatusCode::OK,
        "after Retry-After: {}",
        r.status()
    );
    Ok(())
}

/// The texts of the price lines of `fixtures::weekday_tariff_rate`, as a driver reads them.
const WEEKDAY_TARIFF_LINES: [&str; 6] = [
    "0.476 € per kWh, weekdays, 08:00-18:00",
    "0.0595 € per minute charging, weekdays, 08:00-18:00",
    "0.357 € per kWh, otherwise",
    "parking 0.119 € per minute, after 60 min",
    "minimum 2.38 €, maximum 59.50 € per session",
    "VAT 19 % included",
];

/// The public price of a connector: no API key, the lines of the rate the session is priced
/// with (a weekday tariff with energy, time and parking), the hold and what it buys at the
/// connector's 50 kW; by number or `con_…` id; as an HTML page for a QR code; unknown station or
/// connector 404 (JSON error shape, and an HTML page); nothing of the organization in it; a
/// client over the public limit 429.
async fn public_price_of_a_connector(s: &Stack) -> anyhow::Result<()> {
    let org = s
        .ok("POST", "/admin/organizations", Some(ADMIN_TOKEN), Some(json!({"name": "price", "settings": {
            "currency": "eur", "minimum_amount_to_start_session": 1800, "maximum_authorized_amount": 5000,
            "payment_expiry_time": 300, "start_window": 300}})))
        .await?;
    let key = org["api_key"]["key"].as_str().context("key")?.to_owned();
    let org_id: domain::ids::OrganizationId = org["organization"]["_id"]
        .as_str()
        .context("org id")?
        .parse()?;
    // Tariffs with restrictions are stored as sessions use them (POST /rates takes components).
    let rate = chargelink_tests::fixtures::weekday_tariff_rate();
    let rate_id = domain::ids::RateId::from_unique(&random_body())?;
    s.store
        .create_rate(&org_id, &rate_id, "weekday", &rate, chrono::Utc::now())
        .await?;
    let station = format!("CP-{}", &random_body()[..8]);
    let cs = s
        .ok(
            "POST",
            "/charge-stations",
            Some(&key),
            Some(json!({"id": station, "name": "price", "connectors": [
            {"connector_id": 1, "rate": rate_id.to_string(), "max_power_w": 50_000}]})),
        )
        .await?;
    let con = cs["connectors"][0]["_id"]
        .as_str()
        .context("con")?
        .to_owned();

    let path = format!("/charge-stations/{station}/connectors/1/price");
    let before = chrono::Utc::now();
    let (status, price) = s.call("GET", &path, None, None).await?;
    let after = chrono::Utc::now();
    ensure!(status == StatusCode::OK, "{status} {price}");
    let texts: Vec<&str> = price["lines"]
        .as_array()
        .context("lines")?
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    ensure!(texts == WEEKDAY_TARIFF_LINES, "{texts:#?}");
    ensure!(
        price["rate"] == rate_id.to_string()
            && price["currency"] == "eur"
            && price["time_zone"] == "Europe/Berlin"
            && price["charge_station"] == station.as_str()
            && price["connector"] == 1
            && price["hold"] == json!({"amount": 1800, "currency": "eur"})
            && price["max_power_w"] == 50_000,
        "{price}"
    );
    // Figures as integers: 0.476 € is 476 × 10^-3, the minimum 2.38 € is 238 cents.
    ensure!(
        price["lines"][0]["price"] == json!({"amount": 476, "exponent": 3, "currency": "eur"})
            && price["lines"][0]["price_excl_vat"]
                == json!({"amount": 40, "exponent": 2, "currency": "eur"})
            && price["lines"][0]["days_of_week"].as_array().map(Vec::len) == Some(5)
            && price["lines"][1]["unit"] == "minute"
            && price["lines"][3]["after_parking_minutes"] == 60
            && price["lines"][4]["minimum"] == json!({"amount": 238, "currency": "eur"}),
        "{price}"
    );
    // The estimate is the engine's, at the time of the request (prices differ by time of day).
    let expected: Vec<i64> = [before, after]
        .into_iter()
        .filter_map(|at| {
            domain::price_list::hold_estimate(
                &rate,
                domain::Money::new(1800, domain::Currency::EUR),
                50_000,
                at,
            )
            .ok()
            .flatten()
        })
        .map(|e| e.energy_wh)
        .collect();
    let energy = price["estimate"]["energy_wh"]
        .as_i64()
        .context("estimate")?;
    ensure!(
        expected.iter().any(|e| (e - energy).abs() <= 20)
            && price["estimate"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("the 18.00 € hold buys about ")),
        "{energy} Wh, expected one of {expected:?}: {price}"
    );
    // Nothing private: only the documented fields, no organization, key or session.
    let fields: Vec<&str> = price
        .as_object()
        .context("object")?
        .keys()
        .map(String::as_str)
        .collect();
    ensure!(
        fields
            == [
                "charge_station",
                "connector",
                "currency",
                "estimate",
                "hold",
                "lines",
                "max_power_w",
                "rate",
                "time_zone"
            ],
        "{fields:?}"
    );
    let body = price.to_string();
    ensure!(
        !body.contains(org_id.as_str()) && !body.contains(&key) && !body.contains("ses_"),
        "{body}"
    );
    // The connector's id names it too, and a key changes nothing.
    let by_id = s
        .ok(
            "GET",
            &format!("/charge-stations/{station}/connectors/{con}/price"),
            Some(&key),
            None,
        )
        .await?;
    ensure!(by_id["lines"] == price["lines"], "{by_id}");

    for missing in [
        format!("/charge-stations/{station}/connectors/9/price"),
        format!(
            "/charge-stations/CP-nowhere-{}/connectors/1/price",
            random_body()
        ),
    ] {
        let (status, v) = s.call("GET", &missing, None, None).await?;
        ensure!(
            status == StatusCode::NOT_FOUND
                && v["error"]["code"] == "connector_not_found"
                && v["error"]["message"].is_string(),
            "{missing}: {status} {v}"
        );
    }

    // The HTML page: every line, the hold and the estimate; an unknown connector is a page too.
    let html_page = |number: u32| {
        let url = format!("{}/price/{station}/{number}", s.api);
        async move {
            let res = s.http.get(url).send().await?;
            let content_type = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            anyhow::Ok((res.status(), content_type, res.text().await?))
        }
    };
    let (status, content_type, html) = html_page(1).await?;
    ensure!(
        status == StatusCode::OK && content_type.starts_with("text/html"),
        "{status} {content_type}"
    );
    for line in WEEKDAY_TARIFF_LINES {
        ensure!(
            html.contains(&format!(">{line}</li>")),
            "{line} not in {html}"
        );
    }
    ensure!(
        html.contains(r#"data-kind="energy" data-unit="kwh" data-price="0.476""#)
            && html.contains("18.00 €")
            && html.contains(r#"id="estimate""#),
        "{html}"
    );
    let (status, content_type, html) = html_page(9).await?;
    ensure!(
        status == StatusCode::NOT_FOUND
            && content_type.starts_with("text/html")
            && html.contains("connector_not_found"),
        "{status} {content_type} {html}"
    );

    // Over the public limit (a second API with 2 requests, then 1/s per client address): 429
    // with Retry-After, whatever key is sent.
    let state = api::AppState {
        store: s.store.clone(),
        sessions: s.sessions.clone(),
        config: api::ApiConfig {
            public_rate_limit: api::limits::RateLimiter::new(1, 2),
            ..Default::default()
        },
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let limited = format!("http://{}", listener.local_addr()?);
    tokio::spawn(api::serve(listener, state, std::future::pending()));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = s
            .http
            .get(format!("{limited}{path}"))
            .bearer_auth(&key)
            .send()
            .await?;
        statuses.push((r.status(), r.headers().contains_key("retry-after")));
    }
    ensure!(
        statuses
            == [
                (StatusCode::OK, false),
                (StatusCode::OK, false),
                (StatusCode::TOO_MANY_REQUESTS, true)
            ],
        "{statuses:?}"
    );
    Ok(())
}

async fn receive(
    axum::extract::State(hooks): axum::extract::State<Received>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let sig = headers
        .get(activities::webhooks::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut h) = hooks.lock() {
        h.push((sig, body.to_vec()));
    }
    StatusCode::OK
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let Some(tokio) = chargelink_tests::harness::runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    let result = tokio.block_on(async move {
        let server = DevServer::start().await?;
        let client = connect(&server.url).await?;
        let db = std::env::temp_dir().join(format!("chargelink-api-{}.db", random_body()));
        let store = store::Store::open(&format!("sqlite://{}?mode=rwc", db.display())).await?;
        let queue = format!("api-{}", random_body());
        let journal = std::env::temp_dir().join(format!("{queue}.jsonl"));
        // Recording stand-ins for Stripe and the stations; the real store activity.
        let options = harness::recording_worker_options(&queue, &journal, &store)?;
        let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())?;
        let worker = Worker::new(&runtime, client.clone(), options)?;

        let hooks = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(hooks.clone());
        let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hook_url = format!("http://{}/hook", hook_listener.local_addr()?);
        tokio::spawn(async move { axum::serve(hook_listener, app).await });

        let settings = activities::webhooks::WebhookSettings {
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        };
        let dispatcher = activities::webhooks::Dispatcher::new(store.clone(), settings)?;
        tokio::spawn(async move { dispatcher.run(std::future::pending()).await });

        let sessions = SessionClient::new(client, queue);
        let state = api::AppState {
            store: store.clone(),
            sessions: sessions.clone(),
            config: api::ApiConfig {
                // Tests share 127.0.0.1; schemathesis would use up the public limit of the others.
                public_rate_limit: api::limits::RateLimiter::off(),
                rate_limit: Default::default(),
                receipts: Default::default(),
                admin_token: Some(ADMIN_TOKEN.into()),
                timings: Default::default(),
                default_max_power_w: None,
            },
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { api::serve(listener, state, std::future::pending()).await });

        let stack = Arc::new(Stack {
            tokio: tokio::runtime::Handle::current(),
            api,
            http: reqwest::Client::new(),
            sessions,
            hooks,
            hook_url,
            store,
        });
        macro_rules! trial {
            ($name:ident) => {{
                let s = stack.clone();
                Trial::test(stringify!($name), move || s.run($name(&s)))
            }};
        }
        let trials = vec![
            trial!(create_session_answers_with_the_payment),
            trial!(authentication_and_isolation),
            trial!(access_boundaries),
            trial!(validation_errors_name_the_field),
            trial!(idempotency_key_makes_retries_safe),
            trial!(busy_connector_and_refused_commands),
            trial!(offline_stations_and_unavailable_connectors_are_refused),
            trial!(list_filters_and_cursor),
            trial!(webhooks_arrive_signed_with_the_session),
            trial!(openapi_docs_and_return_pages),
            trial!(schemathesis_finds_no_server_error_and_no_undocumented_answer),
            trial!(rate_limits_answer_429_with_retry_after),
            trial!(public_price_of_a_connector),
        ];
        let conclusion = harness::run_next_to_worker(args, trials, worker).await;
        drop(server);
        conclusion
    });
    match result {
        Ok(conclusion) => conclusion.exit_code(),
        Err(e) => {
            eprintln!("could not run the API tests: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
