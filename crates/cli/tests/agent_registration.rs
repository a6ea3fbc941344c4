//! Registration as the device does it, through the real binary: `license smart register` answers
//! at once and the exchange runs behind the prompt (A-4), so neither a port where nothing listens
//! nor one that accepts and never answers holds the prompt; registration that exhausts its
//! 15-minute retries reads REGISTRATION FAILED with its reason and next attempt (A-5, G-4); and
//! the product REST API of `smartlic agent run` requires its configured credentials (A-15).
//!
//! Waits on the binary are hang guards (a generous bound, then a failure saying what hung),
//! never timed assertions.

use crate::common;

use common::*;
use smartlic_core::{Clock, SystemClock};
use smartlic_proto::CertificateAuthority;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Longer than the one-shot wait (10 s), shorter than the client's own 60 s timeout that a mute
/// manager makes it wait: a prompt waiting for the manager trips it.
const HANG_GUARD: Duration = Duration::from_secs(30);
const TOKEN: &str = "QUJD";
const IN_PROGRESS: &str =
    "Registration process is in progress. Use the 'show license status' command to check the progress and result";
const REGISTERING: &str = "Status: REGISTERING - REGISTRATION IN PROGRESS";

/// A manager's CA, written to `dir/ca.pem` for the device to trust.
fn authority(dir: &Path) -> (CertificateAuthority, std::path::PathBuf) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let now = SystemClock.now().0 / 1000;
    let ca = CertificateAuthority::generate("smartlic test manager CA", now).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, ca.cert_pem()).unwrap();
    (ca, path)
}

/// A device trusting the CA in `ca`, its licensing destination `url`.
fn device(ca: &Path, dir: &Path, url: &str) {
    agent(dir, &["init", "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0AB", "--hostname", "apic1"], None);
    let trust =
        ["-c", "crypto pki trustpoint SLA-TrustPoint", "-c", "end", "-c", "crypto pki authenticate SLA-TrustPoint"];
    agent(dir, &trust, Some(ca));
    agent(dir, &["-c", &format!("license smart url {url}")], None);
}

/// A manager that accepts TCP, completes TLS with a certificate of `ca`, reads the request and
/// never answers: the device's client would wait for its own 60-second timeout.
fn mute_manager(ca: &CertificateAuthority) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let now = SystemClock.now().0 / 1000;
    let (cert, key) = ca.issue_tls_certificate(&["127.0.0.1".into()], now - 60).unwrap();
    let config = smartlic_server::tls::server_config(&cert, &key).unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
                let mut buf = [0u8; 4096];
                while matches!(tls.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// A port where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The lines a child writes, as they come.
fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one contains `needle`; panics (with what came) past the hang guard.
fn until(rx: &Receiver<String>, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + HANG_GUARD;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(e) => panic!("no line with {needle:?} ({e}); got {seen:#?}"),
        }
    }
}

/// Waits for the child to end; panics past the hang guard.
fn ends(child: &mut Child) -> bool {
    let deadline = Instant::now() + HANG_GUARD;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the agent did not end within {HANG_GUARD:?}");
}

fn status(dir: &Path) -> String {
    agent(dir, &["-c", "show license status"], None)
}

#[test]
fn a_one_shot_register_answers_at_once_and_a_mute_manager_ends_it_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, ca_pem) = authority(tmp.path());
    let dev = tmp.path().join("dev");
    device(&ca_pem, &dev, &format!("https://127.0.0.1:{}", mute_manager(&ca)));
    let mut child = smartlic()
        .args(["agent", "--state"])
        .arg(&dev)
        .args(["-c", &format!("license smart register idtoken {TOKEN}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    // The answer comes while the manager has said nothing (it never will).
    assert_eq!(until(&out, "in progress"), [IN_PROGRESS]);
    // The process ends after its bounded wait, the attempt failed with a reason, retried in 15 minutes.
    assert!(ends(&mut child));
    let shown = status(&dev);
    assert!(shown.contains(REGISTERING), "{shown}");
    let reason = "Failure reason: Fail to send out Call Home HTTP message: no answer within 10 seconds";
    assert!(shown.contains(reason), "{shown}");
    assert!(shown.contains("Next Registration Attempt: "), "{shown}");

    // Nothing listening: the following command of the same session shows the failure.
    let closed = tmp.path().join("closed");
    device(&ca_pem, &closed, &format!("https://127.0.0.1:{}", closed_port()));
    let register = format!("license smart register idtoken {TOKEN}");
    let shown = agent(&closed, &["-c", &register, "-c", "show license status"], None);
    assert!(shown.starts_with(IN_PROGRESS), "{shown}");
    assert!(shown.contains(REGISTERING), "{shown}");
    assert!(shown.contains("Failure reason: Fail to send out Call Home HTTP message\n"), "{shown}");
}

#[test]
fn the_interactive_prompt_answers_register_at_once_and_shows_it_pending() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, ca_pem) = authority(tmp.path());
    let dev = tmp.path().join("dev");
    device(&ca_pem, &dev, &format!("https://127.0.0.1:{}", mute_manager(&ca)));
    let mut child =
        smartlic().args(["agent", "--state"]).arg(&dev).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    writeln!(stdin, "license smart register idtoken {TOKEN}").unwrap();
    until(&out, IN_PROGRESS);
    // The prompt takes the next command while the exchange waits for an answer.
    writeln!(stdin, "show license status").unwrap();
    let shown = until(&out, "Failure reason:").join("\n");
    assert!(shown.contains(REGISTERING), "{shown}");
    assert!(shown.contains("Initial Registration: PENDING on"), "{shown}");
    // End of input: the process ends after its bounded wait, the attempt failed with its reason.
    drop(stdin);
    assert!(ends(&mut child));
    let shown = status(&dev);
    assert!(shown.contains(REGISTERING), "{shown}");
    assert!(shown.contains("Initial Registration: FAILED on"), "{shown}");
    assert!(shown.contains("no answer within 10 seconds"), "{shown}");
}

#[test]
fn registration_that_exhausts_its_quick_retries_fails_with_its_reason_and_next_attempt() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, ca_pem) = authority(tmp.path());
    let dev = tmp.path().join("dev");
    device(&ca_pem, &dev, &format!("https://127.0.0.1:{}", closed_port()));
    // First attempt at 10:00, then each retry as it comes due: the device clock runs on while the
    // commands run, so each `clock set` lands a second past the due time (the 16th at 14:00:16).
    let mut args = vec!["-c".to_string(), "clock set 10:00:00 01 Mar 2027".into()];
    args.extend(["-c".into(), format!("license smart register idtoken {TOKEN}")]);
    for k in 1..=16 {
        let secs = k * (15 * 60 + 1);
        let (h, min, s) = (10 + secs / 3600, secs % 3600 / 60, secs % 60);
        args.extend(["-c".into(), format!("clock set {h:02}:{min:02}:{s:02} 01 Mar 2027")]);
        if k == 15 {
            args.extend(["-c".into(), "show license status".into()]);
        }
    }
    args.extend(["-c".into(), "show license status".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = agent(&dev, &args, None);
    let (before, after) = out.split_once("License Authorization:").unwrap();
    // Still REGISTERING after the 15th retry, at 13:45:15 ...
    assert!(before.contains(REGISTERING), "{before}");
    assert!(before.contains("Initial Registration: FAILED on Mar 01 13:45:15 2027 UTC"), "{before}");
    assert!(before.contains("Next Registration Attempt: Mar 01 14:00:15 2027 UTC"), "{before}");
    // ... REGISTRATION FAILED after the 16th: the reason and the hourly attempt.
    let last = after.rsplit_once("\nRegistration:").unwrap().1;
    assert!(last.contains("Status: UNREGISTERED - REGISTRATION FAILED"), "{last}");
    assert!(last.contains("Initial Registration: FAILED on Mar 01 14:00:16 2027 UTC"), "{last}");
    assert!(last.contains("Failure reason: Fail to send out Call Home HTTP message\n"), "{last}");
    assert!(last.contains("Next Registration Attempt: Mar 01 15:00:16 2027 UTC"), "{last}");
}

/// One plain HTTP/1.1 request: (status, headers, body).
fn http(addr: &str, method: &str, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let body = if method == "POST" { format!("{{\"token\":\"{TOKEN}\"}}") } else { String::new() };
    write!(
        s,
        "{method} /api/v1/smartlicensing/{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_string(), body.to_string())
}

const PASSWORD: &str = "s3cret-Passw0rd";
const BEARER: &str = "agent-api-token-0123456789";
const NOT_AUTHORIZED: &str =
    r#"{"code":"NOT_AUTHORIZED","message":"User is not authorized to perform this operation"}"#;

#[test]
fn the_product_rest_api_requires_its_configured_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("dev");
    agent(&dev, &["init", "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0AB"], None);

    // Half a configuration is refused rather than leaving the API open.
    let out = smartlic()
        .args(["agent", "--state"])
        .arg(&dev)
        .args(["run", "--listen", "127.0.0.1:0", "--api-user", "bob"])
        .env_remove("SMARTLIC_AGENT_API_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--api-user needs the password in SMARTLIC_AGENT_API_PASSWORD")
    );

    let mut child = smartlic()
        .args(["agent", "--state"])
        .arg(&dev)
        .args(["run", "--listen", "127.0.0.1:0", "--api-user", "bob"])
        .env("SMARTLIC_AGENT_API_PASSWORD", PASSWORD)
        .env("SMARTLIC_AGENT_API_TOKEN", BEARER)
        .env("SMARTLIC_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = lines_of(child.stderr.take().unwrap());
    let started = until(&log, "product REST API on http://");
    let addr = started.last().unwrap().split("http://").nth(1).unwrap().split('/').next().unwrap().to_string();

    let basic = "Basic Ym9iOnMzY3JldC1QYXNzdzByZA=="; // bob:s3cret-Passw0rd
    let refused = [
        ("GET", "licensedetails", None),
        ("GET", "licensedetails", Some("Bearer agent-api-token-012345678")),
        ("GET", "licensedetails", Some("Basic Ym9iOndyb25n")), // bob:wrong
        ("GET", "licensedetails", Some(BEARER)),               // no scheme
        ("GET", "licensedetails", Some("Digest x")),
        ("GET", "no-such-endpoint", None),
        ("POST", "register", None),
    ];
    for (method, path, authorization) in refused {
        let (status, head, body) = http(&addr, method, path, authorization);
        assert_eq!((status, body.as_str()), (401, NOT_AUTHORIZED), "{method} {path} {authorization:?}");
        assert!(head.contains("www-authenticate: Basic realm=\"smartlic agent\""), "{head}");
        assert!(head.contains("www-authenticate: Bearer realm=\"smartlic agent\""), "{head}");
    }
    // Either credential gets in; the refused register changed nothing.
    let bearer = format!("bearer {BEARER}");
    for authorization in [basic, bearer.as_str()] {
        let (status, _, body) = http(&addr, "GET", "licensedetails", Some(authorization));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""status":"NOT_REGISTERED""#), "{body}");
    }
    let (status, _, body) = http(&addr, "GET", "no-such-endpoint", Some(basic));
    assert_eq!(status, 404, "{body}");

    let _ = child.kill();
    let _ = child.wait();
    // The log ends with the process: all of it.
    let logged = log.iter().collect::<Vec<_>>().join("\n");
    assert!(logged.contains("refused: no valid credentials"), "{logged}");
    for secret in [PASSWORD, BEARER, "Ym9iOnMzY3JldC1QYXNzdzByZA"] {
        assert!(!logged.contains(secret), "a secret in the log: {logged}");
    }
}
