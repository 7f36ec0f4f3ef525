//! The admin endpoints' error paths over real HTTP: the operator token, organization isolation
//! (another organization's resources are 404), and validation (bad ids, unknown fields, negative
//! amounts, unknown currencies). The API runs on a real port over the real store (SQLite file)
//! with a real Temporal dev server behind its session client; admin calls start no workflow, so
//! no worker runs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers; a panic is a failed test"
)]

use std::sync::Arc;

use anyhow::{Context, ensure};
use chargelink_tests::devserver::{DevServer, connect};
use chargelink_tests::fixtures::random_body;
use libtest_mimic::{Arguments, Failed, Trial};
use reqwest::StatusCode;
use serde_json::{Value, json};
use workflows::client::SessionClient;

const ADMIN_TOKEN: &str = "admin-token-for-tests";

struct Stack {
    tokio: tokio::runtime::Handle,
    /// The API with an operator token.
    api: String,
    /// The same API without one (admin off).
    no_admin: String,
    http: reqwest::Client,
}

/// An organization made through the admin API: its key, key id, a rate, a station, a webhook
/// endpoint.
struct Org {
    key: String,
    key_id: String,
    rate: String,
    station: String,
    endpoint: String,
}

impl Stack {
    fn run(&self, f: impl std::future::Future<Output = anyhow::Result<()>>) -> Result<(), Failed> {
        self.tokio
            .block_on(f)
            .map_err(|e| Failed::from(format!("{e:#}")))
    }

    async fn call_at(
        &self,
        base: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self.http.request(method.parse()?, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call_at(&self.api, method, path, token, body).await
    }

    async fn ok(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, Some(token), Some(body)).await?;
        ensure!(status.is_success(), "{method} {path} -> {status}: {v}");
        Ok(v)
    }

    async fn org(&self) -> anyhow::Result<Org> {
        let created = self
            .ok(
                "POST",
                "/admin/organizations",
                ADMIN_TOKEN,
                json!({"name": "acme"}),
            )
            .await?;
        let key = created["api_key"]["key"]
            .as_str()
            .context("key")?
            .to_owned();
        let key_id = created["api_key"]["_id"]
            .as_str()
            .context("key id")?
            .to_owned();
        let rate = self
            .ok(
                "POST",
                "/rates",
                &key,
                json!({"name": "energy", "currency": "usd", "price_components": [{"type": "ENERGY", "price": "0.30"}]}),
            )
            .await?["_id"]
            .as_str()
            .context("rate")?
            .to_owned();
        let station = format!("CP-{}", &random_body()[..8]);
        self.ok(
            "POST",
            "/charge-stations",
            &key,
            json!({"id": station, "name": "s", "connectors": [{"connector_id": 1, "rate": rate}]}),
        )
        .await?;
        let endpoint = self
            .ok(
                "POST",
                "/webhook-endpoints",
                &key,
                json!({"url": "http://127.0.0.1:9/hook"}),
            )
            .await?["_id"]
            .as_str()
            .context("endpoint")?
            .to_owned();
        Ok(Org {
            key,
            key_id,
            rate,
            station,
            endpoint,
        })
    }
}

/// Checks an error answer: status, stable code, field, and a message that says something.
fn error(
    got: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) -> anyhow::Result<()> {
    let (s, v) = got;
    ensure!(*s == status, "want {status}, got {s}: {v}");
    ensure!(v["error"]["code"] == code, "want code {code}: {v}");
    ensure!(
        v["error"]["field"].as_str() == field,
        "want field {field:?}: {v}"
    );
    ensure!(
        v["error"]["message"].as_str().is_some_and(|m| m.len() > 5),
        "a message: {v}"
    );
    Ok(())
}

async fn the_operator_token_guards_admin(s: &Stack) -> anyhow::Result<()> {
    let body = || Some(json!({"name": "x"}));
    let none = s.call("POST", "/admin/organizations", None, body()).await?;
    error(&none, StatusCode::UNAUTHORIZED, "unauthorized", None)?;
    let wrong = s
        .call(
            "POST",
            "/admin/organizations",
            Some("not-the-token"),
            body(),
        )
        .await?;
    error(&wrong, StatusCode::UNAUTHORIZED, "unauthorized", None)?;
    // A prefix of the token is not the token.
    let prefix = s
        .call(
            "POST",
            "/admin/organizations",
            Some(&ADMIN_TOKEN[..5]),
            body(),
        )
        .await?;
    error(&prefix, StatusCode::UNAUTHORIZED, "unauthorized", None)?;
    let o = s.org().await?;
    let with_key = s
        .call("POST", "/admin/organizations", Some(&o.key), body())
        .await?;
    error(&with_key, StatusCode::UNAUTHORIZED, "unauthorized", None)?;
    // The operator token is not an API key either.
    let as_key = s
        .call("GET", "/organization", Some(ADMIN_TOKEN), None)
        .await?;
    error(&as_key, StatusCode::UNAUTHORIZED, "unauthorized", None)?;
    // Without a configured token, admin is off for everyone, and says how to turn it on.
    let off = s
        .call_at(
            &s.no_admin,
            "POST",
            "/admin/organizations",
            Some(ADMIN_TOKEN),
            body(),
        )
        .await?;
    error(&off, StatusCode::FORBIDDEN, "admin_disabled", None)?;
    ensure!(
        off.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("CHARGELINK_ADMIN_TOKEN")),
        "{}",
        off.1
    );
    Ok(())
}

async fn a_revoked_key_stops_working(s: &Stack) -> anyhow::Result<()> {
    let o = s.org().await?;
    let second = s
        .ok("POST", "/api-keys", &o.key, json!({"name": "ci"}))
        .await?;
    let second_key = second["key"].as_str().context("key")?;
    let (status, _) = s
        .call("GET", "/organization", Some(second_key), None)
        .await?;
    ensure!(status == StatusCode::OK);
    let (status, v) = s
        .call(
            "DELETE",
            &format!("/api-keys/{}", o.key_id),
            Some(second_key),
            None,
        )
        .await?;
    ensure!(status == StatusCode::NO_CONTENT, "{status} {v}");
    let revoked = s.call("GET", "/organization", Some(&o.key), None).await?;
    error(&revoked, StatusCode::UNAUTHORIZED, "unauthorized", None)?;
    let again = s
        .call("DELETE", "/api-keys/key_nope", Some(second_key), None)
        .await?;
    error(&again, StatusCode::NOT_FOUND, "not_found", None)?;
    Ok(())
}

async fn another_organizations_resources_are_not_found(s: &Stack) -> anyhow::Result<()> {
    let a = s.org().await?;
    let b = s.org().await?;
    let bk = Some(b.key.as_str());
    let rate = s
        .call("GET", &format!("/rates/{}", a.rate), bk, None)
        .await?;
    error(&rate, StatusCode::NOT_FOUND, "not_found", None)?;
    for action in ["rotate-secret", "enable", "disable"] {
        let got = s
            .call(
                "POST",
                &format!("/webhook-endpoints/{}/{action}", a.endpoint),
                bk,
                None,
            )
            .await?;
        error(&got, StatusCode::NOT_FOUND, "not_found", None).context(action)?;
    }
    let revoke = s
        .call("DELETE", &format!("/api-keys/{}", a.key_id), bk, None)
        .await?;
    error(&revoke, StatusCode::NOT_FOUND, "not_found", None)?;
    // A's key still works after B's attempt.
    let (status, _) = s.call("GET", "/organization", Some(&a.key), None).await?;
    ensure!(status == StatusCode::OK, "A's key was not revoked by B");
    // B cannot hang a connector on A's rate.
    let station = format!("CP-{}", &random_body()[..8]);
    let borrowed = s
        .call(
            "POST",
            "/charge-stations",
            bk,
            Some(json!({"id": station, "name": "s", "connectors": [{"connector_id": 1, "rate": a.rate}]})),
        )
        .await?;
    error(
        &borrowed,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("connectors[0].rate"),
    )?;
    // Lists show only one's own.
    let (_, stations) = s.call("GET", "/charge-stations", bk, None).await?;
    let ids: Vec<&str> = stations["data"]
        .as_array()
        .context("stations")?
        .iter()
        .filter_map(|s| s["_id"].as_str())
        .collect();
    ensure!(ids == [b.station.as_str()], "{ids:?}");
    let (_, endpoints) = s.call("GET", "/webhook-endpoints", bk, None).await?;
    let ids: Vec<&str> = endpoints["data"]
        .as_array()
        .context("endpoints")?
        .iter()
        .filter_map(|e| e["_id"].as_str())
        .collect();
    ensure!(ids == [b.endpoint.as_str()], "{ids:?}");
    let redeliver = s
        .call("POST", "/events/evt_nope_0001/redeliver", bk, None)
        .await?;
    error(&redeliver, StatusCode::NOT_FOUND, "not_found", None)?;
    // Station ids are OCPP identities, global: taking A's is a conflict, not a takeover.
    let taken = s
        .call(
            "POST",
            "/charge-stations",
            bk,
            Some(json!({"id": a.station, "name": "s", "connectors": [{"connector_id": 1, "rate": b.rate}]})),
        )
        .await?;
    error(&taken, StatusCode::CONFLICT, "already_exists", None)?;
    Ok(())
}

async fn organization_settings_are_validated(s: &Stack) -> anyhow::Result<()> {
    let good = json!({"currency": "usd", "minimum_amount_to_start_session": 1800,
        "maximum_authorized_amount": 5000, "payment_expiry_time": 300, "start_window": 300});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("currency", json!("dollars")), "currency"),
        (with("currency", json!("xyz")), "currency"),
        (
            with("minimum_amount_to_start_session", json!(-100)),
            "minimum_amount_to_start_session",
        ),
        (
            with("minimum_amount_to_start_session", json!(0)),
            "minimum_amount_to_start_session",
        ),
        (
            with("maximum_authorized_amount", json!(100)),
            "maximum_authorized_amount",
        ),
        (with("payment_expiry_time", json!(0)), "payment_expiry_time"),
        (with("start_window", json!(100_000)), "start_window"),
        (with("top_up", json!({"ceiling": 100})), "top_up.ceiling"),
        (
            with("top_up", json!({"ceiling": 100_000_000})),
            "top_up.ceiling",
        ),
        (
            with("top_up", json!({"ceiling": 9000, "step": 0})),
            "top_up.step",
        ),
    ];
    let o = s.org().await?;
    for (settings, field) in &cases {
        let create = s
            .call(
                "POST",
                "/admin/organizations",
                Some(ADMIN_TOKEN),
                Some(json!({"name": "x", "settings": settings})),
            )
            .await?;
        error(
            &create,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(field),
        )
        .with_context(|| format!("create with {settings}"))?;
        let update = s
            .call(
                "PUT",
                "/organization/settings",
                Some(&o.key),
                Some(settings.clone()),
            )
            .await?;
        error(
            &update,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(field),
        )
        .with_context(|| format!("update with {settings}"))?;
    }
    // Unknown and missing fields name the field; a blank name is refused.
    let unknown = s
        .call(
            "POST",
            "/admin/organizations",
            Some(ADMIN_TOKEN),
            Some(json!({"name": "x", "colour": "red"})),
        )
        .await?;
    error(
        &unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        Some("colour"),
    )?;
    let missing = s
        .call(
            "PUT",
            "/organization/settings",
            Some(&o.key),
            Some(json!({"currency": "usd"})),
        )
        .await?;
    ensure!(
        missing.0 == StatusCode::UNPROCESSABLE_ENTITY && missing.1["error"]["field"].is_string(),
        "{missing:?}"
    );
    let blank = s
        .call(
            "POST",
            "/admin/organizations",
            Some(ADMIN_TOKEN),
            Some(json!({"name": "  "})),
        )
        .await?;
    error(
        &blank,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("name"),
    )?;
    // The refused updates changed nothing.
    let (_, org) = s.call("GET", "/organization", Some(&o.key), None).await?;
    ensure!(
        org["minimum_amount_to_start_session"].is_i64()
            && org["payment_expiry_time"].as_i64() > Some(0),
        "{org}"
    );
    let updated = s
        .ok("PUT", "/organization/settings", &o.key, good.clone())
        .await?;
    ensure!(updated["maximum_authorized_amount"] == 5000, "{updated}");
    // Top-up: off by default and not shown; once set, a body without it (an older client)
    // leaves it as it is, and `{"ceiling": null}` turns it off.
    ensure!(updated.get("top_up").is_none(), "{updated}");
    let on = s
        .ok(
            "PUT",
            "/organization/settings",
            &o.key,
            with("top_up", json!({"ceiling": 9000, "step": 1000})),
        )
        .await?;
    ensure!(
        on["top_up"] == json!({"ceiling": 9000, "step": 1000}),
        "{on}"
    );
    let kept = s
        .ok("PUT", "/organization/settings", &o.key, good.clone())
        .await?;
    ensure!(kept["top_up"] == on["top_up"], "{kept}");
    let off = s
        .ok(
            "PUT",
            "/organization/settings",
            &o.key,
            with("top_up", json!({"ceiling": null})),
        )
        .await?;
    ensure!(off.get("top_up").is_none(), "{off}");
    Ok(())
}

async fn rates_stations_and_endpoints_are_validated(s: &Stack) -> anyhow::Result<()> {
    let o = s.org().await?;
    let k = Some(o.key.as_str());
    let rate = |currency: &str, components: Value| {
        Some(json!({"name": "r", "currency": currency, "price_components": components}))
    };
    let energy = json!([{"type": "ENERGY", "price": "0.30"}]);
    let bad_currency = s
        .call("POST", "/rates", k, rate("xyz", energy.clone()))
        .await?;
    error(
        &bad_currency,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("currency"),
    )?;
    let negative = s
        .call(
            "POST",
            "/rates",
            k,
            rate("usd", json!([{"type": "ENERGY", "price": "-0.30"}])),
        )
        .await?;
    error(
        &negative,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("price_components"),
    )?;
    let unknown_type = s
        .call(
            "POST",
            "/rates",
            k,
            rate("usd", json!([{"type": "SPARKLE", "price": "1"}])),
        )
        .await?;
    // The path of the bad value, not the value quoted in the message.
    error(
        &unknown_type,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        Some("price_components[0].type"),
    )?;
    ensure!(
        unknown_type.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("SPARKLE")),
        "{unknown_type:?}"
    );
    let wrong_type = s
        .call(
            "POST",
            "/rates",
            k,
            rate("usd", json!([{"type": "ENERGY", "price": [1]}])),
        )
        .await?;
    ensure!(
        wrong_type.0.is_client_error()
            && wrong_type.1["error"]["field"] == "price_components[0].price",
        "{wrong_type:?}"
    );
    let mut extra = rate("usd", energy.clone()).unwrap();
    extra["discount"] = json!("10%");
    let extra = s.call("POST", "/rates", k, Some(extra)).await?;
    error(
        &extra,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        Some("discount"),
    )?;
    let bad_rate_id = s.call("GET", "/rates/not-a-rate", k, None).await?;
    error(&bad_rate_id, StatusCode::NOT_FOUND, "not_found", None)?;
    let no_rate = s.call("GET", "/rates/rat_0000", k, None).await?;
    error(&no_rate, StatusCode::NOT_FOUND, "not_found", None)?;

    let station = |id: &str, connectors: Value| {
        Some(json!({"id": id, "name": "s", "connectors": connectors}))
    };
    let fresh = || format!("CP-{}", &random_body()[..8]);
    let one = json!([{"connector_id": 1, "rate": o.rate}]);
    let cases = [
        (station("bad id/with slash", one.clone()), "id"),
        (station(&fresh(), json!([])), "connectors"),
        (
            station(&fresh(), json!([{"connector_id": 0, "rate": o.rate}])),
            "connectors[0].connector_id",
        ),
        (
            station(
                &fresh(),
                json!([{"connector_id": 1, "rate": o.rate}, {"connector_id": 2, "rate": "nope"}]),
            ),
            "connectors[1].rate",
        ),
        (
            station(
                &fresh(),
                json!([{"connector_id": 1, "rate": "rat_0000000000000000"}]),
            ),
            "connectors[0].rate",
        ),
        (
            Some(json!({"id": fresh(), "name": "s", "connectors": one, "ocpp_password": "short"})),
            "ocpp_password",
        ),
        (
            Some(
                json!({"id": fresh(), "name": "s", "connectors": one, "ocpp_password": "a key with spaces in it"}),
            ),
            "ocpp_password",
        ),
        (
            Some(json!({"id": fresh(), "name": "s", "connectors": one, "security_profile": 0})),
            "security_profile",
        ),
        (
            Some(json!({"id": fresh(), "name": "s", "connectors": one, "security_profile": 4})),
            "security_profile",
        ),
    ];
    for (body, field) in cases {
        let got = s.call("POST", "/charge-stations", k, body.clone()).await?;
        error(
            &got,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(field),
        )
        .with_context(|| format!("{body:?}"))?;
    }
    let (_, stations) = s.call("GET", "/charge-stations", k, None).await?;
    ensure!(
        stations["data"].as_array().is_some_and(|d| d.len() == 1),
        "refused stations were not created: {stations}"
    );
    // An operator-provisioned AuthorizationKey is kept as given (the station already has it).
    let provisioned = "factory-key-0123456789";
    let (status, created) = s
        .call(
            "POST",
            "/charge-stations",
            k,
            Some(json!({"id": fresh(), "name": "s", "connectors": one, "ocpp_password": provisioned})),
        )
        .await?;
    ensure!(
        status == StatusCode::CREATED && created["ocpp"]["password"] == provisioned,
        "provisioned key: {status} {created}"
    );
    ensure!(
        created["security_profile"] == 1,
        "profile 1 (Basic auth) by default: {created}"
    );
    // Security profile 3 (client certificate) is kept and shown on the station.
    let mtls = fresh();
    let (status, created) = s
        .call(
            "POST",
            "/charge-stations",
            k,
            Some(json!({"id": mtls, "name": "s", "connectors": one, "security_profile": 3})),
        )
        .await?;
    ensure!(
        status == StatusCode::CREATED && created["security_profile"] == 3,
        "profile 3: {status} {created}"
    );
    let (_, stations) = s.call("GET", "/charge-stations", k, None).await?;
    let listed = stations["data"]
        .as_array()
        .and_then(|d| d.iter().find(|st| st["_id"] == mtls.as_str()))
        .context("the profile-3 station is listed")?;
    ensure!(listed["security_profile"] == 3, "{listed}");

    let not_http = s
        .call(
            "POST",
            "/webhook-endpoints",
            k,
            Some(json!({"url": "ftp://example.com/x"})),
        )
        .await?;
    error(
        &not_http,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("url"),
    )?;
    let bad_event = s
        .call(
            "POST",
            "/webhook-endpoints",
            k,
            Some(json!({"url": "https://example.com/x", "events": ["session.exploded"]})),
        )
        .await?;
    error(
        &bad_event,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("events"),
    )?;
    ensure!(
        bad_event.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("session.payment.captured")),
        "lists the known types: {}",
        bad_event.1
    );
    let no_user_fields = s
        .call("POST", "/users", k, Some(json!({"name": "x", "age": 3})))
        .await?;
    error(
        &no_user_fields,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        Some("age"),
    )?;
    let bad_json = s
        .http
        .post(format!("{}/rates", s.api))
        .bearer_auth(&o.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    let status = bad_json.status();
    let v: Value = bad_json.json().await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && v["error"]["code"] == "invalid_request",
        "{status} {v}"
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let Some(tokio) = chargelink_tests::harness::runtime() else {
        return std::process::ExitCode::FAILURE;
    };
    let result = tokio.block_on(async move {
        let server = DevServer::start().await?;
        let client = connect(&server.url).await?;
        let db = std::env::temp_dir().join(format!("chargelink-admin-{}.db", random_body()));
        let store = store::Store::open(&format!("sqlite://{}?mode=rwc", db.display())).await?;
        let sessions = SessionClient::new(client, format!("admin-{}", random_body()));
        let serve = |admin_token: Option<String>| {
            let state = api::AppState {
                store: store.clone(),
                sessions: sessions.clone(),
                config: api::ApiConfig {
                    public_rate_limit: api::limits::RateLimiter::public(),
                    rate_limit: Default::default(),
                    receipts: Default::default(),
                    admin_token,
                    timings: Default::default(),
                    default_max_power_w: None,
                },
            };
            async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let url = format!("http://{}", listener.local_addr()?);
                tokio::spawn(api::serve(listener, state, std::future::pending()));
                Ok::<_, anyhow::Error>(url)
            }
        };
        let api = serve(Some(ADMIN_TOKEN.into())).await?;
        let no_admin = serve(None).await?;
        let stack = Arc::new(Stack {
            tokio: tokio::runtime::Handle::current(),
            api,
            no_admin,
            http: reqwest::Client::new(),
        });
        macro_rules! trial {
            ($name:ident) => {{
                let s = stack.clone();
                Trial::test(stringify!($name), move || s.run($name(&s)))
            }};
        }
        let trials = vec![
            trial!(the_operator_token_guards_admin),
            trial!(a_revoked_key_stops_working),
            trial!(another_organizations_resources_are_not_found),
            trial!(organization_settings_are_validated),
            trial!(rates_stations_and_endpoints_are_validated),
        ];
        let conclusion =
            tokio::task::spawn_blocking(move || libtest_mimic::run(&args, trials)).await?;
        drop(server);
        Ok::<_, anyhow::Error>(conclusion)
    });
    match result {
        Ok(conclusion) => conclusion.exit_code(),
        Err(e) => {
            eprintln!("could not run the admin API tests: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
