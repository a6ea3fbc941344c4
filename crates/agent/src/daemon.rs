//! The device daemon (`smartlic agent --state DIR run`): fires the agent's timers on time and
//! serves the product REST API of A-15 ([`api`]) on a loopback port.
//!
//! One task owns the [`Device`] behind a mutex shared with the API handlers. The timer task
//! sleeps until the agent's next wakeup (device time: the system clock plus the `clock set`
//! offset), at least [`Options::min_sleep`] and at most [`Options::max_sleep`] so a moved clock
//! is noticed, then runs what is due. Every log line the device raises (the seeds' syslog form,
//! `%SMART_LIC-6-AGENT_REG_SUCCESS: ...`) is written through `tracing` with the device time.
//!
//! The API is plain HTTP: it is the product's own interface to its agent and listens on a
//! loopback address only ([`DaemonError::NotLoopback`] otherwise), as a product's local
//! management plane would. Anything reaching beyond the host goes to the manager, over HTTPS.
//! Other local users are kept out with [`ApiCredentials`] (a user and password, a bearer token):
//! when configured, every call without them is answered 401 `NOT_AUTHORIZED` (seed 002).
//!
//! A state directory is driven by one process at a time: [`lock`] takes an exclusive lock file
//! (`DIR/agent.lock`), and the daemon keeps the [`LockGuard`] it is given until it stops.

pub mod api;

use crate::device::{Device, DeviceError};
use smartlic_core::agent::{format_device_time, next_wakeup, LogEntry};
use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};

/// The lock file in a device state directory.
pub const LOCK_FILE: &str = "agent.lock";

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("the product REST API listens on loopback addresses only (plain HTTP); {0} is not one")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the product REST API stopped: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("device state {0} is in use by another smartlic agent process")]
    InUse(String),
    #[error("cannot lock the device state {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

/// Holds the exclusive lock on a device state directory; released when dropped (or when the
/// process ends, however it ends: the operating system drops the lock with the file).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes the exclusive lock of the device state directory `dir`, or says that another process
/// holds it. The directory must exist; `DIR/agent.lock` is created if missing and never removed
/// (removing it would let two processes lock two different files). It records the holder's
/// process ID, for whoever wonders who holds it.
pub fn lock(dir: &Path) -> Result<LockGuard, LockError> {
    let shown = dir.display().to_string();
    let io = |source| LockError::Io { dir: shown.clone(), source };
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(LockError::InUse(shown)),
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id())).map_err(io)?;
    Ok(LockGuard { file, path })
}

/// Locks `dir` and opens the device in it: the order every process driving a device follows.
pub fn open_locked(dir: &Path, clock: Box<dyn smartlic_core::Clock>) -> Result<(Device, LockGuard), DaemonError> {
    let guard = lock(dir)?;
    let mut device = Device::open(dir, clock)?;
    device.save_learned()?;
    Ok((device, guard))
}

/// Timer bounds and API credentials of the daemon.
#[derive(Clone, Debug)]
pub struct Options {
    /// Shortest sleep between two timer checks (a due time already reached is run at once).
    pub min_sleep: Duration,
    /// Longest sleep: the daemon re-reads the device clock at least this often, so a system
    /// clock that moved (or a test clock) is noticed.
    pub max_sleep: Duration,
    /// Who may call the product REST API.
    pub credentials: ApiCredentials,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            min_sleep: Duration::from_millis(10),
            max_sleep: Duration::from_secs(60),
            credentials: ApiCredentials::default(),
        }
    }
}

/// Who may call the product REST API: either configured form admits a call. With neither,
/// every local caller may (the API listens on loopback only).
#[derive(Clone, Default)]
pub struct ApiCredentials {
    /// HTTP Basic: user name and password.
    pub basic: Option<(String, String)>,
    /// `Authorization: Bearer TOKEN`.
    pub bearer: Option<String>,
}

/// Names the user and what is configured, never a secret.
impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("user", &self.basic.as_ref().map(|(user, _)| user))
            .field("bearer", &self.bearer.is_some())
            .finish()
    }
}

/// What the timer task and the API handlers share.
pub(crate) struct Shared {
    pub(crate) device: Mutex<Device>,
    /// Poked after every API call that changed the state: the next wakeup may be sooner.
    pub(crate) wake: Notify,
    pub(crate) credentials: ApiCredentials,
}

/// Runs the daemon on `listen` until `shutdown` completes, holding `lock` (the state
/// directory's, from [`lock`] or [`open_locked`]) throughout.
pub async fn run(
    device: Device,
    lock: LockGuard,
    listen: SocketAddr,
    credentials: ApiCredentials,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let (addr, serve) = bind(device, lock, listen, Options { credentials, ..Options::default() }, shutdown).await?;
    tracing::info!("smartlic agent daemon: product REST API on http://{addr}{}", api::BASE);
    serve.await
}

/// Binds the API socket and returns its address with the future that runs the daemon (timer and
/// API) until `shutdown` completes. Port 0 picks a free port.
pub async fn bind(
    device: Device,
    lock: LockGuard,
    listen: SocketAddr,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = Result<(), DaemonError>> + Send), DaemonError> {
    if !listen.ip().is_loopback() {
        return Err(DaemonError::NotLoopback(listen));
    }
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| DaemonError::Bind { addr: listen, source })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::Bind { addr: listen, source })?;
    let credentials = options.credentials.clone();
    let shared = Arc::new(Shared { device: Mutex::new(device), wake: Notify::new(), credentials });
    let app = api::router(shared.clone());
    let serve = async move {
        let timer = tokio::spawn(timer(shared.clone(), options));
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        timer.abort();
        let _ = timer.await;
        {
            let mut device = shared.device.lock().await;
            flush_log(&mut device);
            device.save()?;
        }
        drop(lock);
        tracing::info!("smartlic agent daemon stopped");
        served.map_err(DaemonError::Serve)
    };
    Ok((addr, serve))
}

/// Runs what is due, then sleeps until the next wakeup (or until an API call pokes it).
async fn timer(shared: Arc<Shared>, options: Options) {
    loop {
        let wait = {
            let mut device = shared.device.lock().await;
            let ran = device.run_due().await;
            flush_log(&mut device);
            match ran {
                Err(e) => {
                    tracing::error!("smartlic agent: {e}");
                    options.max_sleep.min(Duration::from_secs(5))
                }
                Ok(()) => sleep_for(next_wakeup(&device.agent).map(|due| due.0 - device.now().0), &options),
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.wake.notified() => {}
        }
    }
}

/// How long to sleep when the next wakeup is `ms` away (None: nothing is scheduled).
fn sleep_for(ms: Option<i64>, options: &Options) -> Duration {
    match ms {
        None => options.max_sleep,
        Some(ms) => Duration::from_millis(ms.max(0) as u64).clamp(options.min_sleep, options.max_sleep),
    }
}

/// Writes (and takes) the log lines the device raised since last time.
pub(crate) fn flush_log(device: &mut Device) {
    for entry in device.messages.drain(..) {
        log_entry(&entry);
    }
}

/// One line in the seeds' syslog form: `Mar 21 10:00:00 2026 UTC: %SMART_LIC-6-...: text`,
/// at the level its severity digit says (0-3 error, 4 warning, 5-7 info).
fn log_entry(entry: &LogEntry) {
    let at = format_device_time(entry.at);
    match severity(&entry.message) {
        Some(0..=3) => tracing::error!("{at}: {}", entry.message),
        Some(4) => tracing::warn!("{at}: {}", entry.message),
        _ => tracing::info!("{at}: {}", entry.message),
    }
}

/// The severity digit of `%FACILITY-N-MNEMONIC: ...`.
fn severity(message: &str) -> Option<u8> {
    let rest = message.strip_prefix('%')?;
    let digit = rest.split('-').nth(1)?;
    digit.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_digit_of_syslog_messages() {
        assert_eq!(severity("%SMART_LIC-6-AGENT_REG_SUCCESS: Smart Agent ..."), Some(6));
        assert_eq!(severity("%SMART_LIC-3-AGENT_REG_FAILED: ..."), Some(3));
        assert_eq!(severity("no tag"), None);
    }

    #[test]
    fn sleeps_within_bounds() {
        let o =
            Options { min_sleep: Duration::from_millis(10), max_sleep: Duration::from_secs(60), ..Options::default() };
        assert_eq!(sleep_for(None, &o), o.max_sleep);
        assert_eq!(sleep_for(Some(-5_000), &o), o.min_sleep);
        assert_eq!(sleep_for(Some(1_500), &o), Duration::from_millis(1_500));
        assert_eq!(sleep_for(Some(i64::MAX), &o), o.max_sleep);
    }
}
