//! A real `smartlic server` for the binary's tests: simulated clock, temporary data directory,
//! a port chosen by the OS; and helpers to run `smartlic` subcommands against it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const SECRET: &str = "integration-test-secret";

/// A running manager, stopped when dropped.
pub struct Manager {
    child: Child,
    pub url: String,
    pub ca: PathBuf,
    pub data: tempfile::TempDir,
}

impl Manager {
    /// Stops the manager: devices find nothing listening at its address.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (what systemd and `docker stop` send) and returns at once.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// Waits at most `limit` for the manager to exit; its exit status.
    pub fn exited_within(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "the manager did not exit within {limit:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Variables the admin client reads: a test's commands must not take them from the developer's shell.
pub const SMARTLIC_ENV: [&str; 5] =
    ["SMARTLIC_SERVER", "SMARTLIC_CA", "SMARTLIC_CLIENT_ID", "SMARTLIC_ADMIN_SECRET", "SMARTLIC_DATA_KEY"];

pub fn smartlic() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smartlic"));
    for var in SMARTLIC_ENV {
        command.env_remove(var);
    }
    command
}

/// Starts the server on port 0 and learns its address from its "listening on" line.
pub fn start() -> Manager {
    start_in(tempfile::tempdir().unwrap())
}

/// [`start`] on a data directory prepared by the test (a restored backup).
pub fn start_in(data: tempfile::TempDir) -> Manager {
    start_with(data, &[], "warn", Stdio::inherit())
}

/// [`start_in`] with more server options, a log level (`SMARTLIC_LOG`) and where its log goes.
pub fn start_with(data: tempfile::TempDir, args: &[&str], log: &str, stderr: Stdio) -> Manager {
    start_with_env(data, args, &[], log, stderr)
}

/// [`start_with`] with more environment variables (a replica's `SMARTLIC_DATA_KEY`).
pub fn start_with_env(
    data: tempfile::TempDir,
    args: &[&str],
    env: &[(&str, &str)],
    log: &str,
    stderr: Stdio,
) -> Manager {
    let mut child = smartlic()
        .args(["server", "--listen", "127.0.0.1:0", "--clock", "simulated", "--data"])
        .arg(data.path())
        .args(args)
        .envs(env.iter().copied())
        .env("SMARTLIC_ADMIN_SECRET", SECRET)
        .env("SMARTLIC_LOG", log)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    // Keep draining: the server dies of a broken pipe if its stdout is closed under it.
    std::thread::spawn(move || lines.for_each(drop));
    let ca = data.path().join("ca.pem");
    Manager { child, url, ca, data }
}

pub fn admin(m: &Manager, ca: &Path, args: &[&str]) -> Output {
    smartlic()
        .args(["admin", "--server", &m.url, "--ca"])
        .arg(ca)
        .args(["--secret", SECRET])
        .args(args)
        .output()
        .unwrap()
}

pub fn ok(m: &Manager, args: &[&str]) -> String {
    let out = admin(m, &m.ca, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

pub fn fails(m: &Manager, ca: &Path, args: &[&str]) -> String {
    let out = admin(m, ca, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// `smartlic agent --state DIR ARGS...` with `stdin` fed from a file when given: (succeeded, stdout).
pub fn agent_run(dir: &Path, args: &[&str], stdin: Option<&Path>) -> (bool, String) {
    let mut command = smartlic();
    command.arg("agent").arg("--state").arg(dir).args(args);
    command.stdin(match stdin {
        Some(path) => Stdio::from(std::fs::File::open(path).unwrap()),
        None => Stdio::null(),
    });
    let out = command.output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

/// [`agent_run`] that must succeed; its stdout.
pub fn agent(dir: &Path, args: &[&str], stdin: Option<&Path>) -> String {
    let (ok, out) = agent_run(dir, args, stdin);
    assert!(ok, "{args:?}: {out}");
    out
}

/// Makes `dev` trust the manager's CA as `SLA-TrustPoint` and point at the manager.
pub fn trust_manager(dev: &Path, m: &Manager) {
    let trust = ["-c", "crypto pki trustpoint SLA-TrustPoint", "-c", "crypto pki authenticate SLA-TrustPoint"];
    assert!(agent(dev, &trust, Some(&m.ca)).contains("Certificate successfully imported"));
    agent(dev, &["-c", &format!("license smart url {}", m.url)], None);
}
