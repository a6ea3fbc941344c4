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

/// What the portal's Event Log shows: one account's events, newest first (by time, then by
/// their order in the log; a text search of [`INDEXED_SEARCH_CHARS`] characters or more walks
/// the log's order, the same unless the clock went back), filtered.
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
    /// Only events whose object, detail or actor holds this text (ASCII case ignored, and on
    /// PostgreSQL what its locale folds). A text
    /// shorter than [`INDEXED_SEARCH_CHARS`] is looked for in the newest
    /// [`SHORT_SEARCH_EVENTS`] events passing the other filters only.
    pub text: String,
    pub limit: i64,
}

/// Texts of at least this many characters are searched through a substring (trigram) index,
/// over every row; shorter ones only within a bounded window (see the two constants below).
pub const INDEXED_SEARCH_CHARS: usize = 3;
/// An instance search lists at most this many matches; when more match, it answers this
/// number plus one as their count (the page says "more than"), and which of them are listed
/// is not specified.
pub const INSTANCE_MATCHES_LISTED: i64 = 1_000;
/// A search of fewer than [`INDEXED_SEARCH_CHARS`] characters looks at this many instances of
/// the pool only, the first in listing order (PID, serial number).
pub const SHORT_SEARCH_INSTANCES: i64 = 5_000;
/// An event search of fewer than [`INDEXED_SEARCH_CHARS`] characters looks at this many events
/// only, the newest that pass the other filters.
pub const SHORT_SEARCH_EVENTS: i64 = 5_000;

/// Whether `text` (trimmed) is long enough for the substring index.
pub fn indexed_search(text: &str) -> bool {
    text.trim().chars().count() >= INDEXED_SEARCH_CHARS
}
