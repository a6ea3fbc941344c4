//! The database the bench's managers share: a SQLite file, or a fresh database of a private
//! PostgreSQL cluster ([`PrivateCluster`]: `initdb` and `pg_ctl` on a temporary directory,
//! loopback only) started here. Every manager is given its URL and the same
//! `SMARTLIC_DATA_KEY`, so any number of replicas can serve over it.
//!
//! It also stores product instances straight into the database ([`Database::bulk_load`]): a
//! million registrations over HTTPS would take most of an hour on the 2-core machine, and what
//! the large pool sizes measure is whether an authorization costs more when the pool holds
//! more instances, not the registrations. The instances loaded are what a registration stores
//! (the instance, its usage, the pool's in-use counter), in one transaction.

use anyhow::{bail, Context};
use smartlic_store::postgres::PrivateCluster;
use smartlic_store::PostgresUrl;
use std::path::PathBuf;

/// The `SMARTLIC_DATA_KEY` of every manager the bench starts (the CA key is sealed with it in
/// the shared database).
pub const DATA_KEY: &str = "smartlic-bench-data-key-0123456789abcdef";
/// The PID of the instances stored by [`Database::bulk_load`] (not the registered devices').
const LOADED_PID: &str = "BENCH-LOAD";

pub enum Database {
    /// The file, in a directory of its own (not a manager's `--data`).
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        cluster: PrivateCluster,
        url: PostgresUrl,
    },
}

impl Database {
    /// A new SQLite file, or a new database of a private PostgreSQL cluster started now.
    pub fn create(postgres: bool) -> anyhow::Result<Database> {
        if postgres {
            let cluster = PrivateCluster::start()
                .map_err(|why| anyhow::anyhow!("cannot start PostgreSQL: {why} (apt-get install postgresql)"))?;
            let url = cluster.fresh_database().map_err(|why| anyhow::anyhow!("cannot create a database: {why}"))?;
            return Ok(Database::Postgres { cluster, url });
        }
        let dir =
            tempfile::Builder::new().prefix("smartlic-bench-db-").tempdir().context("cannot create a directory")?;
        let path = dir.path().join("smartlic.db");
        Ok(Database::Sqlite { _dir: dir, path })
    }

    /// The managers' `--database`.
    pub fn url(&self) -> String {
        match self {
            Database::Sqlite { path, .. } => format!("sqlite:{}", path.display()),
            Database::Postgres { url, .. } => url.to_string(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "SQLite",
            Database::Postgres { .. } => "PostgreSQL",
        }
    }

    /// Stores instances numbered `range` in the `domain`'s Default pool, each using one
    /// `tag` and last seen `now_ms` (so no job releases or renews them), as registrations
    /// would, in one transaction; then refreshes the planner's statistics, as autovacuum
    /// would after such a load.
    pub fn bulk_load(&self, domain: &str, tag: &str, range: std::ops::Range<usize>, now_ms: i64) -> anyhow::Result<()> {
        let sql = bulk_sql(domain, tag, range, now_ms);
        match self {
            Database::Sqlite { path, .. } => {
                let mut db = rusqlite::Connection::open(path).context("cannot open the SQLite database")?;
                // The manager keeps its writer connection open; wait for it between requests.
                db.busy_timeout(std::time::Duration::from_secs(60))?;
                let tx = db.transaction()?;
                tx.execute_batch(&sql).context("bulk load into SQLite")?;
                tx.commit()?;
                db.execute_batch("ANALYZE").context("ANALYZE")?;
                Ok(())
            }
            Database::Postgres { cluster, url } => {
                // psql runs a string of several statements as one transaction.
                cluster.execute(url, &sql).map_err(|why| anyhow::anyhow!("bulk load into PostgreSQL: {why}"))?;
                cluster.execute(url, "ANALYZE").map_err(|why| anyhow::anyhow!("ANALYZE: {why}"))
            }
        }
    }

    /// CPU time (user + system, in clock ticks) of the database's own processes: the
    /// PostgreSQL server and its backends; SQLite runs inside the managers (0).
    pub fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let Database::Postgres { cluster, .. } = self else { return Ok(0) };
        let postmaster = super::cpu::postmaster_on(cluster.port())
            .with_context(|| format!("no PostgreSQL server found on port {}", cluster.port()))?;
        let mut ticks = super::cpu::ticks(postmaster).unwrap_or(0);
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if super::cpu::parent(pid) == Some(postmaster) {
                ticks += super::cpu::ticks(pid).unwrap_or(0);
            }
        }
        if ticks == 0 {
            bail!("no CPU time found for PostgreSQL (pid {postmaster})");
        }
        Ok(ticks)
    }
}

/// The SQL of [`Database::bulk_load`], the same on both backends: a recursive series, the
/// instances, their usage, the pool's counter.
fn bulk_sql(domain: &str, tag: &str, range: std::ops::Range<usize>, now_ms: i64) -> String {
    const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;
    let (first, last) = (range.start + 1, range.end);
    let count = range.len();
    let series = format!("WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {last})");
    let pool = format!(
        "(SELECT v.id FROM virtual_accounts v JOIN smart_accounts a ON a.id = v.account_id \
         WHERE a.domain = '{domain}' AND v.name = 'Default')"
    );
    let id = "'bench-load-' || i";
    format!(
        "{series} INSERT INTO instances (id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at,
             last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled,
             usage_released, evaluation_used_ms)
         SELECT {id}, {pool}, '{LOADED_PID}', 'LOAD' || i, {id}, {now_ms}, {now_ms}, 'bench-load-' || i,
             {expires}, 'ed25519', 'not a key: loaded by smartlic bench', FALSE, FALSE, NULL FROM n;
         {series} INSERT INTO instance_usage (instance_id, tag, count) SELECT {id}, '{tag}', 1 FROM n;
         INSERT INTO pool_usage (virtual_account_id, tag, in_use) VALUES ({pool}, '{tag}', {count})
             ON CONFLICT (virtual_account_id, tag) DO UPDATE SET in_use = pool_usage.in_use + excluded.in_use;",
        expires = now_ms + YEAR_MS
    )
}
