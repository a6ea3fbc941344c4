//! `smartlic admin backup --out FILE`: saves the manager's streamed backup, showing progress
//! on a terminal, and puts it in place only once it is whole and is a smartlic database.

use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

pub async fn save(mut answer: reqwest::Response, out: &Path) -> Result<()> {
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let saved = receive(&mut answer, &partial).await.and_then(|bytes| {
        let info = smartlic_store::check_backup(&partial)?;
        std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
        Ok((bytes, info))
    });
    let (bytes, info) = saved.inspect_err(|_| drop(std::fs::remove_file(&partial)))?;
    let keep = if info.sealed_ca {
        "The backup holds the CA, its key sealed with SMARTLIC_DATA_KEY: keep that key (not in the backup); \
         the restored server starts with it set."
    } else {
        "The backup holds the database only: keep ca.pem and ca-key.pem of the server's data directory \
         with it (they do not change; `smartlic server --restore` needs them, devices trust that CA alone)."
    };
    eprintln!("wrote {} ({bytes} bytes, schema version {})\n{keep}", out.display(), info.schema_version);
    Ok(())
}

/// Writes the answer's body to a new owner-only file (it holds password hashes) and syncs it.
async fn receive(answer: &mut reqwest::Response, path: &Path) -> Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let total = answer.content_length();
    let mut progress = std::io::stderr().is_terminal().then(std::io::stderr);
    let mut bytes = 0u64;
    while let Some(chunk) = answer.chunk().await.context("the backup was cut off")? {
        file.write_all(&chunk).with_context(|| format!("cannot write {}", path.display()))?;
        bytes += chunk.len() as u64;
        if let Some(term) = progress.as_mut() {
            let _ = write!(term, "\rbackup: {}", amount(bytes, total));
        }
    }
    if let Some(term) = progress.as_mut() {
        let _ = writeln!(term);
    }
    if total.is_some_and(|t| t != bytes) {
        anyhow::bail!("the backup was cut off: {}", amount(bytes, total));
    }
    file.sync_all().with_context(|| format!("cannot sync {}", path.display()))?;
    Ok(bytes)
}

/// `3.2 MiB of 10.0 MiB (32%)`, or just the amount received when the total is unknown.
fn amount(bytes: u64, total: Option<u64>) -> String {
    let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
    match total {
        Some(t) if t > 0 => format!("{:.1} MiB of {:.1} MiB ({}%)", mib(bytes), mib(t), bytes * 100 / t),
        _ => format!("{:.1} MiB", mib(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::amount;

    #[test]
    fn progress_reads_in_mebibytes() {
        assert_eq!(amount(3 * 1024 * 1024, Some(12 * 1024 * 1024)), "3.0 MiB of 12.0 MiB (25%)");
        assert_eq!(amount(512 * 1024, None), "0.5 MiB");
    }
}
