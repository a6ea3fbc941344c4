//! The embedded SQLite backend: one file, WAL journal, full synchronous commits so that an
//! acknowledged change survives a crash or power loss.

use crate::*;
use smartlic_core::{LicenseTerm, Role};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pool: SqlitePool,
}

type Tx<'a> = Transaction<'a, Sqlite>;

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn begin(&self) -> Result<Tx<'_>> {
        // BEGIN IMMEDIATE takes the write lock up front, so read-then-write transactions
        // never fail half-way on a lock upgrade.
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

const ACCOUNT: &str = "SELECT id, domain, name, created_at FROM smart_accounts";
const VIRTUAL_ACCOUNT: &str = "SELECT id, account_id, name, description, is_default, created_at FROM virtual_accounts";
const PRINCIPAL: &str =
    "SELECT id, kind, name, secret_hash, role, account_id, virtual_account_id, created_at FROM principals";
const LICENSE: &str = "SELECT id, virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at FROM licenses";
const TOKEN: &str = "SELECT id, virtual_account_id, token, description, created_at, expires_at, max_uses, uses, export_controlled, revoked_at, created_by FROM registration_tokens";
const INSTANCE: &str = "SELECT id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released FROM instances";
const EVENT: &str = "SELECT id, at, actor, kind, account_id, virtual_account_id, object, detail FROM events";
const ALERT: &str = "SELECT id, kind, severity, account_id, virtual_account_id, object, message, raised_at FROM alerts";

fn ts(row: &SqliteRow, col: &str) -> Timestamp {
    Timestamp(row.get::<i64, _>(col))
}

fn opt_ts(row: &SqliteRow, col: &str) -> Option<Timestamp> {
    row.get::<Option<i64>, _>(col).map(Timestamp)
}

fn account(row: SqliteRow) -> Account {
    Account { id: row.get("id"), domain: row.get("domain"), name: row.get("name"), created_at: ts(&row, "created_at") }
}

fn virtual_account(row: SqliteRow) -> VirtualAccount {
    VirtualAccount {
        id: row.get("id"),
        account_id: row.get("account_id"),
        name: row.get("name"),
        description: row.get("description"),
        is_default: row.get("is_default"),
        created_at: ts(&row, "created_at"),
    }
}

fn principal(row: SqliteRow) -> Result<Principal> {
    let role: String = row.get("role");
    let kind: String = row.get("kind");
    Ok(Principal {
        id: row.get("id"),
        kind: if kind == "user" { PrincipalKind::User } else { PrincipalKind::ApiClient },
        name: row.get("name"),
        secret_hash: row.get("secret_hash"),
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
        account_id: row.get("account_id"),
        virtual_account_id: row.get("virtual_account_id"),
        created_at: ts(&row, "created_at"),
    })
}

fn license(row: SqliteRow) -> Result<LicenseRecord> {
    let kind: String = row.get("kind");
    let kind = LicenseKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(LicenseRecord {
        id: row.get("id"),
        virtual_account_id: row.get("virtual_account_id"),
        tag: row.get("tag"),
        sku: row.get("sku"),
        quantity: row.get("quantity"),
        term: LicenseTerm { kind, start: opt_ts(&row, "start_at"), end: opt_ts(&row, "end_at") },
        subscription_id: row.get("subscription_id"),
        created_at: ts(&row, "created_at"),
    })
}

fn token(row: SqliteRow) -> RegistrationToken {
    RegistrationToken {
        id: row.get("id"),
        virtual_account_id: row.get("virtual_account_id"),
        token: row.get("token"),
        description: row.get("description"),
        created_at: ts(&row, "created_at"),
        expires_at: ts(&row, "expires_at"),
        max_uses: row.get("max_uses"),
        uses: row.get("uses"),
        export_controlled: row.get("export_controlled"),
        revoked_at: opt_ts(&row, "revoked_at"),
        created_by: row.get("created_by"),
    }
}

fn instance(row: SqliteRow) -> Instance {
    Instance {
        id: row.get("id"),
        virtual_account_id: row.get("virtual_account_id"),
        udi_pid: row.get("udi_pid"),
        udi_sn: row.get("udi_sn"),
        hostname: row.get("hostname"),
        registered_at: ts(&row, "registered_at"),
        last_contact_at: ts(&row, "last_contact_at"),
        certificate: CertificateFacts {
            serial: row.get("cert_serial"),
            expires_at: ts(&row, "cert_expires_at"),
            key_algorithm: row.get("key_algorithm"),
            public_key: row.get("public_key"),
        },
        export_controlled: row.get("export_controlled"),
        usage_released: row.get("usage_released"),
    }
}

fn event(row: SqliteRow) -> Event {
    Event {
        id: row.get("id"),
        at: ts(&row, "at"),
        actor: row.get("actor"),
        kind: row.get("kind"),
        account_id: row.get("account_id"),
        virtual_account_id: row.get("virtual_account_id"),
        object: row.get("object"),
        detail: row.get("detail"),
    }
}

fn alert(row: SqliteRow) -> Alert {
    Alert {
        id: row.get("id"),
        kind: row.get("kind"),
        severity: row.get("severity"),
        account_id: row.get("account_id"),
        virtual_account_id: row.get("virtual_account_id"),
        object: row.get("object"),
        message: row.get("message"),
        raised_at: ts(&row, "raised_at"),
    }
}

/// A unique-constraint failure becomes a conflict the caller can explain.
fn unique_or(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(err),
    }
}

async fn append_event(tx: &mut Tx<'_>, e: &NewEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (at, actor, kind, account_id, virtual_account_id, object, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.at.0)
    .bind(&e.actor)
    .bind(&e.kind)
    .bind(e.account_id)
    .bind(e.virtual_account_id)
    .bind(&e.object)
    .bind(&e.detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Builds an event about something inside a virtual account.
#[allow(clippy::too_many_arguments)]
async fn log(
    tx: &mut Tx<'_>,
    now: Timestamp,
    actor: &str,
    kind: &str,
    account_id: Option<i64>,
    virtual_account_id: Option<i64>,
    object: &str,
    detail: String,
) -> Result<()> {
    let e = NewEvent {
        at: now,
        actor: actor.into(),
        kind: kind.into(),
        account_id,
        virtual_account_id,
        object: object.into(),
        detail,
    };
    append_event(tx, &e).await
}

async fn account_of_pool(tx: &mut Tx<'_>, virtual_account_id: i64) -> Result<i64> {
    sqlx::query_scalar("SELECT account_id FROM virtual_accounts WHERE id = $1")
        .bind(virtual_account_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("virtual account {virtual_account_id} does not exist")))
}

/// Adds `sign` × the usage of an instance to its pool's counters.
async fn shift_pool_usage(
    tx: &mut Tx<'_>,
    virtual_account_id: i64,
    usage: &BTreeMap<String, i64>,
    sign: i64,
) -> Result<()> {
    for (tag, count) in usage {
        if *count == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO pool_usage (virtual_account_id, tag, in_use) VALUES ($1, $2, $3)
             ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = pool_usage.in_use + excluded.in_use",
        )
        .bind(virtual_account_id)
        .bind(tag)
        .bind(sign * count)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn usage_of(tx: &mut Tx<'_>, id: &str) -> Result<BTreeMap<String, i64>> {
    let rows = sqlx::query("SELECT tag, count FROM instance_usage WHERE instance_id = $1")
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.into_iter().map(|r| (r.get("tag"), r.get("count"))).collect())
}

async fn counts_in(tx: &mut Tx<'_>, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
    let purchased = sqlx::query(
        "SELECT tag, SUM(quantity) AS quantity FROM licenses WHERE virtual_account_id = $1
         AND (start_at IS NULL OR start_at <= $2) AND (end_at IS NULL OR end_at > $2) GROUP BY tag",
    )
    .bind(virtual_account_id)
    .bind(now.0)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| (r.get("tag"), r.get("quantity")))
    .collect();
    let in_use = sqlx::query("SELECT tag, in_use FROM pool_usage WHERE virtual_account_id = $1 AND in_use <> 0")
        .bind(virtual_account_id)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| (r.get("tag"), r.get("in_use")))
        .collect();
    Ok(PoolCounts { purchased, in_use })
}

async fn fetch_instance(tx: &mut Tx<'_>, id: &str) -> Result<Instance> {
    sqlx::query(&format!("{INSTANCE} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .map(instance)
        .ok_or_else(|| StoreError::NotFound(format!("product instance {id} does not exist")))
}

/// Deletes an instance inside a transaction, giving its usage back unless already released.
async fn delete_instance(tx: &mut Tx<'_>, found: &Instance) -> Result<()> {
    if !found.usage_released {
        let usage = usage_of(tx, &found.id).await?;
        shift_pool_usage(tx, found.virtual_account_id, &usage, -1).await?;
    }
    sqlx::query("DELETE FROM instance_usage WHERE instance_id = $1").bind(&found.id).execute(&mut **tx).await?;
    sqlx::query("DELETE FROM instances WHERE id = $1").bind(&found.id).execute(&mut **tx).await?;
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, domain: &str, name: &str, actor: &str, now: Timestamp) -> Result<Account> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO smart_accounts (domain, name, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(domain)
        .bind(name)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || format!("smart account {domain} exists already")))?;
        let va: i64 = sqlx::query_scalar(
            "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, TRUE, $4) RETURNING id",
        )
        .bind(id)
        .bind(DEFAULT_VIRTUAL_ACCOUNT)
        .bind("Default virtual account")
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await?;
        log(&mut tx, now, actor, "account.created", Some(id), None, domain, format!("smart account '{name}'")).await?;
        log(&mut tx, now, actor, "virtual-account.created", Some(id), Some(va), DEFAULT_VIRTUAL_ACCOUNT, String::new())
            .await?;
        tx.commit().await?;
        Ok(Account { id, domain: domain.into(), name: name.into(), created_at: now })
    }

    async fn account(&self, domain: &str) -> Result<Option<Account>> {
        Ok(sqlx::query(&format!("{ACCOUNT} WHERE domain = $1"))
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?
            .map(account))
    }

    async fn account_by_id(&self, id: i64) -> Result<Option<Account>> {
        Ok(sqlx::query(&format!("{ACCOUNT} WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?.map(account))
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        Ok(sqlx::query(&format!("{ACCOUNT} ORDER BY domain"))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(account)
            .collect())
    }

    async fn create_virtual_account(
        &self,
        acct: &Account,
        name: &str,
        description: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<VirtualAccount> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO virtual_accounts (account_id, name, description, is_default, created_at) VALUES ($1, $2, $3, FALSE, $4) RETURNING id",
        )
        .bind(acct.id)
        .bind(name)
        .bind(description)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || format!("virtual account '{name}' exists already in {}", acct.domain)))?;
        log(&mut tx, now, actor, "virtual-account.created", Some(acct.id), Some(id), name, description.to_string())
            .await?;
        tx.commit().await?;
        Ok(VirtualAccount {
            id,
            account_id: acct.id,
            name: name.into(),
            description: description.into(),
            is_default: false,
            created_at: now,
        })
    }

    async fn virtual_account(&self, account_id: i64, name: &str) -> Result<Option<VirtualAccount>> {
        Ok(sqlx::query(&format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 AND name = $2"))
            .bind(account_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(virtual_account))
    }

    async fn virtual_account_by_id(&self, id: i64) -> Result<Option<VirtualAccount>> {
        Ok(sqlx::query(&format!("{VIRTUAL_ACCOUNT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(virtual_account))
    }

    async fn virtual_accounts(&self, account_id: i64) -> Result<Vec<VirtualAccount>> {
        Ok(sqlx::query(&format!("{VIRTUAL_ACCOUNT} WHERE account_id = $1 ORDER BY is_default DESC, name"))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(virtual_account)
            .collect())
    }

    async fn all_virtual_accounts(&self) -> Result<Vec<VirtualAccount>> {
        Ok(sqlx::query(&format!("{VIRTUAL_ACCOUNT} ORDER BY id"))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(virtual_account)
            .collect())
    }

    async fn create_principal(&self, new: NewPrincipal, actor: &str, now: Timestamp) -> Result<Principal> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO principals (kind, name, secret_hash, role, account_id, virtual_account_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(new.kind.as_str())
        .bind(&new.name)
        .bind(&new.secret_hash)
        .bind(new.role.as_str())
        .bind(new.account_id)
        .bind(new.virtual_account_id)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || format!("a user or API client named '{}' exists already", new.name)))?;
        let kind = format!("{}.created", new.kind.as_str());
        log(&mut tx, now, actor, &kind, new.account_id, new.virtual_account_id, &new.name, new.role.as_str().into())
            .await?;
        tx.commit().await?;
        Ok(Principal {
            id,
            kind: new.kind,
            name: new.name,
            secret_hash: new.secret_hash,
            role: new.role,
            account_id: new.account_id,
            virtual_account_id: new.virtual_account_id,
            created_at: now,
        })
    }

    async fn principal(&self, name: &str) -> Result<Option<Principal>> {
        sqlx::query(&format!("{PRINCIPAL} WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(principal)
            .transpose()
    }

    async fn principals(&self, account_id: Option<i64>) -> Result<Vec<Principal>> {
        let rows = match account_id {
            Some(a) => {
                sqlx::query(&format!("{PRINCIPAL} WHERE account_id = $1 ORDER BY name"))
                    .bind(a)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query(&format!("{PRINCIPAL} ORDER BY name")).fetch_all(&self.pool).await?,
        };
        rows.into_iter().map(principal).collect()
    }

    async fn set_principal_secret(&self, id: i64, secret_hash: &str) -> Result<()> {
        sqlx::query("UPDATE principals SET secret_hash = $1 WHERE id = $2")
            .bind(secret_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_access_token(&self, token_hash: &str, principal_id: i64, expires_at: Timestamp) -> Result<()> {
        sqlx::query("INSERT INTO access_tokens (token_hash, principal_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(principal_id)
            .bind(expires_at.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn principal_for_access_token(&self, token_hash: &str, now: Timestamp) -> Result<Option<Principal>> {
        let sql = format!(
            "{PRINCIPAL} WHERE id = (SELECT principal_id FROM access_tokens WHERE token_hash = $1 AND expires_at > $2)"
        );
        sqlx::query(&sql).bind(token_hash).bind(now.0).fetch_optional(&self.pool).await?.map(principal).transpose()
    }

    async fn add_license(&self, new: NewLicense, actor: &str, now: Timestamp) -> Result<LicenseRecord> {
        let mut tx = self.begin().await?;
        let account_id = account_of_pool(&mut tx, new.virtual_account_id).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(new.virtual_account_id)
        .bind(&new.tag)
        .bind(&new.sku)
        .bind(new.quantity)
        .bind(new.term.kind.as_str())
        .bind(new.term.start.map(|t| t.0))
        .bind(new.term.end.map(|t| t.0))
        .bind(&new.subscription_id)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await?;
        let detail = format!("{} {} license(s), SKU {}", new.quantity, new.term.kind.as_str(), new.sku);
        log(&mut tx, now, actor, "license.added", Some(account_id), Some(new.virtual_account_id), &new.tag, detail)
            .await?;
        tx.commit().await?;
        Ok(LicenseRecord {
            id,
            virtual_account_id: new.virtual_account_id,
            tag: new.tag,
            sku: new.sku,
            quantity: new.quantity,
            term: new.term,
            subscription_id: new.subscription_id,
            created_at: now,
        })
    }

    async fn licenses(&self, virtual_account_id: i64) -> Result<Vec<LicenseRecord>> {
        sqlx::query(&format!("{LICENSE} WHERE virtual_account_id = $1 ORDER BY tag, id"))
            .bind(virtual_account_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(license)
            .collect()
    }

    async fn transfer_licenses(&self, t: Transfer, actor: &str, now: Timestamp) -> Result<()> {
        let mut tx = self.begin().await?;
        let account_id = account_of_pool(&mut tx, t.from_virtual_account_id).await?;
        let records: Vec<LicenseRecord> = sqlx::query(&format!(
            "{LICENSE} WHERE virtual_account_id = $1 AND tag = $2 AND (start_at IS NULL OR start_at <= $3)
             AND (end_at IS NULL OR end_at > $3) ORDER BY CASE kind WHEN 'perpetual' THEN 0 ELSE 1 END, end_at DESC, id"
        ))
        .bind(t.from_virtual_account_id)
        .bind(&t.tag)
        .bind(now.0)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(license)
        .collect::<Result<_>>()?;
        let records: Vec<_> = records.into_iter().filter(|r| t.kind.is_none_or(|k| r.term.kind == k)).collect();
        let held: i64 = records.iter().map(|r| r.quantity).sum();
        if held < t.quantity {
            return Err(StoreError::Conflict(format!(
                "only {held} license(s) of '{}' can be transferred from this virtual account, {} requested",
                t.tag, t.quantity
            )));
        }
        let mut left = t.quantity;
        for r in records {
            if left == 0 {
                break;
            }
            let take = left.min(r.quantity);
            left -= take;
            if take == r.quantity {
                sqlx::query("UPDATE licenses SET virtual_account_id = $1 WHERE id = $2")
                    .bind(t.to_virtual_account_id)
                    .bind(r.id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query("UPDATE licenses SET quantity = quantity - $1 WHERE id = $2")
                    .bind(take)
                    .bind(r.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO licenses (virtual_account_id, tag, sku, quantity, kind, start_at, end_at, subscription_id, created_at)
                     SELECT $1, tag, sku, $2, kind, start_at, end_at, subscription_id, created_at FROM licenses WHERE id = $3",
                )
                .bind(t.to_virtual_account_id)
                .bind(take)
                .bind(r.id)
                .execute(&mut *tx)
                .await?;
            }
        }
        let detail = format!("{} moved to virtual account {}", t.quantity, t.to_virtual_account_id);
        log(
            &mut tx,
            now,
            actor,
            "license.transferred",
            Some(account_id),
            Some(t.from_virtual_account_id),
            &t.tag,
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pool_counts(&self, virtual_account_id: i64, now: Timestamp) -> Result<PoolCounts> {
        let mut tx = self.pool.begin().await?;
        let counts = counts_in(&mut tx, virtual_account_id, now).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn create_token(&self, new: NewToken, actor: &str, now: Timestamp) -> Result<RegistrationToken> {
        let mut tx = self.begin().await?;
        let account_id = account_of_pool(&mut tx, new.virtual_account_id).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO registration_tokens (virtual_account_id, token, token_hash, description, created_at, expires_at,
             max_uses, uses, export_controlled, revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, NULL, $9) RETURNING id",
        )
        .bind(new.virtual_account_id)
        .bind(&new.token)
        .bind(&new.token_hash)
        .bind(&new.description)
        .bind(now.0)
        .bind(new.expires_at.0)
        .bind(new.max_uses)
        .bind(new.export_controlled)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let detail = match new.description.as_str() {
            "" => format!("expires {}", new.expires_at),
            d => format!("expires {}: {d}", new.expires_at),
        };
        let short: String = new.token.chars().take(12).collect();
        log(
            &mut tx,
            now,
            actor,
            "token.created",
            Some(account_id),
            Some(new.virtual_account_id),
            &format!("{short}…"),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(RegistrationToken {
            id,
            virtual_account_id: new.virtual_account_id,
            token: new.token,
            description: new.description,
            created_at: now,
            expires_at: new.expires_at,
            max_uses: new.max_uses,
            uses: 0,
            export_controlled: new.export_controlled,
            revoked_at: None,
            created_by: actor.into(),
        })
    }

    async fn tokens(&self, virtual_account_id: i64) -> Result<Vec<RegistrationToken>> {
        Ok(sqlx::query(&format!("{TOKEN} WHERE virtual_account_id = $1 ORDER BY id"))
            .bind(virtual_account_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(token)
            .collect())
    }

    async fn revoke_token(
        &self,
        virtual_account_id: i64,
        text: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<RegistrationToken> {
        let mut tx = self.begin().await?;
        let found = sqlx::query(&format!("{TOKEN} WHERE virtual_account_id = $1 AND token = $2"))
            .bind(virtual_account_id)
            .bind(text)
            .fetch_optional(&mut *tx)
            .await?
            .map(token)
            .ok_or_else(|| StoreError::NotFound("no such token in this virtual account".into()))?;
        if found.revoked_at.is_some() {
            return Err(StoreError::Conflict("the token is revoked already".into()));
        }
        sqlx::query("UPDATE registration_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(found.id)
            .execute(&mut *tx)
            .await?;
        let account_id = account_of_pool(&mut tx, virtual_account_id).await?;
        let short: String = found.token.chars().take(12).collect();
        log(
            &mut tx,
            now,
            actor,
            "token.revoked",
            Some(account_id),
            Some(virtual_account_id),
            &format!("{short}…"),
            String::new(),
        )
        .await?;
        tx.commit().await?;
        Ok(RegistrationToken { revoked_at: Some(now), ..found })
    }

    async fn register_instance(
        &self,
        r: NewInstance,
        now: Timestamp,
    ) -> std::result::Result<Registered, RegisterRefusal> {
        let mut tx = self.begin().await?;
        let tok = sqlx::query(&format!("{TOKEN} WHERE token_hash = $1"))
            .bind(&r.token_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .map(token)
            .ok_or(RegisterRefusal::InvalidToken)?;
        if tok.facts().status_at(now) != smartlic_core::TokenStatus::Active {
            return Err(RegisterRefusal::InvalidToken);
        }
        let existing = sqlx::query(&format!("{INSTANCE} WHERE udi_pid = $1 AND udi_sn = $2"))
            .bind(&r.udi_pid)
            .bind(&r.udi_sn)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from)?
            .map(instance);
        let replaced = match existing {
            Some(_) if !r.force => return Err(RegisterRefusal::AlreadyRegistered),
            Some(old) => {
                delete_instance(&mut tx, &old).await?;
                Some(old.id)
            }
            None => None,
        };
        sqlx::query("UPDATE registration_tokens SET uses = uses + 1 WHERE id = $1")
            .bind(tok.id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query(
            "INSERT INTO instances (id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at, last_contact_at,
             cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled, usage_released)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11, FALSE)",
        )
        .bind(&r.id)
        .bind(tok.virtual_account_id)
        .bind(&r.udi_pid)
        .bind(&r.udi_sn)
        .bind(&r.hostname)
        .bind(now.0)
        .bind(&r.certificate.serial)
        .bind(r.certificate.expires_at.0)
        .bind(&r.certificate.key_algorithm)
        .bind(&r.certificate.public_key)
        .bind(tok.export_controlled)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let va = sqlx::query(&format!("{VIRTUAL_ACCOUNT} WHERE id = $1"))
            .bind(tok.virtual_account_id)
            .fetch_one(&mut *tx)
            .await
            .map(virtual_account)
            .map_err(StoreError::from)?;
        let acct = sqlx::query(&format!("{ACCOUNT} WHERE id = $1"))
            .bind(va.account_id)
            .fetch_one(&mut *tx)
            .await
            .map(account)
            .map_err(StoreError::from)?;
        let udi = format!("PID:{},SN:{}", r.udi_pid, r.udi_sn);
        let detail = match &replaced {
            Some(old) => format!("instance {} (forced, replaces {old})", r.id),
            None => format!("instance {}", r.id),
        };
        log(&mut tx, now, &udi, "instance.registered", Some(acct.id), Some(va.id), &udi, detail).await?;
        let inst = fetch_instance(&mut tx, &r.id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Registered { instance: inst, virtual_account: va, account: acct, replaced })
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>> {
        Ok(sqlx::query(&format!("{INSTANCE} WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?.map(instance))
    }

    async fn instances(&self, filter: InstanceFilter) -> Result<Vec<Instance>> {
        let rows = match filter {
            InstanceFilter::VirtualAccount(va) => {
                sqlx::query(&format!("{INSTANCE} WHERE virtual_account_id = $1 ORDER BY udi_pid, udi_sn"))
                    .bind(va)
                    .fetch_all(&self.pool)
                    .await?
            }
            InstanceFilter::Account(a) => sqlx::query(&format!(
                "{INSTANCE} WHERE virtual_account_id IN (SELECT id FROM virtual_accounts WHERE account_id = $1) ORDER BY udi_pid, udi_sn"
            ))
            .bind(a)
            .fetch_all(&self.pool)
            .await?,
        };
        Ok(rows.into_iter().map(instance).collect())
    }

    async fn instance_usage(&self, id: &str) -> Result<BTreeMap<String, i64>> {
        let mut tx = self.pool.begin().await?;
        let usage = usage_of(&mut tx, id).await?;
        tx.commit().await?;
        Ok(usage)
    }

    async fn renew_certificate(&self, id: &str, cert: &CertificateFacts, now: Timestamp) -> Result<()> {
        let mut tx = self.begin().await?;
        let found = fetch_instance(&mut tx, id).await?;
        sqlx::query(
            "UPDATE instances SET cert_serial = $1, cert_expires_at = $2, key_algorithm = $3, public_key = $4, last_contact_at = $5 WHERE id = $6",
        )
        .bind(&cert.serial)
        .bind(cert.expires_at.0)
        .bind(&cert.key_algorithm)
        .bind(&cert.public_key)
        .bind(now.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let account_id = account_of_pool(&mut tx, found.virtual_account_id).await?;
        let udi = format!("PID:{},SN:{}", found.udi_pid, found.udi_sn);
        let detail = format!("ID certificate {} valid until {}", cert.serial, cert.expires_at);
        log(&mut tx, now, &udi, "instance.id-renewed", Some(account_id), Some(found.virtual_account_id), &udi, detail)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn report_usage(
        &self,
        id: &str,
        usage: &BTreeMap<String, i64>,
        hostname: Option<&str>,
        now: Timestamp,
    ) -> Result<(Instance, PoolCounts)> {
        let mut tx = self.begin().await?;
        let mut found = fetch_instance(&mut tx, id).await?;
        let old = usage_of(&mut tx, id).await?;
        let wanted: BTreeMap<String, i64> =
            usage.iter().filter(|(_, c)| **c > 0).map(|(t, c)| (t.clone(), *c)).collect();
        // Only the difference touches the pool counters; a released instance comes back whole.
        let mut delta: BTreeMap<String, i64> = BTreeMap::new();
        if found.usage_released {
            delta.clone_from(&wanted);
        } else {
            for (t, c) in &wanted {
                *delta.entry(t.clone()).or_default() += c;
            }
            for (t, c) in &old {
                *delta.entry(t.clone()).or_default() -= c;
            }
        }
        shift_pool_usage(&mut tx, found.virtual_account_id, &delta, 1).await?;
        if old != wanted {
            sqlx::query("DELETE FROM instance_usage WHERE instance_id = $1").bind(id).execute(&mut *tx).await?;
            for (t, c) in &wanted {
                sqlx::query("INSERT INTO instance_usage (instance_id, tag, count) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(t)
                    .bind(c)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let hostname = hostname.unwrap_or(&found.hostname).to_string();
        sqlx::query("UPDATE instances SET last_contact_at = $1, usage_released = FALSE, hostname = $2 WHERE id = $3")
            .bind(now.0)
            .bind(&hostname)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let counts = counts_in(&mut tx, found.virtual_account_id, now).await?;
        tx.commit().await?;
        found.last_contact_at = now;
        found.usage_released = false;
        found.hostname = hostname;
        Ok((found, counts))
    }

    async fn move_instance(&self, id: &str, to: i64, actor: &str, now: Timestamp) -> Result<Instance> {
        let mut tx = self.begin().await?;
        let found = fetch_instance(&mut tx, id).await?;
        if !found.usage_released {
            let usage = usage_of(&mut tx, id).await?;
            shift_pool_usage(&mut tx, found.virtual_account_id, &usage, -1).await?;
            shift_pool_usage(&mut tx, to, &usage, 1).await?;
        }
        sqlx::query("UPDATE instances SET virtual_account_id = $1 WHERE id = $2")
            .bind(to)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let account_id = account_of_pool(&mut tx, to).await?;
        let udi = format!("PID:{},SN:{}", found.udi_pid, found.udi_sn);
        let detail = format!("moved from virtual account {} to {to}", found.virtual_account_id);
        log(&mut tx, now, actor, "instance.moved", Some(account_id), Some(to), &udi, detail).await?;
        tx.commit().await?;
        Ok(Instance { virtual_account_id: to, ..found })
    }

    async fn remove_instance(&self, id: &str, kind: &str, actor: &str, now: Timestamp) -> Result<Instance> {
        let mut tx = self.begin().await?;
        let found = fetch_instance(&mut tx, id).await?;
        delete_instance(&mut tx, &found).await?;
        let account_id = account_of_pool(&mut tx, found.virtual_account_id).await?;
        let udi = format!("PID:{},SN:{}", found.udi_pid, found.udi_sn);
        log(
            &mut tx,
            now,
            actor,
            &format!("instance.{kind}"),
            Some(account_id),
            Some(found.virtual_account_id),
            &udi,
            format!("instance {id}"),
        )
        .await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn release_silent_usage(&self, cutoff: Timestamp, now: Timestamp) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let silent: Vec<Instance> =
            sqlx::query(&format!("{INSTANCE} WHERE last_contact_at < $1 AND usage_released = FALSE"))
                .bind(cutoff.0)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(instance)
                .collect();
        for inst in &silent {
            let usage = usage_of(&mut tx, &inst.id).await?;
            shift_pool_usage(&mut tx, inst.virtual_account_id, &usage, -1).await?;
            sqlx::query("UPDATE instances SET usage_released = TRUE WHERE id = $1")
                .bind(&inst.id)
                .execute(&mut *tx)
                .await?;
            let account_id = account_of_pool(&mut tx, inst.virtual_account_id).await?;
            let udi = format!("PID:{},SN:{}", inst.udi_pid, inst.udi_sn);
            let detail = format!("not heard from since {}; usage released to the pool", inst.last_contact_at);
            log(
                &mut tx,
                now,
                "system",
                "instance.usage-released",
                Some(account_id),
                Some(inst.virtual_account_id),
                &udi,
                detail,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(silent.into_iter().map(|i| i.id).collect())
    }

    async fn expired_instances(&self, now: Timestamp) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM instances WHERE cert_expires_at <= $1")
            .bind(now.0)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn consume_nonce(&self, scope: &str, nonce: &str, expires_at: Timestamp) -> Result<bool> {
        let done =
            sqlx::query("INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(scope)
                .bind(nonce)
                .bind(expires_at.0)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<()> {
        sqlx::query("DELETE FROM nonces WHERE expires_at <= $1").bind(now.0).execute(&self.pool).await?;
        sqlx::query("DELETE FROM access_tokens WHERE expires_at <= $1").bind(now.0).execute(&self.pool).await?;
        Ok(())
    }

    async fn record_event(&self, e: NewEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        append_event(&mut tx, &e).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn events(&self, account_id: Option<i64>, limit: i64) -> Result<Vec<Event>> {
        let rows = match account_id {
            Some(a) => {
                sqlx::query(&format!("{EVENT} WHERE account_id = $1 ORDER BY id DESC LIMIT $2"))
                    .bind(a)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{EVENT} ORDER BY id DESC LIMIT $1")).bind(limit).fetch_all(&self.pool).await?
            }
        };
        Ok(rows.into_iter().map(event).collect())
    }

    async fn sync_alerts(&self, current: Vec<NewAlert>, now: Timestamp) -> Result<()> {
        let mut tx = self.begin().await?;
        let existing: Vec<Alert> = sqlx::query(ALERT).fetch_all(&mut *tx).await?.into_iter().map(alert).collect();
        for old in &existing {
            if !current.iter().any(|a| a.kind == old.kind && a.object == old.object) {
                sqlx::query("DELETE FROM alerts WHERE id = $1").bind(old.id).execute(&mut *tx).await?;
                let detail = format!("cleared: {}", old.message);
                log(
                    &mut tx,
                    now,
                    "system",
                    "alert.cleared",
                    Some(old.account_id),
                    old.virtual_account_id,
                    &old.object,
                    detail,
                )
                .await?;
            }
        }
        for a in &current {
            let known = existing.iter().any(|o| o.kind == a.kind && o.object == a.object);
            sqlx::query(
                "INSERT INTO alerts (kind, severity, account_id, virtual_account_id, object, message, raised_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (kind, object) DO UPDATE SET severity = excluded.severity, message = excluded.message",
            )
            .bind(&a.kind)
            .bind(&a.severity)
            .bind(a.account_id)
            .bind(a.virtual_account_id)
            .bind(&a.object)
            .bind(&a.message)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            if !known {
                log(
                    &mut tx,
                    now,
                    "system",
                    "alert.raised",
                    Some(a.account_id),
                    a.virtual_account_id,
                    &a.object,
                    a.message.clone(),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn alerts(&self, account_id: i64) -> Result<Vec<Alert>> {
        Ok(sqlx::query(&format!("{ALERT} WHERE account_id = $1 ORDER BY raised_at, id"))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(alert)
            .collect())
    }
}
