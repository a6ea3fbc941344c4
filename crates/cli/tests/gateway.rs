//! The README's transport gateway walk-through with the real binaries: a manager, a gateway
//! relaying to it (`smartlic server --mode gateway`), and a device registering through the
//! gateway with the seeds' satellite URL; the gateway's options are checked at start.

use crate::common;

use common::*;
use std::process::Stdio;

#[test]
fn readme_gateway_walkthrough() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    let add =
        ["license", "add", "--account", "example.com", "--va", "Default", "--tag", "ACI Advantage", "--count", "4"];
    ok(&m, &add);
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]).trim().to_string();

    let upstream = ["--mode", "gateway", "--upstream", &m.url, "--upstream-ca", m.ca.to_str().unwrap()];
    let gw = start_with(tempfile::tempdir().unwrap(), &upstream, "warn", Stdio::inherit());
    assert!(gw.ca.exists(), "the gateway's CA, which devices trust for TLS");
    let kept: Vec<_> = std::fs::read_dir(gw.data.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(kept.len(), 2, "its CA and key, no licensing state: {kept:?}");

    let state = tempfile::tempdir().unwrap();
    let dev = state.path().join("dev1");
    agent(&dev, &["init", "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0GW", "--hostname", "apic1"], None);
    for (trustpoint, ca) in [("SLA-TrustPoint", &m.ca), ("GW-TrustPoint", &gw.ca)] {
        let declare = format!("crypto pki trustpoint {trustpoint}");
        let import = format!("crypto pki authenticate {trustpoint}");
        assert!(agent(&dev, &["-c", &declare, "-c", &import], Some(ca)).contains("Certificate successfully imported"));
    }
    let url =
        format!("license smart transport-mode satellite url {}/Transportgateway/services/DeviceRequestHandler", gw.url);
    let register = format!("license smart register idtoken {token}");
    let feature = "license feature \"ACI Essentials\" count 3";
    let status = agent(&dev, &["-c", &url, "-c", &register, "-c", feature, "-c", "sh lic stat"], None);
    assert!(status.contains("Status: REGISTERED"), "{status}");
    assert!(status.contains("Status: AUTHORIZED on"), "{status}");
    let instances = ok(&m, &["instance", "list", "--account", "example.com"]);
    assert!(instances.contains("FCH2001V0GW"), "{instances}");

    // The gateway is no manager: the admin client finds nothing there.
    let refused = fails(&gw, &gw.ca, &["account", "list"]);
    assert!(refused.contains("is not a device path: this is a transport gateway"), "{refused}");
}

#[test]
fn gateway_options_are_checked_at_start() {
    let data = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--mode", "gateway"], "--mode gateway needs --upstream URL"),
        (&["--mode", "gateway", "--upstream", "https://127.0.0.1:8443"], "--mode gateway needs --upstream-ca FILE"),
        (&["--upstream", "https://127.0.0.1:8443"], "--upstream is for --mode gateway only"),
    ];
    for (args, message) in cases {
        let out = smartlic()
            .args(["server", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path().join("never"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(message), "{args:?}: {stderr}");
        assert!(!data.path().join("never").exists(), "{args:?}: a refused start creates nothing");
    }
}
