//! A simulated device driven through its CLI session, on a clock the test moves: how the
//! agent tests talk to a real manager.

use super::Harness;
use smartlic_agent::device::Device;
use smartlic_agent::session::Session;
use smartlic_core::{Catalog, Clock, Timestamp};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub const PID: &str = "APIC-SERVER-M3";
/// A device clock that stands still unless the test moves it.
#[derive(Clone)]
pub struct Frozen(Arc<AtomicI64>);

impl Frozen {
    /// The manager's time, rounded down to the second (`clock set` has second precision).
    pub fn at(h: &Harness) -> Frozen {
        Frozen(Arc::new(AtomicI64::new(h.now_ms() / 1000 * 1000)))
    }

    pub fn get(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for Frozen {
    fn now(&self) -> Timestamp {
        self.get()
    }
}

pub fn new_device(dir: &Path, sn: &str, clock: &Frozen) -> Session {
    let tags = Catalog::builtin().tags().iter().map(|t| (t.name.clone(), t.display_name.clone())).collect();
    let device = Device::init(dir, PID, sn, Some("apic1"), tags, Box::new(clock.clone())).unwrap();
    Session::new(device, true)
}

pub async fn run(s: &mut Session, line: &str) -> String {
    let reply = s.line(line).await.unwrap();
    assert!(!reply.error, "{line}: {}", reply.output);
    reply.output
}

/// Imports `pem` as trust point `name` with the seeds' commands.
pub async fn trust(s: &mut Session, name: &str, pem: &str) {
    run(s, &format!("crypto pki trustpoint {name}")).await;
    run(s, "enrollment terminal").await;
    run(s, "revocation-check none").await;
    run(s, "end").await;
    run(s, &format!("crypto pki authenticate {name}")).await;
    assert!(s.reading_pem());
    for line in pem.lines() {
        s.line(line).await.unwrap();
    }
    assert!(!s.reading_pem(), "the END line closes the certificate");
}

/// The lines of one block of `show license status` (`Registration:`, `License Authorization:`),
/// without indentation, up to the blank line that ends it.
pub fn block(status: &str, title: &str) -> Vec<String> {
    let mut lines = status.lines().skip_while(|l| *l != title);
    assert!(lines.next().is_some(), "no {title} block in\n{status}");
    lines.take_while(|l| !l.is_empty()).map(|l| l.trim().to_string()).collect()
}

pub fn registration(status: &str) -> Vec<String> {
    block(status, "Registration:")
}

pub fn authorization(status: &str) -> Vec<String> {
    block(status, "License Authorization:")
}

pub async fn status(s: &mut Session) -> String {
    run(s, "show license status").await
}

/// The call-home form of A-10: destination and proxy in `callhome` mode.
pub async fn callhome_via_proxy(s: &mut Session, url: &str, proxy_port: u16) {
    run(s, "callhome").await;
    run(s, &format!("destination-profile CiscoTAC-1 index 1 http {url}")).await;
    run(s, &format!("transport http proxy server 127.0.0.1 port {proxy_port}")).await;
    run(s, "transport http proxy enable").await;
    run(s, "end").await;
}
