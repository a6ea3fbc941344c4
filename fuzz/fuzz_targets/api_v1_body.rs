//! `/api/v1` request bodies through the real router, as the operator: every body-taking
//! endpoint, or (last selector) a GET of a fuzzed path and query.
//!
//! Input: a selector byte, then the body (or the path line).
#![no_main]
use axum::http::Method;
use libfuzzer_sys::fuzz_target;
use smartlic_fuzz::Manager;

const ACCOUNT: &str = "/api/v1/accounts/example.com";
const POOL: &str = "/api/v1/accounts/example.com/virtual-accounts/Default";

fuzz_target!(|data: &[u8]| {
    let [selector, body @ ..] = data else { return };
    let m = Manager::get();
    let instance = format!("{ACCOUNT}/instances/{}/move", m.instance_id);
    let endpoints: [(Method, String); 13] = [
        (Method::POST, "/api/v1/accounts".into()),
        (Method::PATCH, ACCOUNT.into()),
        (Method::POST, format!("{ACCOUNT}/virtual-accounts")),
        (Method::POST, format!("{ACCOUNT}/users")),
        (Method::POST, format!("{ACCOUNT}/api-clients")),
        (Method::POST, format!("{POOL}/licenses")),
        (Method::POST, format!("{POOL}/licenses/transfer")),
        (Method::POST, format!("{POOL}/tokens")),
        (Method::POST, format!("{POOL}/tokens/revoke")),
        (Method::POST, format!("{POOL}/reservations")),
        (Method::POST, format!("{POOL}/reservations/return")),
        (Method::POST, instance),
        (Method::POST, "/api/v1/clock".into()),
    ];
    let Some(answer) = (match endpoints.get(usize::from(*selector) % (endpoints.len() + 1)) {
        Some((method, path)) => m.api(method.clone(), path, m.fill(body)),
        None => {
            let Some(path) = smartlic_fuzz::text(body) else { return };
            m.api(Method::GET, &format!("/api/v1/{path}"), Vec::new())
        }
    }) else {
        return;
    };
    answer.assert_explained("/api/v1");
});
