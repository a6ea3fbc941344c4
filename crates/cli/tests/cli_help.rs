//! The CLI explains itself (issue 13): shell completions, connection flags on either side of
//! the subcommand, and `device authorize`'s documented exit status. (Every command's and
//! flag's help text is checked over the clap tree by the binary's unit test
//! `every_command_and_flag_has_help_of_its_own`.)

use crate::common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    smartlic().args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Whether `shell` is installed, to check its script's syntax with it.
fn installed(shell: &str) -> bool {
    Command::new(shell).arg("-c").arg("exit 0").output().is_ok_and(|o| o.status.success())
}

#[test]
fn completions_print_a_script_each_shell_parses() {
    let dir = tempfile::tempdir().unwrap();
    // (shell, how it checks a script's syntax without running it, a line of its completion code)
    for (shell, check, marker) in [
        ("bash", &["-n"][..], "complete -F"),
        ("zsh", &["-n"][..], "#compdef smartlic"),
        ("fish", &["--no-execute"][..], "complete -c smartlic"),
    ] {
        let script = stdout(&run(&["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["admin", "reservation", "--account", "authorize"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
        if shell == "bash" || installed(shell) {
            let file = dir.path().join(format!("smartlic.{shell}"));
            std::fs::write(&file, &script).unwrap();
            let out = Command::new(shell).args(check).arg(&file).output().unwrap();
            assert!(out.status.success(), "{shell} refuses the script: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"), "names the shells it knows");
}

#[test]
fn connection_flags_work_before_or_after_the_subcommand() {
    let m = start();
    let ca = m.ca.to_str().unwrap();
    let before =
        ["admin", "--server", &m.url, "--ca", ca, "--secret", SECRET, "account", "create", "--domain", "a.com"];
    stdout(&run(&before));
    let after = ["admin", "account", "list", "--server", &m.url, "--ca", ca, "--secret", SECRET];
    assert!(stdout(&run(&after)).contains("a.com"));
    let mixed = ["admin", "--server", &m.url, "account", "list", "--ca", ca, "--secret", SECRET, "--json"];
    assert!(stdout(&run(&mixed)).contains("\"a.com\""));
    // A wrong CA named after the subcommand is the one used: the connection is refused.
    let out = run(&["admin", "account", "list", "--server", &m.url, "--secret", SECRET, "--ca", "/nonexistent/ca.pem"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ca.pem"), "{out:?}");
}

fn device(m: &Manager, state: &Path, args: &[&str]) -> Output {
    let flags = ["--state", state.to_str().unwrap(), "--server", &m.url, "--ca", m.ca.to_str().unwrap()];
    run(&[&["device"][..], args, &flags[..]].concat())
}

#[test]
fn device_authorize_exits_2_when_the_verdict_is_not_authorized() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(
        &m,
        &["license", "add", "--account", "example.com", "--va", "Default", "--tag", "ACI Advantage", "--count", "2"],
    );
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dev.json");
    let registered =
        device(&m, &state, &["register", "--token", token.trim(), "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0AB"]);
    stdout(&registered);

    let authorized = device(&m, &state, &["authorize", "--use", "ACI Essentials=2"]);
    assert_eq!(authorized.status.code(), Some(0));
    assert!(stdout(&authorized).starts_with("AUTHORIZED"));

    let over = device(&m, &state, &["authorize", "--use", "ACI Essentials=3"]);
    assert_eq!(over.status.code(), Some(2), "{over:?}");
    assert!(String::from_utf8_lossy(&over.stdout).starts_with("OUT OF COMPLIANCE"), "{over:?}");
    let why = String::from_utf8_lossy(&over.stderr);
    assert!(why.contains("OUT OF COMPLIANCE, not AUTHORIZED"), "{why}");

    let none = device(&m, &state, &["authorize"]);
    assert_eq!(none.status.code(), Some(2), "{none:?}");

    // A refused exchange (no identity) is status 1, told apart from a verdict.
    let missing = device(&m, &dir.path().join("none.json"), &["authorize", "--use", "ACI Essentials=1"]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");

    let help = stdout(&run(&["device", "authorize", "--help"]));
    assert!(help.contains("Exit status: 0 when the verdict is AUTHORIZED, 2"), "{help}");
}

/// The manager answers listings a page at a time; the CLI shows them whole.
#[test]
fn admin_listings_show_every_page() {
    let m = start();
    // More accounts than a page holds (1000), written behind the manager's back for speed.
    let mut db = rusqlite::Connection::open(m.data.path().join("smartlic.db")).unwrap();
    let batch = db.transaction().unwrap();
    for n in 0..1500 {
        let domain = format!("a{n:04}.com");
        batch.execute("INSERT INTO smart_accounts (domain, name, created_at) VALUES (?1, ?1, 0)", [&domain]).unwrap();
    }
    batch.commit().unwrap();
    let table = ok(&m, &["account", "list"]);
    assert_eq!(table.lines().count(), 1 + 1500, "a header and every account");
    assert!(table.contains("\na0000.com ") && table.contains("\na1499.com "), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(&m, &["--json", "account", "list"])).unwrap();
    assert_eq!(json["accounts"].as_array().unwrap().len(), 1500);
    assert!(json["next_offset"].is_null());
}
