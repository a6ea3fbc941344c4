//! The portal's sessions and its daily usage history.

use super::sql::{get, ts};
use super::PostgresStore;
use crate::*;
use tokio_postgres::Row;

fn session_row(r: &Row) -> Result<PortalSession> {
    Ok(PortalSession {
        id_hash: get(r, "id_hash")?,
        principal_id: get(r, "principal_id")?,
        csrf: get(r, "csrf")?,
        secret_fingerprint: get(r, "secret_fingerprint")?,
        started_at: ts(r, "started_at")?,
        expires_at: ts(r, "expires_at")?,
    })
}

pub(super) async fn start(store: &PostgresStore, s: PortalSession) -> Result<()> {
    write!(store, |tx| {
        tx.exec(
            "INSERT INTO portal_sessions (id_hash, principal_id, csrf, secret_fingerprint, started_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&s.id_hash, &s.principal_id, &s.csrf, &s.secret_fingerprint, &s.started_at.0, &s.expires_at.0],
        )
        .await
        .map(drop)
    })
}

pub(super) async fn live(store: &PostgresStore, id_hash: &str, now: Timestamp) -> Result<Option<PortalSession>> {
    read!(store, |tx| {
        tx.one(
            "SELECT id_hash, principal_id, csrf, secret_fingerprint, started_at, expires_at FROM portal_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
            &[&id_hash, &now.0],
            session_row,
        )
        .await
    })
}

pub(super) async fn extend(store: &PostgresStore, id_hash: &str, expires_at: Timestamp) -> Result<()> {
    write!(store, |tx| {
        tx.exec("UPDATE portal_sessions SET expires_at = $1 WHERE id_hash = $2", &[&expires_at.0, &id_hash])
            .await
            .map(drop)
    })
}

pub(super) async fn end(store: &PostgresStore, id_hash: &str) -> Result<()> {
    write!(store, |tx| tx.exec("DELETE FROM portal_sessions WHERE id_hash = $1", &[&id_hash]).await.map(drop))
}

pub(super) async fn purge(store: &PostgresStore, now: Timestamp) -> Result<usize> {
    write!(store, |tx| Ok(tx.exec("DELETE FROM portal_sessions WHERE expires_at <= $1", &[&now.0]).await? as usize))
}

pub(super) async fn record_usage_days(store: &PostgresStore, days: Vec<UsageDay>) -> Result<()> {
    write!(store, |tx| {
        for d in &days {
            tx.exec(
                "INSERT INTO usage_history (virtual_account_id, tag, day, in_use, purchased) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (virtual_account_id, tag, day) \
                 DO UPDATE SET in_use = excluded.in_use, purchased = excluded.purchased",
                &[&d.virtual_account_id, &d.tag, &d.day.0, &d.in_use, &d.purchased],
            )
            .await?;
        }
        Ok(())
    })
}

fn usage_day(r: &Row) -> Result<UsageDay> {
    Ok(UsageDay {
        virtual_account_id: get(r, "virtual_account_id")?,
        tag: get(r, "tag")?,
        day: ts(r, "day")?,
        in_use: get(r, "in_use")?,
        purchased: get(r, "purchased")?,
    })
}

pub(super) async fn usage_history(
    store: &PostgresStore,
    virtual_account_id: i64,
    since: Timestamp,
) -> Result<Vec<UsageDay>> {
    read!(store, |tx| {
        tx.all(
            "SELECT virtual_account_id, tag, day, in_use, purchased FROM usage_history \
             WHERE virtual_account_id = $1 AND day >= $2 ORDER BY tag, day",
            &[&virtual_account_id, &since.0],
            usage_day,
        )
        .await
    })
}

pub(super) async fn prune_usage_history(store: &PostgresStore, before: Timestamp) -> Result<usize> {
    write!(store, |tx| Ok(tx.exec("DELETE FROM usage_history WHERE day < $1", &[&before.0]).await? as usize))
}
