//! PAK conversion in the store (V-2, seed 004): PAKs imported from an ordering system, each a
//! list of SKUs with quantities, converted all at once or in parts (when the PAK allows partial
//! fulfilment) into a virtual account of its smart account. What a PAK converted is counted on
//! its lines in the same transaction that deposits the licenses and records the event, so no
//! SKU is ever converted beyond its quantity, however many conversions run at once.

use crate::{LicenseRecord, Result, StoreError};
use smartlic_core::Timestamp;
use std::collections::BTreeMap;

/// One SKU of a PAK: `quantity` units, each worth `units` licenses of `tag` (the catalogue's
/// legacy mapping when it was imported), `converted` of them converted so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PakLine {
    pub sku: String,
    pub tag: String,
    pub units: i64,
    pub quantity: i64,
    pub converted: i64,
}

impl PakLine {
    pub fn remaining(&self) -> i64 {
        self.quantity - self.converted
    }
}

/// A PAK to import into a smart account.
#[derive(Debug, Clone)]
pub struct NewPak {
    pub pak: String,
    pub order_number: String,
    /// `YYYY-MM-DD`, as the order gave it.
    pub order_date: String,
    /// The virtual account the order named, if any (the seed's "PAK Virtual Account").
    pub virtual_account_id: Option<i64>,
    pub partial_fulfillment: bool,
    /// Lines with `converted` 0, each SKU once.
    pub lines: Vec<PakLine>,
}

/// An imported PAK and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pak {
    pub id: i64,
    pub pak: String,
    pub account_id: i64,
    pub virtual_account_id: Option<i64>,
    pub order_number: String,
    pub order_date: String,
    pub partial_fulfillment: bool,
    pub imported_at: Timestamp,
    /// In SKU order.
    pub lines: Vec<PakLine>,
}

/// The seed's PAK statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PakStatus {
    NotConverted,
    PartiallyConverted,
    Converted,
}

impl PakStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PakStatus::NotConverted => "Not converted",
            PakStatus::PartiallyConverted => "Partially converted",
            PakStatus::Converted => "Converted",
        }
    }
}

impl Pak {
    pub fn status(&self) -> PakStatus {
        if self.lines.iter().all(|l| l.remaining() == 0) {
            PakStatus::Converted
        } else if self.lines.iter().all(|l| l.converted == 0) {
            PakStatus::NotConverted
        } else {
            PakStatus::PartiallyConverted
        }
    }

    /// What a conversion of `asked` (SKU → units; None: everything left) takes from this PAK,
    /// per line, or why it is refused: a SKU the PAK does not hold, more than remains, nothing
    /// left at all, or a part of a PAK that does not allow partial fulfilment.
    pub fn plan(&self, asked: Option<&BTreeMap<String, i64>>) -> Result<Vec<ConvertedLine>> {
        let refuse = |why: String| Err(StoreError::Conflict(format!("PAK '{}': {why}", self.pak)));
        if self.status() == PakStatus::Converted {
            return refuse("every license of it was converted already; nothing remains to convert".into());
        }
        let Some(asked) = asked else {
            return Ok(self.lines.iter().filter(|l| l.remaining() > 0).map(|l| l.take(l.remaining())).collect());
        };
        let mut plan = Vec::new();
        for (sku, &n) in asked {
            let Some(line) = self.lines.iter().find(|l| &l.sku == sku) else {
                let held: Vec<&str> = self.lines.iter().map(|l| l.sku.as_str()).collect();
                return refuse(format!("it holds no SKU '{sku}' (it holds {})", held.join(", ")));
            };
            if n < 1 || n > line.remaining() {
                return refuse(format!("SKU '{sku}' has {} left to convert; {n} asked", line.remaining()));
            }
            plan.push(line.take(n));
        }
        let everything = self.lines.iter().all(|l| l.remaining() == asked.get(&l.sku).copied().unwrap_or(0));
        if !self.partial_fulfillment && !everything {
            return refuse("partial fulfilment is not allowed: all its licenses are converted at once".into());
        }
        Ok(plan)
    }
}

impl PakLine {
    fn take(&self, quantity: i64) -> ConvertedLine {
        ConvertedLine {
            sku: self.sku.clone(),
            quantity,
            tag: self.tag.clone(),
            licenses: quantity.saturating_mul(self.units),
        }
    }
}

/// What one conversion took from one SKU: `quantity` units, deposited as `licenses` of `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedLine {
    pub sku: String,
    pub quantity: i64,
    pub tag: String,
    pub licenses: i64,
}

/// A conversion asked for: `lines` (SKU → units) of PAK `pak` of the smart account, or all
/// that remains when None, into the virtual account `virtual_account_id` of the same account.
#[derive(Debug, Clone)]
pub struct ConvertPak {
    pub account_id: i64,
    pub pak: String,
    pub virtual_account_id: i64,
    pub lines: Option<BTreeMap<String, i64>>,
}

/// A conversion done: the conversion history's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PakConversion {
    pub id: i64,
    pub pak: String,
    pub account_id: i64,
    pub virtual_account_id: i64,
    pub actor: String,
    pub at: Timestamp,
    pub lines: Vec<ConvertedLine>,
}

/// The SKU marker of a license deposited by converting `sku` of PAK `pak`.
pub fn pak_sku(pak: &str, sku: &str) -> String {
    format!("PAK:{pak}:{sku}")
}

/// The event detail of a conversion or an import: what becomes what.
pub(crate) fn lines_detail(lines: &[ConvertedLine]) -> String {
    let parts: Vec<String> =
        lines.iter().map(|l| format!("{} {} -> {} {}", l.quantity, l.sku, l.licenses, l.tag)).collect();
    parts.join("; ")
}

/// The event detail of an import.
pub(crate) fn import_detail(p: &NewPak) -> String {
    let skus: Vec<String> = p.lines.iter().map(|l| format!("{} ({})", l.sku, l.quantity)).collect();
    let partial = if p.partial_fulfillment { "allowed" } else { "not allowed" };
    format!("order {} of {}: {}; partial fulfilment {partial}", p.order_number, p.order_date, skus.join(", "))
}

#[async_trait::async_trait]
pub trait PakStore: Send + Sync {
    /// Imports every one of `paks` into the smart account, or none, with a `pak.imported` event
    /// each: a PAK id already imported (in any account) refuses all, naming it; a virtual account
    /// of another smart account is not found.
    async fn import_paks(&self, account_id: i64, paks: Vec<NewPak>, actor: &str, now: Timestamp) -> Result<Vec<Pak>>;
    /// The smart account's PAKs, by PAK id.
    async fn paks(&self, account_id: i64) -> Result<Vec<Pak>>;
    /// Converts after [`Pak::plan`], read in the transaction that counts the lines, deposits one
    /// purchase record per SKU (SKU marked by [`pak_sku`]) and records the `pak.converted` event.
    async fn convert_pak(
        &self,
        convert: ConvertPak,
        actor: &str,
        now: Timestamp,
    ) -> Result<(PakConversion, Vec<LicenseRecord>)>;
    /// The smart account's conversions, newest first.
    async fn pak_conversions(&self, account_id: i64) -> Result<Vec<PakConversion>>;
}

/// Rows keyed by their owner's id (PAK or conversion), gathered per owner in their order.
fn by_owner<T>(rows: Vec<(i64, T)>) -> BTreeMap<i64, Vec<T>> {
    let mut grouped: BTreeMap<i64, Vec<T>> = BTreeMap::new();
    for (id, row) in rows {
        grouped.entry(id).or_default().push(row);
    }
    grouped
}

/// Gives each PAK its lines, read apart (`lines` keyed by PAK id, in SKU order).
pub(crate) fn with_lines(mut paks: Vec<Pak>, lines: Vec<(i64, PakLine)>) -> Vec<Pak> {
    let mut lines = by_owner(lines);
    for p in &mut paks {
        p.lines = lines.remove(&p.id).unwrap_or_default();
    }
    paks
}

/// Gives each conversion its lines, read apart (`lines` keyed by conversion id).
pub(crate) fn with_converted(mut done: Vec<PakConversion>, lines: Vec<(i64, ConvertedLine)>) -> Vec<PakConversion> {
    let mut lines = by_owner(lines);
    for c in &mut done {
        c.lines = lines.remove(&c.id).unwrap_or_default();
    }
    done
}
