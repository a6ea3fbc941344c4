//! Issue 12's whole network with the real binaries on loopback: a cloud (`smartlic server`), a
//! satellite (`--mode satellite`) whose local account the cloud approved, a transport gateway
//! (`--mode gateway`) in front of each, and agents (`smartlic agent`) registering and
//! authorizing at each of the four; a cloud token is refused at the satellite in seed 000's words.

use crate::common;

use common::*;
use std::path::Path;
use std::process::Stdio;

const DOMAIN: &str = "example.com";
const SMART_TRANSPORT: &str = "/SmartTransport";
const LEGACY: &str = "/Transportgateway/services/DeviceRequestHandler";

fn gateway_to(upstream: &Manager) -> Manager {
    let ca = upstream.ca.to_str().unwrap();
    let args = ["--mode", "gateway", "--upstream", &upstream.url, "--upstream-ca", ca];
    start_with(tempfile::tempdir().unwrap(), &args, "warn", Stdio::inherit())
}

/// A new agent `sn` trusting each (trust point, CA file) of `trust`, its destination set by
/// `url_line`, registering with `token` and using 2 ACI Essentials: its `show license status`.
fn agent_registers(root: &Path, sn: &str, trust: &[(&str, &Path)], url_line: &str, token: &str) -> String {
    let dev = root.join(sn);
    agent(&dev, &["init", "--pid", "APIC-SERVER-M3", "--sn", sn, "--hostname", "apic1"], None);
    for (trustpoint, ca) in trust {
        let declare = format!("crypto pki trustpoint {trustpoint}");
        let import = format!("crypto pki authenticate {trustpoint}");
        assert!(agent(&dev, &["-c", &declare, "-c", &import], Some(ca)).contains("Certificate successfully imported"));
    }
    let register = format!("license smart register idtoken {token}");
    let feature = "license feature \"ACI Essentials\" count 2";
    agent(&dev, &["-c", url_line, "-c", feature, "-c", &register, "-c", "sh lic stat"], None)
}

fn authorized(status: &str) {
    assert!(status.contains("Status: REGISTERED"), "{status}");
    assert!(status.contains("Status: AUTHORIZED on"), "{status}");
}

#[test]
fn agents_register_at_the_cloud_the_satellite_and_through_a_gateway_to_each() {
    let cloud = start();
    ok(&cloud, &["account", "create", "--domain", DOMAIN]);
    ok(&cloud, &["va", "create", "--account", DOMAIN, "--name", "Lab"]);
    for va in ["Default", "Lab"] {
        ok(&cloud, &["license", "add", "--account", DOMAIN, "--va", va, "--tag", "ACI Advantage", "--count", "4"]);
    }
    // The satellite's local account, registered by files and approved by the cloud for Lab.
    let sat = start_with(tempfile::tempdir().unwrap(), &["--mode", "satellite"], "warn", Stdio::inherit());
    let files = tempfile::tempdir().unwrap();
    let request = files.path().join("request.json").to_str().unwrap().to_string();
    let answer = files.path().join("answer.json").to_str().unwrap().to_string();
    ok(&sat, &["local-account", "create", "--name", "Plant", "--smart-account", DOMAIN]);
    ok(&sat, &["local-account", "register", "--name", "Plant", "--out", &request]);
    ok(&cloud, &["satellite", "answer", "--in", &request, "--out", &answer, "--va", "Lab"]);
    assert!(ok(&sat, &["local-account", "register", "--name", "Plant", "--answer", &answer]).contains("approved"));
    let (cloud_gw, sat_gw) = (gateway_to(&cloud), gateway_to(&sat));

    let token_at =
        |m: &Manager, va: &str| ok(m, &["token", "create", "--account", DOMAIN, "--va", va]).trim().to_string();
    let (cloud_token, sat_token) = (token_at(&cloud, "Default"), token_at(&sat, "Lab"));
    let root = tempfile::tempdir().unwrap();
    let licensing = ("SLA-TrustPoint", cloud.ca.as_path());
    let url = |base: &str, path: &str| format!("license smart url {base}{path}");

    // Devices of Default: at the cloud, and through the cloud's gateway.
    let direct =
        agent_registers(root.path(), "FCH0003MGR1", &[licensing], &url(&cloud.url, SMART_TRANSPORT), &cloud_token);
    authorized(&direct);
    let tls = ("GW-TrustPoint", cloud_gw.ca.as_path());
    authorized(&agent_registers(
        root.path(),
        "FCH0003MGR2",
        &[licensing, tls],
        &url(&cloud_gw.url, SMART_TRANSPORT),
        &cloud_token,
    ));
    // Devices of Lab: at the satellite, and through the satellite's gateway with the seeds'
    // satellite form; both trust the cloud CA for answers, which the satellite's certificate chains to.
    let tls = ("SAT-TrustPoint", sat.ca.as_path());
    authorized(&agent_registers(
        root.path(),
        "FCH0003MGR3",
        &[licensing, tls],
        &url(&sat.url, SMART_TRANSPORT),
        &sat_token,
    ));
    let tls = ("GW-TrustPoint", sat_gw.ca.as_path());
    let satellite_form = format!("license smart transport-mode satellite url {}{LEGACY}", sat_gw.url);
    authorized(&agent_registers(root.path(), "FCH0003MGR4", &[licensing, tls], &satellite_form, &sat_token));

    // Each manager holds its own devices and counts their usage.
    let at_cloud = ok(&cloud, &["instance", "list", "--account", DOMAIN]);
    assert!(at_cloud.contains("FCH0003MGR1") && at_cloud.contains("FCH0003MGR2"), "{at_cloud}");
    assert!(!at_cloud.contains("FCH0003MGR3") && !at_cloud.contains("FCH0003MGR4"), "{at_cloud}");
    let at_sat = ok(&sat, &["instance", "list", "--account", DOMAIN]);
    assert!(at_sat.contains("FCH0003MGR3") && at_sat.contains("FCH0003MGR4"), "{at_sat}");
    let essentials = |m: &Manager, va: &str| {
        let listed = ok(m, &["license", "list", "--account", DOMAIN, "--va", va]);
        listed
            .lines()
            .find(|l| l.starts_with("ACI Essentials"))
            .unwrap_or_default()
            .split_whitespace()
            .nth(4)
            .map(String::from)
    };
    assert_eq!(essentials(&cloud, "Default").as_deref(), Some("4"), "2 devices use 2 each at the cloud");
    assert_eq!(essentials(&sat, "Lab").as_deref(), Some("4"), "2 devices use 2 each at the satellite");

    // Tokens are per manager (S-4): a cloud token at the satellite is refused in seed 000's words.
    let tls = ("SAT-TrustPoint", sat.ca.as_path());
    let refused =
        agent_registers(root.path(), "FCH0003MGR5", &[licensing, tls], &url(&sat.url, SMART_TRANSPORT), &cloud_token);
    assert!(!refused.contains("Status: REGISTERED"), "{refused}");
    assert!(refused.contains("use the token from the satellite manager to register"), "{refused}");
}
