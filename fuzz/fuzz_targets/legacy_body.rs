//! Original-API request bodies through the real router, as the operator: every body-taking
//! endpoint, or (last selector) a GET of a fuzzed path and query under the original prefix.
//!
//! Input: a selector byte, then the body (or the path line).
#![no_main]
use axum::http::Method;
use libfuzzer_sys::fuzz_target;
use smartlic_fuzz::Manager;
use smartlic_server::legacy::PREFIX;

fuzz_target!(|data: &[u8]| {
    let [selector, body @ ..] = data else { return };
    let m = Manager::get();
    let account = format!("{PREFIX}/v1/accounts/example.com");
    let pool = format!("{account}/virtual-accounts/Default");
    let endpoints = [
        format!("{account}/licenses"),
        format!("{account}/virtual-accounts"),
        format!("{pool}/tokens"),
        format!("{pool}/tokens/revoke"),
        format!("{account}/devices"),
        format!("{pool}/licenses/transfer"),
        format!("{account}/license-subscriptions"),
        format!("{pool}/devices/transfer"),
        format!("{pool}/delete"),
        format!("{pool}/reserve-licenses"),
        format!("{PREFIX}/v2/accounts/example.com/virtual-accounts/Default/devices/remove"),
    ];
    let Some(answer) = (match endpoints.get(usize::from(*selector) % (endpoints.len() + 1)) {
        Some(path) => m.api(Method::POST, path, m.fill(body)),
        None => {
            let Some(path) = smartlic_fuzz::text(body) else { return };
            m.api(Method::GET, &format!("{PREFIX}/{path}"), Vec::new())
        }
    }) else {
        return;
    };
    answer.assert_explained("original API");
});
