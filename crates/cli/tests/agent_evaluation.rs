//! The evaluation cannot be rewound, with the real binary and edited state files: values
//! out of bounds are refused naming the field, an edited state or a deleted key ends the
//! evaluation with the reason shown, a deleted state is not a new device, a directory from
//! before the integrity check is sealed without an alarm, and the manager's instance view
//! shows the evaluation the device used when it registered.

use crate::common;

use common::*;
use serde_json::Value;
use smartlic_core::time::DAY_MS;
use smartlic_core::{Clock, SystemClock, Timestamp};
use std::path::Path;

const FEATURE: &str = "license feature \"ACI Essentials\" count 1";

/// `smartlic agent --state DIR ARGS...`: (succeeded, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = smartlic().arg("agent").arg("--state").arg(dir).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn clock_set(at: Timestamp) -> String {
    format!("clock set {}", at.to_datetime().format("%H:%M:%S %d %b %Y"))
}

/// A device in evaluation that has used `days` of it, and a second or two (`clock set` takes
/// whole seconds).
fn device_in_evaluation(dir: &Path, days: i64) {
    agent(dir, &["init", "--pid", "C9300-24UX", "--sn", "FCW2134L0RN"], None);
    let later = SystemClock.now().plus_ms(days * DAY_MS + 2_000);
    let status = agent(dir, &["-c", FEATURE, "-c", &clock_set(later), "-c", "show license status"], None);
    assert!(status.contains(&format!("Evaluation Period Remaining: {} days", 90 - days - 1)), "{status}");
}

/// The saved agent state (`state` of `agent.json`) edited by `edit`, written back.
fn edit_state(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("agent.json");
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut file["state"]["agent"]);
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
}

fn status(dir: &Path) -> String {
    agent(dir, &["-c", "show license status"], None)
}

#[test]
fn an_evaluation_rewound_in_the_state_file_is_expired_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    device_in_evaluation(&dev, 10);
    edit_state(&dev, |agent| agent["evaluation"]["used_ms"] = 0.into());
    let shown = status(&dev);
    assert!(shown.contains("Status: EVALUATION EXPIRED on"), "{shown}");
    assert!(shown.contains("Failure reason: agent.json was changed outside the agent"), "{shown}");
    assert!(!shown.contains("Evaluation Period Remaining"), "{shown}");
    // Saved sealed with the tamper on record: it stays so, with one fault logged.
    let log = agent(&dev, &["-c", "show license eventlog", "-c", "show license status"], None);
    assert_eq!(log.matches("%SMART_LIC-3-EVAL_TAMPERED").count(), 1, "{log}");
    assert!(log.contains("Status: EVALUATION EXPIRED on"), "{log}");
}

#[test]
fn state_values_out_of_bounds_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    device_in_evaluation(&dev, 2);
    let sealed = std::fs::read(dev.join("agent.json")).unwrap();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 4] = [
        ("agent.evaluation.used_ms is -86400000", |a| a["evaluation"]["used_ms"] = (-DAY_MS).into()),
        ("agent.evaluation.used_ms is 9223372036854775807", |a| a["evaluation"]["used_ms"] = i64::MAX.into()),
        ("agent.clock is 9223372036854775807", |a| a["clock"] = i64::MAX.into()),
        ("agent.clock is -62135596800000", |a| a["clock"] = (-62_135_596_800_000_i64).into()),
    ];
    for (field, edit) in cases {
        std::fs::write(dev.join("agent.json"), &sealed).unwrap();
        edit_state(&dev, edit);
        let edited = std::fs::read(dev.join("agent.json")).unwrap();
        let (ok, out, err) = run(&dev, &["-c", "show license status"]);
        assert!(!ok, "{field}: {out}");
        assert!(err.contains("is not readable") && err.contains(field), "{field}: {err}");
        // Refused, and nothing changed.
        assert_eq!(std::fs::read(dev.join("agent.json")).unwrap(), edited);
    }
    std::fs::write(dev.join("agent.json"), &sealed).unwrap();
    assert!(status(&dev).contains("Status: EVALUATION MODE"));
}

#[test]
fn a_deleted_key_ends_the_evaluation_and_a_deleted_state_is_not_a_new_device() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    device_in_evaluation(&dev, 1);
    std::fs::remove_file(dev.join("state.key")).unwrap();
    let shown = status(&dev);
    assert!(shown.contains("Status: EVALUATION EXPIRED on"), "{shown}");
    assert!(shown.contains("Failure reason: the state key state.key is missing"), "{shown}");
    // A new key seals the expired evaluation: it stays expired.
    assert!(dev.join("state.key").exists());
    assert!(status(&dev).contains("Failure reason: the state key state.key is missing"));

    // The state deleted: neither opened as a fresh device nor made one again by init.
    std::fs::remove_file(dev.join("agent.json")).unwrap();
    let (ok, _, err) = run(&dev, &["-c", "show license status"]);
    assert!(!ok && err.contains("agent.json was deleted (state.key is still there)"), "{err}");
    let (ok, _, err) = run(&dev, &["init", "--pid", "C9300-24UX", "--sn", "FCW2134L0RN"]);
    assert!(!ok && err.contains("its evaluation is not started again"), "{err}");
    assert!(!dev.join("agent.json").exists());
}

#[test]
fn a_state_from_before_the_integrity_check_is_sealed_without_an_alarm_once() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    device_in_evaluation(&dev, 3);
    // The layout of version 1: the state's fields beside the version, and no key.
    let unsealed = |dev: &Path| {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(dev.join("agent.json")).unwrap()).unwrap();
        let mut old = file["state"].clone();
        old["version"] = 1.into();
        std::fs::write(dev.join("agent.json"), old.to_string()).unwrap();
    };
    unsealed(&dev);
    std::fs::remove_file(dev.join("state.key")).unwrap();
    let shown = agent(&dev, &["-c", "show license status", "-c", "show license eventlog"], None);
    assert!(shown.contains("Evaluation Period Remaining: 86 days"), "{shown}");
    assert!(shown.contains("%SMART_LIC-5-STATE_SEALED") && shown.contains("evaluation used: 3 days"), "{shown}");
    assert!(!shown.contains("TAMPERED"), "{shown}");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(dev.join("agent.json")).unwrap()).unwrap();
    assert_eq!(file["version"], 2);
    // Once sealed, an unsealed state next to the key is a replaced one.
    unsealed(&dev);
    let shown = status(&dev);
    assert!(shown.contains("Failure reason: agent.json was replaced by a state without an integrity check"), "{shown}");
}

#[test]
fn the_instance_view_shows_the_evaluation_used_at_registration() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    device_in_evaluation(&dev, 5);
    // The manager moves with the device, whose clock is 5 days on.
    ok(&m, &["clock", "set", &SystemClock.now().plus_ms(5 * DAY_MS).to_rfc3339()]);
    let trust =
        ["-c", "crypto pki trustpoint SLA-TrustPoint", "-c", "end", "-c", "crypto pki authenticate SLA-TrustPoint"];
    agent(&dev, &trust, Some(&m.ca));
    let url = format!("license smart url {}", m.url);
    let register = format!("license smart register idtoken {token}");
    let shown = agent(&dev, &["-c", &url, "-c", &register, "-c", "show license status"], None);
    assert!(shown.contains("Status: REGISTERED"), "{shown}");
    let identity: Value = serde_json::from_str(&std::fs::read_to_string(dev.join("identity.json")).unwrap()).unwrap();
    let id = identity["instance_id"].as_str().unwrap();
    let view = ok(&m, &["instance", "show", "--account", "example.com", "--id", id]);
    assert!(view.contains("evaluation_used:") && view.contains(" 5 days, 0 hours"), "{view}");
    assert!(view.contains("evaluation_used_seconds: 43200"), "{view}");
}
