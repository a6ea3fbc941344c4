//! The device daemon on a loopback port: product REST API answers, timers fired by the
//! daemon on the device clock, and the state-directory lock.

use serde_json::{json, Value};
use smartlic_agent::daemon::{self, api, LockError, Options};
use smartlic_agent::device::Device;
use smartlic_core::agent::Event;
use smartlic_core::time::DAY_MS;
use smartlic_core::{Clock, SimulatedClock, Timestamp};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A clock the test moves while the daemon reads it.
struct TestClock(Arc<SimulatedClock>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

struct Daemon {
    dir: tempfile::TempDir,
    clock: Arc<SimulatedClock>,
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), daemon::DaemonError>>>,
}

impl Daemon {
    /// A new device (in evaluation, nothing configured) with `usage`, served on 127.0.0.1:0.
    async fn start(usage: &[(&str, u32)]) -> Daemon {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(SimulatedClock::new());
        clock.set(Timestamp::parse("2026-03-01T00:00:00Z").unwrap());
        let catalog: BTreeMap<String, String> =
            [("ACI Essentials", "ACI Essentials license"), ("ACI Advantage", "ACI Advantage license")]
                .iter()
                .map(|(t, n)| (t.to_string(), n.to_string()))
                .collect();
        let mut device = Device::init(
            dir.path(),
            "APIC-SERVER-M3",
            "FCH2001V0AB",
            Some("apic1"),
            catalog,
            Box::new(TestClock(clock.clone())),
        )
        .unwrap();
        for (tag, count) in usage {
            device.apply(Event::SetUsage { tag: tag.to_string(), count: *count }).await.unwrap();
        }
        let lock = daemon::lock(dir.path()).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let options =
            Options { min_sleep: Duration::from_millis(5), max_sleep: Duration::from_millis(50), ..Options::default() };
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (addr, serve) = daemon::bind(device, lock, listen, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
        let task = tokio::spawn(serve);
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Daemon { dir, clock, base: format!("http://{addr}{}", api::BASE), http, stop: Some(tx), task: Some(task) }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            other => panic!("method {other}"),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self.dir
    }
}

fn error(answer: &(u16, Value)) -> (u16, &str, &str) {
    (answer.0, answer.1["code"].as_str().unwrap_or(""), answer.1["message"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn transport_settings_are_validated_with_the_seed_messages() {
    let d = Daemon::start(&[]).await;
    let cases = [
        (json!({}), api::text::TRANSPORT_MODE),
        (json!({"transport_mode": 3}), api::text::TRANSPORT_MODE),
        (json!({"transport_mode": -1}), api::text::TRANSPORT_MODE),
        (json!({"transport_mode": "direct"}), api::text::TRANSPORT_MODE),
        (json!({"transport_mode": 1}), api::text::GATEWAY_URL),
        (json!({"transport_mode": 1, "url": "ftp://satellite.example.com"}), api::text::GATEWAY_URL),
        (json!({"transport_mode": 0, "url": "not a url"}), api::text::GATEWAY_URL),
        (json!({"transport_mode": 2}), api::text::PROXY_MISSING),
        (json!({"transport_mode": 2, "proxy_ip": "10.0.0.1"}), api::text::PROXY_MISSING),
        (json!({"transport_mode": 2, "proxy_port": 3128}), api::text::PROXY_MISSING),
        (json!({"transport_mode": 2, "proxy_ip": "300.1.2.3", "proxy_port": 3128}), api::text::PROXY_IP),
        (json!({"transport_mode": 2, "proxy_ip": "bad host", "proxy_port": 3128}), api::text::PROXY_IP),
        (json!({"transport_mode": 2, "proxy_ip": "10.0.0.1", "proxy_port": 0}), api::text::PROXY_PORT),
        (json!({"transport_mode": 2, "proxy_ip": "10.0.0.1", "proxy_port": 65536}), api::text::PROXY_PORT),
        (json!({"transport_mode": 2, "proxy_ip": "10.0.0.1", "proxy_port": "x"}), api::text::PROXY_PORT),
    ];
    for (body, message) in cases {
        let answer = d.post("transportsettings", body.clone()).await;
        assert_eq!(error(&answer), (400, "INVALID_PARAMETER", message), "{body}");
    }
    // Nothing was changed by the refusals.
    let (_, details) = d.call("GET", "licensedetails", None).await;
    assert_eq!(details["transport"]["url"], Value::Null);
    assert_eq!(details["transport"]["available"], false);

    // Not JSON at all.
    let r = d.http.post(format!("{}/transportsettings", d.base)).body("{oops").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "INVALID_PARAMETER");

    // Valid: through a proxy, then through a transport gateway.
    let (status, v) = d
        .post(
            "transportsettings",
            json!({"transport_mode": 2, "url": "https://127.0.0.1:8443", "proxy_ip": "127.0.0.1", "proxy_port": "3128"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["transport"]["mode"], 2);
    assert_eq!(v["transport"]["url"], "https://127.0.0.1:8443");
    assert_eq!(v["transport"]["proxy"], json!({"server": "127.0.0.1", "port": 3128}));
    assert_eq!(v["transport"]["available"], true);
    let (status, v) =
        d.post("transportsettings", json!({"transport_mode": 1, "url": "https://satellite.example.com:8443/"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["transport"]["mode"], 1);
    assert_eq!(v["transport"]["type"], "Satellite");
    assert_eq!(v["transport"]["proxy"], Value::Null);
    // Saved: the state on disk has it after the daemon stops.
    let dir = d.stop().await;
    let device = Device::open(dir.path(), Box::new(smartlic_core::SystemClock)).unwrap();
    assert_eq!(device.config.transport.url.as_deref(), Some("https://satellite.example.com:8443/"));
}

#[tokio::test]
async fn register_without_transport_answers_500_with_the_transport_reason() {
    let d = Daemon::start(&[]).await;
    // A token is required.
    let answer = d.post("register", json!({"force": false})).await;
    assert_eq!(error(&answer), (400, "INVALID_PARAMETER", smartlic_proto::wire::text::INVALID_TOKEN));
    let answer = d.post("register", json!({"token": "NTc4ZjQ5YjktOTc5ZC00ZDY3LWE3Y2QtMDM2ODhhYjQ0ZDc1"})).await;
    assert_eq!(error(&answer), (500, "INTERNAL_SERVER_ERROR", api::text::SEND_ERROR));
    assert_eq!(answer.1["reason"], "Communication transport not available");
    let (_, v) = d.call("GET", "licensedetails", None).await;
    assert_eq!(v["registration"]["status"], "FAILED");
    assert_eq!(v["registration"]["display"], "UNREGISTERED - REGISTRATION FAILED");
    assert_eq!(v["registration"]["register_time"]["status"], "FAILED");
    assert_eq!(v["registration"]["register_time"]["failure"], "Communication transport not available");
    assert!(v["faults"].as_array().unwrap().contains(&json!("Registration Failed")));
    d.stop().await;
}

#[tokio::test]
async fn unregistered_device_refuses_deregister_and_renewals() {
    let d = Daemon::start(&[]).await;
    for (path, message) in [
        ("deregister", api::text::DEREGISTER_UNREGISTERED),
        ("renewID", api::text::RENEW_ID_UNREGISTERED),
        ("renewAuth", api::text::RENEW_AUTH_UNREGISTERED),
    ] {
        let answer = d.post(path, json!({})).await;
        assert_eq!(error(&answer), (405, "METHOD_NOT_ALLOWED", message), "{path}");
        // No body at all reads the same.
        let answer = d.call("POST", path, None).await;
        assert_eq!(error(&answer), (405, "METHOD_NOT_ALLOWED", message), "{path}");
    }
    d.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_json() {
    let d = Daemon::start(&[]).await;
    let answer = d.call("GET", "nothing-here", None).await;
    assert_eq!(error(&answer).0, 404);
    assert_eq!(answer.1["code"], "NOT_FOUND");
    let answer = d.call("GET", "register", None).await;
    assert_eq!(error(&answer).0, 405);
    assert_eq!(answer.1["code"], "METHOD_NOT_ALLOWED");
    let answer = d.call("POST", "licensedetails", Some(json!({}))).await;
    assert_eq!((answer.0, answer.1["code"].as_str()), (405, Some("METHOD_NOT_ALLOWED")));
    let answer = d.call("DELETE", "deregister", None).await;
    assert_eq!((answer.0, answer.1["code"].as_str()), (405, Some("METHOD_NOT_ALLOWED")));
    d.stop().await;
}

#[tokio::test]
async fn license_details_in_evaluation() {
    let d = Daemon::start(&[("ACI Essentials", 10), ("No Such Tag", 1)]).await;
    let (status, v) = d.call("GET", "licensedetails", None).await;
    assert_eq!(status, 200);
    assert_eq!(v["udi"], json!({"pid": "APIC-SERVER-M3", "sn": "FCH2001V0AB", "hostname": "apic1"}));
    assert_eq!(v["enabled"], true);
    assert_eq!(v["registration"], json!({"status": "NOT_REGISTERED", "display": "UNREGISTERED"}));
    let auth = &v["authorization"];
    assert_eq!(auth["status"], "EVAL");
    assert_eq!(auth["display"], "EVALUATION MODE");
    assert_eq!(auth["evaluation"]["counting"], true);
    let left = auth["evaluation"]["seconds_left"].as_i64().unwrap();
    assert!((90 * 86_400 - 5..=90 * 86_400).contains(&left), "{left}");
    assert!(
        auth["evaluation"]["time_left"].as_str().unwrap().starts_with("89 days, 23 hours, 59 minutes")
            || auth["evaluation"]["time_left"].as_str().unwrap().starts_with("90 days, 0 hours")
    );
    assert_eq!(
        v["features"],
        json!([
            {"tag": "ACI Essentials", "name": "ACI Essentials license", "in_use": 10, "status": "EVALUATION"},
            {"tag": "No Such Tag", "name": null, "in_use": 1, "status": "INVALID_TAG"},
        ])
    );
    assert_eq!(v["faults"], json!(["Evaluation Mode"]));
    assert_eq!(v["transport"]["mode"], 0);
    assert_eq!(v["transport"]["available"], false);
    assert_eq!(v["clock"].as_str().unwrap().get(..10), Some("2026-03-01"));

    // The evaluation counts down with the device clock, between timer steps too.
    d.clock.advance(DAY_MS);
    let (_, v) = d.call("GET", "licensedetails", None).await;
    let later = v["authorization"]["evaluation"]["seconds_left"].as_i64().unwrap();
    assert!((left - 86_400 - 5..=left - 86_400).contains(&later), "{left} -> {later}");
    d.stop().await;
}

#[tokio::test]
async fn the_daemon_fires_timers_on_the_device_clock() {
    let d = Daemon::start(&[("ACI Essentials", 1)]).await;
    // 60 days left is the first evaluation warning: 30 days and a minute from now.
    d.clock.advance(30 * DAY_MS + 60_000);
    let state = d.dir.path().join("agent.json");
    let mut warned = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if std::fs::read_to_string(&state).unwrap().contains("EVAL_WILL_EXPIRE_WARNING") {
            warned = true;
            break;
        }
    }
    assert!(warned, "the daemon did not run the evaluation warning due by the device clock");
    // Past the 90 days: EVALUATION EXPIRED without any API call.
    d.clock.advance(60 * DAY_MS);
    let mut expired = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (_, v) = d.call("GET", "licensedetails", None).await;
        if v["authorization"]["status"] == "EVAL_EXPIRED" {
            assert_eq!(v["features"][0]["status"], "EVALUATION_EXPIRED");
            assert_eq!(v["authorization"]["evaluation"]["seconds_left"], 0);
            expired = true;
            break;
        }
    }
    assert!(expired, "the evaluation did not expire");
    d.stop().await;
}

#[tokio::test]
async fn the_state_lock_admits_one_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = daemon::lock(dir.path()).unwrap();
    match daemon::lock(dir.path()) {
        Err(e @ LockError::InUse(_)) => {
            assert_eq!(
                e.to_string(),
                format!("device state {} is in use by another smartlic agent process", dir.path().display())
            )
        }
        other => panic!("second holder admitted: {other:?}"),
    }
    let pid = std::fs::read_to_string(first.path()).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
    drop(first);
    let again = daemon::lock(dir.path()).unwrap();
    drop(again);
    // A directory that does not exist is an error, not created.
    let missing = dir.path().join("missing");
    assert!(matches!(daemon::lock(&missing), Err(LockError::Io { .. })));
    assert!(!missing.exists());
}

#[tokio::test]
async fn the_daemon_holds_the_lock_until_it_stops() {
    let d = Daemon::start(&[]).await;
    assert!(matches!(daemon::lock(d.dir.path()), Err(LockError::InUse(_))));
    assert!(matches!(
        daemon::open_locked(d.dir.path(), Box::new(smartlic_core::SystemClock)),
        Err(daemon::DaemonError::Lock(LockError::InUse(_)))
    ));
    let dir = d.stop().await;
    let (device, _guard) = daemon::open_locked(dir.path(), Box::new(smartlic_core::SystemClock)).unwrap();
    assert_eq!(device.agent.pid, "APIC-SERVER-M3");
}

#[tokio::test]
async fn the_api_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let device =
        Device::init(dir.path(), "P", "S", None, BTreeMap::new(), Box::new(smartlic_core::SystemClock)).unwrap();
    let lock = daemon::lock(dir.path()).unwrap();
    let listen: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let refused = daemon::bind(device, lock, listen, Options::default(), async {}).await;
    assert!(matches!(refused, Err(daemon::DaemonError::NotLoopback(_))));
}
