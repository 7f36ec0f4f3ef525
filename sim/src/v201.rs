//! The simulator's OCPP 2.0.1 wire: the station's state machine speaks in OCPP 1.6 terms
//! (one transaction per connector, StartTransaction, MeterValues, StopTransaction), and this
//! adapter turns what it sends into 2.0.1 messages (TransactionEvent Started / Updated / Ended
//! with the station's own transaction id and a `seqNo`) and what the CSMS sends into the 1.6
//! calls the state machine handles, so both versions behave the same.
//!
//! Messages are translated when they are queued, not when they are sent: a message sent again
//! after a lost answer is then the very same event (same `seqNo`), as a real station repeats it.

use std::collections::HashMap;

use ocpp::frame::{CallError, ErrorCode};
use ocpp::protocol::Action;
use ocpp::{v16, v201};
use serde_json::{Value, json};

/// A 1.6 CALL the state machine handles, translated from a 2.0.1 one.
pub(crate) struct Translated {
    /// The 1.6 action.
    pub(crate) action: &'static str,
    /// Its payload.
    pub(crate) payload: Value,
}

/// The 2.0.1 side of one simulated station.
#[derive(Debug, Default)]
pub(crate) struct Wire201 {
    /// The station's transaction ids by the 1.6-style number the state machine uses.
    transactions: HashMap<i32, String>,
    /// The next event number of each transaction.
    seq_no: HashMap<i32, i64>,
    /// The next transaction number.
    next_transaction: i32,
    /// Per connector: the number given to its transaction at start (the answer to the Started
    /// event carries no id, the state machine expects one), and the `remoteStartId`.
    starting: HashMap<u32, i32>,
    remote_start_ids: HashMap<u32, i32>,
    /// A connector whose transaction runs: its statuses are charging states.
    running: HashMap<u32, i32>,
    station: String,
}

fn idtoken(tag: &Value) -> Value {
    json!({"idToken": tag, "type": v201::types::CENTRAL})
}

/// 1.6 sampled values (numbers as text) as 2.0.1 ones (numbers, unit of measure).
fn meter_values(values: &Value, context: Option<&str>) -> Value {
    let converted: Vec<Value> = values
        .as_array()
        .into_iter()
        .flatten()
        .map(|mv| {
            let sampled: Vec<Value> = mv["sampledValue"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|sv| {
                    let mut out = json!({
                        "value": sv["value"].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
                        "measurand": sv["measurand"],
                        "unitOfMeasure": {"unit": sv["unit"]},
                    });
                    let context = context.map(Value::from).unwrap_or(sv["context"].clone());
                    if !context.is_null() {
                        out["context"] = context;
                    }
                    if !sv["location"].is_null() {
                        out["location"] = sv["location"].clone();
                    }
                    out
                })
                .collect();
            json!({"timestamp": mv["timestamp"], "sampledValue": sampled})
        })
        .collect();
    Value::from(converted)
}

fn register_value(wh: &Value, at: &Value, context: &str) -> Value {
    json!([{"timestamp": at, "sampledValue": [{
        "value": wh.as_f64().unwrap_or(0.0),
        "context": context,
        "measurand": ocpp::v16::types::ENERGY_REGISTER,
        "unitOfMeasure": {"unit": "Wh"},
    }]}])
}

/// 1.6 stop reason → 2.0.1 trigger reason (the stop reasons share their names).
fn stop_trigger(reason: &str) -> &'static str {
    match reason {
        "Remote" => "RemoteStop",
        "EVDisconnected" => "EVDeparted",
        "PowerLoss" | "Reboot" => "AbnormalCondition",
        "DeAuthorized" => "Deauthorized",
        _ => "StopAuthorized",
    }
}

fn status_201(status: &str) -> &'static str {
    match status {
        "Available" => "Available",
        "Faulted" => "Faulted",
        "Unavailable" => "Unavailable",
        "Reserved" => "Reserved",
        // Preparing, Charging, Suspended*, Finishing: something is plugged in.
        _ => "Occupied",
    }
}

fn bad(description: impl Into<String>) -> CallError {
    CallError::new("", ErrorCode::PropertyConstraintViolation, description)
}

impl Wire201 {
    /// The adapter of station `station`.
    pub(crate) fn new(station: &str) -> Self {
        Self {
            next_transaction: 1,
            station: station.to_owned(),
            ..Self::default()
        }
    }

    fn next_seq(&mut self, tx: i32) -> i64 {
        let seq = self.seq_no.entry(tx).or_insert(0);
        let n = *seq;
        *seq += 1;
        n
    }

    fn station_id(&self, tx: i32) -> String {
        self.transactions
            .get(&tx)
            .cloned()
            .unwrap_or_else(|| format!("{}-unknown-{tx}", self.station))
    }

    /// The 2.0.1 message for a 1.6 one the state machine queues (`offline`: queued while the
    /// connection is down); `None` for one 2.0.1 has no counterpart of.
    pub(crate) fn outgoing(
        &mut self,
        action: &str,
        p: &Value,
        offline: bool,
    ) -> Option<(&'static str, Value)> {
        let offline_flag = |mut e: Value| {
            if offline {
                e["offline"] = json!(true);
            }
            e
        };
        match action {
            v16::BootNotification::NAME => Some((
                v201::BootNotification::NAME,
                json!({"chargingStation": {"model": p["chargePointModel"],
                                           "vendorName": p["chargePointVendor"]},
                       "reason": "PowerUp"}),
            )),
            v16::Heartbeat::NAME => Some((v201::Heartbeat::NAME, json!({}))),
            v16::Authorize::NAME => Some((
                v201::Authorize::NAME,
                json!({"idToken": idtoken(&p["idTag"])}),
            )),
            v16::StatusNotification::NAME => {
                let connector = u32::try_from(p["connectorId"].as_u64()?).ok()?;
                // 2.0.1 reports EVSEs, not the station as connector 0.
                if connector == 0 {
                    return None;
                }
                let status = p["status"].as_str().unwrap_or("Available");
                let charging_state = match status {
                    "Charging" => Some("Charging"),
                    "SuspendedEV" => Some("SuspendedEV"),
                    "SuspendedEVSE" => Some("SuspendedEVSE"),
                    _ => None,
                };
                match (self.running.get(&connector).copied(), charging_state) {
                    // While a transaction runs, whether energy flows is its charging state.
                    (Some(tx), Some(state)) => {
                        let seq = self.next_seq(tx);
                        Some((
                            v201::TransactionEvent::NAME,
                            offline_flag(json!({
                                "eventType": "Updated",
                                "timestamp": p["timestamp"],
                                "triggerReason": "ChargingStateChanged",
                                "seqNo": seq,
                                "transactionInfo": {"transactionId": self.station_id(tx),
                                                    "chargingState": state},
                            })),
                        ))
                    }
                    _ => Some((
                        v201::StatusNotification::NAME,
                        json!({"timestamp": p["timestamp"], "connectorStatus": status_201(status),
                               "evseId": connector, "connectorId": 1}),
                    )),
                }
            }
            v16::StartTransaction::NAME => {
                let connector = u32::try_from(p["connectorId"].as_u64()?).ok()?;
                let tx = self.next_transaction;
                self.next_transaction += 1;
                let id = format!("{}-{tx}", self.station);
                self.transactions.insert(tx, id.clone());
                self.starting.insert(connector, tx);
                self.running.insert(connector, tx);
                let seq = self.next_seq(tx);
                let mut info = json!({"transactionId": id, "chargingState": "EVConnected"});
                if let Some(remote) = self.remote_start_ids.remove(&connector) {
                    info["remoteStartId"] = json!(remote);
                }
                Some((
                    v201::TransactionEvent::NAME,
                    offline_flag(json!({
                        "eventType": "Started",
                        "timestamp": p["timestamp"],
                        "triggerReason": "RemoteStart",
                        "seqNo": seq,
                        "transactionInfo": info,
                        "idToken": idtoken(&p["idTag"]),
                        "evse": {"id": connector, "connectorId": 1},
                        "meterValue": register_value(&p["meterStart"], &p["timestamp"], "Transaction.Begin"),
                    })),
                ))
            }
            v16::MeterValues::NAME => {
                let tx = i32::try_from(p["transactionId"].as_i64()?).ok()?;
                let seq = self.next_seq(tx);
                let trigger = if p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger" {
                    "Trigger"
                } else {
                    "MeterValuePeriodic"
                };
                Some((
                    v201::TransactionEvent::NAME,
                    offline_flag(json!({
                        "eventType": "Updated",
                        "timestamp": p["meterValue"][0]["timestamp"],
                        "triggerReason": trigger,
                        "seqNo": seq,
                        "transactionInfo": {"transactionId": self.station_id(tx)},
                        "meterValue": meter_values(&p["meterValue"], None),
                    })),
                ))
            }
            v16::StopTransaction::NAME => {
                let tx = i32::try_from(p["transactionId"].as_i64()?).ok()?;
                self.running.retain(|_, t| *t != tx);
                let seq = self.next_seq(tx);
                let reason = p["reason"].as_str().unwrap_or("Local");
                Some((
                    v201::TransactionEvent::NAME,
                    offline_flag(json!({
                        "eventType": "Ended",
                        "timestamp": p["timestamp"],
                        "triggerReason": stop_trigger(reason),
                        "seqNo": seq,
                        "transactionInfo": {"transactionId": self.station_id(tx),
                                            "stoppedReason": reason},
                        "meterValue": register_value(&p["meterStop"], &p["timestamp"], "Transaction.End"),
                    })),
                ))
            }
            _ => None,
        }
    }

    /// The 1.6 answer the state machine expects for `action` (its 1.6 name) from the 2.0.1
    /// answer `p`.
    pub(crate) fn answer(&mut self, action: &str, p: Value, connector: Option<u32>) -> Value {
        match action {
            v16::Authorize::NAME => json!({"idTagInfo": p["idTokenInfo"]}),
            v16::StartTransaction::NAME => {
                let tx = connector
                    .and_then(|c| self.starting.remove(&c))
                    .unwrap_or_default();
                let status = match &p["idTokenInfo"]["status"] {
                    Value::Null => json!("Accepted"),
                    Value::String(s) if s == "Accepted" => json!("Accepted"),
                    _ => json!("Invalid"),
                };
                json!({"transactionId": tx, "idTagInfo": {"status": status}})
            }
            _ => p,
        }
    }

    /// The 1.6 CALLs the state machine handles for a 2.0.1 CALL (several for SetVariables),
    /// and how to build the 2.0.1 answer from their answers.
    pub(crate) fn incoming(
        &mut self,
        action: &str,
        p: &Value,
    ) -> Result<(Vec<Translated>, Reply), CallError> {
        let one = |action, payload| Ok((vec![Translated { action, payload }], Reply::Status));
        match action {
            v201::RequestStartTransaction::NAME => {
                let evse = p["evseId"].as_u64().unwrap_or(1);
                let connector = u32::try_from(evse).map_err(|_| bad("evseId"))?;
                if let Some(id) = p["remoteStartId"].as_i64() {
                    self.remote_start_ids
                        .insert(connector, i32::try_from(id).unwrap_or_default());
                }
                one(
                    v16::RemoteStartTransaction::NAME,
                    json!({"connectorId": connector, "idTag": p["idToken"]["idToken"]}),
                )
            }
            v201::RequestStopTransaction::NAME => {
                let id = p["transactionId"]
                    .as_str()
                    .ok_or_else(|| bad("transactionId"))?;
                let tx = self
                    .transactions
                    .iter()
                    .find(|(_, s)| s.as_str() == id)
                    .map_or(-1, |(n, _)| *n);
                one(
                    v16::RemoteStopTransaction::NAME,
                    json!({"transactionId": tx}),
                )
            }
            v201::SetChargingProfile::NAME => {
                let profile = &p["chargingProfile"];
                let tx = profile["transactionId"].as_str().and_then(|id| {
                    self.transactions
                        .iter()
                        .find(|(_, s)| s.as_str() == id)
                        .map(|(n, _)| *n)
                });
                let purpose = match profile["chargingProfilePurpose"].as_str() {
                    Some("ChargingStationMaxProfile") => "ChargePointMaxProfile",
                    Some(other) => other,
                    None => "TxProfile",
                };
                let schedule = &profile["chargingSchedule"][0];
                let mut cs = json!({
                    "chargingProfileId": profile["id"],
                    "stackLevel": profile["stackLevel"],
                    "chargingProfilePurpose": purpose,
                    "chargingProfileKind": profile["chargingProfileKind"],
                    "chargingSchedule": {
                        "chargingRateUnit": schedule["chargingRateUnit"],
                        "chargingSchedulePeriod": schedule["chargingSchedulePeriod"],
                    },
                });
                if let Some(tx) = tx {
                    cs["transactionId"] = json!(tx);
                }
                Ok((
                    vec![Translated {
                        action: v16::SetChargingProfile::NAME,
                        payload: json!({"connectorId": p["evseId"], "csChargingProfiles": cs}),
                    }],
                    Reply::ProfileStatus,
                ))
            }
            v201::ClearChargingProfile::NAME => one(
                v16::ClearChargingProfile::NAME,
                json!({"id": p["chargingProfileId"]}),
            ),
            v201::TriggerMessage::NAME => {
                let requested = match p["requestedMessage"].as_str() {
                    Some("TransactionEvent" | "MeterValues") => "MeterValues",
                    Some("StatusNotification") => "StatusNotification",
                    Some("Heartbeat") => "Heartbeat",
                    Some("BootNotification") => "BootNotification",
                    _ => return Ok((Vec::new(), Reply::NotImplemented)),
                };
                let mut trigger = json!({"requestedMessage": requested});
                if let Some(evse) = p["evse"]["id"].as_u64() {
                    trigger["connectorId"] = json!(evse);
                }
                one(v16::TriggerMessage::NAME, trigger)
            }
            v201::SetVariables::NAME => {
                let data = p["setVariableData"]
                    .as_array()
                    .ok_or_else(|| bad("setVariableData"))?;
                let mut calls = Vec::new();
                let mut items = Vec::new();
                for d in data {
                    let key = match (
                        d["component"]["name"].as_str(),
                        d["variable"]["name"].as_str(),
                    ) {
                        (Some("SampledDataCtrlr"), Some("TxUpdatedInterval")) => {
                            Some(v16::change_configuration::METER_VALUE_SAMPLE_INTERVAL)
                        }
                        (Some("SampledDataCtrlr"), Some("TxUpdatedMeasurands")) => {
                            Some(v16::change_configuration::METER_VALUES_SAMPLED_DATA)
                        }
                        (Some("OCPPCommCtrlr"), Some("HeartbeatInterval")) => {
                            Some("HeartbeatInterval")
                        }
                        // The simulator always sends the register at start and end.
                        (Some("SampledDataCtrlr"), Some(_)) => None,
                        _ => {
                            items.push((d.clone(), Some("UnknownVariable")));
                            continue;
                        }
                    };
                    match key {
                        Some(key) => {
                            calls.push(Translated {
                                action: v16::ChangeConfiguration::NAME,
                                payload: json!({"key": key, "value": d["attributeValue"]}),
                            });
                            items.push((d.clone(), None));
                        }
                        None => items.push((d.clone(), Some("Accepted"))),
                    }
                }
                Ok((calls, Reply::Variables(items)))
            }
            other => Err(CallError::new(
                "",
                ErrorCode::NotImplemented,
                format!("{other} is not implemented by the simulator"),
            )),
        }
    }
}

/// How to answer a translated 2.0.1 CALL from the 1.6 answers.
pub(crate) enum Reply {
    /// `{"status": ...}` as the 1.6 answer has it.
    Status,
    /// SetChargingProfile: 2.0.1 has no `NotSupported`.
    ProfileStatus,
    /// TriggerMessage of something the simulator cannot send.
    NotImplemented,
    /// SetVariables: each variable with its fixed status, or the status of the next 1.6 answer.
    Variables(Vec<(Value, Option<&'static str>)>),
}

impl Reply {
    /// The 2.0.1 answer from the 1.6 answers, in order.
    pub(crate) fn build(self, answers: Vec<Value>) -> Value {
        let first = answers.first().cloned().unwrap_or(Value::Null);
        match self {
            Reply::Status => json!({"status": first["status"]}),
            Reply::ProfileStatus => match first["status"].as_str() {
                Some("Accepted") => json!({"status": "Accepted"}),
                _ => json!({"status": "Rejected"}),
            },
            Reply::NotImplemented => json!({"status": "NotImplemented"}),
            Reply::Variables(items) => {
                let mut answers = answers.into_iter();
                let results: Vec<Value> = items
                    .into_iter()
                    .map(|(d, fixed)| {
                        let status = match fixed {
                            Some(s) => s.to_owned(),
                            None => {
                                match answers.next().as_ref().and_then(|a| a["status"].as_str()) {
                                    Some("Accepted") => "Accepted".to_owned(),
                                    _ => "Rejected".to_owned(),
                                }
                            }
                        };
                        json!({"attributeStatus": status, "component": d["component"],
                               "variable": d["variable"]})
                    })
                    .collect();
                json!({"setVariableResult": results})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_becomes_numbered_events_with_the_stations_id() {
        let mut wire = Wire201::new("CPX");
        let (calls, _) = wire
            .incoming(
                "RequestStartTransaction",
                &json!({"evseId": 2, "remoteStartId": 77,
                        "idToken": {"idToken": "TAG", "type": "Central"}}),
            )
            .unwrap();
        assert_eq!(calls[0].action, "RemoteStartTransaction");
        assert_eq!(calls[0].payload, json!({"connectorId": 2, "idTag": "TAG"}));

        let start = json!({"connectorId": 2, "idTag": "TAG", "meterStart": 1000,
                           "timestamp": "2026-01-01T10:00:00Z"});
        let (action, started) = wire.outgoing("StartTransaction", &start, false).unwrap();
        assert_eq!(action, "TransactionEvent");
        assert_eq!(started["eventType"], "Started");
        assert_eq!(started["seqNo"], 0);
        assert_eq!(started["transactionInfo"]["transactionId"], "CPX-1");
        assert_eq!(started["transactionInfo"]["remoteStartId"], 77);
        assert_eq!(started["evse"], json!({"id": 2, "connectorId": 1}));
        assert_eq!(started["meterValue"][0]["sampledValue"][0]["value"], 1000.0);
        // The answer carries no id: the state machine gets the number the adapter chose.
        let answer = wire.answer(
            "StartTransaction",
            json!({"idTokenInfo": {"status": "Accepted"}}),
            Some(2),
        );
        assert_eq!(
            answer,
            json!({"transactionId": 1, "idTagInfo": {"status": "Accepted"}})
        );

        let meter = json!({"connectorId": 2, "transactionId": 1, "meterValue": [{
            "timestamp": "2026-01-01T10:00:10Z",
            "sampledValue": [{"value": "1100", "measurand": "Energy.Active.Import.Register",
                              "unit": "Wh", "context": "Sample.Periodic"}]}]});
        let (_, updated) = wire.outgoing("MeterValues", &meter, true).unwrap();
        assert_eq!(updated["eventType"], "Updated");
        assert_eq!(updated["seqNo"], 1);
        assert_eq!(updated["offline"], true);
        assert_eq!(updated["meterValue"][0]["sampledValue"][0]["value"], 1100.0);

        let stop = wire
            .incoming("RequestStopTransaction", &json!({"transactionId": "CPX-1"}))
            .unwrap()
            .0;
        assert_eq!(stop[0].payload, json!({"transactionId": 1}));
        let end = json!({"transactionId": 1, "meterStop": 1200, "reason": "Remote",
                         "timestamp": "2026-01-01T10:00:20Z"});
        let (_, ended) = wire.outgoing("StopTransaction", &end, false).unwrap();
        assert_eq!(ended["eventType"], "Ended");
        assert_eq!(ended["seqNo"], 2);
        assert_eq!(ended["triggerReason"], "RemoteStop");
        assert_eq!(ended["transactionInfo"]["stoppedReason"], "Remote");
    }

    #[test]
    fn set_variables_become_configuration_keys_with_one_result_each() {
        let mut wire = Wire201::new("CPX");
        let data = json!({"setVariableData": [
            {"attributeValue": "5", "component": {"name": "SampledDataCtrlr"},
             "variable": {"name": "TxUpdatedInterval"}},
            {"attributeValue": "x", "component": {"name": "SampledDataCtrlr"},
             "variable": {"name": "TxEndedMeasurands"}},
            {"attributeValue": "y", "component": {"name": "Other"},
             "variable": {"name": "Thing"}}
        ]});
        let (calls, reply) = wire.incoming("SetVariables", &data).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].payload,
            json!({"key": "MeterValueSampleInterval", "value": "5"})
        );
        let answer = reply.build(vec![json!({"status": "Accepted"})]);
        let statuses: Vec<&Value> = answer["setVariableResult"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["attributeStatus"])
            .collect();
        assert_eq!(statuses, ["Accepted", "Accepted", "UnknownVariable"]);
    }

    #[test]
    fn statuses_during_a_transaction_are_charging_states() {
        let mut wire = Wire201::new("CPX");
        let station = json!({"connectorId": 0, "status": "Available", "timestamp": "t"});
        assert!(
            wire.outgoing("StatusNotification", &station, false)
                .is_none()
        );
        let start = json!({"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "t"});
        wire.outgoing("StartTransaction", &start, false).unwrap();
        let paused = json!({"connectorId": 1, "status": "SuspendedEVSE", "timestamp": "t"});
        let (action, e) = wire.outgoing("StatusNotification", &paused, false).unwrap();
        assert_eq!(action, "TransactionEvent");
        assert_eq!(e["transactionInfo"]["chargingState"], "SuspendedEVSE");
        let plugged = json!({"connectorId": 2, "status": "Preparing", "timestamp": "t"});
        let (action, s) = wire
            .outgoing("StatusNotification", &plugged, false)
            .unwrap();
        assert_eq!(action, "StatusNotification");
        assert_eq!(s["connectorStatus"], "Occupied");
    }
}
