//! Helpers shared by the store's test files.

use smartlic_core::Timestamp;
use smartlic_store::{NewToken, RegistrationToken, Store};
use std::path::Path;

/// A registration token of the pool `pool_id`, created at `now` and valid 30 days, whose hash is
/// `hash` (listed as `tok-HASH`).
pub async fn token_in<S: Store + ?Sized>(
    store: &S,
    pool_id: i64,
    hash: &str,
    max_uses: Option<i64>,
    now: Timestamp,
) -> RegistrationToken {
    let new = NewToken {
        virtual_account_id: pool_id,
        prefix: format!("tok-{hash}"),
        token_hash: hash.into(),
        description: String::new(),
        expires_at: now.plus_days(30),
        max_uses,
        export_controlled: false,
    };
    store.create_token(new, "op", now).await.unwrap()
}

/// Writes a database as the second schema left it: one smart account `old.com` (id 1) with its
/// `Default` pool (id 1), then `rows` (SQL), then `user_version` 2; migrations run when the store
/// opens it.
pub fn database_of_schema_two(path: &Path, rows: &str) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(include_str!("../../migrations/sqlite/0001_init.sql")).unwrap();
    db.execute_batch(include_str!("../../migrations/sqlite/0002_reservations.sql")).unwrap();
    db.execute_batch(
        "INSERT INTO smart_accounts (id, domain, name, created_at) VALUES (1, 'old.com', 'Old', 0);
         INSERT INTO virtual_accounts (id, account_id, name, description, is_default, created_at)
             VALUES (1, 1, 'Default', '', TRUE, 0);",
    )
    .unwrap();
    db.execute_batch(rows).unwrap();
    db.execute_batch("PRAGMA user_version = 2;").unwrap();
}
