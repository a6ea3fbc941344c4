//! Satellite synchronisation files (S-3): the YAML a satellite or the cloud imports by hand.
//!
//! The input is tried twice: as a whole file (its signature cannot match, so this covers the
//! outer YAML, the truncation check and the claim read before the key is known) and as the
//! payload of a file signed by a trusted key, which reaches the document parser behind the
//! signature check. The first byte's low bit chooses a request or a response.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_proto::sync::{SyncError, SyncFile, END, KIND_SYNC_REQUEST, KIND_SYNC_RESPONSE};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::sync::LazyLock;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate(KeyAlgorithm::Ed25519).expect("key"));

fuzz_target!(|data: &[u8]| {
    let Some(text) = smartlic_fuzz::text(data) else { return };
    let key = KEY.public_key();
    if let Ok(file) = SyncFile::parse(text) {
        let _ = file.claim();
        assert!(file.open_request(&key).is_err(), "an unsigned request opened");
        assert!(file.open_response(&key).is_err(), "an unsigned response opened");
    }
    let request = data.first().is_some_and(|b| b & 1 == 1);
    let kind = if request { KIND_SYNC_REQUEST } else { KIND_SYNC_RESPONSE };
    let signature = KEY.sign_b64(format!("smartlic-sync-v1\n{kind}\n{text}").as_bytes()).expect("sign");
    let file = SyncFile { kind: kind.into(), signature, payload: text.into(), end: END.into() };
    // The file as written reads back the same, whatever its payload holds.
    let read = SyncFile::parse(&file.to_yaml()).expect("a written file parses");
    assert_eq!(read, file);
    // A document that opens is sealed again into a file that opens to the same document.
    let check = |e: SyncError| assert!(matches!(e, SyncError::Truncated(_)), "unexpected error {e:?}");
    if request {
        match read.open_request(&key) {
            Ok(doc) => {
                let again = SyncFile::seal(KIND_SYNC_REQUEST, &doc, &KEY).expect("seal");
                assert_eq!(SyncFile::parse(&again.to_yaml()).expect("parses").open_request(&key).expect("opens"), doc);
            }
            Err(e) => check(e),
        }
    } else {
        match read.open_response(&key) {
            Ok(doc) => {
                let again = SyncFile::seal(KIND_SYNC_RESPONSE, &doc, &KEY).expect("seal");
                assert_eq!(SyncFile::parse(&again.to_yaml()).expect("parses").open_response(&key).expect("opens"), doc);
            }
            Err(e) => check(e),
        }
    }
});
