//! What the web portal keeps in the store: its sessions (shared by every manager over one
//! database, kept across restarts) and the daily usage history its Reports chart draws.

use smartlic_core::Timestamp;

/// A signed-in browser. The cookie's session id itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// SHA-256 (hex) of the session id.
    pub id_hash: String,
    pub principal_id: i64,
    /// The token every form of the session carries.
    pub csrf: String,
    /// Digest of the principal's secret hash at sign-in: a changed password ends the session.
    pub secret_fingerprint: String,
    pub started_at: Timestamp,
    /// The session ends then, unless a request moves it later.
    pub expires_at: Timestamp,
}

/// A pool's usage of one entitlement tag on one day (the day's last value seen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    pub virtual_account_id: i64,
    pub tag: String,
    /// The day's start (00:00 UTC).
    pub day: Timestamp,
    pub in_use: i64,
    pub purchased: i64,
}

/// What the portal's Event Log shows: one account's events, newest first, filtered.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub account_id: i64,
    /// The pools whose events the viewer sees (events of no pool always show); None: all.
    pub pools: Option<Vec<i64>>,
    /// Only events of this kind; every kind when empty.
    pub kind: String,
    /// Only events at or after this time.
    pub from: Option<Timestamp>,
    /// Only events before this time.
    pub to: Option<Timestamp>,
    /// Only events whose object, detail or actor holds this text (ASCII case ignored).
    pub text: String,
    pub limit: i64,
}
