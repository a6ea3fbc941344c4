//! A real cloud manager, a real fleet orchestrator and real agent daemons as cluster nodes, all
//! on loopback (the manager and the orchestrator over HTTPS, each with its own SQLite file).

#![allow(dead_code)]

use serde_json::{json, Value};
use smartlic_agent::config::Trustpoint;
use smartlic_agent::daemon::{self, Options};
use smartlic_agent::device::Device;
use smartlic_core::{SimulatedClock, SystemClock};
use smartlic_server::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub const SECRET: &str = "integration-test-secret";

/// What the tests start from: loopback, simulated clock, the test secret.
pub fn config(dir: &std::path::Path, mode: smartlic_server::Mode) -> ServerConfig {
    ServerConfig {
        mode,
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_cert: None,
        tls_key: None,
        hostnames: vec![],
        simulated_clock: true,
        catalog: None,
        admin_secret: Some(SECRET.into()),
        job_interval: Duration::from_secs(3600),
        limits: Default::default(),
        database: Default::default(),
    }
}

/// An HTTPS client of a server whose CA is `ca_pem`, bearing `token`.
pub struct Rest {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl Rest {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            other => panic!("method {other}"),
        };
        req = req.bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A call that must answer `status`; its body.
    pub async fn expect(&self, status: u16, method: &str, path: &str, body: Option<Value>) -> Value {
        let (got, answer) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }
}

/// The cloud manager with one smart account (`example.com`: virtual accounts Default, Ops and
/// Lab, licenses in Default) and an API client of it with the smart account admin role.
pub struct Manager {
    pub server: smartlic_server::Running,
    pub rest: Rest,
    pub ca_pem: String,
    pub client_id: String,
    pub client_secret: String,
    _dir: tempfile::TempDir,
}

impl Manager {
    pub async fn start() -> Manager {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let server = smartlic_server::start(config(dir.path(), smartlic_server::Mode::Cloud)).await.unwrap();
        let base = format!("https://{}", server.local_addr);
        let http = smartlic_agent::tls::https_client(&server.ca_pem).unwrap();
        let form = [("grant_type", "client_credentials"), ("client_id", "admin"), ("client_secret", SECRET)];
        let answer: Value =
            http.post(format!("{base}/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
        let token = answer["access_token"].as_str().unwrap().to_string();
        let rest = Rest { base, http, token };
        rest.expect(201, "POST", "/api/v1/accounts", Some(json!({"domain": "example.com"}))).await;
        for va in ["Ops", "Lab"] {
            let path = "/api/v1/accounts/example.com/virtual-accounts";
            rest.expect(201, "POST", path, Some(json!({"name": va}))).await;
        }
        let path = "/api/v1/accounts/example.com/virtual-accounts/Default/licenses";
        rest.expect(201, "POST", path, Some(json!({"tag": "ACI Essentials", "count": 10}))).await;
        let client = json!({"name": "fleet", "role": "smart-account-admin"});
        let c = rest.expect(201, "POST", "/api/v1/accounts/example.com/api-clients", Some(client)).await;
        Manager {
            ca_pem: server.ca_pem.clone(),
            client_id: c["client_id"].as_str().unwrap().to_string(),
            client_secret: c["client_secret"].as_str().unwrap().to_string(),
            server,
            rest,
            _dir: dir,
        }
    }

    /// The serial numbers of the product instances registered in `va`.
    pub async fn serials(&self, va: &str) -> Vec<String> {
        let path = format!("/api/v1/accounts/example.com/virtual-accounts/{va}/instances");
        let answer = self.rest.expect(200, "GET", &path, None).await;
        let mut sns: Vec<String> = answer["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["udi_serial_number"].as_str().or(i["udi"]["sn"].as_str()).unwrap_or_default().to_string())
            .collect();
        sns.sort();
        sns
    }
}

/// The orchestrator, in process, on its simulated clock.
pub struct Orchestrator {
    pub running: smartlic_fleet::server::Running,
    pub rest: Rest,
    pub clock: Arc<SimulatedClock>,
    pub dir: tempfile::TempDir,
}

impl Orchestrator {
    pub async fn start() -> Orchestrator {
        Orchestrator::start_in(tempfile::tempdir().unwrap()).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> Orchestrator {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clock = Arc::new(SimulatedClock::new());
        let config = config(dir.path(), smartlic_server::Mode::Fleet);
        let running = smartlic_fleet::server::start(config, clock.clone()).await.unwrap();
        let http = smartlic_agent::tls::https_client(running.ca_pem.as_deref().unwrap()).unwrap();
        let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap().trim().to_string();
        let rest = Rest { base: format!("https://{}/api/v1/fleet", running.local_addr), http, token };
        Orchestrator { running, rest, clock, dir }
    }

    /// Waits (bounded) for job `id` to end; the job.
    pub async fn finished(&self, id: i64) -> Value {
        for _ in 0..600 {
            let job = self.rest.expect(200, "GET", &format!("/jobs/{id}"), None).await;
            if !matches!(job["status"].as_str(), Some("Queued" | "In Progress")) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} did not end within 30 s");
    }

    /// Runs the job an answer queued (or carries) to its end.
    pub async fn job_of(&self, answer: &Value) -> Value {
        let id = answer["id"].as_i64().or(answer["job"]["id"].as_i64()).unwrap_or_else(|| panic!("no job: {answer}"));
        self.finished(id).await
    }

    pub async fn cluster(&self, name: &str) -> Value {
        self.rest.expect(200, "GET", &format!("/clusters/{name}"), None).await
    }
}

/// An agent daemon serving its product REST API on loopback, trusting `ca_pem` (the manager's).
pub struct Node {
    pub url: String,
    pub sn: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Node {
    pub async fn start(sn: &str, ca_pem: &str) -> Node {
        Node::start_using(sn, ca_pem, &[]).await
    }

    /// A node with licenses in use (tag, count) from the start.
    pub async fn start_using(sn: &str, ca_pem: &str, usage: &[(&str, u32)]) -> Node {
        Node::start_with(sn, ca_pem, usage, Default::default()).await
    }

    /// [`Node::start_using`] whose product REST API requires `credentials`.
    pub async fn start_with(
        sn: &str,
        ca_pem: &str,
        usage: &[(&str, u32)],
        credentials: daemon::ApiCredentials,
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut device =
            Device::init(dir.path(), "CUCM-NODE", sn, Some(sn), Default::default(), Box::new(SystemClock)).unwrap();
        let trust = Trustpoint { certificate: Some(ca_pem.to_string()), ..Default::default() };
        device.config.trustpoints.insert("SLA-TrustPoint".into(), trust);
        for (tag, count) in usage {
            device.apply(smartlic_core::agent::Event::SetUsage { tag: tag.to_string(), count: *count }).await.unwrap();
        }
        device.save().unwrap();
        let lock = daemon::lock(dir.path()).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let options =
            Options { min_sleep: Duration::from_millis(5), max_sleep: Duration::from_millis(200), credentials };
        let (addr, serve) = daemon::bind(device, lock, listen, options, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
        tokio::spawn(serve);
        Node { url: format!("http://{addr}"), sn: sn.to_string(), stop: Some(tx), _dir: dir }
    }

    /// `registration.status` of its license details.
    pub async fn registration(&self) -> String {
        let url = format!("{}/api/v1/smartlicensing/licensedetails", self.url);
        let details: Value =
            reqwest::Client::builder().no_proxy().build().unwrap().get(url).send().await.unwrap().json().await.unwrap();
        details["registration"]["status"].as_str().unwrap().to_string()
    }
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A forward proxy of HTTPS (`CONNECT host:port`) on loopback; [`ConnectProxy::stop`] closes it
/// and every tunnel it holds, as a proxy going down would.
pub struct ConnectProxy {
    pub port: u16,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl ConnectProxy {
    pub async fn start() -> ConnectProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let held = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let tunnel = tokio::spawn(tunnel(inbound));
                held.lock().unwrap().push(tunnel.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        ConnectProxy { port, tasks }
    }

    pub fn stop(&self) {
        self.tasks.lock().unwrap().iter().for_each(tokio::task::AbortHandle::abort);
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a CONNECT request, connects to its target, answers 200 and relays both ways.
async fn tunnel(mut inbound: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if inbound.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let Some(target) = head.strip_prefix("CONNECT ").and_then(|rest| rest.split(' ').next()) else { return };
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
    if inbound.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}
