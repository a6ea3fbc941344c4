//! [`ConversionStore`] on SQLite: the conversion settings and the device conversions (V-1).

use super::accounts::account_of_pool;
use super::events::log;
use super::licenses::insert_license;
use super::sql::{all, exec, one};
use super::SqliteStore;
use crate::conversion::*;
use crate::{NewLicense, Result, StoreError};
use rusqlite::{params, Connection};
use smartlic_core::Timestamp;

fn settings(db: &Connection, account_id: i64) -> Result<ConversionSettings> {
    let account: bool =
        one(db, "SELECT conversion_enabled FROM smart_accounts WHERE id = $1", [account_id], |r| r.get(0))?
            .ok_or_else(|| StoreError::NotFound(format!("smart account {account_id} does not exist")))?;
    let virtual_accounts = all(
        db,
        "SELECT id FROM virtual_accounts WHERE account_id = $1 AND conversion_enabled ORDER BY id",
        [account_id],
        |r| r.get(0),
    )?;
    Ok(ConversionSettings { account, virtual_accounts })
}

fn set(db: &Connection, account_id: i64, pool: Option<i64>, enabled: bool, actor: &str, now: Timestamp) -> Result<()> {
    let object = match pool {
        None => {
            exec(db, "UPDATE smart_accounts SET conversion_enabled = $1 WHERE id = $2", params![enabled, account_id])?;
            "smart account".to_string()
        }
        Some(va) => {
            let changed = exec(
                db,
                "UPDATE virtual_accounts SET conversion_enabled = $1 WHERE id = $2 AND account_id = $3",
                params![enabled, va, account_id],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("virtual account {va} is not in smart account {account_id}")));
            }
            one(db, "SELECT name FROM virtual_accounts WHERE id = $1", [va], |r| r.get(0))?.unwrap_or_default()
        }
    };
    let detail = format!("device-led conversion {}", if enabled { "enabled" } else { "disabled" });
    log(db, now, actor, "conversion.setting", Some(account_id), pool, &object, detail)
}

fn convert(db: &Connection, c: &DeviceConversion, now: Timestamp) -> Result<ConversionOutcome> {
    let (pool, pid, sn): (i64, String, String) =
        one(db, "SELECT virtual_account_id, udi_pid, udi_sn FROM instances WHERE id = $1", [&c.instance_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .ok_or_else(|| StoreError::NotFound(format!("instance {} does not exist", c.instance_id)))?;
    let account_id = account_of_pool(db, pool)?;
    if let Some(at) = one(
        db,
        "SELECT converted_at FROM device_conversions WHERE udi_pid = $1 AND udi_sn = $2",
        params![pid, sn],
        |r| r.get(0),
    )? {
        return Ok(ConversionOutcome::AlreadyConverted { at: Timestamp(at) });
    }
    if !settings(db, account_id)?.allows(pool) {
        return Ok(ConversionOutcome::NotEnabled);
    }
    let detail = conversion_detail(c);
    exec(
        db,
        "INSERT INTO device_conversions (udi_pid, udi_sn, instance_id, virtual_account_id, converted_at, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![pid, sn, c.instance_id, pool, now.0, detail],
    )?;
    let mut licenses = Vec::with_capacity(c.items.len());
    for item in &c.items {
        let new = NewLicense::perpetual(pool, &item.tag, conversion_sku(&item.legacy), item.quantity);
        licenses.push(insert_license(db, new, now)?);
    }
    let udi = format!("PID:{pid},SN:{sn}");
    log(db, now, "device", "license.converted", Some(account_id), Some(pool), &udi, detail)?;
    Ok(ConversionOutcome::Converted { virtual_account_id: pool, licenses })
}

#[async_trait::async_trait]
impl ConversionStore for SqliteStore {
    async fn conversion_settings(&self, account_id: i64) -> Result<ConversionSettings> {
        self.db.read(move |db| settings(db, account_id)).await
    }

    async fn set_conversion_enabled(
        &self,
        account_id: i64,
        virtual_account_id: Option<i64>,
        enabled: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<ConversionSettings> {
        let actor = actor.to_string();
        self.db
            .write(move |db| {
                set(db, account_id, virtual_account_id, enabled, &actor, now)?;
                settings(db, account_id)
            })
            .await
    }

    async fn convert_device(&self, conversion: DeviceConversion, now: Timestamp) -> Result<ConversionOutcome> {
        self.db.write(move |db| convert(db, &conversion, now)).await
    }
}
