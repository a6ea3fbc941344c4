//! Persistence of the smartlic manager behind one trait, [`Store`]. The SQLite backend is
//! the embedded default; a PostgreSQL backend implements the same trait with the same SQL
//! (`$1` parameters, portable types, migrations side by side) and runs the same tests.
//!
//! Every change is one transaction that also appends its event (C-14), so nothing accepted
//! is lost and nothing happens without a trace.

pub mod conversion;
mod listing;
mod model;
pub mod pak;
mod portal;
#[cfg(feature = "postgres")]
pub mod postgres;
mod replica;
mod rules;
pub mod satellite;
mod sqlite;
mod url;

pub use listing::InstanceKey;
pub use model::*;
pub use portal::{
    indexed_search, EventQuery, PortalSession, UsageDay, INDEXED_SEARCH_CHARS, INSTANCE_MATCHES_LISTED,
    SHORT_SEARCH_EVENTS, SHORT_SEARCH_INSTANCES,
};
pub use replica::{try_lock_file, ClockOffset, Lease, RunLock, StoredCa};
pub use sqlite::{check_backup, migrate as migrate_sqlite, BackupInfo, SqliteStore};
pub use url::{open, DatabaseUrl, MalformedDatabaseUrl, PostgresUrl, POSTGRES_DEFAULT_PORT};

use smartlic_core::compliance::{Ledger, Shortfall, TagBalance};
use smartlic_core::{Catalog, LicenseKind, Timestamp};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage failure: {0}")]
    Database(String),
    /// The request's nonce was seen before.
    #[error("replayed nonce")]
    Replay,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterRefusal {
    #[error("the registration token is unknown, expired, revoked or used up")]
    InvalidToken,
    #[error("product already registered")]
    AlreadyRegistered,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait::async_trait]
pub trait Store: satellite::SatelliteStore + conversion::ConversionStore + pak::PakStore + Send + Sync {
    // Smart and virtual accounts (C-1).
    async fn create_account(&self, domain: &str, name: &str, actor: &str, now: Timestamp) -> Result<Account>;
    async fn account(&self, domain: &str) -> Result<Option<Account>>;
    async fn account_by_id(&self, id: i64) -> Result<Option<Account>>;
    async fn accounts(&self) -> Result<Vec<Account>>;
    async fn create_virtual_account(
        &self,
        account: &Account,
        name: &str,
        description: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<VirtualAccount>;
    async fn virtual_account(&self, account_id: i64, name: &str) -> Result<Option<VirtualAccount>>;
    async fn virtual_account_by_id(&self, id: i64) -> Result<Option<VirtualAccount>>;
    async fn virtual_accounts(&self, account_id: i64) -> Result<Vec<VirtualAccount>>;
    async fn all_virtual_accounts(&self) -> Result<Vec<VirtualAccount>>;
    /// Allows or forbids universal reservations for the devices of an account.
    async fn set_universal_reservation(
        &self,
        account_id: i64,
        allowed: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<Account>;
    /// Deletes an empty virtual account: refused (Conflict, naming why) for the default one and
    /// for one that still holds licenses not yet ended, product instances, active registration
    /// tokens or active reservations. Its expired licenses, spent tokens, returned reservations
    /// and the users and API clients bound to it go with it.
    async fn delete_virtual_account(
        &self,
        virtual_account_id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<VirtualAccount>;

    // Users and API clients (C-2, C-3).
    /// Refused (Conflict) when the name is taken in that smart account or the login anywhere.
    async fn create_principal(&self, new: NewPrincipal, actor: &str, now: Timestamp) -> Result<Principal>;
    /// The principal that logs in with `login` (see [`login_of`]).
    async fn principal(&self, login: &str) -> Result<Option<Principal>>;
    async fn principal_by_id(&self, id: i64) -> Result<Option<Principal>>;
    /// The user or API client of that display name in a smart account.
    async fn principal_named(&self, account_id: i64, kind: PrincipalKind, name: &str) -> Result<Option<Principal>>;
    async fn principals(&self, account_id: Option<i64>) -> Result<Vec<Principal>>;
    /// Replaces a secret (rotation, password change) and revokes the principal's live access
    /// tokens in the same transaction, with its event.
    async fn set_principal_secret(&self, id: i64, secret_hash: &str, actor: &str, now: Timestamp) -> Result<Principal>;
    /// Disables (revoking its live access tokens) or enables a principal.
    async fn set_principal_disabled(&self, id: i64, disabled: bool, actor: &str, now: Timestamp) -> Result<Principal>;
    /// Removes a principal and its access tokens; its events keep its name.
    async fn delete_principal(&self, id: i64, actor: &str, now: Timestamp) -> Result<Principal>;
    async fn insert_access_token(
        &self,
        token_hash: &str,
        prefix: &str,
        principal_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;
    /// The enabled principal holding this live access token.
    async fn principal_for_access_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<Principal>>;
    /// Live (unexpired) access tokens.
    async fn access_tokens(&self, filter: AccessTokenFilter, now: Timestamp) -> Result<Vec<AccessToken>>;
    /// Ends an access token at once, with its event.
    async fn revoke_access_token(&self, id: i64, actor: &str, now: Timestamp) -> Result<AccessToken>;

    // Licenses (C-4, C-5).
    async fn add_license(&self, new: NewLicense, actor: &str, now: Timestamp) -> Result<LicenseRecord>;
    async fn licenses(&self, virtual_account_id: i64) -> Result<Vec<LicenseRecord>>;
    /// Moves every one of `transfers` out of one pool, or none, in one transaction. `check` sees
    /// the pool's counts and what would leave it per tag, and may refuse (its message becomes the
    /// Conflict; the rule is [`PoolCounts::check_transfer`]); each item also needs that many
    /// licenses of its tag (of its kind, when given) valid at `now`, and a target pool of the
    /// same smart account.
    async fn transfer_licenses(
        &self,
        from_virtual_account_id: i64,
        transfers: Vec<Transfer>,
        check: TransferCheck,
        actor: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// Licenses valid at `now`, reported usage and reservations, per tag, of one pool.
    async fn pool_counts(&self, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts>;
    /// How many licenses of each purchase record of the pool (by id) active reservations draw.
    async fn drawn(&self, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>>;
    /// Recomputes every pool's in-use and reserved counts from the records (usage of instances
    /// whose usage is not released, chunks of active reservations valid at `now`) and returns
    /// each count that differs from the stored counter, by pool and tag.
    async fn check_counters(&self, now: Timestamp) -> Result<Vec<CounterDrift>>;
    /// Sets every stored in-use counter that differs from its recomputed count (as
    /// [`Store::check_counters`] finds them) to that count, in one transaction with a
    /// `counters.repaired` event each, and answers what it set. Reserved counts are left: which
    /// purchase record a reservation draws from is not recomputable, so they need a person.
    async fn repair_in_use_counters(&self, actor: &str, now: Timestamp) -> Result<Vec<CounterDrift>>;

    // Offline reservations.
    /// Reserves every one of `new` in the pool, or none: in one transaction, `check` sees the
    /// pool's counts and the licenses asked for per tag and may refuse (its message becomes the
    /// Conflict), so concurrent reservations cannot over-commit; a UDI that already holds an
    /// active reservation or is a registered product instance, anywhere, is refused (one device
    /// is licensed once), naming no virtual account of another smart account.
    async fn create_reservations(
        &self,
        virtual_account_id: i64,
        new: Vec<NewReservation>,
        check: ReservationCheck,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<Reservation>>;
    async fn reservations(&self, filter: ReservationFilter) -> Result<Vec<Reservation>>;
    /// The reservation whose authorization code has this digest (hex), whatever its status.
    async fn reservation_by_digest(&self, digest_hex: &str) -> Result<Option<Reservation>>;
    /// Gives a reservation's licenses back to its pool; refused (Conflict) when already returned,
    /// which is how a replayed return code is refused.
    async fn return_reservation(&self, id: i64, actor: &str, now: Timestamp) -> Result<Reservation>;

    // Registration tokens (C-7).
    async fn create_token(&self, new: NewToken, actor: &str, now: Timestamp) -> Result<RegistrationToken>;
    async fn tokens(&self, virtual_account_id: i64) -> Result<Vec<RegistrationToken>>;
    /// Revokes every one of `tokens` of the pool, or none, in one transaction: each names the
    /// token whose hash is `token_hash` or, failing that, whose listed prefix is `prefix`
    /// (refused when that prefix is ambiguous); an unknown or already revoked one refuses all.
    async fn revoke_tokens(
        &self,
        virtual_account_id: i64,
        tokens: Vec<TokenRef>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<RegistrationToken>>;
    /// [`Store::revoke_tokens`] of one.
    async fn revoke_token(
        &self,
        virtual_account_id: i64,
        token_hash: &str,
        prefix: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<RegistrationToken> {
        let one = TokenRef { token_hash: token_hash.into(), prefix: prefix.into() };
        only(self.revoke_tokens(virtual_account_id, vec![one], actor, now).await?)
    }

    // Product instances (C-8, C-12, C-13).
    async fn register_instance(
        &self,
        r: NewInstance,
        now: Timestamp,
    ) -> std::result::Result<Registered, RegisterRefusal>;
    async fn instance(&self, id: &str) -> Result<Option<Instance>>;
    async fn instances(&self, filter: InstanceFilter) -> Result<Vec<Instance>>;
    /// The usage of each of `ids` that reports any, by instance id: a listing reads the usage
    /// of a whole page at once, not one query per instance.
    async fn instances_usage(&self, ids: Vec<String>) -> Result<BTreeMap<String, BTreeMap<String, i64>>>;
    /// One page (after `after`, at most `limit`) of the instances of the pools
    /// `virtual_account_ids`, in listing order (pool, then PID and serial number): a listing
    /// reads the page it shows, in index ranges (keyset paging, see [`InstanceKey`]), not every
    /// instance of the account nor the ones before the page.
    async fn instances_page(
        &self,
        virtual_account_ids: Vec<i64>,
        after: Option<InstanceKey>,
        limit: i64,
    ) -> Result<Vec<Instance>>;
    /// How many instances the pools `virtual_account_ids` hold, and the page of them at
    /// `offset` (at most `limit`) in listing order: for the original API's device listing, whose
    /// clients page by position and are told the total. The page is found by `OFFSET` in the
    /// pool index (a page deep in a large pool walks the entries before it), the rows are not.
    async fn instances_at(
        &self,
        virtual_account_ids: Vec<i64>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<Instance>)>;
    /// One page (`offset`, `limit`) of a pool's instances whose hostname, PID, serial number or
    /// id holds `text` (ASCII case ignored, and on PostgreSQL what its locale folds; every
    /// instance when empty), in listing order, with how many match in all: the portal's
    /// search, which must not read a large pool whole.
    /// A text of [`INDEXED_SEARCH_CHARS`] characters or more searches every instance through a
    /// substring index (trigrams), but at most [`INSTANCE_MATCHES_LISTED`] matches are listed
    /// and counted: when more match, the count is that number plus one. A shorter text is
    /// looked for in the first [`SHORT_SEARCH_INSTANCES`] instances of the pool only.
    async fn search_instances(
        &self,
        virtual_account_id: i64,
        text: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Instance>, i64)>;
    /// Moves an instance to a new ID certificate and key. The key that is replaced stays
    /// accepted as the previous one, unless a previous key is still pending (the renewal was
    /// signed by it after a lost answer): that one stays, the key never used is forgotten.
    async fn renew_certificate(&self, id: &str, cert: &CertificateFacts, now: Timestamp) -> Result<()>;
    /// The new key has signed a request: the previous one is no longer accepted.
    async fn forget_previous_key(&self, id: &str) -> Result<()>;
    /// Records the full usage list of an instance and returns its pool's counts after it.
    /// The request's nonce is recorded in the same transaction; a replay changes nothing.
    async fn report_usage(&self, report: UsageReport, now: Timestamp) -> Result<PoolCounts>;
    /// Moves every one of `moves` or none, in one transaction; each target pool must be in the
    /// smart account of the instance's pool.
    async fn move_instances(&self, moves: Vec<InstanceMove>, actor: &str, now: Timestamp) -> Result<Vec<Instance>>;
    /// [`Store::move_instances`] of one instance, wherever it is.
    async fn move_instance(
        &self,
        id: &str,
        to_virtual_account_id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<Instance> {
        let one = InstanceMove { instance_id: id.into(), from_virtual_account_id: None, to_virtual_account_id };
        only(self.move_instances(vec![one], actor, now).await?)
    }
    /// Carries out every one of `removals` or none, in one transaction: removed instances give
    /// their usage back, returned reservations their licenses. `kind` names the instances' event
    /// (removed, deregistered, expired).
    async fn remove_instances(
        &self,
        removals: Vec<Removal>,
        kind: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<Removed>>;
    /// [`Store::remove_instances`] of one instance, wherever it is.
    async fn remove_instance(&self, id: &str, kind: &str, actor: &str, now: Timestamp) -> Result<Instance> {
        let one = Removal::Instance { id: id.into(), from_virtual_account_id: None };
        match only(self.remove_instances(vec![one], kind, actor, now).await?)? {
            Removed::Instance(gone) => Ok(gone),
            Removed::Reservation(r) => {
                Err(StoreError::Corrupt(format!("instance {id} removal returned reservation {}", r.id)))
            }
        }
    }
    /// Gives back the usage of instances silent since before `cutoff` (C-12); returns their ids.
    async fn release_silent_usage(&self, cutoff: Timestamp, now: Timestamp) -> Result<Vec<String>>;
    async fn expired_instances(&self, now: Timestamp) -> Result<Vec<String>>;

    /// Records a nonce; false when it was seen already (a replay).
    async fn consume_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool>;
    /// Drops nonces and access tokens past their expiry.
    async fn purge_expired(&self, now: Timestamp) -> Result<()>;

    // Event log and alerts (C-14).
    async fn record_event(&self, event: NewEvent) -> Result<()>;
    /// The most recent events (of the account, or of all), newest first, at most `limit`.
    async fn events(&self, account_id: Option<i64>, limit: i64) -> Result<Vec<Event>> {
        self.events_before(account_id, None, limit).await
    }
    /// [`Store::events`] older than the event `before` (by id) when given: the event log's
    /// keyset pages, each one index range (account, id) whatever its depth in the log.
    async fn events_before(&self, account_id: Option<i64>, before: Option<i64>, limit: i64) -> Result<Vec<Event>>;
    /// Replaces the current alerts with `current`, keeping the time an alert was first raised.
    async fn sync_alerts(&self, current: Vec<NewAlert>, now: Timestamp) -> Result<()>;
    async fn alerts(&self, account_id: i64) -> Result<Vec<Alert>>;

    // Web portal: sessions and usage history.
    /// Stores a new session.
    async fn start_portal_session(&self, session: PortalSession) -> Result<()>;
    /// The session whose id has digest `id_hash`, if it ends after `now`.
    async fn portal_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<PortalSession>>;
    /// Moves a session's end to `expires_at` (a request came).
    async fn extend_portal_session(&self, id_hash: &str, expires_at: Timestamp) -> Result<()>;
    /// Ends a session (signed out or no longer valid).
    async fn end_portal_session(&self, id_hash: &str) -> Result<()>;
    /// Drops the sessions that ended by `now`; answers how many.
    async fn purge_portal_sessions(&self, now: Timestamp) -> Result<usize>;
    /// Records usage days, replacing the values already recorded for the same pool, tag and day.
    async fn record_usage_days(&self, days: Vec<UsageDay>) -> Result<()>;
    /// A pool's usage days from `since` on, by tag then day.
    async fn usage_history(&self, virtual_account_id: i64, since: Timestamp) -> Result<Vec<UsageDay>>;
    /// Drops the usage days before `before`, every pool together; answers how many.
    async fn prune_usage_history(&self, before: Timestamp) -> Result<usize>;
    /// The events a query selects, newest first, read through an index rather than the whole log.
    async fn search_events(&self, query: EventQuery) -> Result<Vec<Event>>;
    /// The kinds of event an account's log holds.
    async fn event_kinds(&self, account_id: i64) -> Result<Vec<String>>;

    // Operation (readiness, metrics, shutdown).
    /// Proves the database takes a write now: a transaction through the writer, committed.
    async fn probe_writable(&self) -> Result<()>;
    /// Product instances registered, all accounts together (a metric).
    async fn instance_count(&self) -> Result<i64>;
    /// Time spent writing (transactions and their commits) since the store was opened.
    fn write_busy(&self) -> std::time::Duration;
    /// Finishes the writes already queued, refuses later ones and closes the database cleanly.
    async fn close(&self) -> Result<()>;
    /// A consistent copy of the whole database holding every change acknowledged before the
    /// call, as an open file that no name refers to (the caller streams it and it is gone).
    async fn backup(&self) -> Result<std::fs::File>;

    // What replicas over one database share (issue 15).
    /// Stores `candidate` as the manager's CA unless one is stored already, and answers the one
    /// stored, in one transaction: replicas starting together on an empty database agree on one.
    async fn store_ca(&self, candidate: StoredCa) -> Result<StoredCa>;
    /// The CA the database holds, if any.
    async fn stored_ca(&self) -> Result<Option<StoredCa>>;
    /// The simulated clock's offset as last set by any replica; None when never set.
    async fn clock_offset(&self) -> Result<Option<ClockOffset>>;
    /// Sets the simulated clock's offset (one more version) and answers it.
    async fn set_clock_offset(&self, offset_ms: i64) -> Result<ClockOffset>;
    /// Gives the lease `name` to `holder` until `now + ttl_ms` when it is new, expired at `now`
    /// or already `holder`'s (a renewal), in one transaction; false while another holds it.
    async fn try_lease(&self, name: &str, holder: &str, now: Timestamp, ttl_ms: i64) -> Result<bool>;
    /// Who holds the lease `name` (or held it last) and until when; None when never taken.
    async fn lease(&self, name: &str) -> Result<Option<Lease>>;
    /// Takes the run lock `name` unless another holder (this process or another replica) has
    /// it: None then. Taken after the lease of the same name, held while the work runs.
    async fn try_run_lock(&self, name: &str) -> Result<Option<RunLock>>;
}

/// One authorization request's facts for [`Store::report_usage`].
#[derive(Debug, Clone)]
pub struct UsageReport {
    pub instance_id: String,
    pub usage: BTreeMap<String, i64>,
    /// The hostname the device sent; None (hostname privacy) leaves the instance with none, so a
    /// name sent before privacy was turned on is not kept (C-8).
    pub hostname: Option<String>,
    pub nonce: String,
    /// How long the nonce must be remembered.
    pub nonce_expires_at: Timestamp,
}

/// Which instances to list.
#[derive(Debug, Clone, Copy)]
pub enum InstanceFilter {
    Account(i64),
    VirtualAccount(i64),
    /// Every instance last heard from at or before this time (read through its index).
    SilentSince(Timestamp),
}

/// A stored counter that differs from the count recomputed from the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDrift {
    pub virtual_account_id: i64,
    pub account: String,
    pub virtual_account: String,
    pub tag: String,
    /// `in use` or `reserved`.
    pub counter: &'static str,
    pub stored: i64,
    pub recomputed: i64,
}

/// Licenses valid now, usage and reservations, per tag, of one pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolCounts {
    pub purchased: BTreeMap<String, i64>,
    pub in_use: BTreeMap<String, i64>,
    pub reserved: BTreeMap<String, i64>,
}

impl PoolCounts {
    /// The pool's balances with tier lending.
    pub fn ledger(&self, catalog: &Catalog) -> Ledger {
        Ledger::compute(catalog, &self.purchased, &self.in_use, &self.reserved)
    }

    /// Whether the pool can give away `outgoing` (per tag). Only what is available leaves: not in
    /// use, not reserved, not needed by what it lends to lower tiers, so after it no tag is
    /// shorter than it was. On refusal, names the first tag (in `outgoing`'s order) that does not
    /// fit, with how many of it could leave along with the tags before it.
    pub fn check_transfer(
        &self,
        catalog: &Catalog,
        outgoing: &BTreeMap<String, i64>,
    ) -> std::result::Result<(), Shortfall> {
        let before = self.ledger(catalog);
        let fits = |out: &BTreeMap<String, i64>| {
            let mut purchased = self.purchased.clone();
            for (tag, n) in out {
                let left = purchased.entry(tag.clone()).or_default();
                *left -= n;
                if *left < 0 {
                    return false;
                }
            }
            let after = Ledger::compute(catalog, &purchased, &self.in_use, &self.reserved);
            after.tags.iter().all(|t| t.balance() >= before.get(&t.tag).map_or(0, TagBalance::balance).min(0))
        };
        let mut taken = BTreeMap::new();
        for (tag, &requested) in outgoing {
            taken.insert(tag.clone(), requested);
            if fits(&taken) {
                continue;
            }
            // Giving more away never covers more, so the largest quantity that fits is found by bisection.
            let (mut fit, mut unfit) = (0, requested);
            while unfit - fit > 1 {
                let mid = fit + (unfit - fit) / 2;
                taken.insert(tag.clone(), mid);
                if fits(&taken) {
                    fit = mid;
                } else {
                    unfit = mid;
                }
            }
            return Err(Shortfall { tag: tag.clone(), requested, available: fit });
        }
        Ok(())
    }
}

/// Decides, inside the reserving transaction, whether the licenses asked for (per tag) fit in
/// the pool's counts; `Err` holds the message of the refusal. It may be asked more than once: a
/// PostgreSQL transaction in conflict with a concurrent one runs again from the start.
pub type ReservationCheck =
    Box<dyn Fn(&PoolCounts, &BTreeMap<String, i64>) -> std::result::Result<(), String> + Send + Sync>;

/// Which reservations to list.
#[derive(Debug, Clone, Copy)]
pub enum ReservationFilter {
    Account(i64),
    VirtualAccount(i64),
}

/// Decides, inside the transferring transaction, whether the pool with these counts can give
/// away the licenses (per tag) of a batch; `Err` holds the message of the refusal. Like
/// [`ReservationCheck`], it may be asked more than once.
pub type TransferCheck =
    Box<dyn Fn(&PoolCounts, &BTreeMap<String, i64>) -> std::result::Result<(), String> + Send + Sync>;

/// The one result of a batch of one.
fn only<T>(mut done: Vec<T>) -> Result<T> {
    match (done.pop(), done.is_empty()) {
        (Some(one), true) => Ok(one),
        _ => Err(StoreError::Corrupt("a batch of one did not give one result".into())),
    }
}

/// A registration token as a caller names it ([`Store::revoke_tokens`]): the SHA-256 (hex) of
/// the text given, and that text's first characters, which may be a listed prefix.
#[derive(Debug, Clone)]
pub struct TokenRef {
    pub token_hash: String,
    pub prefix: String,
}

impl TokenRef {
    /// Names the token a caller gave as `text`, whose SHA-256 (hex) is `token_hash`.
    pub fn new(text: &str, token_hash: String) -> TokenRef {
        TokenRef { token_hash, prefix: text.chars().take(REGISTRATION_TOKEN_PREFIX).collect() }
    }
}

/// One item of [`Store::move_instances`].
#[derive(Debug, Clone)]
pub struct InstanceMove {
    pub instance_id: String,
    /// The pool the caller found it in, when it must still be there (the caller's rights were
    /// checked on that pool): refused when a concurrent change moved it.
    pub from_virtual_account_id: Option<i64>,
    pub to_virtual_account_id: i64,
}

/// One item of [`Store::remove_instances`].
#[derive(Debug, Clone)]
pub enum Removal {
    /// A product instance; `from_virtual_account_id` as in [`InstanceMove`].
    Instance { id: String, from_virtual_account_id: Option<i64> },
    /// An active reservation, by id: a device removed with its return code gives its licenses back.
    Reservation(i64),
}

/// What one [`Removal`] did.
#[derive(Debug, Clone)]
pub enum Removed {
    Instance(Instance),
    Reservation(Reservation),
}

/// One item of [`Store::transfer_licenses`]: `quantity` of `tag` (of `kind` when given) to a pool.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub to_virtual_account_id: i64,
    pub tag: String,
    pub quantity: i64,
    pub kind: Option<LicenseKind>,
}

/// Migrations are applied by their place in a backend's list, so a file left out, or put in
/// out of order, would be skipped on databases that ran the later ones: the list must be every
/// file of the backend's directory, numbered 1, 2, 3 ... in order.
#[cfg(test)]
pub(crate) fn assert_migrations_are_the_files(backend: &str, list: &[&str]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), list.len(), "{backend}: every file of {} is in the list", dir.display());
    for (i, (file, listed)) in files.iter().zip(list).enumerate() {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with(&format!("{:04}_", i + 1)), "{backend}: migration {} is {name}", i + 1);
        assert_eq!(&std::fs::read_to_string(file).unwrap(), listed, "{backend}: {name} is listed at its place");
    }
}
