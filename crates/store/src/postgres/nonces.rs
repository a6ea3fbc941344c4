//! Nonces of signed requests (replay protection) and the purge of expired credentials.

use super::sql::Tx;
use super::PostgresStore;
use crate::*;

/// Records a nonce; false when it was there already (the primary key decides, so two replicas
/// receiving the same request accept it once).
pub(super) async fn insert_nonce(tx: &Tx<'_>, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool> {
    let added = tx
        .exec(
            "INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&scope, &nonce, &expires_at.0],
        )
        .await?;
    Ok(added == 1)
}

pub(super) async fn consume_nonce(
    store: &PostgresStore,
    scope: &str,
    nonce: &str,
    expires_at: Timestamp,
) -> Result<bool> {
    write!(store, |tx| insert_nonce(&tx, scope, nonce, expires_at).await)
}

pub(super) async fn purge_expired(store: &PostgresStore, now: Timestamp) -> Result<()> {
    write!(store, |tx| {
        tx.exec("DELETE FROM nonces WHERE expires_at <= $1", &[&now.0]).await?;
        tx.exec("DELETE FROM access_tokens WHERE expires_at <= $1", &[&now.0]).await?;
        Ok(())
    })
}
