//! HTTPS clients that trust exactly the certificates they are given (the manager's CA, a
//! trust point), never the system store: a device trusts what its operator imported.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no certificate found in the trusted CA PEM")]
    NoCertificate,
    #[error("the trusted CA PEM is not valid: {0}")]
    BadPem(String),
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
}

/// Parses every certificate of a PEM bundle into a root store.
pub fn root_store(ca_pem: &str) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut reader = std::io::BufReader::new(ca_pem.as_bytes());
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|e| TlsError::BadPem(e.to_string()))?;
        roots.add(cert).map_err(|e| TlsError::BadPem(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(roots)
}

/// A reqwest client over rustls (ring) trusting only `ca_pem`.
pub fn https_client(ca_pem: &str) -> Result<reqwest::Client, TlsError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Client(e.to_string()))?
        .with_root_certificates(root_store(ca_pem)?)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .https_only(true)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| TlsError::Client(e.to_string()))
}
