//! What the replicas of one manager share through its database (issue 15): the certificate
//! authority, the simulated clock's offset and the leases that let one replica at a time run
//! the background jobs.

use smartlic_core::Timestamp;

/// The manager's CA as the database keeps it: the certificate in the clear, the private key
/// sealed (encrypted and authenticated) with the key of `SMARTLIC_DATA_KEY`, which the store
/// never sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCa {
    pub cert_pem: String,
    pub sealed_key: Vec<u8>,
}

/// The simulated clock's offset from wall time as last set by any replica. `version` grows by
/// one at each setting, so a replica applies a value once and never an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    pub offset_ms: i64,
    pub version: i64,
}

/// Who may run the work a lease names, until when (on the manager's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub expires_at: Timestamp,
}

/// Held by the one replica running the work a lease names, for as long as it runs. The lease
/// says whose turn it is on the manager's clock; this lock makes sure a run that outlasts its
/// lease (a stalled holder, a large backlog) never overlaps the next holder's run. Given back by
/// [`RunLock::release`] at the end of the run; when dropped instead (a run cancelled or
/// panicking) or when the holder dies, the kernel or the database releases it, a little later.
pub struct RunLock {
    held: Box<dyn HeldLock>,
}

/// What a backend holds for a [`RunLock`].
#[async_trait::async_trait]
pub(crate) trait HeldLock: Send + Sync {
    /// Gives the lock back before returning, so that the next holder can take it at once.
    async fn release(self: Box<Self>) -> crate::Result<()>;
}

/// A `flock`ed file ([`try_lock_file`]): closing it releases the lock at once.
#[async_trait::async_trait]
impl HeldLock for std::fs::File {
    async fn release(self: Box<Self>) -> crate::Result<()> {
        Ok(())
    }
}

impl RunLock {
    pub(crate) fn new(held: impl HeldLock + 'static) -> RunLock {
        RunLock { held: Box::new(held) }
    }

    /// Gives the lock back now. An error says it could not be given back at once: it is then
    /// released as when dropped.
    pub async fn release(self) -> crate::Result<()> {
        self.held.release().await
    }
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLock")
    }
}

/// An exclusive `flock` on the file `path` (created owner-only when missing, never removed:
/// removing it would let two holders lock two different files), held while the returned file
/// stays open; None while another open file holds it, in another process or in this one. The
/// kernel releases it when its holder dies.
pub fn try_lock_file(path: &std::path::Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().mode(0o600).create(true).truncate(false).write(true).open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
