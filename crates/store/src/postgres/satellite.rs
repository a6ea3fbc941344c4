//! [`SatelliteStore`] on PostgreSQL: satellites' registrations and approval in the cloud, local
//! accounts' records on a satellite. The synchronisation is in `satellite_cloud` (requests
//! applied, pools reassigned) and `satellite_local` (requests made, responses applied).

use super::events::log;
use super::sql::{get, opt_ts, ts, Args, Tx};
use super::PostgresStore;
use crate::satellite::*;
use crate::{Result, StoreError};
use smartlic_core::Timestamp;
use tokio_postgres::Row;

const SATELLITE: &str = "SELECT id, account_id, name, local_account, manager_id, key_algorithm, public_key, csr, requested_at, requested_by, approved_at, certificate_expires_at, answer, sync_sequence, last_sync_at, sync_interval_days FROM satellites";
const LOCAL_ACCOUNT: &str = "SELECT id, name, domain, created_at, cloud_satellite_id, cloud_url, approved_at, certificate, certificate_expires_at, cloud_ca, sync_sequence, acknowledged_sequence, last_sync_at, sync_interval_days, last_attempt_at, last_sync_error FROM local_accounts";

fn satellite_row(row: &Row) -> Result<Satellite> {
    Ok(Satellite {
        id: get(row, "id")?,
        account_id: get(row, "account_id")?,
        name: get(row, "name")?,
        local_account: get(row, "local_account")?,
        manager_id: get(row, "manager_id")?,
        key_algorithm: get(row, "key_algorithm")?,
        public_key: get(row, "public_key")?,
        csr: get(row, "csr")?,
        requested_at: ts(row, "requested_at")?,
        requested_by: get(row, "requested_by")?,
        approved_at: opt_ts(row, "approved_at")?,
        certificate_expires_at: opt_ts(row, "certificate_expires_at")?,
        answer: get(row, "answer")?,
        pools: Vec::new(),
        pending_moves: Vec::new(),
        sync_sequence: get(row, "sync_sequence")?,
        last_sync_at: opt_ts(row, "last_sync_at")?,
        sync_interval_days: get(row, "sync_interval_days")?,
    })
}

fn local_account_row(row: &Row) -> Result<LocalAccount> {
    Ok(LocalAccount {
        id: get(row, "id")?,
        name: get(row, "name")?,
        domain: get(row, "domain")?,
        created_at: ts(row, "created_at")?,
        cloud_satellite_id: get(row, "cloud_satellite_id")?,
        cloud_url: get(row, "cloud_url")?,
        approved_at: opt_ts(row, "approved_at")?,
        certificate: get(row, "certificate")?,
        certificate_expires_at: opt_ts(row, "certificate_expires_at")?,
        cloud_ca: get(row, "cloud_ca")?,
        sync_sequence: get(row, "sync_sequence")?,
        acknowledged_sequence: get(row, "acknowledged_sequence")?,
        last_sync_at: opt_ts(row, "last_sync_at")?,
        sync_interval_days: get(row, "sync_interval_days")?,
        last_attempt_at: opt_ts(row, "last_attempt_at")?,
        last_sync_error: get(row, "last_sync_error")?,
    })
}

fn pending_move(r: &Row) -> Result<PendingMove> {
    Ok(PendingMove { pool: get(r, 0)?, to: get(r, 1)?, requested_at: Timestamp(get(r, 2)?), requested_by: get(r, 3)? })
}

/// The satellites a query finds, each with the names of the pools it serves.
pub(super) async fn satellites_where(tx: &Tx<'_>, filter: &str, args: Args<'_>) -> Result<Vec<Satellite>> {
    let mut found = tx.all(&format!("{SATELLITE} {filter} ORDER BY id"), args, satellite_row).await?;
    for s in &mut found {
        s.pools = tx
            .all(
                "SELECT v.name FROM satellite_pools p JOIN virtual_accounts v ON v.id = p.virtual_account_id
                 WHERE p.satellite_id = $1 ORDER BY v.name",
                &[&s.id],
                |r| get(r, 0),
            )
            .await?;
        s.pending_moves = tx
            .all(
                "SELECT v.name, t.name, m.requested_at, m.requested_by FROM pool_moves m
                 JOIN virtual_accounts v ON v.id = m.virtual_account_id LEFT JOIN satellites t ON t.id = m.to_satellite_id
                 WHERE m.from_satellite_id = $1 ORDER BY v.name",
                &[&s.id],
                pending_move,
            )
            .await?;
    }
    Ok(found)
}

pub(super) async fn satellite_by_id(tx: &Tx<'_>, id: i64) -> Result<Option<Satellite>> {
    Ok(satellites_where(tx, "WHERE id = $1", &[&id]).await?.pop())
}

pub(super) async fn local_account_named(tx: &Tx<'_>, name: &str) -> Result<LocalAccount> {
    tx.one(&format!("{LOCAL_ACCOUNT} WHERE name = $1"), &[&name], local_account_row)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("local account '{name}' does not exist")))
}

pub(super) async fn create_satellite(
    store: &PostgresStore,
    new: NewSatellite,
    actor: &str,
    now: Timestamp,
) -> Result<Satellite> {
    write!(store, |tx| {
        let same = "WHERE account_id = $1 AND manager_id = $2 AND local_account = $3";
        if let Some(existing) =
            satellites_where(&tx, same, &[&new.account_id, &new.manager_id, &new.local_account]).await?.pop()
        {
            if existing.public_key == new.public_key {
                return Ok(existing);
            }
            return Err(StoreError::Conflict(format!(
                "satellite {} registered local account '{}' already with another key (satellite id {})",
                new.name, new.local_account, existing.id
            )));
        }
        let id = tx
            .insert(
                "INSERT INTO satellites (account_id, name, local_account, manager_id, key_algorithm, public_key, csr,
                 status, requested_at, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9) RETURNING id",
                &[
                    &new.account_id,
                    &new.name,
                    &new.local_account,
                    &new.manager_id,
                    &new.key_algorithm,
                    &new.public_key,
                    &new.csr,
                    &now.0,
                    &actor,
                ],
            )
            .await?;
        let detail = format!("local account '{}', manager {}", new.local_account, new.manager_id);
        log(&tx, now, actor, "satellite.registered", Some(new.account_id), None, &new.name, detail).await?;
        satellite_by_id(&tx, id).await?.ok_or_else(|| StoreError::Database("satellite vanished".into()))
    })
}

pub(super) async fn satellites(store: &PostgresStore) -> Result<Vec<Satellite>> {
    read!(store, |tx| satellites_where(&tx, "", &[]).await)
}

pub(super) async fn satellite(store: &PostgresStore, id: i64) -> Result<Option<Satellite>> {
    read!(store, |tx| satellite_by_id(&tx, id).await)
}

pub(super) async fn approve_satellite(
    store: &PostgresStore,
    approval: SatelliteApproval,
    actor: &str,
    now: Timestamp,
) -> Result<Satellite> {
    write!(store, |tx| {
        let id = approval.satellite_id;
        let sat = satellite_by_id(&tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("satellite {id} does not exist")))?;
        if sat.approved_at.is_some() {
            return Err(StoreError::Conflict(format!("satellite {id} ({}) is approved already", sat.name)));
        }
        for va in &approval.virtual_account_ids {
            let serving = "SELECT s.name, v.name FROM satellite_pools p JOIN satellites s ON s.id = p.satellite_id
                           JOIN virtual_accounts v ON v.id = p.virtual_account_id WHERE p.virtual_account_id = $1";
            let found: Option<(String, String)> = tx.one(serving, &[va], |r| Ok((get(r, 0)?, get(r, 1)?))).await?;
            if let Some((other, pool)) = found {
                return Err(StoreError::Conflict(format!(
                    "virtual account '{pool}' is served by satellite {other} already: a pool has one manager"
                )));
            }
            tx.exec("INSERT INTO satellite_pools (virtual_account_id, satellite_id) VALUES ($1, $2)", &[va, &id])
                .await?;
        }
        tx.exec(
            "UPDATE satellites SET status = 'approved', approved_at = $1, certificate_expires_at = $2, answer = $3 WHERE id = $4",
            &[&now.0, &approval.certificate_expires_at.0, &approval.answer, &id],
        )
        .await?;
        let approved =
            satellite_by_id(&tx, id).await?.ok_or_else(|| StoreError::Database("satellite vanished".into()))?;
        let detail =
            format!("serves {}; certificate until {}", approved.pools.join(", "), approval.certificate_expires_at);
        log(&tx, now, actor, "satellite.approved", Some(sat.account_id), None, &sat.name, detail).await?;
        Ok(approved)
    })
}

pub(super) async fn satellite_serving_pool(
    store: &PostgresStore,
    virtual_account_id: i64,
) -> Result<Option<Satellite>> {
    let filter = "WHERE id = (SELECT satellite_id FROM satellite_pools WHERE virtual_account_id = $1)";
    read!(store, |tx| Ok(satellites_where(&tx, filter, &[&virtual_account_id]).await?.pop()))
}

pub(super) async fn satellite_serving_token(store: &PostgresStore, token_hash: &str) -> Result<Option<Satellite>> {
    let filter = "WHERE id = (SELECT p.satellite_id FROM satellite_pools p JOIN registration_tokens t
                  ON t.virtual_account_id = p.virtual_account_id WHERE t.token_hash = $1)";
    read!(store, |tx| Ok(satellites_where(&tx, filter, &[&token_hash]).await?.pop()))
}

pub(super) async fn create_local_account(
    store: &PostgresStore,
    name: &str,
    domain: &str,
    actor: &str,
    now: Timestamp,
) -> Result<LocalAccount> {
    write!(store, |tx| {
        tx.insert_unique(
            "INSERT INTO local_accounts (name, domain, created_at) VALUES ($1, $2, $3) RETURNING id",
            &[&name, &domain, &now.0],
            || format!("a local account named '{name}' or for {domain} exists already"),
        )
        .await?;
        log(&tx, now, actor, "local-account.created", None, None, name, format!("mirrors smart account {domain}"))
            .await?;
        local_account_named(&tx, name).await
    })
}

pub(super) async fn local_accounts(store: &PostgresStore) -> Result<Vec<LocalAccount>> {
    read!(store, |tx| tx.all(&format!("{LOCAL_ACCOUNT} ORDER BY name"), &[], local_account_row).await)
}

pub(super) async fn local_account(store: &PostgresStore, name: &str) -> Result<Option<LocalAccount>> {
    read!(store, |tx| tx.one(&format!("{LOCAL_ACCOUNT} WHERE name = $1"), &[&name], local_account_row).await)
}

pub(super) async fn local_account_sent(
    store: &PostgresStore,
    name: &str,
    cloud_satellite_id: i64,
    cloud_url: &str,
    actor: &str,
    now: Timestamp,
) -> Result<LocalAccount> {
    write!(store, |tx| {
        tx.exec(
            "UPDATE local_accounts SET cloud_satellite_id = $1, cloud_url = $2 WHERE name = $3",
            &[&cloud_satellite_id, &cloud_url, &name],
        )
        .await?;
        let detail = format!("sent to {cloud_url} as satellite {cloud_satellite_id}");
        log(&tx, now, actor, "local-account.registration-sent", None, None, name, detail).await?;
        local_account_named(&tx, name).await
    })
}

pub(super) async fn set_sync_settings(
    store: &PostgresStore,
    name: &str,
    settings: SyncSettings,
    actor: &str,
    now: Timestamp,
) -> Result<LocalAccount> {
    write!(store, |tx| {
        let local = local_account_named(&tx, name).await?;
        let mut changed = Vec::new();
        if let Some(days) = settings.interval_days {
            tx.exec("UPDATE local_accounts SET sync_interval_days = $1 WHERE id = $2", &[&days, &local.id]).await?;
            changed.push(format!("scheduled every {days} day(s)"));
        }
        if let Some(url) = &settings.cloud_url {
            tx.exec("UPDATE local_accounts SET cloud_url = $1 WHERE id = $2", &[url, &local.id]).await?;
            changed.push(format!("cloud {url}"));
        }
        log(&tx, now, actor, "local-account.sync-settings", None, None, name, changed.join("; ")).await?;
        local_account_named(&tx, name).await
    })
}

pub(super) async fn record_sync_failure(
    store: &PostgresStore,
    name: &str,
    error: &str,
    actor: &str,
    now: Timestamp,
) -> Result<LocalAccount> {
    write!(store, |tx| {
        let local = local_account_named(&tx, name).await?;
        tx.exec(
            "UPDATE local_accounts SET last_attempt_at = $1, last_sync_error = $2 WHERE id = $3",
            &[&now.0, &error, &local.id],
        )
        .await?;
        log(&tx, now, actor, "local-account.sync-failed", None, None, name, error.into()).await?;
        local_account_named(&tx, name).await
    })
}

pub(super) async fn released_pool(store: &PostgresStore, virtual_account_id: i64) -> Result<Option<String>> {
    read!(store, |tx| {
        tx.value(
            "SELECT v.name FROM released_pools r JOIN virtual_accounts v ON v.id = r.virtual_account_id
             WHERE r.virtual_account_id = $1",
            &[&virtual_account_id],
        )
        .await
    })
}

pub(super) async fn released_pool_of_token(store: &PostgresStore, token_hash: &str) -> Result<Option<String>> {
    read!(store, |tx| {
        tx.value(
            "SELECT v.name FROM registration_tokens t JOIN released_pools r ON r.virtual_account_id = t.virtual_account_id
             JOIN virtual_accounts v ON v.id = t.virtual_account_id WHERE t.token_hash = $1",
            &[&token_hash],
        )
        .await
    })
}
