//! [`SatelliteStore`] on PostgreSQL, a satellite's side of the synchronisation (S-2, S-3): the
//! cloud's approval imported, requests made and read, responses applied. The rules are shared
//! with SQLite (`rules::sync`); only the SQL is here.

use super::accounts::insert_account;
use super::events::log;
use super::instances::{delete_instance, instance_row, INSTANCE};
use super::licenses::insert_license;
use super::satellite::local_account_named;
use super::satellite_cloud::usage_columns;
use super::sql::{get, ts, Tx};
use super::PostgresStore;
use crate::rules::sync::*;
use crate::satellite::*;
use crate::{NewLicense, Result, StoreError, DEFAULT_VIRTUAL_ACCOUNT};
use smartlic_core::Timestamp;
use std::sync::mpsc::SyncSender;
use tokio_postgres::Row;

async fn account_id_of(tx: &Tx<'_>, domain: &str) -> Result<i64> {
    tx.value("SELECT id FROM smart_accounts WHERE domain = $1", &[&domain])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("smart account {domain} does not exist on this satellite")))
}

async fn add_pool(tx: &Tx<'_>, account_id: i64, pool: &MirroredPool, now: Timestamp) -> Result<i64> {
    tx.insert(
        "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at)
         VALUES ($1, $2, $3, FALSE, $4) RETURNING id",
        &[&account_id, &pool.name, &pool.description, &now.0],
    )
    .await
}

/// Stores `l` as a purchase record of the local pool `va`.
async fn add_license(tx: &Tx<'_>, va: i64, l: &NewLicense, now: Timestamp) -> Result<()> {
    insert_license(tx, NewLicense { virtual_account_id: va, ..l.clone() }, now).await.map(drop)
}

/// Makes the pool's purchase records those of `licenses` (see [`replaced_licenses`]).
async fn replace_licenses(tx: &Tx<'_>, va: i64, licenses: &[NewLicense], now: Timestamp) -> Result<()> {
    let existing = tx
        .all(
            "SELECT id, tag, sku, quantity, kind, start_at, end_at, subscription_id FROM licenses WHERE virtual_account_id = $1",
            &[&va],
            |r| Ok((get(r, 0)?, (get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?, get(r, 5)?, get(r, 6)?, get(r, 7)?))),
        )
        .await?;
    let (added, gone) = replaced_licenses(existing, licenses);
    for l in added {
        add_license(tx, va, l, now).await?;
    }
    for id in gone {
        tx.exec("DELETE FROM licenses WHERE id = $1", &[&id]).await?;
    }
    Ok(())
}

/// The cloud reassigned the pool to another manager: its instances go, their usage with them,
/// and it serves no device until the cloud gives it back.
async fn release_pool(tx: &Tx<'_>, account_id: i64, pool: &str, now: Timestamp) -> Result<()> {
    let sql = "SELECT id FROM virtual_accounts WHERE account_id = $1 AND name = $2";
    let Some(va) = tx.value::<i64>(sql, &[&account_id, &pool]).await? else { return Ok(()) };
    for found in tx.all(&format!("{INSTANCE} WHERE virtual_account_id = $1"), &[&va], instance_row).await? {
        delete_instance(tx, &found).await?;
    }
    tx.exec(
        "INSERT INTO released_pools (virtual_account_id, released_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&va, &now.0],
    )
    .await?;
    Ok(())
}

pub(super) async fn approve_local_account(
    store: &PostgresStore,
    approval: LocalApproval,
    actor: &str,
    now: Timestamp,
) -> Result<LocalAccount> {
    write!(store, |tx| {
        let local = local_account_named(&tx, &approval.local_account).await?;
        refuse_approved_local(&local)?;
        // The mirrored smart account holds the granted pools only; its Default pool is created
        // as every smart account's is, and is one of them when granted.
        let exists = || format!("smart account {} exists already on this satellite", local.domain);
        let (account_id, default_pool) =
            insert_account(&tx, &local.domain, &approval.smart_account_name, now, exists).await?;
        for pool in &approval.pools {
            let va = match pool.name == DEFAULT_VIRTUAL_ACCOUNT {
                true => default_pool,
                false => add_pool(&tx, account_id, pool, now).await?,
            };
            for l in &pool.licenses {
                add_license(&tx, va, l, now).await?;
            }
        }
        tx.exec(
            "UPDATE local_accounts SET cloud_satellite_id = $1, approved_at = $2, certificate = $3,
             certificate_expires_at = $4, cloud_ca = $5 WHERE id = $6",
            &[
                &approval.cloud_satellite_id,
                &now.0,
                &approval.certificate,
                &approval.certificate_expires_at.0,
                &approval.cloud_ca,
                &local.id,
            ],
        )
        .await?;
        let detail = approval_detail(&approval);
        log(&tx, now, actor, "local-account.approved", Some(account_id), None, &local.name, detail).await?;
        local_account_named(&tx, &local.name).await
    })
}

/// Records a request. Its `last_change` (the change log's newest row it covers) must name only
/// changes committed before the request's instances are read: identities are handed out before
/// their transactions commit, so the change log is locked first (SHARE: concurrent changes end,
/// and later ones wait the few statements of this transaction), before its snapshot is taken.
pub(super) async fn begin_sync(store: &PostgresStore, name: &str, full: bool, now: Timestamp) -> Result<SyncDraft> {
    write!(store, |tx| {
        tx.exec("LOCK TABLE sync_changes IN SHARE MODE", &[]).await?;
        let local = local_account_named(&tx, name).await?;
        refuse_unapproved_local(&local)?;
        let last_change: i64 =
            tx.value("SELECT COALESCE(MAX(id), 0)::BIGINT FROM sync_changes", &[]).await?.unwrap_or(0);
        let sequence = local.sync_sequence + 1;
        tx.exec(
            "INSERT INTO sync_requests (local_account_id, sequence, \"full\", created_at, last_change) VALUES ($1, $2, $3, $4, $5)",
            &[&local.id, &sequence, &full, &now.0, &last_change],
        )
        .await?;
        tx.exec("UPDATE local_accounts SET sync_sequence = $1 WHERE id = $2", &[&sequence, &local.id]).await?;
        let acknowledges = local.acknowledged_sequence;
        let local = local_account_named(&tx, name).await?;
        Ok(SyncDraft { local, sequence, acknowledges })
    })
}

/// The columns both reads of a request select, from `i` (instances) and `v` (its pool), after
/// what names the UDI; usage is empty when released.
const LINE: &str = "i.hostname, i.last_contact_at,
    ARRAY(SELECT u.tag FROM instance_usage u WHERE u.instance_id = i.id AND NOT i.usage_released ORDER BY u.tag) AS tags,
    ARRAY(SELECT u.count FROM instance_usage u WHERE u.instance_id = i.id AND NOT i.usage_released ORDER BY u.tag) AS counts";

/// Every instance of the smart account's pools served, from the key (pool, PID, SN) `$3..$5`
/// on unless `$2`: a page of [`SYNC_PART`] rows.
fn every_instance() -> String {
    format!(
        "SELECT v.name AS pool, i.udi_pid, i.udi_sn, {LINE} FROM instances i JOIN virtual_accounts v ON v.id = i.virtual_account_id
         WHERE v.account_id = $1 AND v.id NOT IN (SELECT virtual_account_id FROM released_pools)
         AND ($2::BOOLEAN OR (v.name, i.udi_pid, i.udi_sn) > ($3, $4, $5))
         ORDER BY v.name, i.udi_pid, i.udi_sn LIMIT {SYNC_PART}"
    )
}

/// The UDIs the change log names after `$6`, as [`every_instance`] pages them: with the
/// instance, or without when it is gone from the pool.
fn changed_instances() -> String {
    format!(
        "SELECT v.name AS pool, c.udi_pid, c.udi_sn, {LINE}
         FROM (SELECT DISTINCT virtual_account_id, udi_pid, udi_sn FROM sync_changes WHERE id > $6) c
         JOIN virtual_accounts v ON v.id = c.virtual_account_id
         LEFT JOIN instances i ON i.virtual_account_id = c.virtual_account_id AND i.udi_pid = c.udi_pid AND i.udi_sn = c.udi_sn
         WHERE v.account_id = $1 AND v.id NOT IN (SELECT virtual_account_id FROM released_pools)
         AND ($2::BOOLEAN OR (v.name, c.udi_pid, c.udi_sn) > ($3, $4, $5))
         ORDER BY v.name, c.udi_pid, c.udi_sn LIMIT {SYNC_PART}"
    )
}

/// A line of a request: its key (pool, PID, SN) and what it reports.
fn request_line(r: &Row) -> Result<((String, String, String), Reported)> {
    let key: (String, String, String) = (get(r, "pool")?, get(r, "udi_pid")?, get(r, "udi_sn")?);
    let line = match get::<Option<String>>(r, "hostname")? {
        None => Reported::Removed(key.1.clone(), key.2.clone()),
        Some(hostname) => Reported::Instance(MirroredInstance {
            pid: key.1.clone(),
            sn: key.2.clone(),
            hostname,
            last_contact_at: ts(r, "last_contact_at")?,
            usage: usage_columns(r)?,
        }),
    };
    Ok((key, line))
}

/// Hands a part to the request's writer, waiting off the async threads while it has no room.
async fn send(out: &SyncSender<PoolInstances>, part: PoolInstances) -> Result<()> {
    let out = out.clone();
    tokio::task::spawn_blocking(move || out.send(part))
        .await
        .map_err(|e| StoreError::Database(format!("sending a part of the request: {e}")))?
        .map_err(|_| writer_stopped())
}

/// Reads a request's lines a page at a time from one snapshot (the read transaction), and sends
/// them in parts.
pub(super) async fn sync_instances(
    store: &PostgresStore,
    name: &str,
    full: bool,
    parts: SyncSender<PoolInstances>,
) -> Result<()> {
    let (every, changed) = (every_instance(), changed_instances());
    read!(store, |tx| {
        let local = local_account_named(&tx, name).await?;
        let account_id = account_id_of(&tx, &local.domain).await?;
        let since: i64 =
            tx.value("SELECT synced_change FROM local_accounts WHERE id = $1", &[&local.id]).await?.unwrap_or(0);
        let mut cutter = PartCutter::default();
        let mut after: Option<(String, String, String)> = None;
        loop {
            let (first, (pool, pid, sn)) = (after.is_none(), after.clone().unwrap_or_default());
            let page = match full {
                true => tx.all(&every, &[&account_id, &first, &pool, &pid, &sn], request_line).await?,
                false => tx.all(&changed, &[&account_id, &first, &pool, &pid, &sn, &since], request_line).await?,
            };
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for ((pool, _, _), line) in page {
                if let Some(part) = cutter.add(&pool, line) {
                    send(&parts, part).await?;
                }
            }
        }
        match cutter.finish() {
            Some(part) => send(&parts, part).await,
            None => Ok(()),
        }
    })
}

pub(super) async fn apply_sync_response(
    store: &PostgresStore,
    applied: AppliedSync,
    actor: &str,
    now: Timestamp,
) -> Result<LocalAccount> {
    write!(store, |tx| {
        let local = local_account_named(&tx, &applied.local_account).await?;
        refuse_old("response", applied.sequence, local.acknowledged_sequence)?;
        let covered: i64 = tx
            .value(
                "SELECT last_change FROM sync_requests WHERE local_account_id = $1 AND sequence = $2",
                &[&local.id, &applied.sequence],
            )
            .await?
            .ok_or_else(|| unknown_request(applied.sequence, &local))?;
        let account_id = account_id_of(&tx, &local.domain).await?;
        for pool in &applied.pools {
            let sql = "SELECT id FROM virtual_accounts WHERE account_id = $1 AND name = $2";
            let va = match tx.value::<i64>(sql, &[&account_id, &pool.name]).await? {
                Some(va) => va,
                None => add_pool(&tx, account_id, pool, now).await?,
            };
            replace_licenses(&tx, va, &pool.licenses, now).await?;
            tx.exec("DELETE FROM released_pools WHERE virtual_account_id = $1", &[&va]).await?;
        }
        for pool in &applied.released {
            release_pool(&tx, account_id, pool, now).await?;
        }
        for gone in &applied.removed {
            let sql = format!(
                "{INSTANCE} WHERE udi_pid = $1 AND udi_sn = $2 AND virtual_account_id =
                 (SELECT id FROM virtual_accounts WHERE account_id = $3 AND name = $4)"
            );
            if let Some(found) = tx.one(&sql, &[&gone.pid, &gone.sn, &account_id, &gone.pool], instance_row).await? {
                delete_instance(&tx, &found).await?;
            }
        }
        tx.exec(
            "UPDATE local_accounts SET acknowledged_sequence = $1, last_sync_at = $2, synced_change = $3,
             last_attempt_at = NULL, last_sync_error = NULL WHERE id = $4",
            &[&applied.sequence, &now.0, &covered, &local.id],
        )
        .await?;
        tx.exec(
            "DELETE FROM sync_changes WHERE id <= (SELECT MIN(synced_change) FROM local_accounts WHERE approved_at IS NOT NULL)",
            &[],
        )
        .await?;
        let detail = response_detail(&applied);
        log(&tx, now, actor, "local-account.synchronised", Some(account_id), None, &local.name, detail).await?;
        local_account_named(&tx, &local.name).await
    })
}
