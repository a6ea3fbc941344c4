//! [`SatelliteStore`] on SQLite: satellites in the cloud, local accounts on a satellite.

use super::licenses::insert_license;
use super::{
    all, delete_instance, exec, instance, log, one, opt_ts, shift_pool_usage, ts, unique_or, usage_of, SqliteStore,
    INSTANCE, R,
};
use crate::rules::sync::*;
use crate::satellite::*;
use crate::{Result, StoreError, DEFAULT_VIRTUAL_ACCOUNT};
use rusqlite::{params, Connection, Row};
use smartlic_core::Timestamp;
use std::collections::BTreeMap;

const SATELLITE: &str = "SELECT id, account_id, name, local_account, manager_id, key_algorithm, public_key, csr, requested_at, requested_by, approved_at, certificate_expires_at, answer, sync_sequence, last_sync_at, sync_interval_days FROM satellites";
const LOCAL_ACCOUNT: &str = "SELECT id, name, domain, created_at, cloud_satellite_id, cloud_url, approved_at, certificate, certificate_expires_at, cloud_ca, sync_sequence, acknowledged_sequence, last_sync_at, sync_interval_days, last_attempt_at, last_sync_error FROM local_accounts";

fn satellite_row(row: &Row) -> R<Satellite> {
    Ok(Satellite {
        id: row.get("id")?,
        account_id: row.get("account_id")?,
        name: row.get("name")?,
        local_account: row.get("local_account")?,
        manager_id: row.get("manager_id")?,
        key_algorithm: row.get("key_algorithm")?,
        public_key: row.get("public_key")?,
        csr: row.get("csr")?,
        requested_at: ts(row, "requested_at")?,
        requested_by: row.get("requested_by")?,
        approved_at: row.get::<_, Option<i64>>("approved_at")?.map(Timestamp),
        certificate_expires_at: row.get::<_, Option<i64>>("certificate_expires_at")?.map(Timestamp),
        answer: row.get("answer")?,
        pools: Vec::new(),
        pending_moves: Vec::new(),
        sync_sequence: row.get("sync_sequence")?,
        last_sync_at: opt_ts(row, "last_sync_at")?,
        sync_interval_days: row.get("sync_interval_days")?,
    })
}

fn local_account_row(row: &Row) -> R<LocalAccount> {
    Ok(LocalAccount {
        id: row.get("id")?,
        name: row.get("name")?,
        domain: row.get("domain")?,
        created_at: ts(row, "created_at")?,
        cloud_satellite_id: row.get("cloud_satellite_id")?,
        cloud_url: row.get("cloud_url")?,
        approved_at: row.get::<_, Option<i64>>("approved_at")?.map(Timestamp),
        certificate: row.get("certificate")?,
        certificate_expires_at: row.get::<_, Option<i64>>("certificate_expires_at")?.map(Timestamp),
        cloud_ca: row.get("cloud_ca")?,
        sync_sequence: row.get("sync_sequence")?,
        acknowledged_sequence: row.get("acknowledged_sequence")?,
        last_sync_at: opt_ts(row, "last_sync_at")?,
        sync_interval_days: row.get("sync_interval_days")?,
        last_attempt_at: opt_ts(row, "last_attempt_at")?,
        last_sync_error: row.get("last_sync_error")?,
    })
}

/// The satellites a query finds, each with the names of the pools it serves.
fn satellites_where(db: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Satellite>> {
    let mut found = all(db, &format!("{SATELLITE} {filter} ORDER BY id"), args, satellite_row)?;
    for s in &mut found {
        s.pools = all(
            db,
            "SELECT v.name FROM satellite_pools p JOIN virtual_accounts v ON v.id = p.virtual_account_id
             WHERE p.satellite_id = $1 ORDER BY v.name",
            [s.id],
            |r| r.get(0),
        )?;
        s.pending_moves = all(
            db,
            "SELECT v.name, t.name, m.requested_at, m.requested_by FROM pool_moves m
             JOIN virtual_accounts v ON v.id = m.virtual_account_id LEFT JOIN satellites t ON t.id = m.to_satellite_id
             WHERE m.from_satellite_id = $1 ORDER BY v.name",
            [s.id],
            |r| {
                Ok(PendingMove {
                    pool: r.get(0)?,
                    to: r.get(1)?,
                    requested_at: Timestamp(r.get(2)?),
                    requested_by: r.get(3)?,
                })
            },
        )?;
    }
    Ok(found)
}

fn satellite_by_id(db: &Connection, id: i64) -> Result<Option<Satellite>> {
    Ok(satellites_where(db, "WHERE id = $1", [id])?.pop())
}

fn local_account_named(db: &Connection, name: &str) -> Result<LocalAccount> {
    one(db, &format!("{LOCAL_ACCOUNT} WHERE name = $1"), [name], local_account_row)?
        .ok_or_else(|| StoreError::NotFound(format!("local account '{name}' does not exist")))
}

/// Takes a mirrored instance out of the cloud's copy, its usage out of the pool's counters.
fn forget_mirrored(db: &Connection, virtual_account_id: i64, pid: &str, sn: &str) -> Result<()> {
    let usage: BTreeMap<String, i64> = all(
        db,
        "SELECT tag, count FROM satellite_usage WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3",
        params![virtual_account_id, pid, sn],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?
    .into_iter()
    .collect();
    shift_pool_usage(db, virtual_account_id, &usage, -1)?;
    exec(
        db,
        "DELETE FROM satellite_instances WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3",
        params![virtual_account_id, pid, sn],
    )?;
    Ok(())
}

/// Takes every instance `satellite_id` reported in the pool out of the cloud's copy.
fn forget_pool(db: &Connection, satellite_id: i64, virtual_account_id: i64) -> Result<()> {
    let udis: Vec<(String, String)> = all(
        db,
        "SELECT udi_pid, udi_sn FROM satellite_instances WHERE satellite_id = $1 AND virtual_account_id = $2",
        [satellite_id, virtual_account_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (pid, sn) in udis {
        forget_mirrored(db, virtual_account_id, &pid, &sn)?;
    }
    Ok(())
}

fn satellite_name(db: &Connection, id: Option<i64>) -> Result<Option<String>> {
    let Some(id) = id else { return Ok(None) };
    one(db, "SELECT name FROM satellites WHERE id = $1", [id], |r| r.get(0))
}

/// Moves the pools reassigned away from `sat`, now that the usage of its request `sequence`
/// is in: its mirrored instances leave them (their devices register again with the new
/// manager, so nothing is counted twice), the new manager serves them, and the responses carry
/// the release down until the satellite acknowledges one.
fn complete_moves(db: &Connection, sat: &Satellite, sequence: i64, now: Timestamp) -> Result<()> {
    let moves: Vec<(i64, Option<i64>, String)> = all(
        db,
        "SELECT m.virtual_account_id, m.to_satellite_id, v.name FROM pool_moves m
         JOIN virtual_accounts v ON v.id = m.virtual_account_id WHERE m.from_satellite_id = $1",
        [sat.id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (va, to, pool) in moves {
        forget_pool(db, sat.id, va)?;
        exec(db, "DELETE FROM satellite_removals WHERE satellite_id = $1 AND virtual_account_id = $2", [sat.id, va])?;
        exec(db, "DELETE FROM satellite_pools WHERE virtual_account_id = $1", [va])?;
        if let Some(to) = to {
            exec(db, "INSERT INTO satellite_pools (virtual_account_id, satellite_id) VALUES ($1, $2)", [va, to])?;
            exec(db, "DELETE FROM satellite_releases WHERE satellite_id = $1 AND virtual_account_id = $2", [to, va])?;
        }
        exec(db, "DELETE FROM pool_moves WHERE virtual_account_id = $1", [va])?;
        exec(
            db,
            "INSERT OR REPLACE INTO satellite_releases (satellite_id, virtual_account_id, pool, sequence) VALUES ($1, $2, $3, $4)",
            params![sat.id, va, pool, sequence],
        )?;
        let detail = release_detail(&pool, satellite_name(db, to)?.as_deref(), sequence);
        log(db, now, "satellite", "satellite.pool-released", Some(sat.account_id), Some(va), &sat.name, detail)?;
    }
    Ok(())
}

/// See [`SatelliteStore::reassign_pool`].
fn reassign(db: &Connection, va: i64, to: Option<i64>, actor: &str, now: Timestamp) -> Result<Reassignment> {
    let (pool, account_id): (String, i64) =
        one(db, "SELECT name, account_id FROM virtual_accounts WHERE id = $1", [va], |r| Ok((r.get(0)?, r.get(1)?)))?
            .ok_or_else(|| StoreError::NotFound(format!("virtual account {va} does not exist")))?;
    let managers = PoolManagers {
        waiting: one(
            db,
            "SELECT s.name FROM pool_moves m JOIN satellites s ON s.id = m.from_satellite_id WHERE m.virtual_account_id = $1",
            [va],
            |r| r.get(0),
        )?,
        target: match to {
            Some(t) => satellite_by_id(db, t)?,
            None => None,
        },
        serving: one(
            db,
            "SELECT s.id, s.name FROM satellite_pools p JOIN satellites s ON s.id = p.satellite_id WHERE p.virtual_account_id = $1",
            [va],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?,
        cloud_instances: one(db, "SELECT COUNT(*) FROM instances WHERE virtual_account_id = $1", [va], |r| r.get(0))?
            .unwrap_or(0),
        pool,
        account_id,
        to,
    };
    let planned = plan_reassignment(&managers)?;
    match managers.serving {
        Some((from, _)) => exec(
            db,
            "INSERT INTO pool_moves (virtual_account_id, from_satellite_id, to_satellite_id, requested_at, requested_by) VALUES ($1, $2, $3, $4, $5)",
            params![va, from, to, now.0, actor],
        )?,
        None => {
            exec(db, "INSERT INTO satellite_pools (virtual_account_id, satellite_id) VALUES ($1, $2)", params![va, to])?;
            exec(db, "DELETE FROM satellite_releases WHERE satellite_id = $1 AND virtual_account_id = $2", params![to, va])?
        }
    };
    let (kind, detail) = reassignment_event(&planned);
    log(db, now, actor, kind, Some(account_id), Some(va), &planned.pool, detail)?;
    Ok(planned)
}

fn mirror(db: &Connection, satellite_id: i64, virtual_account_id: i64, i: &MirroredInstance) -> Result<()> {
    forget_mirrored(db, virtual_account_id, &i.pid, &i.sn)?;
    exec(
        db,
        "INSERT INTO satellite_instances (satellite_id, virtual_account_id, udi_pid, udi_sn, hostname, last_contact_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![satellite_id, virtual_account_id, i.pid, i.sn, i.hostname, i.last_contact_at.0],
    )?;
    for (tag, count) in &i.usage {
        exec(
            db,
            "INSERT INTO satellite_usage (virtual_account_id, udi_pid, udi_sn, tag, count) VALUES ($1, $2, $3, $4, $5)",
            params![virtual_account_id, i.pid, i.sn, tag, count],
        )?;
    }
    shift_pool_usage(db, virtual_account_id, &i.usage, 1)
}

fn mirrored_instance(row: &Row) -> R<(String, MirroredInstance)> {
    Ok((
        row.get("pool")?,
        MirroredInstance {
            pid: row.get("udi_pid")?,
            sn: row.get("udi_sn")?,
            hostname: row.get("hostname")?,
            last_contact_at: ts(row, "last_contact_at")?,
            usage: BTreeMap::new(),
        },
    ))
}

fn account_id_of(db: &Connection, domain: &str) -> Result<i64> {
    one(db, "SELECT id FROM smart_accounts WHERE domain = $1", [domain], |r| r.get(0))?
        .ok_or_else(|| StoreError::NotFound(format!("smart account {domain} does not exist on this satellite")))
}

/// Makes the pool's purchase records those of `licenses`: records that match stay, the
/// others go, the missing ones are added.
fn replace_licenses(
    db: &Connection,
    virtual_account_id: i64,
    licenses: &[crate::NewLicense],
    now: Timestamp,
) -> Result<()> {
    let existing = all(
        db,
        "SELECT id, tag, sku, quantity, kind, start_at, end_at, subscription_id FROM licenses WHERE virtual_account_id = $1",
        [virtual_account_id],
        |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))),
    )?;
    let (added, gone) = replaced_licenses(existing, licenses);
    for l in added {
        insert_license(db, crate::NewLicense { virtual_account_id, ..l.clone() }, now)?;
    }
    for id in gone {
        exec(db, "DELETE FROM licenses WHERE id = $1", [id])?;
    }
    Ok(())
}

/// On a satellite: the cloud reassigned the pool to another manager. Its instances go, their
/// usage with them (the devices register again with the manager serving it now), and it serves
/// no device until the cloud gives it back (a response naming it among the served pools).
fn release_pool(db: &Connection, account_id: i64, pool: &str, now: Timestamp) -> Result<()> {
    let sql = "SELECT id FROM virtual_accounts WHERE account_id = $1 AND name = $2";
    let Some(va) = one(db, sql, params![account_id, pool], |r| r.get::<_, i64>(0))? else { return Ok(()) };
    for found in all(db, &format!("{INSTANCE} WHERE virtual_account_id = $1"), [va], instance)? {
        delete_instance(db, &found)?;
    }
    exec(db, "INSERT OR IGNORE INTO released_pools (virtual_account_id, released_at) VALUES ($1, $2)", [va, now.0])?;
    Ok(())
}

/// Sends a synchronisation's instances in parts, as [`PartCutter`] cuts them.
struct Parts {
    out: std::sync::mpsc::SyncSender<PoolInstances>,
    cutter: PartCutter,
}

impl Parts {
    fn add(&mut self, pool: &str, line: Reported) -> Result<()> {
        match self.cutter.add(pool, line) {
            Some(part) => self.out.send(part).map_err(|_| writer_stopped()),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<()> {
        match self.cutter.finish() {
            Some(part) => self.out.send(part).map_err(|_| writer_stopped()),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl SatelliteStore for SqliteStore {
    async fn create_satellite(&self, new: NewSatellite, actor: &str, now: Timestamp) -> Result<Satellite> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let same = "WHERE account_id = $1 AND manager_id = $2 AND local_account = $3";
                let args = params![new.account_id, new.manager_id, new.local_account];
                if let Some(existing) = satellites_where(db, same, args)?.pop() {
                    if existing.public_key == new.public_key {
                        return Ok(existing);
                    }
                    return Err(StoreError::Conflict(format!(
                        "satellite {} registered local account '{}' already with another key (satellite id {})",
                        new.name, new.local_account, existing.id
                    )));
                }
                exec(
                    db,
                    "INSERT INTO satellites (account_id, name, local_account, manager_id, key_algorithm, public_key, csr,
                     status, requested_at, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)",
                    params![
                        new.account_id,
                        new.name,
                        new.local_account,
                        new.manager_id,
                        new.key_algorithm,
                        new.public_key,
                        new.csr,
                        now.0,
                        actor
                    ],
                )?;
                let id = db.last_insert_rowid();
                let detail = format!("local account '{}', manager {}", new.local_account, new.manager_id);
                log(db, now, &actor, "satellite.registered", Some(new.account_id), None, &new.name, detail)?;
                satellite_by_id(db, id)?.ok_or_else(|| StoreError::Database("satellite vanished".into()))
            })
            .await
    }

    async fn satellites(&self) -> Result<Vec<Satellite>> {
        self.db.read(|db| satellites_where(db, "", [])).await
    }

    async fn satellite(&self, id: i64) -> Result<Option<Satellite>> {
        self.db.read(move |db| satellite_by_id(db, id)).await
    }

    async fn approve_satellite(&self, approval: SatelliteApproval, actor: &str, now: Timestamp) -> Result<Satellite> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let id = approval.satellite_id;
                let sat = satellite_by_id(db, id)?
                    .ok_or_else(|| StoreError::NotFound(format!("satellite {id} does not exist")))?;
                if sat.approved_at.is_some() {
                    return Err(StoreError::Conflict(format!("satellite {id} ({}) is approved already", sat.name)));
                }
                for va in &approval.virtual_account_ids {
                    let serving = "SELECT s.name, v.name FROM satellite_pools p JOIN satellites s ON s.id = p.satellite_id
                                   JOIN virtual_accounts v ON v.id = p.virtual_account_id WHERE p.virtual_account_id = $1";
                    if let Some((other, pool)) = one(db, serving, [va], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                        return Err(StoreError::Conflict(format!(
                            "virtual account '{pool}' is served by satellite {other} already: a pool has one manager"
                        )));
                    }
                    exec(db, "INSERT INTO satellite_pools (virtual_account_id, satellite_id) VALUES ($1, $2)", params![va, id])?;
                }
                exec(
                    db,
                    "UPDATE satellites SET status = 'approved', approved_at = $1, certificate_expires_at = $2, answer = $3 WHERE id = $4",
                    params![now.0, approval.certificate_expires_at.0, approval.answer, id],
                )?;
                let approved = satellite_by_id(db, id)?.ok_or_else(|| StoreError::Database("satellite vanished".into()))?;
                let detail = format!("serves {}; certificate until {}", approved.pools.join(", "), approval.certificate_expires_at);
                log(db, now, &actor, "satellite.approved", Some(sat.account_id), None, &sat.name, detail)?;
                Ok(approved)
            })
            .await
    }

    async fn satellite_serving_pool(&self, virtual_account_id: i64) -> Result<Option<Satellite>> {
        self.db
            .read(move |db| {
                let filter = "WHERE id = (SELECT satellite_id FROM satellite_pools WHERE virtual_account_id = $1)";
                Ok(satellites_where(db, filter, [virtual_account_id])?.pop())
            })
            .await
    }

    async fn satellite_serving_token(&self, token_hash: &str) -> Result<Option<Satellite>> {
        let token_hash = token_hash.to_string();
        self.db
            .read(move |db| {
                let filter = "WHERE id = (SELECT p.satellite_id FROM satellite_pools p JOIN registration_tokens t
                              ON t.virtual_account_id = p.virtual_account_id WHERE t.token_hash = $1)";
                Ok(satellites_where(db, filter, [token_hash])?.pop())
            })
            .await
    }

    async fn create_local_account(
        &self,
        name: &str,
        domain: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        let (name, domain, actor) = (name.to_string(), domain.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                db.prepare_cached("INSERT INTO local_accounts (name, domain, created_at) VALUES ($1, $2, $3)")?
                    .execute(params![name, domain, now.0])
                    .map_err(|e| {
                        unique_or(e, || format!("a local account named '{name}' or for {domain} exists already"))
                    })?;
                log(
                    db,
                    now,
                    &actor,
                    "local-account.created",
                    None,
                    None,
                    &name,
                    format!("mirrors smart account {domain}"),
                )?;
                local_account_named(db, &name)
            })
            .await
    }

    async fn local_accounts(&self) -> Result<Vec<LocalAccount>> {
        self.db.read(|db| all(db, &format!("{LOCAL_ACCOUNT} ORDER BY name"), [], local_account_row)).await
    }

    async fn local_account(&self, name: &str) -> Result<Option<LocalAccount>> {
        let name = name.to_string();
        self.db.read(move |db| one(db, &format!("{LOCAL_ACCOUNT} WHERE name = $1"), [name], local_account_row)).await
    }

    async fn local_account_sent(
        &self,
        name: &str,
        cloud_satellite_id: i64,
        cloud_url: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        let (name, cloud_url, actor) = (name.to_string(), cloud_url.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                exec(
                    db,
                    "UPDATE local_accounts SET cloud_satellite_id = $1, cloud_url = $2 WHERE name = $3",
                    params![cloud_satellite_id, cloud_url, name],
                )?;
                let detail = format!("sent to {cloud_url} as satellite {cloud_satellite_id}");
                log(db, now, &actor, "local-account.registration-sent", None, None, &name, detail)?;
                local_account_named(db, &name)
            })
            .await
    }

    async fn approve_local_account(
        &self,
        approval: LocalApproval,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let local = local_account_named(db, &approval.local_account)?;
                refuse_approved_local(&local)?;
                // The mirrored smart account holds the granted pools only; its Default pool is
                // created as every smart account's is, and is one of them when granted.
                db.prepare_cached("INSERT INTO smart_accounts (domain, name, created_at) VALUES ($1, $2, $3)")?
                    .execute(params![local.domain, approval.smart_account_name, now.0])
                    .map_err(|e| unique_or(e, || format!("smart account {} exists already on this satellite", local.domain)))?;
                let account_id = db.last_insert_rowid();
                exec(
                    db,
                    "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, TRUE, $4)",
                    params![account_id, DEFAULT_VIRTUAL_ACCOUNT, "Default virtual account", now.0],
                )?;
                let default_pool = db.last_insert_rowid();
                for pool in &approval.pools {
                    let va = if pool.name == DEFAULT_VIRTUAL_ACCOUNT {
                        default_pool
                    } else {
                        exec(
                            db,
                            "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, FALSE, $4)",
                            params![account_id, pool.name, pool.description, now.0],
                        )?;
                        db.last_insert_rowid()
                    };
                    for l in &pool.licenses {
                        insert_license(db, crate::NewLicense { virtual_account_id: va, ..l.clone() }, now)?;
                    }
                }
                exec(
                    db,
                    "UPDATE local_accounts SET cloud_satellite_id = $1, approved_at = $2, certificate = $3,
                     certificate_expires_at = $4, cloud_ca = $5 WHERE id = $6",
                    params![
                        approval.cloud_satellite_id,
                        now.0,
                        approval.certificate,
                        approval.certificate_expires_at.0,
                        approval.cloud_ca,
                        local.id
                    ],
                )?;
                let detail = approval_detail(&approval);
                log(db, now, &actor, "local-account.approved", Some(account_id), None, &local.name, detail)?;
                local_account_named(db, &local.name)
            })
            .await
    }

    async fn apply_satellite_sync(&self, sync: SatelliteSync, now: Timestamp) -> Result<SyncOutcome> {
        self.db
            .write(move |db| {
                let id = sync.satellite_id;
                let sat = satellite_by_id(db, id)?
                    .ok_or_else(|| StoreError::NotFound(format!("satellite {id} does not exist in this cloud")))?;
                refuse_unapproved(&sat)?;
                refuse_old("request", sync.sequence, sat.sync_sequence)?;
                let pools_of = |sql: &str| -> Result<BTreeMap<String, i64>> {
                    Ok(all(db, sql, [id], |r| Ok((r.get(0)?, r.get(1)?)))?.into_iter().collect())
                };
                let served = pools_of(
                    "SELECT v.name, v.id FROM satellite_pools p JOIN virtual_accounts v ON v.id = p.virtual_account_id
                     WHERE p.satellite_id = $1",
                )?;
                let released = pools_of("SELECT pool, virtual_account_id FROM satellite_releases WHERE satellite_id = $1")?;
                if sync.full {
                    for va in served.values() {
                        forget_pool(db, id, *va)?;
                    }
                }
                let mut reported = 0;
                let pending = |va: i64, pid: &str, sn: &str| -> Result<bool> {
                    let sql = "SELECT 1 FROM satellite_removals WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3";
                    Ok(one(db, sql, params![va, pid, sn], |r| r.get::<_, i64>(0))?.is_some())
                };
                for part in sync.parts {
                    let p = part?;
                    let Some(va) = reported_pool(&sat, &served, &released, &p.pool)? else { continue };
                    for (pid, sn) in &p.removed {
                        forget_mirrored(db, va, pid, sn)?;
                        exec(
                            db,
                            "DELETE FROM satellite_removals WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3",
                            params![va, pid, sn],
                        )?;
                    }
                    // One the operator removed stays removed: the satellite removes it on this response.
                    for i in &p.instances {
                        if !pending(va, &i.pid, &i.sn)? {
                            mirror(db, id, va, i)?;
                            reported += 1;
                        }
                    }
                }
                exec(
                    db,
                    "UPDATE satellites SET sync_sequence = $1, last_sync_at = $2, sync_interval_days = $3 WHERE id = $4",
                    params![sync.sequence, now.0, sync.interval_days, id],
                )?;
                let detail = request_detail(sync.full, sync.sequence, reported);
                log(db, now, "satellite", "satellite.synchronised", Some(sat.account_id), None, &sat.name, detail)?;
                complete_moves(db, &sat, sync.sequence, now)?;
                exec(
                    db,
                    "DELETE FROM satellite_releases WHERE satellite_id = $1 AND sequence <= $2",
                    params![id, sync.acknowledges],
                )?;
                let removed = all(
                    db,
                    "SELECT v.name, r.udi_pid, r.udi_sn FROM satellite_removals r JOIN virtual_accounts v ON v.id = r.virtual_account_id
                     WHERE r.satellite_id = $1 ORDER BY v.name, r.udi_pid, r.udi_sn",
                    [id],
                    |r| Ok(RemovedUdi { pool: r.get(0)?, pid: r.get(1)?, sn: r.get(2)? }),
                )?;
                let released =
                    all(db, "SELECT pool FROM satellite_releases WHERE satellite_id = $1 ORDER BY pool", [id], |r| r.get(0))?;
                let satellite = satellite_by_id(db, id)?.ok_or_else(|| StoreError::Database("satellite vanished".into()))?;
                Ok(SyncOutcome { satellite, removed, released })
            })
            .await
    }

    async fn reassign_pool(
        &self,
        virtual_account_id: i64,
        to: Option<i64>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Reassignment> {
        let actor = actor.to_string();
        self.db.write(move |db| reassign(db, virtual_account_id, to, &actor, now)).await
    }

    async fn remove_satellite_instance(
        &self,
        satellite_id: i64,
        udi: RemovedUdi,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let found: Option<(i64, i64)> = one(
                    db,
                    "SELECT i.virtual_account_id, v.account_id FROM satellite_instances i JOIN virtual_accounts v
                     ON v.id = i.virtual_account_id WHERE i.satellite_id = $1 AND v.name = $2 AND i.udi_pid = $3 AND i.udi_sn = $4",
                    params![satellite_id, udi.pool, udi.pid, udi.sn],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let (va, account_id) = found.ok_or_else(|| unreported_instance(satellite_id, &udi))?;
                forget_mirrored(db, va, &udi.pid, &udi.sn)?;
                exec(
                    db,
                    "INSERT INTO satellite_removals (satellite_id, virtual_account_id, udi_pid, udi_sn) VALUES ($1, $2, $3, $4)",
                    params![satellite_id, va, udi.pid, udi.sn],
                )?;
                let (object, detail) = removal_event(satellite_id, &udi);
                log(db, now, &actor, "satellite.instance-removed", Some(account_id), Some(va), &object, detail)
            })
            .await
    }

    async fn satellite_instances(&self, satellite_id: i64) -> Result<Vec<PoolInstances>> {
        self.db
            .read(move |db| {
                let rows = all(
                    db,
                    "SELECT v.name AS pool, i.virtual_account_id, i.udi_pid, i.udi_sn, i.hostname, i.last_contact_at
                     FROM satellite_instances i JOIN virtual_accounts v ON v.id = i.virtual_account_id
                     WHERE i.satellite_id = $1 ORDER BY v.name, i.udi_pid, i.udi_sn",
                    [satellite_id],
                    |r| Ok((r.get::<_, i64>("virtual_account_id")?, mirrored_instance(r)?)),
                )?;
                let mut found = Vec::new();
                for (va, (pool, mut instance)) in rows {
                    instance.usage = all(
                        db,
                        "SELECT tag, count FROM satellite_usage WHERE virtual_account_id = $1 AND udi_pid = $2 AND udi_sn = $3",
                        params![va, instance.pid, instance.sn],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?
                    .into_iter()
                    .collect();
                    found.push((pool, instance));
                }
                Ok(by_pool(found))
            })
            .await
    }

    async fn begin_sync(&self, name: &str, full: bool, now: Timestamp) -> Result<SyncDraft> {
        let name = name.to_string();
        self.db
            .write(move |db| {
                let local = local_account_named(db, &name)?;
                refuse_unapproved_local(&local)?;
                let last_change: i64 =
                    one(db, "SELECT COALESCE(MAX(id), 0) FROM sync_changes", [], |r| r.get(0))?.unwrap_or(0);
                let sequence = local.sync_sequence + 1;
                exec(
                    db,
                    "INSERT INTO sync_requests (local_account_id, sequence, full, created_at, last_change) VALUES ($1, $2, $3, $4, $5)",
                    params![local.id, sequence, full, now.0, last_change],
                )?;
                exec(db, "UPDATE local_accounts SET sync_sequence = $1 WHERE id = $2", params![sequence, local.id])?;
                let acknowledges = local.acknowledged_sequence;
                let local = local_account_named(db, &name)?;
                Ok(SyncDraft { local, sequence, acknowledges })
            })
            .await
    }

    async fn sync_instances(
        &self,
        name: &str,
        full: bool,
        parts: std::sync::mpsc::SyncSender<PoolInstances>,
    ) -> Result<()> {
        let name = name.to_string();
        self.db
            .read(move |db| {
                let local = local_account_named(db, &name)?;
                let account_id = account_id_of(db, &local.domain)?;
                let mut parts = Parts { out: parts, cutter: PartCutter::default() };
                let select = "SELECT v.name AS pool, i.id, i.udi_pid, i.udi_sn, i.hostname, i.last_contact_at, i.usage_released
                     FROM instances i JOIN virtual_accounts v ON v.id = i.virtual_account_id WHERE v.account_id = $1
                     AND v.id NOT IN (SELECT virtual_account_id FROM released_pools)";
                let read = |r: &Row| -> Result<(String, MirroredInstance)> {
                    let (pool, mut instance) = mirrored_instance(r)?;
                    if !r.get::<_, bool>("usage_released")? {
                        instance.usage = usage_of(db, &r.get::<_, String>("id")?)?;
                    }
                    Ok((pool, instance))
                };
                if full {
                    let mut found = db.prepare(&format!("{select} ORDER BY v.name, i.udi_pid, i.udi_sn"))?;
                    let mut rows = found.query([account_id])?;
                    while let Some(row) = rows.next()? {
                        let (pool, instance) = read(row)?;
                        parts.add(&pool, Reported::Instance(instance))?;
                    }
                    return parts.flush();
                }
                let since: i64 =
                    one(db, "SELECT synced_change FROM local_accounts WHERE id = $1", [local.id], |r| r.get(0))?.unwrap_or(0);
                let mut changed = db.prepare(
                    "SELECT DISTINCT c.virtual_account_id, c.udi_pid, c.udi_sn, v.name FROM sync_changes c
                     JOIN virtual_accounts v ON v.id = c.virtual_account_id WHERE v.account_id = $1 AND c.id > $2
                     AND v.id NOT IN (SELECT virtual_account_id FROM released_pools) ORDER BY v.name, c.udi_pid, c.udi_sn",
                )?;
                let mut rows = changed.query(params![account_id, since])?;
                let mut one_instance =
                    db.prepare(&format!("{select} AND i.virtual_account_id = $2 AND i.udi_pid = $3 AND i.udi_sn = $4"))?;
                while let Some(row) = rows.next()? {
                    let (va, pid, sn, pool): (i64, String, String, String) =
                        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                    let mut found = one_instance.query(params![account_id, va, pid, sn])?;
                    match found.next()? {
                        Some(r) => {
                            let (pool, instance) = read(r)?;
                            parts.add(&pool, Reported::Instance(instance))?
                        }
                        None => parts.add(&pool, Reported::Removed(pid, sn))?,
                    }
                }
                parts.flush()
            })
            .await
    }

    async fn apply_sync_response(&self, applied: AppliedSync, actor: &str, now: Timestamp) -> Result<LocalAccount> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let local = local_account_named(db, &applied.local_account)?;
                refuse_old("response", applied.sequence, local.acknowledged_sequence)?;
                let covered: i64 = one(
                    db,
                    "SELECT last_change FROM sync_requests WHERE local_account_id = $1 AND sequence = $2",
                    params![local.id, applied.sequence],
                    |r| r.get(0),
                )?
                .ok_or_else(|| unknown_request(applied.sequence, &local))?;
                let account_id = account_id_of(db, &local.domain)?;
                for pool in &applied.pools {
                    let found: Option<i64> = one(
                        db,
                        "SELECT id FROM virtual_accounts WHERE account_id = $1 AND name = $2",
                        params![account_id, pool.name],
                        |r| r.get(0),
                    )?;
                    let va = match found {
                        Some(va) => va,
                        None => {
                            exec(
                                db,
                                "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, FALSE, $4)",
                                params![account_id, pool.name, pool.description, now.0],
                            )?;
                            db.last_insert_rowid()
                        }
                    };
                    replace_licenses(db, va, &pool.licenses, now)?;
                    exec(db, "DELETE FROM released_pools WHERE virtual_account_id = $1", [va])?;
                }
                for pool in &applied.released {
                    release_pool(db, account_id, pool, now)?;
                }
                for gone in &applied.removed {
                    let sql = format!(
                        "{INSTANCE} WHERE udi_pid = $1 AND udi_sn = $2 AND virtual_account_id =
                         (SELECT id FROM virtual_accounts WHERE account_id = $3 AND name = $4)"
                    );
                    if let Some(found) = one(db, &sql, params![gone.pid, gone.sn, account_id, gone.pool], instance)? {
                        delete_instance(db, &found)?;
                    }
                }
                exec(
                    db,
                    "UPDATE local_accounts SET acknowledged_sequence = $1, last_sync_at = $2, synced_change = $3,
                     last_attempt_at = NULL, last_sync_error = NULL WHERE id = $4",
                    params![applied.sequence, now.0, covered, local.id],
                )?;
                exec(
                    db,
                    "DELETE FROM sync_changes WHERE id <= (SELECT MIN(synced_change) FROM local_accounts WHERE approved_at IS NOT NULL)",
                    [],
                )?;
                let detail = response_detail(&applied);
                log(db, now, &actor, "local-account.synchronised", Some(account_id), None, &local.name, detail)?;
                local_account_named(db, &local.name)
            })
            .await
    }

    async fn set_sync_settings(
        &self,
        name: &str,
        settings: SyncSettings,
        actor: &str,
        now: Timestamp,
    ) -> Result<LocalAccount> {
        let (name, actor) = (name.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                let local = local_account_named(db, &name)?;
                let mut changed = Vec::new();
                if let Some(days) = settings.interval_days {
                    exec(db, "UPDATE local_accounts SET sync_interval_days = $1 WHERE id = $2", [days, local.id])?;
                    changed.push(format!("scheduled every {days} day(s)"));
                }
                if let Some(url) = &settings.cloud_url {
                    exec(db, "UPDATE local_accounts SET cloud_url = $1 WHERE id = $2", params![url, local.id])?;
                    changed.push(format!("cloud {url}"));
                }
                log(db, now, &actor, "local-account.sync-settings", None, None, &name, changed.join("; "))?;
                local_account_named(db, &name)
            })
            .await
    }

    async fn record_sync_failure(&self, name: &str, error: &str, actor: &str, now: Timestamp) -> Result<LocalAccount> {
        let (name, error, actor) = (name.to_string(), error.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                let local = local_account_named(db, &name)?;
                exec(
                    db,
                    "UPDATE local_accounts SET last_attempt_at = $1, last_sync_error = $2 WHERE id = $3",
                    params![now.0, error, local.id],
                )?;
                log(db, now, &actor, "local-account.sync-failed", None, None, &name, error)?;
                local_account_named(db, &name)
            })
            .await
    }

    async fn released_pool(&self, virtual_account_id: i64) -> Result<Option<String>> {
        self.db
            .read(move |db| {
                one(
                    db,
                    "SELECT v.name FROM released_pools r JOIN virtual_accounts v ON v.id = r.virtual_account_id
                     WHERE r.virtual_account_id = $1",
                    [virtual_account_id],
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn released_pool_of_token(&self, token_hash: &str) -> Result<Option<String>> {
        let token_hash = token_hash.to_string();
        self.db
            .read(move |db| {
                one(
                    db,
                    "SELECT v.name FROM registration_tokens t JOIN released_pools r ON r.virtual_account_id = t.virtual_account_id
                     JOIN virtual_accounts v ON v.id = t.virtual_account_id WHERE t.token_hash = $1",
                    [token_hash],
                    |r| r.get(0),
                )
            })
            .await
    }
}
