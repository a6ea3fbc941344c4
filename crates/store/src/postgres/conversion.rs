//! [`ConversionStore`] on PostgreSQL, the same statements as SQLite's (V-1).

use super::accounts::account_of_pool;
use super::events::log;
use super::licenses::insert_license;
use super::sql::{get, Tx};
use super::PostgresStore;
use crate::conversion::*;
use crate::{NewLicense, Result, StoreError};
use smartlic_core::Timestamp;

async fn settings(tx: &Tx<'_>, account_id: i64) -> Result<ConversionSettings> {
    let account: bool = tx
        .value("SELECT conversion_enabled FROM smart_accounts WHERE id = $1", &[&account_id])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("smart account {account_id} does not exist")))?;
    let virtual_accounts = tx
        .all(
            "SELECT id FROM virtual_accounts WHERE account_id = $1 AND conversion_enabled ORDER BY id",
            &[&account_id],
            |r| get(r, 0),
        )
        .await?;
    Ok(ConversionSettings { account, virtual_accounts })
}

async fn set(
    tx: &Tx<'_>,
    account_id: i64,
    pool: Option<i64>,
    enabled: bool,
    actor: &str,
    now: Timestamp,
) -> Result<()> {
    let object = match pool {
        None => {
            tx.exec("UPDATE smart_accounts SET conversion_enabled = $1 WHERE id = $2", &[&enabled, &account_id])
                .await?;
            "smart account".to_string()
        }
        Some(va) => {
            let changed = tx
                .exec(
                    "UPDATE virtual_accounts SET conversion_enabled = $1 WHERE id = $2 AND account_id = $3",
                    &[&enabled, &va, &account_id],
                )
                .await?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("virtual account {va} is not in smart account {account_id}")));
            }
            tx.value("SELECT name FROM virtual_accounts WHERE id = $1", &[&va]).await?.unwrap_or_default()
        }
    };
    let detail = format!("device-led conversion {}", if enabled { "enabled" } else { "disabled" });
    log(tx, now, actor, "conversion.setting", Some(account_id), pool, &object, detail).await
}

async fn convert(tx: &Tx<'_>, c: &DeviceConversion, now: Timestamp) -> Result<ConversionOutcome> {
    let (pool, pid, sn): (i64, String, String) = tx
        .one("SELECT virtual_account_id, udi_pid, udi_sn FROM instances WHERE id = $1", &[&c.instance_id], |r| {
            Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?))
        })
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("instance {} does not exist", c.instance_id)))?;
    let account_id = account_of_pool(tx, pool).await?;
    let before: Option<i64> = tx
        .value("SELECT converted_at FROM device_conversions WHERE udi_pid = $1 AND udi_sn = $2", &[&pid, &sn])
        .await?;
    if let Some(at) = before {
        return Ok(ConversionOutcome::AlreadyConverted { at: Timestamp(at) });
    }
    if !settings(tx, account_id).await?.allows(pool) {
        return Ok(ConversionOutcome::NotEnabled);
    }
    let detail = conversion_detail(c);
    // Two requests of one device at once: the unique UDI makes the second conflict, and the
    // engine runs it again, when it finds the first's record.
    tx.exec(
        "INSERT INTO device_conversions (udi_pid, udi_sn, instance_id, virtual_account_id, converted_at, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&pid, &sn, &c.instance_id, &pool, &now.0, &detail],
    )
    .await?;
    let mut licenses = Vec::with_capacity(c.items.len());
    for item in &c.items {
        let new = NewLicense::perpetual(pool, &item.tag, conversion_sku(&item.legacy), item.quantity);
        licenses.push(insert_license(tx, new, now).await?);
    }
    let udi = format!("PID:{pid},SN:{sn}");
    log(tx, now, "device", "license.converted", Some(account_id), Some(pool), &udi, detail).await?;
    Ok(ConversionOutcome::Converted { virtual_account_id: pool, licenses })
}

#[async_trait::async_trait]
impl ConversionStore for PostgresStore {
    async fn conversion_settings(&self, account_id: i64) -> Result<ConversionSettings> {
        read!(self, |tx| settings(&tx, account_id).await)
    }

    async fn set_conversion_enabled(
        &self,
        account_id: i64,
        virtual_account_id: Option<i64>,
        enabled: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<ConversionSettings> {
        write!(self, |tx| {
            set(&tx, account_id, virtual_account_id, enabled, actor, now).await?;
            settings(&tx, account_id).await
        })
    }

    async fn convert_device(&self, conversion: DeviceConversion, now: Timestamp) -> Result<ConversionOutcome> {
        write!(self, |tx| convert(&tx, &conversion, now).await)
    }
}
