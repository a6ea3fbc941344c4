//! The agent's state file (`agent.json`: state machine and configuration), as `Device::open`
//! reads it from the state directory; what loads must also show, step and save.
#![no_main]
use libfuzzer_sys::fuzz_target;
use smartlic_agent::cli::LicenseView;
use smartlic_agent::device::{Device, DeviceError};
use smartlic_agent::show;
use smartlic_core::agent::{next_wakeup, step, Event};
use smartlic_core::SimulatedClock;
use smartlic_fuzz::NOW;

const VIEWS: [LicenseView; 10] = [
    LicenseView::All,
    LicenseView::Status,
    LicenseView::Summary,
    LicenseView::Usage,
    LicenseView::TechSupport,
    LicenseView::Mode,
    LicenseView::Server,
    LicenseView::Catalog,
    LicenseView::Udi,
    LicenseView::Eventlog,
];

fn clock() -> Box<SimulatedClock> {
    let clock = SimulatedClock::new();
    clock.set(NOW);
    Box::new(clock)
}

fuzz_target!(|data: &[u8]| {
    let dir = smartlic_fuzz::scratch_dir();
    smartlic_fuzz::scratch_file("agent.json", data);
    let device = match Device::open(dir, clock()) {
        Ok(d) => d,
        Err(DeviceError::Corrupt { reason, .. }) => return assert!(!reason.is_empty()),
        Err(e) => panic!("unexpected {e}"),
    };
    for view in &VIEWS {
        show::render(view, &device.agent, &device.config, NOW);
    }
    // What was saved reads back the same.
    device.save().expect("save");
    let reopened = Device::open(dir, clock()).expect("a saved state opens");
    assert_eq!(reopened.agent, device.agent);
    assert_eq!(reopened.config, device.config);
    // The state machine runs on whatever loaded.
    let mut agent = device.agent;
    let _ = next_wakeup(&agent);
    step(&mut agent, Event::Tick, NOW);
    step(&mut agent, Event::ClockSet, NOW);
});
