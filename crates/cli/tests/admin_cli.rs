//! `smartlic admin` against a real `smartlic server` (simulated clock, temporary data
//! directory, a port chosen by the OS): what an operator types and what a script captures.

mod common;

use common::*;

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
