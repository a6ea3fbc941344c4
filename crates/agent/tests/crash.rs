//! A device killed (SIGKILL) in the middle of saving its state keeps a whole state file: the
//! previous one or the next, never a torn one. The test re-runs its own binary as the
//! writer and kills it at varying points.

use smartlic_agent::persist::write_atomic;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WRITER_ENV: &str = "SMARTLIC_CRASH_WRITER";

/// A state whose every byte depends on its generation, so a torn file cannot pass as whole.
fn state(generation: u64) -> Vec<u8> {
    let payload = format!("{generation:08}").repeat(4096);
    serde_json::to_vec(&serde_json::json!({"generation": generation, "payload": payload})).unwrap()
}

fn check(bytes: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("the state file is whole JSON");
    let generation = v["generation"].as_u64().unwrap();
    assert_eq!(v["payload"].as_str().unwrap(), format!("{generation:08}").repeat(4096), "payload matches");
    generation
}

fn generation_of(path: &Path) -> u64 {
    check(&std::fs::read(path).unwrap())
}

#[test]
fn kill_during_writes_leaves_the_previous_or_the_next_state() {
    if let Ok(path) = std::env::var(WRITER_ENV) {
        // Child: write ever newer states until killed (bounded, in case nobody kills it).
        let path = Path::new(&path);
        let start = generation_of(path);
        for generation in start + 1..start + 100_000 {
            write_atomic(path, &state(generation)).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    write_atomic(&path, &state(0)).unwrap();
    let mut last = 0;
    for round in 0..12u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash::kill_during_writes_leaves_the_previous_or_the_next_state", "--test-threads", "1"])
            .env(WRITER_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it get a varying number of writes ahead, then kill it wherever it is.
        let target = last + 1 + round * 3;
        let deadline = Instant::now() + Duration::from_secs(20);
        while generation_of(&path) < target && Instant::now() < deadline {
            std::thread::yield_now();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let now = generation_of(&path);
        assert!(now >= last, "never goes back: {now} < {last}");
        last = now;
        // No temporary file is mistaken for the state; stray ones are only ever temporary names.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            assert!(name == "state.json" || (name.starts_with(".state.json.") && name.ends_with(".tmp")), "{name}");
        }
    }
    assert!(last > 12, "the writer made progress between kills ({last} generations)");
}
