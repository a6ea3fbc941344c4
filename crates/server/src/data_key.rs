//! The key that seals secrets the database keeps for every replica (today the CA's private
//! key), read from `SMARTLIC_DATA_KEY`. A database copied or backed up without the variable
//! gives nobody the CA key; replicas share it by being given the same variable.
//!
//! AES-256-GCM (ring) under a key derived from the variable with HKDF-SHA256; each sealing
//! takes a random nonce, and the associated data names the record, so a sealed value moved to
//! another record does not open.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;

/// The environment variable the key comes from.
pub const DATA_KEY_VARIABLE: &str = "SMARTLIC_DATA_KEY";
/// Shortest value accepted: 32 characters carry 256 bits when random (`openssl rand -base64 32`
/// gives 44), and rule out a short password.
pub const MIN_DATA_KEY_CHARS: usize = 32;
/// First byte of a sealed value: the format, so a later one can be told apart.
const FORMAT: u8 = 1;
/// Separates this use of the variable from any other derived from it.
const SALT: &[u8] = b"smartlic data key v1";

/// The sealing key; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct DataKey(Arc<LessSafeKey>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

impl DataKey {
    /// The key of the variable's value; refused, saying why, when it is too short to be a key.
    pub fn from_secret(secret: &str) -> anyhow::Result<DataKey> {
        let chars = secret.chars().count();
        if chars < MIN_DATA_KEY_CHARS {
            anyhow::bail!(
                "{DATA_KEY_VARIABLE} has {chars} characters; it needs at least {MIN_DATA_KEY_CHARS} \
                 (for example the output of `openssl rand -base64 32`), the same on every replica"
            );
        }
        let prk = Salt::new(HKDF_SHA256, SALT).extract(secret.as_bytes());
        let okm =
            prk.expand(&[b"aes-256-gcm"], &AES_256_GCM).map_err(|_| anyhow::anyhow!("cannot derive the data key"))?;
        Ok(DataKey(Arc::new(LessSafeKey::new(UnboundKey::from(okm)))))
    }

    /// `FORMAT`, a random nonce, then `plain` encrypted with its tag, bound to `record`.
    pub fn seal(&self, record: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness for a nonce"))?;
        let mut sealed = plain.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(record.as_bytes()), &mut sealed)
            .map_err(|_| anyhow::anyhow!("cannot seal {record}"))?;
        Ok([&[FORMAT][..], &nonce, &sealed].concat())
    }

    /// The plain value of `sealed`; None when this key (or `record`) is not the one it was
    /// sealed with, or it was altered.
    pub fn open(&self, record: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        let (&format, rest) = sealed.split_first()?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, cipher) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut cipher = cipher.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(record.as_bytes()), &mut cipher).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn opens_only_with_the_same_key_and_record() {
        let key = DataKey::from_secret(SECRET).unwrap();
        let sealed = key.seal("ca", b"private").unwrap();
        assert_eq!(key.open("ca", &sealed).as_deref(), Some(&b"private"[..]));
        assert_ne!(key.seal("ca", b"private").unwrap(), sealed, "each sealing takes a new nonce");
        assert!(key.open("other", &sealed).is_none());
        let other = DataKey::from_secret(&SECRET.replace('0', "1")).unwrap();
        assert!(other.open("ca", &sealed).is_none());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open("ca", &altered).is_none());
        assert!(key.open("ca", &sealed[..5]).is_none());
    }

    #[test]
    fn short_keys_are_refused_and_never_shown() {
        let refused = DataKey::from_secret("hunter2").unwrap_err().to_string();
        assert!(refused.contains("SMARTLIC_DATA_KEY has 7 characters"), "{refused}");
        assert!(!refused.contains("hunter2"));
        assert_eq!(format!("{:?}", DataKey::from_secret(SECRET).unwrap()), "DataKey(***)");
    }
}
