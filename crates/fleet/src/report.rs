//! The orchestrator's reports (seed 002, "Smart Licensing Reports"; SPEC F-5), pure functions of
//! plain rows the orchestrator reads from its database: the Service Inventory summary in the
//! seed's pipe format, license usage per customer and per virtual account as CSV, the license
//! dashboard figures, and the subscription mapper.

pub mod dashboard;
pub mod inventory;
pub mod mapper;
pub mod source;
pub mod usage;

use serde::Serialize;
use smartlic_core::{LicenseKind, Timestamp};
use std::collections::BTreeMap;
use std::fmt;

/// The manager a virtual account lives on: the seed's reports write `CSSM` or `Satellite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Manager {
    /// The cloud manager (`smartlic server --mode cloud`).
    Cssm,
    /// An on-prem satellite.
    Satellite,
}

impl Manager {
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Cssm => "CSSM",
            Manager::Satellite => "Satellite",
        }
    }
}

/// A virtual account as the reports name it: `virtual-account1@smart-account.example.com`, the
/// account being the smart account's domain (cloud) or the local account's name (satellite).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pool {
    pub virtual_account: String,
    pub account: String,
    pub manager: Manager,
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.virtual_account, self.account)
    }
}

/// One license of a virtual account, as the last sync found it (one line per subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolLicense {
    pub pool: Pool,
    /// Perpetual licenses may have none (seed: "Perpetual licenses might not have Subscription ID").
    pub subscription_id: Option<String>,
    pub expires: Option<Timestamp>,
    pub kind: LicenseKind,
    /// The application the license is for (the seed's `HUCM`, `HCUC`, `HCER`).
    pub application: String,
    /// The application's major version the license covers (the seed's `10`).
    pub version: String,
    /// The license's name (the seed's `HUCM_Foundation`).
    pub license: String,
    pub installed: i64,
    pub in_use: i64,
}

impl PoolLicense {
    /// What is left: negative when more is used than installed.
    pub fn available(&self) -> i64 {
        self.installed - self.in_use
    }
}

/// One cluster's use of one license, reported by its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUsage {
    pub customer: String,
    /// The virtual account the cluster is registered to.
    pub pool: Pool,
    pub application: String,
    /// The cluster's first node's address (the seed's `200.2.1.11`).
    pub cluster_address: String,
    pub license: String,
    pub count: i64,
}

/// The seed's compliance words: `ok` when nothing is used beyond what is installed.
pub fn compliance(ok: bool) -> &'static str {
    if ok {
        "In Compliance"
    } else {
        "Out Of Compliance"
    }
}

/// A day as the seed's reports write it (`2021-11-26`, UTC).
pub fn date(at: Timestamp) -> String {
    at.to_rfc3339().chars().take(10).collect()
}

/// Installed and in use for one license of one virtual account, over its subscriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub installed: i64,
    pub in_use: i64,
}

impl Totals {
    pub fn available(self) -> i64 {
        self.installed - self.in_use
    }
}

/// Per virtual account and license, sorted, the sums of the pools' lines.
pub fn license_totals(pools: &[PoolLicense]) -> BTreeMap<(&Pool, &str), Totals> {
    let mut totals: BTreeMap<(&Pool, &str), Totals> = BTreeMap::new();
    for p in pools {
        let total = totals.entry((&p.pool, &p.license)).or_default();
        total.installed += p.installed;
        total.in_use += p.in_use;
    }
    totals
}
