//! Product instances (C-8, C-12, C-13): registration, usage reports, renewals, moves and
//! removals, each keeping its pool's in-use counters in step.

use super::accounts::{account_of_pool, account_row, fetch_pool, virtual_account_row, ACCOUNT, VIRTUAL_ACCOUNT};
use super::events::log;
use super::licenses::{counts_in, shift_pool_usage};
use super::nonces::insert_nonce;
use super::reservations::give_back;
use super::sql::{get, ts, Tx};
use super::tokens::{token, TOKEN};
use super::PostgresStore;
use crate::*;
use tokio_postgres::Row;

pub(super) const INSTANCE: &str = "SELECT id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released, previous_key_algorithm, previous_public_key, evaluation_used_ms FROM instances";

pub(super) fn instance_row(row: &Row) -> Result<Instance> {
    Ok(Instance {
        id: get(row, "id")?,
        virtual_account_id: get(row, "virtual_account_id")?,
        udi_pid: get(row, "udi_pid")?,
        udi_sn: get(row, "udi_sn")?,
        hostname: get(row, "hostname")?,
        registered_at: ts(row, "registered_at")?,
        last_contact_at: ts(row, "last_contact_at")?,
        certificate: CertificateFacts {
            serial: get(row, "cert_serial")?,
            expires_at: ts(row, "cert_expires_at")?,
            key_algorithm: get(row, "key_algorithm")?,
            public_key: get(row, "public_key")?,
        },
        export_controlled: get(row, "export_controlled")?,
        usage_released: get(row, "usage_released")?,
        previous_key: match (get(row, "previous_key_algorithm")?, get(row, "previous_public_key")?) {
            (Some(algorithm), Some(public_key)) => Some(StoredKey { algorithm, public_key }),
            _ => None,
        },
        evaluation_used_ms: get(row, "evaluation_used_ms")?,
    })
}

pub(super) async fn usage_of(tx: &Tx<'_>, id: &str) -> Result<BTreeMap<String, i64>> {
    let pairs = tx
        .all("SELECT tag, count FROM instance_usage WHERE instance_id = $1", &[&id], |r| Ok((get(r, 0)?, get(r, 1)?)))
        .await?;
    Ok(pairs.into_iter().collect())
}

async fn fetch_instance(tx: &Tx<'_>, id: &str) -> Result<Instance> {
    tx.one(&format!("{INSTANCE} WHERE id = $1"), &[&id], instance_row)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("product instance {id} does not exist")))
}

/// [`fetch_instance`] locked until commit, for a READ COMMITTED transaction that changes it: a
/// concurrent change of the instance commits before (and is seen) or waits (see `engine.rs`).
async fn lock_instance(tx: &Tx<'_>, id: &str) -> Result<Instance> {
    tx.one(&format!("{INSTANCE} WHERE id = $1 FOR UPDATE"), &[&id], instance_row)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("product instance {id} does not exist")))
}

/// Takes one use of the token `id` for a registration at `now`. One statement updates the
/// token's row and gives it back, locked until commit, and the shared rule judges the token as
/// that statement found it: refused (and everything undone) unless it was active then.
/// Concurrent registrations queue on the row and each counts the uses committed before it, so
/// a token of M uses admits exactly M. Called last, so the row stays locked only for this
/// statement and the commit.
async fn take_token_use(tx: &Tx<'_>, id: i64, now: Timestamp) -> std::result::Result<(), RegisterRefusal> {
    use smartlic_core::TokenStatus;
    let taken = tx
        .one("UPDATE registration_tokens SET uses = uses + 1 WHERE id = $1 RETURNING *", &[&id], token)
        .await?
        .ok_or(RegisterRefusal::InvalidToken)?;
    let found = RegistrationToken { uses: taken.uses - 1, ..taken };
    match found.facts().status_at(now) {
        TokenStatus::Active => Ok(()),
        _ => Err(RegisterRefusal::InvalidToken),
    }
}

/// The instance `id`, which must still be in the pool `from` when one is given.
async fn instance_in(tx: &Tx<'_>, id: &str, from: Option<i64>) -> Result<Instance> {
    let found = fetch_instance(tx, id).await?;
    match from {
        Some(pool) if pool != found.virtual_account_id => Err(StoreError::Conflict(format!(
            "{} is no longer in virtual account '{}' (a concurrent change moved it)",
            found.udi(),
            fetch_pool(tx, pool).await?.name
        ))),
        _ => Ok(found),
    }
}

/// Deletes an instance, giving its usage back unless already released. The instance's row goes
/// before the pool's counters change: every transaction takes the instance, then its pool's
/// gate (see `engine.rs`), so none waits for another in a circle.
pub(super) async fn delete_instance(tx: &Tx<'_>, found: &Instance) -> Result<()> {
    let usage = if found.usage_released { BTreeMap::new() } else { usage_of(tx, &found.id).await? };
    tx.exec("DELETE FROM instance_usage WHERE instance_id = $1", &[&found.id]).await?;
    tx.exec("DELETE FROM instances WHERE id = $1", &[&found.id]).await?;
    shift_pool_usage(tx, found.virtual_account_id, &usage, -1).await
}

/// Answers a registration repeated by the key already registered (see `register_instance`).
async fn repeat_registration(
    tx: &Tx<'_>,
    old: &Instance,
    r: &NewInstance,
    now: Timestamp,
) -> std::result::Result<Registered, RegisterRefusal> {
    tx.exec(
        "UPDATE instances SET cert_serial = $1, cert_expires_at = $2, hostname = $3, last_contact_at = $4, evaluation_used_ms = $5 WHERE id = $6",
        &[&r.certificate.serial, &r.certificate.expires_at.0, &r.hostname, &now.0, &r.evaluation_used_ms, &old.id],
    )
    .await?;
    let detail = format!("instance {} (registration repeated by its key)", old.id);
    registered(tx, &old.id, detail, None, now).await
}

/// Logs a registration of instance `id` and says where it landed.
async fn registered(
    tx: &Tx<'_>,
    id: &str,
    detail: String,
    replaced: Option<String>,
    now: Timestamp,
) -> std::result::Result<Registered, RegisterRefusal> {
    let inst = fetch_instance(tx, id).await?;
    let va = tx
        .one(&format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), &[&inst.virtual_account_id], virtual_account_row)
        .await?
        .ok_or_else(|| StoreError::Corrupt("instance without pool".into()))?;
    let acct = tx
        .one(&format!("{ACCOUNT} WHERE id = $1"), &[&va.account_id], account_row)
        .await?
        .ok_or_else(|| StoreError::Corrupt("pool without account".into()))?;
    let udi = inst.udi();
    log(tx, now, &udi, "instance.registered", Some(acct.id), Some(va.id), &udi, detail).await?;
    Ok(Registered { instance: inst, virtual_account: va, account: acct, replaced })
}

/// The rule is SQLite's (see there), run READ COMMITTED (see `engine.rs`): the token's use is
/// taken last ([`take_token_use`]), the instance holding the UDI is locked, and the unique UDI
/// decides between concurrent registrations of one device.
pub(super) async fn register_instance(
    store: &PostgresStore,
    r: NewInstance,
    now: Timestamp,
) -> std::result::Result<Registered, RegisterRefusal> {
    use smartlic_core::TokenStatus;
    guarded!(store, |tx| {
        // Read, not locked: a token only ever leaves the active state, so a status other than
        // active refuses at once; an active one is judged again when its use is taken.
        let tok = tx
            .one(&format!("{TOKEN} WHERE token_hash = $1"), &[&r.token_hash], token)
            .await?
            .ok_or(RegisterRefusal::InvalidToken)?;
        let status = tok.facts().status_at(now);
        let existing = tx
            .one(
                &format!("{INSTANCE} WHERE udi_pid = $1 AND udi_sn = $2 FOR UPDATE"),
                &[&r.udi_pid, &r.udi_sn],
                instance_row,
            )
            .await?;
        let token_account = account_of_pool(&tx, tok.virtual_account_id).await?;
        let same_key = |old: &Instance| {
            old.certificate.key_algorithm == r.certificate.key_algorithm
                && old.certificate.public_key == r.certificate.public_key
        };
        if let Some(old) = existing.as_ref().filter(|old| same_key(old)) {
            if account_of_pool(&tx, old.virtual_account_id).await? != token_account {
                return Err(RegisterRefusal::AlreadyRegistered);
            }
            // A retry after a lost answer: a new certificate for that key, the token counted once.
            if !matches!(status, TokenStatus::Active | TokenStatus::UsedUp) {
                return Err(RegisterRefusal::InvalidToken);
            }
            return repeat_registration(&tx, old, &r, now).await;
        }
        if status != TokenStatus::Active {
            return Err(RegisterRefusal::InvalidToken);
        }
        let replaced = match existing {
            Some(_) if !r.force => return Err(RegisterRefusal::AlreadyRegistered),
            // Force replaces only within the token's smart account.
            Some(old) if account_of_pool(&tx, old.virtual_account_id).await? != token_account => {
                return Err(RegisterRefusal::AlreadyRegistered)
            }
            Some(old) => {
                delete_instance(&tx, &old).await?;
                Some(old.id)
            }
            None => None,
        };
        let inserted = tx.exec(
            "INSERT INTO instances (id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at,
             cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released, evaluation_used_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, FALSE, $12) ON CONFLICT DO NOTHING",
            &[
                &r.id,
                &tok.virtual_account_id,
                &r.udi_pid,
                &r.udi_sn,
                &r.hostname,
                &now.0,
                &r.certificate.serial,
                &r.certificate.expires_at.0,
                &r.certificate.key_algorithm,
                &r.certificate.public_key,
                &tok.export_controlled,
                &r.evaluation_used_ms,
            ],
        )
        .await?;
        if inserted == 0 {
            // Another registration of the device (its UDI, or the same request's instance id)
            // committed since it was looked up: the next run sees it (a repeat, or a device
            // registered already).
            return Err(tx.race_lost(&format!("PID:{},SN:{} was registered", r.udi_pid, r.udi_sn)).into());
        }
        let detail = match &replaced {
            Some(old) => format!("instance {} (forced, replaces {old})", r.id),
            None => format!("instance {}", r.id),
        };
        let done = registered(&tx, &r.id, detail, replaced, now).await?;
        take_token_use(&tx, tok.id, now).await?;
        Ok(done)
    })
}

pub(super) async fn instance(store: &PostgresStore, id: &str) -> Result<Option<Instance>> {
    read!(store, |tx| tx.one(&format!("{INSTANCE} WHERE id = $1"), &[&id], instance_row).await)
}

pub(super) async fn instance_count(store: &PostgresStore) -> Result<i64> {
    read!(store, |tx| Ok(tx.value("SELECT COUNT(*) FROM instances", &[]).await?.unwrap_or(0)))
}

/// Run READ COMMITTED (see `engine.rs`): the nonce's primary key refuses a replay, the
/// instance is locked before its usage is read, and the pool's counters change last, behind
/// its gate, so the counts answered (one statement after the gate) include every change
/// committed before.
pub(super) async fn report_usage(store: &PostgresStore, report: UsageReport, now: Timestamp) -> Result<PoolCounts> {
    let UsageReport { instance_id: id, usage, hostname, nonce, nonce_expires_at } = report;
    guarded!(store, |tx| {
        if !insert_nonce(&tx, &id, &nonce, nonce_expires_at).await? {
            return Err(StoreError::Replay);
        }
        let found = lock_instance(&tx, &id).await?;
        let old = usage_of(&tx, &id).await?;
        let wanted: BTreeMap<String, i64> =
            usage.iter().filter(|(_, c)| **c > 0).map(|(t, c)| (t.clone(), *c)).collect();
        // Only the difference touches the pool counters; a released instance comes back whole.
        let mut delta: BTreeMap<String, i64> = BTreeMap::new();
        if found.usage_released {
            delta.clone_from(&wanted);
        } else {
            for (t, c) in &wanted {
                *delta.entry(t.clone()).or_default() += c;
            }
            for (t, c) in &old {
                *delta.entry(t.clone()).or_default() -= c;
            }
        }
        if old != wanted {
            tx.exec("DELETE FROM instance_usage WHERE instance_id = $1", &[&id]).await?;
            for (t, c) in &wanted {
                tx.exec("INSERT INTO instance_usage (instance_id, tag, count) VALUES ($1, $2, $3)", &[&id, t, c])
                    .await?;
            }
        }
        let hostname = hostname.clone().unwrap_or_default();
        tx.exec(
            "UPDATE instances SET last_contact_at = $1, usage_released = FALSE, hostname = $2 WHERE id = $3",
            &[&now.0, &hostname, &id],
        )
        .await?;
        shift_pool_usage(&tx, found.virtual_account_id, &delta, 1).await?;
        counts_in(&tx, found.virtual_account_id, now).await
    })
}

pub(super) async fn instances(store: &PostgresStore, filter: InstanceFilter) -> Result<Vec<Instance>> {
    read!(store, |tx| match filter {
        InstanceFilter::VirtualAccount(va) => {
            tx.all(&format!("{INSTANCE} WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn"), &[&va], instance_row)
                .await
        }
        InstanceFilter::Account(a) => {
            let sql = format!(
                "{INSTANCE} WHERE virtual_account_id IN (SELECT id FROM virtual_accounts WHERE account_id = $1) ORDER BY udi_pid, udi_sn"
            );
            tx.all(&sql, &[&a], instance_row).await
        }
        InstanceFilter::SilentSince(t) => {
            tx.all(&format!("{INSTANCE} WHERE last_contact_at <= $1 ORDER BY udi_pid, udi_sn"), &[&t.0], instance_row)
                .await
        }
    })
}

pub(super) async fn instances_page(
    store: &PostgresStore,
    virtual_account_ids: Vec<i64>,
    after: Option<InstanceKey>,
    limit: i64,
) -> Result<Vec<Instance>> {
    let ranges = crate::listing::pool_ranges(virtual_account_ids, after.as_ref());
    read!(store, |tx| {
        let mut page = Vec::new();
        for (pool, from) in &ranges {
            let left = limit - i64::try_from(page.len()).unwrap_or(i64::MAX);
            if left <= 0 {
                break;
            }
            // One range of the (pool, PID, serial) index, in its order: no sort.
            page.extend(match from {
                Some((pid, sn)) => {
                    let sql = format!(
                        "{INSTANCE} WHERE virtual_account_id = $1 AND (udi_pid, udi_sn) > ($2, $3) \
                         ORDER BY udi_pid, udi_sn LIMIT $4"
                    );
                    tx.all(&sql, &[pool, pid, sn, &left], instance_row).await?
                }
                None => {
                    let sql = format!("{INSTANCE} WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn LIMIT $2");
                    tx.all(&sql, &[pool, &left], instance_row).await?
                }
            });
        }
        Ok(page)
    })
}

pub(super) async fn instances_at(
    store: &PostgresStore,
    virtual_account_ids: Vec<i64>,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<Instance>)> {
    read!(store, |tx| {
        let total = tx
            .value("SELECT COUNT(*) FROM instances WHERE virtual_account_id = ANY($1)", &[&virtual_account_ids])
            .await?;
        let sql = format!(
            "{INSTANCE} WHERE virtual_account_id = ANY($1) ORDER BY virtual_account_id, udi_pid, udi_sn LIMIT $2 OFFSET $3"
        );
        let page = tx.all(&sql, &[&virtual_account_ids, &limit, &offset], instance_row).await?;
        Ok((total.unwrap_or(0), page))
    })
}

pub(super) async fn instances_usage(
    store: &PostgresStore,
    ids: Vec<String>,
) -> Result<BTreeMap<String, BTreeMap<String, i64>>> {
    read!(store, |tx| {
        let rows = tx
            .all("SELECT instance_id, tag, count FROM instance_usage WHERE instance_id = ANY($1)", &[&ids], |r| {
                Ok((get::<String>(r, 0)?, get::<String>(r, 1)?, get::<i64>(r, 2)?))
            })
            .await?;
        let mut usage: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for (id, tag, count) in rows {
            usage.entry(id).or_default().insert(tag, count);
        }
        Ok(usage)
    })
}

pub(super) async fn renew_certificate(
    store: &PostgresStore,
    id: &str,
    cert: &CertificateFacts,
    now: Timestamp,
) -> Result<()> {
    write!(store, |tx| {
        let found = fetch_instance(&tx, id).await?;
        let previous = found.previous_key.clone().unwrap_or(StoredKey {
            algorithm: found.certificate.key_algorithm.clone(),
            public_key: found.certificate.public_key.clone(),
        });
        tx.exec(
            "UPDATE instances SET cert_serial = $1, cert_expires_at = $2, key_algorithm = $3, public_key = $4, last_contact_at = $5,
             previous_key_algorithm = $6, previous_public_key = $7 WHERE id = $8",
            &[
                &cert.serial,
                &cert.expires_at.0,
                &cert.key_algorithm,
                &cert.public_key,
                &now.0,
                &previous.algorithm,
                &previous.public_key,
                &id,
            ],
        )
        .await?;
        let account_id = account_of_pool(&tx, found.virtual_account_id).await?;
        let udi = found.udi();
        let detail = format!("ID certificate {} valid until {}", cert.serial, cert.expires_at);
        log(&tx, now, &udi, "instance.id-renewed", Some(account_id), Some(found.virtual_account_id), &udi, detail).await
    })
}

pub(super) async fn forget_previous_key(store: &PostgresStore, id: &str) -> Result<()> {
    write!(store, |tx| {
        tx.exec("UPDATE instances SET previous_key_algorithm = NULL, previous_public_key = NULL WHERE id = $1", &[&id])
            .await
            .map(drop)
    })
}

pub(super) async fn move_instances(
    store: &PostgresStore,
    moves: Vec<InstanceMove>,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<Instance>> {
    write!(store, |tx| {
        let mut moved = Vec::with_capacity(moves.len());
        for m in &moves {
            let found = instance_in(&tx, &m.instance_id, m.from_virtual_account_id).await?;
            let from = fetch_pool(&tx, found.virtual_account_id).await?;
            let to = fetch_pool(&tx, m.to_virtual_account_id).await?;
            if to.account_id != from.account_id {
                return Err(StoreError::NotFound(format!(
                    "virtual account {} is not in the smart account of {}",
                    to.id,
                    found.udi()
                )));
            }
            // The instance first, then the pools' gates (see `delete_instance`).
            tx.exec("UPDATE instances SET virtual_account_id = $1 WHERE id = $2", &[&to.id, &found.id]).await?;
            if !found.usage_released {
                let usage = usage_of(&tx, &found.id).await?;
                shift_pool_usage(&tx, from.id, &usage, -1).await?;
                shift_pool_usage(&tx, to.id, &usage, 1).await?;
            }
            let detail = format!("moved from virtual account '{}' to '{}'", from.name, to.name);
            log(&tx, now, actor, "instance.moved", Some(to.account_id), Some(to.id), &found.udi(), detail).await?;
            moved.push(Instance { virtual_account_id: to.id, ..found });
        }
        Ok(moved)
    })
}

pub(super) async fn remove_instances(
    store: &PostgresStore,
    removals: Vec<Removal>,
    kind: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<Removed>> {
    let event = format!("instance.{kind}");
    write!(store, |tx| {
        let mut done = Vec::with_capacity(removals.len());
        for removal in &removals {
            done.push(match removal {
                Removal::Reservation(id) => Removed::Reservation(give_back(&tx, *id, actor, now).await?),
                Removal::Instance { id, from_virtual_account_id } => {
                    let found = instance_in(&tx, id, *from_virtual_account_id).await?;
                    delete_instance(&tx, &found).await?;
                    let account_id = account_of_pool(&tx, found.virtual_account_id).await?;
                    let (pool, udi) = (Some(found.virtual_account_id), found.udi());
                    log(&tx, now, actor, &event, Some(account_id), pool, &udi, format!("instance {id}")).await?;
                    Removed::Instance(found)
                }
            });
        }
        Ok(done)
    })
}

pub(super) async fn release_silent_usage(
    store: &PostgresStore,
    cutoff: Timestamp,
    now: Timestamp,
) -> Result<Vec<String>> {
    write!(store, |tx| {
        let sql = format!("{INSTANCE} WHERE last_contact_at < $1 AND usage_released = FALSE");
        let silent = tx.all(&sql, &[&cutoff.0], instance_row).await?;
        for inst in &silent {
            // The instance first, then the pool's gate (see `delete_instance`).
            tx.exec("UPDATE instances SET usage_released = TRUE WHERE id = $1", &[&inst.id]).await?;
            let usage = usage_of(&tx, &inst.id).await?;
            shift_pool_usage(&tx, inst.virtual_account_id, &usage, -1).await?;
            let account_id = account_of_pool(&tx, inst.virtual_account_id).await?;
            let detail = format!("not heard from since {}; usage released to the pool", inst.last_contact_at);
            let udi = inst.udi();
            let pool = Some(inst.virtual_account_id);
            log(&tx, now, "system", "instance.usage-released", Some(account_id), pool, &udi, detail).await?;
        }
        Ok(silent.into_iter().map(|i| i.id).collect())
    })
}

pub(super) async fn expired_instances(store: &PostgresStore, now: Timestamp) -> Result<Vec<String>> {
    read!(store, |tx| tx.all("SELECT id FROM instances WHERE cert_expires_at <= $1", &[&now.0], |r| get(r, 0)).await)
}
