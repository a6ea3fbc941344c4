//! `smartlic admin`: the operator's client for the manager's REST API (docs/API.md).
//!
//! Every command is reduced to one [`Call`] (method, path, body, how to show the answer), so
//! there is a single request path and a single printing path; commands differ only in their
//! arguments and table columns. The server is the authority on validity: the client checks
//! only what clap checks anyway (numbers, role and license type names).

mod backup;
mod client;
mod conversion;
mod fleet;
mod fleet_reports;
mod pak;
mod satellite;
mod sync;
mod view;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use client::{segment, Api, Login};
use reqwest::Method;
use serde_json::{json, Value};
use smartlic_core::Role;
use std::io::{BufRead, ErrorKind, Write};
use std::path::PathBuf;
use view::{Col, Show};

/// Where the manager is, how to trust it and how to log in (before or after the command).
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The manager's base URL (https only); for `admin fleet`, the orchestrator's.
    #[arg(long, global = true, value_name = "URL", env = "SMARTLIC_SERVER", default_value = "https://127.0.0.1:8443")]
    server: String,
    /// The manager's CA certificate (PEM): the only certificate trusted for the connection.
    #[arg(long, global = true, value_name = "FILE", env = "SMARTLIC_CA", default_value = "./smartlic-data/ca.pem")]
    ca: PathBuf,
    /// API client id for the client-credentials login.
    #[arg(long, global = true, value_name = "ID", env = "SMARTLIC_CLIENT_ID", default_value = "admin")]
    client_id: String,
    /// API client secret for the client-credentials login.
    #[arg(long, global = true, env = "SMARTLIC_ADMIN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Log in as this user (OAuth2 password grant) instead of as an API client.
    #[arg(long, global = true, value_name = "NAME", requires = "password_stdin")]
    user: Option<String>,
    /// Read the --user password from the first line of standard input (never from the
    /// command line, where other local users could see it).
    #[arg(long, global = true, requires = "user")]
    password_stdin: bool,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Smart accounts (creating one is for the operator).
    #[command(subcommand)]
    Account(AccountCmd),
    /// Virtual accounts (license pools) of a smart account.
    #[command(subcommand)]
    Va(VaCmd),
    /// Users of a smart account.
    #[command(subcommand)]
    User(UserCmd),
    /// API clients of a smart account.
    #[command(subcommand)]
    Client(ClientCmd),
    /// Live OAuth2 access tokens: list them, end one at once.
    #[command(subcommand)]
    AccessToken(AccessTokenCmd),
    /// Purchased licenses of a virtual account.
    #[command(subcommand)]
    License(LicenseCmd),
    /// Registration tokens of a virtual account.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Registered product instances.
    #[command(subcommand)]
    Instance(InstanceCmd),
    /// Licenses reserved for offline devices: request code in, authorization code out.
    #[command(subcommand)]
    Reservation(ReservationCmd),
    /// The audit trail.
    #[command(subcommand)]
    Event(EventCmd),
    /// Open alerts of a smart account.
    #[command(subcommand)]
    Alert(AlertCmd),
    /// Usage and instance reports.
    #[command(subcommand)]
    Report(ReportCmd),
    /// The manager's clock (settable only when it runs with `--clock simulated`).
    #[command(subcommand)]
    Clock(ClockCmd),
    /// The license tags the manager knows.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Recompute every pool's in-use and reserved counts from the records and list each stored
    /// counter that differs (operator); exits with status 1 when any does.
    Check {
        /// Set each drifted in-use counter to the count of the records first (one transaction,
        /// an event each) and list those; reserved counts are only reported.
        #[arg(long)]
        repair: bool,
    },
    /// On a satellite: its local accounts, each mirroring a smart account of the cloud, and
    /// their registration with the cloud (S-2).
    #[command(subcommand)]
    LocalAccount(satellite::LocalAccountCmd),
    /// In the cloud: satellites that registered, their approval (S-2).
    #[command(subcommand)]
    Satellite(satellite::SatelliteCmd),
    /// On a satellite: synchronisation with the cloud (S-3), online or by files, and when the
    /// next scheduled one is due.
    #[command(subcommand)]
    Sync(sync::SyncCmd),
    /// Device-led conversion of legacy licenses (V-1): where it is enabled.
    #[command(subcommand)]
    Conversion(conversion::ConversionCmd),
    /// PAK conversion (V-2): import PAKs (operator), list them, convert all or part of one into
    /// a virtual account, and the conversion history.
    #[command(subcommand)]
    Pak(pak::PakCmd),
    /// The fleet orchestrator (`smartlic server --mode fleet`): accounts, customers, clusters,
    /// assignment, jobs (seed 002). Logs in with its administrator token file.
    Fleet(fleet::FleetArgs),
    /// Save a consistent copy of the manager's database, taken while it runs (operator). The
    /// CA key is not in it: keep `ca.pem` and `ca-key.pem` of the data directory with it.
    Backup {
        /// The file to write (replaced only once the whole backup arrived and checks out).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// The smart account a command acts on.
#[derive(Args, Debug)]
struct Account {
    /// Smart account domain, e.g. example.com.
    #[arg(long = "account", value_name = "DOMAIN")]
    domain: String,
}

/// The virtual account (pool) a command acts on.
#[derive(Args, Debug)]
struct Pool {
    #[command(flatten)]
    account: Account,
    /// Virtual account name.
    #[arg(long, value_name = "VA")]
    va: String,
}

#[derive(Subcommand, Debug)]
enum AccountCmd {
    /// Create a smart account.
    Create {
        /// The new account's domain, e.g. example.com: how every other command names it.
        #[arg(long)]
        domain: String,
        /// Display name (defaults to the domain on the server).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the smart accounts you have a role in (every one for the operator).
    List,
    /// Change a smart account's settings (operator).
    Set {
        /// The domain of the smart account to change.
        #[arg(long)]
        domain: String,
        /// Whether its devices may get universal reservations (off for new accounts).
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
        allow_universal_reservation: bool,
    },
}

#[derive(Subcommand, Debug)]
enum VaCmd {
    /// Create a virtual account (license pool) in a smart account.
    Create {
        #[command(flatten)]
        account: Account,
        /// Name of the new virtual account, unique in its smart account.
        #[arg(long)]
        name: String,
        /// Free text shown in listings: what the pool is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the virtual accounts of a smart account.
    List {
        #[command(flatten)]
        account: Account,
    },
    /// Delete an empty virtual account (no licenses, instances, active tokens or reservations).
    Delete {
        #[command(flatten)]
        account: Account,
        /// Name of the virtual account to delete.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Create a user of a smart account, who logs in as NAME@DOMAIN with a password.
    Create {
        #[command(flatten)]
        account: Account,
        /// The user's name, unique in its smart account.
        #[arg(long)]
        name: String,
        /// What the user may do (the roles of docs/API.md).
        #[arg(long, value_parser = roles())]
        role: String,
        /// The virtual account a virtual-account role is bound to.
        #[arg(long)]
        va: Option<String>,
        /// Read the new user's password from standard input (the line after the --user
        /// login password, if any).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users of a smart account with their role and status.
    List {
        #[command(flatten)]
        account: Account,
    },
    /// Refuse the user's logins and access tokens, keeping the record.
    Disable(Principal),
    /// Let a disabled user log in again.
    Enable(Principal),
    /// Set a new password, read from standard input (the line after the --user login
    /// password, if any); the user's live access tokens end at once.
    Password(Principal),
    /// Remove the user; its access tokens end at once, events keep its name.
    Delete(Principal),
}

/// A user or API client, by the name it is listed under in its smart account.
#[derive(Args, Debug)]
struct Principal {
    #[command(flatten)]
    account: Account,
    /// The name the user or API client is listed under.
    #[arg(long)]
    name: String,
}

#[derive(Subcommand, Debug)]
enum ClientCmd {
    /// Create an API client; its secret is printed now and never again.
    Create {
        #[command(flatten)]
        account: Account,
        /// Display name of the API client (its client ID is generated).
        #[arg(long)]
        name: String,
        /// What the API client may do (the roles of docs/API.md).
        #[arg(long, value_parser = roles())]
        role: String,
        /// The virtual account a virtual-account role is bound to.
        #[arg(long)]
        va: Option<String>,
    },
    /// List the API clients of a smart account with their client ID and status.
    List {
        #[command(flatten)]
        account: Account,
    },
    /// Give the client a new secret, printed now and never again; the old secret and the
    /// client's live access tokens stop working at once.
    Rotate(Principal),
    /// Refuse the client's logins and access tokens, keeping the record.
    Disable(Principal),
    /// Let a disabled client log in again.
    Enable(Principal),
    /// Remove the client; its access tokens end at once, events keep its name.
    Delete(Principal),
}

#[derive(Subcommand, Debug)]
enum AccessTokenCmd {
    /// Live access tokens of a smart account's users and API clients, or of the operators
    /// without --account (prefix and id only).
    List {
        /// The smart account whose tokens to list; the operators' own tokens when omitted.
        #[arg(long = "account", value_name = "DOMAIN")]
        domain: Option<String>,
    },
    /// End an access token at once: give the token itself or its listed id.
    Revoke {
        /// The access token itself.
        #[arg(long, required_unless_present = "id", conflicts_with = "id")]
        token: Option<String>,
        /// The token's id, as `access-token list` shows it.
        #[arg(long)]
        id: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
enum LicenseCmd {
    /// Deposit purchased licenses (operator).
    Add {
        #[command(flatten)]
        pool: Pool,
        /// License tag (see `catalog list`).
        #[arg(long)]
        tag: String,
        /// Number of licenses.
        #[arg(long)]
        count: u32,
        /// The purchased SKU, for the record.
        #[arg(long)]
        sku: Option<String>,
        /// License type (the server's default when omitted).
        #[arg(long = "type", value_name = "TYPE", value_parser = KINDS)]
        kind: Option<String>,
        /// Start date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        start: Option<String>,
        /// End date (YYYY-MM-DD or RFC 3339), required for term and subscription licenses.
        #[arg(long)]
        end: Option<String>,
        /// The subscription the licenses belong to, for the record.
        #[arg(long)]
        subscription_id: Option<String>,
    },
    /// Per tag: purchased (with lending), in use, balance, status; then substitutions.
    List {
        #[command(flatten)]
        pool: Pool,
    },
    /// Move licenses to another virtual account of the same smart account.
    Transfer {
        #[command(flatten)]
        pool: Pool,
        /// License tag (see `catalog list`).
        #[arg(long)]
        tag: String,
        /// Number of licenses.
        #[arg(long)]
        count: u32,
        /// The receiving virtual account.
        #[arg(long, value_name = "VA")]
        to: String,
        /// Transfer only licenses of this type.
        #[arg(long = "type", value_name = "TYPE", value_parser = KINDS)]
        kind: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Create a registration token; prints only the token (`TOKEN=$(smartlic admin token create ...)`).
    Create {
        #[command(flatten)]
        pool: Pool,
        /// Free text shown in token listings: what the token is for.
        #[arg(long)]
        description: Option<String>,
        /// Days until the token expires (the server's default when omitted).
        #[arg(long, value_name = "N")]
        expires_days: Option<u32>,
        /// Registrations allowed with this token (unlimited when omitted).
        #[arg(long, value_name = "N")]
        max_uses: Option<u32>,
        /// Allow export-controlled functionality for the devices registered with it.
        #[arg(long)]
        export_controlled: bool,
    },
    /// List the registration tokens of a virtual account (prefixes only, never whole tokens).
    List {
        #[command(flatten)]
        pool: Pool,
    },
    /// Revoke a registration token: no device registers with it any more.
    Revoke {
        #[command(flatten)]
        pool: Pool,
        /// The token, or the prefix `token list` shows.
        #[arg(long)]
        token: String,
    },
}

#[derive(Subcommand, Debug)]
enum InstanceCmd {
    /// Instances of a smart account, or of one of its virtual accounts.
    List {
        #[command(flatten)]
        account: Account,
        /// Only the instances of this virtual account.
        #[arg(long)]
        va: Option<String>,
    },
    /// Show one product instance with its license usage.
    Show {
        #[command(flatten)]
        account: Account,
        /// The instance's id, as `instance list` shows it.
        #[arg(long)]
        id: String,
    },
    /// Move an instance (and its license usage) to another virtual account.
    Move {
        #[command(flatten)]
        account: Account,
        /// The instance's id, as `instance list` shows it.
        #[arg(long)]
        id: String,
        /// The virtual account to move it to.
        #[arg(long, value_name = "VA")]
        to: String,
    },
    /// Remove an instance, releasing its licenses.
    Remove {
        #[command(flatten)]
        account: Account,
        /// The instance's id, as `instance list` shows it.
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ReservationCmd {
    /// Reserve licenses for the device that printed the request code. Prints only the
    /// authorization code to install on it (`CODE=$(...)`); its confirmation code goes to stderr.
    #[command(group(clap::ArgGroup::new("grant").required(true).args(["universal", "licenses"])))]
    Create {
        #[command(flatten)]
        pool: Pool,
        /// The code from `license smart reservation request` on the device.
        #[arg(long, value_name = "CODE")]
        request_code: String,
        /// Everything, for a universal request code (the account must allow it).
        #[arg(long)]
        universal: bool,
        /// Licenses for a specific request code; repeat for several tags.
        #[arg(long = "license", value_name = "TAG=N", value_parser = tag_count)]
        licenses: Vec<(String, u32)>,
    },
    /// Take the licenses back with the code from `license smart reservation return`.
    Return {
        #[command(flatten)]
        pool: Pool,
        /// The code the device printed when it gave the reservation up.
        #[arg(long, value_name = "CODE")]
        return_code: String,
    },
    /// Reservations of a smart account, or of one of its virtual accounts.
    List {
        #[command(flatten)]
        account: Account,
        /// Only the reservations of this virtual account.
        #[arg(long)]
        va: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum EventCmd {
    /// Events of a smart account, or of the whole manager (operator) without --account.
    List {
        /// The smart account whose events to list; every account's when omitted (operator).
        #[arg(long = "account", value_name = "DOMAIN")]
        domain: Option<String>,
        /// Only the N most recent events (one page: 1000 at most); every event when omitted.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
enum AlertCmd {
    /// List the open alerts of a smart account (out of compliance, expiring, silent, drifted).
    List {
        #[command(flatten)]
        account: Account,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCmd {
    /// License usage per virtual account and tag.
    Usage {
        #[command(flatten)]
        account: Account,
        /// Print the server's CSV verbatim.
        #[arg(long)]
        csv: bool,
    },
    /// All product instances.
    Instances {
        #[command(flatten)]
        account: Account,
        /// Print the server's CSV verbatim.
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ClockCmd {
    /// Print the manager's current time.
    Show,
    /// Move the simulated clock (operator).
    Set {
        /// RFC 3339 instant or YYYY-MM-DD (midnight UTC).
        time: String,
    },
}

#[derive(Subcommand, Debug)]
enum CatalogCmd {
    /// List the license tags with their display names and the higher tiers that fulfil them.
    List,
}

/// License types, as the server spells them.
const KINDS: [&str; 3] = ["perpetual", "term", "subscription"];

/// `TAG=N` with N at least 1; the tag may contain spaces and `=` (the last `=` separates).
fn tag_count(text: &str) -> Result<(String, u32), String> {
    let (tag, n) = text.rsplit_once('=').ok_or_else(|| format!("'{text}' is not TAG=N (e.g. \"ACI Advantage=2\")"))?;
    let n: u32 = n.trim().parse().map_err(|_| format!("'{n}' is not a number of licenses"))?;
    match (tag.trim(), n) {
        ("", _) => Err(format!("'{text}' names no tag")),
        (_, 0) => Err(format!("'{text}': reserve at least one license")),
        (tag, n) => Ok((tag.to_owned(), n)),
    }
}

/// Role names from the domain crate, so `--help` lists them and typos fail before a round trip.
fn roles() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Role::ALL.map(Role::as_str))
}

const ACCOUNTS: &[Col] = &[
    ("DOMAIN", "domain"),
    ("NAME", "name"),
    ("UNIVERSAL RESERVATION", "universal_reservation"),
    ("CREATED", "created_at"),
];
const VAS: &[Col] =
    &[("NAME", "name"), ("DEFAULT", "is_default"), ("DESCRIPTION", "description"), ("CREATED", "created_at")];
const PRINCIPALS: &[Col] = &[
    ("NAME", "name"),
    ("LOGIN", "login"),
    ("KIND", "kind"),
    ("STATUS", "status"),
    ("ROLE", "role"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("CREATED", "created_at"),
];
const ACCESS_TOKENS: &[Col] = &[
    ("ID", "id"),
    ("PREFIX", "prefix"),
    ("HOLDER", "principal"),
    ("CREATED", "created_at"),
    ("EXPIRES", "expires_at"),
];
const TOKENS: &[Col] = &[
    ("PREFIX", "prefix"),
    ("STATUS", "status"),
    ("USES", "uses"),
    ("MAX USES", "max_uses"),
    ("EXPIRES", "expires_at"),
    ("EXPORT", "export_controlled"),
    ("DESCRIPTION", "description"),
];
const INSTANCES: &[Col] = &[
    ("ID", "id"),
    ("HOSTNAME", "hostname"),
    ("PID", "udi_pid"),
    ("SERIAL", "udi_serial_number"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("STATUS", "status"),
    ("LAST CONTACT", "last_contact_at"),
    ("USAGE", "usage"),
];
const RESERVATIONS: &[Col] = &[
    ("ID", "id"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("UDI", "udi"),
    ("KIND", "kind"),
    ("STATUS", "status"),
    ("LICENSES", "licenses"),
    ("CONFIRMATION", "confirmation_code"),
    ("CREATED", "created_at"),
];
const EVENTS: &[Col] = &[
    ("ID", "id"),
    ("AT", "at"),
    ("ACTOR", "actor"),
    ("KIND", "kind"),
    ("ACCOUNT", "smart_account"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("OBJECT", "object"),
    ("DETAIL", "detail"),
];
const ALERTS: &[Col] = &[
    ("RAISED", "raised_at"),
    ("SEVERITY", "severity"),
    ("KIND", "kind"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("OBJECT", "object"),
    ("MESSAGE", "message"),
];
const USAGE: &[Col] = &[
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("TAG", "tag"),
    ("PURCHASED", "purchased"),
    ("IN USE", "in_use"),
    ("RESERVED", "reserved"),
    ("LENT", "lent"),
    ("BORROWED", "borrowed"),
    ("BALANCE", "balance"),
    ("STATUS", "status"),
];
const CATALOG: &[Col] = &[("TAG", "tag"), ("DISPLAY NAME", "display_name"), ("FULFILLED BY", "fulfilled_by")];
const DIFFERENCES: &[Col] = &[
    ("ACCOUNT", "account"),
    ("VIRTUAL ACCOUNT", "virtual_account"),
    ("TAG", "tag"),
    ("COUNTER", "counter"),
    ("STORED", "stored"),
    ("RECOMPUTED", "recomputed"),
];

/// One REST request and how to show its answer.
#[derive(Debug, PartialEq)]
struct Call {
    method: Method,
    /// Path and query, already percent-encoded.
    path: String,
    body: Option<Value>,
    /// A YAML file sent as it is (`application/yaml`) instead of a JSON body: a full sync
    /// request of a large satellite, which the manager reads without holding it whole.
    upload: Option<std::path::PathBuf>,
    show: Show,
}

impl Call {
    fn get(path: String, show: Show) -> Call {
        Call { method: Method::GET, path, body: None, upload: None, show }
    }

    fn post(path: String, body: Value, show: Show) -> Call {
        Call::with_body(Method::POST, path, body, show)
    }

    /// A request whose `null` fields (options not given) are left out, so the server applies
    /// its own defaults.
    fn with_body(method: Method, path: String, mut body: Value, show: Show) -> Call {
        if let Value::Object(fields) = &mut body {
            fields.retain(|_, v| !v.is_null());
        }
        Call { method, path, body: Some(body), upload: None, show }
    }

    fn upload(path: String, file: &std::path::Path, show: Show) -> Call {
        Call { method: Method::POST, path, body: None, upload: Some(file.to_path_buf()), show }
    }

    fn delete(path: String) -> Call {
        Call { method: Method::DELETE, path, body: None, upload: None, show: Show::Record }
    }
}

fn account_path(domain: &str) -> Result<String> {
    Ok(format!("/api/v1/accounts/{}", segment(domain)?))
}

impl Account {
    fn path(&self) -> Result<String> {
        account_path(&self.domain)
    }

    fn pool_path(&self, va: &str) -> Result<String> {
        Ok(format!("{}/virtual-accounts/{}", self.path()?, segment(va)?))
    }
}

impl Principal {
    /// Its resource under `/users` or `/api-clients` of its account.
    fn path(&self, kind: &str) -> Result<String> {
        Ok(format!("{}{kind}/{}", self.account.path()?, segment(&self.name)?))
    }

    fn change(&self, kind: &str, body: Value) -> Result<Call> {
        Ok(Call::with_body(Method::PATCH, self.path(kind)?, body, Show::Record))
    }
}

impl Pool {
    fn path(&self) -> Result<String> {
        self.account.pool_path(&self.va)
    }
}

/// Maps a command to its request; `input` supplies a new user's password (--password-stdin).
fn plan(command: &Command, input: &mut dyn BufRead) -> Result<Call> {
    use Show::{Licenses, Record, Table, Text};
    let report = |path: String, csv: bool, cols| match csv {
        true => Call::get(path + "?format=csv", Text),
        false => Call::get(path, Table("rows", cols)),
    };
    Ok(match command {
        Command::Account(AccountCmd::Create { domain, name }) => {
            Call::post("/api/v1/accounts".into(), json!({ "domain": domain, "name": name }), Record)
        }
        Command::Account(AccountCmd::List) => Call::get("/api/v1/accounts".into(), Table("accounts", ACCOUNTS)),
        Command::Account(AccountCmd::Set { domain, allow_universal_reservation }) => Call::with_body(
            Method::PATCH,
            account_path(domain)?,
            json!({ "universal_reservation": allow_universal_reservation }),
            Record,
        ),
        Command::Va(VaCmd::Create { account, name, description }) => Call::post(
            account.path()? + "/virtual-accounts",
            json!({ "name": name, "description": description }),
            Record,
        ),
        Command::Va(VaCmd::List { account }) => {
            Call::get(account.path()? + "/virtual-accounts", Table("virtual_accounts", VAS))
        }
        Command::Va(VaCmd::Delete { account, name }) => Call::delete(account.pool_path(name)?),
        Command::User(UserCmd::Create { account, name, role, va, password_stdin }) => {
            let password = match password_stdin {
                true => Some(client::read_line(input, "the new user's password")?),
                false => None,
            };
            Call::post(
                account.path()? + "/users",
                json!({ "username": name, "role": role, "virtual_account": va, "password": password }),
                Record,
            )
        }
        Command::User(UserCmd::List { account }) => Call::get(account.path()? + "/users", Table("users", PRINCIPALS)),
        Command::User(UserCmd::Disable(p)) => p.change("/users", json!({ "disabled": true }))?,
        Command::User(UserCmd::Enable(p)) => p.change("/users", json!({ "disabled": false }))?,
        Command::User(UserCmd::Password(p)) => {
            let password = client::read_line(input, "the new password")?;
            p.change("/users", json!({ "password": password }))?
        }
        Command::User(UserCmd::Delete(p)) => Call::delete(p.path("/users")?),
        Command::Client(ClientCmd::Create { account, name, role, va }) => Call::post(
            account.path()? + "/api-clients",
            json!({ "name": name, "role": role, "virtual_account": va }),
            Record,
        ),
        Command::Client(ClientCmd::List { account }) => {
            Call::get(account.path()? + "/api-clients", Table("api_clients", PRINCIPALS))
        }
        Command::Client(ClientCmd::Rotate(p)) => {
            Call::post(p.path("/api-clients")? + "/rotate-secret", json!({}), Record)
        }
        Command::Client(ClientCmd::Disable(p)) => p.change("/api-clients", json!({ "disabled": true }))?,
        Command::Client(ClientCmd::Enable(p)) => p.change("/api-clients", json!({ "disabled": false }))?,
        Command::Client(ClientCmd::Delete(p)) => Call::delete(p.path("/api-clients")?),
        Command::AccessToken(AccessTokenCmd::List { domain }) => {
            let scope = match domain {
                Some(domain) => account_path(domain)?,
                None => "/api/v1".into(),
            };
            Call::get(scope + "/access-tokens", Table("access_tokens", ACCESS_TOKENS))
        }
        Command::AccessToken(AccessTokenCmd::Revoke { token, id }) => {
            Call::post("/api/v1/access-tokens/revoke".into(), json!({ "token": token, "id": id }), Record)
        }
        Command::License(LicenseCmd::Add { pool, tag, count, sku, kind, start, end, subscription_id }) => Call::post(
            pool.path()? + "/licenses",
            json!({ "tag": tag, "count": count, "sku": sku, "type": kind, "start": start,
                    "end": end, "subscription_id": subscription_id }),
            Record,
        ),
        Command::License(LicenseCmd::List { pool }) => Call::get(pool.path()? + "/licenses", Licenses),
        Command::License(LicenseCmd::Transfer { pool, tag, count, to, kind }) => Call::post(
            pool.path()? + "/licenses/transfer",
            json!({ "tag": tag, "count": count, "to": to, "type": kind }),
            Record,
        ),
        Command::Token(TokenCmd::Create { pool, description, expires_days, max_uses, export_controlled }) => {
            Call::post(
                pool.path()? + "/tokens",
                json!({ "description": description, "expires_days": expires_days,
                    "max_uses": max_uses, "export_controlled": export_controlled.then_some(true) }),
                Show::Field("token"),
            )
        }
        Command::Token(TokenCmd::List { pool }) => Call::get(pool.path()? + "/tokens", Table("tokens", TOKENS)),
        Command::Token(TokenCmd::Revoke { pool, token }) => {
            Call::post(pool.path()? + "/tokens/revoke", json!({ "token": token }), Record)
        }
        Command::Instance(InstanceCmd::List { account, va }) => {
            let scope = match va {
                Some(va) => account.pool_path(va)?,
                None => account.path()?,
            };
            Call::get(scope + "/instances", Table("instances", INSTANCES))
        }
        Command::Instance(InstanceCmd::Show { account, id }) => {
            Call::get(format!("{}/instances/{}", account.path()?, segment(id)?), Record)
        }
        Command::Instance(InstanceCmd::Move { account, id, to }) => {
            Call::post(format!("{}/instances/{}/move", account.path()?, segment(id)?), json!({ "to": to }), Record)
        }
        Command::Instance(InstanceCmd::Remove { account, id }) => {
            Call::delete(format!("{}/instances/{}", account.path()?, segment(id)?))
        }
        Command::Reservation(ReservationCmd::Create { pool, request_code, universal, licenses }) => {
            let licenses: Vec<Value> = licenses.iter().map(|(tag, n)| json!({ "tag": tag, "count": n })).collect();
            Call::post(
                pool.path()? + "/reservations",
                json!({ "request_code": request_code, "universal": universal.then_some(true),
                        "licenses": (!licenses.is_empty()).then_some(licenses) }),
                Show::Code("authorization_code", "confirmation_code"),
            )
        }
        Command::Reservation(ReservationCmd::Return { pool, return_code }) => {
            Call::post(pool.path()? + "/reservations/return", json!({ "return_code": return_code }), Record)
        }
        Command::Reservation(ReservationCmd::List { account, va }) => {
            let scope = match va {
                Some(va) => account.pool_path(va)?,
                None => account.path()?,
            };
            Call::get(scope + "/reservations", Table("reservations", RESERVATIONS))
        }
        Command::Event(EventCmd::List { domain, limit }) => {
            let scope = match domain {
                Some(domain) => account_path(domain)?,
                None => "/api/v1".into(),
            };
            let query = limit.map(|n| format!("?limit={n}")).unwrap_or_default();
            Call::get(format!("{scope}/events{query}"), Table("events", EVENTS))
        }
        Command::Alert(AlertCmd::List { account }) => Call::get(account.path()? + "/alerts", Table("alerts", ALERTS)),
        Command::Report(ReportCmd::Usage { account, csv }) => report(account.path()? + "/reports/usage", *csv, USAGE),
        Command::Report(ReportCmd::Instances { account, csv }) => {
            report(account.path()? + "/reports/instances", *csv, INSTANCES)
        }
        Command::Clock(ClockCmd::Show) => Call::get("/api/v1/clock".into(), Record),
        Command::Clock(ClockCmd::Set { time }) => Call::post("/api/v1/clock".into(), json!({ "time": time }), Record),
        Command::Catalog(CatalogCmd::List) => Call::get("/api/v1/catalog".into(), Table("tags", CATALOG)),
        Command::Check { repair: false } => Call::get("/api/v1/check".into(), Table("differences", DIFFERENCES)),
        Command::Check { repair: true } => Call {
            method: Method::POST,
            path: "/api/v1/check/repair".into(),
            body: None,
            upload: None,
            show: Table("repaired", DIFFERENCES),
        },
        Command::Backup { .. } => {
            Call { method: Method::POST, path: "/api/v1/backup".into(), body: None, upload: None, show: Record }
        }
        Command::LocalAccount(cmd) => cmd.plan()?,
        Command::Satellite(cmd) => cmd.plan()?,
        Command::Sync(cmd) => cmd.plan()?,
        Command::Conversion(cmd) => cmd.plan()?,
        Command::Pak(cmd) => cmd.plan()?,
        Command::Fleet(args) => args.plan()?,
    })
}

/// Items a page the CLI asks for: the manager's maximum (instance listings allow more, see
/// [`page_size`]).
const PAGE: usize = 1000;
/// Instances a page of an instance listing: fewer, larger pages cost fewer requests, and the
/// manager's and this client's memory hold one page at a time.
const INSTANCE_PAGE: usize = 5000;

/// Items a page of `key`'s listing the CLI asks for.
fn page_size(key: &str) -> usize {
    if key == "instances" {
        INSTANCE_PAGE
    } else {
        PAGE
    }
}

/// The fields of a page that say where the next one starts; null in a joined answer.
const NEXT_FIELDS: [&str; 2] = ["next", "next_offset"];

/// The list a paged listing answers in, when `call` is one: only GET listings shown as tables
/// page (a change answered by a table, `pak import`, is sent as it is), and a call naming its
/// own `limit` (`event list --limit N`) gets that one page.
fn paged(call: &Call) -> Option<&'static str> {
    match call.show {
        Show::Table(key, _) if call.method == Method::GET && !call.path.contains("limit=") => Some(key),
        _ => None,
    }
}

/// Where a listing's pages come from: the manager ([`Pages`]), or a test's list.
trait PageSource {
    /// The next page, None after the last.
    async fn next(&mut self) -> Result<Option<Value>>;
}

/// The pages of a listing, one answer at a time, read ahead by a task of their own ([`read_ahead`]).
struct Pages {
    pages: tokio::sync::mpsc::Receiver<Result<Value>>,
}

impl Pages {
    fn of(api: &Api, call: &Call, key: &str) -> Self {
        let separator = if call.path.contains('?') { '&' } else { '?' };
        let path = format!("{}{separator}limit={}", call.path, page_size(key));
        let (tx, pages) = tokio::sync::mpsc::channel(1);
        tokio::spawn(read_ahead(api.clone(), path, tx));
        Pages { pages }
    }
}

impl PageSource for Pages {
    async fn next(&mut self) -> Result<Option<Value>> {
        self.pages.recv().await.transpose()
    }
}

/// Reads the pages of the listing at `path` into `tx`, each asked for as soon as its cursor is
/// known: from the `Link: <...>; rel="next"` header of the page before (an instance listing's),
/// before that page's body is read, or else from its `next`. So the manager builds a page while
/// this side reads the one before and writes the one before that; the channel holds one page,
/// so a few pages at most are in memory. Ends at the last page, at an error (sent on), or when
/// the reader is gone.
async fn read_ahead(api: Api, path: String, tx: tokio::sync::mpsc::Sender<Result<Value>>) {
    let ask = |cursor: Option<&str>| {
        let api = api.clone();
        // A cursor is base64url: it goes into the query string as it is.
        let path = cursor.map_or_else(|| path.clone(), |c| format!("{path}&cursor={c}"));
        tokio::spawn(async move { api.stream(&Call::get(path, Show::Text)).await })
    };
    let mut asked = ask(None);
    loop {
        let answer = match asked.await {
            Ok(answer) => answer,
            Err(e) => Err(anyhow::anyhow!("reading a page of the listing failed: {e}")),
        };
        let (page, following) = match answer {
            Ok(answer) => {
                let following = link_next(&answer).map(|c| ask(Some(&c)));
                let page = match answer.bytes().await {
                    Ok(body) => serde_json::from_slice::<Value>(&body).context("the manager's answer is not JSON"),
                    Err(e) => Err(anyhow::anyhow!("the manager's answer was cut short: {e}")),
                };
                let following = match (&page, following) {
                    (_, Some(f)) => Some(f),
                    (Ok(p), None) => p["next"].as_str().map(|c| ask(Some(c))),
                    (Err(_), None) => None,
                };
                (page, following)
            }
            Err(e) => (Err(e), None),
        };
        let failed = page.is_err();
        if tx.send(page).await.is_err() || failed {
            return;
        }
        match following {
            Some(next) => asked = next,
            None => return,
        }
    }
}

/// The cursor of the `Link` header's `rel="next"` target, when the answer has one.
fn link_next(answer: &reqwest::Response) -> Option<String> {
    let link = answer.headers().get(reqwest::header::LINK)?.to_str().ok()?;
    let target = link.split(',').find(|l| l.contains("rel=\"next\""))?;
    let uri = target.split_once('<')?.1.split_once('>')?.0;
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|p| p.strip_prefix("cursor=")).map(str::to_string)
}

/// The items of a listing's page.
fn items<'v>(page: &'v Value, key: &str) -> Result<&'v Vec<Value>> {
    page[key].as_array().with_context(|| format!("the manager's page has no '{key}' list"))
}

/// A listing's answer with all its pages joined, so a table shows everything.
async fn all_pages(api: &Api, call: &Call) -> Result<String> {
    let Some(key) = paged(call) else { return api.send(call).await };
    Ok(joined(&mut Pages::of(api, call, key), key).await?.to_string())
}

/// Every page's items in the first page's list; no next page left.
async fn joined(pages: &mut impl PageSource, key: &str) -> Result<Value> {
    let mut answer = pages.next().await?.context("a listing has a first page")?;
    while let Some(next) = pages.next().await? {
        let more = items(&next, key)?.clone();
        answer[key].as_array_mut().with_context(|| format!("the manager's answer has no '{key}' list"))?.extend(more);
    }
    for field in NEXT_FIELDS {
        if answer.get(field).is_some() {
            answer[field] = Value::Null;
        }
    }
    Ok(answer)
}

/// `--json` of a listing, written page by page as it arrives: the document [`joined`] makes,
/// pretty-printed, in memory that does not grow with the listing (a million instances are a
/// gigabyte of JSON).
async fn stream_json(pages: &mut impl PageSource, key: &str, out: &mut impl Write) -> Result<()> {
    let mut first = pages.next().await?.context("a listing has a first page")?;
    // The first page's items are moved out (their place stays, empty), not copied.
    let mut list = Some(first.get_mut(key).map(Value::take).unwrap_or_default());
    let fields = first.as_object().context("the manager's answer is not a JSON object")?;
    write!(out, "{{")?;
    for (i, (name, value)) in fields.iter().enumerate() {
        write!(out, "{}\n  {}: ", if i == 0 { "" } else { "," }, Value::from(name.as_str()))?;
        if NEXT_FIELDS.contains(&name.as_str()) {
            write!(out, "null")?;
        } else if name != key {
            write_indented(out, value, b"  ")?;
        } else {
            write!(out, "[")?;
            let mut count = 0usize;
            while let Some(this) = list.take() {
                let Value::Array(items) = this else { anyhow::bail!("the manager's page has no '{key}' list") };
                for item in &items {
                    write!(out, "{}\n    ", if count == 0 { "" } else { "," })?;
                    write_indented(out, item, b"    ")?;
                    count += 1;
                }
                drop(items);
                list = pages.next().await?.map(|mut page| page.get_mut(key).map(Value::take).unwrap_or_default());
            }
            write!(out, "{}]", if count == 0 { "" } else { "\n  " })?;
        }
    }
    writeln!(out, "{}}}", if fields.is_empty() { "" } else { "\n" })?;
    Ok(out.flush()?)
}

/// Writes `value` pretty-printed with each line after the first indented by `by`, as it
/// stands inside the whole document (pretty JSON has newlines only between its tokens).
fn write_indented(out: &mut impl Write, value: &Value, by: &[u8]) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)?;
    let mut indented = Vec::with_capacity(text.len() + text.len() / 8);
    let mut lines = text.split(|b| *b == b'\n');
    indented.extend_from_slice(lines.next().unwrap_or_default());
    for line in lines {
        indented.push(b'\n');
        indented.extend_from_slice(by);
        indented.extend_from_slice(line);
    }
    Ok(out.write_all(&indented)?)
}

/// A text answer (a CSV report) written to standard output as it arrives: a report of a
/// million instances is not held in memory. A pipe closed early (`| head`) is not an error.
async fn copy_out(mut answer: reqwest::Response) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    while let Some(chunk) = answer.chunk().await.context("the manager's answer was cut short")? {
        match stdout.write_all(&chunk) {
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            written => written.context("cannot write to standard output")?,
        }
    }
    match stdout.flush() {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e).context("cannot write to standard output"),
        _ => Ok(()),
    }
}

/// Awaits a call, and on a terminal shows the seconds it has been waiting once it takes longer
/// than a second: a full synchronisation of a large satellite or a long listing takes minutes.
async fn waiting<T>(call: impl std::future::Future<Output = T>) -> T {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return call.await;
    }
    tokio::pin!(call);
    let started = tokio::time::Instant::now();
    let mut ticks =
        tokio::time::interval_at(started + std::time::Duration::from_secs(1), std::time::Duration::from_secs(1));
    let mut shown = false;
    loop {
        tokio::select! {
            done = &mut call => {
                if shown {
                    eprint!("\r\x1b[K");
                }
                return done;
            }
            _ = ticks.tick() => {
                shown = true;
                eprint!("\rwaiting for the manager's answer: {} s", started.elapsed().as_secs());
            }
        }
    }
}

/// Chooses the login before any network traffic, so a missing secret fails fast.
fn login(args: &AdminArgs, input: &mut dyn BufRead) -> Result<Login> {
    if let Command::Fleet(fleet) = &args.command {
        return fleet.login();
    }
    if let Some(name) = &args.user {
        let password = client::read_line(input, "the --user password")?;
        return Ok(Login::Password { username: name.clone(), password });
    }
    let secret = args.secret.clone().context(
        "no API client secret: pass --secret or set SMARTLIC_ADMIN_SECRET \
         (or log in with --user NAME --password-stdin)",
    )?;
    Ok(Login::ClientCredentials { client_id: args.client_id.clone(), secret })
}

pub async fn run(args: AdminArgs) -> Result<()> {
    // Everything local (stdin, CA file, URL) is checked before the first request.
    let (login, call) = {
        let mut input = std::io::stdin().lock();
        let login = login(&args, &mut input)?;
        (login, plan(&args.command, &mut input)?)
    };
    let api = Api::login(&args.server, &args.ca, &login).await?;
    if let Command::Backup { out } = &args.command {
        return backup::save(api.stream(&call).await?, out).await;
    }
    if let Some(done) = waiting(fleet::finish(&args.command, &api, &call)).await? {
        println!("{done}");
        return Ok(());
    }
    if let Some(done) = waiting(satellite::finish(&args.command, &api, &call)).await? {
        println!("{done}");
        return Ok(());
    }
    if call.method == Method::GET && call.show == Show::Text {
        return copy_out(api.stream(&call).await?).await;
    }
    if let (true, Some(key)) = (args.json, paged(&call)) {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        return match stream_json(&mut Pages::of(&api, &call, key), key, &mut stdout).await {
            Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == ErrorKind::BrokenPipe) => Ok(()),
            other => other,
        };
    }
    let answer = waiting(all_pages(&api, &call)).await?;
    let text = view::render(&call.show, &answer, args.json)?;
    if !args.json {
        if let Some(note) = view::note(&call.show, &answer)? {
            eprint!("{note}");
        }
    }
    // `smartlic admin ... | head` closing the pipe early is not an error.
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => return Err(e).context("cannot write to standard output"),
        _ => {}
    }
    // Drift fails the command, so scripts and monitors can act on it.
    if let Command::Check { repair } = args.command {
        let answer: Value = serde_json::from_str(&answer).context("the manager's answer is not JSON")?;
        if repair {
            eprintln!(
                "{} in-use counter(s) set to the count of the records",
                answer["repaired"].as_array().map_or(0, Vec::len)
            );
        }
        match answer["differences"].as_array().map_or(0, Vec::len) {
            0 => eprintln!("every counter matches the records"),
            n if repair => anyhow::bail!(
                "{n} counter(s) still differ from the records (reserved counts are not repaired: `admin check` lists them)"
            ),
            n => anyhow::bail!("{n} counter(s) differ from the records"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Wrap {
        #[command(flatten)]
        admin: AdminArgs,
    }

    fn parse(line: &str) -> Result<AdminArgs, clap::Error> {
        Wrap::try_parse_from(std::iter::once("admin").chain(line.split(' '))).map(|w| w.admin)
    }

    fn planned(line: &str) -> Call {
        plan(&parse(line).unwrap().command, &mut "pw1\n".as_bytes()).unwrap()
    }

    impl PageSource for std::collections::VecDeque<Value> {
        async fn next(&mut self) -> Result<Option<Value>> {
            Ok(self.pop_front())
        }
    }

    #[tokio::test]
    async fn a_streamed_listing_is_the_joined_document_pretty_printed() {
        let pages = |n: usize| -> std::collections::VecDeque<Value> {
            (0..n)
                .map(|p| {
                    let items: Vec<Value> = (0..2)
                        .map(|i| serde_json::json!({"id": format!("i{p}{i}"), "tags": {"a\"b": [1, 2]}}))
                        .collect();
                    let next = if p + 1 < n { Value::from(format!("c{p}")) } else { Value::Null };
                    serde_json::json!({"account": {"domain": "x"}, "instances": items, "next": next, "z": []})
                })
                .collect()
        };
        for n in [1, 3] {
            let mut out = Vec::new();
            stream_json(&mut pages(n), "instances", &mut out).await.unwrap();
            let whole =
                serde_json::to_string_pretty(&joined(&mut pages(n), "instances").await.unwrap()).unwrap() + "\n";
            assert_eq!(String::from_utf8(out).unwrap(), whole);
        }
        let empty = serde_json::json!({"instances": [], "next": null, "next_offset": null});
        let mut out = Vec::new();
        stream_json(&mut std::collections::VecDeque::from([empty.clone()]), "instances", &mut out).await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string_pretty(&empty).unwrap() + "\n");
    }

    #[test]
    fn definitions_are_consistent() {
        Wrap::command().debug_assert();
    }

    #[test]
    fn global_options_and_json_anywhere() {
        let args = parse("--server https://h:1 --secret s --json va list --account a.com").unwrap();
        assert_eq!(args.server, "https://h:1");
        assert!(args.json);
        assert!(parse("--secret s va list --account a.com --json").unwrap().json);
        // --user needs the password from stdin, and vice versa.
        assert!(parse("--user bob va list --account a.com").is_err());
        assert!(parse("--password-stdin va list --account a.com").is_err());
        assert!(parse("--user bob --password-stdin va list --account a.com").is_ok());
    }

    #[test]
    fn clap_rejects_bad_numbers_roles_and_types() {
        assert!(parse("license add --account a --va v --tag t --count -1").is_err());
        assert!(parse("license add --account a --va v --tag t --count x").is_err());
        assert!(parse("user create --account a --name u --role root").is_err());
        assert!(parse("license add --account a --va v --tag t --count 1 --type forever").is_err());
        assert!(parse("token create --account a --va v --max-uses many").is_err());
        assert!(parse("license list --account a").is_err(), "--va is required");
        let reserve = "reservation create --account a --va v --request-code C";
        assert!(parse(reserve).is_err(), "--universal or --license is required");
        assert!(parse(&format!("{reserve} --universal --license t=1")).is_err(), "not both");
        for bad in ["t", "t=0", "t=x", "=2"] {
            assert!(parse(&format!("{reserve} --license {bad}")).is_err(), "{bad}");
        }
        assert!(parse("account set --domain a.com --allow-universal-reservation maybe").is_err());
    }

    #[test]
    fn commands_map_to_the_documented_paths_and_bodies() {
        let call =
            planned("license add --account example.com --va Lab --tag t1 --count 10 --type term --end 2027-01-01");
        assert_eq!(call.method, Method::POST);
        assert_eq!(call.path, "/api/v1/accounts/example.com/virtual-accounts/Lab/licenses");
        assert_eq!(call.body, Some(json!({ "tag": "t1", "count": 10, "type": "term", "end": "2027-01-01" })));

        let call = planned("token create --account a.com --va Lab --max-uses 3");
        assert_eq!(call.body, Some(json!({ "max_uses": 3 })));
        assert_eq!(call.show, Show::Field("token"));
        let call = planned("token create --account a.com --va Lab --export-controlled");
        assert_eq!(call.body, Some(json!({ "export_controlled": true })));

        let call =
            planned("user create --account a.com --name u --role virtual-account-user --va Lab --password-stdin");
        assert_eq!(
            call.body,
            Some(json!({ "username": "u", "role": "virtual-account-user",
                         "virtual_account": "Lab", "password": "pw1" }))
        );

        let call = planned("instance remove --account a.com --id 42");
        assert_eq!((call.method, call.path.as_str()), (Method::DELETE, "/api/v1/accounts/a.com/instances/42"));
        assert_eq!(
            planned("instance list --account a.com --va Lab").path,
            "/api/v1/accounts/a.com/virtual-accounts/Lab/instances"
        );
        assert_eq!(planned("event list --limit 5").path, "/api/v1/events?limit=5");
        assert_eq!(planned("event list --account a.com").path, "/api/v1/accounts/a.com/events");
        let call = planned("report usage --account a.com --csv");
        assert_eq!((call.path.as_str(), call.show), ("/api/v1/accounts/a.com/reports/usage?format=csv", Show::Text));
        assert_eq!(planned("clock set 2026-05-01").body, Some(json!({ "time": "2026-05-01" })));

        let call =
            planned("reservation create --account a.com --va Lab --request-code CB-X --license t1=2 --license a=b=1");
        assert_eq!(call.path, "/api/v1/accounts/a.com/virtual-accounts/Lab/reservations");
        assert_eq!(
            call.body,
            Some(
                json!({ "request_code": "CB-X", "licenses": [{ "tag": "t1", "count": 2 }, { "tag": "a=b", "count": 1 }] })
            )
        );
        assert_eq!(call.show, Show::Code("authorization_code", "confirmation_code"));
        let call = planned("reservation create --account a.com --va Lab --request-code CU-X --universal");
        assert_eq!(call.body, Some(json!({ "request_code": "CU-X", "universal": true })));
        let call = planned("reservation return --account a.com --va Lab --return-code R-1");
        assert_eq!(call.path, "/api/v1/accounts/a.com/virtual-accounts/Lab/reservations/return");
        assert_eq!(planned("reservation list --account a.com").path, "/api/v1/accounts/a.com/reservations");
        let call = planned("account set --domain a.com --allow-universal-reservation true");
        assert_eq!((call.method, call.body), (Method::PATCH, Some(json!({ "universal_reservation": true }))));
        let call = planned("check");
        assert_eq!((call.method, call.path.as_str()), (Method::GET, "/api/v1/check"));
        let call = planned("va delete --account a.com --name Lab");
        assert_eq!((call.method, call.path.as_str()), (Method::DELETE, "/api/v1/accounts/a.com/virtual-accounts/Lab"));
    }

    #[test]
    fn names_with_spaces_are_encoded_and_dot_segments_refused() {
        let args =
            Wrap::try_parse_from(["admin", "license", "list", "--account", "a.com", "--va", "Lab East/2"]).unwrap();
        let call = plan(&args.admin.command, &mut std::io::empty()).unwrap();
        assert_eq!(call.path, "/api/v1/accounts/a.com/virtual-accounts/Lab%20East%2F2/licenses");
        let args = Wrap::try_parse_from(["admin", "instance", "remove", "--account", "a.com", "--id", ".."]).unwrap();
        assert!(plan(&args.admin.command, &mut std::io::empty()).is_err());
    }

    #[test]
    fn login_needs_a_secret_or_a_password_line() {
        let args = parse("--user bob --password-stdin --secret s catalog list").unwrap();
        let chosen = login(&args, &mut "hunter2\r\n".as_bytes()).unwrap();
        assert_eq!(chosen, Login::Password { username: "bob".into(), password: "hunter2".into() });
        assert!(login(&args, &mut std::io::empty()).is_err());
        let args = parse("--secret s catalog list").unwrap();
        assert_eq!(
            login(&args, &mut std::io::empty()).unwrap(),
            Login::ClientCredentials { client_id: args.client_id.clone(), secret: "s".into() }
        );
    }
}
