//! TLS for simulated stations (`wss://`): the CA that signed the gateway's certificate, and for
//! security profile 3 the station's own client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where a simulated station's TLS material is (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTls {
    /// CA certificate(s) the gateway's server certificate must chain to.
    pub ca: PathBuf,
    /// The station's client certificate chain and key (security profile 3); `None` connects
    /// without one (profile 2).
    pub client: Option<(PathBuf, PathBuf)>,
}

impl SimTls {
    /// The paths for station `id`: `{id}` in the client certificate and key paths is replaced
    /// by it, so many stations can each use their own certificate.
    pub fn for_station(&self, id: &str) -> Self {
        let each = |p: &Path| PathBuf::from(p.to_string_lossy().replace("{id}", id));
        Self {
            ca: self.ca.clone(),
            client: self.client.as_ref().map(|(c, k)| (each(c), each(k))),
        }
    }

    /// The rustls client configuration (read from the files now).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let read = |path: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
            CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        let mut roots = RootCertStore::empty();
        for cert in read(&self.ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", self.ca.display()))?;
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(read(cert)?, key)
                    .map_err(|e| format!("{}: {e}", cert.display()))?
            }
        };
        Ok(Arc::new(config))
    }
}
