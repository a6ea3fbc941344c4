//! The PostgreSQL backend, for several managers (replicas) over one database. It mirrors the
//! SQLite backend file by file: one file per aggregate (accounts, principals, pools and
//! licenses, reservations, registration tokens, instances and usage, nonces, events and
//! alerts), each a set of functions over the store, and the [`Store`] implementation here only
//! routes each method to its aggregate. `engine` runs each method in one transaction,
//! serializable but for registrations and usage reports, run again when it conflicts with a
//! concurrent one (see there).

#[macro_use]
mod engine;
mod accounts;
mod cluster;
mod conversion;
mod events;
mod instances;
mod licenses;
mod nonces;
mod pak;
mod principals;
mod reservations;
mod satellite;
mod satellite_cloud;
mod satellite_local;
mod search;
mod sessions;
mod shared;
mod sql;
mod tokens;

use crate::satellite::*;
use crate::*;
pub use cluster::PrivateCluster;
use engine::Engine;

/// Applied in order, each once per database (tracked in `schema_migrations`).
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_shared_state.sql"),
    include_str!("../../migrations/postgres/0003_device_conversion.sql"),
    include_str!("../../migrations/postgres/0004_pak.sql"),
    include_str!("../../migrations/postgres/0005_pool_usage_gate.sql"),
];

/// Why `admin backup` is refused on PostgreSQL: its own tools copy it consistently.
const NO_BACKUP: &str = "the database is PostgreSQL: back it up with pg_dump (or pg_basebackup), not admin backup";

pub struct PostgresStore {
    db: Engine,
}

impl PostgresStore {
    /// Connects to the database and applies pending migrations; refused, naming the database,
    /// when it cannot be reached.
    pub async fn open(url: &PostgresUrl) -> Result<Self> {
        Ok(PostgresStore { db: Engine::open(url, MIGRATIONS).await? })
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
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
        write!(self, |tx| tx.value::<i64>("SELECT txid_current()", &[]).await.map(drop))
    }

    async fn instance_count(&self) -> Result<i64> {
        instances::instance_count(self).await
    }

    fn write_busy(&self) -> std::time::Duration {
        self.db.busy()
    }

    async fn close(&self) -> Result<()> {
        self.db.close();
        Ok(())
    }

    async fn backup(&self) -> Result<std::fs::File> {
        Err(StoreError::Conflict(NO_BACKUP.into()))
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
        shared::try_lease(self, name, holder, now, ttl_ms).await
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        shared::lease(self, name).await
    }

    async fn try_run_lock(&self, name: &str) -> Result<Option<RunLock>> {
        shared::try_run_lock(self, name).await
    }
}

#[async_trait::async_trait]
impl SatelliteStore for PostgresStore {
    async fn create_satellite(&self, new: NewSatellite, actor: &str, now: Timestamp) -> Result<Satellite> {
        satellite::create_satellite(self, new, actor, now).await
    }

    async fn satellites(&self) -> Result<Vec<Satellite>> {
        satellite::satellites(self).await
    }

    async fn satellite(&self, id: i64) -> Result<Option<Satellite>> {
        satellite::satellite(self, id).await
    }

    async fn approve_satellite(&self, approval: SatelliteApproval, actor: &str, now: Timestamp) -> Result<Satellite> {
        satellite::approve_satellite(self, approval, actor, now).await
    }

    async fn satellite_serving_pool(&self, virtual_account_id: i64) -> Result<Option<Satellite>> {
        satellite::satellite_serving_pool(self, virtual_account_id).await
    }

    async fn satellite_serving_token(&self, token_hash: &str) -> Result<Option<Satellite>> {
        satellite::satellite_serving_token(self, token_hash).await
    }

    async fn create_local_account(
        &self,
        name: &str,
        domain: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        satellite::create_local_account(self, name, domain, actor, now).await
    }

    async fn local_accounts(&self) -> Result<Vec<LocalAccount>> {
        satellite::local_accounts(self).await
    }

    async fn local_account(&self, name: &str) -> Result<Option<LocalAccount>> {
        satellite::local_account(self, name).await
    }

    async fn local_account_sent(
        &self,
        name: &str,
        cloud_satellite_id: i64,
        cloud_url: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        satellite::local_account_sent(self, name, cloud_satellite_id, cloud_url, actor, now).await
    }

    async fn approve_local_account(
        &self,
        approval: LocalApproval,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        satellite_local::approve_local_account(self, approval, actor, now).await
    }

    async fn apply_satellite_sync(&self, sync: SatelliteSync, now: Timestamp) -> Result<SyncOutcome> {
        satellite_cloud::apply_satellite_sync(self, sync, now).await
    }

    async fn reassign_pool(
        &self,
        virtual_account_id: i64,
        to: Option<i64>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Reassignment> {
        satellite_cloud::reassign_pool(self, virtual_account_id, to, actor, now).await
    }

    async fn remove_satellite_instance(
        &self,
        satellite_id: i64,
        udi: RemovedUdi,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        satellite_cloud::remove_satellite_instance(self, satellite_id, udi, actor, now).await
    }

    async fn satellite_instances(&self, satellite_id: i64) -> Result<Vec<PoolInstances>> {
        satellite_cloud::satellite_instances(self, satellite_id).await
    }

    async fn begin_sync(&self, name: &str, full: bool, now: Timestamp) -> Result<SyncDraft> {
        satellite_local::begin_sync(self, name, full, now).await
    }

    async fn sync_instances(
        &self,
        name: &str,
        full: bool,
        parts: std::sync::mpsc::SyncSender<PoolInstances>,
    ) -> Result<()> {
        satellite_local::sync_instances(self, name, full, parts).await
    }

    async fn apply_sync_response(&self, applied: AppliedSync, actor: &str, now: Timestamp) -> Result<LocalAccount> {
        satellite_local::apply_sync_response(self, applied, actor, now).await
    }

    async fn set_sync_settings(
        &self,
        name: &str,
        settings: SyncSettings,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        satellite::set_sync_settings(self, name, settings, actor, now).await
    }

    async fn record_sync_failure(&self, name: &str, error: &str, actor: &str, now: Timestamp) -> Result<LocalAccount> {
        satellite::record_sync_failure(self, name, error, actor, now).await
    }

    async fn released_pool(&self, virtual_account_id: i64) -> Result<Option<String>> {
        satellite::released_pool(self, virtual_account_id).await
    }

    async fn released_pool_of_token(&self, token_hash: &str) -> Result<Option<String>> {
        satellite::released_pool_of_token(self, token_hash).await
    }
}

#[cfg(test)]
#[test]
fn migrations_are_the_files_in_order() {
    crate::assert_migrations_are_the_files("postgres", MIGRATIONS);
}
