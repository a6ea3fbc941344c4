//! The satellite's registration with the cloud (S-2, S-6): the documents carried between them,
//! online or as files, and the satellite certificate that lets a device trust a satellite's
//! answers through the cloud CA it already trusts.
//!
//! Each document is sealed as `{"kind", "payload", "signature"}`: the payload is the JSON text
//! as signed (so no re-serialisation can change what was signed), the kind says which document
//! it is, and the signature covers both. A registration is signed by the satellite's key (the
//! key of its certificate request: proof of possession); an approval by the cloud CA's key.

use crate::cert::{self, CertError, CertificateRequest};
use crate::keys::{PublicKey, SigningKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub const KIND_REGISTRATION: &str = "smartlic-satellite-registration";
pub const KIND_APPROVAL: &str = "smartlic-satellite-approval";

#[derive(Debug, thiserror::Error)]
pub enum SatelliteError {
    #[error("the file is not a satellite document (JSON with kind, payload and signature): {0}")]
    NotADocument(String),
    #[error("the file is a {found}, not a {expected}")]
    WrongKind { expected: &'static str, found: String },
    #[error("the {0} was altered after it was signed (its signature does not match)")]
    Tampered(&'static str),
    #[error("the {0} is not valid: {1}")]
    Invalid(&'static str, String),
    #[error("the approval is for another satellite (its certificate is not for this satellite's key)")]
    Foreign,
    #[error("the approval's certificate was not issued by the cloud CA that signed it")]
    NotIssuedByCloud,
    #[error("cannot sign: {0}")]
    Signing(String),
}

/// What the satellite asks the cloud: to serve pools of `smart_account` for its local account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub satellite: String,
    pub local_account: String,
    /// The smart account's domain in the cloud.
    pub smart_account: String,
    /// The satellite's manager identifier ([`manager_id`]): it prefixes the tokens it issues.
    pub manager_id: String,
    /// PKCS#10 request (PEM) for the satellite's signing key; the document is signed by it too.
    pub csr: String,
    /// Satellite time, Unix milliseconds.
    pub created_at: i64,
}

/// One license record granted with a pool, as the cloud holds it at approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantedLicense {
    pub tag: String,
    pub sku: String,
    pub quantity: i64,
    /// `perpetual`, `term` or `subscription`.
    pub kind: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub subscription_id: Option<String>,
}

/// A virtual account the satellite serves from now on, with its licenses at approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantedPool {
    pub name: String,
    pub description: String,
    pub licenses: Vec<GrantedLicense>,
}

/// The cloud's answer to a registration: the satellite certificate and the pools it serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The satellite's identifier in the cloud (`smartlic admin satellite list`).
    pub satellite_id: i64,
    pub satellite: String,
    pub local_account: String,
    pub smart_account: String,
    pub smart_account_name: String,
    /// Issued by the cloud CA for the registration's key; devices check answers against it.
    pub certificate: String,
    /// The cloud CA certificate (PEM) that signed this approval and issued `certificate`.
    pub cloud_ca: String,
    pub pools: Vec<GrantedPool>,
    /// Cloud time, Unix milliseconds; the first sequence number of the later syncs is 1.
    pub approved_at: i64,
}

/// A sealed document as written to a file or sent over HTTPS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub kind: String,
    pub payload: String,
    pub signature: String,
}

fn signing_input(kind: &str, payload: &str) -> Vec<u8> {
    format!("smartlic-satellite-v1\n{kind}\n{payload}").into_bytes()
}

impl Sealed {
    pub fn seal<T: Serialize>(kind: &str, document: &T, key: &SigningKey) -> Result<Sealed, SatelliteError> {
        let payload = serde_json::to_string(document).map_err(|e| SatelliteError::Signing(e.to_string()))?;
        let signature =
            key.sign_b64(&signing_input(kind, &payload)).map_err(|e| SatelliteError::Signing(e.to_string()))?;
        Ok(Sealed { kind: kind.to_string(), payload, signature })
    }

    pub fn parse(text: &str) -> Result<Sealed, SatelliteError> {
        serde_json::from_str(text).map_err(|e| SatelliteError::NotADocument(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The payload of a document of `kind` whose signature `key` makes, or why not.
    fn open<T: DeserializeOwned>(
        &self,
        kind: &'static str,
        what: &'static str,
        key: impl FnOnce(&T) -> Result<PublicKey, SatelliteError>,
    ) -> Result<T, SatelliteError> {
        if self.kind != kind {
            return Err(SatelliteError::WrongKind { expected: kind, found: self.kind.clone() });
        }
        let document: T =
            serde_json::from_str(&self.payload).map_err(|e| SatelliteError::Invalid(what, e.to_string()))?;
        if !key(&document)?.verify_b64(&signing_input(&self.kind, &self.payload), &self.signature) {
            return Err(SatelliteError::Tampered(what));
        }
        Ok(document)
    }

    /// A registration signed by the key of its own certificate request.
    pub fn open_registration(&self) -> Result<(Registration, CertificateRequest), SatelliteError> {
        let what = "registration";
        let mut request = None;
        let registration = self.open(KIND_REGISTRATION, what, |r: &Registration| {
            let csr = CertificateRequest::from_pem(&r.csr).map_err(|e| SatelliteError::Invalid(what, e.to_string()))?;
            let key = csr.public_key.clone();
            request = Some(csr);
            Ok(key)
        })?;
        let request = request.ok_or(SatelliteError::Tampered(what))?;
        Ok((registration, request))
    }

    /// An approval signed by the cloud CA it carries, whose certificate that CA issued for
    /// `satellite_key`.
    pub fn open_approval(&self, satellite_key: &PublicKey) -> Result<Approval, SatelliteError> {
        let what = "approval";
        let invalid = |e: CertError| SatelliteError::Invalid(what, e.to_string());
        let approval = self
            .open(KIND_APPROVAL, what, |a: &Approval| cert::public_key_of_certificate(&a.cloud_ca).map_err(invalid))?;
        let cloud = cert::public_key_of_certificate(&approval.cloud_ca).map_err(invalid)?;
        let issued = cert::issued_by(&approval.certificate, &cloud).map_err(|_| SatelliteError::NotIssuedByCloud)?;
        if issued.public_key != *satellite_key {
            return Err(SatelliteError::Foreign);
        }
        Ok(approval)
    }
}

/// A manager's identifier: the first 8 hex digits of the SHA-256 of its signing key. Tokens
/// start with it, so a token brought to the wrong manager is recognised as such (S-4).
pub fn manager_id(key: &PublicKey) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.raw);
    digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;
    use crate::CertificateAuthority;

    const NOW: i64 = 1_800_000_000;

    fn registration(key: &SigningKey) -> Sealed {
        let doc = Registration {
            satellite: "sat1".into(),
            local_account: "Lab".into(),
            smart_account: "example.com".into(),
            manager_id: manager_id(&key.public_key()),
            csr: key.certificate_request("satellite:sat1").unwrap(),
            created_at: NOW * 1000,
        };
        Sealed::seal(KIND_REGISTRATION, &doc, key).unwrap()
    }

    fn approval(cloud: &CertificateAuthority, request: &CertificateRequest) -> Sealed {
        let issued = cloud.issue_id_certificate(request, "satellite:sat1", 9, NOW, NOW + 1000).unwrap();
        let doc = Approval {
            satellite_id: 1,
            satellite: "sat1".into(),
            local_account: "Lab".into(),
            smart_account: "example.com".into(),
            smart_account_name: "Example".into(),
            certificate: issued.pem,
            cloud_ca: cloud.cert_pem().into(),
            pools: vec![],
            approved_at: NOW * 1000,
        };
        Sealed::seal(KIND_APPROVAL, &doc, cloud.signer()).unwrap()
    }

    /// Documents open only as the kind they are, unaltered, and an approval only for the key
    /// it certifies.
    #[test]
    fn documents_are_checked_for_kind_signature_and_key() {
        let satellite = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let sealed = registration(&satellite);
        let text = sealed.to_json();
        let (doc, request) = Sealed::parse(&text).unwrap().open_registration().unwrap();
        assert_eq!((doc.satellite.as_str(), &request.public_key), ("sat1", &satellite.public_key()));
        let altered = Sealed { payload: sealed.payload.replace("example.com", "evil.com"), ..sealed.clone() };
        assert!(matches!(altered.open_registration(), Err(SatelliteError::Tampered("registration"))));
        assert!(matches!(Sealed::parse("{\"kind\":1}"), Err(SatelliteError::NotADocument(_))));

        let cloud = CertificateAuthority::generate("cloud", NOW).unwrap();
        let answer = approval(&cloud, &request);
        assert!(matches!(answer.open_registration(), Err(SatelliteError::WrongKind { .. })));
        assert_eq!(answer.open_approval(&satellite.public_key()).unwrap().satellite_id, 1);
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(matches!(answer.open_approval(&other.public_key()), Err(SatelliteError::Foreign)));
        let forged = Sealed { payload: answer.payload.replace("\"satellite_id\":1", "\"satellite_id\":2"), ..answer };
        assert!(matches!(forged.open_approval(&satellite.public_key()), Err(SatelliteError::Tampered("approval"))));
        assert_eq!(manager_id(&satellite.public_key()).len(), 8);
    }
}
