//! The orchestrator's own SQLite database: migrations, and every read and write as one call (a
//! transaction where a call writes several rows). Secrets (client secrets, node API tokens,
//! cached registration tokens) are sealed with `SMARTLIC_DATA_KEY` when it is set
//! ([`smartlic_server::data_key`]) and never leave this module except to the code that uses them.

use crate::codes::Cause;
use crate::model::*;
use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, Row};
use smartlic_core::Timestamp;
use smartlic_server::data_key::DataKey;
use std::path::Path;
use std::sync::Mutex;

/// The migrations, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] =
    &[include_str!("../migrations/0001_init.sql"), include_str!("../migrations/0002_subscription_map.sql")];

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "fleet.db";

pub struct Db {
    conn: Mutex<Connection>,
    key: Option<DataKey>,
}

/// What a new account is made of (the secret in clear, sealed on the way in).
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub base_url: String,
    pub ca_pem: String,
    pub client_id: String,
    pub client_secret: String,
    pub transport: Option<Transport>,
    pub operational_va: Option<String>,
}

/// A node of a new cluster.
pub struct NewNode {
    pub name: String,
    pub api_url: String,
    pub api_token: Option<String>,
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.map(|ms| Timestamp(ms).to_rfc3339())
}

fn transport_json(t: &Option<Transport>) -> Option<String> {
    t.as_ref().map(|t| serde_json::to_string(t).expect("a transport serializes"))
}

fn transport_of(text: Option<String>) -> Option<Transport> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn account_row(r: &Row) -> rusqlite::Result<Account> {
    let kind: String = r.get("kind")?;
    let last: Option<i64> = r.get("last_sync_ms")?;
    Ok(Account {
        id: r.get("id")?,
        name: r.get("name")?,
        kind: if kind == "satellite" { AccountKind::Satellite } else { AccountKind::Cloud },
        base_url: r.get("base_url")?,
        ca_pem: r.get("ca_pem")?,
        client_id: r.get("client_id")?,
        transport: transport_of(r.get("transport")?),
        operational_va: r.get("operational_va")?,
        last_sync: time(last),
        last_sync_ms: last,
    })
}

fn node_row(r: &Row) -> rusqlite::Result<Node> {
    Ok(Node {
        id: r.get("id")?,
        name: r.get("name")?,
        api_url: r.get("api_url")?,
        state: r.get("state")?,
        virtual_account: r.get("virtual_account")?,
        udi_pid: r.get("udi_pid")?,
        udi_sn: r.get("udi_sn")?,
    })
}

const CLUSTER_SELECT: &str = "SELECT c.id, c.name, u.name AS customer, c.application, c.transport, a.name AS account, \
     c.virtual_account, c.assign_mode FROM clusters c JOIN customers u ON u.id = c.customer_id \
     LEFT JOIN accounts a ON a.id = c.account_id";

fn cluster_row(r: &Row) -> rusqlite::Result<Cluster> {
    let app: String = r.get("application")?;
    Ok(Cluster {
        id: r.get("id")?,
        name: r.get("name")?,
        customer: r.get("customer")?,
        application: Application::parse(&app).unwrap_or(Application::CallControl),
        transport: transport_of(r.get("transport")?),
        account: r.get("account")?,
        virtual_account: r.get("virtual_account")?,
        assign_mode: r.get("assign_mode")?,
    })
}

fn job_row(r: &Row) -> rusqlite::Result<Job> {
    let request: String = r.get("request")?;
    Ok(Job {
        id: r.get("id")?,
        kind: r.get("kind")?,
        status: r.get("status")?,
        entity: r.get("entity")?,
        details: r.get("details")?,
        error_code: r.get("error_code")?,
        error_message: r.get("error_message")?,
        recommended_action: r.get("recommended_action")?,
        created: time(r.get("created_ms")?).unwrap_or_default(),
        started: time(r.get("started_ms")?),
        completed: time(r.get("completed_ms")?),
        nodes: Vec::new(),
        request: serde_json::from_str(&request).unwrap_or_default(),
    })
}

/// A refusal the caller can act on ([`Invalid`]: a bad value; `Conflict`: the state forbids it;
/// `NotFound`), or the database failing.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Secret(String),
}

pub type DbResult<T> = Result<T, DbError>;

/// A UNIQUE violation as the conflict it is.
fn unique(e: rusqlite::Error, what: String) -> DbError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            DbError::Conflict(what)
        }
        e => DbError::Sql(e),
    }
}

impl Db {
    /// Opens (creating) the database at `path` and applies the migrations it lacks, each in a
    /// transaction with its version.
    pub fn open(path: &Path, key: Option<DataKey>) -> anyhow::Result<Db> {
        let mut conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")?;
        smartlic_store::migrate_sqlite(&mut conn, MIGRATIONS).with_context(|| path.display().to_string())?;
        Ok(Db { conn: Mutex::new(conn), key })
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn seal(&self, record: &str, plain: &str) -> DbResult<(Vec<u8>, bool)> {
        match &self.key {
            Some(key) => Ok((key.seal(record, plain.as_bytes()).map_err(|e| DbError::Secret(e.to_string()))?, true)),
            None => Ok((plain.as_bytes().to_vec(), false)),
        }
    }

    fn open_secret(&self, record: &str, stored: Vec<u8>, sealed: bool) -> DbResult<String> {
        let plain = if sealed {
            let key = self.key.as_ref().ok_or_else(|| {
                DbError::Secret(format!("{record} is sealed: start the orchestrator with SMARTLIC_DATA_KEY set"))
            })?;
            key.open(record, &stored)
                .ok_or_else(|| DbError::Secret(format!("{record} does not open with this SMARTLIC_DATA_KEY")))?
        } else {
            stored
        };
        String::from_utf8(plain).map_err(|_| DbError::Secret(format!("{record} is not text")))
    }

    // ---- accounts ------------------------------------------------------------------------

    pub fn insert_account(&self, new: NewAccount, now: Timestamp) -> DbResult<Account> {
        let (secret, sealed) = self.seal(&format!("account {} client secret", new.name), &new.client_secret)?;
        let conn = self.conn();
        conn.execute(
            "INSERT INTO accounts (name, kind, base_url, ca_pem, client_id, client_secret, secret_sealed, transport, \
             operational_va, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                new.name,
                new.kind.as_str(),
                new.base_url,
                new.ca_pem,
                new.client_id,
                secret,
                sealed,
                transport_json(&new.transport),
                new.operational_va,
                now.0
            ],
        )
        .map_err(|e| unique(e, format!("an account named {} exists already", new.name)))?;
        let id = conn.last_insert_rowid();
        drop(conn);
        self.account_by_id(id)
    }

    pub fn accounts(&self) -> DbResult<Vec<Account>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM accounts ORDER BY name")?;
        let rows = stmt.query_map([], account_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn account(&self, name: &str) -> DbResult<Account> {
        let conn = self.conn();
        conn.query_row("SELECT * FROM accounts WHERE name = ?1", [name], account_row)
            .optional()?
            .ok_or_else(|| DbError::NotFound(format!("no account named {name}")))
    }

    pub fn account_by_id(&self, id: i64) -> DbResult<Account> {
        let conn = self.conn();
        conn.query_row("SELECT * FROM accounts WHERE id = ?1", [id], account_row)
            .optional()?
            .ok_or_else(|| DbError::NotFound(format!("no account with id {id}")))
    }

    /// The account's client secret, in clear, for the token request only.
    pub fn account_secret(&self, account: &Account) -> DbResult<String> {
        let (stored, sealed): (Vec<u8>, bool) = self.conn().query_row(
            "SELECT client_secret, secret_sealed FROM accounts WHERE id = ?1",
            [account.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        self.open_secret(&format!("account {} client secret", account.name), stored, sealed)
    }

    /// Replaces the account's client credentials (the seed's recommendation for `CSSM1011`).
    pub fn set_credentials(&self, account: &Account, client_id: &str, client_secret: &str) -> DbResult<()> {
        let (secret, sealed) = self.seal(&format!("account {} client secret", account.name), client_secret)?;
        self.conn().execute(
            "UPDATE accounts SET client_id = ?2, client_secret = ?3, secret_sealed = ?4 WHERE id = ?1",
            params![account.id, client_id, secret, sealed],
        )?;
        Ok(())
    }

    pub fn set_operational_va(&self, account: &Account, va: Option<&str>) -> DbResult<()> {
        self.conn().execute("UPDATE accounts SET operational_va = ?2 WHERE id = ?1", params![account.id, va])?;
        Ok(())
    }

    /// Replaces what the last sync found for `account` by what this one found, in one
    /// transaction; license modes of virtual accounts still there are kept, cached tokens dropped.
    pub fn store_sync(
        &self,
        account: &Account,
        vas: &[(String, bool)],
        licenses: &[(License, String)],
        now: Timestamp,
    ) -> DbResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let modes: Vec<(String, Option<String>)> = {
            let mut stmt = tx.prepare("SELECT name, license_mode FROM virtual_accounts WHERE account_id = ?1")?;
            let rows = stmt.query_map([account.id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            rows
        };
        tx.execute("DELETE FROM virtual_accounts WHERE account_id = ?1", [account.id])?;
        tx.execute("DELETE FROM licenses WHERE account_id = ?1", [account.id])?;
        for (name, is_default) in vas {
            let mode = modes.iter().find(|(n, _)| n == name).and_then(|(_, m)| m.clone());
            tx.execute(
                "INSERT INTO virtual_accounts (account_id, name, is_default, license_mode) VALUES (?1, ?2, ?3, ?4)",
                params![account.id, name, is_default, mode],
            )?;
        }
        for (l, details) in licenses {
            tx.execute(
                "INSERT OR REPLACE INTO licenses (account_id, virtual_account, license, quantity, in_use, available, \
                 status, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![account.id, l.virtual_account, l.license, l.quantity, l.in_use, l.available, l.status, details],
            )?;
        }
        tx.execute("UPDATE accounts SET last_sync_ms = ?2 WHERE id = ?1", params![account.id, now.0])?;
        tx.commit()?;
        Ok(())
    }

    pub fn virtual_accounts(&self, account: &Account) -> DbResult<Vec<VirtualAccount>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, is_default, license_mode FROM virtual_accounts WHERE account_id = ?1 ORDER BY name",
        )?;
        let rows = stmt
            .query_map([account.id], |r| {
                Ok(VirtualAccount { name: r.get(0)?, is_default: r.get(1)?, license_mode: r.get(2)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn virtual_account(&self, account: &Account, name: &str) -> DbResult<Option<VirtualAccount>> {
        Ok(self.virtual_accounts(account)?.into_iter().find(|v| v.name == name))
    }

    /// Sets a virtual account's license mode; refused while a cluster is assigned to it (seed 002,
    /// "Edit Virtual Account").
    pub fn set_license_mode(&self, account: &Account, va: &str, mode: &str) -> DbResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let assigned: i64 = tx.query_row(
            "SELECT COUNT(*) FROM clusters WHERE account_id = ?1 AND virtual_account = ?2",
            params![account.id, va],
            |r| r.get(0),
        )?;
        if assigned > 0 {
            return Err(DbError::Conflict(format!(
                "{assigned} cluster(s) are assigned to {va}: unassign them before changing its license mode"
            )));
        }
        let changed = tx.execute(
            "UPDATE virtual_accounts SET license_mode = ?3 WHERE account_id = ?1 AND name = ?2",
            params![account.id, va, mode],
        )?;
        if changed == 0 {
            return Err(DbError::NotFound(format!(
                "no virtual account {va} in {} (as of its last sync: run a sync)",
                account.name
            )));
        }
        tx.commit()?;
        Ok(())
    }

    /// The registration token kept for a virtual account, while it has not expired.
    pub fn va_token(&self, account: &Account, va: &str, now: Timestamp) -> DbResult<Option<String>> {
        let row: Option<(Option<Vec<u8>>, bool, Option<i64>)> = self
            .conn()
            .query_row(
                "SELECT token, token_sealed, token_expires_ms FROM virtual_accounts WHERE account_id = ?1 AND name = ?2",
                params![account.id, va],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            Some((Some(token), sealed, Some(expires))) if expires > now.0 => {
                Ok(Some(self.open_secret(&format!("token of {va}@{}", account.name), token, sealed)?))
            }
            _ => Ok(None),
        }
    }

    /// Keeps (Some) or forgets (None) a virtual account's registration token.
    pub fn set_va_token(&self, account: &Account, va: &str, token: Option<(&str, Timestamp)>) -> DbResult<()> {
        let (stored, sealed, expires) = match token {
            Some((text, expires)) => {
                let (s, sealed) = self.seal(&format!("token of {va}@{}", account.name), text)?;
                (Some(s), sealed, Some(expires.0))
            }
            None => (None, false, None),
        };
        self.conn().execute(
            "UPDATE virtual_accounts SET token = ?3, token_sealed = ?4, token_expires_ms = ?5 \
             WHERE account_id = ?1 AND name = ?2",
            params![account.id, va, stored, sealed, expires],
        )?;
        Ok(())
    }

    pub fn licenses(&self, account: &Account) -> DbResult<Vec<License>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT virtual_account, license, quantity, in_use, available, status FROM licenses \
             WHERE account_id = ?1 ORDER BY virtual_account, license",
        )?;
        let rows = stmt
            .query_map([account.id], |r| {
                Ok(License {
                    virtual_account: r.get(0)?,
                    license: r.get(1)?,
                    quantity: r.get(2)?,
                    in_use: r.get(3)?,
                    available: r.get(4)?,
                    status: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    // ---- customers, clusters, nodes ------------------------------------------------------

    pub fn insert_customer(
        &self,
        name: &str,
        account: &Account,
        transport: Option<Transport>,
        now: Timestamp,
    ) -> DbResult<Customer> {
        self.conn()
            .execute(
                "INSERT INTO customers (name, account_id, transport, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![name, account.id, transport_json(&transport), now.0],
            )
            .map_err(|e| unique(e, format!("a customer named {name} exists already")))?;
        self.customer(name)
    }

    pub fn customers(&self) -> DbResult<Vec<Customer>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.name, a.name, c.transport FROM customers c JOIN accounts a ON a.id = c.account_id \
             ORDER BY c.name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Customer { id: r.get(0)?, name: r.get(1)?, account: r.get(2)?, transport: transport_of(r.get(3)?) })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn customer(&self, name: &str) -> DbResult<Customer> {
        self.customers()?
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| DbError::NotFound(format!("no customer named {name}")))
    }

    /// A cluster with its nodes, in one transaction.
    pub fn insert_cluster(
        &self,
        customer: &Customer,
        name: &str,
        application: Application,
        transport: Option<Transport>,
        nodes: &[NewNode],
        now: Timestamp,
    ) -> DbResult<Cluster> {
        let sealed: Vec<(Option<Vec<u8>>, bool)> = nodes
            .iter()
            .map(|n| match &n.api_token {
                Some(t) => self.seal(&format!("node {name}/{} token", n.name), t).map(|(s, b)| (Some(s), b)),
                None => Ok((None, false)),
            })
            .collect::<DbResult<_>>()?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO clusters (customer_id, name, application, transport, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![customer.id, name, application.as_str(), transport_json(&transport), now.0],
        )
        .map_err(|e| unique(e, format!("a cluster named {name} exists already")))?;
        let id = tx.last_insert_rowid();
        for (n, (token, token_sealed)) in nodes.iter().zip(sealed) {
            tx.execute(
                "INSERT INTO nodes (cluster_id, name, api_url, api_token, token_sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, n.name, n.api_url, token, token_sealed],
            )
            .map_err(|e| unique(e, format!("node {} is listed twice", n.name)))?;
        }
        tx.commit()?;
        drop(conn);
        self.cluster(name)
    }

    pub fn add_node(&self, cluster: &Cluster, node: &NewNode) -> DbResult<Node> {
        let (token, sealed) = match &node.api_token {
            Some(t) => {
                self.seal(&format!("node {}/{} token", cluster.name, node.name), t).map(|(s, b)| (Some(s), b))?
            }
            None => (None, false),
        };
        self.conn()
            .execute(
                "INSERT INTO nodes (cluster_id, name, api_url, api_token, token_sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cluster.id, node.name, node.api_url, token, sealed],
            )
            .map_err(|e| unique(e, format!("cluster {} has a node named {} already", cluster.name, node.name)))?;
        self.nodes(cluster)?
            .into_iter()
            .find(|n| n.name == node.name)
            .ok_or_else(|| DbError::NotFound(node.name.clone()))
    }

    pub fn clusters(&self) -> DbResult<Vec<Cluster>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{CLUSTER_SELECT} ORDER BY c.name"))?;
        let rows = stmt.query_map([], cluster_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn cluster(&self, name: &str) -> DbResult<Cluster> {
        let conn = self.conn();
        conn.query_row(&format!("{CLUSTER_SELECT} WHERE c.name = ?1"), [name], cluster_row)
            .optional()?
            .ok_or_else(|| DbError::NotFound(format!("no cluster named {name}")))
    }

    pub fn nodes(&self, cluster: &Cluster) -> DbResult<Vec<Node>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT * FROM nodes WHERE cluster_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([cluster.id], node_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// A node's product REST API token, in clear, for the call only.
    pub fn node_token(&self, cluster: &Cluster, node: &Node) -> DbResult<Option<String>> {
        let (stored, sealed): (Option<Vec<u8>>, bool) =
            self.conn().query_row("SELECT api_token, token_sealed FROM nodes WHERE id = ?1", [node.id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        stored.map(|s| self.open_secret(&format!("node {}/{} token", cluster.name, node.name), s, sealed)).transpose()
    }

    pub fn set_node_state(
        &self,
        node: &Node,
        state: &str,
        va: Option<&str>,
        udi: Option<(&str, &str)>,
    ) -> DbResult<()> {
        self.conn().execute(
            "UPDATE nodes SET state = ?2, virtual_account = ?3, udi_pid = COALESCE(?4, udi_pid), \
             udi_sn = COALESCE(?5, udi_sn) WHERE id = ?1",
            params![node.id, state, va, udi.map(|u| u.0), udi.map(|u| u.1)],
        )?;
        Ok(())
    }

    /// Records the cluster's assignment (None: unassigned) and how it was made.
    pub fn set_assignment(&self, cluster: &Cluster, to: Option<(&Account, &str)>, mode: &str) -> DbResult<()> {
        self.conn().execute(
            "UPDATE clusters SET account_id = ?2, virtual_account = ?3, assign_mode = ?4 WHERE id = ?1",
            params![cluster.id, to.map(|t| t.0.id), to.map(|t| t.1), mode],
        )?;
        Ok(())
    }

    // ---- jobs ----------------------------------------------------------------------------

    pub fn insert_job(&self, kind: &str, entity: &str, request: &serde_json::Value, now: Timestamp) -> DbResult<Job> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO jobs (kind, status, request, entity, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind, status::QUEUED, request.to_string(), entity, now.0],
        )?;
        let id = conn.last_insert_rowid();
        drop(conn);
        self.job(id)
    }

    /// Jobs newest first, those of `entity` only when given.
    pub fn jobs(&self, entity: Option<&str>) -> DbResult<Vec<Job>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM jobs WHERE ?1 IS NULL OR entity = ?1 ORDER BY id DESC LIMIT 1000")?;
        let rows = stmt.query_map([entity], job_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn job(&self, id: i64) -> DbResult<Job> {
        let conn = self.conn();
        let mut job = conn
            .query_row("SELECT * FROM jobs WHERE id = ?1", [id], job_row)
            .optional()?
            .ok_or_else(|| DbError::NotFound(format!("no job {id}")))?;
        let mut stmt = conn.prepare("SELECT node, ok, code, message FROM job_nodes WHERE job_id = ?1 ORDER BY node")?;
        job.nodes = stmt
            .query_map([id], |r| {
                Ok(NodeResult { node: r.get(0)?, ok: r.get(1)?, code: r.get(2)?, message: r.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok(job)
    }

    /// Jobs a stop interrupted go back to the queue: they run again from the start.
    pub fn requeue_interrupted(&self) -> DbResult<usize> {
        Ok(self.conn().execute(
            "UPDATE jobs SET status = ?1, started_ms = NULL WHERE status = ?2",
            params![status::QUEUED, status::IN_PROGRESS],
        )?)
    }

    /// The oldest queued job, marked In Progress.
    pub fn claim_next(&self, now: Timestamp) -> DbResult<Option<Job>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id: Option<i64> = tx
            .query_row("SELECT id FROM jobs WHERE status = ?1 ORDER BY id LIMIT 1", [status::QUEUED], |r| r.get(0))
            .optional()?;
        let Some(id) = id else { return Ok(None) };
        tx.execute(
            "UPDATE jobs SET status = ?2, started_ms = ?3 WHERE id = ?1",
            params![id, status::IN_PROGRESS, now.0],
        )?;
        tx.commit()?;
        drop(conn);
        self.job(id).map(Some)
    }

    /// Whether a job of `kind` on `entity` waits or runs.
    pub fn job_pending(&self, kind: &str, entity: &str) -> DbResult<bool> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM jobs WHERE kind = ?1 AND entity = ?2 AND status IN (?3, ?4)",
            params![kind, entity, status::QUEUED, status::IN_PROGRESS],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Ends a job with its status, details, the seed's code for its cause, and per-node results.
    pub fn finish_job(
        &self,
        id: i64,
        status: &str,
        details: &str,
        cause: Option<Cause>,
        nodes: &[NodeResult],
        now: Timestamp,
    ) -> DbResult<()> {
        let entry = cause.map(Cause::entry);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE jobs SET status = ?2, details = ?3, error_code = ?4, error_message = ?5, recommended_action = ?6, \
             completed_ms = ?7 WHERE id = ?1",
            params![
                id,
                status,
                details,
                entry.map(|e| e.code),
                entry.map(|e| e.message),
                entry.map(|e| e.recommendation),
                now.0
            ],
        )?;
        tx.execute("DELETE FROM job_nodes WHERE job_id = ?1", [id])?;
        for n in nodes {
            tx.execute(
                "INSERT OR REPLACE INTO job_nodes (job_id, node, ok, code, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, n.node, n.ok, n.code, n.message],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_account(secret: &str) -> NewAccount {
        NewAccount {
            name: "example.com".into(),
            kind: AccountKind::Cloud,
            base_url: "https://manager".into(),
            ca_pem: String::new(),
            client_id: "fleet".into(),
            client_secret: secret.into(),
            transport: None,
            operational_va: None,
        }
    }

    #[test]
    fn secrets_are_sealed_with_the_data_key_and_open_only_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE_FILE);
        let key = DataKey::from_secret("a data key of at least thirty-two characters").unwrap();
        let db = Db::open(&path, Some(key.clone())).unwrap();
        let account = db.insert_account(new_account("the-client-secret"), Timestamp(0)).unwrap();
        assert_eq!(db.account_secret(&account).unwrap(), "the-client-secret");
        drop(db);
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(17).any(|w| w == b"the-client-secret"), "the file holds no clear secret");
        let without = Db::open(&path, None).unwrap();
        let refused = without.account_secret(&account).unwrap_err().to_string();
        assert!(refused.contains("SMARTLIC_DATA_KEY"), "{refused}");
        let other = DataKey::from_secret("another data key of thirty-two characters!").unwrap();
        assert!(Db::open(&path, Some(other)).unwrap().account_secret(&account).is_err());
        assert_eq!(Db::open(&path, Some(key)).unwrap().account_secret(&account).unwrap(), "the-client-secret");
    }

    #[test]
    fn a_job_interrupted_by_a_stop_runs_again_after_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DATABASE_FILE);
        let db = Db::open(&path, None).unwrap();
        let job = db.insert_job("sync", "example.com", &json!({"account": "example.com"}), Timestamp(1)).unwrap();
        assert_eq!(db.claim_next(Timestamp(2)).unwrap().unwrap().status, status::IN_PROGRESS);
        assert!(db.claim_next(Timestamp(2)).unwrap().is_none(), "one job, claimed once");
        drop(db);
        let db = Db::open(&path, None).unwrap();
        assert_eq!(db.requeue_interrupted().unwrap(), 1);
        let again = db.claim_next(Timestamp(3)).unwrap().unwrap();
        assert_eq!((again.id, again.request["account"].as_str()), (job.id, Some("example.com")));
        db.finish_job(again.id, status::FAILED, "no", Some(Cause::WrongCredentials), &[], Timestamp(4)).unwrap();
        let done = db.job(again.id).unwrap();
        assert_eq!((done.error_code.as_deref(), done.status.as_str()), (Some("CSSM1011"), status::FAILED));
    }
}
