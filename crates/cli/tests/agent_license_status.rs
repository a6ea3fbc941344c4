//! What a device shows and tells a real manager, with the real binaries: each license row of
//! `show license summary|usage|all` carries its own tag's status, and the hostname the manager
//! knows follows the device's at every contact (C-8).

use crate::common;

use common::*;
use std::path::Path;

/// A manager with an account whose Default pool holds `licenses`, and a registration token.
fn manager_with(licenses: &[(&str, &str)]) -> (Manager, String) {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    for (tag, count) in licenses {
        ok(&m, &["license", "add", "--account", "example.com", "--va", "Default", "--tag", tag, "--count", count]);
    }
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]).trim().to_string();
    (m, token)
}

/// A device trusting `m`, registered with `token`.
fn registered_device(dir: &Path, m: &Manager, token: &str) {
    agent(dir, &["init", "--pid", "C9300-24UX", "--sn", "FCW2134L0RN", "--hostname", "sw1"], None);
    trust_manager(dir, m);
    let out = agent(dir, &["-c", &format!("license smart register idtoken {token}"), "-c", "sh lic stat"], None);
    assert!(out.contains("Status: REGISTERED"), "{out}");
}

/// The `Status:` of the entry of `tag` in `show license usage|all` (the line after its fields).
fn entry_status<'a>(text: &'a str, tag: &str) -> &'a str {
    let head = format!("({tag}):");
    let mut lines = text.lines().skip_while(|l| !l.ends_with(&head)).skip(1);
    let status = lines.find_map(|l| l.strip_prefix("  Status: "));
    status.unwrap_or_else(|| panic!("no entry for {tag}:\n{text}"))
}

/// The status column of the row of `tag` in `show license summary`.
fn row_status<'a>(text: &'a str, tag: &str) -> &'a str {
    let row = text.lines().find(|l| l.contains(&format!("({tag})"))).unwrap_or_else(|| panic!("no row {tag}:\n{text}"));
    let count_and_status = row.split_once(&format!("({tag})")).unwrap().1.trim_start();
    count_and_status.split_once(' ').unwrap().1
}

/// The pool holds enough ACI Essentials and no ACI Premier; the device uses both. The device is
/// OUT OF COMPLIANCE as a whole, and each row says which license is.
#[test]
fn each_license_row_shows_its_own_tags_status() {
    let (m, token) = manager_with(&[("ACI Essentials", "10")]);
    let state = tempfile::tempdir().unwrap();
    let dev = state.path().join("sw1");
    registered_device(&dev, &m, &token);
    let features =
        ["-c", "license feature \"ACI Essentials\" count 5", "-c", "license feature \"ACI Premier\" count 1"];
    agent(&dev, &features, None);

    let summary = agent(&dev, &["-c", "show license summary"], None);
    assert!(summary.contains("License Authorization:\n  Status: OUT OF COMPLIANCE\n"), "{summary}");
    assert_eq!(row_status(&summary, "ACI Essentials"), "AUTHORIZED", "{summary}");
    assert_eq!(row_status(&summary, "ACI Premier"), "OUT OF COMPLIANCE", "{summary}");

    let usage = agent(&dev, &["-c", "show license usage"], None);
    assert!(usage.starts_with("License Authorization:\n  Status: OUT OF COMPLIANCE on "), "{usage}");
    assert!(usage.contains("\nACI Essentials (ACI Essentials):\n  Description: ACI Essentials\n  Count: 5\n  Version: 1.0\n  Status: AUTHORIZED\n  Export status: NOT RESTRICTED\n"), "{usage}");
    assert_eq!(entry_status(&usage, "ACI Premier"), "OUT OF COMPLIANCE", "{usage}");

    let all = agent(&dev, &["-c", "show license all"], None);
    assert!(all.contains("License Authorization:\n  Status: OUT OF COMPLIANCE on "), "{all}");
    assert_eq!(entry_status(&all, "ACI Essentials"), "AUTHORIZED", "{all}");
    assert_eq!(entry_status(&all, "ACI Premier"), "OUT OF COMPLIANCE", "{all}");
}

/// The hostname the manager's instance view shows.
fn manager_hostname(m: &Manager) -> String {
    let listed: serde_json::Value =
        serde_json::from_str(&ok(m, &["--json", "instance", "list", "--account", "example.com"])).unwrap();
    let instances = listed["instances"].as_array().expect("an instance list");
    assert_eq!(instances.len(), 1, "{listed}");
    instances[0]["hostname"].as_str().unwrap().to_string()
}

/// `hostname` after registration reaches the manager at the next contact; with `license smart
/// privacy hostname` the manager is told no hostname and keeps none, not the name sent before.
#[test]
fn the_manager_learns_the_hostname_at_every_contact() {
    let (m, token) = manager_with(&[("ACI Essentials", "10")]);
    let state = tempfile::tempdir().unwrap();
    let dev = state.path().join("sw1");
    registered_device(&dev, &m, &token);
    assert_eq!(manager_hostname(&m), "sw1");

    agent(&dev, &["-c", "hostname edge-7", "-c", "license smart renew auth"], None);
    assert_eq!(manager_hostname(&m), "edge-7");

    agent(&dev, &["-c", "license smart privacy hostname", "-c", "license smart renew auth"], None);
    assert_eq!(manager_hostname(&m), "");

    agent(&dev, &["-c", "no license smart privacy hostname", "-c", "license smart renew auth"], None);
    assert_eq!(manager_hostname(&m), "edge-7");
}
