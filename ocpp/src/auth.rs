//! Station credentials (OCPP 1.6 security profiles 1 and 2: HTTP Basic auth on the upgrade
//! request, username = station id, password = the station's AuthorizationKey) and each
//! station's [`SecurityProfile`] (profile 3 authenticates with a client certificate instead,
//! checked by the server against the TLS handshake).
//!
//! Keys are stored as HMAC-SHA256(salt, key) with a random per-station salt and compared in
//! constant time. A fast hash is enough because AuthorizationKeys are random (16 to 20 bytes,
//! OCPP security white paper), so there is no dictionary to attack; a leaked file still does not
//! reveal keys, and equal keys do not show as equal hashes.
//!
//! [`FileStationDirectory`] reads a JSON file; the store-backed directory comes with the store.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use domain::ids::ChargeStationId;
use domain::station::SecurityProfile;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The stations file cannot be read; check the path given on the command line.
    #[error("cannot read the stations file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The stations file is not valid; fix the entry named.
    #[error("invalid stations file: {0}")]
    Invalid(String),
    /// The backing store failed; the station is refused for now and will retry.
    #[error("station directory unavailable: {0}")]
    Unavailable(String),
}

/// The outcome of a credential check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Known station, right key.
    Accepted,
    /// No such station.
    UnknownStation,
    /// Known station, wrong key.
    WrongKey,
}

/// Where station credentials come from.
#[async_trait::async_trait]
pub trait StationDirectory: Send + Sync + 'static {
    /// Checks `station`'s key.
    async fn verify(
        &self,
        station: &ChargeStationId,
        key: &[u8],
    ) -> Result<Verdict, DirectoryError>;

    /// The security profile `station` must connect with; `None` for an unknown station.
    async fn security_profile(
        &self,
        station: &ChargeStationId,
    ) -> Result<Option<SecurityProfile>, DirectoryError>;

    /// Every known station.
    async fn list(&self) -> Result<Vec<ChargeStationId>, DirectoryError>;
}

/// One station in the stations file: `{"id": "CP001", "salt": "<hex>", "key_hmac": "<hex>"}`,
/// optionally with `"security_profile": 2` or `3` (1 when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationEntry {
    /// The station id (last path segment of its URL).
    pub id: ChargeStationId,
    /// Random salt, hex.
    pub salt: String,
    /// HMAC-SHA256(salt, key), hex.
    pub key_hmac: String,
    /// How the station must connect.
    #[serde(default, skip_serializing_if = "is_basic")]
    pub security_profile: SecurityProfile,
}

fn is_basic(p: &SecurityProfile) -> bool {
    *p == SecurityProfile::Basic
}

impl StationEntry {
    /// An entry for `id` with a fresh random salt; the key itself is not kept.
    pub fn hashed(id: ChargeStationId, key: &[u8]) -> Self {
        let salt: [u8; 16] = rand::random();
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salt), key);
        Self {
            id,
            salt: hex(&salt),
            key_hmac: hex(tag.as_ref()),
            security_profile: SecurityProfile::Basic,
        }
    }

    /// The entry with `profile` instead.
    pub fn with_profile(self, profile: SecurityProfile) -> Self {
        Self {
            security_profile: profile,
            ..self
        }
    }
}

/// The stations file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationsFile {
    /// The stations.
    pub stations: Vec<StationEntry>,
}

impl StationsFile {
    /// Writes the file (JSON).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }
}

struct Stored {
    key: hmac::Key,
    tag: Vec<u8>,
    profile: SecurityProfile,
}

/// A [`StationDirectory`] loaded once from a JSON [`StationsFile`].
pub struct FileStationDirectory {
    stations: HashMap<ChargeStationId, Stored>,
}

impl std::fmt::Debug for FileStationDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStationDirectory")
            .field("stations", &self.stations.len())
            .finish()
    }
}

impl FileStationDirectory {
    /// Loads the stations file.
    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read(path).map_err(|source| DirectoryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let file: StationsFile = serde_json::from_slice(&text)
            .map_err(|e| DirectoryError::Invalid(format!("{}: {e}", path.display())))?;
        Self::from_file(file)
    }

    /// A directory of the given entries.
    pub fn from_file(file: StationsFile) -> Result<Self, DirectoryError> {
        let mut stations = HashMap::new();
        for entry in file.stations {
            let salt = unhex(&entry.salt)
                .ok_or_else(|| DirectoryError::Invalid(format!("{}: salt is not hex", entry.id)))?;
            let tag = unhex(&entry.key_hmac).ok_or_else(|| {
                DirectoryError::Invalid(format!("{}: key_hmac is not hex", entry.id))
            })?;
            let stored = Stored {
                key: hmac::Key::new(hmac::HMAC_SHA256, &salt),
                tag,
                profile: entry.security_profile,
            };
            if stations.insert(entry.id.clone(), stored).is_some() {
                return Err(DirectoryError::Invalid(format!(
                    "{}: listed twice",
                    entry.id
                )));
            }
        }
        Ok(Self { stations })
    }
}

#[async_trait::async_trait]
impl StationDirectory for FileStationDirectory {
    async fn verify(
        &self,
        station: &ChargeStationId,
        key: &[u8],
    ) -> Result<Verdict, DirectoryError> {
        Ok(match self.stations.get(station) {
            None => Verdict::UnknownStation,
            // ring compares the tags in constant time.
            Some(s) => match hmac::verify(&s.key, key, &s.tag) {
                Ok(()) => Verdict::Accepted,
                Err(_) => Verdict::WrongKey,
            },
        })
    }

    async fn security_profile(
        &self,
        station: &ChargeStationId,
    ) -> Result<Option<SecurityProfile>, DirectoryError> {
        Ok(self.stations.get(station).map(|s| s.profile))
    }

    async fn list(&self) -> Result<Vec<ChargeStationId>, DirectoryError> {
        let mut ids: Vec<_> = self.stations.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
}

/// Reads `Authorization: Basic base64(user:password)`.
pub(crate) fn basic_credentials(header: &str) -> Option<(String, Vec<u8>)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// The `Authorization` header value for `user` and `password`.
pub fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Stations as the store knows them: created through the admin API (`POST /charge-stations`),
/// keys salted and hashed there.
pub struct StoreStationDirectory {
    store: store::Store,
}

impl StoreStationDirectory {
    /// A directory over `store`.
    pub fn new(store: store::Store) -> Self {
        Self { store }
    }
}

#[async_trait::async_trait]
impl StationDirectory for StoreStationDirectory {
    async fn verify(
        &self,
        station: &ChargeStationId,
        key: &[u8],
    ) -> Result<Verdict, DirectoryError> {
        let unavailable = |e: store::StoreError| DirectoryError::Unavailable(e.to_string());
        if self
            .store
            .charge_station(station.as_str())
            .await
            .map_err(unavailable)?
            .is_none()
        {
            return Ok(Verdict::UnknownStation);
        }
        let Ok(key) = std::str::from_utf8(key) else {
            return Ok(Verdict::WrongKey);
        };
        let ok = self
            .store
            .verify_charge_station(station.as_str(), key)
            .await
            .map_err(unavailable)?;
        Ok(if ok {
            Verdict::Accepted
        } else {
            Verdict::WrongKey
        })
    }

    async fn security_profile(
        &self,
        station: &ChargeStationId,
    ) -> Result<Option<SecurityProfile>, DirectoryError> {
        Ok(self
            .store
            .charge_station(station.as_str())
            .await
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?
            .map(|row| row.security_profile()))
    }

    async fn list(&self) -> Result<Vec<ChargeStationId>, DirectoryError> {
        // Only the gateway's own bookkeeping lists stations; the store answers per station.
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_verify_only_for_their_station() {
        let cp: ChargeStationId = "CP1".parse().unwrap();
        let file = StationsFile {
            stations: vec![StationEntry::hashed(cp.clone(), b"secret-key-0123456")],
        };
        let dir = FileStationDirectory::from_file(file.clone()).unwrap();
        assert_eq!(
            dir.verify(&cp, b"secret-key-0123456").await.unwrap(),
            Verdict::Accepted
        );
        assert_eq!(dir.verify(&cp, b"wrong").await.unwrap(), Verdict::WrongKey);
        assert_eq!(
            dir.verify(&"CP2".parse().unwrap(), b"secret-key-0123456")
                .await
                .unwrap(),
            Verdict::UnknownStation
        );
        // The file holds no key material in clear.
        let json = serde_json::to_string(&file).unwrap();
        assert!(!json.contains("secret"));
        assert_eq!(
            dir.security_profile(&cp).await.unwrap(),
            Some(SecurityProfile::Basic)
        );
        assert_eq!(
            dir.security_profile(&"CP2".parse().unwrap()).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn the_stations_file_carries_the_security_profile() {
        let cp: ChargeStationId = "CP3".parse().unwrap();
        let entry = StationEntry::hashed(cp.clone(), b"unused-key-0123456")
            .with_profile(SecurityProfile::TlsClientCertificate);
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["security_profile"], 3);
        // Files written before profiles existed still load, as profile 1.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("security_profile");
        let old: StationEntry = serde_json::from_value(old).unwrap();
        assert_eq!(old.security_profile, SecurityProfile::Basic);
        let dir = FileStationDirectory::from_file(StationsFile {
            stations: vec![serde_json::from_value(json).unwrap()],
        })
        .unwrap();
        assert_eq!(
            dir.security_profile(&cp).await.unwrap(),
            Some(SecurityProfile::TlsClientCertificate)
        );
    }

    #[test]
    fn basic_headers_round_trip_and_passwords_may_contain_colons() {
        let h = basic_header("CP1", "a:b");
        assert_eq!(
            basic_credentials(&h),
            Some(("CP1".to_owned(), b"a:b".to_vec()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }
}
