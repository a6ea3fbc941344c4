//! What every replica reads from the database: the CA, the simulated clock's offset, and the
//! leases saying which replica runs a background job. Each setting is one row, written by an
//! insert that cannot create a second; the SQL is SQLite's.

use super::sql::{get, ts, Tx};
use super::PostgresStore;
use crate::*;
use tokio_postgres::Row;

fn ca_row(r: &Row) -> Result<StoredCa> {
    Ok(StoredCa { cert_pem: get(r, "cert_pem")?, sealed_key: get(r, "sealed_key")? })
}

async fn read_ca(tx: &Tx<'_>) -> Result<Option<StoredCa>> {
    tx.one("SELECT cert_pem, sealed_key FROM certificate_authority WHERE id = 1", &[], ca_row).await
}

pub(super) async fn stored_ca(store: &PostgresStore) -> Result<Option<StoredCa>> {
    read!(store, |tx| read_ca(&tx).await)
}

/// Inserts `candidate` unless a CA is there, then reads back the one stored, in one
/// transaction: replicas starting together all answer the first one inserted.
pub(super) async fn store_ca(store: &PostgresStore, candidate: StoredCa) -> Result<StoredCa> {
    write!(store, |tx| {
        tx.exec(
            "INSERT INTO certificate_authority (id, cert_pem, sealed_key) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
            &[&candidate.cert_pem, &candidate.sealed_key],
        )
        .await?;
        read_ca(&tx).await?.ok_or_else(|| StoreError::Corrupt("the CA inserted cannot be read back".into()))
    })
}

fn offset_row(r: &Row) -> Result<ClockOffset> {
    Ok(ClockOffset { offset_ms: get(r, "offset_ms")?, version: get(r, "version")? })
}

async fn read_offset(tx: &Tx<'_>) -> Result<Option<ClockOffset>> {
    tx.one("SELECT offset_ms, version FROM simulated_clock WHERE id = 1", &[], offset_row).await
}

pub(super) async fn clock_offset(store: &PostgresStore) -> Result<Option<ClockOffset>> {
    read!(store, |tx| read_offset(&tx).await)
}

pub(super) async fn set_clock_offset(store: &PostgresStore, offset_ms: i64) -> Result<ClockOffset> {
    write!(store, |tx| {
        tx.exec(
            "INSERT INTO simulated_clock (id, offset_ms, version) VALUES (1, $1, 1) \
             ON CONFLICT (id) DO UPDATE SET offset_ms = excluded.offset_ms, version = simulated_clock.version + 1",
            &[&offset_ms],
        )
        .await?;
        read_offset(&tx).await?.ok_or_else(|| StoreError::Corrupt("the clock offset set cannot be read back".into()))
    })
}

/// The lease is inserted when new, or taken when it expired by `now` or is already `holder`'s
/// (renewed); another holder's live lease is left alone. Serializable, so two replicas asking
/// at once never both get it.
pub(super) async fn try_lease(
    store: &PostgresStore,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_ms: i64,
) -> Result<bool> {
    let until = now.plus_ms(ttl_ms);
    write!(store, |tx| {
        let taken = tx
            .exec(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
                &[&name, &holder, &until.0, &now.0],
            )
            .await?;
        Ok(taken == 1)
    })
}

fn lease_row(r: &Row) -> Result<Lease> {
    Ok(Lease { name: get(r, "name")?, holder: get(r, "holder")?, expires_at: ts(r, "expires_at")? })
}

pub(super) async fn lease(store: &PostgresStore, name: &str) -> Result<Option<Lease>> {
    read!(store, |tx| tx.one("SELECT name, holder, expires_at FROM leases WHERE name = $1", &[&name], lease_row).await)
}

/// The key of the run lock `name`: in the two-key space of advisory locks, apart from the
/// migration lock's one key.
const RUN_LOCK_KEY: &str = "hashtext('smartlic'), hashtext($1)";

/// A session advisory lock on a connection taken out of the pool, which the guard holds:
/// [`RunLock::release`] unlocks it, and dropping the guard closes the connection, which
/// releases it too once PostgreSQL sees the session end, as the death of the replica's process
/// does. The connection's server-side keepalives are shortened first, so a replica whose host
/// vanishes without closing it loses the lock within about a minute rather than after the
/// system's two hours.
pub(super) async fn try_run_lock(store: &PostgresStore, name: &str) -> Result<Option<RunLock>> {
    let client = store.db.client().await?;
    let failed =
        |e: tokio_postgres::Error| StoreError::Database(format!("run lock {name}: {}", super::sql::describe(&e)));
    client
        .batch_execute("SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3")
        .await
        .map_err(failed)?;
    let row =
        client.query_one(&format!("SELECT pg_try_advisory_lock({RUN_LOCK_KEY})"), &[&name]).await.map_err(failed)?;
    let taken: bool = row.get(0);
    // Out of the pool either way: a session whose settings were changed is not handed out again.
    let session = deadpool_postgres::Object::take(client);
    Ok(taken.then(|| RunLock::new(AdvisoryLock { session, name: name.to_string() })))
}

/// A run lock held by a session of its own.
struct AdvisoryLock {
    session: deadpool_postgres::ClientWrapper,
    name: String,
}

#[async_trait::async_trait]
impl crate::replica::HeldLock for AdvisoryLock {
    async fn release(self: Box<Self>) -> Result<()> {
        let unlock = format!("SELECT pg_advisory_unlock({RUN_LOCK_KEY})");
        // On failure the session is closed when dropped, and the lock goes with it.
        self.session
            .query_one(&unlock, &[&self.name])
            .await
            .map(drop)
            .map_err(|e| StoreError::Database(format!("run lock {}: {}", self.name, super::sql::describe(&e))))
    }
}
