//! Golden tests: agents driven through `smartlic_core::agent::step` into each state, rendered and
//! compared line by line with texts taken from the seed samples (cited per line group).
//!
//! Seeds: `../shared/seeds/00N_*.txt`; "§5.1" is `../shared/reference/PUBLIC-FACTS.md` §5.1.
//! Where the seed is Portuguese (004) the field names are the English ones of the same capture in
//! the other seeds and §5.1; where the seed's dates come from a manager we do not copy (other
//! intervals), the expected dates are ours and say so.

use super::*;
use crate::config::{DeviceConfig, TransportConfig, TransportKind, Trustpoint, DEFAULT_PROFILE};
use crate::tls::ProxyConfig;
use smartlic_core::agent::{
    next_wakeup, step, Action, AuthAnswer, AuthFacts, Event, Failure, FailureKind, Intervals, LogEntry, RegisterFacts,
};
use smartlic_core::time::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use std::collections::BTreeMap;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or_else(|| panic!("bad instant {text}"))
}

/// How the fake manager answers.
#[derive(Clone)]
enum Reply {
    Register(RegisterFacts),
    Authorize {
        status: AuthAnswer,
        valid_until: Timestamp,
        intervals: Intervals,
    },
    Fail(Failure),
    /// No answer (the exchange stays PENDING).
    Silent,
}

/// A device driven the way the agent crate drives it: step, answer each `Send*`, feed it back.
struct Device {
    agent: Agent,
    now: Timestamp,
    register: Reply,
    authorize: Reply,
    /// Tags the manager answers OUT OF COMPLIANCE (the others get the reply's status).
    short: Vec<&'static str>,
}

impl Device {
    fn new(pid: &str, sn: &str, now: Timestamp) -> Self {
        Device {
            agent: Agent::new(pid, sn, now),
            now,
            register: Reply::Silent,
            authorize: Reply::Silent,
            short: Vec::new(),
        }
    }

    fn answer(&self, action: &Action) -> Option<Event> {
        let reply = match action {
            Action::SendRegister { .. } => &self.register,
            Action::SendAuthorize { .. } => &self.authorize,
            _ => return None,
        };
        match reply.clone() {
            Reply::Register(facts) => Some(Event::RegisterSucceeded(facts)),
            Reply::Authorize { status, valid_until, intervals } => {
                let Action::SendAuthorize { usage } = action else { return None };
                let tag_status =
                    |tag: &str| if self.short.contains(&tag) { AuthAnswer::OutOfCompliance } else { status };
                let entitlements: BTreeMap<String, AuthAnswer> =
                    usage.iter().map(|(tag, _)| (tag.clone(), tag_status(tag))).collect();
                // As the manager: the device is out of compliance when any of its tags is.
                let status = if entitlements.values().any(|s| *s == AuthAnswer::OutOfCompliance) {
                    AuthAnswer::OutOfCompliance
                } else {
                    status
                };
                Some(Event::AuthSucceeded(AuthFacts { status, entitlements, valid_until, intervals }))
            }
            Reply::Fail(failure) => Some(match action {
                Action::SendRegister { .. } => Event::RegisterFailed(failure),
                _ => Event::AuthFailed(failure),
            }),
            Reply::Silent => None,
        }
    }

    fn run(&mut self, event: Event) {
        let mut queue = vec![event];
        while let Some(event) = queue.pop() {
            let actions = step(&mut self.agent, event, self.now);
            queue.extend(actions.iter().filter_map(|a| self.answer(a)));
        }
    }

    fn run_at(&mut self, now: Timestamp, event: Event) {
        self.now = now;
        self.run(event);
    }

    /// Time passes to `t`, every timer firing on time.
    fn until(&mut self, t: Timestamp) {
        while let Some(due) = next_wakeup(&self.agent).filter(|&d| d <= t) {
            self.now = due;
            self.run(Event::Tick);
        }
        self.now = t;
        self.run(Event::Tick);
    }

    fn usage(&mut self, tag: &str, count: u32) {
        self.run(Event::SetUsage { tag: tag.into(), count });
    }

    fn register(&mut self, now: Timestamp) {
        self.run_at(now, Event::Register { token: "TOKEN".into(), force: false });
    }
}

fn registered(sa: &str, va: &str, export: bool, expires: Timestamp, intervals: Intervals) -> Reply {
    Reply::Register(RegisterFacts {
        instance_id: "pi-1".into(),
        smart_account: sa.into(),
        virtual_account: va.into(),
        export_controlled: export,
        certificate_serial: "01".into(),
        certificate_expires: expires,
        intervals,
    })
}

fn fail(kind: FailureKind, reason: &str) -> Reply {
    Reply::Fail(Failure::new(kind, reason))
}

fn config() -> DeviceConfig {
    DeviceConfig {
        hostname: "switch".into(),
        transport: TransportConfig {
            url: Some("https://127.0.0.1:8443".into()),
            kind: TransportKind::Smart,
            proxy: None,
            proxy_enabled: false,
        },
        catalog: BTreeMap::from([
            ("C9200L-NW-E-24".to_string(), "C9200L Network Essentials 24".to_string()),
            ("C9200L-NW-E-48".to_string(), "C9200L Network Essentials 48".to_string()),
            ("ACI Essentials".to_string(), "ACI Essentials".to_string()),
        ]),
        ..DeviceConfig::default()
    }
}

/// Compares line by line, naming the first line that differs.
#[track_caller]
fn assert_lines(actual: &str, expected: &[&str]) {
    assert!(actual.ends_with('\n'), "output must end with a newline:\n{actual}");
    let lines: Vec<&str> = actual.lines().collect();
    for (i, (a, e)) in lines.iter().zip(expected).enumerate() {
        assert_eq!(a, e, "line {} differs; whole output:\n{actual}", i + 1);
    }
    assert_eq!(lines.len(), expected.len(), "line count differs; whole output:\n{actual}");
    assert!(lines.iter().all(|l| !l.ends_with(' ')), "trailing space:\n{actual}");
}

const TRANSPORT: [&str; 3] = ["Transport:", "  Type: Smart", "  URL: https://127.0.0.1:8443"];
const CONVERSION: [&str; 3] =
    ["Smart License Conversion:", "  Automatic Conversion Enabled: False", "  Status: Not started"];

fn with_tail(head: &[&'static str]) -> Vec<&'static str> {
    let mut v = head.to_vec();
    v.extend(["", CONVERSION[0], CONVERSION[1], CONVERSION[2], "", TRANSPORT[0], TRANSPORT[1], TRANSPORT[2]]);
    v
}

// ---- the seven states of show license status --------------------------------------------------

/// Unidentified, in evaluation with time left: 24 days, 5 hours, 17 minutes of use leave the
/// time of seed 004 #6.
#[test]
fn status_unidentified_in_evaluation() {
    let t0 = at("2024-03-13T08:00:00Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.usage("ACI Essentials", 1);
    d.until(t0.plus_ms(24 * DAY_MS + 5 * HOUR_MS + 17 * MINUTE_MS));
    let expected = with_tail(&[
        "Smart Licensing is ENABLED", // seed 003:30
        "",
        "Registration:",                                  // seed 003:31
        "  Status: UNREGISTERED",                         // seed 004:1053, §5.1 summary
        "  Export-Controlled Functionality: Not Allowed", // §5.1 summary (unregistered)
        "",
        "License Authorization:",    // seed 004:1059
        "  Status: EVALUATION MODE", // seed 004:1061
        "  Evaluation Period Remaining: 65 days, 18 hours, 43 minutes, 0 seconds", // seed 004:1063
    ]);
    assert_lines(&status(&d.agent, &config(), d.now), &expected);
}

/// The time left is the one at `now`, even if the state was last stepped earlier.
#[test]
fn evaluation_remaining_counts_to_now() {
    let t0 = at("2024-03-13T08:00:00Z");
    let mut d = Device::new("P", "S", t0);
    d.usage("ACI Essentials", 1);
    let out = status(&d.agent, &config(), t0.plus_ms(DAY_MS + 1500));
    assert!(out.contains("  Evaluation Period Remaining: 88 days, 23 hours, 59 minutes, 58 seconds\n"), "{out}");
    d.usage("ACI Essentials", 0);
    let out = status(&d.agent, &config(), t0.plus_ms(5 * DAY_MS));
    assert!(out.contains("  Evaluation Period Remaining: 90 days, 0 hours, 0 minutes, 0 seconds\n"), "{out}");
}

/// Registering, first attempt sent and not answered.
#[test]
fn status_registering_first_attempt_pending() {
    let t0 = at("2018-10-24T15:55:26Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.register(t0);
    let expected = with_tail(&[
        "Smart Licensing is ENABLED",
        "",
        "Registration:",
        "  Status: REGISTERING - REGISTRATION IN PROGRESS", // seed 004:933
        "  Export-Controlled Functionality: Not Allowed",   // seed 004:935
        "  Initial Registration: PENDING on Oct 24 15:55:26 2018 UTC", // PENDING as seed 004:1093
        "  Failure reason: Waiting for reply",              // seed 004:1095
        "  Next Registration Attempt: Oct 24 16:10:26 2018 UTC", // seed 004:941 (A-5: 15 minutes)
        "",
        "License Authorization:",
        "  Status: EVALUATION MODE",
        "  Evaluation Period Remaining: 90 days, 0 hours, 0 minutes, 0 seconds",
    ]);
    assert_lines(&status(&d.agent, &config(), d.now), &expected);
}

/// Registering, retrying after a communication failure (seed 004 #2 lines 931-941).
#[test]
fn status_registering_after_failure() {
    let t0 = at("2018-10-24T15:55:26Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.register = fail(FailureKind::Communication, "Fail to send out Call Home HTTP message");
    d.register(t0);
    let expected = with_tail(&[
        "Smart Licensing is ENABLED",
        "",
        "Registration:",
        "  Status: REGISTERING - REGISTRATION IN PROGRESS", // seed 004:933
        "  Export-Controlled Functionality: Not Allowed",   // seed 004:935
        "  Initial Registration: FAILED on Oct 24 15:55:26 2018 UTC", // seed 004:937
        "  Failure reason: Fail to send out Call Home HTTP message", // seed 004:939, seed 000:636
        "  Next Registration Attempt: Oct 24 16:10:26 2018 UTC", // seed 004:941 (A-5: 15 minutes)
        "",
        "License Authorization:",
        "  Status: EVALUATION MODE",
        "  Evaluation Period Remaining: 90 days, 0 hours, 0 minutes, 0 seconds",
    ]);
    assert_lines(&status(&d.agent, &config(), d.now), &expected);
}

/// Registration refused by the manager (seed 004 #1 lines 902-912).
#[test]
fn status_registration_failed_with_reason_and_next_attempt() {
    let t0 = at("2018-10-22T14:25:31Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.register = fail(FailureKind::Refused, "Product already registered");
    d.register(t0);
    let expected = with_tail(&[
        "Smart Licensing is ENABLED",
        "",
        "Registration:",
        "  Status: UNREGISTERED - REGISTRATION FAILED",   // seed 004:904
        "  Export-Controlled Functionality: Not Allowed", // seed 004:906
        "  Initial Registration: FAILED on Oct 22 14:25:31 2018 UTC", // seed 004:908
        "  Failure reason: Product already registered",   // seed 004:910
        "  Next Registration Attempt: Oct 22 14:40:31 2018 UTC", // seed 004:912 (A-5: 15 minutes)
        "",
        "License Authorization:",
        "  Status: EVALUATION MODE",
        "  Evaluation Period Remaining: 90 days, 0 hours, 0 minutes, 0 seconds",
    ]);
    assert_lines(&status(&d.agent, &config(), d.now), &expected);
}

/// No transport: failed without a next attempt (seed 004 #4 lines 984-990 has none).
#[test]
fn status_registration_failed_without_transport() {
    let t0 = at("2019-03-09T21:42:02Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.run(Event::SetTransport { available: false });
    d.register(t0);
    let out = status(&d.agent, &config(), d.now);
    let block: Vec<&str> = out.lines().skip(2).take(5).collect();
    assert_eq!(
        block,
        [
            "Registration:",
            "  Status: UNREGISTERED - REGISTRATION FAILED", // seed 004:984
            "  Export-Controlled Functionality: Not Allowed", // seed 004:986
            "  Initial Registration: FAILED on Mar 09 21:42:02 2019 UTC", // seed 004:988
            "  Failure reason: Communication transport not available", // seed 004:990
        ]
    );
    assert!(!out.contains("Next Registration Attempt"), "{out}");
}

/// Seed 003's device (`show license status`, lines 29-47, = seed 001:280-316), reproduced with
/// the manager's answers of that capture: every line of the seed, in its order.
fn seed_003_device() -> Device {
    let t0 = at("2022-06-22T16:15:41Z");
    let mut d = Device::new("N9K-C93180YC-FX", "FDO21120U8N", t0);
    d.usage("ACI Essentials", 1);
    let reg_intervals = Intervals::default();
    d.register = registered("ldap_user_test", "Default", true, at("2023-06-22T16:13:53Z"), reg_intervals);
    d.register(t0);
    // The authorization answer of the capture came 3 seconds later; its renewal interval put the
    // next attempt at +30 days - 1 second (seed 003:43).
    d.authorize = Reply::Authorize {
        status: AuthAnswer::Authorized,
        valid_until: at("2022-09-20T16:12:55Z"),
        intervals: Intervals { auth_renew_ms: 30 * DAY_MS - SECOND_MS, ..Intervals::default() },
    };
    d.run_at(t0.plus_ms(3 * SECOND_MS), Event::RenewAuth);
    d
}

#[test]
fn status_registered_and_authorized_is_seed_003() {
    let d = seed_003_device();
    let expected = with_tail(&[
        "Smart Licensing is ENABLED", // seed 003:30
        "",
        "Registration:",                                                 // seed 003:31
        "  Status: REGISTERED",                                          // seed 003:32
        "  Smart Account: ldap_user_test",                               // seed 003:33
        "  Virtual Account: Default",                                    // seed 003:34
        "  Export-Controlled Functionality: Allowed",                    // seed 003:35
        "  Initial Registration: SUCCEEDED on Jun 22 16:15:41 2022 UTC", // seed 003:36
        "  Last Renewal Attempt: None",                                  // seed 003:37
        "  Next Renewal Attempt: Dec 19 16:15:41 2022 UTC",              // seed 003:38
        "  Registration Expires: Jun 22 16:13:53 2023 UTC",              // seed 003:39
        "",
        "License Authorization:",                                              // seed 003:40
        "  Status: AUTHORIZED on Jun 22 16:15:44 2022 UTC",                    // seed 003:41
        "  Last Communication Attempt: SUCCEEDED on Jun 22 16:15:44 2022 UTC", // seed 003:42
        "  Next Communication Attempt: Jul 22 16:15:43 2022 UTC",              // seed 003:43
        "  Communication Deadline: Sep 20 16:12:55 2022 UTC",                  // seed 003:44
    ]);
    assert_lines(&status(&d.agent, &config(), d.now), &expected);
}

/// Out of compliance, the last renewal failed (seed 004 #5 lines 1012-1022).
#[test]
fn status_out_of_compliance_with_failed_communication() {
    let t0 = at("2018-07-26T09:24:05Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.usage("ACI Essentials", 3);
    d.register = registered("Example Inc", "Default", false, t0.plus_days(365), Intervals::default());
    d.register(t0);
    d.authorize = Reply::Authorize {
        status: AuthAnswer::OutOfCompliance,
        valid_until: at("2018-10-25T09:21:38Z"),
        intervals: Intervals::default(),
    };
    d.run_at(at("2018-07-26T09:24:09Z"), Event::RenewAuth);
    // From then on the manager is unreachable; the operator asks for a renewal on Aug 2.
    d.authorize = fail(FailureKind::Communication, "Fail to send out Call Home HTTP message");
    d.run_at(at("2018-08-02T14:26:23Z"), Event::RenewAuth);
    let expected = with_tail(&[
        "Smart Licensing is ENABLED",
        "",
        "Registration:",
        "  Status: REGISTERED",
        "  Smart Account: Example Inc",
        "  Virtual Account: Default",
        "  Export-Controlled Functionality: Not Allowed",
        "  Initial Registration: SUCCEEDED on Jul 26 09:24:05 2018 UTC",
        "  Last Renewal Attempt: None",
        "  Next Renewal Attempt: Jan 22 09:24:05 2019 UTC",
        "  Registration Expires: Jul 26 09:24:05 2019 UTC",
        "",
        "License Authorization:",                                           // seed 004:1012
        "  Status: OUT OF COMPLIANCE on Jul 26 09:24:09 2018 UTC",          // seed 004:1014
        "  Last Communication Attempt: FAILED on Aug 02 14:26:23 2018 UTC", // seed 004:1016
        "  Failure reason: Fail to send out Call Home HTTP message",        // seed 004:1018
        "  Next Communication Attempt: Aug 02 14:41:23 2018 UTC",           // seed 004:1020 (A-7: 15 minutes)
        "  Communication Deadline: Oct 25 09:21:38 2018 UTC",               // seed 004:1022
    ]);
    assert_lines(&status(&d.agent, &config(), d.now), &expected);
    assert!(summary(&d.agent, &config(), d.now)
        .contains("  ACI Essentials          (ACI Essentials)                  3 OUT OF COMPLIANCE\n"));
}

/// An authorization request sent and not answered (seed 004 #7 lines 1089-1099).
#[test]
fn status_communication_pending() {
    let mut d = seed_003_device();
    d.authorize = Reply::Silent;
    d.run_at(at("2022-08-02T14:34:51Z"), Event::RenewAuth);
    let out = status(&d.agent, &config(), d.now);
    let block: Vec<&str> = out.lines().skip(12).take(6).collect();
    assert_eq!(
        block,
        [
            "License Authorization:",
            "  Status: AUTHORIZED on Jun 22 16:15:44 2022 UTC",
            "  Last Communication Attempt: PENDING on Aug 02 14:34:51 2022 UTC", // seed 004:1093
            "  Failure reason: Waiting for reply",                               // seed 004:1095
            "  Next Communication Attempt: Aug 03 13:34:51 2022 UTC",            // 23 hours
            "  Communication Deadline: Sep 20 16:12:55 2022 UTC",
        ]
    );
}

/// The manager unreachable for 90 days: AUTHORIZATION EXPIRED at the deadline, hourly retries,
/// the last failure and its reason (seed 004 #9 reason, lines 1160-1170).
#[test]
fn status_authorization_expired_with_failed_communication() {
    let t0 = at("2020-03-12T09:17:45Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.usage("ACI Essentials", 1);
    d.register = registered("Example Inc", "Default", true, t0.plus_days(365), Intervals::default());
    d.authorize = Reply::Authorize {
        status: AuthAnswer::Authorized,
        valid_until: t0.plus_ms(Intervals::default().auth_validity_ms),
        intervals: Intervals::default(),
    };
    d.register(t0);
    d.authorize = fail(FailureKind::Communication, "Data and signature do not match");
    d.until(t0.plus_days(90).plus_ms(90 * MINUTE_MS));
    let out = status(&d.agent, &config(), d.now);
    let block: Vec<&str> = out.lines().skip(12).take(6).collect();
    assert_eq!(
        block,
        [
            "License Authorization:",
            "  Status: AUTHORIZATION EXPIRED on Jun 10 09:17:45 2020 UTC",
            "  Last Communication Attempt: FAILED on Jun 10 10:17:45 2020 UTC",
            "  Failure reason: Data and signature do not match", // seed 004:1166
            "  Next Communication Attempt: Jun 10 11:17:45 2020 UTC", // hourly
            "  Communication Deadline: Jun 10 09:17:45 2020 UTC",
        ]
    );
    assert!(summary(&d.agent, &config(), d.now).contains("  1 AUTHORIZATION EXPIRED\n"));
}

/// 90 days of use: EVALUATION EXPIRED with the date it ran out.
#[test]
fn status_evaluation_expired() {
    let t0 = at("2024-01-01T00:00:00Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.usage("ACI Essentials", 1);
    d.until(t0.plus_days(91));
    let expected = with_tail(&[
        "Smart Licensing is ENABLED",
        "",
        "Registration:",
        "  Status: UNREGISTERED",
        "  Export-Controlled Functionality: Not Allowed",
        "",
        "License Authorization:",
        "  Status: EVALUATION EXPIRED on Mar 31 00:00:00 2024 UTC",
    ]);
    assert_lines(&status(&d.agent, &config(), d.now), &expected);
    assert!(summary(&d.agent, &config(), d.now).contains(" EVAL EXPIRED\n"));
}

#[test]
fn status_disabled() {
    let t0 = at("2024-01-01T00:00:00Z");
    let mut d = Device::new("P", "S", t0);
    d.run(Event::Disable);
    assert_lines(&status(&d.agent, &config(), t0), &["Smart Licensing is DISABLED"]);
    assert_lines(&summary(&d.agent, &config(), t0), &["Smart Licensing is DISABLED"]);
}

// ---- summary ----------------------------------------------------------------------------------

/// The unregistered §5.1 summary (C9200L, IOS-XE 16.9.1): 18 days, 1 hour, 58 minutes, 1 second
/// of use leave its time; the License column stays empty until registration.
#[test]
fn summary_unregistered_is_the_c9200l_capture() {
    let t0 = at("2018-09-12T16:41:39Z");
    let mut d = Device::new("C9200L-48P-4X", "JPG2212115G", t0);
    d.usage("C9200L-NW-E-48", 1);
    d.usage("C9200L-NW-E-24", 1);
    d.until(t0.plus_ms(18 * DAY_MS + HOUR_MS + 58 * MINUTE_MS + SECOND_MS));
    assert_lines(
        &summary(&d.agent, &config(), d.now),
        &[
            "Smart Licensing is ENABLED",
            "",
            "Registration:",
            "  Status: UNREGISTERED",
            "  Export-Controlled Functionality: Not Allowed",
            "",
            "License Authorization:",
            "  Status: EVALUATION MODE", // the capture says EVAL MODE, seed 004:1061 EVALUATION MODE
            "  Evaluation Period Remaining: 71 days, 22 hours, 1 minutes, 59 seconds",
            "",
            "License Usage:",
            "  License                 Entitlement tag               Count Status",
            "  -----------------------------------------------------------------------------",
            // The capture lists -48 before -24; smartlic lists tags in order.
            "                          (C9200L-NW-E-24)                  1 EVAL MODE",
            "                          (C9200L-NW-E-48)                  1 EVAL MODE",
        ],
    );
}

/// The registered summary: seed 004:742-784 and the §5.1 capture after registration.
#[test]
fn summary_registered_is_the_seed_004_capture() {
    let t0 = at("2019-05-26T21:24:32Z");
    let mut d = Device::new("C9200L-48P-4X", "JPG2212115G", t0);
    d.usage("C9200L-NW-E-48", 1);
    d.usage("C9200L-NW-E-24", 1);
    d.register = registered("TAC Cisco Systems, Inc.", "Krakow LAN-SW", true, t0.plus_days(365), Intervals::default());
    d.authorize = Reply::Authorize {
        status: AuthAnswer::Authorized,
        valid_until: t0.plus_days(90),
        intervals: Intervals::default(),
    };
    d.register(t0);
    assert_lines(
        &summary(&d.agent, &config(), d.now),
        &[
            "Smart Licensing is ENABLED", // seed 004:742
            "",
            "Registration:",                                    // seed 004:746
            "  Status: REGISTERED",                             // seed 004:750
            "  Smart Account: TAC Cisco Systems, Inc.",         // seed 004:754
            "  Virtual Account: Krakow LAN-SW",                 // seed 004:755
            "  Export-Controlled Functionality: Allowed",       // seed 004:756 (ALLOWED), 003:35
            "  Last Renewal Attempt: None",                     // seed 004:757
            "  Next Renewal Attempt: Nov 22 21:24:32 2019 UTC", // seed 004:758
            "",
            "License Authorization:",                                 // seed 004:762
            "  Status: AUTHORIZED",                                   // seed 004:766
            "  Last Communication Attempt: SUCCEEDED",                // seed 004:770
            "  Next Communication Attempt: Jun 25 21:24:32 2019 UTC", // seed 004:774 (+30 days)
            "",
            "License Usage:",                                                       // seed 004:778
            "  License                 Entitlement tag               Count Status", // §5.1
            "  -----------------------------------------------------------------------------",
            "  C9200L Network Essen... (C9200L-NW-E-24)                  1 AUTHORIZED", // §5.1
            "  C9200L Network Essen... (C9200L-NW-E-48)                  1 AUTHORIZED",
        ],
    );
}

#[test]
fn summary_without_usage_and_long_tags() {
    let t0 = at("2024-01-01T00:00:00Z");
    let mut d = Device::new("P", "S", t0);
    let out = summary(&d.agent, &config(), t0);
    assert!(out.ends_with("License Usage:\n  No licenses in use\n"), "{out}");
    d.usage("A very long entitlement tag name indeed", 12345);
    let out = summary(&d.agent, &config(), t0);
    assert!(out.ends_with("(A very long entitlement tag name indeed) 12345 EVAL MODE\n"), "{out}");
}

// ---- all, usage, udi ----------------------------------------------------------------------------

/// The §5.1 `show license all` capture (CSR1000V, agent 4.8.5.4), block for block.
#[test]
fn all_registered_is_the_csr1000v_capture() {
    let t0 = at("2024-03-13T08:09:24Z");
    let mut d = Device::new("CSR1000V", "9NZ7O74FICQ", t0);
    d.register =
        registered("Cisco Systems, TAC", "RADKit-LMM-NA", true, at("2025-03-13T08:04:57Z"), Intervals::default());
    d.register(t0); // the first authorization request stays unanswered
    d.authorize = Reply::Authorize {
        status: AuthAnswer::Authorized,
        valid_until: at("2024-06-11T08:05:02Z"),
        intervals: Intervals::default(),
    };
    d.run_at(at("2024-03-13T08:09:28Z"), Event::RenewAuth);
    let mut cfg = config();
    cfg.transport.kind = TransportKind::Callhome;
    cfg.call_home.profile_mut(DEFAULT_PROFILE).urls = vec!["https://127.0.0.1:8443".into()];
    assert_lines(
        &all(&d.agent, &cfg, d.now),
        &[
            "Smart Licensing Status",
            "======================",
            "",
            "Smart Licensing is ENABLED",
            "",
            "Registration:",
            "  Status: REGISTERED",
            "  Smart Account: Cisco Systems, TAC",
            "  Virtual Account: RADKit-LMM-NA",
            "  Export-Controlled Functionality: Allowed",
            "  Initial Registration: SUCCEEDED on Mar 13 08:09:24 2024 UTC",
            "  Last Renewal Attempt: None",
            "  Next Renewal Attempt: Sep 09 08:09:24 2024 UTC",
            "  Registration Expires: Mar 13 08:04:57 2025 UTC",
            "",
            "License Authorization:",
            "  Status: AUTHORIZED on Mar 13 08:09:28 2024 UTC",
            "  Last Communication Attempt: SUCCEEDED on Mar 13 08:09:28 2024 UTC",
            "  Next Communication Attempt: Apr 12 08:09:28 2024 UTC",
            "  Communication Deadline: Jun 11 08:05:02 2024 UTC",
            "",
            "Export Authorization Key:",
            "  Features Authorized:",
            "    <none>",
            "",
            "Utility:",
            "  Status: DISABLED",
            "",
            "Data Privacy:",
            "  Sending Hostname: yes",
            "    Callhome hostname privacy: DISABLED",
            "    Smart Licensing hostname privacy: DISABLED",
            "  Version privacy: DISABLED",
            "",
            "Transport:",
            "  Type: Callhome",
            "  URL: https://127.0.0.1:8443",
            "",
            "License Usage",
            "==============",
            "",
            "No licenses in use",
            "",
            "Product Information",
            "===================",
            "UDI: PID:CSR1000V,SN:9NZ7O74FICQ",
            "",
            "Agent Version",
            "=============",
            &format!("Smart Agent for Licensing: {AGENT_VERSION}"),
            "",
            "Reservation Info",
            "================",
            "License reservation: DISABLED",
        ],
    );
}

/// `show license usage`: the device's `License Authorization:` status (§5.2 `show license usage`
/// capture), then the §5.1 ASAv capture's entry fields, `Version: 1.0` included.
#[test]
fn usage_entries_before_and_after_registration() {
    let t0 = at("2024-01-01T00:00:00Z");
    let mut d = Device::new("ASAv", "9X61HSQEA6Z", t0);
    d.usage("C9200L-NW-E-24", 2);
    d.usage("Unknown Tag", 1);
    assert_lines(
        &usage(&d.agent, &config(), d.now),
        &[
            "License Authorization:",
            "  Status: EVALUATION MODE",
            "",
            "(C9200L-NW-E-24):",
            "  Description: C9200L Network Essentials 24",
            "  Count: 2",
            "  Version: 1.0",
            "  Status: EVAL MODE",
            "  Export status: NOT RESTRICTED",
            "",
            "(Unknown Tag):",
            "  Description: Unknown Tag",
            "  Count: 1",
            "  Version: 1.0",
            "  Status: EVAL MODE",
            "  Export status: NOT RESTRICTED",
        ],
    );
    d.register = registered("SA", "VA", false, t0.plus_days(365), Intervals::default());
    d.authorize = Reply::Authorize {
        status: AuthAnswer::Authorized,
        valid_until: t0.plus_days(90),
        intervals: Intervals::default(),
    };
    d.register(t0);
    let out = usage(&d.agent, &config(), d.now);
    assert!(out.starts_with("License Authorization:\n  Status: AUTHORIZED on Jan 01 00:00:00 2024 UTC\n\n"), "{out}");
    assert!(out.contains("\nC9200L Network Essentials 24 (C9200L-NW-E-24):\n  Description: C9200L Network Essentials 24\n  Count: 2\n  Version: 1.0\n  Status: AUTHORIZED\n  Export status: NOT RESTRICTED\n"), "{out}");
    assert!(out.contains("\nUnknown Tag (Unknown Tag):\n"), "{out}");
    assert_eq!(render(&LicenseView::Usage, &d.agent, &config(), t0), out);
}

/// A device using a licensed tag and a short one is OUT OF COMPLIANCE as a whole, and each row of
/// summary, usage and all shows its own tag's status from the manager's answer; a tag put in use
/// since that answer is WAITING until the manager answers for it.
#[test]
fn each_row_shows_its_own_tags_status() {
    let t0 = at("2024-01-01T00:00:00Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.usage("ACI Essentials", 2);
    d.usage("C9200L-NW-E-24", 1);
    d.short = vec!["C9200L-NW-E-24"];
    d.register = registered("SA", "VA", false, t0.plus_days(365), Intervals::default());
    d.authorize = Reply::Authorize {
        status: AuthAnswer::Authorized,
        valid_until: t0.plus_days(90),
        intervals: Intervals::default(),
    };
    d.register(t0);
    let cfg = config();
    let out = summary(&d.agent, &cfg, d.now);
    assert!(out.contains("License Authorization:\n  Status: OUT OF COMPLIANCE\n"), "{out}");
    assert!(out.contains("\n  ACI Essentials          (ACI Essentials)                  2 AUTHORIZED\n"), "{out}");
    assert!(
        out.contains("\n  C9200L Network Essen... (C9200L-NW-E-24)                  1 OUT OF COMPLIANCE\n"),
        "{out}"
    );
    let entry = |name: &str, count: u32, status: &str| {
        format!(
            "\n{name}:\n  Description: {}\n  Count: {count}\n  Version: 1.0\n  Status: {status}\n",
            &name[..name.find(" (").unwrap()]
        )
    };
    for out in [usage(&d.agent, &cfg, d.now), all(&d.agent, &cfg, d.now)] {
        assert!(out.contains("  Status: OUT OF COMPLIANCE on Jan 01 00:00:00 2024 UTC\n"), "{out}");
        assert!(out.contains(&entry("ACI Essentials (ACI Essentials)", 2, "AUTHORIZED")), "{out}");
        let short = entry("C9200L Network Essentials 24 (C9200L-NW-E-24)", 1, "OUT OF COMPLIANCE");
        assert!(out.contains(&short), "{out}");
    }
    d.authorize = Reply::Silent;
    d.usage("C9200L-NW-E-48", 1);
    let out = summary(&d.agent, &cfg, d.now);
    assert!(out.contains("\n  ACI Essentials          (ACI Essentials)                  2 AUTHORIZED\n"), "{out}");
    assert!(out.contains("(C9200L-NW-E-48)                  1 WAITING\n"), "{out}");
}

#[test]
fn udi_and_render_dispatch() {
    let t0 = at("2024-01-01T00:00:00Z");
    let d = Device::new("C9350-24U", "FOC2705Y8X0", t0);
    assert_eq!(udi(&d.agent), "UDI: PID:C9350-24U,SN:FOC2705Y8X0\n"); // §5.1 show license udi
    assert_eq!(render(&LicenseView::Udi, &d.agent, &config(), t0), udi(&d.agent));
    assert_eq!(render(&LicenseView::Status, &d.agent, &config(), t0), status(&d.agent, &config(), t0));
    assert_eq!(render(&LicenseView::Summary, &d.agent, &config(), t0), summary(&d.agent, &config(), t0));
    assert_eq!(render(&LicenseView::All, &d.agent, &config(), t0), all(&d.agent, &config(), t0));
    assert_eq!(render(&LicenseView::Mode, &d.agent, &config(), t0), mode(&config()));
    assert_eq!(render(&LicenseView::Server, &d.agent, &config(), t0), server(&config()));
    assert_eq!(render(&LicenseView::Catalog, &d.agent, &config(), t0), catalog(&d.agent, &config()));
    assert_eq!(render(&LicenseView::Eventlog, &d.agent, &config(), t0), eventlog(&d.agent));
    assert_eq!(render(&LicenseView::TechSupport, &d.agent, &config(), t0), tech_support(&d.agent, &config(), t0));
}

// ---- eventlog, clock, privacy, mode, server, catalog ----------------------------------------

#[test]
fn eventlog_lines_and_empty() {
    let t0 = at("2021-11-17T03:31:32Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    assert_lines(&eventlog(&d.agent), &["**** Event Log ****", "", " No EventLog Found."]); // §5.2
    d.agent.event_log.push_back(LogEntry {
        at: t0.plus_ms(920),
        message: "%SMART_LIC-6-AGENT_ENABLED: Smart Agent for Licensing is enabled".into(),
    });
    assert_lines(
        &eventlog(&d.agent),
        &[
            "**** Event Log ****",
            "",
            "2021-11-17 03:31:32.920 UTC %SMART_LIC-6-AGENT_ENABLED: Smart Agent for Licensing is enabled",
        ],
    );
}

#[test]
fn eventlog_after_registration_failure() {
    let t0 = at("2019-03-09T21:42:02Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.register = fail(FailureKind::Communication, "Fail to send out Call Home HTTP message");
    d.register(t0);
    let out = eventlog(&d.agent);
    assert!(out.contains("\n2019-03-09 21:42:02.000 UTC %SMART_LIC-3-AGENT_REG_FAILED: Smart Agent for Licensing Registration with the Cisco Smart Software Manager or satellite failed: Fail to send out Call Home HTTP message\n"), "{out}");
}

#[test]
fn clock_in_device_style() {
    assert_eq!(show_clock(Timestamp(at("2024-03-13T08:09:24Z").0 + 123)), "*08:09:24.123 UTC Wed Mar 13 2024\n");
    assert_eq!(show_clock(at("2023-09-01T11:04:51Z")), "*11:04:51.000 UTC Fri Sep 1 2023\n");
    // §5.2
}

#[test]
fn hostname_privacy_both_ways() {
    let mut cfg = config();
    assert_lines(
        &show_hostname_privacy(&cfg),
        &[
            "Data Privacy:",
            "  Sending Hostname: yes",
            "    Callhome hostname privacy: DISABLED",
            "    Smart Licensing hostname privacy: DISABLED",
            "  Version privacy: DISABLED",
        ],
    );
    cfg.hostname_privacy = true;
    assert_lines(
        &show_hostname_privacy(&cfg),
        &[
            "Data Privacy:",
            "  Sending Hostname: no",
            "    Callhome hostname privacy: DISABLED",
            "    Smart Licensing hostname privacy: ENABLED",
            "  Version privacy: DISABLED",
        ],
    );
}

#[test]
fn mode_server_and_transport_forms() {
    let mut cfg = config();
    assert_eq!(mode(&cfg), "Smart Licensing mode: smart-licensing\n");
    assert_eq!(server(&cfg), "Smart Licensing server: https://127.0.0.1:8443\n");
    cfg.transport.proxy = Some(ProxyConfig {
        host: "10.0.0.248".into(),
        port: 4440,
        username: Some("u".into()),
        password: Some("p".into()),
    });
    cfg.transport.proxy_enabled = true;
    assert_eq!(mode(&cfg), "Smart Licensing mode: proxy\n"); // seed 000:551
    assert_eq!(server(&cfg), "Smart Licensing server: https://127.0.0.1:8443\nProxy server: 10.0.0.248 port 4440\n");
    let d = Device::new("P", "S", at("2024-01-01T00:00:00Z"));
    let out = status(&d.agent, &cfg, d.now);
    assert!(out.ends_with(
        "Transport:\n  Type: Smart\n  URL: https://127.0.0.1:8443\n  Proxy:\n    Address: 10.0.0.248\n    Port: 4440\n    Username: u\n    Password: ********\n"
    ), "{out}");
    assert!(!out.contains("    Password: p\n"));
    cfg.transport.kind = TransportKind::Satellite;
    assert_eq!(mode(&cfg), "Smart Licensing mode: satellite\n");
    cfg.transport.kind = TransportKind::Off;
    cfg.transport.url = None;
    assert_eq!(mode(&cfg), "Smart Licensing mode: off\n");
    assert_eq!(server(&cfg), "Smart Licensing server: <none>\nProxy server: 10.0.0.248 port 4440\n");
    assert!(status(&d.agent, &cfg, d.now).ends_with("Transport:\n  Type: Off\n"));
}

#[test]
fn catalog_lists_every_tag_with_its_use() {
    let t0 = at("2024-01-01T00:00:00Z");
    let mut d = Device::new("APIC-SERVER-M3", "FCH2001V0AB", t0);
    d.usage("ACI Essentials", 10);
    let mut cfg = config();
    cfg.catalog.insert("Q\"&<>".into(), "Odd".into());
    assert_lines(
        &catalog(&d.agent, &cfg),
        &[
            "<licenseProduct pid=\"APIC-SERVER-M3\" sn=\"FCH2001V0AB\">",
            "  <licenseEntitlement tag=\"ACI Essentials\" name=\"ACI Essentials\" inUse=\"10\"/>",
            "  <licenseEntitlement tag=\"C9200L-NW-E-24\" name=\"C9200L Network Essentials 24\" inUse=\"0\"/>",
            "  <licenseEntitlement tag=\"C9200L-NW-E-48\" name=\"C9200L Network Essentials 48\" inUse=\"0\"/>",
            "  <licenseEntitlement tag=\"Q&quot;&amp;&lt;&gt;\" name=\"Odd\" inUse=\"0\"/>",
            "</licenseProduct>",
        ],
    );
}

// ---- tech support -------------------------------------------------------------------------------

#[test]
fn remaining_drops_leading_zero_units() {
    // §5.2 tech support "Upcoming Scheduled Jobs".
    assert_eq!(format_remaining(9 * HOUR_MS + 57 * MINUTE_MS + 47 * SECOND_MS), "9 hours, 57 minutes, 47 seconds");
    assert_eq!(format_remaining(7 * MINUTE_MS + 48 * SECOND_MS), "7 minutes, 48 seconds");
    assert_eq!(format_remaining(58 * DAY_MS + 7 * HOUR_MS + 36 * MINUTE_MS), "58 days, 7 hours, 36 minutes, 0 seconds");
    assert_eq!(format_remaining(0), "0 seconds");
}

#[test]
fn tech_support_registered() {
    let d = seed_003_device();
    let mut cfg = config();
    cfg.trustpoints.insert(
        "SLA-TrustPoint".into(),
        Trustpoint { enrollment_terminal: true, revocation_check_none: true, certificate: Some("PEM".into()) },
    );
    let now = at("2022-06-23T16:15:44Z");
    let out = tech_support(&d.agent, &cfg, now);
    assert!(out.starts_with("Smart Licensing Tech Support info\n\nSmart Licensing Status\n"), "{out}");
    assert!(out.contains(&all(&d.agent, &cfg, now)), "tech support contains show license all");
    let tail = out.split("License reservation: DISABLED\n\n").nth(1).expect("sections after all");
    assert_lines(
        tail,
        &[
            "Configuration",
            "=============",
            "Hostname: switch",
            "Smart Licensing hostname privacy: DISABLED",
            "Trust points:",
            "  SLA-TrustPoint: CA certificate installed, revocation-check none",
            "Usage:",
            "  license feature \"ACI Essentials\" count 1",
            "",
            "Upcoming Scheduled Jobs",
            "=======================",
            "Current time: Jun 23 16:15:44 2022 UTC",
            "ID Certificate Renewal: Dec 19 16:15:41 2022 UTC (178 days, 23 hours, 59 minutes, 57 seconds remaining)",
            "Registration Expiration: Jun 22 16:13:53 2023 UTC (363 days, 23 hours, 58 minutes, 9 seconds remaining)",
            "Authorization Renewal: Jul 22 16:15:43 2022 UTC (28 days, 23 hours, 59 minutes, 59 seconds remaining)",
            "Authorization Expiration: Sep 20 16:12:55 2022 UTC (88 days, 23 hours, 57 minutes, 11 seconds remaining)",
            "",
            "Communication Statistics:",
            "=======================",
            "Communication Level Allowed: DIRECT",
            "Registration:",
            "  Ongoing Failure: Overall=0",
            "  Last Response: SUCCEEDED on Jun 22 16:15:41 2022 UTC",
            "    Failure Reason: <none>",
            "Authorization Request:",
            "  Ongoing Failure: Overall=0",
            "  Last Response: SUCCEEDED on Jun 22 16:15:44 2022 UTC",
            "    Failure Reason: <none>",
            "ID Certificate Renewal:",
            "  Ongoing Failure: Overall=0",
            "  Last Response: <none>",
            "    Failure Reason: <none>",
        ],
    );
}

#[test]
fn tech_support_registering_and_evaluating() {
    let t0 = at("2018-10-24T15:55:26Z");
    let mut d = Device::new("C9300-24UX", "FCW2303D16Y", t0);
    d.usage("ACI Essentials", 1);
    d.register = fail(FailureKind::Communication, "Fail to send out Call Home HTTP message");
    d.register(t0);
    let out = tech_support(&d.agent, &DeviceConfig::default(), t0);
    let jobs = out.split("Upcoming Scheduled Jobs\n").nth(1).expect("jobs");
    assert!(jobs.starts_with(
        "=======================\nCurrent time: Oct 24 15:55:26 2018 UTC\nRegistration Retry: Oct 24 16:10:26 2018 UTC (15 minutes, 0 seconds remaining)\nEvaluation Expiration: Jan 22 15:55:26 2019 UTC (90 days, 0 hours, 0 minutes, 0 seconds remaining)\n\n"
    ), "{jobs}");
    assert!(out.contains("Registration:\n  Ongoing Failure: Overall=1\n  Last Response: FAILED on Oct 24 15:55:26 2018 UTC\n    Failure Reason: Fail to send out Call Home HTTP message\n"), "{out}");
    assert!(out.contains("Trust points:\n  <none>\n"));
    assert!(out.contains("\nTransport:\n  Type: Smart\n  URL: <empty>\n"));
}
