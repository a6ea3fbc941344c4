//! The satellite's synchronisation with the cloud (S-3): the request the satellite sends (usage
//! and instances of its pools, up) and the cloud's response (the pools' licenses, down), online
//! or as YAML files carried by hand (seed 001's manual synchronisation).
//!
//! A file is `{kind, signature, payload, end}` in YAML: the payload is the document's YAML text as
//! signed, so no re-serialisation changes what was signed. The satellite signs requests with its
//! key (the one the cloud certified at approval), the cloud signs responses with its CA key.
//! Each document names the satellite, the local account and a sequence number: the cloud and
//! the satellite refuse a sequence they have applied already (replayed) or an older one (stale).

use crate::keys::{PublicKey, SigningKey};
use crate::satellite::GrantedPool;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const KIND_SYNC_REQUEST: &str = "smartlic-sync-request";
pub const KIND_SYNC_RESPONSE: &str = "smartlic-sync-response";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the file is truncated or not a synchronisation file (YAML with kind, signature and payload): {0}")]
    Truncated(String),
    #[error("the file is a {found}, not a {expected}")]
    WrongKind { expected: &'static str, found: String },
    #[error("the {0} was altered after it was signed (its signature does not match)")]
    Tampered(&'static str),
    #[error("cannot sign: {0}")]
    Signing(String),
}

/// A product instance of a satellite pool as the satellite reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedInstance {
    pub pid: String,
    pub sn: String,
    pub hostname: String,
    /// Satellite time, Unix milliseconds.
    pub last_contact_at: i64,
    /// Licenses in use per entitlement tag (empty when its usage was released).
    pub usage: BTreeMap<String, i64>,
}

/// An instance the satellite no longer has in the pool (removed, or moved to another pool).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedInstance {
    pub pid: String,
    pub sn: String,
}

/// What changed in one pool: every instance in a full sync; in a standard one, those changed
/// since the request the last applied response answered, and those removed since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolReport {
    pub name: String,
    pub instances: Vec<ReportedInstance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<RemovedInstance>,
}

/// Satellite → cloud.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// The satellite's identifier in the cloud (from the approval).
    pub satellite_id: i64,
    pub local_account: String,
    pub smart_account: String,
    /// 1, 2, ... per local account; each request has a new one.
    pub sequence: i64,
    /// The sequence of the last response the satellite applied (0: none yet).
    pub acknowledges: i64,
    /// Full: the pools' whole state, which replaces the cloud's copy; standard: the changes.
    pub full: bool,
    /// Satellite time, Unix milliseconds.
    pub created_at: i64,
    pub pools: Vec<PoolReport>,
}

/// Cloud → satellite: the answer to the request of the same sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    pub satellite_id: i64,
    pub local_account: String,
    pub smart_account: String,
    /// The sequence of the request it answers (and acknowledges).
    pub sequence: i64,
    /// Cloud time, Unix milliseconds.
    pub created_at: i64,
    /// The pools the satellite serves with their licenses as the cloud holds them now: the
    /// satellite's copy is replaced by them (the cloud is authoritative after a sync).
    pub pools: Vec<GrantedPool>,
    /// Instances the cloud's operator removed, until a request reports them gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<RemovedFromPool>,
}

/// An instance of a pool the cloud removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemovedFromPool {
    pub pool: String,
    pub pid: String,
    pub sn: String,
}

/// A signed synchronisation file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncFile {
    pub kind: String,
    pub signature: String,
    pub payload: String,
    /// Always [`END`], written last: a file cut short lacks it.
    pub end: String,
}

pub const END: &str = "end of smartlic synchronisation file";

fn signing_input(kind: &str, payload: &str) -> Vec<u8> {
    format!("smartlic-sync-v1\n{kind}\n{payload}").into_bytes()
}

impl SyncFile {
    pub fn seal<T: Serialize>(kind: &str, document: &T, key: &SigningKey) -> Result<SyncFile, SyncError> {
        let payload = serde_norway::to_string(document).map_err(|e| SyncError::Signing(e.to_string()))?;
        let signature = key.sign_b64(&signing_input(kind, &payload)).map_err(|e| SyncError::Signing(e.to_string()))?;
        Ok(SyncFile { kind: kind.to_string(), signature, payload, end: END.to_string() })
    }

    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }

    /// Reads a file; one cut short lacks its payload's end or a field, and does not parse.
    pub fn parse(text: &str) -> Result<SyncFile, SyncError> {
        let file: SyncFile = serde_norway::from_str(text).map_err(|e| SyncError::Truncated(e.to_string()))?;
        if file.end != END {
            return Err(SyncError::Truncated(format!("it does not end with '{END}'")));
        }
        Ok(file)
    }

    fn open<T: DeserializeOwned>(
        &self,
        kind: &'static str,
        what: &'static str,
        key: &PublicKey,
    ) -> Result<T, SyncError> {
        if self.kind != kind {
            return Err(SyncError::WrongKind { expected: kind, found: self.kind.clone() });
        }
        if !key.verify_b64(&signing_input(&self.kind, &self.payload), &self.signature) {
            return Err(SyncError::Tampered(what));
        }
        serde_norway::from_str(&self.payload).map_err(|e| SyncError::Truncated(e.to_string()))
    }

    /// The satellite and local account a document names, before its signature is checked: the
    /// receiver needs them to find the key that must have signed it.
    pub fn claim(&self) -> Result<(i64, String), SyncError> {
        #[derive(Deserialize)]
        struct Claim {
            satellite_id: i64,
            local_account: String,
        }
        let claim: Claim = serde_norway::from_str(&self.payload).map_err(|e| SyncError::Truncated(e.to_string()))?;
        Ok((claim.satellite_id, claim.local_account))
    }

    /// A request signed by the satellite's `key`.
    pub fn open_request(&self, key: &PublicKey) -> Result<SyncRequest, SyncError> {
        self.open(KIND_SYNC_REQUEST, "synchronisation request", key)
    }

    /// A response signed by the cloud CA's `key`.
    pub fn open_response(&self, key: &PublicKey) -> Result<SyncResponse, SyncError> {
        self.open(KIND_SYNC_RESPONSE, "synchronisation response", key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;

    fn request() -> SyncRequest {
        SyncRequest {
            satellite_id: 1,
            local_account: "Plant".into(),
            smart_account: "example.com".into(),
            sequence: 3,
            acknowledges: 2,
            full: false,
            created_at: 1_800_000_000_000,
            pools: vec![PoolReport {
                name: "Lab".into(),
                instances: vec![ReportedInstance {
                    pid: "C9300".into(),
                    sn: "FCW1".into(),
                    hostname: "sw1".into(),
                    last_contact_at: 1_800_000_000_000,
                    usage: [("ACI Essentials".to_string(), 10)].into(),
                }],
                removed: vec![RemovedInstance { pid: "C9300".into(), sn: "FCW2".into() }],
            }],
        }
    }

    /// A file opens only unaltered, whole, as its kind, with its sender's key.
    #[test]
    fn files_are_checked_for_truncation_kind_and_signature() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let text = SyncFile::seal(KIND_SYNC_REQUEST, &request(), &key).unwrap().to_yaml();
        let file = SyncFile::parse(&text).unwrap();
        assert_eq!(file.claim().unwrap(), (1, "Plant".to_string()));
        assert_eq!(file.open_request(&key.public_key()).unwrap(), request());
        assert!(matches!(SyncFile::parse(&text[..text.len() / 2]), Err(SyncError::Truncated(_))));
        let altered = SyncFile::parse(&text.replace("10", "1")).unwrap();
        assert!(matches!(altered.open_request(&key.public_key()), Err(SyncError::Tampered(_))));
        assert!(matches!(file.open_response(&key.public_key()), Err(SyncError::WrongKind { .. })));
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(matches!(file.open_request(&other.public_key()), Err(SyncError::Tampered(_))));
    }
}
