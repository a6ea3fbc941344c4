//! The manager's certificate authority on disk, its TLS certificate, and an HTTPS-only
//! listener: a plain-HTTP request is answered with the seed's refusal text (C-16).

use anyhow::Context;
use smartlic_proto::CertificateAuthority;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// Writes a file atomically (temporary file, fsync, rename) with owner-only permissions.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Loads the authority from the data directory, creating it on first start.
pub fn load_or_create_ca(dir: &Path, now_secs: i64) -> anyhow::Result<(CertificateAuthority, bool)> {
    let (cert_path, key_path) = (dir.join(CA_FILE), dir.join(CA_KEY_FILE));
    if cert_path.exists() || key_path.exists() {
        let cert =
            std::fs::read_to_string(&cert_path).with_context(|| format!("cannot read {}", cert_path.display()))?;
        let key = std::fs::read_to_string(&key_path).with_context(|| format!("cannot read {}", key_path.display()))?;
        let ca = CertificateAuthority::from_pem(&cert, &key).with_context(|| format!("in {}", dir.display()))?;
        return Ok((ca, false));
    }
    let ca = CertificateAuthority::generate("smartlic manager CA", now_secs)?;
    write_private(&key_path, &ca.key_pem())?;
    write_private(&cert_path, ca.cert_pem())?;
    Ok((ca, true))
}

/// Names for the generated TLS certificate: the listen address, plus loopback names when
/// listening on every interface.
pub fn names_for(listen: &SocketAddr) -> Vec<String> {
    let ip = listen.ip();
    if ip.is_unspecified() {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    } else if ip.is_loopback() {
        vec![ip.to_string(), "localhost".into()]
    } else {
        vec![ip.to_string()]
    }
}

pub fn server_config(cert_pem: &str, key_pem: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("TLS certificate PEM")?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in the TLS certificate file");
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .context("TLS key PEM")?
        .context("no private key in the TLS key file")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Seed 003's words for a device that tries plain HTTP.
pub const HTTP_REFUSED: &str =
    "HTTP is no longer supported to reach backend of smartlic; HTTPS is only supported. Use an https:// URL.";

/// Serves `app` over TLS on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, config: Arc<rustls::ServerConfig>, app: axum::Router) {
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt;
    use tower::ServiceExt;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (mut tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A TLS connection starts with a handshake record (0x16); anything else is plain text.
            let mut first = [0u8; 1];
            if matches!(tcp.peek(&mut first).await, Ok(1) if first[0] != 0x16) {
                let body = format!("{{\"error\":{{\"code\":\"HTTPS_REQUIRED\",\"message\":\"{HTTP_REFUSED}\"}}}}");
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.shutdown().await;
                return;
            }
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                if let Some(uri) = crate::legacy::normalize_path(req.uri()) {
                    *req.uri_mut() = uri;
                }
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
        });
    }
}
