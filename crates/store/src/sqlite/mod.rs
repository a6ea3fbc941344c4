//! The embedded SQLite backend: one file, WAL journal, full synchronous commits shared by
//! concurrent writers (see `engine`), so an acknowledged change survives a crash or power loss.

mod engine;

use crate::*;
use engine::Engine;
use rusqlite::{params, Connection, OptionalExtension, Row};
use smartlic_core::{LicenseTerm, Role};
use std::path::Path;

/// Applied in order; `PRAGMA user_version` counts those done, so each runs once per database.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_reservations.sql"),
];

pub struct SqliteStore {
    db: Engine,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let db = tokio::task::spawn_blocking(move || Engine::open(&path, MIGRATIONS))
            .await
            .map_err(|e| StoreError::Database(e.to_string()))??;
        Ok(SqliteStore { db })
    }
}

const ACCOUNT: &str = "SELECT id, domain, name, created_at, universal_reservation FROM smart_accounts";
const VIRTUAL_ACCOUNT: &str = "SELECT id, account_id, name, description, is_default, created_at FROM virtual_accounts";
const PRINCIPAL: &str =
    "SELECT id, kind, name, secret_hash, role, account_id, virtual_account_id, created_at FROM principals";
const LICENSE: &str = "SELECT id, virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at FROM licenses";
const TOKEN: &str = "SELECT id, virtual_account_id, token, description, created_at, expires_at, max_uses, uses, export_controlled, revoked_at, created_by FROM registration_tokens";
const INSTANCE: &str = "SELECT id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released FROM instances";
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
        secret_hash: row.get("secret_hash")?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("unknown role {role}")))?,
        account_id: row.get("account_id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        created_at: ts(row, "created_at")?,
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
        token: row.get("token")?,
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
    };
    Ok((row.get("reservation_id")?, license))
}

/// Reservations chosen by `condition` (on `reservations`), each with its licenses: two queries.
fn load_reservations(db: &Connection, condition: &str, args: impl rusqlite::Params + Copy) -> Result<Vec<Reservation>> {
    let mut found = all(db, &format!("{RESERVATION} WHERE {condition} ORDER BY id"), args, reservation)?;
    let licenses = all(
        db,
        &format!(
            "SELECT reservation_id, tag, quantity, license_type, start_at, end_at, subscription_id FROM reservation_licenses
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

fn account_of_pool(db: &Connection, virtual_account_id: i64) -> Result<i64> {
    one(db, "SELECT account_id FROM virtual_accounts WHERE id = $1", [virtual_account_id], |r| r.get(0))?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {virtual_account_id} does not exist")))
}

/// The per-pool counters kept incrementally in `pool_usage`.
#[derive(Clone, Copy)]
enum Counter {
    InUse,
    Reserved,
}

/// Adds `sign` × `counts` to one of a pool's counters.
fn shift_counter(
    db: &Connection,
    counter: Counter,
    virtual_account_id: i64,
    counts: &BTreeMap<String, i64>,
    sign: i64,
) -> Result<()> {
    let sql = match counter {
        Counter::InUse => {
            "INSERT INTO pool_usage (virtual_account_id, tag, in_use, reserved) VALUES ($1, $2, $3, 0)
             ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = pool_usage.in_use + excluded.in_use"
        }
        Counter::Reserved => {
            "INSERT INTO pool_usage (virtual_account_id, tag, in_use, reserved) VALUES ($1, $2, 0, $3)
             ON CONFLICT (virtual_account_id, tag) DO UPDATE SET reserved = pool_usage.reserved + excluded.reserved"
        }
    };
    for (tag, count) in counts.iter().filter(|(_, c)| **c != 0) {
        exec(db, sql, params![virtual_account_id, tag, sign * count])?;
    }
    Ok(())
}

/// Adds `sign` × the usage of an instance to its pool's counters.
fn shift_pool_usage(db: &Connection, virtual_account_id: i64, usage: &BTreeMap<String, i64>, sign: i64) -> Result<()> {
    shift_counter(db, Counter::InUse, virtual_account_id, usage, sign)
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
    let counters: Vec<(String, i64, i64)> = all(
        db,
        "SELECT tag, in_use, reserved FROM pool_usage WHERE virtual_account_id = $1 AND (in_use <> 0 OR reserved <> 0)",
        [virtual_account_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut counts = PoolCounts { purchased: purchased.into_iter().collect(), ..PoolCounts::default() };
    for (tag, in_use, reserved) in counters {
        for (map, n) in [(&mut counts.in_use, in_use), (&mut counts.reserved, reserved)] {
            if n != 0 {
                map.insert(tag.clone(), n);
            }
        }
    }
    Ok(counts)
}

fn fetch_instance(db: &Connection, id: &str) -> Result<Instance> {
    one(db, &format!("{INSTANCE} WHERE id = $1"), [id], instance)?
        .ok_or_else(|| StoreError::NotFound(format!("product instance {id} does not exist")))
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

fn udi_of(i: &Instance) -> String {
    format!("PID:{},SN:{}", i.udi_pid, i.udi_sn)
}

fn short(token: &str) -> String {
    format!("{}…", token.chars().take(12).collect::<String>())
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
                let asked = reserved_per_tag(new.iter().flat_map(|n| &n.licenses));
                check(&counts_in(db, virtual_account_id, now)?, &asked).map_err(StoreError::Conflict)?;
                let mut made = Vec::with_capacity(new.len());
                for n in new {
                    let udi = format!("PID:{},SN:{}", n.udi_pid, n.udi_sn);
                    let held = one(
                        db,
                        "SELECT v.name FROM reservations r JOIN virtual_accounts v ON v.id = r.virtual_account_id
                         WHERE r.udi_pid = $1 AND r.udi_sn = $2 AND r.status = 'reserved'",
                        params![n.udi_pid, n.udi_sn],
                        |r| r.get::<_, String>(0),
                    )?;
                    if let Some(pool) = held {
                        return Err(StoreError::Conflict(format!(
                            "{udi} already holds an active reservation (in virtual account '{pool}'); return it first"
                        )));
                    }
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
                            "INSERT INTO reservation_licenses (reservation_id, tag, quantity, license_type, start_at, end_at, subscription_id)
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            params![
                                id,
                                l.tag,
                                l.quantity,
                                l.term.kind.as_str(),
                                l.term.start.map(|t| t.0),
                                l.term.end.map(|t| t.0),
                                l.subscription_id
                            ],
                        )?;
                    }
                    let per_tag = reserved_per_tag(&n.licenses);
                    shift_counter(db, Counter::Reserved, virtual_account_id, &per_tag, 1)?;
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
        self.db
            .write(move |db| {
                let found = load_reservations(db, "id = $1", [id])?
                    .pop()
                    .ok_or_else(|| StoreError::NotFound(format!("reservation {id} does not exist")))?;
                if let Some(at) = found.returned_at {
                    return Err(StoreError::Conflict(format!(
                        "the reservation of {} was already returned on {at}",
                        found.udi()
                    )));
                }
                exec(
                    db,
                    "UPDATE reservations SET status = 'returned', returned_at = $1 WHERE id = $2",
                    params![now.0, id],
                )?;
                let per_tag = reserved_per_tag(&found.licenses);
                shift_counter(db, Counter::Reserved, found.virtual_account_id, &per_tag, -1)?;
                let account_id = account_of_pool(db, found.virtual_account_id)?;
                let detail = format!("PIID {}: licenses back to the pool", found.piid);
                log(
                    db,
                    now,
                    &actor,
                    "reservation.returned",
                    Some(account_id),
                    Some(found.virtual_account_id),
                    &found.udi(),
                    detail,
                )?;
                Ok(Reservation { status: ReservationStatus::Returned, returned_at: Some(now), ..found })
            })
            .await
    }

    async fn create_principal(&self, new: NewPrincipal, actor: &str, now: Timestamp) -> Result<Principal> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                db.prepare_cached(
                    "INSERT INTO principals (kind, name, secret_hash, role, account_id, virtual_account_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )?
                .execute(params![
                    new.kind.as_str(),
                    new.name,
                    new.secret_hash,
                    new.role.as_str(),
                    new.account_id,
                    new.virtual_account_id,
                    now.0
                ])
                .map_err(|e| unique_or(e, || format!("a user or API client named '{}' exists already", new.name)))?;
                let id = db.last_insert_rowid();
                let kind = format!("{}.created", new.kind.as_str());
                log(
                    db,
                    now,
                    &actor,
                    &kind,
                    new.account_id,
                    new.virtual_account_id,
                    &new.name,
                    new.role.as_str().into(),
                )?;
                Ok(Principal {
                    id,
                    kind: new.kind,
                    name: new.name,
                    secret_hash: new.secret_hash,
                    role: new.role,
                    account_id: new.account_id,
                    virtual_account_id: new.virtual_account_id,
                    created_at: now,
                })
            })
            .await
    }

    async fn principal(&self, name: &str) -> Result<Option<Principal>> {
        let name = name.to_string();
        self.db.read(move |db| one(db, &format!("{PRINCIPAL} WHERE name = $1"), [name], principal)).await
    }

    async fn principals(&self, account_id: Option<i64>) -> Result<Vec<Principal>> {
        self.db
            .read(move |db| match account_id {
                Some(a) => all(db, &format!("{PRINCIPAL} WHERE account_id = $1 ORDER BY name"), [a], principal),
                None => all(db, &format!("{PRINCIPAL} ORDER BY name"), [], principal),
            })
            .await
    }

    async fn set_principal_secret(&self, id: i64, secret_hash: &str) -> Result<()> {
        let hash = secret_hash.to_string();
        self.db
            .write(move |db| {
                exec(db, "UPDATE principals SET secret_hash = $1 WHERE id = $2", params![hash, id]).map(drop)
            })
            .await
    }

    async fn insert_access_token(&self, token_hash: &str, principal_id: i64, expires_at: Timestamp) -> Result<()> {
        let hash = token_hash.to_string();
        self.db
            .write(move |db| {
                exec(
                    db,
                    "INSERT INTO access_tokens (token_hash, principal_id, expires_at) VALUES ($1, $2, $3)",
                    params![hash, principal_id, expires_at.0],
                )
                .map(drop)
            })
            .await
    }

    async fn principal_for_access_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<Principal>> {
        let hash = token_hash.to_string();
        let sql = format!(
            "{PRINCIPAL} WHERE id = (SELECT principal_id FROM access_tokens WHERE token_hash = $1 AND expires_at > $2)"
        );
        self.db.read(move |db| one(db, &sql, params![hash, now.0], principal)).await
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

    async fn transfer_licenses(&self, t: Transfer, actor: &str, now: Timestamp) -> Result<()> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let account_id = account_of_pool(db, t.from_virtual_account_id)?;
                let records: Vec<LicenseRecord> = all(
                    db,
                    &format!(
                        "{LICENSE} WHERE virtual_account_id = $1 AND tag = $2 AND (start_at IS NULL OR start_at <= $3)
                         AND (end_at IS NULL OR end_at > $3) ORDER BY CASE kind WHEN 'perpetual' THEN 0 ELSE 1 END, end_at DESC, id"
                    ),
                    params![t.from_virtual_account_id, t.tag, now.0],
                    license,
                )?
                .into_iter()
                .filter(|r| t.kind.is_none_or(|k| r.term.kind == k))
                .collect();
                let held: i64 = records.iter().map(|r| r.quantity).sum();
                if held < t.quantity {
                    return Err(StoreError::Conflict(format!(
                        "only {held} license(s) of '{}' can be transferred from this virtual account, {} requested",
                        t.tag, t.quantity
                    )));
                }
                let mut left = t.quantity;
                for r in records {
                    if left == 0 {
                        break;
                    }
                    let take = left.min(r.quantity);
                    left -= take;
                    if take == r.quantity {
                        exec(db, "UPDATE licenses SET virtual_account_id = $1 WHERE id = $2", params![t.to_virtual_account_id, r.id])?;
                    } else {
                        exec(db, "UPDATE licenses SET quantity = quantity - $1 WHERE id = $2", params![take, r.id])?;
                        exec(
                            db,
                            "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
                             SELECT $1, tag, sku, $2, kind, start_at, end_at, subscription_id, created_at FROM licenses WHERE id = $3",
                            params![t.to_virtual_account_id, take, r.id],
                        )?;
                    }
                }
                let detail = format!("{} moved to virtual account {}", t.quantity, t.to_virtual_account_id);
                log(db, now, &actor, "license.transferred", Some(account_id), Some(t.from_virtual_account_id), &t.tag, detail)
            })
            .await
    }

    async fn pool_counts(&self, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
        self.db.read(move |db| counts_in(db, virtual_account_id, now)).await
    }

    async fn create_token(&self, new: NewToken, actor: &str, now: Timestamp) -> Result<RegistrationToken> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                let account_id = account_of_pool(db, new.virtual_account_id)?;
                exec(
                    db,
                    "INSERT INTO registration_tokens (virtual_account_id, token, token_hash, description, created_at, expires_at,
                     max_uses, uses, export_controlled, revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9)",
                    params![
                        new.virtual_account_id,
                        new.token,
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
                log(db, now, &actor, "token.created", Some(account_id), Some(new.virtual_account_id), &short(&new.token), detail)?;
                Ok(RegistrationToken {
                    id,
                    virtual_account_id: new.virtual_account_id,
                    token: new.token,
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

    async fn revoke_token(
        &self,
        virtual_account_id: i64,
        text: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<RegistrationToken> {
        let (text, actor) = (text.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                let found = one(
                    db,
                    &format!("{TOKEN} WHERE virtual_account_id = $1 AND token = $2"),
                    params![virtual_account_id, text],
                    token,
                )?
                .ok_or_else(|| StoreError::NotFound("no such token in this virtual account".into()))?;
                if found.revoked_at.is_some() {
                    return Err(StoreError::Conflict("the token is revoked already".into()));
                }
                exec(db, "UPDATE registration_tokens SET revoked_at = $1 WHERE id = $2", params![now.0, found.id])?;
                let account_id = account_of_pool(db, virtual_account_id)?;
                log(
                    db,
                    now,
                    &actor,
                    "token.revoked",
                    Some(account_id),
                    Some(virtual_account_id),
                    &short(&found.token),
                    String::new(),
                )?;
                Ok(RegistrationToken { revoked_at: Some(now), ..found })
            })
            .await
    }

    async fn register_instance(
        &self,
        r: NewInstance,
        now: Timestamp,
    ) -> std::result::Result<Registered, RegisterRefusal> {
        self.db
            .write(move |db| {
                let tok = one(db, &format!("{TOKEN} WHERE token_hash = $1"), [&r.token_hash], token)?
                    .ok_or(RegisterRefusal::InvalidToken)?;
                if tok.facts().status_at(now) != smartlic_core::TokenStatus::Active {
                    return Err(RegisterRefusal::InvalidToken);
                }
                let existing = one(db, &format!("{INSTANCE} WHERE udi_pid = $1 AND udi_sn = $2"), params![r.udi_pid, r.udi_sn], instance)?;
                let replaced = match existing {
                    Some(_) if !r.force => return Err(RegisterRefusal::AlreadyRegistered),
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
                     cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, FALSE)",
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
                        tok.export_controlled
                    ],
                )?;
                let va = one(db, &format!("{VIRTUAL_ACCOUNT} WHERE id = $1"), [tok.virtual_account_id], virtual_account)?
                    .ok_or_else(|| StoreError::Corrupt("token without pool".into()))?;
                let acct = one(db, &format!("{ACCOUNT} WHERE id = $1"), [va.account_id], account)?
                    .ok_or_else(|| StoreError::Corrupt("pool without account".into()))?;
                let inst = fetch_instance(db, &r.id)?;
                let detail = match &replaced {
                    Some(old) => format!("instance {} (forced, replaces {old})", r.id),
                    None => format!("instance {}", r.id),
                };
                let udi = udi_of(&inst);
                log(db, now, &udi, "instance.registered", Some(acct.id), Some(va.id), &udi, detail)?;
                Ok(Registered { instance: inst, virtual_account: va, account: acct, replaced })
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
                exec(
                    db,
                    "UPDATE instances SET cert_serial = $1, cert_expires_at = $2, key_algorithm = $3, public_key = $4, last_contact_at = $5 WHERE id = $6",
                    params![cert.serial, cert.expires_at.0, cert.key_algorithm, cert.public_key, now.0, id],
                )?;
                let account_id = account_of_pool(db, found.virtual_account_id)?;
                let udi = udi_of(&found);
                let detail = format!("ID certificate {} valid until {}", cert.serial, cert.expires_at);
                log(db, now, &udi, "instance.id-renewed", Some(account_id), Some(found.virtual_account_id), &udi, detail)
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
                let hostname = hostname.unwrap_or_else(|| found.hostname.clone());
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

    async fn move_instance(&self, id: &str, to: i64, actor: &str, now: Timestamp) -> Result<Instance> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                let found = fetch_instance(db, &id)?;
                if !found.usage_released {
                    let usage = usage_of(db, &id)?;
                    shift_pool_usage(db, found.virtual_account_id, &usage, -1)?;
                    shift_pool_usage(db, to, &usage, 1)?;
                }
                exec(db, "UPDATE instances SET virtual_account_id = $1 WHERE id = $2", params![to, id])?;
                let account_id = account_of_pool(db, to)?;
                let detail = format!("moved from virtual account {} to {to}", found.virtual_account_id);
                log(db, now, &actor, "instance.moved", Some(account_id), Some(to), &udi_of(&found), detail)?;
                Ok(Instance { virtual_account_id: to, ..found })
            })
            .await
    }

    async fn remove_instance(&self, id: &str, kind: &str, actor: &str, now: Timestamp) -> Result<Instance> {
        let (id, kind, actor) = (id.to_string(), kind.to_string(), actor.to_string());
        self.db
            .write(move |db| {
                let found = fetch_instance(db, &id)?;
                delete_instance(db, &found)?;
                let account_id = account_of_pool(db, found.virtual_account_id)?;
                let event = format!("instance.{kind}");
                log(
                    db,
                    now,
                    &actor,
                    &event,
                    Some(account_id),
                    Some(found.virtual_account_id),
                    &udi_of(&found),
                    format!("instance {id}"),
                )?;
                Ok(found)
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
