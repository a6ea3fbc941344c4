//! The portal's sessions and its daily usage history.

use super::sql::{all, exec, one, ts, R};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Row};

fn session_row(r: &Row) -> R<PortalSession> {
    Ok(PortalSession {
        id_hash: r.get("id_hash")?,
        principal_id: r.get("principal_id")?,
        csrf: r.get("csrf")?,
        secret_fingerprint: r.get("secret_fingerprint")?,
        started_at: ts(r, "started_at")?,
        expires_at: ts(r, "expires_at")?,
    })
}

pub(super) async fn start(store: &SqliteStore, s: PortalSession) -> Result<()> {
    store
        .db
        .write(move |db| {
            exec(
                db,
                "INSERT INTO portal_sessions (id_hash, principal_id, csrf, secret_fingerprint, started_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                params![s.id_hash, s.principal_id, s.csrf, s.secret_fingerprint, s.started_at.0, s.expires_at.0],
            )
            .map(drop)
        })
        .await
}

pub(super) async fn live(store: &SqliteStore, id_hash: &str, now: Timestamp) -> Result<Option<PortalSession>> {
    let id_hash = id_hash.to_string();
    store
        .db
        .read(move |db| {
            one(
                db,
                "SELECT id_hash, principal_id, csrf, secret_fingerprint, started_at, expires_at FROM portal_sessions \
                 WHERE id_hash = $1 AND expires_at > $2",
                params![id_hash, now.0],
                session_row,
            )
        })
        .await
}

pub(super) async fn extend(store: &SqliteStore, id_hash: &str, expires_at: Timestamp) -> Result<()> {
    let id_hash = id_hash.to_string();
    store
        .db
        .write(move |db| {
            // SQLite numbers `$n` parameters in the order they first appear.
            exec(db, "UPDATE portal_sessions SET expires_at = $1 WHERE id_hash = $2", params![expires_at.0, id_hash])
                .map(drop)
        })
        .await
}

pub(super) async fn end(store: &SqliteStore, id_hash: &str) -> Result<()> {
    let id_hash = id_hash.to_string();
    store.db.write(move |db| exec(db, "DELETE FROM portal_sessions WHERE id_hash = $1", [id_hash]).map(drop)).await
}

pub(super) async fn purge(store: &SqliteStore, now: Timestamp) -> Result<usize> {
    store.db.write(move |db| exec(db, "DELETE FROM portal_sessions WHERE expires_at <= $1", [now.0])).await
}

pub(super) async fn record_usage_days(store: &SqliteStore, days: Vec<UsageDay>) -> Result<()> {
    store
        .db
        .write(move |db| {
            for d in &days {
                exec(
                    db,
                    "INSERT INTO usage_history (virtual_account_id, tag, day, in_use, purchased) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (virtual_account_id, tag, day) \
                     DO UPDATE SET in_use = excluded.in_use, purchased = excluded.purchased",
                    params![d.virtual_account_id, d.tag, d.day.0, d.in_use, d.purchased],
                )?;
            }
            Ok(())
        })
        .await
}

fn usage_day(r: &Row) -> R<UsageDay> {
    Ok(UsageDay {
        virtual_account_id: r.get("virtual_account_id")?,
        tag: r.get("tag")?,
        day: ts(r, "day")?,
        in_use: r.get("in_use")?,
        purchased: r.get("purchased")?,
    })
}

pub(super) async fn usage_history(
    store: &SqliteStore,
    virtual_account_id: i64,
    since: Timestamp,
) -> Result<Vec<UsageDay>> {
    store
        .db
        .read(move |db| {
            all(
                db,
                "SELECT virtual_account_id, tag, day, in_use, purchased FROM usage_history \
                 WHERE virtual_account_id = $1 AND day >= $2 ORDER BY tag, day",
                params![virtual_account_id, since.0],
                usage_day,
            )
        })
        .await
}

pub(super) async fn prune_usage_history(store: &SqliteStore, before: Timestamp) -> Result<usize> {
    store.db.write(move |db| exec(db, "DELETE FROM usage_history WHERE day < $1", [before.0])).await
}
