//! [`PakStore`] on PostgreSQL, the same statements as SQLite's (V-2). Two conversions of one
//! PAK at once are serializable transactions on the same lines: the second is run again from
//! the start and then sees what the first converted.

use super::events::log;
use super::licenses::insert_license;
use super::sql::{get, ts, Tx};
use super::PostgresStore;
use crate::pak::*;
use crate::{LicenseRecord, NewLicense, Result, StoreError};
use smartlic_core::Timestamp;
use tokio_postgres::Row;

const PAK_COLUMNS: &str =
    "id, pak, account_id, virtual_account_id, order_number, order_date, partial_fulfillment, imported_at";

fn pak_row(r: &Row) -> Result<Pak> {
    Ok(Pak {
        id: get(r, "id")?,
        pak: get(r, "pak")?,
        account_id: get(r, "account_id")?,
        virtual_account_id: get(r, "virtual_account_id")?,
        order_number: get(r, "order_number")?,
        order_date: get(r, "order_date")?,
        partial_fulfillment: get(r, "partial_fulfillment")?,
        imported_at: ts(r, "imported_at")?,
        lines: Vec::new(),
    })
}

fn line_row(r: &Row) -> Result<(i64, PakLine)> {
    let line = PakLine {
        sku: get(r, "sku")?,
        tag: get(r, "tag")?,
        units: get(r, "units")?,
        quantity: get(r, "quantity")?,
        converted: get(r, "converted")?,
    };
    Ok((get(r, "pak_id")?, line))
}

async fn paks(tx: &Tx<'_>, account_id: i64) -> Result<Vec<Pak>> {
    let sql = format!("SELECT {PAK_COLUMNS} FROM paks WHERE account_id = $1 ORDER BY pak");
    let found = tx.all(&sql, &[&account_id], pak_row).await?;
    let lines = tx
        .all(
            "SELECT l.pak_id, l.sku, l.tag, l.units, l.quantity, l.converted FROM pak_lines l
             JOIN paks p ON p.id = l.pak_id WHERE p.account_id = $1 ORDER BY l.pak_id, l.sku",
            &[&account_id],
            line_row,
        )
        .await?;
    Ok(with_lines(found, lines))
}

async fn pak(tx: &Tx<'_>, account_id: i64, pak: &str) -> Result<Pak> {
    let sql = format!("SELECT {PAK_COLUMNS} FROM paks WHERE account_id = $1 AND pak = $2");
    let found = tx
        .one(&sql, &[&account_id, &pak], pak_row)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("PAK '{pak}' does not exist in this smart account")))?;
    let lines = tx
        .all(
            "SELECT pak_id, sku, tag, units, quantity, converted FROM pak_lines WHERE pak_id = $1 ORDER BY sku",
            &[&found.id],
            line_row,
        )
        .await?;
    Ok(with_lines(vec![found], lines).remove(0))
}

async fn check_pool(tx: &Tx<'_>, account_id: i64, pool: i64) -> Result<()> {
    let owner: Option<i64> = tx.value("SELECT account_id FROM virtual_accounts WHERE id = $1", &[&pool]).await?;
    if owner != Some(account_id) {
        return Err(StoreError::NotFound(format!("virtual account {pool} is not in smart account {account_id}")));
    }
    Ok(())
}

async fn import(tx: &Tx<'_>, account_id: i64, new: &[NewPak], actor: &str, now: Timestamp) -> Result<Vec<Pak>> {
    for p in new {
        if let Some(pool) = p.virtual_account_id {
            check_pool(tx, account_id, pool).await?;
        }
        let id = tx
            .insert_unique(
                "INSERT INTO paks (pak, account_id, virtual_account_id, order_number, order_date, partial_fulfillment, imported_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[&p.pak, &account_id, &p.virtual_account_id, &p.order_number, &p.order_date, &p.partial_fulfillment, &now.0],
                || format!("PAK '{}' was imported already", p.pak),
            )
            .await?;
        for l in &p.lines {
            tx.exec(
                "INSERT INTO pak_lines (pak_id, sku, tag, units, quantity) VALUES ($1, $2, $3, $4, $5)",
                &[&id, &l.sku, &l.tag, &l.units, &l.quantity],
            )
            .await?;
        }
        log(tx, now, actor, "pak.imported", Some(account_id), p.virtual_account_id, &p.pak, import_detail(p)).await?;
    }
    let names: Vec<&str> = new.iter().map(|p| p.pak.as_str()).collect();
    Ok(paks(tx, account_id).await?.into_iter().filter(|p| names.contains(&p.pak.as_str())).collect())
}

async fn convert(
    tx: &Tx<'_>,
    c: &ConvertPak,
    actor: &str,
    now: Timestamp,
) -> Result<(PakConversion, Vec<LicenseRecord>)> {
    check_pool(tx, c.account_id, c.virtual_account_id).await?;
    let found = pak(tx, c.account_id, &c.pak).await?;
    let lines = found.plan(c.lines.as_ref())?;
    let conversion_id = tx
        .insert(
            "INSERT INTO pak_conversions (pak_id, account_id, virtual_account_id, actor, converted_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&found.id, &c.account_id, &c.virtual_account_id, &actor, &now.0],
        )
        .await?;
    let mut licenses = Vec::with_capacity(lines.len());
    for l in &lines {
        let counted = tx
            .exec(
                "UPDATE pak_lines SET converted = converted + $1 WHERE pak_id = $2 AND sku = $3 AND converted + $1 <= quantity",
                &[&l.quantity, &found.id, &l.sku],
            )
            .await?;
        if counted != 1 {
            return Err(StoreError::Conflict(format!(
                "PAK '{}': SKU '{}' changed during the conversion",
                c.pak, l.sku
            )));
        }
        tx.exec(
            "INSERT INTO pak_conversion_lines (conversion_id, sku, quantity, tag, licenses) VALUES ($1, $2, $3, $4, $5)",
            &[&conversion_id, &l.sku, &l.quantity, &l.tag, &l.licenses],
        )
        .await?;
        let new = NewLicense::perpetual(c.virtual_account_id, &l.tag, pak_sku(&c.pak, &l.sku), l.licenses);
        licenses.push(insert_license(tx, new, now).await?);
    }
    log(tx, now, actor, "pak.converted", Some(c.account_id), Some(c.virtual_account_id), &c.pak, lines_detail(&lines))
        .await?;
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

async fn conversions(tx: &Tx<'_>, account_id: i64) -> Result<Vec<PakConversion>> {
    let found = tx
        .all(
            "SELECT c.id, p.pak, c.account_id, c.virtual_account_id, c.actor, c.converted_at FROM pak_conversions c
             JOIN paks p ON p.id = c.pak_id WHERE c.account_id = $1 ORDER BY c.id DESC",
            &[&account_id],
            |r| {
                Ok(PakConversion {
                    id: get(r, 0)?,
                    pak: get(r, 1)?,
                    account_id: get(r, 2)?,
                    virtual_account_id: get(r, 3)?,
                    actor: get(r, 4)?,
                    at: Timestamp(get(r, 5)?),
                    lines: Vec::new(),
                })
            },
        )
        .await?;
    let lines = tx
        .all(
            "SELECT l.conversion_id, l.sku, l.quantity, l.tag, l.licenses FROM pak_conversion_lines l
             JOIN pak_conversions c ON c.id = l.conversion_id WHERE c.account_id = $1 ORDER BY l.conversion_id, l.sku",
            &[&account_id],
            |r| {
                let line =
                    ConvertedLine { sku: get(r, 1)?, quantity: get(r, 2)?, tag: get(r, 3)?, licenses: get(r, 4)? };
                Ok((get(r, 0)?, line))
            },
        )
        .await?;
    Ok(with_converted(found, lines))
}

#[async_trait::async_trait]
impl PakStore for PostgresStore {
    async fn import_paks(&self, account_id: i64, new: Vec<NewPak>, actor: &str, now: Timestamp) -> Result<Vec<Pak>> {
        write!(self, |tx| import(&tx, account_id, &new, actor, now).await)
    }

    async fn paks(&self, account_id: i64) -> Result<Vec<Pak>> {
        read!(self, |tx| paks(&tx, account_id).await)
    }

    async fn convert_pak(
        &self,
        c: ConvertPak,
        actor: &str,
        now: Timestamp,
    ) -> Result<(PakConversion, Vec<LicenseRecord>)> {
        write!(self, |tx| convert(&tx, &c, actor, now).await)
    }

    async fn pak_conversions(&self, account_id: i64) -> Result<Vec<PakConversion>> {
        read!(self, |tx| conversions(&tx, account_id).await)
    }
}
