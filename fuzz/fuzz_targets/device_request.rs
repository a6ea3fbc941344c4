//! Device protocol requests through the real router: body and signature header. The flags
//! byte can have the body signed with the registered device's key (or, for registration and
//! after an ID renewal, the key of `@CSR@`) so the fuzzer gets past the signature check into
//! the handlers.
//!
//! Input: a selector byte, a flags byte, then the signature header line, `\n`, the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_fuzz::Manager;
use smartlic_proto::wire;

const PATHS: [&str; 5] =
    [wire::PATH_REGISTER, wire::PATH_RENEW_ID, wire::PATH_AUTHORIZE, wire::PATH_DEREGISTER, "/device/v1/other"];

fuzz_target!(|data: &[u8]| {
    let [selector, flags, rest @ ..] = data else { return };
    let m = Manager::get();
    let path = PATHS[usize::from(*selector) % PATHS.len()];
    let (header, body) = smartlic_fuzz::split_line(rest);
    let body = m.fill(body);
    let answer = if flags & 1 == 1 {
        // Registration and a renewed ID are signed by the key of `@CSR@`.
        let key = if path == wire::PATH_REGISTER || flags & 2 == 2 { &m.csr_key } else { m.device_key() };
        m.device(path, key, body)
    } else {
        let Some(header) = smartlic_fuzz::text(header) else { return };
        m.device_with_signature(path, header, body)
    };
    let Some(answer) = answer else { return };
    answer.assert_explained("device protocol");
});
