//! A device: the agent state machine (`smartlic_core::agent`), its configuration and its
//! identity, kept in a state directory, with the manager exchanges its actions ask for.
//!
//! The directory holds `agent.json` (state machine + configuration) and `identity.json` (key
//! pair and ID certificate, owner-only), and while a registration is in progress its key
//! (`registration-key.pem`, owner-only). All are replaced atomically; the state is saved after
//! every step, before anything is sent, so a crash at any point resumes from a whole state.

use crate::client::{ClientError, ManagerClient};
use crate::config::{DeviceConfig, Trustpoint, HTTP_NOT_SUPPORTED};
use crate::identity::{DeviceIdentity, IdentityError};
use crate::persist::write_atomic;
use serde::{Deserialize, Serialize};
use smartlic_core::agent::{
    next_wakeup, step, Action, Agent, AuthAnswer, AuthFacts, Event, Failure, FailureKind, Intervals, LogEntry,
    RegisterFacts, RenewFacts, TRANSPORT_NOT_AVAILABLE,
};
use smartlic_core::{Clock, Timestamp};
use smartlic_proto::wire::{self, AuthorizationStatus, Udi, Usage};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

const STATE_FILE: &str = "agent.json";
const IDENTITY_FILE: &str = "identity.json";
const REGISTRATION_KEY_FILE: &str = "registration-key.pem";
/// The trust point the seeds designate for the licensing CA (the manager's).
pub const LICENSING_TRUSTPOINT: &str = "SLA-TrustPoint";
/// Version of `agent.json`, so a newer layout is refused rather than misread.
const STATE_VERSION: u32 = 1;
/// Most exchanges one command may cause (a registration is followed by an authorization, ...).
const MAX_EXCHANGES: usize = 16;

/// The text a device shows when nothing answers at the manager's address (seed 004 #5).
pub const SEND_FAILED: &str = "Fail to send out Call Home HTTP message";

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0} is not a smartlic device state directory (no {STATE_FILE}); create one with `smartlic agent --state {0} init --pid PID --sn SERIAL`")]
    NotADevice(String),
    #[error("{0} already holds a device; use another directory")]
    Exists(String),
    #[error("the device state in {path} is not readable: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("cannot save the device state in {path}: {source}")]
    Save { path: String, source: std::io::Error },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    agent: Agent,
    config: DeviceConfig,
}

pub struct Device {
    dir: PathBuf,
    pub agent: Agent,
    pub config: DeviceConfig,
    identity: Option<DeviceIdentity>,
    clock: Box<dyn Clock>,
    /// Log lines and faults raised since the caller last took them (the daemon prints them).
    pub messages: Vec<LogEntry>,
}

fn valid_name(field: &str, value: &str) -> Result<String, DeviceError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(DeviceError::Invalid(format!(
            "{field} must be 1 to 64 printable characters without spaces, got '{value}'"
        )));
    }
    Ok(v.to_string())
}

impl Device {
    /// Creates a new device in `dir` (created if missing).
    pub fn init(
        dir: &Path,
        pid: &str,
        sn: &str,
        hostname: Option<&str>,
        catalog: BTreeMap<String, String>,
        clock: Box<dyn Clock>,
    ) -> Result<Device, DeviceError> {
        let (pid, sn) = (valid_name("the product ID", pid)?, valid_name("the serial number", sn)?);
        let hostname = valid_name("the hostname", hostname.unwrap_or("Device"))?;
        if dir.join(STATE_FILE).exists() {
            return Err(DeviceError::Exists(dir.display().to_string()));
        }
        std::fs::create_dir_all(dir).map_err(|source| DeviceError::Save { path: dir.display().to_string(), source })?;
        let config = DeviceConfig { hostname, catalog, ..DeviceConfig::default() };
        let now = clock.now();
        let mut device = Device {
            dir: dir.to_path_buf(),
            agent: Agent::new(pid, sn, now),
            config,
            identity: None,
            clock,
            messages: Vec::new(),
        };
        // No destination is configured yet.
        step(&mut device.agent, Event::SetTransport { available: false }, now);
        device.save()?;
        Ok(device)
    }

    /// Opens the device kept in `dir`.
    pub fn open(dir: &Path, clock: Box<dyn Clock>) -> Result<Device, DeviceError> {
        let path = dir.join(STATE_FILE);
        let corrupt = |reason: String| DeviceError::Corrupt { path: path.display().to_string(), reason };
        // Only a missing file means "no device here": an unreadable one (not UTF-8, ...) is a
        // damaged device, not an invitation to `init` over it.
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DeviceError::NotADevice(dir.display().to_string()),
            _ => corrupt(e.to_string()),
        })?;
        let saved: Saved = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if saved.version != STATE_VERSION {
            return Err(corrupt(format!("state version {} is not {STATE_VERSION}", saved.version)));
        }
        let identity = match DeviceIdentity::load(&dir.join(IDENTITY_FILE)) {
            Ok(i) => Some(i),
            Err(IdentityError::Missing(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Device {
            dir: dir.to_path_buf(),
            agent: saved.agent,
            config: saved.config,
            identity,
            clock,
            messages: Vec::new(),
        })
    }

    /// The state directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device clock: the system clock moved by `clock set`.
    pub fn now(&self) -> Timestamp {
        self.clock.now().plus_ms(self.config.clock_offset_ms)
    }

    pub fn save(&self) -> Result<(), DeviceError> {
        let saved = Saved { version: STATE_VERSION, agent: self.agent.clone(), config: self.config.clone() };
        let json = serde_json::to_vec_pretty(&saved).map_err(|e| DeviceError::Invalid(e.to_string()))?;
        let path = self.dir.join(STATE_FILE);
        write_atomic(&path, &json).map_err(|source| DeviceError::Save { path: path.display().to_string(), source })
    }

    /// Runs what has become due by the device clock (renewals, retries, expiries, evaluation).
    /// Overdue timers fire once, now, as on a device whose clock jumped.
    pub async fn run_due(&mut self) -> Result<(), DeviceError> {
        for _ in 0..MAX_EXCHANGES {
            let now = self.now();
            match next_wakeup(&self.agent) {
                Some(due) if due <= now => self.apply(Event::Tick).await?,
                _ => break,
            }
        }
        Ok(())
    }

    /// Moves the device clock to `to` and lets the agent react.
    pub async fn set_clock(&mut self, to: Timestamp) -> Result<(), DeviceError> {
        self.config.clock_offset_ms = to.0 - self.clock.now().0;
        self.apply(Event::ClockSet).await
    }

    /// Tells the agent whether it has somewhere to send (G-5), after a transport change.
    pub async fn transport_changed(&mut self) -> Result<(), DeviceError> {
        let available = self.config.destination().is_some();
        if available != self.agent.transport_available {
            self.apply(Event::SetTransport { available }).await?;
        }
        self.save()
    }

    /// Steps the agent with `event` at the device time and performs what it asks, feeding each
    /// exchange's outcome back, until nothing is left to send. Saves after every step.
    pub async fn apply(&mut self, event: Event) -> Result<(), DeviceError> {
        let now = self.now();
        let mut queue: VecDeque<Action> = step(&mut self.agent, event, now).into();
        self.save()?;
        let mut exchanges = 0;
        while let Some(action) = next_action(&mut queue) {
            match action {
                Action::DropIdentity => self.drop_identity()?,
                Action::Log(entry) => self.messages.push(entry),
                Action::RaiseFault(_) | Action::ClearFault(_) => {}
                send if exchanges < MAX_EXCHANGES => {
                    exchanges += 1;
                    let outcome = self.exchange(send).await?;
                    let now = self.now();
                    queue.extend(step(&mut self.agent, outcome, now));
                    self.save()?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn drop_identity(&mut self) -> Result<(), DeviceError> {
        self.identity = None;
        remove_if_present(&self.dir.join(IDENTITY_FILE))
    }

    /// The key of the registration in progress: made on its first attempt and kept across
    /// retries until one succeeds, so a retry after a lost answer is the same registration to
    /// the manager (same key), not a second device with the same UDI.
    fn registration_key(&self) -> Result<SigningKey, DeviceError> {
        let path = self.dir.join(REGISTRATION_KEY_FILE);
        let corrupt = |reason: String| DeviceError::Corrupt { path: path.display().to_string(), reason };
        match std::fs::read_to_string(&path) {
            Ok(pem) => SigningKey::from_pem(&pem).map_err(|e| corrupt(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key =
                    SigningKey::generate(KeyAlgorithm::Ed25519).map_err(|e| DeviceError::Invalid(e.to_string()))?;
                write_atomic(&path, key.to_pem().as_bytes())
                    .map_err(|source| DeviceError::Save { path: path.display().to_string(), source })?;
                Ok(key)
            }
            Err(e) => Err(corrupt(e.to_string())),
        }
    }

    /// A client for the configured manager, or the failure the agent should record.
    fn manager(&self) -> Result<ManagerClient, Failure> {
        let Some(url) = self.config.destination() else {
            return Err(Failure::new(FailureKind::TransportUnavailable, TRANSPORT_NOT_AVAILABLE));
        };
        // An http:// destination is accepted as configuration and fails here, as on a device.
        if url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) {
            return Err(Failure::new(FailureKind::Communication, HTTP_NOT_SUPPORTED));
        }
        let pem = self.config.trusted_pem();
        if pem.is_empty() {
            let why = "no trust point holds a CA certificate: import the manager's with crypto pki authenticate";
            return Err(Failure::new(FailureKind::Communication, why));
        }
        let base = origin(url).ok_or_else(|| Failure::new(FailureKind::Communication, format!("bad URL {url}")))?;
        // TLS trusts every trust point; answers only the licensing CA, when it is known.
        let client = ManagerClient::via(&base, &pem, self.config.active_proxy());
        match licensing_ca(&self.config) {
            Some(ca) => client.and_then(|c| c.answers_signed_by(&ca)),
            None => client,
        }
        .map_err(|e| Failure::new(FailureKind::Communication, e.to_string()))
    }

    /// Performs one `Send*` action and returns its outcome as an event.
    async fn exchange(&mut self, action: Action) -> Result<Event, DeviceError> {
        let now = self.now().0;
        let manager = match self.manager() {
            Ok(m) => m,
            Err(f) => return Ok(failed(&action, f)),
        };
        let hostname = (!self.config.hostname_privacy).then(|| self.config.hostname.clone());
        let udi = Udi { pid: self.agent.pid.clone(), sn: self.agent.sn.clone() };
        let outcome = match (&action, &self.identity) {
            (Action::SendRegister { token, force }, _) => {
                let key = self.registration_key()?;
                match manager.register_learning_ca(&key, &udi, hostname.as_deref(), token, *force, now).await {
                    Ok((answer, manager_ca)) => {
                        let identity = DeviceIdentity::from_registration(udi, hostname, key, answer.clone())
                            .with_manager_ca(manager_ca);
                        identity.save(&self.dir.join(IDENTITY_FILE))?;
                        remove_if_present(&self.dir.join(REGISTRATION_KEY_FILE))?;
                        self.identity = Some(identity);
                        Event::RegisterSucceeded(RegisterFacts {
                            instance_id: answer.instance_id,
                            smart_account: answer.smart_account,
                            virtual_account: answer.virtual_account,
                            export_controlled: answer.export_controlled,
                            certificate_serial: answer.certificate_serial,
                            certificate_expires: Timestamp(answer.certificate_expires),
                            intervals: intervals(&answer.intervals),
                        })
                    }
                    Err(e) => failed(&action, failure(e)),
                }
            }
            (_, None) => {
                failed(&action, Failure::new(FailureKind::NotRegistered, "the device holds no ID certificate"))
            }
            (Action::SendAuthorize { usage }, Some(identity)) => {
                let usage: Vec<Usage> =
                    usage.iter().map(|(tag, count)| Usage { tag: tag.clone(), count: i64::from(*count) }).collect();
                match manager.authorize(identity, &usage, now).await {
                    Ok(a) => Event::AuthSucceeded(AuthFacts {
                        status: match a.status {
                            AuthorizationStatus::Authorized => AuthAnswer::Authorized,
                            AuthorizationStatus::OutOfCompliance => AuthAnswer::OutOfCompliance,
                            AuthorizationStatus::NoLicensesInUse => AuthAnswer::NoLicensesInUse,
                        },
                        valid_until: Timestamp(a.valid_until),
                        intervals: intervals(&a.intervals),
                    }),
                    Err(e) => failed(&action, failure(e)),
                }
            }
            (Action::SendRenewId, Some(identity)) => match manager.renew_id(identity, now).await {
                Ok((key, answer)) => {
                    let mut renewed = DeviceIdentity::load(&self.dir.join(IDENTITY_FILE))?;
                    renewed.apply_renewal(key, answer.clone());
                    renewed.save(&self.dir.join(IDENTITY_FILE))?;
                    self.identity = Some(renewed);
                    Event::IdRenewSucceeded(RenewFacts {
                        certificate_serial: answer.certificate_serial,
                        certificate_expires: Timestamp(answer.certificate_expires),
                        intervals: intervals(&answer.intervals),
                    })
                }
                Err(e) => failed(&action, failure(e)),
            },
            (Action::SendDeregister, Some(identity)) => match manager.deregister(identity, now).await {
                Ok(_) => Event::DeregisterDone,
                Err(e) => Event::DeregisterFailed { reason: failure(e).reason },
            },
            (_, Some(_)) => return Err(DeviceError::Invalid(format!("not an exchange: {action:?}"))),
        };
        Ok(outcome)
    }
}

/// Removes a file of the state directory; one already gone is fine.
fn remove_if_present(path: &Path) -> Result<(), DeviceError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(DeviceError::Save { path: path.display().to_string(), source: e })
        }
        _ => Ok(()),
    }
}

/// The CA certificate that may sign the manager's answers and authorization codes before a
/// registration records one: the trust point designated for licensing, else the only trust
/// point holding a certificate. None when several hold one and none is designated; a
/// registration then records the trust point whose CA signed its answer.
pub(crate) fn licensing_ca(config: &DeviceConfig) -> Option<String> {
    let held = |t: &Trustpoint| t.certificate.clone();
    if let Some(designated) = config.trustpoints.get(LICENSING_TRUSTPOINT).and_then(held) {
        return Some(designated);
    }
    let mut held_by_any = config.trustpoints.values().filter_map(held);
    match (held_by_any.next(), held_by_any.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Sends come before dropping the identity: deregistration needs the key one last time.
fn next_action(queue: &mut VecDeque<Action>) -> Option<Action> {
    let send_first = queue.iter().position(|a| matches!(a, Action::SendDeregister));
    let drop_at = queue.iter().position(|a| matches!(a, Action::DropIdentity));
    match (send_first, drop_at) {
        (Some(s), Some(d)) if s > d => queue.remove(s),
        _ => queue.pop_front(),
    }
}

fn intervals(i: &wire::Intervals) -> Intervals {
    Intervals::from_secs(i.id_renew_secs, i.auth_renew_secs, i.auth_validity_secs)
}

/// `scheme://host:port` of a configured URL: the device protocol's paths are fixed.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// The failure event matching the exchange that failed.
fn failed(action: &Action, f: Failure) -> Event {
    match action {
        Action::SendRegister { .. } => Event::RegisterFailed(f),
        Action::SendRenewId => Event::IdRenewFailed(f),
        Action::SendDeregister => Event::DeregisterFailed { reason: f.reason },
        _ => Event::AuthFailed(f),
    }
}

/// How a client error reads on the device, and what the agent does about it.
fn failure(e: ClientError) -> Failure {
    match e {
        ClientError::Refused { code, message, field, .. } => {
            let kind = match code.as_str() {
                wire::code::UNKNOWN_INSTANCE | wire::code::CERTIFICATE_EXPIRED => FailureKind::NotRegistered,
                wire::code::INVALID_TOKEN | wire::code::ALREADY_REGISTERED | wire::code::BAD_SIGNATURE => {
                    FailureKind::Refused
                }
                _ => FailureKind::Communication,
            };
            // The manager's field-bound refusals read as its JSON body does (seed 004 #3).
            let reason = match field.as_deref() {
                Some("timestamp") => serde_json::json!({ "timestamp": [message] }).to_string(),
                _ => message,
            };
            Failure::new(kind, reason)
        }
        ClientError::BadSignature => Failure::new(FailureKind::Communication, wire::text::BAD_SIGNATURE),
        // A server that does not prove itself with a trusted certificate is not talked to.
        ClientError::Transport(detail) if detail.contains("certificate") => Failure::new(
            FailureKind::Communication,
            format!("{SEND_FAILED}: the server certificate is not trusted ({detail})"),
        ),
        ClientError::Transport(_) => Failure::new(FailureKind::Communication, SEND_FAILED),
        other => Failure::new(FailureKind::Communication, other.to_string()),
    }
}
