//! How the PostgreSQL backend runs SQL: a pool of connections (deadpool), one transaction per
//! store method, as in SQLite.
//!
//! Several managers (replicas) may share the database. Most changes run SERIALIZABLE
//! ([`Mode::Write`]): the aggregates' read-then-write rules (a pool's balance, a UDI held once),
//! written for SQLite's one writer, stay correct without a lock of their own, and a transaction
//! that PostgreSQL finds in conflict with another (SQLSTATE 40001, or a deadlock, 40P01) is
//! undone and run again from the start. Reads run REPEATABLE READ, READ ONLY: one consistent
//! snapshot.
//!
//! Two changes run READ COMMITTED instead ([`Mode::Guarded`]): a registration and a usage report
//! (authorization). A wave of them funnels through one row each, its token's `uses` or its
//! pool's `pool_usage`, and under SERIALIZABLE two transactions that update one row cannot both
//! commit: all but one were undone and run again (22,727 serialization failures for 2,000
//! registrations and 2,000 first authorizations, BENCHMARKS.md; none since). At READ COMMITTED
//! the second update of a row waits for the first to commit, then applies to the row as
//! committed, so the wave queues on the row instead of failing. What SSI proved for them is
//! proved here by hand, each rule by a unique constraint, a row lock or a statement that reads
//! and writes at once (their comments name which):
//! - a token's uses, status and expiry: its row is updated by the transaction's last statement
//!   (`uses = uses + 1 … RETURNING`), and the shared rule judges the row as that statement
//!   found it, locked until commit (`instances::take_token_use`);
//! - a UDI registered once: the unique (udi_pid, udi_sn) constraint; a registration that loses
//!   the race runs again and then sees the winner (a repeat, or already registered);
//! - a repeat registration, a forced replacement and a usage report change an instance read
//!   `FOR UPDATE`, so they see it as the last change committed it, and a serializable change
//!   of it (a move, a removal, a release) waits, then fails and runs again;
//! - a nonce used once: its primary key;
//! - a pool's in-use counters: changed by one upsert that adds, behind the pool's gate
//!   (`licenses::shift_pool_usage`), which every change of the counters, serializable or not,
//!   updates first: the pool's `virtual_accounts.usage_changes`. SSI does not see a READ
//!   COMMITTED transaction's writes, so the serializable transactions that decide on the
//!   counters (a reservation, a transfer) lock the gate `FOR SHARE`
//!   (`licenses::counts_to_decide`): a report committed since their snapshot makes them fail
//!   and run again, and one that comes later waits for them and counts what they reserved. A
//!   report reads the counts it answers with in one statement, after passing the gate when it
//!   changed them; a renewal that changes no count reads them as one snapshot and writes
//!   nothing a decision reads.
//!
//! Locks are taken in one order, the instance, then its pool's gate, then the token (the
//! serializable moves, removals and releases too, instance by instance), so transactions of one
//! instance do not wait for each other in a circle; a batch that does is a deadlock, undone and
//! run again like a conflict.
//!
//! The alternatives were worse: a session advisory lock per token or pool, taken before a
//! serializable transaction, queues the whole transaction (every statement) where this queues
//! only the last statement and the commit, and still leaves SSI's conflicts on the index pages
//! of `instances` and `nonces`; counters kept as rows of deltas summed on read still conflict
//! under SERIALIZABLE (each report reads the sums the others write), and need compacting.

use super::sql::{describe, Tx};
use crate::{PostgresUrl, Result, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::IsolationLevel;

/// Connections each manager keeps at most.
const POOL_SIZE: usize = 16;
/// Conflicting runs of one transaction before the store gives up (each conflict means another
/// transaction committed, so this bounds only pathological contention).
const MAX_ATTEMPTS: u32 = 200;
/// Identifies the migration lock among the database's advisory locks ("smartlic" in ASCII).
const MIGRATION_LOCK: i64 = 0x736d_6172_746c_6963;

/// Whether a transaction changes data (serializable, or read committed with its rules guarded
/// by hand: see the module's doc; both retried) or only reads (a snapshot).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    Guarded,
    Read,
}

pub struct Engine {
    pool: Pool,
    closed: AtomicBool,
    /// Nanoseconds spent in write transactions (running and committing).
    busy_nanos: AtomicU64,
}

/// What [`Engine::finish`] decided.
pub enum Finished<T> {
    Done(T),
    Retry,
}

impl Engine {
    /// Connects to the database, applies the pending `migrations` (see [`migrate`]) and keeps a
    /// pool of connections.
    pub async fn open(url: &PostgresUrl, migrations: &[&str]) -> Result<Engine> {
        let mut config = tokio_postgres::Config::new();
        config.user(&url.user).host(&url.host).port(url.port).dbname(&url.database);
        config.application_name("smartlic").connect_timeout(Duration::from_secs(10));
        if let Some(password) = &url.password {
            config.password(password);
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Database(format!("{url}: cannot build the connection pool: {e}")))?;
        let mut client = pool.get().await.map_err(|e| StoreError::Database(format!("{url}: cannot connect: {e}")))?;
        migrate(&mut client, migrations).await.map_err(|e| match e {
            StoreError::Database(why) => StoreError::Database(format!("{url}: {why}")),
            e => e,
        })?;
        Ok(Engine { pool, closed: AtomicBool::new(false), busy_nanos: AtomicU64::new(0) })
    }

    /// Time spent in write transactions since the store was opened.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed))
    }

    /// Refuses later transactions and closes the idle connections; those in use close when
    /// their transaction ends. Every acknowledged change is committed already.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pool.close();
    }

    /// A pooled connection, unless the store is closed.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Database("the database is closed".into()));
        }
        self.pool.get().await.map_err(|e| StoreError::Database(format!("no database connection: {e}")))
    }

    /// Begins a transaction of `mode` on `client`.
    pub async fn begin<'c>(&self, client: &'c mut deadpool_postgres::Object, mode: Mode) -> Result<Tx<'c>> {
        let builder = client.build_transaction();
        let builder = match mode {
            Mode::Write => builder.isolation_level(IsolationLevel::Serializable),
            Mode::Guarded => builder.isolation_level(IsolationLevel::ReadCommitted),
            Mode::Read => builder.isolation_level(IsolationLevel::RepeatableRead).read_only(true),
        };
        let tx = builder
            .start()
            .await
            .map_err(|e| StoreError::Database(format!("cannot begin a transaction: {}", describe(&e))))?;
        Ok(Tx::new(tx, mode))
    }

    /// Ends a transaction whose body gave `outcome`: commits it when Ok, else rolls it back;
    /// asks for another run when PostgreSQL refused it for a conflict with a concurrent one.
    pub async fn finish<T, E: From<StoreError>>(
        &self,
        tx: Tx<'_>,
        outcome: std::result::Result<T, E>,
        attempt: &mut u32,
    ) -> Finished<std::result::Result<T, E>> {
        let (tx, conflicted, started, mode) = tx.into_parts();
        let ended = match outcome {
            Ok(value) => match tx.commit().await {
                Ok(()) => Finished::Done(Ok(value)),
                Err(e) if retryable(&e) => Finished::Retry,
                Err(e) => {
                    Finished::Done(Err(E::from(StoreError::Database(format!("commit failed: {}", describe(&e))))))
                }
            },
            Err(e) => {
                let _ = tx.rollback().await;
                if conflicted {
                    Finished::Retry
                } else {
                    Finished::Done(Err(e))
                }
            }
        };
        if mode != Mode::Read {
            let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.busy_nanos.fetch_add(spent, Ordering::Relaxed);
        }
        if let Finished::Retry = ended {
            *attempt += 1;
            if *attempt >= MAX_ATTEMPTS {
                let why = format!("gave up after {MAX_ATTEMPTS} runs in conflict with concurrent changes");
                return Finished::Done(Err(E::from(StoreError::Database(why))));
            }
            back_off(*attempt).await;
        }
        ended
    }
}

/// A serialization failure or a deadlock: the transaction may succeed when run again.
pub fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// Waits a random time growing with the attempts (up to 20 ms), so transactions that keep
/// meeting each other stop meeting in step. This is contention control, not a wait for time.
async fn back_off(attempt: u32) {
    let ceiling_us = 100u64 << attempt.min(8);
    let random = RandomState::new().hash_one(Instant::now());
    tokio::time::sleep(Duration::from_micros(random % ceiling_us.min(20_000))).await;
}

/// Runs `$body` (an expression that may use `?`, giving `Result<T, E>` with `E:
/// From<StoreError>`) in one transaction of `$mode` bound to `$tx`, run again from the start when
/// it conflicts with a concurrent one. The body must therefore have no effect outside the
/// database before it ends.
macro_rules! transaction {
    ($engine:expr, $mode:expr, |$tx:ident| $body:expr) => {{
        let engine: &$crate::postgres::engine::Engine = &$engine;
        let mut attempt = 0u32;
        loop {
            let mut client = engine.client().await?;
            let $tx = engine.begin(&mut client, $mode).await?;
            let outcome = async { $body }.await;
            match engine.finish($tx, outcome, &mut attempt).await {
                $crate::postgres::engine::Finished::Done(result) => break result,
                $crate::postgres::engine::Finished::Retry => continue,
            }
        }
    }};
}

/// [`transaction!`] that changes data.
macro_rules! write {
    ($store:expr, |$tx:ident| $body:expr) => {
        transaction!($store.db, $crate::postgres::engine::Mode::Write, |$tx| $body)
    };
}

/// [`transaction!`] that changes data at READ COMMITTED, its rules guarded by hand (see the
/// module's doc).
macro_rules! guarded {
    ($store:expr, |$tx:ident| $body:expr) => {
        transaction!($store.db, $crate::postgres::engine::Mode::Guarded, |$tx| $body)
    };
}

/// [`transaction!`] that only reads.
macro_rules! read {
    ($store:expr, |$tx:ident| $body:expr) => {
        transaction!($store.db, $crate::postgres::engine::Mode::Read, |$tx| $body)
    };
}

/// Applies the migrations not yet applied, in order, each in its own transaction with its row
/// in `schema_migrations`. A session advisory lock held throughout makes replicas that start
/// together apply each migration once: the second waits, then finds nothing left to do.
async fn migrate(client: &mut deadpool_postgres::Object, migrations: &[&str]) -> Result<()> {
    let failed = |what: &str, e: tokio_postgres::Error| StoreError::Database(format!("{what}: {}", describe(&e)));
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await.map_err(|e| failed("migration lock", e))?;
    let applied = apply_pending(client, migrations).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
    applied?;
    unlocked.map(|_| ()).map_err(|e| failed("migration unlock", e))
}

async fn apply_pending(client: &mut deadpool_postgres::Object, migrations: &[&str]) -> Result<()> {
    let failed = |what: String, e: tokio_postgres::Error| StoreError::Database(format!("{what}: {}", describe(&e)));
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .await
        .map_err(|e| failed("schema_migrations".into(), e))?;
    let row = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
        .await
        .map_err(|e| failed("schema_migrations".into(), e))?;
    let done: i64 = row.get(0);
    if done as usize > migrations.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {done}, newer than this smartlic ({}); upgrade smartlic",
            migrations.len()
        )));
    }
    for (i, sql) in migrations.iter().enumerate().skip(done as usize) {
        let version = (i + 1) as i64;
        let tx = client.transaction().await.map_err(|e| failed(format!("migration {version}"), e))?;
        tx.batch_execute(sql).await.map_err(|e| failed(format!("migration {version}"), e))?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&version])
            .await
            .map_err(|e| failed(format!("migration {version}"), e))?;
        tx.commit().await.map_err(|e| failed(format!("migration {version}"), e))?;
    }
    Ok(())
}
