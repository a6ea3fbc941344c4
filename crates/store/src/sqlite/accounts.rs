//! Smart accounts and their virtual accounts (pools) (C-1).

use super::events::log;
use super::sql::{all, exec, one, ts, unique_or, R};
use super::tokens::{token, TOKEN};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection, Row};

pub(super) const ACCOUNT: &str = "SELECT id, domain, name, created_at, universal_reservation FROM smart_accounts";

pub(super) const VIRTUAL_ACCOUNT: &str =
    "SELECT id, account_id, name, description, is_default, created_at FROM virtual_accounts";

pub(super) fn account_row(row: &Row) -> R<Account> {
    Ok(Account {
        id: row.get("id")?,
        domain: row.get("domain")?,
        name: row.get("name")?,
        created_at: ts(row, "created_at")?,
        universal_reservation: row.get("universal_reservation")?,
    })
}

pub(super) fn virtual_account_row(row: &Row) -> R<VirtualAccount> {
    Ok(VirtualAccount {
        id: row.get("id")?,
        account_id: row.get("account_id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        is_default: row.get("is_default")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) fn fetch_pool(db: &Connection, id: i64) -> Result<VirtualAccount> {
    one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [id], virtual_account_row)?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {id} does not exist")))
}

pub(super) fn account_of_pool(db: &Connection, virtual_account_id: i64) -> Result<i64> {
    one(db, "SELECT account_id FROM virtual_accounts WHERE id = $1", [virtual_account_id], |r| r.get(0))?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {virtual_account_id} does not exist")))
}

pub(super) async fn create_account(
    store: &SqliteStore,
    domain: &str,
    name: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Account> {
    let (domain, name, actor) = (domain.to_string(), name.to_string(), actor.to_string());
    store.db
        .write(move |db| {
            db.prepare_cached("INSERT INTO smart_accounts (domain, name, created_at) VALUES ($1, $2, $3)")?
                .execute(params![domain, name, now.0])
                .map_err(|e| unique_or(e, || format!("smart account {domain} exists already")))?;
            let id = db.last_insert_rowid();
            exec(
                db,
                "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, TRUE, $4)",
                params![id, DEFAULT_VIRTUAL_ACCOUNT, "Default virtual account", now.0],
            )?;
            let va = db.last_insert_rowid();
            log(db, now, &actor, "account.created", Some(id), None, &domain, format!("smart account '{name}'"))?;
            log(db, now, &actor, "virtual-account.created", Some(id), Some(va), DEFAULT_VIRTUAL_ACCOUNT, String::new())?;
            Ok(Account { id, domain, name, created_at: now, universal_reservation: false })
        })
        .await
}

pub(super) async fn account(store: &SqliteStore, domain: &str) -> Result<Option<Account>> {
    let domain = domain.to_string();
    store.db.read(move |db| one(db, &format!("{ACCOUNT} WHERE domain = $1"), [domain], account_row)).await
}

pub(super) async fn account_by_id(store: &SqliteStore, id: i64) -> Result<Option<Account>> {
    store.db.read(move |db| one(db, &format!("{ACCOUNT} WHERE id = $1"), [id], account_row)).await
}

pub(super) async fn accounts(store: &SqliteStore) -> Result<Vec<Account>> {
    store.db.read(|db| all(db, &format!("{ACCOUNT} ORDER BY domain"), [], account_row)).await
}

pub(super) async fn create_virtual_account(
    store: &SqliteStore,
    acct: &Account,
    name: &str,
    description: &str,
    actor: &str,
    now: Timestamp,
) -> Result<VirtualAccount> {
    let (acct, name, description, actor) = (acct.clone(), name.to_string(), description.to_string(), actor.to_string());
    store.db
        .write(move |db| {
            db.prepare_cached(
                "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, FALSE, $4)",
            )?
            .execute(params![acct.id, name, description, now.0])
            .map_err(|e| unique_or(e, || format!("virtual account '{name}' exists already in {}", acct.domain)))?;
            let id = db.last_insert_rowid();
            log(db, now, &actor, "virtual-account.created", Some(acct.id), Some(id), &name, description.clone())?;
            Ok(VirtualAccount { id, account_id: acct.id, name, description, is_default: false, created_at: now })
        })
        .await
}

pub(super) async fn virtual_account(
    store: &SqliteStore,
    account_id: i64,
    name: &str,
) -> Result<Option<VirtualAccount>> {
    let name = name.to_string();
    store
        .db
        .read(move |db| {
            one(
                db,
                &format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 AND name = $2"),
                params![account_id, name],
                virtual_account_row,
            )
        })
        .await
}

pub(super) async fn virtual_account_by_id(store: &SqliteStore, id: i64) -> Result<Option<VirtualAccount>> {
    store.db.read(move |db| one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [id], virtual_account_row)).await
}

pub(super) async fn virtual_accounts(store: &SqliteStore, account_id: i64) -> Result<Vec<VirtualAccount>> {
    store
        .db
        .read(move |db| {
            all(
                db,
                &format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 ORDER BY is_default DESC, name"),
                [account_id],
                virtual_account_row,
            )
        })
        .await
}

pub(super) async fn all_virtual_accounts(store: &SqliteStore) -> Result<Vec<VirtualAccount>> {
    store.db.read(|db| all(db, &format!("{VIRTUAL_ACCOUNT} ORDER BY id"), [], virtual_account_row)).await
}

pub(super) async fn set_universal_reservation(
    store: &SqliteStore,
    account_id: i64,
    allowed: bool,
    actor: &str,
    now: Timestamp,
) -> Result<Account> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let found = one(db, &format!("{ACCOUNT} WHERE id = $1"), [account_id], account_row)?
                .ok_or_else(|| StoreError::NotFound(format!("smart account {account_id} does not exist")))?;
            exec(
                db,
                "UPDATE smart_accounts SET universal_reservation = $1 WHERE id = $2",
                params![allowed, account_id],
            )?;
            let detail = if allowed { "universal reservation allowed" } else { "universal reservation not allowed" };
            log(
                db,
                now,
                &actor,
                "account.universal-reservation",
                Some(account_id),
                None,
                &found.domain,
                detail.into(),
            )?;
            Ok(Account { universal_reservation: allowed, ..found })
        })
        .await
}

pub(super) async fn delete_virtual_account(
    store: &SqliteStore,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<VirtualAccount> {
    let actor = actor.to_string();
    store.db
        .write(move |db| {
            let va = one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [id], virtual_account_row)?
                .ok_or_else(|| StoreError::NotFound(format!("virtual account {id} does not exist")))?;
            let scalar = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<i64> {
                Ok(db.prepare_cached(sql)?.query_row(args, |r| r.get(0))?)
            };
            let licenses = scalar(
                "SELECT COALESCE(SUM(quantity), 0) FROM licenses WHERE virtual_account_id = $1 AND (end_at IS NULL OR end_at > $2)",
                params![id, now.0],
            )?;
            let instances = scalar("SELECT COUNT(*) FROM instances WHERE virtual_account_id = $1", params![id])?;
            let tokens = all(db, &format!("{TOKEN} WHERE virtual_account_id = $1"), [id], token)?;
            let active_tokens =
                tokens.iter().filter(|t| t.facts().status_at(now) == smartlic_core::TokenStatus::Active).count();
            let reservations = scalar(
                "SELECT COUNT(*) FROM reservations WHERE virtual_account_id = $1 AND status = 'reserved'",
                params![id],
            )?;
            if let Some(refusal) =
                crate::rules::delete_refusal(&va, licenses, instances, active_tokens as u64, reservations)
            {
                return Err(StoreError::Conflict(refusal));
            }
            let expired = exec(db, "DELETE FROM licenses WHERE virtual_account_id = $1", [id])?;
            exec(db, "DELETE FROM registration_tokens WHERE virtual_account_id = $1", [id])?;
            exec(
                db,
                "DELETE FROM reservation_licenses WHERE reservation_id IN (SELECT id FROM reservations WHERE virtual_account_id = $1)",
                [id],
            )?;
            let returned = exec(db, "DELETE FROM reservations WHERE virtual_account_id = $1", [id])?;
            exec(db, "DELETE FROM pool_usage WHERE virtual_account_id = $1", [id])?;
            exec(db, "DELETE FROM alerts WHERE virtual_account_id = $1", [id])?;
            exec(
                db,
                "DELETE FROM access_tokens WHERE principal_id IN (SELECT id FROM principals WHERE virtual_account_id = $1)",
                [id],
            )?;
            let principals = exec(db, "DELETE FROM principals WHERE virtual_account_id = $1", [id])?;
            exec(db, "DELETE FROM virtual_accounts WHERE id = $1", [id])?;
            let detail = crate::rules::deleted_with(
                expired as u64,
                tokens.len() as u64,
                returned as u64,
                principals as u64,
            );
            log(db, now, &actor, "virtual-account.deleted", Some(va.account_id), Some(id), &va.name, detail)?;
            Ok(va)
        })
        .await
}
