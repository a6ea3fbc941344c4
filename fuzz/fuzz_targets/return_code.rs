//! Reservation return codes (Base58 in groups of six), as an operator pastes them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_proto::reservation::{RequestCode, ReservationError, ReservationKind, ReturnCode};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::sync::LazyLock;

static REQUEST: LazyLock<RequestCode> = LazyLock::new(|| {
    let key = SigningKey::generate(KeyAlgorithm::Ed25519).expect("key");
    RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RN", &key.public_key()).expect("request")
});

fuzz_target!(|data: &[u8]| {
    let Some(text) = smartlic_fuzz::text(data) else { return };
    let Ok(code) = ReturnCode::parse(text) else { return };
    // Grouping is presentation only.
    let compact: String = text.trim().split('-').collect();
    assert_eq!(ReturnCode::parse(&compact).as_ref(), Ok(&code));
    // Nobody but the device that made the request can return it.
    match code.verify(&REQUEST) {
        Err(ReservationError::ReturnKeyMismatch | ReservationError::ReturnSignature) => {}
        other => panic!("a foreign return code gave {other:?}"),
    }
});
