//! `smartlic server --mode fleet`: the orchestrator's HTTPS listener (the manager's TLS setup:
//! a certificate from the data directory's CA, or the operator's), its database in the data
//! directory, the administrator's token, and the job loop.

use crate::api::{self, ApiState};
use crate::db::{Db, DATABASE_FILE};
use crate::jobs::Fleet;
use anyhow::Context;
use ring::digest::{digest, SHA256};
use smartlic_core::{Clock, SystemClock};
use smartlic_server::{connection_cap, listen, tls, ServerConfig};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The administrator's bearer token, in the data directory (owner-only).
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

pub struct Running {
    pub local_addr: SocketAddr,
    /// The CA that issued the listener's certificate; None with `--tls-cert`.
    pub ca_pem: Option<String>,
    pub fleet: Arc<Fleet>,
    /// Set when this start generated the token file.
    pub generated_token: bool,
    task: tokio::task::JoinHandle<()>,
    jobs: tokio::task::JoinHandle<()>,
    /// The data directory's lock (one orchestrator per database), released by [`Running::stop`].
    data_lock: std::sync::Mutex<Option<std::fs::File>>,
}

impl Running {
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Stops serving and running jobs at once; a job in progress runs again at the next start.
    pub fn stop(&self) {
        self.task.abort();
        self.jobs.abort();
        drop(self.data_lock.lock().map(|mut lock| lock.take()));
    }
}

/// The token of `dir`, created (random, 256 bits, hex) on first start.
fn admin_token(dir: &Path) -> anyhow::Result<(String, bool)> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let token = text.trim().to_string();
        if token.len() < 32 {
            anyhow::bail!(
                "{} holds {} characters; an administrator token needs at least 32",
                path.display(),
                token.len()
            );
        }
        return Ok((token, false));
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness for the administrator token"))?;
    let token = hex::encode(bytes);
    tls::write_private(&path, &format!("{token}\n"))?;
    Ok((token, true))
}

/// Starts the orchestrator of `config` (its mode, listener, TLS, data directory, limits, the
/// data key sealing secrets; the clock is the caller's: the system's, or a test's).
pub async fn start(config: ServerConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    let (listener, tls_names, operator_tls) = listen(&config).await?;
    let local_addr = listener.local_addr()?;
    let limits = connection_cap(config.limits.clone());
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let data_lock = std::sync::Mutex::new(Some(smartlic_server::backup::lock_data_dir(&config.data_dir)?));
    let ((cert_pem, key_pem), ca_pem) = match operator_tls {
        Some(pair) => (pair, None),
        None => {
            let now_secs = SystemClock.now().0 / 1000;
            let (ca, _) = tls::load_or_create_ca(&config.data_dir, now_secs)?;
            (ca.issue_tls_certificate(&tls_names, now_secs)?, Some(ca.cert_pem().to_string()))
        }
    };
    let tls_config = tls::server_config(&cert_pem, &key_pem)?;
    let db = Db::open(&config.data_dir.join(DATABASE_FILE), config.database.data_key.clone())?;
    let (token, generated_token) = admin_token(&config.data_dir)?;
    let fleet = Arc::new(Fleet::new(db, clock));
    let mut sha = [0u8; 32];
    sha.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    let app = api::router(ApiState { fleet: fleet.clone(), admin_token_sha256: sha });
    let jobs = tokio::spawn(fleet.clone().run_jobs(config.job_interval));
    let task = tokio::spawn(tls::serve(listener, tls_config, app, limits));
    tracing::info!("fleet orchestrator listening on https://{local_addr}");
    Ok(Running { local_addr, ca_pem, fleet, generated_token, task, jobs, data_lock })
}
