//! Satellite synchronisation files (S-3): the YAML a satellite or the cloud imports by hand.
//!
//! The input is tried as a whole file (its signature cannot match, so this covers the outer
//! YAML, the truncation check and the claim read before the key is known), as a request read a
//! document at a time, and behind the signature check: as the payload of a response signed by a
//! trusted key, or as the text of a request written by the satellite (a part's YAML, and a
//! host name, which must not break the file into other documents). The first byte's low bit
//! chooses a request or a response.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_proto::sync::stream::{self, RequestHead, RequestPart, RequestParts, RequestWriter};
use smartlic_proto::sync::{ReportedInstance, SignedBy, SyncError, SyncFile, END, KIND_SYNC_RESPONSE};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::sync::LazyLock;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate(KeyAlgorithm::Ed25519).expect("key"));

/// A request of `parts` written, signed, checked and read back.
fn round_trip(parts: &[RequestPart]) -> Vec<RequestPart> {
    let head = RequestHead {
        satellite_id: 1,
        local_account: "Plant".into(),
        smart_account: "example.com".into(),
        sequence: 1,
        acknowledges: 0,
        full: true,
        interval_days: 30,
        created_at: 0,
        signed_by: SignedBy::of(&KEY),
    };
    let mut writer = RequestWriter::begin(Vec::new(), &head).expect("begin");
    for p in parts {
        writer.part(p).expect("part");
    }
    let file = writer.finish(&KEY).expect("seal");
    let checked = stream::check_request(&file[..], &KEY.public_key()).expect("a written request checks");
    assert_eq!(checked.head, head);
    RequestParts::new(&file[..], &checked).collect::<Result<_, _>>().expect("a written request reads")
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = smartlic_fuzz::text(data) else { return };
    let key = KEY.public_key();
    if let Ok(file) = SyncFile::parse(text) {
        let _ = file.claim();
        assert!(file.open_response(&key).is_err(), "an unsigned response opened");
    }
    let _ = stream::request_head(text.as_bytes());
    assert!(stream::check_request(text.as_bytes(), &key).is_err(), "an unsigned request checked");
    let request = data.first().is_some_and(|b| b & 1 == 1);
    let check = |e: SyncError| assert!(matches!(e, SyncError::Truncated(_)), "unexpected error {e:?}");
    if request {
        // A part that parses is written and read back the same, and so is any host name.
        if let Ok(part) = serde_norway::from_str::<RequestPart>(text) {
            assert_eq!(round_trip(std::slice::from_ref(&part)), [part]);
        }
        let instance = ReportedInstance {
            pid: "C9300".into(),
            sn: "FCW1".into(),
            hostname: text.into(),
            last_contact_at: 0,
            usage: Default::default(),
        };
        let part = RequestPart { pool: "Lab".into(), instances: vec![instance], removed: Vec::new() };
        assert_eq!(round_trip(std::slice::from_ref(&part)), [part]);
        return;
    }
    let signature = KEY.sign_b64(format!("smartlic-sync-v1\n{KIND_SYNC_RESPONSE}\n{text}").as_bytes()).expect("sign");
    let file = SyncFile { kind: KIND_SYNC_RESPONSE.into(), signature, payload: text.into(), end: END.into() };
    // The file as written reads back the same, whatever its payload holds.
    let read = SyncFile::parse(&file.to_yaml()).expect("a written file parses");
    assert_eq!(read, file);
    // A document that opens is sealed again into a file that opens to the same document.
    match read.open_response(&key) {
        Ok(doc) => {
            let again = SyncFile::seal(KIND_SYNC_RESPONSE, &doc, &KEY).expect("seal");
            assert_eq!(SyncFile::parse(&again.to_yaml()).expect("parses").open_response(&key).expect("opens"), doc);
        }
        Err(e) => check(e),
    }
});
