#![allow(clippy::disallowed_methods)]
//! Cost of the smart agent's state machine (`smartlic_core::agent::step`), without a bench crate:
//! a small harness timing batches with `std::time::Instant` and reporting medians.
//!
//! ```text
//! cargo bench -p smartlic-core --bench agent_steps                 # all, timed
//! target/release/deps/agent_steps-* tick 100000                    # one case, fixed count, for
//! target/release/deps/agent_steps-* timeline 10                    #   callgrind (no timing loop)
//! ```
//!
//! Cases:
//! - `tick`: an `Event::Tick` on a registered, AUTHORIZED device with usage, nothing due.
//! - `tick-eval`: an `Event::Tick` on an unregistered device in evaluation (use is accrued).
//! - `usage`: an `Event::SetUsage` on a registered device (count alternates 2/3), which sends an
//!   authorization request (one `SendAuthorize` action and the pending bookkeeping).
//! - `usage+answer`: the same plus the manager's answer fed back (`AuthSucceeded`): two steps.
//! - `timeline`: 2 simulated years of one device, ticking at each `next_wakeup`, a fake manager
//!   answering every request, with three bad periods (see [`Manager::mode`]).

use smartlic_core::agent::{
    next_wakeup, step, Action, Agent, AuthAnswer, AuthFacts, Event, Failure, FailureKind, Intervals, RegisterFacts,
    RenewFacts,
};
use smartlic_core::time::{Timestamp, DAY_MS};
use std::hint::black_box;
use std::time::Instant;

const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z
const TAG: &str = "ACI Essentials";
const YEARS_DAYS: i64 = 730;

/// What the fake manager does at a given simulated time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Up,
    /// Unreachable: every request fails with a communication failure.
    Down,
    /// Up, but the pool is short: authorizations answer OUT OF COMPLIANCE.
    Short,
}

#[derive(Default)]
struct Manager {
    requests: u64,
    failures: u64,
    /// Requests by kind: register, authorize, renew ID, deregister.
    by_kind: [u64; 4],
}

impl Manager {
    /// Days 180–260 down (the day-183 ID renewal retried hourly, authorization renewals every
    /// 23 h), days 400–500 down (AUTHORIZATION EXPIRED at the deadline, then hourly retries),
    /// days 600–620 short (OUT OF COMPLIANCE, re-requested daily).
    fn mode(now: Timestamp) -> Mode {
        let day = (now.0 - T0.0) / DAY_MS;
        match day {
            180..260 | 400..500 => Mode::Down,
            600..620 => Mode::Short,
            _ => Mode::Up,
        }
    }

    fn answer(&mut self, action: &Action, now: Timestamp) -> Option<Event> {
        let intervals = Intervals::default();
        let mode = Self::mode(now);
        let down = || Failure::new(FailureKind::Communication, "Fail to send out Call Home HTTP message");
        let event = match action {
            Action::SendRegister { .. } if mode == Mode::Down => Event::RegisterFailed(down()),
            Action::SendRegister { .. } => Event::RegisterSucceeded(RegisterFacts {
                instance_id: "pi-1".into(),
                smart_account: "Example Inc".into(),
                virtual_account: "Default".into(),
                export_controlled: false,
                certificate_serial: "01".into(),
                certificate_expires: now.plus_days(365),
                intervals,
            }),
            Action::SendAuthorize { .. } if mode == Mode::Down => Event::AuthFailed(down()),
            Action::SendAuthorize { usage } => {
                let status = if usage.is_empty() {
                    AuthAnswer::NoLicensesInUse
                } else if mode == Mode::Short {
                    AuthAnswer::OutOfCompliance
                } else {
                    AuthAnswer::Authorized
                };
                Event::AuthSucceeded(AuthFacts {
                    status,
                    entitlements: usage.iter().map(|(tag, _)| (tag.clone(), status)).collect(),
                    valid_until: now.plus_ms(intervals.auth_validity_ms),
                    intervals,
                })
            }
            Action::SendRenewId if mode == Mode::Down => Event::IdRenewFailed(down()),
            Action::SendRenewId => Event::IdRenewSucceeded(RenewFacts {
                certificate_serial: format!("{:02x}", self.requests),
                certificate_expires: now.plus_days(365),
                intervals,
            }),
            Action::SendDeregister => Event::DeregisterDone,
            _ => return None,
        };
        self.requests += 1;
        self.by_kind[match action {
            Action::SendRegister { .. } => 0,
            Action::SendAuthorize { .. } => 1,
            Action::SendRenewId => 2,
            _ => 3,
        }] += 1;
        if mode == Mode::Down {
            self.failures += 1;
        }
        Some(event)
    }
}

/// Steps `event` at `now`, answers every exchange and feeds the outcomes back; returns the steps.
fn run(agent: &mut Agent, mgr: &mut Manager, event: Event, now: Timestamp) -> u64 {
    let mut queue = std::collections::VecDeque::from([event]);
    let mut steps = 0;
    while let Some(event) = queue.pop_front() {
        let actions = step(agent, event, now);
        steps += 1;
        for action in &actions {
            queue.extend(mgr.answer(action, now));
        }
    }
    steps
}

/// A device registered at T0 with `ACI Essentials=2`, AUTHORIZED.
fn registered() -> Agent {
    let mut agent = Agent::new("APIC-SERVER-M3", "FCH2001V0AB", T0);
    let mut mgr = Manager::default();
    run(&mut agent, &mut mgr, Event::SetUsage { tag: TAG.into(), count: 2 }, T0);
    run(&mut agent, &mut mgr, Event::Register { token: "TOKEN".into(), force: false }, T0);
    assert_eq!(agent.authorization.display(), "AUTHORIZED");
    agent
}

/// A device in evaluation with usage, never registered.
fn evaluating() -> Agent {
    let mut agent = Agent::new("APIC-SERVER-M3", "FCH2001V0AB", T0);
    run(&mut agent, &mut Manager::default(), Event::SetUsage { tag: TAG.into(), count: 2 }, T0);
    assert_eq!(agent.authorization.display(), "EVALUATION MODE");
    agent
}

/// Runs `n` iterations of a case on a fresh copy of its start state; returns the steps done.
/// Time moves 1 ms per iteration, so nothing else becomes due (the first timer is 23 h away).
fn case(name: &str, n: u64) -> u64 {
    match name {
        "tick" | "tick-eval" => {
            let mut agent = if name == "tick" { registered() } else { evaluating() };
            for i in 1..=n {
                black_box(step(black_box(&mut agent), Event::Tick, T0.plus_ms(i as i64)));
            }
            n
        }
        "usage" => {
            let mut agent = registered();
            for i in 1..=n {
                let event = Event::SetUsage { tag: TAG.into(), count: 2 + (i % 2) as u32 };
                black_box(step(black_box(&mut agent), event, T0.plus_ms(i as i64)));
            }
            n
        }
        "usage+answer" => {
            let mut agent = registered();
            let mut mgr = Manager::default();
            let mut steps = 0;
            for i in 1..=n {
                let event = Event::SetUsage { tag: TAG.into(), count: 2 + (i % 2) as u32 };
                steps += run(black_box(&mut agent), &mut mgr, event, T0.plus_ms(i as i64));
            }
            steps
        }
        "timeline" => {
            let mut steps = 0;
            for _ in 0..n {
                let (agent, s, _) = timeline();
                black_box(agent);
                steps += s;
            }
            steps
        }
        other => panic!("unknown case {other}: tick, tick-eval, usage, usage+answer, timeline"),
    }
}

/// 2 simulated years of one device: in use from T0, registered on day 3, then left to its timers.
/// Returns the final state, the number of steps and the manager.
fn timeline() -> (Agent, u64, Manager) {
    let mut agent = Agent::new("APIC-SERVER-M3", "FCH2001V0AB", T0);
    let mut mgr = Manager::default();
    let mut steps = run(&mut agent, &mut mgr, Event::SetUsage { tag: TAG.into(), count: 2 }, T0);
    let end = T0.plus_days(YEARS_DAYS);
    let mut registered = false;
    while let Some(due) = next_wakeup(&agent).filter(|&t| t <= end) {
        let register_at = T0.plus_days(3);
        if !registered && due > register_at {
            registered = true;
            let register = Event::Register { token: "TOKEN".into(), force: false };
            steps += run(&mut agent, &mut mgr, register, register_at);
            continue;
        }
        steps += run(&mut agent, &mut mgr, Event::Tick, due);
    }
    steps += run(&mut agent, &mut mgr, Event::Tick, end);
    (agent, steps, mgr)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times `samples` batches of `n` iterations; prints the median and range of ns per step.
fn timed(name: &str, n: u64, samples: usize) {
    case(name, n / 10); // warm-up
    let mut per_step = Vec::with_capacity(samples);
    let mut per_iter = Vec::with_capacity(samples);
    let mut steps = 0;
    for _ in 0..samples {
        let start = Instant::now();
        steps = case(name, n);
        let ns = start.elapsed().as_nanos() as f64;
        per_step.push(ns / steps as f64);
        per_iter.push(ns / n as f64);
    }
    let (lo, hi) = (per_step.iter().cloned().fold(f64::MAX, f64::min), per_step.iter().cloned().fold(0.0, f64::max));
    let it = median(per_iter);
    let it = if it >= 1e6 { format!("{:.2} ms", it / 1e6) } else { format!("{:.0} ns", it) };
    println!(
        "{name:<13} {:>9.1} ns/step (min {lo:.1}, max {hi:.1})  {it}/iteration  {} steps/iteration  [{samples} x {n}]",
        median(per_step),
        steps / n,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; positional arguments pick one case and a count.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let Some(name) = args.first() {
        let n = args.get(1).map_or(1, |s| s.parse().expect("count"));
        let steps = case(name, n);
        println!("{name}: {n} iterations, {steps} steps");
        return;
    }
    let (agent, steps, mgr) = timeline();
    println!(
        "timeline: {YEARS_DAYS} days, {steps} steps, {} requests ({} failed; register {}, authorize {}, renew ID {}), \
         {} log entries kept, final: {} / {}",
        mgr.requests,
        mgr.failures,
        mgr.by_kind[0],
        mgr.by_kind[1],
        mgr.by_kind[2],
        agent.event_log.len(),
        agent.registration.display(),
        agent.authorization.display(),
    );
    timed("tick", 100_000, 21);
    timed("tick-eval", 100_000, 21);
    timed("usage", 100_000, 21);
    timed("usage+answer", 50_000, 21);
    timed("timeline", 20, 21);
}
