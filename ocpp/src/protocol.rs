//! The OCPP versions the gateway speaks, chosen per connection by WebSocket subprotocol, and
//! the action trait every version's messages implement.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An OCPP version spoken on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OCPP 1.6J (`ocpp1.6`).
    V16,
    /// OCPP 2.0.1 (`ocpp2.0.1`).
    V201,
}

impl Protocol {
    /// Every version, in the order the gateway lists them.
    pub const ALL: [Protocol; 2] = [Protocol::V201, Protocol::V16];

    /// The WebSocket subprotocol name.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Protocol::V16 => "ocpp1.6",
            Protocol::V201 => "ocpp2.0.1",
        }
    }

    /// The version of a subprotocol name (exact, as OCPP-J registers them).
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.subprotocol() == name)
    }

    /// The version named by `--protocol` and similar settings: `1.6` or `2.0.1` (the
    /// subprotocol names are accepted too).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            "1.6" | "1.6J" | "ocpp1.6" => Some(Protocol::V16),
            "2.0.1" | "ocpp2.0.1" => Some(Protocol::V201),
            _ => None,
        }
    }

    /// The version to speak with a station that offered `offered` (the values of its
    /// `Sec-WebSocket-Protocol` headers, each a comma-separated list): the first one it lists
    /// that the gateway speaks. The station's order decides, as a station lists its
    /// preference first (OCPP-J 2.0.1 part 4 §3.1.2); `None` when none is spoken here.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        offered
            .into_iter()
            .flat_map(|header| header.split(','))
            .find_map(|name| Self::from_subprotocol(name.trim()))
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::V16 => "1.6",
            Protocol::V201 => "2.0.1",
        })
    }
}

/// An OCPP action of any version: its wire name and the payload types of its CALL and
/// CALLRESULT.
pub trait Action {
    /// The action name on the wire.
    const NAME: &'static str;
    /// The CALL payload.
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The CALLRESULT payload.
    type Response: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// Declares an action's marker type.
macro_rules! action {
    ($(#[$doc:meta])* $marker:ident, $req:ty => $res:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $marker;

        impl crate::protocol::Action for $marker {
            const NAME: &'static str = stringify!($marker);
            type Request = $req;
            type Response = $res;
        }
    };
}
pub(crate) use action;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stations_order_decides() {
        assert_eq!(
            Protocol::negotiate(["ocpp2.0.1, ocpp1.6"]),
            Some(Protocol::V201)
        );
        assert_eq!(
            Protocol::negotiate(["ocpp1.6,ocpp2.0.1"]),
            Some(Protocol::V16)
        );
        assert_eq!(
            Protocol::negotiate(["ocpp2.1", "ocpp2.0.1"]),
            Some(Protocol::V201)
        );
        assert_eq!(Protocol::negotiate(["ocpp2.0", "ocpp1.5"]), None);
        assert_eq!(Protocol::negotiate([]), None);
    }

    #[test]
    fn settings_name_versions() {
        assert_eq!(Protocol::parse("2.0.1"), Some(Protocol::V201));
        assert_eq!(Protocol::parse("ocpp1.6"), Some(Protocol::V16));
        assert_eq!(Protocol::parse("2.1"), None);
    }
}
