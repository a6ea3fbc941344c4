//! The satellite synchronisation's rules (S-1..S-3) that are not SQL: both backends read the
//! rows, these decide what is refused, how a request's instances are cut into parts, which
//! purchase records a response replaces, and how events word it.

use crate::satellite::*;
use crate::{NewLicense, Result, StoreError};
use std::collections::BTreeMap;

/// Refuses a synchronisation document (`what`: request or response) whose sequence is not newer
/// than the `last` one applied.
pub(crate) fn refuse_old(what: &str, sequence: i64, last: i64) -> Result<()> {
    if sequence == last {
        return Err(StoreError::Conflict(format!(
            "the synchronisation {what} {sequence} was applied already (replayed); nothing changed"
        )));
    }
    if sequence < last {
        return Err(StoreError::Conflict(format!(
            "the synchronisation {what} {sequence} is stale: {what} {last} was applied after it; nothing changed"
        )));
    }
    Ok(())
}

/// A pool's manager as messages name it: "satellite NAME", or "the cloud" for None.
pub(crate) fn manager_name(satellite: Option<&str>) -> String {
    satellite.map_or_else(|| "the cloud".to_string(), |name| format!("satellite {name}"))
}

/// Refuses a request of `sat` that is not approved.
pub(crate) fn refuse_unapproved(sat: &Satellite) -> Result<()> {
    match sat.approved_at {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(format!("satellite {} ({}) is not approved", sat.id, sat.name))),
    }
}

/// The pool (its id) a part of `sat`'s request reports on: one it serves; None for one taken from
/// it whose release it has not applied yet (it may still report it, and that is ignored);
/// refused for any other.
pub(crate) fn reported_pool(
    sat: &Satellite,
    served: &BTreeMap<String, i64>,
    released: &BTreeMap<String, i64>,
    pool: &str,
) -> Result<Option<i64>> {
    match served.get(pool) {
        Some(&va) => Ok(Some(va)),
        None if released.contains_key(pool) => Ok(None),
        None => Err(StoreError::Conflict(format!(
            "satellite {} ({}) does not serve virtual account '{pool}'; nothing changed",
            sat.id, sat.name
        ))),
    }
}

/// The event detail of an applied request.
pub(crate) fn request_detail(full: bool, sequence: i64, reported: usize) -> String {
    let kind = if full { "full" } else { "standard" };
    format!("{kind} synchronisation {sequence}: {reported} instance(s) reported")
}

/// The event detail of a pool released from a satellite with its request `sequence`.
pub(crate) fn release_detail(pool: &str, to: Option<&str>, sequence: i64) -> String {
    format!("'{pool}' served by {} from synchronisation {sequence} on", manager_name(to))
}

/// What a pool's reassignment finds before it decides (see
/// [`SatelliteStore::reassign_pool`]).
pub(crate) struct PoolManagers {
    pub pool: String,
    pub account_id: i64,
    /// The satellite whose next synchronisation a move of the pool waits for.
    pub waiting: Option<String>,
    /// The satellite the pool goes to, as asked (None: the cloud) and as found.
    pub to: Option<i64>,
    pub target: Option<Satellite>,
    /// The satellite serving the pool now (None: the cloud): its id and name.
    pub serving: Option<(i64, String)>,
    /// Instances registered in the pool with the cloud.
    pub cloud_instances: i64,
}

/// Decides a reassignment: pending when a satellite serves the pool now (it moves with that
/// satellite's next synchronisation), else at once; refused, changing nothing, as the trait says.
pub(crate) fn plan_reassignment(m: &PoolManagers) -> Result<Reassignment> {
    let pool = &m.pool;
    if let Some(from) = &m.waiting {
        return Err(StoreError::Conflict(format!(
            "the reassignment of '{pool}' away from satellite {from} waits for that satellite's next synchronisation; nothing changed"
        )));
    }
    let to_name = match (m.to, &m.target) {
        (None, _) => None,
        (Some(t), None) => return Err(StoreError::NotFound(format!("satellite {t} does not exist"))),
        (Some(t), Some(s)) if s.approved_at.is_none() || s.account_id != m.account_id => {
            return Err(StoreError::Conflict(format!(
                "satellite {t} ({}) is not an approved satellite of the smart account of '{pool}'; nothing changed",
                s.name
            )))
        }
        (Some(_), Some(s)) => Some(manager_name(Some(&s.name))),
    };
    if m.serving.as_ref().map(|(id, _)| *id) == m.to {
        let to = to_name.unwrap_or_else(|| manager_name(None));
        return Err(StoreError::Conflict(format!("'{pool}' is served by {to} already; nothing changed")));
    }
    if m.serving.is_none() && m.cloud_instances > 0 {
        return Err(StoreError::Conflict(format!(
            "'{pool}' has {} product instance(s) registered with the cloud: remove them or move them to another virtual account first (a pool has one manager); nothing changed",
            m.cloud_instances
        )));
    }
    Ok(Reassignment {
        pool: pool.clone(),
        from: m.serving.as_ref().map(|(_, name)| manager_name(Some(name))),
        to: to_name,
        pending: m.serving.is_some(),
    })
}

/// The event kind and detail of a decided reassignment.
pub(crate) fn reassignment_event(r: &Reassignment) -> (&'static str, String) {
    let to = r.to.clone().unwrap_or_else(|| manager_name(None));
    match &r.from {
        Some(from) if r.pending => {
            ("satellite.pool-reassigned", format!("moves from {from} to {to} with {from}'s next synchronisation"))
        }
        _ => ("satellite.pool-assigned", format!("served by {to} from now on")),
    }
}

/// Why the cloud cannot remove `udi` from satellite `satellite_id`: it never reported it.
pub(crate) fn unreported_instance(satellite_id: i64, udi: &RemovedUdi) -> StoreError {
    StoreError::NotFound(format!(
        "satellite {satellite_id} reported no instance PID:{},SN:{} in virtual account '{}'",
        udi.pid, udi.sn, udi.pool
    ))
}

/// The event (object, detail) of an instance the cloud's operator removed from a satellite.
pub(crate) fn removal_event(satellite_id: i64, udi: &RemovedUdi) -> (String, String) {
    let object = format!("PID:{},SN:{}", udi.pid, udi.sn);
    (object, format!("removed at satellite {satellite_id} with its next synchronisation"))
}

/// On a satellite: refuses a request of a local account the cloud has not approved.
pub(crate) fn refuse_unapproved_local(local: &LocalAccount) -> Result<()> {
    match local.approved_at {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(format!(
            "local account '{}' is not approved by the cloud yet: register it first",
            local.name
        ))),
    }
}

/// On a satellite: refuses to import the cloud's approval twice.
pub(crate) fn refuse_approved_local(local: &LocalAccount) -> Result<()> {
    match local.approved_at {
        Some(_) => Err(StoreError::Conflict(format!("local account '{}' is approved already", local.name))),
        None => Ok(()),
    }
}

/// The event detail of an imported approval.
pub(crate) fn approval_detail(approval: &LocalApproval) -> String {
    let pools: Vec<&str> = approval.pools.iter().map(|p| p.name.as_str()).collect();
    format!("approved by the cloud: serves {}", pools.join(", "))
}

/// On a satellite: why a response answering `sequence` is refused when no request made it.
pub(crate) fn unknown_request(sequence: i64, local: &LocalAccount) -> StoreError {
    StoreError::Conflict(format!(
        "the synchronisation response answers request {sequence}, which local account '{}' never made; nothing changed",
        local.name
    ))
}

/// The event detail of an applied response.
pub(crate) fn response_detail(applied: &AppliedSync) -> String {
    let mut detail = format!(
        "synchronisation response {} applied; {} instance(s) removed by the cloud",
        applied.sequence,
        applied.removed.len()
    );
    if !applied.released.is_empty() {
        detail.push_str(&format!("; no longer serves {}", applied.released.join(", ")));
    }
    detail
}

/// A purchase record as a response compares it: tag, SKU, quantity, kind, start, end,
/// subscription.
pub(crate) type LicenseKey = (String, String, i64, String, Option<i64>, Option<i64>, Option<String>);

pub(crate) fn license_key(l: &NewLicense) -> LicenseKey {
    (
        l.tag.clone(),
        l.sku.clone(),
        l.quantity,
        l.term.kind.as_str().to_string(),
        l.term.start.map(|t| t.0),
        l.term.end.map(|t| t.0),
        l.subscription_id.clone(),
    )
}

/// What makes a pool's purchase records (`existing`, by id) those of `wanted`: records that
/// match stay, the others go (their ids), the missing ones are added.
pub(crate) fn replaced_licenses(
    existing: Vec<(i64, LicenseKey)>,
    wanted: &[NewLicense],
) -> (Vec<&NewLicense>, Vec<i64>) {
    let mut unmatched = existing;
    let mut added = Vec::new();
    for l in wanted {
        let key = license_key(l);
        match unmatched.iter().position(|(_, k)| *k == key) {
            Some(at) => drop(unmatched.swap_remove(at)),
            None => added.push(l),
        }
    }
    (added, unmatched.into_iter().map(|(id, _)| id).collect())
}

/// Groups instances by pool, in the order the pools come.
pub(crate) fn by_pool(rows: Vec<(String, MirroredInstance)>) -> Vec<PoolInstances> {
    let mut pools: Vec<PoolInstances> = Vec::new();
    for (pool, instance) in rows {
        match pools.last_mut() {
            Some(last) if last.pool == pool => last.instances.push(instance),
            _ => pools.push(PoolInstances { pool, instances: vec![instance], removed: Vec::new() }),
        }
    }
    pools
}

/// One line of a request as the satellite reads it: an instance of a pool, or one gone from it.
pub(crate) enum Reported {
    Instance(MirroredInstance),
    Removed(String, String),
}

/// Cuts a request's lines into parts of at most [`SYNC_PART`], one pool each; the backend sends
/// each part it hands back (see [`SatelliteStore::sync_instances`]).
#[derive(Default)]
pub(crate) struct PartCutter {
    current: PoolInstances,
}

impl PartCutter {
    /// Adds a line of `pool`; answers the part it completed, if it did.
    pub fn add(&mut self, pool: &str, line: Reported) -> Option<PoolInstances> {
        let held = self.current.instances.len() + self.current.removed.len();
        let mut done = None;
        if self.current.pool != pool || held >= SYNC_PART {
            done = self.finish();
            self.current.pool = pool.to_string();
        }
        match line {
            Reported::Instance(i) => self.current.instances.push(i),
            Reported::Removed(pid, sn) => self.current.removed.push((pid, sn)),
        }
        done
    }

    /// The last part, if it holds anything.
    pub fn finish(&mut self) -> Option<PoolInstances> {
        let part = std::mem::take(&mut self.current);
        (!part.instances.is_empty() || !part.removed.is_empty()).then_some(part)
    }
}

/// Why a request's parts stop: the writer that took them is gone.
pub(crate) fn writer_stopped() -> StoreError {
    StoreError::Database("the synchronisation request's writer stopped".into())
}
