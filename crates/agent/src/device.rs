//! A device: the agent state machine (`smartlic_core::agent`), its configuration and its
//! identity, kept in a state directory, with the manager exchanges its actions ask for.
//!
//! The directory holds `agent.json` (state machine + configuration), `state.key` (the key of
//! the state's integrity check, owner-only) and `identity.json` (key pair and ID certificate,
//! owner-only), and while a registration is in progress its key (`registration-key.pem`,
//! owner-only). All are replaced atomically; the state is saved after every step, before
//! anything is sent, so a crash at any point resumes from a whole state.
//!
//! The evaluation cannot be rewound by editing files: a state is checked for bounds on
//! load (refused when out of them), and carries an HMAC of its exact bytes under `state.key`;
//! a state that does not verify, a sealed state whose key is gone, or an unsealed state next to
//! a key ends the evaluation ([`Event::StateTampered`]). A missing state next to a key or an
//! identity is refused: the device existed, and a fresh evaluation is not given.

use crate::client::{ClientError, ManagerClient};
use crate::config::{DeviceConfig, Trustpoint, HTTP_NOT_SUPPORTED};
use crate::identity::{DeviceIdentity, IdentityError};
use crate::persist::{write_atomic, KeyError, StateKey};
use serde::{Deserialize, Serialize};
use smartlic_core::agent::{
    next_wakeup, step, Action, Agent, AuthAnswer, AuthFacts, ConversionFacts, ConversionItem, Event, Failure,
    FailureKind, Intervals, LogEntry, RegisterFacts, RenewFacts, DEVICE_TIME_END, DEVICE_TIME_START,
    TRANSPORT_NOT_AVAILABLE,
};
use smartlic_core::{Clock, Timestamp};
use smartlic_proto::wire::{self, AuthorizationStatus, RegisterResponse, Udi, Usage};
use smartlic_proto::{KeyAlgorithm, SigningKey};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const STATE_FILE: &str = "agent.json";
const IDENTITY_FILE: &str = "identity.json";
const REGISTRATION_KEY_FILE: &str = "registration-key.pem";
const KEY_FILE: &str = "state.key";
/// The trust point the seeds designate for the licensing CA (the manager's).
pub const LICENSING_TRUSTPOINT: &str = "SLA-TrustPoint";
/// Version of `agent.json`, so a newer layout is refused rather than misread. Version 1 (before
/// the integrity check) is read once and sealed at the next save.
const STATE_VERSION: u32 = 2;
const UNSEALED_VERSION: u32 = 1;
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
    #[error("{0} holds a device whose state file {STATE_FILE} was deleted ({1} is still there): its evaluation is not started again; only deleting the whole directory makes a new device")]
    StateDeleted(String, &'static str),
    #[error("the device state in {path} is not readable: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("cannot save the device state in {path}: {source}")]
    Save { path: String, source: std::io::Error },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Invalid(String),
}

/// What `agent.json` keeps (in version 1, its whole content next to `version`).
#[derive(Serialize, Deserialize)]
struct Saved {
    agent: Agent,
    config: DeviceConfig,
}

/// The layout of `agent.json`: the state as its exact bytes, and their HMAC under `state.key`.
#[derive(Deserialize)]
struct Sealed<'a> {
    mac: String,
    #[serde(borrow)]
    state: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct Version {
    version: u32,
}

pub struct Device {
    dir: PathBuf,
    pub agent: Agent,
    pub config: DeviceConfig,
    identity: Option<DeviceIdentity>,
    clock: Box<dyn Clock>,
    /// The key sealing the state; made by the first save when there is none (new or upgraded
    /// device, or a key found missing or damaged).
    key: OnceLock<StateKey>,
    /// What opening learned about the state (tampered, or sealed from an earlier version) is
    /// not saved yet: [`save_learned`](Self::save_learned) saves it under the lock.
    learned: bool,
    /// Log lines and faults raised since the caller last took them (the daemon prints them).
    pub messages: Vec<LogEntry>,
    /// Registration exchanges run in a task of their own ([`Device::detach_registrations`]).
    detached: bool,
    /// The registration exchange under way in its task, when detached.
    registration_task: Option<JoinHandle<RegistrationReply>>,
}

/// A registration's answer with what it was sent with, from which the identity is made.
pub(crate) struct RegistrationReply {
    answer: Result<(RegisterResponse, String), ClientError>,
    key: SigningKey,
    udi: Udi,
    hostname: Option<String>,
    /// When the answer (or the failure) came.
    ended: Instant,
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
        if let Some(left) = leftover(dir) {
            return Err(DeviceError::StateDeleted(dir.display().to_string(), left));
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
            key: OnceLock::new(),
            learned: false,
            messages: Vec::new(),
            detached: false,
            registration_task: None,
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
            std::io::ErrorKind::NotFound => match leftover(dir) {
                Some(left) => DeviceError::StateDeleted(dir.display().to_string(), left),
                None => DeviceError::NotADevice(dir.display().to_string()),
            },
            _ => corrupt(e.to_string()),
        })?;
        let key_path = dir.join(KEY_FILE);
        let (key, key_problem) = match StateKey::load(&key_path) {
            Ok(key) => (key, None),
            Err(KeyError::Invalid) => (None, Some(format!("the state key {KEY_FILE} is not a key"))),
            Err(KeyError::Read(e)) => {
                return Err(DeviceError::Corrupt { path: key_path.display().to_string(), reason: e.to_string() })
            }
        };
        let (saved, learned) = unseal(&text, key.as_ref(), key_problem).map_err(corrupt)?;
        saved.agent.check_bounds().map_err(corrupt)?;
        check_clock_offset(saved.config.clock_offset_ms).map_err(corrupt)?;
        let identity = match DeviceIdentity::load(&dir.join(IDENTITY_FILE)) {
            Ok(i) => Some(i),
            Err(IdentityError::Missing(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut device = Device {
            dir: dir.to_path_buf(),
            agent: saved.agent,
            config: saved.config,
            identity,
            clock,
            key: key.map(OnceLock::from).unwrap_or_default(),
            learned: learned.is_some(),
            messages: Vec::new(),
            detached: false,
            registration_task: None,
        };
        // In memory only: the caller's next save seals it (opening changes no file). Stepped at
        // the state's own time, so that no timer comes due here, where nothing can be sent.
        if let Some(event) = learned {
            let at = device.agent.clock;
            for action in step(&mut device.agent, event, at) {
                if let Action::Log(entry) = action {
                    device.messages.push(entry);
                }
            }
        }
        Ok(device)
    }

    /// The state directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device clock: the system clock moved by `clock set`.
    pub fn now(&self) -> Timestamp {
        self.clock.now().plus_ms(self.config.clock_offset_ms)
    }

    /// Saves what opening learned, at once: a tamper stays on record (and a new key is made)
    /// even if nothing else is done, and an earlier version's state is sealed.
    pub fn save_learned(&mut self) -> Result<(), DeviceError> {
        if std::mem::take(&mut self.learned) {
            self.save()?;
        }
        Ok(())
    }

    /// Seals and writes the state. The first save makes the key: at `init`, and in a directory
    /// from before the integrity check, whose unsealed state is sealed here without an alarm.
    pub fn save(&self) -> Result<(), DeviceError> {
        let save_err = |path: PathBuf| move |source| DeviceError::Save { path: path.display().to_string(), source };
        let key = match self.key.get() {
            Some(key) => key,
            None => {
                let path = self.dir.join(KEY_FILE);
                let key = StateKey::create(&path).map_err(save_err(path))?;
                self.key.get_or_init(|| key)
            }
        };
        let saved = Saved { agent: self.agent.clone(), config: self.config.clone() };
        let state = serde_json::to_string_pretty(&saved).map_err(|e| DeviceError::Invalid(e.to_string()))?;
        let json = format!(
            "{{\n\"version\": {STATE_VERSION},\n\"mac\": \"{}\",\n\"state\": {state}\n}}\n",
            key.tag(state.as_bytes())
        );
        let path = self.dir.join(STATE_FILE);
        write_atomic(&path, json.as_bytes()).map_err(save_err(path))
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
        self.apply_at(event, self.now()).await
    }

    /// [`Device::apply`] with `event` stepped at device time `now`.
    async fn apply_at(&mut self, event: Event, now: Timestamp) -> Result<(), DeviceError> {
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
                    let outcome = match send {
                        Action::SendRegister { token, force } if self.detached => {
                            match self.start_registration(&token, force)? {
                                Ok(sending) => {
                                    // A newer attempt supersedes one still under way.
                                    if let Some(older) = self.registration_task.replace(tokio::spawn(sending)) {
                                        older.abort();
                                    }
                                    continue;
                                }
                                Err(f) => Event::RegisterFailed(f),
                            }
                        }
                        send => self.exchange(send).await?,
                    };
                    let now = self.now();
                    queue.extend(step(&mut self.agent, outcome, now));
                    self.save()?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The hostname the identity sends with every authorization follows the configuration at each
    /// contact (C-8): `hostname` or `license smart privacy hostname` after registration change what
    /// the manager is told next, and with privacy it is told none.
    fn refresh_hostname(&mut self, hostname: &Option<String>) -> Result<(), DeviceError> {
        if let Some(identity) = self.identity.as_mut().filter(|i| i.hostname != *hostname) {
            identity.hostname.clone_from(hostname);
            identity.save(&self.dir.join(IDENTITY_FILE))?;
        }
        Ok(())
    }

    /// Sessions: registration exchanges run in a task of their own, so `register` answers at once
    /// and the prompt never waits for the manager; [`Device::collect_registration`] takes
    /// their outcome. Other exchanges stay in line with the command that causes them.
    pub fn detach_registrations(&mut self) {
        self.detached = true;
    }

    /// Takes the outcome of the registration under way in its task, waiting for it at most `wait`.
    /// With a zero `wait` one not done stays under way; otherwise it is given up as a communication
    /// failure, retried on the A-5 schedule (the attempt was PENDING: a lost answer is harmless).
    pub async fn collect_registration(&mut self, wait: Duration) -> Result<(), DeviceError> {
        let Some(mut task) = self.registration_task.take() else { return Ok(()) };
        let outcome = match tokio::time::timeout(wait, &mut task).await {
            Err(_) if wait.is_zero() => {
                self.registration_task = Some(task);
                return Ok(());
            }
            Err(_) => {
                task.abort();
                let reason = format!("{SEND_FAILED}: no answer within {} seconds", wait.as_secs());
                Event::RegisterFailed(Failure::new(FailureKind::Communication, reason))
            }
            Ok(Err(panicked)) => Event::RegisterFailed(Failure::new(FailureKind::Communication, panicked.to_string())),
            Ok(Ok(reply)) => {
                // Dated when it came, not when the prompt next looked (never before the last step).
                let ago = i64::try_from(reply.ended.elapsed().as_millis()).unwrap_or(i64::MAX);
                let at = self.now().plus_ms(-ago).max(self.agent.clock);
                let outcome = self.registered(reply)?;
                return self.apply_at(outcome, at).await;
            }
        };
        self.apply(outcome).await
    }

    fn drop_identity(&mut self) -> Result<(), DeviceError> {
        // Deregistered or disabled: a registration under way is cancelled with it.
        if let Some(task) = self.registration_task.take() {
            task.abort();
        }
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
        // TLS trusts every trust point; answers only the licensing CA, when it is known.
        let client = ManagerClient::via(url, &pem, self.config.active_proxy());
        match licensing_ca(&self.config) {
            Some(ca) => client.and_then(|c| c.answers_signed_by(&ca)),
            None => client,
        }
        .map_err(|e| Failure::new(FailureKind::Communication, e.to_string()))
    }

    /// The registration exchange of `SendRegister`, or the failure to record at once (no
    /// transport, no trust point). It borrows nothing from the device, so it can run in a task.
    fn start_registration(
        &self,
        token: &str,
        force: bool,
    ) -> Result<Result<impl Future<Output = RegistrationReply> + Send + 'static, Failure>, DeviceError> {
        // The manager learns how much evaluation the device used (a tampered one reads 90 days).
        let manager = match self.manager() {
            Ok(m) => m.reporting_evaluation(self.agent.evaluation.used_ms),
            Err(f) => return Ok(Err(f)),
        };
        let key = self.registration_key()?;
        let udi = Udi { pid: self.agent.pid.clone(), sn: self.agent.sn.clone() };
        let (hostname, token, now) = (self.hostname_sent(), token.to_string(), self.now().0);
        Ok(Ok(async move {
            let answer = manager.register_learning_ca(&key, &udi, hostname.as_deref(), &token, force, now).await;
            RegistrationReply { answer, key, udi, hostname, ended: Instant::now() }
        }))
    }

    /// A registration's answer as the agent's event; on success the identity is saved first.
    fn registered(&mut self, reply: RegistrationReply) -> Result<Event, DeviceError> {
        let RegistrationReply { answer, key, udi, hostname, .. } = reply;
        let (answer, manager_ca) = match answer {
            Ok(answered) => answered,
            Err(e) => return Ok(Event::RegisterFailed(failure(e))),
        };
        let identity =
            DeviceIdentity::from_registration(udi, hostname, key, answer.clone()).with_manager_ca(manager_ca);
        identity.save(&self.dir.join(IDENTITY_FILE))?;
        remove_if_present(&self.dir.join(REGISTRATION_KEY_FILE))?;
        self.identity = Some(identity);
        Ok(Event::RegisterSucceeded(RegisterFacts {
            instance_id: answer.instance_id,
            smart_account: answer.smart_account,
            virtual_account: answer.virtual_account,
            export_controlled: answer.export_controlled,
            certificate_serial: answer.certificate_serial,
            certificate_expires: Timestamp(answer.certificate_expires),
            intervals: intervals(&answer.intervals),
        }))
    }

    /// The hostname the manager is told: none with `license smart privacy hostname`.
    fn hostname_sent(&self) -> Option<String> {
        (!self.config.hostname_privacy).then(|| self.config.hostname.clone())
    }

    /// Performs one `Send*` action and returns its outcome as an event.
    async fn exchange(&mut self, action: Action) -> Result<Event, DeviceError> {
        if let Action::SendRegister { token, force } = &action {
            return match self.start_registration(token, *force)? {
                Ok(sending) => self.registered(sending.await),
                Err(f) => Ok(Event::RegisterFailed(f)),
            };
        }
        let now = self.now().0;
        let manager = match self.manager() {
            Ok(m) => m,
            Err(f) => return Ok(failed(&action, f)),
        };
        self.refresh_hostname(&self.hostname_sent())?;
        let outcome = match (&action, &self.identity) {
            (_, None) => {
                failed(&action, Failure::new(FailureKind::NotRegistered, "the device holds no ID certificate"))
            }
            (Action::SendAuthorize { usage }, Some(identity)) => {
                let usage: Vec<Usage> =
                    usage.iter().map(|(tag, count)| Usage { tag: tag.clone(), count: i64::from(*count) }).collect();
                match manager.authorize(identity, &usage, now).await {
                    Ok(a) => Event::AuthSucceeded(AuthFacts {
                        status: auth_answer(a.status),
                        entitlements: a.entitlements.iter().map(|e| (e.tag.clone(), auth_answer(e.status))).collect(),
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
            (Action::SendConversion { legacy }, Some(identity)) => {
                let legacy: Vec<wire::LegacyLicense> = legacy
                    .iter()
                    .map(|(name, count)| wire::LegacyLicense { name: name.clone(), count: i64::from(*count) })
                    .collect();
                match manager.convert(identity, &legacy, now).await {
                    Ok(answer) => Event::ConversionSucceeded(conversion_facts(answer)),
                    Err(e) => failed(&action, failure(e)),
                }
            }
            (Action::SendDeregister, Some(identity)) => match manager.deregister(identity, now).await {
                Ok(_) => Event::DeregisterDone,
                Err(e) => Event::DeregisterFailed { reason: failure(e).reason },
            },
            (_, Some(_)) => return Err(DeviceError::Invalid(format!("not an exchange: {action:?}"))),
        };
        Ok(outcome)
    }
}

/// The state of `agent.json`, with what the agent must learn about it: that it cannot be
/// trusted and why (its HMAC does not verify under the key, its key is missing or damaged
/// (`key_problem`), or it is unsealed (version 1) while a key exists), or that it is an
/// unsealed state with no key: a directory from before the check, sealed from now on.
fn unseal(text: &str, key: Option<&StateKey>, key_problem: Option<String>) -> Result<(Saved, Option<Event>), String> {
    let version = serde_json::from_str::<Version>(text).map_err(|e| e.to_string())?.version;
    let parse = |json: &str| serde_json::from_str::<Saved>(json).map_err(|e| e.to_string());
    let tampered = |reason| Event::StateTampered { reason };
    match version {
        UNSEALED_VERSION => {
            let saved = parse(text)?;
            let replaced = || format!("{STATE_FILE} was replaced by a state without an integrity check");
            let event = match key_problem.or_else(|| key.map(|_| replaced())) {
                Some(reason) => tampered(reason),
                None => Event::StateSealed,
            };
            Ok((saved, Some(event)))
        }
        STATE_VERSION => {
            let sealed: Sealed = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let state = sealed.state.get();
            let saved = parse(state)?;
            let reason = match (key, key_problem) {
                (_, Some(problem)) => Some(problem),
                (None, None) => Some(format!("the state key {KEY_FILE} is missing")),
                (Some(key), None) if !key.verify(state.as_bytes(), &sealed.mac) => {
                    Some(format!("{STATE_FILE} was changed outside the agent"))
                }
                (Some(_), None) => None,
            };
            Ok((saved, reason.map(tampered)))
        }
        other => Err(format!("state version {other} is not {STATE_VERSION}")),
    }
}

/// The device clock's offset from the system clock (`clock set`) spans the device years at most.
fn check_clock_offset(offset_ms: i64) -> Result<(), String> {
    let span = DEVICE_TIME_END.0 - DEVICE_TIME_START.0;
    if !(-span..=span).contains(&offset_ms) {
        return Err(format!("config.clock_offset_ms is {offset_ms}: it must be between -{span} and {span}"));
    }
    Ok(())
}

/// A file that only a device that existed leaves behind, when its state is missing.
fn leftover(dir: &Path) -> Option<&'static str> {
    [KEY_FILE, IDENTITY_FILE].into_iter().find(|f| dir.join(f).exists())
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

/// The manager's authorization status as the state machine's event reads it.
pub fn auth_answer(status: AuthorizationStatus) -> AuthAnswer {
    match status {
        AuthorizationStatus::Authorized => AuthAnswer::Authorized,
        AuthorizationStatus::OutOfCompliance => AuthAnswer::OutOfCompliance,
        AuthorizationStatus::NoLicensesInUse => AuthAnswer::NoLicensesInUse,
    }
}

/// A conversion answer as the state machine keeps it: what each legacy license became.
fn conversion_facts(answer: wire::ConvertResponse) -> ConversionFacts {
    let items = answer
        .items
        .into_iter()
        .map(|i| ConversionItem {
            count: u32::try_from(i.count).unwrap_or(u32::MAX),
            converted_to: i.tag.map(|tag| format!("{} {tag}", i.quantity)),
            name: i.name,
        })
        .collect();
    ConversionFacts { already_converted: answer.already_converted, items }
}

/// The renewal intervals a manager's answer carries, as the state machine keeps them.
pub fn intervals(i: &wire::Intervals) -> Intervals {
    Intervals::from_secs(i.id_renew_secs, i.auth_renew_secs, i.auth_validity_secs)
}

/// The failure event matching the exchange that failed.
fn failed(action: &Action, f: Failure) -> Event {
    match action {
        Action::SendRegister { .. } => Event::RegisterFailed(f),
        Action::SendRenewId => Event::IdRenewFailed(f),
        Action::SendDeregister => Event::DeregisterFailed { reason: f.reason },
        Action::SendConversion { .. } => Event::ConversionFailed(f),
        _ => Event::AuthFailed(f),
    }
}

/// How a client error reads on the device, and what the agent does about it (the fleet
/// simulator classifies its exchanges with it too).
pub fn failure(e: ClientError) -> Failure {
    match e {
        ClientError::Refused { code, message, field, .. } => {
            let kind = match code.as_str() {
                wire::code::UNKNOWN_INSTANCE | wire::code::CERTIFICATE_EXPIRED => FailureKind::NotRegistered,
                wire::code::INVALID_TOKEN
                | wire::code::ALREADY_REGISTERED
                | wire::code::BAD_SIGNATURE
                | wire::code::SERVED_BY_SATELLITE
                | wire::code::CONVERSION_NOT_ENABLED
                | wire::code::CONVERSION_NOT_SUPPORTED => FailureKind::Refused,
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
