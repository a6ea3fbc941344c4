//! The satellite's synchronisation commands (issue 12, S-3) against a real `smartlic server`
//! and a real `smartlic server --mode satellite`, as the README shows them: a device at the
//! satellite, a license taken away in the cloud, a manual synchronisation by YAML files (with
//! an altered and a replayed file refused), then one over the network; the schedule, and a pool
//! reassigned to the cloud.

use crate::common;

use common::{agent, fails, ok, start, start_with, Manager};
use std::process::Stdio;

const DOMAIN: &str = "example.com";

#[test]
fn sync_by_files_and_over_the_network() {
    let cloud = start();
    ok(&cloud, &["account", "create", "--domain", DOMAIN]);
    ok(&cloud, &["va", "create", "--account", DOMAIN, "--name", "Lab"]);
    ok(&cloud, &["license", "add", "--account", DOMAIN, "--va", "Lab", "--tag", "ACI Advantage", "--count", "4"]);
    let sat: Manager = start_with(tempfile::tempdir().unwrap(), &["--mode", "satellite"], "warn", Stdio::inherit());
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str| files.path().join(name).to_str().unwrap().to_string();
    let (registration, answer) = (file("request.json"), file("answer.json"));
    ok(&sat, &["local-account", "create", "--name", "Plant", "--smart-account", DOMAIN]);
    ok(&sat, &["local-account", "register", "--name", "Plant", "--out", &registration]);
    ok(&cloud, &["satellite", "answer", "--in", &registration, "--out", &answer, "--va", "Lab"]);
    ok(&sat, &["local-account", "register", "--name", "Plant", "--answer", &answer]);

    // A device at the satellite uses 3 of Lab's 4 licenses.
    let token = ok(&sat, &["token", "create", "--account", DOMAIN, "--va", "Lab"]);
    let state = tempfile::tempdir().unwrap();
    let dev = state.path().join("dev1");
    agent(&dev, &["init", "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0SY", "--hostname", "apic1"], None);
    for (trustpoint, ca) in [("SLA-TrustPoint", &cloud.ca), ("SAT-TrustPoint", &sat.ca)] {
        let declare = format!("crypto pki trustpoint {trustpoint}");
        agent(&dev, &["-c", &declare, "-c", &format!("crypto pki authenticate {trustpoint}")], Some(ca));
    }
    let url = format!("license smart url {}/SmartTransport", sat.url);
    let register = format!("license smart register idtoken {}", token.trim());
    let status = agent(&dev, &["-c", &url, "-c", &register, "-c", "license feature \"ACI Advantage\" count 3"], None);
    assert!(!status.contains("error"), "{status}");

    // The cloud takes Lab's licenses away; the satellite does not know yet.
    let pool = ["--account", DOMAIN, "--va", "Lab"];
    let transfer =
        [&["license", "transfer"][..], &pool, &["--tag", "ACI Advantage", "--count", "4", "--to", "Default"]];
    ok(&cloud, &transfer.concat());
    assert!(ok(&sat, &[&["license", "list"][..], &pool].concat()).contains("In Compliance"));

    // Manual synchronisation: request out, File Sync in the cloud, response in.
    let (request, response) = (file("license-sync-request.yaml"), file("license-sync-response.yaml"));
    assert!(ok(&sat, &["sync", "export", "--out", &request]).contains("written to"));
    assert!(std::fs::read_to_string(&request).unwrap().starts_with("kind: smartlic-sync-request"));
    ok(&cloud, &["satellite", "file-sync", "--in", &request, "--out", &response]);
    let replayed =
        fails(&cloud, &cloud.ca, &["satellite", "file-sync", "--in", &request, "--out", &file("again.yaml")]);
    assert!(replayed.contains("replayed"), "{replayed}");
    let altered = file("altered.yaml");
    std::fs::write(&altered, std::fs::read_to_string(&response).unwrap().replace("Lab", "Lob")).unwrap();
    let why = fails(&sat, &sat.ca, &["sync", "import", "--in", &altered]);
    assert!(why.contains("altered after it was signed"), "{why}");
    ok(&sat, &["sync", "import", "--in", &response]);
    assert!(fails(&sat, &sat.ca, &["sync", "import", "--in", &response]).contains("replayed"));

    // The cloud is authoritative now: the satellite's pool is out of compliance, and the cloud
    // shows the satellite's device and counts its usage.
    assert!(ok(&sat, &[&["license", "list"][..], &pool].concat()).contains("Out Of Compliance"));
    let mirrored = ok(&cloud, &["satellite", "instances", "--id", "1"]);
    assert!(mirrored.contains("FCH2001V0SY"), "{mirrored}");
    let at_cloud = ok(&cloud, &[&["license", "list"][..], &pool].concat());
    assert!(at_cloud.contains("Out Of Compliance"), "{at_cloud}");

    // The cloud's operator removes the device; the next sync (over the network, naming the
    // cloud as the local account was registered by files) removes it at the satellite.
    let remove = ["satellite", "remove-instance", "--id", "1", "--va", "Lab", "--pid", "APIC-SERVER-M3"];
    ok(&cloud, &[&remove[..], &["--sn", "FCH2001V0SY"]].concat());
    ok(&sat, &["sync", "now", "--cloud", &cloud.url]);
    assert!(!ok(&sat, &["instance", "list", "--account", DOMAIN]).contains("FCH2001V0SY"));
    assert!(!ok(&cloud, &["satellite", "instances", "--id", "1"]).contains("FCH2001V0SY"));

    ok(&sat, &["sync", "now", "--full", "--cloud", &cloud.url]);
    let status = ok(&sat, &["sync", "status"]);
    assert!(status.contains("SYNCHRONIZATION DUE") && status.contains("Plant"), "{status}");

    // The schedule: every 14 days, as the status shows; the cloud's URL a sync named is kept.
    assert!(fails(&sat, &sat.ca, &["sync", "schedule", "--days", "400"]).contains("between 1 and 365"));
    ok(&sat, &["sync", "schedule", "--days", "14"]);
    let status = ok(&sat, &["sync", "status"]);
    assert!(status.contains("INTERVAL (DAYS)") && status.contains("14"), "{status}");

    // The cloud's operator gives Lab back to the cloud: it moves with the satellite's next sync,
    // after which the cloud issues Lab's tokens again.
    let reassign = ["satellite", "reassign", "--smart-account", DOMAIN, "--va", "Lab"];
    assert!(fails(&cloud, &cloud.ca, &[&reassign[..], &["--to", "one"]].concat()).contains("--to takes"));
    let token_of_lab = ["token", "create", "--account", DOMAIN, "--va", "Lab"];
    assert!(fails(&cloud, &cloud.ca, &token_of_lab).contains("created and revoked at the satellite"));
    assert!(ok(&cloud, &[&reassign[..], &["--to", "cloud"]].concat()).contains("the cloud"));
    let listed = ok(&cloud, &["satellite", "list"]);
    assert!(listed.contains("PENDING MOVES") && listed.contains("'Lab' to the cloud"), "{listed}");
    ok(&sat, &["sync", "now"]);
    assert!(!ok(&cloud, &["satellite", "list"]).contains("'Lab' to the cloud"));
    ok(&cloud, &token_of_lab);
}
