//! Devices reach the manager through a real forward proxy (tinyproxy, Debian's package) with
//! CONNECT and basic authentication (G-2). Without tinyproxy the test says so and passes,
//! unless `SMARTLIC_REQUIRE_PROXY=1` (set by `.ci/run`, which installs it) makes that a failure.

use crate::common;

use common::*;
use smartlic_agent::client::{ClientError, ManagerClient};
use smartlic_agent::tls::ProxyConfig;
use smartlic_proto::wire::Udi;
use smartlic_proto::KeyAlgorithm;

fn proxy(port: u16, password: &str) -> ProxyConfig {
    ProxyConfig { host: "127.0.0.1".into(), port, username: Some("smartlic".into()), password: Some(password.into()) }
}

#[tokio::test]
async fn devices_register_and_authorize_through_a_forward_proxy() {
    let Some(tp) = tinyproxy(Some(("smartlic", "proxy-pass"))).await else { return };
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
