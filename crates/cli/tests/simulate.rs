//! `smartlic simulate`: small fleets against the real manager (in the process, real SQLite
//! file, simulated clock), read back from the per-day CSV it writes.

use crate::common;

use std::path::Path;

/// Writes `scenario` and runs `smartlic simulate` on it with `--out DIR/out`: (success, stdout
/// and stderr together).
fn simulate(dir: &Path, scenario: &str, extra: &[&str]) -> (bool, String) {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let out = dir.join("out");
    let output = common::smartlic()
        .args(["simulate", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// A column of the per-day CSV, one value per day.
fn column(csv: &str, name: &str) -> Vec<i64> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines.map(|l| l.split(',').nth(i).unwrap().parse().unwrap()).collect()
}

fn run(scenario: &str) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = simulate(dir.path(), scenario, &[]);
    assert!(ok, "{text}");
    let csv = std::fs::read_to_string(dir.path().join("out/days.csv")).unwrap();
    (dir, csv, text)
}

const POOL: &str = r#"
[[pool]]
name = "Default"
[[pool.purchase]]
tag = "C9500 Network Advantage"
count = 100
"#;

fn group(name: &str, count: u32, day: u32) -> String {
    format!(
        "[[group]]\nname = \"{name}\"\npid = \"C9500-48Y4C\"\ncount = {count}\npool = \"Default\"\nregister_day = {day}\nspread_hours = 6\n[[group.feature]]\ntag = \"C9500 Network Advantage\"\ncount = 1\n"
    )
}

#[test]
fn the_same_seed_gives_the_same_days() {
    let scenario =
        format!("days = 40\nseed = 5\n{POOL}{}\n[[retire]]\ngroup = \"a\"\nday = 20\ncount = 3\n", group("a", 12, 1));
    let (dir, first, summary) = run(&scenario);
    let (_, second, _) = run(&scenario);
    assert_eq!(first, second);
    assert!(summary.contains("simulated 12 devices over 40 days"), "{summary}");
    assert_eq!(column(&first, "registered")[39], 9);
    assert_eq!(column(&first, "retired")[39], 3);
    assert_eq!(column(&first, "requests_deregister").iter().sum::<i64>(), 3);
    assert_eq!(column(&first, "not_deployed")[0], 12, "the wave registers on day 1");
    let svg = std::fs::read_to_string(dir.path().join("out/days.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{svg}");
}

#[test]
fn an_outage_fails_requests_then_the_fleet_recovers() {
    // Renewals fall due on day 30 and a second wave registers on day 31, both in the outage.
    let scenario = format!(
        "days = 45\n{POOL}{}{}\n[[outage]]\nfrom_day = 29\nto_day = 34\n",
        group("early", 10, 0),
        group("late", 5, 31)
    );
    let (_, csv, text) = run(&scenario);
    let failures = column(&csv, "failures_communication");
    assert!(failures[30..34].iter().all(|&f| f > 0), "failures in the outage: {failures:?}\n{text}");
    assert!(failures[..29].iter().chain(&failures[35..]).all(|&f| f == 0), "{failures:?}");
    // After 4 hours of 15-minute retries the late wave reads as failed, still retried hourly (G-4).
    assert_eq!(column(&csv, "registration_failed")[32], 5, "{csv}");
    assert_eq!(column(&csv, "registered")[44], 15);
    assert_eq!(column(&csv, "authorized")[44], 15);
}

#[test]
fn a_term_license_ending_puts_the_pool_out_of_compliance_that_day() {
    let scenario = format!(
        "days = 40\n{POOL}[[pool.purchase]]\ntag = \"C9500 Network Advantage\"\ncount = 10\nkind = \"term\"\nend_day = 25\n{}",
        group("a", 105, 0)
    );
    let (_, csv, _) = run(&scenario);
    let balance = column(&csv, "Default/C9500 Network Advantage/balance");
    assert_eq!((balance[24], balance[25]), (5, -5), "{balance:?}");
    let ooc = column(&csv, "out_of_compliance");
    assert_eq!(ooc[29], 0, "devices learn it at their next authorization (day 30): {ooc:?}");
    assert_eq!(ooc[30], 105);
}

#[test]
fn a_malformed_scenario_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!("days = 10\n{POOL}[[group]]\nname = \"a\"\npid = \"P\"\ncount = 1\npool = \"Lab\"\n"),
            "group[0].pool",
        ),
        (format!("days = 10\n{POOL}{}\n[[outage]]\nfrom_day = 5\nto_day = 2\n", group("a", 1, 0)), "outage[0].to_day"),
        (format!("days = 10\ncolour = 1\n{POOL}"), "colour"),
        (
            format!("days = 10\n{POOL}{}", group("a", 1, 0).replace("C9500 Network Advantage", "Nope")),
            "group[0].feature[0].tag",
        ),
    ];
    for (scenario, field) in cases {
        let (ok, text) = simulate(dir.path(), &scenario, &[]);
        assert!(!ok, "{scenario}");
        assert!(text.contains(field), "{field} not named in: {text}");
        assert!(!dir.path().join("out").exists(), "nothing is written for a refused scenario");
    }
}

#[test]
fn boots_beyond_the_pools_licenses_give_the_same_days_and_the_right_shortage() {
    // 100 licenses, 130 devices booting within an hour, about 11 every 5 minutes: boots that fit
    // the pool run together, the rest one at a time; the outcome is the same run after run.
    let scenario =
        format!("days = 3\nseed = 9\n{POOL}{}", group("a", 130, 0).replace("spread_hours = 6", "spread_hours = 1"));
    let (_, first, text) = run(&scenario);
    let (_, second, _) = run(&scenario);
    assert_eq!(first, second);
    assert_eq!(column(&first, "Default/C9500 Network Advantage/balance")[2], -30, "{first}");
    assert_eq!(column(&first, "registered")[2], 130, "{text}");
    // Those authorized before the pool ran short learn it at their next authorization, in 30 days.
    assert_eq!(column(&first, "out_of_compliance")[2], 30, "{first}");
}
