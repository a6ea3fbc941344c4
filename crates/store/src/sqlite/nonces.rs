//! Nonces of signed requests (replay protection) and the purge of expired credentials.

use super::sql::exec;
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection};

/// Records a nonce; false when it was there already.
pub(super) fn insert_nonce(db: &Connection, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool> {
    let added = exec(
        db,
        "INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        params![scope, nonce, expires_at.0],
    )?;
    Ok(added == 1)
}

pub(super) async fn consume_nonce(
    store: &SqliteStore,
    scope: &str,
    nonce: &str,
    expires_at: Timestamp,
) -> Result<bool> {
    let (scope, nonce) = (scope.to_string(), nonce.to_string());
    store.db.write(move |db| insert_nonce(db, &scope, &nonce, expires_at)).await
}

pub(super) async fn purge_expired(store: &SqliteStore, now: Timestamp) -> Result<()> {
    store
        .db
        .write(move |db| {
            exec(db, "DELETE FROM nonces WHERE expires_at <= $1", [now.0])?;
            exec(db, "DELETE FROM access_tokens WHERE expires_at <= $1", [now.0])?;
            Ok(())
        })
        .await
}
