//! A satellite next to a cloud harness (issue 12): started in satellite mode, with a local
//! account approved by the cloud through the offline answer, devices that trust the cloud CA for
//! answers and the satellite's for TLS, and the synchronisation steps by files.

use super::{server_config, usage, Answer, Harness};
use serde_json::{json, Value};
use smartlic_agent::client::{ClientError, ManagerClient};
use smartlic_agent::identity::DeviceIdentity;
use smartlic_proto::wire::{AuthorizationStatus, Udi};
use smartlic_proto::KeyAlgorithm;
use smartlic_server::DatabaseConfig;

pub const DOMAIN: &str = "example.com";
pub const TAG: &str = "ACI Advantage";

/// A manager started with `--mode satellite`.
pub async fn satellite() -> Harness {
    satellite_over(DatabaseConfig::default()).await
}

/// [`satellite`] over `database`.
pub async fn satellite_over(database: DatabaseConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.mode = smartlic_server::Mode::Satellite;
    config.database = database;
    Harness::start(dir, config).await
}

/// A cloud with `example.com`: 12 ACI Advantage in Default, 5 in `Lab`.
pub async fn cloud() -> Harness {
    cloud_over(DatabaseConfig::default()).await
}

/// [`cloud`] over `database`.
pub async fn cloud_over(database: DatabaseConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.database = database;
    let cloud = Harness::start(dir, config).await;
    cloud.account_with(DOMAIN, &[(TAG, 12)]).await;
    let va =
        cloud.admin("POST", &format!("/api/v1/accounts/{DOMAIN}/virtual-accounts"), Some(json!({"name": "Lab"}))).await;
    assert_eq!(va.status, 201, "{:?}", va.body);
    let path = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/Lab/licenses");
    assert_eq!(cloud.admin("POST", &path, Some(json!({"tag": TAG, "count": 5}))).await.status, 201);
    cloud
}

/// A REST answer with `status` whose error message holds `words`.
pub fn refused(a: &Answer, status: u16, words: &str) {
    assert_eq!(a.status, status, "{:?}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message}");
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

/// A satellite whose local account `Plant` of `example.com` the cloud approved by files,
/// serving `pool`; answers the satellite's id in the cloud.
pub async fn approved(cloud: &Harness, sat: &Harness, pool: &str) -> i64 {
    approve(cloud, sat, "Plant", DOMAIN, &[pool]).await;
    let listed = sat.admin("GET", "/api/v1/local-accounts", None).await.body;
    listed["local_accounts"][0]["cloud_satellite_id"].as_i64().unwrap()
}

/// A device client of `sat` that takes answers only from the cloud's chain (S-6).
pub fn device_at(sat: &Harness, cloud: &Harness) -> ManagerClient {
    let tls = format!("{}\n{}", sat.server.ca_pem, cloud.server.ca_pem);
    ManagerClient::new(&sat.base, &tls).unwrap().answers_signed_by(&cloud.server.ca_pem).unwrap()
}

/// Registers device `sn` through `client` with `token`: its identity and the CA it learned.
pub async fn try_register_at(
    client: &ManagerClient,
    sn: &str,
    token: &str,
    now_ms: i64,
) -> Result<(DeviceIdentity, String), ClientError> {
    let udi = Udi { pid: "APIC-SERVER-M3".into(), sn: sn.into() };
    let key = smartlic_proto::SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let (answer, ca) = client.register_learning_ca(&key, &udi, None, token, false, now_ms).await?;
    let mut identity = DeviceIdentity::from_registration(udi, None, key, answer);
    identity.manager_ca = Some(ca.clone());
    Ok((identity, ca))
}

/// Registers device `sn` through `client` with `token`, which must succeed.
pub async fn register_at(client: &ManagerClient, sn: &str, token: &str, now_ms: i64) -> DeviceIdentity {
    try_register_at(client, sn, token, now_ms).await.expect("registration").0
}

/// The message of a signed refusal a device received.
pub fn refusal_text(e: &ClientError) -> String {
    match e {
        ClientError::Refused { message, .. } => message.clone(),
        other => panic!("expected a signed refusal, got {other:?}"),
    }
}

/// A device at the satellite, registered in `Lab`, using `count` ACI Advantage.
pub async fn device(sat: &Harness, cloud: &Harness, sn: &str, count: i64) -> (ManagerClient, DeviceIdentity) {
    let token = sat.token(DOMAIN, "Lab", json!({})).await;
    let client = device_at(sat, cloud);
    let identity = register_at(&client, sn, &token, sat.now_ms()).await;
    let auth = client.authorize(&identity, &usage(&[(TAG, count)]), sat.now_ms()).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);
    (client, identity)
}

/// The pool's `tag` line in a license listing.
pub fn line(licenses: &Value, tag: &str) -> Value {
    licenses["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == tag).cloned().unwrap_or(Value::Null)
}

/// ACI Advantage in use in a pool of example.com (a tag with nothing purchased or used is not
/// listed).
pub async fn in_use(h: &Harness, pool: &str) -> i64 {
    line(&h.licenses(DOMAIN, pool).await, TAG)["in_use"].as_i64().unwrap_or(0)
}

/// Manual synchronisation, step 1: the satellite's request file.
pub async fn export(sat: &Harness, full: bool) -> String {
    let a = sat.admin("POST", "/api/v1/sync/export", Some(json!({"full": full}))).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["request"].as_str().unwrap().to_string()
}

/// Manual synchronisation, step 2: the cloud's File Sync.
pub async fn file_sync(cloud: &Harness, request: &str) -> Answer {
    cloud.admin("POST", "/api/v1/satellites/file-sync", Some(json!({"request": request}))).await
}

/// Manual synchronisation, step 3: the satellite imports the response.
pub async fn import(sat: &Harness, response: &str) -> Answer {
    sat.admin("POST", "/api/v1/sync/import", Some(json!({"response": response}))).await
}

/// A network synchronisation of the satellite's only local account with `cloud`, which must succeed.
pub async fn sync_now(sat: &Harness, cloud: &Harness, full: bool) -> Value {
    let synced = sat.admin("POST", "/api/v1/sync/now", Some(json!({"cloud": cloud.base, "full": full}))).await;
    assert_eq!(synced.status, 200, "{:?}", synced.body);
    synced.body
}

/// The manager's counters agree with the records they count (`/api/v1/check`).
pub async fn consistent(h: &Harness) {
    let check = h.admin("GET", "/api/v1/check", None).await.body;
    assert_eq!(check["consistent"], true, "{check}");
}

/// The signing key of manager `h` (a satellite signs with its CA's key, the one the cloud
/// certified at approval).
pub fn key_of(h: &Harness) -> smartlic_proto::CertificateAuthority {
    smartlic_server::tls::load_or_create_ca(h.dir.path(), 0).unwrap().0
}
