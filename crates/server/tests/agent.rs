//! The smart agent end to end: a device created in a state directory, configured and driven
//! through its CLI session, talking to a real manager over HTTPS on loopback.

use crate::common;

use common::*;
use smartlic_agent::device::Device;
use smartlic_agent::session::Session;
use smartlic_core::{Catalog, Clock, SimulatedClock, Timestamp};
use std::sync::Arc;

/// The device clock for tests: the manager's simulated clock, shared, so both move together.
struct Shared(Arc<SimulatedClock>);

impl Clock for Shared {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

async fn run(session: &mut Session, line: &str) -> String {
    let reply = session.line(line).await.unwrap();
    assert!(!reply.error, "{line}: {}", reply.output);
    reply.output
}

#[tokio::test]
async fn a_device_registers_reports_usage_and_shows_its_status() {
    let h = Harness::new().await;
    let token = h.account_with("example.com", &[("ACI Advantage", 1)]).await;
    let clock = h.server.state.simulated.clone().expect("simulated clock");
    let dir = tempfile::tempdir().unwrap();
    let tags = Catalog::builtin().tags().iter().map(|t| (t.name.clone(), t.display_name.clone())).collect();
    let device = Device::init(
        &dir.path().join("dev"),
        "APIC-SERVER-M3",
        "FCH2001V0AB",
        Some("apic1"),
        tags,
        Box::new(Shared(clock)),
    )
    .unwrap();
    let mut s = Session::new(device, true);
    run(&mut s, "crypto pki trustpoint SMARTLIC").await;
    run(&mut s, "revocation-check none").await;
    run(&mut s, "end").await;
    let prompt = run(&mut s, "crypto pki authenticate SMARTLIC").await;
    assert!(prompt.contains("Enter the base 64 encoded CA certificate."));
    assert!(s.reading_pem());
    for line in h.server.ca_pem.lines() {
        s.line(line).await.unwrap();
    }
    assert!(!s.reading_pem(), "the END line closes the certificate");
    run(&mut s, &format!("license smart url {}", h.base)).await;
    run(&mut s, "license feature \"ACI Essentials\" count 1").await;
    let said = run(&mut s, &format!("license smart register idtoken {token}")).await;
    assert!(said.contains("in progress"), "{said}");
    let status = run(&mut s, "sh lic stat").await;
    assert!(status.contains("REGISTERED"), "{status}");
    assert!(status.contains("AUTHORIZED"), "{status}");
    assert!(status.contains("example.com") || status.contains("Example"), "{status}");
    // The pool runs short: out of compliance at the next usage change.
    run(&mut s, "license feature \"ACI Essentials\" count 2").await;
    assert!(run(&mut s, "show license status").await.contains("OUT OF COMPLIANCE"));
    // Bad input is refused in the device's words and changes nothing.
    let bad = s.line("show license bogus").await.unwrap();
    assert!(bad.error && bad.output.contains("% Invalid input detected at '^' marker."), "{}", bad.output);
    let unknown = s.line("license feature \"No Such Tag\" count 1").await.unwrap();
    assert!(unknown.error, "{}", unknown.output);
    let malformed = s.line("license smart register idtoken not*a*token force").await.unwrap();
    assert!(malformed.error && malformed.output.contains("Invalid ID token"), "{}", malformed.output);
    assert!(run(&mut s, "show license status").await.contains("Status: REGISTERED"), "nothing changed");
    // The state survives reopening the directory.
    drop(s);
    let clock = h.server.state.simulated.clone().unwrap();
    let reopened = Device::open(&dir.path().join("dev"), Box::new(Shared(clock))).unwrap();
    assert!(reopened.agent.registration.is_registered());
}
