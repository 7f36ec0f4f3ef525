//! How a charge station proves who it is: the OCPP 1.6 security profile it is set to.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The OCPP 1.6 security profile a station must connect with (OCA white paper "Improved
/// security for OCPP 1.6-J"). One per station: a station that connects any other way is
/// refused, so a profile cannot be downgraded by the station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum SecurityProfile {
    /// 1: HTTP Basic auth (station id and AuthorizationKey), over `ws://` or `wss://`.
    #[default]
    Basic,
    /// 2: HTTP Basic auth over TLS (`wss://`) only.
    TlsBasic,
    /// 3: TLS with a client certificate whose subject CN is the station id; the certificate
    /// alone authenticates the station (no Basic auth).
    TlsClientCertificate,
}

/// A number that is not a security profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("security profile {0} does not exist; use 1, 2 or 3")]
pub struct UnknownSecurityProfile(pub i64);

impl SecurityProfile {
    /// The profile's number in the OCPP white paper (1, 2 or 3).
    pub fn number(self) -> u8 {
        match self {
            Self::Basic => 1,
            Self::TlsBasic => 2,
            Self::TlsClientCertificate => 3,
        }
    }

    /// The profile numbered `n`.
    pub fn from_number(n: i64) -> Result<Self, UnknownSecurityProfile> {
        match n {
            1 => Ok(Self::Basic),
            2 => Ok(Self::TlsBasic),
            3 => Ok(Self::TlsClientCertificate),
            other => Err(UnknownSecurityProfile(other)),
        }
    }

    /// Whether the station must connect over TLS (`wss://`).
    pub fn requires_tls(self) -> bool {
        self != Self::Basic
    }
}

impl TryFrom<u8> for SecurityProfile {
    type Error = UnknownSecurityProfile;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Self::from_number(n.into())
    }
}

impl From<SecurityProfile> for u8 {
    fn from(p: SecurityProfile) -> u8 {
        p.number()
    }
}

impl fmt::Display for SecurityProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "security profile {}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_others_are_refused() {
        for n in 1..=3 {
            let p = SecurityProfile::from_number(n).unwrap();
            assert_eq!(i64::from(p.number()), n);
            assert_eq!(serde_json::to_string(&p).unwrap(), n.to_string());
        }
        assert_eq!(SecurityProfile::default(), SecurityProfile::Basic);
        assert!(SecurityProfile::from_number(0).is_err());
        assert!(serde_json::from_str::<SecurityProfile>("4").is_err());
        assert!(!SecurityProfile::Basic.requires_tls());
        assert!(SecurityProfile::TlsClientCertificate.requires_tls());
    }
}
