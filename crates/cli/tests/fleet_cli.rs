//! `smartlic server --mode fleet` and `smartlic admin fleet` as an operator uses them: a real
//! manager, the orchestrator and two `smartlic agent run` daemons as a cluster's nodes, each its
//! own process on loopback; the cluster assigned and unassigned with `--wait`, a failure shown
//! with the seed's code.

use crate::common::{self, agent, ok, smartlic, trust_manager, Manager};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

/// An agent daemon, stopped when dropped.
struct Daemon {
    child: Child,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `smartlic agent run` on a new device `sn` trusting the manager; its product REST API URL.
fn daemon(dir: &Path, sn: &str, m: &Manager) -> Daemon {
    agent(dir, &["init", "--pid", "CUCM-NODE", "--sn", sn, "--hostname", sn], None);
    trust_manager(dir, m);
    let mut child = smartlic()
        .args(["agent", "--state"])
        .arg(dir)
        .args(["run", "--listen", "127.0.0.1:0"])
        .env("SMARTLIC_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the daemon exited before listening").unwrap();
        if let Some(rest) = line.split("product REST API on ").nth(1) {
            break rest.split("/api/").next().unwrap().trim().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Daemon { child, url }
}

/// `smartlic admin fleet ARGS` against the orchestrator: (succeeded, stdout, stderr).
pub(crate) fn fleet(o: &Manager, args: &[&str]) -> (bool, String, String) {
    let token = o.data.path().join("admin-token");
    let out = smartlic()
        .args(["admin", "--server", &o.url, "--ca"])
        .arg(&o.ca)
        .args(["fleet", "--token-file"])
        .arg(token)
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

pub(crate) fn fleet_ok(o: &Manager, args: &[&str]) -> String {
    let (done, out, err) = fleet(o, args);
    assert!(done, "{args:?}: {err}");
    out
}

#[test]
fn an_operator_assigns_and_unassigns_a_cluster_from_the_command_line() {
    let m = common::start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(&m, &["va", "create", "--account", "example.com", "--name", "Lab"]);
    let created = ok(
        &m,
        &["--json", "client", "create", "--account", "example.com", "--name", "fleet", "--role", "smart-account-admin"],
    );
    let created: Value = serde_json::from_str(&created).unwrap();
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());

    let o = common::start_with(tempfile::tempdir().unwrap(), &["--mode", "fleet"], "warn", Stdio::inherit());
    let ca = m.ca.to_str().unwrap();
    let add = ["account", "add", "--name", "example.com", "--url", &m.url, "--manager-ca", ca, "--client-id", id];
    let (done, _, err) = fleet(&o, &[&add[..], &["--client-secret", "wrong", "--wait"]].concat());
    assert!(!done && err.contains("CSSM1011") && err.contains("Reconfigure client ID and Secret"), "{err}");
    let out = fleet_ok(
        &o,
        &["account", "credentials", "--name", "example.com", "--client-id", id, "--client-secret", secret, "--wait"],
    );
    assert!(out.contains("Completed"), "{out}");
    assert!(fleet_ok(&o, &["va", "list", "--account", "example.com"]).contains("Lab"));
    fleet_ok(&o, &["va", "mode", "--account", "example.com", "--va", "Lab", "--mode", "hcs"]);
    // --wait on a command that queues no job is refused before anything is sent.
    let (done, _, err) = fleet(&o, &["customer", "add", "--name", "acme", "--account", "example.com", "--wait"]);
    assert!(!done && err.contains("queues none"), "{err}");
    assert!(!fleet_ok(&o, &["customer", "list"]).contains("acme"));
    fleet_ok(&o, &["customer", "add", "--name", "acme", "--account", "example.com"]);

    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (daemon(&tmp.path().join("n1"), "NODE0001", &m), daemon(&tmp.path().join("n2"), "NODE0002", &m));
    let (n1, n2) = (format!("n1={}", d1.url), format!("n2={}", d2.url));
    let add = ["cluster", "add", "--name", "cucm1", "--customer", "acme", "--application", "call-control"];
    // No operational virtual account: nothing is queued, and --wait has nothing to wait for.
    let out = fleet_ok(&o, &[&add[..], &["--node", &n1, "--node", &n2, "--wait"]].concat());
    assert!(out.contains("no job queued"), "{out}");

    let (done, _, err) =
        fleet(&o, &["cluster", "assign", "--name", "cucm1", "--account", "example.com", "--va", "Nope", "--wait"]);
    assert!(!done && err.contains("SLMCT1001"), "{err}");
    let out =
        fleet_ok(&o, &["cluster", "assign", "--name", "cucm1", "--account", "example.com", "--va", "Lab", "--wait"]);
    assert!(out.contains("Completed"), "{out}");
    let listed = fleet_ok(&o, &["cluster", "list"]);
    assert!(listed.contains("Manually Registered"), "{listed}");
    let instances = ok(&m, &["instance", "list", "--account", "example.com"]);
    assert!(instances.contains("NODE0001") && instances.contains("NODE0002"), "{instances}");

    fleet_ok(&o, &["cluster", "unassign", "--name", "cucm1", "--wait"]);
    assert!(fleet_ok(&o, &["cluster", "show", "--name", "cucm1"]).contains("Deregistered"));
    let instances = ok(&m, &["instance", "list", "--account", "example.com"]);
    assert!(!instances.contains("NODE0001"), "{instances}");
    let jobs = fleet_ok(&o, &["job", "list"]);
    assert!(jobs.contains("SLMCT1001") && jobs.contains("CSSM1011"), "{jobs}");
    // The client secret is nowhere in what the orchestrator answers.
    assert!(!fleet_ok(&o, &["--json", "account", "list"]).contains(secret));
}
