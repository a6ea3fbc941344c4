//! Device-led conversion in the store (V-1, seed 000): where it is enabled, and the one
//! conversion a device may have in its lifetime, deposited in one transaction with its event.

use crate::{LicenseRecord, Result};
use smartlic_core::Timestamp;

/// Where device-led conversion is enabled in a smart account: for the account as a whole, or
/// for some of its virtual accounts. Off everywhere by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversionSettings {
    pub account: bool,
    /// Ids of the virtual accounts enabled on their own.
    pub virtual_accounts: Vec<i64>,
}

impl ConversionSettings {
    /// Whether a device of pool `virtual_account_id` may convert (seed 000: "enabled for the
    /// Smart Account as a whole or for the virtual account to which [the device] is registered").
    pub fn allows(&self, virtual_account_id: i64) -> bool {
        self.account || self.virtual_accounts.contains(&virtual_account_id)
    }
}

/// One legacy item of a device's conversion that the catalogue maps: `count` units of `legacy`
/// become `quantity` licenses of `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedItem {
    pub legacy: String,
    pub count: i64,
    pub tag: String,
    pub quantity: i64,
}

/// A conversion asked by a registered device.
#[derive(Debug, Clone)]
pub struct DeviceConversion {
    pub instance_id: String,
    /// What is deposited; may be empty (every name unknown): the conversion is still spent.
    pub items: Vec<ConvertedItem>,
    /// Legacy names the catalogue does not know, kept in the event.
    pub unknown: Vec<String>,
}

/// What the store did with a [`DeviceConversion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversionOutcome {
    /// Deposited into the instance's pool: one purchase record per item, SKU `DLC:<legacy>`.
    Converted { virtual_account_id: i64, licenses: Vec<LicenseRecord> },
    /// This device (UDI) converted before, at `at`: nothing is deposited.
    AlreadyConverted { at: Timestamp },
    /// Conversion is enabled neither for the pool nor for its smart account: nothing changes.
    NotEnabled,
}

/// The SKU marker of a license deposited by device-led conversion of `legacy`.
pub fn conversion_sku(legacy: &str) -> String {
    format!("DLC:{legacy}")
}

/// The event detail of a conversion: what became what, and what was not known.
pub(crate) fn conversion_detail(c: &DeviceConversion) -> String {
    let mut parts: Vec<String> =
        c.items.iter().map(|i| format!("{} {} -> {} {}", i.count, i.legacy, i.quantity, i.tag)).collect();
    if !c.unknown.is_empty() {
        parts.push(format!("unknown: {}", c.unknown.join(", ")));
    }
    if parts.is_empty() {
        return "nothing to convert".into();
    }
    parts.join("; ")
}

#[async_trait::async_trait]
pub trait ConversionStore: Send + Sync {
    async fn conversion_settings(&self, account_id: i64) -> Result<ConversionSettings>;
    /// Enables or disables conversion for a smart account (`virtual_account_id` None) or one of
    /// its virtual accounts, with a `conversion.setting` event. A pool of another account is
    /// not found.
    async fn set_conversion_enabled(
        &self,
        account_id: i64,
        virtual_account_id: Option<i64>,
        enabled: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<ConversionSettings>;
    /// Converts once per UDI: checks the setting and the device's history, deposits the items
    /// and records the `license.converted` event, all in one transaction.
    async fn convert_device(&self, conversion: DeviceConversion, now: Timestamp) -> Result<ConversionOutcome>;
}
