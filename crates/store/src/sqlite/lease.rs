//! Leases: which replica runs a piece of work (the background jobs), until when.

use super::sql::{exec, one, ts, R};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Row};

/// One statement, so atomic: the lease is inserted when new, or taken when it expired by
/// `now` or is already `holder`'s (renewed); another holder's live lease is left alone.
pub(super) async fn try_lease(
    store: &SqliteStore,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_ms: i64,
) -> Result<bool> {
    let (name, holder) = (name.to_string(), holder.to_string());
    let until = now.plus_ms(ttl_ms);
    store
        .db
        .write(move |db| {
            let taken = exec(
                db,
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
                params![name, holder, until.0, now.0],
            )?;
            Ok(taken == 1)
        })
        .await
}

fn lease_row(r: &Row) -> R<Lease> {
    Ok(Lease { name: r.get("name")?, holder: r.get("holder")?, expires_at: ts(r, "expires_at")? })
}

pub(super) async fn lease(store: &SqliteStore, name: &str) -> Result<Option<Lease>> {
    let name = name.to_string();
    store
        .db
        .read(move |db| one(db, "SELECT name, holder, expires_at FROM leases WHERE name = $1", [name], lease_row))
        .await
}

/// An exclusive `flock` on the file `<database>-<name>.lock` beside the database, kept open in
/// the guard: the kernel releases it when the holder closes it or dies. Locks of two open files
/// exclude each other even within one process, so two stores on one file (two servers, or a
/// test's two replicas) take turns.
pub(super) async fn try_run_lock(store: &SqliteStore, name: &str) -> Result<Option<RunLock>> {
    let path = std::path::PathBuf::from(format!("{}-{name}.lock", store.db.path().display()));
    let locked =
        try_lock_file(&path).map_err(|e| StoreError::Database(format!("cannot lock {}: {e}", path.display())))?;
    Ok(locked.map(RunLock::new))
}
