//! Users and API clients (C-2, C-3) and their OAuth2 access tokens.

use super::events::log;
use super::sql::{all, exec, one, opt_ts, text_column, ts, unique_or, R};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection, Row};
use smartlic_core::Role;

const PRINCIPAL: &str = "SELECT id, kind, name, login, secret_hash, role, account_id, virtual_account_id, created_at, disabled_at FROM principals";

const ACCESS_TOKEN: &str = "SELECT id, prefix, principal_id, created_at, expires_at FROM access_tokens";

fn principal_row(row: &Row) -> R<Principal> {
    Ok(Principal {
        id: row.get("id")?,
        kind: text_column(row, "principals.kind", str::parse)?,
        name: row.get("name")?,
        login: row.get("login")?,
        secret_hash: row.get("secret_hash")?,
        role: text_column(row, "principals.role", |r| Role::parse(r).ok_or("unknown role"))?,
        account_id: row.get("account_id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        created_at: ts(row, "created_at")?,
        disabled_at: opt_ts(row, "disabled_at")?,
    })
}

fn access_token(row: &Row) -> R<AccessToken> {
    Ok(AccessToken {
        id: row.get("id")?,
        prefix: row.get("prefix")?,
        principal_id: row.get("principal_id")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
    })
}

fn fetch_principal(db: &Connection, id: i64) -> Result<Principal> {
    one(db, &format!("{PRINCIPAL} WHERE id = $1"), [id], principal_row)?
        .ok_or_else(|| StoreError::NotFound(format!("user or API client {id} does not exist")))
}

/// Ends every live access token of a principal at once; returns how many.
fn revoke_all_access(db: &Connection, principal_id: i64) -> Result<usize> {
    exec(db, "DELETE FROM access_tokens WHERE principal_id = $1", [principal_id])
}

/// Appends `<kind>.<what>` about a user or API client, named as it is in its account.
fn log_principal(
    db: &Connection,
    now: Timestamp,
    actor: &str,
    p: &Principal,
    what: &str,
    detail: String,
) -> Result<()> {
    let kind = format!("{}.{what}", p.kind.as_str());
    log(db, now, actor, &kind, p.account_id, p.virtual_account_id, &p.name, detail)
}

pub(super) async fn create_principal(
    store: &SqliteStore,
    new: NewPrincipal,
    actor: &str,
    now: Timestamp,
) -> Result<Principal> {
    let actor = actor.to_string();
    store.db
        .write(move |db| {
            let taken = one(
                db,
                "SELECT 1 FROM principals WHERE COALESCE(account_id, 0) = COALESCE($1, 0) AND name = $2",
                params![new.account_id, new.name],
                |r| r.get::<_, i64>(0),
            )?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a user or API client named '{}' exists already in this smart account",
                    new.name
                )));
            }
            db.prepare_cached(
                "INSERT INTO principals (kind, name, login, secret_hash, role, account_id, virtual_account_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )?
            .execute(params![
                new.kind.as_str(),
                new.name,
                new.login,
                new.secret_hash,
                new.role.as_str(),
                new.account_id,
                new.virtual_account_id,
                now.0
            ])
            .map_err(|e| unique_or(e, || format!("the login '{}' is taken already", new.login)))?;
            let id = db.last_insert_rowid();
            let kind = format!("{}.created", new.kind.as_str());
            let detail = format!("{}, login {}", new.role.as_str(), new.login);
            log(db, now, &actor, &kind, new.account_id, new.virtual_account_id, &new.name, detail)?;
            Ok(Principal {
                id,
                kind: new.kind,
                name: new.name,
                login: new.login,
                secret_hash: new.secret_hash,
                role: new.role,
                account_id: new.account_id,
                virtual_account_id: new.virtual_account_id,
                created_at: now,
                disabled_at: None,
            })
        })
        .await
}

pub(super) async fn principal(store: &SqliteStore, login: &str) -> Result<Option<Principal>> {
    let login = login.to_string();
    store.db.read(move |db| one(db, &format!("{PRINCIPAL} WHERE login = $1"), [login], principal_row)).await
}

pub(super) async fn principal_by_id(store: &SqliteStore, id: i64) -> Result<Option<Principal>> {
    store.db.read(move |db| one(db, &format!("{PRINCIPAL} WHERE id = $1"), [id], principal_row)).await
}

pub(super) async fn principal_named(
    store: &SqliteStore,
    account_id: i64,
    kind: PrincipalKind,
    name: &str,
) -> Result<Option<Principal>> {
    let name = name.to_string();
    store
        .db
        .read(move |db| {
            let sql = format!("{PRINCIPAL} WHERE account_id = $1 AND kind = $2 AND name = $3");
            one(db, &sql, params![account_id, kind.as_str(), name], principal_row)
        })
        .await
}

pub(super) async fn principals(store: &SqliteStore, account_id: Option<i64>) -> Result<Vec<Principal>> {
    store
        .db
        .read(move |db| match account_id {
            Some(a) => all(db, &format!("{PRINCIPAL} WHERE account_id = $1 ORDER BY name"), [a], principal_row),
            None => all(db, &format!("{PRINCIPAL} ORDER BY name"), [], principal_row),
        })
        .await
}

pub(super) async fn set_principal_secret(
    store: &SqliteStore,
    id: i64,
    secret_hash: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Principal> {
    let (hash, actor) = (secret_hash.to_string(), actor.to_string());
    store
        .db
        .write(move |db| {
            let found = fetch_principal(db, id)?;
            exec(db, "UPDATE principals SET secret_hash = $1 WHERE id = $2", params![hash, id])?;
            let revoked = revoke_all_access(db, id)?;
            let what = match found.kind {
                PrincipalKind::User => "password-changed",
                PrincipalKind::ApiClient => "secret-rotated",
            };
            log_principal(db, now, &actor, &found, what, format!("{revoked} live access token(s) revoked"))?;
            Ok(Principal { secret_hash: Some(hash), ..found })
        })
        .await
}

pub(super) async fn set_principal_disabled(
    store: &SqliteStore,
    id: i64,
    disabled: bool,
    actor: &str,
    now: Timestamp,
) -> Result<Principal> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let found = fetch_principal(db, id)?;
            let state = if disabled { "disabled" } else { "enabled" };
            if found.disabled_at.is_some() == disabled {
                return Err(StoreError::Conflict(format!(
                    "{} '{}' is {state} already",
                    found.kind.as_str(),
                    found.name
                )));
            }
            let at = disabled.then_some(now);
            exec(db, "UPDATE principals SET disabled_at = $1 WHERE id = $2", params![at.map(|t| t.0), id])?;
            let revoked = revoke_all_access(db, id)?;
            log_principal(db, now, &actor, &found, state, format!("{revoked} live access token(s) revoked"))?;
            Ok(Principal { disabled_at: at, ..found })
        })
        .await
}

pub(super) async fn delete_principal(store: &SqliteStore, id: i64, actor: &str, now: Timestamp) -> Result<Principal> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let found = fetch_principal(db, id)?;
            let revoked = revoke_all_access(db, id)?;
            exec(db, "DELETE FROM principals WHERE id = $1", [id])?;
            let detail = format!("login {}; {revoked} live access token(s) revoked", found.login);
            log_principal(db, now, &actor, &found, "deleted", detail)?;
            Ok(found)
        })
        .await
}

pub(super) async fn insert_access_token(
    store: &SqliteStore,
    token_hash: &str,
    prefix: &str,
    principal_id: i64,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    let (hash, prefix) = (token_hash.to_string(), prefix.to_string());
    store.db
        .write(move |db| {
            exec(
                db,
                "INSERT INTO access_tokens (token_hash, prefix, principal_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                params![hash, prefix, principal_id, now.0, expires_at.0],
            )
            .map(drop)
        })
        .await
}

pub(super) async fn principal_for_access_token(
    store: &SqliteStore,
    token_hash: &str,
    now: Timestamp,
) -> Result<Option<Principal>> {
    let hash = token_hash.to_string();
    let sql = format!(
        "{PRINCIPAL} WHERE disabled_at IS NULL
         AND id = (SELECT principal_id FROM access_tokens WHERE token_hash = $1 AND expires_at > $2)"
    );
    store.db.read(move |db| one(db, &sql, params![hash, now.0], principal_row)).await
}

pub(super) async fn access_tokens(
    store: &SqliteStore,
    filter: AccessTokenFilter,
    now: Timestamp,
) -> Result<Vec<AccessToken>> {
    store
        .db
        .read(move |db| {
            let live = format!("{ACCESS_TOKEN} WHERE expires_at > $1");
            let owners = "principal_id IN (SELECT id FROM principals WHERE";
            match filter {
                AccessTokenFilter::Account(a) => {
                    let sql = format!("{live} AND {owners} account_id = $2) ORDER BY id");
                    all(db, &sql, params![now.0, a], access_token)
                }
                AccessTokenFilter::Operators => {
                    let sql = format!("{live} AND {owners} account_id IS NULL) ORDER BY id");
                    all(db, &sql, params![now.0], access_token)
                }
                AccessTokenFilter::Id(id) => all(db, &format!("{live} AND id = $2"), params![now.0, id], access_token),
                AccessTokenFilter::Hash(h) => {
                    all(db, &format!("{live} AND token_hash = $2"), params![now.0, h], access_token)
                }
            }
        })
        .await
}

pub(super) async fn revoke_access_token(
    store: &SqliteStore,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<AccessToken> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let found = one(
                db,
                &format!("{ACCESS_TOKEN} WHERE id = $1 AND expires_at > $2"),
                params![id, now.0],
                access_token,
            )?
            .ok_or_else(|| {
                StoreError::NotFound(format!("access token {id} is not live (expired, revoked or unknown)"))
            })?;
            exec(db, "DELETE FROM access_tokens WHERE id = $1", [id])?;
            let owner = fetch_principal(db, found.principal_id)?;
            let detail = format!("access token {id} ({}…) of {} revoked", found.prefix, owner.login);
            log_principal(db, now, &actor, &owner, "token-revoked", detail)?;
            Ok(found)
        })
        .await
}
