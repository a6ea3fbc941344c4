//! Registration tokens (C-7), kept as a hash and a listed prefix.

use super::accounts::account_of_pool;
use super::events::log;
use super::sql::{get, opt_ts, ts, Tx};
use super::PostgresStore;
use crate::*;
use tokio_postgres::Row;

pub(super) const TOKEN: &str = "SELECT id, virtual_account_id, prefix, description, created_at, expires_at, max_uses, uses, export_controlled, revoked_at, created_by FROM registration_tokens";

pub(super) fn token(row: &Row) -> Result<RegistrationToken> {
    Ok(RegistrationToken {
        id: get(row, "id")?,
        virtual_account_id: get(row, "virtual_account_id")?,
        prefix: get(row, "prefix")?,
        description: get(row, "description")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        max_uses: get(row, "max_uses")?,
        uses: get(row, "uses")?,
        export_controlled: get(row, "export_controlled")?,
        revoked_at: opt_ts(row, "revoked_at")?,
        created_by: get(row, "created_by")?,
    })
}

/// How events name a registration token: its listed prefix.
/// Revokes one token of a pool, named by its hash or, failing that, by its listed prefix.
async fn revoke(
    tx: &Tx<'_>,
    virtual_account_id: i64,
    t: &TokenRef,
    actor: &str,
    now: Timestamp,
) -> Result<RegistrationToken> {
    let by_hash = format!("{TOKEN} WHERE virtual_account_id = $1 AND token_hash = $2");
    let mut found = tx.all(&by_hash, &[&virtual_account_id, &t.token_hash], token).await?;
    if found.is_empty() {
        let by_prefix = format!("{TOKEN} WHERE virtual_account_id = $1 AND prefix = $2");
        found = tx.all(&by_prefix, &[&virtual_account_id, &t.prefix], token).await?;
    }
    let found = crate::rules::token_to_revoke(found, &t.prefix)?;
    tx.exec("UPDATE registration_tokens SET revoked_at = $1 WHERE id = $2", &[&now.0, &found.id]).await?;
    let account_id = account_of_pool(tx, virtual_account_id).await?;
    let object = crate::rules::short_token(&found.prefix);
    log(tx, now, actor, "token.revoked", Some(account_id), Some(virtual_account_id), &object, String::new()).await?;
    Ok(RegistrationToken { revoked_at: Some(now), ..found })
}

pub(super) async fn create_token(
    store: &PostgresStore,
    new: NewToken,
    actor: &str,
    now: Timestamp,
) -> Result<RegistrationToken> {
    write!(store, |tx| {
        let account_id = account_of_pool(&tx, new.virtual_account_id).await?;
        let id = tx
            .insert(
                "INSERT INTO registration_tokens (virtual_account_id, prefix, token_hash, description, created_at, expires_at,
                 max_uses, uses, export_controlled, revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9)
                 RETURNING id",
                &[
                    &new.virtual_account_id,
                    &new.prefix,
                    &new.token_hash,
                    &new.description,
                    &now.0,
                    &new.expires_at.0,
                    &new.max_uses,
                    &new.export_controlled,
                    &actor,
                ],
            )
            .await?;
        let detail = match new.description.as_str() {
            "" => format!("expires {}", new.expires_at),
            d => format!("expires {}: {d}", new.expires_at),
        };
        let object = crate::rules::short_token(&new.prefix);
        log(&tx, now, actor, "token.created", Some(account_id), Some(new.virtual_account_id), &object, detail).await?;
        Ok(RegistrationToken {
            id,
            virtual_account_id: new.virtual_account_id,
            prefix: new.prefix.clone(),
            description: new.description.clone(),
            created_at: now,
            expires_at: new.expires_at,
            max_uses: new.max_uses,
            uses: 0,
            export_controlled: new.export_controlled,
            revoked_at: None,
            created_by: actor.into(),
        })
    })
}

pub(super) async fn tokens(store: &PostgresStore, virtual_account_id: i64) -> Result<Vec<RegistrationToken>> {
    read!(store, |tx| tx
        .all(&format!("{TOKEN} WHERE virtual_account_id = $1 ORDER BY id"), &[&virtual_account_id], token)
        .await)
}

pub(super) async fn revoke_tokens(
    store: &PostgresStore,
    virtual_account_id: i64,
    tokens: Vec<TokenRef>,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<RegistrationToken>> {
    write!(store, |tx| {
        let mut revoked = Vec::with_capacity(tokens.len());
        for t in &tokens {
            revoked.push(revoke(&tx, virtual_account_id, t, actor, now).await?);
        }
        Ok(revoked)
    })
}
