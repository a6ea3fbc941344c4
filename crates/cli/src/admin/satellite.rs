//! `smartlic admin local-account` (on a satellite) and `smartlic admin satellite` (in the
//! cloud): the satellite's registration and its approval (S-2), online or by files.
//!
//! Online, `local-account register --cloud URL` sends the satellite's signed registration to
//! the cloud and fetches the answer; the cloud's operator approves in between, so the command
//! is run again after the approval (it sends nothing twice) and then imports the answer.
//! Offline, `--out FILE` writes the registration, the cloud's `satellite answer` approves it
//! with the pools its `--va` names and writes the answer, and `--answer FILE` imports that.

use super::client::{segment, Api, Login};
use super::view::Show::{Record, Table};
use super::view::{self, Col};
use super::{Call, Command};
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum LocalAccountCmd {
    /// Create a local account mirroring a smart account of the cloud (serves no device until
    /// the cloud approved its registration).
    Create {
        /// Name of the new local account on this satellite.
        #[arg(long)]
        name: String,
        /// The smart account's domain in the cloud.
        #[arg(long, value_name = "DOMAIN")]
        smart_account: String,
    },
    /// List the local accounts and their registration status.
    List,
    /// Register a local account with the cloud: online (`--cloud`, run again after the cloud's
    /// approval to fetch the answer), or offline (`--out` writes the request file, `--answer`
    /// imports the cloud's answer file).
    #[command(group(ArgGroup::new("how").required(true).args(["cloud", "out", "answer"])))]
    Register {
        /// The local account to register.
        #[arg(long)]
        name: String,
        /// The cloud manager's base URL.
        #[arg(long, value_name = "URL", requires = "cloud_ca")]
        cloud: Option<String>,
        /// The cloud's CA certificate (PEM), trusted for the connection to the cloud.
        #[arg(long, value_name = "FILE")]
        cloud_ca: Option<PathBuf>,
        /// API client of the smart account (or the cloud's operator) that sends the registration.
        #[arg(long, value_name = "ID", env = "SMARTLIC_CLOUD_CLIENT_ID", default_value = "admin")]
        cloud_client_id: String,
        /// Its secret.
        #[arg(long, env = "SMARTLIC_CLOUD_SECRET", hide_env_values = true)]
        cloud_secret: Option<String>,
        /// How the cloud lists this satellite.
        #[arg(long, value_name = "NAME", default_value = "smartlic-satellite")]
        satellite_name: String,
        /// Write the signed registration to this file, to carry to the cloud.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Import the cloud's answer file.
        #[arg(long, value_name = "FILE")]
        answer: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SatelliteCmd {
    /// List the satellites that registered, pending and approved.
    List,
    /// Approve a satellite's registration: it serves these virtual accounts from now on (and
    /// the cloud no longer does), with their licenses as they are now.
    Approve {
        /// The satellite's id, as `satellite list` shows it.
        #[arg(long)]
        id: i64,
        /// A virtual account the satellite serves from now on; repeat for several.
        #[arg(long = "va", value_name = "NAME", required = true)]
        virtual_accounts: Vec<String>,
    },
    /// Offline registration: approve the satellite's request file with the virtual accounts
    /// named by --va and write the answer file to carry back.
    Answer {
        /// The registration file the satellite wrote (`local-account register --out`).
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Where to write the answer file to carry back to the satellite.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A virtual account the satellite serves from now on; repeat for several.
        #[arg(long = "va", value_name = "NAME", required = true)]
        virtual_accounts: Vec<String>,
    },
    /// Manual synchronisation (File Sync): apply a satellite's request file and write the
    /// response file to carry back (`smartlic admin sync import` on the satellite).
    FileSync {
        /// The request file the satellite wrote (`sync export`).
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Where to write the response file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// The satellite's product instances and usage as of its last synchronisation.
    Instances {
        /// The satellite's id, as `satellite list` shows it.
        #[arg(long)]
        id: i64,
    },
    /// Remove a satellite's product instance: its usage leaves the pool now, and the satellite
    /// removes it when it applies the next synchronisation response.
    RemoveInstance {
        /// The satellite's id, as `satellite list` shows it.
        #[arg(long)]
        id: i64,
        /// The virtual account the instance is in.
        #[arg(long, value_name = "NAME")]
        va: String,
        /// The instance's product ID.
        #[arg(long)]
        pid: String,
        /// The instance's serial number.
        #[arg(long)]
        sn: String,
    },
    /// Change which manager serves a virtual account (one manager per pool): a satellite (--to
    /// ID) or the cloud (--to cloud). A pool a satellite serves moves with that satellite's next
    /// synchronisation, after its usage; one the cloud serves moves at once if no instance is
    /// registered in it with the cloud.
    Reassign {
        /// The smart account of the virtual account.
        #[arg(long, value_name = "DOMAIN")]
        smart_account: String,
        /// The virtual account.
        #[arg(long, value_name = "NAME")]
        va: String,
        /// The satellite's id (as `satellite list` shows it), or `cloud`.
        #[arg(long, value_name = "ID|cloud")]
        to: String,
    },
}

const LOCAL_ACCOUNTS: &[Col] = &[
    ("NAME", "name"),
    ("SMART ACCOUNT", "smart_account"),
    ("STATUS", "status"),
    ("CLOUD ID", "cloud_satellite_id"),
    ("CERTIFICATE UNTIL", "certificate_expires_at"),
];

const SATELLITES: &[Col] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("SMART ACCOUNT", "smart_account"),
    ("LOCAL ACCOUNT", "local_account"),
    ("STATUS", "status"),
    ("VIRTUAL ACCOUNTS", "virtual_accounts"),
    ("PENDING MOVES", "pending_moves"),
    ("REQUESTED", "requested_at"),
    ("LAST SYNCHRONIZATION", "last_synchronization"),
    ("SYNCHRONIZATION DUE", "synchronization_due"),
];

const MIRRORED: &[Col] = &[
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("PID", "pid"),
    ("SN", "sn"),
    ("HOSTNAME", "hostname"),
    ("LAST CONTACT", "last_contact_at"),
    ("USAGE", "usage"),
];

fn local_path(name: &str) -> Result<String> {
    Ok(format!("/api/v1/local-accounts/{}", segment(name)?))
}

/// A satellite document file (registration or answer), read before any request.
fn document(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a satellite document (JSON)", path.display()))
}

fn write(path: &Path, answer: &str) -> Result<()> {
    std::fs::write(path, answer).with_context(|| format!("cannot write {}", path.display()))
}

impl LocalAccountCmd {
    pub fn plan(&self) -> Result<Call> {
        Ok(match self {
            LocalAccountCmd::Create { name, smart_account } => Call::post(
                "/api/v1/local-accounts".into(),
                json!({ "name": name, "smart_account": smart_account }),
                Record,
            ),
            LocalAccountCmd::List => {
                Call::get("/api/v1/local-accounts".into(), Table("local_accounts", LOCAL_ACCOUNTS))
            }
            LocalAccountCmd::Register { name, answer: Some(file), .. } => {
                Call::post(format!("{}/approval", local_path(name)?), document(file)?, Record)
            }
            LocalAccountCmd::Register { name, satellite_name, cloud, cloud_secret, .. } => {
                if cloud.is_some() && cloud_secret.is_none() {
                    bail!("no secret for the cloud: pass --cloud-secret or set SMARTLIC_CLOUD_SECRET");
                }
                let query = format!("?satellite={}", segment(satellite_name)?);
                Call::get(format!("{}/registration{query}", local_path(name)?), Record)
            }
        })
    }
}

impl SatelliteCmd {
    pub fn plan(&self) -> Result<Call> {
        Ok(match self {
            SatelliteCmd::List => Call::get("/api/v1/satellites".into(), Table("satellites", SATELLITES)),
            SatelliteCmd::Approve { id, virtual_accounts } => Call::post(
                format!("/api/v1/satellites/{id}/approve"),
                json!({ "virtual_accounts": virtual_accounts }),
                Record,
            ),
            SatelliteCmd::Answer { input, virtual_accounts, .. } => Call::post(
                "/api/v1/satellites/answer".into(),
                json!({ "registration": document(input)?, "virtual_accounts": virtual_accounts }),
                Record,
            ),
            SatelliteCmd::FileSync { input, .. } => Call::upload("/api/v1/satellites/file-sync".into(), input, Record),
            SatelliteCmd::RemoveInstance { id, va, pid, sn } => Call::post(
                format!("/api/v1/satellites/{id}/instances/remove"),
                json!({ "virtual_account": va, "pid": pid, "sn": sn }),
                Record,
            ),
            SatelliteCmd::Instances { id } => {
                Call::get(format!("/api/v1/satellites/{id}/instances"), Table("instances", MIRRORED))
            }
            SatelliteCmd::Reassign { smart_account, va, to } => {
                let to = match to.as_str() {
                    "cloud" => None,
                    id => Some(id.parse::<i64>().map_err(|_| {
                        anyhow::anyhow!(
                            "--to takes a satellite's id (as `satellite list` shows it) or `cloud`, not '{id}'"
                        )
                    })?),
                };
                Call::post(
                    "/api/v1/satellites/reassign".into(),
                    json!({ "smart_account": smart_account, "virtual_account": va, "to_satellite": to }),
                    Record,
                )
            }
        })
    }
}

/// Completes the commands that are more than one call; `None` for the others. Returns what
/// to print.
pub async fn finish(command: &Command, api: &Api, call: &Call) -> Result<Option<String>> {
    let done = match command {
        Command::LocalAccount(LocalAccountCmd::Register { out: Some(out), name, .. }) => {
            write(out, &api.send(call).await?)?;
            format!("registration of local account '{name}' written to {}: carry it to the cloud (smartlic admin satellite answer --in FILE --out ANSWER --va NAME...)", out.display())
        }
        Command::LocalAccount(LocalAccountCmd::Register {
            cloud: Some(cloud),
            cloud_ca: Some(ca),
            cloud_client_id,
            cloud_secret: Some(secret),
            name,
            ..
        }) => {
            let login = Login::ClientCredentials { client_id: cloud_client_id.clone(), secret: secret.clone() };
            let cloud_api = Api::login(cloud, ca, &login).await.context("logging in to the cloud")?;
            register_online(api, &cloud_api, call, cloud, name).await?
        }
        Command::Satellite(SatelliteCmd::Answer { out, .. }) => {
            write(out, &api.send(call).await?)?;
            format!("answer written to {}: import it on the satellite (smartlic admin local-account register --name N --answer FILE)", out.display())
        }
        _ => return super::sync::finish(command, api, call).await,
    };
    Ok(Some(done))
}

/// Sends the registration once (the satellite remembers the cloud's identifier for it), then
/// imports the answer if the cloud's operator approved it already.
async fn register_online(
    satellite: &Api,
    cloud: &Api,
    registration: &Call,
    cloud_url: &str,
    name: &str,
) -> Result<String> {
    let accounts: Value =
        serde_json::from_str(&satellite.send(&Call::get("/api/v1/local-accounts".into(), Record)).await?)?;
    let local = accounts["local_accounts"].as_array().and_then(|all| all.iter().find(|a| a["name"] == name)).cloned();
    let local = local.with_context(|| format!("local account '{name}' does not exist"))?;
    if local["status"] == "approved" {
        return Ok(format!("local account '{name}' is approved already"));
    }
    let id = match local["cloud_satellite_id"].as_i64() {
        Some(id) => id,
        None => {
            let sealed: Value = serde_json::from_str(&satellite.send(registration).await?)?;
            let sent: Value =
                serde_json::from_str(&cloud.send(&Call::post("/api/v1/satellites".into(), sealed, Record)).await?)?;
            let id = sent["id"].as_i64().context("the cloud answered without the satellite's id")?;
            let body = json!({ "cloud_satellite_id": id, "cloud_url": cloud_url });
            satellite.send(&Call::post(format!("{}/sent", local_path(name)?), body, Record)).await?;
            id
        }
    };
    let answer = match cloud.send(&Call::get(format!("/api/v1/satellites/{id}/answer"), Record)).await {
        Ok(answer) => answer,
        Err(e) if e.to_string().contains("NOT_APPROVED") => {
            return Ok(format!(
                "registration sent: satellite {id} in the cloud waits for approval (smartlic admin satellite approve --id {id} --va NAME...); run this command again then"
            ))
        }
        Err(e) => return Err(e),
    };
    let call = Call {
        method: Method::POST,
        path: format!("{}/approval", local_path(name)?),
        body: Some(serde_json::from_str(&answer)?),
        upload: None,
        show: Record,
    };
    let approved = satellite.send(&call).await?;
    view::render(&Record, &approved, false)
}
