//! What every handler shares.

/// An address range, as `--trusted-proxy` takes it.
pub use ipnet::IpNet;
use smartlic_core::{Catalog, Clock, SimulatedClock};
use smartlic_proto::CertificateAuthority;
use smartlic_store::Store;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Present when the server runs with `--clock simulated`: the only clock that may be set.
    pub simulated: Option<Arc<SimulatedClock>>,
    pub catalog: Catalog,
    pub ca: CertificateAuthority,
    pub policy: Policy,
    /// Argon2 work, off the async workers.
    pub hashing: crate::login::HashPool,
    /// Failed-login counters per client ID and per source address.
    pub logins: crate::login::LoginLimiter,
    /// Serializes job runs: a run that read the clock earlier must not finish after, and
    /// overwrite, a run made for a newer time.
    pub jobs: tokio::sync::Mutex<()>,
    /// The jobs loop's last run (readiness).
    pub job_heartbeat: crate::jobs::Heartbeat,
    /// This replica as a holder of the jobs lease (replicas over one database run the jobs once).
    pub replica: crate::jobs::Replica,
    /// The shared simulated clock's setting this replica applied last.
    pub clock_followed: crate::clock::Followed,
    pub metrics: crate::metrics::Metrics,
    /// Bounds the events recorded for refused device requests.
    pub refusal_events: crate::device::RefusalEvents,
    /// Whether this manager is a satellite, and the certificate its device answers carry.
    pub satellite: crate::satellite::SatelliteRole,
}

/// Intervals and limits of the manager; the device learns the intervals from each answer.
#[derive(Debug, Clone)]
pub struct Policy {
    pub clock_tolerance_ms: i64,
    pub id_certificate_days: i64,
    pub id_renew_days: i64,
    pub auth_renew_days: i64,
    pub auth_validity_days: i64,
    /// Usage of an instance silent this long goes back to the pool (C-12).
    pub silent_release_days: i64,
    pub access_token_secs: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            clock_tolerance_ms: 10 * 60 * 1000,
            id_certificate_days: 365,
            id_renew_days: 180,
            auth_renew_days: 30,
            auth_validity_days: 90,
            silent_release_days: 90,
            access_token_secs: 3600,
        }
    }
}

/// What keeps the manager available under hostile load: connection limits and timeouts
/// (`tls::serve`) and the failed-login budgets of the token endpoint (`login`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; at the cap the oldest connection doing nothing is closed.
    pub max_connections: usize,
    /// From accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// From a request's first byte to the end of its headers.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// From the end of a request's headers to the end of its body, plus a second for every
    /// `body_min_rate` bytes received (a slowly trickled body cannot hold a connection).
    pub body_timeout: Duration,
    /// Bytes per second a request body must keep up on average beyond `body_timeout`.
    pub body_min_rate: u64,
    /// Failed logins per minute for one client ID (a burst of this many); 0: no limit.
    pub login_failures_per_client: u32,
    /// Failed logins per minute from one source address (IPv6: one /64); 0: no limit.
    pub login_failures_per_address: u32,
    /// At a stop (SIGTERM, Ctrl-C), how long requests in progress may take to finish.
    pub shutdown_timeout: Duration,
    /// Load balancers and proxies in front of the manager: a request coming from one of these
    /// ranges is taken to come from the address its `X-Forwarded-For` names (see
    /// `tls::client_address`), so per-address budgets and the log see the real client.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(20),
            body_min_rate: 500,
            login_failures_per_client: 10,
            login_failures_per_address: 30,
            shutdown_timeout: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
