//! Backup and restore (issue 13).
//!
//! `POST /api/v1/backup` (operator) answers a consistent copy of the database, streamed. It
//! holds the database only: the CA key never leaves the server's disk through the API. The CA
//! (`ca.pem`, `ca-key.pem`) does not change after the first start, so the operator copies it
//! once, with the first backup, from the data directory; a restore needs it there, since
//! every registered device trusts that CA alone. A manager started with `SMARTLIC_DATA_KEY`
//! keeps its CA in the database, the key sealed with that data key: its backup carries the CA,
//! and the restored server needs the data key instead of the files.
//!
//! [`restore`] installs a backup into a data directory no server is using
//! ([`lock_data_dir`]), after checking it is a whole smartlic database of a known version.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hyper::body::Frame;
use smartlic_store::NewEvent;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

/// The database in the data directory.
pub const DATABASE_FILE: &str = "smartlic.db";
/// Locked by the server for as long as it runs on a data directory.
const LOCK_FILE: &str = "smartlic.lock";
/// The media type of a backup: an SQLite database file.
pub const MEDIA_TYPE: &str = "application/vnd.sqlite3";

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/backup", post(take_backup))
}

#[utoipa::path(
    post,
    path = "/api/v1/backup",
    operation_id = "take_backup",
    tag = "smartlic",
    summary = "A consistent copy of the database taken online (operator; without the CA key)",
    responses(
        (status = 200, description = "the SQLite database file", content_type = "application/vnd.sqlite3", body = Vec<u8>),
        (status = 403, description = "FORBIDDEN: only the operator"),
        (status = 409, description = "CONFLICT: the database is PostgreSQL, backed up with its own tools"),
    )
)]
async fn take_backup(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_operator("take a backup")?;
    let file = state.store.backup().await?;
    let size = file.metadata().map_err(ApiError::internal)?.len();
    let event = NewEvent {
        at: state.clock.now(),
        actor: caller.login().to_string(),
        kind: "backup.taken".into(),
        account_id: None,
        virtual_account_id: None,
        object: DATABASE_FILE.into(),
        detail: format!("{size} bytes"),
    };
    state.store.record_event(event).await?;
    tracing::info!(actor = %caller.login(), bytes = size, "backup taken");
    let body = FileBody { file: tokio::fs::File::from_std(file), left: size };
    Ok(([(header::CONTENT_TYPE, MEDIA_TYPE)], axum::body::Body::new(body)).into_response())
}

/// A file sent as it is read, with its exact length (so the answer has a Content-Length and
/// the client can show progress) and without holding it in memory.
struct FileBody {
    file: tokio::fs::File,
    left: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let mut buf = tokio::io::ReadBuf::new(&mut chunk);
        match tokio::io::AsyncRead::poll_read(Pin::new(&mut self.file), cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n == 0 {
                    let short = std::io::Error::other(format!("the backup ended {} bytes early", self.left));
                    return Poll::Ready(Some(Err(short)));
                }
                self.left = self.left.saturating_sub(n as u64);
                chunk.truncate(n);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

/// Takes the data directory's lock, held as long as the file stays open: one server per data
/// directory, and no restore under a running one.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(LOCK_FILE);
    match smartlic_store::try_lock_file(&path).with_context(|| format!("cannot lock {}", path.display()))? {
        Some(file) => Ok(file),
        None => anyhow::bail!("{} is in use by a running smartlic server; stop it first", dir.display()),
    }
}

/// What [`restore`] installed.
#[derive(Debug)]
pub struct Restored {
    pub database: PathBuf,
    pub schema_version: u32,
    pub bytes: u64,
    /// The backup holds the CA sealed with the data key: start with `SMARTLIC_DATA_KEY` set.
    pub sealed_ca: bool,
}

/// Installs the backup `file` as the database of `data_dir`. Refused, changing nothing, when
/// the file is not a whole smartlic database of a known version, when a server runs on the
/// directory, when it already has a database and `overwrite` is not set, or when its CA is
/// missing (neither in the directory nor sealed in the backup). The new database replaces the old one by a rename, so a crash leaves one or the
/// other; the old one's WAL files are removed first, as they would be replayed into the new one.
pub fn restore(file: &Path, data_dir: &Path, overwrite: bool) -> anyhow::Result<Restored> {
    let smartlic_store::BackupInfo { schema_version, sealed_ca } = smartlic_store::check_backup(file)?;
    let database = data_dir.join(DATABASE_FILE);
    for name in [crate::tls::CA_FILE, crate::tls::CA_KEY_FILE] {
        if !sealed_ca && !data_dir.join(name).exists() {
            anyhow::bail!(
                "{} has no {name}: copy ca.pem and ca-key.pem from the backed-up server's data directory into it \
                 (the backup holds the database only, and registered devices trust that CA alone)",
                data_dir.display()
            );
        }
    }
    let _lock = lock_data_dir(data_dir)?;
    if database.exists() && !overwrite {
        anyhow::bail!(
            "{} already holds a database ({DATABASE_FILE}); pass --overwrite to replace it with {} (its data is lost)",
            data_dir.display(),
            file.display()
        );
    }
    let incoming = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    let bytes = copy_private(file, &incoming).inspect_err(|_| drop(std::fs::remove_file(&incoming)));
    let bytes = bytes.with_context(|| format!("cannot copy {}", file.display()))?;
    for suffix in ["-wal", "-shm"] {
        let stale = data_dir.join(format!("{DATABASE_FILE}{suffix}"));
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_file(&incoming);
                return Err(e).with_context(|| format!("cannot remove {}", stale.display()));
            }
            _ => {}
        }
    }
    std::fs::rename(&incoming, &database).with_context(|| format!("cannot replace {}", database.display()))?;
    File::open(data_dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", data_dir.display()))?;
    Ok(Restored { database, schema_version, bytes, sealed_ca })
}

/// Copies `from` to a new owner-only file `to` and syncs it to disk; returns its length.
fn copy_private(from: &Path, to: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut source = File::open(from)?;
    let mut target = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(to)?;
    let bytes = std::io::copy(&mut source, &mut target)?;
    target.sync_all()?;
    Ok(bytes)
}
