//! Online backup of the SQLite store (issue 13): consistent under concurrent writes, and the
//! check that refuses what is not a smartlic database.

use smartlic_core::Timestamp;
use smartlic_store::{check_backup, SqliteStore, Store, StoreError};
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_800_000_000_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_during_writes_holds_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("smartlic.db")).await.unwrap());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    store.create_account(&format!("w{w}-{i}.com"), "A", "op", T0).await.unwrap();
                }
            })
        })
        .collect();
    // Wait until some writes are acknowledged, then list them and back up at once.
    while store.accounts().await.unwrap().len() < 100 {
        tokio::task::yield_now().await;
    }
    let acknowledged = store.accounts().await.unwrap();
    let target = dir.path().join("backup.db");
    store.backup_to(&target).await.unwrap();
    for w in writers {
        w.await.unwrap();
    }

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(check_backup(&target).unwrap().schema_version >= 6);
    let copy = SqliteStore::open(&target).await.unwrap();
    let restored: Vec<String> = copy.accounts().await.unwrap().into_iter().map(|a| a.domain).collect();
    for account in &acknowledged {
        assert!(restored.contains(&account.domain), "{} is missing from the backup", account.domain);
    }

    // The anonymous copy leaves no file behind.
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let mut file = store.backup().await.unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after);

    // A backup never overwrites an existing file.
    let refused = store.backup_to(&target).await.unwrap_err().to_string();
    assert!(refused.contains("backup.db"), "{refused}");
}

#[test]
fn only_a_whole_smartlic_database_of_a_known_version_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |path: &std::path::Path| match check_backup(path) {
        Err(StoreError::Corrupt(m)) | Err(StoreError::Database(m)) => m,
        other => panic!("{} passed: {other:?}", path.display()),
    };

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "SELECT * FROM accounts; a long enough text file").unwrap();
    assert!(refused(&text).ends_with("notes.txt is not a smartlic database: it is not an SQLite file"));

    let missing = dir.path().join("missing.db");
    assert!(refused(&missing).contains("missing.db"));

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap().execute_batch("CREATE TABLE t(x); PRAGMA user_version = 3;").unwrap();
    assert!(refused(&other).ends_with("other.db is not a smartlic database: it has no table smart_accounts"));

    let newer = dir.path().join("newer.db");
    std::fs::copy(smartlic_db(dir.path()), &newer).unwrap();
    rusqlite::Connection::open(&newer).unwrap().execute_batch("PRAGMA user_version = 999;").unwrap();
    let message = refused(&newer);
    assert!(message.contains("newer.db has schema version 999, newer than this smartlic"), "{message}");

    // A WAL-mode file is checked as it is, and nothing is created beside it.
    let odd = dir.path().join("wal #1?%.db");
    std::fs::copy(smartlic_db(dir.path()), &odd).unwrap();
    rusqlite::Connection::open(&odd).unwrap().execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(check_backup(&odd).unwrap().schema_version >= 6);
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after);

    let cut = dir.path().join("cut.db");
    let whole = std::fs::read(smartlic_db(dir.path())).unwrap();
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    assert!(refused(&cut).contains("cut.db"));
}

/// A fresh smartlic database (every migration applied), closed.
fn smartlic_db(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("fresh.db");
    if !path.exists() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let target = path.clone();
        runtime.block_on(async move {
            let store = SqliteStore::open(&dir.join("live.db")).await.unwrap();
            store.backup_to(&target).await.unwrap();
        });
    }
    path
}
