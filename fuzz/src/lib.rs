//! What the fuzz targets share: a scratch directory for the agent's files and an in-process
//! manager (the real router over a real SQLite file) to send request bodies to.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode, Uri};
use serde_json::{json, Value};
use smartlic_core::Timestamp;
use smartlic_proto::wire::{self, Envelope};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use smartlic_server::{ServerConfig, ADMIN_CLIENT};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;
use tower::ServiceExt;

/// The manager's (and the device's) time in every target: inputs that carry a timestamp can
/// be valid, run after run. 2026-12-01T00:00:00Z.
pub const NOW: Timestamp = Timestamp(1_796_083_200_000);

/// The fuzzed bytes as text; libFuzzer's non-UTF-8 mutations are skipped by the text parsers.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A directory in memory (`/dev/shm` when there is one) holding one target's files.
pub fn scratch_dir() -> &'static Path {
    static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        tempfile::Builder::new().prefix("smartlic-fuzz-").tempdir_in(base).expect("scratch directory")
    });
    DIR.path()
}

/// Writes `bytes` as `name` in the scratch directory and returns its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    path
}

/// A manager started in this process with a frozen simulated clock, an account `example.com`
/// (pool `Default` holding licenses) and one registered device.
pub struct Manager {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    clock: std::sync::Arc<smartlic_core::SimulatedClock>,
    bearer: String,
    /// The registered device: its instance ID and key.
    pub instance_id: String,
    device_key: SigningKey,
    /// A registration token of `example.com`/`Default`, and a key with its CSR to register.
    pub token: String,
    pub csr_key: SigningKey,
    pub csr: String,
    nonces: AtomicU64,
    _data: tempfile::TempDir,
}

/// An answer: status and body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Outside input never causes a 5xx, and a refusal (4xx) says what is wrong: a non-empty
    /// message, under `error.message` (`/api/v1`, device protocol) or `statusMessage` (the
    /// original API) when the body is JSON.
    pub fn assert_explained(&self, what: &str) {
        let text = String::from_utf8_lossy(&self.body);
        assert!(!self.status.is_server_error(), "{what}: {} {text}", self.status);
        if !self.status.is_client_error() {
            return;
        }
        let message = match serde_json::from_slice::<Value>(&self.body) {
            Ok(json) => ["/error/message", "/statusMessage"]
                .iter()
                .find_map(|at| json.pointer(at).and_then(Value::as_str))
                .unwrap_or("")
                .to_string(),
            Err(_) => text.to_string(),
        };
        assert!(!message.trim().is_empty(), "{what}: {} without a reason: {text}", self.status);
    }
}

impl Manager {
    /// The one manager of this fuzzing process.
    pub fn get() -> &'static Manager {
        static MANAGER: LazyLock<Manager> = LazyLock::new(Manager::start);
        &MANAGER
    }

    fn start() -> Manager {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let data = tempfile::Builder::new().prefix("smartlic-fuzz-db-").tempdir_in(scratch_dir()).expect("data dir");
        let secret = "fuzzing-admin-secret";
        let config = ServerConfig {
            mode: smartlic_server::Mode::Cloud,
            data_dir: data.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().expect("address"),
            tls_cert: None,
            tls_key: None,
            hostnames: Vec::new(),
            simulated_clock: true,
            catalog: None,
            admin_secret: Some(secret.into()),
            job_interval: Duration::from_secs(86_400 * 365),
            limits: Default::default(),
            database: Default::default(),
        };
        let running = rt.block_on(smartlic_server::start(config)).expect("manager starts");
        let clock = running.state.simulated.clone().expect("simulated clock");
        let app = smartlic_server::app(running.state.clone());
        let csr_key = SigningKey::generate(KeyAlgorithm::Ed25519).expect("key");
        let csr = csr_key.certificate_request("fuzz").expect("csr");
        let mut m = Manager {
            rt,
            app,
            clock,
            bearer: String::new(),
            instance_id: String::new(),
            device_key: SigningKey::generate(KeyAlgorithm::Ed25519).expect("key"),
            token: String::new(),
            csr_key,
            csr,
            nonces: AtomicU64::new(0),
            _data: data,
        };
        let form = format!("grant_type=client_credentials&client_id={ADMIN_CLIENT}&client_secret={secret}");
        let answer = m
            .send(
                Method::POST,
                "/oauth/token",
                &[(header::CONTENT_TYPE.as_str(), "application/x-www-form-urlencoded")],
                form.into(),
            )
            .expect("sent");
        m.bearer = format!("Bearer {}", answer.json()["access_token"].as_str().expect("access token"));
        let setup = [
            ("/api/v1/accounts", json!({"domain": "example.com", "name": "Example"})),
            (
                "/api/v1/accounts/example.com/virtual-accounts/Default/licenses",
                json!({"tag": "ACI Advantage", "count": 100}),
            ),
            ("/api/v1/accounts/example.com/virtual-accounts/Default/tokens", json!({"description": "fuzz"})),
        ];
        let mut last = Value::Null;
        for (path, body) in setup {
            let answer = m.api(Method::POST, path, body.to_string().into_bytes()).expect("sent");
            assert!(answer.status.is_success(), "setup {path}: {}", String::from_utf8_lossy(&answer.body));
            last = answer.json();
        }
        m.token = last["token"].as_str().expect("registration token").to_string();
        let device_key = SigningKey::generate(KeyAlgorithm::Ed25519).expect("key");
        let csr = device_key.certificate_request("fuzz").expect("csr");
        let envelope = m.envelope();
        let register = json!({
            "version": envelope.version, "timestamp": envelope.timestamp, "nonce": envelope.nonce,
            "token": m.token, "udi": {"pid": "C9300-24UX", "sn": "FUZZ0001"}, "csr": csr,
        });
        let body = register.to_string().into_bytes();
        let answer = m.device(wire::PATH_REGISTER, &device_key, body).expect("sent");
        assert!(answer.status.is_success(), "setup register: {}", String::from_utf8_lossy(&answer.body));
        m.instance_id = answer.json()["instance_id"].as_str().expect("instance id").to_string();
        m.device_key = device_key;
        m
    }

    /// A fresh envelope at [`NOW`].
    pub fn envelope(&self) -> Envelope {
        Envelope { version: wire::PROTOCOL_VERSION, timestamp: NOW.0, nonce: self.nonce() }
    }

    /// A nonce never used before by this process.
    pub fn nonce(&self) -> String {
        format!("fuzz-nonce-{:016}", self.nonces.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends one request through the router; the clock is put back to [`NOW`] first. None when
    /// the request line or a header could not be sent over HTTP at all (hyper refuses those
    /// before smartlic sees them).
    pub fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Option<Answer> {
        self.clock.set(NOW);
        let mut uri = path.parse::<Uri>().ok()?;
        // As the TLS listener does before routing.
        if let Some(fixed) = smartlic_server::legacy::normalize_path(&uri) {
            uri = fixed;
        }
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).ok()?;
        Some(self.rt.block_on(async {
            let response = self.app.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("answer body");
            Answer { status, body: body.to_vec() }
        }))
    }

    /// A JSON request as the operator.
    pub fn api(&self, method: Method, path: &str, body: Vec<u8>) -> Option<Answer> {
        let headers = [
            (header::AUTHORIZATION.as_str(), self.bearer.as_str()),
            (header::CONTENT_TYPE.as_str(), "application/json"),
        ];
        self.send(method, path, &headers, body)
    }

    /// A device request with `body` signed by `key`.
    pub fn device(&self, path: &str, key: &SigningKey, body: Vec<u8>) -> Option<Answer> {
        let signature = key.sign_b64(&wire::request_signing_input(path, &body)).expect("sign");
        self.device_with_signature(path, &signature, body)
    }

    /// A device request with the signature header as given.
    pub fn device_with_signature(&self, path: &str, signature: &str, body: Vec<u8>) -> Option<Answer> {
        let headers = [(wire::SIGNATURE_HEADER, signature), (header::CONTENT_TYPE.as_str(), "application/json")];
        self.send(Method::POST, path, &headers, body)
    }

    /// The registered device's key.
    pub fn device_key(&self) -> &SigningKey {
        &self.device_key
    }

    /// `body` with the placeholders the corpus uses replaced by this process's values:
    /// `@INSTANCE@`, `@TOKEN@`, `@CSR@` (JSON-escaped PEM) and `@NONCE@` (a fresh nonce).
    pub fn fill(&self, body: &[u8]) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(body) else { return body.to_vec() };
        if !text.contains('@') {
            return body.to_vec();
        }
        let csr = serde_json::to_string(&self.csr).expect("json");
        text.replace("@INSTANCE@", &self.instance_id)
            .replace("@TOKEN@", &self.token)
            .replace("\"@CSR@\"", &csr)
            .replace("@NONCE@", &self.nonce())
            .into_bytes()
    }
}

/// Splits `data` at its first `\n`: a header line and the rest.
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
