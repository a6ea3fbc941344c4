//! Device protocol messages without a manager: the four request bodies the manager reads (and
//! the CSR inside), the signature header, and the four signed answers the agent reads.
//!
//! Input: a selector byte, a flags byte, then the signature header line, `\n`, the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use smartlic_agent::client::{read_answer, Answer, ClientError};
use smartlic_proto::wire::{self, AuthorizeRequest, DeregisterRequest, RegisterRequest, RenewIdRequest};
use smartlic_proto::{CertificateRequest, KeyAlgorithm, SigningKey};
use std::fmt::Debug;
use std::sync::LazyLock;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate(KeyAlgorithm::Ed25519).expect("key"));
const NONCE: &str = "fuzz-nonce-0000000000000000";

/// A request body the manager accepted reads back equal once written, and its signature
/// header only verifies for the body it was made over.
fn request<T: DeserializeOwned + Serialize + PartialEq + Debug>(path: &str, header: &str, body: &[u8]) -> Option<T> {
    assert!(!KEY.public_key().verify_b64(&wire::request_signing_input(path, body), header));
    let message: T = serde_json::from_slice(body).ok()?;
    let written = serde_json::to_vec(&message).expect("serialize");
    assert_eq!(serde_json::from_slice::<T>(&written).expect("written message reads back"), message);
    Some(message)
}

fn answer<T: Answer + Debug>(path: &str, flags: u8, header: &str, body: &[u8]) {
    let status = if flags & 2 == 0 { 200 } else { 400 };
    let signature = if flags & 1 == 1 {
        KEY.sign_b64(&wire::response_signing_input(path, body)).expect("sign")
    } else {
        header.to_string()
    };
    match read_answer::<T>(&[KEY.public_key()], path, status, Some(&signature), body, NONCE) {
        Ok((a, signer)) => assert!(status == 200 && signer == 0 && a.request_nonce() == NONCE),
        Err(ClientError::BadSignature) => assert!(flags & 1 == 0),
        Err(ClientError::Refused { code, .. }) => assert!(status == 400, "refusal {code} with status 200"),
        Err(ClientError::Malformed(why)) => assert!(!why.is_empty()),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, flags, rest @ ..] = data else { return };
    let (header, body) = smartlic_fuzz::split_line(rest);
    let header = String::from_utf8_lossy(header);
    match selector % 9 {
        0 => {
            if let Some(r) = request::<RegisterRequest>(wire::PATH_REGISTER, &header, body) {
                let _ = CertificateRequest::from_pem(&r.csr);
            }
        }
        1 => {
            if let Some(r) = request::<RenewIdRequest>(wire::PATH_RENEW_ID, &header, body) {
                let _ = CertificateRequest::from_pem(&r.csr);
            }
        }
        2 => drop(request::<AuthorizeRequest>(wire::PATH_AUTHORIZE, &header, body)),
        3 => drop(request::<DeregisterRequest>(wire::PATH_DEREGISTER, &header, body)),
        4 => drop(CertificateRequest::from_pem(&String::from_utf8_lossy(rest))),
        5 => answer::<wire::RegisterResponse>(wire::PATH_REGISTER, *flags, &header, body),
        6 => answer::<wire::RenewIdResponse>(wire::PATH_RENEW_ID, *flags, &header, body),
        7 => answer::<wire::AuthorizeResponse>(wire::PATH_AUTHORIZE, *flags, &header, body),
        _ => answer::<wire::DeregisterResponse>(wire::PATH_DEREGISTER, *flags, &header, body),
    }
});
