//! Atomic file replacement: a crash at any instant leaves either the previous content or
//! the new one, never a mix. The new content goes to a temporary file in the same directory,
//! is flushed to disk, renamed over the old file, and the rename itself is flushed.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes`, readable by its owner only (device files hold private keys).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).and_then(|()| sync_dir(dir));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename itself durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The key of the state file's integrity check: an HMAC-SHA256 over the exact bytes of the
/// saved state, kept in its own owner-only file so that an edited state does not verify.
/// A root user can read it too: the check makes a reset of the evaluation deliberate and
/// visible, not impossible.
pub struct StateKey(ring::hmac::Key);

/// Why a key file cannot be used.
#[derive(Debug)]
pub enum KeyError {
    /// It cannot be read (permissions, I/O): nothing can be said about the state.
    Read(std::io::Error),
    /// It holds something other than a key (64 hexadecimal digits): as good as a missing one.
    Invalid,
}

/// Never shows the key.
impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(redacted)")
    }
}

impl StateKey {
    const LEN: usize = 32;

    /// Makes a new key and saves it (hex, one line) at `path`.
    pub fn create(path: &Path) -> std::io::Result<StateKey> {
        let mut bytes = [0u8; Self::LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| std::io::Error::other("no random bytes for the state key"))?;
        write_atomic(path, format!("{}\n", hex::encode(bytes)).as_bytes())?;
        Ok(StateKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes)))
    }

    /// The key saved at `path`, None when there is none.
    pub fn load(path: &Path) -> Result<Option<StateKey>, KeyError> {
        let content = match std::fs::read(path) {
            Ok(content) => content,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(KeyError::Read(e)),
        };
        let bytes = std::str::from_utf8(&content)
            .ok()
            .and_then(|text| hex::decode(text.trim()).ok())
            .filter(|b| b.len() == Self::LEN)
            .ok_or(KeyError::Invalid)?;
        Ok(Some(StateKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes))))
    }

    /// The tag of `content`, hex.
    pub fn tag(&self, content: &[u8]) -> String {
        hex::encode(ring::hmac::sign(&self.0, content))
    }

    /// Whether `tag` (hex) is the tag of `content`, compared in constant time.
    pub fn verify(&self, content: &[u8], tag: &str) -> bool {
        hex::decode(tag).is_ok_and(|t| ring::hmac::verify(&self.0, content, &t).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_key_verifies_its_own_tags_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        assert!(StateKey::load(&path).unwrap().is_none());
        let key = StateKey::create(&path).unwrap();
        let tag = key.tag(b"used 0");
        let loaded = StateKey::load(&path).unwrap().unwrap();
        assert!(loaded.verify(b"used 0", &tag));
        assert!(!loaded.verify(b"used 1", &tag));
        assert!(!loaded.verify(b"used 0", "zz"));
        let other = StateKey::create(&dir.path().join("other.key")).unwrap();
        assert!(!other.verify(b"used 0", &tag));
        for not_a_key in [&b"0123"[..], &[0xff; 64][..]] {
            std::fs::write(&path, not_a_key).unwrap();
            assert!(matches!(StateKey::load(&path), Err(KeyError::Invalid)));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("other.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
