//! Signed exchanges with the manager over the device protocol (`smartlic_proto::wire`).
//!
//! Every request is signed by a device key and every answer, errors included, must carry the
//! manager's signature and the request's nonce: a device acts on nothing it cannot prove the
//! manager said in answer to that very request. TLS may trust several CAs (a TLS-inspecting
//! proxy's, G-2); answers are trusted from the manager's CA only.

use crate::identity::DeviceIdentity;
use crate::tls;
use rand::distributions::{Alphanumeric, DistString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use smartlic_proto::wire::{
    self, AuthorizeRequest, AuthorizeResponse, ConvertRequest, ConvertResponse, DeregisterRequest, DeregisterResponse,
    Envelope, ErrorResponse, RegisterRequest, RegisterResponse, RenewIdRequest, RenewIdResponse, Udi, Usage,
};
use smartlic_proto::{cert, KeyAlgorithm, PublicKey, SigningKey};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up the manager client: {0}")]
    Setup(String),
    #[error("cannot prepare the request: {0}")]
    Local(String),
    #[error("cannot reach the manager: {0}")]
    Transport(String),
    /// The manager answered with a (signed) protocol error.
    #[error("{message} ({code})")]
    Refused { status: u16, code: String, message: String, field: Option<String> },
    #[error("{}", wire::text::BAD_SIGNATURE)]
    BadSignature,
    /// A satellite's answer whose certificate is expired, not yet valid, or not issued by the
    /// manager CA the device trusts (seed 004 scenario 6).
    #[error("{}", wire::text::SATELLITE_CERTIFICATE_INVALID)]
    SatelliteCertificate,
    #[error("malformed answer from the manager: {0}")]
    Malformed(String),
}

/// A success answer, which echoes the nonce of the request it answers.
pub trait Answer: DeserializeOwned {
    fn request_nonce(&self) -> &str;
}

macro_rules! answers {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn request_nonce(&self) -> &str {
                &self.request_nonce
            }
        }
    )*};
}
answers!(RegisterResponse, RenewIdResponse, AuthorizeResponse, DeregisterResponse, ConvertResponse);

/// A fresh request nonce: 24 alphanumeric characters (~143 bits), so never reused in practice.
pub fn new_nonce() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
}

/// The JSON body of a request and the base64 signature of it by `key`, as sent to `path`.
pub fn request_bytes<Req: Serialize>(
    path: &str,
    key: &SigningKey,
    req: &Req,
) -> Result<(Vec<u8>, String), ClientError> {
    let body = serde_json::to_vec(req).map_err(|e| ClientError::Local(e.to_string()))?;
    let signature =
        key.sign_b64(&wire::request_signing_input(path, &body)).map_err(|e| ClientError::Local(e.to_string()))?;
    Ok((body, signature))
}

/// Checks and decodes the manager's answer at `path`: the signature first (an unsigned answer
/// is worth nothing, not even its error text), then the status, then that the answer, success
/// or error, echoes `nonce` (a recorded answer to another request is ignored). Returns the
/// answer and which of `managers` signed it.
pub fn read_answer<Resp: Answer>(
    managers: &[PublicKey],
    path: &str,
    status: u16,
    signature: Option<&str>,
    body: &[u8],
    nonce: &str,
) -> Result<(Resp, usize), ClientError> {
    let signed = wire::response_signing_input(path, body);
    let signer = signature
        .and_then(|s| managers.iter().position(|key| key.verify_b64(&signed, s)))
        .ok_or(ClientError::BadSignature)?;
    let other_request = || ClientError::Malformed("the answer is for another request (its nonce differs)".into());
    if !(200..300).contains(&status) {
        return Err(match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(ErrorResponse { error, request_nonce }) if request_nonce.as_deref() == Some(nonce) => {
                ClientError::Refused { status, code: error.code, message: error.message, field: error.field }
            }
            Ok(_) => other_request(),
            Err(e) => ClientError::Malformed(format!("HTTP status {status} without a valid error body: {e}")),
        });
    }
    let answer: Resp = serde_json::from_slice(body).map_err(|e| ClientError::Malformed(e.to_string()))?;
    if answer.request_nonce() != nonce {
        return Err(other_request());
    }
    Ok((answer, signer))
}

/// The key that signed a satellite's answer, from the certificate sent with it (header
/// [`wire::SATELLITE_CERTIFICATE_HEADER`], base64 of the PEM), and which of `managers` issued
/// that certificate: it must be one of them and valid at `now_ms` by the device's clock (S-6).
pub fn satellite_signer(managers: &[PublicKey], header: &str, now_ms: i64) -> Result<(PublicKey, usize), ClientError> {
    use base64::{engine::general_purpose::STANDARD as B64, Engine};
    let pem = B64.decode(header).ok().and_then(|bytes| String::from_utf8(bytes).ok());
    let pem = pem.ok_or(ClientError::SatelliteCertificate)?;
    let (issuer, checked) = managers
        .iter()
        .enumerate()
        .find_map(|(i, key)| cert::issued_by(&pem, key).ok().map(|c| (i, c)))
        .ok_or(ClientError::SatelliteCertificate)?;
    let now_secs = now_ms.div_euclid(1000);
    if !(checked.not_before..=checked.not_after).contains(&now_secs) {
        return Err(ClientError::SatelliteCertificate);
    }
    Ok((checked.public_key, issuer))
}

/// A CA certificate (PEM) whose key may sign the manager's answers.
#[derive(Clone)]
struct AnswerCa {
    pem: String,
    key: PublicKey,
}

fn answer_cas(ca_pem: &str) -> Result<Vec<AnswerCa>, ClientError> {
    let certs = cert::certificates_of_bundle(ca_pem).map_err(|e| ClientError::Setup(e.to_string()))?;
    Ok(certs.into_iter().map(|(pem, key)| AnswerCa { pem, key }).collect())
}

/// A connection to one manager. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct ManagerClient {
    http: reqwest::Client,
    base: String,
    /// The CAs an answer to a device not yet registered may be signed by; a registered device
    /// accepts only the one it recorded at registration ([`DeviceIdentity::manager_ca`]).
    answer_cas: Vec<AnswerCa>,
    /// Evaluation use reported with a registration ([`reporting_evaluation`](Self::reporting_evaluation)).
    evaluation_used_ms: Option<i64>,
}

impl ManagerClient {
    /// `base_url` like `https://127.0.0.1:8443`, or with a path the protocol paths are appended
    /// to (`https://sat:8443/SmartTransport`, docs/PROTOCOL.md); `ca_pem` is the manager's CA certificate,
    /// which both authenticates its TLS listener and verifies its answers (see
    /// [`answers_signed_by`](Self::answers_signed_by) to tell them apart).
    pub fn new(base_url: &str, ca_pem: &str) -> Result<Self, ClientError> {
        Self::via(base_url, ca_pem, None)
    }

    /// Like [`new`](Self::new), through an HTTP(S) proxy when one is given (G-2).
    pub fn via(base_url: &str, ca_pem: &str, proxy: Option<&tls::ProxyConfig>) -> Result<Self, ClientError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| ClientError::Setup(format!("bad manager URL {base_url}: {e}")))?;
        if url.scheme() != "https" {
            return Err(ClientError::Setup(format!("the manager URL must be https: {base_url}")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ClientError::Setup(format!("the manager URL must have no query or fragment: {base_url}")));
        }
        let answer_cas = answer_cas(ca_pem)?;
        let http = tls::https_client_via(ca_pem, proxy).map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(ManagerClient {
            http,
            base: url.as_str().trim_end_matches('/').to_string(),
            answer_cas,
            evaluation_used_ms: None,
        })
    }

    /// Trusts answers signed by the CA certificates of `ca_pem` only, while TLS still trusts
    /// every CA given at creation: a TLS-inspecting proxy's CA (G-2) authenticates the
    /// connection but must not be able to forge the manager's answers.
    pub fn answers_signed_by(self, ca_pem: &str) -> Result<Self, ClientError> {
        Ok(ManagerClient { answer_cas: answer_cas(ca_pem)?, ..self })
    }

    /// Reports `used_ms` of evaluation with registrations, so the manager learns how much of
    /// its evaluation the device used (a reset or tampered evaluation shows there).
    pub fn reporting_evaluation(self, used_ms: i64) -> Self {
        ManagerClient { evaluation_used_ms: Some(used_ms), ..self }
    }

    /// The underlying HTTPS client, for other calls to the same manager (REST API, health).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The absolute URL of protocol `path` (which starts with `/`) on this manager: the
    /// configured URL, path included, then `path`. Signatures cover `path` alone.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers with a new key of `algorithm`; returns the key the certificate was issued for.
    pub async fn register(
        &self,
        udi: &Udi,
        hostname: Option<&str>,
        token: &str,
        force: bool,
        algorithm: KeyAlgorithm,
        now_ms: i64,
    ) -> Result<(SigningKey, RegisterResponse), ClientError> {
        let key = SigningKey::generate(algorithm).map_err(|e| ClientError::Local(e.to_string()))?;
        let answer = self.register_with_key(&key, udi, hostname, token, force, now_ms).await?;
        Ok((key, answer))
    }

    /// Registers with a key made beforehand (the load generator makes its keys ahead of time).
    pub async fn register_with_key(
        &self,
        key: &SigningKey,
        udi: &Udi,
        hostname: Option<&str>,
        token: &str,
        force: bool,
        now_ms: i64,
    ) -> Result<RegisterResponse, ClientError> {
        Ok(self.register_learning_ca(key, udi, hostname, token, force, now_ms).await?.0)
    }

    /// Registers with `key` (a retry after a lost answer sends the same key again, and the
    /// manager answers with the same instance) and returns the CA certificate (PEM) that signed
    /// the answer: the manager's, which the device records to trust it alone from then on.
    pub async fn register_learning_ca(
        &self,
        key: &SigningKey,
        udi: &Udi,
        hostname: Option<&str>,
        token: &str,
        force: bool,
        now_ms: i64,
    ) -> Result<(RegisterResponse, String), ClientError> {
        let csr = certificate_request(key, udi)?;
        let (answer, signer): (RegisterResponse, _) = self
            .exchange(wire::PATH_REGISTER, key, &self.answer_keys(None)?, now_ms, |envelope| RegisterRequest {
                envelope,
                token: token.to_string(),
                udi: udi.clone(),
                hostname: hostname.map(str::to_string),
                force,
                csr,
                evaluation_used_ms: self.evaluation_used_ms,
            })
            .await?;
        check_certified(key, &answer.certificate)?;
        Ok((answer, self.answer_cas[signer].pem.clone()))
    }

    /// The keys that may sign answers to `identity`: the manager CA it recorded at registration,
    /// or, before it has one, the CAs this client was given.
    fn answer_keys(&self, identity: Option<&DeviceIdentity>) -> Result<Vec<PublicKey>, ClientError> {
        match identity.and_then(|i| i.manager_ca.as_deref()) {
            Some(pem) => cert::public_keys_of_bundle(pem)
                .map_err(|e| ClientError::Local(format!("the recorded manager CA is not valid: {e}"))),
            None => Ok(self.answer_cas.iter().map(|ca| ca.key.clone()).collect()),
        }
    }

    /// Renews the ID certificate, moving to a new key of the same algorithm (the request is
    /// signed by the current key); returns the new key.
    pub async fn renew_id(
        &self,
        identity: &DeviceIdentity,
        now_ms: i64,
    ) -> Result<(SigningKey, RenewIdResponse), ClientError> {
        let current = identity.signing_key();
        let next = SigningKey::generate(current.algorithm()).map_err(|e| ClientError::Local(e.to_string()))?;
        let csr = certificate_request(&next, &identity.udi)?;
        let (answer, _): (RenewIdResponse, _) = self
            .exchange(wire::PATH_RENEW_ID, current, &self.answer_keys(Some(identity))?, now_ms, |envelope| {
                RenewIdRequest { envelope, instance_id: identity.instance_id.clone(), csr }
            })
            .await?;
        check_certified(&next, &answer.certificate)?;
        Ok((next, answer))
    }

    /// Reports the full usage list and learns whether it is authorized.
    pub async fn authorize(
        &self,
        identity: &DeviceIdentity,
        usage: &[Usage],
        now_ms: i64,
    ) -> Result<AuthorizeResponse, ClientError> {
        let keys = self.answer_keys(Some(identity))?;
        let (answer, _) = self
            .exchange(wire::PATH_AUTHORIZE, identity.signing_key(), &keys, now_ms, |envelope| AuthorizeRequest {
                envelope,
                instance_id: identity.instance_id.clone(),
                hostname: identity.hostname.clone(),
                usage: usage.to_vec(),
            })
            .await?;
        Ok(answer)
    }

    pub async fn deregister(&self, identity: &DeviceIdentity, now_ms: i64) -> Result<DeregisterResponse, ClientError> {
        let keys = self.answer_keys(Some(identity))?;
        let (answer, _) = self
            .exchange(wire::PATH_DEREGISTER, identity.signing_key(), &keys, now_ms, |envelope| DeregisterRequest {
                envelope,
                instance_id: identity.instance_id.clone(),
            })
            .await?;
        Ok(answer)
    }

    /// Device-led conversion (V-1): reports the legacy licenses the device holds.
    pub async fn convert(
        &self,
        identity: &DeviceIdentity,
        legacy: &[wire::LegacyLicense],
        now_ms: i64,
    ) -> Result<ConvertResponse, ClientError> {
        let keys = self.answer_keys(Some(identity))?;
        let (answer, _) = self
            .exchange(wire::PATH_CONVERT, identity.signing_key(), &keys, now_ms, |envelope| ConvertRequest {
                envelope,
                instance_id: identity.instance_id.clone(),
                legacy: legacy.to_vec(),
            })
            .await?;
        Ok(answer)
    }

    /// One signed round trip: `build` makes the request around a fresh envelope; the answer
    /// must be signed by one of `answer_keys` (which one is returned).
    async fn exchange<Req: Serialize, Resp: Answer>(
        &self,
        path: &'static str,
        key: &SigningKey,
        answer_keys: &[PublicKey],
        now_ms: i64,
        build: impl FnOnce(Envelope) -> Req,
    ) -> Result<(Resp, usize), ClientError> {
        let nonce = new_nonce();
        let envelope = Envelope { version: wire::PROTOCOL_VERSION, timestamp: now_ms, nonce: nonce.clone() };
        let (body, signature) = request_bytes(path, key, &build(envelope))?;
        let response = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(wire::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let signature =
            response.headers().get(wire::SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        // A gateway or proxy on the way that cannot reach the manager answers for itself: the
        // manager never spoke, so this is a failure to communicate (retried), not a bad answer.
        if signature.is_none() && matches!(status, 502..=504) {
            let why = format!("HTTP {} from a gateway or proxy on the way to the manager", response.status());
            return Err(ClientError::Transport(why));
        }
        let satellite = response
            .headers()
            .get(wire::SATELLITE_CERTIFICATE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|header| satellite_signer(answer_keys, header, now_ms))
            .transpose()?;
        let body = response.bytes().await.map_err(transport)?;
        match satellite {
            // Signed by the satellite's key: the signer is the manager CA that certified it.
            Some((key, issuer)) => read_answer(&[key], path, status, signature.as_deref(), &body, &nonce)
                .map(|(answer, _)| (answer, issuer)),
            None => read_answer(answer_keys, path, status, signature.as_deref(), &body, &nonce),
        }
    }
}

/// The CSR names the device by its UDI; the manager decides the certificate's final subject.
fn certificate_request(key: &SigningKey, udi: &Udi) -> Result<String, ClientError> {
    key.certificate_request(&format!("{}:{}", udi.pid, udi.sn)).map_err(|e| ClientError::Local(e.to_string()))
}

/// A certificate for some other key would leave the device unable to prove who it is.
fn check_certified(key: &SigningKey, certificate_pem: &str) -> Result<(), ClientError> {
    let certified =
        cert::public_key_of_certificate(certificate_pem).map_err(|e| ClientError::Malformed(e.to_string()))?;
    if certified != key.public_key() {
        return Err(ClientError::Malformed("the certificate issued is not for the device's key".into()));
    }
    Ok(())
}

fn transport(e: reqwest::Error) -> ClientError {
    ClientError::Transport(with_causes(&e))
}

/// An error's text followed by its causes': reqwest's own message rarely says why, the causes
/// do (refused, certificate unknown...).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartlic_proto::wire::ErrorDetail;
    use smartlic_proto::CertificateAuthority;

    const NOW_SECS: i64 = 1_800_000_000;

    fn manager() -> (CertificateAuthority, PublicKey) {
        let ca = CertificateAuthority::generate("test CA", NOW_SECS).unwrap();
        let key = cert::public_key_of_certificate(ca.cert_pem()).unwrap();
        (ca, key)
    }

    fn answer(nonce: &str) -> Vec<u8> {
        serde_json::to_vec(&DeregisterResponse { request_nonce: nonce.into(), timestamp: 1, instance_id: "i-1".into() })
            .unwrap()
    }

    fn sign(ca: &CertificateAuthority, path: &str, body: &[u8]) -> String {
        ca.signer().sign_b64(&wire::response_signing_input(path, body)).unwrap()
    }

    #[test]
    fn requests_are_signed_for_their_path_only() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let key = SigningKey::generate(alg).unwrap();
            let req = DeregisterRequest {
                envelope: Envelope { version: wire::PROTOCOL_VERSION, timestamp: 5, nonce: new_nonce() },
                instance_id: "i-1".into(),
            };
            let (body, sig) = request_bytes(wire::PATH_DEREGISTER, &key, &req).unwrap();
            assert_eq!(serde_json::from_slice::<DeregisterRequest>(&body).unwrap(), req);
            let public = key.public_key();
            assert!(public.verify_b64(&wire::request_signing_input(wire::PATH_DEREGISTER, &body), &sig));
            assert!(!public.verify_b64(&wire::request_signing_input(wire::PATH_AUTHORIZE, &body), &sig));
            let mut tampered = body.clone();
            tampered[body.len() - 3] ^= 1;
            assert!(!public.verify_b64(&wire::request_signing_input(wire::PATH_DEREGISTER, &tampered), &sig));
        }
    }

    /// A satellite's answer is trusted through its certificate: issued by the trusted manager
    /// CA and valid by the device's clock; expired or foreign, it reads as seed 004 scenario 6.
    #[test]
    fn satellite_answers_are_trusted_through_a_certificate_of_the_manager_ca() {
        use base64::{engine::general_purpose::STANDARD as B64, Engine};
        let (cloud, cloud_key) = manager();
        let (_, other_key) = manager();
        let satellite = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let csr = smartlic_proto::CertificateRequest::from_pem(&satellite.certificate_request("sat").unwrap()).unwrap();
        let year = 365 * 86_400;
        let issued = cloud.issue_id_certificate(&csr, "satellite:sat", 3, NOW_SECS, NOW_SECS + year).unwrap();
        let header = B64.encode(&issued.pem);
        let now_ms = (NOW_SECS + 10) * 1000;
        let (key, issuer) = satellite_signer(&[other_key.clone(), cloud_key.clone()], &header, now_ms).unwrap();
        assert_eq!((key, issuer), (satellite.public_key(), 1));
        let expired = satellite_signer(&[cloud_key], &header, (NOW_SECS + year + 1) * 1000).unwrap_err();
        assert!(matches!(expired, ClientError::SatelliteCertificate));
        assert!(expired.to_string().starts_with("Missing Id Certificate Serial Number Field;"), "{expired}");
        assert!(matches!(
            satellite_signer(std::slice::from_ref(&other_key), &header, now_ms),
            Err(ClientError::SatelliteCertificate)
        ));
        assert!(matches!(satellite_signer(&[other_key], "%%", now_ms), Err(ClientError::SatelliteCertificate)));
    }

    #[test]
    fn nonces_are_long_and_fresh() {
        let (a, b) = (new_nonce(), new_nonce());
        assert!(a.len() >= 16 && a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn accepts_only_answers_signed_by_the_manager_for_this_path() {
        let (ca, key) = manager();
        let path = wire::PATH_DEREGISTER;
        let body = answer("nonce-0123456789ab");
        let good = sign(&ca, path, &body);
        let (ok, signer): (DeregisterResponse, _) =
            read_answer(std::slice::from_ref(&key), path, 200, Some(&good), &body, "nonce-0123456789ab").unwrap();
        assert_eq!((ok.instance_id.as_str(), signer), ("i-1", 0));
        // With several CAs trusted, the answer says which one signed it.
        let (other_ca, other_key) = manager();
        let keys = [other_key, key.clone()];
        let (_, signer): (DeregisterResponse, _) =
            read_answer(&keys, path, 200, Some(&good), &body, "nonce-0123456789ab").unwrap();
        assert_eq!(signer, 1);

        let mut tampered = body.clone();
        tampered[body.len() - 3] ^= 1;
        let cases = [
            (body.clone(), None),
            (tampered, Some(good.clone())),
            (body.clone(), Some(sign(&ca, wire::PATH_AUTHORIZE, &body))),
            (body.clone(), Some(sign(&other_ca, path, &body))),
            (body.clone(), Some("not base64!".to_string())),
        ];
        for (body, sig) in cases {
            let err = read_answer::<DeregisterResponse>(
                std::slice::from_ref(&key),
                path,
                200,
                sig.as_deref(),
                &body,
                "nonce-0123456789ab",
            );
            assert!(matches!(err, Err(ClientError::BadSignature)));
        }
        let err = read_answer::<DeregisterResponse>(
            std::slice::from_ref(&key),
            path,
            200,
            Some(&good),
            &body,
            "another-nonce-0123",
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::Malformed(_)), "{err}");
        assert_eq!(ClientError::BadSignature.to_string(), "Data and signature do not match");
    }

    fn clock_skew_error(request_nonce: Option<&str>) -> Vec<u8> {
        serde_json::to_vec(&ErrorResponse {
            error: ErrorDetail {
                code: wire::code::CLOCK_SKEW.into(),
                message: wire::text::clock_skew(5),
                field: Some("timestamp".into()),
            },
            request_nonce: request_nonce.map(str::to_string),
        })
        .unwrap()
    }

    #[test]
    fn signed_errors_become_refusals_and_unsigned_ones_do_not() {
        let (ca, key) = manager();
        let path = wire::PATH_REGISTER;
        let body = clock_skew_error(Some("n"));
        let err = read_answer::<RegisterResponse>(
            std::slice::from_ref(&key),
            path,
            400,
            Some(&sign(&ca, path, &body)),
            &body,
            "n",
        )
        .unwrap_err();
        match &err {
            ClientError::Refused { status: 400, code, field: Some(field), .. } => {
                assert_eq!((code.as_str(), field.as_str()), (wire::code::CLOCK_SKEW, "timestamp"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.to_string(), format!("{} (CLOCK_SKEW)", wire::text::clock_skew(5)));
        let unsigned = read_answer::<RegisterResponse>(std::slice::from_ref(&key), path, 400, None, &body, "n");
        assert!(matches!(unsigned, Err(ClientError::BadSignature)));
        let junk = b"<html>bad gateway</html>";
        let err = read_answer::<RegisterResponse>(
            std::slice::from_ref(&key),
            path,
            502,
            Some(&sign(&ca, path, junk)),
            junk,
            "n",
        );
        assert!(matches!(err, Err(ClientError::Malformed(_))));
    }

    /// A recorded signed error (another request's, or one bound to no request) replayed to a
    /// device is not a refusal: it cannot make the device drop its registration.
    #[test]
    fn signed_errors_for_another_request_are_ignored() {
        let (ca, key) = manager();
        let path = wire::PATH_AUTHORIZE;
        for recorded in [clock_skew_error(Some("someone-elses-nonce")), clock_skew_error(None)] {
            let signature = sign(&ca, path, &recorded);
            let err = read_answer::<AuthorizeResponse>(
                std::slice::from_ref(&key),
                path,
                404,
                Some(&signature),
                &recorded,
                "my-own-nonce-0123",
            )
            .unwrap_err();
            assert!(matches!(&err, ClientError::Malformed(m) if m.contains("another request")), "{err:?}");
        }
    }

    #[test]
    fn refuses_bad_setup() {
        let (ca, _) = manager();
        assert!(ManagerClient::new("https://127.0.0.1:8443/", ca.cert_pem()).is_ok());
        for (url, pem) in
            [("http://127.0.0.1:8443", ca.cert_pem()), ("not a url", ca.cert_pem()), ("https://h", "junk")]
        {
            assert!(matches!(ManagerClient::new(url, pem), Err(ClientError::Setup(_))), "{url}");
        }
        let client = ManagerClient::new("https://127.0.0.1:8443/", ca.cert_pem()).unwrap();
        assert_eq!(client.url(wire::PATH_AUTHORIZE), "https://127.0.0.1:8443/device/v1/authorize");
        // A configured path is the base of the protocol paths (a satellite's, a gateway's).
        for (configured, expected) in [
            ("https://sat:8443/SmartTransport", "https://sat:8443/SmartTransport/device/v1/authorize"),
            (
                "https://SAT/Transportgateway/services/DeviceRequestHandler/",
                "https://sat/Transportgateway/services/DeviceRequestHandler/device/v1/authorize",
            ),
        ] {
            let client = ManagerClient::new(configured, ca.cert_pem()).unwrap();
            assert_eq!(client.url(wire::PATH_AUTHORIZE), expected);
        }
        for url in ["https://sat/SmartTransport?x=1", "https://sat/#top"] {
            assert!(matches!(ManagerClient::new(url, ca.cert_pem()), Err(ClientError::Setup(_))), "{url}");
        }
    }

    #[test]
    fn only_certificates_for_the_device_key_are_taken() {
        let (ca, _) = manager();
        let key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let udi = Udi { pid: "C9500-32C".into(), sn: "FXS1".into() };
        let issue = |k: &SigningKey| {
            let csr = smartlic_proto::CertificateRequest::from_pem(&certificate_request(k, &udi).unwrap()).unwrap();
            ca.issue_id_certificate(&csr, "PID:C9500-32C,SN:FXS1", 7, NOW_SECS, NOW_SECS + 1000).unwrap().pem
        };
        assert!(check_certified(&key, &issue(&key)).is_ok());
        let other = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        assert!(matches!(check_certified(&key, &issue(&other)), Err(ClientError::Malformed(_))));
    }
}
