//! [`step`] and [`next_wakeup`]: the transitions of the smart agent.

use super::schedule::{self, AuthRetry};
use super::*;

/// Applies one event at device time `now` and returns what the caller must do, in order.
///
/// It takes `&mut Agent` rather than returning a new one: a step never fails half-way (every
/// branch is total), so mutating in place is observably the same as building a new value, and it
/// spares cloning the event log at every timer tick (a 2-year timeline is thousands of steps).
/// [`stepped`] is the by-value form for callers that want the old state kept.
pub fn step(agent: &mut Agent, event: Event, now: Timestamp) -> Vec<Action> {
    let mut cx = Cx { agent, now, actions: Vec::new() };
    cx.advance(matches!(event, Event::ClockSet));
    cx.apply(event);
    cx.sync_faults();
    cx.actions
}

/// [`step`] on a copy: `(new state, actions)`, the old state untouched.
pub fn stepped(agent: &Agent, event: Event, now: Timestamp) -> (Agent, Vec<Action>) {
    let mut next = agent.clone();
    let actions = step(&mut next, event, now);
    (next, actions)
}

/// The earliest instant at which something is due (a retry, a renewal, an expiry, an evaluation
/// warning); the caller steps [`Event::Tick`] at that time. None when nothing will ever happen by
/// itself (unregistered without usage, or smart licensing disabled).
pub fn next_wakeup(agent: &Agent) -> Option<Timestamp> {
    if !agent.enabled {
        return None;
    }
    let mut due: Vec<Timestamp> = Vec::with_capacity(6);
    match &agent.registration {
        Registration::Registering(a) | Registration::Failed(a) => due.extend(a.next_attempt),
        Registration::Registered(r) => {
            due.push(r.next_renewal);
            match r.clock_out_of_range_since {
                Some(since) => due.push(since.plus_ms(schedule::CLOCK_GRACE_MS)),
                None => due.push(r.expires),
            }
            due.extend(agent.communication.next_attempt);
            if expires_with_deadline(&agent.authorization) {
                due.extend(agent.communication.deadline);
            }
        }
        Registration::Reserved(r) => due.extend(r.next_expiry()),
        Registration::Unidentified | Registration::Expired { .. } => {}
    }
    due.extend(agent.conversion.next_due());
    if !agent.registration.holds_licenses() && agent.in_use() {
        let ev = &agent.evaluation;
        match ev.last_expired_notice {
            Some(last) if ev.left_ms() == 0 => due.push(last.plus_ms(schedule::EVAL_EXPIRED_NOTICE_MS)),
            _ => {
                if let Some(mark) = schedule::next_evaluation_mark(ev.left_ms()) {
                    due.push(agent.clock.plus_ms(ev.left_ms() - mark));
                }
            }
        }
    }
    due.into_iter().min()
}

/// AUTHORIZED and OUT OF COMPLIANCE become AUTHORIZATION EXPIRED at the communication deadline.
fn expires_with_deadline(auth: &Authorization) -> bool {
    matches!(auth, Authorization::Authorized { .. } | Authorization::OutOfCompliance { .. })
}

/// One step in progress: the state, its time, and the actions asked so far.
pub(super) struct Cx<'a> {
    pub(super) agent: &'a mut Agent,
    pub(super) now: Timestamp,
    pub(super) actions: Vec<Action>,
}

impl Cx<'_> {
    pub(super) fn log(&mut self, message: String) {
        let entry = LogEntry { at: self.now, message };
        if self.agent.event_log.len() >= EVENT_LOG_CAPACITY {
            self.agent.event_log.pop_front();
        }
        self.agent.event_log.push_back(entry.clone());
        self.actions.push(Action::Log(entry));
    }

    // ---- time ---------------------------------------------------------------------------------

    /// Catches up with `now`: evaluation use, expiries, due attempts, evaluation notices.
    fn advance(&mut self, clock_set: bool) {
        let now = self.now;
        let prev = self.agent.clock;
        if now > prev && self.agent.evaluation_counting() {
            let ev = &mut self.agent.evaluation;
            let left = ev.left_ms();
            let used = (now.0 - prev.0).min(left);
            ev.used_ms += used;
            if ev.left_ms() == 0 {
                ev.expired_at = Some(prev.plus_ms(left));
            }
        }
        if clock_set && now != prev {
            self.log(format!(
                "%SMART_LIC-6-SYSTEM_CLOCK_CHANGED: Smart Agent for Licensing System clock has been changed from {} to {}",
                format_device_time(prev),
                format_device_time(now)
            ));
        }
        self.agent.clock = now;
        if !self.agent.enabled {
            return;
        }
        self.advance_registration(clock_set);
        self.advance_conversion();
        self.advance_evaluation();
    }

    fn advance_registration(&mut self, clock_set: bool) {
        let now = self.now;
        match &self.agent.registration {
            Registration::Registering(a) | Registration::Failed(a) => {
                if a.next_attempt.is_some_and(|t| t <= now) {
                    self.send_register();
                }
            }
            Registration::Registered(r) => {
                let (in_range, since, expires) = (r.clock_in_range(now), r.clock_out_of_range_since, r.expires);
                match since {
                    Some(_) if in_range => {
                        self.set_out_of_range(None);
                        self.log("%SMART_LIC-6-ID_CERT_IN_RANGE: The system clock is back within the validity period of the ID certificate".into());
                    }
                    Some(since) if now >= since.plus_ms(schedule::CLOCK_GRACE_MS) => {
                        let expired = now >= expires;
                        self.log("%SMART_LIC-3-ID_CERT_OUT_OF_RANGE: The system clock stayed outside the validity period of the ID certificate for one hour: registration removed".into());
                        self.lose_registration(expired, if expired { expires } else { now });
                        return;
                    }
                    Some(_) => {}
                    None if !in_range && clock_set => {
                        self.set_out_of_range(Some(now));
                        self.log("%SMART_LIC-4-ID_CERT_OUT_OF_RANGE: The system clock is outside the validity period of the ID certificate; registration will be removed in one hour unless the clock is set back".into());
                    }
                    None if now >= expires => {
                        self.log("%SMART_LIC-3-ID_CERT_EXPIRED: Registration period has expired: the ID certificate expired and the device is no longer registered".into());
                        self.lose_registration(true, expires);
                        return;
                    }
                    None => {}
                }
                // Authorization expiry at the communication deadline: hourly retries after.
                if expires_with_deadline(&self.agent.authorization) {
                    if let Some(deadline) = self.agent.communication.deadline.filter(|&d| d <= now) {
                        self.agent.authorization = Authorization::AuthorizationExpired { at: deadline };
                        self.log(format!(
                            "%SMART_LIC-3-AUTHORIZATION_EXPIRED: Authorization expired: the device has not communicated with the {MANAGER} for {} days",
                            self.agent.communication.intervals.unwrap_or_default().auth_validity_ms / DAY_MS
                        ));
                        let hourly = now.plus_ms(auth_retry_ms_for(&self.agent.authorization, 1));
                        let next = &mut self.agent.communication.next_attempt;
                        *next = Some(next.map_or(hourly, |t| t.min(hourly)));
                    }
                }
                if self.agent.registration.registered().is_some_and(|r| r.next_renewal <= now) {
                    self.send_renew_id();
                }
                if self.agent.communication.next_attempt.is_some_and(|t| t <= now) {
                    self.send_authorize();
                }
            }
            Registration::Reserved(_) => self.announce_term_ends(),
            Registration::Unidentified | Registration::Expired { .. } => {}
        }
    }

    /// Reserved term licenses end on the device clock; a tag in use loses its authorization then.
    fn announce_term_ends(&mut self) {
        let ended = self.mark_term_ends();
        let usage: Vec<(String, u32)> =
            self.agent.usage.iter().filter(|(t, _)| ended.contains(t)).map(|(t, c)| (t.clone(), *c)).collect();
        self.log_not_authorized(&usage);
    }

    /// Marks the reserved term licenses ended by now as announced; returns their tags.
    fn mark_term_ends(&mut self) -> Vec<String> {
        let now = self.now;
        let Registration::Reserved(r) = &mut self.agent.registration else { return Vec::new() };
        let mut ended = Vec::new();
        for l in r.licenses.iter_mut().filter(|l| !l.expiry_announced && l.end.is_some_and(|e| e <= now)) {
            l.expiry_announced = true;
            ended.push(l.tag.clone());
        }
        ended
    }

    /// `%SMART_LIC-3-NOT_AUTHORIZED` for each of `usage` the installed reservation does not cover.
    fn log_not_authorized(&mut self, usage: &[(String, u32)]) {
        for (tag, count) in usage {
            match self.agent.reservation_coverage(tag, *count, self.now) {
                Some(Coverage::Covered) | None => {}
                Some(why) => self.log(format!(
                    "%SMART_LIC-3-NOT_AUTHORIZED: The entitlement {tag} in Not Authorized to be used. Reason: {}",
                    why.reason()
                )),
            }
        }
    }

    fn set_out_of_range(&mut self, since: Option<Timestamp>) {
        if let Registration::Registered(r) = &mut self.agent.registration {
            r.clock_out_of_range_since = since;
        }
    }

    fn advance_evaluation(&mut self) {
        if self.agent.registration.holds_licenses() || !self.agent.in_use() {
            return;
        }
        let left = self.agent.evaluation.left_ms();
        if left > 0 {
            let floor = self.agent.evaluation.warned_down_to_ms;
            if let Some(crossed) = schedule::evaluation_warnings().filter(|&t| left <= t && t < floor).last() {
                self.agent.evaluation.warned_down_to_ms = crossed;
                self.log(format!(
                    "%SMART_LIC-4-EVAL_WILL_EXPIRE_WARNING: Evaluation period will expire in {}",
                    format_time_left(left)
                ));
            }
            return;
        }
        let ev = &self.agent.evaluation;
        let at = ev.expired_at.unwrap_or(self.now);
        let notice_due = ev.last_expired_notice.is_none_or(|t| t.plus_ms(schedule::EVAL_EXPIRED_NOTICE_MS) <= self.now);
        if !matches!(self.agent.authorization, Authorization::EvaluationExpired { .. }) {
            self.agent.authorization = Authorization::EvaluationExpired { at };
        }
        if notice_due {
            self.agent.evaluation.warned_down_to_ms = 0;
            self.agent.evaluation.last_expired_notice = Some(self.now);
            self.log(format!("%SMART_LIC-3-EVAL_EXPIRED: Evaluation period expired on {}", format_device_time(at)));
        }
    }

    // ---- sending ------------------------------------------------------------------------------

    fn send_register(&mut self) {
        let now = self.now;
        let (token, force) = match &mut self.agent.registration {
            Registration::Registering(a) | Registration::Failed(a) => {
                push_attempt(&mut a.history, Attempt::pending(now));
                a.next_attempt = Some(now.plus_ms(schedule::registration_retry_ms(a.failures + 1)));
                (a.token.clone(), a.force)
            }
            _ => return,
        };
        if let Registration::Failed(a) = &self.agent.registration {
            self.agent.registration = Registration::Registering(a.clone());
        }
        if self.agent.transport_available {
            self.actions.push(Action::SendRegister { token, force });
        } else {
            self.register_failed(Failure::new(FailureKind::TransportUnavailable, TRANSPORT_NOT_AVAILABLE));
        }
    }

    fn send_authorize(&mut self) {
        let now = self.now;
        let c = &mut self.agent.communication;
        c.last = Some(Attempt::pending(now));
        let delay = auth_retry_ms_for(&self.agent.authorization, c.failures + 1);
        c.next_attempt = Some(now.plus_ms(delay));
        if self.agent.transport_available {
            self.actions.push(Action::SendAuthorize { usage: self.agent.usage_list() });
        } else {
            self.auth_failed(Failure::new(FailureKind::TransportUnavailable, TRANSPORT_NOT_AVAILABLE));
        }
    }

    fn send_renew_id(&mut self) {
        let now = self.now;
        let Registration::Registered(r) = &mut self.agent.registration else { return };
        r.last_renewal = Some(Attempt::pending(now));
        r.next_renewal = now.plus_ms(schedule::ID_RENEW_RETRY_MS);
        if self.agent.transport_available {
            self.actions.push(Action::SendRenewId);
        } else {
            self.renew_failed(Failure::new(FailureKind::TransportUnavailable, TRANSPORT_NOT_AVAILABLE));
        }
    }

    // ---- events -------------------------------------------------------------------------------

    fn apply(&mut self, event: Event) {
        let enabled = self.agent.enabled;
        match event {
            Event::Tick | Event::ClockSet => {}
            Event::Enable => {
                if !enabled {
                    self.agent.enabled = true;
                    self.log("%SMART_LIC-6-AGENT_ENABLED: Smart Agent for Licensing is enabled".into());
                    self.advance(false);
                }
            }
            Event::Disable => {
                if enabled {
                    if matches!(self.agent.registration, Registration::Registering(_) | Registration::Failed(_)) {
                        self.agent.registration = Registration::Unidentified;
                        self.actions.push(Action::DropIdentity);
                    }
                    self.agent.enabled = false;
                    self.log("%SMART_LIC-6-AGENT_DISABLED: Smart Agent for Licensing is disabled".into());
                }
            }
            Event::SetTransport { available } => self.agent.transport_available = available,
            Event::SetUsage { tag, count } => {
                let mut usage = self.agent.usage.clone();
                if count == 0 {
                    usage.remove(&tag);
                } else {
                    usage.insert(tag, count);
                }
                self.set_usage(usage);
            }
            Event::ReplaceUsage(mut usage) => {
                usage.retain(|_, c| *c > 0);
                self.set_usage(usage);
            }
            Event::Register { token, force } if enabled && !matches!(self.agent.registration, Registration::Reserved(_)) => {
                if self.agent.registration.is_registered() {
                    if !force {
                        return;
                    }
                    // Re-registration with force: the old identity is replaced on success.
                    self.agent.communication = Communication::default();
                    self.agent.authorization = self.evaluation_status();
                }
                self.agent.registration = Registration::Registering(RegistrationAttempts {
                    token,
                    force,
                    started: self.now,
                    failures: 0,
                    history: Vec::new(),
                    next_attempt: None,
                });
                self.send_register();
            }
            Event::Deregister => match &self.agent.registration {
                Registration::Registered(_) => {
                    if self.agent.transport_available && enabled {
                        self.actions.push(Action::SendDeregister);
                    } else {
                        self.log(format!(
                            "%SMART_LIC-3-AGENT_DEREG_FAILED: Smart Agent for Licensing De-registration with the {MANAGER} failed: {TRANSPORT_NOT_AVAILABLE}; all registration information has been removed locally"
                        ));
                    }
                    self.lose_registration(false, self.now);
                }
                Registration::Registering(_) | Registration::Failed(_) => {
                    self.agent.registration = Registration::Unidentified;
                    self.actions.push(Action::DropIdentity);
                }
                Registration::Unidentified | Registration::Expired { .. } | Registration::Reserved(_) => {}
            },
            Event::RenewId if enabled && self.agent.registration.is_registered() => self.send_renew_id(),
            Event::RenewAuth if enabled && self.agent.registration.is_registered() => {
                self.agent.communication.failures = 0;
                self.send_authorize();
            }
            Event::RegisterSucceeded(facts) => self.register_succeeded(facts),
            Event::RegisterFailed(failure) => {
                if matches!(self.agent.registration, Registration::Registering(_) | Registration::Failed(_)) {
                    self.register_failed(failure);
                }
            }
            Event::AuthSucceeded(facts) => self.auth_succeeded(facts),
            Event::AuthFailed(failure) => {
                if self.agent.registration.is_registered() {
                    self.auth_failed(failure);
                }
            }
            Event::IdRenewSucceeded(facts) => self.renew_succeeded(facts),
            Event::IdRenewFailed(failure) => {
                if self.agent.registration.is_registered() {
                    self.renew_failed(failure);
                }
            }
            Event::DeregisterDone => self.log(format!(
                "%SMART_LIC-6-AGENT_DEREG_SUCCESS: Smart Agent for Licensing De-registration with the {MANAGER} succeeded"
            )),
            Event::DeregisterFailed { reason } => self.log(format!(
                "%SMART_LIC-3-AGENT_DEREG_FAILED: Smart Agent for Licensing De-registration with the {MANAGER} failed: {reason}; all registration information has been removed locally"
            )),
            Event::Register { .. } | Event::RenewId | Event::RenewAuth => {}
            Event::StateTampered { reason } => self.tampered(reason),
            Event::StateSealed => self.log(format!(
                "%SMART_LIC-5-STATE_SEALED: The licensing state of an earlier version is sealed by an integrity check from now on; evaluation used: {}",
                format_time_left(self.agent.evaluation.used_ms)
            )),
            Event::ReservationEnable(on) => self.agent.reservation.enabled = on,
            Event::ReservationRequested(request) => {
                if self.agent.reservation.enabled
                    && matches!(self.agent.registration, Registration::Unidentified | Registration::Expired { .. })
                {
                    self.agent.reservation.request = Some(request);
                }
            }
            Event::ReservationCancelled => self.agent.reservation.request = None,
            Event::ReservationInstalled(reserved) => self.reservation_installed(reserved),
            Event::ReservationReturned { return_code } => {
                if matches!(self.agent.registration, Registration::Reserved(_)) {
                    self.agent.reservation.last_return_code = Some(return_code);
                    self.agent.registration = Registration::Unidentified;
                    self.agent.authorization = self.evaluation_status();
                    self.log(format!(
                        "%SMART_LIC-6-RESERVED_RETURNED: License Reservation Authorization code removed for udi {}",
                        self.agent.udi()
                    ));
                    self.advance_evaluation();
                }
            }
            Event::ReservationAuthorizationReturned { return_code } => {
                if self.agent.reservation.request.take().is_some() {
                    self.agent.reservation.last_return_code = Some(return_code);
                }
            }
            Event::SetLegacy { name, count } => {
                let legacy = &mut self.agent.conversion.legacy;
                if count == 0 {
                    legacy.remove(&name);
                } else {
                    legacy.insert(name, count);
                }
            }
            Event::ConversionStart { via_satellite } => self.start_conversion(via_satellite),
            Event::ConversionStop => self.stop_conversion(),
            Event::ConversionSucceeded(facts) => self.conversion_answered(facts),
            Event::ConversionFailed(failure) => self.conversion_exchange_failed(failure),
        }
    }

    /// The evaluation period ends for good: a state that was edited (or lost its key) cannot be
    /// trusted to say how much was used, so none is left. Licenses held are not affected.
    fn tampered(&mut self, reason: String) {
        let now = self.now;
        let ev = &mut self.agent.evaluation;
        ev.used_ms = schedule::EVALUATION_MS;
        let at = *ev.expired_at.get_or_insert(now);
        ev.warned_down_to_ms = 0;
        ev.tampered = Some(reason.clone());
        self.log(format!(
            "%SMART_LIC-3-EVAL_TAMPERED: The licensing state failed its integrity check ({reason}): the evaluation period has expired"
        ));
        if !self.agent.registration.holds_licenses() {
            self.agent.authorization = Authorization::EvaluationExpired { at };
        }
    }

    /// Installs a verified authorization code answering the request in progress (the caller checked
    /// the match): licensed from now on, with no manager contact.
    fn reservation_installed(&mut self, reserved: Reserved) {
        let waiting = matches!(self.agent.registration, Registration::Unidentified | Registration::Expired { .. });
        if !waiting || self.agent.reservation.request.take().is_none() {
            return;
        }
        let kind = match reserved.kind {
            ReservationKind::Specific => "Specific",
            ReservationKind::Universal => "Universal",
        };
        self.agent.reservation.last_confirmation_code = Some(reserved.confirmation_code.clone());
        self.agent.registration = Registration::Reserved(Box::new(reserved));
        self.agent.authorization = Authorization::Reserved { at: self.now };
        self.agent.communication = Communication::default();
        self.log(format!(
            "%SMART_LIC-6-RESERVED_INSTALLED: {kind} License Reservation Authorization code installed for udi {}",
            self.agent.udi()
        ));
        self.mark_term_ends();
        let usage = self.agent.usage_list();
        self.log_not_authorized(&usage);
    }

    fn set_usage(&mut self, usage: BTreeMap<String, u32>) {
        if usage == self.agent.usage {
            return;
        }
        let changed: Vec<(String, u32)> =
            usage.iter().filter(|(t, c)| self.agent.usage.get(*t) != Some(*c)).map(|(t, c)| (t.clone(), *c)).collect();
        self.agent.usage = usage;
        self.log_not_authorized(&changed);
        // any usage change triggers an authorization request at once.
        if self.agent.enabled && self.agent.registration.is_registered() {
            self.agent.communication.failures = 0;
            self.send_authorize();
        }
        // Evaluation may start or stop counting from here; announce a mark already passed.
        if self.agent.enabled {
            self.advance_evaluation();
        }
    }

    fn register_succeeded(&mut self, facts: RegisterFacts) {
        if !matches!(self.agent.registration, Registration::Registering(_) | Registration::Failed(_)) {
            return;
        }
        let now = self.now;
        self.agent.registration = Registration::Registered(Box::new(Registered {
            instance_id: facts.instance_id,
            smart_account: facts.smart_account,
            virtual_account: facts.virtual_account,
            export_controlled: facts.export_controlled,
            initial_registration: now,
            certificate_serial: facts.certificate_serial,
            certificate_valid_from: now,
            expires: facts.certificate_expires,
            intervals: facts.intervals,
            last_renewal: None,
            next_renewal: now.plus_ms(facts.intervals.id_renew_ms),
            renewal_failures: 0,
            clock_out_of_range_since: None,
        }));
        self.agent.communication = Communication::default();
        let allowed = if facts.export_controlled { "allowed" } else { "not allowed" };
        self.log(format!("%SMART_LIC-6-EXPORT_CONTROLLED: Usage of export controlled features is {allowed}"));
        self.log(format!(
            "%SMART_LIC-6-AGENT_REG_SUCCESS: Smart Agent for Licensing Registration with the {MANAGER} for udi {}",
            self.agent.udi()
        ));
        // authorization is requested at once.
        self.send_authorize();
    }

    fn register_failed(&mut self, failure: Failure) {
        let now = self.now;
        let (Registration::Registering(a) | Registration::Failed(a)) = &mut self.agent.registration else { return };
        a.failures += 1;
        match a.history.last_mut() {
            Some(last) if last.outcome == Outcome::Pending => {
                *last = Attempt { at: now, outcome: Outcome::Failed { reason: failure.reason.clone() } }
            }
            _ => push_attempt(
                &mut a.history,
                Attempt { at: now, outcome: Outcome::Failed { reason: failure.reason.clone() } },
            ),
        }
        let retry = now.plus_ms(schedule::registration_retry_ms(a.failures));
        let a = a.clone();
        self.agent.registration = match failure.kind {
            // REGISTERING while the 15-minute retries run, then failed, still retried hourly (G-4).
            FailureKind::Communication if !schedule::registration_retries_exhausted(a.failures) => {
                Registration::Registering(RegistrationAttempts { next_attempt: Some(retry), ..a })
            }
            FailureKind::Communication | FailureKind::Refused | FailureKind::NotRegistered => {
                Registration::Failed(RegistrationAttempts { next_attempt: Some(retry), ..a })
            }
            FailureKind::TransportUnavailable => Registration::Failed(RegistrationAttempts { next_attempt: None, ..a }),
        };
        self.log(format!(
            "%SMART_LIC-3-AGENT_REG_FAILED: Smart Agent for Licensing Registration with the {MANAGER} failed: {}",
            failure.reason
        ));
        if failure.kind != FailureKind::Refused {
            self.comm_failed_log(&failure.reason);
        }
    }

    pub(super) fn comm_failed_log(&mut self, reason: &str) {
        self.log(format!("%SMART_LIC-3-COMM_FAILED: Communications failure with the {MANAGER}: {reason}"));
    }

    fn auth_succeeded(&mut self, facts: AuthFacts) {
        if !self.agent.registration.is_registered() {
            return;
        }
        let now = self.now;
        let restored =
            self.agent.communication.last.as_ref().is_some_and(|a| a.failed()) || self.agent.communication.failures > 0;
        let status = match facts.status {
            AuthAnswer::Authorized => Authorization::Authorized { at: now },
            AuthAnswer::OutOfCompliance => Authorization::OutOfCompliance { at: now },
            AuthAnswer::NoLicensesInUse => Authorization::NoLicensesInUse { at: now },
        };
        let changed = !status.same_kind(&self.agent.authorization);
        if changed {
            self.agent.authorization = status;
        }
        let renew = match facts.status {
            AuthAnswer::OutOfCompliance => facts.intervals.auth_renew_ms.min(schedule::OOC_RENEW_MS),
            _ => facts.intervals.auth_renew_ms,
        };
        self.agent.communication = Communication {
            last: Some(Attempt { at: now, outcome: Outcome::Succeeded }),
            next_attempt: Some(now.plus_ms(renew)),
            deadline: Some(facts.valid_until),
            failures: 0,
            intervals: Some(facts.intervals),
            entitlements: facts.entitlements,
        };
        if restored {
            self.log(format!("%SMART_LIC-5-COMM_RESTORED: Communications with the {MANAGER} restored"));
        }
        let state = match facts.status {
            AuthAnswer::Authorized => "authorized",
            AuthAnswer::OutOfCompliance => "out of compliance",
            AuthAnswer::NoLicensesInUse => "no licenses in use",
        };
        self.log(format!(
            "%SMART_LIC-6-AUTH_RENEW_SUCCESS: Authorization renewal with the {MANAGER}. State={state} for udi {}",
            self.agent.udi()
        ));
        if changed {
            match facts.status {
                AuthAnswer::Authorized => self.log(
                    "%SMART_LIC-5-IN_COMPLIANCE: All entitlements and licenses in use on this device are authorized"
                        .into(),
                ),
                AuthAnswer::OutOfCompliance => {
                    self.log("%SMART_LIC-3-OUT_OF_COMPLIANCE: One or more entitlements are out of compliance".into())
                }
                AuthAnswer::NoLicensesInUse => {}
            }
        }
    }

    fn auth_failed(&mut self, failure: Failure) {
        if failure.kind == FailureKind::NotRegistered {
            self.log(format!(
                "%SMART_LIC-3-AUTH_RENEW_FAILED: Authorization renewal with the {MANAGER}: {} for udi {}",
                failure.reason,
                self.agent.udi()
            ));
            self.lose_registration(false, self.now);
            return;
        }
        let now = self.now;
        let c = &mut self.agent.communication;
        c.failures += 1;
        c.last = Some(Attempt { at: now, outcome: Outcome::Failed { reason: failure.reason.clone() } });
        let delay = auth_retry_ms_for(&self.agent.authorization, self.agent.communication.failures);
        self.agent.communication.next_attempt = Some(now.plus_ms(delay));
        let detail = match failure.kind {
            FailureKind::Refused => format!("Error received from Smart Software Manager: {}", failure.reason),
            _ => "Communication message send error".to_string(),
        };
        if failure.kind != FailureKind::Refused {
            self.comm_failed_log(&failure.reason);
        }
        self.log(format!(
            "%SMART_LIC-3-AUTH_RENEW_FAILED: Authorization renewal with the {MANAGER}: {detail} for udi {}",
            self.agent.udi()
        ));
    }

    fn renew_succeeded(&mut self, facts: RenewFacts) {
        let now = self.now;
        let Registration::Registered(r) = &mut self.agent.registration else { return };
        r.certificate_serial = facts.certificate_serial;
        r.certificate_valid_from = now;
        r.expires = facts.certificate_expires;
        r.intervals = facts.intervals;
        r.last_renewal = Some(Attempt { at: now, outcome: Outcome::Succeeded });
        r.next_renewal = now.plus_ms(facts.intervals.id_renew_ms);
        r.renewal_failures = 0;
        if r.clock_out_of_range_since.is_some() && r.clock_in_range(now) {
            r.clock_out_of_range_since = None;
        }
        self.log(format!(
            "%SMART_LIC-6-ID_CERT_RENEW_SUCCESS: ID certificate renewal with the {MANAGER} succeeded; registration expires {}",
            format_device_time(facts.certificate_expires)
        ));
    }

    fn renew_failed(&mut self, failure: Failure) {
        if failure.kind == FailureKind::NotRegistered {
            self.log(format!(
                "%SMART_LIC-3-ID_CERT_RENEW_FAILED: ID certificate renewal with the {MANAGER} failed: {}",
                failure.reason
            ));
            self.lose_registration(false, self.now);
            return;
        }
        let now = self.now;
        let Registration::Registered(r) = &mut self.agent.registration else { return };
        r.renewal_failures += 1;
        r.last_renewal = Some(Attempt { at: now, outcome: Outcome::Failed { reason: failure.reason.clone() } });
        r.next_renewal = now.plus_ms(schedule::ID_RENEW_RETRY_MS);
        if failure.kind != FailureKind::Refused {
            self.comm_failed_log(&failure.reason);
        }
        self.log(format!(
            "%SMART_LIC-3-ID_CERT_RENEW_FAILED: ID certificate renewal with the {MANAGER} failed: {}",
            failure.reason
        ));
    }

    /// Leaves REGISTERED: deregistration, manager forgot us, clock out of range, or ID-certificate
    /// expiry (`expired`, at `at`). Identity dropped; evaluation resumes with the time left.
    fn lose_registration(&mut self, expired: bool, at: Timestamp) {
        if matches!(self.agent.conversion.status, ConversionStatus::InProgress { .. }) {
            self.conversion_failed("the device is no longer registered".into());
        }
        self.agent.registration = if expired { Registration::Expired { at } } else { Registration::Unidentified };
        self.agent.communication = Communication::default();
        self.agent.authorization = self.evaluation_status();
        self.actions.push(Action::DropIdentity);
        self.advance_evaluation();
    }

    fn evaluation_status(&self) -> Authorization {
        match self.agent.evaluation.expired_at {
            Some(at) => Authorization::EvaluationExpired { at },
            None => Authorization::Evaluation,
        }
    }

    /// Faults follow from the state; raise and clear the difference.
    fn sync_faults(&mut self) {
        let a = &*self.agent;
        let mut want = BTreeSet::new();
        if a.evaluation.tampered.is_some() {
            want.insert(Fault::StateTampered);
        }
        if matches!(a.conversion.status, ConversionStatus::Failed { .. }) {
            want.insert(Fault::ConversionFailed);
        }
        if a.enabled {
            match &a.authorization {
                Authorization::Evaluation if !a.registration.is_registered() => {
                    want.insert(Fault::EvaluationMode);
                }
                Authorization::EvaluationExpired { .. } => {
                    want.insert(Fault::EvaluationExpired);
                }
                Authorization::OutOfCompliance { .. } => {
                    want.insert(Fault::OutOfCompliance);
                }
                Authorization::AuthorizationExpired { .. } => {
                    want.insert(Fault::AuthorizationExpired);
                }
                _ => {}
            }
            match &a.registration {
                Registration::Failed(_) => {
                    want.insert(Fault::RegistrationFailed);
                }
                Registration::Registering(att) if att.failures > 0 => {
                    want.insert(Fault::RegistrationFailed);
                }
                Registration::Registered(r) if r.last_renewal.as_ref().is_some_and(|l| l.failed()) => {
                    want.insert(Fault::IdCertificateExpiredWarning);
                }
                Registration::Expired { .. } => {
                    want.insert(Fault::IdCertificateExpired);
                }
                _ => {}
            }
        }
        let cleared: Vec<Fault> = a.faults.difference(&want).copied().collect();
        let raised: Vec<Fault> = want.difference(&a.faults).copied().collect();
        self.actions.extend(cleared.into_iter().map(Action::ClearFault));
        self.actions.extend(raised.into_iter().map(Action::RaiseFault));
        self.agent.faults = want;
    }
}

fn auth_retry_ms_for(auth: &Authorization, failures: u32) -> i64 {
    let schedule = match auth {
        Authorization::Authorized { .. } | Authorization::NoLicensesInUse { .. } => AuthRetry::Authorized,
        Authorization::OutOfCompliance { .. } => AuthRetry::OutOfCompliance,
        Authorization::AuthorizationExpired { .. } => AuthRetry::Expired,
        Authorization::Evaluation | Authorization::EvaluationExpired { .. } | Authorization::Reserved { .. } => {
            AuthRetry::Initial
        }
    };
    schedule::auth_retry_ms(schedule, failures)
}

fn push_attempt(history: &mut Vec<Attempt>, attempt: Attempt) {
    if history.len() >= RegistrationAttempts::HISTORY {
        history.remove(0);
    }
    history.push(attempt);
}
