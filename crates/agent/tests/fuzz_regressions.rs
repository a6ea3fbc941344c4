//! Inputs the fuzz targets (`fuzz/`, FUZZING.md) found mishandled, kept as plain tests.

use smartlic_agent::device::{Device, DeviceError};
use smartlic_core::SimulatedClock;

/// fuzz target `agent_state`: an `agent.json` that is there but not UTF-8 was reported as "not a
/// smartlic device state directory (no agent.json)", inviting an `init` over a damaged device.
#[test]
fn a_state_file_that_is_not_utf8_is_reported_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agent.json"), b"{\"version\": 1, \"agent\": \"\xff\"}").unwrap();
    match Device::open(dir.path(), Box::new(SimulatedClock::new())) {
        Err(DeviceError::Corrupt { path, reason }) => {
            assert!(path.ends_with("agent.json"), "{path}");
            assert!(reason.contains("UTF-8"), "{reason}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a damaged state opened"),
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(Device::open(empty.path(), Box::new(SimulatedClock::new())), Err(DeviceError::NotADevice(_))));
}
