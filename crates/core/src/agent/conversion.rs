//! Device-led conversion on the device (V-1, seed 000 "Device Led Conversion Tool"): a
//! registered device reports the legacy licenses it holds and the manager deposits matching
//! smart licenses, once in the device's lifetime.
//!
//! `license smart conversion start` sends the request; while no answer comes it is resent every
//! [`CONVERSION_RETRY_MS`], and after [`CONVERSION_TIMEOUT_MS`] without one the conversion fails
//! with a major fault and a syslog line, and may be started again (seed 000: "DLC has a 10-minute
//! timeout ... will provide the option to retrigger DLC ... a major fault will be raised").
//! Through a satellite it is refused at once (seed 000: not supported in that transport).

use super::machine::Cx;
use super::*;

/// No answer within this long: the conversion fails (seed 000).
pub const CONVERSION_TIMEOUT_MS: i64 = 10 * MINUTE_MS;
/// A conversion request that could not be delivered is sent again this long after.
pub const CONVERSION_RETRY_MS: i64 = MINUTE_MS;
/// Seed 000's reason for refusing conversion through a satellite.
pub const SATELLITE_NOT_SUPPORTED: &str =
    "The DLC tool is not supported when you use the Smart Software Manager Satellite transport setting";
/// Why a conversion stopped at its timeout.
pub const CONVERSION_TIMED_OUT: &str = "No answer from the Cisco Smart Software Manager within 10 minutes";

/// `Status:` of the `Smart License Conversion:` block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversionStatus {
    #[default]
    NotStarted,
    InProgress {
        started: Timestamp,
    },
    Successful {
        at: Timestamp,
    },
    Failed {
        at: Timestamp,
        reason: String,
    },
    /// The manager had converted this device before (public facts §7: `Status: Already converted`).
    AlreadyConverted {
        at: Timestamp,
    },
}

impl ConversionStatus {
    pub fn display(&self) -> &'static str {
        match self {
            ConversionStatus::NotStarted => "Not started",
            ConversionStatus::InProgress { .. } => "In progress",
            ConversionStatus::Successful { .. } => "Successful",
            ConversionStatus::Failed { .. } => "Failed",
            ConversionStatus::AlreadyConverted { .. } => "Already converted",
        }
    }
}

/// What the manager said about one legacy license.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionItem {
    pub name: String,
    pub count: u32,
    /// The smart licenses it became, e.g. `2 ACI Advantage`; None when the manager did not
    /// know the name (reported, never guessed).
    pub converted_to: Option<String>,
}

/// The manager's answer to a conversion request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionFacts {
    pub already_converted: bool,
    pub items: Vec<ConversionItem>,
}

/// The device's conversion bookkeeping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// The legacy licenses the device holds (configuration): name → count.
    pub legacy: BTreeMap<String, u32>,
    pub status: ConversionStatus,
    /// The list sent by the conversion in progress (resent as is).
    pub sent: Vec<(String, u32)>,
    /// When the request in progress is sent again.
    pub next_attempt: Option<Timestamp>,
    /// The per-item answer of the last conversion.
    pub results: Vec<ConversionItem>,
}

impl Conversion {
    /// When the conversion in progress needs the agent: a resend or its timeout.
    pub fn next_due(&self) -> Option<Timestamp> {
        match self.status {
            ConversionStatus::InProgress { started } => {
                let timeout = started.plus_ms(CONVERSION_TIMEOUT_MS);
                Some(self.next_attempt.map_or(timeout, |t| t.min(timeout)))
            }
            _ => None,
        }
    }

    pub(super) fn check_bounds(&self) -> Result<(), String> {
        let at = match &self.status {
            ConversionStatus::NotStarted => return Ok(()),
            ConversionStatus::InProgress { started: at }
            | ConversionStatus::Successful { at }
            | ConversionStatus::Failed { at, .. }
            | ConversionStatus::AlreadyConverted { at } => *at,
        };
        bounds::check_device_time("agent.conversion.status.at", at)?;
        match self.next_attempt {
            Some(t) => bounds::check_device_time("agent.conversion.next_attempt", t),
            None => Ok(()),
        }
    }
}

impl Cx<'_> {
    /// Catches up with time: resend, or fail at the timeout.
    pub(super) fn advance_conversion(&mut self) {
        let now = self.now;
        let c = &self.agent.conversion;
        let ConversionStatus::InProgress { started } = c.status else { return };
        if now >= started.plus_ms(CONVERSION_TIMEOUT_MS) {
            self.conversion_failed(CONVERSION_TIMED_OUT.to_string());
        } else if c.next_attempt.is_some_and(|t| t <= now) {
            self.send_conversion();
        }
    }

    /// `license smart conversion start`: registered devices only; refused through a satellite.
    pub(super) fn start_conversion(&mut self, via_satellite: bool) {
        if !self.agent.enabled
            || !self.agent.registration.is_registered()
            || matches!(self.agent.conversion.status, ConversionStatus::InProgress { .. })
        {
            return;
        }
        let c = &mut self.agent.conversion;
        c.status = ConversionStatus::InProgress { started: self.now };
        c.sent = c.legacy.iter().map(|(n, k)| (n.clone(), *k)).collect();
        c.results.clear();
        self.log(format!(
            "%SMART_LIC-6-CONVERSION_STARTED: Smart License Conversion started for udi {}",
            self.agent.udi()
        ));
        if via_satellite {
            self.conversion_failed(SATELLITE_NOT_SUPPORTED.to_string());
        } else {
            self.send_conversion();
        }
    }

    /// `license smart conversion stop`: a conversion in progress is abandoned.
    pub(super) fn stop_conversion(&mut self) {
        let c = &mut self.agent.conversion;
        if matches!(c.status, ConversionStatus::InProgress { .. }) {
            c.status = ConversionStatus::NotStarted;
            c.next_attempt = None;
            self.log("%SMART_LIC-6-CONVERSION_STOPPED: Smart License Conversion stopped".into());
        }
    }

    fn send_conversion(&mut self) {
        let c = &mut self.agent.conversion;
        c.next_attempt = Some(self.now.plus_ms(CONVERSION_RETRY_MS));
        if self.agent.transport_available {
            self.actions.push(Action::SendConversion { legacy: c.sent.clone() });
        } else {
            self.conversion_failed(TRANSPORT_NOT_AVAILABLE.to_string());
        }
    }

    pub(super) fn conversion_answered(&mut self, facts: ConversionFacts) {
        if !matches!(self.agent.conversion.status, ConversionStatus::InProgress { .. }) {
            return;
        }
        let at = self.now;
        let c = &mut self.agent.conversion;
        c.next_attempt = None;
        c.results = facts.items;
        let unknown: Vec<&str> =
            c.results.iter().filter(|i| i.converted_to.is_none()).map(|i| i.name.as_str()).collect();
        let unknown = (!unknown.is_empty()).then(|| format!("; not converted (unknown): {}", unknown.join(", ")));
        if facts.already_converted {
            c.status = ConversionStatus::AlreadyConverted { at };
            self.log(
                "%SMART_LIC-6-CONVERSION_STATUS: Smart License Conversion: this device was already converted".into(),
            );
        } else {
            c.status = ConversionStatus::Successful { at };
            self.log(format!(
                "%SMART_LIC-6-CONVERSION_COMPLETE: Smart License Conversion successful{}",
                unknown.unwrap_or_default()
            ));
        }
    }

    /// A conversion exchange failed: communication failures are retried until the timeout,
    /// anything else (refused, no transport) fails the conversion now.
    pub(super) fn conversion_exchange_failed(&mut self, failure: Failure) {
        if !matches!(self.agent.conversion.status, ConversionStatus::InProgress { .. }) {
            return;
        }
        match failure.kind {
            FailureKind::Communication => self.comm_failed_log(&failure.reason),
            _ => self.conversion_failed(failure.reason),
        }
    }

    /// Failed: the major fault follows from the state; the user may start again.
    pub(super) fn conversion_failed(&mut self, reason: String) {
        let c = &mut self.agent.conversion;
        c.next_attempt = None;
        c.status = ConversionStatus::Failed { at: self.now, reason: reason.clone() };
        self.log(format!("%SMART_LIC-3-CONVERSION_FAILED: Smart License Conversion failed: {reason}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z

    /// A registered device holding 2 `ACI-LEAF-ADV`, and the time after its registration.
    fn registered() -> Agent {
        let mut a = Agent::new("APIC-SERVER-M2", "FCH1", T0);
        step(&mut a, Event::SetTransport { available: true }, T0);
        step(&mut a, Event::Register { token: "t".into(), force: false }, T0);
        let facts = RegisterFacts {
            instance_id: "pi-1".into(),
            smart_account: "Example".into(),
            virtual_account: "Default".into(),
            export_controlled: false,
            certificate_serial: "01".into(),
            certificate_expires: T0.plus_days(365),
            intervals: Intervals::default(),
        };
        step(&mut a, Event::RegisterSucceeded(facts), T0);
        step(&mut a, Event::SetLegacy { name: "ACI-LEAF-ADV".into(), count: 2 }, T0);
        a
    }

    fn sends(actions: &[Action]) -> Vec<Vec<(String, u32)>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::SendConversion { legacy } => Some(legacy.clone()),
                _ => None,
            })
            .collect()
    }

    fn logged(actions: &[Action], what: &str) -> bool {
        actions.iter().any(|a| matches!(a, Action::Log(e) if e.message.contains(what)))
    }

    #[test]
    fn conversion_needs_registration_and_reports_the_legacy_licenses() {
        let mut unregistered = Agent::new("P", "S", T0);
        let before = unregistered.clone();
        assert!(step(&mut unregistered, Event::ConversionStart { via_satellite: false }, T0).is_empty());
        assert_eq!(unregistered, before, "a device that is not registered does not convert");

        let mut a = registered();
        let actions = step(&mut a, Event::ConversionStart { via_satellite: false }, T0);
        assert_eq!(sends(&actions), vec![vec![("ACI-LEAF-ADV".to_string(), 2)]]);
        assert_eq!(a.conversion.status.display(), "In progress");
        let item = |to: Option<&str>| ConversionItem {
            name: "ACI-LEAF-ADV".into(),
            count: 2,
            converted_to: to.map(String::from),
        };
        let answer = ConversionFacts { already_converted: false, items: vec![item(Some("2 ACI Advantage"))] };
        let actions = step(&mut a, Event::ConversionSucceeded(answer), T0);
        assert!(logged(&actions, "%SMART_LIC-6-CONVERSION_COMPLETE"));
        assert_eq!(a.conversion.status, ConversionStatus::Successful { at: T0 });
        assert_eq!(next_wakeup(&a), Some(a.communication.next_attempt.unwrap()), "nothing left to resend");

        step(&mut a, Event::ConversionStart { via_satellite: false }, T0);
        step(&mut a, Event::ConversionSucceeded(ConversionFacts { already_converted: true, items: vec![] }), T0);
        assert_eq!(a.conversion.status.display(), "Already converted");
    }

    #[test]
    fn no_answer_for_ten_minutes_fails_with_a_major_fault_and_a_retry_clears_it() {
        let mut a = registered();
        step(&mut a, Event::ConversionStart { via_satellite: false }, T0);
        let down = Failure::new(FailureKind::Communication, "Fail to send out Call Home HTTP message");
        step(&mut a, Event::ConversionFailed(down), T0);
        assert_eq!(a.conversion.status.display(), "In progress", "a communication failure is retried");
        // Resent each minute until the timeout.
        let resent = step(&mut a, Event::Tick, T0.plus_ms(CONVERSION_RETRY_MS));
        assert_eq!(sends(&resent).len(), 1);
        let timeout = T0.plus_ms(CONVERSION_TIMEOUT_MS);
        let actions = step(&mut a, Event::Tick, timeout);
        assert!(logged(&actions, "%SMART_LIC-3-CONVERSION_FAILED"));
        assert!(actions.contains(&Action::RaiseFault(Fault::ConversionFailed)));
        assert_eq!(Fault::ConversionFailed.severity(), Severity::Major);
        assert_eq!(a.conversion.status, ConversionStatus::Failed { at: timeout, reason: CONVERSION_TIMED_OUT.into() });
        // The user may start again: the fault clears.
        let retry = step(&mut a, Event::ConversionStart { via_satellite: false }, timeout);
        assert!(retry.contains(&Action::ClearFault(Fault::ConversionFailed)));
        assert_eq!(sends(&retry).len(), 1);
    }

    #[test]
    fn refused_through_a_satellite_or_by_the_manager_and_stop_abandons() {
        let mut a = registered();
        let actions = step(&mut a, Event::ConversionStart { via_satellite: true }, T0);
        assert!(sends(&actions).is_empty(), "nothing is sent through a satellite");
        assert_eq!(a.conversion.status, ConversionStatus::Failed { at: T0, reason: SATELLITE_NOT_SUPPORTED.into() });

        step(&mut a, Event::ConversionStart { via_satellite: false }, T0);
        step(&mut a, Event::ConversionFailed(Failure::new(FailureKind::Refused, "not enabled")), T0);
        assert!(matches!(&a.conversion.status, ConversionStatus::Failed { reason, .. } if reason == "not enabled"));

        step(&mut a, Event::ConversionStart { via_satellite: false }, T0);
        step(&mut a, Event::ConversionStop, T0);
        assert_eq!(a.conversion.status, ConversionStatus::NotStarted);
        assert!(a.conversion.next_due().is_none());
    }
}
