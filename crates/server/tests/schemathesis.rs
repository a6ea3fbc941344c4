//! schemathesis (from PyPI) fuzzes a live manager from its own OpenAPI document (issue 13):
//! every operation, with data generated from the schemas and data that breaks them, over HTTPS
//! on loopback against a fresh data directory, as the operator. Zero server errors and zero
//! answers outside the document (status, content type, headers, body schema) are required.

use crate::common;

use common::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Test cases per operation and phase: the run stays within a few minutes on two cores.
const MAX_EXAMPLES: &str = "40";
/// The whole run is stopped, and the test failed, past this.
const TIME_LIMIT: Duration = Duration::from_secs(600);

/// What schemathesis checks on every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

/// The `schemathesis` command: `SMARTLIC_SCHEMATHESIS`, else the one on the PATH. None when it
/// does not run, unless `SMARTLIC_REQUIRE_SCHEMATHESIS` (set by `.ci/run`, which installs it in
/// a virtual environment) makes that a failure.
fn schemathesis() -> Option<String> {
    let command = std::env::var("SMARTLIC_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let runs = Command::new(&command)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return Some(command);
    }
    let missing = format!("{command} does not run (python3 -m venv DIR && DIR/bin/pip install schemathesis)");
    assert!(std::env::var("SMARTLIC_REQUIRE_SCHEMATHESIS").is_err(), "{missing}; SMARTLIC_REQUIRE_SCHEMATHESIS is set");
    eprintln!("{missing}: schemathesis test skipped");
    None
}

/// Something for the operations to find: an account with licenses, a pool, a user, a
/// registration token and a registered device.
async fn seed(h: &Harness) {
    let token = h.account_with("example.com", &[("ACI Advantage", 10)]).await;
    h.register("SN-FUZZ", &token).await;
    let pool = h.admin("POST", "/api/v1/accounts/example.com/virtual-accounts", Some(json!({"name": "Lab"}))).await;
    assert_eq!(pool.status, 201, "{}", pool.body);
    let user = json!({"name": "alice", "role": "smart-account-user", "password": "a long password 1"});
    let user = h.admin("POST", "/api/v1/accounts/example.com/users", Some(user)).await;
    assert_eq!(user.status, 201, "{}", user.body);
}

/// Ending access tokens by id ends the fuzzer's own sooner or later: fuzzed last, on its own.
const LAST: &str = "revoke_access_token";

/// Runs schemathesis against `h` as the operator on the operations `filter` selects; its exit
/// status and its output. Its JUnit report is written to `junit`.
async fn fuzz(command: &str, h: &Harness, filter: [&str; 2], junit: &Path) -> (Option<i32>, String) {
    let out = junit.with_extension("out");
    let mut child = Command::new(command)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", h.base))
        .args(["--tls-verify", &h.dir.path().join("ca.pem").to_string_lossy()])
        .args(["--header", &format!("Authorization: Bearer {}", h.bearer())])
        .args(["--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--seed", "13", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing", "--no-color", "--output-truncate", "true"])
        .args(["--report", "junit", "--report-junit-path", &junit.to_string_lossy()])
        // One retry of a request whose connection broke (a kept-alive connection the manager
        // closed as the next request left): that is no answer to judge.
        .args(["--request-timeout", "30", "--request-retries", "1"])
        .args(filter)
        // A proxy from the environment must not stand between the fuzzer and the loopback manager.
        .env("no_proxy", "127.0.0.1")
        .env("NO_PROXY", "127.0.0.1")
        // Its caches and examples database go with the data directory, not into the work tree.
        .current_dir(h.dir.path())
        .args(["--generation-database", "none"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::from(std::fs::File::create(&out).unwrap().try_clone().unwrap()))
        .spawn()
        .unwrap();
    // Polled, not waited on: the manager runs on this test's runtime.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    (status, std::fs::read_to_string(&out).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let Some(command) = schemathesis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    // The manager's own clock: a fuzzed `POST /api/v1/clock` is refused (409) rather than
    // moving time past the fuzzer's access token.
    config.simulated_clock = false;
    let h = Harness::start(dir, config).await;
    seed(&h).await;
    let mut tested = BTreeSet::new();
    for (run, filter) in [("all", ["--exclude-operation-id", LAST]), ("last", ["--include-operation-id", LAST])] {
        let junit = h.dir.path().join(format!("junit-{run}.xml"));
        let (status, output) = fuzz(&command, &h, filter, &junit).await;
        println!("{output}");
        assert_eq!(status, Some(0), "schemathesis failed (or ran past {TIME_LIMIT:?}):\n{output}");
        let report = std::fs::read_to_string(&junit).unwrap();
        for case in report.split("<testcase ").skip(1) {
            tested.insert(case.split('"').nth(1).unwrap_or_default().to_string());
        }
    }
    // Every operation of the document was tested: none skipped for want of a schema it can read.
    let doc = h.call("", "GET", "/api/v1/openapi.json", None).await.body;
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        operations.extend(item.as_object().unwrap().keys().map(|method| format!("{} {path}", method.to_uppercase())));
    }
    // schemathesis leaves out the operation serving the document it reads.
    operations.remove("GET /api/v1/openapi.json");
    assert_eq!(tested, operations, "the operations tested are the document's");
}
