//! One simulated device and the device side of its exchanges: the agent's `Send*` actions
//! become signed requests to the manager, their answers the agent's outcome events.
//!
//! A device's work touches only the device and the manager, so several devices can run at once
//! (see the engine's batches); what they count goes into a [`Tally`] merged afterwards.

use super::check::{Kind, Outcome, Timeline};
use super::manager::Manager;
use smartlic_agent::device::{auth_answer, intervals, SEND_FAILED};
use smartlic_core::agent::{step, Action, Agent, AuthFacts, Event, Failure, FailureKind, RegisterFacts, RenewFacts};
use smartlic_core::Timestamp;
use smartlic_proto::wire::{
    self, AuthorizeRequest, AuthorizeResponse, DeregisterRequest, DeregisterResponse, RegisterRequest,
    RegisterResponse, RenewIdRequest, RenewIdResponse, Udi, Usage,
};
use smartlic_proto::{cert, KeyAlgorithm, SigningKey};
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Default)]
pub struct Device {
    pub group: usize,
    /// None until it boots, and again once retired.
    pub agent: Option<Agent>,
    /// The key of the ID certificate and the instance, while registered.
    pub identity: Option<(Arc<SigningKey>, String)>,
    pub timeline: Timeline,
    /// The wake-up in the queue that still counts (earlier ones were superseded).
    pub wake: Option<Timestamp>,
    pub retired: bool,
}

/// What one device's exchanges add to the day's counts (indexes of `report::REQUESTS` and
/// `report::FAILURES`), and the first timeline violation found.
#[derive(Default)]
pub struct Tally {
    pub requests: [u64; 4],
    pub failures: [u64; 3],
    pub violation: Option<String>,
}

/// Where a device's exchanges go: the manager, unless it is unreachable (an outage).
#[derive(Clone, Copy)]
pub struct Link<'a> {
    pub manager: &'a Manager,
    pub outage: bool,
}

impl Device {
    /// Whether the device is registered and was authorized before: its requests then only
    /// renew what the manager already counts, so their answers do not depend on the order in
    /// which devices are served.
    pub fn only_renews(&self, now: Timestamp) -> bool {
        self.identity.is_some() && self.timeline.authorized_at(now)
    }

    /// Performs the actions of one step and steps their outcomes in, at the same instant.
    pub async fn perform(&mut self, link: Link<'_>, tally: &mut Tally, actions: Vec<Action>, at: Timestamp) {
        let mut pending = VecDeque::from(actions);
        while let Some(action) = pending.pop_front() {
            let (kind, event) = match action {
                Action::SendRegister { token, force } => {
                    (Some(Kind::Register), self.register(link, tally, &token, force, at).await)
                }
                Action::SendAuthorize { usage } => {
                    (Some(Kind::Authorize), self.authorize(link, tally, usage, at).await)
                }
                Action::SendRenewId => (Some(Kind::RenewId), self.renew(link, tally, at).await),
                Action::SendDeregister => (None, self.deregister(link, tally, at).await),
                Action::DropIdentity => {
                    self.identity = None;
                    continue;
                }
                // Simulated fleets hold no legacy licenses and never start a conversion (V-1).
                Action::SendConversion { .. } | Action::Log(_) | Action::RaiseFault(_) | Action::ClearFault(_) => {
                    continue
                }
            };
            if let Some(kind) = kind {
                self.timeline.answered(kind, outcome(&event), at);
            }
            if let Some(agent) = self.agent.as_mut() {
                pending.extend(step(agent, event, at));
            }
        }
    }

    /// Counts a request and checks it against the timeline; during an outage it fails as an
    /// unreachable manager does on a device.
    fn send(
        &mut self,
        link: Link<'_>,
        tally: &mut Tally,
        kind: usize,
        checked: Option<Kind>,
        at: Timestamp,
    ) -> Result<(), Failure> {
        tally.requests[kind] += 1;
        if let Some(kind) = checked {
            if let Err(message) = self.timeline.sent(kind, at) {
                tally.violation.get_or_insert(message);
            }
        }
        if link.outage {
            return Err(Failure::new(FailureKind::Communication, SEND_FAILED));
        }
        Ok(())
    }

    fn agent(&self) -> Result<&Agent, Failure> {
        self.agent.as_ref().ok_or_else(|| local("the device has not booted"))
    }

    /// The device's key and instance ID (shared: the exchange borrows the device).
    fn identity(&self) -> Result<(Arc<SigningKey>, String), Failure> {
        self.identity
            .clone()
            .ok_or_else(|| Failure::new(FailureKind::NotRegistered, "the device holds no ID certificate"))
    }

    async fn register(&mut self, link: Link<'_>, tally: &mut Tally, token: &str, force: bool, at: Timestamp) -> Event {
        let answer = async {
            self.send(link, tally, 0, Some(Kind::Register), at)?;
            let agent = self.agent()?;
            let udi = Udi { pid: agent.pid.clone(), sn: agent.sn.clone() };
            let key = SigningKey::generate(KeyAlgorithm::Ed25519).map_err(local)?;
            let csr = key.certificate_request(&format!("{}:{}", udi.pid, udi.sn)).map_err(local)?;
            let evaluation_used_ms = Some(agent.evaluation.used_ms);
            let answer: RegisterResponse = link
                .manager
                .exchange(wire::PATH_REGISTER, &key, at, |envelope| RegisterRequest {
                    envelope,
                    token: token.to_string(),
                    udi,
                    hostname: None,
                    force,
                    csr,
                    evaluation_used_ms,
                })
                .await?;
            certified(&key, &answer.certificate)?;
            Ok((key, answer))
        }
        .await;
        match answer {
            Ok((key, a)) => {
                self.identity = Some((Arc::new(key), a.instance_id.clone()));
                Event::RegisterSucceeded(RegisterFacts {
                    instance_id: a.instance_id,
                    smart_account: a.smart_account,
                    virtual_account: a.virtual_account,
                    export_controlled: a.export_controlled,
                    certificate_serial: a.certificate_serial,
                    certificate_expires: Timestamp(a.certificate_expires),
                    intervals: intervals(&a.intervals),
                })
            }
            Err(f) => Event::RegisterFailed(failed(tally, f)),
        }
    }

    async fn authorize(
        &mut self,
        link: Link<'_>,
        tally: &mut Tally,
        usage: Vec<(String, u32)>,
        at: Timestamp,
    ) -> Event {
        let answer = async {
            self.send(link, tally, 1, Some(Kind::Authorize), at)?;
            let (key, instance_id) = self.identity()?;
            let usage = usage.into_iter().map(|(tag, count)| Usage { tag, count: i64::from(count) }).collect();
            link.manager
                .exchange::<_, AuthorizeResponse>(wire::PATH_AUTHORIZE, &key, at, |envelope| AuthorizeRequest {
                    envelope,
                    instance_id,
                    hostname: None,
                    usage,
                })
                .await
        }
        .await;
        match answer {
            Ok(a) => Event::AuthSucceeded(AuthFacts {
                status: auth_answer(a.status),
                entitlements: a.entitlements.iter().map(|e| (e.tag.clone(), auth_answer(e.status))).collect(),
                valid_until: Timestamp(a.valid_until),
                intervals: intervals(&a.intervals),
            }),
            Err(f) => Event::AuthFailed(failed(tally, f)),
        }
    }

    async fn renew(&mut self, link: Link<'_>, tally: &mut Tally, at: Timestamp) -> Event {
        let answer = async {
            self.send(link, tally, 2, Some(Kind::RenewId), at)?;
            let (key, instance_id) = self.identity()?;
            let agent = self.agent()?;
            let next = SigningKey::generate(KeyAlgorithm::Ed25519).map_err(local)?;
            let csr = next.certificate_request(&format!("{}:{}", agent.pid, agent.sn)).map_err(local)?;
            let answer: RenewIdResponse = link
                .manager
                .exchange(wire::PATH_RENEW_ID, &key, at, |envelope| RenewIdRequest { envelope, instance_id, csr })
                .await?;
            certified(&next, &answer.certificate)?;
            Ok((next, answer))
        }
        .await;
        match answer {
            Ok((next, a)) => {
                if let Some(identity) = self.identity.as_mut() {
                    identity.0 = Arc::new(next);
                }
                Event::IdRenewSucceeded(RenewFacts {
                    certificate_serial: a.certificate_serial,
                    certificate_expires: Timestamp(a.certificate_expires),
                    intervals: intervals(&a.intervals),
                })
            }
            Err(f) => Event::IdRenewFailed(failed(tally, f)),
        }
    }

    async fn deregister(&mut self, link: Link<'_>, tally: &mut Tally, at: Timestamp) -> Event {
        let answer = async {
            self.send(link, tally, 3, None, at)?;
            let (key, instance_id) = self.identity()?;
            link.manager
                .exchange::<_, DeregisterResponse>(wire::PATH_DEREGISTER, &key, at, |envelope| DeregisterRequest {
                    envelope,
                    instance_id,
                })
                .await
        }
        .await;
        match answer {
            Ok(_) => Event::DeregisterDone,
            Err(f) => Event::DeregisterFailed { reason: failed(tally, f).reason },
        }
    }
}

/// Counts a failure by what the device makes of it.
fn failed(tally: &mut Tally, f: Failure) -> Failure {
    let i = match f.kind {
        FailureKind::Refused => 1,
        FailureKind::NotRegistered => 2,
        FailureKind::Communication | FailureKind::TransportUnavailable => 0,
    };
    tally.failures[i] += 1;
    f
}

/// What the timeline checker makes of an outcome event.
fn outcome(event: &Event) -> Outcome {
    match event {
        Event::RegisterSucceeded(f) => Outcome::Registered { id_renew_ms: f.intervals.id_renew_ms },
        Event::AuthSucceeded(f) => {
            Outcome::Authorized { status: f.status, renew_ms: f.intervals.auth_renew_ms, valid_until: f.valid_until }
        }
        Event::IdRenewSucceeded(f) => Outcome::Renewed { id_renew_ms: f.intervals.id_renew_ms },
        Event::RegisterFailed(f) | Event::AuthFailed(f) | Event::IdRenewFailed(f)
            if f.kind == FailureKind::NotRegistered =>
        {
            Outcome::Forgotten
        }
        _ => Outcome::Failed,
    }
}

fn local(e: impl std::fmt::Display) -> Failure {
    Failure::new(FailureKind::Communication, e.to_string())
}

/// A certificate for another key would leave the device unable to prove who it is.
fn certified(key: &SigningKey, certificate: &str) -> Result<(), Failure> {
    match cert::public_key_of_certificate(certificate) {
        Ok(k) if k == key.public_key() => Ok(()),
        _ => Err(Failure::new(FailureKind::Communication, "the certificate issued is not for the device's key")),
    }
}
