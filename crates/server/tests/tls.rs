//! The listener's certificates: the manager's own CA persists across restarts, and an
//! operator's certificate replaces the generated one.

use smartlic_proto::CertificateAuthority;
use smartlic_server::{start, ServerConfig};
use std::path::Path;

fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        mode: smartlic_server::Mode::Cloud,
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: None,
        tls_key: None,
        hostnames: vec![],
        simulated_clock: false,
        catalog: None,
        admin_secret: Some("tls-test-secret-123".into()),
        job_interval: std::time::Duration::from_secs(3600),
        limits: Default::default(),
        database: Default::default(),
    }
}

async fn health(base: &str, ca_pem: &str) -> Result<u16, reqwest::Error> {
    let http = smartlic_agent::tls::https_client(ca_pem).unwrap();
    Ok(http.get(format!("{base}/health")).send().await?.status().as_u16())
}

#[tokio::test]
async fn the_ca_persists_and_operator_certificates_are_used() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let first = start(config(dir.path())).await.unwrap();
    let ca_file = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    assert_eq!(ca_file, first.ca_pem);
    assert_eq!(health(&format!("https://{}", first.local_addr), &ca_file).await.unwrap(), 200);
    first.stop();
    let second = start(config(dir.path())).await.unwrap();
    assert_eq!(second.ca_pem, ca_file, "a restart keeps the CA devices trust");
    second.stop();

    // An operator's own certificate, from another CA.
    let own_ca = CertificateAuthority::generate("operator CA", 1_790_000_000).unwrap();
    let (cert, key) = own_ca.issue_tls_certificate(&["127.0.0.1".into()], 1_790_000_000).unwrap();
    std::fs::write(dir.path().join("own.pem"), cert).unwrap();
    std::fs::write(dir.path().join("own-key.pem"), key).unwrap();
    let mut cfg = config(dir.path());
    cfg.tls_cert = Some(dir.path().join("own.pem"));
    cfg.tls_key = Some(dir.path().join("own-key.pem"));
    let third = start(cfg).await.unwrap();
    let base = format!("https://{}", third.local_addr);
    assert_eq!(health(&base, own_ca.cert_pem()).await.unwrap(), 200);
    assert!(health(&base, &ca_file).await.is_err(), "the generated certificate is no longer served");
    third.stop();

    let mut bad = config(dir.path());
    bad.tls_cert = Some(dir.path().join("own.pem"));
    bad.tls_key = Some(dir.path().join("ca.pem"));
    assert!(start(bad).await.is_err(), "a key file without a key is refused");
}
