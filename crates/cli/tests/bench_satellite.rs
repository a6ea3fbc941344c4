//! `smartlic bench --satellite` at a tiny size: it starts a real cloud and a real satellite,
//! connects them, registers devices at the satellite and synchronises; every step succeeds and
//! a standard synchronisation after 1 % changed carries a small part of what a full one does.

use crate::common;

/// The size (bytes) of the request file of the export row of a `kind` synchronisation.
fn export_size(report: &str, kind: &str) -> usize {
    let row = report
        .lines()
        .find(|l| l.starts_with(&format!("| {kind} |")) && l.contains("files: export"))
        .unwrap_or_else(|| panic!("no {kind} export row in:\n{report}"));
    row.split('|').nth(6).unwrap().trim().parse().unwrap_or_else(|_| panic!("no file size in {row}"))
}

#[test]
fn satellite_bench_registers_authorizes_and_synchronises() {
    let out = common::smartlic()
        .args(["bench", "--satellite", "--devices", "200", "--seconds", "1", "--concurrency", "8"])
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}\n{log}");
    assert!(report.contains("| register | 1 → 200 | 200 | 0 |"), "{report}");
    assert!(report.contains("| authorize (1 % change) | 200 | 2 | 0 |"), "{report}");
    assert!(!report.contains("failed"), "{report}");
    for step in ["network: sync now", "files: export", "files: cloud File Sync", "files: import"] {
        for kind in ["| full | 200 | 200 |", "| standard | 200 | 2 |"] {
            assert!(report.lines().any(|l| l.starts_with(kind) && l.contains(step)), "{kind} {step}:\n{report}");
        }
    }
    let (full, standard) = (export_size(&report, "full"), export_size(&report, "standard"));
    assert!(standard * 10 < full, "standard request {standard} bytes, full {full}:\n{report}");
}
