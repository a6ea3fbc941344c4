//! Device-led conversion (V-1) with the binaries an operator runs: `smartlic admin conversion`
//! enables it, a `smartlic agent` device holding legacy licenses converts them once against a
//! real `smartlic server` over HTTPS, and the licenses land in its virtual account.

use crate::common;

use common::*;

#[test]
fn the_operator_enables_conversion_and_an_agent_converts_once() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]);
    let shown = ok(&m, &["conversion", "show", "--account", "example.com"]);
    assert_eq!(shown, "enabled:          no\nvirtual_accounts: -\n");
    let set = ok(&m, &["conversion", "set", "--account", "example.com", "--va", "Default", "--enabled", "true"]);
    assert_eq!(set, "enabled:          no\nvirtual_accounts: Default\n");

    let root = tempfile::tempdir().unwrap();
    let dev = root.path().join("apic1");
    agent(&dev, &["init", "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0DL", "--hostname", "apic1"], None);
    trust_manager(&dev, &m);
    agent(&dev, &["-c", &format!("license smart register idtoken {}", token.trim())], None);
    let legacy = ["-c", "license legacy \"ACI-LEAF-ADV\" count 2", "-c", "license legacy \"OLD-FEATURE-X\" count 1"];
    agent(&dev, &legacy, None);
    assert!(agent(&dev, &["-c", "show running-config"], None).contains("license legacy \"ACI-LEAF-ADV\" count 2"));

    let converted = agent(&dev, &["-c", "license smart conversion start", "-c", "sh lic stat | sec Conversion"], None);
    for line in [
        "Smart License Conversion:",
        "  Status: Successful",
        "  Legacy license \"ACI-LEAF-ADV\" count 2: converted to 2 ACI Advantage",
        "  Legacy license \"OLD-FEATURE-X\" count 1: not converted: unknown legacy license",
    ] {
        assert!(converted.contains(line), "{line} missing from\n{converted}");
    }
    let licenses = ok(&m, &["license", "list", "--account", "example.com", "--va", "Default"]);
    assert!(licenses.contains("\nACI Advantage  2 "), "{licenses}");

    let again = agent(&dev, &["-c", "license smart conversion start", "-c", "sh lic stat | sec Conversion"], None);
    assert!(again.contains("  Status: Already converted"), "{again}");
    let licenses = ok(&m, &["license", "list", "--account", "example.com", "--va", "Default"]);
    assert!(licenses.contains("\nACI Advantage  2 "), "nothing more was deposited: {licenses}");
}
