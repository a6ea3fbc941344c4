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
