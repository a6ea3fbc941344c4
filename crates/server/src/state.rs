//! What every handler shares.

use smartlic_core::{Catalog, Clock, SimulatedClock};
use smartlic_proto::CertificateAuthority;
use smartlic_store::Store;
use std::sync::Arc;

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
    /// Serializes job runs: a run that read the clock earlier must not finish after, and
    /// overwrite, a run made for a newer time.
    pub jobs: tokio::sync::Mutex<()>,
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

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
