//! TLS for security profiles 2 and 3 (`wss://`), with rustls and the ring provider.
//!
//! rustls offers TLS 1.2 and 1.3 with forward-secret suites only; legacy stations that need
//! `TLS_RSA_*` suites must go through a TLS-terminating proxy (see docs/ocpp.md §7).
//!
//! With a client CA configured, the server asks every station for a certificate and verifies
//! any it gets against that CA (chain, validity, the clientAuth usage); a station without one
//! still completes the handshake (profile 2), and the upgrade handler decides per station
//! whether a certificate was required ([`PeerIdentity`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the server certificate, its key and the client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM certificates of the CA(s) that sign station certificates (security profile 3);
    /// `None` asks stations for no certificate.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable; check the configured path.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the certificate and key (mismatch, unsupported key type).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA cannot verify client certificates (not a CA certificate, bad encoding).
    #[error("client CA: {0}")]
    ClientCa(String),
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate found"));
    }
    Ok(certs)
}

/// Builds the acceptor from the PEM files.
pub(crate) fn acceptor(paths: &TlsPaths) -> Result<TlsAcceptor, TlsError> {
    let certs = certificates(&paths.cert)?;
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| pem_error(&paths.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &paths.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::ClientCa(format!("{}: {e}", ca.display())))?;
            }
            // Profile-2 stations have no certificate and must still get in on this listener;
            // a certificate that is presented must verify, or the handshake fails.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::ClientCa(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How a connection's peer identified itself at the transport, handed to the upgrade handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// Plain TCP (`ws://`).
    Plain,
    /// TLS without a client certificate.
    Tls,
    /// TLS with a client certificate the client CA verified; `common_name` is its subject's
    /// single CN (`None` when it has none, or several).
    Certificate {
        /// The subject CN, which names the station (security profile 3).
        common_name: Option<String>,
    },
}

impl PeerIdentity {
    /// The identity a finished TLS handshake established. rustls only keeps a client
    /// certificate it verified, so any certificate here chains to the client CA.
    pub(crate) fn of(connection: &ServerConnection) -> Self {
        match connection.peer_certificates().and_then(|c| c.first()) {
            None => Self::Tls,
            Some(leaf) => Self::Certificate {
                common_name: common_name(leaf),
            },
        }
    }
}

/// The subject CN of `cert`, when it has exactly one and it is text.
pub(crate) fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let mut names = subject_common_names(parsed.subject())?.into_iter();
    match (names.next(), names.next()) {
        (Some(cn), None) => Some(cn),
        // Two CNs could name two stations: trust neither.
        _ => None,
    }
}

/// The CN attributes of an X.501 Name (`RDNSequence` contents, without its SEQUENCE header):
/// `SET { SEQUENCE { OID, value } ... } ...`. `None` if the encoding is broken or a CN is not
/// a text string.
fn subject_common_names(mut rdns: &[u8]) -> Option<Vec<String>> {
    /// id-at-commonName, 2.5.4.3.
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let mut names = Vec::new();
    while !rdns.is_empty() {
        let (set, rest) = der(rdns, 0x31)?;
        rdns = rest;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, rest) = der(attributes, 0x30)?;
            attributes = rest;
            let (oid, value) = der(attribute, 0x06)?;
            if oid != CN {
                continue;
            }
            let (&tag, _) = value.split_first()?;
            // UTF8String, PrintableString, IA5String: all UTF-8 compatible.
            if !matches!(tag, 0x0c | 0x13 | 0x16) {
                return None;
            }
            let (text, _) = der(value, tag)?;
            names.push(String::from_utf8(text.to_vec()).ok()?);
        }
    }
    Some(names)
}

/// Splits one DER element of `tag` off `input`: (its contents, what follows).
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len < 0x80 {
        (usize::from(len), rest)
    } else {
        let bytes = usize::from(len & 0x7f);
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let (len, rest) = rest.split_at(bytes);
        (
            len.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)),
            rest,
        )
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(names: &[(rcgen::DnType, &str)]) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in names {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_subject_cn_is_read_and_only_when_it_is_unambiguous() {
        let cert = cert_with(&[
            (rcgen::DnType::OrganizationName, "Example CPO"),
            (rcgen::DnType::CommonName, "CP-0001"),
        ]);
        assert_eq!(common_name(&cert).as_deref(), Some("CP-0001"));
        let none = cert_with(&[(rcgen::DnType::OrganizationName, "Example CPO")]);
        assert_eq!(common_name(&none), None);
        // Two CNs (rcgen writes one per type, so by hand): SET { SEQ { CN, UTF8 "CPn" } } x2.
        let rdn = |n: u8| {
            [
                0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'C', b'P', n,
            ]
        };
        let two: Vec<u8> = [rdn(b'1'), rdn(b'2')].concat();
        assert_eq!(
            subject_common_names(&two),
            Some(vec!["CP1".to_owned(), "CP2".to_owned()])
        );
        assert_eq!(subject_common_names(&two[..20]), None);
        assert_eq!(common_name(&CertificateDer::from(vec![0x30, 0x03])), None);
    }

    #[test]
    fn long_form_lengths_are_read_and_truncated_input_is_refused() {
        let mut long = vec![0x04, 0x81, 200];
        long.extend(std::iter::repeat_n(7u8, 200));
        let (body, rest) = der(&long, 0x04).unwrap();
        assert_eq!((body.len(), rest.len()), (200, 0));
        assert_eq!(der(&long[..100], 0x04), None);
        assert_eq!(der(&[0x04, 0x80], 0x04), None);
        assert_eq!(der(&[0x05, 0x00], 0x04), None);
    }
}
