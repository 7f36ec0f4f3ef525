//! TLS for security profile 2 (`wss://`), with rustls and the ring provider.
//!
//! rustls offers TLS 1.2 and 1.3 with forward-secret suites only; legacy stations that need
//! `TLS_RSA_*` suites must go through a TLS-terminating proxy (see docs/ocpp.md §7).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the server certificate and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
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
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Builds the acceptor from the PEM files.
pub(crate) fn acceptor(paths: &TlsPaths) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(&paths.cert)
        .map_err(|e| pem_error(&paths.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&paths.cert, e))?;
    if certs.is_empty() {
        return Err(pem_error(&paths.cert, "no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| pem_error(&paths.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
