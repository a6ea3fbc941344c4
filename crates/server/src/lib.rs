//! The smartlic license manager: REST API, device protocol and jobs over one store and one
//! clock. `start` runs it on a TLS listener; `app` gives the router for socket-less tests.

pub mod api;
pub mod auth;
pub mod backup;
mod body;
pub mod ca;
pub mod clock;
pub mod conversion;
mod cursor;
pub mod data_key;
pub mod device;
pub mod error;
pub mod gateway;
pub mod jobs;
pub mod legacy;
pub mod login;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod pak;
pub mod portal;
pub mod reservation;
pub mod satellite;
pub mod state;
mod streamed;
pub mod tls;
pub mod views;

use anyhow::Context;
use axum::routing::{get, post};
use smartlic_core::{Catalog, Clock, SimulatedClock, SystemClock};
use smartlic_store::{DatabaseUrl, NewPrincipal, PrincipalKind, Store};
use state::{AppState, Inner, Limits, Policy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Name of the bootstrap operator client (`smartlic admin` logs in as it by default).
pub const ADMIN_CLIENT: &str = "admin";

/// Which role the binary plays (issue 12): the same device protocol, three places in a network.
#[derive(Debug, Clone)]
pub enum Mode {
    /// The license manager in the cloud.
    Cloud,
    /// An on-premises manager serving the pools the cloud assigned to it.
    Satellite,
    /// A relay of device messages to the manager at `upstream` (its TLS is checked against
    /// `upstream_ca`), keeping no licensing state: [`gateway::start`].
    Gateway { upstream: String, upstream_ca: PathBuf },
    /// The fleet orchestrator (seed 002), a client of managers and nodes with its own
    /// database: `smartlic_fleet::server::start`.
    Fleet,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub mode: Mode,
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
    /// Which database, and the key sealing what it keeps for every replica.
    pub database: DatabaseConfig,
}

/// The database of a manager and the key of what it keeps sealed (issue 15: replicas).
#[derive(Debug, Clone, Default)]
pub struct DatabaseConfig {
    /// `--database`; None: the SQLite file in the data directory.
    pub url: Option<DatabaseUrl>,
    /// From `SMARTLIC_DATA_KEY`: with it the CA is kept in the database, sealed ([`ca`]);
    /// required on PostgreSQL.
    pub data_key: Option<data_key::DataKey>,
}

pub struct Running {
    pub local_addr: SocketAddr,
    pub ca_pem: String,
    /// Set when this start generated the bootstrap secret: show it once, it is not stored.
    pub generated_admin_secret: Option<String>,
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
    /// The background jobs' loop.
    jobs: tokio::task::JoinHandle<()>,
    /// Turned true by [`Running::shutdown`].
    stop_serving: tokio::sync::watch::Sender<bool>,
    /// The data directory's lock ([`backup::lock_data_dir`]), released by [`Running::stop`].
    data_lock: std::sync::Mutex<Option<std::fs::File>>,
}

impl Running {
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Stops gracefully: no new connection, requests in progress answered (for at most
    /// `Limits::shutdown_timeout`), then the database closed cleanly (queued writes done,
    /// WAL checkpointed).
    pub async fn shutdown(mut self) {
        self.stop_serving.send_replace(true);
        let _ = (&mut self.task).await;
        self.jobs.abort();
        if let Err(e) = self.state.store.close().await {
            tracing::error!("closing the database: {e}");
        }
        self.stop();
    }

    /// Stops at once, as a crash would: nothing is finished or released (the jobs lease
    /// stays with this replica until it expires).
    pub fn stop(&self) {
        self.task.abort();
        self.jobs.abort();
        drop(self.data_lock.lock().map(|mut lock| lock.take()));
    }
}

pub fn app(state: AppState) -> axum::Router {
    let on_satellite = state.satellite.enabled();
    let routes = axum::Router::new()
        .merge(api::router())
        .merge(backup::router())
        .merge(conversion::router())
        .merge(device::router())
        .merge(legacy::routes(on_satellite))
        .merge(pak::router())
        .merge(satellite::router())
        .merge(portal::router())
        .route("/oauth/token", post(auth::token))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/health", get(observe::health))
        .route("/ready", get(observe::ready))
        .route("/metrics", get(metrics::scrape))
        .fallback(|| async { error::ApiError::not_found("no such endpoint; see /api/v1/openapi.json") })
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(observe::matched_route))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe::requests))
        .with_state(state);
    if !on_satellite {
        return routes;
    }
    // The satellite's `/api/v1` paths of the original API are told apart before routing.
    let aliased = tower::ServiceExt::map_request(routes, |mut req: axum::extract::Request| {
        if let Some(uri) = legacy::satellite_alias(req.uri()) {
            *req.uri_mut() = uri;
        }
        req
    });
    axum::Router::new().fallback_service(aliased)
}

/// axum's own 405 has an empty body: say what was refused, in the shape of the API the path
/// belongs to (axum adds the `Allow` header).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message = format!("{method} is not allowed on {}; see /api/v1/openapi.json", uri.path());
    let refused = error::ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", message);
    if legacy::is_original_path(uri.path()) {
        legacy::LegacyError::from(refused).into_response()
    } else {
        refused.into_response()
    }
}

/// Files the manager keeps besides connections: the database and its WAL, the CA, logs.
const RESERVED_FILES: u64 = 64;

/// Raises the open-file limit to its hard limit and keeps the connection cap under it, so a
/// full cap never turns into "Too many open files".
pub fn connection_cap(mut limits: Limits) -> Limits {
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
/// Replicas starting together on an empty database may all find no operator: the one whose
/// creation is refused (the name is taken) looks again and finds the other's.
async fn bootstrap_admin(
    store: &dyn Store,
    hashing: &login::HashPool,
    secret: Option<String>,
    now: smartlic_core::Timestamp,
) -> anyhow::Result<Option<String>> {
    match bootstrap_admin_once(store, hashing, secret.clone(), now).await {
        Err(e) if matches!(e.downcast_ref(), Some(smartlic_store::StoreError::Conflict(_))) => {
            bootstrap_admin_once(store, hashing, secret, now).await
        }
        done => done,
    }
}

async fn bootstrap_admin_once(
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

/// What every mode does first: checks the names of the generated TLS certificate and binds
/// the port, before anything is created (a port in use must not leave a first start with a
/// stored administrator secret that was never shown); then reads the operator's certificate
/// and key (`--tls-cert`, `--tls-key`) when given. Answers the names for a generated one.
pub async fn listen(
    config: &ServerConfig,
) -> anyhow::Result<(tokio::net::TcpListener, Vec<String>, Option<(String, String)>)> {
    if config.tls_cert.is_some() && !config.hostnames.is_empty() {
        anyhow::bail!("--hostname names the generated TLS certificate; the one of --tls-cert keeps its own names");
    }
    let tls_names = tls::names_for(&config.listen, &config.hostnames)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let read =
        |path: &PathBuf| std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
    let operator_tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    Ok((listener, tls_names, operator_tls))
}

/// Starts a manager (cloud or satellite); a gateway starts with [`gateway::start`].
pub async fn start(config: ServerConfig) -> anyhow::Result<Running> {
    if let Mode::Gateway { .. } = config.mode {
        anyhow::bail!("a transport gateway is no manager: start it with gateway::start");
    }
    if let Mode::Fleet = config.mode {
        anyhow::bail!("the fleet orchestrator is no manager: start it with smartlic_fleet::server::start");
    }
    let (listener, tls_names, operator_tls) = listen(&config).await?;
    let local_addr = listener.local_addr()?;
    let limits = connection_cap(config.limits.clone());
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let data_lock = std::sync::Mutex::new(Some(backup::lock_data_dir(&config.data_dir)?));
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
    let url =
        config.database.url.clone().unwrap_or_else(|| DatabaseUrl::Sqlite(config.data_dir.join(backup::DATABASE_FILE)));
    let data_key = config.database.data_key.as_ref();
    ca::require_data_key(matches!(url, DatabaseUrl::Postgres(_)), data_key)?;
    let store = smartlic_store::open(&url).await.with_context(|| format!("opening the database {url}"))?;
    let clock_followed = clock::Followed::load(store.as_ref(), simulated.as_deref())
        .await
        .context("reading the shared simulated clock")?;
    let real_now_secs = SystemClock.now().0 / 1000;
    let ca = ca::load(store.as_ref(), &config.data_dir, data_key, real_now_secs).await?;
    let replica = jobs::Replica::load(&config.data_dir, config.job_interval)?;
    let (cert_pem, key_pem) = match operator_tls {
        Some(pair) => pair,
        None => ca.issue_tls_certificate(&tls_names, real_now_secs)?,
    };
    let tls_config = tls::server_config(&cert_pem, &key_pem)?;
    let hashing = login::HashPool::new();
    let generated_admin_secret =
        bootstrap_admin(store.as_ref(), &hashing, config.admin_secret.clone(), clock.now()).await?;
    let ca_pem = ca.cert_pem().to_string();
    let satellite = satellite::SatelliteRole::load(&config.mode, store.as_ref()).await?;
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
        job_heartbeat: Default::default(),
        replica,
        clock_followed,
        metrics: Default::default(),
        refusal_events: Default::default(),
        satellite,
    }));
    let jobs = jobs::spawn(state.clone(), config.job_interval);
    let (stop_serving, stop) = tokio::sync::watch::channel(false);
    let serving = tls::Serving { open: state.metrics.open_connections.clone(), stop, drain: limits.shutdown_timeout };
    let mut router = app(state.clone());
    if state.simulated.is_some() {
        router = router.layer(axum::middleware::from_fn_with_state(state.clone(), clock::follow_requests));
    }
    let task = tokio::spawn(tls::serve_until(listener, tls_config, router, limits, serving));
    Ok(Running { local_addr, ca_pem, generated_admin_secret, state, task, jobs, stop_serving, data_lock })
}
