//! The event log (C-14) and the alerts derived from it: every change appends its event
//! through [`log`], in the change's own transaction.

use super::sql::{get, text_column, ts, Tx};
use super::PostgresStore;
use crate::*;
use tokio_postgres::Row;

const EVENT: &str = "SELECT id, at, actor, kind, account_id, virtual_account_id, object, detail FROM events";

const ALERT: &str = "SELECT id, kind, severity, account_id, virtual_account_id, object, message, raised_at FROM alerts";

pub(super) fn event(row: &Row) -> Result<Event> {
    Ok(Event {
        id: get(row, "id")?,
        at: ts(row, "at")?,
        actor: get(row, "actor")?,
        kind: get(row, "kind")?,
        account_id: get(row, "account_id")?,
        virtual_account_id: get(row, "virtual_account_id")?,
        object: get(row, "object")?,
        detail: get(row, "detail")?,
    })
}

fn alert(row: &Row) -> Result<Alert> {
    Ok(Alert {
        id: get(row, "id")?,
        kind: text_column(row, "alerts.kind", str::parse)?,
        severity: text_column(row, "alerts.severity", str::parse)?,
        account_id: get(row, "account_id")?,
        virtual_account_id: get(row, "virtual_account_id")?,
        object: get(row, "object")?,
        message: get(row, "message")?,
        raised_at: ts(row, "raised_at")?,
    })
}

async fn append_event(tx: &Tx<'_>, e: &NewEvent) -> Result<()> {
    tx.exec(
        "INSERT INTO events (at, actor, kind, account_id, virtual_account_id, object, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&e.at.0, &e.actor, &e.kind, &e.account_id, &e.virtual_account_id, &e.object, &e.detail],
    )
    .await?;
    Ok(())
}

/// Appends an event about something inside an account or one of its pools.
#[allow(clippy::too_many_arguments)]
pub(super) async fn log(
    tx: &Tx<'_>,
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
    append_event(tx, &e).await
}

pub(super) async fn record_event(store: &PostgresStore, e: NewEvent) -> Result<()> {
    write!(store, |tx| append_event(&tx, &e).await)
}

pub(super) async fn events(
    store: &PostgresStore,
    account_id: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Event>> {
    let before = before.unwrap_or(i64::MAX);
    read!(store, |tx| match account_id {
        Some(a) => {
            let sql = format!("{EVENT} WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3");
            tx.all(&sql, &[&a, &before, &limit], event).await
        }
        None => tx.all(&format!("{EVENT} WHERE id < $1 ORDER BY id DESC LIMIT $2"), &[&before, &limit], event).await,
    })
}

pub(super) async fn sync_alerts(store: &PostgresStore, current: Vec<NewAlert>, now: Timestamp) -> Result<()> {
    write!(store, |tx| {
        let existing = tx.all(ALERT, &[], alert).await?;
        for old in &existing {
            if !current.iter().any(|a| a.kind == old.kind && a.object == old.object) {
                tx.exec("DELETE FROM alerts WHERE id = $1", &[&old.id]).await?;
                let detail = format!("cleared: {}", old.message);
                log(
                    &tx,
                    now,
                    "system",
                    "alert.cleared",
                    Some(old.account_id),
                    old.virtual_account_id,
                    &old.object,
                    detail,
                )
                .await?;
            }
        }
        for a in &current {
            let known = existing.iter().any(|o| o.kind == a.kind && o.object == a.object);
            tx.exec(
                "INSERT INTO alerts (kind, severity, account_id, virtual_account_id, object, message, raised_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (kind, object) DO UPDATE SET severity = excluded.severity, message = excluded.message",
                &[
                    &a.kind.as_str(),
                    &a.severity.as_str(),
                    &a.account_id,
                    &a.virtual_account_id,
                    &a.object,
                    &a.message,
                    &now.0,
                ],
            )
            .await?;
            if !known {
                log(
                    &tx,
                    now,
                    "system",
                    "alert.raised",
                    Some(a.account_id),
                    a.virtual_account_id,
                    &a.object,
                    a.message.clone(),
                )
                .await?;
            }
        }
        Ok(())
    })
}

pub(super) async fn alerts(store: &PostgresStore, account_id: i64) -> Result<Vec<Alert>> {
    read!(store, |tx| tx
        .all(&format!("{ALERT} WHERE account_id = $1 ORDER BY raised_at, id"), &[&account_id], alert)
        .await)
}
