//! OCPP-J 1.6 message frames (OCPP-J 1.6 §4): `[2, id, action, payload]` (CALL),
//! `[3, id, payload]` (CALLRESULT) and `[4, id, code, description, details]` (CALLERROR).
//!
//! Parsing never fails silently: a text that cannot be a frame becomes a [`Parsed::Reject`] with
//! the CALLERROR to send back, so the connection can answer and stay up.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::protocol::Protocol;

/// Message id used in a CALLERROR when the offending message's own id cannot be read (the
/// convention OCPP 2.0.1 made explicit; 1.6 says nothing).
pub const UNKNOWN_MESSAGE_ID: &str = "-1";

/// Longest message id OCPP-J allows (36 characters, a UUID).
pub const MAX_MESSAGE_ID_LEN: usize = 36;

/// OCPP-J 1.6 CALLERROR codes (§4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The action is not known by the receiver.
    NotImplemented,
    /// The action is recognised but not supported by the receiver.
    NotSupported,
    /// An internal error occurred while processing the action.
    InternalError,
    /// The payload is incomplete.
    ProtocolError,
    /// A security issue prevented processing.
    SecurityError,
    /// The payload is syntactically incorrect or does not conform to the action's PDU.
    FormationViolation,
    /// A field holds an invalid value.
    PropertyConstraintViolation,
    /// A field violates occurrence constraints. Spelled as in the 1.6 specification.
    OccurenceConstraintViolation,
    /// A field violates data type constraints (`"somestring": 12`).
    TypeConstraintViolation,
    /// Any other error.
    GenericError,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotImplemented => "NotImplemented",
            Self::NotSupported => "NotSupported",
            Self::InternalError => "InternalError",
            Self::ProtocolError => "ProtocolError",
            Self::SecurityError => "SecurityError",
            Self::FormationViolation => "FormationViolation",
            Self::PropertyConstraintViolation => "PropertyConstraintViolation",
            Self::OccurenceConstraintViolation => "OccurenceConstraintViolation",
            Self::TypeConstraintViolation => "TypeConstraintViolation",
            Self::GenericError => "GenericError",
        }
    }

    /// Reads a wire code; unknown codes (and the 2.0 spelling) map to the closest known one.
    pub fn parse(code: &str) -> Self {
        match code {
            "NotImplemented" => Self::NotImplemented,
            "NotSupported" => Self::NotSupported,
            "InternalError" => Self::InternalError,
            "ProtocolError" => Self::ProtocolError,
            "SecurityError" => Self::SecurityError,
            "FormationViolation" | "FormatViolation" => Self::FormationViolation,
            "PropertyConstraintViolation" => Self::PropertyConstraintViolation,
            "OccurenceConstraintViolation" | "OccurrenceConstraintViolation" => {
                Self::OccurenceConstraintViolation
            }
            "TypeConstraintViolation" => Self::TypeConstraintViolation,
            _ => Self::GenericError,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Unique per sender and connection.
    pub id: String,
    /// The action name (`BootNotification`, ...).
    pub action: String,
    /// The request payload (a JSON object).
    pub payload: Value,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// The id of the CALL answered.
    pub id: String,
    /// The response payload.
    pub payload: Value,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CallError {
    /// The id of the CALL answered.
    pub id: String,
    /// What went wrong.
    pub code: ErrorCode,
    /// In words.
    pub description: String,
    /// Extra details (an object, `{}` when none).
    pub details: Value,
}

impl CallError {
    /// An error answer to message `id`.
    pub fn new(id: impl Into<String>, code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            code,
            description: description.into(),
            details: json!({}),
        }
    }
}

/// One OCPP-J message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `[2, id, action, payload]`.
    Call(Call),
    /// `[3, id, payload]`.
    CallResult(CallResult),
    /// `[4, id, code, description, details]`.
    CallError(CallError),
}

/// What a received text turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A well-formed frame.
    Frame(Frame),
    /// Not answerable and not worth answering (unknown message type, malformed reply); logged.
    Ignore(String),
    /// Malformed; send this CALLERROR back.
    Reject(CallError),
}

impl Frame {
    /// Parses one WebSocket text message.
    pub fn parse(text: &str) -> Parsed {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return Parsed::Reject(CallError::new(
                    UNKNOWN_MESSAGE_ID,
                    ErrorCode::FormationViolation,
                    format!("not valid JSON: {e}"),
                ));
            }
        };
        let Value::Array(items) = value else {
            return Parsed::Reject(CallError::new(
                UNKNOWN_MESSAGE_ID,
                ErrorCode::FormationViolation,
                "an OCPP-J message is a JSON array",
            ));
        };
        // Echo the offending message's id only when it is one: an overlong "id" is not sent back.
        let id = items
            .get(1)
            .and_then(Value::as_str)
            .filter(|id| (1..=MAX_MESSAGE_ID_LEN).contains(&id.len()))
            .map(str::to_owned);
        let reject = |description: &str| {
            Parsed::Reject(CallError::new(
                id.clone().unwrap_or_else(|| UNKNOWN_MESSAGE_ID.to_owned()),
                ErrorCode::FormationViolation,
                description,
            ))
        };
        let Some(kind) = items.first().and_then(Value::as_u64) else {
            return reject("the first element must be the message type number");
        };
        match kind {
            2 => {
                let [_, id, action, payload] = items.as_slice() else {
                    return reject("a CALL has 4 elements: [2, id, action, payload]");
                };
                let (Some(id), Some(action)) = (id.as_str(), action.as_str()) else {
                    return reject("the message id and the action must be strings");
                };
                if id.is_empty() || id.len() > MAX_MESSAGE_ID_LEN {
                    return reject("the message id must be 1 to 36 characters");
                }
                if !payload.is_object() {
                    return reject("the payload must be a JSON object");
                }
                Parsed::Frame(Frame::Call(Call {
                    id: id.to_owned(),
                    action: action.to_owned(),
                    payload: payload.clone(),
                }))
            }
            3 => match items.as_slice() {
                [_, Value::String(id), payload] => Parsed::Frame(Frame::CallResult(CallResult {
                    id: id.clone(),
                    payload: payload.clone(),
                })),
                _ => Parsed::Ignore("malformed CALLRESULT".into()),
            },
            4 => match items.as_slice() {
                [_, Value::String(id), Value::String(code), rest @ ..] if rest.len() <= 2 => {
                    Parsed::Frame(Frame::CallError(CallError {
                        id: id.clone(),
                        code: ErrorCode::parse(code),
                        description: rest
                            .first()
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        details: rest.get(1).cloned().unwrap_or_else(|| json!({})),
                    }))
                }
                _ => Parsed::Ignore("malformed CALLERROR".into()),
            },
            // OCPP-J 1.6 §4.1.3: a message type the receiver does not know is ignored.
            other => Parsed::Ignore(format!("unknown message type {other}")),
        }
    }

    /// The text to send (OCPP 1.6 spelling of error codes).
    pub fn to_text(&self) -> String {
        self.to_text_for(Protocol::V16)
    }

    /// The text to send on a connection speaking `protocol`: OCPP-J 2.0.1 corrected the
    /// spelling of two error codes (`FormatViolation`, `OccurrenceConstraintViolation`), and a
    /// 2.0.1 station validating our CALLERRORs against its schema refuses the 1.6 names.
    pub fn to_text_for(&self, protocol: Protocol) -> String {
        let value = match self {
            Frame::Call(c) => json!([2, c.id, c.action, c.payload]),
            Frame::CallResult(r) => json!([3, r.id, r.payload]),
            Frame::CallError(e) => {
                let code = match (protocol, e.code) {
                    (Protocol::V201, ErrorCode::FormationViolation) => "FormatViolation",
                    (Protocol::V201, ErrorCode::OccurenceConstraintViolation) => {
                        "OccurrenceConstraintViolation"
                    }
                    (_, code) => code.as_str(),
                };
                json!([4, e.id, code, e.description, e.details])
            }
        };
        value.to_string()
    }
}

/// Decodes a payload into `T`, mapping serde's complaint to the OCPP error code a peer expects:
/// a missing field is an incomplete payload (`ProtocolError`), a wrong JSON type is a
/// `TypeConstraintViolation`, an out-of-range or unknown value a `PropertyConstraintViolation`.
pub fn decode<T: DeserializeOwned>(payload: Value) -> Result<T, (ErrorCode, String)> {
    serde_json::from_value(payload).map_err(|e| {
        let text = e.to_string();
        let code = if text.starts_with("missing field") {
            ErrorCode::ProtocolError
        } else if text.starts_with("invalid type") {
            ErrorCode::TypeConstraintViolation
        } else if text.starts_with("unknown field") {
            ErrorCode::FormationViolation
        } else {
            // unknown variant, invalid value, invalid length, bad date, number out of range
            ErrorCode::PropertyConstraintViolation
        };
        (code, text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct P {
        a: u32,
        b: Option<String>,
    }

    #[test]
    fn calls_round_trip() {
        let text = r#"[2,"19223201","BootNotification",{"chargePointVendor":"V"}]"#;
        let Parsed::Frame(frame) = Frame::parse(text) else {
            panic!("not a frame")
        };
        assert_eq!(
            frame,
            Frame::Call(Call {
                id: "19223201".into(),
                action: "BootNotification".into(),
                payload: json!({"chargePointVendor": "V"}),
            })
        );
        assert_eq!(Frame::parse(&frame.to_text()), Parsed::Frame(frame));
    }

    #[test]
    fn malformed_texts_are_formation_violations_with_the_id_when_readable() {
        let Parsed::Reject(e) = Frame::parse("{not json") else {
            panic!()
        };
        assert_eq!(
            (e.id.as_str(), e.code),
            ("-1", ErrorCode::FormationViolation)
        );
        let Parsed::Reject(e) = Frame::parse(r#"[2,"m1","Heartbeat"]"#) else {
            panic!()
        };
        assert_eq!(
            (e.id.as_str(), e.code),
            ("m1", ErrorCode::FormationViolation)
        );
        let Parsed::Reject(e) = Frame::parse(r#"[2,"m2","Heartbeat",[]]"#) else {
            panic!()
        };
        assert_eq!(e.id, "m2");
        assert!(matches!(Frame::parse("[7,\"x\"]"), Parsed::Ignore(_)));
    }

    #[test]
    fn call_errors_keep_code_and_description() {
        let text = r#"[4,"9","NotSupported","nope",{}]"#;
        let Parsed::Frame(Frame::CallError(e)) = Frame::parse(text) else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::NotSupported);
        assert_eq!(e.description, "nope");
    }

    #[test]
    fn decode_errors_map_to_ocpp_codes() {
        assert_eq!(
            decode::<P>(json!({})).unwrap_err().0,
            ErrorCode::ProtocolError
        );
        assert_eq!(
            decode::<P>(json!({"a": "x"})).unwrap_err().0,
            ErrorCode::TypeConstraintViolation
        );
        assert_eq!(
            decode::<P>(json!({"a": -1})).unwrap_err().0,
            ErrorCode::PropertyConstraintViolation
        );
        assert!(decode::<P>(json!({"a": 1})).is_ok());
    }
}
