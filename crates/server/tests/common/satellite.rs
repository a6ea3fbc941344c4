//! A satellite next to a cloud harness (issue 12): started in satellite mode, with a local
//! account approved by the cloud through the offline answer, and devices that trust the cloud
//! CA for answers and the satellite's for TLS.

use super::{server_config, Harness};
use serde_json::json;
use smartlic_agent::client::ManagerClient;
use smartlic_agent::identity::DeviceIdentity;
use smartlic_proto::wire::Udi;
use smartlic_proto::KeyAlgorithm;

/// A manager started with `--mode satellite`.
pub async fn satellite() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.mode = smartlic_server::Mode::Satellite;
    Harness::start(dir, config).await
}

/// Creates local account `name` of `domain` on `sat` and has `cloud` approve it for `pools`
/// (the offline registration: request, answer, import).
pub async fn approve(cloud: &Harness, sat: &Harness, name: &str, domain: &str, pools: &[&str]) {
    let created =
        sat.admin("POST", "/api/v1/local-accounts", Some(json!({"name": name, "smart_account": domain}))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let path = format!("/api/v1/local-accounts/{}", name.replace(' ', "%20"));
    let request = sat.admin("GET", &format!("{path}/registration"), None).await;
    assert_eq!(request.status, 200, "{:?}", request.body);
    let body = json!({"registration": request.body, "virtual_accounts": pools});
    let answer = cloud.admin("POST", "/api/v1/satellites/answer", Some(body)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let imported = sat.admin("POST", &format!("{path}/approval"), Some(answer.body)).await;
    assert_eq!(imported.status, 200, "{:?}", imported.body);
}

/// A device client of `sat` that takes answers only from the cloud's chain (S-6).
pub fn device_at(sat: &Harness, cloud: &Harness) -> ManagerClient {
    let tls = format!("{}\n{}", sat.server.ca_pem, cloud.server.ca_pem);
    ManagerClient::new(&sat.base, &tls).unwrap().answers_signed_by(&cloud.server.ca_pem).unwrap()
}

/// Registers device `sn` through `client` with `token`.
pub async fn register_at(client: &ManagerClient, sn: &str, token: &str, now_ms: i64) -> DeviceIdentity {
    let udi = Udi { pid: "APIC-SERVER-M3".into(), sn: sn.into() };
    let key = smartlic_proto::SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let (answer, ca) = client.register_learning_ca(&key, &udi, None, token, false, now_ms).await.expect("registration");
    let mut identity = DeviceIdentity::from_registration(udi, None, key, answer);
    identity.manager_ca = Some(ca);
    identity
}
