//! Purchased licenses and the pool counters they are weighed against (C-4, C-5): transfers,
//! in-use and reserved counts, and the check that recomputes the counters from the records.

use super::accounts::{account_of_pool, fetch_pool};
use super::events::log;
use super::sql::{all, exec, one, opt_ts, text_column, ts, R};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection, Row};
use smartlic_core::LicenseTerm;

pub(super) const LICENSE: &str = "SELECT id, virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at FROM licenses";

pub(super) fn license(row: &Row) -> R<LicenseRecord> {
    let kind = text_column(row, "licenses.kind", LicenseKind::parse)?;
    Ok(LicenseRecord {
        id: row.get("id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        tag: row.get("tag")?,
        sku: row.get("sku")?,
        quantity: row.get("quantity")?,
        term: LicenseTerm { kind, start: opt_ts(row, "start_at")?, end: opt_ts(row, "end_at")? },
        subscription_id: row.get("subscription_id")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Moves one item of a transfer: whole records while they fit, then a split one. Licenses valid
/// now go, perpetual ones first, then those whose term ends last; what reservations draw from a
/// record stays with it in the pool, so only its undrawn part may go.
fn move_licenses(
    db: &Connection,
    from: &VirtualAccount,
    to: &VirtualAccount,
    t: &Transfer,
    now: Timestamp,
) -> Result<()> {
    let records = all(
        db,
        &format!(
            "{LICENSE} WHERE virtual_account_id = $1 AND tag = $2 AND (start_at IS NULL OR start_at <= $3)
             AND (end_at IS NULL OR end_at > $3) ORDER BY CASE kind WHEN 'perpetual' THEN 0 ELSE 1 END, end_at DESC, id"
        ),
        params![from.id, t.tag, now.0],
        license,
    )?;
    let drawn = drawn_in(db, from.id)?;
    for (r, take) in crate::rules::transfer_plan(records, &drawn, t, from)? {
        if take == r.quantity {
            exec(db, "UPDATE licenses SET virtual_account_id = $1 WHERE id = $2", params![to.id, r.id])?;
        } else {
            exec(db, "UPDATE licenses SET quantity = quantity - $1 WHERE id = $2", params![take, r.id])?;
            exec(
                db,
                "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
                 SELECT $1, tag, sku, $2, kind, start_at, end_at, subscription_id, created_at FROM licenses WHERE id = $3",
                params![to.id, take, r.id],
            )?;
        }
    }
    Ok(())
}

/// Adds `sign` × the usage of an instance to its pool's in-use counters.
pub(super) fn shift_pool_usage(
    db: &Connection,
    virtual_account_id: i64,
    usage: &BTreeMap<String, i64>,
    sign: i64,
) -> Result<()> {
    for (tag, count) in usage.iter().filter(|(_, c)| **c != 0) {
        exec(
            db,
            "INSERT INTO pool_usage (virtual_account_id, tag, in_use) VALUES ($1, $2, $3)
             ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = pool_usage.in_use + excluded.in_use",
            params![virtual_account_id, tag, sign * count],
        )?;
    }
    Ok(())
}

/// How many licenses of each purchase record of the pool active reservations draw (those of any
/// pool: a record keeps its draws when it is transferred).
pub(super) fn drawn_in(db: &Connection, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>> {
    let pairs = all(
        db,
        "SELECT d.license_id, SUM(d.quantity) FROM license_draws d JOIN licenses l ON l.id = d.license_id
         WHERE l.virtual_account_id = $1 GROUP BY d.license_id",
        [virtual_account_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(pairs.into_iter().collect())
}

/// The pool's purchased, in-use and reserved counts per tag, read by one statement (each
/// statement run costs about as much as these small reads: an authorization reads them once).
pub(super) fn counts_in(db: &Connection, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
    let rows: Vec<(i64, String, i64)> = all(
        db,
        "SELECT 0, tag, SUM(quantity) FROM licenses WHERE virtual_account_id = $1
         AND (start_at IS NULL OR start_at <= $2) AND (end_at IS NULL OR end_at > $2) GROUP BY tag
         UNION ALL
         SELECT 1, tag, in_use FROM pool_usage WHERE virtual_account_id = $1 AND in_use <> 0
         UNION ALL
         -- Reserved licenses count while the records they are drawn from are valid, like purchased ones.
         SELECT 2, d.tag, SUM(d.quantity) FROM license_draws d JOIN licenses l ON l.id = d.license_id
         WHERE d.virtual_account_id = $1 AND (l.start_at IS NULL OR l.start_at <= $2) AND (l.end_at IS NULL OR l.end_at > $2)
         GROUP BY d.tag HAVING SUM(d.quantity) <> 0",
        params![virtual_account_id, now.0],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let [mut purchased, mut in_use, mut reserved]: [Vec<(String, i64)>; 3] = Default::default();
    for (kind, tag, n) in rows {
        match kind {
            0 => purchased.push((tag, n)),
            1 => in_use.push((tag, n)),
            _ => reserved.push((tag, n)),
        }
    }
    crate::rules::pool_counts(virtual_account_id, purchased, in_use, reserved)
}

/// Per (pool, tag) counts read by `sql`, as a map.
fn counts_by_pool(db: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<BTreeMap<(i64, String), i64>> {
    let rows = all(db, sql, args, |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    Ok(rows.into_iter().collect())
}

/// The stored counters against the records, everywhere (see [`Store::check_counters`]).
fn counter_drift(db: &Connection, now: Timestamp) -> Result<Vec<CounterDrift>> {
    let valid =
        |t: &str| format!("({t}.start_at IS NULL OR {t}.start_at <= $1) AND ({t}.end_at IS NULL OR {t}.end_at > $1)");
    let pairs = [
        (
            "in use",
            counts_by_pool(db, "SELECT virtual_account_id, tag, in_use FROM pool_usage WHERE in_use <> 0", [])?,
            counts_by_pool(
                db,
                // The cloud's pools count the instances their satellite reported too (0008).
                "SELECT va, tag, SUM(n) FROM (SELECT i.virtual_account_id AS va, u.tag AS tag, u.count AS n
                 FROM instance_usage u JOIN instances i ON i.id = u.instance_id WHERE i.usage_released = FALSE
                 UNION ALL SELECT virtual_account_id, tag, count FROM satellite_usage) GROUP BY va, tag",
                [],
            )?,
        ),
        (
            "reserved",
            counts_by_pool(
                db,
                &format!(
                    "SELECT d.virtual_account_id, d.tag, SUM(d.quantity) FROM license_draws d JOIN licenses l ON l.id = d.license_id
                     WHERE {} GROUP BY d.virtual_account_id, d.tag",
                    valid("l")
                ),
                [now.0],
            )?,
            counts_by_pool(
                db,
                &format!(
                    "SELECT r.virtual_account_id, rl.tag, SUM(rl.quantity) FROM reservation_licenses rl
                     JOIN reservations r ON r.id = rl.reservation_id WHERE r.status = 'reserved' AND {}
                     GROUP BY r.virtual_account_id, rl.tag",
                    valid("rl")
                ),
                [now.0],
            )?,
        ),
    ];
    let mut drift = Vec::new();
    for (counter, stored, recomputed) in pairs {
        for ((pool, tag), s, r) in crate::rules::differences(&stored, &recomputed) {
            let (account, virtual_account) = one(
                db,
                "SELECT a.domain, v.name FROM virtual_accounts v JOIN smart_accounts a ON a.id = v.account_id WHERE v.id = $1",
                [pool],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .unwrap_or_else(|| (String::new(), format!("(deleted virtual account {pool})")));
            drift.push(CounterDrift {
                virtual_account_id: pool,
                account,
                virtual_account,
                tag,
                counter,
                stored: s,
                recomputed: r,
            });
        }
    }
    Ok(drift)
}

/// See [`Store::repair_in_use_counters`]; the one writer makes the check and the repair atomic.
pub(super) async fn repair_in_use_counters(
    store: &SqliteStore,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<CounterDrift>> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let mut repaired = Vec::new();
            // A pool deleted since cannot be repaired (its counters went with it).
            for d in counter_drift(db, now)?.into_iter().filter(|d| d.counter == "in use" && !d.account.is_empty()) {
                exec(
                    db,
                    "INSERT INTO pool_usage (virtual_account_id, tag, in_use) VALUES ($1, $2, $3)
                     ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = excluded.in_use",
                    params![d.virtual_account_id, d.tag, d.recomputed],
                )?;
                let account_id = account_of_pool(db, d.virtual_account_id)?;
                let detail = crate::rules::repaired_detail(&d);
                log(
                    db,
                    now,
                    &actor,
                    "counters.repaired",
                    Some(account_id),
                    Some(d.virtual_account_id),
                    &d.tag,
                    detail,
                )?;
                repaired.push(d);
            }
            Ok(repaired)
        })
        .await
}

pub(super) async fn add_license(
    store: &SqliteStore,
    new: NewLicense,
    actor: &str,
    now: Timestamp,
) -> Result<LicenseRecord> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let account_id = account_of_pool(db, new.virtual_account_id)?;
            let mut detail = format!("{} {} license(s)", new.quantity, new.term.kind.as_str());
            if !new.sku.is_empty() {
                detail.push_str(&format!(", SKU {}", new.sku));
            }
            let record = insert_license(db, new, now)?;
            log(
                db,
                now,
                &actor,
                "license.added",
                Some(account_id),
                Some(record.virtual_account_id),
                &record.tag,
                detail,
            )?;
            Ok(record)
        })
        .await
}

/// Stores a purchase record; the caller logs the event that says why.
pub(super) fn insert_license(db: &Connection, new: NewLicense, now: Timestamp) -> Result<LicenseRecord> {
    exec(
        db,
        "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        params![
            new.virtual_account_id,
            new.tag,
            new.sku,
            new.quantity,
            new.term.kind.as_str(),
            new.term.start.map(|t| t.0),
            new.term.end.map(|t| t.0),
            new.subscription_id,
            now.0
        ],
    )?;
    Ok(new.recorded(db.last_insert_rowid(), now))
}

pub(super) async fn licenses(store: &SqliteStore, virtual_account_id: i64) -> Result<Vec<LicenseRecord>> {
    store
        .db
        .read(move |db| {
            all(db, &format!("{LICENSE} WHERE virtual_account_id = $1 ORDER BY tag, id"), [virtual_account_id], license)
        })
        .await
}

pub(super) async fn transfer_licenses(
    store: &SqliteStore,
    from: i64,
    transfers: Vec<Transfer>,
    check: TransferCheck,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let source = fetch_pool(db, from)?;
            let mut outgoing = BTreeMap::new();
            for t in &transfers {
                *outgoing.entry(t.tag.clone()).or_insert(0) += t.quantity;
            }
            check(&counts_in(db, from, now)?, &outgoing).map_err(StoreError::Conflict)?;
            for t in &transfers {
                let target = fetch_pool(db, t.to_virtual_account_id)?;
                if target.account_id != source.account_id {
                    return Err(StoreError::NotFound(format!(
                        "virtual account {} is not in the smart account of '{}'",
                        target.id, source.name
                    )));
                }
                if target.id == source.id {
                    return Err(StoreError::Conflict("source and target virtual accounts are the same".into()));
                }
                move_licenses(db, &source, &target, t, now)?;
                let detail = format!("{} moved to virtual account '{}'", t.quantity, target.name);
                log(db, now, &actor, "license.transferred", Some(source.account_id), Some(source.id), &t.tag, detail)?;
            }
            Ok(())
        })
        .await
}

pub(super) async fn pool_counts(store: &SqliteStore, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
    store.db.read(move |db| counts_in(db, virtual_account_id, now)).await
}

pub(super) async fn drawn(store: &SqliteStore, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>> {
    store.db.read(move |db| drawn_in(db, virtual_account_id)).await
}

pub(super) async fn check_counters(store: &SqliteStore, now: Timestamp) -> Result<Vec<CounterDrift>> {
    store.db.read(move |db| counter_drift(db, now)).await
}
