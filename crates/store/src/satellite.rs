//! What the cloud keeps about its satellites, and what a satellite keeps about its local
//! accounts (S-1, S-2): one trait, [`SatelliteStore`], every [`Store`](crate::Store) has.

use crate::{NewLicense, Result};
use smartlic_core::Timestamp;
use std::collections::BTreeMap;

/// A satellite's registration as the cloud holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Satellite {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub local_account: String,
    /// The satellite's manager identifier (the prefix of its tokens).
    pub manager_id: String,
    pub key_algorithm: String,
    /// Raw public key, base64.
    pub public_key: String,
    pub csr: String,
    pub requested_at: Timestamp,
    pub requested_by: String,
    pub approved_at: Option<Timestamp>,
    pub certificate_expires_at: Option<Timestamp>,
    /// The sealed approval (JSON) the satellite fetches or is handed.
    pub answer: Option<String>,
    /// The virtual accounts it serves (names), once approved.
    pub pools: Vec<String>,
    /// Pools the operator reassigned away from it that move with its next synchronisation.
    pub pending_moves: Vec<PendingMove>,
    /// The sequence of the last synchronisation request applied (0: none) and when (S-3).
    pub sync_sequence: i64,
    pub last_sync_at: Option<Timestamp>,
    /// Days between its scheduled synchronisations, as its last request said (30 by default).
    pub sync_interval_days: i64,
}

impl Satellite {
    pub fn status(&self) -> &'static str {
        if self.approved_at.is_some() {
            "approved"
        } else {
            "pending"
        }
    }
}

/// A reassignment waiting for the serving satellite's next synchronisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMove {
    pub pool: String,
    /// The satellite it goes to (its name), or None for the cloud.
    pub to: Option<String>,
    pub requested_at: Timestamp,
    pub requested_by: String,
}

#[derive(Debug, Clone)]
pub struct NewSatellite {
    pub account_id: i64,
    pub name: String,
    pub local_account: String,
    pub manager_id: String,
    pub key_algorithm: String,
    pub public_key: String,
    /// The satellite's certificate request (PEM), certified at approval.
    pub csr: String,
}

/// An approval as the cloud records it, in one transaction with its pools.
#[derive(Debug, Clone)]
pub struct SatelliteApproval {
    pub satellite_id: i64,
    pub virtual_account_ids: Vec<i64>,
    pub certificate_expires_at: Timestamp,
    pub answer: String,
}

/// A local account on a satellite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAccount {
    pub id: i64,
    pub name: String,
    /// The domain of the smart account it mirrors.
    pub domain: String,
    pub created_at: Timestamp,
    /// Set when the registration was sent online: the cloud's identifier, to fetch the answer.
    pub cloud_satellite_id: Option<i64>,
    pub cloud_url: Option<String>,
    pub approved_at: Option<Timestamp>,
    /// The satellite certificate (PEM) issued by the cloud CA; devices' answers carry it.
    pub certificate: Option<String>,
    pub certificate_expires_at: Option<Timestamp>,
    pub cloud_ca: Option<String>,
    /// The sequence of the last synchronisation request made, of the last response applied,
    /// and when that was (S-3).
    pub sync_sequence: i64,
    pub acknowledged_sequence: i64,
    pub last_sync_at: Option<Timestamp>,
    /// The scheduled synchronisation runs this many days after the last (30 by default).
    pub sync_interval_days: i64,
    /// The last synchronisation attempt that failed, and why (cleared by the next success).
    pub last_attempt_at: Option<Timestamp>,
    pub last_sync_error: Option<String>,
}

impl LocalAccount {
    pub fn status(&self) -> &'static str {
        match (self.approved_at, self.cloud_satellite_id) {
            (Some(_), _) => "approved",
            (None, Some(_)) => "registration sent",
            (None, None) => "not registered",
        }
    }
}

/// A pool granted at approval, created on the satellite with its licenses.
#[derive(Debug, Clone)]
pub struct MirroredPool {
    pub name: String,
    pub description: String,
    /// `virtual_account_id` is filled in by the store.
    pub licenses: Vec<NewLicense>,
}

/// The cloud's approval as a satellite imports it.
#[derive(Debug, Clone)]
pub struct LocalApproval {
    pub local_account: String,
    pub cloud_satellite_id: i64,
    pub smart_account_name: String,
    pub certificate: String,
    pub certificate_expires_at: Timestamp,
    pub cloud_ca: String,
    pub pools: Vec<MirroredPool>,
}

/// A product instance of a satellite pool as synchronised: read from the satellite's
/// instances, mirrored in the cloud apart from its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredInstance {
    pub pid: String,
    pub sn: String,
    pub hostname: String,
    pub last_contact_at: Timestamp,
    /// In use per tag; empty when the satellite released its usage.
    pub usage: BTreeMap<String, i64>,
}

/// The instances of one pool a synchronisation carries up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolInstances {
    pub pool: String,
    pub instances: Vec<MirroredInstance>,
    /// (PID, SN) of instances no longer in the pool (a standard synchronisation's).
    pub removed: Vec<(String, String)>,
}

/// A request the satellite made: its sequence and the response it acknowledges (what changed
/// comes apart, [`SatelliteStore::sync_instances`]).
#[derive(Debug, Clone)]
pub struct SyncDraft {
    pub local: LocalAccount,
    pub sequence: i64,
    pub acknowledges: i64,
}

/// Most instances (and removed ones) in one [`PoolInstances`] of a synchronisation read or
/// applied a part at a time: a million instances are never in memory at once.
pub const SYNC_PART: usize = 1000;

/// The parts of a satellite's request, as the cloud reads them from its file: each at most
/// [`SYNC_PART`] instances of one pool. An error ends the import, which then changes nothing.
pub type SyncParts = Box<dyn Iterator<Item = Result<PoolInstances>> + Send>;

/// A satellite's request as the cloud applies it.
pub struct SatelliteSync {
    pub satellite_id: i64,
    pub sequence: i64,
    /// The last response the satellite applied: releases it carried are done with.
    pub acknowledges: i64,
    /// A full request replaces the cloud's copy of the satellite's instances.
    pub full: bool,
    /// Days until the satellite's next scheduled synchronisation.
    pub interval_days: i64,
    /// Read as they are applied, within the same transaction.
    pub parts: SyncParts,
}

/// The cloud's response as a satellite applies it: the pools' licenses replace its copy, and
/// the instances the cloud removed go.
#[derive(Debug, Clone)]
pub struct AppliedSync {
    pub local_account: String,
    pub sequence: i64,
    pub pools: Vec<MirroredPool>,
    pub removed: Vec<RemovedUdi>,
    /// Pools the cloud reassigned away: their instances go and the satellite serves them no more.
    pub released: Vec<String>,
}

/// What the cloud answers a satellite's applied request with, besides the pools' licenses.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub satellite: Satellite,
    /// Instances the cloud's operator removed, until a request reports them gone.
    pub removed: Vec<RemovedUdi>,
    /// Pools taken from the satellite, until a request acknowledges a response that carried them.
    pub released: Vec<String>,
}

/// A pool's manager after a reassignment: `to` serves it (None: the cloud) now, or, when
/// `pending`, from the next synchronisation of `from`, the satellite serving it until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub pool: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub pending: bool,
}

/// A local account's synchronisation settings; None leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct SyncSettings {
    pub interval_days: Option<i64>,
    /// The cloud's base URL for network synchronisation (a local account registered by files
    /// has none until one is set).
    pub cloud_url: Option<String>,
}

/// An instance of a satellite pool the cloud's operator removed: (pool, PID, SN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedUdi {
    pub pool: String,
    pub pid: String,
    pub sn: String,
}

#[async_trait::async_trait]
pub trait SatelliteStore: Send + Sync {
    // In the cloud.
    /// Records a registration; the same satellite and local account registering again with the
    /// same key gets its existing record back (an online registration is sent again to fetch
    /// the answer), with another key it is a conflict.
    async fn create_satellite(&self, new: NewSatellite, actor: &str, now: Timestamp) -> Result<Satellite>;
    async fn satellites(&self) -> Result<Vec<Satellite>>;
    async fn satellite(&self, id: i64) -> Result<Option<Satellite>>;
    /// Approves a pending satellite and makes it the only manager of the pools, or changes
    /// nothing: a pool served by another satellite, or an approved satellite, is a conflict.
    async fn approve_satellite(&self, approval: SatelliteApproval, actor: &str, now: Timestamp) -> Result<Satellite>;
    /// The satellite serving the pool, if one does.
    async fn satellite_serving_pool(&self, virtual_account_id: i64) -> Result<Option<Satellite>>;
    /// The satellite serving the pool of the registration token with this hash, if one does.
    async fn satellite_serving_token(&self, token_hash: &str) -> Result<Option<Satellite>>;

    // On a satellite.
    async fn create_local_account(&self, name: &str, domain: &str, actor: &str, now: Timestamp)
        -> Result<LocalAccount>;
    async fn local_accounts(&self) -> Result<Vec<LocalAccount>>;
    async fn local_account(&self, name: &str) -> Result<Option<LocalAccount>>;
    /// Remembers where the registration was sent online and under which identifier.
    async fn local_account_sent(
        &self,
        name: &str,
        cloud_satellite_id: i64,
        cloud_url: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount>;
    /// Imports the cloud's approval in one transaction: the smart account, its pools and
    /// their licenses are created and the local account is marked approved.
    async fn approve_local_account(&self, approval: LocalApproval, actor: &str, now: Timestamp)
        -> Result<LocalAccount>;

    // Synchronisation (S-3).
    /// In the cloud: applies a satellite's request in one transaction, or changes nothing: a
    /// sequence applied already (replayed) or older (stale), or a pool the satellite does not
    /// serve, is refused. Usage moves between the pools' counters so none is lost or counted twice.
    /// Answers the satellite and the removals to carry down to it.
    /// A pool reassigned away from this satellite moves here, after the request's usage: its
    /// mirrored instances leave the pool and it is released to the satellite.
    async fn apply_satellite_sync(&self, sync: SatelliteSync, now: Timestamp) -> Result<SyncOutcome>;
    /// In the cloud: the operator gives a pool to satellite `to` or, with None, to the cloud.
    /// A pool the cloud serves moves at once if no instance is registered in it with the cloud;
    /// one a satellite serves moves with that satellite's next request (see above). Refused,
    /// changing nothing: a move already pending, the manager it has, a satellite not approved or
    /// of another smart account.
    async fn reassign_pool(
        &self,
        virtual_account_id: i64,
        to: Option<i64>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Reassignment>;
    /// In the cloud: the operator removes a satellite's instance; its usage leaves the pool now
    /// and the removal goes down with every response until the satellite reports it done.
    async fn remove_satellite_instance(
        &self,
        satellite_id: i64,
        udi: RemovedUdi,
        actor: &str,
        now: Timestamp,
    ) -> Result<()>;
    /// In the cloud: the instances a satellite reported, per pool, as of its last sync.
    async fn satellite_instances(&self, satellite_id: i64) -> Result<Vec<PoolInstances>>;
    /// On a satellite: records a new request of an approved local account.
    async fn begin_sync(&self, name: &str, full: bool, now: Timestamp) -> Result<SyncDraft>;
    /// On a satellite: sends to `parts` what the request [`begin_sync`](Self::begin_sync) made
    /// carries, in parts of at most [`SYNC_PART`] instances in the order of pool, PID and SN:
    /// every instance of its pools when `full`, else those the change log names since the
    /// request the last applied response answered (changed ones, and removed ones). Read from
    /// one snapshot, not on the writer, so that devices keep registering meanwhile; what changes
    /// after `begin_sync` may come too, and comes again in the next request. Stops with an error
    /// when the receiver is gone.
    async fn sync_instances(
        &self,
        name: &str,
        full: bool,
        parts: std::sync::mpsc::SyncSender<PoolInstances>,
    ) -> Result<()>;
    /// On a satellite: applies the cloud's response in one transaction, or changes nothing: a
    /// response applied already (replayed), older than the last applied (stale), or answering
    /// no request this satellite made, is refused.
    async fn apply_sync_response(&self, applied: AppliedSync, actor: &str, now: Timestamp) -> Result<LocalAccount>;
    /// On a satellite: changes a local account's synchronisation settings.
    async fn set_sync_settings(
        &self,
        name: &str,
        settings: SyncSettings,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount>;
    /// On a satellite: records a synchronisation that failed (the cloud unreachable or
    /// refusing), as an event and on the local account, to be retried.
    async fn record_sync_failure(&self, name: &str, error: &str, actor: &str, now: Timestamp) -> Result<LocalAccount>;
    /// On a satellite: the name of the pool if the cloud reassigned it away (it serves no device).
    async fn released_pool(&self, virtual_account_id: i64) -> Result<Option<String>>;
    /// On a satellite: the name of the released pool the registration token with this hash is of.
    async fn released_pool_of_token(&self, token_hash: &str) -> Result<Option<String>>;
}
