//! The smartlic license manager: REST API, device protocol and jobs over one store and one
//! clock. `start` runs it on a TLS listener; `app` gives the router for socket-less tests.

pub mod api;
pub mod auth;
mod body;
pub mod device;
pub mod error;
pub mod jobs;
pub mod legacy;
pub mod login;
pub mod openapi;
pub mod reservation;
pub mod state;
pub mod tls;
pub mod views;

use anyhow::Context;
use axum::routing::{get, post};
use smartlic_core::{Catalog, Clock, SimulatedClock, SystemClock};
use smartlic_store::{NewPrincipal, PrincipalKind, SqliteStore, Store};
use state::{AppState, Inner, Limits, Policy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Name of the bootstrap operator client (`smartlic admin` logs in as it by default).
pub const ADMIN_CLIENT: &str = "admin";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// More names (DNS names, IP addresses) for the generated TLS certificate
    /// ([`tls::names_for`]); none with `tls_cert`, which brings its own.
    pub hostnames: Vec<String>,
    pub simulated_clock: bool,
    pub catalog: Option<PathBuf>,
    /// From `SMARTLIC_ADMIN_SECRET`; generated and printed once when absent on first start.
    pub admin_secret: Option<String>,
    pub job_interval: Duration,
    /// Connection limits and timeouts, failed-login budgets.
    pub limits: Limits,
}

pub struct Running {
    pub local_addr: SocketAddr,
    pub ca_pem: String,
    /// Set when this start generated the bootstrap secret: show it once, it is not stored.
    pub generated_admin_secret: Option<String>,
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

pub fn app(state: AppState) -> axum::Router {
    axum::Router::new()
        .merge(api::router())
        .merge(device::router())
        .merge(legacy::router())
        .route("/oauth/token", post(auth::token))
        .route("/api/v1/openapi.json", get(|| async { axum::Json(openapi::document()) }))
        .route("/health", get(|| async { "ok" }))
        .fallback(|| async { error::ApiError::not_found("no such endpoint; see /api/v1/openapi.json") })
        // axum's own 405 has an empty body: say what was refused.
        .method_not_allowed_fallback(|method: axum::http::Method, uri: axum::http::Uri| async move {
            let message = format!("{method} is not allowed on {}; see /api/v1/openapi.json", uri.path());
            error::ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", message)
        })
        .with_state(state)
}

/// Files the manager keeps besides connections: the database and its WAL, the CA, logs.
const RESERVED_FILES: u64 = 64;

/// Raises the open-file limit to its hard limit and keeps the connection cap under it, so a
/// full cap never turns into "Too many open files".
fn connection_cap(mut limits: Limits) -> Limits {
    match tls::raise_open_file_limit() {
        Ok(files) => {
            let room = usize::try_from(files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX).max(1);
            if limits.max_connections > room {
                tracing::warn!(
                    "the open-file limit ({files}) allows {room} connections, not {}: raise the hard limit (ulimit -Hn)",
                    limits.max_connections
                );
                limits.max_connections = room;
            }
        }
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
    limits
}

/// Creates or updates the bootstrap operator; returns the secret when it was generated.
async fn bootstrap_admin(
    store: &dyn Store,
    hashing: &login::HashPool,
    secret: Option<String>,
    now: smartlic_core::Timestamp,
) -> anyhow::Result<Option<String>> {
    let existing = store.principal(ADMIN_CLIENT).await?;
    let (secret, generated) = match (secret, &existing) {
        (Some(s), _) => (s, false),
        (None, Some(_)) => return Ok(None),
        (None, None) => (auth::random_text(24), true),
    };
    if secret.len() < 12 {
        anyhow::bail!("SMARTLIC_ADMIN_SECRET must be at least 12 characters");
    }
    // An unchanged secret leaves the operator's live access tokens alone.
    let stored = existing.as_ref().and_then(|p| p.secret_hash.clone());
    if stored.is_some() && hashing.verify(secret.clone(), stored).await.unwrap_or(false) {
        return Ok(None);
    }
    let hash = hashing.hash(secret.clone()).await.map_err(|e| anyhow::anyhow!(e.message))?;
    match existing {
        Some(p) => drop(store.set_principal_secret(p.id, &hash, "system", now).await?),
        None => {
            let new = NewPrincipal {
                kind: PrincipalKind::ApiClient,
                name: ADMIN_CLIENT.into(),
                login: ADMIN_CLIENT.into(),
                secret_hash: Some(hash),
                role: smartlic_core::Role::Operator,
                account_id: None,
                virtual_account_id: None,
            };
            store.create_principal(new, "system", now).await?;
        }
    }
    Ok(generated.then_some(secret))
}

pub async fn start(config: ServerConfig) -> anyhow::Result<Running> {
    if config.tls_cert.is_some() && !config.hostnames.is_empty() {
        anyhow::bail!("--hostname names the generated TLS certificate; the one of --tls-cert keeps its own names");
    }
    let tls_names = tls::names_for(&config.listen, &config.hostnames)?;
    // Bound before anything is created: a port in use must not leave a first start with a
    // stored administrator secret that was never shown.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local_addr = listener.local_addr()?;
    let limits = connection_cap(config.limits.clone());
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let simulated = config.simulated_clock.then(|| Arc::new(SimulatedClock::new()));
    let clock: Arc<dyn Clock> = match &simulated {
        Some(s) => s.clone(),
        None => Arc::new(SystemClock),
    };
    let catalog = match &config.catalog {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Catalog::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Catalog::builtin(),
    };
    let store = SqliteStore::open(&config.data_dir.join("smartlic.db")).await.context("opening the database")?;
    let store: Arc<dyn Store> = Arc::new(store);
    let real_now_secs = SystemClock.now().0 / 1000;
    let (ca, _) = tls::load_or_create_ca(&config.data_dir, real_now_secs)?;
    let (cert_pem, key_pem) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => (
            std::fs::read_to_string(c).with_context(|| format!("cannot read {}", c.display()))?,
            std::fs::read_to_string(k).with_context(|| format!("cannot read {}", k.display()))?,
        ),
        (None, None) => ca.issue_tls_certificate(&tls_names, real_now_secs)?,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let tls_config = tls::server_config(&cert_pem, &key_pem)?;
    let hashing = login::HashPool::new();
    let generated_admin_secret =
        bootstrap_admin(store.as_ref(), &hashing, config.admin_secret.clone(), clock.now()).await?;
    let ca_pem = ca.cert_pem().to_string();
    let state = AppState(Arc::new(Inner {
        store,
        clock,
        simulated,
        catalog,
        ca,
        policy: Policy::default(),
        hashing,
        logins: login::LoginLimiter::new(limits.login_failures_per_client, limits.login_failures_per_address),
        jobs: Default::default(),
    }));
    jobs::spawn(state.clone(), config.job_interval);
    let task = tokio::spawn(tls::serve(listener, tls_config, app(state.clone()), limits));
    Ok(Running { local_addr, ca_pem, generated_admin_secret, state, task })
}
