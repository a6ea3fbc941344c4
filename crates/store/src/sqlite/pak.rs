//! [`PakStore`] on SQLite: PAKs, their lines and their conversions (V-2).

use super::events::log;
use super::licenses::insert_license;
use super::sql::{all, exec, one, ts, unique_or, R};
use super::SqliteStore;
use crate::pak::*;
use crate::{LicenseRecord, NewLicense, Result, StoreError};
use rusqlite::{params, Connection, Row};
use smartlic_core::Timestamp;

const PAK_COLUMNS: &str =
    "id, pak, account_id, virtual_account_id, order_number, order_date, partial_fulfillment, imported_at";

fn pak_row(r: &Row) -> R<Pak> {
    Ok(Pak {
        id: r.get("id")?,
        pak: r.get("pak")?,
        account_id: r.get("account_id")?,
        virtual_account_id: r.get("virtual_account_id")?,
        order_number: r.get("order_number")?,
        order_date: r.get("order_date")?,
        partial_fulfillment: r.get("partial_fulfillment")?,
        imported_at: ts(r, "imported_at")?,
        lines: Vec::new(),
    })
}

fn line_row(r: &Row) -> R<(i64, PakLine)> {
    let line = PakLine {
        sku: r.get("sku")?,
        tag: r.get("tag")?,
        units: r.get("units")?,
        quantity: r.get("quantity")?,
        converted: r.get("converted")?,
    };
    Ok((r.get("pak_id")?, line))
}

fn paks(db: &Connection, account_id: i64) -> Result<Vec<Pak>> {
    let sql = format!("SELECT {PAK_COLUMNS} FROM paks WHERE account_id = $1 ORDER BY pak");
    let found = all(db, &sql, [account_id], pak_row)?;
    let lines = all(
        db,
        "SELECT l.pak_id, l.sku, l.tag, l.units, l.quantity, l.converted FROM pak_lines l
         JOIN paks p ON p.id = l.pak_id WHERE p.account_id = $1 ORDER BY l.pak_id, l.sku",
        [account_id],
        line_row,
    )?;
    Ok(with_lines(found, lines))
}

fn pak(db: &Connection, account_id: i64, pak: &str) -> Result<Pak> {
    let sql = format!("SELECT {PAK_COLUMNS} FROM paks WHERE account_id = $1 AND pak = $2");
    let found = one(db, &sql, params![account_id, pak], pak_row)?
        .ok_or_else(|| StoreError::NotFound(format!("PAK '{pak}' does not exist in this smart account")))?;
    let lines = all(
        db,
        "SELECT pak_id, sku, tag, units, quantity, converted FROM pak_lines WHERE pak_id = $1 ORDER BY sku",
        [found.id],
        line_row,
    )?;
    Ok(with_lines(vec![found], lines).remove(0))
}

fn check_pool(db: &Connection, account_id: i64, pool: i64) -> Result<()> {
    let owner: Option<i64> = one(db, "SELECT account_id FROM virtual_accounts WHERE id = $1", [pool], |r| r.get(0))?;
    if owner != Some(account_id) {
        return Err(StoreError::NotFound(format!("virtual account {pool} is not in smart account {account_id}")));
    }
    Ok(())
}

fn import(db: &Connection, account_id: i64, new: &[NewPak], actor: &str, now: Timestamp) -> Result<Vec<Pak>> {
    for p in new {
        if let Some(pool) = p.virtual_account_id {
            check_pool(db, account_id, pool)?;
        }
        db.prepare_cached(
            "INSERT INTO paks (pak, account_id, virtual_account_id, order_number, order_date, partial_fulfillment, imported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )?
        .execute(params![p.pak, account_id, p.virtual_account_id, p.order_number, p.order_date, p.partial_fulfillment, now.0])
        .map_err(|e| unique_or(e, || format!("PAK '{}' was imported already", p.pak)))?;
        let id = db.last_insert_rowid();
        for l in &p.lines {
            exec(
                db,
                "INSERT INTO pak_lines (pak_id, sku, tag, units, quantity) VALUES ($1, $2, $3, $4, $5)",
                params![id, l.sku, l.tag, l.units, l.quantity],
            )?;
        }
        log(db, now, actor, "pak.imported", Some(account_id), p.virtual_account_id, &p.pak, import_detail(p))?;
    }
    let names: Vec<&str> = new.iter().map(|p| p.pak.as_str()).collect();
    Ok(paks(db, account_id)?.into_iter().filter(|p| names.contains(&p.pak.as_str())).collect())
}

fn convert(
    db: &Connection,
    c: &ConvertPak,
    actor: &str,
    now: Timestamp,
) -> Result<(PakConversion, Vec<LicenseRecord>)> {
    check_pool(db, c.account_id, c.virtual_account_id)?;
    let found = pak(db, c.account_id, &c.pak)?;
    let lines = found.plan(c.lines.as_ref())?;
    exec(
        db,
        "INSERT INTO pak_conversions (pak_id, account_id, virtual_account_id, actor, converted_at) VALUES ($1, $2, $3, $4, $5)",
        params![found.id, c.account_id, c.virtual_account_id, actor, now.0],
    )?;
    let conversion_id = db.last_insert_rowid();
    let mut licenses = Vec::with_capacity(lines.len());
    for l in &lines {
        let counted = exec(
            db,
            "UPDATE pak_lines SET converted = converted + $1 WHERE pak_id = $2 AND sku = $3 AND converted + $1 <= quantity",
            params![l.quantity, found.id, l.sku],
        )?;
        if counted != 1 {
            return Err(StoreError::Conflict(format!(
                "PAK '{}': SKU '{}' changed during the conversion",
                c.pak, l.sku
            )));
        }
        exec(
            db,
            "INSERT INTO pak_conversion_lines (conversion_id, sku, quantity, tag, licenses) VALUES ($1, $2, $3, $4, $5)",
            params![conversion_id, l.sku, l.quantity, l.tag, l.licenses],
        )?;
        let new = NewLicense::perpetual(c.virtual_account_id, &l.tag, pak_sku(&c.pak, &l.sku), l.licenses);
        licenses.push(insert_license(db, new, now)?);
    }
    log(db, now, actor, "pak.converted", Some(c.account_id), Some(c.virtual_account_id), &c.pak, lines_detail(&lines))?;
    let done = PakConversion {
        id: conversion_id,
        pak: c.pak.clone(),
        account_id: c.account_id,
        virtual_account_id: c.virtual_account_id,
        actor: actor.into(),
        at: now,
        lines,
    };
    Ok((done, licenses))
}

fn conversions(db: &Connection, account_id: i64) -> Result<Vec<PakConversion>> {
    let found = all(
        db,
        "SELECT c.id, p.pak, c.account_id, c.virtual_account_id, c.actor, c.converted_at FROM pak_conversions c
         JOIN paks p ON p.id = c.pak_id WHERE c.account_id = $1 ORDER BY c.id DESC",
        [account_id],
        |r| {
            Ok(PakConversion {
                id: r.get(0)?,
                pak: r.get(1)?,
                account_id: r.get(2)?,
                virtual_account_id: r.get(3)?,
                actor: r.get(4)?,
                at: Timestamp(r.get(5)?),
                lines: Vec::new(),
            })
        },
    )?;
    let lines = all(
        db,
        "SELECT l.conversion_id, l.sku, l.quantity, l.tag, l.licenses FROM pak_conversion_lines l
         JOIN pak_conversions c ON c.id = l.conversion_id WHERE c.account_id = $1 ORDER BY l.conversion_id, l.sku",
        [account_id],
        |r| Ok((r.get(0)?, ConvertedLine { sku: r.get(1)?, quantity: r.get(2)?, tag: r.get(3)?, licenses: r.get(4)? })),
    )?;
    Ok(with_converted(found, lines))
}

#[async_trait::async_trait]
impl PakStore for SqliteStore {
    async fn import_paks(&self, account_id: i64, new: Vec<NewPak>, actor: &str, now: Timestamp) -> Result<Vec<Pak>> {
        let actor = actor.to_string();
        self.db.write(move |db| import(db, account_id, &new, &actor, now)).await
    }

    async fn paks(&self, account_id: i64) -> Result<Vec<Pak>> {
        self.db.read(move |db| paks(db, account_id)).await
    }

    async fn convert_pak(
        &self,
        c: ConvertPak,
        actor: &str,
        now: Timestamp,
    ) -> Result<(PakConversion, Vec<LicenseRecord>)> {
        let actor = actor.to_string();
        self.db.write(move |db| convert(db, &c, &actor, now)).await
    }

    async fn pak_conversions(&self, account_id: i64) -> Result<Vec<PakConversion>> {
        self.db.read(move |db| conversions(db, account_id)).await
    }
}
