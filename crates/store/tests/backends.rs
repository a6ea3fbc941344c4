//! Every backend a test can run on: SQLite always, PostgreSQL (a private server the test
//! process starts, see `PrivateCluster`) when built with the `postgres` feature and its tools
//! are installed. For tests written as a loop over the stores; `sqlite.rs` runs whole test
//! functions on each backend instead (`on_each_backend!`).

use smartlic_store::*;
use std::sync::Arc;

/// A fresh, empty database of each backend available, by name. The SQLite one's directory
/// lives as long as the returned guard.
pub async fn each_database() -> Vec<(&'static str, DatabaseUrl, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = DatabaseUrl::Sqlite(dir.path().join("test.db"));
    #[allow(unused_mut)] // added to only when built with PostgreSQL
    let mut databases = vec![("sqlite", sqlite, Some(dir))];
    #[cfg(feature = "postgres")]
    if let Some(cluster) = smartlic_store::postgres::PrivateCluster::shared() {
        databases.push(("postgres", DatabaseUrl::Postgres(cluster.fresh_database().unwrap()), None));
    }
    databases
}

/// [`each_database`], opened.
pub async fn each_backend() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let mut stores = Vec::new();
    for (name, url, dir) in each_database().await {
        stores.push((name, open(&url).await.unwrap(), dir));
    }
    stores
}

/// Runs `sql` on the database behind the store's back, as a damaged or foreign database would
/// hold its data.
pub fn tamper(url: &DatabaseUrl, sql: &str) {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let db = rusqlite::Connection::open(path).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch(sql).unwrap();
        }
        #[cfg(feature = "postgres")]
        DatabaseUrl::Postgres(url) => {
            let cluster = smartlic_store::postgres::PrivateCluster::shared().unwrap();
            cluster.execute(url, sql).unwrap();
        }
        #[cfg(not(feature = "postgres"))]
        DatabaseUrl::Postgres(_) => unreachable!("no PostgreSQL database without the feature"),
    }
}
