//! Registration tokens (C-7), kept as a hash and a listed prefix.

use super::accounts::account_of_pool;
use super::events::log;
use super::sql::{all, exec, opt_ts, ts, R};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection, Row};

pub(super) const TOKEN: &str = "SELECT id, virtual_account_id, prefix, description, created_at, expires_at, max_uses, uses, export_controlled, revoked_at, created_by FROM registration_tokens";

pub(super) fn token(row: &Row) -> R<RegistrationToken> {
    Ok(RegistrationToken {
        id: row.get("id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        prefix: row.get("prefix")?,
        description: row.get("description")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        max_uses: row.get("max_uses")?,
        uses: row.get("uses")?,
        export_controlled: row.get("export_controlled")?,
        revoked_at: opt_ts(row, "revoked_at")?,
        created_by: row.get("created_by")?,
    })
}

/// How events name a registration token: its listed prefix.
/// Revokes one token of a pool, named by its hash or, failing that, by its listed prefix.
pub(super) fn revoke(
    db: &Connection,
    virtual_account_id: i64,
    t: &TokenRef,
    actor: &str,
    now: Timestamp,
) -> Result<RegistrationToken> {
    let by_hash = format!("{TOKEN} WHERE virtual_account_id = $1 AND token_hash = $2");
    let mut found = all(db, &by_hash, params![virtual_account_id, t.token_hash], token)?;
    if found.is_empty() {
        let by_prefix = format!("{TOKEN} WHERE virtual_account_id = $1 AND prefix = $2");
        found = all(db, &by_prefix, params![virtual_account_id, t.prefix], token)?;
    }
    let found = crate::rules::token_to_revoke(found, &t.prefix)?;
    exec(db, "UPDATE registration_tokens SET revoked_at = $1 WHERE id = $2", params![now.0, found.id])?;
    let account_id = account_of_pool(db, virtual_account_id)?;
    log(
        db,
        now,
        actor,
        "token.revoked",
        Some(account_id),
        Some(virtual_account_id),
        &crate::rules::short_token(&found.prefix),
        String::new(),
    )?;
    Ok(RegistrationToken { revoked_at: Some(now), ..found })
}

pub(super) async fn create_token(
    store: &SqliteStore,
    new: NewToken,
    actor: &str,
    now: Timestamp,
) -> Result<RegistrationToken> {
    let actor = actor.to_string();
    store.db
        .write(move |db| {
            let account_id = account_of_pool(db, new.virtual_account_id)?;
            exec(
                db,
                "INSERT INTO registration_tokens (virtual_account_id, prefix, token_hash, description, created_at, expires_at,
                 max_uses, uses, export_controlled, revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9)",
                params![
                    new.virtual_account_id,
                    new.prefix,
                    new.token_hash,
                    new.description,
                    now.0,
                    new.expires_at.0,
                    new.max_uses,
                    new.export_controlled,
                    actor
                ],
            )?;
            let id = db.last_insert_rowid();
            let detail = match new.description.as_str() {
                "" => format!("expires {}", new.expires_at),
                d => format!("expires {}: {d}", new.expires_at),
            };
            log(db, now, &actor, "token.created", Some(account_id), Some(new.virtual_account_id), &crate::rules::short_token(&new.prefix), detail)?;
            Ok(RegistrationToken {
                id,
                virtual_account_id: new.virtual_account_id,
                prefix: new.prefix,
                description: new.description,
                created_at: now,
                expires_at: new.expires_at,
                max_uses: new.max_uses,
                uses: 0,
                export_controlled: new.export_controlled,
                revoked_at: None,
                created_by: actor,
            })
        })
        .await
}

pub(super) async fn tokens(store: &SqliteStore, virtual_account_id: i64) -> Result<Vec<RegistrationToken>> {
    store
        .db
        .read(move |db| {
            all(db, &format!("{TOKEN} WHERE virtual_account_id = $1 ORDER BY id"), [virtual_account_id], token)
        })
        .await
}

pub(super) async fn revoke_tokens(
    store: &SqliteStore,
    virtual_account_id: i64,
    tokens: Vec<TokenRef>,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<RegistrationToken>> {
    let actor = actor.to_string();
    store.db.write(move |db| tokens.iter().map(|t| revoke(db, virtual_account_id, t, &actor, now)).collect()).await
}
