//! The agent's identity file (`identity.json`: key, ID certificate, account), as the agent
//! loads it; what loads saves and loads back equal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_agent::identity::{DeviceIdentity, IdentityError};

fuzz_target!(|data: &[u8]| {
    let path = smartlic_fuzz::scratch_file("identity.json", data);
    let identity = match DeviceIdentity::load(&path) {
        Ok(i) => i,
        Err(IdentityError::Invalid { reason, .. }) => return assert!(!reason.is_empty()),
        // Not UTF-8: refused by the read itself, with the reason.
        Err(IdentityError::Read { source, .. }) if source.kind() == std::io::ErrorKind::InvalidData => return,
        Err(e) => panic!("unexpected {e}"),
    };
    let copy = smartlic_fuzz::scratch_dir().join("identity-copy.json");
    identity.save(&copy).expect("save");
    assert_eq!(DeviceIdentity::load(&copy).expect("a saved identity loads"), identity);
    let _ = identity.signing_key().public_key();
});
