//! Where the manager's certificate authority lives.
//!
//! - With `SMARTLIC_DATA_KEY`: in the database, its key sealed with the data key
//!   ([`crate::data_key`]), so every replica over the database signs with the same CA. The
//!   first start stores the CA of `--data` (`ca.pem`, `ca-key.pem` of a manager that ran
//!   alone) or a new one; replicas starting together store one (the store inserts only when
//!   none is there and answers the one stored).
//! - Without it, on SQLite only: in `--data` (`ca.pem`, `ca-key.pem` mode 0600), as a single
//!   manager always kept it. PostgreSQL serves replicas, so there the variable is required.
//!
//! Either way each replica writes the CA certificate to its `--data` (devices and clients are
//! given that file). A key that does not open the stored CA, or a database holding a sealed CA
//! while the variable is unset, stops the start with a message: never a second CA.

use crate::data_key::{DataKey, DATA_KEY_VARIABLE};
use crate::tls::{load_or_create_ca, write_private, CA_FILE, CA_KEY_FILE};
use anyhow::Context;
use smartlic_proto::CertificateAuthority;
use smartlic_store::{Store, StoredCa};
use std::path::Path;

/// Names the sealed record (the associated data of its sealing).
const RECORD: &str = "smartlic certificate_authority key";

/// Refuses, before the database is touched, PostgreSQL (`postgres`) without a data key: there
/// the CA can only be kept in the database.
pub fn require_data_key(postgres: bool, data_key: Option<&DataKey>) -> anyhow::Result<()> {
    if postgres && data_key.is_none() {
        anyhow::bail!(
            "{DATA_KEY_VARIABLE} is not set: on PostgreSQL the CA key is kept in the database, encrypted with \
             that key; set it (at least 32 characters, the same on every replica)"
        );
    }
    Ok(())
}

/// The CA of this manager: from the database with a data key, else from `data_dir`'s files.
pub async fn load(
    store: &dyn Store,
    data_dir: &Path,
    data_key: Option<&DataKey>,
    now_secs: i64,
) -> anyhow::Result<CertificateAuthority> {
    let Some(key) = data_key else {
        if store.stored_ca().await?.is_some() {
            anyhow::bail!(
                "the database holds the CA key encrypted with {DATA_KEY_VARIABLE}, which is not set; \
                 set it to the value the CA was stored with"
            );
        }
        return Ok(load_or_create_ca(data_dir, now_secs)?.0);
    };
    let stored = match store.stored_ca().await? {
        Some(stored) => stored,
        None => {
            let candidate = first_ca(data_dir, now_secs)?;
            let sealed_key = key.seal(RECORD, candidate.key_pem().as_bytes())?;
            store.store_ca(StoredCa { cert_pem: candidate.cert_pem().into(), sealed_key }).await?
        }
    };
    let key_pem = key.open(RECORD, &stored.sealed_key).with_context(|| {
        format!(
            "{DATA_KEY_VARIABLE} does not open the CA key stored in the database: it is not the key the CA \
             was stored with"
        )
    })?;
    let key_pem = String::from_utf8(key_pem).context("the CA key stored in the database is not PEM")?;
    let ca = CertificateAuthority::from_pem(&stored.cert_pem, &key_pem).context("the CA stored in the database")?;
    export(&ca, data_dir)?;
    Ok(ca)
}

/// The CA a database without one starts with: the one `data_dir` holds (a manager that ran
/// alone keeps its devices' trust), or a new one.
fn first_ca(data_dir: &Path, now_secs: i64) -> anyhow::Result<CertificateAuthority> {
    if data_dir.join(CA_FILE).exists() || data_dir.join(CA_KEY_FILE).exists() {
        let (ca, _) = load_or_create_ca(data_dir, now_secs)?;
        tracing::info!("the CA of {} is now kept in the database", data_dir.display());
        return Ok(ca);
    }
    Ok(CertificateAuthority::generate("smartlic manager CA", now_secs)?)
}

/// Writes the certificate to `data_dir`. A key file there of another CA stops the start (this
/// directory belonged to another manager); one of this CA is left, with a warning that the
/// database keeps the key now.
fn export(ca: &CertificateAuthority, data_dir: &Path) -> anyhow::Result<()> {
    let key_file = data_dir.join(CA_KEY_FILE);
    if key_file.exists() {
        let ours = std::fs::read_to_string(data_dir.join(CA_FILE)).is_ok_and(|cert| cert == ca.cert_pem());
        if !ours {
            anyhow::bail!(
                "{} holds the key of another CA than the one stored in the database; move ca.pem and \
                 ca-key.pem out of it",
                data_dir.display()
            );
        }
        tracing::warn!(
            "{} holds the CA key unencrypted; the database keeps it now, so the file can be removed",
            key_file.display()
        );
        return Ok(());
    }
    write_private(&data_dir.join(CA_FILE), ca.cert_pem())
}
