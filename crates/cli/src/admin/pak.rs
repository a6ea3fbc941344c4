//! `smartlic admin pak`: PAK conversion (V-2). The operator imports PAKs from a file (they come
//! from an ordering system this project does not have); a smart account lists them with what
//! remains, converts all or part of one into a virtual account, and reads the history.
//!
//! The import file, TOML or JSON (by its extension; JSON when it starts with `{`), names the
//! smart account and its PAKs:
//!
//! ```toml
//! account = "example.com"
//! [[paks]]
//! pak = "BC7XX73YIW1"
//! order_number = "106386347"
//! order_date = "2018-05-07"
//! virtual_account = "CORE TAC"     # optional
//! partial_fulfillment = true       # optional, false by default
//! lines = [{ sku = "C9500-NW-A", quantity = 25 }]
//! ```
//!
//! The file is read and its shape checked here (a syntax error names its line); the manager
//! checks every PAK and line before it imports any (a bad one is named: `PAK 2 ('X'): line 3
//! (SKU 'Y'): ...`), so a bad file imports nothing.

use super::view::{Col, Show};
use super::{Account, Call};
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::json;
use smartlic_server::pak::{PakBody, PakImport};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum PakCmd {
    /// Import PAKs from a TOML or JSON file (operator): all of them, or none when any is wrong.
    Import {
        /// The file: `account = "DOMAIN"` and `[[paks]]` (see `smartlic admin pak import --help`).
        file: PathBuf,
    },
    /// The smart account's PAKs: SKUs, order, status and what remains to convert.
    List {
        #[command(flatten)]
        account: Account,
    },
    /// Convert a PAK into a virtual account of its smart account: all that remains, or with
    /// --sku only these quantities (when the PAK allows partial fulfilment).
    Convert {
        #[command(flatten)]
        account: Account,
        /// The PAK number.
        pak: String,
        /// The destination virtual account.
        #[arg(long, value_name = "VA")]
        va: String,
        /// SKU=N: convert N units of SKU (repeat for several SKUs).
        #[arg(long = "sku", value_name = "SKU=N", value_parser = sku_quantity)]
        skus: Vec<(String, i64)>,
    },
    /// The conversion history: PAK, SKUs, quantities, virtual account, who and when.
    History {
        #[command(flatten)]
        account: Account,
    },
}

const PAKS: &[Col] = &[
    ("PAK", "pak"),
    ("SKUS", "skus"),
    ("ORDER NUMBER", "order_number"),
    ("ORDER DATE", "order_date"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("PARTIAL", "partial_fulfillment"),
    ("STATUS", "status"),
    ("REMAINING", "remaining"),
];
const DEPOSITED: &[Col] = &[("TAG", "tag"), ("SKU", "sku"), ("QUANTITY", "quantity"), ("STATUS", "status")];
const HISTORY: &[Col] =
    &[("PAK", "pak"), ("SKUS", "skus"), ("VIRTUAL ACCOUNT", "virtual_account"), ("BY", "by"), ("AT", "at")];

/// `SKU=N` of `pak convert --sku`.
fn sku_quantity(text: &str) -> Result<(String, i64), String> {
    let (sku, n) = text.rsplit_once('=').ok_or_else(|| format!("'{text}' is not SKU=N (e.g. C9500-NW-A=10)"))?;
    let n: i64 = n.trim().parse().map_err(|_| format!("'{n}' is not a number of units"))?;
    match (sku.trim(), n) {
        ("", _) => Err(format!("'{text}' names no SKU")),
        (_, n) if n < 1 => Err(format!("'{text}': convert at least one unit")),
        (sku, n) => Ok((sku.to_owned(), n)),
    }
}

/// An import file: the smart account and its PAKs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PakFile {
    account: String,
    paks: Vec<PakBody>,
}

/// Reads and parses an import file; a syntax or shape error names the file and its line.
fn read(path: &Path) -> Result<PakFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) || text.trim_start().starts_with('{');
    let parsed = match json {
        true => serde_json::from_str(&text).map_err(|e| anyhow!("{e}")),
        false => toml::from_str(&text).map_err(|e| anyhow!("{}", e.to_string().trim_end())),
    };
    parsed.with_context(|| format!("{} is not a PAK import file", path.display()))
}

impl PakCmd {
    pub fn plan(&self) -> Result<Call> {
        Ok(match self {
            PakCmd::Import { file } => {
                let PakFile { account, paks } = read(file)?;
                let account = Account { domain: account };
                let body = serde_json::to_value(PakImport { paks })?;
                Call::post(account.path()? + "/paks", body, Show::Table("paks", PAKS))
            }
            PakCmd::List { account } => Call::get(account.path()? + "/paks", Show::Table("paks", PAKS)),
            PakCmd::Convert { account, pak, va, skus } => {
                let lines: Vec<_> = skus.iter().map(|(sku, n)| json!({ "sku": sku, "quantity": n })).collect();
                Call::post(
                    format!("{}/paks/{}/convert", account.path()?, super::client::segment(pak)?),
                    json!({ "virtual_account": va, "lines": (!lines.is_empty()).then_some(lines) }),
                    Show::Table("licenses", DEPOSITED),
                )
            }
            PakCmd::History { account } => {
                Call::get(account.path()? + "/pak-conversions", Show::Table("conversions", HISTORY))
            }
        })
    }
}
