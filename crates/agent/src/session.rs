//! A device CLI session: lines in, device output out. Used by `smartlic agent -c` (one-shot
//! commands, exec and configuration alike, as on the controller of seed 000) and by the
//! interactive prompt. Before each command it runs what became due by the device clock.
//! Registrations run in the background, so `register` answers at once.

use crate::cli::{format_help, CallHomeView, Cli, ClockValue, Command, Filter, Mode, Parsed, PemCollector};
use crate::cli::{Renew, Revocation, Transport, TransportMode};
use crate::config::{CallHome, CallHomeProfile, TransportKind, Trustpoint, DEFAULT_PROFILE};
use crate::device::{Device, DeviceError};
use crate::reservation::{text as reservation_text, Outcome};
use crate::running_config;
use crate::show;
use crate::tls::ProxyConfig;
use smartlic_core::agent::Event;
use smartlic_core::Timestamp;
use std::time::Duration;

/// What a device prints after a registration made its key pair, until `write memory` (seed 004).
pub const CONFIG_NOT_SAVED: &str = "%SMART_LIC-4-CONFIG_NOT_SAVED: Smart Licensing configuration has not been saved";

/// How long a one-shot session (`-c`) waits for a registration under way before its next command
/// and before it ends: its commands run in order like a script, so `register` then `show license
/// status` shows the outcome; past this the attempt counts as failed and is retried on schedule.
pub const ONESHOT_WAIT: Duration = Duration::from_secs(10);

/// What one line produced.
#[derive(Debug, Default)]
pub struct Reply {
    /// Text to print (may be empty).
    pub output: String,
    /// The line was refused; `output` says why, in the device's words.
    pub error: bool,
    /// The session ended (`exit` at the top).
    pub exit: bool,
}

impl Reply {
    fn text(output: impl Into<String>) -> Reply {
        Reply { output: output.into(), ..Reply::default() }
    }

    fn refused(output: impl Into<String>) -> Reply {
        Reply { output: output.into(), error: true, exit: false }
    }
}

pub struct Session {
    pub device: Device,
    cli: Cli,
    pub mode: Mode,
    /// `crypto pki authenticate NAME` under way: the trust point and the PEM read so far.
    pem: Option<(String, PemCollector)>,
    /// One-shot sessions accept configuration commands without `configure terminal`.
    oneshot: bool,
    /// Lines are typed on a terminal that shows them: errors print the `^` marker under the
    /// typed line, not the line again.
    echoed: bool,
    /// `reservation return` asked "Do you want to continue?"; the next line answers it.
    confirming_return: bool,
}

impl Session {
    /// A session on `device`; its registrations run in the background (A-4: `register` answers at
    /// once, and the prompt never waits for an unreachable manager).
    pub fn new(mut device: Device, oneshot: bool) -> Session {
        device.detach_registrations();
        Session {
            device,
            cli: Cli::new(),
            mode: Mode::Exec,
            pem: None,
            oneshot,
            confirming_return: false,
            echoed: false,
        }
    }

    /// The lines come from a terminal that shows what is typed (the interactive prompt).
    pub fn typed_on_terminal(&mut self) {
        self.echoed = true;
    }

    pub fn prompt(&self) -> String {
        if self.pem.is_some() {
            return String::new();
        }
        if self.confirming_return {
            return reservation_text::CONTINUE.to_string();
        }
        self.mode.prompt(&self.device.config.hostname)
    }

    /// Whether the session is reading a pasted certificate rather than commands.
    pub fn reading_pem(&self) -> bool {
        self.pem.is_some()
    }

    /// Handles one input line. A registration under way is taken first: a one-shot session waits
    /// for it (at most [`ONESHOT_WAIT`]), the interactive prompt takes it only once it is done; what
    /// it raised (`CONFIG_NOT_SAVED`) comes before the line's own output.
    pub async fn line(&mut self, line: &str) -> Result<Reply, DeviceError> {
        let settled = self.settle(if self.oneshot { ONESHOT_WAIT } else { Duration::ZERO }).await?;
        let mut reply = self.handle(line).await?;
        if !settled.is_empty() {
            reply.output = format!("{settled}\n{}", reply.output);
        }
        Ok(reply)
    }

    /// Ends the session: waits for a registration under way (at most [`ONESHOT_WAIT`]), as the
    /// process is about to end; returns what it raised, to print.
    pub async fn close(&mut self) -> Result<String, DeviceError> {
        self.settle(ONESHOT_WAIT).await
    }

    /// Takes the outcome of a registration under way, waiting at most `wait`.
    async fn settle(&mut self, wait: Duration) -> Result<String, DeviceError> {
        let key_before = self.identity_serial();
        self.device.collect_registration(wait).await?;
        let mut reply = Reply::default();
        self.key_generated(key_before, &mut reply)?;
        Ok(reply.output)
    }

    async fn handle(&mut self, line: &str) -> Result<Reply, DeviceError> {
        if let Some((name, collector)) = self.pem.as_mut() {
            if !collector.push(line) {
                return Ok(Reply::default());
            }
            let (name, pem) = (name.clone(), collector.text());
            self.pem = None;
            return self.import_ca(&name, &pem);
        }
        if std::mem::take(&mut self.confirming_return) {
            if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
                return Ok(reply_of(self.device.reservation_return().await?));
            }
            return Ok(Reply::default());
        }
        let key_before = self.identity_serial();
        self.device.run_due().await?;
        let parsed = Filter::split(line).and_then(|(command, filter)| {
            let (mode, parsed) = self.cli.parse_in(&self.mode, command, self.oneshot)?;
            Ok((mode, parsed, filter))
        });
        let (mode, command, filter) = match parsed {
            Ok((_, Parsed::Empty, _)) => return Ok(Reply::default()),
            Ok((_, Parsed::Help(items), _)) => return Ok(Reply::text(format_help(&items))),
            Ok((mode, Parsed::Command(c), filter)) => (mode, c, filter),
            Err(e) if self.echoed => {
                // The typed line is on screen after the prompt: the marker goes under it.
                return Ok(Reply::refused(e.render_after_prompt(self.prompt().chars().count())));
            }
            Err(e) => return Ok(Reply::refused(e.to_string())),
        };
        // A line of a parent mode left the sub-mode (IOS): it runs in the parent.
        self.mode = mode;
        let mut reply = self.execute(&command).await?;
        if !reply.error {
            self.record(&command)?;
        }
        self.key_generated(key_before, &mut reply)?;
        if let Some(filter) = filter {
            reply.output = filter.apply(&reply.output);
        }
        match self.mode.after(&command) {
            Some(next) => self.mode = next,
            None => return Ok(Reply { exit: true, ..reply }),
        }
        Ok(reply)
    }

    /// The serial of the device's ID certificate: a new one comes with a new key pair.
    fn identity_serial(&self) -> Option<String> {
        self.device.agent.registration.registered().map(|r| r.certificate_serial.clone())
    }

    /// Keeps a configuration command in the running configuration.
    fn record(&mut self, command: &Command) -> Result<(), DeviceError> {
        let Some(edit) = running_config::edit(&self.mode, command) else { return Ok(()) };
        let now = self.device.now();
        if self.device.config.running.apply(&edit, now) {
            self.device.save()?;
        }
        Ok(())
    }

    /// A registration (or ID renewal) made a key pair: part of the configuration on a device,
    /// so the running configuration differs from the startup one until `write memory`, and the
    /// device says so (seed 004).
    fn key_generated(&mut self, before: Option<String>, reply: &mut Reply) -> Result<(), DeviceError> {
        let after = self.identity_serial();
        if after.is_none() || after == before {
            return Ok(());
        }
        let now = self.device.now();
        self.device.config.running.touch(now);
        self.device.save()?;
        if !reply.output.is_empty() && !reply.output.ends_with('\n') {
            reply.output.push('\n');
        }
        reply.output.push_str(CONFIG_NOT_SAVED);
        Ok(())
    }

    /// Applies a call-home change; one refused (a second profile for licensing) changes nothing.
    /// `destination`: the change added (or with `true`, removed) this URL, which makes call home
    /// the transport.
    async fn call_home(
        &mut self,
        change: impl FnOnce(&mut CallHome) -> Result<(), String>,
        destination: Option<(String, bool)>,
    ) -> Result<Reply, DeviceError> {
        if let Err(why) = change(&mut self.device.config.call_home) {
            return Ok(Reply::refused(why));
        }
        if let Some((url, remove)) = destination {
            // The last manager URL configured in any form serves the forms that name none
            // (`license smart transport-mode smart-licensing`).
            let t = &mut self.device.config.transport;
            t.kind = TransportKind::Callhome;
            if !remove {
                t.url = Some(url);
            } else if t.url.as_deref() == Some(url.as_str()) {
                t.url = None;
            }
        }
        self.device.transport_changed().await?;
        Ok(Reply::default())
    }

    /// The profile a `cfg-call-home-profile` command applies to.
    fn profile(&self) -> String {
        match &self.mode {
            Mode::CallHomeProfile(name) => name.clone(),
            _ => DEFAULT_PROFILE.to_string(),
        }
    }

    async fn execute(&mut self, command: &Command) -> Result<Reply, DeviceError> {
        let d = &mut self.device;
        let now = d.now();
        let reply = match command {
            Command::ShowLicense(view) => Reply::text(show::render(view, &d.agent, &d.config, now)),
            Command::ShowClock => Reply::text(show::show_clock(now)),
            Command::ShowHostnamePrivacy => Reply::text(show::show_hostname_privacy(&d.config)),
            Command::Register { token, force } => {
                if !plausible_token(token) {
                    return Ok(Reply::refused(
                        "% Invalid ID token: a registration token is 1 to 512 base64 characters (copy it whole from the manager)",
                    ));
                }
                if d.agent.registration.reserved().is_some() {
                    return Ok(Reply::refused(
                        "% A license reservation is installed: return it first (license smart reservation return local)",
                    ));
                }
                if d.agent.reservation.request.is_some() {
                    return Ok(Reply::refused(
                        "% A reservation request is in progress: license smart reservation cancel drops it",
                    ));
                }
                d.apply(Event::Register { token: token.clone(), force: *force }).await?;
                Reply::text("Registration process is in progress. Use the 'show license status' command to check the progress and result")
            }
            Command::Deregister => {
                d.apply(Event::Deregister).await?;
                Reply::default()
            }
            Command::Renew(Renew::Id) => {
                d.apply(Event::RenewId).await?;
                Reply::default()
            }
            Command::Renew(Renew::Auth) => {
                d.apply(Event::RenewAuth).await?;
                Reply::default()
            }
            Command::ReservationEnable(on) => reply_of(d.reservation_enable(*on).await?),
            Command::ReservationRequest(kind) => reply_of(d.reservation_request(*kind).await?),
            Command::ReservationInstall { code, file } => {
                let code = if *file {
                    match std::fs::read_to_string(code) {
                        Ok(text) => text,
                        Err(e) => {
                            return Ok(Reply::refused(format!(
                                "{}: cannot read {code}: {e}",
                                reservation_text::INSTALL_FAILED
                            )))
                        }
                    }
                } else {
                    unquote(code).to_string()
                };
                reply_of(d.reservation_install(&code).await?)
            }
            Command::ReservationReturn { authorization: Some(code), .. } => {
                reply_of(d.reservation_return_authorization(unquote(code)).await?)
            }
            Command::ReservationReturn { authorization: None, force } => {
                if d.agent.registration.reserved().is_none() {
                    return Ok(Reply::refused(reservation_text::NOT_INSTALLED));
                }
                if *force {
                    reply_of(d.reservation_return().await?)
                } else if self.oneshot {
                    return Ok(Reply::refused(
                        "% Confirmation needed: add 'force' to return without the question (license smart reservation return local force)",
                    ));
                } else {
                    self.confirming_return = true;
                    Reply::text(reservation_text::RETURN_WARNING)
                }
            }
            Command::ReservationCancel => reply_of(d.reservation_cancel().await?),
            Command::Conversion(true) => {
                if !d.agent.registration.is_registered() {
                    return Ok(Reply::refused(
                        "% Smart Licensing is not registered: register the device before converting its licenses",
                    ));
                }
                let via_satellite = d.config.transport.kind == TransportKind::Satellite;
                d.apply(Event::ConversionStart { via_satellite }).await?;
                Reply::text("Smart License Conversion process is in progress. Use the 'show license status' command to check the progress and result")
            }
            Command::Conversion(false) => {
                d.apply(Event::ConversionStop).await?;
                Reply::default()
            }
            Command::ClockSet(value) => {
                d.set_clock(clock_value(value)).await?;
                Reply::default()
            }
            Command::WriteMemory => {
                d.config.running.save(now);
                d.save()?;
                Reply::text("Building configuration...\n[OK]")
            }
            Command::ShowRunningConfig { callhome } => {
                Reply::text(running_config::show_running_config(&d.config, *callhome, now))
            }
            Command::ShowCallHome(CallHomeView::Summary) => Reply::text(running_config::show_call_home(&d.config)),
            Command::ShowCallHome(CallHomeView::SmartLicensing) => {
                Reply::text(running_config::show_call_home_smart_licensing(&d.config))
            }
            Command::ShowCallHome(CallHomeView::Profile(name)) => {
                Reply::text(running_config::show_call_home_profile(&d.config, name.as_deref()))
            }
            Command::ShowTrustpoints => Reply::text(running_config::show_trustpoints(&d.config)),
            Command::Probe(line) => Reply::text(format!(
                "% {line}: a simulated device has no network interfaces of its own; run it from the host, \
                 and see show license status for whether the manager answers"
            )),
            Command::ServiceCallHome(on) => {
                d.config.call_home.service = Some(*on);
                d.transport_changed().await?;
                Reply::default()
            }
            Command::CallhomeEnable(on) => {
                d.config.call_home.enable = Some(*on);
                d.transport_changed().await?;
                Reply::default()
            }
            Command::ContactEmail(email) | Command::EmailContact(email) => {
                d.config.call_home.contact_email = Some(email.clone());
                Reply::default()
            }
            Command::PhoneContact(phone) => {
                d.config.call_home.phone = Some(phone.clone());
                Reply::default()
            }
            Command::StreetAddress(street) => {
                d.config.call_home.street = Some(street.clone());
                Reply::default()
            }
            Command::UseVrf(vrf) => {
                d.config.call_home.vrf = Some(vrf.clone());
                Reply::default()
            }
            Command::CallHomeProfile(name) => {
                let name = name.clone();
                return self.call_home(|c| c.change_profile(&name, |_| {}), None).await;
            }
            Command::ProfileActive(on) => {
                let (name, on) = (self.profile(), *on);
                return self.call_home(|c| c.change_profile(&name, |p| p.active = Some(on)), None).await;
            }
            Command::ReportingSmartLicensing(on) => {
                let (name, on) = (self.profile(), *on);
                return self.call_home(|c| c.change_profile(&name, |p| p.reporting = Some(on)), None).await;
            }
            Command::DestinationTransportHttp | Command::DestinationProfileTransportHttp { .. } => {
                let name = match command {
                    Command::DestinationProfileTransportHttp { profile } => profile.clone(),
                    _ => self.profile(),
                };
                return self.call_home(|c| c.change_profile(&name, |p| p.transport_http = true), None).await;
            }
            Command::DestinationAddress { url, remove } | Command::DestinationProfileHttp { url, remove, .. } => {
                let name = match command {
                    Command::DestinationProfileHttp { profile, .. } => profile.clone(),
                    _ => self.profile(),
                };
                let (url, remove) = (url.clone(), *remove);
                let added = url.clone();
                let change = |p: &mut CallHomeProfile| {
                    p.urls.retain(|u| *u != added);
                    if !remove {
                        p.urls.push(added);
                    }
                };
                return self.call_home(|c| c.change_profile(&name, change), Some((url, remove))).await;
            }
            Command::SmartEnable(on) => {
                d.apply(if *on { Event::Enable } else { Event::Disable }).await?;
                Reply::default()
            }
            Command::SmartUrl(url) => self.set_destination(TransportKind::Smart, url.clone()).await?,
            Command::SmartServer(server) => {
                let url = server.as_ref().map(|(addr, port)| match port {
                    Some(p) => with_port(addr, *p),
                    None => addr.clone(),
                });
                self.set_destination(TransportKind::Smart, url).await?
            }
            Command::SmartTransport(t) => {
                self.device.config.transport.kind = match t {
                    Some(Transport::Off) => TransportKind::Off,
                    Some(Transport::Callhome) => TransportKind::Callhome,
                    Some(Transport::Smart) | None => TransportKind::Smart,
                };
                self.device.transport_changed().await?;
                Reply::default()
            }
            Command::TransportMode(mode) => {
                let t = &mut self.device.config.transport;
                match mode {
                    Some(TransportMode::SmartLicensing) | None => {
                        t.kind = TransportKind::Smart;
                        t.proxy_enabled = false;
                    }
                    Some(TransportMode::Satellite { url }) => {
                        t.kind = TransportKind::Satellite;
                        t.url = Some(url.clone());
                    }
                    Some(TransportMode::Proxy { host, port }) => {
                        t.proxy = Some(ProxyConfig { host: host.clone(), port: *port, username: None, password: None });
                        t.proxy_enabled = true;
                    }
                }
                self.device.transport_changed().await?;
                Reply::default()
            }
            Command::ProxyServer(server) => {
                let t = &mut self.device.config.transport;
                t.proxy = server.as_ref().map(|(host, port)| ProxyConfig {
                    host: host.clone(),
                    port: *port,
                    username: None,
                    password: None,
                });
                self.device.save()?;
                Reply::default()
            }
            Command::ProxyCredentials(credentials) => {
                let Some(proxy) = self.device.config.transport.proxy.as_mut() else {
                    return Ok(Reply::refused("% Configure the proxy first: transport http proxy server HOST port N"));
                };
                (proxy.username, proxy.password) = match credentials {
                    Some((user, password)) => (Some(user.clone()), Some(password.clone())),
                    None => (None, None),
                };
                self.device.save()?;
                Reply::default()
            }
            Command::ProxyEnable(on) => {
                self.device.config.transport.proxy_enabled = *on;
                self.device.save()?;
                Reply::default()
            }
            Command::Feature { tag, count } => {
                if count.is_some() && !d.config.catalog.is_empty() && !d.config.catalog.contains_key(tag) {
                    return Ok(Reply::refused(format!(
                        "% Entitlement tag \"{tag}\" is not in this product's catalogue (show license catalog)"
                    )));
                }
                d.apply(Event::SetUsage { tag: tag.clone(), count: count.unwrap_or(0) }).await?;
                Reply::default()
            }
            Command::Legacy { name, count } => {
                d.apply(Event::SetLegacy { name: name.clone(), count: count.unwrap_or(0) }).await?;
                Reply::default()
            }
            Command::Hostname(name) => {
                d.config.hostname = name.clone();
                d.save()?;
                Reply::default()
            }
            Command::PrivacyHostname(on) => {
                d.config.hostname_privacy = *on;
                d.save()?;
                Reply::default()
            }
            Command::Trustpoint(name) => {
                d.config.trustpoints.entry(name.clone()).or_default();
                d.save()?;
                Reply::default()
            }
            Command::NoTrustpoint(name) => {
                d.config.trustpoints.remove(name);
                d.save()?;
                Reply::default()
            }
            Command::EnrollmentTerminal | Command::RevocationCheck(_) => {
                let Mode::Trustpoint(name) = &self.mode else { return Ok(Reply::default()) };
                let tp = d.config.trustpoints.entry(name.clone()).or_default();
                match command {
                    Command::EnrollmentTerminal => tp.enrollment_terminal = true,
                    _ => tp.revocation_check_none = matches!(command, Command::RevocationCheck(Revocation::None)),
                }
                d.save()?;
                Reply::default()
            }
            Command::Authenticate(name) => {
                if !d.config.trustpoints.contains_key(name) {
                    return Ok(Reply::refused(format!(
                        "% Trustpoint {name} is not defined (crypto pki trustpoint {name})"
                    )));
                }
                self.pem = Some((name.clone(), PemCollector::default()));
                Reply::text(PemCollector::PROMPT.join("\n"))
            }
            // Accepted as on the device; they do not change licensing.
            _ => Reply::default(),
        };
        Ok(reply)
    }

    /// `license smart url` / `server`: an `http://` URL is accepted and fails when the device
    /// connects (see [`crate::config::HTTP_NOT_SUPPORTED`]).
    async fn set_destination(&mut self, kind: TransportKind, url: Option<String>) -> Result<Reply, DeviceError> {
        let t = &mut self.device.config.transport;
        t.kind = kind;
        t.url = url;
        self.device.transport_changed().await?;
        Ok(Reply::default())
    }

    /// Every certificate of the PEM must have a key the device verifies with (RSA, P-256,
    /// P-384, Ed25519: see [`smartlic_proto::cert`]) and be one TLS can anchor on.
    fn import_ca(&mut self, name: &str, pem: &str) -> Result<Reply, DeviceError> {
        let checked = smartlic_proto::cert::certificates_of_bundle(pem)
            .map_err(|e| e.to_string())
            .and_then(|_| crate::tls::root_store(pem).map_err(|e| e.to_string()));
        if let Err(e) = checked {
            return Ok(Reply::refused(format!("% Error in the certificate: {e}; nothing imported")));
        }
        let tp: &mut Trustpoint = self.device.config.trustpoints.entry(name.to_string()).or_default();
        tp.certificate = Some(pem.to_string());
        self.device.save()?;
        Ok(Reply::text(format!(
            "Trustpoint '{name}' is a self-signed CA certificate.\n% Certificate successfully imported"
        )))
    }
}

/// Tokens are base64 text (public facts §2.4; the YANG model allows up to 255 characters, some
/// products 512); anything else cannot be one, and is refused before a registration starts.
fn plausible_token(token: &str) -> bool {
    (1..=512).contains(&token.len())
        && token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '%'))
}

fn reply_of(outcome: Outcome) -> Reply {
    match outcome {
        Ok(text) => Reply::text(text),
        Err(text) => Reply::refused(text),
    }
}

/// A code pasted in double quotes, as the device documentation writes it.
fn unquote(code: &str) -> &str {
    let code = code.trim();
    code.strip_prefix('"').and_then(|c| c.strip_suffix('"')).unwrap_or(code)
}

fn clock_value(v: &ClockValue) -> Timestamp {
    Timestamp(v.unix_seconds() * 1000)
}

/// `license smart server URL port N`: the port goes into the URL's authority.
fn with_port(url: &str, port: u16) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let path = if path.is_empty() { String::new() } else { format!("/{path}") };
            format!("{scheme}://{host}:{port}{path}")
        }
        None => format!("https://{url}:{port}"),
    }
}
