//! Online backup of the database, and the check a file must pass before it is restored.
//!
//! A backup is `VACUUM INTO` on a connection of its own: it reads one snapshot, which holds
//! every commit acknowledged before it began (the writer answers only after committing), while
//! the writer keeps committing. Running it on the writer's thread would be just as consistent
//! but would stop every write for as long as the copy takes.

use super::{SqliteStore, MIGRATIONS};
use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tables every smartlic database has since its first schema version.
const TABLES: &[&str] = &["smart_accounts", "virtual_accounts", "principals", "licenses", "instances", "events"];

impl SqliteStore {
    /// Writes a consistent copy of the database to `target`, a file that must not exist yet;
    /// it is created readable by its owner only. The copy is not synced to disk: the caller
    /// syncs it where it keeps it.
    pub async fn backup_to(&self, target: &Path) -> Result<()> {
        let (source, target) = (self.db.path().to_path_buf(), target.to_path_buf());
        tokio::task::spawn_blocking(move || vacuum_into(&source, &target))
            .await
            .map_err(|e| StoreError::Database(format!("backup task failed: {e}")))?
    }
}

/// [`Store::backup`](crate::Store::backup) for SQLite: the copy is made next to the database
/// and unlinked once open, so no name leads to it and nothing is left behind.
pub(super) async fn anonymous_copy(store: &SqliteStore) -> Result<std::fs::File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let target = PathBuf::from(format!("{}.backup-{}-{n}", store.db.path().display(), std::process::id()));
    // A copy a crash left under this name is stale.
    let _ = std::fs::remove_file(&target);
    let made = store.backup_to(&target).await;
    let opened = made.and_then(|()| std::fs::File::open(&target).map_err(|e| io_error(&target, e)));
    let _ = std::fs::remove_file(&target);
    opened
}

fn vacuum_into(source: &Path, target: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // VACUUM INTO accepts an existing empty file: creating it first sets its mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(|e| io_error(target, e))?;
    let copied = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_WRITE).and_then(|conn| {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])
    });
    if let Err(e) = copied {
        let _ = std::fs::remove_file(target);
        return Err(StoreError::Database(format!("backup into {} failed: {e}", target.display())));
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Database(format!("{}: {e}", path.display()))
}

/// What [`check_backup`] found in a backup file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    pub schema_version: u32,
    /// The database holds the CA, its key sealed with the data key (`SMARTLIC_DATA_KEY`): a
    /// restore then needs that key, not the CA files.
    pub sealed_ca: bool,
}

/// Checks that `path` is a whole smartlic database of a schema version this build can open
/// (an older one is migrated at start) and says what it holds. Reads only: nothing is created
/// next to the file.
pub fn check_backup(path: &Path) -> Result<BackupInfo> {
    let name = path.display();
    let not_ours = |why: String| StoreError::Corrupt(format!("{name} is not a smartlic database: {why}"));
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::Database(format!("cannot read {name}: {e}")))?;
    std::io::Read::read_exact(&mut file, &mut header)
        .map_err(|_| not_ours("it is shorter than an SQLite header".into()))?;
    if &header != b"SQLite format 3\0" {
        return Err(not_ours("it is not an SQLite file".into()));
    }
    // Immutable: no lock, no -wal or -shm created beside the file (a WAL-mode file read-only
    // would get both), and only the file itself is read, which is what a restore installs.
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri, flags).map_err(|e| not_ours(e.to_string()))?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| not_ours(e.to_string()))?;
    if check != "ok" {
        return Err(StoreError::Corrupt(format!("{name} is damaged: {check}")));
    }
    for table in TABLES {
        let found: i64 =
            conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
                r.get(0)
            })?;
        if found == 0 {
            return Err(not_ours(format!("it has no table {table}")));
        }
    }
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => return Err(not_ours("it has no schema version".into())),
        v if v as usize > MIGRATIONS.len() => {
            return Err(StoreError::Corrupt(format!(
                "{name} has schema version {v}, newer than this smartlic ({}); restore it with a newer smartlic",
                MIGRATIONS.len()
            )))
        }
        _ => {}
    }
    let has_ca_table: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'certificate_authority'",
        [],
        |r| r.get(0),
    )?;
    let sealed_ca = has_ca_table > 0
        && conn.query_row("SELECT EXISTS (SELECT 1 FROM certificate_authority)", [], |r| r.get::<_, bool>(0))?;
    Ok(BackupInfo { schema_version: version, sealed_ca })
}

/// `path` for a `file:` URI: the characters a URI gives a meaning to are escaped.
fn uri_path(path: &Path) -> String {
    path.to_string_lossy().replace('%', "%25").replace('?', "%3f").replace('#', "%23")
}
