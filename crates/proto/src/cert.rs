//! The manager's certificate authority: it issues device ID certificates from their
//! certificate requests, the TLS certificate of the manager's listener, and its key signs
//! every answer to a device.

use crate::keys::{KeyAlgorithm, PublicKey, SigningKey};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("the certificate request is not a valid PEM PKCS#10 request signed by its key")]
    BadRequest,
    #[error("the certificate request uses an unsupported key type (use Ed25519 or ECDSA P-256)")]
    UnsupportedKey,
    #[error("the certificate authority files are not valid: {0}")]
    BadAuthority(String),
    #[error("the certificate is not valid PEM X.509: {0}")]
    BadCertificate(String),
    /// A key TLS (rustls with ring) or the answer checks could not verify with.
    #[error(
        "the certificate's key is not supported: {0} (use RSA of 2048 to 8192 bits, ECDSA P-256 or P-384, or Ed25519)"
    )]
    UnsupportedCertificateKey(String),
    #[error("certificate generation failed: {0}")]
    Generation(String),
}

/// A parsed PKCS#10 request whose self-signature checked out: its key is known before any
/// certificate is issued, so a request body can be checked against it first.
pub struct CertificateRequest {
    csr: CertificateSigningRequestParams,
    pub public_key: PublicKey,
}

impl CertificateRequest {
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let csr = CertificateSigningRequestParams::from_pem(pem).map_err(|_| CertError::BadRequest)?;
        let algorithm = KeyAlgorithm::from_rcgen(csr.public_key.algorithm()).ok_or(CertError::UnsupportedKey)?;
        let public_key = PublicKey { algorithm, raw: csr.public_key.der_bytes().to_vec() };
        Ok(CertificateRequest { csr, public_key })
    }
}

/// A certificate issued to a device.
pub struct IssuedCertificate {
    pub pem: String,
    pub serial: String,
    pub public_key: PublicKey,
}

pub struct CertificateAuthority {
    cert_pem: String,
    issuer: rcgen::Certificate,
    issuer_key: rcgen::KeyPair,
    signer: SigningKey,
}

fn to_time(unix_secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const DAY_SECS: i64 = 86_400;

impl CertificateAuthority {
    /// A new P-256 authority valid 20 years from `now_secs`.
    pub fn generate(common_name: &str, now_secs: i64) -> Result<Self, CertError> {
        let signer = SigningKey::generate(KeyAlgorithm::EcdsaP256).map_err(|e| CertError::Generation(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name.push(DnType::OrganizationName, "smartlic");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = to_time(now_secs - DAY_SECS);
        params.not_after = to_time(now_secs + 20 * 365 * DAY_SECS);
        let key = signer.rcgen_key();
        let cert = params.self_signed(&key).map_err(|e| CertError::Generation(e.to_string()))?;
        let pem = cert.pem();
        Ok(CertificateAuthority { cert_pem: pem, issuer: cert, issuer_key: key, signer })
    }

    /// Loads an authority saved with [`cert_pem`](Self::cert_pem) and [`key_pem`](Self::key_pem).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let signer = SigningKey::from_pem(key_pem).map_err(|e| CertError::BadAuthority(e.to_string()))?;
        let key = signer.rcgen_key();
        let params =
            CertificateParams::from_ca_cert_pem(cert_pem).map_err(|e| CertError::BadAuthority(e.to_string()))?;
        let loaded = public_key_of_certificate(cert_pem).map_err(|e| CertError::BadAuthority(e.to_string()))?;
        if loaded != signer.public_key() {
            return Err(CertError::BadAuthority("the key does not belong to the certificate".into()));
        }
        // Re-signing the parameters gives rcgen an issuer with the same name and key.
        let issuer = params.self_signed(&key).map_err(|e| CertError::BadAuthority(e.to_string()))?;
        Ok(CertificateAuthority { cert_pem: cert_pem.to_string(), issuer, issuer_key: key, signer })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.signer.to_pem()
    }

    /// The key that signs the manager's answers to devices.
    pub fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// Issues an ID certificate for the key of `request`, naming the device `common_name`.
    pub fn issue_id_certificate(
        &self,
        request: &CertificateRequest,
        common_name: &str,
        serial: u64,
        not_before_secs: i64,
        not_after_secs: i64,
    ) -> Result<IssuedCertificate, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        params.not_before = to_time(not_before_secs);
        params.not_after = to_time(not_after_secs);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&request.csr.public_key, &self.issuer, &self.issuer_key)
            .map_err(|e| CertError::Generation(e.to_string()))?;
        Ok(IssuedCertificate {
            pem: cert.pem(),
            serial: format!("{serial:016X}"),
            public_key: request.public_key.clone(),
        })
    }

    /// A TLS server certificate for `names` (DNS names or IP addresses), with its private key
    /// in PEM. Valid five years from `now_secs`.
    pub fn issue_tls_certificate(&self, names: &[String], now_secs: i64) -> Result<(String, String), CertError> {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).map_err(|e| CertError::Generation(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, names.first().map_or("smartlic", String::as_str));
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| CertError::Generation(format!("bad server name: {e}")))?;
        params.not_before = to_time(now_secs - DAY_SECS);
        params.not_after = to_time(now_secs + 5 * 365 * DAY_SECS);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let rkey = key.rcgen_key();
        let cert = params
            .signed_by(&rkey, &self.issuer, &self.issuer_key)
            .map_err(|e| CertError::Generation(e.to_string()))?;
        Ok((cert.pem(), key.to_pem()))
    }
}

/// The public key inside a PEM certificate, e.g. the manager's CA held by a device.
pub fn public_key_of_certificate(pem: &str) -> Result<PublicKey, CertError> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| CertError::BadCertificate(e.to_string()))?;
    key_of_block(&block)
}

/// The public keys of every certificate in a PEM bundle (a device's trust points); at least one.
pub fn public_keys_of_bundle(pem: &str) -> Result<Vec<PublicKey>, CertError> {
    Ok(certificates_of_bundle(pem)?.into_iter().map(|(_, key)| key).collect())
}

/// Every certificate of a PEM bundle, each as its own PEM text with its public key; at least one.
pub fn certificates_of_bundle(pem: &str) -> Result<Vec<(String, PublicKey)>, CertError> {
    use base64::{engine::general_purpose::STANDARD as B64, Engine};
    let certs = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|block| {
            let block = block.map_err(|e| CertError::BadCertificate(e.to_string()))?;
            let b64 = B64.encode(&block.contents);
            let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
            let text = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
            Ok((text, key_of_block(&block)?))
        })
        .collect::<Result<Vec<_>, CertError>>()?;
    if certs.is_empty() {
        return Err(CertError::BadCertificate("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// The key of a certificate, by its algorithm and, for ECDSA, its curve (a P-384 key is not a
/// P-256 one); RSA keys too short or too long to verify are refused here rather than at TLS time.
fn key_of_block(block: &x509_parser::pem::Pem) -> Result<PublicKey, CertError> {
    let cert = block.parse_x509().map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let spki = cert.public_key();
    let unsupported = CertError::UnsupportedCertificateKey;
    let algorithm = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.3.101.112" => KeyAlgorithm::Ed25519,
        "1.2.840.113549.1.1.1" => KeyAlgorithm::Rsa,
        "1.2.840.10045.2.1" => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => KeyAlgorithm::EcdsaP256,
                Some("1.3.132.0.34") => KeyAlgorithm::EcdsaP384,
                Some("1.3.132.0.35") => return Err(unsupported("elliptic curve P-521".into())),
                Some(other) => return Err(unsupported(format!("elliptic curve {other}"))),
                None => return Err(unsupported("elliptic curve (none named)".into())),
            }
        }
        other => return Err(unsupported(format!("key algorithm {other}"))),
    };
    let key = PublicKey { algorithm, raw: spki.subject_public_key.data.to_vec() };
    if algorithm == KeyAlgorithm::Rsa && !(2048..=8192).contains(&key.bits()) {
        return Err(unsupported(format!("RSA key of {} bits", key.bits())));
    }
    Ok(key)
}

/// What a certificate checked against its issuer says: its key and validity (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedCertificate {
    pub public_key: PublicKey,
    pub not_before: i64,
    pub not_after: i64,
    pub serial: String,
}

/// Checks that `issuer` signed the PEM certificate (a satellite's, issued by the cloud CA,
/// S-6) and returns its facts; validity is the caller's to compare with its own clock.
pub fn issued_by(pem: &str, issuer: &PublicKey) -> Result<CheckedCertificate, CertError> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let cert = block.parse_x509().map_err(|e| CertError::BadCertificate(e.to_string()))?;
    if !issuer.verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data) {
        return Err(CertError::BadCertificate("it was not issued by the expected CA".into()));
    }
    let (not_before, not_after, serial) = certificate_facts(pem)?;
    Ok(CheckedCertificate { public_key: key_of_block(&block)?, not_before, not_after, serial })
}

/// Validity (not before, not after) of a PEM certificate in Unix seconds, and its serial in hex.
pub fn certificate_facts(pem: &str) -> Result<(i64, i64, String), CertError> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let cert = block.parse_x509().map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp(), cert.raw_serial_as_string().replace(':', "").to_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_id_certificates_for_device_keys() {
        let ca = CertificateAuthority::generate("test CA", 1_800_000_000).unwrap();
        let reloaded = CertificateAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let device = SigningKey::generate(alg).unwrap();
            let csr = device.certificate_request("C9500-32C:FXS1234").unwrap();
            let now = 1_800_000_000;
            let request = CertificateRequest::from_pem(&csr).unwrap();
            assert_eq!(request.public_key, device.public_key());
            let issued =
                reloaded.issue_id_certificate(&request, "C9500-32C:FXS1234", 42, now, now + 365 * DAY_SECS).unwrap();
            assert_eq!(issued.public_key, device.public_key());
            assert_eq!(public_key_of_certificate(&issued.pem).unwrap(), device.public_key());
            let (nb, na, serial) = certificate_facts(&issued.pem).unwrap();
            assert_eq!((nb, na - nb), (now, 365 * DAY_SECS));
            assert_eq!(serial, "2A");
        }
        // Answers signed by the authority verify with the public key of its certificate.
        let sig = ca.signer().sign(b"answer").unwrap();
        assert!(public_key_of_certificate(ca.cert_pem()).unwrap().verify(b"answer", &sig));
        // A bundle splits into its certificates, each readable on its own.
        let other = CertificateAuthority::generate("other", 1_800_000_000).unwrap();
        let split = certificates_of_bundle(&format!("{}\n{}", ca.cert_pem(), other.cert_pem())).unwrap();
        assert_eq!(split.len(), 2);
        for ((pem, key), original) in split.iter().zip([&ca, &other]) {
            assert_eq!(public_key_of_certificate(pem).unwrap(), *key);
            assert_eq!(*key, public_key_of_certificate(original.cert_pem()).unwrap());
        }
    }

    /// Trust points hold the CAs operators have: RSA (corporate roots, proxies), P-384, each
    /// labelled as what it is and able to verify what it signed; what TLS could not verify is
    /// refused with a message naming it.
    #[test]
    fn reads_rsa_and_p384_ca_keys_and_refuses_others() {
        let rsa = public_key_of_certificate(include_str!("../testdata/rsa2048-ca.pem")).unwrap();
        assert_eq!((rsa.algorithm, rsa.description()), (KeyAlgorithm::Rsa, "RSA (2048 bit)".to_string()));
        assert!(rsa.verify_b64(b"answer", include_str!("../testdata/rsa2048-answer.sig.b64")));
        assert!(!rsa.verify_b64(b"answeR", include_str!("../testdata/rsa2048-answer.sig.b64")));

        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let p384_ca = params.self_signed(&p384).unwrap().pem();
        let key = public_key_of_certificate(&p384_ca).unwrap();
        assert_eq!(key.description(), "ECDSA P-384 (384 bit)");
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &p384.serialize_der(),
            &rng,
        )
        .unwrap();
        assert!(key.verify(b"answer", signer.sign(&rng, b"answer").unwrap().as_ref()));
        let p256 = CertificateAuthority::generate("P-256 CA", 1_800_000_000).unwrap();
        assert_eq!(public_key_of_certificate(p256.cert_pem()).unwrap().description(), "ECDSA P-256 (256 bit)");

        for (pem, named) in [
            (include_str!("../testdata/rsa1024-ca.pem"), "not supported: RSA key of 1024 bits"),
            (include_str!("../testdata/p521-ca.pem"), "not supported: elliptic curve P-521"),
        ] {
            let refused = public_key_of_certificate(pem).unwrap_err().to_string();
            assert!(refused.contains(named) && refused.contains("(use RSA of 2048 to 8192 bits"), "{refused}");
            assert!(certificates_of_bundle(&format!("{}{pem}", p256.cert_pem())).is_err(), "one bad certificate");
        }
        // Verify-only keys are never a device's.
        assert!(matches!(SigningKey::generate(KeyAlgorithm::Rsa), Err(crate::keys::KeyError::VerifyOnly(_))));
        assert_eq!(KeyAlgorithm::parse(KeyAlgorithm::EcdsaP384.as_str()), None);
    }

    #[test]
    fn refuses_bad_requests_and_mismatched_files() {
        let ca = CertificateAuthority::generate("test CA", 1_800_000_000).unwrap();
        assert!(matches!(CertificateRequest::from_pem("junk"), Err(CertError::BadRequest)));
        let other = CertificateAuthority::generate("other", 1_800_000_000).unwrap();
        assert!(CertificateAuthority::from_pem(ca.cert_pem(), &other.key_pem()).is_err());
        assert!(public_key_of_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }
}
