//! The real manager the simulated fleet talks to, in this process.
//!
//! It is started with [`smartlic_server::start`] exactly as `smartlic server --clock simulated`
//! is (temporary data directory, real SQLite file, real CA), but requests do not go over the
//! socket: each is handed to the manager's router with tower's `oneshot`. The signed device
//! protocol is unchanged (the device signs, the manager verifies and signs its answer, the
//! device checks that signature and nonce); only TLS and TCP are skipped, which would cost more
//! than everything else together and prove nothing the HTTPS tests do not.
//!
//! The manager's simulated clock is set to the device's time before its requests (see the
//! engine for events sent together), so both sides live on one simulated clock.

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::{header, Method, Request};
use serde::Serialize;
use serde_json::{json, Value};
use smartlic_agent::client::{new_nonce, read_answer, request_bytes, Answer};
use smartlic_agent::device::{failure, SEND_FAILED};
use smartlic_core::agent::{Failure, FailureKind};
use smartlic_core::{SimulatedClock, Timestamp};
use smartlic_proto::wire::{self, Envelope};
use smartlic_proto::{cert, PublicKey, SigningKey};
use smartlic_server::state::AppState;
use smartlic_server::{Running, ServerConfig};
use std::sync::Arc;
use tower::ServiceExt;

/// The simulated smart account all pools belong to.
pub const DOMAIN: &str = "simulated.example.com";
/// Answers larger than this are not read (none of the device protocol comes close).
const MAX_ANSWER: usize = 1 << 20;

pub struct Manager {
    /// Holds the data directory; removed when the simulation ends.
    _dir: tempfile::TempDir,
    running: Running,
    router: axum::Router,
    clock: Arc<SimulatedClock>,
    secret: String,
    /// The key of the manager's CA, which signs every answer.
    ca_key: PublicKey,
}

impl Manager {
    pub async fn start() -> anyhow::Result<Manager> {
        let dir = data_dir()?;
        let secret = smartlic_agent::client::new_nonce();
        let config = ServerConfig {
            mode: smartlic_server::Mode::Cloud,
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse()?,
            tls_cert: None,
            tls_key: None,
            hostnames: vec![],
            simulated_clock: true,
            catalog: None,
            admin_secret: Some(secret.clone()),
            // The jobs run once per simulated day from the engine ([`Manager::run_jobs`]); the
            // timer of the real clock must not run them at another simulated time.
            job_interval: std::time::Duration::from_secs(365 * 86_400),
            limits: Default::default(),
            database: Default::default(),
        };
        let running = smartlic_server::start(config).await.context("cannot start the manager")?;
        let clock = running.state.simulated.clone().context("the manager has no simulated clock")?;
        let ca_key = cert::public_key_of_certificate(&running.ca_pem).context("the manager's CA certificate")?;
        let router = smartlic_server::app(running.state.clone());
        Ok(Manager { _dir: dir, running, router, clock, secret, ca_key })
    }

    pub fn state(&self) -> &AppState {
        &self.running.state
    }

    pub fn set_clock(&self, now: Timestamp) {
        self.clock.set(now);
    }

    /// The background jobs (silent usage released, expired instances removed, alerts) at `now`.
    pub async fn run_jobs(&self, now: Timestamp) -> anyhow::Result<()> {
        self.set_clock(now);
        smartlic_server::jobs::run_once(&self.running.state).await
    }

    /// Stops the manager, the database closed cleanly.
    pub async fn stop(self) {
        self.running.shutdown().await;
    }

    // ---- REST API, as the operator --------------------------------------------------------------

    /// Logs in as the operator at the current simulated time (access tokens expire on it).
    pub async fn operator(&self) -> anyhow::Result<Operator<'_>> {
        let form = format!("grant_type=client_credentials&client_id=admin&client_secret={}", self.secret);
        let req = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))?;
        let answer = self.call(req).await?;
        let bearer = answer["access_token"].as_str().context("no access token in the login answer")?.to_string();
        Ok(Operator { manager: self, bearer })
    }

    async fn call(&self, req: Request<Body>) -> anyhow::Result<Value> {
        let what = format!("{} {}", req.method(), req.uri());
        let response = self.router.clone().oneshot(req).await?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER).await?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{what} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(value)
    }

    // ---- device protocol ------------------------------------------------------------------------

    /// One signed exchange at `path`, as a device signing with `key` at device time `now`; the
    /// caller has set the manager's clock.
    pub async fn exchange<Req: Serialize, Resp: Answer>(
        &self,
        path: &'static str,
        key: &SigningKey,
        now: Timestamp,
        build: impl FnOnce(Envelope) -> Req,
    ) -> Result<Resp, Failure> {
        let nonce = new_nonce();
        let envelope = Envelope { version: wire::PROTOCOL_VERSION, timestamp: now.0, nonce: nonce.clone() };
        let (body, signature) = request_bytes(path, key, &build(envelope)).map_err(failure)?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(wire::SIGNATURE_HEADER, signature)
            .body(Body::from(body))
            .map_err(|e| Failure::new(FailureKind::Communication, e.to_string()))?;
        let sent = |e: String| Failure::new(FailureKind::Communication, format!("{SEND_FAILED}: {e}"));
        let response = self.router.clone().oneshot(req).await.map_err(|e| sent(e.to_string()))?;
        let status = response.status().as_u16();
        let signature =
            response.headers().get(wire::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER).await.map_err(|e| sent(e.to_string()))?;
        read_answer(std::slice::from_ref(&self.ca_key), path, status, signature.as_deref(), &body, &nonce)
            .map(|(answer, _)| answer)
            .map_err(failure)
    }
}

/// A temporary data directory, in memory (`/dev/shm`) where there is one: the store commits
/// every change with a full flush to disk, which over millions of simulated requests would
/// measure the disk, not the manager. The database is the same SQLite file either way.
fn data_dir() -> anyhow::Result<tempfile::TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("smartlic-simulate-");
    let shm = std::path::Path::new("/dev/shm");
    let in_memory = if shm.is_dir() { builder.tempdir_in(shm).ok() } else { None };
    match in_memory {
        Some(dir) => Ok(dir),
        None => builder.tempdir().context("cannot create a data directory"),
    }
}

/// The operator's REST calls the simulation needs (pools, purchases, tokens).
pub struct Operator<'a> {
    manager: &'a Manager,
    bearer: String,
}

impl Operator<'_> {
    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.bearer))
            .body(Body::from(body.to_string()))?;
        self.manager.call(req).await
    }

    /// A registration token of pool `va` for `uses` devices, valid a year.
    pub async fn token(&self, va: &str, uses: u32) -> anyhow::Result<String> {
        let path = format!("/api/v1/accounts/{DOMAIN}/virtual-accounts/{va}/tokens");
        let answer =
            self.post(&path, json!({"max_uses": uses, "expires_days": 365, "description": "simulated"})).await?;
        Ok(answer["token"].as_str().context("no token in the answer")?.to_string())
    }
}
