//! The README runs top to bottom: its ```sh blocks are extracted and run in order in one bash
//! process, in a fresh directory, and each command's exit status and printed output are checked
//! against what the README shows. The convention (README, "Tests and CI"):
//! - a block fenced ```sh runs; ```sh norun (and any other language) is skipped;
//! - `target/release/smartlic` is the binary this test was built with, and `cargo run --release
//!   -- ARGS` starts it with ARGS in the background, returning once it listens;
//! - a command passes when it exits with 0, or, when its line carries `# fails`, with a non-zero
//!   status (`# fails (exit status N)`: exactly N);
//! - the comment lines `#   TEXT` right after a command are its whole output (stdout and stderr),
//!   line by line; `...` in a line matches any text, and a line `...` any number of lines.
//!
//! The commands run in a network namespace of their own when `unshare` allows it, so the
//! README's fixed address (127.0.0.1:8443) is free whatever else runs on the machine.

use crate::common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One command of a run block, with what the README says it prints and how it ends.
#[derive(Debug, PartialEq)]
struct Step {
    command: String,
    expected: Vec<String>,
    fails: Option<Option<i32>>,
}

/// The steps of the README's run blocks, in order.
fn steps(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block: Option<bool> = None;
    let mut continued = false;
    let mut output_follows = false;
    for line in readme.lines() {
        if let Some(info) = line.strip_prefix("```") {
            in_block = match in_block {
                None => Some(info.trim() == "sh"),
                Some(_) => None,
            };
            (continued, output_follows) = (false, false);
            continue;
        }
        if in_block != Some(true) {
            continue;
        }
        if continued {
            let step = steps.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
            step.fails = fails_marker(line);
        } else if let Some(text) = line.strip_prefix("#   ").filter(|_| output_follows) {
            steps.last_mut().unwrap().expected.push(text.trim_end().to_string());
        } else if line.trim().is_empty() || line.trim_start().starts_with('#') {
            output_follows = false;
        } else {
            steps.push(Step { command: line.to_string(), expected: Vec::new(), fails: fails_marker(line) });
            continued = line.ends_with('\\');
            output_follows = true;
        }
    }
    steps
}

/// `# fails` on a command's line: it must exit non-zero; `# fails (exit status N)`: with N.
fn fails_marker(line: &str) -> Option<Option<i32>> {
    let rest = &line[line.find("# fails")? + "# fails".len()..];
    let status = rest.strip_prefix(" (exit status ").and_then(|r| r.split(')').next()).map(|n| n.parse().unwrap());
    Some(status)
}

/// Whether `text` matches `pattern`, where `...` stands for any text.
fn line_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split("...");
    let first = parts.next().unwrap();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.len() >= part.len() && rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether the output lines match the pattern lines, a pattern line `...` taking any number.
fn output_matches(patterns: &[String], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == "..." => (0..=lines.len()).any(|skip| output_matches(rest, &lines[skip..])),
        Some((p, rest)) => {
            lines.split_first().is_some_and(|(l, more)| line_matches(p, l) && output_matches(rest, more))
        }
    }
}

/// The bash script: the `cargo` stand-in, then each step with its output and status kept in
/// `.readme/N.out` and `.readme/N.status`.
fn script(steps: &[Step]) -> String {
    let mut script = String::from(
        r#"shopt -s expand_aliases
set -o pipefail
cd "$README_DIR"
mkdir .readme
# `cargo run --release -- ARGS`: the built binary, in the background, once it listens.
cargo() {
    [ "$1 $2 $3" = "run --release --" ] || { echo "the README test runs only 'cargo run --release --'" >&2; return 1; }
    shift 3
    local log=.readme/server.$RANDOM.log
    target/release/smartlic "$@" > "$log" 2>&1 < /dev/null &
    for _ in $(seq 600); do
        grep -q "listening on" "$log" && return 0
        kill -0 $! 2> /dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}
"#,
    );
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&format!(
            "{{ {}\n}} > .readme/{i}.out 2>&1 < /dev/null; echo $? > .readme/{i}.status\n",
            step.command
        ));
    }
    script
}

/// Runs bash with `script` in `dir`, in a network namespace of its own when possible, and
/// kills whatever it left running (the manager).
fn run(script: &str, dir: &Path) {
    let isolated =
        Command::new("unshare").args(["-rn", "ip", "link", "set", "lo", "up"]).status().is_ok_and(|s| s.success());
    let mut bash = if isolated {
        let mut c = Command::new("unshare");
        c.args(["-rn", "bash", "-c", "ip link set lo up && exec bash -c \"$0\"", script]);
        c
    } else {
        let mut c = Command::new("bash");
        c.args(["-c", script]);
        c
    };
    for var in common::SMARTLIC_ENV {
        bash.env_remove(var);
    }
    let mut child = bash.env("README_DIR", dir).stdin(Stdio::null()).process_group(0).spawn().unwrap();
    // A hang guard only: the walk-through takes well under a minute.
    let deadline = Instant::now() + Duration::from_secs(600);
    let finished = loop {
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
    let _ = child.wait();
    assert!(finished, "the README's commands did not finish within 10 minutes");
}

#[test]
fn readme_runs_top_to_bottom() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() > 40, "the README's run blocks: {steps:#?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("target/release")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_smartlic"), dir.path().join("target/release/smartlic")).unwrap();
    run(&script(&steps), dir.path());

    // Every difference is reported at once: a README edit often moves several outputs.
    let mut differences = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let read = |what: &str| std::fs::read_to_string(dir.path().join(format!(".readme/{i}.{what}")));
        let (Ok(output), Ok(status)) = (read("out"), read("status")) else {
            panic!("README step {i} did not run: {}", step.command);
        };
        let status: i32 = status.trim().parse().unwrap();
        let status_ok = match step.fails {
            None => status == 0,
            Some(None) => status != 0,
            Some(Some(expected)) => status == expected,
        };
        let lines: Vec<&str> = output.trim_end().lines().map(str::trim_end).collect();
        let lines = if output.trim().is_empty() { Vec::new() } else { lines };
        if !status_ok || !(step.expected.is_empty() || output_matches(&step.expected, &lines)) {
            differences.push(format!(
                "step {i}: {}\nexit status {status}, printed:\n{output}\nthe README shows ({}):\n{}\n",
                step.command,
                match step.fails {
                    None => "exit status 0".to_string(),
                    Some(None) => "fails".to_string(),
                    Some(Some(n)) => format!("exit status {n}"),
                },
                step.expected.join("\n")
            ));
        }
    }
    assert!(differences.is_empty(), "the README differs from what its commands do:\n\n{}", differences.join("\n"));
}

#[test]
fn the_convention() {
    let readme = "```sh\nA=$(x) # fails\n#   one ...\n#   ...\n# prose\n#   not output\ny \\\n  z   # fails (exit status 2)\n```\n```sh norun\nskipped\n```\n";
    let found = steps(readme);
    assert_eq!(
        found,
        vec![
            Step {
                command: "A=$(x) # fails".into(),
                expected: vec!["one ...".into(), "...".into()],
                fails: Some(None)
            },
            Step { command: "y \\\n  z   # fails (exit status 2)".into(), expected: vec![], fails: Some(Some(2)) },
        ]
    );
    assert!(output_matches(&found[0].expected, &["one two", "three", "four"]));
    assert!(output_matches(&found[0].expected, &["one "]));
    assert!(!output_matches(&found[0].expected, &["two"]));
    let exact = ["a ... c".to_string()];
    assert!(
        output_matches(&exact, &["a b c"]) && !output_matches(&exact, &["a b c d"]) && !output_matches(&exact, &[])
    );
}
