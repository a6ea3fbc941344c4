//! Finding product instances and events the way the portal's lists do: one page, filtered,
//! without reading a whole pool (it may hold 100,000 instances) or a whole event log.
//!
//! A text of [`INDEXED_SEARCH_CHARS`] characters or more is looked up in the trigram indexes of
//! migration 0012 (`instance_search`, `event_search`), which answer the rows holding every
//! trigram of the text; the exact test (`instr` on the ASCII-lowercased columns, so `%` and `_`
//! are plain characters) then keeps the rows that really hold it. A shorter text has no
//! trigram: it is tested on a bounded window of rows instead.

use super::events::event;
use super::instances::{instance_row, INSTANCE};
use super::sql::{all, one};
use super::SqliteStore;
use crate::*;

/// An instance row holding `?4` in its hostname, PID, serial number or id.
const HOLDS: &str = "(instr(lower(i.hostname), ?4) > 0 OR instr(lower(i.udi_pid), ?4) > 0 \
                     OR instr(lower(i.udi_sn), ?4) > 0 OR instr(lower(i.id), ?4) > 0)";

/// The text of parameter `param` as one FTS5 phrase (its trigrams, in order), quotes doubled.
fn phrase(param: &str) -> String {
    format!("'\"' || replace({param}, '\"', '\"\"') || '\"'")
}

/// The instances of pool `?1` holding text `?4` (rowid, PID, serial), in no particular order.
fn matching_instances(text: &str) -> String {
    if indexed_search(text) {
        // The index first (CROSS JOIN keeps that order), then each candidate by its key.
        format!(
            "SELECT i.rowid, i.udi_pid, i.udi_sn FROM instance_search s \
             CROSS JOIN instance_search_keys k ON k.n = s.rowid CROSS JOIN instances i ON i.id = k.instance_id \
             WHERE instance_search MATCH {} AND i.virtual_account_id = ?1 AND {HOLDS}",
            phrase("?4")
        )
    } else {
        format!(
            "SELECT i.rowid, i.udi_pid, i.udi_sn FROM (SELECT rowid, id, hostname, udi_pid, udi_sn FROM instances \
             WHERE virtual_account_id = ?1 ORDER BY udi_pid, udi_sn LIMIT {SHORT_SEARCH_INSTANCES}) i WHERE {HOLDS}"
        )
    }
}

pub(super) async fn search_instances(
    store: &SqliteStore,
    virtual_account_id: i64,
    text: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Instance>, i64)> {
    let text = text.trim().to_ascii_lowercase();
    store
        .db
        .read(move |db| {
            // The page's rows are found as rowids first (in the pool index when there is no text:
            // skipping `offset` index entries, not `offset` rows); only they are read.
            let (total, page) = if text.is_empty() {
                let total = one(
                    db,
                    "SELECT COUNT(*) FROM instances WHERE virtual_account_id = ?1",
                    [virtual_account_id],
                    |r| r.get(0),
                )?;
                let page = all(
                    db,
                    &format!(
                        "{INSTANCE} WHERE rowid IN (SELECT rowid FROM instances WHERE virtual_account_id = ?1 \
                         ORDER BY udi_pid, udi_sn LIMIT ?2 OFFSET ?3) ORDER BY udi_pid, udi_sn"
                    ),
                    rusqlite::params![virtual_account_id, limit, offset],
                    instance_row,
                )?;
                (total, page)
            } else {
                let matching = matching_instances(&text);
                let total = one(
                    db,
                    &format!("SELECT COUNT(*) FROM ({matching} LIMIT ?5)"),
                    rusqlite::params![virtual_account_id, limit, offset, text, INSTANCE_MATCHES_LISTED + 1],
                    |r| r.get(0),
                )?;
                let page = all(
                    db,
                    &format!(
                        "{INSTANCE} WHERE rowid IN (SELECT rowid FROM ({matching} LIMIT ?5) \
                         ORDER BY udi_pid, udi_sn LIMIT ?2 OFFSET ?3) ORDER BY udi_pid, udi_sn"
                    ),
                    rusqlite::params![virtual_account_id, limit, offset, text, INSTANCE_MATCHES_LISTED],
                    instance_row,
                )?;
                (total, page)
            };
            Ok((page, total.unwrap_or(0)))
        })
        .await
}

/// The events `?1..?5` select (account, kind, from, to, pools), newest first, at most `?6`,
/// holding text `?7`. The text aside, an index of the account's events by time (or by kind and
/// time) is walked backwards from the end of the date range, and the walk stops at the
/// `?6`-th event: only the filters given are in the query, so that the planner uses them.
fn filtered_events(q: &EventQuery, text: &str) -> String {
    let kind = if q.kind.is_empty() { "" } else { "AND e.kind = ?2" };
    let from = if q.from.is_some() { "AND e.at >= ?3" } else { "" };
    let to = if q.to.is_some() { "AND e.at < ?4" } else { "" };
    let filters = format!(
        "e.account_id = ?1 {kind} {from} {to} AND (?5 IS NULL OR e.virtual_account_id IS NULL \
         OR e.virtual_account_id IN (SELECT value FROM json_each(?5)))"
    );
    const COLUMNS: &str = "e.id, e.at, e.actor, e.kind, e.account_id, e.virtual_account_id, e.object, e.detail";
    const HOLDS: &str = "(instr(lower(e.object), ?7) > 0 OR instr(lower(e.detail), ?7) > 0 \
                         OR instr(lower(e.actor), ?7) > 0)";
    const NEWEST: &str = "ORDER BY e.at DESC, e.id DESC";
    if text.is_empty() {
        format!("SELECT {COLUMNS} FROM events e WHERE {filters} {NEWEST} LIMIT ?6")
    } else if indexed_search(text) {
        // The index's matches newest first (FTS5 walks its rowids, the events' ids, backwards),
        // each event read by its key; the walk stops at the `?6`-th event passing every filter.
        format!(
            "SELECT {COLUMNS} FROM event_search s CROSS JOIN events e ON e.id = s.rowid \
             WHERE event_search MATCH {} AND {filters} AND {HOLDS} ORDER BY s.rowid DESC LIMIT ?6",
            phrase("?7")
        )
    } else {
        format!(
            "SELECT {COLUMNS} FROM (SELECT * FROM events e WHERE {filters} {NEWEST} \
             LIMIT {SHORT_SEARCH_EVENTS}) e WHERE {HOLDS} {NEWEST} LIMIT ?6"
        )
    }
}

pub(super) async fn search_events(store: &SqliteStore, q: EventQuery) -> Result<Vec<Event>> {
    let text = q.text.trim().to_ascii_lowercase();
    let pools =
        q.pools.as_ref().map(|ids| format!("[{}]", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")));
    store
        .db
        .read(move |db| {
            let sql = filtered_events(&q, &text);
            let (from, to) = (q.from.map(|t| t.0), q.to.map(|t| t.0));
            if text.is_empty() {
                all(db, &sql, rusqlite::params![q.account_id, q.kind, from, to, pools, q.limit], event)
            } else {
                all(db, &sql, rusqlite::params![q.account_id, q.kind, from, to, pools, q.limit, text], event)
            }
        })
        .await
}

/// The account's kinds of event in order, one index lookup per kind (the next kind after the
/// last one found): `DISTINCT` would read the index entry of every event.
const KINDS: &str = "WITH RECURSIVE k (kind) AS ( \
        SELECT (SELECT min(kind) FROM events WHERE account_id = $1) \
        UNION ALL SELECT (SELECT min(kind) FROM events WHERE account_id = $1 AND kind > k.kind) \
        FROM k WHERE k.kind IS NOT NULL) \
    SELECT kind FROM k WHERE kind IS NOT NULL";

pub(super) async fn event_kinds(store: &SqliteStore, account_id: i64) -> Result<Vec<String>> {
    store.db.read(move |db| all(db, KINDS, [account_id], |r| r.get(0))).await
}
