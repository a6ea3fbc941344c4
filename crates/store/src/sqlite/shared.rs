//! The settings every replica reads from the database: the CA and the simulated clock's
//! offset. Each is one row, written by an insert that cannot create a second.

use super::sql::{exec, one, R};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection, Row};

fn ca_row(r: &Row) -> R<StoredCa> {
    Ok(StoredCa { cert_pem: r.get("cert_pem")?, sealed_key: r.get("sealed_key")? })
}

fn read_ca(db: &Connection) -> Result<Option<StoredCa>> {
    one(db, "SELECT cert_pem, sealed_key FROM certificate_authority WHERE id = 1", [], ca_row)
}

pub(super) async fn stored_ca(store: &SqliteStore) -> Result<Option<StoredCa>> {
    store.db.read(read_ca).await
}

/// Inserts `candidate` unless a CA is there, then reads back the one stored, in one
/// transaction: replicas starting together all answer the first one inserted.
pub(super) async fn store_ca(store: &SqliteStore, candidate: StoredCa) -> Result<StoredCa> {
    store
        .db
        .write(move |db| {
            exec(
                db,
                "INSERT INTO certificate_authority (id, cert_pem, sealed_key) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO NOTHING",
                params![candidate.cert_pem, candidate.sealed_key],
            )?;
            read_ca(db)?.ok_or_else(|| StoreError::Corrupt("the CA inserted cannot be read back".into()))
        })
        .await
}

fn offset_row(r: &Row) -> R<ClockOffset> {
    Ok(ClockOffset { offset_ms: r.get("offset_ms")?, version: r.get("version")? })
}

fn read_offset(db: &Connection) -> Result<Option<ClockOffset>> {
    one(db, "SELECT offset_ms, version FROM simulated_clock WHERE id = 1", [], offset_row)
}

pub(super) async fn clock_offset(store: &SqliteStore) -> Result<Option<ClockOffset>> {
    store.db.read(read_offset).await
}

pub(super) async fn set_clock_offset(store: &SqliteStore, offset_ms: i64) -> Result<ClockOffset> {
    store
        .db
        .write(move |db| {
            exec(
                db,
                "INSERT INTO simulated_clock (id, offset_ms, version) VALUES (1, $1, 1) \
                 ON CONFLICT (id) DO UPDATE SET offset_ms = excluded.offset_ms, version = simulated_clock.version + 1",
                [offset_ms],
            )?;
            read_offset(db)?.ok_or_else(|| StoreError::Corrupt("the clock offset set cannot be read back".into()))
        })
        .await
}
