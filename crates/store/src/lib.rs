//! Persistence of the smartlic manager behind one trait, [`Store`]. The SQLite backend is
//! the embedded default; a PostgreSQL backend implements the same trait with the same SQL
//! (`$1` parameters, portable types, migrations side by side) and runs the same tests.
//!
//! Every change is one transaction that also appends its event (C-14), so nothing accepted
//! is lost and nothing happens without a trace.

mod model;
mod sqlite;

pub use model::*;
pub use sqlite::SqliteStore;

use smartlic_core::compliance::Ledger;
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
pub trait Store: Send + Sync {
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
    async fn create_principal(&self, new: NewPrincipal, actor: &str, now: Timestamp) -> Result<Principal>;
    async fn principal(&self, name: &str) -> Result<Option<Principal>>;
    async fn principals(&self, account_id: Option<i64>) -> Result<Vec<Principal>>;
    async fn set_principal_secret(&self, id: i64, secret_hash: &str) -> Result<()>;
    async fn insert_access_token(&self, token_hash: &str, principal_id: i64, expires_at: Timestamp) -> Result<()>;
    async fn principal_for_access_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<Principal>>;

    // Licenses (C-4, C-5).
    async fn add_license(&self, new: NewLicense, actor: &str, now: Timestamp) -> Result<LicenseRecord>;
    async fn licenses(&self, virtual_account_id: i64) -> Result<Vec<LicenseRecord>>;
    /// Moves `quantity` of `tag` (of `kind` when given) valid at `now`; refuses more than held.
    async fn transfer_licenses(&self, t: Transfer, actor: &str, now: Timestamp) -> Result<()>;
    /// Licenses valid at `now`, reported usage and reservations, per tag, of one pool.
    async fn pool_counts(&self, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts>;

    // Offline reservations.
    /// Reserves every one of `new` in the pool, or none: in one transaction, `check` sees the
    /// pool's counts and the licenses asked for per tag and may refuse (its message becomes the
    /// Conflict), so concurrent reservations cannot over-commit; a UDI that already holds an
    /// active reservation anywhere is refused.
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
    async fn revoke_token(
        &self,
        virtual_account_id: i64,
        token: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<RegistrationToken>;

    // Product instances (C-8, C-12, C-13).
    async fn register_instance(
        &self,
        r: NewInstance,
        now: Timestamp,
    ) -> std::result::Result<Registered, RegisterRefusal>;
    async fn instance(&self, id: &str) -> Result<Option<Instance>>;
    async fn instances(&self, filter: InstanceFilter) -> Result<Vec<Instance>>;
    async fn instance_usage(&self, id: &str) -> Result<BTreeMap<String, i64>>;
    async fn renew_certificate(&self, id: &str, cert: &CertificateFacts, now: Timestamp) -> Result<()>;
    /// Records the full usage list of an instance and returns its pool's counts after it.
    /// The request's nonce is recorded in the same transaction; a replay changes nothing.
    async fn report_usage(&self, report: UsageReport, now: Timestamp) -> Result<(Instance, PoolCounts)>;
    async fn move_instance(
        &self,
        id: &str,
        to_virtual_account_id: i64,
        actor: &str,
        now: Timestamp,
    ) -> Result<Instance>;
    /// Removes an instance and gives its usage back; `kind` names the event (removed, deregistered, expired).
    async fn remove_instance(&self, id: &str, kind: &str, actor: &str, now: Timestamp) -> Result<Instance>;
    /// Gives back the usage of instances silent since before `cutoff` (C-12); returns their ids.
    async fn release_silent_usage(&self, cutoff: Timestamp, now: Timestamp) -> Result<Vec<String>>;
    async fn expired_instances(&self, now: Timestamp) -> Result<Vec<String>>;

    /// Records a nonce; false when it was seen already (a replay).
    async fn consume_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool>;
    /// Drops nonces and access tokens past their expiry.
    async fn purge_expired(&self, now: Timestamp) -> Result<()>;

    // Event log and alerts (C-14).
    async fn record_event(&self, event: NewEvent) -> Result<()>;
    async fn events(&self, account_id: Option<i64>, limit: i64) -> Result<Vec<Event>>;
    /// Replaces the current alerts with `current`, keeping the time an alert was first raised.
    async fn sync_alerts(&self, current: Vec<NewAlert>, now: Timestamp) -> Result<()>;
    async fn alerts(&self, account_id: i64) -> Result<Vec<Alert>>;
}

/// One authorization request's facts for [`Store::report_usage`].
#[derive(Debug, Clone)]
pub struct UsageReport {
    pub instance_id: String,
    pub usage: BTreeMap<String, i64>,
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
}

/// Decides, inside the reserving transaction, whether the licenses asked for (per tag) fit in
/// the pool's counts; `Err` holds the message of the refusal.
pub type ReservationCheck =
    Box<dyn FnOnce(&PoolCounts, &BTreeMap<String, i64>) -> std::result::Result<(), String> + Send>;

/// Which reservations to list.
#[derive(Debug, Clone, Copy)]
pub enum ReservationFilter {
    Account(i64),
    VirtualAccount(i64),
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub from_virtual_account_id: i64,
    pub to_virtual_account_id: i64,
    pub tag: String,
    pub quantity: i64,
    pub kind: Option<LicenseKind>,
}
