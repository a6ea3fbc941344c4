//! The README's smart agent walk-through, run with the real binaries: a manager, then a device
//! created, trusting the manager's CA, registered and using licenses, through 31 days, 91
//! days of an unreachable manager and a year.

use crate::common;

use chrono::{DateTime, Utc};
use common::*;
use smartlic_core::time::{DAY_MS, HOUR_MS};
use smartlic_core::{Clock, SystemClock, Timestamp};
use std::path::Path;

fn device_time(at: Timestamp) -> String {
    at.to_datetime().format("%H:%M:%S %d %b %Y").to_string()
}

fn date_shown(at: Timestamp) -> String {
    let dt: DateTime<Utc> = at.to_datetime();
    dt.format("%b %d").to_string()
}

/// Moves the device clock to `at` and returns `show license status`.
fn status_at(dir: &Path, at: Timestamp) -> String {
    let set = format!("clock set {}", device_time(at));
    agent(dir, &["-c", &set, "-c", "show license status"], None)
}

#[test]
fn readme_agent_walkthrough() {
    let mut m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(
        &m,
        &["license", "add", "--account", "example.com", "--va", "Default", "--tag", "ACI Advantage", "--count", "12"],
    );
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]).trim().to_string();

    let state = tempfile::tempdir().unwrap();
    let dev = state.path().join("dev1");
    agent(&dev, &["init", "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0AB", "--hostname", "apic1"], None);
    let trust = [
        "-c",
        "crypto pki trustpoint SLA-TrustPoint",
        "-c",
        "enrollment terminal",
        "-c",
        "revocation-check none",
        "-c",
        "end",
        "-c",
        "crypto pki authenticate SLA-TrustPoint",
    ];
    assert!(agent(&dev, &trust, Some(&m.ca)).contains("Certificate successfully imported"));
    let url = format!("license smart url {}", m.url);
    let register = format!("license smart register idtoken {token}");
    let feature = "license feature \"ACI Essentials\" count 10";
    let status = agent(&dev, &["-c", &url, "-c", &register, "-c", feature, "-c", "sh lic stat"], None);
    assert!(status.contains("Status: REGISTERED"), "{status}");
    assert!(status.contains("Status: AUTHORIZED on"), "{status}");
    let registered = SystemClock.now();

    // 31 days later, manager and device alike: the 30-day renewal has been done.
    let day31 = registered.plus_ms(31 * DAY_MS);
    ok(&m, &["clock", "set", &day31.to_rfc3339()]);
    let status = status_at(&dev, day31);
    assert!(status.contains(&format!("Last Communication Attempt: SUCCEEDED on {}", date_shown(day31))), "{status}");
    assert!(
        status.contains(&format!("Next Communication Attempt: {}", date_shown(day31.plus_ms(30 * DAY_MS)))),
        "{status}"
    );

    // The manager unreachable for 91 days: the authorization expires.
    m.stop();
    let status = status_at(&dev, day31.plus_ms(91 * DAY_MS));
    assert!(status.contains("Status: AUTHORIZATION EXPIRED on"), "{status}");
    assert!(status.contains("Failure reason: Fail to send out Call Home HTTP message"), "{status}");

    // A year on, the ID certificate has expired: a clock moved past it gets one hour of grace
    // then the device is back in evaluation with its remaining time.
    let year = registered.plus_ms(366 * DAY_MS);
    assert!(status_at(&dev, year).contains("Status: REGISTERED"));
    let status = status_at(&dev, year.plus_ms(2 * HOUR_MS));
    assert!(status.contains("UNREGISTERED"), "{status}");
    assert!(status.contains("Status: EVALUATION MODE"), "{status}");
    // Nearly all of the 90 days are left: only the instants since the deregistration counted
    // (none at all when the show runs within the same millisecond).
    let left = ["Evaluation Period Remaining: 89 days, 23 hours", "Evaluation Period Remaining: 90 days, 0 hours"];
    assert!(left.iter().any(|l| status.contains(l)), "{status}");
}
