//! Product instances (C-8, C-12, C-13): registration, usage reports, renewals, moves and
//! removals, each keeping its pool's in-use counters in step.

use super::accounts::{account_of_pool, account_row, fetch_pool, virtual_account_row, ACCOUNT, VIRTUAL_ACCOUNT};
use super::events::log;
use super::licenses::{counts_in, shift_pool_usage};
use super::nonces::insert_nonce;
use super::reservations::give_back;
use super::sql::{all, exec, one, ts, R};
use super::tokens::{token, TOKEN};
use super::SqliteStore;
use crate::*;
use rusqlite::{params, Connection, Row};

/// [`INSTANCE`] as a literal, for queries built on it at compile time (`concat!`).
macro_rules! select_instances {
    () => {
        "SELECT id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released, previous_key_algorithm, previous_public_key, evaluation_used_ms FROM instances"
    };
}
/// The instance's columns, in the order [`instance_row`] reads them: by position, since
/// rusqlite finds a column by name by comparing it with each column name of the statement
/// (half the cost of reading these 16 values; an authorization reads two such rows).
pub(super) const INSTANCE: &str = select_instances!();
/// One instance by id: the query of every device request, a constant rather than a string
/// formatted per call.
const INSTANCE_BY_ID: &str = concat!(select_instances!(), " WHERE id = $1");

/// A row of [`INSTANCE`], each column read by its position there (a value of the wrong type is
/// still refused, as by name).
pub(super) fn instance_row(row: &Row) -> R<Instance> {
    Ok(Instance {
        id: row.get(0)?,
        virtual_account_id: row.get(1)?,
        udi_pid: row.get(2)?,
        udi_sn: row.get(3)?,
        hostname: row.get(4)?,
        registered_at: ts(row, 5)?,
        last_contact_at: ts(row, 6)?,
        certificate: CertificateFacts {
            serial: row.get(7)?,
            expires_at: ts(row, 8)?,
            key_algorithm: row.get(9)?,
            public_key: row.get(10)?,
        },
        export_controlled: row.get(11)?,
        usage_released: row.get(12)?,
        previous_key: match (row.get(13)?, row.get(14)?) {
            (Some(algorithm), Some(public_key)) => Some(StoredKey { algorithm, public_key }),
            _ => None,
        },
        evaluation_used_ms: row.get(15)?,
    })
}

pub(super) fn usage_of(db: &Connection, id: &str) -> Result<BTreeMap<String, i64>> {
    let pairs =
        all(db, "SELECT tag, count FROM instance_usage WHERE instance_id = $1", [id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(pairs.into_iter().collect())
}

fn fetch_instance(db: &Connection, id: &str) -> Result<Instance> {
    one(db, INSTANCE_BY_ID, [id], instance_row)?.ok_or_else(|| no_instance(id))
}

fn no_instance(id: &str) -> StoreError {
    StoreError::NotFound(format!("product instance {id} does not exist"))
}

/// The instance `id`, which must still be in the pool `from` when one is given.
fn instance_in(db: &Connection, id: &str, from: Option<i64>) -> Result<Instance> {
    let found = fetch_instance(db, id)?;
    match from {
        Some(pool) if pool != found.virtual_account_id => Err(StoreError::Conflict(format!(
            "{} is no longer in virtual account '{}' (a concurrent change moved it)",
            found.udi(),
            fetch_pool(db, pool)?.name
        ))),
        _ => Ok(found),
    }
}

/// Deletes an instance, giving its usage back unless already released.
pub(super) fn delete_instance(db: &Connection, found: &Instance) -> Result<()> {
    if !found.usage_released {
        let usage = usage_of(db, &found.id)?;
        shift_pool_usage(db, found.virtual_account_id, &usage, -1)?;
    }
    exec(db, "DELETE FROM instance_usage WHERE instance_id = $1", [&found.id])?;
    exec(db, "DELETE FROM instances WHERE id = $1", [&found.id])?;
    Ok(())
}

/// Answers a registration repeated by the key already registered (see `register_instance`).
fn repeat_registration(
    db: &Connection,
    old: &Instance,
    r: &NewInstance,
    now: Timestamp,
) -> std::result::Result<Registered, RegisterRefusal> {
    exec(
        db,
        "UPDATE instances SET cert_serial = $1, cert_expires_at = $2, hostname = $3, last_contact_at = $4, evaluation_used_ms = $5 WHERE id = $6",
        params![r.certificate.serial, r.certificate.expires_at.0, r.hostname, now.0, r.evaluation_used_ms, old.id],
    )?;
    let detail = format!("instance {} (registration repeated by its key)", old.id);
    registered(db, &old.id, detail, None, now)
}

/// Logs a registration of instance `id` and says where it landed.
pub(super) fn registered(
    db: &Connection,
    id: &str,
    detail: String,
    replaced: Option<String>,
    now: Timestamp,
) -> std::result::Result<Registered, RegisterRefusal> {
    let inst = fetch_instance(db, id)?;
    let va = one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [inst.virtual_account_id], virtual_account_row)?
        .ok_or_else(|| StoreError::Corrupt("instance without pool".into()))?;
    let acct = one(db, &format!("{ACCOUNT} WHERE id = $1"), [va.account_id], account_row)?
        .ok_or_else(|| StoreError::Corrupt("pool without account".into()))?;
    let udi = inst.udi();
    log(db, now, &udi, "instance.registered", Some(acct.id), Some(va.id), &udi, detail)?;
    Ok(Registered { instance: inst, virtual_account: va, account: acct, replaced })
}

pub(super) async fn register_instance(
    store: &SqliteStore,
    r: NewInstance,
    now: Timestamp,
) -> std::result::Result<Registered, RegisterRefusal> {
    store.db
        .write(move |db| {
            use smartlic_core::TokenStatus;
            let tok = one(db, &format!("{TOKEN} WHERE token_hash = $1"), [&r.token_hash], token)?
                .ok_or(RegisterRefusal::InvalidToken)?;
            let status = tok.facts().status_at(now);
            let existing = one(db, &format!("{INSTANCE} WHERE udi_pid = $1 AND udi_sn = $2"), params![r.udi_pid, r.udi_sn], instance_row)?;
            let token_account = account_of_pool(db, tok.virtual_account_id)?;
            let same_account = |old: &Instance| account_of_pool(db, old.virtual_account_id).map(|a| a == token_account);
            let same_key = |old: &Instance| {
                old.certificate.key_algorithm == r.certificate.key_algorithm
                    && old.certificate.public_key == r.certificate.public_key
            };
            if let Some(old) = existing.as_ref().filter(|old| same_key(old)) {
                if !same_account(old)? {
                    return Err(RegisterRefusal::AlreadyRegistered);
                }
                // The same key registering the same UDI in the same smart account again: a
                // retry after a lost answer (the CSR proves possession of the key). It gets
                // a new certificate for that key, and the token that admitted it counts once.
                if !matches!(status, TokenStatus::Active | TokenStatus::UsedUp) {
                    return Err(RegisterRefusal::InvalidToken);
                }
                return repeat_registration(db, old, &r, now);
            }
            if status != TokenStatus::Active {
                return Err(RegisterRefusal::InvalidToken);
            }
            let replaced = match existing {
                Some(_) if !r.force => return Err(RegisterRefusal::AlreadyRegistered),
                // Force replaces only within the token's smart account; elsewhere the device
                // gets the same answer as without force, and learns nothing of that account.
                Some(old) if !same_account(&old)? => return Err(RegisterRefusal::AlreadyRegistered),
                Some(old) => {
                    delete_instance(db, &old)?;
                    Some(old.id)
                }
                None => None,
            };
            exec(db, "UPDATE registration_tokens SET uses = uses + 1 WHERE id = $1", [tok.id])?;
            exec(
                db,
                "INSERT INTO instances (id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at,
                 cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released, evaluation_used_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, FALSE, $12)",
                params![
                    r.id,
                    tok.virtual_account_id,
                    r.udi_pid,
                    r.udi_sn,
                    r.hostname,
                    now.0,
                    r.certificate.serial,
                    r.certificate.expires_at.0,
                    r.certificate.key_algorithm,
                    r.certificate.public_key,
                    tok.export_controlled,
                    r.evaluation_used_ms
                ],
            )?;
            let detail = match &replaced {
                Some(old) => format!("instance {} (forced, replaces {old})", r.id),
                None => format!("instance {}", r.id),
            };
            registered(db, &r.id, detail, replaced, now)
        })
        .await
}

pub(super) async fn instance(store: &SqliteStore, id: &str) -> Result<Option<Instance>> {
    // By primary key, on every device request: on the calling thread (see `Engine::read_now`).
    store.db.read_now(|db| one(db, INSTANCE_BY_ID, [id], instance_row))
}

pub(super) async fn instances(store: &SqliteStore, filter: InstanceFilter) -> Result<Vec<Instance>> {
    store.db
        .read(move |db| match filter {
            InstanceFilter::VirtualAccount(va) => {
                all(db, &format!("{INSTANCE} WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn"), [va], instance_row)
            }
            InstanceFilter::Account(a) => all(
                db,
                &format!(
                    "{INSTANCE} WHERE virtual_account_id IN (SELECT id FROM virtual_accounts WHERE account_id = $1) ORDER BY udi_pid, udi_sn"
                ),
                [a],
                instance_row,
            ),
            // `+udi_pid`: without it SQLite orders by walking the (PID, serial) index over
            // every instance, checking each one's contact time (a scan of the table at each
            // jobs run); this way it finds the few silent ones by contact time, then sorts them.
            InstanceFilter::SilentSince(t) => {
                all(db, &format!("{INSTANCE} WHERE last_contact_at <= $1 ORDER BY +udi_pid, udi_sn"), [t.0], instance_row)
            }
        })
        .await
}

pub(super) async fn instances_page(
    store: &SqliteStore,
    virtual_account_ids: Vec<i64>,
    after: Option<InstanceKey>,
    limit: i64,
) -> Result<Vec<Instance>> {
    let ranges = crate::listing::pool_ranges(virtual_account_ids, after.as_ref());
    store
        .db
        .read(move |db| {
            let mut page = Vec::new();
            for (pool, from) in ranges {
                let left = limit - i64::try_from(page.len()).unwrap_or(i64::MAX);
                if left <= 0 {
                    break;
                }
                // One range of the (pool, PID, serial) index, in its order: no sort.
                page.extend(match from {
                    Some((pid, sn)) => all(
                        db,
                        &format!(
                            "{INSTANCE} WHERE virtual_account_id = $1 AND (udi_pid, udi_sn) > ($2, $3) \
                             ORDER BY udi_pid, udi_sn LIMIT $4"
                        ),
                        params![pool, pid, sn, left],
                        instance_row,
                    )?,
                    None => all(
                        db,
                        &format!("{INSTANCE} WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn LIMIT $2"),
                        params![pool, left],
                        instance_row,
                    )?,
                });
            }
            Ok(page)
        })
        .await
}

pub(super) async fn instances_at(
    store: &SqliteStore,
    virtual_account_ids: Vec<i64>,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<Instance>)> {
    // The pools as one JSON array parameter (see `instances_usage`).
    let pools = serde_json::to_string(&virtual_account_ids).map_err(|e| StoreError::Database(e.to_string()))?;
    store
        .db
        .read(move |db| {
            const IN_POOLS: &str = "WHERE virtual_account_id IN (SELECT value FROM json_each($1))";
            let total = one(db, &format!("SELECT COUNT(*) FROM instances {IN_POOLS}"), [&pools], |r| r.get(0))?;
            let sql = format!("{INSTANCE} {IN_POOLS} ORDER BY virtual_account_id, udi_pid, udi_sn LIMIT $2 OFFSET $3");
            let page = all(db, &sql, params![pools, limit, offset], instance_row)?;
            Ok((total.unwrap_or(0), page))
        })
        .await
}

pub(super) async fn instances_usage(
    store: &SqliteStore,
    ids: Vec<String>,
) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
    // The ids as one JSON array parameter: one short statement whatever the page's size. A
    // list of numbered parameters (`IN ($1, ..., $1000)`) is parsed again at each call once
    // ANALYZE has run (the plan may depend on the values bound), and SQLite looks each
    // parameter name up among the earlier ones: most of a page's time at 5,000 instances.
    let ids = serde_json::to_string(&ids).map_err(|e| StoreError::Database(e.to_string()))?;
    store
        .db
        .read(move |db| {
            let rows: Vec<(String, String, i64)> = all(
                db,
                "SELECT instance_id, tag, count FROM instance_usage WHERE instance_id IN (SELECT value FROM json_each($1))",
                [ids],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let mut usage: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
            for (id, tag, count) in rows {
                usage.entry(id).or_default().insert(tag, count);
            }
            Ok(usage)
        })
        .await
}

pub(super) async fn renew_certificate(
    store: &SqliteStore,
    id: &str,
    cert: &CertificateFacts,
    now: Timestamp,
) -> Result<()> {
    let (id, cert) = (id.to_string(), cert.clone());
    store.db
        .write(move |db| {
            let found = fetch_instance(db, &id)?;
            let previous = found.previous_key.clone().unwrap_or(StoredKey {
                algorithm: found.certificate.key_algorithm.clone(),
                public_key: found.certificate.public_key.clone(),
            });
            exec(
                db,
                "UPDATE instances SET cert_serial = $1, cert_expires_at = $2, key_algorithm = $3, public_key = $4, last_contact_at = $5,
                 previous_key_algorithm = $6, previous_public_key = $7 WHERE id = $8",
                params![
                    cert.serial,
                    cert.expires_at.0,
                    cert.key_algorithm,
                    cert.public_key,
                    now.0,
                    previous.algorithm,
                    previous.public_key,
                    id
                ],
            )?;
            let account_id = account_of_pool(db, found.virtual_account_id)?;
            let udi = found.udi();
            let detail = format!("ID certificate {} valid until {}", cert.serial, cert.expires_at);
            log(db, now, &udi, "instance.id-renewed", Some(account_id), Some(found.virtual_account_id), &udi, detail)
        })
        .await
}

pub(super) async fn forget_previous_key(store: &SqliteStore, id: &str) -> Result<()> {
    let id = id.to_string();
    store
        .db
        .write(move |db| {
            exec(
                db,
                "UPDATE instances SET previous_key_algorithm = NULL, previous_public_key = NULL WHERE id = $1",
                [id],
            )
            .map(drop)
        })
        .await
}

pub(super) async fn report_usage(store: &SqliteStore, report: UsageReport, now: Timestamp) -> Result<PoolCounts> {
    let UsageReport { instance_id: id, usage, hostname, nonce, nonce_expires_at } = report;
    store
        .db
        .write(move |db| {
            if !insert_nonce(db, &id, &nonce, nonce_expires_at)? {
                return Err(StoreError::Replay);
            }
            // What the report changes of the instance, not the whole row: the caller authenticated
            // the request with the instance as read before.
            let (pool, usage_released, old_hostname) = one(
                db,
                "SELECT virtual_account_id, usage_released, hostname FROM instances WHERE id = $1",
                [&id],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?, r.get::<_, String>(2)?)),
            )?
            .ok_or_else(|| no_instance(&id))?;
            let old = usage_of(db, &id)?;
            let wanted: BTreeMap<String, i64> = usage.into_iter().filter(|(_, c)| *c > 0).collect();
            // Only the difference touches the pool counters; a released instance comes back whole.
            let mut delta: BTreeMap<String, i64> = BTreeMap::new();
            if usage_released {
                delta.clone_from(&wanted);
            } else {
                for (t, c) in &wanted {
                    *delta.entry(t.clone()).or_default() += c;
                }
                for (t, c) in &old {
                    *delta.entry(t.clone()).or_default() -= c;
                }
            }
            shift_pool_usage(db, pool, &delta, 1)?;
            if old != wanted {
                exec(db, "DELETE FROM instance_usage WHERE instance_id = $1", [&id])?;
                for (t, c) in &wanted {
                    exec(
                        db,
                        "INSERT INTO instance_usage (instance_id, tag, count) VALUES ($1, $2, $3)",
                        params![id, t, c],
                    )?;
                }
            }
            let hostname = hostname.unwrap_or_default();
            // The hostname is named only when it changed: naming it runs the search index's
            // trigger (0012) at every contact, even when its condition then finds nothing to do.
            if hostname == old_hostname {
                exec(
                    db,
                    "UPDATE instances SET last_contact_at = $1, usage_released = FALSE WHERE id = $2",
                    params![now.0, id],
                )?;
            } else {
                exec(
                    db,
                    "UPDATE instances SET last_contact_at = $1, usage_released = FALSE, hostname = $2 WHERE id = $3",
                    params![now.0, hostname, id],
                )?;
            }
            counts_in(db, pool, now)
        })
        .await
}

pub(super) async fn move_instances(
    store: &SqliteStore,
    moves: Vec<InstanceMove>,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<Instance>> {
    let actor = actor.to_string();
    store
        .db
        .write(move |db| {
            let mut moved = Vec::with_capacity(moves.len());
            for m in moves {
                let found = instance_in(db, &m.instance_id, m.from_virtual_account_id)?;
                let (from, to) = (fetch_pool(db, found.virtual_account_id)?, fetch_pool(db, m.to_virtual_account_id)?);
                if to.account_id != from.account_id {
                    return Err(StoreError::NotFound(format!(
                        "virtual account {} is not in the smart account of {}",
                        to.id,
                        found.udi()
                    )));
                }
                if !found.usage_released {
                    let usage = usage_of(db, &found.id)?;
                    shift_pool_usage(db, from.id, &usage, -1)?;
                    shift_pool_usage(db, to.id, &usage, 1)?;
                }
                exec(db, "UPDATE instances SET virtual_account_id = $1 WHERE id = $2", params![to.id, found.id])?;
                let detail = format!("moved from virtual account '{}' to '{}'", from.name, to.name);
                log(db, now, &actor, "instance.moved", Some(to.account_id), Some(to.id), &found.udi(), detail)?;
                moved.push(Instance { virtual_account_id: to.id, ..found });
            }
            Ok(moved)
        })
        .await
}

pub(super) async fn remove_instances(
    store: &SqliteStore,
    removals: Vec<Removal>,
    kind: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<Removed>> {
    let (event, actor) = (format!("instance.{kind}"), actor.to_string());
    store
        .db
        .write(move |db| {
            let mut done = Vec::with_capacity(removals.len());
            for removal in removals {
                done.push(match removal {
                    Removal::Reservation(id) => Removed::Reservation(give_back(db, id, &actor, now)?),
                    Removal::Instance { id, from_virtual_account_id } => {
                        let found = instance_in(db, &id, from_virtual_account_id)?;
                        delete_instance(db, &found)?;
                        let account_id = account_of_pool(db, found.virtual_account_id)?;
                        let (pool, udi) = (Some(found.virtual_account_id), found.udi());
                        log(db, now, &actor, &event, Some(account_id), pool, &udi, format!("instance {id}"))?;
                        Removed::Instance(found)
                    }
                });
            }
            Ok(done)
        })
        .await
}

pub(super) async fn release_silent_usage(
    store: &SqliteStore,
    cutoff: Timestamp,
    now: Timestamp,
) -> Result<Vec<String>> {
    store
        .db
        .write(move |db| {
            let silent = all(
                db,
                &format!("{INSTANCE} WHERE last_contact_at < $1 AND usage_released = FALSE"),
                [cutoff.0],
                instance_row,
            )?;
            for inst in &silent {
                let usage = usage_of(db, &inst.id)?;
                shift_pool_usage(db, inst.virtual_account_id, &usage, -1)?;
                exec(db, "UPDATE instances SET usage_released = TRUE WHERE id = $1", [&inst.id])?;
                let account_id = account_of_pool(db, inst.virtual_account_id)?;
                let detail = format!("not heard from since {}; usage released to the pool", inst.last_contact_at);
                let udi = inst.udi();
                log(
                    db,
                    now,
                    "system",
                    "instance.usage-released",
                    Some(account_id),
                    Some(inst.virtual_account_id),
                    &udi,
                    detail,
                )?;
            }
            Ok(silent.into_iter().map(|i| i.id).collect())
        })
        .await
}

pub(super) async fn expired_instances(store: &SqliteStore, now: Timestamp) -> Result<Vec<String>> {
    store
        .db
        .read(move |db| all(db, "SELECT id FROM instances WHERE cert_expires_at <= $1", [now.0], |r| r.get(0)))
        .await
}

pub(super) async fn instance_count(store: &SqliteStore) -> Result<i64> {
    store.db.read(|db| Ok(db.query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))?)).await
}
