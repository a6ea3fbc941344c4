//! Keys and signatures. Devices sign with Ed25519 or ECDSA P-256 (no RSA generation on the
//! hot path); the manager signs with the P-256 key of its certificate authority. The CA
//! certificates a device imports as trust points may also hold ECDSA P-384 or RSA keys (a
//! corporate or TLS-inspecting proxy's CA): those keys are read and verify, never generated.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is not a PKCS#8 Ed25519 or ECDSA P-256 key")]
    BadPrivateKey,
    #[error("key generation failed")]
    Generation,
    #[error("signing failed")]
    Signing,
    #[error("{} keys are only verified here: devices and the manager sign with ed25519 or ecdsa-p256", .0.as_str())]
    VerifyOnly(KeyAlgorithm),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
    /// Verify only (CA certificates).
    EcdsaP384,
    /// Verify only (CA certificates): PKCS#1 v1.5 signatures, 2048 to 8192 bits.
    Rsa,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Rsa => "rsa",
        }
    }

    /// The name an operator reads (`show crypto pki trustpoints`).
    pub fn label(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::EcdsaP384 => "ECDSA P-384",
            KeyAlgorithm::Rsa => "RSA",
        }
    }

    /// A signing algorithm by its [`as_str`](Self::as_str) name: a device's key, never a
    /// verify-only one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ed25519" => Some(KeyAlgorithm::Ed25519),
            "ecdsa-p256" => Some(KeyAlgorithm::EcdsaP256),
            _ => None,
        }
    }

    fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Rsa => &rcgen::PKCS_RSA_SHA256,
        }
    }

    pub(crate) fn from_rcgen(alg: &rcgen::SignatureAlgorithm) -> Option<Self> {
        if alg == &rcgen::PKCS_ED25519 {
            Some(KeyAlgorithm::Ed25519)
        } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            Some(KeyAlgorithm::EcdsaP256)
        } else {
            None
        }
    }
}

/// A public key as carried in an ID certificate: the algorithm and the raw key bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: KeyAlgorithm,
    pub raw: Vec<u8>,
}

impl PublicKey {
    /// Checks a signature made over `message`; any malformed input is simply "no".
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.algorithm {
            KeyAlgorithm::Ed25519 => &signature::ED25519,
            KeyAlgorithm::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
            KeyAlgorithm::Rsa => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(alg, &self.raw).verify(message, signature).is_ok()
    }

    /// The key's size in bits: the modulus of an RSA key (`raw` is its DER `RSAPublicKey`),
    /// the curve of the others. 0 for an RSA key that does not parse.
    pub fn bits(&self) -> usize {
        match self.algorithm {
            KeyAlgorithm::Ed25519 | KeyAlgorithm::EcdsaP256 => 256,
            KeyAlgorithm::EcdsaP384 => 384,
            KeyAlgorithm::Rsa => {
                use x509_parser::prelude::FromDer;
                x509_parser::public_key::RSAPublicKey::from_der(&self.raw).map_or(0, |(_, key)| {
                    let leading_zeros = key.modulus.iter().take_while(|b| **b == 0).count();
                    let modulus = &key.modulus[leading_zeros..];
                    modulus.first().map_or(0, |top| modulus.len() * 8 - top.leading_zeros() as usize)
                })
            }
        }
    }

    /// What an operator reads about the key: `RSA (2048 bit)`, `ECDSA P-384 (384 bit)`.
    pub fn description(&self) -> String {
        format!("{} ({} bit)", self.algorithm.label(), self.bits())
    }

    /// Like [`verify`](Self::verify) with the signature in base64, as in the signature header.
    pub fn verify_b64(&self, message: &[u8], signature_b64: &str) -> bool {
        B64.decode(signature_b64.trim()).is_ok_and(|sig| self.verify(message, &sig))
    }
}

enum Inner {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A private key able to sign messages and certificate requests.
pub struct SigningKey {
    inner: Inner,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

/// Shows the algorithm only: a private key never reaches a log.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.algorithm().as_str())
    }
}

impl SigningKey {
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            KeyAlgorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generation)?,
            KeyAlgorithm::EcdsaP256 => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .map_err(|_| KeyError::Generation)?,
            KeyAlgorithm::EcdsaP384 | KeyAlgorithm::Rsa => return Err(KeyError::VerifyOnly(algorithm)),
        };
        Self::from_pkcs8(pkcs8.as_ref())
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let inner = if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Inner::Ed25519(k)
        } else {
            let k = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
                .map_err(|_| KeyError::BadPrivateKey)?;
            Inner::Ecdsa(k)
        };
        Ok(SigningKey { inner, pkcs8: der.to_vec(), rng })
    }

    /// Reads a `PRIVATE KEY` PEM block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let parsed = rcgen::KeyPair::from_pem(pem).map_err(|_| KeyError::BadPrivateKey)?;
        Self::from_pkcs8(&parsed.serialize_der())
    }

    pub fn to_pem(&self) -> String {
        self.rcgen_key().serialize_pem()
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.inner {
            Inner::Ed25519(_) => KeyAlgorithm::Ed25519,
            Inner::Ecdsa(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        let raw = match &self.inner {
            Inner::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Inner::Ecdsa(k) => k.public_key().as_ref().to_vec(),
        };
        PublicKey { algorithm: self.algorithm(), raw }
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Inner::Ecdsa(k) => Ok(k.sign(&self.rng, message).map_err(|_| KeyError::Signing)?.as_ref().to_vec()),
        }
    }

    pub fn sign_b64(&self, message: &[u8]) -> Result<String, KeyError> {
        Ok(B64.encode(self.sign(message)?))
    }

    /// The same key in rcgen's form, for certificates and certificate requests.
    pub(crate) fn rcgen_key(&self) -> rcgen::KeyPair {
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&self.pkcs8.as_slice().into(), self.algorithm().rcgen())
            .expect("a key ring accepted is a key rcgen accepts")
    }

    /// A PKCS#10 certificate request (PEM) with the given common name, signed by this key.
    pub fn certificate_request(&self, common_name: &str) -> Result<String, KeyError> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let csr = params.serialize_request(&self.rcgen_key()).map_err(|_| KeyError::Signing)?;
        csr.pem().map_err(|_| KeyError::Signing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_both_algorithms() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let key = SigningKey::generate(alg).unwrap();
            let sig = key.sign(b"hello").unwrap();
            assert!(key.public_key().verify(b"hello", &sig));
            assert!(!key.public_key().verify(b"hellO", &sig));
            let again = SigningKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            assert!(!key.public_key().verify_b64(b"hello", "not base64!"));
        }
        assert!(SigningKey::from_pkcs8(b"junk").is_err());
    }
}
