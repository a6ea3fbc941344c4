//! Offline reservations: licenses drawn from purchase records for devices that never
//! talk to the manager. The transaction is serializable, so two replicas reserving from one
//! pool at once never over-commit it: one of them runs again and sees the other's draws. The
//! counts it decides on are read behind the pool's gate (`licenses::counts_to_decide`), which
//! orders it with the usage reports, run READ COMMITTED (see `engine.rs`).

use super::accounts::account_of_pool;
use super::events::log;
use super::licenses::{counts_to_decide, drawn_in, license, LICENSE};
use super::sql::{get, opt_ts, text_column, ts, Args, Tx};
use super::PostgresStore;
use crate::rules::{held_udi_refusal, reserved_per_tag};
use crate::*;
use smartlic_core::LicenseTerm;
use tokio_postgres::Row;

const RESERVATION: &str = "SELECT id, virtual_account_id, request_code, kind, udi_pid, udi_sn, piid, authorization_code, authorization_digest, confirmation_code, status, created_at, created_by, returned_at FROM reservations";

/// A reservation row; its licenses are read separately ([`load_reservations`]).
fn reservation(row: &Row) -> Result<Reservation> {
    Ok(Reservation {
        id: get(row, "id")?,
        virtual_account_id: get(row, "virtual_account_id")?,
        request_code: get(row, "request_code")?,
        kind: text_column(row, "reservations.kind", str::parse)?,
        udi_pid: get(row, "udi_pid")?,
        udi_sn: get(row, "udi_sn")?,
        piid: get(row, "piid")?,
        authorization_code: get(row, "authorization_code")?,
        authorization_digest: get(row, "authorization_digest")?,
        confirmation_code: get(row, "confirmation_code")?,
        status: text_column(row, "reservations.status", str::parse)?,
        created_at: ts(row, "created_at")?,
        created_by: get(row, "created_by")?,
        returned_at: opt_ts(row, "returned_at")?,
        licenses: Vec::new(),
    })
}

fn reserved_license(row: &Row) -> Result<(i64, ReservedLicense)> {
    let kind = text_column(row, "reservation_licenses.license_type", LicenseKind::parse)?;
    let license = ReservedLicense {
        tag: get(row, "tag")?,
        quantity: get(row, "quantity")?,
        term: LicenseTerm { kind, start: opt_ts(row, "start_at")?, end: opt_ts(row, "end_at")? },
        subscription_id: get(row, "subscription_id")?,
        license_id: get(row, "license_id")?,
    };
    Ok((get(row, "reservation_id")?, license))
}

/// Reservations chosen by `condition` (on `reservations`), each with its licenses: two queries.
async fn load_reservations(tx: &Tx<'_>, condition: &str, args: Args<'_>) -> Result<Vec<Reservation>> {
    let mut found = tx.all(&format!("{RESERVATION} WHERE {condition} ORDER BY id"), args, reservation).await?;
    let licenses = tx
        .all(
            &format!(
                "SELECT reservation_id, tag, quantity, license_type, start_at, end_at, subscription_id, license_id FROM reservation_licenses
                 WHERE reservation_id IN (SELECT id FROM reservations WHERE {condition}) ORDER BY reservation_id, id"
            ),
            args,
            reserved_license,
        )
        .await?;
    for (id, license) in licenses {
        if let Some(r) = found.iter_mut().find(|r| r.id == id) {
            r.licenses.push(license);
        }
    }
    Ok(found)
}

/// Adds `sign` × what a reservation of the pool draws to the records' draw counters (rows that
/// fall to zero go).
async fn shift_draws(tx: &Tx<'_>, virtual_account_id: i64, licenses: &[ReservedLicense], sign: i64) -> Result<()> {
    for l in licenses {
        let Some(license_id) = l.license_id else { continue };
        tx.exec(
            "INSERT INTO license_draws (virtual_account_id, license_id, tag, quantity) VALUES ($1, $2, $3, $4)
             ON CONFLICT (virtual_account_id, license_id, tag) DO UPDATE SET quantity = license_draws.quantity + excluded.quantity",
            &[&virtual_account_id, &license_id, &l.tag, &(sign * l.quantity)],
        )
        .await?;
    }
    tx.exec("DELETE FROM license_draws WHERE virtual_account_id = $1 AND quantity = 0", &[&virtual_account_id]).await?;
    Ok(())
}

/// Refuses chunks whose purchase record is not the pool's, not valid now or has fewer undrawn
/// licenses than they take: the record choice was made on an earlier read.
async fn refuse_overdrawn(
    tx: &Tx<'_>,
    virtual_account_id: i64,
    licenses: &[ReservedLicense],
    now: Timestamp,
) -> Result<()> {
    let drawn = drawn_in(tx, virtual_account_id).await?;
    for (id, take) in crate::rules::taken_per_record(licenses)? {
        let sql = format!("{LICENSE} WHERE id = $1 AND virtual_account_id = $2");
        let record = tx.one(&sql, &[&id, &virtual_account_id], license).await?;
        crate::rules::refuse_overdrawn_record(id, record.as_ref(), &drawn, take, now)?;
    }
    Ok(())
}

/// Refuses to reserve for a device already licensed (see `crate::rules::held_udi_refusal`).
async fn refuse_held_udi(tx: &Tx<'_>, account_id: i64, pid: &str, sn: &str) -> Result<()> {
    let pair = |r: &Row| Ok((get(r, 0)?, get(r, 1)?));
    let reserved = tx
        .one(
            "SELECT v.account_id, v.name FROM reservations r JOIN virtual_accounts v ON v.id = r.virtual_account_id
             WHERE r.udi_pid = $1 AND r.udi_sn = $2 AND r.status = 'reserved'",
            &[&pid, &sn],
            pair,
        )
        .await?;
    let registered = tx
        .one(
            "SELECT v.account_id, v.name FROM instances i JOIN virtual_accounts v ON v.id = i.virtual_account_id
             WHERE i.udi_pid = $1 AND i.udi_sn = $2",
            &[&pid, &sn],
            pair,
        )
        .await?;
    match held_udi_refusal(account_id, pid, sn, reserved, registered) {
        Some(refusal) => Err(StoreError::Conflict(refusal)),
        None => Ok(()),
    }
}

/// Gives a reservation's licenses back to its pool; refused (Conflict) when already returned.
pub(super) async fn give_back(tx: &Tx<'_>, id: i64, actor: &str, now: Timestamp) -> Result<Reservation> {
    let found = load_reservations(tx, "id = $1", &[&id])
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("reservation {id} does not exist")))?;
    if let Some(at) = found.returned_at {
        return Err(StoreError::Conflict(format!("the reservation of {} was already returned on {at}", found.udi())));
    }
    tx.exec("UPDATE reservations SET status = 'returned', returned_at = $1 WHERE id = $2", &[&now.0, &id]).await?;
    shift_draws(tx, found.virtual_account_id, &found.licenses, -1).await?;
    let account_id = account_of_pool(tx, found.virtual_account_id).await?;
    let detail = format!("PIID {}: licenses back to the pool", found.piid);
    let udi = found.udi();
    log(tx, now, actor, "reservation.returned", Some(account_id), Some(found.virtual_account_id), &udi, detail).await?;
    Ok(Reservation { status: ReservationStatus::Returned, returned_at: Some(now), ..found })
}

pub(super) async fn create_reservations(
    store: &PostgresStore,
    virtual_account_id: i64,
    new: Vec<NewReservation>,
    check: ReservationCheck,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<Reservation>> {
    write!(store, |tx| {
        let account_id = account_of_pool(&tx, virtual_account_id).await?;
        for (i, n) in new.iter().enumerate() {
            refuse_held_udi(&tx, account_id, &n.udi_pid, &n.udi_sn).await?;
            if new[..i].iter().any(|m| (&m.udi_pid, &m.udi_sn) == (&n.udi_pid, &n.udi_sn)) {
                let udi = format!("PID:{},SN:{}", n.udi_pid, n.udi_sn);
                return Err(StoreError::Conflict(format!("{udi} is listed twice: one reservation per device")));
            }
        }
        let asked = reserved_per_tag(new.iter().flat_map(|n| &n.licenses));
        check(&counts_to_decide(&tx, virtual_account_id, now).await?, &asked).map_err(StoreError::Conflict)?;
        let chunks: Vec<ReservedLicense> = new.iter().flat_map(|n| n.licenses.iter().cloned()).collect();
        refuse_overdrawn(&tx, virtual_account_id, &chunks, now).await?;
        let mut made = Vec::with_capacity(new.len());
        for n in &new {
            let udi = format!("PID:{},SN:{}", n.udi_pid, n.udi_sn);
            let id = tx
                .insert_unique(
                    "INSERT INTO reservations (virtual_account_id, request_code, kind, udi_pid, udi_sn, piid, authorization_code,
                     authorization_digest, confirmation_code, status, created_at, created_by, returned_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'reserved', $10, $11, NULL) RETURNING id",
                    &[
                        &virtual_account_id,
                        &n.request_code,
                        &n.kind.as_str(),
                        &n.udi_pid,
                        &n.udi_sn,
                        &n.piid,
                        &n.authorization_code,
                        &n.authorization_digest,
                        &n.confirmation_code,
                        &now.0,
                        &actor,
                    ],
                    || format!("{udi}: this authorization code exists already"),
                )
                .await?;
            for l in &n.licenses {
                tx.exec(
                    "INSERT INTO reservation_licenses (reservation_id, tag, quantity, license_type, start_at, end_at, subscription_id,
                     license_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &id,
                        &l.tag,
                        &l.quantity,
                        &l.term.kind.as_str(),
                        &l.term.start.map(|t| t.0),
                        &l.term.end.map(|t| t.0),
                        &l.subscription_id,
                        &l.license_id,
                    ],
                )
                .await?;
            }
            shift_draws(&tx, virtual_account_id, &n.licenses, 1).await?;
            let detail = crate::rules::reservation_detail(n);
            log(&tx, now, actor, "reservation.created", Some(account_id), Some(virtual_account_id), &udi, detail)
                .await?;
            made.push(Reservation {
                id,
                virtual_account_id,
                request_code: n.request_code.clone(),
                kind: n.kind,
                udi_pid: n.udi_pid.clone(),
                udi_sn: n.udi_sn.clone(),
                piid: n.piid.clone(),
                authorization_code: n.authorization_code.clone(),
                authorization_digest: n.authorization_digest.clone(),
                confirmation_code: n.confirmation_code.clone(),
                status: ReservationStatus::Reserved,
                created_at: now,
                created_by: actor.into(),
                returned_at: None,
                licenses: n.licenses.clone(),
            });
        }
        Ok(made)
    })
}

pub(super) async fn reservations(store: &PostgresStore, filter: ReservationFilter) -> Result<Vec<Reservation>> {
    read!(store, |tx| match filter {
        ReservationFilter::VirtualAccount(v) => load_reservations(&tx, "virtual_account_id = $1", &[&v]).await,
        ReservationFilter::Account(a) => {
            let condition = "virtual_account_id IN (SELECT id FROM virtual_accounts WHERE account_id = $1)";
            load_reservations(&tx, condition, &[&a]).await
        }
    })
}

pub(super) async fn reservation_by_digest(store: &PostgresStore, digest_hex: &str) -> Result<Option<Reservation>> {
    read!(store, |tx| Ok(load_reservations(&tx, "authorization_digest = $1", &[&digest_hex]).await?.pop()))
}

pub(super) async fn return_reservation(
    store: &PostgresStore,
    id: i64,
    actor: &str,
    now: Timestamp,
) -> Result<Reservation> {
    write!(store, |tx| give_back(&tx, id, actor, now).await)
}
