//! Devices reach the manager through a real forward proxy (tinyproxy, Debian's package) with
//! CONNECT and basic authentication (G-2). Without tinyproxy the test says so and passes,
//! unless `SMARTLIC_REQUIRE_PROXY=1` (set by `.ci/run`, which installs it) makes that a failure.

mod common;

use common::*;
use smartlic_agent::client::{ClientError, ManagerClient};
use smartlic_agent::tls::ProxyConfig;
use smartlic_proto::wire::Udi;
use smartlic_proto::KeyAlgorithm;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Tinyproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts tinyproxy on a loopback port requiring `user`/`password`; None when not installed.
async fn tinyproxy(user: &str, password: &str) -> Option<Tinyproxy> {
    let binary = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"].into_iter().find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(std::env::var("SMARTLIC_REQUIRE_PROXY").is_err(), "tinyproxy is required but not installed");
        eprintln!("tinyproxy is not installed (apt-get install tinyproxy): proxy test skipped");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 16\nAllow 127.0.0.1\nLogLevel Error\nBasicAuth {user} {password}\n"
    );
    let path = dir.path().join("tinyproxy.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(binary).arg("-d").arg("-c").arg(&path).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let proxy = Tinyproxy { child: child.unwrap(), port, _dir: dir };
    // Bounded wait for the proxy to listen.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(proxy);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tinyproxy did not start on port {port}");
}

fn proxy(port: u16, password: &str) -> ProxyConfig {
    ProxyConfig { host: "127.0.0.1".into(), port, username: Some("smartlic".into()), password: Some(password.into()) }
}

#[tokio::test]
async fn devices_register_and_authorize_through_a_forward_proxy() {
    let Some(tp) = tinyproxy("smartlic", "proxy-pass").await else { return };
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let via = ManagerClient::via(&h.base, &h.server.ca_pem, Some(&proxy(tp.port, "proxy-pass"))).unwrap();
    let udi = Udi { pid: "C9300-24T".into(), sn: "PROXY1".into() };
    let (key, answer) = via.register(&udi, None, &token, false, KeyAlgorithm::Ed25519, h.now_ms()).await.unwrap();
    let dev = smartlic_agent::identity::DeviceIdentity::from_registration(udi, None, key, answer);
    let auth = via.authorize(&dev, &usage(&[("ACI Advantage", 1)]), h.now_ms()).await.unwrap();
    assert_eq!(auth.status, smartlic_proto::wire::AuthorizationStatus::Authorized);

    // The proxy is really in the path: a wrong proxy password is refused by it.
    let refused = ManagerClient::via(&h.base, &h.server.ca_pem, Some(&proxy(tp.port, "wrong"))).unwrap();
    let r = refused.authorize(&dev, &usage(&[]), h.now_ms()).await;
    assert!(matches!(r, Err(ClientError::Transport(_))), "{r:?}");
    // Nothing listening at the proxy address: a transport failure, no answer.
    let nowhere = ManagerClient::via(&h.base, &h.server.ca_pem, Some(&proxy(free_port(), "proxy-pass"))).unwrap();
    assert!(matches!(nowhere.authorize(&dev, &usage(&[]), h.now_ms()).await, Err(ClientError::Transport(_))));
}
