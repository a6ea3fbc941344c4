//! Purchased licenses and the pool counters they are weighed against (C-4, C-5). Sums are
//! cast back to BIGINT: PostgreSQL's SUM of BIGINT is NUMERIC.

use super::accounts::{account_of_pool, fetch_pool};
use super::events::log;
use super::sql::{get, opt_ts, text_column, ts, Args, Tx};
use super::PostgresStore;
use crate::*;
use smartlic_core::LicenseTerm;
use tokio_postgres::Row;

pub(super) const LICENSE: &str = "SELECT id, virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at FROM licenses";

pub(super) fn license(row: &Row) -> Result<LicenseRecord> {
    let kind = text_column(row, "licenses.kind", LicenseKind::parse)?;
    Ok(LicenseRecord {
        id: get(row, "id")?,
        virtual_account_id: get(row, "virtual_account_id")?,
        tag: get(row, "tag")?,
        sku: get(row, "sku")?,
        quantity: get(row, "quantity")?,
        term: LicenseTerm { kind, start: opt_ts(row, "start_at")?, end: opt_ts(row, "end_at")? },
        subscription_id: get(row, "subscription_id")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Adds `sign` × the usage of an instance to its pool's in-use counters, behind the pool's gate
/// (see `engine.rs`): one statement updates the gate first (its join needs the gate's row
/// before it adds anything), then adds to each tag's counter in tag order with an upsert that
/// adds, so concurrent changes of one pool add up rather than overwrite each other, even at
/// READ COMMITTED.
pub(super) async fn shift_pool_usage(
    tx: &Tx<'_>,
    virtual_account_id: i64,
    usage: &BTreeMap<String, i64>,
    sign: i64,
) -> Result<()> {
    let (tags, counts): (Vec<&str>, Vec<i64>) =
        usage.iter().filter(|(_, c)| **c != 0).map(|(t, c)| (t.as_str(), sign * c)).unzip();
    if tags.is_empty() {
        return Ok(());
    }
    let changed = tx
        .exec(
            "WITH gate AS (UPDATE virtual_accounts SET usage_changes = usage_changes + 1 WHERE id = $1 RETURNING id)
             INSERT INTO pool_usage (virtual_account_id, tag, in_use)
             SELECT gate.id, u.tag, u.n FROM gate, unnest($2::TEXT[], $3::BIGINT[]) AS u(tag, n)
             ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = pool_usage.in_use + excluded.in_use",
            &[&virtual_account_id, &tags, &counts],
        )
        .await?;
    if changed != tags.len() as u64 {
        return Err(StoreError::NotFound(format!("virtual account {virtual_account_id} does not exist")));
    }
    Ok(())
}

/// The pool's counts for a serializable transaction that decides on them (a reservation, a
/// transfer): its gate locked FOR SHARE first (see `engine.rs`), so a usage report committed
/// since the transaction's snapshot makes it run again, and one still to come waits for it.
pub(super) async fn counts_to_decide(tx: &Tx<'_>, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
    tx.value::<i64>("SELECT usage_changes FROM virtual_accounts WHERE id = $1 FOR SHARE", &[&virtual_account_id])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {virtual_account_id} does not exist")))?;
    counts_in(tx, virtual_account_id, now).await
}

/// Moves one item of a transfer: whole records while they fit, then a split one. Licenses valid
/// now go, perpetual ones first, then those whose term ends last; what reservations draw from a
/// record stays with it in the pool, so only its undrawn part may go.
async fn move_licenses(
    tx: &Tx<'_>,
    from: &VirtualAccount,
    to: &VirtualAccount,
    t: &Transfer,
    now: Timestamp,
) -> Result<()> {
    let records = tx
        .all(
            &format!(
                "{LICENSE} WHERE virtual_account_id = $1 AND tag = $2 AND (start_at IS NULL OR start_at <= $3)
                 AND (end_at IS NULL OR end_at > $3) ORDER BY CASE kind WHEN 'perpetual' THEN 0 ELSE 1 END, end_at DESC, id"
            ),
            &[&from.id, &t.tag, &now.0],
            license,
        )
        .await?
        ;
    let drawn = drawn_in(tx, from.id).await?;
    for (r, take) in crate::rules::transfer_plan(records, &drawn, t, from)? {
        if take == r.quantity {
            tx.exec("UPDATE licenses SET virtual_account_id = $1 WHERE id = $2", &[&to.id, &r.id]).await?;
        } else {
            tx.exec("UPDATE licenses SET quantity = quantity - $1 WHERE id = $2", &[&take, &r.id]).await?;
            tx.exec(
                "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
                 SELECT $1, tag, sku, $2, kind, start_at, end_at, subscription_id, created_at FROM licenses WHERE id = $3",
                &[&to.id, &take, &r.id],
            )
            .await?;
        }
    }
    Ok(())
}

/// How many licenses of each purchase record of the pool active reservations draw (those of any
/// pool: a record keeps its draws when it is transferred).
pub(super) async fn drawn_in(tx: &Tx<'_>, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>> {
    let pairs = tx
        .all(
            "SELECT d.license_id, SUM(d.quantity)::BIGINT FROM license_draws d JOIN licenses l ON l.id = d.license_id
             WHERE l.virtual_account_id = $1 GROUP BY d.license_id",
            &[&virtual_account_id],
            |r| Ok((get(r, 0)?, get(r, 1)?)),
        )
        .await?;
    Ok(pairs.into_iter().collect())
}

/// The pool's counts, read by one statement: one snapshot even at READ COMMITTED.
pub(super) async fn counts_in(tx: &Tx<'_>, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
    let rows = tx
        .all(
            // Reserved licenses count while the records they are drawn from are valid, like purchased ones.
            "SELECT 0, tag, SUM(quantity)::BIGINT FROM licenses WHERE virtual_account_id = $1
             AND (start_at IS NULL OR start_at <= $2) AND (end_at IS NULL OR end_at > $2) GROUP BY tag
             UNION ALL SELECT 1, tag, in_use FROM pool_usage WHERE virtual_account_id = $1 AND in_use <> 0
             UNION ALL SELECT 2, d.tag, SUM(d.quantity)::BIGINT FROM license_draws d JOIN licenses l ON l.id = d.license_id
             WHERE d.virtual_account_id = $1 AND (l.start_at IS NULL OR l.start_at <= $2) AND (l.end_at IS NULL OR l.end_at > $2)
             GROUP BY d.tag HAVING SUM(d.quantity) <> 0",
            &[&virtual_account_id, &now.0],
            |r| Ok((get::<i32>(r, 0)?, (get(r, 1)?, get(r, 2)?))),
        )
        .await?;
    // Which of the three counts a row is: the first column, 0, 1 or 2.
    let mut counts: [Vec<(String, i64)>; 3] = Default::default();
    for (kind, count) in rows {
        counts[kind as usize].push(count);
    }
    let [purchased, in_use, reserved] = counts;
    crate::rules::pool_counts(virtual_account_id, purchased, in_use, reserved)
}

pub(super) async fn add_license(
    store: &PostgresStore,
    new: NewLicense,
    actor: &str,
    now: Timestamp,
) -> Result<LicenseRecord> {
    write!(store, |tx| {
        let account_id = account_of_pool(&tx, new.virtual_account_id).await?;
        let mut detail = format!("{} {} license(s)", new.quantity, new.term.kind.as_str());
        if !new.sku.is_empty() {
            detail.push_str(&format!(", SKU {}", new.sku));
        }
        let record = insert_license(&tx, new.clone(), now).await?;
        log(&tx, now, actor, "license.added", Some(account_id), Some(record.virtual_account_id), &record.tag, detail)
            .await?;
        Ok(record)
    })
}

/// Stores a purchase record; the caller logs the event that says why.
pub(super) async fn insert_license(tx: &Tx<'_>, new: NewLicense, now: Timestamp) -> Result<LicenseRecord> {
    let id = tx
        .insert(
            "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &new.virtual_account_id,
                &new.tag,
                &new.sku,
                &new.quantity,
                &new.term.kind.as_str(),
                &new.term.start.map(|t| t.0),
                &new.term.end.map(|t| t.0),
                &new.subscription_id,
                &now.0,
            ],
        )
        .await?;
    Ok(new.recorded(id, now))
}

pub(super) async fn licenses(store: &PostgresStore, virtual_account_id: i64) -> Result<Vec<LicenseRecord>> {
    read!(store, |tx| {
        tx.all(&format!("{LICENSE} WHERE virtual_account_id = $1 ORDER BY tag, id"), &[&virtual_account_id], license)
            .await
    })
}

pub(super) async fn pool_counts(store: &PostgresStore, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
    read!(store, |tx| counts_in(&tx, virtual_account_id, now).await)
}

pub(super) async fn drawn(store: &PostgresStore, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>> {
    read!(store, |tx| drawn_in(&tx, virtual_account_id).await)
}

pub(super) async fn transfer_licenses(
    store: &PostgresStore,
    from: i64,
    transfers: Vec<Transfer>,
    check: TransferCheck,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    write!(store, |tx| {
        let source = fetch_pool(&tx, from).await?;
        let mut outgoing = BTreeMap::new();
        for t in &transfers {
            *outgoing.entry(t.tag.clone()).or_insert(0) += t.quantity;
        }
        check(&counts_to_decide(&tx, from, now).await?, &outgoing).map_err(StoreError::Conflict)?;
        for t in &transfers {
            let target = fetch_pool(&tx, t.to_virtual_account_id).await?;
            if target.account_id != source.account_id {
                return Err(StoreError::NotFound(format!(
                    "virtual account {} is not in the smart account of '{}'",
                    target.id, source.name
                )));
            }
            if target.id == source.id {
                return Err(StoreError::Conflict("source and target virtual accounts are the same".into()));
            }
            move_licenses(&tx, &source, &target, t, now).await?;
            let detail = format!("{} moved to virtual account '{}'", t.quantity, target.name);
            log(&tx, now, actor, "license.transferred", Some(source.account_id), Some(source.id), &t.tag, detail)
                .await?;
        }
        Ok(())
    })
}

/// Per (pool, tag) counts read by `sql`, as a map.
async fn counts_by_pool(tx: &Tx<'_>, sql: &str, args: Args<'_>) -> Result<BTreeMap<(i64, String), i64>> {
    let rows = tx.all(sql, args, |r| Ok(((get(r, 0)?, get(r, 1)?), get(r, 2)?))).await?;
    Ok(rows.into_iter().collect())
}

/// The stored counters against the records, everywhere (see [`Store::check_counters`]).
pub(super) async fn check_counters(store: &PostgresStore, now: Timestamp) -> Result<Vec<CounterDrift>> {
    read!(store, |tx| counter_drift(&tx, now).await)
}

/// See [`Store::repair_in_use_counters`]. Every pool's gate is locked first (see `engine.rs`),
/// as the transaction's first statement: a usage report committed since its snapshot makes it
/// run again, one still to come waits for it and then adds its change to the repaired count.
pub(super) async fn repair_in_use_counters(
    store: &PostgresStore,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<CounterDrift>> {
    write!(store, |tx| {
        tx.exec("SELECT id FROM virtual_accounts ORDER BY id FOR UPDATE", &[]).await?;
        let mut repaired = Vec::new();
        // A pool deleted since cannot be repaired (its counters went with it).
        for d in counter_drift(&tx, now).await?.into_iter().filter(|d| d.counter == "in use" && !d.account.is_empty()) {
            tx.exec(
                "UPDATE virtual_accounts SET usage_changes = usage_changes + 1 WHERE id = $1",
                &[&d.virtual_account_id],
            )
            .await?;
            tx.exec(
                "INSERT INTO pool_usage (virtual_account_id, tag, in_use) VALUES ($1, $2, $3)
                 ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = excluded.in_use",
                &[&d.virtual_account_id, &d.tag, &d.recomputed],
            )
            .await?;
            let account_id = account_of_pool(&tx, d.virtual_account_id).await?;
            let detail = crate::rules::repaired_detail(&d);
            log(&tx, now, actor, "counters.repaired", Some(account_id), Some(d.virtual_account_id), &d.tag, detail)
                .await?;
            repaired.push(d);
        }
        Ok(repaired)
    })
}

/// Each stored counter that differs from its count recomputed from the records, by pool and tag.
async fn counter_drift(tx: &Tx<'_>, now: Timestamp) -> Result<Vec<CounterDrift>> {
    let valid =
        |t: &str| format!("({t}.start_at IS NULL OR {t}.start_at <= $1) AND ({t}.end_at IS NULL OR {t}.end_at > $1)");
    let pairs = [
        (
            "in use",
            counts_by_pool(tx, "SELECT virtual_account_id, tag, in_use FROM pool_usage WHERE in_use <> 0", &[]).await?,
            counts_by_pool(
                tx,
                // The cloud's pools count the instances their satellite reported too.
                "SELECT va, tag, SUM(n)::BIGINT FROM (SELECT i.virtual_account_id AS va, u.tag AS tag, u.count AS n
                 FROM instance_usage u JOIN instances i ON i.id = u.instance_id WHERE i.usage_released = FALSE
                 UNION ALL SELECT virtual_account_id, tag, count FROM satellite_usage) AS counted GROUP BY va, tag",
                &[],
            )
            .await?,
        ),
        (
            "reserved",
            counts_by_pool(
                tx,
                &format!(
                    "SELECT d.virtual_account_id, d.tag, SUM(d.quantity)::BIGINT FROM license_draws d
                     JOIN licenses l ON l.id = d.license_id WHERE {} GROUP BY d.virtual_account_id, d.tag",
                    valid("l")
                ),
                &[&now.0],
            )
            .await?,
            counts_by_pool(
                tx,
                &format!(
                    "SELECT r.virtual_account_id, rl.tag, SUM(rl.quantity)::BIGINT FROM reservation_licenses rl
                     JOIN reservations r ON r.id = rl.reservation_id WHERE r.status = 'reserved' AND {}
                     GROUP BY r.virtual_account_id, rl.tag",
                    valid("rl")
                ),
                &[&now.0],
            )
            .await?,
        ),
    ];
    let mut drift = Vec::new();
    for (counter, stored, recomputed) in pairs {
        for ((pool, tag), s, r) in crate::rules::differences(&stored, &recomputed) {
            let names = tx
                .one(
                    "SELECT a.domain, v.name FROM virtual_accounts v JOIN smart_accounts a ON a.id = v.account_id WHERE v.id = $1",
                    &[&pool],
                    |r| Ok((get(r, 0)?, get(r, 1)?)),
                )
                .await?;
            let (account, virtual_account) =
                names.unwrap_or_else(|| (String::new(), format!("(deleted virtual account {pool})")));
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
