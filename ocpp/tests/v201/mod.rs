//! The gateway with OCPP 2.0.1 stations: a scripted 2.0.1 station over a raw WebSocket (exact
//! events: seqNo repeats, offline and out-of-order delivery), the real session workflow above.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use domain::session::{EndReason, SessionStatus};
use serde_json::{Value, json};

use crate::support::{self, METER_START_WH, Stack, cents_for, raw, usd};

/// Connects `station` with the test key, offering only `ocpp2.0.1`.
pub(crate) async fn connect(url: &str, station: &str) -> anyhow::Result<raw::Socket> {
    let req = raw::request(
        url,
        station,
        Some((station, support::KEY)),
        Some("ocpp2.0.1"),
    )?;
    let (socket, response) = tokio_tungstenite::connect_async(req).await?;
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if protocol != Some("ocpp2.0.1") {
        bail!("negotiated {protocol:?}");
    }
    Ok(socket)
}

/// The gateway's next CALL of `action` (other CALLs are answered `Accepted`); its id and
/// payload.
pub(crate) async fn next_call(
    socket: &mut raw::Socket,
    action: &str,
) -> anyhow::Result<(Value, Value)> {
    loop {
        let v = raw::recv(socket).await?;
        if v[0] != 2 {
            continue;
        }
        if v[2] == action {
            return Ok((v[1].clone(), v[3].clone()));
        }
        let reply = json!([3, v[1], {"status": "Accepted"}]);
        raw::send(socket, &reply.to_string()).await?;
    }
}

/// Answers the gateway's CALL `id` with `payload`.
pub(crate) async fn reply(
    socket: &mut raw::Socket,
    id: &Value,
    payload: Value,
) -> anyhow::Result<()> {
    raw::send(socket, &json!([3, id, payload]).to_string()).await
}

/// Boots as a 2.0.1 station: BootNotification, then the metering variables the gateway sets
/// (answered Accepted; returned), then every EVSE Available.
pub(crate) async fn boot(socket: &mut raw::Socket, evses: &[u32]) -> anyhow::Result<Value> {
    let answer = raw::call(
        socket,
        "boot",
        "BootNotification",
        json!({"chargingStation": {"model": "M-201", "vendorName": "Scripted"},
               "reason": "PowerUp"}),
    )
    .await?;
    ensure!(answer[2]["status"] == "Accepted", "{answer}");
    let (id, set) = next_call(socket, "SetVariables").await?;
    let results: Vec<Value> = set["setVariableData"]
        .as_array()
        .context("setVariableData")?
        .iter()
        .map(|d| {
            json!({"attributeStatus": "Accepted", "component": d["component"],
                   "variable": d["variable"]})
        })
        .collect();
    reply(socket, &id, json!({"setVariableResult": results})).await?;
    for &evse in evses {
        let status = json!({"timestamp": Utc::now(), "connectorStatus": "Available",
                            "evseId": evse, "connectorId": 1});
        let a = raw::call(socket, &format!("st{evse}"), "StatusNotification", status).await?;
        ensure!(a[0] == 3, "{a}");
    }
    Ok(set)
}

/// A 2.0.1 station `station` connected, booted with EVSE 1 Available, and located by the
/// gateway's registry (commands can reach it).
async fn ready(stack: &Stack, station: &str) -> anyhow::Result<raw::Socket> {
    let mut ws = connect(&stack.url(), station).await?;
    boot(&mut ws, &[1]).await?;
    stack.await_located(station).await?;
    Ok(ws)
}

/// A TransactionEvent payload. `register` is the energy register (Wh) at `at`, with the
/// power when charging.
pub(crate) fn event(
    kind: &str,
    seq_no: i64,
    tx: &str,
    at: DateTime<Utc>,
    register: Option<i64>,
    extra: Value,
) -> Value {
    let mut e = json!({
        "eventType": kind,
        "timestamp": at,
        "triggerReason": match kind { "Started" => "RemoteStart", "Ended" => "RemoteStop",
                                      _ => "MeterValuePeriodic" },
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tx},
    });
    if let Some(wh) = register {
        let context = match kind {
            "Started" => "Transaction.Begin",
            "Ended" => "Transaction.End",
            _ => "Sample.Periodic",
        };
        e["meterValue"] = json!([{"timestamp": at, "sampledValue": [
            {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register",
             "unitOfMeasure": {"unit": "Wh"}},
            {"value": 7.2, "context": context, "measurand": "Power.Active.Import",
             "unitOfMeasure": {"unit": "kW"}}
        ]}]);
    }
    if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if k == "transactionInfo" {
                if let (Some(info), Some(more)) = (
                    e.get_mut("transactionInfo").and_then(Value::as_object_mut),
                    v.as_object(),
                ) {
                    info.extend(more.clone());
                }
            } else {
                e.insert(k.clone(), v.clone());
            }
        }
    }
    e
}

/// Sends a TransactionEvent and returns its answer's payload (a CALLERROR fails).
pub(crate) async fn send_event(
    socket: &mut raw::Socket,
    id: &str,
    e: Value,
) -> anyhow::Result<Value> {
    let a = raw::call(socket, id, "TransactionEvent", e).await?;
    ensure!(a[0] == 3, "TransactionEvent {id} answered {a}");
    Ok(a[2].clone())
}

/// A paid session on `station` EVSE 1, started by the scripted station with transaction `tx`
/// at register [`METER_START_WH`]; returns the session, the RequestStartTransaction payload and
/// the start time.
pub(crate) async fn started(
    stack: &Stack,
    socket: &mut raw::Socket,
    station: &str,
    tx: &str,
) -> anyhow::Result<(workflows::SessionInput, Value, DateTime<Utc>)> {
    let input = stack.input(station)?;
    stack.start_paid(&input).await?;
    let (id, request) = next_call(socket, "RequestStartTransaction").await?;
    reply(socket, &id, json!({"status": "Accepted"})).await?;
    let t0 = Utc::now();
    let answer = send_event(
        socket,
        "e0",
        event(
            "Started",
            0,
            tx,
            t0,
            Some(METER_START_WH),
            json!({"idToken": request["idToken"], "evse": {"id": 1, "connectorId": 1},
                   "transactionInfo": {"chargingState": "Charging",
                                       "remoteStartId": request["remoteStartId"]}}),
        ),
    )
    .await?;
    ensure!(answer["idTokenInfo"]["status"] == "Accepted", "{answer}");
    stack.await_status(&input, SessionStatus::Started).await?;
    Ok((input, request, t0))
}

/// Stops the session through the API, accepts the gateway's RequestStopTransaction (returned)
/// and ends transaction `tx` with event `seq_no` at `at` with `register` (and `extra`).
async fn stop_and_end(
    stack: &Stack,
    socket: &mut raw::Socket,
    input: &workflows::SessionInput,
    (tx, seq_no): (&str, i64),
    at: DateTime<Utc>,
    register: i64,
    extra: Value,
) -> anyhow::Result<Value> {
    stack.sessions.stop(&input.session_id).await?;
    let (id, request) = next_call(socket, "RequestStopTransaction").await?;
    reply(socket, &id, json!({"status": "Accepted"})).await?;
    let ended = event("Ended", seq_no, tx, at, Some(register), extra);
    send_event(socket, &format!("e{seq_no}"), ended).await?;
    Ok(request)
}

/// The payload of the session's first signal `name`.
fn first_signal<'a>(signals: &'a [(String, Value)], name: &str) -> anyhow::Result<&'a Value> {
    signals
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .with_context(|| format!("no {name} signal"))
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// The registers of every meter_values signal of the session.
async fn signalled_registers(
    stack: &Stack,
    input: &workflows::SessionInput,
) -> anyhow::Result<Vec<i64>> {
    Ok(stack
        .signals(input)
        .await?
        .iter()
        .filter(|(n, _)| n == "meter_values")
        .flat_map(|(_, v)| {
            v["samples"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| s["energy_wh"].as_i64())
        })
        .collect())
}

/// Waits until the session's live cost is `cents`.
async fn await_cost(
    stack: &Stack,
    input: &workflows::SessionInput,
    cents: i64,
) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..50 {
        let s = stack.sessions.session(&input.session_id).await?;
        if s.cost.amount == Some(cents) {
            return Ok(());
        }
        last = s.cost.amount;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("live cost {last:?}, expected {cents}")
}

pub(crate) async fn v201_remote_start_meter_values_and_remote_stop(
    stack: Arc<Stack>,
) -> anyhow::Result<()> {
    // Arrange: a 2.0.1 station, booted; the gateway sets its metering.
    let mut ws = connect(&stack.url(), "CP3").await?;
    let set = boot(&mut ws, &[1]).await?;
    let vars: Vec<(Value, Value)> = set["setVariableData"]
        .as_array()
        .context("setVariableData")?
        .iter()
        .map(|d| (d["variable"]["name"].clone(), d["attributeValue"].clone()))
        .collect();
    ensure!(
        vars.contains(&(json!("TxUpdatedInterval"), json!("1")))
            && vars.contains(&(json!("TxUpdatedMeasurands"), json!(ocpp::SAMPLED_DATA))),
        "{vars:?}"
    );
    stack.await_located("CP3").await?;

    // Act: pay; the station starts with its own transaction id and sends readings.
    let (input, request, t0) = started(&stack, &mut ws, "CP3", "tx-201-a").await?;
    ensure!(request["evseId"] == 1, "{request}");
    ensure!(
        request["idToken"]["idToken"]
            == domain::ids::IdTag::for_session(&input.session_id).as_str()
            && request["idToken"]["type"] == "Central",
        "{request}"
    );
    for (seq, register) in [(1, METER_START_WH + 100), (2, METER_START_WH + 200)] {
        let e = event(
            "Updated",
            seq,
            "tx-201-a",
            t0 + secs(seq),
            Some(register),
            json!({}),
        );
        send_event(&mut ws, &format!("e{seq}"), e).await?;
    }
    await_cost(&stack, &input, cents_for(200)).await?;
    let ended = json!({"transactionInfo": {"stoppedReason": "Remote",
                                          "chargingState": "EVConnected"}});
    let register = METER_START_WH + 300;
    let tx = ("tx-201-a", 3);
    let stop = stop_and_end(&stack, &mut ws, &input, tx, t0 + secs(3), register, ended).await?;
    let outcome = stack.outcome(&input).await?;

    // Assert: the station's transaction id came back in the stop; billed from its register.
    ensure!(stop["transactionId"] == "tx-201-a", "{stop}");
    ensure!(outcome.status == SessionStatus::Ended, "{outcome:?}");
    ensure!(
        outcome.end_reason == Some(EndReason::StoppedByApi),
        "{outcome:?}"
    );
    ensure!(outcome.captured == Some(usd(cents_for(300))), "{outcome:?}");
    let signals = stack.signals(&input).await?;
    let stopped = first_signal(&signals, "charging_stopped")?;
    ensure!(
        stopped["reason"] == "Remote" && stopped["meter_stop_wh"] == METER_START_WH + 300,
        "{stopped}"
    );
    let started = first_signal(&signals, "charging_started")?;
    let recorded = stack
        .registry
        .station_transaction(&"CP3".parse()?, "tx-201-a")
        .await?
        .context("transaction not in the registry")?;
    ensure!(
        started["transaction_id"] == recorded.id && started["meter_start_wh"] == METER_START_WH,
        "{started} vs {recorded:?}"
    );
    Ok(())
}

pub(crate) async fn v201_a_repeated_seq_no_is_acknowledged_and_ignored(
    stack: Arc<Stack>,
) -> anyhow::Result<()> {
    // Arrange
    let mut ws = ready(&stack, "CP3").await?;
    let (input, _, t0) = started(&stack, &mut ws, "CP3", "tx-201-dup").await?;
    let first = event(
        "Updated",
        1,
        "tx-201-dup",
        t0 + secs(1),
        Some(1_100),
        json!({}),
    );
    send_event(&mut ws, "e1", first).await?;

    // Act: seqNo 1 again, with readings that would count if it were acted on.
    let repeat = event(
        "Updated",
        1,
        "tx-201-dup",
        t0 + secs(5),
        Some(9_999),
        json!({}),
    );
    let answer = send_event(&mut ws, "e1-again", repeat).await?;
    let next = event(
        "Updated",
        2,
        "tx-201-dup",
        t0 + secs(2),
        Some(1_200),
        json!({}),
    );
    send_event(&mut ws, "e2", next).await?;
    await_cost(&stack, &input, cents_for(200)).await?;

    // Assert: acknowledged (an empty answer, no CALLERROR), never reached the session.
    ensure!(answer == json!({}), "{answer}");
    let registers = signalled_registers(&stack, &input).await?;
    ensure!(
        registers.contains(&1_200) && !registers.contains(&9_999),
        "{registers:?}"
    );
    let tx = ("tx-201-dup", 3);
    stop_and_end(&stack, &mut ws, &input, tx, t0 + secs(3), 1_200, json!({})).await?;
    let outcome = stack.outcome(&input).await?;
    ensure!(outcome.captured == Some(usd(cents_for(200))), "{outcome:?}");
    Ok(())
}

pub(crate) async fn v201_offline_events_out_of_order_and_the_end_honoured_once(
    stack: Arc<Stack>,
) -> anyhow::Result<()> {
    // Arrange: a running session.
    let mut ws = ready(&stack, "CP3").await?;
    let (input, _, t0) = started(&stack, &mut ws, "CP3", "tx-201-off").await?;
    let offline = json!({"offline": true});

    // Act: the station was offline; its queue arrives late, the newer reading first.
    let newer = event(
        "Updated",
        2,
        "tx-201-off",
        t0 + secs(20),
        Some(1_400),
        offline.clone(),
    );
    send_event(&mut ws, "e2", newer).await?;
    await_cost(&stack, &input, cents_for(400)).await?;
    let older = event(
        "Updated",
        1,
        "tx-201-off",
        t0 + secs(10),
        Some(1_200),
        offline.clone(),
    );
    send_event(&mut ws, "e1", older).await?;
    // The session prices samples by station time: the older reading arriving last does not
    // take the register back (LiveCost::record_meter keeps them ordered by timestamp).
    let mut delivered = false;
    for _ in 0..50 {
        if signalled_registers(&stack, &input).await?.contains(&1_200) {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(delivered, "the older reading never reached the session");
    let live = stack.sessions.session(&input.session_id).await?;
    ensure!(live.cost.amount == Some(cents_for(400)), "{:?}", live.cost);

    // Two Ended events (the station sent its end twice, with new numbers): the first counts.
    let end = json!({"offline": true, "transactionInfo": {"stoppedReason": "EVDisconnected"}});
    let ended = event(
        "Ended",
        3,
        "tx-201-off",
        t0 + secs(30),
        Some(1_600),
        end.clone(),
    );
    send_event(&mut ws, "e3", ended).await?;
    let again = event("Ended", 4, "tx-201-off", t0 + secs(40), Some(1_900), end);
    send_event(&mut ws, "e4", again).await?;
    let outcome = stack.outcome(&input).await?;

    // Assert: one stop, at the first end's register and time.
    ensure!(outcome.status == SessionStatus::Ended, "{outcome:?}");
    ensure!(outcome.captured == Some(usd(cents_for(600))), "{outcome:?}");
    let recorded = stack
        .registry
        .station_transaction(&"CP3".parse()?, "tx-201-off")
        .await?
        .context("not recorded")?;
    let stop = recorded.stop.context("no stop recorded")?;
    ensure!(
        stop.meter_stop == 1_600 && stop.reason.as_deref() == Some("EVDisconnected"),
        "{stop:?}"
    );
    let signals = stack.signals(&input).await?;
    for (_, s) in signals.iter().filter(|(n, _)| n == "charging_stopped") {
        ensure!(s["meter_stop_wh"] == 1_600, "{s}");
    }
    Ok(())
}

pub(crate) async fn v201_unknown_and_unsupported_actions_get_the_right_callerror(
    stack: Arc<Stack>,
) -> anyhow::Result<()> {
    let mut ws = connect(&stack.url(), "CP4").await?;
    boot(&mut ws, &[1]).await?;
    let unknown = raw::call(&mut ws, "u1", "FlyToTheMoon", json!({})).await?;
    ensure!(
        unknown[0] == 4 && unknown[2] == "NotImplemented",
        "{unknown}"
    );
    let unsupported = raw::call(&mut ws, "u2", "SignCertificate", json!({"csr": "x"})).await?;
    ensure!(
        unsupported[0] == 4 && unsupported[2] == "NotSupported",
        "{unsupported}"
    );
    let acknowledged = raw::call(
        &mut ws,
        "u3",
        "NotifyEvent",
        json!({"generatedAt": Utc::now(), "seqNo": 0, "eventData": [
            {"eventId": 1, "timestamp": Utc::now(), "trigger": "Alerting", "actualValue": "1",
             "eventNotificationType": "HardWiredNotification",
             "component": {"name": "ChargingStation"}, "variable": {"name": "Problem"}}]}),
    )
    .await?;
    ensure!(acknowledged == json!([3, "u3", {}]), "{acknowledged}");
    // A 2.0.1 station is answered with 2.0.1's spelling of the error codes.
    let broken = raw::send_raw(&mut ws, r#"[2, "u4", "Heartbeat"]"#, "u4").await?;
    ensure!(broken[0] == 4 && broken[2] == "FormatViolation", "{broken}");
    // And the connection stays up.
    let beat = raw::call(&mut ws, "u5", "Heartbeat", json!({})).await?;
    ensure!(beat[0] == 3 && beat[2]["currentTime"].is_string(), "{beat}");
    Ok(())
}

pub(crate) async fn v201_a_token_after_the_start_binds_at_the_next_register(
    stack: Arc<Stack>,
) -> anyhow::Result<()> {
    // Arrange: the driver plugged in before paying: the station started a transaction
    // without a token (TxStartPoint EVConnected).
    let mut ws = ready(&stack, "CP5").await?;
    let t0 = Utc::now();
    let plugged = event(
        "Started",
        0,
        "tx-201-cable",
        t0,
        Some(1_000),
        json!({"triggerReason": "CablePluggedIn", "evse": {"id": 1, "connectorId": 1},
               "transactionInfo": {"chargingState": "EVConnected"}}),
    );
    let answer = send_event(&mut ws, "e0", plugged).await?;
    ensure!(answer == json!({}), "no token, no verdict: {answer}");
    let input = stack.input("CP5")?;
    stack.start_paid(&input).await?;
    let (id, request) = next_call(&mut ws, "RequestStartTransaction").await?;
    reply(
        &mut ws,
        &id,
        json!({"status": "Accepted", "transactionId": "tx-201-cable"}),
    )
    .await?;

    // Act: the token comes without a register, then a reading, more energy, the end.
    let authorized = event(
        "Updated",
        1,
        "tx-201-cable",
        t0 + secs(1),
        None,
        json!({"triggerReason": "RemoteStart", "idToken": request["idToken"],
               "transactionInfo": {"remoteStartId": request["remoteStartId"]}}),
    );
    let answer = send_event(&mut ws, "e1", authorized).await?;
    let before_register = stack.sessions.session(&input.session_id).await?;
    let first = event(
        "Updated",
        2,
        "tx-201-cable",
        t0 + secs(2),
        Some(1_050),
        json!({}),
    );
    send_event(&mut ws, "e2", first).await?;
    stack.await_status(&input, SessionStatus::Started).await?;
    let more = event(
        "Updated",
        3,
        "tx-201-cable",
        t0 + secs(3),
        Some(1_150),
        json!({}),
    );
    send_event(&mut ws, "e3", more).await?;
    await_cost(&stack, &input, cents_for(100)).await?;
    let tx = ("tx-201-cable", 4);
    stop_and_end(&stack, &mut ws, &input, tx, t0 + secs(4), 1_250, json!({})).await?;
    let outcome = stack.outcome(&input).await?;

    // Assert: the token was accepted at once; the session started at the first register after
    // it, and paid for what flowed from there.
    ensure!(answer["idTokenInfo"]["status"] == "Accepted", "{answer}");
    ensure!(
        before_register.status != SessionStatus::Started,
        "started before a register was known: {:?}",
        before_register.status
    );
    let signals = stack.signals(&input).await?;
    let started = first_signal(&signals, "charging_started")?;
    ensure!(started["meter_start_wh"] == 1_050, "{started}");
    ensure!(outcome.captured == Some(usd(cents_for(200))), "{outcome:?}");
    Ok(())
}

pub(crate) async fn v201_a_start_for_a_finished_session_is_stopped_again(
    stack: Arc<Stack>,
) -> anyhow::Result<()> {
    // Arrange: a station that refuses the remote start, then starts only after the session
    // gave up.
    let mut ws = ready(&stack, "CP4").await?;
    let input = stack.input("CP4")?;
    stack.start_paid(&input).await?;
    let (id, request) = next_call(&mut ws, "RequestStartTransaction").await?;
    reply(&mut ws, &id, json!({"status": "Rejected"})).await?;
    let refusing = async {
        loop {
            let v = raw::recv(&mut ws).await?;
            if v[0] == 2 {
                reply(&mut ws, &v[1], json!({"status": "Rejected"})).await?;
            }
        }
        #[allow(unreachable_code)]
        Ok::<_, anyhow::Error>(())
    };
    let outcome = tokio::select! {
        o = stack.outcome(&input) => o?,
        r = refusing => { r?; bail!("socket ended") }
    };
    ensure!(outcome.status == SessionStatus::Canceled, "{outcome:?}");

    // Act: the late start, with the session's token.
    let late = event(
        "Started",
        0,
        "tx-201-late",
        Utc::now(),
        Some(1_000),
        json!({"idToken": request["idToken"], "evse": {"id": 1, "connectorId": 1}}),
    );
    let answer = send_event(&mut ws, "late", late).await?;
    let (_, stop) = next_call(&mut ws, "RequestStopTransaction").await?;

    // Assert: answered (the token is still pending), then stopped by the station's own id.
    ensure!(answer["idTokenInfo"]["status"] == "Accepted", "{answer}");
    ensure!(stop["transactionId"] == "tx-201-late", "{stop}");
    Ok(())
}
