//! The interactive device prompt on a real terminal (issue 11): `smartlic agent` runs in a tmux
//! pane, keys are typed with `send-keys` and the screen is read with `capture-pane`. Tab
//! completes keywords, `?` answers without Enter and gives the line back with the cursor where it
//! was, the arrows recall history, Ctrl-A/E move, Ctrl-C drops the line and keeps the session,
//! and a certificate pasted after `crypto pki authenticate` is read as typed. Needs tmux: the
//! test says it is skipped when tmux is missing, unless `SMARTLIC_REQUIRE_TMUX` (set by
//! `.ci/run`, which installs it) makes that a failure.

use crate::common;

use common::*;
use smartlic_core::{Clock, SystemClock};
use smartlic_proto::CertificateAuthority;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of its own with one pane running the device prompt; stopped when dropped.
struct Pane {
    socket: PathBuf,
}

impl Pane {
    /// None when tmux is not installed (and not required).
    fn start(dir: &Path, state: &Path) -> Option<Pane> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(std::env::var("SMARTLIC_REQUIRE_TMUX").is_err(), "tmux is required but not installed");
            eprintln!("skipped: tmux is not installed (apt-get install tmux)");
            return None;
        }
        let pane = Pane { socket: dir.join("tmux.sock") };
        let exe = env!("CARGO_BIN_EXE_smartlic");
        let out = pane.tmux(&["new-session", "-d", "-x", "100", "-y", "50", exe, "agent", "--state"], Some(state));
        assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
        Some(pane)
    }

    /// Runs `tmux ARGS [path]` on this pane's server, with no user configuration.
    fn tmux(&self, args: &[&str], path: Option<&Path>) -> Output {
        let mut command = Command::new("tmux");
        command.arg("-f").arg("/dev/null").arg("-S").arg(&self.socket).args(args);
        command.args(path).env_remove("TMUX").env("TERM", "xterm").output().unwrap()
    }

    /// Types text as it is (`?`, spaces) or, with `keys`, tmux key names (`Tab`, `Up`, `C-a`).
    fn send(&self, keys: &[&str]) {
        assert!(self.tmux(&[&["send-keys", "-t", "0"], keys].concat(), None).status.success());
    }

    fn type_text(&self, text: &str) {
        self.send(&["-l", text]);
    }

    /// Pastes the file's text as a terminal does: each line end is a Return.
    fn paste(&self, file: &Path) {
        assert!(self.tmux(&["load-buffer"], Some(file)).status.success());
        assert!(self.tmux(&["paste-buffer", "-t", "0"], None).status.success());
    }

    /// The screen, lines without trailing blanks, empty lines at the end dropped.
    fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", "0"], None);
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Waits until the screen satisfies `done` (the device answers as fast as it can; the
    /// deadline only bounds a failure).
    fn wait(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "waited for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the line under the cursor reads `line`.
    fn wait_line(&self, line: &str) -> String {
        self.wait(&format!("the line {line:?}"), |s| s.lines().last() == Some(line))
    }

    /// The cursor column.
    fn cursor_x(&self) -> usize {
        let out = self.tmux(&["display-message", "-p", "-t", "0", "#{cursor_x}"], None);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"], None);
    }
}

#[test]
fn the_prompt_edits_completes_answers_question_marks_and_survives_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("dev");
    agent(&dev, &["init", "--pid", "C9300-24UX", "--sn", "FCW2134L0RN", "--hostname", "Switch"], None);
    let Some(pane) = Pane::start(tmp.path(), &dev) else { return };
    pane.wait_line("Switch#");

    // Tab writes the keywords out.
    pane.type_text("sh lic");
    pane.send(&["Tab"]);
    pane.wait_line("Switch#show license");
    // `?` lists what may follow at once, then gives the line back, cursor at its end.
    pane.type_text("?");
    let screen = pane.wait("the views of show license", |s| {
        s.contains("Switch#show license ?\n") && s.ends_with("\nSwitch#show license")
    });
    for view in ["  all ", "  status ", "  summary ", "  usage "] {
        assert!(screen.contains(view), "{view:?} missing:\n{screen}");
    }
    assert_eq!(pane.cursor_x(), "Switch#show license ".len());
    pane.type_text("stat");
    pane.send(&["Enter"]);
    let screen = pane.wait("the status", |s| s.ends_with("\nSwitch#"));
    assert!(screen.contains("Smart Licensing"), "{screen}");

    // `?` in the middle of a line answers for the text before the cursor and puts it back there.
    pane.type_text("sh status");
    pane.send(&["Left"; 6]);
    pane.type_text("?");
    let screen = pane.wait("the help of show", |s| s.contains("Switch#sh ?\n") && s.ends_with("\nSwitch#sh status"));
    assert!(screen.contains("  license "), "{screen}");
    assert_eq!(pane.cursor_x(), "Switch#sh ".len());
    pane.type_text("lic ");
    pane.wait_line("Switch#sh lic status");
    pane.send(&["C-c"]);
    pane.wait_line("Switch#");

    // A refused line stays as typed; the marker points under it, as on a device.
    pane.type_text("show licence");
    pane.send(&["Enter"]);
    let screen = pane.wait("the marker", |s| s.ends_with("\nSwitch#"));
    let refusal = screen.rsplit("Switch#show licence\n").next().unwrap();
    assert_eq!(
        refusal,
        format!("{}^\n% Invalid input detected at '^' marker.\nSwitch#", " ".repeat("Switch#show licen".len())),
        "{screen}"
    );

    // History: Up recalls, Ctrl-A and Ctrl-E move to the ends of the recalled line.
    pane.type_text("configure terminal");
    pane.send(&["Enter"]);
    pane.wait_line("Switch(config)#");
    pane.send(&["Up"]);
    pane.wait_line("Switch(config)#configure terminal");
    pane.send(&["Up", "Up"]);
    pane.wait_line("Switch(config)#show license stat");
    pane.send(&["C-a"]);
    pane.type_text("do ");
    pane.send(&["C-e"]);
    pane.type_text("us | include Smart Licensing");
    pane.wait_line("Switch(config)#do show license status | include Smart Licensing");
    pane.send(&["Enter"]);
    let screen = pane.wait("the filtered status", |s| s.ends_with("\nSwitch(config)#"));
    let answer = screen.rsplit("| include Smart Licensing\n").next().unwrap();
    assert!(answer.starts_with("Smart Licensing"), "{screen}");

    // Ctrl-C drops a half-typed line: nothing runs, a fresh prompt, the session goes on.
    pane.type_text("crypto pki trustpoint Half");
    pane.send(&["C-c"]);
    pane.wait_line("Switch(config)#");
    pane.type_text("end");
    pane.send(&["Enter"]);
    pane.wait_line("Switch#");

    // A pasted certificate is read line by line as typed, `?` and Tab being no keys there.
    let ca = CertificateAuthority::generate("prompt test CA", SystemClock.now().0 / 1000).unwrap();
    pane.type_text("conf t");
    pane.send(&["Enter"]);
    pane.type_text("crypto pki trustpoint LicRoot");
    pane.send(&["Enter"]);
    pane.type_text("crypto pki authenticate LicRoot");
    pane.send(&["Enter"]);
    pane.wait("the certificate question", |s| s.ends_with("on a line by itself"));
    let pasted = tmp.path().join("pasted");
    std::fs::write(&pasted, format!("{}\n", ca.cert_pem())).unwrap();
    pane.paste(&pasted);
    let screen = pane.wait("the import", |s| s.ends_with("\nSwitch(config)#"));
    assert!(screen.contains("% Certificate successfully imported"), "{screen}");
    let import = screen.rsplit("crypto pki authenticate LicRoot").next().unwrap();
    assert!(!import.contains("% Invalid"), "{screen}");

    // `end`, `exit`: the session ends, and the device kept the trust point.
    pane.type_text("end");
    pane.send(&["Enter"]);
    pane.type_text("exit");
    pane.send(&["Enter"]);
    pane.wait("the end of the session", |_| !pane.tmux(&["has-session"], None).status.success());
    let config = agent(&dev, &["-c", "show running-config"], None);
    assert!(config.contains("crypto pki trustpoint LicRoot") && !config.contains("Half"), "{config}");
}
