//! Tests of the engine (abbreviation, errors, help) and of the smart agent grammar.

use super::*;

fn cli() -> Cli {
    Cli::new()
}

fn cmd(mode: &Mode, line: &str) -> Command {
    match cli().parse(mode, line) {
        Ok(Parsed::Command(c)) => c,
        other => panic!("{line:?} in {mode:?}: {other:?}"),
    }
}

fn err(mode: &Mode, line: &str) -> CliError {
    match cli().parse(mode, line) {
        Err(e) => e,
        other => panic!("{line:?} should fail: {other:?}"),
    }
}

/// The `^` column of an invalid-input error.
fn marker(mode: &Mode, line: &str) -> usize {
    match err(mode, line) {
        CliError::Invalid { pos, line: echoed } => {
            assert_eq!(echoed, line.trim_end());
            pos
        }
        other => panic!("{line:?}: expected invalid input, got {other:?}"),
    }
}

fn help(mode: &Mode, line: &str) -> Vec<(String, String)> {
    match cli().parse(mode, line) {
        Ok(Parsed::Help(h)) => h,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn names(items: &[(String, String)]) -> Vec<&str> {
    items.iter().map(|(n, _)| n.as_str()).collect()
}

const EXEC: Mode = Mode::Exec;
const CONFIG: Mode = Mode::Config;

#[test]
fn every_keyword_and_argument_has_help() {
    assert_eq!(cli().missing_help(), Vec::<String>::new());
}

#[test]
fn pattern_expansion_covers_alternatives_and_options() {
    let toks = pattern_tokens("a {b|c [d]} [e]");
    let mut i = 0;
    let mut paths = expand(&toks, &mut i);
    paths.sort();
    let want: Vec<Vec<&str>> = vec![
        vec!["a", "b"],
        vec!["a", "b", "e"],
        vec!["a", "c"],
        vec!["a", "c", "d"],
        vec!["a", "c", "d", "e"],
        vec!["a", "c", "e"],
    ];
    assert_eq!(paths, want);
}

#[test]
fn abbreviations_resolve_unique_prefixes() {
    assert_eq!(cmd(&EXEC, "sh lic stat"), Command::ShowLicense(LicenseView::Status));
    assert_eq!(cmd(&EXEC, "SHOW LICENSE ALL"), Command::ShowLicense(LicenseView::All));
    assert_eq!(cmd(&EXEC, "sh lic te sup"), Command::ShowLicense(LicenseView::TechSupport));
    assert_eq!(cmd(&EXEC, "conf t"), Command::ConfigureTerminal);
    assert_eq!(cmd(&EXEC, "  wr   mem  "), Command::WriteMemory);
    assert_eq!(cmd(&CONFIG, "lic sm en"), Command::SmartEnable(true));
    // An exact keyword wins over a longer one it prefixes (`transport` / `transport-mode`).
    assert_eq!(cmd(&CONFIG, "license smart transport off"), Command::SmartTransport(Some(Transport::Off)));
    assert_eq!(cmd(&CONFIG, "lic sm transport-m smart"), Command::TransportMode(Some(TransportMode::SmartLicensing)));
}

#[test]
fn ambiguous_prefixes_are_refused_with_the_line() {
    assert_eq!(err(&EXEC, "sh c"), CliError::Ambiguous { line: "sh c".into() });
    assert_eq!(err(&EXEC, "co"), CliError::Ambiguous { line: "co".into() });
    assert_eq!(err(&EXEC, "license smart re"), CliError::Ambiguous { line: "license smart re".into() });
    assert_eq!(err(&CONFIG, "license smart trans off"), CliError::Ambiguous { line: "license smart trans off".into() });
    assert_eq!(err(&EXEC, "sh c").to_string(), "% Ambiguous command:  \"sh c\"");
}

#[test]
fn invalid_input_marks_the_first_wrong_character() {
    assert_eq!(marker(&EXEC, "sh lic foo"), 7);
    assert_eq!(marker(&EXEC, "foo"), 0);
    assert_eq!(marker(&EXEC, "show license statz"), 17);
    assert_eq!(marker(&EXEC, "show license statuses"), 19);
    assert_eq!(marker(&EXEC, "show clock extra"), 11);
    assert_eq!(marker(&EXEC, "license smart renew now"), 20);
    assert_eq!(marker(&EXEC, "license smart register idtoken T forc x"), 38);
    // Typed arguments: range, digits, schemes, addresses.
    let proxy = "license smart transport-mode proxy ip-address 10.0.0.1 port ";
    assert_eq!(marker(&CONFIG, &format!("{proxy}70000")), proxy.len());
    assert_eq!(marker(&CONFIG, &format!("{proxy}80x")), proxy.len() + 2);
    assert_eq!(marker(&CONFIG, "license smart url ftp://x"), 18);
    assert_eq!(marker(&CONFIG, "license smart url htp://x"), 20);
    assert_eq!(marker(&CONFIG, "license smart transport-mode proxy ip-address bad_host port 1"), 49);
    assert_eq!(marker(&CONFIG, "license feature \"ACI Essentials\" count -1"), 39);
    // An unterminated quote points at the quote.
    assert_eq!(marker(&CONFIG, "license feature \"ACI Ess"), 16);
    // A command of another mode: the marker is where the word leaves every keyword here
    // (`en` is still `end`).
    assert_eq!(marker(&Mode::CallHome, "enrollment terminal"), 2);
    assert_eq!(marker(&Mode::CallHome, "revocation-check none"), 0);
}

#[test]
fn errors_render_as_the_device_prints_them() {
    let e = err(&EXEC, "sh lic foo");
    assert_eq!(e.to_string(), "sh lic foo\n       ^\n% Invalid input detected at '^' marker.");
    let prompt = EXEC.prompt("Device");
    assert_eq!(e.render_after_prompt(prompt.len()), "              ^\n% Invalid input detected at '^' marker.");
    assert_eq!(err(&EXEC, "show license").to_string(), "% Incomplete command.");
    assert_eq!(err(&EXEC, "zz?").to_string(), "% Unrecognized command");
}

#[test]
fn incomplete_commands() {
    for line in
        ["show license", "show", "license smart register idtoken", "clock set 10:00:00", "clock set 10:00:00 1 Jan"]
    {
        assert_eq!(err(&EXEC, line), CliError::Incomplete, "{line}");
    }
    for line in ["license feature \"ACI Essentials\"", "license smart transport-mode proxy ip-address 1.2.3.4", "no"] {
        assert_eq!(err(&CONFIG, line), CliError::Incomplete, "{line}");
    }
}

#[test]
fn blank_lines_and_comments_do_nothing() {
    assert_eq!(cli().parse(&EXEC, "   "), Ok(Parsed::Empty));
    assert_eq!(cli().parse(&CONFIG, "! a comment"), Ok(Parsed::Empty));
}

#[test]
fn help_lists_next_words_sorted_with_cr() {
    let h = help(&EXEC, "show license ?");
    assert_eq!(
        names(&h),
        ["all", "catalog", "eventlog", "mode", "server", "status", "summary", "tech", "udi", "usage"]
    );
    assert!(h.iter().all(|(_, text)| !text.is_empty()));
    let text = format_help(&h);
    assert!(text.starts_with("  all       Show license all information\n"), "{text}");
    assert!(text.contains("\n  usage     Show license usage information"), "{text}");

    assert_eq!(names(&help(&EXEC, "sh lic ?")), names(&h));
    assert_eq!(names(&help(&EXEC, "show clock ?")), ["<cr>"]);
    assert_eq!(names(&help(&EXEC, "license smart register idtoken ?")), ["WORD"]);
    assert_eq!(names(&help(&EXEC, "license smart register idtoken T ?")), ["force", "<cr>"]);
    assert_eq!(names(&help(&EXEC, "clock set ?")), ["hh:mm:ss"]);
    assert_eq!(names(&help(&EXEC, "clock set 10:00:00 ?")), ["<1-31>", "MONTH"]);
    assert_eq!(names(&help(&EXEC, "clock set 10:00:00 1 Jan ?")), ["<1993-2035>"]);
    assert_eq!(names(&help(&CONFIG, "license smart transport-mode proxy ip-address 1.2.3.4 port ?")), ["<1-65535>"]);
    assert_eq!(names(&help(&CONFIG, "no ?")), ["crypto", "ip", "license", "service"]);
    assert_eq!(names(&help(&CONFIG, "no license ?")), ["feature", "legacy", "smart"]);
    let config = help(&CONFIG, "?");
    for word in
        ["call-home", "callhome", "crypto", "do", "end", "exit", "hostname", "ip", "license", "no", "ping", "service"]
    {
        assert!(names(&config).contains(&word), "{word} missing from {config:?}");
    }
    assert_eq!(
        names(&help(&Mode::Trustpoint("T".into()), "?")),
        ["do", "end", "enrollment", "exit", "revocation-check"]
    );
}

#[test]
fn help_on_a_partial_word_lists_the_words_it_starts() {
    assert_eq!(names(&help(&EXEC, "sh?")), ["show"]);
    assert_eq!(names(&help(&EXEC, "c?")), ["clock", "configure", "copy"]);
    assert_eq!(names(&help(&EXEC, "show license s?")), ["server", "status", "summary"]);
    assert_eq!(names(&help(&EXEC, "clock set 10:0?")), ["hh:mm:ss"]);
    assert_eq!(err(&EXEC, "zz?"), CliError::Unrecognized);
    // A wrong word before the `?` is reported like any invalid input.
    assert_eq!(marker(&EXEC, "sh lic foo ?"), 7);
}

#[test]
fn every_exec_command_resolves() {
    use Command::*;
    let views = [
        ("all", LicenseView::All),
        ("status", LicenseView::Status),
        ("summary", LicenseView::Summary),
        ("usage", LicenseView::Usage),
        ("tech support", LicenseView::TechSupport),
        ("mode", LicenseView::Mode),
        ("server", LicenseView::Server),
        ("catalog", LicenseView::Catalog),
        ("udi", LicenseView::Udi),
        ("eventlog", LicenseView::Eventlog),
    ];
    for (word, view) in views {
        assert_eq!(cmd(&EXEC, &format!("show license {word}")), ShowLicense(view));
    }
    let cases: Vec<(&str, Command)> = vec![
        ("show hostname privacy", ShowHostnamePrivacy),
        ("show clock", ShowClock),
        ("show running-config", ShowRunningConfig { callhome: false }),
        ("show run callhome", ShowRunningConfig { callhome: true }),
        ("show call-home", ShowCallHome(CallHomeView::Summary)),
        ("show call-home smart-licensing", ShowCallHome(CallHomeView::SmartLicensing)),
        ("show call-home profile all", ShowCallHome(CallHomeView::Profile(None))),
        ("show call-home profile CiscoTAC-1", ShowCallHome(CallHomeView::Profile(Some("CiscoTAC-1".into())))),
        ("show crypto pki trustpoints", ShowTrustpoints),
        ("license smart register idtoken NjA0-abc%3D", Register { token: "NjA0-abc%3D".into(), force: false }),
        ("license smart register idtoken XXXX force", Register { token: "XXXX".into(), force: true }),
        ("license smart deregister", Deregister),
        ("license smart renew id", Renew(super::Renew::Id)),
        ("license smart renew ID", Renew(super::Renew::Id)),
        ("license smart renew auth", Renew(super::Renew::Auth)),
        ("license smart conversion start", Conversion(true)),
        ("license smart conversion stop", Conversion(false)),
        ("license smart reservation request universal", ReservationRequest(ReservationKind::Universal)),
        ("license smart reservation request specific", ReservationRequest(ReservationKind::Specific)),
        ("license smart reservation request local", ReservationRequest(ReservationKind::Specific)),
        (
            "license smart reservation install ABC-123 xyz",
            ReservationInstall { code: "ABC-123 xyz".into(), file: false },
        ),
        (
            "license smart reservation install \"<specificPLR>a b</specificPLR>\"",
            ReservationInstall { code: "\"<specificPLR>a b</specificPLR>\"".into(), file: false },
        ),
        (
            "license smart reservation install file /tmp/AC.xml",
            ReservationInstall { code: "/tmp/AC.xml".into(), file: true },
        ),
        ("license smart reservation return", ReservationReturn { authorization: None, force: false }),
        ("license smart reservation return local", ReservationReturn { authorization: None, force: false }),
        ("license smart reservation return local force", ReservationReturn { authorization: None, force: true }),
        (
            "license smart reservation return authorization CODE1",
            ReservationReturn { authorization: Some("CODE1".into()), force: true },
        ),
        ("license smart reservation cancel", ReservationCancel),
        ("configure terminal", ConfigureTerminal),
        ("configure", ConfigureTerminal),
        ("write memory", WriteMemory),
        ("wr", WriteMemory),
        ("copy running-config startup-config", WriteMemory),
        ("exit", Exit),
    ];
    for (line, want) in cases {
        assert_eq!(cmd(&EXEC, line), want, "{line}");
    }
}

#[test]
fn every_config_command_resolves() {
    use Command::*;
    let proxy = |host: &str, port| TransportMode(Some(super::TransportMode::Proxy { host: host.into(), port }));
    let cases: Vec<(&str, Command)> = vec![
        ("license smart enable", SmartEnable(true)),
        ("no license smart enable", SmartEnable(false)),
        ("license smart reservation", ReservationEnable(true)),
        ("no license smart reservation", ReservationEnable(false)),
        ("license smart url https://10.0.0.1:8443/its", SmartUrl(Some("https://10.0.0.1:8443/its".into()))),
        ("no license smart url", SmartUrl(None)),
        ("license smart transport callhome", SmartTransport(Some(Transport::Callhome))),
        ("license smart transport smart", SmartTransport(Some(Transport::Smart))),
        ("no license smart transport", SmartTransport(None)),
        ("license smart transport-mode smart-licensing", TransportMode(Some(super::TransportMode::SmartLicensing))),
        (
            "license smart transport-mode satellite url https://sat:8443/Transportgateway/services/DeviceRequestHandler",
            TransportMode(Some(super::TransportMode::Satellite {
                url: "https://sat:8443/Transportgateway/services/DeviceRequestHandler".into(),
            })),
        ),
        ("license smart transport-mode proxy ip-address 10.0.0.248 port 4440", proxy("10.0.0.248", 4440)),
        ("license smart transport-mode proxy ip-address proxy.example.com port 3128", proxy("proxy.example.com", 3128)),
        ("no license smart transport-mode", TransportMode(None)),
        ("license smart server https://sat.example.com", SmartServer(Some(("https://sat.example.com".into(), None)))),
        ("license smart server 10.0.0.5 port 8080", SmartServer(Some(("10.0.0.5".into(), Some(8080))))),
        ("no license smart server", SmartServer(None)),
        ("license feature \"ACI Essentials\" count 3", Feature { tag: "ACI Essentials".into(), count: Some(3) }),
        ("license feature C9200L-NW-E-48 count 0", Feature { tag: "C9200L-NW-E-48".into(), count: Some(0) }),
        ("no license feature \"ACI Essentials\"", Feature { tag: "ACI Essentials".into(), count: None }),
        ("no license feature \"ACI Essentials\" count 3", Feature { tag: "ACI Essentials".into(), count: None }),
        ("license legacy \"ACI-LEAF-ADV\" count 2", Legacy { name: "ACI-LEAF-ADV".into(), count: Some(2) }),
        ("no license legacy ACI-LEAF-ADV", Legacy { name: "ACI-LEAF-ADV".into(), count: None }),
        ("hostname apic1", Hostname("apic1".into())),
        ("license smart privacy hostname", PrivacyHostname(true)),
        ("no license smart privacy hostname", PrivacyHostname(false)),
        ("service call-home", ServiceCallHome(true)),
        ("no service call-home", ServiceCallHome(false)),
        ("call-home", CallHome),
        ("callhome", Callhome),
        ("crypto pki trustpoint LicRoot", Trustpoint("LicRoot".into())),
        ("no crypto pki trustpoint LicRoot", NoTrustpoint("LicRoot".into())),
        ("crypto pki authenticate LicRoot", Authenticate("LicRoot".into())),
        ("end", End),
        ("exit", Exit),
        // Seed 000: the controller takes the license actions in configuration mode too.
        ("license smart register idtoken TOKEN", Register { token: "TOKEN".into(), force: false }),
        ("do sh lic stat", ShowLicense(LicenseView::Status)),
        // Other subsystems' lines (seeds 003, 004): kept as entered, in canonical form.
        ("version 9.3(4) Bios:version 07.67", Version),
        ("ip name-server 192.0.2.53", Kept { line: "ip name-server 192.0.2.53".into(), remove: false }),
        ("ip name vrf Mgmt-vrf 192.0.2.53", Kept { line: "ip name-server vrf Mgmt-vrf 192.0.2.53".into(), remove: false }),
        ("no ip host tools.cisco.com 192.0.2.1", Kept { line: "ip host tools.cisco.com 192.0.2.1".into(), remove: true }),
        ("ip domain-lookup", Kept { line: "ip domain-lookup".into(), remove: false }),
        (
            "ip domain-lookup source-interface Gi0/0",
            Kept { line: "ip domain-lookup source-interface Gi0/0".into(), remove: false },
        ),
        (
            "ip http client source-interface Gi0/0",
            Kept { line: "ip http client source-interface Gi0/0".into(), remove: false },
        ),
        ("ping tools.cisco.com vrf management", Probe("ping tools.cisco.com vrf management".into())),
        ("telnet tools.cisco.com 443 vrf management", Probe("telnet tools.cisco.com 443 vrf management".into())),
    ];
    for (line, want) in cases {
        assert_eq!(cmd(&CONFIG, line), want, "{line}");
    }
    assert_eq!(
        cmd(&EXEC, "telnet tools.cisco.com 443 /source-interface gi0/0"),
        Command::Probe("telnet tools.cisco.com 443 /source-interface gi0/0".into())
    );
    assert_eq!(cmd(&EXEC, "show run all"), Command::ShowRunningConfig { callhome: false });
    assert_eq!(marker(&CONFIG, "hostname 1abc"), 9);
    assert_eq!(marker(&CONFIG, "hostname a_b"), 9);
}

#[test]
fn every_sub_mode_command_resolves() {
    use Command::*;
    let url = "https://tools.cisco.com/its/service/oddce/services/DDCEService";
    let profile = Mode::CallHomeProfile("CiscoTAC-1".into());
    let cases: Vec<(Mode, String, Command)> = vec![
        (
            Mode::CallHome,
            "contact-email-addr sch-smart-licensing@cisco.com".into(),
            ContactEmail("sch-smart-licensing@cisco.com".into()),
        ),
        (Mode::CallHome, "profile \"CiscoTAC-1\"".into(), CallHomeProfile("CiscoTAC-1".into())),
        (Mode::CallHome, "profile CiscoTAC-1".into(), CallHomeProfile("CiscoTAC-1".into())),
        (profile.clone(), "active".into(), ProfileActive(true)),
        (profile.clone(), "no active".into(), ProfileActive(false)),
        (profile.clone(), "destination transport-method http".into(), DestinationTransportHttp),
        (
            profile.clone(),
            format!("destination address http {url}"),
            DestinationAddress { url: url.into(), remove: false },
        ),
        (
            profile.clone(),
            format!("no destination address http {url}"),
            DestinationAddress { url: url.into(), remove: true },
        ),
        (profile.clone(), "reporting smart-licensing-data".into(), ReportingSmartLicensing(true)),
        (profile.clone(), "end".into(), End),
        (Mode::Callhome, "phone-contact +919XXXXXXXXX".into(), PhoneContact("+919XXXXXXXXX".into())),
        (Mode::Callhome, "streetaddress ST3, RD 4, Bangalore".into(), StreetAddress("ST3, RD 4, Bangalore".into())),
        (
            Mode::Callhome,
            format!("destination-profile CiscoTAC-1 http {url}"),
            DestinationProfileHttp { profile: "CiscoTAC-1".into(), index: None, url: url.into(), remove: false },
        ),
        (Mode::Callhome, "enable".into(), CallhomeEnable(true)),
        (Mode::Callhome, "no enable".into(), CallhomeEnable(false)),
        (
            Mode::Callhome,
            "email-contact sch-smart-licensing@cisco.com".into(),
            EmailContact("sch-smart-licensing@cisco.com".into()),
        ),
        (
            Mode::Callhome,
            "destination-profile CiscoTAC-1 transport-method http".into(),
            DestinationProfileTransportHttp { profile: "CiscoTAC-1".into() },
        ),
        (
            Mode::Callhome,
            format!("destination-profile CiscoTAC-1 index 1 http {url}"),
            DestinationProfileHttp { profile: "CiscoTAC-1".into(), index: Some(1), url: url.into(), remove: false },
        ),
        (
            Mode::Callhome,
            format!("no destination-profile CiscoTAC-1 index 1 http {url}"),
            DestinationProfileHttp { profile: "CiscoTAC-1".into(), index: Some(1), url: url.into(), remove: true },
        ),
        (
            Mode::Callhome,
            format!("destination-profile CiscoTAC-1 http {url}"),
            DestinationProfileHttp { profile: "CiscoTAC-1".into(), index: None, url: url.into(), remove: false },
        ),
        (
            Mode::Callhome,
            "transport http proxy server 10.1.1.1 port 80".into(),
            ProxyServer(Some(("10.1.1.1".into(), 80))),
        ),
        (Mode::Callhome, "no transport http proxy server".into(), ProxyServer(None)),
        (Mode::Callhome, "transport http proxy enable".into(), ProxyEnable(true)),
        (Mode::Callhome, "no transport http proxy enable".into(), ProxyEnable(false)),
        (Mode::Callhome, "transport http use-vrf management".into(), UseVrf("management".into())),
        (Mode::Trustpoint("LicRoot".into()), "enrollment terminal".into(), EnrollmentTerminal),
        (Mode::Trustpoint("LicRoot".into()), "revocation-check none".into(), RevocationCheck(Revocation::None)),
        (Mode::Trustpoint("LicRoot".into()), "revocation-check crl none".into(), RevocationCheck(Revocation::CrlNone)),
        (Mode::Trustpoint("LicRoot".into()), "revocation-check crl".into(), RevocationCheck(Revocation::Crl)),
        (Mode::Trustpoint("LicRoot".into()), "exit".into(), Exit),
    ];
    for (mode, line, want) in cases {
        assert_eq!(cmd(&mode, &line), want, "{line}");
    }
}

#[test]
fn clock_set_accepts_both_orders_and_refuses_impossible_values() {
    let want = ClockValue { year: 2028, month: 2, day: 29, hour: 13, minute: 5, second: 9 };
    assert_eq!(cmd(&EXEC, "clock set 13:05:09 29 Feb 2028"), Command::ClockSet(want));
    assert_eq!(cmd(&EXEC, "clock set 13:05:09 February 29 2028"), Command::ClockSet(want));
    assert_eq!(cmd(&EXEC, "clock set 13:05:09 feb 29 2028"), Command::ClockSet(want));
    assert_eq!(want.unix_seconds(), 1_835_442_309);
    assert!(matches!(cmd(&EXEC, "clock set 23:59:59 29 Feb 2000"), Command::ClockSet(_)), "2000 is a leap year");
    let Command::ClockSet(jan) = cmd(&EXEC, "clock set 0:0:0 1 Jan 2027") else { panic!() };
    assert_eq!(jan.unix_seconds(), 1_798_761_600);

    let base = "clock set ";
    assert_eq!(marker(&EXEC, "clock set 25:00:00 1 Jan 2027"), base.len());
    assert_eq!(marker(&EXEC, "clock set 10:61:00 1 Jan 2027"), base.len() + 3);
    assert_eq!(marker(&EXEC, "clock set 10:00:60 1 Jan 2027"), base.len() + 6);
    assert_eq!(marker(&EXEC, "clock set 10:00 1 Jan 2027"), base.len() + 4);
    assert_eq!(marker(&EXEC, "clock set 10:00:00 31 Feb 2027"), base.len() + 9);
    assert_eq!(marker(&EXEC, "clock set 10:00:00 Feb 29 2027"), base.len() + 13);
    assert_eq!(marker(&EXEC, "clock set 10:00:00 31 Apr 2027"), base.len() + 9);
    assert_eq!(marker(&EXEC, "clock set 10:00:00 32 Jan 2027"), base.len() + 9);
    assert_eq!(marker(&EXEC, "clock set 10:00:00 1 Jux 2027"), base.len() + 11);
    assert_eq!(marker(&EXEC, "clock set 10:00:00 1 Ju 2027"), base.len() + 11);
    assert_eq!(marker(&EXEC, "clock set 10:00:00 1 Jan 2036"), base.len() + 15);
}

#[test]
fn mode_transitions_and_prompts() {
    let cli = cli();
    let mut mode = Mode::Exec;
    let mut prompts = vec![mode.prompt("sw1")];
    for line in [
        "conf t",
        "call-home",
        "profile \"CiscoTAC-1\"",
        "destination address http https://sat/Transportgateway/services/DeviceRequestHandler",
        "exit",
        "exit",
        "crypto pki trustpoint LicRoot",
        "enrollment terminal",
        "exit",
        "callhome",
        "end",
    ] {
        let Ok(Parsed::Command(c)) = cli.parse(&mode, line) else { panic!("{line} in {mode:?}") };
        mode = mode.after(&c).expect("session continues");
        prompts.push(mode.prompt("sw1"));
    }
    assert_eq!(
        prompts,
        [
            "sw1#",
            "sw1(config)#",
            "sw1(cfg-call-home)#",
            "sw1(cfg-call-home-profile)#",
            "sw1(cfg-call-home-profile)#",
            "sw1(cfg-call-home)#",
            "sw1(config)#",
            "sw1(ca-trustpoint)#",
            "sw1(ca-trustpoint)#",
            "sw1(config)#",
            "sw1(config-callhome)#",
            "sw1#",
        ]
    );
    assert_eq!(
        Mode::Trustpoint("LicRoot".into()).after(&Command::EnrollmentTerminal),
        Some(Mode::Trustpoint("LicRoot".into()))
    );
    assert_eq!(Mode::Exec.after(&Command::Exit), None);
}

#[test]
fn authenticate_asks_for_a_pasted_pem() {
    let c = cmd(&CONFIG, "crypto pki authenticate LicRoot");
    assert!(c.wants_pem());
    assert!(!cmd(&CONFIG, "crypto pki trustpoint LicRoot").wants_pem());

    let mut pem = PemCollector::default();
    assert!(!pem.push("-----BEGIN CERTIFICATE-----"));
    assert!(!pem.push("MIIBxx=="));
    assert!(pem.push("-----END CERTIFICATE-----"));
    assert_eq!(pem.text(), "-----BEGIN CERTIFICATE-----\nMIIBxx==\n-----END CERTIFICATE-----\n");

    let mut quit = PemCollector::default();
    assert!(!quit.push(""), "a blank line before any text is skipped");
    assert!(!quit.push("-----BEGIN CERTIFICATE-----"));
    assert!(quit.push("quit"));
    let mut blank = PemCollector::default();
    blank.push("abc");
    assert!(blank.push("   "));
    assert_eq!(PemCollector::PROMPT[1], "End with a blank line or the word \"quit\" on a line by itself");
}

#[test]
fn one_shot_accepts_exec_and_configuration_commands() {
    let cli = cli();
    let one = |line: &str| cli.parse_oneshot(line);
    assert_eq!(one("show clock"), Ok(Parsed::Command(Command::ShowClock)));
    assert_eq!(
        one("license feature \"ACI Essentials\" count 2"),
        Ok(Parsed::Command(Command::Feature { tag: "ACI Essentials".into(), count: Some(2) }))
    );
    assert_eq!(one("lic sm dereg"), Ok(Parsed::Command(Command::Deregister)));
    // The error of the mode that got further: `license smart url` exists only in config.
    assert_eq!(
        one("license smart url ftp://x"),
        Err(CliError::Invalid { line: "license smart url ftp://x".into(), pos: 18 })
    );
    assert!(matches!(one("bogus"), Err(CliError::Invalid { pos: 0, .. })));
}

#[test]
fn a_parent_mode_line_leaves_the_sub_mode_as_on_ios() {
    let cli = cli();
    let tp = Mode::Trustpoint("LicRoot".into());
    let profile = Mode::CallHomeProfile("CiscoTAC-1".into());
    let parse = |mode: &Mode, line: &str, oneshot| cli.parse_in(mode, line, oneshot);
    // The sub-mode's own commands stay in it.
    assert_eq!(
        parse(&tp, "revocation-check none", false),
        Ok((tp.clone(), Parsed::Command(Command::RevocationCheck(Revocation::None))))
    );
    // A configuration command leaves it, at the prompt and in one-shot sessions alike.
    for oneshot in [false, true] {
        assert_eq!(
            parse(&tp, "crypto pki authenticate LicRoot", oneshot),
            Ok((CONFIG, Parsed::Command(Command::Authenticate("LicRoot".into()))))
        );
    }
    // Two levels up from a profile, one level up to another profile.
    assert_eq!(parse(&profile, "license smart transport callhome", false).map(|(m, _)| m), Ok(CONFIG));
    assert_eq!(
        parse(&profile, "profile Lab", false),
        Ok((Mode::CallHome, Parsed::Command(Command::CallHomeProfile("Lab".into()))))
    );
    // Exec commands need `do` at the prompt; one-shot sessions take them anywhere.
    assert!(parse(&tp, "show clock", false).is_err());
    assert_eq!(parse(&tp, "show clock", true), Ok((EXEC, Parsed::Command(Command::ShowClock))));
    // `?` lists the current mode only.
    assert_eq!(
        names(&match parse(&tp, "?", false) {
            Ok((_, Parsed::Help(h))) => h,
            other => panic!("{other:?}"),
        }),
        ["do", "end", "enrollment", "exit", "revocation-check"]
    );
    // Nowhere valid: the error that got furthest (`crypto pki` exists in configuration mode).
    assert_eq!(
        parse(&tp, "crypto pki bogus", false),
        Err(CliError::Invalid { line: "crypto pki bogus".into(), pos: 11 })
    );
    assert!(matches!(parse(&tp, "bogus", false), Err(CliError::Invalid { pos: 0, .. })));
}

#[test]
fn output_filters_split_at_the_pipe_and_keep_lines_or_sections() {
    let (cmd, filter) = Filter::split("show running-config | section callhome").unwrap();
    assert_eq!(cmd, "show running-config ");
    assert_eq!(filter, Some(Filter::Section("callhome".into())));
    assert_eq!(Filter::split("sh run | in license smart").unwrap().1, Some(Filter::Include("license smart".into())));
    assert_eq!(Filter::split("license feature \"a|b\" count 1").unwrap(), ("license feature \"a|b\" count 1", None));
    assert_eq!(Filter::split("sh run |"), Err(CliError::Incomplete));
    assert_eq!(Filter::split("sh run | include"), Err(CliError::Incomplete));
    assert_eq!(Filter::split("sh run | grep x"), Err(CliError::Invalid { line: "sh run | grep x".into(), pos: 9 }));
    let text = "hostname a\n!\ncallhome\n  enable\n!\nlicense smart url https://m\n";
    assert_eq!(Filter::Section("enable".into()).apply(text), "callhome\n  enable\n");
    assert_eq!(Filter::Include("license".into()).apply(text), "license smart url https://m\n");
    assert_eq!(
        Filter::Exclude("!".into()).apply(text),
        "hostname a\ncallhome\n  enable\nlicense smart url https://m\n"
    );
    assert_eq!(Filter::Begin("license".into()).apply(text), "license smart url https://m\n");
}

#[test]
fn tab_completes_the_last_keyword_and_writes_out_the_line() {
    let cli = cli();
    let complete = |mode: &Mode, line: &str| cli.complete(mode, line);
    assert_eq!(complete(&Mode::Exec, "sh lic"), ["show license "]);
    assert_eq!(complete(&Mode::Exec, "SH LIC"), ["show license "]);
    assert_eq!(
        complete(&Mode::Exec, "show license s"),
        ["show license server ", "show license status ", "show license summary "]
    );
    // Values stay as typed, quotes included.
    assert_eq!(complete(&Mode::Config, "lic feat \"ACI Essentials\" c"), ["license feature \"ACI Essentials\" count "]);
    // `do` in configuration, and a line of a parent mode from a sub-mode.
    assert_eq!(complete(&Mode::Config, "do sh lic"), ["do show license "]);
    assert_eq!(complete(&Mode::Trustpoint("X".into()), "cry pki auth"), ["crypto pki authenticate "]);
    // Nothing after a blank, in a value, for no keyword, or after what does not parse.
    for (mode, line) in [
        (Mode::Exec, "show "),
        (Mode::Exec, ""),
        (Mode::Config, "license smart url htt"),
        (Mode::Exec, "show nothing"),
        (Mode::Exec, "shw lic"),
        (Mode::Exec, "show \"lic"),
    ] {
        assert_eq!(complete(&mode, line), Vec::<String>::new(), "{line:?}");
    }
}
