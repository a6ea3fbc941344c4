//! `admin instance list` over more instances than a page holds (5,000 a page, keyset cursors):
//! every instance once, in the listing's order (pool, then PID and serial), as a table and as
//! the streamed `--json` document; the instance report, which the manager sends as it reads its
//! pages of 5,000, likewise.

use crate::common;

use common::*;

#[test]
fn instance_listings_follow_the_cursor_to_the_last_page() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com", "--name", "Example"]);
    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab"]);
    // 12,001 instances (three pages), in both pools, written behind the manager's back for speed.
    let mut db = rusqlite::Connection::open(m.data.path().join("smartlic.db")).unwrap();
    let batch = db.transaction().unwrap();
    let pools: Vec<i64> = {
        let mut q = batch.prepare("SELECT id FROM virtual_accounts ORDER BY id").unwrap();
        q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(pools.len(), 2);
    for n in 0..12_001 {
        batch
            .execute(
                "INSERT INTO instances (id, virtual_account_id, udi_pid, udi_sn, hostname, registered_at,
                 last_contact_at, cert_serial, cert_expires_at, key_algorithm, public_key, export_controlled,
                 usage_released) VALUES (?1, ?2, 'C9300', ?3, '', 0, 0, ?1, 0, 'ed25519', 'k', FALSE, FALSE)",
                rusqlite::params![format!("i{n}"), pools[n % 2], format!("SN{:05}", 12_000 - n)],
            )
            .unwrap();
    }
    batch.commit().unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&ok(&m, &["--json", "instance", "list", "--account", "example.com"])).unwrap();
    assert!(json["next"].is_null(), "{}", json["next"]);
    let listed: Vec<(&str, &str)> = json["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["virtual_account"].as_str().unwrap(), i["udi_serial_number"].as_str().unwrap()))
        .collect();
    // Default's instances (even n: serials SN12000, SN11998, ...) then Lab's, each by serial.
    let serials = |parity: usize| (0..12_001).filter(move |n| n % 2 == parity).map(|n| format!("SN{:05}", 12_000 - n));
    let mut expected: Vec<(&str, String)> = serials(0).map(|sn| ("Default", sn)).collect();
    expected.sort();
    let mut lab: Vec<(&str, String)> = serials(1).map(|sn| ("Lab", sn)).collect();
    lab.sort();
    expected.extend(lab);
    assert_eq!(listed.len(), expected.len());
    assert!(listed.iter().zip(&expected).all(|(a, b)| a.0 == b.0 && a.1 == b.1), "not in listing order");

    let table = ok(&m, &["instance", "list", "--account", "example.com"]);
    assert_eq!(table.lines().count(), 1 + 12_001, "a header and every instance");

    let csv = ok(&m, &["report", "instances", "--account", "example.com", "--csv"]);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,udi_pid,udi_serial_number,"), "{csv:.200}");
    let reported: Vec<&str> = lines.map(|l| l.split(',').nth(2).unwrap()).collect();
    assert_eq!(reported, listed.iter().map(|(_, sn)| *sn).collect::<Vec<_>>());
    let json: serde_json::Value =
        serde_json::from_str(&ok(&m, &["--json", "report", "instances", "--account", "example.com"])).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 12_001);
}
