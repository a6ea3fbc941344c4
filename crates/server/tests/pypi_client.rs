//! A real, unmodified client of the original manager's REST API from PyPI (mCSSMapi 0.2)
//! against a smartlic manager over HTTPS: the original host names it hard-codes resolve to the
//! loopback manager inside the Python process only, and TLS checks those names against a
//! certificate issued for them, as a deployment pointing existing scripts at smartlic would.

use crate::common;

use common::*;
use serde_json::{json, Value};
use smartlic_core::Clock;
use smartlic_proto::cert::public_key_of_certificate;
use smartlic_proto::reservation::{Authorization, RequestCode, ReservationKind};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The host names mCSSMapi hard-codes (token endpoint, API gateway).
const ORIGINAL_HOSTS: [&str; 2] = ["cloudsso.cisco.com", "swapi.cisco.com"];

/// A Python interpreter with mCSSMapi 0.2 and requests: `SMARTLIC_PYTHON`, else `python3`.
/// None when those are missing, unless `SMARTLIC_REQUIRE_PYCLIENT` (set by `.ci/run`) makes that a
/// failure, like `SMARTLIC_REQUIRE_PROXY` for tinyproxy.
fn python() -> Option<String> {
    let python = std::env::var("SMARTLIC_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = "import importlib.metadata as m, mcssmapi, requests; assert m.version('mCSSMapi') == '0.2'";
    let found = Command::new(&python)
        .args(["-c", check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(python);
    }
    let missing = format!("{python} cannot import mCSSMapi 0.2 and requests (pip install mCSSMapi==0.2 requests)");
    assert!(std::env::var("SMARTLIC_REQUIRE_PYCLIENT").is_err(), "{missing}; SMARTLIC_REQUIRE_PYCLIENT is set");
    eprintln!("{missing}: PyPI client test skipped");
    None
}

/// A manager whose TLS certificate names the original hosts (and 127.0.0.1 for the harness's
/// own client), issued by the manager's CA: `ca.pem` in its data directory is then the one
/// bundle both the harness and Python trust.
async fn manager_for_original_hosts() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let now_secs = smartlic_core::SystemClock.now().0 / 1000;
    let (ca, _) = smartlic_server::tls::load_or_create_ca(dir.path(), now_secs).unwrap();
    let mut names: Vec<String> = ORIGINAL_HOSTS.iter().map(|n| n.to_string()).collect();
    names.push("127.0.0.1".into());
    let (cert, key) = ca.issue_tls_certificate(&names, now_secs).unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.pem"), dir.path().join("tls-key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut config = server_config(dir.path());
    (config.tls_cert, config.tls_key) = (Some(cert_path), Some(key_path));
    Harness::start(dir, config).await
}

/// Runs `tests/pypi/run_mcssmapi.py` for the API client `client_id` on pool `va` of
/// `example.com`; its JSON summary. The client sets no timeouts, so the wait is bounded here.
async fn run_mcssmapi(python: &str, h: &Harness, client_id: &str, secret: &str, va: &str, extra: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pypi/run_mcssmapi.py");
    let (out, err) = (h.dir.path().join("mcssmapi.out"), h.dir.path().join("mcssmapi.err"));
    let port = h.server.local_addr.port().to_string();
    let mut child = Command::new(python)
        .arg(script)
        .args(["--port", &port, "--client-id", client_id, "--domain", "example.com", "--va", va])
        .args(extra)
        .env("SMARTLIC_CLIENT_SECRET", secret)
        .env("REQUESTS_CA_BUNDLE", h.dir.path().join("ca.pem"))
        // A proxy from the environment would reach the real hosts instead.
        .env("no_proxy", ORIGINAL_HOSTS.join(","))
        .env("NO_PROXY", ORIGINAL_HOSTS.join(","))
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    // Polled, not waited on: the manager runs on this test's runtime.
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            let (stdout, stderr) = (std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&err).unwrap());
            assert!(status.success(), "run_mcssmapi.py failed ({status}):\n{stderr}");
            return serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!("run_mcssmapi.py did not finish in 60 s: {}", std::fs::read_to_string(&err).unwrap());
}

/// (license, virtualAccount, quantity, inUse, available) of each row, sorted.
fn rows(listing: &Value) -> Vec<(String, String, i64, i64, i64)> {
    let mut rows: Vec<_> = listing["licenses"]
        .as_array()
        .unwrap_or_else(|| panic!("no licenses in {listing}"))
        .iter()
        .map(|l| {
            let n = |f: &str| l[f].as_i64().unwrap_or_else(|| panic!("{f} in {l}"));
            let s = |f: &str| l[f].as_str().unwrap_or_default().to_string();
            (s("license"), s("virtualAccount"), n("quantity"), n("inUse"), n("available"))
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn mcssmapi_gets_a_token_reads_license_usage_and_reserves_licenses() {
    let Some(python) = python() else { return };
    let h = manager_for_original_hosts().await;
    // Default holds licenses the client does not ask for; Lab Pool the ones it reads.
    h.account_with("example.com", &[("ACI Essentials", 4)]).await;
    let a = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab Pool"}))).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    for (tag, count) in [("ACI Advantage", 12), ("ACI Premier", 5)] {
        let path = "/api/v1/accounts/example.com/virtual-accounts/Lab%20Pool/licenses";
        let a = h.admin("POST", path, Some(json!({"tag": tag, "count": count}))).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }
    let token = h.token("example.com", "Lab%20Pool", json!({})).await;
    let dev = h.register("PYPI1", &token).await;
    h.devices.authorize(&dev, &usage(&[("ACI Advantage", 3)]), h.now_ms()).await.unwrap();
    let client = h
        .admin(
            "POST",
            "/api/v1/accounts/example.com/api-clients",
            Some(json!({"name": "mcssmapi-script", "role": "smart-account-user"})),
        )
        .await;
    assert_eq!(client.status, 201, "{:?}", client.body);
    let secret = client.body["client_secret"].as_str().unwrap();
    let id = client.body["client_id"].as_str().unwrap();

    // The request code a device offline would print (`license smart reservation request local`).
    let device_key = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
    let request = RequestCode::new(ReservationKind::Specific, "C9300-24UX", "FCW2134L0RN", &device_key.public_key());
    let request = request.unwrap().to_string();
    let reserve = ["--request-code", request.as_str(), "--tag", "ACI Advantage"];
    let summary = run_mcssmapi(&python, &h, id, secret, "Lab Pool", &reserve).await;
    assert_eq!(summary["client_version"], "0.2");

    let right = &summary["right_secret"];
    let token = &right["bearer_update"];
    assert_eq!((&token["success"], &token["error"]), (&json!(true), &json!(false)), "{token}");
    assert_eq!(token["response"]["token_type"], "Bearer", "{token}");
    let listed = &right["smart_license_usage"];
    assert_eq!(listed["success"], true, "{listed}");
    let body = &listed["response"];
    assert_eq!((body["status"].as_str(), body["totalRecords"].as_i64()), (Some("SUCCESS"), Some(2)), "{body}");
    let lab = |license: &str, quantity, in_use, available| {
        (license.to_string(), "Lab Pool".to_string(), quantity, in_use, available)
    };
    assert_eq!(rows(body), [lab("ACI Advantage", 12, 3, 9), lab("ACI Premier", 5, 0, 5)]);

    // The reservation: an authorization code signed by the manager for that request, and the
    // license counted as reserved in the pool.
    let reserved = &right["reserve_license"];
    assert_eq!(
        (&reserved["success"], &reserved["response"]["status"]),
        (&json!(true), &json!("SUCCESS")),
        "{reserved}"
    );
    let code = reserved["response"]["authorizationCodes"][0]["authorizationCode"].as_str().unwrap();
    let ca = public_key_of_certificate(&std::fs::read_to_string(h.dir.path().join("ca.pem")).unwrap()).unwrap();
    let granted = Authorization::verify(code, &[ca]).unwrap().authorization;
    assert_eq!(granted.request_code, request);
    assert_eq!((granted.entitlements[0].tag.as_str(), granted.entitlements[0].count), ("ACI Advantage", 1));
    let listed = h.admin("GET", "/api/v1/accounts/example.com/virtual-accounts/Lab%20Pool/licenses", None).await;
    let advantage = listed.body["licenses"].as_array().unwrap().iter().find(|l| l["tag"] == "ACI Advantage").cloned();
    assert_eq!(advantage.as_ref().map(|l| l["reserved"].clone()), Some(json!(1)), "{:?}", listed.body);

    // A wrong secret: the token endpoint's 401, then the API's error envelope without a token.
    let wrong = &summary["wrong_secret"];
    let token = &wrong["bearer_update"];
    assert_eq!((&token["success"], &token["error"]), (&json!(false), &json!(401)), "{token}");
    assert_eq!(token["response"]["error"], "invalid_client", "{token}");
    let listed = &wrong["smart_license_usage"];
    assert_eq!((&listed["success"], &listed["error"]), (&json!(false), &json!(401)), "{listed}");
    assert_eq!(listed["response"]["status"], "ERROR", "{listed}");
    assert!(!listed["response"]["statusMessage"].as_str().unwrap_or_default().is_empty(), "{listed}");
    let refused = &wrong["reserve_license"];
    assert_eq!((&refused["success"], &refused["error"]), (&json!(false), &json!(401)), "{refused}");
}
