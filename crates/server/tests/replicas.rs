//! Replicas of one manager over one database (issue 15, part A): each a real manager on its own
//! loopback port and `--data`, all over the same database URL with the same
//! `SMARTLIC_DATA_KEY`. Every test takes the URL, so the same test runs on SQLite here and on
//! PostgreSQL once that backend's harness starts one.

use crate::common;

use common::*;
use serde_json::{json, Value};
use smartlic_agent::client::{request_bytes, ClientError};
use smartlic_proto::reservation::{RequestCode, ReservationKind};
use smartlic_proto::wire::{self, Envelope};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use smartlic_server::data_key::DataKey;
use smartlic_server::tls::{CA_FILE, CA_KEY_FILE};
use smartlic_server::{DatabaseConfig, ServerConfig};
use smartlic_store::DatabaseUrl;
use std::sync::Arc;

/// The value of `SMARTLIC_DATA_KEY` every replica of these tests is given.
const DATA_KEY: &str = "replica-test-data-key-0123456789abcdef";

/// A SQLite database for replicas, in its own directory (no replica's `--data`).
struct SqliteDatabase {
    _dir: tempfile::TempDir,
    url: DatabaseUrl,
}

fn sqlite() -> SqliteDatabase {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("shared.db"));
    SqliteDatabase { _dir: dir, url }
}

/// A replica's configuration: its own `--data` in `dir`, the database `url`, `data_key`.
fn replica_config(dir: &std::path::Path, url: &DatabaseUrl, data_key: Option<&str>) -> ServerConfig {
    let mut config = server_config(dir);
    let data_key = data_key.map(|k| DataKey::from_secret(k).unwrap());
    config.database = DatabaseConfig { url: Some(url.clone()), data_key };
    config
}

/// One replica over `url`, with the tests' data key.
async fn replica(url: &DatabaseUrl) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = replica_config(dir.path(), url, Some(DATA_KEY));
    Harness::start(dir, config).await
}

/// `n` replicas over `url`, started at the same time (an empty database sees them race).
async fn replicas(url: &DatabaseUrl, n: usize) -> Vec<Harness> {
    let starting: Vec<_> =
        (0..n).map(|_| url.clone()).map(|url| tokio::spawn(async move { replica(&url).await })).collect();
    let mut started = Vec::new();
    for replica in starting {
        started.push(replica.await.unwrap());
    }
    started
}

/// Why a manager over `url` with `data_key` (and its own new `--data`) does not start.
async fn refused_start(url: &DatabaseUrl, data_key: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    match smartlic_server::start(replica_config(dir.path(), url, data_key)).await {
        Ok(_) => panic!("the manager started"),
        Err(e) => format!("{e:#}"),
    }
}

async fn ready(h: &Harness) -> Value {
    let answer = h.call("", "GET", "/ready", None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body
}

/// Who holds the jobs lease, as `h`'s `/ready` says.
async fn jobs_holder(h: &Harness) -> String {
    ready(h).await["jobs_lease"]["holder"].as_str().unwrap_or_default().to_string()
}

async fn replicas_share_one_ca(url: &DatabaseUrl) {
    let all = replicas(url, 2).await;
    let (a, b) = (&all[0], &all[1]);
    assert_eq!(a.server.ca_pem, b.server.ca_pem, "one CA for both");
    for h in &all {
        // Each writes the certificate to its --data; the key stays in the database, sealed.
        assert_eq!(std::fs::read_to_string(h.dir.path().join(CA_FILE)).unwrap(), h.server.ca_pem);
        assert!(!h.dir.path().join(CA_KEY_FILE).exists());
    }
    // A device registered through one replica is served by the other, with the same CA.
    let token = a.account_with("example.com", &[("ACI Advantage", 3)]).await;
    let device = a.register("REPLICA-CA", &token).await;
    b.devices.authorize(&device, &usage(&[("ACI Advantage", 2)]), b.now_ms()).await.unwrap();
    assert_eq!(a.licenses("example.com", "Default").await["licenses"][0]["in_use"], 2);
    // A later replica finds the same CA.
    let c = replica(url).await;
    assert_eq!(c.server.ca_pem, a.server.ca_pem);
}

async fn a_wrong_or_missing_data_key_is_refused(url: &DatabaseUrl) {
    let first = replica(url).await;
    let wrong = refused_start(url, Some("another-data-key-0123456789abcdefgh")).await;
    assert!(wrong.contains("SMARTLIC_DATA_KEY does not open the CA key stored in the database"), "{wrong}");
    let short = DataKey::from_secret("short").unwrap_err().to_string();
    assert!(short.contains("SMARTLIC_DATA_KEY has 5 characters; it needs at least 32"), "{short}");
    let missing = refused_start(url, None).await;
    let expected = match url {
        DatabaseUrl::Sqlite(_) => "the database holds the CA key encrypted with SMARTLIC_DATA_KEY, which is not set",
        DatabaseUrl::Postgres(_) => "SMARTLIC_DATA_KEY is not set: on PostgreSQL the CA key is kept in the database",
    };
    assert!(missing.contains(expected), "{missing}");
    // Nothing changed: the CA is the first one, and a replica with the right key still starts.
    assert_eq!(replica(url).await.server.ca_pem, first.server.ca_pem);
}

async fn the_simulated_clock_is_shared(url: &DatabaseUrl) {
    let all = replicas(url, 2).await;
    let (a, b) = (&all[0], &all[1]);
    a.set_clock("2031-03-01").await;
    b.relogin().await;
    for h in &all {
        let now = h.admin("GET", "/api/v1/clock", None).await.body["now"].as_str().unwrap().to_string();
        assert!(now.starts_with("2031-03-01T00:0"), "{now}");
    }
    // Set on the other one, seen by the first; and by a replica started later.
    b.set_clock("2032-07-15").await;
    a.relogin().await;
    assert!(a.now_ms() >= smartlic_core::Timestamp::parse("2032-07-15").unwrap().0);
    let c = replica(url).await;
    assert!(c.admin("GET", "/api/v1/clock", None).await.body["now"].as_str().unwrap().starts_with("2032-07-15"));
}

async fn one_replica_runs_the_jobs_until_it_dies(url: &DatabaseUrl) {
    use smartlic_server::jobs::{run_leased, JOBS_LEASE};
    let a = replica(url).await;
    // Whatever the loops did so far, a run now leaves the lease with the first replica.
    assert!(run_leased(&a.server.state).await.unwrap());
    let b = replica(url).await;
    assert!(!run_leased(&b.server.state).await.unwrap(), "the second replica does not run the jobs");
    let (a_id, b_id) = (a.server.state.replica.id.clone(), b.server.state.replica.id.clone());
    assert_ne!(a_id, b_id);
    assert_eq!(jobs_holder(&a).await, a_id);
    assert_eq!(jobs_holder(&b).await, a_id);
    assert_eq!(ready(&b).await["replica"], b_id.as_str());
    // The holder stalls in the middle of a run (it holds the run lock) and then goes silent;
    // within the lease's time (three job intervals: three hours here) the lease stays with it,
    // even when the clock moves.
    let stalled_run = a.server.state.store.try_run_lock(JOBS_LEASE).await.unwrap().expect("no run going on");
    a.server.stop();
    let ttl = b.server.state.replica.lease_ttl_ms;
    assert_eq!(ttl, 3 * 3600 * 1000);
    let now = b.now_ms();
    b.set_clock(&smartlic_core::Timestamp(now + ttl / 2).to_rfc3339()).await;
    assert!(!run_leased(&b.server.state).await.unwrap());
    assert_eq!(jobs_holder(&b).await, a_id);
    // Past it, the survivor takes the lease (here in the clock move's own run of the jobs),
    // but runs nothing while the stalled run goes on.
    b.set_clock(&smartlic_core::Timestamp(now + ttl + 60_000).to_rfc3339()).await;
    assert_eq!(jobs_holder(&b).await, b_id);
    assert!(!run_leased(&b.server.state).await.unwrap(), "two runs at once");
    // The stalled run ends (or its process dies, and the database or the kernel releases
    // the lock): the survivor runs the jobs.
    stalled_run.release().await.unwrap();
    assert!(run_leased(&b.server.state).await.unwrap());
    // The first one, were it back, finds the lease taken.
    assert!(!run_leased(&a.server.state).await.unwrap());
    // The holder restarted on its --data is the same replica: it takes its lease back at once.
    let Harness { dir, server, .. } = b;
    server.stop();
    drop(server);
    let config = replica_config(dir.path(), url, Some(DATA_KEY));
    let restarted = Harness::start(dir, config).await;
    assert_eq!(restarted.server.state.replica.id, b_id);
    assert!(run_leased(&restarted.server.state).await.unwrap());
}

async fn device_requests_alternate_between_replicas(url: &DatabaseUrl) {
    let all = replicas(url, 2).await;
    let (a, b) = (&all[0], &all[1]);
    let token = a.account_with("example.com", &[("ACI Advantage", 4)]).await;
    let device = b.register("ALTERNATE", &token).await;
    for (i, h) in all.iter().cycle().take(6).enumerate() {
        let count = i64::try_from(i % 4).unwrap() + 1;
        h.devices.authorize(&device, &usage(&[("ACI Advantage", count)]), h.now_ms()).await.unwrap();
        assert_eq!(a.licenses("example.com", "Default").await["licenses"][0]["in_use"], count);
    }
    // A request answered by one replica is a replay to the other.
    let req = wire::AuthorizeRequest {
        envelope: Envelope { version: 1, timestamp: a.now_ms(), nonce: "replica-nonce-0123456789".into() },
        instance_id: device.instance_id.clone(),
        hostname: None,
        usage: usage(&[("ACI Advantage", 1)]),
    };
    let (body, signature) = request_bytes(wire::PATH_AUTHORIZE, device.signing_key(), &req).unwrap();
    let send = |h: &Harness| {
        h.http
            .post(format!("{}{}", h.base, wire::PATH_AUTHORIZE))
            .header(wire::SIGNATURE_HEADER, &signature)
            .body(body.clone())
            .send()
    };
    assert_eq!(send(a).await.unwrap().status(), 200);
    let replayed = send(b).await.unwrap();
    assert_eq!(replayed.status(), 409);
    let answer: Value = replayed.json().await.unwrap();
    assert_eq!(answer["error"]["code"], wire::code::REPLAY);
}

/// Registers `PID:C9500-32C,SN:{sn}` with `token` through `h`; whether it was registered.
async fn registered(h: &Harness, sn: String, token: &str) -> bool {
    let udi = wire::Udi { pid: "C9500-32C".into(), sn };
    let done = h.devices.register(&udi, None, token, false, KeyAlgorithm::Ed25519, h.now_ms()).await;
    match done {
        Ok(_) => true,
        Err(ClientError::Refused { code, .. }) if code == wire::code::INVALID_TOKEN => false,
        Err(e) => panic!("registration failed: {e}"),
    }
}

async fn registrations_across_replicas_respect_a_tokens_uses(url: &DatabaseUrl) {
    let all = Arc::new(replicas(url, 2).await);
    all[0].account_with("example.com", &[("ACI Advantage", 100)]).await;
    let token: Arc<str> = all[1].token("example.com", "Default", json!({"max_uses": 5})).await.into();
    let attempts: Vec<_> = (0..50)
        .map(|n| {
            let (all, token) = (all.clone(), token.clone());
            tokio::spawn(async move { registered(&all[n % 2], format!("USES{n:02}"), &token).await })
        })
        .collect();
    let mut registrations = 0;
    for attempt in attempts {
        registrations += usize::from(attempt.await.unwrap());
    }
    assert_eq!(registrations, 5);
    let tokens = all[0].admin("GET", "/api/v1/accounts/example.com/virtual-accounts/Default/tokens", None).await;
    let uses: Vec<i64> =
        tokens.body["tokens"].as_array().unwrap().iter().map(|t| t["uses"].as_i64().unwrap()).collect();
    assert!(uses.contains(&5), "{uses:?}");
    let listed = all[1].admin("GET", "/api/v1/accounts/example.com/instances", None).await;
    assert_eq!(listed.body["instances"].as_array().unwrap().len(), 5, "{:?}", listed.body);
}

async fn reservations_across_replicas_never_exceed_the_pool(url: &DatabaseUrl) {
    let all = Arc::new(replicas(url, 2).await);
    all[0].account_with("example.com", &[("ACI Advantage", 6)]).await;
    let attempts: Vec<_> = (0..24)
        .map(|n| {
            let all = all.clone();
            tokio::spawn(async move {
                let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
                let sn = format!("RSV{n:02}");
                let code = RequestCode::new(ReservationKind::Specific, "C9300-24UX", &sn, &key.public_key()).unwrap();
                let body =
                    json!({"request_code": code.to_string(), "licenses": [{"tag": "ACI Advantage", "count": 1}]});
                let path = "/api/v1/accounts/example.com/virtual-accounts/Default/reservations";
                let answer = all[n % 2].admin("POST", path, Some(body)).await;
                assert!([201, 409].contains(&answer.status), "{:?}", answer.body);
                answer.status == 201
            })
        })
        .collect();
    let mut reserved = 0;
    for attempt in attempts {
        reserved += usize::from(attempt.await.unwrap());
    }
    assert_eq!(reserved, 6);
    for h in all.iter() {
        let licenses = h.licenses("example.com", "Default").await;
        assert_eq!(licenses["licenses"][0]["reserved"], 6, "{licenses:?}");
    }
}

#[tokio::test]
async fn sqlite_replicas_share_one_ca() {
    replicas_share_one_ca(&sqlite().url).await;
}

#[tokio::test]
async fn sqlite_a_wrong_or_missing_data_key_is_refused() {
    a_wrong_or_missing_data_key_is_refused(&sqlite().url).await;
}

#[tokio::test]
async fn sqlite_the_simulated_clock_is_shared() {
    the_simulated_clock_is_shared(&sqlite().url).await;
}

#[tokio::test]
async fn sqlite_one_replica_runs_the_jobs_until_it_dies() {
    one_replica_runs_the_jobs_until_it_dies(&sqlite().url).await;
}

#[tokio::test]
async fn sqlite_device_requests_alternate_between_replicas() {
    device_requests_alternate_between_replicas(&sqlite().url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_registrations_across_replicas_respect_a_tokens_uses() {
    registrations_across_replicas_respect_a_tokens_uses(&sqlite().url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reservations_across_replicas_never_exceed_the_pool() {
    reservations_across_replicas_never_exceed_the_pool(&sqlite().url).await;
}

/// The same tests on a fresh database of the private PostgreSQL server (ignored, saying why,
/// when PostgreSQL is not installed, unless `SMARTLIC_REQUIRE_POSTGRES` is set).
#[cfg(feature = "postgres")]
mod postgres {
    use smartlic_store::postgres::PrivateCluster;
    use smartlic_store::DatabaseUrl;

    fn database() -> Option<DatabaseUrl> {
        Some(DatabaseUrl::Postgres(PrivateCluster::shared()?.fresh_database().unwrap()))
    }

    #[tokio::test]
    async fn postgres_replicas_share_one_ca() {
        let Some(url) = database() else { return };
        super::replicas_share_one_ca(&url).await;
    }

    #[tokio::test]
    async fn postgres_a_wrong_or_missing_data_key_is_refused() {
        let Some(url) = database() else { return };
        super::a_wrong_or_missing_data_key_is_refused(&url).await;
    }

    #[tokio::test]
    async fn postgres_the_simulated_clock_is_shared() {
        let Some(url) = database() else { return };
        super::the_simulated_clock_is_shared(&url).await;
    }

    #[tokio::test]
    async fn postgres_one_replica_runs_the_jobs_until_it_dies() {
        let Some(url) = database() else { return };
        super::one_replica_runs_the_jobs_until_it_dies(&url).await;
    }

    #[tokio::test]
    async fn postgres_device_requests_alternate_between_replicas() {
        let Some(url) = database() else { return };
        super::device_requests_alternate_between_replicas(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_registrations_across_replicas_respect_a_tokens_uses() {
        let Some(url) = database() else { return };
        super::registrations_across_replicas_respect_a_tokens_uses(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_reservations_across_replicas_never_exceed_the_pool() {
        let Some(url) = database() else { return };
        super::reservations_across_replicas_never_exceed_the_pool(&url).await;
    }
}

/// A single manager's CA (files in `--data`, no data key) moves into the database when the
/// manager is restarted with `SMARTLIC_DATA_KEY`: its devices keep trusting it.
#[tokio::test]
async fn a_single_managers_ca_moves_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join(smartlic_server::backup::DATABASE_FILE));
    let alone = smartlic_server::start(replica_config(dir.path(), &url, None)).await.unwrap();
    let ca = alone.ca_pem.clone();
    assert!(dir.path().join(CA_KEY_FILE).exists(), "without the key, the CA key is a file as before");
    alone.shutdown().await;
    let sealed = smartlic_server::start(replica_config(dir.path(), &url, Some(DATA_KEY))).await.unwrap();
    assert_eq!(sealed.ca_pem, ca);
    sealed.shutdown().await;
    // Another replica's --data gets the same CA from the database.
    assert_eq!(replica(&url).await.server.ca_pem, ca);
}
