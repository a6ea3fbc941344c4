//! Output of the device's `show` commands: pure functions of the agent state, the device
//! configuration and the device time, producing the texts and layouts of the seed documents.
//!
//! Layout: the seeds (001, 003, 004) lost their indentation and blank lines on the way to text, so
//! indentation (two spaces per level) and the blank line between blocks follow the verbatim
//! classic captures of `../shared/reference/PUBLIC-FACTS.md` §5.1; block order, field names and
//! values follow the seeds. Every line ends with `\n`; no line has trailing spaces.
//!
//! Nothing here reads a clock: `now` is the device time, passed in.

use crate::cli::LicenseView;
use crate::config::{DeviceConfig, TransportKind};
use smartlic_core::agent::{
    format_device_time, format_time_left, Agent, Attempt, AuthAnswer, Authorization, ConversionStatus, Coverage,
    Outcome, Registration, RegistrationAttempts, ReservationKind, ReservedLicense,
};
use smartlic_core::time::Timestamp;

/// The agent's version, as `Agent Version` prints it.
pub const AGENT_VERSION: &str = concat!("smartlic ", env!("CARGO_PKG_VERSION"));

/// `Failure reason:` of an attempt sent and not answered yet (seed 004 #7).
pub const WAITING_FOR_REPLY: &str = "Waiting for reply";

/// `show license VIEW`.
pub fn render(view: &LicenseView, agent: &Agent, config: &DeviceConfig, now: Timestamp) -> String {
    match view {
        LicenseView::Status => status(agent, config, now),
        LicenseView::Summary => summary(agent, config, now),
        LicenseView::All => all(agent, config, now),
        LicenseView::Usage => usage(agent, config, now),
        LicenseView::TechSupport => tech_support(agent, config, now),
        LicenseView::Mode => mode(config),
        LicenseView::Server => server(config),
        LicenseView::Catalog => catalog(agent, config),
        LicenseView::Udi => udi(agent),
        LicenseView::Eventlog => eventlog(agent),
    }
}

/// Lines under construction; [`Out::finish`] ends every line with `\n`.
#[derive(Default)]
struct Out(Vec<String>);

impl Out {
    fn line(&mut self, text: impl Into<String>) {
        self.0.push(text.into());
    }

    /// `  Field: value` at `indent` levels of two spaces.
    fn field(&mut self, indent: usize, name: &str, value: impl std::fmt::Display) {
        self.0.push(format!("{:width$}{name}: {value}", "", width = indent * 2));
    }

    fn blank(&mut self) {
        self.0.push(String::new());
    }

    /// A section title underlined with `=` (`underline` characters, as the captures show them).
    fn title(&mut self, title: &str, underline: usize) {
        self.0.push(title.to_string());
        self.0.push("=".repeat(underline));
    }

    fn finish(self) -> String {
        let mut text = self.0.join("\n");
        text.push('\n');
        text
    }
}

/// How much of the Registration / License Authorization blocks to print.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// `show license status` and `all`: dates on every status and attempt (seed 003:31-44).
    Full,
    /// `show license summary`: no dates on statuses and outcomes, no Initial Registration,
    /// Registration Expires nor Communication Deadline (seed 004:742-776, §5.1 summary).
    Summary,
}

fn enabled_line(agent: &Agent) -> &'static str {
    if agent.enabled {
        "Smart Licensing is ENABLED"
    } else {
        "Smart Licensing is DISABLED"
    }
}

/// `SUCCEEDED on <date>` / `FAILED on <date>` / `PENDING on <date>` (seeds 003:42, 004 #5, #7),
/// without the date in the summary; and the `Failure reason:` that goes with it.
fn attempt_text(attempt: &Attempt, detail: Detail) -> (String, Option<&str>) {
    let (word, reason) = match &attempt.outcome {
        Outcome::Succeeded => ("SUCCEEDED", None),
        Outcome::Failed { reason } => ("FAILED", Some(reason.as_str())),
        Outcome::Pending => ("PENDING", Some(WAITING_FOR_REPLY)),
    };
    match detail {
        Detail::Full => (format!("{word} on {}", format_device_time(attempt.at)), reason),
        Detail::Summary => (word.to_string(), reason),
    }
}

fn export_controlled(agent: &Agent) -> &'static str {
    match agent.registration.registered() {
        Some(r) if r.export_controlled => "Allowed",
        _ => "Not Allowed",
    }
}

/// The Registration block (seed 003:31-39 registered; seed 004 #1/#2/#4 failed and retrying;
/// §5.1 summary sample unregistered).
fn registration_block(out: &mut Out, agent: &Agent, detail: Detail) {
    out.line("Registration:");
    out.field(1, "Status", agent.registration.display());
    match &agent.registration {
        Registration::Registered(r) => {
            out.field(1, "Smart Account", &r.smart_account);
            out.field(1, "Virtual Account", &r.virtual_account);
            out.field(1, "Export-Controlled Functionality", export_controlled(agent));
            if detail == Detail::Full {
                out.field(
                    1,
                    "Initial Registration",
                    format!("SUCCEEDED on {}", format_device_time(r.initial_registration)),
                );
            }
            match &r.last_renewal {
                None => out.field(1, "Last Renewal Attempt", "None"),
                Some(attempt) => {
                    let (text, reason) = attempt_text(attempt, detail);
                    out.field(1, "Last Renewal Attempt", text);
                    if let Some(reason) = reason {
                        out.field(1, "Failure reason", reason);
                    }
                }
            }
            out.field(1, "Next Renewal Attempt", format_device_time(r.next_renewal));
            if detail == Detail::Full {
                out.field(1, "Registration Expires", format_device_time(r.expires));
            }
        }
        Registration::Registering(a) | Registration::Failed(a) => {
            out.field(1, "Export-Controlled Functionality", export_controlled(agent));
            registration_attempts(out, a, detail);
        }
        Registration::Expired { at } => {
            out.field(1, "Export-Controlled Functionality", export_controlled(agent));
            if detail == Detail::Full {
                out.field(1, "Registration Expires", format_device_time(*at));
            }
        }
        Registration::Unidentified => out.field(1, "Export-Controlled Functionality", export_controlled(agent)),
        Registration::Reserved(r) => {
            out.field(1, "Export-Controlled Functionality", export_controlled(agent));
            if detail == Detail::Full {
                out.field(1, "Initial Registration", format!("SUCCEEDED on {}", format_device_time(r.installed_at)));
            }
        }
    }
}

/// `License Reservation is ENABLED` under the first line once `license smart reservation` is on.
fn reservation_line(out: &mut Out, agent: &Agent) {
    if agent.reservation.enabled {
        out.line("License Reservation is ENABLED");
    }
}

/// `Reservation status:` of the §5.1 `Reservation Info` block.
fn reservation_status(agent: &Agent) -> String {
    match (&agent.registration, &agent.reservation.request) {
        (Registration::Reserved(r), _) => format!("{} INSTALLED", r.kind.display()),
        (_, Some(_)) => "RESERVATION IN PROGRESS".into(),
        _ => "NOT INSTALLED".into(),
    }
}

/// `ends <date>` of a reserved term license, or its type.
fn term_text(l: &ReservedLicense) -> String {
    match l.end {
        Some(end) => format!("{}, ends {}", l.license_type, format_device_time(end)),
        None => l.license_type.clone(),
    }
}

/// The reservation block of `show license status` and `summary`: what is installed or requested,
/// and each reserved license with its end date.
fn reservation_block(out: &mut Out, agent: &Agent, config: &DeviceConfig, detail: Detail) {
    let info = &agent.reservation;
    if agent.registration.reserved().is_none() && info.request.is_none() {
        return;
    }
    out.blank();
    out.line("License Reservation:");
    match (agent.registration.reserved(), &info.request) {
        (Some(r), _) if detail == Detail::Full => {
            out.field(1, "Status", format!("{} on {}", reservation_status(agent), format_device_time(r.installed_at)))
        }
        _ => out.field(1, "Status", reservation_status(agent)),
    }
    if let Some(request) = &info.request {
        out.field(1, "Request code", &request.code);
    }
    if let Some(r) = agent.registration.reserved() {
        out.field(1, "Last Confirmation code", &r.confirmation_code);
        if r.kind == ReservationKind::Specific {
            out.line("  Reserved licenses:");
            for l in &r.licenses {
                out.line(format!("    {} ({}): {}, {}", description(config, &l.tag), l.tag, l.count, term_text(l)));
            }
        }
    }
}

/// `Initial Registration: FAILED on …`, `Failure reason: …`, `Next Registration Attempt: …`
/// (seed 004 #1 lines 902-912, #2 lines 931-941; #4 lines 984-990 has no next attempt).
fn registration_attempts(out: &mut Out, a: &RegistrationAttempts, detail: Detail) {
    if let Some(last) = a.last() {
        let (text, reason) = attempt_text(last, detail);
        if detail == Detail::Full {
            out.field(1, "Initial Registration", text);
        }
        if let Some(reason) = reason {
            out.field(1, "Failure reason", reason);
        }
    }
    if let Some(next) = a.next_attempt {
        out.field(1, "Next Registration Attempt", format_device_time(next));
    }
}

/// Evaluation time left at `now` (the state holds it as of its last step).
fn evaluation_left_ms(agent: &Agent, now: Timestamp) -> i64 {
    let left = agent.evaluation.left_ms();
    if now > agent.clock && agent.evaluation_counting() {
        (left - (now.0 - agent.clock.0)).max(0)
    } else {
        left
    }
}

/// The device-wide `Status:` of the License Authorization block, dated in full detail.
fn authorization_status(auth: &Authorization, detail: Detail) -> String {
    match (auth.since(), detail) {
        (Some(at), Detail::Full) => format!("{} on {}", auth.display(), format_device_time(at)),
        _ => auth.display().to_string(),
    }
}

/// The License Authorization block (seed 003:40-44; seed 004 #5 lines 1012-1022, #6 lines
/// 1059-1063, #7 lines 1089-1099; summary: seed 004:762-774).
fn authorization_block(out: &mut Out, agent: &Agent, detail: Detail, now: Timestamp) {
    let auth = &agent.authorization;
    out.line("License Authorization:");
    out.field(1, "Status", authorization_status(auth, detail));
    if matches!(auth, Authorization::Evaluation) {
        out.field(1, "Evaluation Period Remaining", format_time_left(evaluation_left_ms(agent, now)));
    }
    if let (Authorization::EvaluationExpired { .. }, Some(reason)) = (auth, &agent.evaluation.tampered) {
        out.field(1, "Failure reason", reason);
    }
    if !agent.registration.is_registered() {
        return;
    }
    let c = &agent.communication;
    if let Some(last) = &c.last {
        let (text, reason) = attempt_text(last, detail);
        out.field(1, "Last Communication Attempt", text);
        if let Some(reason) = reason {
            out.field(1, "Failure reason", reason);
        }
    }
    if let Some(next) = c.next_attempt {
        out.field(1, "Next Communication Attempt", format_device_time(next));
    }
    if detail == Detail::Full {
        if let Some(deadline) = c.deadline {
            out.field(1, "Communication Deadline", format_device_time(deadline));
        }
    }
}

/// The `Transport:` block (§5.1 `Type:`; URL and proxy lines as in the §5.2 tech support).
fn transport_block(out: &mut Out, config: &DeviceConfig) {
    let t = &config.transport;
    out.line("Transport:");
    out.field(1, "Type", t.kind.display());
    if t.kind == TransportKind::Off {
        return;
    }
    out.field(1, "URL", config.destination().unwrap_or("<empty>"));
    if let Some(proxy) = config.active_proxy() {
        out.line("  Proxy:");
        out.field(2, "Address", &proxy.host);
        out.field(2, "Port", proxy.port);
        out.field(2, "Username", proxy.username.as_deref().unwrap_or("<empty>"));
        out.field(2, "Password", if proxy.password.is_some() { "********" } else { "<empty>" });
    }
}

/// The `Data Privacy:` block (§5.1): one switch, `license smart privacy hostname`.
fn data_privacy_block(out: &mut Out, config: &DeviceConfig) {
    let private = config.hostname_privacy;
    out.line("Data Privacy:");
    out.field(1, "Sending Hostname", if private { "no" } else { "yes" });
    out.field(2, "Callhome hostname privacy", "DISABLED");
    out.field(2, "Smart Licensing hostname privacy", if private { "ENABLED" } else { "DISABLED" });
    out.field(1, "Version privacy", "DISABLED");
}

/// `show license status`: seed 003:30-47 (the same capture as seed 001:282-316), with the
/// `Transport:` block of the §5.1 status capture after it.
pub fn status(agent: &Agent, config: &DeviceConfig, now: Timestamp) -> String {
    let mut out = Out::default();
    out.line(enabled_line(agent));
    reservation_line(&mut out, agent);
    if agent.enabled {
        out.blank();
        registration_block(&mut out, agent, Detail::Full);
        out.blank();
        authorization_block(&mut out, agent, Detail::Full, now);
        reservation_block(&mut out, agent, config, Detail::Full);
        out.blank();
        conversion_block(&mut out, agent);
        out.blank();
        transport_block(&mut out, config);
    }
    out.finish()
}

/// The `Smart License Conversion:` block (seeds 001, 003; public facts §7 `Already converted`),
/// with why a conversion failed and what each legacy license became (V-1). Automatic conversion
/// is not offered: conversion starts with `license smart conversion start`.
fn conversion_block(out: &mut Out, agent: &Agent) {
    let c = &agent.conversion;
    out.line("Smart License Conversion:");
    out.field(1, "Automatic Conversion Enabled", "False");
    out.field(1, "Status", c.status.display());
    if let ConversionStatus::Failed { at, reason } = &c.status {
        out.field(1, "Failure reason", reason);
        out.field(1, "Failed on", format_device_time(*at));
    }
    for item in &c.results {
        let became = match &item.converted_to {
            Some(licenses) => format!("converted to {licenses}"),
            None => "not converted: unknown legacy license".to_string(),
        };
        out.field(1, &format!("Legacy license \"{}\" count {}", item.name, item.count), became);
    }
}

/// The status of one entitlement in use (`EVAL MODE` and `AUTHORIZED` as in the §5.1 summary
/// captures). While authorized or out of compliance it is the tag's own status in the manager's
/// last answer, so a licensed tag reads AUTHORIZED on a device that is OUT OF COMPLIANCE because
/// of another; a tag the last answer did not cover (put in use since) is `WAITING`.
pub fn entitlement_status(agent: &Agent, tag: &str, count: u32, now: Timestamp) -> &'static str {
    match agent.authorization {
        Authorization::Reserved { .. } => match agent.reservation_coverage(tag, count, now) {
            Some(Coverage::Covered) => "AUTHORIZED",
            _ => "NOT AUTHORIZED",
        },
        Authorization::Evaluation => "EVAL MODE",
        Authorization::EvaluationExpired { .. } => "EVAL EXPIRED",
        Authorization::Authorized { .. } | Authorization::OutOfCompliance { .. } => {
            match agent.communication.entitlements.get(tag) {
                Some(AuthAnswer::Authorized) => "AUTHORIZED",
                Some(AuthAnswer::OutOfCompliance) => "OUT OF COMPLIANCE",
                Some(AuthAnswer::NoLicensesInUse) | None => "WAITING",
            }
        }
        Authorization::AuthorizationExpired { .. } => "AUTHORIZATION EXPIRED",
        // Usage configured, its authorization not answered yet.
        Authorization::NoLicensesInUse { .. } => "WAITING",
    }
}

/// The license name of a tag: known only once registered (§3.1 YANG `license-name` "only after
/// registration"; the unregistered §5.1 summary leaves the License column empty).
fn license_name<'a>(agent: &Agent, config: &'a DeviceConfig, tag: &'a str) -> Option<&'a str> {
    agent.registration.holds_licenses().then(|| config.catalog.get(tag).map_or(tag, String::as_str))
}

fn description<'a>(config: &'a DeviceConfig, tag: &'a str) -> &'a str {
    config.catalog.get(tag).map_or(tag, String::as_str)
}

/// The summary's usage table (§5.1 summary captures; seed 004:778-784 lost its spacing): License
/// 23 characters (longer names cut to 20 and `...`), entitlement tag in parentheses in 30, count
/// right-aligned in 5, status.
fn usage_table(out: &mut Out, agent: &Agent, config: &DeviceConfig, now: Timestamp) {
    out.line("License Usage:");
    if agent.usage.is_empty() {
        out.line("  No licenses in use");
        return;
    }
    out.line("  License                 Entitlement tag               Count Status");
    out.line(format!("  {}", "-".repeat(77)));
    for (tag, count) in &agent.usage {
        let status = entitlement_status(agent, tag, *count, now);
        let name = license_name(agent, config, tag).unwrap_or("");
        let name = if name.chars().count() > 23 {
            format!("{}...", name.chars().take(20).collect::<String>())
        } else {
            name.to_string()
        };
        let tag = format!("({tag})");
        let tag = if tag.chars().count() >= 30 { format!("{tag} ") } else { format!("{tag:<30}") };
        out.line(format!("  {name:<23} {tag}{count:>5} {status}"));
    }
}

/// `show license summary`: seed 004:742-784 and the two §5.1 summary captures.
pub fn summary(agent: &Agent, config: &DeviceConfig, now: Timestamp) -> String {
    let mut out = Out::default();
    out.line(enabled_line(agent));
    reservation_line(&mut out, agent);
    if agent.enabled {
        out.blank();
        registration_block(&mut out, agent, Detail::Summary);
        out.blank();
        authorization_block(&mut out, agent, Detail::Summary, now);
        reservation_block(&mut out, agent, config, Detail::Summary);
        out.blank();
        usage_table(&mut out, agent, config, now);
    }
    out.finish()
}

/// `Version:` of every license entry: smartlic tags carry no version, and every capture shows 1.0.
const LICENSE_VERSION: &str = "1.0";

/// The `License Usage` section (§5.1 `show license all`: 14 `=`, then the entries).
fn usage_section(out: &mut Out, agent: &Agent, config: &DeviceConfig, now: Timestamp) {
    out.title("License Usage", 14);
    out.blank();
    usage_entries(out, agent, config, now);
}

/// One entry per tag in use, as in the §5.1 ASAv capture (`Description`, `Count`, `Version`, the
/// tag's own `Status`, `Export status`); `No licenses in use` when none is.
fn usage_entries(out: &mut Out, agent: &Agent, config: &DeviceConfig, now: Timestamp) {
    if agent.usage.is_empty() {
        out.line("No licenses in use");
        return;
    }
    let mut first = true;
    for (tag, count) in &agent.usage {
        let status = entitlement_status(agent, tag, *count, now);
        if !first {
            out.blank();
        }
        first = false;
        match license_name(agent, config, tag) {
            Some(name) => out.line(format!("{name} ({tag}):")),
            None => out.line(format!("({tag}):")),
        }
        out.field(1, "Description", description(config, tag));
        out.field(1, "Count", count);
        out.field(1, "Version", LICENSE_VERSION);
        out.field(1, "Status", status);
        out.field(1, "Export status", "NOT RESTRICTED");
    }
}

/// `show license usage`, classic IOS-XE: the device's `License Authorization:` status, then the
/// entries of `show license all` without its title (the §5.2 `show license usage` capture's
/// layout, which its parsers read: a `Status:` before the first entry is the device's).
pub fn usage(agent: &Agent, config: &DeviceConfig, now: Timestamp) -> String {
    let mut out = Out::default();
    out.line("License Authorization:");
    out.field(1, "Status", authorization_status(&agent.authorization, Detail::Full));
    out.blank();
    usage_entries(&mut out, agent, config, now);
    out.finish()
}

fn all_into(out: &mut Out, agent: &Agent, config: &DeviceConfig, now: Timestamp) {
    out.title("Smart Licensing Status", 22);
    out.blank();
    out.line(enabled_line(agent));
    reservation_line(out, agent);
    out.blank();
    if agent.enabled {
        registration_block(out, agent, Detail::Full);
        out.blank();
        authorization_block(out, agent, Detail::Full, now);
        out.blank();
        out.line("Export Authorization Key:");
        out.line("  Features Authorized:");
        out.line("    <none>");
        out.blank();
        out.line("Utility:");
        out.field(1, "Status", "DISABLED");
        out.blank();
        data_privacy_block(out, config);
        out.blank();
        transport_block(out, config);
        out.blank();
    }
    usage_section(out, agent, config, now);
    out.blank();
    out.title("Product Information", 19);
    out.field(0, "UDI", agent.udi());
    out.blank();
    out.title("Agent Version", 13);
    out.field(0, "Smart Agent for Licensing", AGENT_VERSION);
    out.blank();
    reservation_info(out, agent, config);
}

/// `Reservation Info` (§5.1 captures): the DISABLED line alone until reservation is used, then
/// the overall status and the specified reservations with their terms.
fn reservation_info(out: &mut Out, agent: &Agent, config: &DeviceConfig) {
    out.title("Reservation Info", 16);
    let info = &agent.reservation;
    let reserved = agent.registration.reserved();
    if !info.enabled && reserved.is_none() {
        out.field(0, "License reservation", "DISABLED");
        return;
    }
    out.field(0, "License reservation", if info.enabled { "ENABLED" } else { "DISABLED" });
    out.blank();
    out.line("Overall status:");
    out.line(format!("  Active: {}", agent.udi()));
    let none = |v: Option<&String>| v.cloned().unwrap_or_else(|| "<none>".into());
    out.field(3, "Reservation status", reservation_status(agent));
    out.field(3, "Request code", none(info.request.as_ref().map(|r| &r.code)));
    out.field(3, "Last return code", none(info.last_return_code.as_ref()));
    out.field(3, "Last Confirmation code", none(info.last_confirmation_code.as_ref()));
    out.field(3, "Reservation authorization code", none(reserved.map(|r| &r.authorization_code)));
    out.blank();
    out.line("Specified license reservations:");
    for l in reserved.map(|r| r.licenses.as_slice()).unwrap_or_default() {
        out.line(format!("  {} ({}):", description(config, &l.tag), l.tag));
        out.field(2, "Description", description(config, &l.tag));
        out.field(2, "Total reserved count", l.count);
        out.line("    Term information:");
        out.line(format!("      Active: {}", agent.udi()));
        out.field(4, "License type", &l.license_type);
        let date = |t: Option<Timestamp>| t.map_or_else(|| "<none>".into(), format_device_time);
        out.field(5, "Start Date", date(l.start));
        out.field(5, "End Date", date(l.end));
        out.field(5, "Term Count", l.count);
    }
}

/// `show license all`: the §5.1 `show license all` capture (CSR1000V), block for block.
pub fn all(agent: &Agent, config: &DeviceConfig, now: Timestamp) -> String {
    let mut out = Out::default();
    all_into(&mut out, agent, config, now);
    out.finish()
}

/// `show license udi`: the §5.1 `UDI:` form (one device, no HA list).
pub fn udi(agent: &Agent) -> String {
    format!("UDI: {}\n", agent.udi())
}

/// `show license eventlog`: the §5.2 event log form (`**** Event Log ****`, one line per entry
/// with a millisecond UTC time; ` No EventLog Found.` when empty).
pub fn eventlog(agent: &Agent) -> String {
    let mut out = Out::default();
    out.line("**** Event Log ****");
    out.blank();
    if agent.event_log.is_empty() {
        out.line(" No EventLog Found.");
    }
    for entry in &agent.event_log {
        out.line(format!("{} UTC {}", entry.at.to_datetime().format("%Y-%m-%d %H:%M:%S%.3f"), entry.message));
    }
    out.finish()
}

/// The controller's name of the transport in use (seed 000:551 `proxy | satellite |
/// smart-licensing`; the call-home and off forms of A-10 by their own names).
fn mode_name(config: &DeviceConfig) -> &'static str {
    match config.transport.kind {
        TransportKind::Smart if config.active_proxy().is_some() => "proxy",
        TransportKind::Smart => "smart-licensing",
        TransportKind::Satellite => "satellite",
        TransportKind::Callhome => "callhome",
        TransportKind::Off => "off",
    }
}

/// `show license mode` (seed 000:575, no sample output): the mode currently in use.
pub fn mode(config: &DeviceConfig) -> String {
    format!("Smart Licensing mode: {}\n", mode_name(config))
}

/// `show license server` (seed 000:576, no sample output): the server currently in use, and the
/// proxy it is reached through.
pub fn server(config: &DeviceConfig) -> String {
    let mut out = Out::default();
    out.field(0, "Smart Licensing server", config.destination().unwrap_or("<none>"));
    if let Some(proxy) = config.active_proxy() {
        out.field(0, "Proxy server", format!("{} port {}", proxy.host, proxy.port));
    }
    out.finish()
}

fn xml_attr(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `show license catalog` (seed 000:524: "in a format similar to the MO XML format"; no sample
/// output): the product and each entitlement tag of its catalogue, with the count in use.
pub fn catalog(agent: &Agent, config: &DeviceConfig) -> String {
    let mut out = Out::default();
    out.line(format!("<licenseProduct pid=\"{}\" sn=\"{}\">", xml_attr(&agent.pid), xml_attr(&agent.sn)));
    for (tag, name) in &config.catalog {
        let in_use = agent.usage.get(tag).copied().unwrap_or(0);
        out.line(format!(
            "  <licenseEntitlement tag=\"{}\" name=\"{}\" inUse=\"{in_use}\"/>",
            xml_attr(tag),
            xml_attr(name)
        ));
    }
    out.line("</licenseProduct>");
    out.finish()
}

/// A time left without its leading zero units, as the tech support's scheduled jobs print it
/// (§5.2: `9 hours, 57 minutes, 47 seconds remaining`).
pub fn format_remaining(ms: i64) -> String {
    let full = format_time_left(ms);
    let parts: Vec<&str> = full.split(", ").collect();
    let first = parts.iter().position(|p| !p.starts_with("0 ")).unwrap_or(parts.len() - 1);
    parts[first..].join(", ")
}

fn job(out: &mut Out, name: &str, at: Timestamp, now: Timestamp) {
    if at > now {
        out.field(0, name, format!("{} ({} remaining)", format_device_time(at), format_remaining(at.0 - now.0)));
    } else {
        out.field(0, name, format_device_time(at));
    }
}

/// `Upcoming Scheduled Jobs` (§5.2 tech support), from the timers the state holds.
fn scheduled_jobs(out: &mut Out, agent: &Agent, now: Timestamp) {
    out.title("Upcoming Scheduled Jobs", 23);
    out.field(0, "Current time", format_device_time(now));
    if !agent.enabled {
        return;
    }
    match &agent.registration {
        Registration::Registering(a) | Registration::Failed(a) => match a.next_attempt {
            Some(at) => job(out, "Registration Retry", at, now),
            None => out.field(0, "Registration Retry", "Expired Not Rescheduled"),
        },
        Registration::Registered(r) => {
            job(out, "ID Certificate Renewal", r.next_renewal, now);
            job(out, "Registration Expiration", r.expires, now);
        }
        Registration::Reserved(r) => {
            if let Some(at) = r.next_expiry() {
                job(out, "Reservation Term End", at, now);
            }
        }
        Registration::Unidentified | Registration::Expired { .. } => {}
    }
    if let Some(at) = agent.communication.next_attempt {
        job(out, "Authorization Renewal", at, now);
    }
    if let (Some(at), Authorization::Authorized { .. } | Authorization::OutOfCompliance { .. }) =
        (agent.communication.deadline, &agent.authorization)
    {
        job(out, "Authorization Expiration", at, now);
    }
    if agent.evaluation_counting() {
        job(out, "Evaluation Expiration", now.plus_ms(evaluation_left_ms(agent, now)), now);
    }
}

fn statistics_entry(out: &mut Out, name: &str, failures: u32, last: Option<&Attempt>) {
    out.line(format!("{name}:"));
    out.field(1, "Ongoing Failure", format!("Overall={failures}"));
    match last {
        None => {
            out.field(1, "Last Response", "<none>");
            out.field(2, "Failure Reason", "<none>");
        }
        Some(attempt) => {
            let (text, reason) = attempt_text(attempt, Detail::Full);
            out.field(1, "Last Response", text);
            out.field(2, "Failure Reason", reason.unwrap_or("<none>"));
        }
    }
}

/// `Communication Statistics:` (§5.2 tech support), per exchange with what the state keeps: the
/// ongoing failure count and the last response (no totals).
fn communication_statistics(out: &mut Out, agent: &Agent, config: &DeviceConfig) {
    out.line("Communication Statistics:");
    out.line("=".repeat(23));
    let level = if config.transport.kind == TransportKind::Off {
        "NONE"
    } else if config.active_proxy().is_some() {
        "INDIRECT"
    } else {
        "DIRECT"
    };
    out.field(0, "Communication Level Allowed", level);
    let registered_at;
    let (reg_failures, reg_last) = match &agent.registration {
        Registration::Registering(a) | Registration::Failed(a) => (a.failures, a.last()),
        Registration::Registered(r) => {
            registered_at = Attempt { at: r.initial_registration, outcome: Outcome::Succeeded };
            (0, Some(&registered_at))
        }
        Registration::Unidentified | Registration::Expired { .. } | Registration::Reserved(_) => (0, None),
    };
    statistics_entry(out, "Registration", reg_failures, reg_last);
    statistics_entry(out, "Authorization Request", agent.communication.failures, agent.communication.last.as_ref());
    let (renew_failures, renew_last) = match agent.registration.registered() {
        Some(r) => (r.renewal_failures, r.last_renewal.as_ref()),
        None => (0, None),
    };
    statistics_entry(out, "ID Certificate Renewal", renew_failures, renew_last);
}

/// The device configuration that licensing depends on (hostname, trust points, usage).
fn configuration_section(out: &mut Out, agent: &Agent, config: &DeviceConfig) {
    out.title("Configuration", 13);
    out.field(0, "Hostname", &config.hostname);
    out.field(0, "Smart Licensing hostname privacy", if config.hostname_privacy { "ENABLED" } else { "DISABLED" });
    out.line("Trust points:");
    if config.trustpoints.is_empty() {
        out.line("  <none>");
    }
    for (name, tp) in &config.trustpoints {
        let cert = if tp.certificate.is_some() { "CA certificate installed" } else { "no CA certificate" };
        let revocation = if tp.revocation_check_none { ", revocation-check none" } else { "" };
        out.line(format!("  {name}: {cert}{revocation}"));
    }
    out.line("Usage:");
    if agent.usage.is_empty() {
        out.line("  <none>");
    }
    for (tag, count) in &agent.usage {
        out.line(format!("  license feature \"{tag}\" count {count}"));
    }
}

/// `show license tech support`: `show license all`, then the configuration, the scheduled jobs
/// and the communication statistics (layout of the §5.2 tech support capture).
pub fn tech_support(agent: &Agent, config: &DeviceConfig, now: Timestamp) -> String {
    let mut out = Out::default();
    out.line("Smart Licensing Tech Support info");
    out.blank();
    all_into(&mut out, agent, config, now);
    out.blank();
    configuration_section(&mut out, agent, config);
    out.blank();
    scheduled_jobs(&mut out, agent, now);
    out.blank();
    communication_statistics(&mut out, agent, config);
    out.finish()
}

/// `show clock`, device style: `*08:09:24.123 UTC Wed Mar 13 2024` (the `*`: the time is not
/// authoritative, no NTP; day of month unpadded as in §5.2 `Fri Sep 1 2023`).
pub fn show_clock(now: Timestamp) -> String {
    format!("{}\n", now.to_datetime().format("*%H:%M:%S%.3f UTC %a %b %-d %Y"))
}

/// `show hostname privacy` (seed 000:578, no sample output): the §5.1 `Data Privacy:` block.
pub fn show_hostname_privacy(config: &DeviceConfig) -> String {
    let mut out = Out::default();
    data_privacy_block(&mut out, config);
    out.finish()
}

#[cfg(test)]
mod tests;
