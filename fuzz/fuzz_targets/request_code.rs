//! Reservation request codes (`CB-Z<PID>:<SN>-<key>-<check>`), as an operator pastes them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_proto::reservation::RequestCode;

fuzz_target!(|data: &[u8]| {
    let Some(text) = smartlic_fuzz::text(data) else { return };
    let Ok(code) = RequestCode::parse(text) else { return };
    // A parsed code prints as it was typed (the check characters' case aside) and reads back equal.
    let printed = code.to_string();
    let typed = text.trim();
    assert_eq!(printed.len(), typed.len(), "{typed:?} printed as {printed:?}");
    let split = printed.len() - 2;
    assert_eq!(&printed[..split], &typed[..split]);
    assert!(printed[split..].eq_ignore_ascii_case(&typed[split..]));
    assert_eq!(RequestCode::parse(&printed), Ok(code));
});
