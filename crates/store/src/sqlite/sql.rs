//! Small helpers every aggregate uses to run SQL and read typed columns.

use crate::*;
use rusqlite::{Connection, OptionalExtension, Row};

pub(super) type R<T> = rusqlite::Result<T>;

/// The timestamp in column `col` (a name, or a position: see [`super::instances::INSTANCE`]).
pub(super) fn ts(row: &Row, col: impl rusqlite::RowIndex) -> R<Timestamp> {
    Ok(Timestamp(row.get(col)?))
}

pub(super) fn opt_ts(row: &Row, col: &str) -> R<Option<Timestamp>> {
    Ok(row.get::<_, Option<i64>>(col)?.map(Timestamp))
}

/// A text column holding one of a closed set of values, read with `parse` (`str::parse` for
/// the enums of [`crate::model`]). `column` is `table.column`; text `parse` refuses is corrupt
/// data, an error naming the column and the value ([`StoreError::Corrupt`]), never a default.
pub(super) fn text_column<T, E: std::fmt::Display>(
    row: &Row,
    column: &str,
    parse: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> R<T> {
    let name = column.rsplit_once('.').map_or(column, |(_, name)| name);
    let text: String = row.get(name)?;
    parse(&text).map_err(|e| {
        let why = format!("column {column} holds '{text}': {e}");
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, why.into())
    })
}

/// All rows of a query mapped with `map`.
pub(super) fn all<T>(db: &Connection, sql: &str, args: impl rusqlite::Params, map: fn(&Row) -> R<T>) -> Result<Vec<T>> {
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(args, map)?.collect::<R<Vec<T>>>()?;
    Ok(rows)
}

/// The row of a query, if any.
pub(super) fn one<T>(
    db: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    map: fn(&Row) -> R<T>,
) -> Result<Option<T>> {
    Ok(db.prepare_cached(sql)?.query_row(args, map).optional()?)
}

pub(super) fn exec(db: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<usize> {
    Ok(db.prepare_cached(sql)?.execute(args)?)
}

/// A unique-constraint failure becomes a conflict the caller can explain.
pub(super) fn unique_or(err: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what())
        }
        _ => StoreError::from(err),
    }
}
