//! Offline reservations: licenses drawn from purchase records for devices that never
//! talk to the manager.

use super::accounts::account_of_pool;
use super::events::log;
use super::licenses::{counts_in, drawn_in, license, LICENSE};
use super::sql::{all, exec, one, opt_ts, text_column, ts, unique_or, R};
use super::SqliteStore;
use crate::rules::{held_udi_refusal, reserved_per_tag};
use crate::*;
use rusqlite::{params, Connection, Row};
use smartlic_core::LicenseTerm;

const RESERVATION: &str = "SELECT id, virtual_account_id, request_code, kind, udi_pid, udi_sn, piid, authorization_code, authorization_digest, confirmation_code, status, created_at, created_by, returned_at FROM reservations";

/// A reservation row; its licenses are read separately ([`load_reservations`]).
pub(super) fn reservation(row: &Row) -> R<Reservation> {
    Ok(Reservation {
        id: row.get("id")?,
        virtual_account_id: row.get("virtual_account_id")?,
        request_code: row.get("request_code")?,
        kind: text_column(row, "reservations.kind", str::parse)?,
        udi_pid: row.get("udi_pid")?,
        udi_sn: row.get("udi_sn")?,
        piid: row.get("piid")?,
        authorization_code: row.get("authorization_code")?,
        authorization_digest: row.get("authorization_digest")?,
        confirmation_code: row.get("confirmation_code")?,
        status: text_column(row, "reservations.status", str::parse)?,
        created_at: ts(row, "created_at")?,
        created_by: row.get("created_by")?,
        returned_at: opt_ts(row, "returned_at")?,
        licenses: Vec::new(),
    })
}

fn reserved_license(row: &Row) -> R<(i64, ReservedLicense)> {
    let kind = text_column(row, "reservation_licenses.license_type", LicenseKind::parse)?;
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

/// Refuses chunks whose purchase record is not the pool's, not valid now or has fewer undrawn
/// licenses than they take: the record choice was made on an earlier read.
fn refuse_overdrawn(
    db: &Connection,
    virtual_account_id: i64,
    licenses: &[ReservedLicense],
    now: Timestamp,
) -> Result<()> {
    let drawn = drawn_in(db, virtual_account_id)?;
    for (id, take) in crate::rules::taken_per_record(licenses)? {
        let sql = format!("{LICENSE} WHERE id = $1 AND virtual_account_id = $2");
        let record = one(db, &sql, params![id, virtual_account_id], license)?;
        crate::rules::refuse_overdrawn_record(id, record.as_ref(), &drawn, take, now)?;
    }
    Ok(())
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
    match held_udi_refusal(account_id, pid, sn, reserved, registered) {
        Some(refusal) => Err(StoreError::Conflict(refusal)),
        None => Ok(()),
    }
}

/// Gives a reservation's licenses back to its pool; refused (Conflict) when already returned.
pub(super) fn give_back(db: &Connection, id: i64, actor: &str, now: Timestamp) -> Result<Reservation> {
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

pub(super) async fn create_reservations(
    store: &SqliteStore,
    virtual_account_id: i64,
    new: Vec<NewReservation>,
    check: ReservationCheck,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<Reservation>> {
    let actor = actor.to_string();
    store.db
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
                    n.kind.as_str(),
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
                let detail = crate::rules::reservation_detail(&n);
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

pub(super) async fn reservations(store: &SqliteStore, filter: ReservationFilter) -> Result<Vec<Reservation>> {
    store
        .db
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

pub(super) async fn reservation_by_digest(store: &SqliteStore, digest_hex: &str) -> Result<Option<Reservation>> {
    let digest = digest_hex.to_string();
    store.db.read(move |db| Ok(load_reservations(db, "authorization_digest = $1", [&digest])?.pop())).await
}

pub(super) async fn return_reservation(
    store: &SqliteStore,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<Reservation> {
    let actor = actor.to_string();
    store.db.write(move |db| give_back(db, id, &actor, now)).await
}
