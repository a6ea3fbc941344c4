//! The device configuration through the real `smartlic agent` binary (issue 11): every
//! configuration block the seeds print pastes into a fresh device; a line of a parent mode leaves
//! the sub-mode as on IOS; the call-home switches and `license smart transport off` leave the
//! device with no transport; `show running-config` and the call-home and trust point views print
//! what was entered; registration raises `%SMART_LIC-4-CONFIG_NOT_SAVED` until `write memory`.

use crate::common;

use common::*;
use smartlic_core::{Clock, SystemClock};
use smartlic_proto::CertificateAuthority;
use std::path::{Path, PathBuf};

/// A CA certificate in a file, for `crypto pki authenticate` (read from standard input).
fn ca_file(dir: &Path) -> PathBuf {
    let ca = CertificateAuthority::generate("seed test CA", SystemClock.now().0 / 1000).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, ca.cert_pem()).unwrap();
    path
}

fn new_device(dir: &Path) {
    agent(dir, &["init", "--pid", "C9300-24UX", "--sn", "FCW2134L0RN", "--hostname", "Switch"], None);
}

/// `-c` arguments for each line.
fn commands<S: AsRef<str>>(lines: &[S]) -> Vec<&str> {
    lines.iter().flat_map(|l| ["-c", l.as_ref()]).collect()
}

// ---- the seeds' configuration blocks ---------------------------------------------------------

/// Configuration-mode prompts of the seeds; `(config-callhome ` is seed 001/003's capture of
/// `(config-callhome)#` that lost its `)#`.
const PROMPTS: [&str; 6] = [
    "(config)#",
    "(config-callhome)#",
    "(cfg-call-home)#",
    "(cfg-call-home-profile)#",
    "(ca-trustpoint)#",
    "(config-callhome ",
];

/// One configuration block of a seed: where it starts, and its lines as they are pasted.
#[derive(Debug)]
struct Block {
    at: String,
    lines: Vec<String>,
    /// A `show running-config` capture: what is pasted must show again.
    shown: bool,
}

/// The command after a configuration prompt on `line`, if it has one. Seed 000 puts its
/// examples in HTML table cells: the command ends at the closing tag.
fn after_prompt(line: &str) -> Option<String> {
    let (at, prompt) = PROMPTS.iter().filter_map(|p| line.find(p).map(|i| (i, p))).min()?;
    let rest = &line[at + prompt.len()..];
    let rest = rest.split("</").next().unwrap_or(rest);
    Some(rest.trim().to_string())
}

/// An exec prompt (`switch#`, `Device#`, `#`) at the start of a line.
fn exec_prompt(line: &str) -> Option<&str> {
    let (head, rest) = line.split_once('#')?;
    head.chars().all(|c| c.is_ascii_alphanumeric() || c == '-').then_some(rest.trim())
}

fn is_show_run(line: &str) -> bool {
    let command = exec_prompt(line).unwrap_or(line.trim());
    ["show run callhome", "show running-config callhome", "show running-config", "show run"].contains(&command)
}

/// Lines that are the page's, not the capture's: blank lines and Markdown code fences.
fn is_layout(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with("```") || t == "<#root>"
}

/// Extracts the configuration blocks of one seed's text:
/// - prompt blocks: consecutive lines carrying a configuration prompt (the page's blank lines
///   and fences between them do not end a block); a line broken inside a URL (`...://`) goes on
///   with the next lines that start with `<` or `/` (seed 004 split one URL over three);
/// - `show running-config [callhome]` captures: the lines after the command, up to the first
///   line that does not start with a lowercase letter or `!` (the next prompt such as `Switch#`,
///   a `[+]` note, or the prose after the capture); `<omitted>` marks a cut and is dropped.
fn blocks(name: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if is_show_run(lines[i]) {
            let mut block = Block { at: format!("{name}:{}", i + 1), lines: Vec::new(), shown: true };
            i += 1;
            while i < lines.len() {
                let line = lines[i].trim();
                i += 1;
                if is_layout(line) || line == "<omitted>" {
                    continue;
                }
                let starts_config = line.starts_with(|c: char| c.is_ascii_lowercase() || c == '!');
                if !starts_config || exec_prompt(line).is_some() {
                    i -= 1;
                    break;
                }
                block.lines.push(line.to_string());
            }
            out.push(block);
            continue;
        }
        if let Some(first) = after_prompt(lines[i]) {
            let mut block = Block { at: format!("{name}:{}", i + 1), lines: vec![first], shown: false };
            i += 1;
            while i < lines.len() {
                let line = lines[i].trim();
                let last = block.lines.last_mut().expect("one line at least");
                if is_layout(line) {
                    i += 1;
                } else if let Some(command) = after_prompt(line) {
                    block.lines.push(command);
                    i += 1;
                } else if (last.ends_with("://") || last.ends_with('>')) && line.starts_with(['<', '/']) {
                    last.push_str(line);
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(block);
            continue;
        }
        i += 1;
    }
    out
}

/// A sample value for a placeholder of the seeds' syntax (`<IP>`, `<TOKEN>`, ...), by the words
/// it holds; anything else names an address, here a loopback one (nothing is reached: these
/// devices trust no manager).
fn sample(placeholder: &str) -> &'static str {
    let p = placeholder.to_ascii_lowercase();
    let word = |w: &str| p.split(|c: char| !c.is_ascii_alphanumeric()).any(|x| x == w);
    if p.contains("token") {
        "U2VlZFRva2VuMDEyMzQ1Njc4OQ=="
    } else if word("port") {
        "8443"
    } else if p.contains("interface") {
        "GigabitEthernet0/0"
    } else if p.contains("vrf") {
        "Mgmt-vrf"
    } else {
        "127.0.0.1"
    }
}

/// Turns a line of the seeds' text into what an engineer pastes, by these rules (and no other):
/// 1. HTML entities `&lt;` `&gt;` are decoded; text from `<<--` on is the page's annotation;
/// 2. `<https://...>` is a Markdown link around a URL: the URL; `<mailto:...>` after an address
///    is the page's link on it: dropped;
/// 3. `http(s)://` (seed 000's "either") is `https://`;
/// 4. `[...]` is the syntax notation of an optional part: its content;
/// 5. `<placeholder>` becomes a sample value ([`sample`]);
/// 6. `call home` is how seeds 001/003 print `callhome` in one capture.
fn pasteable(line: &str) -> String {
    let mut s = line.replace("&lt;", "<").replace("&gt;", ">");
    if let Some(i) = s.find("<<--") {
        s.truncate(i);
    }
    while let Some(link) = s.find("<mailto:") {
        let end = s[link..].find('>').map_or(s.len(), |e| link + e + 1);
        s.replace_range(link..end, "");
    }
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| match w.strip_prefix('<').and_then(|u| u.strip_suffix('>')) {
            Some(url) if url.contains("://") => url.to_string(),
            _ => w.to_string(),
        })
        .collect();
    let mut s = words.join(" ").replace("http(s)://", "https://").replace(['[', ']'], "");
    while let Some(open) = s.find('<') {
        let Some(close) = s[open..].find('>').map(|c| open + c) else { break };
        s = format!("{}{}{}", &s[..open], sample(&s[open + 1..close]), &s[close + 1..]);
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s == "call home" {
        "callhome".into()
    } else {
        s
    }
}

/// Splits a line that holds its first word again (seed 001 printed two `destination-profile`
/// lines as one), and completes a URL cut off after `http` at the page edge with the URL the
/// same seed gave that destination before.
fn unwrap_lines(lines: Vec<String>, urls: &mut Vec<(String, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        let first = line.split(' ').next().unwrap_or("").to_string();
        let again = line[first.len()..].find(&format!(" {first} ")).filter(|_| !first.starts_with('!'));
        let parts = match again {
            Some(i) => vec![line[..first.len() + i].to_string(), line[first.len() + i + 1..].to_string()],
            None => vec![line],
        };
        for mut part in parts {
            if let Some(prefix) = part.strip_suffix(" http") {
                if let Some((_, url)) = urls.iter().find(|(p, _)| p == prefix) {
                    part = format!("{prefix} http {url}");
                }
            } else if let Some((prefix, url)) = part.rsplit_once(" http ") {
                urls.push((prefix.to_string(), url.to_string()));
            }
            out.push(part);
        }
    }
    out
}

fn seed_texts() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds");
    let mut seeds: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the seeds are read at test time from {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn every_configuration_block_of_the_seeds_pastes_into_a_fresh_device() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_file(tmp.path());
    let mut pasted = 0;
    let mut seen_shown = 0;
    let mut all_lines = Vec::new();
    for (name, text) in seed_texts() {
        let mut urls = Vec::new();
        for block in blocks(&name, &text) {
            let lines: Vec<String> = block.lines.iter().map(|l| pasteable(l)).collect();
            let lines = unwrap_lines(lines, &mut urls);
            let dev = tmp.path().join(format!("dev{pasted}"));
            new_device(&dev);
            let mut script = vec!["configure terminal".to_string()];
            script.extend(lines.iter().cloned());
            let (ok, out) = agent_run(&dev, &commands(&script), Some(&ca));
            for refusal in ["% Invalid", "% Ambiguous", "% Incomplete", "% Unrecognized"] {
                assert!(!out.contains(refusal), "{}: {lines:#?} was refused:\n{out}", block.at);
            }
            assert!(ok, "{}: {lines:#?}:\n{out}", block.at);
            if block.shown {
                // What a show running-config printed shows again once pasted.
                seen_shown += 1;
                let shown = agent(&dev, &["-c", "show running-config"], None);
                let shown: Vec<&str> = shown.lines().map(str::trim).collect();
                for line in lines.iter().filter(|l| !l.starts_with('!') && !l.starts_with("version ")) {
                    assert!(shown.contains(&line.as_str()), "{}: {line:?} not in\n{shown:#?}", block.at);
                }
            }
            pasted += 1;
            all_lines.extend(lines);
        }
    }
    // The lines the issue names among those refused before.
    for want in ["phone-contact +919XXXXXXXXX", "streetaddress ST3, RD 4, Bangalore", "ip name-server 127.0.0.1"] {
        assert!(all_lines.iter().any(|l| l == want), "{want} was not pasted");
    }
    assert!(all_lines
        .iter()
        .any(|l| l.starts_with("destination-profile CiscoTAC-1 index 1 http http://tools.cisco.com/")));
    // Seeds 000 (6 blocks), 001 (4 captures, 3 blocks), 003 (4 captures, 3 blocks), 004 (5
    // blocks, 1 capture): the extraction found every one.
    assert_eq!((pasted, seen_shown), (27, 9));
}

// ---- parent-mode fall-through --------------------------------------------------------------

#[test]
fn a_parent_mode_line_leaves_the_sub_mode_at_the_prompt_and_with_c() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_file(tmp.path());
    // One-shot: `crypto pki authenticate` right after the trust point's lines, no `end`.
    let dev = tmp.path().join("oneshot");
    new_device(&dev);
    let lines = ["crypto pki trustpoint LicRoot", "enrollment terminal", "crypto pki authenticate LicRoot"];
    let out = agent(&dev, &commands(&lines), Some(&ca));
    assert!(out.contains("% Certificate successfully imported"), "{out}");

    // The interactive prompt: the same lines typed, the certificate pasted after them.
    let dev = tmp.path().join("prompt");
    new_device(&dev);
    let input = tmp.path().join("typed");
    let typed = format!(
        "configure terminal\ncrypto pki trustpoint LicRoot\nrevocation-check none\n\
         crypto pki authenticate LicRoot\n{}\ncall-home\nprofile \"CiscoTAC-1\"\nactive\n\
         contact-email-addr ops@example.com\nservice call-home\nend\nshow running-config\n",
        std::fs::read_to_string(&ca).unwrap()
    );
    std::fs::write(&input, typed).unwrap();
    let out = agent(&dev, &[], Some(&input));
    assert!(out.contains("% Certificate successfully imported"), "{out}");
    assert!(!out.contains("% Invalid"), "{out}");
    // `contact-email-addr` went to call-home, `service call-home` to the top.
    assert!(out.contains("Switch(ca-trustpoint)#Enter the base 64 encoded CA certificate."), "{out}");
    assert!(out.contains("% Certificate successfully imported\nSwitch(config)#"), "back in (config): {out}");
    let run = out.split("!Command: show running-config").nth(1).unwrap();
    assert!(
        run.contains("service call-home\n!\ncrypto pki trustpoint LicRoot\n revocation-check none\n!\ncall-home\n profile \"CiscoTAC-1\"\n  active\n contact-email-addr ops@example.com\n"),
        "{run}"
    );

    // A line of no mode is still refused with the marker, and changes nothing.
    let (ok, out) = agent_run(&dev, &["-c", "crypto pki trustpoint LicRoot", "-c", "enrolment terminal"], None);
    assert!(!ok && out.contains("% Invalid input detected at '^' marker."), "{out}");
}

// ---- configuration takes effect ------------------------------------------------------------

/// A port nothing listens on: a device sending there fails to connect, at once.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn status(dev: &Path) -> String {
    agent(dev, &["-c", "show license status"], None)
}

#[test]
fn call_home_switches_and_transport_off_leave_the_device_without_a_transport() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_file(tmp.path());
    let url = format!("https://127.0.0.1:{}", closed_port());
    let ios = |last: &[&str]| {
        let mut lines = vec![
            "crypto pki trustpoint SLA-TrustPoint".to_string(),
            "crypto pki authenticate SLA-TrustPoint".into(),
            "service call-home".into(),
            "call-home".into(),
            "profile \"CiscoTAC-1\"".into(),
            "destination transport-method http".into(),
            format!("destination address http {url}"),
        ];
        lines.extend(last.iter().map(|l| l.to_string()));
        lines
    };
    let nxos = |last: &[&str]| {
        let mut lines = vec![
            "crypto pki trustpoint SLA-TrustPoint".to_string(),
            "crypto pki authenticate SLA-TrustPoint".into(),
            "callhome".into(),
            "destination-profile CiscoTAC-1 transport-method http".into(),
            format!("destination-profile CiscoTAC-1 index 1 http {url}"),
            "enable".into(),
        ];
        lines.extend(last.iter().map(|l| l.to_string()));
        lines
    };
    let register = "license smart register idtoken U2VlZFRva2VuMDEyMzQ1Njc4OQ==";
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("IOS-XE call home", ios(&[]), "Fail to send out Call Home HTTP message"),
        ("NX-OS callhome", nxos(&[]), "Fail to send out Call Home HTTP message"),
        ("no service call-home", ios(&["no service call-home"]), "Communication transport not available"),
        ("no active", ios(&["no active"]), "Communication transport not available"),
        ("no reporting", ios(&["no reporting smart-licensing-data"]), "Communication transport not available"),
        ("no enable", nxos(&["no enable"]), "Communication transport not available"),
        ("transport off", ios(&["license smart transport off"]), "Communication transport not available"),
    ];
    for (i, (what, mut lines, reason)) in cases.into_iter().enumerate() {
        let dev = tmp.path().join(format!("dev{i}"));
        new_device(&dev);
        lines.extend(["end".to_string(), register.to_string()]);
        agent(&dev, &commands(&lines), Some(&ca));
        let shown = status(&dev);
        assert!(shown.contains(&format!("Failure reason: {reason}")), "{what}: {shown}");
    }
}

#[test]
fn one_call_home_profile_is_active_for_licensing_and_http_fails_when_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_file(tmp.path());
    let dev = tmp.path().join("dev");
    new_device(&dev);
    let port = closed_port();
    let lines = [
        "crypto pki trustpoint SLA-TrustPoint".to_string(),
        "crypto pki authenticate SLA-TrustPoint".into(),
        "call-home".into(),
        "profile \"CiscoTAC-1\"".into(),
        "destination address http https://tools.example.com/its/service/oddce/services/DDCEService".into(),
        "no active".into(),
        "profile \"Lab\"".into(),
        format!("destination address http http://127.0.0.1:{port}/its"),
        "reporting smart-licensing-data".into(),
        "end".into(),
    ];
    agent(&dev, &commands(&lines), Some(&ca));
    // The inactive profile's destination is not used: the active reporting one is.
    let sl = agent(&dev, &["-c", "show call-home smart-licensing"], None);
    assert_eq!(
        sl,
        format!(
            "Current smart-licensing transport settings:\n Smart-license messages: enabled\n \
             Profile: Lab (status: ACTIVE)\n Destination  URL(s):  http://127.0.0.1:{port}/its\n"
        )
    );
    assert!(status(&dev).contains(&format!("  URL: http://127.0.0.1:{port}/its")));

    // Active again, the default profile leaves licensing to Lab, which reports it; making it
    // report too is refused, naming the profile in use, and changes nothing.
    let again = ["call-home", "profile \"CiscoTAC-1\"", "active", "reporting smart-licensing-data"];
    let (ok, out) = agent_run(&dev, &commands(&again), None);
    assert!(!ok, "{out}");
    assert!(out.contains("% Profile \"Lab\" is already active for Smart Licensing"), "{out}");
    let profiles = agent(&dev, &["-c", "show call-home profile all"], None);
    assert!(
        profiles.starts_with("Profile Name: CiscoTAC-1\nProfile status: ACTIVE\nProfile mode: Full Reporting\nReporting Data: Smart Call Home\n"),
        "{profiles}"
    );
    assert_eq!(agent(&dev, &["-c", "show call-home smart-licensing"], None), sl);
    assert!(profiles.contains("Profile Name: Lab\nProfile status: ACTIVE\nProfile mode: Full Reporting\nReporting Data: Smart Call Home, Smart Licensing\n"), "{profiles}");

    // The http:// destination was accepted; registering fails when the device connects.
    agent(&dev, &["-c", "license smart register idtoken U2VlZFRva2VuMDEyMzQ1Njc4OQ=="], None);
    let shown = status(&dev);
    assert!(
        shown.contains("Failure reason: Failed to parse SCH server response data: HTTP is no longer supported to reach the backend; HTTPS is only supported."),
        "{shown}"
    );
}

// ---- what the device shows ------------------------------------------------------------------

#[test]
fn show_running_config_and_the_call_home_views_print_what_was_entered() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = ca_file(tmp.path());
    let dev = tmp.path().join("dev");
    new_device(&dev);
    let lines = [
        "license smart url https://m.example.com:8443",
        "crypto pki trustpoint SLA-TrustPoint",
        "enrollment terminal",
        "revocation-check none",
        "crypto pki authenticate SLA-TrustPoint",
        "ip name-server 192.0.2.53",
        "license feature \"ACI Essentials\" count 2",
        "callhome",
        "email-contact sch-smart-licensing@cisco.com",
        "phone-contact +919XXXXXXXXX",
        "destination-profile CiscoTAC-1 transport-method http",
        "destination-profile CiscoTAC-1 index 1 http https://m.example.com/its/service/oddce/services/DDCEService",
        "transport http proxy server 192.0.2.80 port 3128",
        "transport http proxy username dev password s3cret-proxy",
        "transport http use-vrf management",
        "enable",
        "end",
        "configure terminal",
        "license smart url https://manager.example.com:8443",
        "end",
    ];
    agent(&dev, &commands(&lines), Some(&ca));
    let run = agent(&dev, &["-c", "show running-config"], None);
    let body = run.split("\nversion ").nth(1).unwrap();
    let body = &body[body.find('\n').unwrap() + 1..];
    assert_eq!(
        body,
        "hostname Switch\n\
         ip name-server 192.0.2.53\n\
         !\n\
         crypto pki trustpoint SLA-TrustPoint\n enrollment terminal\n revocation-check none\n\
         !\n\
         license smart url https://manager.example.com:8443\n\
         license feature \"ACI Essentials\" count 2\n\
         !\n\
         callhome\n  email-contact sch-smart-licensing@cisco.com\n  phone-contact +919XXXXXXXXX\n  \
         destination-profile CiscoTAC-1 transport-method http\n  \
         destination-profile CiscoTAC-1 index 1 http https://m.example.com/its/service/oddce/services/DDCEService\n  \
         transport http proxy server 192.0.2.80 port 3128\n  \
         transport http proxy username dev password ********\n  \
         transport http use-vrf management\n  enable\n"
    );
    assert!(!run.contains("s3cret-proxy"), "the proxy password is never shown");
    assert!(run.starts_with("!Command: show running-config\n!Running configuration last done at: "), "{run}");

    let section = agent(&dev, &["-c", "show running-config | section callhome"], None);
    assert!(section.starts_with("callhome\n  email-contact") && section.ends_with("  enable\n"), "{section}");
    let license = agent(&dev, &["-c", "show running-config | include license"], None);
    assert_eq!(
        license,
        "license smart url https://manager.example.com:8443\nlicense feature \"ACI Essentials\" count 2\n"
    );
    let callhome = agent(&dev, &["-c", "show run callhome"], None);
    assert!(callhome.starts_with("!Command: show running-config callhome\n"), "{callhome}");
    assert!(callhome.contains("\ncallhome\n  email-contact") && !callhome.contains("license smart url"), "{callhome}");

    let ch = agent(&dev, &["-c", "show call-home"], None);
    for want in [
        "    call home feature : enable\n",
        "    contact person's email address: sch-smart-licensing@cisco.com\n",
        "    contact person's phone number: +919XXXXXXXXX\n",
        "    vrf for call-home messages: management\n",
        "    http proxy: 192.0.2.80:3128\n",
        "    Profile Name: CiscoTAC-1 (ACTIVE)\n",
    ] {
        assert!(ch.contains(want), "{want:?} in {ch}");
    }
    let tp = agent(&dev, &["-c", "show crypto pki trustpoints"], None);
    assert!(tp.starts_with("Trustpoint SLA-TrustPoint:\n          Serial Number (hex): "), "{tp}");
    assert!(tp.contains("    Certificate configured.\n") && tp.contains("    Revocation check: none\n"), "{tp}");

    // The running configuration pasted into a fresh device gives the same configuration.
    let copy = tmp.path().join("copy");
    new_device(&copy);
    let mut pasted: Vec<&str> = vec!["configure terminal"];
    pasted.extend(run.lines().filter(|l| !l.contains("password")));
    let (ok, out) = agent_run(&copy, &commands(&pasted), None);
    assert!(ok, "{out}");
    let again = agent(&copy, &["-c", "show running-config"], None);
    let strip =
        |t: &str| t.lines().filter(|l| !l.starts_with('!') && !l.contains("password")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&again), strip(&run));
}

#[test]
fn registration_raises_config_not_saved_until_write_memory() {
    let m = start();
    ok(&m, &["account", "create", "--domain", "example.com"]);
    ok(
        &m,
        &["license", "add", "--account", "example.com", "--va", "Default", "--tag", "ACI Advantage", "--count", "2"],
    );
    let token = ok(&m, &["token", "create", "--account", "example.com", "--va", "Default"]).trim().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("dev");
    new_device(&dev);
    // Seed 004's call-home form, with the manager as the destination.
    let lines = [
        "crypto pki trustpoint SLA-TrustPoint".to_string(),
        "crypto pki authenticate SLA-TrustPoint".into(),
        "call-home".into(),
        "profile \"CiscoTAC-1\"".into(),
        format!("destination address http {}", m.url),
        "end".into(),
        "write memory".into(),
    ];
    let out = agent(&dev, &commands(&lines), Some(&m.ca));
    assert!(out.ends_with("Building configuration...\n[OK]\n"), "{out}");
    let run = agent(&dev, &["-c", "show running-config"], None);
    assert!(run.contains("!Startup configuration saved at: "), "{run}");

    let out = agent(&dev, &["-c", &format!("license smart register idtoken {token}")], None);
    assert_eq!(
        out,
        "Registration process is in progress. Use the 'show license status' command to check the progress and result\n\
         %SMART_LIC-4-CONFIG_NOT_SAVED: Smart Licensing configuration has not been saved\n"
    );
    assert!(status(&dev).contains("Status: REGISTERED"));
    let run = agent(&dev, &["-c", "show running-config"], None);
    assert!(run.contains("!Startup configuration: not saved since the last change (write memory)"), "{run}");
    // `wr` saves; nothing more is raised until a new key is made.
    assert_eq!(agent(&dev, &["-c", "wr"], None), "Building configuration...\n[OK]\n");
    assert!(agent(&dev, &["-c", "show running-config"], None).contains("!Startup configuration saved at: "));
    assert_eq!(agent(&dev, &["-c", "license smart renew auth"], None), "");
}
