//! Users and API clients (C-2, C-3) and their OAuth2 access tokens.

use super::events::log;
use super::sql::{get, opt_ts, text_column, ts, Tx};
use super::PostgresStore;
use crate::*;
use smartlic_core::Role;
use tokio_postgres::Row;

const PRINCIPAL: &str = "SELECT id, kind, name, login, secret_hash, role, account_id, virtual_account_id, created_at, disabled_at FROM principals";

const ACCESS_TOKEN: &str = "SELECT id, prefix, principal_id, created_at, expires_at FROM access_tokens";

fn principal_row(row: &Row) -> Result<Principal> {
    Ok(Principal {
        id: get(row, "id")?,
        kind: text_column(row, "principals.kind", str::parse)?,
        name: get(row, "name")?,
        login: get(row, "login")?,
        secret_hash: get(row, "secret_hash")?,
        role: text_column(row, "principals.role", |r| Role::parse(r).ok_or("unknown role"))?,
        account_id: get(row, "account_id")?,
        virtual_account_id: get(row, "virtual_account_id")?,
        created_at: ts(row, "created_at")?,
        disabled_at: opt_ts(row, "disabled_at")?,
    })
}

fn access_token(row: &Row) -> Result<AccessToken> {
    Ok(AccessToken {
        id: get(row, "id")?,
        prefix: get(row, "prefix")?,
        principal_id: get(row, "principal_id")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
    })
}

async fn fetch_principal(tx: &Tx<'_>, id: i64) -> Result<Principal> {
    tx.one(&format!("{PRINCIPAL} WHERE id = $1"), &[&id], principal_row)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user or API client {id} does not exist")))
}

/// Ends every live access token of a principal at once; returns how many.
async fn revoke_all_access(tx: &Tx<'_>, principal_id: i64) -> Result<u64> {
    tx.exec("DELETE FROM access_tokens WHERE principal_id = $1", &[&principal_id]).await
}

/// Appends `<kind>.<what>` about a user or API client, named as it is in its account.
async fn log_principal(
    tx: &Tx<'_>,
    now: Timestamp,
    actor: &str,
    p: &Principal,
    what: &str,
    detail: String,
) -> Result<()> {
    let kind = format!("{}.{what}", p.kind.as_str());
    log(tx, now, actor, &kind, p.account_id, p.virtual_account_id, &p.name, detail).await
}

pub(super) async fn create_principal(
    store: &PostgresStore,
    new: NewPrincipal,
    actor: &str,
    now: Timestamp,
) -> Result<Principal> {
    write!(store, |tx| {
        let taken: Option<i32> = tx
            .value(
                "SELECT 1 FROM principals WHERE COALESCE(account_id, 0) = COALESCE($1::BIGINT, 0) AND name = $2",
                &[&new.account_id, &new.name],
            )
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "a user or API client named '{}' exists already in this smart account",
                new.name
            )));
        }
        let id = tx
            .insert_unique(
                "INSERT INTO principals (kind, name, login, secret_hash, role, account_id, virtual_account_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &new.kind.as_str(),
                    &new.name,
                    &new.login,
                    &new.secret_hash,
                    &new.role.as_str(),
                    &new.account_id,
                    &new.virtual_account_id,
                    &now.0,
                ],
                || format!("the login '{}' is taken already", new.login),
            )
            .await?;
        let kind = format!("{}.created", new.kind.as_str());
        let detail = format!("{}, login {}", new.role.as_str(), new.login);
        log(&tx, now, actor, &kind, new.account_id, new.virtual_account_id, &new.name, detail).await?;
        Ok(Principal {
            id,
            kind: new.kind,
            name: new.name.clone(),
            login: new.login.clone(),
            secret_hash: new.secret_hash.clone(),
            role: new.role,
            account_id: new.account_id,
            virtual_account_id: new.virtual_account_id,
            created_at: now,
            disabled_at: None,
        })
    })
}

pub(super) async fn principal(store: &PostgresStore, login: &str) -> Result<Option<Principal>> {
    read!(store, |tx| tx.one(&format!("{PRINCIPAL} WHERE login = $1"), &[&login], principal_row).await)
}

pub(super) async fn principal_by_id(store: &PostgresStore, id: i64) -> Result<Option<Principal>> {
    read!(store, |tx| tx.one(&format!("{PRINCIPAL} WHERE id = $1"), &[&id], principal_row).await)
}

pub(super) async fn principal_named(
    store: &PostgresStore,
    account_id: i64,
    kind: PrincipalKind,
    name: &str,
) -> Result<Option<Principal>> {
    read!(store, |tx| {
        let sql = format!("{PRINCIPAL} WHERE account_id = $1 AND kind = $2 AND name = $3");
        tx.one(&sql, &[&account_id, &kind.as_str(), &name], principal_row).await
    })
}

pub(super) async fn principals(store: &PostgresStore, account_id: Option<i64>) -> Result<Vec<Principal>> {
    read!(store, |tx| match account_id {
        Some(a) => tx.all(&format!("{PRINCIPAL} WHERE account_id = $1 ORDER BY name"), &[&a], principal_row).await,
        None => tx.all(&format!("{PRINCIPAL} ORDER BY name"), &[], principal_row).await,
    })
}

pub(super) async fn set_principal_secret(
    store: &PostgresStore,
    id: i64,
    secret_hash: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Principal> {
    write!(store, |tx| {
        let found = fetch_principal(&tx, id).await?;
        tx.exec("UPDATE principals SET secret_hash = $1 WHERE id = $2", &[&secret_hash, &id]).await?;
        let revoked = revoke_all_access(&tx, id).await?;
        let what = match found.kind {
            PrincipalKind::User => "password-changed",
            PrincipalKind::ApiClient => "secret-rotated",
        };
        log_principal(&tx, now, actor, &found, what, format!("{revoked} live access token(s) revoked")).await?;
        Ok(Principal { secret_hash: Some(secret_hash.into()), ..found })
    })
}

pub(super) async fn set_principal_disabled(
    store: &PostgresStore,
    id: i64,
    disabled: bool,
    actor: &str,
    now: Timestamp,
) -> Result<Principal> {
    write!(store, |tx| {
        let found = fetch_principal(&tx, id).await?;
        let state = if disabled { "disabled" } else { "enabled" };
        if found.disabled_at.is_some() == disabled {
            return Err(StoreError::Conflict(format!("{} '{}' is {state} already", found.kind.as_str(), found.name)));
        }
        let at = disabled.then_some(now);
        tx.exec("UPDATE principals SET disabled_at = $1 WHERE id = $2", &[&at.map(|t| t.0), &id]).await?;
        let revoked = revoke_all_access(&tx, id).await?;
        log_principal(&tx, now, actor, &found, state, format!("{revoked} live access token(s) revoked")).await?;
        Ok(Principal { disabled_at: at, ..found })
    })
}

pub(super) async fn delete_principal(store: &PostgresStore, id: i64, actor: &str, now: Timestamp) -> Result<Principal> {
    write!(store, |tx| {
        let found = fetch_principal(&tx, id).await?;
        let revoked = revoke_all_access(&tx, id).await?;
        tx.exec("DELETE FROM principals WHERE id = $1", &[&id]).await?;
        let detail = format!("login {}; {revoked} live access token(s) revoked", found.login);
        log_principal(&tx, now, actor, &found, "deleted", detail).await?;
        Ok(found)
    })
}

pub(super) async fn insert_access_token(
    store: &PostgresStore,
    token_hash: &str,
    prefix: &str,
    principal_id: i64,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    write!(store, |tx| {
        tx.exec(
            "INSERT INTO access_tokens (token_hash, prefix, principal_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[&token_hash, &prefix, &principal_id, &now.0, &expires_at.0],
        )
        .await
        .map(drop)
    })
}

pub(super) async fn principal_for_access_token(
    store: &PostgresStore,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<Principal>> {
    let sql = format!(
        "{PRINCIPAL} WHERE disabled_at IS NULL
         AND id = (SELECT principal_id FROM access_tokens WHERE token_hash = $1 AND expires_at > $2)"
    );
    read!(store, |tx| tx.one(&sql, &[&token_hash, &now.0], principal_row).await)
}

pub(super) async fn access_tokens(
    store: &PostgresStore,
    filter: AccessTokenFilter,
    now: Timestamp,
) -> Result<Vec<AccessToken>> {
    let live = format!("{ACCESS_TOKEN} WHERE expires_at > $1");
    let owners = "principal_id IN (SELECT id FROM principals WHERE";
    read!(store, |tx| match &filter {
        AccessTokenFilter::Account(a) => {
            let sql = format!("{live} AND {owners} account_id = $2) ORDER BY id");
            tx.all(&sql, &[&now.0, a], access_token).await
        }
        AccessTokenFilter::Operators => {
            let sql = format!("{live} AND {owners} account_id IS NULL) ORDER BY id");
            tx.all(&sql, &[&now.0], access_token).await
        }
        AccessTokenFilter::Id(id) => tx.all(&format!("{live} AND id = $2"), &[&now.0, id], access_token).await,
        AccessTokenFilter::Hash(h) => tx.all(&format!("{live} AND token_hash = $2"), &[&now.0, h], access_token).await,
    })
}

pub(super) async fn revoke_access_token(
    store: &PostgresStore,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<AccessToken> {
    write!(store, |tx| {
        let found = tx
            .one(&format!("{ACCESS_TOKEN} WHERE id = $1 AND expires_at > $2"), &[&id, &now.0], access_token)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("access token {id} is not live (expired, revoked or unknown)"))
            })?;
        tx.exec("DELETE FROM access_tokens WHERE id = $1", &[&id]).await?;
        let owner = fetch_principal(&tx, found.principal_id).await?;
        let detail = format!("access token {id} ({}…) of {} revoked", found.prefix, owner.login);
        log_principal(&tx, now, actor, &owner, "token-revoked", detail).await?;
        Ok(found)
    })
}
