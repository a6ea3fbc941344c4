//! [`SatelliteStore`] on PostgreSQL, the cloud's side of the synchronisation (S-3): a
//! satellite's request applied, pools reassigned, instances the operator removes. The rules
//! are shared with SQLite (`rules::sync`); only the SQL is here.
//!
//! A request's parts come from an iterator that reads them once, while a serializable
//! transaction may have to run again: they are first copied into temporary tables of the
//! connection (its own, invisible to others), and the transaction applies them from there, a
//! part at a time, as often as it runs. What a request changes is still one transaction.

use super::engine::{Finished, Mode};
use super::events::log;
use super::licenses::shift_pool_usage;
use super::satellite::satellite_by_id;
use super::sql::{describe, get, ts, Tx};
use super::PostgresStore;
use crate::rules::sync::*;
use crate::satellite::*;
use crate::{Result, StoreError};
use smartlic_core::Timestamp;
use std::collections::BTreeMap;
use tokio_postgres::Row;

/// The connection's staging tables: a request's lines in order (`hostname` NULL for an
/// instance it reports gone), and their usage.
const STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS sync_staged (n BIGINT PRIMARY KEY, pool TEXT NOT NULL,
        pid TEXT NOT NULL, sn TEXT NOT NULL, hostname TEXT, last_contact_at BIGINT);
    CREATE TEMP TABLE IF NOT EXISTS sync_staged_usage (n BIGINT NOT NULL, tag TEXT NOT NULL, count BIGINT NOT NULL);
    TRUNCATE sync_staged, sync_staged_usage";

/// A satellite's request without its parts, which are staged.
struct Request {
    satellite_id: i64,
    sequence: i64,
    acknowledges: i64,
    full: bool,
    interval_days: i64,
    /// The pools its parts report on, in order.
    pools: Vec<String>,
}

/// A mirrored instance's usage per tag.
async fn mirrored_usage(tx: &Tx<'_>, va: i64, pid: &str, sn: &str) -> Result<BTreeMap<String, i64>> {
    let sql = "SELECT tag, count FROM satellite_usage WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3";
    Ok(tx.all(sql, &[&va, &pid, &sn], |r| Ok((get(r, 0)?, get(r, 1)?))).await?.into_iter().collect())
}

/// Takes a mirrored instance out of the cloud's copy, its usage out of the pool's counters.
async fn forget_mirrored(tx: &Tx<'_>, va: i64, pid: &str, sn: &str) -> Result<()> {
    let usage = mirrored_usage(tx, va, pid, sn).await?;
    shift_pool_usage(tx, va, &usage, -1).await?;
    tx.exec(
        "DELETE FROM satellite_instances WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3",
        &[&va, &pid, &sn],
    )
    .await?;
    Ok(())
}

/// Takes every instance `satellite_id` reported in the pool out of the cloud's copy.
async fn forget_pool(tx: &Tx<'_>, satellite_id: i64, va: i64) -> Result<()> {
    let sql = "SELECT udi_pid, udi_sn FROM satellite_instances WHERE satellite_id = $1 AND virtual_account_id = $2";
    let udis: Vec<(String, String)> = tx.all(sql, &[&satellite_id, &va], |r| Ok((get(r, 0)?, get(r, 1)?))).await?;
    for (pid, sn) in udis {
        forget_mirrored(tx, va, &pid, &sn).await?;
    }
    Ok(())
}

/// Puts an instance the satellite reported in the cloud's copy, its usage in the pool's counters.
async fn mirror(tx: &Tx<'_>, satellite_id: i64, va: i64, i: &MirroredInstance) -> Result<()> {
    forget_mirrored(tx, va, &i.pid, &i.sn).await?;
    tx.exec(
        "INSERT INTO satellite_instances (satellite_id, virtual_account_id, udi_pid, udi_sn, hostname, last_contact_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&satellite_id, &va, &i.pid, &i.sn, &i.hostname, &i.last_contact_at.0],
    )
    .await?;
    for (tag, count) in &i.usage {
        tx.exec(
            "INSERT INTO satellite_usage (virtual_account_id, udi_pid, udi_sn, tag, count) VALUES ($1, $2, $3, $4, $5)",
            &[&va, &i.pid, &i.sn, tag, count],
        )
        .await?;
    }
    shift_pool_usage(tx, va, &i.usage, 1).await
}

async fn satellite_name(tx: &Tx<'_>, id: Option<i64>) -> Result<Option<String>> {
    let Some(id) = id else { return Ok(None) };
    tx.value("SELECT name FROM satellites WHERE id = $1", &[&id]).await
}

/// Moves the pools reassigned away from `sat`, now that the usage of its request `sequence`
/// is in: its mirrored instances leave them (their devices register again with the new
/// manager, so nothing is counted twice), the new manager serves them, and the responses carry
/// the release down until the satellite acknowledges one.
async fn complete_moves(tx: &Tx<'_>, sat: &Satellite, sequence: i64, now: Timestamp) -> Result<()> {
    let moves: Vec<(i64, Option<i64>, String)> = tx
        .all(
            "SELECT m.virtual_account_id, m.to_satellite_id, v.name FROM pool_moves m
             JOIN virtual_accounts v ON v.id = m.virtual_account_id WHERE m.from_satellite_id = $1",
            &[&sat.id],
            |r| Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?)),
        )
        .await?;
    for (va, to, pool) in moves {
        forget_pool(tx, sat.id, va).await?;
        tx.exec("DELETE FROM satellite_removals WHERE satellite_id = $1 AND virtual_account_id = $2", &[&sat.id, &va])
            .await?;
        tx.exec("DELETE FROM satellite_pools WHERE virtual_account_id = $1", &[&va]).await?;
        if let Some(to) = to {
            tx.exec("INSERT INTO satellite_pools (virtual_account_id, satellite_id) VALUES ($1, $2)", &[&va, &to])
                .await?;
            tx.exec("DELETE FROM satellite_releases WHERE satellite_id = $1 AND virtual_account_id = $2", &[&to, &va])
                .await?;
        }
        tx.exec("DELETE FROM pool_moves WHERE virtual_account_id = $1", &[&va]).await?;
        tx.exec(
            "INSERT INTO satellite_releases (satellite_id, virtual_account_id, pool, sequence) VALUES ($1, $2, $3, $4)
             ON CONFLICT (satellite_id, virtual_account_id) DO UPDATE SET pool = excluded.pool, sequence = excluded.sequence",
            &[&sat.id, &va, &pool, &sequence],
        )
        .await?;
        let detail = release_detail(&pool, satellite_name(tx, to).await?.as_deref(), sequence);
        log(tx, now, "satellite", "satellite.pool-released", Some(sat.account_id), Some(va), &sat.name, detail).await?;
    }
    Ok(())
}

/// Copies a request's parts into the connection's staging tables, a part at a time (two
/// statements each); answers the pools they report on. An error of the parts ends it.
async fn stage(client: &mut deadpool_postgres::Object, parts: SyncParts) -> Result<Vec<String>> {
    let failed = |e: tokio_postgres::Error| StoreError::Database(format!("staging the request: {}", describe(&e)));
    client.batch_execute(STAGING).await.map_err(failed)?;
    let tx = client.transaction().await.map_err(failed)?;
    let lines = tx
        .prepare(
            "INSERT INTO sync_staged (n, pool, pid, sn, hostname, last_contact_at)
             SELECT n, $2, pid, sn, hostname, at FROM UNNEST($1::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])
             AS u (n, pid, sn, hostname, at)",
        )
        .await
        .map_err(failed)?;
    let usage = tx
        .prepare("INSERT INTO sync_staged_usage (n, tag, count) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[])")
        .await
        .map_err(failed)?;
    let (mut n, mut pools, mut parts) = (0i64, Vec::new(), parts);
    // Each part is read (from the request's file) as it is staged: one part in memory at a time.
    loop {
        let (part, rest) = next_part(parts).await?;
        parts = rest;
        let Some(part) = part else { break };
        let p = part?;
        if !pools.contains(&p.pool) {
            pools.push(p.pool.clone());
        }
        let (mut ns, mut pids, mut sns, mut hosts, mut ats) = (vec![], vec![], vec![], vec![], vec![]);
        let (mut usage_ns, mut tags, mut counts) = (vec![], vec![], vec![]);
        let removed = p.removed.iter().map(|(pid, sn)| (pid, sn, None));
        let reported = p.instances.iter().map(|i| (&i.pid, &i.sn, Some(i)));
        for (pid, sn, instance) in removed.chain(reported) {
            n += 1;
            ns.push(n);
            pids.push(pid.as_str());
            sns.push(sn.as_str());
            hosts.push(instance.map(|i| i.hostname.as_str()));
            ats.push(instance.map(|i| i.last_contact_at.0));
            for (tag, count) in instance.iter().flat_map(|i| &i.usage) {
                usage_ns.push(n);
                tags.push(tag.as_str());
                counts.push(*count);
            }
        }
        tx.execute(&lines, &[&ns, &p.pool, &pids, &sns, &hosts, &ats]).await.map_err(failed)?;
        tx.execute(&usage, &[&usage_ns, &tags, &counts]).await.map_err(failed)?;
    }
    tx.commit().await.map_err(failed)?;
    Ok(pools)
}

/// The next part of a request, read off the async threads (it reads and checks the request's file).
async fn next_part(mut parts: SyncParts) -> Result<(Option<Result<PoolInstances>>, SyncParts)> {
    tokio::task::spawn_blocking(move || (parts.next(), parts))
        .await
        .map_err(|e| StoreError::Database(format!("reading the request's parts: {e}")))
}

/// A staged line: its order, its pool, and what it reports.
fn staged_line(r: &Row) -> Result<(i64, String, Reported)> {
    let (pid, sn): (String, String) = (get(r, "pid")?, get(r, "sn")?);
    let line = match get::<Option<String>>(r, "hostname")? {
        None => Reported::Removed(pid, sn),
        Some(hostname) => Reported::Instance(MirroredInstance {
            pid,
            sn,
            hostname,
            last_contact_at: ts(r, "last_contact_at")?,
            usage: usage_columns(r)?,
        }),
    };
    Ok((get(r, "n")?, get(r, "pool")?, line))
}

/// Usage read as two arrays in tag order (`tags`, `counts`).
pub(super) fn usage_columns(r: &Row) -> Result<BTreeMap<String, i64>> {
    let (tags, counts): (Vec<String>, Vec<i64>) = (get(r, "tags")?, get(r, "counts")?);
    Ok(tags.into_iter().zip(counts).collect())
}

async fn pools_of(tx: &Tx<'_>, sql: &str, satellite_id: i64) -> Result<BTreeMap<String, i64>> {
    Ok(tx.all(sql, &[&satellite_id], |r| Ok((get(r, 0)?, get(r, 1)?))).await?.into_iter().collect())
}

/// Applies a staged request in the transaction `tx` (see [`SatelliteStore::apply_satellite_sync`]).
async fn apply_staged(tx: &Tx<'_>, r: &Request, now: Timestamp) -> Result<SyncOutcome> {
    let id = r.satellite_id;
    let sat = satellite_by_id(tx, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("satellite {id} does not exist in this cloud")))?;
    refuse_unapproved(&sat)?;
    refuse_old("request", r.sequence, sat.sync_sequence)?;
    let served = pools_of(
        tx,
        "SELECT v.name, v.id FROM satellite_pools p JOIN virtual_accounts v ON v.id = p.virtual_account_id
         WHERE p.satellite_id = $1",
        id,
    )
    .await?;
    let released =
        pools_of(tx, "SELECT pool, virtual_account_id FROM satellite_releases WHERE satellite_id = $1", id).await?;
    let mut reported_pools = BTreeMap::new();
    for pool in &r.pools {
        reported_pools.insert(pool.clone(), reported_pool(&sat, &served, &released, pool)?);
    }
    if r.full {
        for va in served.values() {
            forget_pool(tx, id, *va).await?;
        }
    }
    let (mut reported, mut after) = (0, 0i64);
    loop {
        let page = tx
            .all(
                "SELECT n, pool, pid, sn, hostname, last_contact_at,
                 ARRAY(SELECT u.tag FROM sync_staged_usage u WHERE u.n = s.n ORDER BY u.tag) AS tags,
                 ARRAY(SELECT u.count FROM sync_staged_usage u WHERE u.n = s.n ORDER BY u.tag) AS counts
                 FROM sync_staged s WHERE n > $1 ORDER BY n LIMIT 1000",
                &[&after],
                staged_line,
            )
            .await?;
        let Some((last, _, _)) = page.last() else { break };
        after = *last;
        for (_, pool, line) in page {
            let Some(va) = reported_pools.get(&pool).copied().flatten() else { continue };
            match line {
                Reported::Removed(pid, sn) => {
                    forget_mirrored(tx, va, &pid, &sn).await?;
                    tx.exec(
                        "DELETE FROM satellite_removals WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3",
                        &[&va, &pid, &sn],
                    )
                    .await?;
                }
                // One the operator removed stays removed: the satellite removes it on this response.
                Reported::Instance(i) => {
                    let sql =
                        "SELECT 1 FROM satellite_removals WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3";
                    if tx.value::<i32>(sql, &[&va, &i.pid, &i.sn]).await?.is_none() {
                        mirror(tx, id, va, &i).await?;
                        reported += 1;
                    }
                }
            }
        }
    }
    tx.exec(
        "UPDATE satellites SET sync_sequence = $1, last_sync_at = $2, sync_interval_days = $3 WHERE id = $4",
        &[&r.sequence, &now.0, &r.interval_days, &id],
    )
    .await?;
    let detail = request_detail(r.full, r.sequence, reported);
    log(tx, now, "satellite", "satellite.synchronised", Some(sat.account_id), None, &sat.name, detail).await?;
    complete_moves(tx, &sat, r.sequence, now).await?;
    tx.exec("DELETE FROM satellite_releases WHERE satellite_id = $1 AND sequence <= $2", &[&id, &r.acknowledges])
        .await?;
    let removed = tx
        .all(
            "SELECT v.name, r.udi_pid, r.udi_sn FROM satellite_removals r JOIN virtual_accounts v ON v.id = r.virtual_account_id
             WHERE r.satellite_id = $1 ORDER BY v.name, r.udi_pid, r.udi_sn",
            &[&id],
            |r| Ok(RemovedUdi { pool: get(r, 0)?, pid: get(r, 1)?, sn: get(r, 2)? }),
        )
        .await?;
    let released = tx
        .all("SELECT pool FROM satellite_releases WHERE satellite_id = $1 ORDER BY pool", &[&id], |r| get(r, 0))
        .await?;
    let satellite = satellite_by_id(tx, id).await?.ok_or_else(|| StoreError::Database("satellite vanished".into()))?;
    Ok(SyncOutcome { satellite, removed, released })
}

pub(super) async fn apply_satellite_sync(
    store: &PostgresStore,
    sync: SatelliteSync,
    now: Timestamp,
) -> Result<SyncOutcome> {
    let mut client = store.db.client().await?;
    let applied = stage_and_apply(store, &mut client, sync, now).await;
    // Frees the staged lines now, however it ended; the connection's next request empties them anyway.
    let _ = client.batch_execute("TRUNCATE sync_staged, sync_staged_usage").await;
    applied
}

/// Stages the request's parts on `client`, then applies them in the engine's transaction on the
/// same connection (its staging tables are its own), run again on a conflict.
async fn stage_and_apply(
    store: &PostgresStore,
    client: &mut deadpool_postgres::Object,
    sync: SatelliteSync,
    now: Timestamp,
) -> Result<SyncOutcome> {
    let SatelliteSync { satellite_id, sequence, acknowledges, full, interval_days, parts } = sync;
    let pools = stage(client, parts).await?;
    let request = Request { satellite_id, sequence, acknowledges, full, interval_days, pools };
    let mut attempt = 0;
    loop {
        let tx = store.db.begin(client, Mode::Write).await?;
        let outcome = apply_staged(&tx, &request, now).await;
        match store.db.finish(tx, outcome, &mut attempt).await {
            Finished::Done(result) => return result,
            Finished::Retry => continue,
        }
    }
}

pub(super) async fn reassign_pool(
    store: &PostgresStore,
    va: i64,
    to: Option<i64>,
    actor: &str,
    now: Timestamp,
) -> Result<Reassignment> {
    write!(store, |tx| {
        let (pool, account_id): (String, i64) = tx
            .one("SELECT name, account_id FROM virtual_accounts WHERE id = $1", &[&va], |r| {
                Ok((get(r, 0)?, get(r, 1)?))
            })
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("virtual account {va} does not exist")))?;
        let managers = PoolManagers {
            waiting: tx
                .value(
                    "SELECT s.name FROM pool_moves m JOIN satellites s ON s.id = m.from_satellite_id
                     WHERE m.virtual_account_id = $1",
                    &[&va],
                )
                .await?,
            target: match to {
                Some(t) => satellite_by_id(&tx, t).await?,
                None => None,
            },
            serving: tx
                .one(
                    "SELECT s.id, s.name FROM satellite_pools p JOIN satellites s ON s.id = p.satellite_id
                     WHERE p.virtual_account_id = $1",
                    &[&va],
                    |r| Ok((get(r, 0)?, get(r, 1)?)),
                )
                .await?,
            cloud_instances: tx
                .value("SELECT COUNT(*) FROM instances WHERE virtual_account_id = $1", &[&va])
                .await?
                .unwrap_or(0),
            pool,
            account_id,
            to,
        };
        let planned = plan_reassignment(&managers)?;
        match managers.serving {
            Some((from, _)) => {
                tx.exec(
                    "INSERT INTO pool_moves (virtual_account_id, from_satellite_id, to_satellite_id, requested_at, requested_by)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&va, &from, &to, &now.0, &actor],
                )
                .await?
            }
            None => {
                tx.exec("INSERT INTO satellite_pools (virtual_account_id, satellite_id) VALUES ($1, $2)", &[&va, &to])
                    .await?;
                tx.exec(
                    "DELETE FROM satellite_releases WHERE satellite_id = $1 AND virtual_account_id = $2",
                    &[&to, &va],
                )
                .await?
            }
        };
        let (kind, detail) = reassignment_event(&planned);
        log(&tx, now, actor, kind, Some(account_id), Some(va), &planned.pool, detail).await?;
        Ok(planned)
    })
}

pub(super) async fn remove_satellite_instance(
    store: &PostgresStore,
    satellite_id: i64,
    udi: RemovedUdi,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    write!(store, |tx| {
        let found: Option<(i64, i64)> = tx
            .one(
                "SELECT i.virtual_account_id, v.account_id FROM satellite_instances i JOIN virtual_accounts v
                 ON v.id = i.virtual_account_id WHERE i.satellite_id = $1 AND v.name = $2 AND i.udi_pid = $3 AND i.udi_sn = $4",
                &[&satellite_id, &udi.pool, &udi.pid, &udi.sn],
                |r| Ok((get(r, 0)?, get(r, 1)?)),
            )
            .await?;
        let (va, account_id) = found.ok_or_else(|| unreported_instance(satellite_id, &udi))?;
        forget_mirrored(&tx, va, &udi.pid, &udi.sn).await?;
        tx.exec(
            "INSERT INTO satellite_removals (satellite_id, virtual_account_id, udi_pid, udi_sn) VALUES ($1, $2, $3, $4)",
            &[&satellite_id, &va, &udi.pid, &udi.sn],
        )
        .await?;
        let (object, detail) = removal_event(satellite_id, &udi);
        log(&tx, now, actor, "satellite.instance-removed", Some(account_id), Some(va), &object, detail).await
    })
}

pub(super) async fn satellite_instances(store: &PostgresStore, satellite_id: i64) -> Result<Vec<PoolInstances>> {
    read!(store, |tx| {
        let rows = tx
            .all(
                "SELECT v.name AS pool, i.udi_pid, i.udi_sn, i.hostname, i.last_contact_at,
                 ARRAY(SELECT u.tag FROM satellite_usage u WHERE u.virtual_account_id = i.virtual_account_id
                       AND u.udi_pid = i.udi_pid AND u.udi_sn = i.udi_sn ORDER BY u.tag) AS tags,
                 ARRAY(SELECT u.count FROM satellite_usage u WHERE u.virtual_account_id = i.virtual_account_id
                       AND u.udi_pid = i.udi_pid AND u.udi_sn = i.udi_sn ORDER BY u.tag) AS counts
                 FROM satellite_instances i JOIN virtual_accounts v ON v.id = i.virtual_account_id
                 WHERE i.satellite_id = $1 ORDER BY v.name, i.udi_pid, i.udi_sn",
                &[&satellite_id],
                |r| {
                    let instance = MirroredInstance {
                        pid: get(r, "udi_pid")?,
                        sn: get(r, "udi_sn")?,
                        hostname: get(r, "hostname")?,
                        last_contact_at: ts(r, "last_contact_at")?,
                        usage: usage_columns(r)?,
                    };
                    Ok((get(r, "pool")?, instance))
                },
            )
            .await?;
        Ok(by_pool(rows))
    })
}
