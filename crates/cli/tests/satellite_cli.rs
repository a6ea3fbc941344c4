//! The operator commands of the satellite (issue 12, S-2) against a real `smartlic server` and
//! a real `smartlic server --mode satellite`: online registration (sent, approved, fetched by
//! running the command again) and offline registration by files, as the README shows them.

use crate::common;

use common::{admin, agent, fails, ok, smartlic, start, start_with, Manager, SECRET};
use std::process::Stdio;

const DOMAIN: &str = "example.com";

fn cloud_with_pools() -> Manager {
    let cloud = start();
    ok(&cloud, &["account", "create", "--domain", DOMAIN]);
    ok(&cloud, &["va", "create", "--account", DOMAIN, "--name", "Lab"]);
    ok(&cloud, &["license", "add", "--account", DOMAIN, "--va", "Lab", "--tag", "ACI Advantage", "--count", "4"]);
    cloud
}

fn satellite() -> Manager {
    start_with(tempfile::tempdir().unwrap(), &["--mode", "satellite"], "warn", Stdio::inherit())
}

/// `smartlic admin` at the satellite, with the cloud's URL, CA and operator secret given.
fn register_online(sat: &Manager, cloud: &Manager) -> String {
    let out = smartlic()
        .args(["admin", "--server", &sat.url, "--ca"])
        .arg(&sat.ca)
        .args(["--secret", SECRET, "local-account", "register", "--name", "Plant", "--cloud", &cloud.url])
        .arg("--cloud-ca")
        .arg(&cloud.ca)
        .env("SMARTLIC_CLOUD_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn online_registration_is_sent_approved_and_fetched() {
    let cloud = cloud_with_pools();
    let sat = satellite();
    ok(&sat, &["local-account", "create", "--name", "Plant", "--smart-account", DOMAIN]);

    let sent = register_online(&sat, &cloud);
    assert!(sent.contains("registration sent: satellite 1 in the cloud waits for approval"), "{sent}");
    assert!(ok(&sat, &["local-account", "list"]).contains("registration sent"));
    let listed = ok(&cloud, &["satellite", "list"]);
    assert!(listed.contains("smartlic-satellite") && listed.contains("pending"), "{listed}");
    let refused = fails(&cloud, &cloud.ca, &["satellite", "approve", "--id", "1", "--va", "Nope"]);
    assert!(refused.contains("virtual account 'Nope' does not exist in example.com"), "{refused}");
    assert!(ok(&cloud, &["satellite", "approve", "--id", "1", "--va", "Lab"]).contains("approved"));

    let fetched = register_online(&sat, &cloud);
    assert!(fetched.contains("status:") && fetched.contains("approved"), "{fetched}");
    let pool = ok(&sat, &["license", "list", "--account", DOMAIN, "--va", "Lab"]);
    assert!(pool.contains("ACI Advantage"), "the licenses of Lab at approval: {pool}");
    assert!(register_online(&sat, &cloud).contains("approved already"));

    // A device trusting the cloud's CA for licensing and the satellite's for TLS registers and
    // is authorized at the satellite's /SmartTransport with the satellite's token.
    let token = ok(&sat, &["token", "create", "--account", DOMAIN, "--va", "Lab"]);
    let state = tempfile::tempdir().unwrap();
    let dev = state.path().join("dev1");
    agent(&dev, &["init", "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0ST", "--hostname", "apic1"], None);
    for (trustpoint, ca) in [("SLA-TrustPoint", &cloud.ca), ("SAT-TrustPoint", &sat.ca)] {
        let declare = format!("crypto pki trustpoint {trustpoint}");
        let import = format!("crypto pki authenticate {trustpoint}");
        assert!(agent(&dev, &["-c", &declare, "-c", &import], Some(ca)).contains("Certificate successfully imported"));
    }
    let url = format!("license smart url {}/SmartTransport", sat.url);
    let register = format!("license smart register idtoken {}", token.trim());
    let feature = "license feature \"ACI Advantage\" count 3";
    let status = agent(&dev, &["-c", &url, "-c", &register, "-c", feature, "-c", "sh lic stat"], None);
    assert!(status.contains("Status: REGISTERED"), "{status}");
    assert!(status.contains("Status: AUTHORIZED on"), "{status}");
    assert!(ok(&sat, &["instance", "list", "--account", DOMAIN]).contains("FCH2001V0ST"));
}

#[test]
fn offline_registration_by_files() {
    let cloud = cloud_with_pools();
    let sat = satellite();
    let files = tempfile::tempdir().unwrap();
    let (request, answer) = (files.path().join("request.json"), files.path().join("answer.json"));
    let (request, answer) = (request.to_str().unwrap(), answer.to_str().unwrap());
    ok(&sat, &["local-account", "create", "--name", "Plant", "--smart-account", DOMAIN]);
    assert!(ok(&sat, &["local-account", "register", "--name", "Plant", "--out", request]).contains("written to"));

    // A request altered on the way is refused by the cloud, naming it; nothing is recorded.
    let original = std::fs::read_to_string(request).unwrap();
    let altered = files.path().join("altered.json");
    std::fs::write(&altered, original.replace("Plant", "Plant2")).unwrap();
    let why = fails(
        &cloud,
        &cloud.ca,
        &["satellite", "answer", "--in", altered.to_str().unwrap(), "--out", answer, "--va", "Lab"],
    );
    assert!(why.contains("the registration was altered after it was signed"), "{why}");
    assert!(!ok(&cloud, &["satellite", "list"]).contains("Plant"));

    ok(&cloud, &["satellite", "answer", "--in", request, "--out", answer, "--va", "Lab"]);
    assert!(ok(&cloud, &["satellite", "list"]).contains("approved"));
    let imported = ok(&sat, &["local-account", "register", "--name", "Plant", "--answer", answer]);
    assert!(imported.contains("approved"), "{imported}");
    // An answer imported twice is refused and changes nothing.
    let out = admin(&sat, &sat.ca, &["local-account", "register", "--name", "Plant", "--answer", answer]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("approved already"));
}
