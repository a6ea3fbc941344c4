//! `smartlic bench` over a shared database at a tiny size (issue 15): devices register and
//! authorize through every manager, the larger pool is reached by storing instances straight
//! into the database, and each phase reports the servers' CPU per request. On SQLite with one
//! manager, and on a private PostgreSQL cluster the bench starts itself with two.

use crate::common;

/// The bench's report (stdout) with these options, after checking it succeeded; None when it
/// could not start PostgreSQL because the tools are missing (the test is then ignored).
fn bench(options: &[&str]) -> Option<String> {
    let out = common::smartlic()
        .args(["bench", "--instances", "20,50", "--register-at-most", "20", "--seconds", "1", "--concurrency", "4"])
        .args(options)
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    if log.contains("are not installed") && std::env::var_os("SMARTLIC_REQUIRE_POSTGRES").is_none() {
        eprintln!("ignored: {log}");
        return None;
    }
    assert!(out.status.success(), "{report}\n{log}");
    Some(report)
}

/// Every phase of a run over `backend` succeeded, with its CPU per request reported.
fn check(report: &str, backend: &str, managers: usize) {
    assert!(report.contains(&format!("{managers} manager(s) over {backend}")), "{report}");
    for row in ["| register | 1 → 20 | 20 | 0 |", "| authorize (first) | 1 → 20 | 20 | 0 |"] {
        assert!(report.contains(row), "{row}:\n{report}");
    }
    for size in ["20", "50"] {
        let row = report.lines().find(|l| l.starts_with(&format!("| authorize | {size} |"))).unwrap_or_else(|| {
            panic!("no authorize row at {size}:\n{report}");
        });
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells[3].parse::<usize>().unwrap() > 0, "{row}");
        assert_eq!(cells[4], "0", "errors in {row}");
        assert!(cells[10].parse::<f64>().is_ok(), "no CPU per request in {row}");
    }
    assert!(report.contains(&format!("30 instances stored straight into {backend}")), "{report}");
}

#[test]
fn bench_on_sqlite_stores_the_larger_pool_straight_into_the_database() {
    let report = bench(&[]).unwrap();
    check(&report, "SQLite", 1);
}

#[test]
fn bench_on_postgres_with_two_replicas() {
    let Some(report) = bench(&["--postgres", "--replicas", "2"]) else { return };
    check(&report, "PostgreSQL", 2);
}
