//! `smartlic admin fleet`: the fleet orchestrator's client (`smartlic server --mode fleet`, seed
//! 002). It logs in with the administrator's token of the orchestrator's data directory
//! (`admin-token`), not with client credentials. Operations that reach managers or nodes answer
//! with the job they queued; `--wait` follows the job to its end and fails (exit status 1) when
//! the job did not complete, printing its code and recommended action.

use super::client::{segment, Api, Login};
use super::view::Col;
use super::view::Show::{self, Record, Table};
use super::{Call, Command};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const BASE: &str = "/api/v1/fleet";

#[derive(Args, Debug)]
pub struct FleetArgs {
    /// The orchestrator's administrator token file (`admin-token` of its data directory).
    #[arg(long, value_name = "FILE", env = "SMARTLIC_FLEET_TOKEN_FILE", default_value = "./smartlic-data/admin-token")]
    token_file: PathBuf,
    /// Follow the job the command queued until it ends; fail unless it completed.
    #[arg(long, global = true)]
    wait: bool,
    #[command(subcommand)]
    command: FleetCmd,
}

#[derive(Subcommand, Debug)]
enum FleetCmd {
    /// Manager accounts: cloud smart accounts and satellite local accounts (F-1).
    #[command(subcommand)]
    Account(AccountCmd),
    /// Pull an account's virtual accounts and licenses now (F-2; also every 24 hours).
    Sync {
        /// The manager account, as `account list` names it.
        #[arg(long)]
        account: String,
    },
    /// Virtual accounts as the last sync found them, and their license mode.
    #[command(subcommand)]
    Va(VaCmd),
    /// Licenses of an account as the last sync found them.
    Licenses {
        /// The manager account, as `account list` names it.
        #[arg(long)]
        account: String,
    },
    /// Customers, each licensed through one account.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Clusters of nodes: add, list, show, assign to a virtual account, unassign (F-3).
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Nodes of a cluster.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Jobs: every operation, with status, error code and recommended action (F-4).
    #[command(subcommand)]
    Job(JobCmd),
    /// Reports: the Service Inventory, usage CSVs, the license dashboard (F-5).
    #[command(subcommand)]
    Report(super::fleet_reports::ReportCmd),
    /// The subscription mapper: subscriptions to customers and license models (F-5).
    #[command(subcommand)]
    Subscription(super::fleet_reports::SubscriptionCmd),
}

/// How nodes reach the manager; the most specific level set (cluster, customer, account) wins.
#[derive(Args, Debug)]
struct TransportArgs {
    /// Through the HTTP(S) proxy HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["satellite_url", "direct"])]
    proxy: Option<String>,
    /// To the satellite at this device URL.
    #[arg(long, value_name = "URL", conflicts_with = "direct")]
    satellite_url: Option<String>,
    /// Straight to the manager (overrides a less specific level's proxy or satellite).
    #[arg(long)]
    direct: bool,
}

impl TransportArgs {
    fn json(&self) -> Result<Value> {
        if let Some(proxy) = &self.proxy {
            let (host, port) = proxy.rsplit_once(':').context("--proxy takes HOST:PORT")?;
            let port: u16 = port.parse().with_context(|| format!("--proxy: '{port}' is not a port number"))?;
            return Ok(json!({"mode": "proxy", "host": host, "port": port}));
        }
        if let Some(url) = &self.satellite_url {
            return Ok(json!({"mode": "satellite", "url": url}));
        }
        Ok(if self.direct { json!({"mode": "direct"}) } else { Value::Null })
    }
}

#[derive(Subcommand, Debug)]
enum AccountCmd {
    /// Add an account by its API client credentials; its first sync is queued.
    Add {
        /// The smart account's domain (cloud) or the local account's name (satellite).
        #[arg(long)]
        name: String,
        /// Where the account lives: the cloud manager or a satellite.
        #[arg(long, value_parser = ["cloud", "satellite"], default_value = "cloud")]
        kind: String,
        /// The manager's base URL (https).
        #[arg(long, value_name = "URL")]
        url: String,
        /// The manager's CA certificate (PEM).
        #[arg(long = "manager-ca", value_name = "FILE")]
        manager_ca: PathBuf,
        /// The API client ID on the manager (a smart-account-admin client).
        #[arg(long)]
        client_id: String,
        /// The client secret (kept sealed when the orchestrator has SMARTLIC_DATA_KEY).
        #[arg(long, env = "SMARTLIC_FLEET_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
        /// The virtual account new clusters are auto-registered to.
        #[arg(long, value_name = "VA")]
        operational_va: Option<String>,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// List the accounts (never their secrets).
    List,
    /// Replace an account's client credentials and sync with them.
    Credentials {
        /// The account's name.
        #[arg(long)]
        name: String,
        /// The new API client ID.
        #[arg(long)]
        client_id: String,
        /// The new client secret.
        #[arg(long, env = "SMARTLIC_FLEET_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
    },
    /// Set (or with --none clear) the operational virtual account for auto-registration.
    OperationalVa {
        /// The account's name.
        #[arg(long)]
        name: String,
        /// A virtual account the last sync found.
        #[arg(long, value_name = "VA", required_unless_present = "none")]
        va: Option<String>,
        /// Clear the setting: new clusters are not auto-registered.
        #[arg(long, conflicts_with = "va")]
        none: bool,
    },
}

#[derive(Subcommand, Debug)]
enum VaCmd {
    /// List an account's virtual accounts with their license mode.
    List {
        /// The manager account, as `account list` names it.
        #[arg(long)]
        account: String,
    },
    /// Set a virtual account's license mode (required before assigning clusters to it).
    Mode {
        /// The manager account, as `account list` names it.
        #[arg(long)]
        account: String,
        /// The virtual account.
        #[arg(long)]
        va: String,
        /// The license mode the clusters assigned to it run in.
        #[arg(long, value_parser = ["hcs", "enterprise"])]
        mode: String,
    },
}

#[derive(Subcommand, Debug)]
enum CustomerCmd {
    /// Add a customer.
    Add {
        /// The customer's name.
        #[arg(long)]
        name: String,
        /// The account its clusters are licensed through (and auto-registered to).
        #[arg(long)]
        account: String,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// List the customers.
    List,
}

#[derive(Subcommand, Debug)]
enum ClusterCmd {
    /// Add a cluster with its nodes; auto-registered when its account has an operational VA.
    Add {
        /// The cluster's name.
        #[arg(long)]
        name: String,
        /// The customer it belongs to.
        #[arg(long)]
        customer: String,
        /// call-control, voicemail, emergency-responder, expressway-c or expressway-e.
        #[arg(long)]
        application: String,
        /// A node as NAME=URL of its product REST API (repeatable).
        #[arg(long = "node", value_name = "NAME=URL")]
        nodes: Vec<String>,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// List the clusters with their status.
    List,
    /// Show a cluster: its nodes, status and last job.
    Show {
        /// The cluster's name.
        #[arg(long)]
        name: String,
    },
    /// Register every node to a virtual account (a token is created on the manager).
    Assign {
        /// The cluster's name.
        #[arg(long)]
        name: String,
        /// The account of the virtual account.
        #[arg(long)]
        account: String,
        /// The virtual account.
        #[arg(long)]
        va: String,
    },
    /// Deregister every node.
    Unassign {
        /// The cluster's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCmd {
    /// Add a node to a cluster.
    Add {
        /// The cluster the node joins.
        #[arg(long)]
        cluster: String,
        /// The node's name in the cluster.
        #[arg(long)]
        name: String,
        /// Its product REST API, e.g. http://127.0.0.1:9000.
        #[arg(long, value_name = "URL")]
        url: String,
    },
}

#[derive(Subcommand, Debug)]
enum JobCmd {
    /// Jobs newest first (of one account, cluster ... with --entity).
    List {
        /// Only the jobs of this account or cluster.
        #[arg(long)]
        entity: Option<String>,
    },
    /// Show a job: status, details, error code, recommended action, each node's result.
    Show {
        /// The job's number.
        #[arg(long)]
        id: i64,
    },
}

const ACCOUNTS: &[Col] = &[
    ("NAME", "name"),
    ("KIND", "kind"),
    ("URL", "base_url"),
    ("OPERATIONAL VA", "operational_va"),
    ("LAST SYNC", "last_sync"),
];
const VAS: &[Col] = &[("NAME", "name"), ("DEFAULT", "is_default"), ("LICENSE MODE", "license_mode")];
const LICENSES: &[Col] = &[
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("LICENSE", "license"),
    ("QUANTITY", "quantity"),
    ("IN USE", "in_use"),
    ("AVAILABLE", "available"),
    ("STATUS", "status"),
];
const CUSTOMERS: &[Col] = &[("NAME", "name"), ("ACCOUNT", "account")];
const CLUSTERS: &[Col] = &[
    ("NAME", "name"),
    ("CUSTOMER", "customer"),
    ("TYPE", "type"),
    ("ACCOUNT", "account"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("STATUS", "status"),
];
const JOBS: &[Col] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("ENTITY", "entity"),
    ("STATUS", "status"),
    ("CODE", "error_code"),
    ("CREATED", "created"),
];

impl FleetArgs {
    /// Whether the orchestrator may answer this command with a job it queued (so `--wait` is
    /// refused before anything is sent to the others, which change things at once or only read).
    fn may_queue_a_job(&self) -> bool {
        matches!(
            self.command,
            FleetCmd::Account(AccountCmd::Add { .. } | AccountCmd::Credentials { .. })
                | FleetCmd::Sync { .. }
                | FleetCmd::Cluster(ClusterCmd::Add { .. } | ClusterCmd::Assign { .. } | ClusterCmd::Unassign { .. })
        )
    }
}

fn path(rest: &str) -> String {
    format!("{BASE}{rest}")
}

impl FleetArgs {
    /// The administrator's token, read from its file.
    pub fn login(&self) -> Result<Login> {
        let text = std::fs::read_to_string(&self.token_file).with_context(|| {
            format!("cannot read the orchestrator's token {}: pass --token-file", self.token_file.display())
        })?;
        Ok(Login::Bearer { token: text.trim().to_string() })
    }

    pub fn plan(&self) -> Result<Call> {
        if self.wait && !self.may_queue_a_job() {
            bail!("--wait follows a job, and this command queues none: run it without --wait");
        }
        let post = |p: String, body: Value| Call::with_body(Method::POST, p, body, Record);
        let put = |p: String, body: Value| Call::with_body(Method::PUT, p, body, Record);
        let get = |p: String, show: Show| Call::get(p, show);
        Ok(match &self.command {
            FleetCmd::Account(AccountCmd::Add {
                name,
                kind,
                url,
                manager_ca,
                client_id,
                client_secret,
                operational_va,
                transport,
            }) => {
                let ca = std::fs::read_to_string(manager_ca)
                    .with_context(|| format!("cannot read --manager-ca {}", manager_ca.display()))?;
                post(
                    path("/accounts"),
                    json!({"name": name, "kind": kind, "base_url": url, "ca_pem": ca, "client_id": client_id,
                           "client_secret": client_secret, "operational_va": operational_va,
                           "transport": transport.json()?}),
                )
            }
            FleetCmd::Account(AccountCmd::List) => get(path("/accounts"), Table("accounts", ACCOUNTS)),
            FleetCmd::Account(AccountCmd::Credentials { name, client_id, client_secret }) => put(
                path(&format!("/accounts/{}/credentials", segment(name)?)),
                json!({"client_id": client_id, "client_secret": client_secret}),
            ),
            // --none sends no virtual account: the setting is cleared.
            FleetCmd::Account(AccountCmd::OperationalVa { name, va, .. }) => {
                put(path(&format!("/accounts/{}/operational-va", segment(name)?)), json!({"virtual_account": va}))
            }
            FleetCmd::Sync { account } => post(path(&format!("/accounts/{}/sync", segment(account)?)), json!({})),
            FleetCmd::Va(VaCmd::List { account }) => {
                get(path(&format!("/accounts/{}/virtual-accounts", segment(account)?)), Table("virtual_accounts", VAS))
            }
            FleetCmd::Va(VaCmd::Mode { account, va, mode }) => put(
                path(&format!("/accounts/{}/virtual-accounts/{}/license-mode", segment(account)?, segment(va)?)),
                json!({"license_mode": mode}),
            ),
            FleetCmd::Licenses { account } => {
                get(path(&format!("/accounts/{}/licenses", segment(account)?)), Table("licenses", LICENSES))
            }
            FleetCmd::Customer(CustomerCmd::Add { name, account, transport }) => {
                post(path("/customers"), json!({"name": name, "account": account, "transport": transport.json()?}))
            }
            FleetCmd::Customer(CustomerCmd::List) => get(path("/customers"), Table("customers", CUSTOMERS)),
            FleetCmd::Cluster(ClusterCmd::Add { name, customer, application, nodes, transport }) => {
                let nodes = nodes
                    .iter()
                    .map(|n| {
                        let (name, url) = n.split_once('=').with_context(|| format!("--node '{n}' is not NAME=URL"))?;
                        Ok(json!({"name": name, "api_url": url}))
                    })
                    .collect::<Result<Vec<_>>>()?;
                post(
                    path("/clusters"),
                    json!({"name": name, "customer": customer, "application": application, "nodes": nodes,
                           "transport": transport.json()?}),
                )
            }
            FleetCmd::Cluster(ClusterCmd::List) => get(path("/clusters"), Table("clusters", CLUSTERS)),
            FleetCmd::Cluster(ClusterCmd::Show { name }) => get(path(&format!("/clusters/{}", segment(name)?)), Record),
            FleetCmd::Cluster(ClusterCmd::Assign { name, account, va }) => post(
                path(&format!("/clusters/{}/assign", segment(name)?)),
                json!({"account": account, "virtual_account": va}),
            ),
            FleetCmd::Cluster(ClusterCmd::Unassign { name }) => {
                post(path(&format!("/clusters/{}/unassign", segment(name)?)), json!({}))
            }
            FleetCmd::Node(NodeCmd::Add { cluster, name, url }) => {
                post(path(&format!("/clusters/{}/nodes", segment(cluster)?)), json!({"name": name, "api_url": url}))
            }
            FleetCmd::Job(JobCmd::List { entity }) => {
                let query = match entity {
                    Some(e) => format!("?entity={}", segment(e)?),
                    None => String::new(),
                };
                get(path(&format!("/jobs{query}")), Table("jobs", JOBS))
            }
            FleetCmd::Job(JobCmd::Show { id }) => get(path(&format!("/jobs/{id}")), Record),
            FleetCmd::Report(cmd) => cmd.plan(),
            FleetCmd::Subscription(cmd) => cmd.plan()?,
        })
    }
}

/// With `--wait`: sends the call, follows the job it queued to its end and shows it; an error
/// naming the job's code and recommended action when it did not complete.
pub async fn finish(command: &Command, api: &Api, call: &Call) -> Result<Option<String>> {
    let Command::Fleet(args) = command else { return Ok(None) };
    if !args.wait {
        return Ok(None);
    }
    let answer: Value =
        serde_json::from_str(&api.send(call).await?).context("the orchestrator's answer is not JSON")?;
    // A cluster added where no auto-registration applies queues nothing: nothing to wait for.
    let Some(id) = answer["id"].as_i64().or(answer["job"]["id"].as_i64()) else {
        let shown = super::view::render(&Record, &answer.to_string(), false)?;
        return Ok(Some(format!("{}\n(no job queued)", shown.trim_end())));
    };
    let job = loop {
        let job: Value = serde_json::from_str(&api.send(&Call::get(path(&format!("/jobs/{id}")), Record)).await?)?;
        if !matches!(job["status"].as_str(), Some("Queued" | "In Progress")) {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let shown = super::view::render(&Record, &job.to_string(), false)?;
    if job["status"] != "Completed" {
        bail!(
            "{shown}job {id} {}: {} {} ({})",
            job["status"].as_str().unwrap_or("?"),
            job["error_code"].as_str().unwrap_or(""),
            job["error_message"].as_str().unwrap_or(""),
            job["recommended_action"].as_str().unwrap_or("")
        );
    }
    Ok(Some(shown.trim_end().to_string()))
}
