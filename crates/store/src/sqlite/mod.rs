//! The embedded SQLite backend: one file, WAL journal, full synchronous commits shared by
//! concurrent writers (see `engine`), so an acknowledged change survives a crash or power loss.

mod backup;
mod engine;
mod satellite;

use crate::*;
pub use backup::check_backup;
use engine::Engine;
use rusqlite::{params, Connection, OptionalExtension, Row};
use smartlic_core::{LicenseTerm, Role};
use std::path::Path;

/// Applied in order; `PRAGMA user_version` counts those done, so each runs once per database.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_reservations.sql"),
    include_str!("../../migrations/sqlite/0003_credentials.sql"),
    include_str!("../../migrations/sqlite/0004_reservation_draws.sql"),
    include_str!("../../migrations/sqlite/0005_previous_device_key.sql"),
    include_str!("../../migrations/sqlite/0006_evaluation_used.sql"),
    include_str!("../../migrations/sqlite/0007_satellites.sql"),
    include_str!("../../migrations/sqlite/0008_sync.sql"),
];

pub struct SqliteStore {
    db: Engine,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let db = tokio::task::spawn_blocking(move || {
            owner_only(&path)?;
            Engine::open(&path, MIGRATIONS)
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        Ok(SqliteStore { db })
    }
}

/// Makes the database file readable by its owner only (mode 0600), creating it so when new:
/// it holds password hashes and token digests. SQLite gives its -wal and -shm files the
/// database file's mode; those left by an earlier, looser start are tightened too.
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |e: std::io::Error| StoreError::Database(format!("cannot secure {}: {e}", path.display()));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(failed)?;
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        }
    }
    Ok(())
}

const ACCOUNT: &str = "SELECT id, domain, name, created_at, universal_reservation FROM smart_accounts";
const VIRTUAL_ACCOUNT: &str = "SELECT id, account_id, name, description, is_default, created_at FROM virtual_accounts";
const PRINCIPAL: &str = "SELECT id, kind, name, login, secret_hash, role, account_id, virtual_account_id, created_at, disabled_at FROM principals";
const ACCESS_TOKEN: &str = "SELECT id, prefix, principal_id, created_at, expires_at FROM access_tokens";
const LICENSE: &str = "SELECT id, virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at FROM licenses";
const TOKEN: &str = "SELECT id, virtual_account_id, prefix, description, created_at, expires_at, max_uses, uses, export_controlled, revoked_at, created_by FROM registration_tokens";
const INSTANCE: &str = "SELECT id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released, previous_key_algorithm, previous_public_key, evaluation_used_ms FROM instances";
const EVENT: &str = "SELECT id, at, actor, kind, account_id, virtual_account_id, object, detail FROM events";
const RESERVATION: &str = "SELECT id, virtual_account_id, request_code, kind, udi_pid, udi_sn, piid, authorization_code, authorization_digest, confirmation_code, status, created_at, created_by, returned_at FROM reservations";
const ALERT: &str = "SELECT id, kind, severity, account_id, virtual_account_id, object, message, raised_at FROM alerts";

type R<T> = rusqlite::Result<T>;

fn ts(row: &Row, col: &str) -> R<Timestamp> {
    Ok(Timestamp(row.get(col)?))
}

fn opt_ts(row: &Row, col: &str) -> R<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(col)?.map(Timestamp))
}

fn account(row: &Row) -> R<Account> {
    Ok(Account {
        id: row.get("id")?,
        domain: row.get("domain")?,
        name: row.get("name")?,
        created_at: ts(row, "created_at")?,
        universal_reservation: row.get("universal_reservation")?,
    })
}

fn virtual_account(row: &Row) -> R<VirtualAccount> {
    Ok(VirtualAccount {
        id: row.get("id")?,
        account_id: row.get("account_id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        is_default: row.get("is_default")?,
        created_at: ts(row, "created_at")?,
    })
}

fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into())
}

fn principal(row: &Row) -> R<Principal> {
    let role: String = row.get("role")?;
    let kind: String = row.get("kind")?;
    Ok(Principal {
        id: row.get("id")?,
        kind: if kind == "user" { PrincipalKind::User } else { PrincipalKind::ApiClient },
        name: row.get("name")?,
        login: row.get("login")?,
        secret_hash: row.get("secret_hash")?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("unknown role {role}")))?,
        account_id: row.get("account_id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        created_at: ts(row, "created_at")?,
        disabled_at: opt_ts(row, "disabled_at")?,
    })
}

fn access_token(row: &Row) -> R<AccessToken> {
    Ok(AccessToken {
        id: row.get("id")?,
        prefix: row.get("prefix")?,
        principal_id: row.get("principal_id")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
    })
}

fn license(row: &Row) -> R<LicenseRecord> {
    let kind: String = row.get("kind")?;
    let kind = LicenseKind::parse(&kind).map_err(|e| corrupt(e.to_string()))?;
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

fn token(row: &Row) -> R<RegistrationToken> {
    Ok(RegistrationToken {
        id: row.get("id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        prefix: row.get("prefix")?,
        description: row.get("description")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        max_uses: row.get("max_uses")?,
        uses: row.get("uses")?,
        export_controlled: row.get("export_controlled")?,
        revoked_at: opt_ts(row, "revoked_at")?,
        created_by: row.get("created_by")?,
    })
}

fn instance(row: &Row) -> R<Instance> {
    Ok(Instance {
        id: row.get("id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        udi_pid: row.get("udi_pid")?,
        udi_sn: row.get("udi_sn")?,
        hostname: row.get("hostname")?,
        registered_at: ts(row, "registered_at")?,
        last_contact_at: ts(row, "last_contact_at")?,
        certificate: CertificateFacts {
            serial: row.get("cert_serial")?,
            expires_at: ts(row, "cert_expires_at")?,
            key_algorithm: row.get("key_algorithm")?,
            public_key: row.get("public_key")?,
        },
        export_controlled: row.get("export_controlled")?,
        usage_released: row.get("usage_released")?,
        previous_key: match (row.get("previous_key_algorithm")?, row.get("previous_public_key")?) {
            (Some(algorithm), Some(public_key)) => Some(StoredKey { algorithm, public_key }),
            _ => None,
        },
        evaluation_used_ms: row.get("evaluation_used_ms")?,
    })
}

/// A reservation row; its licenses are read separately ([`load_reservations`]).
fn reservation(row: &Row) -> R<Reservation> {
    let status: String = row.get("status")?;
    Ok(Reservation {
        id: row.get("id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        request_code: row.get("request_code")?,
        kind: row.get("kind")?,
        udi_pid: row.get("udi_pid")?,
        udi_sn: row.get("udi_sn")?,
        piid: row.get("piid")?,
        authorization_code: row.get("authorization_code")?,
        authorization_digest: row.get("authorization_digest")?,
        confirmation_code: row.get("confirmation_code")?,
        status: match status.as_str() {
            "reserved" => ReservationStatus::Reserved,
            "returned" => ReservationStatus::Returned,
            other => return Err(corrupt(format!("unknown reservation status {other}"))),
        },
        created_at: ts(row, "created_at")?,
        created_by: row.get("created_by")?,
        returned_at: opt_ts(row, "returned_at")?,
        licenses: Vec::new(),
    })
}

fn reserved_license(row: &Row) -> R<(i64, ReservedLicense)> {
    let kind: String = row.get("license_type")?;
    let kind = LicenseKind::parse(&kind).map_err(|e| corrupt(e.to_string()))?;
    let license = ReservedLicense {
        tag: row.get("tag")?,
        quantity: row.get("quantity")?,
        term: LicenseTerm { kind, start: opt_ts(row, "start_at")?, end: opt_ts(row, "end_at")? },
        subscription_id: row.get("subscription_id")?,
        license_id: row.get("license_id")?,
    };
    Ok((row.get("reservation_id")?, license))
}

/// Reservations chosen by `condition` (on `reservations`), each with its licenses: two queries.
fn load_reservations(db: &Connection, condition: &str, args: impl rusqlite::Params + Copy) -> Result<Vec<Reservation>> {
    let mut found = all(db, &format!("{RESERVATION} WHERE {condition} ORDER BY id"), args, reservation)?;
    let licenses = all(
        db,
        &format!(
            "SELECT reservation_id, tag, quantity, license_type, start_at, end_at, subscription_id, license_id FROM reservation_licenses
             WHERE reservation_id IN (SELECT id FROM reservations WHERE {condition}) ORDER BY reservation_id, id"
        ),
        args,
        reserved_license,
    )?;
    for (id, license) in licenses {
        if let Some(r) = found.iter_mut().find(|r| r.id == id) {
            r.licenses.push(license);
        }
    }
    Ok(found)
}

/// Reserved quantities of a reservation's licenses, per tag.
fn reserved_per_tag<'a>(licenses: impl IntoIterator<Item = &'a ReservedLicense>) -> BTreeMap<String, i64> {
    let mut per_tag = BTreeMap::new();
    for l in licenses {
        *per_tag.entry(l.tag.clone()).or_default() += l.quantity;
    }
    per_tag
}

fn event(row: &Row) -> R<Event> {
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
        kind: row.get("kind")?,
        severity: row.get("severity")?,
        account_id: row.get("account_id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        object: row.get("object")?,
        message: row.get("message")?,
        raised_at: ts(row, "raised_at")?,
    })
}

/// All rows of a query mapped with `map`.
fn all<T>(db: &Connection, sql: &str, args: impl rusqlite::Params, map: fn(&Row) -> R<T>) -> Result<Vec<T>> {
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(args, map)?.collect::<R<Vec<T>>>()?;
    Ok(rows)
}

/// The row of a query, if any.
fn one<T>(db: &Connection, sql: &str, args: impl rusqlite::Params, map: fn(&Row) -> R<T>) -> Result<Option<T>> {
    Ok(db.prepare_cached(sql)?.query_row(args, map).optional()?)
}

fn exec(db: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<usize> {
    Ok(db.prepare_cached(sql)?.execute(args)?)
}

/// A unique-constraint failure becomes a conflict the caller can explain.
fn unique_or(err: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what())
        }
        _ => StoreError::from(err),
    }
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
fn log(
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

fn fetch_pool(db: &Connection, id: i64) -> Result<VirtualAccount> {
    one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [id], virtual_account)?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {id} does not exist")))
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
    let records: Vec<LicenseRecord> = all(
        db,
        &format!(
            "{LICENSE} WHERE virtual_account_id = $1 AND tag = $2 AND (start_at IS NULL OR start_at <= $3)
             AND (end_at IS NULL OR end_at > $3) ORDER BY CASE kind WHEN 'perpetual' THEN 0 ELSE 1 END, end_at DESC, id"
        ),
        params![from.id, t.tag, now.0],
        license,
    )?
    .into_iter()
    .filter(|r| t.kind.is_none_or(|k| r.term.kind == k))
    .collect();
    let drawn = drawn_in(db, from.id)?;
    let free = |r: &LicenseRecord| r.quantity - drawn.get(&r.id).copied().unwrap_or(0).min(r.quantity);
    let held: i64 = records.iter().map(free).sum();
    if held < t.quantity {
        let kind = t.kind.map(|k| format!(" {}", k.as_str())).unwrap_or_default();
        return Err(StoreError::Conflict(format!(
            "only {held}{kind} license(s) of '{}' valid now and not reserved are left in virtual account '{}' for \
             this item, {} requested; nothing was transferred",
            t.tag, from.name, t.quantity
        )));
    }
    let mut left = t.quantity;
    for r in records {
        if left == 0 {
            break;
        }
        let take = left.min(free(&r));
        left -= take;
        if take == 0 {
            continue;
        }
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

fn account_of_pool(db: &Connection, virtual_account_id: i64) -> Result<i64> {
    one(db, "SELECT account_id FROM virtual_accounts WHERE id = $1", [virtual_account_id], |r| r.get(0))?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {virtual_account_id} does not exist")))
}

/// Adds `sign` × the usage of an instance to its pool's in-use counters.
fn shift_pool_usage(db: &Connection, virtual_account_id: i64, usage: &BTreeMap<String, i64>, sign: i64) -> Result<()> {
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

/// Adds `sign` × what a reservation of the pool draws to the records' draw counters (rows that
/// fall to zero go).
fn shift_draws(db: &Connection, virtual_account_id: i64, licenses: &[ReservedLicense], sign: i64) -> Result<()> {
    for l in licenses {
        let Some(license_id) = l.license_id else { continue };
        exec(
            db,
            "INSERT INTO license_draws (virtual_account_id, license_id, tag, quantity) VALUES ($1, $2, $3, $4)
             ON CONFLICT (virtual_account_id, license_id, tag) DO UPDATE SET quantity = license_draws.quantity + excluded.quantity",
            params![virtual_account_id, license_id, l.tag, sign * l.quantity],
        )?;
    }
    exec(db, "DELETE FROM license_draws WHERE virtual_account_id = $1 AND quantity = 0", [virtual_account_id])?;
    Ok(())
}

/// How many licenses of each purchase record of the pool active reservations draw (those of any
/// pool: a record keeps its draws when it is transferred).
fn drawn_in(db: &Connection, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>> {
    let pairs = all(
        db,
        "SELECT d.license_id, SUM(d.quantity) FROM license_draws d JOIN licenses l ON l.id = d.license_id
         WHERE l.virtual_account_id = $1 GROUP BY d.license_id",
        [virtual_account_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(pairs.into_iter().collect())
}

/// Refuses chunks whose purchase record is not the pool's, not valid now or has fewer undrawn
/// licenses than they take: the record choice was made on an earlier read.
fn refuse_overdrawn(
    db: &Connection,
    virtual_account_id: i64,
    licenses: &[ReservedLicense],
    now: Timestamp,
) -> Result<()> {
    let drawn = drawn_in(db, virtual_account_id)?;
    let mut taking: BTreeMap<i64, i64> = BTreeMap::new();
    for l in licenses {
        let Some(id) = l.license_id else {
            return Err(StoreError::Conflict(format!("a reserved chunk of '{}' names no purchase record", l.tag)));
        };
        *taking.entry(id).or_default() += l.quantity;
    }
    for (id, take) in taking {
        let record = one(
            db,
            &format!("{LICENSE} WHERE id = $1 AND virtual_account_id = $2"),
            params![id, virtual_account_id],
            license,
        )?;
        let free =
            record.filter(|r| r.term.active_at(now)).map_or(0, |r| r.quantity - drawn.get(&id).copied().unwrap_or(0));
        if free < take {
            return Err(StoreError::Conflict(format!(
                "purchase record {id} has {} undrawn license(s) left, {take} asked (a concurrent change); nothing was reserved",
                free.max(0)
            )));
        }
    }
    Ok(())
}

fn usage_of(db: &Connection, id: &str) -> Result<BTreeMap<String, i64>> {
    let pairs =
        all(db, "SELECT tag, count FROM instance_usage WHERE instance_id = $1", [id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(pairs.into_iter().collect())
}

fn counts_in(db: &Connection, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
    let purchased = all(
        db,
        "SELECT tag, SUM(quantity) FROM licenses WHERE virtual_account_id = $1
         AND (start_at IS NULL OR start_at <= $2) AND (end_at IS NULL OR end_at > $2) GROUP BY tag",
        params![virtual_account_id, now.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let in_use: Vec<(String, i64)> = all(
        db,
        "SELECT tag, in_use FROM pool_usage WHERE virtual_account_id = $1 AND in_use <> 0",
        [virtual_account_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // Reserved licenses count while the records they are drawn from are valid, like purchased ones.
    let reserved: Vec<(String, i64)> = all(
        db,
        "SELECT d.tag, SUM(d.quantity) FROM license_draws d JOIN licenses l ON l.id = d.license_id
         WHERE d.virtual_account_id = $1 AND (l.start_at IS NULL OR l.start_at <= $2) AND (l.end_at IS NULL OR l.end_at > $2)
         GROUP BY d.tag HAVING SUM(d.quantity) <> 0",
        params![virtual_account_id, now.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // A negative counter is drift to report, never a zero to compute with.
    for (what, (tag, n)) in in_use.iter().map(|c| ("in-use", c)).chain(reserved.iter().map(|c| ("reserved", c))) {
        if *n < 0 {
            return Err(StoreError::Corrupt(format!(
                "the {what} count of '{tag}' in virtual account {virtual_account_id} is {n}: the counters drifted \
                 from the records; `smartlic admin check` lists the differences"
            )));
        }
    }
    Ok(PoolCounts {
        purchased: purchased.into_iter().collect(),
        in_use: in_use.into_iter().collect(),
        reserved: reserved.into_iter().collect(),
    })
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
        let mut keys: Vec<&(i64, String)> = stored.keys().chain(recomputed.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (s, r) = (stored.get(key).copied().unwrap_or(0), recomputed.get(key).copied().unwrap_or(0));
            if s != r {
                let (account, virtual_account) = one(
                    db,
                    "SELECT a.domain, v.name FROM virtual_accounts v JOIN smart_accounts a ON a.id = v.account_id WHERE v.id = $1",
                    [key.0],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .unwrap_or_else(|| (String::new(), format!("(deleted virtual account {})", key.0)));
                drift.push(CounterDrift {
                    account,
                    virtual_account,
                    tag: key.1.clone(),
                    counter,
                    stored: s,
                    recomputed: r,
                });
            }
        }
    }
    Ok(drift)
}

fn fetch_instance(db: &Connection, id: &str) -> Result<Instance> {
    one(db, &format!("{INSTANCE} WHERE id = $1"), [id], instance)?
        .ok_or_else(|| StoreError::NotFound(format!("product instance {id} does not exist")))
}

/// The instance `id`, which must still be in the pool `from` when one is given.
fn instance_in(db: &Connection, id: &str, from: Option<i64>) -> Result<Instance> {
    let found = fetch_instance(db, id)?;
    match from {
        Some(pool) if pool != found.virtual_account_id => Err(StoreError::Conflict(format!(
            "{} is no longer in virtual account '{}' (a concurrent change moved it)",
            udi_of(&found),
            fetch_pool(db, pool)?.name
        ))),
        _ => Ok(found),
    }
}

/// Deletes an instance, giving its usage back unless already released.
fn delete_instance(db: &Connection, found: &Instance) -> Result<()> {
    if !found.usage_released {
        let usage = usage_of(db, &found.id)?;
        shift_pool_usage(db, found.virtual_account_id, &usage, -1)?;
    }
    exec(db, "DELETE FROM instance_usage WHERE instance_id = $1", [&found.id])?;
    exec(db, "DELETE FROM instances WHERE id = $1", [&found.id])?;
    Ok(())
}

/// Records a nonce; false when it was there already.
fn insert_nonce(db: &Connection, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool> {
    let added = exec(
        db,
        "INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        params![scope, nonce, expires_at.0],
    )?;
    Ok(added == 1)
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
fn registered(
    db: &Connection,
    id: &str,
    detail: String,
    replaced: Option<String>,
    now: Timestamp,
) -> std::result::Result<Registered, RegisterRefusal> {
    let inst = fetch_instance(db, id)?;
    let va = one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [inst.virtual_account_id], virtual_account)?
        .ok_or_else(|| StoreError::Corrupt("instance without pool".into()))?;
    let acct = one(db, &format!("{ACCOUNT} WHERE id = $1"), [va.account_id], account)?
        .ok_or_else(|| StoreError::Corrupt("pool without account".into()))?;
    let udi = udi_of(&inst);
    log(db, now, &udi, "instance.registered", Some(acct.id), Some(va.id), &udi, detail)?;
    Ok(Registered { instance: inst, virtual_account: va, account: acct, replaced })
}

fn udi_of(i: &Instance) -> String {
    format!("PID:{},SN:{}", i.udi_pid, i.udi_sn)
}

/// Refuses to reserve for a device already licensed: one holding an active reservation or
/// registered as a product instance, in any pool (the original refuses licensing one device
/// twice). In another smart account the refusal names nothing of that account.
fn refuse_held_udi(db: &Connection, account_id: i64, pid: &str, sn: &str) -> Result<()> {
    let held =
        |sql: &str| -> Result<Option<(i64, String)>> { one(db, sql, params![pid, sn], |r| Ok((r.get(0)?, r.get(1)?))) };
    let reserved = held(
        "SELECT v.account_id, v.name FROM reservations r JOIN virtual_accounts v ON v.id = r.virtual_account_id
         WHERE r.udi_pid = $1 AND r.udi_sn = $2 AND r.status = 'reserved'",
    )?;
    let registered = held(
        "SELECT v.account_id, v.name FROM instances i JOIN virtual_accounts v ON v.id = i.virtual_account_id
         WHERE i.udi_pid = $1 AND i.udi_sn = $2",
    )?;
    let udi = format!("PID:{pid},SN:{sn}");
    let refusal = match (reserved, registered) {
        (Some((a, _)), _) | (_, Some((a, _))) if a != account_id => {
            format!("{udi} is registered or reserved in another smart account; it cannot be reserved here")
        }
        (Some((_, pool)), _) => {
            format!("{udi} already holds an active reservation (in virtual account '{pool}'); return it first")
        }
        (None, Some((_, pool))) => format!(
            "{udi} is a registered product instance (in virtual account '{pool}'); a device is licensed once: \
             remove the instance first"
        ),
        (None, None) => return Ok(()),
    };
    Err(StoreError::Conflict(refusal))
}

fn fetch_principal(db: &Connection, id: i64) -> Result<Principal> {
    one(db, &format!("{PRINCIPAL} WHERE id = $1"), [id], principal)?
        .ok_or_else(|| StoreError::NotFound(format!("user or API client {id} does not exist")))
}

/// Ends every live access token of a principal at once; returns how many.
fn revoke_all_access(db: &Connection, principal_id: i64) -> Result<usize> {
    exec(db, "DELETE FROM access_tokens WHERE principal_id = $1", [principal_id])
}

/// Appends `<kind>.<what>` about a user or API client, named as it is in its account.
fn log_principal(
    db: &Connection,
    now: Timestamp,
    actor: &str,
    p: &Principal,
    what: &str,
    detail: String,
) -> Result<()> {
    let kind = format!("{}.{what}", p.kind.as_str());
    log(db, now, actor, &kind, p.account_id, p.virtual_account_id, &p.name, detail)
}

/// How events name a registration token: its listed prefix.
fn short(prefix: &str) -> String {
    format!("{prefix}…")
}

/// Gives a reservation's licenses back to its pool; refused (Conflict) when already returned.
fn give_back(db: &Connection, id: i64, actor: &str, now: Timestamp) -> Result<Reservation> {
    let found = load_reservations(db, "id = $1", [id])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("reservation {id} does not exist")))?;
    if let Some(at) = found.returned_at {
        return Err(StoreError::Conflict(format!("the reservation of {} was already returned on {at}", found.udi())));
    }
    exec(db, "UPDATE reservations SET status = 'returned', returned_at = $1 WHERE id = $2", params![now.0, id])?;
    shift_draws(db, found.virtual_account_id, &found.licenses, -1)?;
    let account_id = account_of_pool(db, found.virtual_account_id)?;
    let detail = format!("PIID {}: licenses back to the pool", found.piid);
    log(
        db,
        now,
        actor,
        "reservation.returned",
        Some(account_id),
        Some(found.virtual_account_id),
        &found.udi(),
        detail,
    )?;
    Ok(Reservation { status: ReservationStatus::Returned, returned_at: Some(now), ..found })
}

/// Revokes one token of a pool, named by its hash or, failing that, by its listed prefix.
fn revoke(
    db: &Connection,
    virtual_account_id: i64,
    t: &TokenRef,
    actor: &str,
    now: Timestamp,
) -> Result<RegistrationToken> {
    let by_hash = format!("{TOKEN} WHERE virtual_account_id = $1 AND token_hash = $2");
    let mut found = all(db, &by_hash, params![virtual_account_id, t.token_hash], token)?;
    if found.is_empty() {
        let by_prefix = format!("{TOKEN} WHERE virtual_account_id = $1 AND prefix = $2");
        found = all(db, &by_prefix, params![virtual_account_id, t.prefix], token)?;
    }
    if found.len() > 1 {
        return Err(StoreError::Conflict(format!(
            "{} tokens of this virtual account start with {}; give the whole token",
            found.len(),
            t.prefix
        )));
    }
    let found = found
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("no such token in this virtual account: {}", short(&t.prefix))))?;
    if found.revoked_at.is_some() {
        return Err(StoreError::Conflict(format!("the token is revoked already: {}", short(&found.prefix))));
    }
    exec(db, "UPDATE registration_tokens SET revoked_at = $1 WHERE id = $2", params![now.0, found.id])?;
    let account_id = account_of_pool(db, virtual_account_id)?;
    log(
        db,
        now,
        actor,
        "token.revoked",
        Some(account_id),
        Some(virtual_account_id),
        &short(&found.prefix),
        String::new(),
    )?;
    Ok(RegistrationToken { revoked_at: Some(now), ..found })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, domain: &str, name: &str, actor: &str, now: Timestamp) -> Result<Account> {
        let (domain, name, actor) = (domain.to_string(), name.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                db.prepare_cached("INSERT INTO smart_accounts (domain, name, created_at) VALUES ($1, $2, $3)")?
                    .execute(params![domain, name, now.0])
                    .map_err(|e| unique_or(e, || format!("smart account {domain} exists already")))?;
                let id = db.last_insert_rowid();
                exec(
                    db,
                    "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, TRUE, $4)",
                    params![id, DEFAULT_VIRTUAL_ACCOUNT, "Default virtual account", now.0],
                )?;
                let va = db.last_insert_rowid();
                log(db, now, &actor, "account.created", Some(id), None, &domain, format!("smart account '{name}'"))?;
                log(db, now, &actor, "virtual-account.created", Some(id), Some(va), DEFAULT_VIRTUAL_ACCOUNT, String::new())?;
                Ok(Account { id, domain, name, created_at: now, universal_reservation: false })
            })
            .await
    }

    async fn account(&self, domain: &str) -> Result<Option<Account>> {
        let domain = domain.to_string();
        self.db.read(move |db| one(db, &format!("{ACCOUNT} WHERE domain = $1"), [domain], account)).await
    }

    async fn account_by_id(&self, id: i64) -> Result<Option<Account>> {
        self.db.read(move |db| one(db, &format!("{ACCOUNT} WHERE id = $1"), [id], account)).await
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        self.db.read(|db| all(db, &format!("{ACCOUNT} ORDER BY domain"), [], account)).await
    }

    async fn create_virtual_account(
        &self,
        acct: &Account,
        name: &str,
        description: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<VirtualAccount> {
        let (acct, name, description, actor) =
            (acct.clone(), name.to_string(), description.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                db.prepare_cached(
                    "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, FALSE, $4)",
                )?
                .execute(params![acct.id, name, description, now.0])
                .map_err(|e| unique_or(e, || format!("virtual account '{name}' exists already in {}", acct.domain)))?;
                let id = db.last_insert_rowid();
                log(db, now, &actor, "virtual-account.created", Some(acct.id), Some(id), &name, description.clone())?;
                Ok(VirtualAccount { id, account_id: acct.id, name, description, is_default: false, created_at: now })
            })
            .await
    }

    async fn virtual_account(&self, account_id: i64, name: &str) -> Result<Option<VirtualAccount>> {
        let name = name.to_string();
        self.db
            .read(move |db| {
                one(
                    db,
                    &format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 AND name = $2"),
                    params![account_id, name],
                    virtual_account,
                )
            })
            .await
    }

    async fn virtual_account_by_id(&self, id: i64) -> Result<Option<VirtualAccount>> {
        self.db.read(move |db| one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [id], virtual_account)).await
    }

    async fn virtual_accounts(&self, account_id: i64) -> Result<Vec<VirtualAccount>> {
        self.db
            .read(move |db| {
                all(
                    db,
                    &format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 ORDER BY is_default DESC, name"),
                    [account_id],
                    virtual_account,
                )
            })
            .await
    }

    async fn all_virtual_accounts(&self) -> Result<Vec<VirtualAccount>> {
        self.db.read(|db| all(db, &format!("{VIRTUAL_ACCOUNT} ORDER BY id"), [], virtual_account)).await
    }

    async fn set_universal_reservation(
        &self,
        account_id: i64,
        allowed: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<Account> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let found = one(db, &format!("{ACCOUNT} WHERE id = $1"), [account_id], account)?
                    .ok_or_else(|| StoreError::NotFound(format!("smart account {account_id} does not exist")))?;
                exec(
                    db,
                    "UPDATE smart_accounts SET universal_reservation = $1 WHERE id = $2",
                    params![allowed, account_id],
                )?;
                let detail =
                    if allowed { "universal reservation allowed" } else { "universal reservation not allowed" };
                log(
                    db,
                    now,
                    &actor,
                    "account.universal-reservation",
                    Some(account_id),
                    None,
                    &found.domain,
                    detail.into(),
                )?;
                Ok(Account { universal_reservation: allowed, ..found })
            })
            .await
    }

    async fn delete_virtual_account(&self, id: i64, actor: &str, now: Timestamp) -> Result<VirtualAccount> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let va = one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [id], virtual_account)?
                    .ok_or_else(|| StoreError::NotFound(format!("virtual account {id} does not exist")))?;
                if va.is_default {
                    return Err(StoreError::Conflict(format!(
                        "'{}' is the default virtual account of its smart account and cannot be deleted",
                        va.name
                    )));
                }
                let scalar = |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<i64> {
                    Ok(db.prepare_cached(sql)?.query_row(args, |r| r.get(0))?)
                };
                let licenses = scalar(
                    "SELECT COALESCE(SUM(quantity), 0) FROM licenses WHERE virtual_account_id = $1 AND (end_at IS NULL OR end_at > $2)",
                    params![id, now.0],
                )?;
                let instances = scalar("SELECT COUNT(*) FROM instances WHERE virtual_account_id = $1", params![id])?;
                let tokens = all(db, &format!("{TOKEN} WHERE virtual_account_id = $1"), [id], token)?;
                let active_tokens =
                    tokens.iter().filter(|t| t.facts().status_at(now) == smartlic_core::TokenStatus::Active).count();
                let reservations = scalar(
                    "SELECT COUNT(*) FROM reservations WHERE virtual_account_id = $1 AND status = 'reserved'",
                    params![id],
                )?;
                let held: Vec<String> = [
                    (licenses, "license(s) not yet ended (transfer them)"),
                    (instances, "product instance(s) (move or remove them)"),
                    (active_tokens as i64, "active registration token(s) (revoke them)"),
                    (reservations, "active reservation(s) (return them)"),
                ]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
                if !held.is_empty() {
                    return Err(StoreError::Conflict(format!(
                        "virtual account '{}' still holds {}; nothing was deleted",
                        va.name,
                        held.join(", ")
                    )));
                }
                let expired = exec(db, "DELETE FROM licenses WHERE virtual_account_id = $1", [id])?;
                exec(db, "DELETE FROM registration_tokens WHERE virtual_account_id = $1", [id])?;
                exec(
                    db,
                    "DELETE FROM reservation_licenses WHERE reservation_id IN (SELECT id FROM reservations WHERE virtual_account_id = $1)",
                    [id],
                )?;
                let returned = exec(db, "DELETE FROM reservations WHERE virtual_account_id = $1", [id])?;
                exec(db, "DELETE FROM pool_usage WHERE virtual_account_id = $1", [id])?;
                exec(db, "DELETE FROM alerts WHERE virtual_account_id = $1", [id])?;
                exec(
                    db,
                    "DELETE FROM access_tokens WHERE principal_id IN (SELECT id FROM principals WHERE virtual_account_id = $1)",
                    [id],
                )?;
                let principals = exec(db, "DELETE FROM principals WHERE virtual_account_id = $1", [id])?;
                exec(db, "DELETE FROM virtual_accounts WHERE id = $1", [id])?;
                let gone: Vec<String> = [
                    (expired, "expired license record(s)"),
                    (tokens.len(), "spent registration token(s)"),
                    (returned, "returned reservation(s)"),
                    (principals, "user(s) and API client(s) bound to it"),
                ]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
                let detail = if gone.is_empty() { String::new() } else { format!("with {}", gone.join(", ")) };
                log(db, now, &actor, "virtual-account.deleted", Some(va.account_id), Some(id), &va.name, detail)?;
                Ok(va)
            })
            .await
    }

    async fn create_reservations(
        &self,
        virtual_account_id: i64,
        new: Vec<NewReservation>,
        check: ReservationCheck,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<Reservation>> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let account_id = account_of_pool(db, virtual_account_id)?;
                for (i, n) in new.iter().enumerate() {
                    refuse_held_udi(db, account_id, &n.udi_pid, &n.udi_sn)?;
                    if new[..i].iter().any(|m| (&m.udi_pid, &m.udi_sn) == (&n.udi_pid, &n.udi_sn)) {
                        let udi = format!("PID:{},SN:{}", n.udi_pid, n.udi_sn);
                        return Err(StoreError::Conflict(format!("{udi} is listed twice: one reservation per device")));
                    }
                }
                let asked = reserved_per_tag(new.iter().flat_map(|n| &n.licenses));
                check(&counts_in(db, virtual_account_id, now)?, &asked).map_err(StoreError::Conflict)?;
                let chunks: Vec<ReservedLicense> = new.iter().flat_map(|n| n.licenses.iter().cloned()).collect();
                refuse_overdrawn(db, virtual_account_id, &chunks, now)?;
                let mut made = Vec::with_capacity(new.len());
                for n in new {
                    let udi = format!("PID:{},SN:{}", n.udi_pid, n.udi_sn);
                    db.prepare_cached(
                        "INSERT INTO reservations (virtual_account_id, request_code, kind, udi_pid, udi_sn, piid, authorization_code,
                         authorization_digest, confirmation_code, status, created_at, created_by, returned_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'reserved', $10, $11, NULL)",
                    )?
                    .execute(params![
                        virtual_account_id,
                        n.request_code,
                        n.kind,
                        n.udi_pid,
                        n.udi_sn,
                        n.piid,
                        n.authorization_code,
                        n.authorization_digest,
                        n.confirmation_code,
                        now.0,
                        actor
                    ])
                    .map_err(|e| unique_or(e, || format!("{udi}: this authorization code exists already")))?;
                    let id = db.last_insert_rowid();
                    for l in &n.licenses {
                        exec(
                            db,
                            "INSERT INTO reservation_licenses (reservation_id, tag, quantity, license_type, start_at, end_at, subscription_id,
                             license_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            params![
                                id,
                                l.tag,
                                l.quantity,
                                l.term.kind.as_str(),
                                l.term.start.map(|t| t.0),
                                l.term.end.map(|t| t.0),
                                l.subscription_id,
                                l.license_id
                            ],
                        )?;
                    }
                    shift_draws(db, virtual_account_id, &n.licenses, 1)?;
                    let per_tag = reserved_per_tag(&n.licenses);
                    let listed: Vec<String> = per_tag.iter().map(|(t, q)| format!("{t}={q}")).collect();
                    let detail = match listed.is_empty() {
                        true => format!("{}, PIID {}", n.kind, n.piid),
                        false => format!("{} {}, PIID {}", n.kind, listed.join(", "), n.piid),
                    };
                    log(db, now, &actor, "reservation.created", Some(account_id), Some(virtual_account_id), &udi, detail)?;
                    made.push(Reservation {
                        id,
                        virtual_account_id,
                        request_code: n.request_code,
                        kind: n.kind,
                        udi_pid: n.udi_pid,
                        udi_sn: n.udi_sn,
                        piid: n.piid,
                        authorization_code: n.authorization_code,
                        authorization_digest: n.authorization_digest,
                        confirmation_code: n.confirmation_code,
                        status: ReservationStatus::Reserved,
                        created_at: now,
                        created_by: actor.clone(),
                        returned_at: None,
                        licenses: n.licenses,
                    });
                }
                Ok(made)
            })
            .await
    }

    async fn reservations(&self, filter: ReservationFilter) -> Result<Vec<Reservation>> {
        self.db
            .read(move |db| match filter {
                ReservationFilter::VirtualAccount(v) => load_reservations(db, "virtual_account_id = $1", [v]),
                ReservationFilter::Account(a) => load_reservations(
                    db,
                    "virtual_account_id IN (SELECT id FROM virtual_accounts WHERE account_id = $1)",
                    [a],
                ),
            })
            .await
    }

    async fn reservation_by_digest(&self, digest_hex: &str) -> Result<Option<Reservation>> {
        let digest = digest_hex.to_string();
        self.db.read(move |db| Ok(load_reservations(db, "authorization_digest = $1", [&digest])?.pop())).await
    }

    async fn return_reservation(&self, id: i64, actor: &str, now: Timestamp) -> Result<Reservation> {
        let actor = actor.to_string();
        self.db.write(move |db| give_back(db, id, &actor, now)).await
    }

    async fn create_principal(&self, new: NewPrincipal, actor: &str, now: Timestamp) -> Result<Principal> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let taken = one(
                    db,
                    "SELECT 1 FROM principals WHERE COALESCE(account_id, 0) = COALESCE($1, 0) AND name = $2",
                    params![new.account_id, new.name],
                    |r| r.get::<_, i64>(0),
                )?;
                if taken.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "a user or API client named '{}' exists already in this smart account",
                        new.name
                    )));
                }
                db.prepare_cached(
                    "INSERT INTO principals (kind, name, login, secret_hash, role, account_id, virtual_account_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )?
                .execute(params![
                    new.kind.as_str(),
                    new.name,
                    new.login,
                    new.secret_hash,
                    new.role.as_str(),
                    new.account_id,
                    new.virtual_account_id,
                    now.0
                ])
                .map_err(|e| unique_or(e, || format!("the login '{}' is taken already", new.login)))?;
                let id = db.last_insert_rowid();
                let kind = format!("{}.created", new.kind.as_str());
                let detail = format!("{}, login {}", new.role.as_str(), new.login);
                log(db, now, &actor, &kind, new.account_id, new.virtual_account_id, &new.name, detail)?;
                Ok(Principal {
                    id,
                    kind: new.kind,
                    name: new.name,
                    login: new.login,
                    secret_hash: new.secret_hash,
                    role: new.role,
                    account_id: new.account_id,
                    virtual_account_id: new.virtual_account_id,
                    created_at: now,
                    disabled_at: None,
                })
            })
            .await
    }

    async fn principal(&self, login: &str) -> Result<Option<Principal>> {
        let login = login.to_string();
        self.db.read(move |db| one(db, &format!("{PRINCIPAL} WHERE login = $1"), [login], principal)).await
    }

    async fn principal_by_id(&self, id: i64) -> Result<Option<Principal>> {
        self.db.read(move |db| one(db, &format!("{PRINCIPAL} WHERE id = $1"), [id], principal)).await
    }

    async fn principal_named(&self, account_id: i64, kind: PrincipalKind, name: &str) -> Result<Option<Principal>> {
        let name = name.to_string();
        self.db
            .read(move |db| {
                let sql = format!("{PRINCIPAL} WHERE account_id = $1 AND kind = $2 AND name = $3");
                one(db, &sql, params![account_id, kind.as_str(), name], principal)
            })
            .await
    }

    async fn principals(&self, account_id: Option<i64>) -> Result<Vec<Principal>> {
        self.db
            .read(move |db| match account_id {
                Some(a) => all(db, &format!("{PRINCIPAL} WHERE account_id = $1 ORDER BY name"), [a], principal),
                None => all(db, &format!("{PRINCIPAL} ORDER BY name"), [], principal),
            })
            .await
    }

    async fn set_principal_secret(&self, id: i64, secret_hash: &str, actor: &str, now: Timestamp) -> Result<Principal> {
        let (hash, actor) = (secret_hash.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                let found = fetch_principal(db, id)?;
                exec(db, "UPDATE principals SET secret_hash = $1 WHERE id = $2", params![hash, id])?;
                let revoked = revoke_all_access(db, id)?;
                let what = match found.kind {
                    PrincipalKind::User => "password-changed",
                    PrincipalKind::ApiClient => "secret-rotated",
                };
                log_principal(db, now, &actor, &found, what, format!("{revoked} live access token(s) revoked"))?;
                Ok(Principal { secret_hash: Some(hash), ..found })
            })
            .await
    }

    async fn set_principal_disabled(&self, id: i64, disabled: bool, actor: &str, now: Timestamp) -> Result<Principal> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let found = fetch_principal(db, id)?;
                let state = if disabled { "disabled" } else { "enabled" };
                if found.disabled_at.is_some() == disabled {
                    return Err(StoreError::Conflict(format!(
                        "{} '{}' is {state} already",
                        found.kind.as_str(),
                        found.name
                    )));
                }
                let at = disabled.then_some(now);
                exec(db, "UPDATE principals SET disabled_at = $1 WHERE id = $2", params![at.map(|t| t.0), id])?;
                let revoked = revoke_all_access(db, id)?;
                log_principal(db, now, &actor, &found, state, format!("{revoked} live access token(s) revoked"))?;
                Ok(Principal { disabled_at: at, ..found })
            })
            .await
    }

    async fn delete_principal(&self, id: i64, actor: &str, now: Timestamp) -> Result<Principal> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let found = fetch_principal(db, id)?;
                let revoked = revoke_all_access(db, id)?;
                exec(db, "DELETE FROM principals WHERE id = $1", [id])?;
                let detail = format!("login {}; {revoked} live access token(s) revoked", found.login);
                log_principal(db, now, &actor, &found, "deleted", detail)?;
                Ok(found)
            })
            .await
    }

    async fn insert_access_token(
        &self,
        token_hash: &str,
        prefix: &str,
        principal_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let (hash, prefix) = (token_hash.to_string(), prefix.to_string());
        self.db
            .write(move |db| {
                exec(
                    db,
                    "INSERT INTO access_tokens (token_hash, prefix, principal_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    params![hash, prefix, principal_id, now.0, expires_at.0],
                )
                .map(drop)
            })
            .await
    }

    async fn principal_for_access_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<Principal>> {
        let hash = token_hash.to_string();
        let sql = format!(
            "{PRINCIPAL} WHERE disabled_at IS NULL
             AND id = (SELECT principal_id FROM access_tokens WHERE token_hash = $1 AND expires_at > $2)"
        );
        self.db.read(move |db| one(db, &sql, params![hash, now.0], principal)).await
    }

    async fn access_tokens(&self, filter: AccessTokenFilter, now: Timestamp) -> Result<Vec<AccessToken>> {
        self.db
            .read(move |db| {
                let live = format!("{ACCESS_TOKEN} WHERE expires_at > $1");
                let owners = "principal_id IN (SELECT id FROM principals WHERE";
                match filter {
                    AccessTokenFilter::Account(a) => {
                        let sql = format!("{live} AND {owners} account_id = $2) ORDER BY id");
                        all(db, &sql, params![now.0, a], access_token)
                    }
                    AccessTokenFilter::Operators => {
                        let sql = format!("{live} AND {owners} account_id IS NULL) ORDER BY id");
                        all(db, &sql, params![now.0], access_token)
                    }
                    AccessTokenFilter::Id(id) => {
                        all(db, &format!("{live} AND id = $2"), params![now.0, id], access_token)
                    }
                    AccessTokenFilter::Hash(h) => {
                        all(db, &format!("{live} AND token_hash = $2"), params![now.0, h], access_token)
                    }
                }
            })
            .await
    }

    async fn revoke_access_token(&self, id: i64, actor: &str, now: Timestamp) -> Result<AccessToken> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let found = one(
                    db,
                    &format!("{ACCESS_TOKEN} WHERE id = $1 AND expires_at > $2"),
                    params![id, now.0],
                    access_token,
                )?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("access token {id} is not live (expired, revoked or unknown)"))
                })?;
                exec(db, "DELETE FROM access_tokens WHERE id = $1", [id])?;
                let owner = fetch_principal(db, found.principal_id)?;
                let detail = format!("access token {id} ({}…) of {} revoked", found.prefix, owner.login);
                log_principal(db, now, &actor, &owner, "token-revoked", detail)?;
                Ok(found)
            })
            .await
    }

    async fn add_license(&self, new: NewLicense, actor: &str, now: Timestamp) -> Result<LicenseRecord> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let account_id = account_of_pool(db, new.virtual_account_id)?;
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
                let id = db.last_insert_rowid();
                let mut detail = format!("{} {} license(s)", new.quantity, new.term.kind.as_str());
                if !new.sku.is_empty() {
                    detail.push_str(&format!(", SKU {}", new.sku));
                }
                log(db, now, &actor, "license.added", Some(account_id), Some(new.virtual_account_id), &new.tag, detail)?;
                Ok(LicenseRecord {
                    id,
                    virtual_account_id: new.virtual_account_id,
                    tag: new.tag,
                    sku: new.sku,
                    quantity: new.quantity,
                    term: new.term,
                    subscription_id: new.subscription_id,
                    created_at: now,
                })
            })
            .await
    }

    async fn licenses(&self, virtual_account_id: i64) -> Result<Vec<LicenseRecord>> {
        self.db
            .read(move |db| {
                all(
                    db,
                    &format!("{LICENSE} WHERE virtual_account_id = $1 ORDER BY tag, id"),
                    [virtual_account_id],
                    license,
                )
            })
            .await
    }

    async fn transfer_licenses(
        &self,
        from: i64,
        transfers: Vec<Transfer>,
        check: TransferCheck,
        actor: &str,
        now: Timestamp,
    ) -> Result<()> {
        let actor = actor.to_string();
        self.db
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
                    log(
                        db,
                        now,
                        &actor,
                        "license.transferred",
                        Some(source.account_id),
                        Some(source.id),
                        &t.tag,
                        detail,
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn pool_counts(&self, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
        self.db.read(move |db| counts_in(db, virtual_account_id, now)).await
    }

    async fn drawn(&self, virtual_account_id: i64) -> Result<BTreeMap<i64, i64>> {
        self.db.read(move |db| drawn_in(db, virtual_account_id)).await
    }

    async fn check_counters(&self, now: Timestamp) -> Result<Vec<CounterDrift>> {
        self.db.read(move |db| counter_drift(db, now)).await
    }

    async fn create_token(&self, new: NewToken, actor: &str, now: Timestamp) -> Result<RegistrationToken> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let account_id = account_of_pool(db, new.virtual_account_id)?;
                exec(
                    db,
                    "INSERT INTO registration_tokens (virtual_account_id, prefix, token_hash, description, created_at, expires_at,
                     max_uses, uses, export_controlled, revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9)",
                    params![
                        new.virtual_account_id,
                        new.prefix,
                        new.token_hash,
                        new.description,
                        now.0,
                        new.expires_at.0,
                        new.max_uses,
                        new.export_controlled,
                        actor
                    ],
                )?;
                let id = db.last_insert_rowid();
                let detail = match new.description.as_str() {
                    "" => format!("expires {}", new.expires_at),
                    d => format!("expires {}: {d}", new.expires_at),
                };
                log(db, now, &actor, "token.created", Some(account_id), Some(new.virtual_account_id), &short(&new.prefix), detail)?;
                Ok(RegistrationToken {
                    id,
                    virtual_account_id: new.virtual_account_id,
                    prefix: new.prefix,
                    description: new.description,
                    created_at: now,
                    expires_at: new.expires_at,
                    max_uses: new.max_uses,
                    uses: 0,
                    export_controlled: new.export_controlled,
                    revoked_at: None,
                    created_by: actor,
                })
            })
            .await
    }

    async fn tokens(&self, virtual_account_id: i64) -> Result<Vec<RegistrationToken>> {
        self.db
            .read(move |db| {
                all(db, &format!("{TOKEN} WHERE virtual_account_id = $1 ORDER BY id"), [virtual_account_id], token)
            })
            .await
    }

    async fn revoke_tokens(
        &self,
        virtual_account_id: i64,
        tokens: Vec<TokenRef>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<RegistrationToken>> {
        let actor = actor.to_string();
        self.db.write(move |db| tokens.iter().map(|t| revoke(db, virtual_account_id, t, &actor, now)).collect()).await
    }

    async fn register_instance(
        &self,
        r: NewInstance,
        now: Timestamp,
    ) -> std::result::Result<Registered, RegisterRefusal> {
        self.db
            .write(move |db| {
                use smartlic_core::TokenStatus;
                let tok = one(db, &format!("{TOKEN} WHERE token_hash = $1"), [&r.token_hash], token)?
                    .ok_or(RegisterRefusal::InvalidToken)?;
                let status = tok.facts().status_at(now);
                let existing = one(db, &format!("{INSTANCE} WHERE udi_pid = $1 AND udi_sn = $2"), params![r.udi_pid, r.udi_sn], instance)?;
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

    async fn instance(&self, id: &str) -> Result<Option<Instance>> {
        let id = id.to_string();
        self.db.read(move |db| one(db, &format!("{INSTANCE} WHERE id = $1"), [id], instance)).await
    }

    async fn instances(&self, filter: InstanceFilter) -> Result<Vec<Instance>> {
        self.db
            .read(move |db| match filter {
                InstanceFilter::VirtualAccount(va) => {
                    all(db, &format!("{INSTANCE} WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn"), [va], instance)
                }
                InstanceFilter::Account(a) => all(
                    db,
                    &format!(
                        "{INSTANCE} WHERE virtual_account_id IN (SELECT id FROM virtual_accounts WHERE account_id = $1) ORDER BY udi_pid, udi_sn"
                    ),
                    [a],
                    instance,
                ),
                InstanceFilter::SilentSince(t) => {
                    all(db, &format!("{INSTANCE} WHERE last_contact_at <= $1 ORDER BY udi_pid, udi_sn"), [t.0], instance)
                }
            })
            .await
    }

    async fn instance_usage(&self, id: &str) -> Result<BTreeMap<String, i64>> {
        let id = id.to_string();
        self.db.read(move |db| usage_of(db, &id)).await
    }

    async fn renew_certificate(&self, id: &str, cert: &CertificateFacts, now: Timestamp) -> Result<()> {
        let (id, cert) = (id.to_string(), cert.clone());
        self.db
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
                let udi = udi_of(&found);
                let detail = format!("ID certificate {} valid until {}", cert.serial, cert.expires_at);
                log(db, now, &udi, "instance.id-renewed", Some(account_id), Some(found.virtual_account_id), &udi, detail)
            })
            .await
    }

    async fn forget_previous_key(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.db
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

    async fn report_usage(&self, report: UsageReport, now: Timestamp) -> Result<(Instance, PoolCounts)> {
        let UsageReport { instance_id: id, usage, hostname, nonce, nonce_expires_at } = report;
        self.db
            .write(move |db| {
                if !insert_nonce(db, &id, &nonce, nonce_expires_at)? {
                    return Err(StoreError::Replay);
                }
                let mut found = fetch_instance(db, &id)?;
                let old = usage_of(db, &id)?;
                let wanted: BTreeMap<String, i64> = usage.into_iter().filter(|(_, c)| *c > 0).collect();
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
                shift_pool_usage(db, found.virtual_account_id, &delta, 1)?;
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
                exec(
                    db,
                    "UPDATE instances SET last_contact_at = $1, usage_released = FALSE, hostname = $2 WHERE id = $3",
                    params![now.0, hostname, id],
                )?;
                let counts = counts_in(db, found.virtual_account_id, now)?;
                found.last_contact_at = now;
                found.usage_released = false;
                found.hostname = hostname;
                Ok((found, counts))
            })
            .await
    }

    async fn move_instances(&self, moves: Vec<InstanceMove>, actor: &str, now: Timestamp) -> Result<Vec<Instance>> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let mut moved = Vec::with_capacity(moves.len());
                for m in moves {
                    let found = instance_in(db, &m.instance_id, m.from_virtual_account_id)?;
                    let (from, to) =
                        (fetch_pool(db, found.virtual_account_id)?, fetch_pool(db, m.to_virtual_account_id)?);
                    if to.account_id != from.account_id {
                        return Err(StoreError::NotFound(format!(
                            "virtual account {} is not in the smart account of {}",
                            to.id,
                            udi_of(&found)
                        )));
                    }
                    if !found.usage_released {
                        let usage = usage_of(db, &found.id)?;
                        shift_pool_usage(db, from.id, &usage, -1)?;
                        shift_pool_usage(db, to.id, &usage, 1)?;
                    }
                    exec(db, "UPDATE instances SET virtual_account_id = $1 WHERE id = $2", params![to.id, found.id])?;
                    let detail = format!("moved from virtual account '{}' to '{}'", from.name, to.name);
                    log(db, now, &actor, "instance.moved", Some(to.account_id), Some(to.id), &udi_of(&found), detail)?;
                    moved.push(Instance { virtual_account_id: to.id, ..found });
                }
                Ok(moved)
            })
            .await
    }

    async fn remove_instances(
        &self,
        removals: Vec<Removal>,
        kind: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<Vec<Removed>> {
        let (event, actor) = (format!("instance.{kind}"), actor.to_string());
        self.db
            .write(move |db| {
                let mut done = Vec::with_capacity(removals.len());
                for removal in removals {
                    done.push(match removal {
                        Removal::Reservation(id) => Removed::Reservation(give_back(db, id, &actor, now)?),
                        Removal::Instance { id, from_virtual_account_id } => {
                            let found = instance_in(db, &id, from_virtual_account_id)?;
                            delete_instance(db, &found)?;
                            let account_id = account_of_pool(db, found.virtual_account_id)?;
                            let (pool, udi) = (Some(found.virtual_account_id), udi_of(&found));
                            log(db, now, &actor, &event, Some(account_id), pool, &udi, format!("instance {id}"))?;
                            Removed::Instance(found)
                        }
                    });
                }
                Ok(done)
            })
            .await
    }

    async fn release_silent_usage(&self, cutoff: Timestamp, now: Timestamp) -> Result<Vec<String>> {
        self.db
            .write(move |db| {
                let silent = all(
                    db,
                    &format!("{INSTANCE} WHERE last_contact_at < $1 AND usage_released = FALSE"),
                    [cutoff.0],
                    instance,
                )?;
                for inst in &silent {
                    let usage = usage_of(db, &inst.id)?;
                    shift_pool_usage(db, inst.virtual_account_id, &usage, -1)?;
                    exec(db, "UPDATE instances SET usage_released = TRUE WHERE id = $1", [&inst.id])?;
                    let account_id = account_of_pool(db, inst.virtual_account_id)?;
                    let detail = format!("not heard from since {}; usage released to the pool", inst.last_contact_at);
                    let udi = udi_of(inst);
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

    async fn expired_instances(&self, now: Timestamp) -> Result<Vec<String>> {
        self.db
            .read(move |db| all(db, "SELECT id FROM instances WHERE cert_expires_at <= $1", [now.0], |r| r.get(0)))
            .await
    }

    async fn consume_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool> {
        let (scope, nonce) = (scope.to_string(), nonce.to_string());
        self.db.write(move |db| insert_nonce(db, &scope, &nonce, expires_at)).await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<()> {
        self.db
            .write(move |db| {
                exec(db, "DELETE FROM nonces WHERE expires_at <= $1", [now.0])?;
                exec(db, "DELETE FROM access_tokens WHERE expires_at <= $1", [now.0])?;
                Ok(())
            })
            .await
    }

    async fn record_event(&self, e: NewEvent) -> Result<()> {
        self.db.write(move |db| append_event(db, &e)).await
    }

    async fn probe_writable(&self) -> Result<()> {
        self.db.write(|db| db.query_row("PRAGMA user_version", [], |_| Ok(())).map_err(StoreError::from)).await
    }

    async fn instance_count(&self) -> Result<i64> {
        self.db.read(|db| Ok(db.query_row("SELECT COUNT(*) FROM instances", [], |r| r.get(0))?)).await
    }

    fn write_busy(&self) -> std::time::Duration {
        self.db.busy()
    }

    async fn close(&self) -> Result<()> {
        self.db.close().await
    }

    async fn backup(&self) -> Result<std::fs::File> {
        backup::anonymous_copy(self).await
    }

    async fn events(&self, account_id: Option<i64>, limit: i64) -> Result<Vec<Event>> {
        self.db
            .read(move |db| match account_id {
                Some(a) => all(
                    db,
                    &format!("{EVENT} WHERE account_id = $1 ORDER BY id DESC LIMIT $2"),
                    params![a, limit],
                    event,
                ),
                None => all(db, &format!("{EVENT} ORDER BY id DESC LIMIT $1"), [limit], event),
            })
            .await
    }

    async fn sync_alerts(&self, current: Vec<NewAlert>, now: Timestamp) -> Result<()> {
        self.db
            .write(move |db| {
                let existing = all(db, ALERT, [], alert)?;
                for old in &existing {
                    if !current.iter().any(|a| a.kind == old.kind && a.object == old.object) {
                        exec(db, "DELETE FROM alerts WHERE id = $1", [old.id])?;
                        let detail = format!("cleared: {}", old.message);
                        log(db, now, "system", "alert.cleared", Some(old.account_id), old.virtual_account_id, &old.object, detail)?;
                    }
                }
                for a in &current {
                    let known = existing.iter().any(|o| o.kind == a.kind && o.object == a.object);
                    exec(
                        db,
                        "INSERT INTO alerts (kind, severity, account_id, virtual_account_id, object, message, raised_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (kind, object) DO UPDATE SET severity = excluded.severity, message = excluded.message",
                        params![a.kind, a.severity, a.account_id, a.virtual_account_id, a.object, a.message, now.0],
                    )?;
                    if !known {
                        log(db, now, "system", "alert.raised", Some(a.account_id), a.virtual_account_id, &a.object, a.message.clone())?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn alerts(&self, account_id: i64) -> Result<Vec<Alert>> {
        self.db
            .read(move |db| {
                all(db, &format!("{ALERT} WHERE account_id = $1 ORDER BY raised_at, id"), [account_id], alert)
            })
            .await
    }
}
