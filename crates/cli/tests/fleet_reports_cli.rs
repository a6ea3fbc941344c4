//! `smartlic admin fleet report ...` and `smartlic admin fleet subscription ...` as an operator
//! uses them: a real manager with subscription licenses and the orchestrator, each its own
//! process on loopback.

use crate::common::{self, ok};
use crate::fleet_cli::{fleet, fleet_ok};
use serde_json::Value;
use std::process::Stdio;

#[test]
fn an_operator_reads_the_reports_and_maps_subscriptions() {
    let m = common::start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab"]);
    let lab = ["--account", "example.com", "--va", "Lab"];
    let tag = ["--tag", "HCS Cisco UCM Foundation License", "--count", "20", "--type", "subscription"];
    let when = ["--start", "2025-01-01", "--end", "2030-06-30", "--subscription-id", "Sub-100"];
    ok(&m, &[&["license", "add"][..], &lab, &tag, &when].concat());
    let created = ok(
        &m,
        &["--json", "client", "create", "--account", "example.com", "--name", "fleet", "--role", "smart-account-admin"],
    );
    let created: Value = serde_json::from_str(&created).unwrap();
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());

    let o = common::start_with(tempfile::tempdir().unwrap(), &["--mode", "fleet"], "warn", Stdio::inherit());
    let ca = m.ca.to_str().unwrap();
    let add = ["account", "add", "--name", "example.com", "--url", &m.url, "--manager-ca", ca, "--client-id", id];
    assert!(fleet_ok(&o, &[&add[..], &["--client-secret", secret, "--wait"]].concat()).contains("Completed"));
    fleet_ok(&o, &["customer", "add", "--name", "acme", "--account", "example.com"]);

    // The text reports print verbatim.
    let inventory = fleet_ok(&o, &["report", "service-inventory"]);
    assert!(inventory.starts_with("|LICENSESUMMARYSTART|\n"), "{inventory}");
    assert!(
        inventory.contains(
            "|SUMMARY|PLMINFO|Lab@example.com,CSSM,Sub-100,2030-06-30,SUBSCRIPTION|~|~|HCS Cisco UCM Foundation License|20|0|20|In Compliance|\n"
        ),
        "{inventory}"
    );
    let csv = fleet_ok(&o, &["report", "virtual-accounts"]);
    assert!(csv.contains("Lab@example.com,CSSM,HCS Cisco UCM Foundation License,20,0,20,In Compliance\r\n"), "{csv}");
    let dashboard = fleet_ok(&o, &["--json", "report", "dashboard"]);
    let dashboard: Value = serde_json::from_str(&dashboard).unwrap();
    assert_eq!((dashboard["customers"].as_i64(), dashboard["installed"].as_i64()), (Some(1), Some(20)));

    // The mapper: a wrong license model is refused with its name; a right one is kept.
    let listed = fleet_ok(&o, &["subscription", "list"]);
    assert!(listed.contains("Sub-100") && listed.contains("2030-06-30"), "{listed}");
    let map = ["subscription", "map", "--id", "Sub-100", "--customer", "acme", "--license-model"];
    let (done, _, err) = fleet(&o, &[&map[..], &["Flex"]].concat());
    assert!(!done && err.contains("license model \"Flex\"") && err.contains("Enterprise Agreement"), "{err}");
    let mapped = fleet_ok(&o, &[&map[..], &["Named User"]].concat());
    assert!(mapped.contains("named_user"), "{mapped}");
    let listed = fleet_ok(&o, &["subscription", "list"]);
    assert!(listed.contains("acme") && listed.contains("named_user"), "{listed}");
}
