//! Timeline tests: a simulated device clock and a fake manager answering every `Send*` action.

use super::schedule::EVALUATION_MS;
use super::*;
use proptest::prelude::*;

const MIN: i64 = MINUTE_MS;
const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z

/// How the fake manager answers one kind of request.
#[derive(Clone, Debug, PartialEq)]
enum Reply {
    Ok,
    Refuse(&'static str),
    Down,
}

const DOWN_REASON: &str = "Fail to send out Call Home HTTP message";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Register,
    Authorize,
    RenewId,
    Deregister,
}

struct FakeManager {
    register: Reply,
    authorize: Reply,
    renew: Reply,
    /// The compliance answer when usage is not empty.
    compliance: AuthAnswer,
    sent: Vec<(Timestamp, Sent)>,
    last_usage: Vec<(String, u32)>,
}

impl FakeManager {
    fn failure(reply: &Reply) -> Failure {
        match reply {
            Reply::Refuse(reason) => Failure::new(FailureKind::Refused, *reason),
            _ => Failure::new(FailureKind::Communication, DOWN_REASON),
        }
    }

    /// The outcome event of one action, as the agent crate would feed it back.
    fn answer(&mut self, action: &Action, now: Timestamp) -> Option<Event> {
        let intervals = Intervals::default();
        Some(match action {
            Action::SendRegister { .. } => {
                self.sent.push((now, Sent::Register));
                match &self.register {
                    Reply::Ok => Event::RegisterSucceeded(RegisterFacts {
                        instance_id: "pi-1".into(),
                        smart_account: "Example Inc".into(),
                        virtual_account: "Default".into(),
                        export_controlled: true,
                        certificate_serial: "01".into(),
                        certificate_expires: now.plus_days(365),
                        intervals,
                    }),
                    other => Event::RegisterFailed(Self::failure(other)),
                }
            }
            Action::SendAuthorize { usage } => {
                self.sent.push((now, Sent::Authorize));
                self.last_usage = usage.clone();
                match &self.authorize {
                    Reply::Ok => Event::AuthSucceeded(AuthFacts {
                        status: if usage.is_empty() { AuthAnswer::NoLicensesInUse } else { self.compliance },
                        entitlements: usage.iter().map(|(tag, _)| (tag.clone(), self.compliance)).collect(),
                        valid_until: now.plus_ms(intervals.auth_validity_ms),
                        intervals,
                    }),
                    other => Event::AuthFailed(Self::failure(other)),
                }
            }
            Action::SendRenewId => {
                self.sent.push((now, Sent::RenewId));
                match &self.renew {
                    Reply::Ok => Event::IdRenewSucceeded(RenewFacts {
                        certificate_serial: "02".into(),
                        certificate_expires: now.plus_days(365),
                        intervals,
                    }),
                    other => Event::IdRenewFailed(Self::failure(other)),
                }
            }
            Action::SendDeregister => {
                self.sent.push((now, Sent::Deregister));
                Event::DeregisterDone
            }
            _ => return None,
        })
    }
}

/// A device with an explicit clock, driven like the agent crate will drive it.
struct Sim {
    agent: Agent,
    now: Timestamp,
    mgr: FakeManager,
    steps: usize,
    actions: Vec<Action>,
}

impl Sim {
    fn new() -> Self {
        Sim {
            agent: Agent::new("APIC-SERVER-M3", "FCH2001V0AB", T0),
            now: T0,
            mgr: FakeManager {
                register: Reply::Ok,
                authorize: Reply::Ok,
                renew: Reply::Ok,
                compliance: AuthAnswer::Authorized,
                sent: vec![],
                last_usage: vec![],
            },
            steps: 0,
            actions: vec![],
        }
    }

    /// Steps one event at the current time, answers every exchange and feeds the outcome back.
    fn run(&mut self, event: Event) {
        let mut queue = vec![event];
        while let Some(event) = queue.pop() {
            let actions = step(&mut self.agent, event, self.now);
            self.steps += 1;
            for action in &actions {
                if let Some(outcome) = self.mgr.answer(action, self.now) {
                    queue.insert(0, outcome);
                }
            }
            self.actions.extend(actions);
        }
    }

    /// Moves time forward to `t`, ticking at every wake-up on the way (time passing, no jump).
    fn until(&mut self, t: Timestamp) {
        while let Some(due) = next_wakeup(&self.agent).filter(|&d| d <= t) {
            assert!(due >= self.now, "wake-up {due} in the past of {}", self.now);
            self.now = due;
            self.run(Event::Tick);
            if let Some(next) = next_wakeup(&self.agent) {
                assert!(next > self.now, "next wake-up {next} not after a tick at {}", self.now);
            }
        }
        self.now = t;
        self.run(Event::Tick);
    }

    fn after(&mut self, ms: i64) {
        self.until(self.now.plus_ms(ms));
    }

    /// `clock set`: a jump, no ticks in between.
    fn clock_set(&mut self, t: Timestamp) {
        self.now = t;
        self.run(Event::ClockSet);
    }

    fn usage(&mut self, tag: &str, count: u32) {
        self.run(Event::SetUsage { tag: tag.into(), count });
    }

    fn register(&mut self) {
        self.run(Event::Register { token: "TOKEN".into(), force: false });
    }

    /// Minutes after `from` of each request of `kind` sent at or after `from`.
    fn sent_minutes(&self, kind: Sent, from: Timestamp) -> Vec<i64> {
        self.mgr.sent.iter().filter(|(t, k)| *k == kind && *t >= from).map(|(t, _)| (t.0 - from.0) / MIN).collect()
    }

    fn reg(&self) -> &Registered {
        self.agent.registration.registered().expect("registered")
    }

    fn logged(&self, needle: &str) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::Log(e) if e.message.contains(needle))).count()
    }

    fn left(&self) -> i64 {
        self.agent.evaluation.left_ms()
    }
}

fn days(n: i64) -> i64 {
    n * DAY_MS
}

// ---- evaluation ---------------------------------------------------------------------------------

#[test]
fn evaluation_counts_only_with_usage_and_while_unregistered() {
    let mut s = Sim::new();
    assert_eq!(s.agent.authorization, Authorization::Evaluation);
    assert!(s.agent.faults.contains(&Fault::EvaluationMode));
    s.after(days(10));
    assert_eq!(s.left(), EVALUATION_MS, "nothing in use: no countdown");
    assert_eq!(next_wakeup(&s.agent), None);
    s.usage("ACI Essentials", 2);
    s.after(days(5));
    assert_eq!(s.left(), days(85));
    s.usage("ACI Essentials", 0);
    s.after(days(40));
    assert_eq!(s.left(), days(85), "usage removed: countdown stops");
    s.usage("ACI Essentials", 1);
    s.after(days(4) + 3 * HOUR_MS);
    assert_eq!(s.left(), days(81) - 3 * HOUR_MS);
    // Registered: no countdown.
    s.register();
    s.after(days(20));
    assert_eq!(s.left(), days(81) - 3 * HOUR_MS);
    // Deregistered: the countdown resumes where it was, never reset.
    s.run(Event::Deregister);
    assert_eq!(s.agent.registration, Registration::Unidentified);
    assert_eq!(s.agent.authorization, Authorization::Evaluation);
    s.after(days(1));
    assert_eq!(s.left(), days(80) - 3 * HOUR_MS);
    assert_eq!(format_time_left(s.left()), "79 days, 21 hours, 0 minutes, 0 seconds");
}

#[test]
fn evaluation_warnings_then_expiry_then_hourly_notices() {
    let mut s = Sim::new();
    s.usage("ACI Essentials", 1);
    // 60 days left after 30 days of use.
    assert_eq!(next_wakeup(&s.agent), Some(T0.plus_days(30)));
    s.until(T0.plus_days(90).plus_ms(-1));
    let warnings: Vec<i64> = s
        .agent
        .event_log
        .iter()
        .filter(|e| e.message.contains("EVAL_WILL_EXPIRE_WARNING"))
        .map(|e| (e.at.0 - T0.0) / HOUR_MS)
        .collect();
    let mut expected: Vec<i64> = [30, 60, 69, 76, 83, 84, 85, 86, 87, 88, 89].iter().map(|d| d * 24).collect();
    expected.extend((1..=23).map(|h| 89 * 24 + h));
    assert_eq!(warnings, expected);
    assert!(s
        .agent
        .event_log
        .iter()
        .any(|e| e.message.ends_with("will expire in 7 days, 0 hours, 0 minutes, 0 seconds")));
    assert_eq!(s.agent.authorization, Authorization::Evaluation);
    assert_eq!(next_wakeup(&s.agent), Some(T0.plus_days(90)));
    s.until(T0.plus_days(90));
    assert_eq!(s.agent.authorization, Authorization::EvaluationExpired { at: T0.plus_days(90) });
    assert!(s.agent.faults.contains(&Fault::EvaluationExpired));
    assert!(!s.agent.faults.contains(&Fault::EvaluationMode));
    assert!(s.actions.contains(&Action::RaiseFault(Fault::EvaluationExpired)));
    assert_eq!(s.logged("EVAL_EXPIRED: Evaluation period expired on"), 1);
    s.after(5 * HOUR_MS + 30 * MIN);
    assert_eq!(s.logged("EVAL_EXPIRED: Evaluation period expired on"), 6, "at expiry and every hour after");
    assert_eq!(next_wakeup(&s.agent), Some(T0.plus_days(90).plus_ms(6 * HOUR_MS)));
    assert_eq!(s.left(), 0);
}

#[test]
fn evaluation_expired_while_registered_stays_expired_after_deregistration() {
    let mut s = Sim::new();
    s.usage("ACI Essentials", 1);
    s.after(days(95));
    s.register();
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: s.now });
    assert!(!s.agent.faults.contains(&Fault::EvaluationExpired));
    s.run(Event::Deregister);
    assert_eq!(s.agent.authorization, Authorization::EvaluationExpired { at: T0.plus_days(90) });
    assert!(s.agent.faults.contains(&Fault::EvaluationExpired));
}

#[test]
fn a_tampered_state_ends_the_evaluation_for_good_even_after_a_registration() {
    let mut s = Sim::new();
    s.usage("ACI Essentials", 1);
    s.after(days(3));
    s.run(Event::StateTampered { reason: "agent.json was changed outside the agent".into() });
    assert_eq!((s.left(), s.agent.authorization.clone()), (0, Authorization::EvaluationExpired { at: s.now }));
    assert!(s.agent.faults.contains(&Fault::StateTampered) && s.agent.faults.contains(&Fault::EvaluationExpired));
    assert_eq!(s.logged("%SMART_LIC-3-EVAL_TAMPERED"), 1);
    // Licenses still work; once they are gone, the evaluation is still over.
    s.register();
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: s.now });
    s.run(Event::Deregister);
    assert!(matches!(s.agent.authorization, Authorization::EvaluationExpired { .. }));
    assert_eq!(s.agent.evaluation.tampered.as_deref(), Some("agent.json was changed outside the agent"));
}

// ---- registration ----------------------------------------------------------------------------

#[test]
fn registration_success_then_authorization_at_once() {
    let mut s = Sim::new();
    s.usage("ACI Essentials", 10);
    s.after(HOUR_MS);
    s.register();
    let r = s.reg().clone();
    assert_eq!(s.agent.registration.display(), "REGISTERED");
    assert_eq!(
        (r.smart_account.as_str(), r.virtual_account.as_str(), r.export_controlled),
        ("Example Inc", "Default", true)
    );
    assert_eq!(r.initial_registration, s.now);
    assert_eq!(r.last_renewal, None);
    assert_eq!(r.next_renewal, s.now.plus_days(180));
    assert_eq!(r.expires, s.now.plus_days(365));
    assert_eq!(s.sent_minutes(Sent::Authorize, s.now), vec![0]);
    assert_eq!(s.mgr.last_usage, vec![("ACI Essentials".to_string(), 10)]);
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: s.now });
    let c = &s.agent.communication;
    assert_eq!(c.last, Some(Attempt { at: s.now, outcome: Outcome::Succeeded }));
    assert_eq!(c.next_attempt, Some(s.now.plus_days(30)));
    assert_eq!(c.deadline, Some(s.now.plus_days(90)));
    assert!(s.agent.faults.is_empty(), "{:?}", s.agent.faults);
    let order: Vec<&str> = s
        .agent
        .event_log
        .iter()
        .map(|e| e.message.split(':').next().unwrap())
        .filter(|m| !m.contains("EVAL"))
        .collect();
    assert_eq!(
        order,
        [
            "%SMART_LIC-6-EXPORT_CONTROLLED",
            "%SMART_LIC-6-AGENT_REG_SUCCESS",
            "%SMART_LIC-6-AUTH_RENEW_SUCCESS",
            "%SMART_LIC-5-IN_COMPLIANCE"
        ]
    );
    assert!(s.agent.event_log[1].message.ends_with("for udi PID:APIC-SERVER-M3,SN:FCH2001V0AB"));
    // Registering again without force changes nothing.
    s.register();
    assert_eq!(s.sent_minutes(Sent::Register, T0).len(), 1);
}

#[test]
fn registration_retries_every_15_minutes_for_4_hours_then_hourly() {
    let mut s = Sim::new();
    s.mgr.register = Reply::Down;
    s.register();
    let Registration::Registering(a) = &s.agent.registration else { panic!("{:?}", s.agent.registration) };
    assert_eq!(a.next_attempt, Some(T0.plus_ms(15 * MIN)));
    assert_eq!(a.failure_reason(), Some(DOWN_REASON));
    assert_eq!(s.agent.registration.display(), "REGISTERING - REGISTRATION IN PROGRESS");
    assert!(s.agent.faults.contains(&Fault::RegistrationFailed));
    s.until(T0.plus_ms(8 * HOUR_MS));
    let mut expected: Vec<i64> = (0..=16).map(|n| n * 15).collect();
    expected.extend([300, 360, 420, 480]);
    assert_eq!(s.sent_minutes(Sent::Register, T0), expected);
    // The 15-minute retries ran out 4 hours after the first failure: failed, still tried hourly.
    let Registration::Failed(a) = &s.agent.registration else { panic!("{:?}", s.agent.registration) };
    assert_eq!(s.agent.registration.display(), "UNREGISTERED - REGISTRATION FAILED");
    assert_eq!(a.failure_reason(), Some(DOWN_REASON));
    assert_eq!(a.next_attempt, Some(T0.plus_ms(540 * MIN)));
    assert_eq!(a.failures, 21);
    // The manager comes back: the next retry registers.
    s.mgr.register = Reply::Ok;
    s.until(T0.plus_ms(540 * MIN));
    assert!(s.agent.registration.is_registered());
    assert_eq!(s.reg().initial_registration, T0.plus_ms(540 * MIN));
    assert!(!s.agent.faults.contains(&Fault::RegistrationFailed));
    assert_eq!(s.logged("AGENT_REG_FAILED"), 21);
}

/// G-4: REGISTERING through the 16 quick retries; the failure of the 16th (4 hours after the first)
/// ends it as REGISTRATION FAILED, and the hourly attempts go on.
#[test]
fn registration_fails_when_the_quick_retries_run_out() {
    let mut s = Sim::new();
    s.mgr.register = Reply::Down;
    s.register();
    s.until(T0.plus_ms(240 * MIN - 1));
    assert!(matches!(&s.agent.registration, Registration::Registering(a) if a.failures == 16));
    s.until(T0.plus_ms(240 * MIN));
    let Registration::Failed(a) = &s.agent.registration else { panic!("{:?}", s.agent.registration) };
    assert_eq!((a.failures, a.next_attempt), (17, Some(T0.plus_ms(300 * MIN))));
    assert!(s.agent.faults.contains(&Fault::RegistrationFailed));
    s.mgr.register = Reply::Ok;
    s.until(T0.plus_ms(300 * MIN));
    assert!(s.agent.registration.is_registered());
}

#[test]
fn refused_registration_fails_with_reason_and_next_attempt() {
    let mut s = Sim::new();
    s.mgr.register = Reply::Refuse("Product already registered");
    s.register();
    let Registration::Failed(a) = &s.agent.registration else { panic!("{:?}", s.agent.registration) };
    assert_eq!(s.agent.registration.display(), "UNREGISTERED - REGISTRATION FAILED");
    assert_eq!(a.failure_reason(), Some("Product already registered"));
    assert_eq!(a.last().unwrap().at, T0);
    assert_eq!(a.next_attempt, Some(T0.plus_ms(15 * MIN)));
    assert_eq!(s.logged("%SMART_LIC-3-AGENT_REG_FAILED: Smart Agent for Licensing Registration with the Cisco Smart Software Manager or satellite failed: Product already registered"), 1);
    assert_eq!(s.logged("COMM_FAILED"), 0);
    // Deregister cancels the retries.
    s.run(Event::Deregister);
    assert_eq!(s.agent.registration, Registration::Unidentified);
    assert_eq!(next_wakeup(&s.agent), None);
    assert!(s.actions.contains(&Action::DropIdentity));
}

#[test]
fn transport_not_available_fails_registration_without_retry() {
    let mut s = Sim::new();
    s.run(Event::SetTransport { available: false });
    s.register();
    let Registration::Failed(a) = &s.agent.registration else { panic!() };
    assert_eq!(a.failure_reason(), Some(TRANSPORT_NOT_AVAILABLE));
    assert_eq!(a.next_attempt, None);
    assert!(s.mgr.sent.is_empty());
    assert_eq!(s.logged("AGENT_REG_FAILED: Smart Agent for Licensing Registration with the Cisco Smart Software Manager or satellite failed: Communication transport not available"), 1);
    assert_eq!(s.logged("COMM_FAILED: Communications failure with the Cisco Smart Software Manager or satellite: Communication transport not available"), 1);
    // With a transport, registering again works.
    s.run(Event::SetTransport { available: true });
    s.register();
    assert!(s.agent.registration.is_registered());
}

#[test]
fn disable_stops_registration_retries() {
    let mut s = Sim::new();
    s.mgr.register = Reply::Down;
    s.register();
    s.after(HOUR_MS);
    s.run(Event::Disable);
    assert_eq!(s.agent.registration, Registration::Unidentified);
    assert_eq!(next_wakeup(&s.agent), None);
    let sent = s.mgr.sent.len();
    s.after(days(3));
    assert_eq!(s.mgr.sent.len(), sent);
    s.register();
    assert_eq!(s.mgr.sent.len(), sent, "disabled: register ignored");
    s.run(Event::Enable);
    assert!(s.agent.faults.contains(&Fault::EvaluationMode));
}

// ---- authorization ---------------------------------------------------------------------------

fn registered_sim() -> Sim {
    let mut s = Sim::new();
    s.usage("ACI Essentials", 10);
    s.register();
    s
}

/// The manager's status per tag is kept as answered (the device-wide status is separate), through
/// a failed renewal, and forgotten with the registration.
#[test]
fn each_tag_keeps_its_own_status_from_the_last_answer() {
    let mut s = registered_sim();
    let entitlements = BTreeMap::from([
        ("ACI Essentials".to_string(), AuthAnswer::Authorized),
        ("ACI Premier".to_string(), AuthAnswer::OutOfCompliance),
    ]);
    let facts = AuthFacts {
        status: AuthAnswer::OutOfCompliance,
        entitlements: entitlements.clone(),
        valid_until: s.now.plus_days(90),
        intervals: Intervals::default(),
    };
    s.run(Event::AuthSucceeded(facts));
    assert_eq!(s.agent.authorization, Authorization::OutOfCompliance { at: s.now });
    assert_eq!(s.agent.communication.entitlements, entitlements);
    s.mgr.authorize = Reply::Down;
    s.run(Event::RenewAuth);
    assert_eq!(s.agent.communication.entitlements, entitlements);
    s.run(Event::Deregister);
    assert!(s.agent.communication.entitlements.is_empty());
}

#[test]
fn usage_change_requests_authorization_at_once_with_the_full_list() {
    let mut s = registered_sim();
    s.after(days(3));
    s.usage("ACI Advantage", 2);
    assert_eq!(s.sent_minutes(Sent::Authorize, T0), vec![0, 3 * 24 * 60]);
    assert_eq!(s.mgr.last_usage, vec![("ACI Advantage".to_string(), 2), ("ACI Essentials".to_string(), 10)]);
    assert_eq!(s.agent.communication.next_attempt, Some(s.now.plus_days(30)));
    // Same value again: no change, no request.
    s.usage("ACI Advantage", 2);
    assert_eq!(s.sent_minutes(Sent::Authorize, T0).len(), 2);
    // Everything removed: the (empty) list is still reported.
    s.usage("ACI Advantage", 0);
    s.usage("ACI Essentials", 0);
    assert!(s.mgr.last_usage.is_empty());
    assert_eq!(s.agent.authorization, Authorization::NoLicensesInUse { at: s.now });
}

#[test]
fn authorization_renewed_every_30_days_even_unchanged() {
    let mut s = registered_sim();
    s.until(T0.plus_days(100));
    assert_eq!(s.sent_minutes(Sent::Authorize, T0), vec![0, 30 * 1440, 60 * 1440, 90 * 1440]);
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: T0 }, "status kept since first authorized");
    let c = &s.agent.communication;
    assert_eq!(c.last, Some(Attempt { at: T0.plus_days(90), outcome: Outcome::Succeeded }));
    assert_eq!(c.next_attempt, Some(T0.plus_days(120)));
    assert_eq!(c.deadline, Some(T0.plus_days(180)));
    assert_eq!(s.logged("AUTH_RENEW_SUCCESS"), 4);
    assert_eq!(s.logged("IN_COMPLIANCE"), 1);
}

#[test]
fn manager_unreachable_23_hour_retries_then_authorization_expired_then_hourly() {
    let mut s = registered_sim();
    s.mgr.authorize = Reply::Down;
    s.until(T0.plus_days(30));
    assert_eq!(
        s.agent.communication.last,
        Some(Attempt { at: T0.plus_days(30), outcome: Outcome::Failed { reason: DOWN_REASON.into() } })
    );
    assert_eq!(s.agent.communication.next_attempt, Some(T0.plus_days(30).plus_ms(23 * HOUR_MS)));
    s.until(T0.plus_days(90).plus_ms(-1));
    let from = T0.plus_days(30);
    let expected: Vec<i64> = (0..).map(|n| n * 23 * 60).take_while(|&m| m < 60 * 1440).collect();
    assert_eq!(s.sent_minutes(Sent::Authorize, from), expected);
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: T0 });
    assert_eq!(s.agent.communication.deadline, Some(T0.plus_days(90)));
    assert!(s.logged("%SMART_LIC-3-AUTH_RENEW_FAILED: Authorization renewal with the Cisco Smart Software Manager or satellite: Communication message send error for udi PID:APIC-SERVER-M3,SN:FCH2001V0AB") > 0);
    // The deadline: AUTHORIZATION EXPIRED, major fault, hourly retries from there.
    s.until(T0.plus_days(90));
    assert_eq!(s.agent.authorization, Authorization::AuthorizationExpired { at: T0.plus_days(90) });
    assert!(s.agent.faults.contains(&Fault::AuthorizationExpired));
    assert_eq!(s.agent.communication.next_attempt, Some(T0.plus_days(90).plus_ms(HOUR_MS)));
    s.until(T0.plus_days(90).plus_ms(5 * HOUR_MS));
    assert_eq!(s.sent_minutes(Sent::Authorize, T0.plus_days(90)), vec![60, 120, 180, 240, 300]);
    // Back online: the next hourly attempt restores AUTHORIZED.
    s.mgr.authorize = Reply::Ok;
    s.after(HOUR_MS);
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: s.now });
    assert!(!s.agent.faults.contains(&Fault::AuthorizationExpired));
    assert_eq!(s.logged("COMM_RESTORED"), 1);
    assert_eq!(s.agent.communication.next_attempt, Some(s.now.plus_days(30)));
}

#[test]
fn out_of_compliance_daily_rerequests_and_its_retry_schedule() {
    let mut s = Sim::new();
    s.mgr.compliance = AuthAnswer::OutOfCompliance;
    s.usage("ACI Essentials", 3);
    s.register();
    assert_eq!(s.agent.authorization, Authorization::OutOfCompliance { at: T0 });
    assert!(s.agent.faults.contains(&Fault::OutOfCompliance));
    assert_eq!(s.logged("%SMART_LIC-3-OUT_OF_COMPLIANCE: One or more entitlements are out of compliance"), 1);
    assert_eq!(s.agent.communication.next_attempt, Some(T0.plus_days(1)), "OOC re-requests daily");
    s.until(T0.plus_days(2));
    assert_eq!(s.sent_minutes(Sent::Authorize, T0), vec![0, 1440, 2880]);
    // The manager goes away: 15 minutes for two hours, then every 4 hours.
    s.mgr.authorize = Reply::Down;
    s.until(T0.plus_days(3).plus_ms(14 * HOUR_MS));
    let from = T0.plus_days(3);
    assert_eq!(s.sent_minutes(Sent::Authorize, from), vec![0, 15, 30, 45, 60, 75, 90, 105, 120, 360, 600, 840]);
    assert_eq!(s.agent.authorization, Authorization::OutOfCompliance { at: T0 });
    // Licenses added and the manager back: IN_COMPLIANCE, monthly renewals again.
    s.mgr.authorize = Reply::Ok;
    s.mgr.compliance = AuthAnswer::Authorized;
    s.run(Event::RenewAuth);
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: s.now });
    assert!(!s.agent.faults.contains(&Fault::OutOfCompliance));
    assert!(s.actions.contains(&Action::ClearFault(Fault::OutOfCompliance)));
    assert_eq!(s.agent.communication.next_attempt, Some(s.now.plus_days(30)));
}

#[test]
fn pending_answer_that_never_comes_counts_as_a_failure() {
    let mut s = registered_sim();
    s.now = T0.plus_days(30);
    let actions = step(&mut s.agent, Event::Tick, s.now);
    assert!(actions.iter().any(|a| matches!(a, Action::SendAuthorize { .. })));
    assert_eq!(s.agent.communication.last, Some(Attempt { at: s.now, outcome: Outcome::Pending }));
    assert_eq!(next_wakeup(&s.agent), Some(s.now.plus_ms(23 * HOUR_MS)));
}

#[test]
fn refused_authorization_keeps_status_and_logs_the_managers_reason() {
    let mut s = registered_sim();
    s.mgr.authorize = Reply::Refuse("Data and signature do not match");
    s.run(Event::RenewAuth);
    assert_eq!(s.agent.authorization, Authorization::Authorized { at: T0 });
    assert_eq!(
        s.agent.communication.last.as_ref().unwrap().outcome,
        Outcome::Failed { reason: "Data and signature do not match".into() }
    );
    assert_eq!(s.logged("AUTH_RENEW_FAILED: Authorization renewal with the Cisco Smart Software Manager or satellite: Error received from Smart Software Manager: Data and signature do not match for udi"), 1);
}

#[test]
fn manager_forgetting_the_device_returns_it_to_evaluation() {
    let mut s = registered_sim();
    s.run(Event::AuthFailed(Failure::new(FailureKind::NotRegistered, "Unknown product instance")));
    assert_eq!(s.agent.registration, Registration::Unidentified);
    assert_eq!(s.agent.authorization, Authorization::Evaluation);
    assert!(s.actions.contains(&Action::DropIdentity));
}

// ---- ID certificate ----------------------------------------------------------------------------

#[test]
fn id_renewal_every_180_days() {
    let mut s = registered_sim();
    s.until(T0.plus_days(400));
    assert_eq!(s.sent_minutes(Sent::RenewId, T0), vec![180 * 1440, 360 * 1440]);
    let r = s.reg();
    assert_eq!(r.last_renewal, Some(Attempt { at: T0.plus_days(360), outcome: Outcome::Succeeded }));
    assert_eq!(r.next_renewal, T0.plus_days(540));
    assert_eq!(r.expires, T0.plus_days(360 + 365));
    assert_eq!(r.initial_registration, T0);
    assert_eq!(s.logged("ID_CERT_RENEW_SUCCESS"), 2);
}

#[test]
fn manager_gone_a_year_back_to_evaluation_with_the_time_left() {
    let mut s = Sim::new();
    s.usage("ACI Essentials", 1);
    s.after(days(20));
    s.register();
    let registered_at = s.now;
    s.mgr = FakeManager { register: Reply::Down, authorize: Reply::Down, renew: Reply::Down, ..s.mgr };
    s.until(registered_at.plus_days(180));
    assert_eq!(s.reg().next_renewal, registered_at.plus_days(180).plus_ms(HOUR_MS));
    assert!(s.agent.faults.contains(&Fault::IdCertificateExpiredWarning));
    assert_eq!(s.agent.authorization, Authorization::AuthorizationExpired { at: registered_at.plus_days(90) });
    s.until(registered_at.plus_days(200));
    let renewals = s.sent_minutes(Sent::RenewId, registered_at.plus_days(180));
    assert_eq!(renewals, (0..=20 * 24).map(|h| h * 60).collect::<Vec<_>>(), "hourly ID renewal retries");
    s.until(registered_at.plus_days(365).plus_ms(-1));
    assert!(s.agent.registration.is_registered());
    assert_eq!(s.left(), days(70), "no countdown while registered");
    s.until(registered_at.plus_days(365));
    assert_eq!(s.agent.registration, Registration::Expired { at: registered_at.plus_days(365) });
    assert_eq!(s.agent.registration.display(), "UNREGISTERED - REGISTRATION EXPIRED");
    assert_eq!(s.agent.authorization, Authorization::Evaluation);
    assert!(s.agent.faults.contains(&Fault::IdCertificateExpired));
    assert!(!s.agent.faults.contains(&Fault::AuthorizationExpired));
    assert!(s.actions.contains(&Action::DropIdentity));
    assert_eq!(s.agent.communication, Communication::default());
    let sent = s.mgr.sent.len();
    s.after(days(1));
    assert_eq!(s.mgr.sent.len(), sent, "no more attempts once unidentified");
    assert_eq!(s.left(), days(69), "evaluation resumed with the time left");
    // Registering again clears the ID-certificate fault.
    s.mgr.register = Reply::Ok;
    s.mgr.authorize = Reply::Ok;
    s.register();
    assert!(s.agent.faults.is_empty(), "{:?}", s.agent.faults);
}

#[test]
fn deregister_drops_identity_and_returns_to_evaluation() {
    let mut s = registered_sim();
    s.after(days(2));
    s.run(Event::Deregister);
    assert_eq!(s.agent.registration, Registration::Unidentified);
    assert_eq!(s.agent.authorization, Authorization::Evaluation);
    assert_eq!(s.sent_minutes(Sent::Deregister, T0), vec![2 * 1440]);
    assert!(s.actions.contains(&Action::DropIdentity));
    assert_eq!(s.logged("AGENT_DEREG_SUCCESS"), 1);
    assert!(s.agent.faults.contains(&Fault::EvaluationMode));
    assert_eq!(s.agent.communication, Communication::default());
    // Only the evaluation countdown is left to wake for.
    assert_eq!(next_wakeup(&s.agent), Some(s.now.plus_days(30)));
}

#[test]
fn clock_moved_past_certificate_validity_gets_one_hour_of_grace() {
    let mut s = registered_sim();
    let expires = s.reg().expires;
    s.mgr.authorize = Reply::Down;
    s.mgr.renew = Reply::Down;
    s.clock_set(expires.plus_days(1));
    assert!(s.agent.registration.is_registered(), "grace: still registered");
    assert_eq!(s.reg().clock_out_of_range_since, Some(s.now));
    assert_eq!(s.logged("ID_CERT_OUT_OF_RANGE"), 1);
    assert_eq!(s.logged("SYSTEM_CLOCK_CHANGED"), 1);
    // A tick at once (the CLI runs due timers before each command) keeps the grace.
    s.run(Event::Tick);
    assert!(s.agent.registration.is_registered());
    assert_eq!(next_wakeup(&s.agent), Some(s.now.plus_ms(HOUR_MS)));
    s.after(59 * MIN);
    assert!(s.agent.registration.is_registered());
    s.after(MIN);
    assert_eq!(s.agent.registration, Registration::Expired { at: expires });
    assert!(s.actions.contains(&Action::DropIdentity));
}

#[test]
fn clock_set_back_into_validity_within_the_hour_keeps_the_registration() {
    let mut s = registered_sim();
    s.clock_set(T0.plus_days(-3));
    assert!(s.reg().clock_out_of_range_since.is_some());
    s.after(30 * MIN);
    s.clock_set(T0.plus_days(1));
    assert_eq!(s.reg().clock_out_of_range_since, None);
    s.after(days(2));
    assert!(s.agent.registration.is_registered());
    // Out of range before the certificate's start and left there: deregistered, not expired.
    s.clock_set(T0.plus_days(-1));
    s.after(HOUR_MS);
    assert_eq!(s.agent.registration, Registration::Unidentified);
}

#[test]
fn clock_jump_within_validity_runs_due_timers_once() {
    let mut s = registered_sim();
    s.mgr.authorize = Reply::Down;
    s.clock_set(T0.plus_days(91));
    // The deadline passed during the jump: expired at the deadline, one attempt now, hourly after.
    assert_eq!(s.agent.authorization, Authorization::AuthorizationExpired { at: T0.plus_days(90) });
    assert_eq!(s.sent_minutes(Sent::Authorize, T0.plus_days(1)), vec![90 * 1440]);
    assert_eq!(s.agent.communication.next_attempt, Some(T0.plus_days(91).plus_ms(HOUR_MS)));
}

// ---- whole-life timeline, speed, persistence ---------------------------------------------------

#[test]
fn two_simulated_years_in_well_under_a_second() {
    let started = std::time::Instant::now();
    let mut s = Sim::new();
    s.usage("ACI Essentials", 4);
    s.after(days(10));
    s.mgr.register = Reply::Down;
    s.register();
    s.after(days(1));
    s.mgr.register = Reply::Ok;
    s.after(days(1));
    for month in 0..24 {
        // The manager is down one month in three; usage changes monthly.
        s.mgr.authorize = if month % 3 == 2 { Reply::Down } else { Reply::Ok };
        s.mgr.renew = s.mgr.authorize.clone();
        s.usage("ACI Advantage", month % 4);
        s.after(days(30));
    }
    let elapsed = started.elapsed();
    eprintln!(
        "2 simulated years: {} steps, {} requests, {} log lines, {:?}",
        s.steps,
        s.mgr.sent.len(),
        s.actions.iter().filter(|a| matches!(a, Action::Log(_))).count(),
        elapsed
    );
    assert!(s.agent.registration.is_registered());
    assert!(s.steps > 200, "{}", s.steps);
    assert!(elapsed.as_millis() < 1000, "{elapsed:?}");
    assert!(s.agent.event_log.len() <= EVENT_LOG_CAPACITY);
}

#[test]
fn state_round_trips_through_toml() {
    let mut s = registered_sim();
    s.mgr.authorize = Reply::Down;
    s.after(days(40));
    let text = toml::to_string(&s.agent).expect("serialise");
    let back: Agent = toml::from_str(&text).expect("deserialise");
    assert_eq!(back, s.agent);
}

#[test]
fn formats_of_show_license() {
    assert_eq!(format_device_time(Timestamp(1_710_317_364_000)), "Mar 13 08:09:24 2024 UTC");
    assert_eq!(format_time_left(days(65) + 18 * HOUR_MS + 43 * MIN), "65 days, 18 hours, 43 minutes, 0 seconds");
    assert_eq!(Intervals::from_secs(180 * 86400, 30 * 86400, 90 * 86400), Intervals::default());
    assert_eq!(Intervals::from_secs(0, -1, 60).auth_validity_ms, 60_000);
}

// ---- offline reservation (R-1) ---------------------------------------------------------------

fn reserved(kind: ReservationKind, licenses: Vec<ReservedLicense>) -> Reserved {
    Reserved {
        kind,
        installed_at: T0,
        request_code: "CB-ZAPIC-SERVER-M3:FCH2001V0AB-AK9A6sMTr-86".into(),
        authorization_code: "<specificPLR>…</specificPLR>".into(),
        confirmation_code: "17488c1f".into(),
        licenses,
    }
}

fn term(tag: &str, count: u32, end: Option<Timestamp>) -> ReservedLicense {
    ReservedLicense { tag: tag.into(), count, license_type: "TERM".into(), start: None, end, expiry_announced: false }
}

/// A device with usage and a specific reservation installed at T0 + 1 day.
fn reserved_sim(licenses: Vec<ReservedLicense>) -> Sim {
    let mut s = Sim::new();
    s.usage("ACI Advantage", 2);
    s.usage("ACI Premier", 1);
    s.after(days(1));
    let request = ReservationRequest { kind: ReservationKind::Specific, code: "CB-…".into(), at: s.now };
    s.run(Event::ReservationRequested(request.clone()));
    assert_eq!(s.agent.reservation.request, None, "requests need `license smart reservation` first");
    s.run(Event::ReservationEnable(true));
    s.run(Event::ReservationRequested(request.clone()));
    assert_eq!(s.agent.reservation.request, Some(request));
    s.run(Event::ReservationInstalled(reserved(ReservationKind::Specific, licenses)));
    s
}

#[test]
fn installed_reservation_authorizes_offline_and_stops_evaluation() {
    let mut s = reserved_sim(vec![term("ACI Advantage", 2, Some(T0.plus_days(31)))]);
    assert_eq!(s.agent.registration.display(), "REGISTERED - SPECIFIC LICENSE RESERVATION");
    assert_eq!(s.agent.authorization.display(), "AUTHORIZED - RESERVED");
    assert_eq!(s.agent.reservation.request, None);
    assert_eq!(s.agent.reservation.last_confirmation_code.as_deref(), Some("17488c1f"));
    assert!(s.agent.faults.is_empty(), "{:?}", s.agent.faults);
    assert_eq!(s.logged("%SMART_LIC-6-RESERVED_INSTALLED: Specific License Reservation"), 1);
    assert_eq!(
        s.logged(
            "The entitlement ACI Premier in Not Authorized to be used. Reason: License not present in SLR auth code"
        ),
        1
    );
    assert_eq!(s.agent.reservation_coverage("ACI Advantage", 2, s.now), Some(Coverage::Covered));
    assert_eq!(s.agent.reservation_coverage("ACI Advantage", 3, s.now), Some(Coverage::CountExceeded));
    // Nothing is ever sent; the only wake-up is the term end; evaluation is frozen.
    let left = s.left();
    s.register();
    s.run(Event::RenewAuth);
    s.run(Event::Deregister);
    assert_eq!(next_wakeup(&s.agent), Some(T0.plus_days(31)));
    s.after(days(400));
    assert!(s.mgr.sent.is_empty(), "a reserved device contacted the manager: {:?}", s.mgr.sent);
    assert_eq!(s.left(), left);
    assert!(s.agent.registration.reserved().is_some());
    // The term ended on the device clock, announced once.
    assert_eq!(s.logged("The entitlement ACI Advantage in Not Authorized to be used. Reason: The license term"), 1);
    assert_eq!(s.agent.reservation_coverage("ACI Advantage", 1, s.now), Some(Coverage::Expired));
    assert_eq!(next_wakeup(&s.agent), None);
}

#[test]
fn returning_a_reservation_resumes_evaluation_with_the_time_left() {
    let mut s = reserved_sim(vec![term("ACI Advantage", 2, None)]);
    let left = s.left();
    assert_eq!(left, EVALUATION_MS - days(1));
    s.run(Event::ReservationReturned { return_code: "ChWhde-okvz5f".into() });
    assert_eq!(s.agent.registration, Registration::Unidentified);
    assert_eq!(s.agent.authorization, Authorization::Evaluation);
    assert_eq!(s.agent.reservation.last_return_code.as_deref(), Some("ChWhde-okvz5f"));
    s.after(days(2));
    assert_eq!(s.left(), left - days(2));
    // Registration works again afterwards.
    s.register();
    assert!(s.agent.registration.is_registered());
}

#[test]
fn universal_reservation_covers_every_tag_and_cancel_drops_a_request() {
    let mut s = Sim::new();
    s.run(Event::ReservationEnable(true));
    let request = ReservationRequest { kind: ReservationKind::Universal, code: "CU-…".into(), at: s.now };
    s.run(Event::ReservationRequested(request));
    s.run(Event::ReservationCancelled);
    assert_eq!(s.agent.reservation.request, None);
    // An authorization without a request in progress is not installed.
    s.run(Event::ReservationInstalled(reserved(ReservationKind::Universal, vec![])));
    assert_eq!(s.agent.registration, Registration::Unidentified);
    let request = ReservationRequest { kind: ReservationKind::Universal, code: "CU-…".into(), at: s.now };
    s.run(Event::ReservationRequested(request));
    s.run(Event::ReservationInstalled(reserved(ReservationKind::Universal, vec![])));
    assert_eq!(s.agent.registration.display(), "REGISTERED - UNIVERSAL LICENSE RESERVATION");
    s.usage("anything", 5);
    assert_eq!(s.agent.reservation_coverage("anything", 5, s.now), Some(Coverage::Covered));
    assert_eq!(s.logged("Not Authorized"), 0);
}

// ---- property: random event sequences -----------------------------------------------------------

fn arb_event() -> impl Strategy<Value = (u8, i64)> {
    // (event selector, minutes to advance before it; sometimes a jump, sometimes backwards)
    (0u8..24, prop_oneof![0i64..120, 0i64..(60 * 24 * 400), -(60 * 24 * 30)..0i64])
}

fn pick(sel: u8, s: &mut Sim) -> Event {
    let fail = |kind| Failure::new(kind, "reason");
    let kinds = [
        FailureKind::Communication,
        FailureKind::Refused,
        FailureKind::TransportUnavailable,
        FailureKind::NotRegistered,
    ];
    match sel {
        0 => Event::Register { token: "T".into(), force: false },
        1 => Event::Register { token: "T".into(), force: true },
        2 => Event::Deregister,
        3 => Event::RenewId,
        4 => Event::RenewAuth,
        5 => Event::SetUsage { tag: "A".into(), count: 1 },
        6 => Event::SetUsage { tag: "A".into(), count: 0 },
        7 => Event::Disable,
        8 => Event::Enable,
        9 => Event::SetTransport { available: false },
        10 => Event::SetTransport { available: true },
        11 => Event::ClockSet,
        12 => {
            s.mgr.register = Reply::Down;
            s.mgr.authorize = Reply::Down;
            s.mgr.renew = Reply::Down;
            Event::Tick
        }
        13 => {
            s.mgr.register = Reply::Ok;
            s.mgr.authorize = Reply::Ok;
            s.mgr.renew = Reply::Ok;
            Event::Tick
        }
        14 => Event::RegisterFailed(fail(kinds[s.steps % 4])),
        15 => Event::AuthFailed(fail(kinds[s.steps % 4])),
        16 => Event::IdRenewFailed(fail(kinds[s.steps % 4])),
        17 => Event::AuthSucceeded(AuthFacts {
            status: AuthAnswer::OutOfCompliance,
            entitlements: BTreeMap::from([("B".to_string(), AuthAnswer::OutOfCompliance)]),
            valid_until: s.now.plus_days(90),
            intervals: Intervals::default(),
        }),
        18 => Event::ReplaceUsage([("B".to_string(), 3), ("C".to_string(), 0)].into_iter().collect()),
        19 => Event::ReservationEnable(true),
        20 => Event::ReservationRequested(ReservationRequest {
            kind: ReservationKind::Specific,
            code: "CB-…".into(),
            at: s.now,
        }),
        21 => Event::ReservationInstalled(reserved(
            ReservationKind::Specific,
            vec![term("A", 1, Some(s.now.plus_days(30)))],
        )),
        22 => Event::ReservationReturned { return_code: "R".into() },
        _ => Event::Tick,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_sequences_keep_the_invariants(events in proptest::collection::vec(arb_event(), 1..60)) {
        let mut s = Sim::new();
        let mut used = 0;
        for (sel, minutes) in events {
            let to = s.now.plus_ms(minutes * MIN);
            if minutes >= 0 && sel % 2 == 0 {
                s.until(to); // time passing, ticking on the way (asserts wake-ups are never past)
            } else {
                s.now = to;
            }
            let event = pick(sel, &mut s);
            s.run(event);
            let ev = &s.agent.evaluation;
            prop_assert!(ev.used_ms >= used, "evaluation use went down");
            prop_assert!(ev.used_ms <= EVALUATION_MS);
            used = ev.used_ms;
            if let Registration::Registered(r) = &s.agent.registration {
                prop_assert!(r.expires.0 > 0);
                prop_assert!(r.next_renewal.0 > 0);
                prop_assert!(s.agent.communication.next_attempt.is_some(), "registered without a next attempt");
            }
            prop_assert!(s.agent.event_log.len() <= EVENT_LOG_CAPACITY);
            // After a tick at now, nothing is due at or before now.
            s.run(Event::Tick);
            if let Some(next) = next_wakeup(&s.agent) {
                prop_assert!(next > s.now, "next wake-up {} not after {}", next, s.now);
            }
            if s.agent.registration.reserved().is_some() {
                prop_assert!(matches!(s.agent.authorization, Authorization::Reserved { .. }), "reserved but {:?}", s.agent.authorization);
                prop_assert!(!s.actions.iter().any(|a| matches!(a, Action::SendRegister { .. } | Action::SendAuthorize { .. } | Action::SendRenewId | Action::SendDeregister)), "a reserved device sent");
            } else if !s.agent.registration.is_registered() {
                prop_assert!(matches!(s.agent.authorization, Authorization::Evaluation | Authorization::EvaluationExpired { .. }), "unregistered but {:?}", s.agent.authorization);
            }
            s.actions.clear();
        }
    }
}
