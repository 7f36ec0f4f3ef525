//! Property tests of what a station's bytes go through before any handler: the OCPP-J frame
//! decoder and the payload decoding of every action, in both directions (CALLs a station sends,
//! CALLRESULTs it answers ours with). Whatever the input, the result is a frame or a typed
//! CALLERROR, never a panic. `PROPTEST_CASES` raises the case count further.

use ocpp::frame::{ErrorCode, Frame, MAX_MESSAGE_ID_LEN, Parsed, UNKNOWN_MESSAGE_ID, decode};
use ocpp::v16::{self, Action};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(n),
        ..ProptestConfig::default()
    }
}

/// Field names of OCPP 1.6 payloads, so generated objects reach deep into the decoders
/// instead of failing at the first unknown key.
const FIELDS: &[&str] = &[
    "connectorId",
    "idTag",
    "meterStart",
    "meterStop",
    "timestamp",
    "transactionId",
    "reservationId",
    "meterValue",
    "sampledValue",
    "value",
    "context",
    "format",
    "measurand",
    "phase",
    "location",
    "unit",
    "status",
    "errorCode",
    "info",
    "vendorId",
    "vendorErrorCode",
    "chargePointVendor",
    "chargePointModel",
    "chargePointSerialNumber",
    "firmwareVersion",
    "meterType",
    "messageId",
    "data",
    "reason",
    "transactionData",
    "idTagInfo",
    "expiryDate",
    "currentTime",
    "interval",
    "key",
    "requestedMessage",
    "chargingProfile",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        // Values the decoders accept somewhere: enum words, dates, numbers as text.
        prop::sample::select(vec![
            "Accepted",
            "Charging",
            "NoError",
            "Available",
            "Energy.Active.Import.Register",
            "Wh",
            "Raw",
            "Sample.Periodic",
            "2026-01-01T00:00:00Z",
            "2026-13-45T99:00:00Z",
            "12.5",
            "-1",
            "",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
                        1 => "[a-zA-Z]{0,12}",
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn payload() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(FIELDS).prop_map(str::to_owned),
            json_value(),
        ),
        0..8,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// The codes a payload decoding may answer with; anything else is not a payload problem.
const PAYLOAD_CODES: &[ErrorCode] = &[
    ErrorCode::ProtocolError,
    ErrorCode::TypeConstraintViolation,
    ErrorCode::FormationViolation,
    ErrorCode::PropertyConstraintViolation,
    ErrorCode::OccurenceConstraintViolation,
];

/// Decodes `payload` as the request and as the response of `A`: a value or a typed error.
fn decodes_or_refuses<A: Action>(payload: &Value) -> Result<(), TestCaseError> {
    for result in [
        decode::<A::Request>(payload.clone()).map(|_| ()),
        decode::<A::Response>(payload.clone()).map(|_| ()),
    ] {
        if let Err((code, description)) = result {
            prop_assert!(
                PAYLOAD_CODES.contains(&code),
                "{}: {code} for {payload}",
                A::NAME
            );
            prop_assert!(!description.is_empty());
        }
    }
    Ok(())
}

fn every_action(payload: &Value) -> Result<(), TestCaseError> {
    decodes_or_refuses::<v16::Authorize>(payload)?;
    decodes_or_refuses::<v16::BootNotification>(payload)?;
    decodes_or_refuses::<v16::ChangeConfiguration>(payload)?;
    decodes_or_refuses::<v16::ClearChargingProfile>(payload)?;
    decodes_or_refuses::<v16::DataTransfer>(payload)?;
    decodes_or_refuses::<v16::Heartbeat>(payload)?;
    decodes_or_refuses::<v16::MeterValues>(payload)?;
    decodes_or_refuses::<v16::RemoteStartTransaction>(payload)?;
    decodes_or_refuses::<v16::RemoteStopTransaction>(payload)?;
    decodes_or_refuses::<v16::SetChargingProfile>(payload)?;
    decodes_or_refuses::<v16::StartTransaction>(payload)?;
    decodes_or_refuses::<v16::StatusNotification>(payload)?;
    decodes_or_refuses::<v16::StopTransaction>(payload)?;
    decodes_or_refuses::<v16::TriggerMessage>(payload)?;
    Ok(())
}

/// A rejected text's CALLERROR: a FormationViolation, echoing only a real message id.
fn check_parse(text: &str) -> Result<(), TestCaseError> {
    match Frame::parse(text) {
        Parsed::Reject(e) => {
            prop_assert_eq!(e.code, ErrorCode::FormationViolation);
            prop_assert!(!e.description.is_empty());
            prop_assert!(
                e.id == UNKNOWN_MESSAGE_ID || (1..=MAX_MESSAGE_ID_LEN).contains(&e.id.len()),
                "echoed id {:?}",
                e.id
            );
        }
        Parsed::Frame(frame) => {
            // What parses, re-encodes to a frame of the same kind and id (payload floats may
            // differ in their last digit: serde_json does not round-trip every f64 exactly).
            let again = Frame::parse(&frame.to_text());
            let key = |f: &Frame| match f {
                Frame::Call(c) => (2, c.id.clone(), c.action.clone()),
                Frame::CallResult(r) => (3, r.id.clone(), String::new()),
                Frame::CallError(e) => (4, e.id.clone(), e.code.as_str().to_owned()),
            };
            match again {
                Parsed::Frame(f) => prop_assert_eq!(key(&f), key(&frame)),
                other => prop_assert!(false, "{} re-parsed as {:?}", frame.to_text(), other),
            }
        }
        Parsed::Ignore(why) => prop_assert!(!why.is_empty()),
    }
    Ok(())
}

fn frame_like() -> impl Strategy<Value = Value> {
    (
        prop_oneof![json_value(), (0u64..6).prop_map(Value::from)],
        prop_oneof![json_value(), "[a-z0-9-]{0,40}".prop_map(Value::from)],
        prop_oneof![
            json_value(),
            prop::sample::select(vec![
                "BootNotification",
                "Heartbeat",
                "StartTransaction",
                "StopTransaction",
                "MeterValues",
                "StatusNotification",
                "Reset",
                "Teleport",
            ])
            .prop_map(Value::from),
        ],
        prop_oneof![payload(), json_value()],
        prop::collection::vec(json_value(), 0..3),
    )
        .prop_map(|(kind, id, action, payload, rest)| {
            let mut items = vec![kind, id, action, payload];
            items.extend(rest);
            let n = items.len();
            Value::Array(items.into_iter().take(n - n % 2).collect())
        })
}

proptest! {
    #![proptest_config(cases(20_000))]

    /// Any text at all: a frame, an ignored message or a FormationViolation.
    #[test]
    fn any_text_parses_or_is_rejected(text in ".{0,200}") {
        check_parse(&text)?;
    }

    /// Bytes that are not UTF-8 reach the decoder lossily (binary frames are refused earlier).
    #[test]
    fn any_bytes_parse_or_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_parse(&String::from_utf8_lossy(&bytes))?;
    }

}

proptest! {
    #![proptest_config(cases(5_000))]

    /// Arrays shaped like frames, with wrong types, ids and lengths in every position.
    #[test]
    fn frame_shaped_arrays_parse_or_are_rejected(frame in frame_like()) {
        check_parse(&frame.to_string())?;
    }


    /// Every action's request and response decoder takes any object: a value or a typed error.
    #[test]
    fn every_payload_decodes_or_gets_a_typed_error(payload in payload()) {
        every_action(&payload)?;
    }

    /// Valid payloads with one field given another JSON value: still a value or a typed error,
    /// and a wrong JSON type is a TypeConstraintViolation.
    #[test]
    fn one_wrong_field_gets_a_typed_error(which in 0usize..6, value in leaf()) {
        let valid = [
            json!({"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}),
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Charging"}),
            json!({"transactionId": 7, "meterStop": 10, "timestamp": "2026-01-01T00:00:00Z"}),
            json!({"connectorId": 1, "transactionId": 7, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "12"}]}]}),
            json!({"chargePointVendor": "V", "chargePointModel": "M"}),
            json!({"idTag": "TAG"}),
        ];
        let mut p = valid[which].clone();
        // serde_json keeps keys sorted: the first is connectorId, meterStop, chargePointModel
        // or idTag.
        let key = p.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
        p[&key] = value.clone();
        every_action(&p)?;
        let typed = match which {
            0 => decode::<<v16::StartTransaction as Action>::Request>(p.clone()).err(),
            1 => decode::<<v16::StatusNotification as Action>::Request>(p.clone()).err(),
            2 => decode::<<v16::StopTransaction as Action>::Request>(p.clone()).err(),
            3 => decode::<<v16::MeterValues as Action>::Request>(p.clone()).err(),
            4 => decode::<<v16::BootNotification as Action>::Request>(p.clone()).err(),
            _ => decode::<<v16::Authorize as Action>::Request>(p.clone()).err(),
        };
        // The first key of each is a number or a string: another JSON type is a type error.
        let number_field = matches!(key.as_str(), "connectorId" | "meterStop");
        let wrong_type = if number_field { !value.is_number() } else { !value.is_string() };
        if wrong_type && !value.is_null() {
            prop_assert_eq!(typed.map(|(c, _)| c), Some(ErrorCode::TypeConstraintViolation), "{}", p);
        }
    }
}
