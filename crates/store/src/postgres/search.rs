//! Finding product instances and events the way the portal's lists do: one page, filtered,
//! without reading a whole pool or a whole event log; the semantics are the trait's (see
//! [`Store::search_instances`], [`EventQuery`]).
//!
//! A text of [`INDEXED_SEARCH_CHARS`] characters or more is a `LIKE '%text%'` on each
//! lowercased field, which the trigram (pg_trgm) GIN indexes of the schema answer; `%`, `_` and
//! `\` in the text are escaped, so they are plain characters. A shorter text has no trigram:
//! it is tested on a bounded window of rows instead. The fields and the text are both
//! lowercased by the database's `lower()`, which in a database of another locale than C
//! (Debian's default cluster is C.UTF-8) also folds non-ASCII letters: the text must be folded
//! the same way, or a search for "É" would never find the "é" its field became.

use super::events::event;
use super::instances::{instance_row, INSTANCE};
use super::PostgresStore;
use crate::*;
use tokio_postgres::types::ToSql;

/// An instance row holding the pattern `$2` in its hostname, PID, serial number or id.
const HOLDS: &str = "(lower(hostname) LIKE lower($2) OR lower(udi_pid) LIKE lower($2) \
                     OR lower(udi_sn) LIKE lower($2) OR lower(id) LIKE lower($2))";

/// `text` as a LIKE pattern matching any value that holds it.
fn containing(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

pub(super) async fn search_instances(
    store: &PostgresStore,
    virtual_account_id: i64,
    text: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Instance>, i64)> {
    let text = text.trim().to_ascii_lowercase();
    read!(store, |tx| {
        if text.is_empty() {
            let total = tx
                .value("SELECT COUNT(*) FROM instances WHERE virtual_account_id = $1", &[&virtual_account_id])
                .await?;
            let sql = format!("{INSTANCE} WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn LIMIT $2 OFFSET $3");
            let page = tx.all(&sql, &[&virtual_account_id, &limit, &offset], instance_row).await?;
            return Ok((page, total.unwrap_or(0)));
        }
        // The candidates: every match (through the indexes), or those of the pool's first rows.
        let candidates = if indexed_search(&text) {
            format!("SELECT * FROM instances WHERE virtual_account_id = $1 AND {HOLDS}")
        } else {
            format!(
                "SELECT * FROM (SELECT * FROM instances WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn \
                 LIMIT {SHORT_SEARCH_INSTANCES}) AS first_rows WHERE {HOLDS}"
            )
        };
        let pattern = containing(&text);
        let total: Option<i64> = tx
            .value(
                &format!("SELECT COUNT(*) FROM ({candidates} LIMIT $3) AS matched"),
                &[&virtual_account_id, &pattern, &(INSTANCE_MATCHES_LISTED + 1)],
            )
            .await?;
        let sql = format!(
            "{INSTANCE} WHERE id IN (SELECT id FROM ({candidates} ORDER BY udi_pid, udi_sn LIMIT $3) AS listed) \
             ORDER BY udi_pid, udi_sn LIMIT $4 OFFSET $5"
        );
        let page = tx
            .all(&sql, &[&virtual_account_id, &pattern, &INSTANCE_MATCHES_LISTED, &limit, &offset], instance_row)
            .await?;
        Ok((page, total.unwrap_or(0)))
    })
}

pub(super) async fn search_events(store: &PostgresStore, q: EventQuery) -> Result<Vec<Event>> {
    let text = q.text.trim().to_ascii_lowercase();
    let pattern = containing(&text);
    let (from, to) = (q.from.map(|t| t.0), q.to.map(|t| t.0));
    // Only the filters given are in the query (numbered in order), so that the planner uses them.
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&q.account_id];
    let mut filters = String::from("e.account_id = $1");
    let mut add = |condition: &str, arg: &'static str, value| {
        args.push(value);
        filters.push_str(&format!(" AND {}", condition.replace(arg, &format!("${}", args.len()))));
    };
    if !q.kind.is_empty() {
        add("e.kind = ?", "?", &q.kind);
    }
    if let Some(from) = &from {
        add("e.at >= ?", "?", from);
    }
    if let Some(to) = &to {
        add("e.at < ?", "?", to);
    }
    if let Some(pools) = &q.pools {
        add("(e.virtual_account_id IS NULL OR e.virtual_account_id = ANY(?))", "?", pools);
    }
    args.push(&q.limit);
    let limit = format!("${}", args.len());
    const COLUMNS: &str = "e.id, e.at, e.actor, e.kind, e.account_id, e.virtual_account_id, e.object, e.detail";
    const NEWEST: &str = "ORDER BY e.at DESC, e.id DESC";
    let sql = if text.is_empty() {
        format!("SELECT {COLUMNS} FROM events e WHERE {filters} {NEWEST} LIMIT {limit}")
    } else {
        args.push(&pattern);
        let p = format!("${}", args.len());
        let holds = format!(
            "(lower(e.object) LIKE lower({p}) OR lower(e.detail) LIKE lower({p}) OR lower(e.actor) LIKE lower({p}))"
        );
        if indexed_search(&text) {
            format!("SELECT {COLUMNS} FROM events e WHERE {filters} AND {holds} {NEWEST} LIMIT {limit}")
        } else {
            format!(
                "SELECT {COLUMNS} FROM (SELECT * FROM events e WHERE {filters} {NEWEST} LIMIT {SHORT_SEARCH_EVENTS}) e \
                 WHERE {holds} {NEWEST} LIMIT {limit}"
            )
        }
    };
    read!(store, |tx| tx.all(&sql, &args, event).await)
}

pub(super) async fn event_kinds(store: &PostgresStore, account_id: i64) -> Result<Vec<String>> {
    read!(store, |tx| {
        tx.all("SELECT DISTINCT kind FROM events WHERE account_id = $1 ORDER BY kind", &[&account_id], |r| {
            super::sql::get(r, 0)
        })
        .await
    })
}
