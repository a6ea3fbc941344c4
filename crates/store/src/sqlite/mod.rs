//! The embedded SQLite backend: one file, WAL journal, full synchronous commits shared by
//! concurrent writers (see `engine`), so an acknowledged change survives a crash or power loss.
//!
//! The SQL lives in one file per aggregate (accounts, principals, pools and licenses,
//! reservations, registration tokens, instances and usage, nonces, events and alerts), each a
//! set of functions over the store; the [`Store`] implementation here only routes each method
//! to its aggregate, so a second backend can mirror the same layout file by file.

mod accounts;
mod backup;
mod conversion;
mod engine;
mod events;
mod instances;
mod lease;
mod licenses;
mod nonces;
mod pak;
mod principals;
mod reservations;
mod satellite;
mod search;
mod sessions;
mod shared;
mod sql;
mod tokens;

use crate::*;
pub use backup::{check_backup, BackupInfo};
pub use engine::migrate;
use engine::Engine;
use std::path::Path;

// What `satellite` shares with the other aggregates.
use events::log;
use instances::{delete_instance, instance_row as instance, usage_of, INSTANCE};
use licenses::shift_pool_usage;
use sql::{all, exec, one, opt_ts, ts, unique_or, R};

/// Applied in order; `PRAGMA user_version` counts those done, so each runs once per database.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_reservations.sql"),
    include_str!("../../migrations/sqlite/0003_credentials.sql"),
    include_str!("../../migrations/sqlite/0004_reservation_draws.sql"),
    include_str!("../../migrations/sqlite/0005_previous_device_key.sql"),
    include_str!("../../migrations/sqlite/0006_evaluation_used.sql"),
    include_str!("../../migrations/sqlite/0007_satellites.sql"),
    include_str!("../../migrations/sqlite/0008_sync.sql"),
    include_str!("../../migrations/sqlite/0009_sync_schedule.sql"),
    include_str!("../../migrations/sqlite/0010_instances_by_pool_udi.sql"),
    include_str!("../../migrations/sqlite/0011_portal_sessions.sql"),
    include_str!("../../migrations/sqlite/0012_portal_search.sql"),
    include_str!("../../migrations/sqlite/0013_replicas.sql"),
    include_str!("../../migrations/sqlite/0014_device_conversion.sql"),
    include_str!("../../migrations/sqlite/0015_pak.sql"),
];

pub struct SqliteStore {
    db: Engine,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let db = tokio::task::spawn_blocking(move || {
            owner_only(&path)?;
            Engine::open(&path, MIGRATIONS)
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        Ok(SqliteStore { db })
    }
}

/// Makes the database file readable by its owner only (mode 0600), creating it so when new:
/// it holds password hashes and token digests. SQLite gives its -wal and -shm files the
/// database file's mode; those left by an earlier, looser start are tightened too.
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |e: std::io::Error| StoreError::Database(format!("cannot secure {}: {e}", path.display()));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(failed)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, domain: &str, name: &str, actor: &str, now: Timestamp) -> Result<Account> {
        accounts::create_account(self, domain, name, actor, now).await
    }

    async fn account(&self, domain: &str) -> Result<Option<Account>> {
        accounts::account(self, domain).await
    }

    async fn account_by_id(&self, id: i64) -> Result<Option<Account>> {
        accounts::account_by_id(self, id).await
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        accounts::accounts(self).await
    }

    async fn create_virtual_account(
        &self,
        acct: &Account,
        name: &str,
        description: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<VirtualAccount> {
        accounts::create_virtual_account(self, acct, name, description, actor, now).await
    }

    async fn virtual_account(&self, account_id: i64, name: &str) -> Result<Option<VirtualAccount>> {
        accounts::virtual_account(self, account_id, name).await
    }

    async fn virtual_account_by_id(&self, id: i64) -> Result<Option<VirtualAccount>> {
        accounts::virtual_account_by_id(self, id).await
    }

    async fn virtual_accounts(&self, account_id: i64) -> Result<Vec<VirtualAccount>> {
        accounts::virtual_accounts(self, account_id).await
    }

    async fn all_virtual_accounts(&self) -> Result<Vec<VirtualAccount>> {
        accounts::all_virtual_accounts(self).await
    }

    async fn set_universal_reservation(
        &self,
        account_id: i64,
        allowed: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<Account> {
        accounts::set_universal_reservation(self, account_id, allowed, actor, now).await
    }

    async fn delete_virtual_account(&self, id: i64, actor: &str, now: Timestamp) -> Result<VirtualAccount> {
        accounts::delete_virtual_account(self, id, actor, now).await
    }

    async fn create_reservations(
        &self,
        virtual_account_id: i64,
        new: Vec<NewReservation>,
        check: ReservationCheck,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<Reservation>> {
        reservations::create_reservations(self, virtual_account_id, new, check, actor, now).await
    }

    async fn reservations(&self, filter: ReservationFilter) -> Result<Vec<Reservation>> {
        reservations::reservations(self, filter).await
    }

    async fn reservation_by_digest(&self, digest_hex: &str) -> Result<Option<Reservation>> {
        reservations::reservation_by_digest(self, digest_hex).await
    }

    async fn return_reservation(&self, id: i64, actor: &str, now: Timestamp) -> Result<Reservation> {
        reservations::return_reservation(self, id, actor, now).await
    }

    async fn create_principal(&self, new: NewPrincipal, actor: &str, now: Timestamp) -> Result<Principal> {
        principals::create_principal(self, new, actor, now).await
    }

    async fn principal(&self, login: &str) -> Result<Option<Principal>> {
        principals::principal(self, login).await
    }

    async fn principal_by_id(&self, id: i64) -> Result<Option<Principal>> {
        principals::principal_by_id(self, id).await
    }

    async fn principal_named(&self, account_id: i64, kind: PrincipalKind, name: &str) -> Result<Option<Principal>> {
        principals::principal_named(self, account_id, kind, name).await
    }

    async fn principals(&self, account_id: Option<i64>) -> Result<Vec<Principal>> {
        principals::principals(self, account_id).await
    }

    async fn set_principal_secret(&self, id: i64, secret_hash: &str, actor: &str, now: Timestamp) -> Result<Principal> {
        principals::set_principal_secret(self, id, secret_hash, actor, now).await
    }

    async fn set_principal_disabled(&self, id: i64, disabled: bool, actor: &str, now: Timestamp) -> Result<Principal> {
        principals::set_principal_disabled(self, id, disabled, actor, now).await
    }

    async fn delete_principal(&self, id: i64, actor: &str, now: Timestamp) -> Result<Principal> {
        principals::delete_principal(self, id, actor, now).await
    }

    async fn insert_access_token(
        &self,
        token_hash: &str,
        prefix: &str,
        principal_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        principals::insert_access_token(self, token_hash, prefix, principal_id, now, expires_at).await
    }

    async fn principal_for_access_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<Principal>> {
        principals::principal_for_access_token(self, token_hash, now).await
    }

    async fn access_tokens(&self, filter: AccessTokenFilter, now: Timestamp) -> Result<Vec<AccessToken>> {
        principals::access_tokens(self, filter, now).await
    }

    async fn revoke_access_token(&self, id: i64, actor: &str, now: Timestamp) -> Result<AccessToken> {
        principals::revoke_access_token(self, id, actor, now).await
    }

    async fn add_license(&self, new: NewLicense, actor: &str, now: Timestamp) -> Result<LicenseRecord> {
        licenses::add_license(self, new, actor, now).await
    }

    async fn licenses(&self, virtual_account_id: i64) -> Result<Vec<LicenseRecord>> {
        licenses::licenses(self, virtual_account_id).await
    }

    async fn transfer_licenses(
        &self,
        from: i64,
        transfers: Vec<Transfer>,
        check: TransferCheck,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        licenses::transfer_licenses(self, from, transfers, check, actor, now).await
    }

    async fn pool_counts(&self, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
        licenses::pool_counts(self, virtual_account_id, now).await
    }

    async fn drawn(&self, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>> {
        licenses::drawn(self, virtual_account_id).await
    }

    async fn check_counters(&self, now: Timestamp) -> Result<Vec<CounterDrift>> {
        licenses::check_counters(self, now).await
    }

    async fn repair_in_use_counters(&self, actor: &str, now: Timestamp) -> Result<Vec<CounterDrift>> {
        licenses::repair_in_use_counters(self, actor, now).await
    }

    async fn create_token(&self, new: NewToken, actor: &str, now: Timestamp) -> Result<RegistrationToken> {
        tokens::create_token(self, new, actor, now).await
    }

    async fn tokens(&self, virtual_account_id: i64) -> Result<Vec<RegistrationToken>> {
        tokens::tokens(self, virtual_account_id).await
    }

    async fn revoke_tokens(
        &self,
        virtual_account_id: i64,
        tokens: Vec<TokenRef>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<RegistrationToken>> {
        tokens::revoke_tokens(self, virtual_account_id, tokens, actor, now).await
    }

    async fn register_instance(
        &self,
        r: NewInstance,
        now: Timestamp,
    ) -> std::result::Result<Registered, RegisterRefusal> {
        instances::register_instance(self, r, now).await
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>> {
        instances::instance(self, id).await
    }

    async fn instances(&self, filter: InstanceFilter) -> Result<Vec<Instance>> {
        instances::instances(self, filter).await
    }

    async fn instances_usage(&self, ids: Vec<String>) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
        instances::instances_usage(self, ids).await
    }

    async fn instances_page(
        &self,
        virtual_account_ids: Vec<i64>,
        after: Option<InstanceKey>,
        limit: i64,
    ) -> Result<Vec<Instance>> {
        instances::instances_page(self, virtual_account_ids, after, limit).await
    }

    async fn instances_at(
        &self,
        virtual_account_ids: Vec<i64>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<Instance>)> {
        instances::instances_at(self, virtual_account_ids, offset, limit).await
    }

    async fn search_instances(
        &self,
        virtual_account_id: i64,
        text: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Instance>, i64)> {
        search::search_instances(self, virtual_account_id, text, offset, limit).await
    }

    async fn renew_certificate(&self, id: &str, cert: &CertificateFacts, now: Timestamp) -> Result<()> {
        instances::renew_certificate(self, id, cert, now).await
    }

    async fn forget_previous_key(&self, id: &str) -> Result<()> {
        instances::forget_previous_key(self, id).await
    }

    async fn report_usage(&self, report: UsageReport, now: Timestamp) -> Result<PoolCounts> {
        instances::report_usage(self, report, now).await
    }

    async fn move_instances(&self, moves: Vec<InstanceMove>, actor: &str, now: Timestamp) -> Result<Vec<Instance>> {
        instances::move_instances(self, moves, actor, now).await
    }

    async fn remove_instances(
        &self,
        removals: Vec<Removal>,
        kind: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<Removed>> {
        instances::remove_instances(self, removals, kind, actor, now).await
    }

    async fn release_silent_usage(&self, cutoff: Timestamp, now: Timestamp) -> Result<Vec<String>> {
        instances::release_silent_usage(self, cutoff, now).await
    }

    async fn expired_instances(&self, now: Timestamp) -> Result<Vec<String>> {
        instances::expired_instances(self, now).await
    }

    async fn consume_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool> {
        nonces::consume_nonce(self, scope, nonce, expires_at).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<()> {
        nonces::purge_expired(self, now).await
    }

    async fn record_event(&self, e: NewEvent) -> Result<()> {
        events::record_event(self, e).await
    }

    async fn start_portal_session(&self, session: PortalSession) -> Result<()> {
        sessions::start(self, session).await
    }

    async fn portal_session(&self, id_hash: &str, now: Timestamp) -> Result<Option<PortalSession>> {
        sessions::live(self, id_hash, now).await
    }

    async fn extend_portal_session(&self, id_hash: &str, expires_at: Timestamp) -> Result<()> {
        sessions::extend(self, id_hash, expires_at).await
    }

    async fn end_portal_session(&self, id_hash: &str) -> Result<()> {
        sessions::end(self, id_hash).await
    }

    async fn purge_portal_sessions(&self, now: Timestamp) -> Result<usize> {
        sessions::purge(self, now).await
    }

    async fn record_usage_days(&self, days: Vec<UsageDay>) -> Result<()> {
        sessions::record_usage_days(self, days).await
    }

    async fn usage_history(&self, virtual_account_id: i64, since: Timestamp) -> Result<Vec<UsageDay>> {
        sessions::usage_history(self, virtual_account_id, since).await
    }

    async fn prune_usage_history(&self, before: Timestamp) -> Result<usize> {
        sessions::prune_usage_history(self, before).await
    }

    async fn search_events(&self, query: EventQuery) -> Result<Vec<Event>> {
        search::search_events(self, query).await
    }

    async fn event_kinds(&self, account_id: i64) -> Result<Vec<String>> {
        search::event_kinds(self, account_id).await
    }

    async fn probe_writable(&self) -> Result<()> {
        self.db.write(|db| db.query_row("PRAGMA user_version", [], |_| Ok(())).map_err(StoreError::from)).await
    }

    async fn instance_count(&self) -> Result<i64> {
        instances::instance_count(self).await
    }

    fn write_busy(&self) -> std::time::Duration {
        self.db.busy()
    }

    async fn close(&self) -> Result<()> {
        self.db.close().await
    }

    async fn backup(&self) -> Result<std::fs::File> {
        backup::anonymous_copy(self).await
    }

    async fn events_before(&self, account_id: Option<i64>, before: Option<i64>, limit: i64) -> Result<Vec<Event>> {
        events::events(self, account_id, before, limit).await
    }

    async fn sync_alerts(&self, current: Vec<NewAlert>, now: Timestamp) -> Result<()> {
        events::sync_alerts(self, current, now).await
    }

    async fn alerts(&self, account_id: i64) -> Result<Vec<Alert>> {
        events::alerts(self, account_id).await
    }

    async fn store_ca(&self, candidate: StoredCa) -> Result<StoredCa> {
        shared::store_ca(self, candidate).await
    }

    async fn stored_ca(&self) -> Result<Option<StoredCa>> {
        shared::stored_ca(self).await
    }

    async fn clock_offset(&self) -> Result<Option<ClockOffset>> {
        shared::clock_offset(self).await
    }

    async fn set_clock_offset(&self, offset_ms: i64) -> Result<ClockOffset> {
        shared::set_clock_offset(self, offset_ms).await
    }

    async fn try_lease(&self, name: &str, holder: &str, now: Timestamp, ttl_ms: i64) -> Result<bool> {
        lease::try_lease(self, name, holder, now, ttl_ms).await
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        lease::lease(self, name).await
    }

    async fn try_run_lock(&self, name: &str) -> Result<Option<RunLock>> {
        lease::try_run_lock(self, name).await
    }
}

#[cfg(test)]
#[test]
fn migrations_are_the_files_in_order() {
    crate::assert_migrations_are_the_files("sqlite", MIGRATIONS);
}
