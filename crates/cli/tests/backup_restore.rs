//! Issue 13: `smartlic admin backup` taken while writers are busy, restored with `smartlic
//! server --restore` into a fresh data directory: every change acknowledged before the backup
//! started is there, and the restored manager serves the devices registered before.

use crate::common;

use common::*;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Changes each writer makes at most (lists stay within one page).
const ROUNDS: usize = 15;

/// A change the manager acknowledged, and the text the restored manager must list for it.
#[derive(Clone, Debug)]
enum Change {
    Pool(String),
    Token(String),
    Device(String),
}

fn run(args: &[&str]) -> Output {
    smartlic().args(args).output().unwrap()
}

fn device(m: &Manager, state: &Path, args: &[&str]) -> Output {
    let server = ["device", "--state", state.to_str().unwrap(), "--server", &m.url, "--ca", m.ca.to_str().unwrap()];
    run(&[&server[..], args].concat())
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// One writer's changes, each recorded once the command that made it succeeded.
fn writer(m: &Manager, kind: usize, devices: &Path, stop: &AtomicBool, acked: &Mutex<Vec<Change>>) {
    for i in 0..ROUNDS {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let change = match kind {
            0 => {
                let name = format!("pool-{i}");
                ok(m, &["va", "create", "--account", "example.com", "--name", &name]);
                Change::Pool(name)
            }
            1 => {
                let token = ok(m, &["token", "create", "--account", "example.com", "--va", "Default"]);
                Change::Token(token.trim()[..12].to_string())
            }
            _ => {
                let sn = format!("FCH20{i:02}LOAD");
                let state = devices.join(format!("{sn}.json"));
                let token = ok(m, &["token", "create", "--account", "example.com", "--va", "Default"]);
                let register = ["register", "--token", token.trim(), "--pid", "APIC-SERVER-M3", "--sn", &sn];
                stdout(&device(m, &state, &register));
                Change::Device(sn)
            }
        };
        acked.lock().unwrap().push(change);
    }
}

#[test]
fn restores_a_backup_taken_under_load_and_finds_every_acknowledged_change() {
    let mut m = start();
    let devices = tempfile::tempdir().unwrap();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(
        &m,
        &["license", "add", "--account", "example.com", "--va", "Default", "--tag", "ACI Advantage", "--count", "5"],
    );
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]);
    let first = devices.path().join("first.json");
    stdout(&device(
        &m,
        &first,
        &["register", "--token", token.trim(), "--pid", "APIC-SERVER-M3", "--sn", "FCH2001V0AB"],
    ));

    // Only the operator takes backups.
    let client = ok(
        &m,
        &["client", "create", "--account", "example.com", "--name", "ci", "--role", "smart-account-admin", "--json"],
    );
    let client: serde_json::Value = serde_json::from_str(&client).unwrap();
    let refused = devices.path().join("refused.db");
    let login = ["admin", "--server", &m.url, "--ca", m.ca.to_str().unwrap(), "--client-id"];
    let id_secret = [client["client_id"].as_str().unwrap(), "--secret", client["client_secret"].as_str().unwrap()];
    let out = run(&[&login[..], &id_secret, &["backup", "--out", refused.to_str().unwrap()]].concat());
    assert!(stderr(&out).contains("only the operator may take a backup (FORBIDDEN, HTTP 403)"));
    assert!(!refused.exists() && !devices.path().join("refused.db.partial").exists());

    let stop = AtomicBool::new(false);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let backup = devices.path().join("smartlic-backup.db");
    let (before, backed_up) = std::thread::scope(|s| {
        for kind in 0..3 {
            let (m, stop, acked, dir) = (&m, &stop, &acked, devices.path());
            s.spawn(move || writer(m, kind, dir, stop, acked));
        }
        // Back up while the writers are busy: once each kind has changes acknowledged.
        let waiting = std::time::Instant::now();
        let before = loop {
            let done = acked.lock().unwrap().clone();
            assert!(waiting.elapsed().as_secs() < 300, "the writers stalled: {done:?}");
            let kinds = [0, 1, 2].map(|k| done.iter().filter(|c| kind_of(c) == k).count());
            if kinds.iter().all(|&n| n >= 2) {
                break done;
            }
            std::thread::yield_now();
        };
        let out = admin(&m, &m.ca, &["backup", "--out", backup.to_str().unwrap()]);
        stop.store(true, Ordering::SeqCst);
        (before, out)
    });
    let out = backed_up;
    let note = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(out.status.success(), "{note}");
    assert!(note.contains("keep ca.pem and ca-key.pem of the server's data directory with it"), "{note}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);

    // Refusals change nothing.
    let fresh = tempfile::tempdir().unwrap();
    let into = |dir: &Path, file: &Path, more: &[&str]| {
        let args = ["server", "--data", dir.to_str().unwrap(), "--restore", file.to_str().unwrap()];
        run(&[&args[..], more].concat())
    };
    let no_ca = stderr(&into(fresh.path(), &backup, &[]));
    assert!(no_ca.contains("has no ca.pem: copy ca.pem and ca-key.pem from the backed-up server's data directory"));
    assert_eq!(std::fs::read_dir(fresh.path()).unwrap().count(), 0);
    for name in ["ca.pem", "ca-key.pem"] {
        std::fs::copy(m.data.path().join(name), fresh.path().join(name)).unwrap();
    }
    let not_db = stderr(&into(fresh.path(), &m.ca, &[]));
    assert!(not_db.contains("ca.pem is not a smartlic database: it is not an SQLite file"), "{not_db}");
    let in_use = stderr(&into(m.data.path(), &backup, &["--overwrite"]));
    assert!(in_use.contains("is in use by a running smartlic server; stop it first"), "{in_use}");
    assert_eq!(std::fs::read_dir(fresh.path()).unwrap().count(), 2, "nothing was added");

    let restored = stdout(&into(fresh.path(), &backup, &[]));
    assert!(restored.contains("smartlic.db ("), "{restored}");
    let again = stderr(&into(fresh.path(), &backup, &[]));
    assert!(again.contains("already holds a database (smartlic.db); pass --overwrite to replace it"), "{again}");
    stdout(&into(fresh.path(), &backup, &["--overwrite"]));

    m.stop();
    let r = start_in(fresh);
    let listed = |what: &[&str]| ok(&r, &[what, &["--json"][..]].concat());
    let pools = listed(&["va", "list", "--account", "example.com"]);
    let tokens = listed(&["token", "list", "--account", "example.com", "--va", "Default"]);
    let instances = listed(&["instance", "list", "--account", "example.com"]);
    for change in &before {
        let (list, text) = match change {
            Change::Pool(name) => (&pools, name),
            Change::Token(prefix) => (&tokens, prefix),
            Change::Device(sn) => (&instances, sn),
        };
        assert!(list.contains(&format!("\"{text}\"")), "{change:?} was acknowledged before the backup: {list}");
    }

    // The restored manager has the same CA: a device registered before authorizes with it.
    let authorized = stdout(&device(&r, &first, &["authorize", "--use", "ACI Essentials=1"]));
    assert!(authorized.contains("AUTHORIZED"), "{authorized}");
}

fn kind_of(change: &Change) -> usize {
    match change {
        Change::Pool(_) => 0,
        Change::Token(_) => 1,
        Change::Device(_) => 2,
    }
}

/// A manager started with `SMARTLIC_DATA_KEY` keeps its CA in the database, sealed: its backup
/// restores into an empty directory, and the restored manager needs the key, not the CA files.
#[test]
fn a_backup_of_a_manager_with_a_data_key_restores_with_the_key_and_no_ca_files() {
    const KEY: &str = "restore-data-key-0123456789abcdef0123";
    let keyed = |dir| start_with_env(dir, &[], &[("SMARTLIC_DATA_KEY", KEY)], "warn", std::process::Stdio::inherit());
    let mut m = keyed(tempfile::tempdir().unwrap());
    let devices = tempfile::tempdir().unwrap();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(
        &m,
        &["license", "add", "--account", "example.com", "--va", "Default", "--tag", "ACI Advantage", "--count", "5"],
    );
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]);
    let dev = devices.path().join("dev.json");
    let register = ["register", "--token", token.trim(), "--pid", "APIC-SERVER-M3", "--sn", "FCH2001SEAL"];
    stdout(&device(&m, &dev, &register));
    let backup = devices.path().join("sealed.db");
    let out = admin(&m, &m.ca, &["backup", "--out", backup.to_str().unwrap()]);
    let note = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(out.status.success(), "{note}");
    assert!(note.contains("The backup holds the CA, its key sealed with SMARTLIC_DATA_KEY: keep that key"), "{note}");
    m.stop();

    let fresh = tempfile::tempdir().unwrap();
    let args = ["server", "--data", fresh.path().to_str().unwrap(), "--restore", backup.to_str().unwrap()];
    let restored = stdout(&run(&args));
    assert!(restored.contains("and SMARTLIC_DATA_KEY set (the backup holds the CA sealed with it)"), "{restored}");
    let names: Vec<_> = std::fs::read_dir(fresh.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!names.iter().any(|n| n.to_string_lossy().starts_with("ca")), "no CA file was needed: {names:?}");

    let keyless = ["server", "--listen", "127.0.0.1:0", "--data", fresh.path().to_str().unwrap()];
    let refused = stderr(&run(&keyless));
    assert!(refused.contains("holds the CA key encrypted with SMARTLIC_DATA_KEY, which is not set"), "{refused}");

    // The restored manager has the CA the device trusts: it authorizes.
    let r = keyed(fresh);
    let authorized = stdout(&device(&r, &dev, &["authorize", "--use", "ACI Advantage=1"]));
    assert!(authorized.contains("AUTHORIZED"), "{authorized}");
}
