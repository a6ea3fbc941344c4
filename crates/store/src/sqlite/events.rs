//! The event log (C-14) and the alerts derived from it: every change appends its event
//! through [`log`], in the change's own transaction.

use super::sql::{all, exec, text_column, ts, R};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection, Row};

const EVENT: &str = "SELECT id, at, actor, kind, account_id, virtual_account_id, object, detail FROM events";

const ALERT: &str = "SELECT id, kind, severity, account_id, virtual_account_id, object, message, raised_at FROM alerts";

pub(super) fn event(row: &Row) -> R<Event> {
    Ok(Event {
        id: row.get("id")?,
        at: ts(row, "at")?,
        actor: row.get("actor")?,
        kind: row.get("kind")?,
        account_id: row.get("account_id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        object: row.get("object")?,
        detail: row.get("detail")?,
    })
}

fn alert(row: &Row) -> R<Alert> {
    Ok(Alert {
        id: row.get("id")?,
        kind: text_column(row, "alerts.kind", str::parse)?,
        severity: text_column(row, "alerts.severity", str::parse)?,
        account_id: row.get("account_id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        object: row.get("object")?,
        message: row.get("message")?,
        raised_at: ts(row, "raised_at")?,
    })
}

fn append_event(db: &Connection, e: &NewEvent) -> Result<()> {
    exec(
        db,
        "INSERT INTO events (at, actor, kind, account_id, virtual_account_id, object, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![e.at.0, e.actor, e.kind, e.account_id, e.virtual_account_id, e.object, e.detail],
    )?;
    Ok(())
}

/// Appends an event about something inside an account or one of its pools.
#[allow(clippy::too_many_arguments)]
pub(super) fn log(
    db: &Connection,
    now: Timestamp,
    actor: &str,
    kind: &str,
    account_id: Option<i64>,
    virtual_account_id: Option<i64>,
    object: &str,
    detail: String,
) -> Result<()> {
    let e = NewEvent {
        at: now,
        actor: actor.into(),
        kind: kind.into(),
        account_id,
        virtual_account_id,
        object: object.into(),
        detail,
    };
    append_event(db, &e)
}

pub(super) async fn record_event(store: &SqliteStore, e: NewEvent) -> Result<()> {
    store.db.write(move |db| append_event(db, &e)).await
}

pub(super) async fn events(
    store: &SqliteStore,
    account_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Event>> {
    let before = before.unwrap_or(i64::MAX);
    store
        .db
        .read(move |db| match account_id {
            Some(a) => all(
                db,
                &format!("{EVENT} WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"),
                params![a, before, limit],
                event,
            ),
            None => all(db, &format!("{EVENT} WHERE id < $1 ORDER BY id DESC LIMIT $2"), params![before, limit], event),
        })
        .await
}

pub(super) async fn sync_alerts(store: &SqliteStore, current: Vec<NewAlert>, now: Timestamp) -> Result<()> {
    store
        .db
        .write(move |db| {
            let existing = all(db, ALERT, [], alert)?;
            for old in &existing {
                if !current.iter().any(|a| a.kind == old.kind && a.object == old.object) {
                    exec(db, "DELETE FROM alerts WHERE id = $1", [old.id])?;
                    let detail = format!("cleared: {}", old.message);
                    log(
                        db,
                        now,
                        "system",
                        "alert.cleared",
                        Some(old.account_id),
                        old.virtual_account_id,
                        &old.object,
                        detail,
                    )?;
                }
            }
            for a in &current {
                let known = existing.iter().any(|o| o.kind == a.kind && o.object == a.object);
                exec(
                    db,
                    "INSERT INTO alerts (kind, severity, account_id, virtual_account_id, object, message, raised_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (kind, object) DO UPDATE SET severity = excluded.severity, message = excluded.message",
                    params![
                        a.kind.as_str(),
                        a.severity.as_str(),
                        a.account_id,
                        a.virtual_account_id,
                        a.object,
                        a.message,
                        now.0
                    ],
                )?;
                if !known {
                    log(
                        db,
                        now,
                        "system",
                        "alert.raised",
                        Some(a.account_id),
                        a.virtual_account_id,
                        &a.object,
                        a.message.clone(),
                    )?;
                }
            }
            Ok(())
        })
        .await
}

pub(super) async fn alerts(store: &SqliteStore, account_id: i64) -> Result<Vec<Alert>> {
    store
        .db
        .read(move |db| all(db, &format!("{ALERT} WHERE account_id = $1 ORDER BY raised_at, id"), [account_id], alert))
        .await
}
