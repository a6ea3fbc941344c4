//! Reservation authorization codes (the signed XML a device installs).
//!
//! The input is tried twice: as a whole code (its signature cannot match, so this covers the
//! outer layout) and as the content of `<authorizationCode>` signed by a trusted key, which
//! reaches the field parser behind the signature check.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_proto::reservation::{Authorization, CodeIdentity, ReservationError};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::sync::LazyLock;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate(KeyAlgorithm::Ed25519).expect("key"));

fuzz_target!(|data: &[u8]| {
    let Some(text) = smartlic_fuzz::text(data) else { return };
    let trusted = [KEY.public_key()];
    let _ = CodeIdentity::of(text);
    if let Ok(v) = Authorization::verify(text, &trusted) {
        panic!("an unsigned code verified: {v:?}");
    }
    let root = if data.first().is_some_and(|b| b & 1 == 1) { "universalPLR" } else { "specificPLR" };
    let signed = format!("<authorizationCode>{text}</authorizationCode>");
    let signature = KEY.sign_b64(signed.as_bytes()).expect("sign");
    let code = format!("<{root}>{signed}<signature>{signature}</signature><udi>P:X,S:Y</udi></{root}>");
    let verified = match Authorization::verify(&code, &trusted) {
        Ok(v) => v,
        Err(ReservationError::BadAuthorizationCode(why)) => return assert!(!why.is_empty()),
        Err(ReservationError::AuthorizationSignature) => return, // the content closed the element early
        Err(e) => panic!("unexpected error {e:?}"),
    };
    assert_eq!(CodeIdentity::of(&code).as_ref(), Ok(&verified.identity));
    // Writing what was read gives a code that reads back the same and writes the same text.
    let udi = "P:X,S:Y";
    let first = verified.authorization.to_code(&KEY, udi).expect("to_code");
    let again = Authorization::verify(&first, &trusted).expect("a written code verifies");
    let second = again.authorization.to_code(&KEY, udi).expect("to_code");
    assert_eq!(first, second);
    assert_eq!(Authorization::verify(&second, &trusted).expect("verifies").authorization, again.authorization);
});
