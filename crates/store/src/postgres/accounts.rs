//! Smart accounts and their virtual accounts (pools) (C-1).

use super::events::log;
use super::sql::{get, ts, Tx};
use super::tokens::{token, TOKEN};
use super::PostgresStore;
use crate::*;
use tokio_postgres::Row;

pub(super) const ACCOUNT: &str = "SELECT id, domain, name, created_at, universal_reservation FROM smart_accounts";

pub(super) const VIRTUAL_ACCOUNT: &str =
    "SELECT id, account_id, name, description, is_default, created_at FROM virtual_accounts";

pub(super) fn account_row(row: &Row) -> Result<Account> {
    Ok(Account {
        id: get(row, "id")?,
        domain: get(row, "domain")?,
        name: get(row, "name")?,
        created_at: ts(row, "created_at")?,
        universal_reservation: get(row, "universal_reservation")?,
    })
}

pub(super) fn virtual_account_row(row: &Row) -> Result<VirtualAccount> {
    Ok(VirtualAccount {
        id: get(row, "id")?,
        account_id: get(row, "account_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        is_default: get(row, "is_default")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn fetch_pool(tx: &Tx<'_>, id: i64) -> Result<VirtualAccount> {
    tx.one(&format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), &[&id], virtual_account_row)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {id} does not exist")))
}

pub(super) async fn account_of_pool(tx: &Tx<'_>, virtual_account_id: i64) -> Result<i64> {
    tx.value("SELECT account_id FROM virtual_accounts WHERE id = $1", &[&virtual_account_id])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {virtual_account_id} does not exist")))
}

/// Inserts a smart account and its Default pool; answers their ids. A domain taken is a
/// conflict `exists` words.
pub(super) async fn insert_account(
    tx: &Tx<'_>,
    domain: &str,
    name: &str,
    now: Timestamp,
    exists: impl FnOnce() -> String,
) -> Result<(i64, i64)> {
    let id = tx
        .insert_unique(
            "INSERT INTO smart_accounts (domain, name, created_at) VALUES ($1, $2, $3) RETURNING id",
            &[&domain, &name, &now.0],
            exists,
        )
        .await?;
    let va = tx
        .insert(
            "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at)
             VALUES ($1, $2, $3, TRUE, $4) RETURNING id",
            &[&id, &DEFAULT_VIRTUAL_ACCOUNT, &"Default virtual account", &now.0],
        )
        .await?;
    Ok((id, va))
}

pub(super) async fn create_account(
    store: &PostgresStore,
    domain: &str,
    name: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Account> {
    write!(store, |tx| {
        let (id, va) =
            insert_account(&tx, domain, name, now, || format!("smart account {domain} exists already")).await?;
        log(&tx, now, actor, "account.created", Some(id), None, domain, format!("smart account '{name}'")).await?;
        log(&tx, now, actor, "virtual-account.created", Some(id), Some(va), DEFAULT_VIRTUAL_ACCOUNT, String::new())
            .await?;
        Ok(Account { id, domain: domain.into(), name: name.into(), created_at: now, universal_reservation: false })
    })
}

pub(super) async fn account(store: &PostgresStore, domain: &str) -> Result<Option<Account>> {
    read!(store, |tx| tx.one(&format!("{ACCOUNT} WHERE domain = $1"), &[&domain], account_row).await)
}

pub(super) async fn account_by_id(store: &PostgresStore, id: i64) -> Result<Option<Account>> {
    read!(store, |tx| tx.one(&format!("{ACCOUNT} WHERE id = $1"), &[&id], account_row).await)
}

pub(super) async fn accounts(store: &PostgresStore) -> Result<Vec<Account>> {
    read!(store, |tx| tx.all(&format!("{ACCOUNT} ORDER BY domain"), &[], account_row).await)
}

pub(super) async fn create_virtual_account(
    store: &PostgresStore,
    acct: &Account,
    name: &str,
    description: &str,
    actor: &str,
    now: Timestamp,
) -> Result<VirtualAccount> {
    write!(store, |tx| {
        let id = tx
            .insert_unique(
                "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at)
                 VALUES ($1, $2, $3, FALSE, $4) RETURNING id",
                &[&acct.id, &name, &description, &now.0],
                || format!("virtual account '{name}' exists already in {}", acct.domain),
            )
            .await?;
        log(&tx, now, actor, "virtual-account.created", Some(acct.id), Some(id), name, description.into()).await?;
        Ok(VirtualAccount {
            id,
            account_id: acct.id,
            name: name.into(),
            description: description.into(),
            is_default: false,
            created_at: now,
        })
    })
}

pub(super) async fn virtual_account(
    store: &PostgresStore,
    account_id: i64,
    name: &str,
) -> Result<Option<VirtualAccount>> {
    read!(store, |tx| {
        let sql = format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 AND name = $2");
        tx.one(&sql, &[&account_id, &name], virtual_account_row).await
    })
}

pub(super) async fn virtual_account_by_id(store: &PostgresStore, id: i64) -> Result<Option<VirtualAccount>> {
    read!(store, |tx| tx.one(&format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), &[&id], virtual_account_row).await)
}

pub(super) async fn virtual_accounts(store: &PostgresStore, account_id: i64) -> Result<Vec<VirtualAccount>> {
    read!(store, |tx| {
        let sql = format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 ORDER BY is_default DESC, name");
        tx.all(&sql, &[&account_id], virtual_account_row).await
    })
}

pub(super) async fn all_virtual_accounts(store: &PostgresStore) -> Result<Vec<VirtualAccount>> {
    read!(store, |tx| tx.all(&format!("{VIRTUAL_ACCOUNT} ORDER BY id"), &[], virtual_account_row).await)
}

pub(super) async fn set_universal_reservation(
    store: &PostgresStore,
    account_id: i64,
    allowed: bool,
    actor: &str,
    now: Timestamp,
) -> Result<Account> {
    write!(store, |tx| {
        let found = tx
            .one(&format!("{ACCOUNT} WHERE id = $1"), &[&account_id], account_row)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("smart account {account_id} does not exist")))?;
        tx.exec("UPDATE smart_accounts SET universal_reservation = $1 WHERE id = $2", &[&allowed, &account_id]).await?;
        let detail = if allowed { "universal reservation allowed" } else { "universal reservation not allowed" };
        log(&tx, now, actor, "account.universal-reservation", Some(account_id), None, &found.domain, detail.into())
            .await?;
        Ok(Account { universal_reservation: allowed, ..found })
    })
}

pub(super) async fn delete_virtual_account(
    store: &PostgresStore,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<VirtualAccount> {
    write!(store, |tx| {
        let va = tx
            .one(&format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), &[&id], virtual_account_row)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("virtual account {id} does not exist")))?;
        let licenses: i64 = tx
            .value(
                "SELECT COALESCE(SUM(quantity), 0)::BIGINT FROM licenses WHERE virtual_account_id = $1 AND (end_at IS NULL OR end_at > $2)",
                &[&id, &now.0],
            )
            .await?
            .unwrap_or(0);
        let instances: i64 =
            tx.value("SELECT COUNT(*) FROM instances WHERE virtual_account_id = $1", &[&id]).await?.unwrap_or(0);
        let tokens = tx.all(&format!("{TOKEN} WHERE virtual_account_id = $1"), &[&id], token).await?;
        let active_tokens =
            tokens.iter().filter(|t| t.facts().status_at(now) == smartlic_core::TokenStatus::Active).count() as u64;
        let reservations: i64 = tx
            .value("SELECT COUNT(*) FROM reservations WHERE virtual_account_id = $1 AND status = 'reserved'", &[&id])
            .await?
            .unwrap_or(0);
        if let Some(refusal) = crate::rules::delete_refusal(&va, licenses, instances, active_tokens, reservations) {
            return Err(StoreError::Conflict(refusal));
        }
        let expired = tx.exec("DELETE FROM licenses WHERE virtual_account_id = $1", &[&id]).await?;
        tx.exec("DELETE FROM registration_tokens WHERE virtual_account_id = $1", &[&id]).await?;
        tx.exec(
            "DELETE FROM reservation_licenses WHERE reservation_id IN (SELECT id FROM reservations WHERE virtual_account_id = $1)",
            &[&id],
        )
        .await?;
        let returned = tx.exec("DELETE FROM reservations WHERE virtual_account_id = $1", &[&id]).await?;
        tx.exec("DELETE FROM pool_usage WHERE virtual_account_id = $1", &[&id]).await?;
        tx.exec("DELETE FROM alerts WHERE virtual_account_id = $1", &[&id]).await?;
        tx.exec(
            "DELETE FROM access_tokens WHERE principal_id IN (SELECT id FROM principals WHERE virtual_account_id = $1)",
            &[&id],
        )
        .await?;
        let principals = tx.exec("DELETE FROM principals WHERE virtual_account_id = $1", &[&id]).await?;
        tx.exec("DELETE FROM virtual_accounts WHERE id = $1", &[&id]).await?;
        let detail = crate::rules::deleted_with(expired, tokens.len() as u64, returned, principals);
        log(&tx, now, actor, "virtual-account.deleted", Some(va.account_id), Some(id), &va.name, detail).await?;
        Ok(va)
    })
}
