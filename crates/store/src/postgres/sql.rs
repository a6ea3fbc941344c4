//! Small helpers every aggregate uses to run SQL in its transaction and read typed columns.

use super::engine::{retryable, Mode};
use crate::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;

/// Query parameters.
pub type Args<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One transaction of a store method. It remembers whether PostgreSQL refused a statement for a
/// conflict with a concurrent transaction, so the engine runs the method again rather than
/// answering the error.
pub struct Tx<'c> {
    tx: deadpool_postgres::Transaction<'c>,
    conflicted: AtomicBool,
    started: Instant,
    mode: Mode,
}

impl<'c> Tx<'c> {
    pub(super) fn new(tx: deadpool_postgres::Transaction<'c>, mode: Mode) -> Tx<'c> {
        Tx { tx, conflicted: AtomicBool::new(false), started: Instant::now(), mode }
    }

    pub(super) fn into_parts(self) -> (deadpool_postgres::Transaction<'c>, bool, Instant, Mode) {
        (self.tx, self.conflicted.load(Ordering::SeqCst), self.started, self.mode)
    }

    /// The store's error for `e`, noting a conflict to run the transaction again.
    pub fn error(&self, e: tokio_postgres::Error) -> StoreError {
        if retryable(&e) {
            self.conflicted.store(true, Ordering::SeqCst);
        }
        StoreError::Database(describe(&e))
    }

    /// The error that runs the transaction again because a concurrent one won a race its
    /// constraint decided (`what` happened): the next run sees the winner's change.
    pub fn race_lost(&self, what: &str) -> StoreError {
        self.conflicted.store(true, Ordering::SeqCst);
        StoreError::Database(format!("{what}: a concurrent change came first"))
    }

    async fn rows(&self, sql: &str, args: Args<'_>) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        let stmt = self.tx.prepare_cached(sql).await?;
        self.tx.query(&stmt, args).await
    }

    /// All rows of a query mapped with `map`.
    pub async fn all<T>(&self, sql: &str, args: Args<'_>, map: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
        self.rows(sql, args).await.map_err(|e| self.error(e))?.iter().map(map).collect()
    }

    /// The row of a query, if any.
    pub async fn one<T>(&self, sql: &str, args: Args<'_>, map: fn(&Row) -> Result<T>) -> Result<Option<T>> {
        let rows = self.rows(sql, args).await.map_err(|e| self.error(e))?;
        rows.first().map(map).transpose()
    }

    /// The first column of the row of a query, if any.
    pub async fn value<T: for<'r> FromSql<'r>>(&self, sql: &str, args: Args<'_>) -> Result<Option<T>> {
        let rows = self.rows(sql, args).await.map_err(|e| self.error(e))?;
        rows.first().map(|row| get(row, 0)).transpose()
    }

    /// Runs a statement; answers how many rows it changed.
    pub async fn exec(&self, sql: &str, args: Args<'_>) -> Result<u64> {
        let stmt = self.tx.prepare_cached(sql).await.map_err(|e| self.error(e))?;
        self.tx.execute(&stmt, args).await.map_err(|e| self.error(e))
    }

    /// The `id` an `INSERT ... RETURNING id` gave, a unique-constraint failure becoming a
    /// conflict the caller explains.
    pub async fn insert_unique(&self, sql: &str, args: Args<'_>, what: impl FnOnce() -> String) -> Result<i64> {
        let stmt = self.tx.prepare_cached(sql).await.map_err(|e| self.error(e))?;
        match self.tx.query_one(&stmt, args).await {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Conflict(what())),
            Err(e) => Err(self.error(e)),
            Ok(row) => get(&row, 0),
        }
    }

    /// The `id` an `INSERT ... RETURNING id` gave.
    pub async fn insert(&self, sql: &str, args: Args<'_>) -> Result<i64> {
        let rows = self.rows(sql, args).await.map_err(|e| self.error(e))?;
        let row = rows.first().ok_or_else(|| StoreError::Database("an insert returned no id".into()))?;
        get(row, 0)
    }
}

/// An error of the client with the server's own message when it sent one (the client's
/// `Display` says only "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// A column read as `T`; a value that does not read as its type is corrupt data.
pub fn get<'r, T: FromSql<'r>>(
    row: &'r Row,
    column: impl tokio_postgres::row::RowIndex + std::fmt::Display,
) -> Result<T> {
    let name = column.to_string();
    row.try_get(column).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

pub fn ts(row: &Row, column: &str) -> Result<Timestamp> {
    Ok(Timestamp(get(row, column)?))
}

pub fn opt_ts(row: &Row, column: &str) -> Result<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, column)?.map(Timestamp))
}

/// A text column holding one of a closed set of values, read with `parse`. `column` is
/// `table.column`; text `parse` refuses is corrupt data naming the column and the value.
pub fn text_column<T, E: std::fmt::Display>(
    row: &Row,
    column: &str,
    parse: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    let name = column.rsplit_once('.').map_or(column, |(_, name)| name);
    let text: String = get(row, name)?;
    parse(&text).map_err(|e| StoreError::Corrupt(format!("column {column} holds '{text}': {e}")))
}
