//! `smartlic admin pak` against a real `smartlic server`: PAKs imported from a TOML or JSON
//! file (a bad file names its line and imports nothing), listed with what remains, converted
//! in parts or whole as each PAK allows, never twice, and the history; another smart account's
//! client sees none of it.

use crate::common;

use common::*;
use std::path::PathBuf;

const IMPORT: &str = r#"
account = "example.com"

[[paks]]
pak = "PAK-P"
order_number = "106386347"
order_date = "2018-05-07"
virtual_account = "Lab"
partial_fulfillment = true
lines = [{ sku = "C9500-NW-A", quantity = 25 }, { sku = "C9500-DNA-32C-A-10", quantity = 2 }]

[[paks]]
pak = "PAK-W"
order_number = "106386348"
order_date = "2018-05-08"
lines = [{ sku = "UCM-ENH-USR-25", quantity = 4 }]
"#;

fn file(m: &Manager, name: &str, text: &str) -> PathBuf {
    let path = m.data.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn listed(m: &Manager) -> serde_json::Value {
    serde_json::from_str(&ok(m, &["--json", "pak", "list", "--account", "example.com"])).unwrap()
}

#[test]
fn import_list_convert_and_history() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab"]);

    // A bad file imports nothing: an unknown SKU on PAK 2's first line, then a syntax error.
    let bad = IMPORT.replace("UCM-ENH-USR-25", "NO-SUCH-SKU");
    let err = fails(&m, &m.ca, &["pak", "import", file(&m, "bad.toml", &bad).to_str().unwrap()]);
    assert!(err.contains("PAK 2 ('PAK-W'): line 1: SKU 'NO-SUCH-SKU' is not in the catalogue"), "{err}");
    let broken = IMPORT.replace("quantity = 4 }", "quantity = four }");
    let err = fails(&m, &m.ca, &["pak", "import", file(&m, "broken.toml", &broken).to_str().unwrap()]);
    assert!(err.contains("broken.toml is not a PAK import file") && err.contains("line 16"), "{err}");
    assert_eq!(listed(&m)["paks"], serde_json::json!([]));

    let out = ok(&m, &["pak", "import", file(&m, "paks.toml", IMPORT).to_str().unwrap()]);
    assert!(out.contains("PAK-P") && out.contains("C9500-DNA-32C-A-10 (2), C9500-NW-A (25)"), "{out}");
    assert!(out.contains("Not converted"), "{out}");
    // The same PAKs again, as JSON: refused by name.
    let json = r#"{"account": "example.com", "paks": [{"pak": "PAK-W", "order_number": "1", "order_date": "2018-05-08",
        "lines": [{"sku": "UCM-ENH-USR-25", "quantity": 1}]}]}"#;
    let err = fails(&m, &m.ca, &["pak", "import", file(&m, "again.json", json).to_str().unwrap()]);
    assert!(err.contains("PAK 'PAK-W' was imported already") && err.contains("HTTP 409"), "{err}");

    // Part of PAK-P, then more than remains, then the rest; then nothing is left.
    let convert = ["pak", "convert", "--account", "example.com", "PAK-P", "--va", "Default"];
    let out = ok(&m, &[&convert[..], &["--sku", "C9500-NW-A=10"]].concat());
    assert!(out.contains("PAK:PAK-P:C9500-NW-A") && out.contains("C9500 Network Advantage"), "{out}");
    let err = fails(&m, &m.ca, &[&convert[..], &["--sku", "C9500-NW-A=16"]].concat());
    assert!(err.contains("SKU 'C9500-NW-A' has 15 left to convert; 16 asked"), "{err}");
    let table = ok(&m, &["pak", "list", "--account", "example.com"]);
    assert!(
        table.contains("Partially converted") && table.contains("C9500-DNA-32C-A-10 (2), C9500-NW-A (15)"),
        "{table}"
    );
    ok(&m, &convert);
    let err = fails(&m, &m.ca, &convert);
    assert!(err.contains("nothing remains to convert"), "{err}");

    // PAK-W allows no partial fulfilment: a part is refused, the whole converts.
    let whole = ["pak", "convert", "--account", "example.com", "PAK-W", "--va", "Lab"];
    let err = fails(&m, &m.ca, &[&whole[..], &["--sku", "UCM-ENH-USR-25=1"]].concat());
    assert!(err.contains("partial fulfilment is not allowed"), "{err}");
    ok(&m, &whole);
    let paks = listed(&m);
    let statuses: Vec<&str> = paks["paks"].as_array().unwrap().iter().map(|p| p["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["Converted", "Converted"]);

    let history = ok(&m, &["pak", "history", "--account", "example.com"]);
    let rows: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{history}");
    assert!(
        rows[0].contains("PAK-W") && rows[0].contains("UCM-ENH-USR-25 (4)") && rows[0].contains("Lab"),
        "{history}"
    );
    assert!(rows[2].contains("PAK-P") && rows[2].contains("C9500-NW-A (10)") && rows[2].contains("admin"), "{history}");
    let licenses = ok(&m, &["--json", "license", "list", "--account", "example.com", "--va", "Lab"]);
    assert!(licenses.contains("PAK:PAK-W:UCM-ENH-USR-25"), "{licenses}");

    // Another smart account's administrator sees nothing of example.com's PAKs.
    ok(&m, &["account", "create", "--domain", "other.com"]);
    let made = ok(
        &m,
        &["--json", "client", "create", "--account", "other.com", "--name", "o", "--role", "smart-account-admin"],
    );
    let made: serde_json::Value = serde_json::from_str(&made).unwrap();
    let (id, secret) = (made["client_id"].as_str().unwrap(), made["client_secret"].as_str().unwrap());
    let out = smartlic()
        .args(["admin", "--server", &m.url, "--ca"])
        .arg(&m.ca)
        .args(["--client-id", id, "--secret", secret, "pak", "list", "--account", "example.com"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("HTTP 404") && !err.contains("PAK-P"), "{err}");
}
