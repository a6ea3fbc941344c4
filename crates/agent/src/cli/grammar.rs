//! The command tree of the smart agent: every command of issue 3 / A-13 as one pattern, per
//! mode, with the builder that resolves it. Keyword help texts live in one table.

use super::{Bag, Build, CliError, HelpFn, Parsed, Reject, Tree, Value};
/// `license smart reservation request universal|specific|local` names the kind of the state machine.
pub use smartlic_core::agent::ReservationKind;

/// A CLI mode; sub-modes carry the name they were entered with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `H#`
    Exec,
    /// `H(config)#`
    Config,
    /// IOS-XE campus style `call-home`: `H(cfg-call-home)#`.
    CallHome,
    /// `profile "NAME"` under `call-home`: `H(cfg-call-home-profile)#`.
    CallHomeProfile(String),
    /// NX-OS switch style `callhome`: `H(config-callhome)#`.
    Callhome,
    /// `crypto pki trustpoint NAME`: `H(ca-trustpoint)#`.
    Trustpoint(String),
}

impl Mode {
    /// The prompt, as the seeds print it.
    pub fn prompt(&self, hostname: &str) -> String {
        let sub = match self {
            Mode::Exec => return format!("{hostname}#"),
            Mode::Config => "config",
            Mode::CallHome => "cfg-call-home",
            Mode::CallHomeProfile(_) => "cfg-call-home-profile",
            Mode::Callhome => "config-callhome",
            Mode::Trustpoint(_) => "ca-trustpoint",
        };
        format!("{hostname}({sub})#")
    }

    /// The mode `exit` returns to; `None` from exec (the session ends).
    pub fn parent(&self) -> Option<Mode> {
        match self {
            Mode::Exec => None,
            Mode::Config => Some(Mode::Exec),
            Mode::CallHomeProfile(_) => Some(Mode::CallHome),
            Mode::CallHome | Mode::Callhome | Mode::Trustpoint(_) => Some(Mode::Config),
        }
    }

    /// The mode after `cmd` ran in this mode; `None` when the session ends (`exit` in exec).
    pub fn after(&self, cmd: &Command) -> Option<Mode> {
        Some(match cmd {
            Command::Exit => return self.parent(),
            Command::End => Mode::Exec,
            Command::ConfigureTerminal => Mode::Config,
            Command::CallHome => Mode::CallHome,
            Command::Callhome => Mode::Callhome,
            Command::CallHomeProfile(name) => Mode::CallHomeProfile(name.clone()),
            Command::Trustpoint(name) => Mode::Trustpoint(name.clone()),
            _ => self.clone(),
        })
    }

    const ALL: [Mode; 6] = [
        Mode::Exec,
        Mode::Config,
        Mode::CallHome,
        Mode::CallHomeProfile(String::new()),
        Mode::Callhome,
        Mode::Trustpoint(String::new()),
    ];

    fn index(&self) -> usize {
        match self {
            Mode::Exec => 0,
            Mode::Config => 1,
            Mode::CallHome => 2,
            Mode::CallHomeProfile(_) => 3,
            Mode::Callhome => 4,
            Mode::Trustpoint(_) => 5,
        }
    }
}

/// `show license …` views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenseView {
    All,
    Status,
    Summary,
    Usage,
    TechSupport,
    Mode,
    Server,
    Catalog,
    Udi,
    Eventlog,
}

/// `show call-home …` views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallHomeView {
    /// `show call-home`
    Summary,
    /// `show call-home profile all` (`None`) or `show call-home profile NAME`.
    Profile(Option<String>),
    /// `show call-home smart-licensing`
    SmartLicensing,
}

/// `license smart renew id|auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renew {
    Id,
    Auth,
}

/// Controller-style transport (seed 000): `license smart transport-mode …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportMode {
    /// Direct to the cloud.
    SmartLicensing,
    /// Transport gateway or satellite at this URL.
    Satellite { url: String },
    /// HTTP(S) proxy; `host` is an IP address or a host name.
    Proxy { host: String, port: u16 },
}

/// IOS-XE `license smart transport callhome|smart|off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Callhome,
    Smart,
    Off,
}

/// `revocation-check none|crl|crl none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    None,
    Crl,
    CrlNone,
}

/// A validated `clock set` value (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockValue {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl ClockValue {
    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        days_from_civil(i64::from(self.year), u32::from(self.month), u32::from(self.day)) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        // A tuple match rather than `is_multiple_of`, which needs Rust 1.87 (README: 1.85).
        2 if matches!((year % 4, year % 100, year % 400), (0, 1.., _) | (_, _, 0)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A fully resolved command. `Option`/`bool` fields carry the `no` forms: `None`/`false` is
/// the `no` form (back to the default, or removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    // ---- exec
    ShowLicense(LicenseView),
    ShowHostnamePrivacy,
    ShowClock,
    /// `show running-config [all|callhome]`
    ShowRunningConfig {
        callhome: bool,
    },
    ShowCallHome(CallHomeView),
    ShowTrustpoints,
    Register {
        token: String,
        force: bool,
    },
    Deregister,
    Renew(Renew),
    /// `license smart conversion start` (`true`) / `stop` (`false`): device-led conversion (V-1).
    Conversion(bool),
    ReservationRequest(ReservationKind),
    /// `reservation install CODE` or `reservation install file PATH` (`file`: `code` is the path).
    ReservationInstall {
        code: String,
        file: bool,
    },
    /// `reservation return [local] [force]` (`None`) or `reservation return authorization CODE`;
    /// `force` skips the confirmation question (one-shot sessions need it).
    ReservationReturn {
        authorization: Option<String>,
        force: bool,
    },
    /// `[no] license smart reservation` (configuration).
    ReservationEnable(bool),
    ReservationCancel,
    ClockSet(ClockValue),
    ConfigureTerminal,
    /// `write memory` or `copy running-config startup-config`.
    WriteMemory,
    /// `exit`: to the parent mode (see [`Mode::after`]).
    Exit,
    /// `end`: back to exec.
    End,
    /// `ping …` and `telnet …` (exec, and configuration mode as on NX-OS): reachability checks
    /// that a simulated device, without interfaces of its own, answers with a note.
    Probe(String),
    // ---- config
    /// `version TEXT`: the first line of an NX-OS configuration, accepted when a saved one is
    /// pasted back; not kept (the device shows its own version).
    Version,
    /// A line of another subsystem (`ip name-server`, `ip host`, ...): kept in the running
    /// configuration as entered, without effect on licensing; `remove` for the `no` form.
    Kept {
        line: String,
        remove: bool,
    },
    SmartEnable(bool),
    SmartUrl(Option<String>),
    SmartTransport(Option<Transport>),
    TransportMode(Option<TransportMode>),
    /// `license smart server URL [port N]`; `None` = `no license smart server`.
    SmartServer(Option<(String, Option<u16>)>),
    /// `license feature "TAG" count N`; `count: None` = `no license feature "TAG"`.
    Feature {
        tag: String,
        count: Option<u32>,
    },
    /// `license legacy "NAME" count N`: a legacy license the simulated device holds, reported by
    /// device-led conversion; `count: None` = `no license legacy "NAME"`.
    Legacy {
        name: String,
        count: Option<u32>,
    },
    Hostname(String),
    PrivacyHostname(bool),
    ServiceCallHome(bool),
    /// Enters `cfg-call-home`.
    CallHome,
    /// Enters `config-callhome` (NX-OS).
    Callhome,
    /// Enters `ca-trustpoint` for NAME.
    Trustpoint(String),
    NoTrustpoint(String),
    /// `crypto pki authenticate NAME`: the caller must now read the PEM ([`Command::wants_pem`]).
    Authenticate(String),
    // ---- cfg-call-home
    ContactEmail(String),
    /// Enters `cfg-call-home-profile`.
    CallHomeProfile(String),
    // ---- cfg-call-home-profile
    ProfileActive(bool),
    DestinationTransportHttp,
    /// `destination address http URL`; `remove` for the `no` form.
    DestinationAddress {
        url: String,
        remove: bool,
    },
    ReportingSmartLicensing(bool),
    // ---- config-callhome (NX-OS)
    CallhomeEnable(bool),
    EmailContact(String),
    DestinationProfileTransportHttp {
        profile: String,
    },
    /// `[no] destination-profile P [index N] http URL`
    DestinationProfileHttp {
        profile: String,
        index: Option<u8>,
        url: String,
        remove: bool,
    },
    /// `transport http proxy server HOST port N`; `None` for the `no` form.
    ProxyServer(Option<(String, u16)>),
    ProxyEnable(bool),
    /// `transport http proxy username U password P`; `None` for the `no` form.
    ProxyCredentials(Option<(String, String)>),
    UseVrf(String),
    PhoneContact(String),
    StreetAddress(String),
    // ---- ca-trustpoint
    EnrollmentTerminal,
    RevocationCheck(Revocation),
}

impl Command {
    /// Whether the caller must read a pasted PEM next (with [`super::PemCollector`]).
    pub fn wants_pem(&self) -> bool {
        matches!(self, Command::Authenticate(_))
    }
}

type Entry = (&'static str, Build<Command>);

fn no(b: &Bag) -> bool {
    b.has("no")
}

fn port(b: &Bag) -> u16 {
    b.int("port").map_or(0, |p| p as u16)
}

/// `clock set` in either order (`DD Mon` / `Mon DD`); an impossible date points at the day.
fn clock(b: &Bag) -> Result<Command, Reject> {
    let Some(Value::Time(hour, minute, second)) = b.value("time").cloned() else { return Err("time") };
    let (year, month, day) =
        (b.int("year").unwrap_or(0) as u16, b.int("month").unwrap_or(0) as u8, b.int("day").unwrap_or(0) as u8);
    if day > days_in_month(year, month) {
        return Err("day");
    }
    Ok(Command::ClockSet(ClockValue { year, month, day, hour, minute, second }))
}

/// IOS host names: letters, digits, hyphens; start with a letter; at most 63 characters.
fn hostname(b: &Bag) -> Result<Command, Reject> {
    let name = b.text("name");
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(Command::Hostname(name))
    } else {
        Err("name")
    }
}

fn show_license(b: &Bag) -> Result<Command, Reject> {
    use LicenseView::*;
    Ok(Command::ShowLicense(match b.after("license") {
        Some("all") => All,
        Some("status") => Status,
        Some("summary") => Summary,
        Some("usage") => Usage,
        Some("tech") => TechSupport,
        Some("mode") => Mode,
        Some("server") => Server,
        Some("catalog") => Catalog,
        Some("udi") => Udi,
        _ => Eventlog,
    }))
}

/// Exec commands; the `license smart` actions are also accepted in configuration mode, as on
/// the controller of seed 000 (`apic1(config)# license smart register idtoken …`).
static LICENSE_ACTIONS: &[Entry] = &[
    ("license smart register idtoken <token:WORD> [force]", |b| {
        Ok(Command::Register { token: b.text("token"), force: b.has("force") })
    }),
    ("license smart deregister", |_| Ok(Command::Deregister)),
    ("license smart renew {id|auth}", |b| Ok(Command::Renew(if b.has("id") { Renew::Id } else { Renew::Auth }))),
    ("license smart reservation request {universal|specific|local}", |b| {
        Ok(Command::ReservationRequest(if b.has("universal") {
            ReservationKind::Universal
        } else {
            ReservationKind::Specific
        }))
    }),
    ("license smart reservation install file <path:WORD>", |b| {
        Ok(Command::ReservationInstall { code: b.text("path"), file: true })
    }),
    ("license smart reservation install <code:LINE>", |b| {
        Ok(Command::ReservationInstall { code: b.text("code"), file: false })
    }),
    ("license smart reservation return [local] [force]", |b| {
        Ok(Command::ReservationReturn { authorization: None, force: b.has("force") })
    }),
    ("license smart reservation return authorization <code:LINE>", |b| {
        Ok(Command::ReservationReturn { authorization: b.opt_text("code"), force: true })
    }),
    ("license smart reservation cancel", |_| Ok(Command::ReservationCancel)),
    ("license smart conversion {start|stop}", |b| Ok(Command::Conversion(b.has("start")))),
];

static EXEC: &[Entry] = &[
    ("show license {all|status|summary|usage|mode|server|catalog|udi|eventlog|tech support}", show_license),
    ("show hostname privacy", |_| Ok(Command::ShowHostnamePrivacy)),
    ("show clock", |_| Ok(Command::ShowClock)),
    ("show running-config [all|callhome]", |b| Ok(Command::ShowRunningConfig { callhome: b.has("callhome") })),
    ("show call-home", |_| Ok(Command::ShowCallHome(CallHomeView::Summary))),
    ("show call-home smart-licensing", |_| Ok(Command::ShowCallHome(CallHomeView::SmartLicensing))),
    ("show call-home profile {all|<profile:STRING>}", |b| {
        Ok(Command::ShowCallHome(CallHomeView::Profile(b.opt_text("profile"))))
    }),
    ("show crypto pki trustpoints", |_| Ok(Command::ShowTrustpoints)),
    ("clock set <time:TIME> {<day:1-31> <month:MONTH>|<month:MONTH> <day:1-31>} <year:1993-2035>", clock),
    ("configure [terminal]", |_| Ok(Command::ConfigureTerminal)),
    ("write [memory]", |_| Ok(Command::WriteMemory)),
    ("copy running-config startup-config", |_| Ok(Command::WriteMemory)),
    ("exit", |_| Ok(Command::Exit)),
];

/// Reachability checks, in exec and configuration mode (seed 003 runs them in `(config)#`).
static PROBES: &[Entry] = &[
    ("ping <host:HOST> [vrf <vrf:WORD>]", |b| Ok(Command::Probe(b.canonical()))),
    ("telnet <host:HOST> [<port:1-65535>] [vrf <vrf:WORD>] [/source-interface <interface:WORD>]", |b| {
        Ok(Command::Probe(b.canonical()))
    }),
];

fn kept(b: &Bag) -> Result<Command, Reject> {
    Ok(Command::Kept { line: b.canonical(), remove: no(b) })
}

/// `exit` and `end`, in every configuration mode.
static LEAVE: &[Entry] = &[("exit", |_| Ok(Command::Exit)), ("end", |_| Ok(Command::End))];

static CONFIG: &[Entry] = &[
    ("[no] license smart enable", |b| Ok(Command::SmartEnable(!no(b)))),
    ("[no] license smart reservation", |b| Ok(Command::ReservationEnable(!no(b)))),
    ("license smart url <url:URL>", |b| Ok(Command::SmartUrl(Some(b.text("url"))))),
    ("no license smart url [<url:URL>]", |_| Ok(Command::SmartUrl(None))),
    ("license smart transport {callhome|smart|off}", |b| {
        Ok(Command::SmartTransport(Some(match b.after("transport") {
            Some("callhome") => Transport::Callhome,
            Some("smart") => Transport::Smart,
            _ => Transport::Off,
        })))
    }),
    ("no license smart transport", |_| Ok(Command::SmartTransport(None))),
    ("license smart transport-mode smart-licensing", |_| {
        Ok(Command::TransportMode(Some(TransportMode::SmartLicensing)))
    }),
    ("license smart transport-mode satellite url <url:URL>", |b| {
        Ok(Command::TransportMode(Some(TransportMode::Satellite { url: b.text("url") })))
    }),
    ("license smart transport-mode proxy ip-address <host:HOST> port <port:1-65535>", |b| {
        Ok(Command::TransportMode(Some(TransportMode::Proxy { host: b.text("host"), port: port(b) })))
    }),
    ("no license smart transport-mode", |_| Ok(Command::TransportMode(None))),
    ("license smart server {<url:URL>|<host:HOST>} [port <port:1-65535>]", |b| {
        let addr = b.opt_text("url").unwrap_or_else(|| b.text("host"));
        Ok(Command::SmartServer(Some((addr, b.int("port").map(|_| port(b))))))
    }),
    ("no license smart server", |_| Ok(Command::SmartServer(None))),
    ("license feature <tag:STRING> count <count:0-1000000>", |b| {
        Ok(Command::Feature { tag: b.text("tag"), count: b.int("count").map(|c| c as u32) })
    }),
    ("no license feature <tag:STRING> [count <count:0-1000000>]", |b| {
        Ok(Command::Feature { tag: b.text("tag"), count: None })
    }),
    ("license legacy <name:STRING> count <count:1-1000000>", |b| {
        Ok(Command::Legacy { name: b.text("name"), count: b.int("count").map(|c| c as u32) })
    }),
    ("no license legacy <name:STRING> [count <count:1-1000000>]", |b| {
        Ok(Command::Legacy { name: b.text("name"), count: None })
    }),
    ("[no] license smart privacy hostname", |b| Ok(Command::PrivacyHostname(!no(b)))),
    ("hostname <name:WORD>", hostname),
    ("[no] service call-home", |b| Ok(Command::ServiceCallHome(!no(b)))),
    ("call-home", |_| Ok(Command::CallHome)),
    ("callhome", |_| Ok(Command::Callhome)),
    ("crypto pki trustpoint <name:WORD>", |b| Ok(Command::Trustpoint(b.text("name")))),
    ("no crypto pki trustpoint <name:WORD>", |b| Ok(Command::NoTrustpoint(b.text("name")))),
    ("crypto pki authenticate <name:WORD>", |b| Ok(Command::Authenticate(b.text("name")))),
    ("version <text:LINE>", |_| Ok(Command::Version)),
    ("[no] ip name-server [vrf <vrf:WORD>] <server:IP>", kept),
    ("[no] ip host <name:WORD> <address:IP>", kept),
    ("[no] ip domain-lookup [source-interface <interface:WORD>]", kept),
    ("[no] ip http client source-interface <interface:WORD>", kept),
];

static CALL_HOME: &[Entry] = &[
    ("contact-email-addr <email:WORD>", |b| Ok(Command::ContactEmail(b.text("email")))),
    ("profile <profile:STRING>", |b| Ok(Command::CallHomeProfile(b.text("profile")))),
];

static CALL_HOME_PROFILE: &[Entry] = &[
    ("[no] active", |b| Ok(Command::ProfileActive(!no(b)))),
    ("destination transport-method http", |_| Ok(Command::DestinationTransportHttp)),
    ("[no] destination address http <url:URL>", |b| {
        Ok(Command::DestinationAddress { url: b.text("url"), remove: no(b) })
    }),
    ("[no] reporting smart-licensing-data", |b| Ok(Command::ReportingSmartLicensing(!no(b)))),
];

static CALLHOME: &[Entry] = &[
    ("[no] enable", |b| Ok(Command::CallhomeEnable(!no(b)))),
    ("email-contact <email:WORD>", |b| Ok(Command::EmailContact(b.text("email")))),
    ("phone-contact <phone:WORD>", |b| Ok(Command::PhoneContact(b.text("phone")))),
    ("streetaddress <street:LINE>", |b| Ok(Command::StreetAddress(b.text("street")))),
    ("destination-profile <profile:WORD> transport-method http", |b| {
        Ok(Command::DestinationProfileTransportHttp { profile: b.text("profile") })
    }),
    ("[no] destination-profile <profile:WORD> [index <index:1-10>] http <url:URL>", |b| {
        Ok(Command::DestinationProfileHttp {
            profile: b.text("profile"),
            index: b.int("index").map(|i| i as u8),
            url: b.text("url"),
            remove: no(b),
        })
    }),
    ("transport http proxy server <host:HOST> port <port:1-65535>", |b| {
        Ok(Command::ProxyServer(Some((b.text("host"), port(b)))))
    }),
    ("no transport http proxy server", |_| Ok(Command::ProxyServer(None))),
    ("transport http proxy username <user:WORD> password <password:WORD>", |b| {
        Ok(Command::ProxyCredentials(Some((b.text("user"), b.text("password")))))
    }),
    ("no transport http proxy username", |_| Ok(Command::ProxyCredentials(None))),
    ("[no] transport http proxy enable", |b| Ok(Command::ProxyEnable(!no(b)))),
    ("transport http use-vrf <vrf:WORD>", |b| Ok(Command::UseVrf(b.text("vrf")))),
];

static TRUSTPOINT: &[Entry] = &[
    ("enrollment terminal", |_| Ok(Command::EnrollmentTerminal)),
    ("revocation-check {none|crl [none]}", |b| {
        Ok(Command::RevocationCheck(match (b.has("crl"), b.has("none")) {
            (true, true) => Revocation::CrlNone,
            (true, false) => Revocation::Crl,
            _ => Revocation::None,
        }))
    }),
];

/// Help texts: `"previous element"` then `"element"` are looked up, the first found wins.
/// Arguments are looked up by their name.
static HELP: &[(&str, &str)] = &[
    // exec
    ("show", "Show running system information"),
    ("show license", "Show license information"),
    ("license all", "Show license all information"),
    ("license status", "Show license status information"),
    ("license summary", "Show license summary"),
    ("license usage", "Show license usage information"),
    ("license tech", "Show license tech information"),
    ("tech support", "Show license tech support information"),
    ("license mode", "Show the Smart Licensing mode in use"),
    ("license server", "Show the Smart Licensing server in use"),
    ("license catalog", "Show the product and license entitlement definitions"),
    ("license udi", "Show license UDI information"),
    ("license eventlog", "Show license event log"),
    ("hostname privacy", "Show the Smart Licensing hostname privacy"),
    ("show hostname", "Show hostname information"),
    ("show clock", "Display the system clock"),
    ("show running-config", "Current operating configuration"),
    ("running-config callhome", "Show Call Home configuration"),
    ("running-config all", "Configuration with defaults"),
    ("ping", "Send echo messages"),
    ("telnet", "Open a telnet connection"),
    ("vrf", "VRF to use"),
    ("/source-interface", "Source interface of the connection"),
    ("show call-home", "Show command for Call Home"),
    ("call-home smart-licensing", "Show Call Home smart-licensing transport settings"),
    ("call-home profile", "Show Call Home profile information"),
    ("profile all", "Show all profiles"),
    ("show crypto", "Encryption module"),
    ("crypto pki", "Public Key components"),
    ("pki trustpoints", "Show trustpoints"),
    ("license", "Smart licensing commands"),
    ("license smart", "Smart licensing commands"),
    ("smart register", "Register with Cisco Smart Software Manager"),
    ("register idtoken", "Register with an ID token"),
    ("force", "Force registration"),
    ("smart deregister", "Deregister from Cisco Smart Software Manager"),
    ("smart renew", "Renew smart licensing information"),
    ("renew id", "Renew the ID certificate"),
    ("renew auth", "Renew the license authorization"),
    ("smart reservation", "License reservation"),
    ("reservation request", "Request a reservation code"),
    ("request universal", "Universal license reservation"),
    ("request specific", "Specific license reservation"),
    ("request local", "Specific license reservation of this device"),
    ("install file", "Install an authorization code from a file"),
    ("return local", "Return the reservation installed on this device"),
    ("return force", "Do not ask for confirmation"),
    ("reservation install", "Install an authorization code"),
    ("reservation return", "Return the installed reservation"),
    ("return authorization", "Generate a return code from an authorization code"),
    ("reservation cancel", "Cancel a reservation request in progress"),
    ("smart conversion", "Device led conversion of legacy licenses"),
    ("conversion start", "Start converting the legacy licenses of this device"),
    ("conversion stop", "Stop a conversion in progress"),
    ("clock", "Manage the system clock"),
    ("clock set", "Set the time and date"),
    ("configure", "Enter configuration mode"),
    ("configure terminal", "Configure from the terminal"),
    ("write", "Write running configuration to memory"),
    ("write memory", "Write to NV memory"),
    ("copy", "Copy from one file to another"),
    ("copy running-config", "Copy from current system configuration"),
    ("startup-config", "Copy to startup configuration"),
    ("exit", "Exit from the EXEC"),
    ("end", "Exit to exec mode"),
    ("do", "To run exec commands in config mode"),
    ("no", "Negate a command or set its defaults"),
    // config
    ("smart enable", "Enable smart licensing"),
    ("smart url", "Set the URL of the smart licensing server"),
    ("smart transport", "Set the transport type"),
    ("transport callhome", "Use Call Home transport"),
    ("transport smart", "Use smart transport"),
    ("transport off", "Disable the transport"),
    ("smart transport-mode", "Configure the Smart Licensing mode"),
    ("transport-mode smart-licensing", "Connect directly to the cloud"),
    ("transport-mode satellite", "Connect through a transport gateway or satellite"),
    ("satellite url", "Satellite or transport gateway URL"),
    ("transport-mode proxy", "Connect through an HTTP/HTTPS proxy"),
    ("proxy ip-address", "Proxy IP address or host name"),
    ("port", "Port number"),
    ("smart server", "Set the satellite or proxy server"),
    ("license feature", "Set the count of an entitlement in use"),
    ("license legacy", "A legacy license this device holds (for device led conversion)"),
    ("count", "Number of licenses in use"),
    ("smart privacy", "Data privacy settings"),
    ("privacy hostname", "Do not send the hostname"),
    ("hostname", "Set system's network name"),
    ("service", "Modify use of network based services"),
    ("service call-home", "Enable Call Home"),
    ("call-home", "Enter Call Home configuration mode"),
    ("callhome", "Enter Call Home configuration mode"),
    ("crypto", "Encryption module"),
    ("version", "Version of a saved configuration"),
    ("ip", "Global IP configuration subcommands"),
    ("name-server", "Address of a name server to use"),
    ("ip host", "Add an entry to the IP hostname table"),
    ("domain-lookup", "IP Domain Name System hostname translation"),
    ("source-interface", "Source interface"),
    ("ip http", "HTTP configuration"),
    ("client", "HTTP client configuration"),
    ("pki trustpoint", "Define a CA trustpoint"),
    ("pki authenticate", "Get the certificate of a CA"),
    // sub-modes
    ("contact-email-addr", "Contact e-mail address"),
    ("profile", "Enter call-home profile configuration mode"),
    ("active", "Activate the current profile"),
    ("destination", "Message destination related configuration"),
    ("transport-method", "Transport method for this profile"),
    ("transport-method http", "HTTP transport"),
    ("destination address", "Destination address configuration"),
    ("address http", "HTTP destination address"),
    ("reporting", "Data to report"),
    ("smart-licensing-data", "Report smart licensing data"),
    ("enable", "Enable Call Home"),
    ("email-contact", "Contact e-mail address"),
    ("phone-contact", "Contact phone number"),
    ("streetaddress", "Street address of the site"),
    ("destination-profile", "Destination profile configuration"),
    ("index", "URL index"),
    ("http", "HTTP destination URL"),
    ("transport", "Transport configuration"),
    ("transport http", "HTTP transport configuration"),
    ("http proxy", "HTTP proxy configuration"),
    ("proxy server", "Proxy server address"),
    ("proxy enable", "Use the HTTP proxy"),
    ("proxy username", "User name for the proxy (basic authentication)"),
    ("password", "Password for the proxy"),
    ("use-vrf", "VRF for HTTP transport"),
    ("enrollment", "Enrollment parameters"),
    ("enrollment terminal", "Enroll by cut and paste"),
    ("revocation-check", "Revocation checking options"),
    ("crl", "Check the certificate revocation list"),
    ("none", "Ignore revocation check"),
    // arguments
    ("<token>", "ID token from the Smart Account or satellite"),
    ("<code>", "Authorization code"),
    ("<path>", "File holding the authorization code"),
    ("<time>", "Current time"),
    ("<day>", "Day of the month"),
    ("<month>", "Month of the year"),
    ("<year>", "Year"),
    ("<url>", "URL (http:// or https://)"),
    ("<host>", "IP address or host name"),
    ("<port>", "Port number"),
    ("<count>", "Number of licenses in use"),
    ("<index>", "URL index"),
    ("<tag>", "Entitlement tag, quoted if it has spaces"),
    ("<name>", "Name"),
    ("<profile>", "Profile name, quoted if it has spaces"),
    ("<email>", "E-mail address"),
    ("<vrf>", "VRF name"),
    ("<text>", "Version text"),
    ("<server>", "Name server address"),
    ("<address>", "Host address"),
    ("<interface>", "Interface name"),
    ("<phone>", "Phone number, with its + prefix"),
    ("<street>", "Street address"),
    ("<user>", "Proxy user name"),
    ("<password>", "Proxy password"),
];

fn help(prev: &str, name: &str) -> &'static str {
    let pair = format!("{prev} {name}");
    HELP.iter().find(|(k, _)| *k == pair).or_else(|| HELP.iter().find(|(k, _)| *k == name)).map_or("", |(_, h)| h)
}

/// How far into the line a parse error got: an invalid input at its marker; ambiguous and
/// incomplete commands read the whole line.
fn reach(e: &CliError) -> usize {
    match e {
        CliError::Invalid { pos, .. } => *pos,
        _ => usize::MAX,
    }
}

/// The smart agent's CLI: the tree of every mode, built once.
pub struct Cli {
    tree: Tree<Command>,
    roots: [usize; 6],
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl Cli {
    pub fn new() -> Cli {
        let mut tree = Tree::default();
        let roots = Mode::ALL.map(|_| tree.root());
        let h: HelpFn = help;
        let tables: [&[&[Entry]]; 6] = [
            &[EXEC, LICENSE_ACTIONS, PROBES],
            &[CONFIG, LICENSE_ACTIONS, PROBES, LEAVE],
            &[CALL_HOME, LEAVE],
            &[CALL_HOME_PROFILE, LEAVE],
            &[CALLHOME, LEAVE],
            &[TRUSTPOINT, LEAVE],
        ];
        for (root, entries) in roots.iter().zip(tables) {
            for (pattern, build) in entries.iter().flat_map(|t| t.iter()) {
                tree.insert(*root, pattern, *build, h);
            }
        }
        // `do <exec command>` from every configuration mode.
        for &root in &roots[1..] {
            tree.link(root, "do", help("", "do"), roots[0]);
        }
        Cli { tree, roots }
    }

    /// Parses one line typed in `mode`.
    pub fn parse(&self, mode: &Mode, line: &str) -> Result<Parsed<Command>, CliError> {
        self.tree.parse(self.roots[mode.index()], line)
    }

    /// One-shot (`smartlic agent -c`): exec and configuration commands are both accepted, as on
    /// the controller of seed 000. Exec wins; when neither parses, the error that got further.
    pub fn parse_oneshot(&self, line: &str) -> Result<Parsed<Command>, CliError> {
        let exec = self.parse(&Mode::Exec, line);
        let Err(exec_err) = exec else { return exec };
        let config = self.parse(&Mode::Config, line);
        match (&exec_err, &config) {
            (_, Ok(_)) => config,
            (CliError::Invalid { pos: a, .. }, Err(CliError::Invalid { pos: b, .. })) if a >= b => Err(exec_err),
            (CliError::Invalid { .. }, Err(_)) => config,
            _ => Err(exec_err),
        }
    }

    /// Parses a line typed in `mode`. As on IOS, a line that is no command of a sub-mode but is
    /// one of a parent mode leaves the sub-mode and runs there (`crypto pki authenticate X` right
    /// after `crypto pki trustpoint X`); in a one-shot session the parents end with exec, which
    /// takes configuration commands too ([`Cli::parse_oneshot`]). Returns the mode the command
    /// runs in. `?` help stays in `mode`; when no mode takes the line, the error that got furthest.
    pub fn parse_in(&self, mode: &Mode, line: &str, oneshot: bool) -> Result<(Mode, Parsed<Command>), CliError> {
        let parse = |m: &Mode| if oneshot && *m == Mode::Exec { self.parse_oneshot(line) } else { self.parse(m, line) };
        let mut best = match parse(mode) {
            Ok(parsed) => return Ok((mode.clone(), parsed)),
            Err(e) if line.trim_end().ends_with('?') => return Err(e),
            Err(e) => e,
        };
        let mut at = mode.parent();
        while let Some(m) = at.filter(|m| oneshot || *m != Mode::Exec) {
            match parse(&m) {
                Ok(parsed) => return Ok((m, parsed)),
                Err(e) if reach(&e) > reach(&best) => best = e,
                Err(_) => {}
            }
            at = m.parent();
        }
        Err(best)
    }

    /// Tab completion at the interactive prompt (see [`Tree::complete`]): from `mode`, else, as
    /// [`Cli::parse_in`] falls through, from its parent configuration modes.
    pub fn complete(&self, mode: &Mode, line: &str) -> Vec<String> {
        let mut at = Some(mode.clone());
        while let Some(m) = at {
            let lines = self.tree.complete(self.roots[m.index()], line);
            if !lines.is_empty() {
                return lines;
            }
            at = m.parent().filter(|p| *p != Mode::Exec);
        }
        Vec::new()
    }

    /// Help-text gaps in the tree (empty when every keyword and argument has help).
    pub fn missing_help(&self) -> Vec<String> {
        self.tree.missing_help()
    }
}
