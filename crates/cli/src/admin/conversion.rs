//! `smartlic admin conversion`: where device-led conversion (V-1) is enabled, per smart account
//! or per virtual account (off by default; a smart account administrator changes it).

use super::view::Show::Record;
use super::{Account, Call};
use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum ConversionCmd {
    /// Whether the smart account converts as a whole, and which virtual accounts on their own.
    Show {
        #[command(flatten)]
        account: Account,
    },
    /// Enable or disable device-led conversion for the smart account, or with --va for one of
    /// its virtual accounts: its registered devices may then convert their legacy licenses once.
    Set {
        #[command(flatten)]
        account: Account,
        /// The virtual account; without it the whole smart account.
        #[arg(long, value_name = "NAME")]
        va: Option<String>,
        /// true to enable, false to disable.
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
        enabled: bool,
    },
}

impl ConversionCmd {
    pub fn plan(&self) -> Result<Call> {
        Ok(match self {
            ConversionCmd::Show { account } => Call::get(account.path()? + "/conversion", Record),
            ConversionCmd::Set { account, va, enabled } => {
                let scope = match va {
                    Some(va) => account.pool_path(va)?,
                    None => account.path()?,
                };
                Call::with_body(Method::PATCH, scope + "/conversion", json!({ "enabled": enabled }), Record)
            }
        })
    }
}
