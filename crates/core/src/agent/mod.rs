//! The smart agent's state machine (A-2 … A-9, A-14): the device side of licensing, free of I/O.
//!
//! Everything the agent knows is one serialisable [`Agent`] value. The caller (the `smartlic-agent`
//! crate) feeds it [`Event`]s with the device time, and performs the [`Action`]s it gets back:
//!
//! ```text
//! loop {
//!     while let Some(due) = next_wakeup(&agent).filter(|&t| t <= now) { run(Event::Tick, due) }
//!     run(command_event, now)
//! }
//! run(event, at):
//!     let actions = step(&mut agent, event, at);
//!     persist(&agent)                        // atomically, before anything leaves the device
//!     for each action: Send* -> do the exchange, then run(outcome event, clock.now())
//!                      DropIdentity -> delete key pair and ID certificate
//!                      Log / RaiseFault / ClearFault -> daemon log (they are in the state too)
//! ```
//!
//! Every step first catches up with time ([`Event::Tick`] does only that): evaluation use is
//! accrued, expiries and due attempts fire, then the event itself is applied. A timer due long ago
//! (the device was off, or the clock jumped) fires once, at `now`; ticking at each
//! [`next_wakeup`] instead gives the exact timeline.
//!
//! A `Send*` action leaves its exchange PENDING with the retry already scheduled, so an outcome
//! that never comes back (crash, kill -9) counts as a failure and the retry runs on time.
//! Outcomes that no longer match the state (an answer to a registration the user cancelled) are
//! ignored. Commands that do not apply (renew while unregistered) change nothing; the CLI says why.

mod bounds;
mod conversion;
mod machine;
mod reservation;
pub mod schedule;
#[cfg(test)]
mod tests;

pub use bounds::{check_interval, check_scheduled, DEVICE_TIME_END, DEVICE_TIME_START};
pub use conversion::{
    Conversion, ConversionFacts, ConversionItem, ConversionStatus, CONVERSION_RETRY_MS, CONVERSION_TIMED_OUT,
    CONVERSION_TIMEOUT_MS, SATELLITE_NOT_SUPPORTED,
};
pub use machine::{next_wakeup, step, stepped};
pub use reservation::{Coverage, ReservationInfo, ReservationKind, ReservationRequest, Reserved, ReservedLicense};

use crate::time::{Timestamp, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many event-log entries the state keeps (the oldest go first).
pub const EVENT_LOG_CAPACITY: usize = 500;

/// The failure reason when no transport is configured or it is turned off (G-5, seed 004 #4).
pub const TRANSPORT_NOT_AVAILABLE: &str = "Communication transport not available";

/// How log messages name the manager (the seeds' words).
pub const MANAGER: &str = "Cisco Smart Software Manager or satellite";

/// Renewal and validity intervals, from the manager's answers (wire `Intervals`, in ms here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals {
    pub id_renew_ms: i64,
    pub auth_renew_ms: i64,
    pub auth_validity_ms: i64,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            id_renew_ms: schedule::DEFAULT_ID_RENEW_MS,
            auth_renew_ms: schedule::DEFAULT_AUTH_RENEW_MS,
            auth_validity_ms: schedule::DEFAULT_AUTH_VALIDITY_MS,
        }
    }
}

impl Intervals {
    /// From the wire's seconds; a non-positive value falls back to the default, and none is
    /// longer than a state may hold (100 years), so a state saved with it loads again.
    pub fn from_secs(id_renew_secs: i64, auth_renew_secs: i64, auth_validity_secs: i64) -> Self {
        let d = Intervals::default();
        let pick = |secs: i64, default: i64| {
            if secs > 0 {
                secs.saturating_mul(SECOND_MS).min(bounds::MAX_INTERVAL_MS)
            } else {
                default
            }
        };
        Intervals {
            id_renew_ms: pick(id_renew_secs, d.id_renew_ms),
            auth_renew_ms: pick(auth_renew_secs, d.auth_renew_ms),
            auth_validity_ms: pick(auth_validity_secs, d.auth_validity_ms),
        }
    }
}

/// Why an exchange failed, which decides what the agent does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The manager could not be reached or did not answer properly (connection refused, proxy,
    /// TLS, timeout, bad signature on the answer, clock skew): retry on the schedule.
    Communication,
    /// The manager answered and refused (invalid token, product already registered, …).
    Refused,
    /// No transport configured or transport off (G-5): registration fails without retry.
    TransportUnavailable,
    /// The manager no longer knows this device (instance removed, certificate expired at the
    /// manager): the agent drops its identity and returns to evaluation (C-13).
    NotRegistered,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// Shown as `Failure reason:` (seed 004 texts, or the manager's message).
    pub reason: String,
}

impl Failure {
    pub fn new(kind: FailureKind, reason: impl Into<String>) -> Self {
        Failure { kind, reason: reason.into() }
    }
}

/// The outcome of one attempt, as `show license status` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    Failed {
        reason: String,
    },
    /// Sent, no answer yet (seed 004 #7: "PENDING … Failure reason: Waiting for reply").
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    pub outcome: Outcome,
}

impl Attempt {
    fn pending(at: Timestamp) -> Self {
        Attempt { at, outcome: Outcome::Pending }
    }
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// A registration under way (REGISTERING) or failed (REGISTRATION FAILED).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationAttempts {
    /// Kept only until registration succeeds or is cancelled, to retry with it.
    pub token: String,
    pub force: bool,
    pub started: Timestamp,
    /// Consecutive failures so far (drives the A-5 schedule).
    pub failures: u32,
    /// The most recent attempts, newest last (at most [`RegistrationAttempts::HISTORY`]).
    pub history: Vec<Attempt>,
    /// None after a failure that is not retried (transport not available).
    pub next_attempt: Option<Timestamp>,
}

impl RegistrationAttempts {
    pub const HISTORY: usize = 32;

    pub fn last(&self) -> Option<&Attempt> {
        self.history.last()
    }

    /// The reason of the last failure, if the last attempt failed (or is pending after one).
    pub fn failure_reason(&self) -> Option<&str> {
        self.history.iter().rev().find_map(|a| match &a.outcome {
            Outcome::Failed { reason } => Some(reason.as_str()),
            _ => None,
        })
    }
}

/// A registered device's facts (A-4) and ID-certificate renewal bookkeeping (A-8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub instance_id: String,
    pub smart_account: String,
    pub virtual_account: String,
    pub export_controlled: bool,
    pub initial_registration: Timestamp,
    pub certificate_serial: String,
    /// Start of the ID certificate's validity as the device saw it (registration or renewal time).
    pub certificate_valid_from: Timestamp,
    /// `Registration Expires:` — the ID certificate's expiry.
    pub expires: Timestamp,
    pub intervals: Intervals,
    /// `Last Renewal Attempt:` (None prints "None").
    pub last_renewal: Option<Attempt>,
    /// `Next Renewal Attempt:`
    pub next_renewal: Timestamp,
    pub renewal_failures: u32,
    /// Set when the clock was moved outside the certificate's validity: one hour of grace.
    pub clock_out_of_range_since: Option<Timestamp>,
}

impl Registered {
    pub fn clock_in_range(&self, now: Timestamp) -> bool {
        now >= self.certificate_valid_from && now < self.expires
    }
}

/// Registration status (A-2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Registration {
    /// UNREGISTERED (UNIDENTIFIED): the initial state, and after deregistration.
    Unidentified,
    /// REGISTERING - REGISTRATION IN PROGRESS (also while the 15-minute retries after
    /// communication failures run, and while a later attempt is sent).
    Registering(RegistrationAttempts),
    /// UNREGISTERED - REGISTRATION FAILED (refused, no transport, or communication failures past
    /// the 4 hours of 15-minute retries, G-4), with reason and next attempt.
    Failed(RegistrationAttempts),
    Registered(Box<Registered>),
    /// An offline reservation is installed (R-1): licensed without ever contacting a manager.
    Reserved(Box<Reserved>),
    /// REGISTRATION EXPIRED: the ID certificate expired; the device is unidentified again, in
    /// evaluation with the time it had left, until it registers again (A-8).
    Expired {
        at: Timestamp,
    },
}

impl Registration {
    pub fn is_registered(&self) -> bool {
        matches!(self, Registration::Registered(_))
    }

    /// Registered or reserved: licensed, so evaluation does not count down.
    pub fn holds_licenses(&self) -> bool {
        matches!(self, Registration::Registered(_) | Registration::Reserved(_))
    }

    pub fn reserved(&self) -> Option<&Reserved> {
        match self {
            Registration::Reserved(r) => Some(r),
            _ => None,
        }
    }

    pub fn registered(&self) -> Option<&Registered> {
        match self {
            Registration::Registered(r) => Some(r),
            _ => None,
        }
    }

    /// The `Status:` line of the Registration block.
    pub fn display(&self) -> &'static str {
        match self {
            Registration::Unidentified => "UNREGISTERED",
            Registration::Registering(_) => "REGISTERING - REGISTRATION IN PROGRESS",
            Registration::Failed(_) => "UNREGISTERED - REGISTRATION FAILED",
            Registration::Registered(_) => "REGISTERED",
            Registration::Reserved(r) => match r.kind {
                ReservationKind::Specific => "REGISTERED - SPECIFIC LICENSE RESERVATION",
                ReservationKind::Universal => "REGISTERED - UNIVERSAL LICENSE RESERVATION",
            },
            Registration::Expired { .. } => "UNREGISTERED - REGISTRATION EXPIRED",
        }
    }
}

/// Authorization status (A-2); `at` is when the agent entered it (`Status: X on <date>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authorization {
    /// EVALUATION MODE, with the time left in [`Evaluation`].
    Evaluation,
    EvaluationExpired {
        at: Timestamp,
    },
    Authorized {
        at: Timestamp,
    },
    OutOfCompliance {
        at: Timestamp,
    },
    AuthorizationExpired {
        at: Timestamp,
    },
    NoLicensesInUse {
        at: Timestamp,
    },
    /// AUTHORIZED - RESERVED: by an installed reservation (R-1).
    Reserved {
        at: Timestamp,
    },
}

impl Authorization {
    pub fn display(&self) -> &'static str {
        match self {
            Authorization::Evaluation => "EVALUATION MODE",
            Authorization::EvaluationExpired { .. } => "EVALUATION EXPIRED",
            Authorization::Authorized { .. } => "AUTHORIZED",
            Authorization::OutOfCompliance { .. } => "OUT OF COMPLIANCE",
            Authorization::AuthorizationExpired { .. } => "AUTHORIZATION EXPIRED",
            Authorization::NoLicensesInUse { .. } => "NO LICENSES IN USE",
            Authorization::Reserved { .. } => "AUTHORIZED - RESERVED",
        }
    }

    pub fn since(&self) -> Option<Timestamp> {
        match self {
            Authorization::Evaluation => None,
            Authorization::EvaluationExpired { at }
            | Authorization::Authorized { at }
            | Authorization::OutOfCompliance { at }
            | Authorization::AuthorizationExpired { at }
            | Authorization::NoLicensesInUse { at }
            | Authorization::Reserved { at } => Some(*at),
        }
    }

    fn same_kind(&self, other: &Authorization) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// The manager's answer to an authorization request (wire `AuthorizationStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthAnswer {
    Authorized,
    OutOfCompliance,
    NoLicensesInUse,
}

/// License Authorization block bookkeeping (meaningful while registered).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Communication {
    /// `Last Communication Attempt:` SUCCEEDED / FAILED (with reason) / PENDING.
    pub last: Option<Attempt>,
    /// `Next Communication Attempt:`
    pub next_attempt: Option<Timestamp>,
    /// `Communication Deadline:` — the authorization's validity end (from the answer).
    pub deadline: Option<Timestamp>,
    /// Consecutive failures (drives the A-7 schedules).
    pub failures: u32,
    /// Intervals from the last authorization answer.
    pub intervals: Option<Intervals>,
    /// The manager's status of each tag in its last answer: a device using one licensed and
    /// one short tag is OUT OF COMPLIANCE as a whole, yet only the short tag's row says so.
    #[serde(default)]
    pub entitlements: BTreeMap<String, AuthAnswer>,
}

/// Evaluation bookkeeping (A-3): 90 days of use, one period per device, never reset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Use so far, ≤ 90 days; only ever grows.
    pub used_ms: i64,
    /// Smallest warning threshold (time left) already announced; `i64::MAX` before the first.
    pub warned_down_to_ms: i64,
    /// When the 90 days ran out (EVALUATION EXPIRED), once and for all.
    pub expired_at: Option<Timestamp>,
    /// Last hourly EVALUATION EXPIRED notice.
    pub last_expired_notice: Option<Timestamp>,
    /// Why the evaluation was ended early: the saved state failed its integrity check
    /// ([`Event::StateTampered`]). Kept for good, so `show license status` keeps saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tampered: Option<String>,
}

impl Evaluation {
    pub fn left_ms(&self) -> i64 {
        schedule::EVALUATION_MS.saturating_sub(self.used_ms).max(0)
    }
}

/// Faults (A-14, seed 000): what the controller's Faults tab lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fault {
    EvaluationMode,
    EvaluationExpired,
    RegistrationFailed,
    OutOfCompliance,
    AuthorizationExpired,
    IdCertificateExpiredWarning,
    IdCertificateExpired,
    /// The saved state failed its integrity check: evaluation ended (see [`Evaluation::tampered`]).
    StateTampered,
    /// Device-led conversion failed (timeout, refusal): seed 000's major fault; cleared by a retry.
    ConversionFailed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Info,
    Minor,
    Major,
}

impl Fault {
    pub fn severity(self) -> Severity {
        match self {
            Fault::EvaluationMode => Severity::Info,
            Fault::RegistrationFailed => Severity::Minor,
            _ => Severity::Major,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::EvaluationMode => "Evaluation Mode",
            Fault::EvaluationExpired => "Evaluation Expired",
            Fault::RegistrationFailed => "Registration Failed",
            Fault::OutOfCompliance => "Out of Compliance",
            Fault::AuthorizationExpired => "License Authorization Expired",
            Fault::IdCertificateExpiredWarning => "ID Certificate Expired Warning",
            Fault::IdCertificateExpired => "ID Certificate Expired",
            Fault::StateTampered => "Licensing State Tampered",
            Fault::ConversionFailed => "Smart License Conversion Failed",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Fault::EvaluationMode => "Smart Licensing is in the evaluation period: the device is not registered",
            Fault::EvaluationExpired => "The evaluation period has expired: register the device",
            Fault::RegistrationFailed => "Registration with the Smart Software Manager failed",
            Fault::OutOfCompliance => "One or more entitlements are out of compliance",
            Fault::AuthorizationExpired => "The device has not been authorized for 90 days",
            Fault::IdCertificateExpiredWarning => "The ID certificate could not be renewed",
            Fault::IdCertificateExpired => "The ID certificate expired: register the device again with a new token",
            Fault::StateTampered => {
                "The licensing state was changed outside the agent: the evaluation period has ended"
            }
            Fault::ConversionFailed => "Device-led conversion failed: correct the cause and start the conversion again",
        }
    }
}

/// One `show license eventlog` line; `message` is in the seeds' syslog form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: Timestamp,
    pub message: String,
}

/// Everything the agent knows; persisted whole after each step (A-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub pid: String,
    pub sn: String,
    /// Smart licensing enabled (`license smart enable`); when off, no timer runs.
    pub enabled: bool,
    /// A transport and destination are configured and on (G-5).
    pub transport_available: bool,
    /// Device time of the last step; evaluation use is accrued up to here.
    pub clock: Timestamp,
    /// Configured usage: entitlement tag → count (counts > 0 only).
    pub usage: BTreeMap<String, u32>,
    pub registration: Registration,
    pub authorization: Authorization,
    pub communication: Communication,
    pub evaluation: Evaluation,
    pub faults: BTreeSet<Fault>,
    pub event_log: VecDeque<LogEntry>,
    /// Offline reservation (R-1); absent in states saved before it existed.
    #[serde(default)]
    pub reservation: ReservationInfo,
    /// Device-led conversion (V-1); absent in states saved before it existed.
    #[serde(default)]
    pub conversion: Conversion,
}

impl Agent {
    /// A new device at its first boot: unidentified, in evaluation, enabled, no usage.
    pub fn new(pid: impl Into<String>, sn: impl Into<String>, now: Timestamp) -> Self {
        let mut agent = Agent {
            pid: pid.into(),
            sn: sn.into(),
            enabled: true,
            transport_available: true,
            clock: now,
            usage: BTreeMap::new(),
            registration: Registration::Unidentified,
            authorization: Authorization::Evaluation,
            communication: Communication::default(),
            evaluation: Evaluation {
                used_ms: 0,
                warned_down_to_ms: i64::MAX,
                expired_at: None,
                last_expired_notice: None,
                tampered: None,
            },
            faults: BTreeSet::new(),
            event_log: VecDeque::new(),
            reservation: ReservationInfo::default(),
            conversion: Conversion::default(),
        };
        agent.faults.insert(Fault::EvaluationMode);
        agent
    }

    pub fn udi(&self) -> String {
        format!("PID:{},SN:{}", self.pid, self.sn)
    }

    pub fn in_use(&self) -> bool {
        self.usage.values().any(|&c| c > 0)
    }

    /// Evaluation counts down now: enabled, not registered, something in use (A-3).
    pub fn evaluation_counting(&self) -> bool {
        self.enabled && !self.registration.holds_licenses() && self.in_use() && self.evaluation.left_ms() > 0
    }

    /// How an installed reservation treats `count` of `tag` at `now`; None when none is installed.
    pub fn reservation_coverage(&self, tag: &str, count: u32, now: Timestamp) -> Option<Coverage> {
        self.registration.reserved().map(|r| r.coverage(tag, count, now))
    }

    /// The usage list sent with every authorization request (full list, even if empty).
    pub fn usage_list(&self) -> Vec<(String, u32)> {
        self.usage.iter().map(|(t, c)| (t.clone(), *c)).collect()
    }
}

/// Facts of a successful registration (from the wire `RegisterResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterFacts {
    pub instance_id: String,
    pub smart_account: String,
    pub virtual_account: String,
    pub export_controlled: bool,
    pub certificate_serial: String,
    pub certificate_expires: Timestamp,
    pub intervals: Intervals,
}

/// Facts of a successful authorization (from the wire `AuthorizeResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFacts {
    pub status: AuthAnswer,
    /// Each tag's own status (`Authorized` or `OutOfCompliance`), from the answer's entitlements.
    pub entitlements: BTreeMap<String, AuthAnswer>,
    pub valid_until: Timestamp,
    pub intervals: Intervals,
}

/// Facts of a successful ID-certificate renewal (from the wire `RenewIdResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewFacts {
    pub certificate_serial: String,
    pub certificate_expires: Timestamp,
    pub intervals: Intervals,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Time passed: run what is due (the caller ticks at each [`next_wakeup`]).
    Tick,
    /// The device clock was just moved by an operator (`clock set`); `now` is the new time.
    ClockSet,
    /// `license smart register idtoken TOKEN [force]`
    Register {
        token: String,
        force: bool,
    },
    /// `license smart deregister`
    Deregister,
    /// `license smart renew id`
    RenewId,
    /// `license smart renew auth`
    RenewAuth,
    /// `license feature "TAG" count N` (0 = `no license feature "TAG"`).
    SetUsage {
        tag: String,
        count: u32,
    },
    /// Replace the whole usage configuration at once.
    ReplaceUsage(BTreeMap<String, u32>),
    /// `license smart enable` / `no license smart enable`.
    Enable,
    Disable,
    /// Transport configured and on (true) or off / no destination (false).
    SetTransport {
        available: bool,
    },
    RegisterSucceeded(RegisterFacts),
    RegisterFailed(Failure),
    AuthSucceeded(AuthFacts),
    AuthFailed(Failure),
    IdRenewSucceeded(RenewFacts),
    IdRenewFailed(Failure),
    /// The manager acknowledged the deregistration (best effort, A-9).
    DeregisterDone,
    DeregisterFailed {
        reason: String,
    },
    /// The saved state failed its integrity check (edited, or its key gone): the evaluation
    /// period ends now, for good, with `reason` shown.
    StateTampered {
        reason: String,
    },
    /// A state saved before the integrity check existed was read and is sealed from now on:
    /// logged with the evaluation it says was used, so a reset this way is on record.
    StateSealed,
    /// `license smart reservation` / `no license smart reservation` (configuration).
    ReservationEnable(bool),
    /// A request code was printed (`license smart reservation request local|universal`).
    ReservationRequested(ReservationRequest),
    /// `license smart reservation cancel`.
    ReservationCancelled,
    /// A verified authorization code matching the request in progress was installed.
    ReservationInstalled(Reserved),
    /// `license smart reservation return local`: the code was removed; `return_code` proves it.
    ReservationReturned {
        return_code: String,
    },
    /// `license smart reservation return authorization CODE`: a code never installed was given back.
    ReservationAuthorizationReturned {
        return_code: String,
    },
    /// Configuration: the device holds `count` of legacy license `name` (0 removes it).
    SetLegacy {
        name: String,
        count: u32,
    },
    /// `license smart conversion start`; `via_satellite` when the transport is a satellite.
    ConversionStart {
        via_satellite: bool,
    },
    /// `license smart conversion stop`.
    ConversionStop,
    ConversionSucceeded(ConversionFacts),
    ConversionFailed(Failure),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Generate a key pair if none is pending and send a registration request.
    SendRegister {
        token: String,
        force: bool,
    },
    /// Send an authorization request with the full usage list (possibly empty).
    SendAuthorize {
        usage: Vec<(String, u32)>,
    },
    SendRenewId,
    /// Tell the manager (best effort); the identity is already dropped locally.
    SendDeregister,
    /// Send a conversion request listing the legacy licenses held (V-1).
    SendConversion {
        legacy: Vec<(String, u32)>,
    },
    /// Delete the key pair and the ID certificate.
    DropIdentity,
    Log(LogEntry),
    RaiseFault(Fault),
    ClearFault(Fault),
}

/// `Mon DD HH:MM:SS YYYY UTC`, the dates of `show license status` (A-13).
pub fn format_device_time(at: Timestamp) -> String {
    at.to_datetime().format("%b %d %H:%M:%S %Y UTC").to_string()
}

/// `N days, H hours, M minutes, S seconds` (evaluation time left, seed 004 #6).
pub fn format_time_left(ms: i64) -> String {
    let ms = ms.max(0);
    format!(
        "{} days, {} hours, {} minutes, {} seconds",
        ms / DAY_MS,
        ms % DAY_MS / HOUR_MS,
        ms % HOUR_MS / MINUTE_MS,
        ms % MINUTE_MS / SECOND_MS
    )
}
