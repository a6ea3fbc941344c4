//! Finding product instances and events the way the portal's lists do: one page, filtered,
//! without reading a whole pool (it may hold 100,000 instances) or a whole event log.

use super::events::event;
use super::instances::{instance_row, INSTANCE};
use super::sql::{all, one};
use super::SqliteStore;
use crate::*;

/// The instances of the pool whose hostname, PID, serial number or id holds the text (ASCII
/// case ignored; `instr`, so `%` and `_` are plain characters).
const MATCHING: &str = "WHERE virtual_account_id = $1 AND (instr(lower(hostname), $2) > 0 \
                        OR instr(lower(udi_pid), $2) > 0 OR instr(lower(udi_sn), $2) > 0 OR instr(lower(id), $2) > 0)";
/// Every instance of the pool: the pool index alone answers (no row is read to filter).
const EVERY: &str = "WHERE virtual_account_id = $1 AND $2 = ''";

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
            let filter = if text.is_empty() { EVERY } else { MATCHING };
            let total: i64 = one(
                db,
                &format!("SELECT COUNT(*) FROM instances {filter}"),
                rusqlite::params![virtual_account_id, text],
                |r| r.get(0),
            )?
            .unwrap_or(0);
            // The page's rows are found in the pool index (PID, serial) first, skipping `offset`
            // entries of the index rather than `offset` rows of the table; then only they are read.
            let page = all(
                db,
                &format!(
                    "{INSTANCE} WHERE rowid IN (SELECT rowid FROM instances {filter} \
                     ORDER BY udi_pid, udi_sn LIMIT $3 OFFSET $4) ORDER BY udi_pid, udi_sn"
                ),
                rusqlite::params![virtual_account_id, text, limit, offset],
                instance_row,
            )?;
            Ok((page, total))
        })
        .await
}

/// An account's events, newest first, walking `events_by_account` backwards: the walk stops at
/// the `limit`-th match.
const EVENTS: &str = "SELECT id, at, actor, kind, account_id, virtual_account_id, object, detail FROM events \
                      WHERE account_id = $1 AND ($2 = '' OR kind = $2) AND ($3 IS NULL OR at >= $3) \
                      AND ($4 IS NULL OR at < $4) AND ($5 = '' OR instr(lower(object), $5) > 0 \
                      OR instr(lower(detail), $5) > 0 OR instr(lower(actor), $5) > 0) \
                      AND ($6 IS NULL OR virtual_account_id IS NULL \
                           OR virtual_account_id IN (SELECT value FROM json_each($6))) \
                      ORDER BY id DESC LIMIT $7";

pub(super) async fn search_events(store: &SqliteStore, q: EventQuery) -> Result<Vec<Event>> {
    let text = q.text.trim().to_ascii_lowercase();
    let pools = q.pools.map(|ids| format!("[{}]", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")));
    store
        .db
        .read(move |db| {
            all(
                db,
                EVENTS,
                rusqlite::params![q.account_id, q.kind, q.from.map(|t| t.0), q.to.map(|t| t.0), text, pools, q.limit],
                event,
            )
        })
        .await
}

pub(super) async fn event_kinds(store: &SqliteStore, account_id: i64) -> Result<Vec<String>> {
    store
        .db
        .read(move |db| {
            all(db, "SELECT DISTINCT kind FROM events WHERE account_id = $1 ORDER BY kind", [account_id], |r| r.get(0))
        })
        .await
}
