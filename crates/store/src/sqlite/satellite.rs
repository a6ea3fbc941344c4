//! [`SatelliteStore`] on SQLite: satellites in the cloud, local accounts on a satellite.

use super::{all, exec, log, one, ts, unique_or, SqliteStore, R};
use crate::satellite::*;
use crate::{Result, StoreError, DEFAULT_VIRTUAL_ACCOUNT};
use rusqlite::{params, Connection, Row};
use smartlic_core::Timestamp;

const SATELLITE: &str = "SELECT id, account_id, name, local_account, manager_id, key_algorithm, public_key, csr, requested_at, requested_by, approved_at, certificate_expires_at, answer FROM satellites";
const LOCAL_ACCOUNT: &str = "SELECT id, name, domain, created_at, cloud_satellite_id, cloud_url, approved_at, certificate, certificate_expires_at, cloud_ca FROM local_accounts";

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
                if local.approved_at.is_some() {
                    return Err(StoreError::Conflict(format!("local account '{}' is approved already", local.name)));
                }
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
                        exec(
                            db,
                            "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                            params![
                                va,
                                l.tag,
                                l.sku,
                                l.quantity,
                                l.term.kind.as_str(),
                                l.term.start.map(|t| t.0),
                                l.term.end.map(|t| t.0),
                                l.subscription_id,
                                now.0
                            ],
                        )?;
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
                let pools: Vec<&str> = approval.pools.iter().map(|p| p.name.as_str()).collect();
                let detail = format!("approved by the cloud: serves {}", pools.join(", "));
                log(db, now, &actor, "local-account.approved", Some(account_id), None, &local.name, detail)?;
                local_account_named(db, &local.name)
            })
            .await
    }
}
