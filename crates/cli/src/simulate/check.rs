//! The timers of SPEC A-5 … A-8, checked on each device's timeline as the simulation runs.
//!
//! The checker does not ask the state machine what it should have done: it keeps its own
//! account of each device's requests and their outcomes, and from the requirement's numbers
//! alone (15 minutes for 4 hours then hourly, 30 days, 23 hours, …) says when the next request of
//! each kind is due. A request at any other time, or an authorization status that disagrees
//! with the deadline, is a violation, reported with the requirement it breaks.

use smartlic_core::agent::{Agent, AuthAnswer, Authorization, Registration};
use smartlic_core::time::{DAY_MS, HOUR_MS, MINUTE_MS};
use smartlic_core::Timestamp;

/// The kinds of request a device sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Register,
    Authorize,
    RenewId,
}

/// What came back, as far as the timers are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Registered, with the manager's renewal interval of the ID certificate.
    Registered {
        id_renew_ms: i64,
    },
    Authorized {
        status: AuthAnswer,
        renew_ms: i64,
        valid_until: Timestamp,
    },
    Renewed {
        id_renew_ms: i64,
    },
    /// The exchange failed and is retried (communication failure, or refused).
    Failed,
    /// The manager no longer knows the device: its registration is gone.
    Forgotten,
}

/// One device's expected next requests.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    register: Due,
    authorize: Due,
    renew: Due,
    /// Consecutive failures of the current registration and of authorizations.
    register_failures: u32,
    auth_failures: u32,
    /// The last successful authorization's status and validity end.
    authorized: Option<(AuthAnswer, Timestamp)>,
}

/// When the next request of one kind is due, and the rule that says so.
#[derive(Clone, Debug, Default)]
struct Due {
    at: Option<Timestamp>,
    rule: &'static str,
}

impl Due {
    fn set(&mut self, at: Timestamp, rule: &'static str) {
        *self = Due { at: Some(at), rule };
    }
}

impl Timeline {
    /// Checks a request about to be sent at `now`.
    pub fn sent(&mut self, kind: Kind, now: Timestamp) -> Result<(), String> {
        let due = match kind {
            Kind::Register => &self.register,
            Kind::Authorize => &self.authorize,
            Kind::RenewId => &self.renew,
        };
        match due.at {
            Some(at) if at != now => Err(format!(
                "{kind:?} request at {}, but {} puts it at {}",
                now.to_rfc3339(),
                due.rule,
                at.to_rfc3339()
            )),
            _ => Ok(()),
        }
    }

    /// Whether an authorization succeeded and is still valid at `now`: the manager counts the
    /// device's usage (it releases the usage of devices silent longer than that).
    pub fn authorized_at(&self, now: Timestamp) -> bool {
        self.authorized.is_some_and(|(_, valid_until)| now < valid_until)
    }

    /// A new registration is started by the operator (scenario): no earlier schedule applies.
    pub fn registration_started(&mut self) {
        *self = Timeline::default();
    }

    /// Records the outcome of a request sent at `now` and derives the next due times.
    pub fn answered(&mut self, kind: Kind, outcome: Outcome, now: Timestamp) {
        match (kind, outcome) {
            (_, Outcome::Forgotten) => *self = Timeline::default(),
            (Kind::Register, Outcome::Registered { id_renew_ms }) => {
                *self = Timeline::default();
                self.authorize.set(now, "A-4 (authorization requested at once on registration)");
                self.renew.set(now.plus_ms(id_renew_ms), "A-8 (ID certificate renewed at the interval of the answer)");
            }
            (Kind::Register, _) => {
                self.register_failures += 1;
                let (delay, rule) = if self.register_failures <= 16 {
                    (15 * MINUTE_MS, "A-5 (registration retried every 15 minutes for 4 hours)")
                } else {
                    (HOUR_MS, "A-5 (registration retried hourly after 4 hours)")
                };
                self.register.set(now.plus_ms(delay), rule);
            }
            (Kind::Authorize, Outcome::Authorized { status, renew_ms, valid_until }) => {
                self.auth_failures = 0;
                self.authorized = Some((status, valid_until));
                match status {
                    AuthAnswer::OutOfCompliance => self
                        .authorize
                        .set(now.plus_ms(renew_ms.min(DAY_MS)), "A-7 (out of compliance re-requests daily)"),
                    _ => self.authorize.set(now.plus_ms(renew_ms), "A-6 (authorization renewed every 30 days)"),
                }
            }
            (Kind::Authorize, _) => {
                self.auth_failures += 1;
                let n = self.auth_failures;
                let (delay, rule) = match self.authorized {
                    Some((status, deadline)) if now >= deadline && expires(status) => {
                        (HOUR_MS, "A-7 (authorization expired: retried hourly)")
                    }
                    Some((AuthAnswer::OutOfCompliance, _)) if n <= 8 => {
                        (15 * MINUTE_MS, "A-7 (out of compliance: retried every 15 minutes for 2 hours)")
                    }
                    Some((AuthAnswer::OutOfCompliance, _)) => {
                        (4 * HOUR_MS, "A-7 (out of compliance: retried every 4 hours after 2 hours)")
                    }
                    Some(_) => (23 * HOUR_MS, "A-7 (authorized: retried every 23 hours)"),
                    None if n <= 16 => (15 * MINUTE_MS, "A-5 (first authorization retried like a registration)"),
                    None => (HOUR_MS, "A-5 (first authorization retried like a registration, hourly)"),
                };
                let mut next = now.plus_ms(delay);
                // at the deadline the status expires and hourly retries begin.
                if let Some((_, deadline)) = self.authorized.filter(|(s, d)| now < *d && expires(*s)) {
                    next = next.min(deadline.plus_ms(HOUR_MS));
                }
                self.authorize.set(next, rule);
            }
            (Kind::RenewId, Outcome::Renewed { id_renew_ms }) => {
                self.renew.set(now.plus_ms(id_renew_ms), "A-8 (ID certificate renewed at the interval of the answer)")
            }
            (Kind::RenewId, _) => self.renew.set(now.plus_ms(HOUR_MS), "A-8 (renewal retried hourly after a failure)"),
        }
    }

    /// Checks the authorization status against the last validity end, at `now`.
    pub fn status(&self, agent: &Agent, now: Timestamp) -> Result<(), String> {
        let Registration::Registered(_) = &agent.registration else { return Ok(()) };
        let Some((_, deadline)) = self.authorized.filter(|(s, _)| expires(*s)) else { return Ok(()) };
        match (&agent.authorization, now >= deadline) {
            (Authorization::AuthorizationExpired { at }, true) if *at == deadline => Ok(()),
            (Authorization::AuthorizationExpired { at }, _) => Err(format!(
                "AUTHORIZATION EXPIRED since {}, but A-6 says at the deadline {}",
                at.to_rfc3339(),
                deadline.to_rfc3339()
            )),
            (other, true) => Err(format!(
                "{} at {}, but A-6 says AUTHORIZATION EXPIRED from the deadline {}",
                other.display(),
                now.to_rfc3339(),
                deadline.to_rfc3339()
            )),
            _ => Ok(()),
        }
    }
}

/// AUTHORIZED and OUT OF COMPLIANCE expire at the deadline; NO LICENSES IN USE has nothing to.
fn expires(status: AuthAnswer) -> bool {
    status != AuthAnswer::NoLicensesInUse
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn registration_retries_follow_a5() {
        let mut t = Timeline::default();
        let mut now = T0;
        for _ in 0..16 {
            t.answered(Kind::Register, Outcome::Failed, now);
            now = now.plus_ms(15 * MINUTE_MS);
            t.sent(Kind::Register, now).unwrap();
        }
        t.answered(Kind::Register, Outcome::Failed, now);
        let early = t.sent(Kind::Register, now.plus_ms(15 * MINUTE_MS)).unwrap_err();
        assert!(early.contains("A-5") && early.contains("hourly"), "{early}");
        t.sent(Kind::Register, now.plus_ms(HOUR_MS)).unwrap();
    }

    #[test]
    fn authorization_is_due_at_once_then_every_renewal() {
        let mut t = Timeline::default();
        t.answered(Kind::Register, Outcome::Registered { id_renew_ms: 180 * DAY_MS }, T0);
        assert!(t.sent(Kind::Authorize, T0.plus_ms(1)).unwrap_err().contains("A-4"));
        t.sent(Kind::Authorize, T0).unwrap();
        let valid_until = T0.plus_days(90);
        t.answered(
            Kind::Authorize,
            Outcome::Authorized { status: AuthAnswer::Authorized, renew_ms: 30 * DAY_MS, valid_until },
            T0,
        );
        t.sent(Kind::Authorize, T0.plus_days(30)).unwrap();
        t.answered(Kind::Authorize, Outcome::Failed, T0.plus_days(30));
        assert!(t.sent(Kind::Authorize, T0.plus_days(31)).unwrap_err().contains("23 hours"));
        t.sent(Kind::RenewId, T0.plus_days(180)).unwrap();
    }

    #[test]
    fn retries_near_the_deadline_become_hourly_at_it() {
        let mut t = Timeline::default();
        let valid_until = T0.plus_ms(HOUR_MS);
        t.answered(
            Kind::Authorize,
            Outcome::Authorized { status: AuthAnswer::Authorized, renew_ms: 30 * DAY_MS, valid_until },
            T0,
        );
        t.answered(Kind::Authorize, Outcome::Failed, T0);
        t.sent(Kind::Authorize, valid_until.plus_ms(HOUR_MS)).unwrap();
    }
}
