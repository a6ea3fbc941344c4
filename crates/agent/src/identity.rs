//! The identity a registered device keeps across restarts: who it is (UDI), which instance the
//! manager knows it as, its private key and ID certificate, and the account it belongs to.
//!
//! Saved as one JSON file. Saving is atomic (temporary file in the same directory, fsync,
//! rename) so a crash mid-save never leaves a device without the key its manager knows.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smartlic_core::agent::{check_interval, check_scheduled};
use smartlic_core::time::SECOND_MS;
use smartlic_core::Timestamp;
use smartlic_proto::wire::{Intervals, RegisterResponse, RenewIdResponse, Udi};
use smartlic_proto::SigningKey;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no device identity at {0} (the device is not registered)")]
    Missing(PathBuf),
    #[error("cannot read the device identity {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the device identity {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot save the device identity {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The device's private key, stored as base64 of its PKCS#8 DER and parsed once on load.
/// Its `Debug` form never shows the key.
pub struct DeviceKey(pub SigningKey);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({}, redacted)", self.0.algorithm().as_str())
    }
}

impl PartialEq for DeviceKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.pkcs8_der() == other.0.pkcs8_der()
    }
}

impl Eq for DeviceKey {}

impl Serialize for DeviceKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(self.0.pkcs8_der()))
    }
}

impl<'de> Deserialize<'de> for DeviceKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let der = B64.decode(text.trim()).map_err(|e| D::Error::custom(format!("key is not base64: {e}")))?;
        SigningKey::from_pkcs8(&der).map(DeviceKey).map_err(D::Error::custom)
    }
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceIdentity {
    pub udi: Udi,
    #[serde(default)]
    pub hostname: Option<String>,
    pub instance_id: String,
    /// PKCS#8 DER, base64.
    pub key: DeviceKey,
    /// The ID certificate (PEM) the manager issued for `key`.
    pub certificate: String,
    pub certificate_serial: String,
    /// Unix milliseconds, as the manager reported it.
    pub certificate_expires: i64,
    pub smart_account: String,
    pub smart_account_domain: String,
    pub virtual_account: String,
    pub export_controlled: bool,
    pub intervals: Intervals,
    /// The CA certificate (PEM) that signed the registration answer: the manager's. Only it may
    /// sign later answers, whatever else the trust points hold (a TLS-inspecting proxy's CA is
    /// trusted for TLS, never for answers). None in identities saved before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_ca: Option<String>,
}

impl DeviceIdentity {
    /// The identity a successful registration gives: `key` is the key whose CSR was sent.
    pub fn from_registration(udi: Udi, hostname: Option<String>, key: SigningKey, answer: RegisterResponse) -> Self {
        DeviceIdentity {
            udi,
            hostname,
            instance_id: answer.instance_id,
            key: DeviceKey(key),
            certificate: answer.certificate,
            certificate_serial: answer.certificate_serial,
            certificate_expires: answer.certificate_expires,
            smart_account: answer.smart_account,
            smart_account_domain: answer.smart_account_domain,
            virtual_account: answer.virtual_account,
            export_controlled: answer.export_controlled,
            intervals: answer.intervals,
            manager_ca: None,
        }
    }

    /// Records the manager's CA certificate (see [`manager_ca`](Self::manager_ca)).
    pub fn with_manager_ca(self, ca_pem: String) -> Self {
        DeviceIdentity { manager_ca: Some(ca_pem), ..self }
    }

    /// Adopts the key and certificate of a successful ID renewal.
    pub fn apply_renewal(&mut self, key: SigningKey, answer: RenewIdResponse) {
        self.key = DeviceKey(key);
        self.certificate = answer.certificate;
        self.certificate_serial = answer.certificate_serial;
        self.certificate_expires = answer.certificate_expires;
        self.intervals = answer.intervals;
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key.0
    }

    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => IdentityError::Missing(path.to_path_buf()),
            _ => IdentityError::Read { path: path.to_path_buf(), source },
        })?;
        let identity: DeviceIdentity = serde_json::from_str(&text)
            .map_err(|e| IdentityError::Invalid { path: path.to_path_buf(), reason: e.to_string() })?;
        identity.check_bounds().map_err(|reason| IdentityError::Invalid { path: path.to_path_buf(), reason })?;
        Ok(identity)
    }

    /// The certificate's expiry and the intervals are within the bounds of the agent's state
    /// so nothing computed from them overflows. An interval of 0 is one the manager did
    /// not give: the default applies ([`smartlic_core::agent::Intervals::from_secs`]).
    fn check_bounds(&self) -> Result<(), String> {
        check_scheduled("certificate_expires", Timestamp(self.certificate_expires))?;
        let i = &self.intervals;
        for (name, secs) in [
            ("intervals.id_renew_secs", i.id_renew_secs),
            ("intervals.auth_renew_secs", i.auth_renew_secs),
            ("intervals.auth_validity_secs", i.auth_validity_secs),
        ] {
            if secs != 0 {
                check_interval(name, secs, SECOND_MS)?;
            }
        }
        Ok(())
    }

    /// Replaces `path` atomically; the file is readable by its owner only since it holds the key.
    pub fn save(&self, path: &Path) -> Result<(), IdentityError> {
        let write_err = |source| IdentityError::Write { path: path.to_path_buf(), source };
        let json = serde_json::to_vec_pretty(self).map_err(|e| write_err(std::io::Error::other(e)))?;
        crate::persist::write_atomic(path, &json).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartlic_proto::KeyAlgorithm;

    fn sample(alg: KeyAlgorithm) -> DeviceIdentity {
        DeviceIdentity {
            udi: Udi { pid: "C9500-32C".into(), sn: "FXS1234".into() },
            hostname: Some("edge-1".into()),
            instance_id: "inst-1".into(),
            key: DeviceKey(SigningKey::generate(alg).unwrap()),
            certificate: "-----BEGIN CERTIFICATE-----\n...\n".into(),
            certificate_serial: "2A".into(),
            certificate_expires: 1_900_000_000_000,
            smart_account: "Example".into(),
            smart_account_domain: "example.com".into(),
            virtual_account: "Default".into(),
            export_controlled: false,
            intervals: Intervals { id_renew_secs: 1, auth_renew_secs: 2, auth_validity_secs: 3 },
            manager_ca: Some("-----BEGIN CERTIFICATE-----\n...\n".into()),
        }
    }

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        assert!(matches!(DeviceIdentity::load(&path), Err(IdentityError::Missing(_))));
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let identity = sample(alg);
            identity.save(&path).unwrap();
            assert_eq!(DeviceIdentity::load(&path).unwrap(), identity);
        }
        // Only the identity itself is left behind, and only its owner may read it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let identity = sample(KeyAlgorithm::Ed25519);
        assert!(!format!("{identity:?}").contains(&B64.encode(identity.signing_key().pkcs8_der())));
    }

    #[test]
    fn refuses_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(DeviceIdentity::load(&path), Err(IdentityError::Invalid { .. })));
        let mut json = serde_json::to_value(sample(KeyAlgorithm::Ed25519)).unwrap();
        json["key"] = "AAAA".into();
        std::fs::write(&path, json.to_string()).unwrap();
        let err = DeviceIdentity::load(&path).unwrap_err().to_string();
        assert!(err.contains("not valid"), "{err}");
        // Times and intervals out of bounds are refused naming the field.
        type Edit = fn(&mut serde_json::Value);
        let out_of_bounds: [(&str, Edit); 3] = [
            ("certificate_expires is 9223372036854775807", |j| j["certificate_expires"] = i64::MAX.into()),
            ("certificate_expires is -1", |j| j["certificate_expires"] = (-1).into()),
            ("intervals.auth_validity_secs is -3: it must be between 1 and", |j| {
                j["intervals"]["auth_validity_secs"] = (-3).into()
            }),
        ];
        for (named, edit) in out_of_bounds {
            let mut json = serde_json::to_value(sample(KeyAlgorithm::Ed25519)).unwrap();
            edit(&mut json);
            std::fs::write(&path, json.to_string()).unwrap();
            let err = DeviceIdentity::load(&path).unwrap_err().to_string();
            assert!(err.contains("not valid") && err.contains(named), "{err}");
        }
    }
}
