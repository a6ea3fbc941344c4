//! `smartlic admin` against a real `smartlic server` (simulated clock, temporary data
//! directory, a port chosen by the OS): what an operator types and what a script captures.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const SECRET: &str = "integration-test-secret";

/// A running manager, stopped when dropped.
struct Manager {
    child: Child,
    url: String,
    ca: PathBuf,
    _data: tempfile::TempDir,
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smartlic() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smartlic"));
    for var in ["SMARTLIC_SERVER", "SMARTLIC_CA", "SMARTLIC_CLIENT_ID", "SMARTLIC_ADMIN_SECRET"] {
        command.env_remove(var);
    }
    command
}

/// Starts the server on port 0 and learns its address from its "listening on" line.
fn start() -> Manager {
    let data = tempfile::tempdir().unwrap();
    let mut child = smartlic()
        .args(["server", "--listen", "127.0.0.1:0", "--clock", "simulated", "--data"])
        .arg(data.path())
        .env("SMARTLIC_ADMIN_SECRET", SECRET)
        .env("SMARTLIC_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    // Keep draining: the server dies of a broken pipe if its stdout is closed under it.
    std::thread::spawn(move || lines.for_each(drop));
    let ca = data.path().join("ca.pem");
    Manager { child, url, ca, _data: data }
}

fn admin(m: &Manager, ca: &Path, args: &[&str]) -> Output {
    smartlic()
        .args(["admin", "--server", &m.url, "--ca"])
        .arg(ca)
        .args(["--secret", SECRET])
        .args(args)
        .output()
        .unwrap()
}

fn ok(m: &Manager, args: &[&str]) -> String {
    let out = admin(m, &m.ca, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn fails(m: &Manager, ca: &Path, args: &[&str]) -> String {
    let out = admin(m, ca, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn operator_session() {
    let m = start();
    let pool = ["--account", "example.com", "--va", "Lab East"];
    ok(&m, &["account", "create", "--domain", "example.com"]);
    let err = fails(&m, &m.ca, &["account", "create", "--domain", "example.com"]);
    assert!(err.starts_with("error: ") && err.contains("(CONFLICT, HTTP 409)"), "{err}");
    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab East"]);
    assert!(ok(&m, &["va", "list", "--account", "example.com"]).contains("\nLab East "));

    let tag = "C9500 Network Advantage";
    ok(&m, &[&["license", "add"][..], &pool, &["--tag", tag, "--count", "12"]].concat());
    let licenses = ok(&m, &[&["license", "list"][..], &pool].concat());
    assert!(licenses.starts_with("example.com / Lab East: In Compliance\nTAG "), "{licenses}");
    assert!(licenses.contains(&format!("\n{tag}  12 ")), "{licenses}");

    // Only the token on stdout, so that TOKEN=$(...) works.
    let token = ok(&m, &[&["token", "create"][..], &pool, &["--max-uses", "2"]].concat());
    let token = token.strip_suffix('\n').unwrap();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace), "{token:?}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&m, &[&["--json", "token", "list"][..], &pool].concat())).unwrap();
    assert_eq!(listed["tokens"][0]["token"], token);

    let clock = ok(&m, &["clock", "set", "2030-01-01"]);
    assert!(clock.contains("2030-01-01T00:00:00Z"), "{clock}");
    let csv = ok(&m, &["report", "usage", "--account", "example.com", "--csv"]);
    assert!(csv.lines().nth(1).is_some_and(|row| row.contains(tag)), "{csv}");

    let missing = m.ca.with_file_name("nowhere.pem");
    let err = fails(&m, &missing, &["account", "list"]);
    assert!(err.contains("cannot read the CA certificate") && err.contains("--ca"), "{err}");
}
