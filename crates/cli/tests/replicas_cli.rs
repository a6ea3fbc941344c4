//! Two real `smartlic server` processes over one database (SQLite; PostgreSQL with the
//! `postgres` feature) with one `SMARTLIC_DATA_KEY` (issue 15): one CA, one simulated clock, and after `kill -9` of one the other answers with
//! every change the first acknowledged. A `--database` that is malformed or cannot be opened
//! stops the start with a message naming it.

use crate::common::*;
use std::process::Stdio;

const DATA_KEY: &str = "cli-replica-data-key-0123456789abcdef";

/// A SQLite database for replicas (its URL), in a directory of its own that lives as long as
/// the guard.
fn sqlite() -> (tempfile::TempDir, String) {
    let database = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", database.path().join("shared.db").display());
    (database, url)
}

/// A `smartlic server` over the database `url`, with the tests' data key and its own `--data`.
fn replica(url: &str) -> Manager {
    let env = [("SMARTLIC_DATA_KEY", DATA_KEY)];
    start_with_env(tempfile::tempdir().unwrap(), &["--database", url], &env, "warn", Stdio::inherit())
}

#[test]
fn two_server_processes_share_the_ca_and_the_clock_and_outlive_a_kill() {
    let (_database, url) = sqlite();
    two_server_processes_share_the_ca_and_the_clock(&url);
}

fn two_server_processes_share_the_ca_and_the_clock(url: &str) {
    let mut a = replica(url);
    let b = replica(url);
    let ca = std::fs::read_to_string(&a.ca).unwrap();
    assert_eq!(std::fs::read_to_string(&b.ca).unwrap(), ca, "one CA");
    assert!(!a.data.path().join("ca-key.pem").exists(), "its key is in the database, sealed");
    ok(&a, &["clock", "set", "2031-01-01"]);
    assert!(ok(&b, &["clock", "show"]).contains("2031-01-01T00:0"));
    ok(&a, &["account", "create", "--domain", "example.com"]);
    a.stop();
    assert!(ok(&b, &["account", "list"]).contains("example.com"));
}

#[test]
fn a_database_url_that_is_malformed_or_cannot_be_opened_stops_the_start() {
    let data = tempfile::tempdir().unwrap();
    let start_keyed = |url: &str, data_key: &[(&str, &str)]| {
        let out = smartlic()
            .args(["server", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(["--database", url])
            .envs(data_key.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}: started");
        String::from_utf8(out.stderr).unwrap()
    };
    let start = |url: &str| start_keyed(url, &[]);
    let malformed = start("mysql://app@db/lic");
    assert!(malformed.contains("malformed database URL 'mysql://app@db/lic': unknown scheme 'mysql'"), "{malformed}");
    let hidden = start("postgres://app:hunter2@db.example:99999/lic");
    assert!(hidden.contains("port '99999'") && !hidden.contains("hunter2"), "{hidden}");
    let keyless = start("postgres://app@127.0.0.1:1/lic");
    assert!(
        keyless.contains("SMARTLIC_DATA_KEY is not set: on PostgreSQL the CA key is kept in the database"),
        "{keyless}"
    );
    // Nothing listens on port 1: refused, naming the database, and no SQLite file made instead.
    let unreachable = start_keyed("postgres://app@127.0.0.1:1/lic", &[("SMARTLIC_DATA_KEY", DATA_KEY)]);
    assert!(unreachable.contains("opening the database postgres://app@127.0.0.1:1/lic"), "{unreachable}");
    assert!(!data.path().join("smartlic.db").exists());
    let satellite = smartlic()
        .args(["server", "--mode", "satellite", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--database", "postgres://app@127.0.0.1:1/lic"])
        .env("SMARTLIC_DATA_KEY", DATA_KEY)
        .output()
        .unwrap();
    // A satellite may run on PostgreSQL too: refused here only because nothing listens.
    let refusal = String::from_utf8(satellite.stderr).unwrap();
    assert!(
        !satellite.status.success() && refusal.contains("opening the database postgres://app@127.0.0.1:1/lic"),
        "{refusal}"
    );
}

/// Devices register through both replicas at once; one is killed (SIGKILL) while they do. Every
/// registration either replica acknowledged is in the database the survivor serves, and the
/// survivor goes on registering.
#[test]
fn a_replica_killed_under_load_loses_no_acknowledged_registration() {
    let (_database, url) = sqlite();
    killed_under_load(&url);
}

fn killed_under_load(url: &str) {
    use smartlic_agent::client::ManagerClient;
    use smartlic_core::{Clock, SystemClock};
    use smartlic_proto::{wire::Udi, KeyAlgorithm};
    let (mut a, b) = (replica(url), replica(url));
    ok(&a, &["account", "create", "--domain", "example.com"]);
    let pool = ["--account", "example.com", "--va", "Default"];
    let token = ok(&a, &[&["token", "create"][..], &pool].concat()).trim().to_string();
    let ca = std::fs::read_to_string(&a.ca).unwrap();
    let clients = [ManagerClient::new(&a.url, &ca).unwrap(), ManagerClient::new(&b.url, &ca).unwrap()];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let acknowledged: Vec<String> = runtime.block_on(async {
        let clients = std::sync::Arc::new(clients);
        let (done, mut under_way) = tokio::sync::mpsc::unbounded_channel();
        let attempts: Vec<_> = (0..60)
            .map(|n| {
                let (clients, token, done) = (clients.clone(), token.clone(), done.clone());
                tokio::spawn(async move {
                    let udi = Udi { pid: "C9500-32C".into(), sn: format!("LOAD{n:03}") };
                    let now = SystemClock.now().0;
                    let answer = clients[n % 2].register(&udi, None, &token, false, KeyAlgorithm::Ed25519, now).await;
                    let _ = done.send(());
                    answer.ok().map(|(_, answer)| answer.instance_id)
                })
            })
            .collect();
        // Kill the first replica once ten registrations were answered, the others in flight.
        for _ in 0..10 {
            under_way.recv().await;
        }
        a.stop();
        let mut acknowledged = Vec::new();
        for attempt in attempts {
            acknowledged.extend(attempt.await.unwrap());
        }
        acknowledged
    });
    let listed = ok(&b, &[&["--json", "instance", "list"][..], &pool].concat());
    for id in &acknowledged {
        assert!(listed.contains(id.as_str()), "registration {id} was acknowledged, then lost");
    }
    // Every registration sent to the survivor was acknowledged, and it registers more.
    assert!(acknowledged.len() >= 30, "{} acknowledged", acknowledged.len());
    let more = runtime.block_on(async {
        let udi = Udi { pid: "C9500-32C".into(), sn: "AFTER".into() };
        let survivor = ManagerClient::new(&b.url, &ca).unwrap();
        survivor.register(&udi, None, &token, false, KeyAlgorithm::Ed25519, SystemClock.now().0).await
    });
    assert!(more.is_ok(), "{more:?}");
}

/// The same over the private PostgreSQL server (ignored, saying why, when PostgreSQL is not
/// installed, unless `SMARTLIC_REQUIRE_POSTGRES` is set).
#[cfg(feature = "postgres")]
mod postgres {
    use smartlic_store::postgres::PrivateCluster;

    fn database() -> Option<String> {
        Some(PrivateCluster::shared()?.fresh_database().unwrap().to_string())
    }

    #[test]
    fn postgres_two_server_processes_share_the_ca_and_the_clock_and_outlive_a_kill() {
        let Some(url) = database() else { return };
        super::two_server_processes_share_the_ca_and_the_clock(&url);
    }

    #[test]
    fn postgres_a_replica_killed_under_load_loses_no_acknowledged_registration() {
        let Some(url) = database() else { return };
        super::killed_under_load(&url);
    }
}
