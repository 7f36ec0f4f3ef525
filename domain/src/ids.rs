//! Typed identifiers. Each id is a prefix plus an opaque body, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id does not start with the expected prefix; pass an id of the right kind.
    #[error("`{value}` is not a {kind} id: it must start with `{prefix}`")]
    WrongPrefix { kind: &'static str, prefix: &'static str, value: String },
    /// The id has characters outside `[A-Za-z0-9_-]` or a wrong length.
    #[error("`{value}` is not a valid {kind} id: use 1 to 64 characters of letters, digits, `_` or `-` after `{prefix}`")]
    Malformed { kind: &'static str, prefix: &'static str, value: String },
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Builds an id from a body that is already unique (e.g. a UUID without dashes).
            pub fn from_unique(body: &str) -> Result<Self, IdError> {
                format!("{}{}", $prefix, body).parse()
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                let Some(body) = value.strip_prefix($prefix) else {
                    return Err(IdError::WrongPrefix { kind: $kind, prefix: $prefix, value: value.to_owned() });
                };
                let ok = !body.is_empty()
                    && body.len() <= 64
                    && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if ok {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(IdError::Malformed { kind: $kind, prefix: $prefix, value: value.to_owned() })
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A charging session; also the id of its Temporal workflow.
    SessionId, "ses_", "session"
);
prefixed_id!(
    /// The payment (card hold) of a session.
    PaymentId, "pay_", "payment"
);
prefixed_id!(
    /// An organization (tenant): owns users, stations, rates and settings.
    OrganizationId, "org_", "organization"
);
prefixed_id!(
    /// A driver, possibly anonymous.
    UserId, "usr_", "user"
);
prefixed_id!(
    /// A rate (price list) attached to connectors.
    RateId, "rat_", "rate"
);
prefixed_id!(
    /// A connector of a charge station, as the API names it.
    ConnectorRef, "con_", "connector"
);

/// A charge station's OCPP identity (the last path segment of its WebSocket URL).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChargeStationId(String);

impl ChargeStationId {
    /// The id as the station sends it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ChargeStationId {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        // OCPP 1.6 CiString identities: keep to URL-safe printable ASCII.
        let ok = !value.is_empty()
            && value.len() <= 48
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdError::Malformed { kind: "charge station", prefix: "", value: value.to_owned() })
        }
    }
}

impl TryFrom<String> for ChargeStationId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        value.parse()
    }
}

impl From<ChargeStationId> for String {
    fn from(id: ChargeStationId) -> String {
        id.0
    }
}

impl fmt::Display for ChargeStationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The OCPP `idTag` (at most 20 characters) minted for one session, so the station's
/// StartTransaction maps back to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdTag(String);

impl IdTag {
    /// Maximum length of an OCPP 1.6 IdToken.
    pub const MAX_LEN: usize = 20;

    /// Derives the session's id tag: `CL` + the first 18 significant characters of the session id
    /// body, upper-cased. Session ids are random, so 18 characters keep collisions negligible.
    pub fn for_session(session: &SessionId) -> Self {
        let body: String = session
            .as_str()
            .trim_start_matches(SessionId::PREFIX)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(Self::MAX_LEN - 2)
            .collect::<String>()
            .to_ascii_uppercase();
        Self(format!("CL{body}"))
    }

    /// The tag as sent to the station.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_needs_its_prefix() {
        assert!("ses_abc123".parse::<SessionId>().is_ok());
        assert!(matches!("pay_abc".parse::<SessionId>(), Err(IdError::WrongPrefix { .. })));
        assert!(matches!("ses_".parse::<SessionId>(), Err(IdError::Malformed { .. })));
        assert!(matches!("ses_a b".parse::<SessionId>(), Err(IdError::Malformed { .. })));
    }

    #[test]
    fn id_tag_fits_ocpp_and_is_stable() {
        let id: SessionId = "ses_0123456789abcdef0123456789abcdef".parse().unwrap();
        let tag = IdTag::for_session(&id);
        assert_eq!(tag.as_str(), "CL0123456789ABCDEF01");
        assert!(tag.as_str().len() <= IdTag::MAX_LEN);
        assert_eq!(tag, IdTag::for_session(&id));
    }

    #[test]
    fn ids_round_trip_through_json() {
        let id: SessionId = "ses_x1".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"ses_x1\"");
        assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SessionId>("\"nope\"").is_err());
    }
}
