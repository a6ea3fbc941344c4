//! `smartlic admin sync` (on a satellite) and `smartlic admin satellite file-sync` (in the
//! cloud): the satellite's synchronisation with the cloud (S-3), over the network or by YAML
//! files carried by hand (seed 001's manual synchronisation: download the request, File Sync
//! in the cloud, upload the response).

use super::client::Api;
use super::view::Col;
use super::view::Show::{Record, Table};
use super::{Call, Command};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum SyncCmd {
    /// Synchronise with the cloud now over HTTPS: usage and instances up, licenses down.
    Now {
        /// Send everything (a full synchronisation) rather than the changes since the last one.
        #[arg(long)]
        full: bool,
        /// The local account (needed when the satellite has several).
        #[arg(long, value_name = "NAME")]
        local_account: Option<String>,
        /// The cloud's base URL, for a local account registered by files.
        #[arg(long, value_name = "URL")]
        cloud: Option<String>,
    },
    /// Manual synchronisation, step 1: write the signed request file (YAML) to carry to the cloud.
    Export {
        /// Where to write the request file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Carry everything rather than the changes since the last synchronisation.
        #[arg(long)]
        full: bool,
        /// The local account (needed when the satellite has several).
        #[arg(long, value_name = "NAME")]
        local_account: Option<String>,
    },
    /// Manual synchronisation, step 3: apply the cloud's response file.
    Import {
        /// The response file the cloud's `satellite file-sync` wrote.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
    },
    /// Each local account's last synchronisation, when the next is due, its interval and the
    /// last failed attempt.
    Status,
    /// The scheduled synchronisation: every how many days, with which cloud (the satellite
    /// synchronises by itself when due and retries one that failed).
    Schedule {
        /// Days between scheduled synchronisations (1 to 365; 30 by default).
        #[arg(long, value_name = "DAYS")]
        days: Option<i64>,
        /// The cloud's base URL, for a local account registered by files.
        #[arg(long, value_name = "URL")]
        cloud: Option<String>,
        /// The local account (needed when the satellite has several).
        #[arg(long, value_name = "NAME")]
        local_account: Option<String>,
    },
}

const STATUS: &[Col] = &[
    ("NAME", "name"),
    ("SMART ACCOUNT", "smart_account"),
    ("LAST SYNCHRONIZATION", "last_synchronization"),
    ("SYNCHRONIZATION DUE", "synchronization_due"),
    ("OVERDUE", "overdue"),
    ("INTERVAL (DAYS)", "interval_days"),
    ("LAST ERROR", "last_error"),
];

/// A synchronisation file's text, read before any request.
fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

impl SyncCmd {
    pub fn plan(&self) -> Result<Call> {
        Ok(match self {
            SyncCmd::Now { full, local_account, cloud } => Call::post(
                "/api/v1/sync/now".into(),
                json!({ "full": full, "local_account": local_account, "cloud": cloud }),
                Record,
            ),
            SyncCmd::Export { full, local_account, .. } => Call::post(
                "/api/v1/sync/export".into(),
                json!({ "full": full, "local_account": local_account }),
                Record,
            ),
            SyncCmd::Import { input } => {
                Call::post("/api/v1/sync/import".into(), json!({ "response": read(input)? }), Record)
            }
            SyncCmd::Status => Call::get("/api/v1/sync/status".into(), Table("local_accounts", STATUS)),
            SyncCmd::Schedule { days, cloud, local_account } => Call::post(
                "/api/v1/sync/schedule".into(),
                json!({ "interval_days": days, "cloud": cloud, "local_account": local_account }),
                Record,
            ),
        })
    }
}

/// The one string field of an answer, to write to a file.
fn field(answer: &str, name: &str) -> Result<String> {
    let v: Value = serde_json::from_str(answer).context("the manager's answer is not JSON")?;
    v[name].as_str().map(str::to_string).with_context(|| format!("the manager's answer has no '{name}'"))
}

/// Writes the files of `sync export` and `satellite file-sync`; `None` for the other commands.
pub async fn finish(command: &Command, api: &Api, call: &Call) -> Result<Option<String>> {
    let done = match command {
        Command::Sync(SyncCmd::Export { out, .. }) => {
            let answer = api.send(call).await?;
            write(out, &field(&answer, "request")?)?;
            let v: Value = serde_json::from_str(&answer)?;
            format!(
                "synchronisation request {} of local account '{}' written to {}: carry it to the cloud (smartlic admin satellite file-sync --in FILE --out RESPONSE)",
                v["sequence"], v["local_account"].as_str().unwrap_or_default(), out.display()
            )
        }
        Command::Satellite(super::satellite::SatelliteCmd::FileSync { out, .. }) => {
            write(out, &field(&api.send(call).await?, "response")?)?;
            format!(
                "response written to {}: import it on the satellite (smartlic admin sync import --in FILE)",
                out.display()
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(done))
}
