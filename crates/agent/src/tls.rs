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

/// An HTTP(S) forward proxy a device reaches the manager through (G-2): HTTPS goes through it
/// with `CONNECT`, so the proxy never sees inside the TLS session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProxyConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl ProxyConfig {
    fn url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("http://{host}:{}", self.port)
    }
}

/// A reqwest client over rustls (ring) trusting only `ca_pem`, connecting directly.
pub fn https_client(ca_pem: &str) -> Result<reqwest::Client, TlsError> {
    https_client_via(ca_pem, None)
}

/// Like [`https_client`], through `proxy` when given. Without one the client ignores the
/// environment's proxy variables: a device uses the transport it was configured with, only.
pub fn https_client_via(ca_pem: &str, proxy: Option<&ProxyConfig>) -> Result<reqwest::Client, TlsError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Client(e.to_string()))?
        .with_root_certificates(root_store(ca_pem)?)
        .with_no_client_auth();
    let builder = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .https_only(true)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    let builder = match proxy {
        None => builder.no_proxy(),
        Some(p) => {
            let mut via =
                reqwest::Proxy::all(p.url()).map_err(|e| TlsError::Client(format!("bad proxy address: {e}")))?;
            if let Some(user) = &p.username {
                via = via.basic_auth(user, p.password.as_deref().unwrap_or(""));
            }
            builder.proxy(via)
        }
    };
    builder.build().map_err(|e| TlsError::Client(e.to_string()))
}
