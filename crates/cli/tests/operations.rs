//! The real `smartlic server` binary stopped with SIGTERM under load: requests in progress are
//! answered, every acknowledged change is in the database after exit, the database is closed
//! cleanly (WAL checkpointed), the exit status is 0; its JSON log has one access line per
//! request, with the id the response carried, and no secret.

use crate::common;

use common::{start_with, SECRET};
use serde_json::Value;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Clients creating accounts one after another, each on its own.
const WORKERS: usize = 16;
/// Acknowledged creations before the SIGTERM: the workers are then busy.
const BEFORE_STOP: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_requests_in_progress_and_closes_the_database() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut m = start_with(data, &["--log-format", "json", "--shutdown-timeout", "20"], "info", Stdio::from(log));
    let http = smartlic_agent::tls::https_client(&std::fs::read_to_string(&m.ca).unwrap()).unwrap();
    let form = [("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", SECRET)];
    let login: Value =
        http.post(format!("{}/oauth/token", m.url)).form(&form).send().await.unwrap().json().await.unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (http, url, token) = (http.clone(), m.url.clone(), token.clone());
        let (acknowledged, enough) = (acknowledged.clone(), enough.clone());
        workers.push(tokio::spawn(async move {
            // (request id sent, id echoed, domain) of each creation the manager acknowledged.
            let mut done = Vec::new();
            for n in 0.. {
                let (id, domain) = (format!("w{w}-{n}"), format!("w{w}-{n}.example.com"));
                let sent = http
                    .post(format!("{url}/api/v1/accounts"))
                    .bearer_auth(&token)
                    .header("X-Request-Id", &id)
                    .json(&serde_json::json!({ "domain": domain }))
                    .send()
                    .await;
                let Ok(answer) = sent else { break };
                if answer.status() != 201 {
                    break;
                }
                let echoed = answer.headers()["x-request-id"].to_str().unwrap().to_string();
                done.push((id, echoed, domain));
                if acknowledged.fetch_add(1, Ordering::SeqCst) + 1 == BEFORE_STOP {
                    enough.notify_one();
                }
            }
            done
        }));
    }
    enough.notified().await;
    m.terminate();
    let mut done = Vec::new();
    for w in workers {
        done.extend(w.await.unwrap());
    }
    let status = tokio::task::block_in_place(|| m.exited_within(Duration::from_secs(30)));
    assert!(status.success(), "exit status {status:?}");
    assert!(done.len() >= BEFORE_STOP, "{} acknowledged", done.len());

    // Every acknowledged creation is stored; the WAL was checkpointed into the database.
    let db = m.data.path().join("smartlic.db");
    let wal = m.data.path().join("smartlic.db-wal");
    assert!(std::fs::metadata(&wal).map_or(true, |w| w.len() == 0), "the WAL was left behind");
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    for (_, _, domain) in &done {
        let found: i64 =
            conn.query_row("SELECT COUNT(*) FROM smart_accounts WHERE domain = ?1", [domain], |r| r.get(0)).unwrap();
        assert_eq!(found, 1, "{domain} was acknowledged but is not stored");
    }

    // The log: JSON lines; one access line per acknowledged request, with its id; no secret.
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains(SECRET) && !text.contains(&token), "a secret is in the log");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "smartlic::access").collect();
    for (sent, echoed, _) in &done {
        assert_eq!(sent, echoed);
        let line =
            access.iter().find(|l| l["request_id"] == sent.as_str()).unwrap_or_else(|| panic!("no line for {sent}"));
        assert_eq!(line["method"], "POST");
        assert_eq!(line["route"], "/api/v1/accounts");
        assert_eq!(line["status"], 201);
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
        assert!(line["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{line}");
    }
    assert!(lines.iter().any(|l| l["message"] == "stopped: database closed"), "{text}");
}
