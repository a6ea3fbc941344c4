//! The satellite's synchronisation with the cloud (S-3): the request the satellite sends (usage
//! and instances of its pools, up) and the cloud's response (the pools' licenses, down), online
//! or as YAML files carried by hand (seed 001's manual synchronisation).
//!
//! A file is `{kind, signature, payload, end}` in YAML: the payload is the document's YAML text as
//! signed, so no re-serialisation changes what was signed. The satellite signs requests with its
//! key (the one the cloud certified at approval), the cloud signs responses with its CA key.
//! Each document names the satellite, the local account and a sequence number: the cloud and
//! the satellite refuse a sequence they have applied already (replayed) or an older one (stale).
//! Each document also names the key that signed it (`signed_by`): a file whose signature matches
//! the key it names but not the one the receiver expects is another sender's (foreign), one whose
//! signature matches neither was altered (tampered).
//!
//! The request, which carries every instance in a full synchronisation, is written and read as
//! a stream of such documents ([`stream`]); the response and the authentication header, small,
//! are one document ([`SyncFile`]).

pub mod stream;

use crate::keys::{KeyAlgorithm, PublicKey, SigningKey};
use crate::satellite::GrantedPool;
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const KIND_SYNC_REQUEST: &str = "smartlic-sync-request";
pub const KIND_SYNC_RESPONSE: &str = "smartlic-sync-response";
pub const KIND_SYNC_AUTH: &str = "smartlic-sync-auth";
/// The header that authenticates a network synchronisation request ([`SyncAuth`]).
pub const SYNC_AUTH_HEADER: &str = "x-smartlic-satellite-auth";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the file is truncated or not a synchronisation file (YAML with kind, signature and payload): {0}")]
    Truncated(String),
    #[error("the file is a {found}, not a {expected} (a foreign file)")]
    WrongKind { expected: &'static str, found: String },
    #[error("the {0} is tampered: it was altered after it was signed (its signature does not match)")]
    Tampered(&'static str),
    #[error("the {what} is foreign: it was signed by another manager (manager {signer}), not the one it names")]
    Foreign { what: &'static str, signer: String },
    #[error("cannot sign: {0}")]
    Signing(String),
    #[error("the header is not a signed satellite authentication (base64 of a synchronisation file): {0}")]
    BadHeader(String),
    #[error("cannot write the synchronisation file: {0}")]
    Write(String),
}

impl SyncError {
    fn write(e: std::io::Error) -> SyncError {
        SyncError::Write(e.to_string())
    }
}

/// The public key that signed a document, named inside it so that a receiver can tell another
/// sender's genuine file (foreign) from an altered one (tampered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBy {
    pub algorithm: KeyAlgorithm,
    /// The raw public key, base64.
    pub key: String,
}

impl SignedBy {
    pub fn of(key: &SigningKey) -> SignedBy {
        let public = key.public_key();
        SignedBy { algorithm: public.algorithm, key: B64.encode(&public.raw) }
    }

    fn public_key(&self) -> Option<PublicKey> {
        Some(PublicKey { algorithm: self.algorithm, raw: B64.decode(&self.key).ok()? })
    }
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
    /// Pools the satellite no longer serves (the cloud's operator reassigned them), until a
    /// request acknowledges a response that carried them: the satellite stops serving them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<String>,
    /// The cloud CA's key, which signed the response.
    pub signed_by: SignedBy,
}

/// Who sends a network synchronisation request, signed by the satellite's key and sent as the
/// [`SYNC_AUTH_HEADER`] header: the cloud authenticates the sender before it reads a body that
/// may be hundreds of megabytes (a full request of a million instances). The timestamp and the
/// nonce make a header good once, within the cloud's clock tolerance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncAuth {
    pub satellite_id: i64,
    pub local_account: String,
    /// Satellite time, Unix milliseconds.
    pub timestamp: i64,
    pub nonce: String,
    /// The satellite's key, which signed it.
    pub signed_by: SignedBy,
}

impl SyncAuth {
    /// The header's value: the sealed document (as a synchronisation file), base64.
    pub fn to_header(&self, key: &SigningKey) -> Result<String, SyncError> {
        Ok(B64.encode(SyncFile::seal(KIND_SYNC_AUTH, self, key)?.to_yaml()))
    }
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
        let signed = signing_input(&self.kind, &self.payload);
        if !key.verify_b64(&signed, &self.signature) {
            return Err(self.misdirected(what, &signed).unwrap_or(SyncError::Tampered(what)));
        }
        serde_norway::from_str(&self.payload).map_err(|e| SyncError::Truncated(e.to_string()))
    }

    /// A file whose signature the receiver's key does not match but the key it names does: a
    /// genuine file of another sender (foreign) rather than an altered one.
    fn misdirected(&self, what: &'static str, signed: &[u8]) -> Option<SyncError> {
        #[derive(Deserialize)]
        struct Signer {
            signed_by: SignedBy,
        }
        let named = serde_norway::from_str::<Signer>(&self.payload).ok()?.signed_by.public_key()?;
        named
            .verify_b64(signed, &self.signature)
            .then(|| SyncError::Foreign { what, signer: crate::satellite::manager_id(&named) })
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

    /// The sealed [`SyncAuth`] a header carries, not yet checked: [`SyncFile::claim`] names the
    /// satellite whose key must have signed it, [`SyncFile::open_auth`] checks it.
    pub fn from_header(value: &str) -> Result<SyncFile, SyncError> {
        let bytes = B64.decode(value.trim()).map_err(|e| SyncError::BadHeader(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| SyncError::BadHeader(e.to_string()))?;
        SyncFile::parse(&text).map_err(|e| SyncError::BadHeader(e.to_string()))
    }

    /// A satellite authentication signed by the satellite's `key`.
    pub fn open_auth(&self, key: &PublicKey) -> Result<SyncAuth, SyncError> {
        self.open(KIND_SYNC_AUTH, "satellite authentication", key)
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

    fn response(key: &SigningKey) -> SyncResponse {
        SyncResponse {
            satellite_id: 1,
            local_account: "Plant".into(),
            smart_account: "example.com".into(),
            sequence: 3,
            created_at: 1_800_000_000_000,
            pools: Vec::new(),
            removed: vec![RemovedFromPool { pool: "Lab".into(), pid: "C9300".into(), sn: "FCW10".into() }],
            released: vec!["Spare".into()],
            signed_by: SignedBy::of(key),
        }
    }

    /// A file opens only unaltered, whole, as its kind, with its sender's key; another
    /// sender's genuine file is told apart from an altered one.
    #[test]
    fn files_are_checked_for_truncation_kind_and_signature() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let text = SyncFile::seal(KIND_SYNC_RESPONSE, &response(&key), &key).unwrap().to_yaml();
        let file = SyncFile::parse(&text).unwrap();
        assert_eq!(file.claim().unwrap(), (1, "Plant".to_string()));
        assert_eq!(file.open_response(&key.public_key()).unwrap(), response(&key));
        assert!(matches!(SyncFile::parse(&text[..text.len() / 2]), Err(SyncError::Truncated(_))));
        let altered = SyncFile::parse(&text.replace("10", "1")).unwrap();
        assert!(matches!(altered.open_response(&key.public_key()), Err(SyncError::Tampered(_))));
        assert!(matches!(file.open_auth(&key.public_key()), Err(SyncError::WrongKind { .. })));
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let foreign = file.open_response(&other.public_key()).unwrap_err();
        assert!(matches!(foreign, SyncError::Foreign { .. }), "{foreign:?}");
        assert!(foreign.to_string().contains("foreign"), "{foreign}");
        // An altered file naming its own key is still tampered, not foreign.
        let forged = SyncFile::parse(&text.replace("10", "1")).unwrap();
        assert!(matches!(forged.open_response(&other.public_key()), Err(SyncError::Tampered(_))));
    }

    /// A header opens with its satellite's key only; another key's is foreign, garbage is named.
    #[test]
    fn auth_headers_are_checked_like_files() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let auth = SyncAuth {
            satellite_id: 4,
            local_account: "Plant".into(),
            timestamp: 1_800_000_000_000,
            nonce: "n-1".into(),
            signed_by: SignedBy::of(&key),
        };
        let file = SyncFile::from_header(&auth.to_header(&key).unwrap()).unwrap();
        assert_eq!(file.claim().unwrap(), (4, "Plant".to_string()));
        assert_eq!(file.open_auth(&key.public_key()).unwrap(), auth);
        assert!(matches!(file.open_response(&key.public_key()), Err(SyncError::WrongKind { .. })));
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(matches!(file.open_auth(&other.public_key()), Err(SyncError::Foreign { .. })));
        let bad = SyncFile::from_header("not base64!").unwrap_err();
        assert!(bad.to_string().contains("not a signed satellite authentication"), "{bad}");
    }
}
