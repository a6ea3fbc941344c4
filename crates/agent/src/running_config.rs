//! The running configuration: the configuration commands as entered, kept in IOS order and
//! indentation, so `show running-config` prints what the device holds; and the views
//! that print call home and trust points as configured.
//!
//! Each configuration command names the line it sets (a key, under the stanzas of the mode it
//! ran in): entering it again replaces that line in place, its `no` form removes it (or shows
//! `no …` where the device's default is on). Top-level lines are grouped in IOS order (service,
//! hostname, ip, crypto, license, ip http, call home); within a group and inside a stanza, lines
//! stay in the order they were entered.
//!
//! A device keeps a running and a startup configuration; the state directory is written
//! atomically after every command, so nothing is lost either way, and the distinction only
//! records whether `write memory` followed the last change (`%SMART_LIC-4-CONFIG_NOT_SAVED`).

use crate::cli::{Command, Mode, Revocation, Transport, TransportMode};
use crate::config::{CallHome, CallHomeProfile, DeviceConfig};
use crate::show::AGENT_VERSION;
use serde::{Deserialize, Serialize};
use smartlic_core::Timestamp;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningConfig {
    lines: Vec<Line>,
    /// Device time of the last change, and of the last `write memory`.
    pub changed_at: Option<Timestamp>,
    pub saved_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    key: String,
    text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    children: Vec<Line>,
}

/// One change: under the stanzas `path`, the line `key` becomes `text`, or goes (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub path: Vec<String>,
    pub key: String,
    pub text: Option<String>,
}

/// IOS order of the top-level groups, by leading words; the longest match wins.
const GROUPS: [&str; 8] = ["service", "hostname", "ip", "crypto", "license", "ip http", "call-home", "callhome"];

fn group(key: &str) -> usize {
    GROUPS
        .iter()
        .enumerate()
        .filter(|(_, g)| key == **g || key.starts_with(&format!("{g} ")))
        .max_by_key(|(_, g)| g.len())
        .map_or(GROUPS.len(), |(i, _)| i)
}

impl RunningConfig {
    /// Applies `edit` at device time `now`; true when the configuration changed.
    pub fn apply(&mut self, edit: &Edit, now: Timestamp) -> bool {
        let mut changed = false;
        let mut level = &mut self.lines;
        for (depth, header) in edit.path.iter().enumerate() {
            let i = match level.iter().position(|l| l.key == *header) {
                Some(i) => i,
                None => {
                    changed = true;
                    insert(level, Line { key: header.clone(), text: header.clone(), children: Vec::new() }, depth == 0)
                }
            };
            level = &mut level[i].children;
        }
        let top = edit.path.is_empty();
        let at = level.iter().position(|l| l.key == edit.key);
        match (&edit.text, at) {
            (Some(text), Some(i)) if level[i].text != *text => {
                level[i].text = text.clone();
                changed = true;
            }
            (Some(text), None) => {
                insert(level, Line { key: edit.key.clone(), text: text.clone(), children: Vec::new() }, top);
                changed = true;
            }
            (None, Some(i)) => {
                level.remove(i);
                changed = true;
            }
            _ => {}
        }
        if changed {
            self.changed_at = Some(now);
        }
        changed
    }

    /// Records a change made outside the command lines (registration generated a key pair).
    pub fn touch(&mut self, now: Timestamp) {
        self.changed_at = Some(now);
    }

    /// `write memory`: the running configuration becomes the startup configuration.
    pub fn save(&mut self, now: Timestamp) {
        self.saved_at = Some(now);
    }

    /// Whether something changed since the last `write memory`.
    pub fn unsaved(&self) -> bool {
        match (self.changed_at, self.saved_at) {
            (Some(changed), Some(saved)) => changed > saved,
            (changed, _) => changed.is_some(),
        }
    }

    fn render_lines(&self, out: &mut Vec<String>, only_call_home: bool) {
        let mut previous: Option<(usize, bool)> = None;
        for line in &self.lines {
            let g = group(&line.key);
            if only_call_home && g < group("call-home") && line.key != "service call-home" {
                continue;
            }
            let stanza = !line.children.is_empty();
            if previous.is_some_and(|(pg, ps)| pg != g || ps || stanza) {
                out.push("!".into());
            }
            previous = Some((g, stanza));
            // NX-OS indents by two spaces, IOS by one.
            let unit = if line.key == "callhome" { "  " } else { " " };
            push_tree(out, line, "", unit);
        }
    }
}

/// Inserts `line` at the end of its group (top level) or at the end; returns its index.
fn insert(level: &mut Vec<Line>, line: Line, top: bool) -> usize {
    let at = if top {
        let g = group(&line.key);
        level.iter().rposition(|l| group(&l.key) <= g).map_or(0, |i| i + 1)
    } else {
        level.len()
    };
    level.insert(at, line);
    at
}

fn push_tree(out: &mut Vec<String>, line: &Line, indent: &str, unit: &str) {
    out.push(format!("{indent}{}", line.text));
    let deeper = format!("{indent}{unit}");
    for child in &line.children {
        push_tree(out, child, &deeper, unit);
    }
}

fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

fn trustpoint_header(name: &str) -> String {
    format!("crypto pki trustpoint {name}")
}

fn profile_header(name: &str) -> String {
    format!("profile {}", quoted(name))
}

/// The stanzas a mode's lines go under.
fn stanza_path(mode: &Mode) -> Vec<String> {
    match mode {
        Mode::Exec | Mode::Config => Vec::new(),
        Mode::CallHome => vec!["call-home".into()],
        Mode::CallHomeProfile(p) => vec!["call-home".into(), profile_header(p)],
        Mode::Callhome => vec!["callhome".into()],
        Mode::Trustpoint(name) => vec![trustpoint_header(name)],
    }
}

/// The running-configuration change of a command that ran in `mode`; `None` for commands that
/// configure nothing (exec commands, `crypto pki authenticate`, `version`).
pub fn edit(mode: &Mode, command: &Command) -> Option<Edit> {
    let set = |key: &str, text: String| (key.to_string(), Some(text));
    let unset = |key: &str| (key.to_string(), None);
    let toggle = |key: &str, on: bool| if on { set(key, key.to_string()) } else { unset(key) };
    let no_form = |key: &str, on: bool| set(key, if on { key.to_string() } else { format!("no {key}") });
    let (key, text) = match command {
        Command::SmartEnable(on) => {
            let key = "license smart enable";
            if *on {
                unset(key)
            } else {
                set(key, format!("no {key}"))
            }
        }
        Command::ReservationEnable(on) => toggle("license smart reservation", *on),
        Command::SmartUrl(url) => {
            let key = "license smart url";
            url.as_ref().map_or(unset(key), |u| set(key, format!("{key} {u}")))
        }
        Command::SmartTransport(t) => {
            let key = "license smart transport";
            let name = |t: &Transport| match t {
                Transport::Callhome => "callhome",
                Transport::Smart => "smart",
                Transport::Off => "off",
            };
            t.as_ref().map_or(unset(key), |t| set(key, format!("{key} {}", name(t))))
        }
        Command::TransportMode(m) => {
            let key = "license smart transport-mode";
            match m {
                None => unset(key),
                Some(TransportMode::SmartLicensing) => set(key, format!("{key} smart-licensing")),
                Some(TransportMode::Satellite { url }) => set(key, format!("{key} satellite url {url}")),
                Some(TransportMode::Proxy { host, port }) => {
                    set(key, format!("{key} proxy ip-address {host} port {port}"))
                }
            }
        }
        Command::SmartServer(server) => {
            let key = "license smart server";
            match server {
                None => unset(key),
                Some((addr, None)) => set(key, format!("{key} {addr}")),
                Some((addr, Some(port))) => set(key, format!("{key} {addr} port {port}")),
            }
        }
        Command::Feature { tag, count } => {
            let key = format!("license feature {}", quoted(tag));
            count.map_or(unset(&key), |c| set(&key, format!("{key} count {c}")))
        }
        Command::Legacy { name, count } => {
            let key = format!("license legacy {}", quoted(name));
            count.map_or(unset(&key), |c| set(&key, format!("{key} count {c}")))
        }
        Command::Hostname(name) => set("hostname", format!("hostname {name}")),
        Command::PrivacyHostname(on) => toggle("license smart privacy hostname", *on),
        Command::ServiceCallHome(on) => no_form("service call-home", *on),
        Command::CallHome => set("call-home", "call-home".into()),
        Command::Callhome => set("callhome", "callhome".into()),
        Command::Trustpoint(name) => set(&trustpoint_header(name), trustpoint_header(name)),
        Command::NoTrustpoint(name) => unset(&trustpoint_header(name)),
        Command::Kept { line, remove } => {
            if *remove {
                unset(line)
            } else {
                set(line, line.clone())
            }
        }
        Command::ContactEmail(email) => set("contact-email-addr", format!("contact-email-addr {email}")),
        Command::CallHomeProfile(name) => set(&profile_header(name), profile_header(name)),
        Command::ProfileActive(on) => no_form("active", *on),
        Command::DestinationTransportHttp => {
            set("destination transport-method", "destination transport-method http".into())
        }
        Command::DestinationAddress { url, remove } => {
            let line = format!("destination address http {url}");
            if *remove {
                unset(&line)
            } else {
                set(&line, line.clone())
            }
        }
        Command::ReportingSmartLicensing(on) => no_form("reporting smart-licensing-data", *on),
        Command::CallhomeEnable(on) => toggle("enable", *on),
        Command::EmailContact(email) => set("email-contact", format!("email-contact {email}")),
        Command::PhoneContact(phone) => set("phone-contact", format!("phone-contact {phone}")),
        Command::StreetAddress(street) => set("streetaddress", format!("streetaddress {street}")),
        Command::DestinationProfileTransportHttp { profile } => {
            let key = format!("destination-profile {profile} transport-method");
            set(&key, format!("{key} http"))
        }
        Command::DestinationProfileHttp { profile, index, url, remove } => {
            let index = index.map(|i| format!("index {i} ")).unwrap_or_default();
            let line = format!("destination-profile {profile} {index}http {url}");
            if *remove {
                unset(&line)
            } else {
                set(&line, line.clone())
            }
        }
        Command::ProxyServer(server) => {
            let key = "transport http proxy server";
            server.as_ref().map_or(unset(key), |(host, port)| set(key, format!("{key} {host} port {port}")))
        }
        // The password is never shown (it is a secret); the line says one is set.
        Command::ProxyCredentials(credentials) => {
            let key = "transport http proxy username";
            credentials.as_ref().map_or(unset(key), |(user, _)| set(key, format!("{key} {user} password ********")))
        }
        Command::ProxyEnable(on) => toggle("transport http proxy enable", *on),
        Command::UseVrf(vrf) => set("transport http use-vrf", format!("transport http use-vrf {vrf}")),
        Command::EnrollmentTerminal => set("enrollment", "enrollment terminal".into()),
        Command::RevocationCheck(r) => {
            let how = match r {
                Revocation::None => "none",
                Revocation::Crl => "crl",
                Revocation::CrlNone => "crl none",
            };
            set("revocation-check", format!("revocation-check {how}"))
        }
        _ => return None,
    };
    Some(Edit { path: stanza_path(mode), key, text })
}

/// `Wed Jun 22 16:14:37 2022`, as the NX-OS configuration header prints times.
fn header_time(at: Timestamp) -> String {
    at.to_datetime().format("%a %b %d %H:%M:%S %Y").to_string()
}

/// `show running-config [callhome]`: a header of comments (pasting the output back is
/// harmless), the version, the hostname, then the configuration as entered.
pub fn show_running_config(config: &DeviceConfig, callhome: bool, now: Timestamp) -> String {
    let running = &config.running;
    let mut out = vec![format!("!Command: show running-config{}", if callhome { " callhome" } else { "" })];
    if let Some(changed) = running.changed_at {
        out.push(format!("!Running configuration last done at: {}", header_time(changed)));
    }
    out.push(format!("!Time: {}", header_time(now)));
    match (running.unsaved(), running.saved_at) {
        (true, _) => out.push("!Startup configuration: not saved since the last change (write memory)".into()),
        (false, Some(saved)) => out.push(format!("!Startup configuration saved at: {}", header_time(saved))),
        (false, None) => {}
    }
    out.push(String::new());
    out.push(format!("version {}", AGENT_VERSION.trim_start_matches("smartlic ")));
    // The name given at `init` until `hostname` sets one.
    if !callhome && !running.lines.iter().any(|l| l.key == "hostname") {
        out.push(format!("hostname {}", config.hostname));
    }
    running.render_lines(&mut out, callhome);
    lines(out)
}

fn lines(out: Vec<String>) -> String {
    out.iter().map(|l| format!("{l}\n")).collect()
}

const NOT_SET: &str = "Not yet set up";

/// `show call-home`: the settings, then the profiles.
pub fn show_call_home(config: &DeviceConfig) -> String {
    let ch = &config.call_home;
    let or_not_set = |v: &Option<String>| v.clone().unwrap_or_else(|| NOT_SET.into());
    let proxy = config.transport.proxy.as_ref().map_or(NOT_SET.into(), |p| format!("{}:{}", p.host, p.port));
    let mut out = vec![
        "Current call home settings:".to_string(),
        format!("    call home feature : {}", if ch.is_on() { "enable" } else { "disable" }),
        format!("    contact person's email address: {}", or_not_set(&ch.contact_email)),
        format!("    contact person's phone number: {}", or_not_set(&ch.phone)),
        format!("    street address: {}", or_not_set(&ch.street)),
        format!("    vrf for call-home messages: {}", or_not_set(&ch.vrf)),
        format!("    http proxy: {proxy}"),
        String::new(),
    ];
    out.extend(smart_licensing_lines(ch, "    "));
    out.push(String::new());
    out.push("Profiles:".into());
    if ch.profiles.is_empty() {
        out.push("    None".into());
    }
    for p in &ch.profiles {
        let status = if p.is_active() { "ACTIVE" } else { "INACTIVE" };
        out.push(format!("    Profile Name: {} ({status})", p.name));
    }
    lines(out)
}

fn smart_licensing_lines(ch: &CallHome, indent: &str) -> Vec<String> {
    let using = ch.licensing_profile();
    let enabled = if using.is_some() && ch.is_on() { "enabled" } else { "disabled" };
    let mut out = vec![format!("{indent}Smart-license messages: {enabled}")];
    match using {
        Some(p) => {
            let status = if ch.is_on() { "ACTIVE" } else { "INACTIVE" };
            out.push(format!("{indent}Profile: {} (status: {status})", p.name));
            out.push(format!("{indent}Destination  URL(s):  {}", p.urls.join(" ")));
        }
        None => out.push(format!("{indent}Profile: none active with reporting smart-licensing-data")),
    }
    out
}

/// `show call-home smart-licensing` (public facts §5.1).
pub fn show_call_home_smart_licensing(config: &DeviceConfig) -> String {
    let mut out = vec!["Current smart-licensing transport settings:".to_string()];
    out.extend(smart_licensing_lines(&config.call_home, " "));
    lines(out)
}

/// `show call-home profile all|NAME` (seed 004's layout).
pub fn show_call_home_profile(config: &DeviceConfig, name: Option<&str>) -> String {
    let ch = &config.call_home;
    let chosen: Vec<&CallHomeProfile> = ch.profiles.iter().filter(|p| name.is_none_or(|n| p.name == n)).collect();
    if chosen.is_empty() {
        return match name {
            Some(n) => format!("Profile {n} does not exist\n"),
            None => "No profiles configured\n".into(),
        };
    }
    let blocks: Vec<String> = chosen
        .iter()
        .map(|p| {
            let reporting =
                if ch.reports_licensing(p) { "Smart Call Home, Smart Licensing" } else { "Smart Call Home" };
            let urls = if p.urls.is_empty() { "Not yet set up".to_string() } else { p.urls.join(" ") };
            lines(vec![
                format!("Profile Name: {}", p.name),
                format!("Profile status: {}", if p.is_active() { "ACTIVE" } else { "INACTIVE" }),
                "Profile mode: Full Reporting".into(),
                format!("Reporting Data: {reporting}"),
                "Preferred Message Format: xml".into(),
                "Message Size Limit: 3145728 Bytes".into(),
                format!("Transport Method: {}", p.transport_method()),
                format!("HTTP address(es): {urls}"),
                "Other address(es): default".into(),
            ])
        })
        .collect();
    blocks.join("\n")
}

/// `show crypto pki trustpoints`: each trust point, and the CA certificate it holds.
pub fn show_trustpoints(config: &DeviceConfig) -> String {
    let mut out = Vec::new();
    for (name, tp) in &config.trustpoints {
        out.push(format!("Trustpoint {name}:"));
        let key = tp.certificate.as_deref().and_then(|pem| smartlic_proto::cert::public_key_of_certificate(pem).ok());
        match tp.certificate.as_deref().map(smartlic_proto::cert::certificate_facts) {
            Some(Ok((_, not_after, serial))) => {
                out.push(format!("          Serial Number (hex): {serial}"));
                out.push("    Certificate configured.".into());
                out.extend(key.map(|k| format!("    Public key: {}", k.description())));
                out.push(format!("    Valid until: {}", header_time(Timestamp(not_after * 1000))));
            }
            Some(Err(_)) => out.push("    Certificate configured (unreadable).".into()),
            None => out.push("    Certificate not configured.".into()),
        }
        if tp.revocation_check_none {
            out.push("    Revocation check: none".into());
        }
    }
    if out.is_empty() {
        out.push("No trustpoints configured".into());
    }
    lines(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    fn apply(rc: &mut RunningConfig, mode: &Mode, cmd: Command) -> bool {
        rc.apply(&edit(mode, &cmd).expect("a configuration command"), at(1))
    }

    #[test]
    fn lines_replace_in_place_and_no_forms_remove_them() {
        let mut rc = RunningConfig::default();
        let tp = Mode::Trustpoint("SLA-TrustPoint".into());
        assert!(apply(&mut rc, &Mode::Config, Command::SmartUrl(Some("https://a".into()))));
        assert!(apply(&mut rc, &Mode::Config, Command::Trustpoint("SLA-TrustPoint".into())));
        assert!(apply(&mut rc, &tp, Command::EnrollmentTerminal));
        assert!(apply(&mut rc, &tp, Command::RevocationCheck(Revocation::Crl)));
        assert!(apply(&mut rc, &tp, Command::RevocationCheck(Revocation::None)));
        assert!(
            !apply(&mut rc, &tp, Command::RevocationCheck(Revocation::None)),
            "the same line again changes nothing"
        );
        assert!(apply(&mut rc, &Mode::Config, Command::SmartUrl(Some("https://b".into()))));
        let mut out = Vec::new();
        rc.render_lines(&mut out, false);
        // crypto comes before license, whatever the order of entry.
        assert_eq!(
            out,
            [
                "crypto pki trustpoint SLA-TrustPoint",
                " enrollment terminal",
                " revocation-check none",
                "!",
                "license smart url https://b"
            ]
        );
        assert!(apply(&mut rc, &Mode::Config, Command::SmartUrl(None)));
        assert!(apply(&mut rc, &Mode::Config, Command::NoTrustpoint("SLA-TrustPoint".into())));
        assert!(!rc.lines.iter().any(|l| l.key.starts_with("crypto") || l.key.starts_with("license")));
        assert!(rc.unsaved());
        rc.save(at(2));
        assert!(!rc.unsaved());
    }

    #[test]
    fn nx_os_stanzas_indent_by_two_and_keep_the_order_of_entry() {
        let mut rc = RunningConfig::default();
        let ch = Mode::Callhome;
        apply(&mut rc, &Mode::Config, Command::Callhome);
        apply(&mut rc, &ch, Command::EmailContact("a@example.com".into()));
        apply(
            &mut rc,
            &ch,
            Command::DestinationProfileHttp {
                profile: "CiscoTAC-1".into(),
                index: Some(1),
                url: "https://m".into(),
                remove: false,
            },
        );
        apply(&mut rc, &ch, Command::CallhomeEnable(true));
        apply(&mut rc, &Mode::Config, Command::Kept { line: "ip name-server 192.0.2.53".into(), remove: false });
        let mut out = Vec::new();
        rc.render_lines(&mut out, true);
        assert_eq!(
            out,
            [
                "callhome",
                "  email-contact a@example.com",
                "  destination-profile CiscoTAC-1 index 1 http https://m",
                "  enable"
            ]
        );
    }
}
