//! Bounds of an agent state read from disk: a state file is data anyone with access can
//! edit, so before the state machine runs on it every duration and time is checked. Within these
//! bounds no sum the agent makes (a time plus an interval) can overflow.

use super::*;

/// The earliest device time, 1993-01-01T00:00:00Z: `clock set` accepts the years 1993 to 2035.
pub const DEVICE_TIME_START: Timestamp = Timestamp(725_846_400_000);
/// The end of the latest device time (2036-01-01T00:00:00Z, excluded).
pub const DEVICE_TIME_END: Timestamp = Timestamp(2_082_758_400_000);
/// The end of times the device schedules or is told (renewals, expiries, term ends): the year
/// 9999 at most, the same limit as the dates the device prints.
const SCHEDULED_TIME_END: Timestamp = Timestamp(253_402_300_800_000);
/// The longest interval a manager may set (renewal or validity), 100 years.
pub(super) const MAX_INTERVAL_MS: i64 = 36_525 * DAY_MS;

/// `t` is a time the device clock could show.
pub(super) fn check_device_time(field: &str, t: Timestamp) -> Result<(), String> {
    if t < DEVICE_TIME_START || t >= DEVICE_TIME_END {
        return Err(format!(
            "{field} is {}: it must be a time of the years 1993 to 2035 ({} to {} Unix milliseconds)",
            t.0,
            DEVICE_TIME_START.0,
            DEVICE_TIME_END.0 - 1
        ));
    }
    Ok(())
}

/// `t` is a time the device may schedule or be told (a renewal, an expiry, a term end).
pub fn check_scheduled(field: &str, t: Timestamp) -> Result<(), String> {
    if t < DEVICE_TIME_START || t >= SCHEDULED_TIME_END {
        return Err(format!(
            "{field} is {}: it must be a time from the year 1993 to the year 9999 ({} to {} Unix milliseconds)",
            t.0,
            DEVICE_TIME_START.0,
            SCHEDULED_TIME_END.0 - 1
        ));
    }
    Ok(())
}

/// `value`, an interval in units of `unit_ms` (1 for milliseconds, 1000 for seconds), is
/// positive and 100 years at most.
pub fn check_interval(field: &str, value: i64, unit_ms: i64) -> Result<(), String> {
    let max = MAX_INTERVAL_MS / unit_ms;
    if !(1..=max).contains(&value) {
        return Err(format!("{field} is {value}: it must be between 1 and {max} (100 years)"));
    }
    Ok(())
}

fn check_intervals(field: &str, i: &Intervals) -> Result<(), String> {
    check_interval(&format!("{field}.id_renew_ms"), i.id_renew_ms, 1)?;
    check_interval(&format!("{field}.auth_renew_ms"), i.auth_renew_ms, 1)?;
    check_interval(&format!("{field}.auth_validity_ms"), i.auth_validity_ms, 1)
}

fn check_attempt(field: &str, a: &Attempt) -> Result<(), String> {
    check_device_time(&format!("{field}.at"), a.at)
}

impl Agent {
    /// Checks every duration and time of a loaded state; the error names the first field out of
    /// bounds (as it is spelled in the state file, under `agent`).
    pub fn check_bounds(&self) -> Result<(), String> {
        check_device_time("agent.clock", self.clock)?;
        self.conversion.check_bounds()?;
        let ev = &self.evaluation;
        if !(0..=schedule::EVALUATION_MS).contains(&ev.used_ms) {
            return Err(format!(
                "agent.evaluation.used_ms is {}: the evaluation used must be between 0 and {} (90 days)",
                ev.used_ms,
                schedule::EVALUATION_MS
            ));
        }
        if ev.warned_down_to_ms != i64::MAX && !(0..=schedule::EVALUATION_MS).contains(&ev.warned_down_to_ms) {
            return Err(format!(
                "agent.evaluation.warned_down_to_ms is {}: it must be between 0 and {} (90 days)",
                ev.warned_down_to_ms,
                schedule::EVALUATION_MS
            ));
        }
        if let Some(t) = ev.expired_at {
            check_device_time("agent.evaluation.expired_at", t)?;
        }
        if let Some(t) = ev.last_expired_notice {
            check_device_time("agent.evaluation.last_expired_notice", t)?;
        }
        if let Some(t) = self.authorization.since() {
            check_device_time("agent.authorization.at", t)?;
        }
        self.check_registration()?;
        let c = &self.communication;
        if let Some(last) = &c.last {
            check_attempt("agent.communication.last", last)?;
        }
        if let Some(t) = c.next_attempt {
            check_scheduled("agent.communication.next_attempt", t)?;
        }
        if let Some(t) = c.deadline {
            check_scheduled("agent.communication.deadline", t)?;
        }
        if let Some(i) = &c.intervals {
            check_intervals("agent.communication.intervals", i)?;
        }
        if let Some(r) = &self.reservation.request {
            check_device_time("agent.reservation.request.at", r.at)?;
        }
        for (n, entry) in self.event_log.iter().enumerate() {
            check_device_time(&format!("agent.event_log[{n}].at"), entry.at)?;
        }
        Ok(())
    }

    fn check_registration(&self) -> Result<(), String> {
        match &self.registration {
            Registration::Unidentified => Ok(()),
            Registration::Expired { at } => check_device_time("agent.registration.Expired.at", *at),
            Registration::Registering(a) | Registration::Failed(a) => {
                check_device_time("agent.registration.started", a.started)?;
                for (n, attempt) in a.history.iter().enumerate() {
                    check_attempt(&format!("agent.registration.history[{n}]"), attempt)?;
                }
                a.next_attempt.map_or(Ok(()), |t| check_scheduled("agent.registration.next_attempt", t))
            }
            Registration::Registered(r) => {
                check_device_time("agent.registration.initial_registration", r.initial_registration)?;
                check_device_time("agent.registration.certificate_valid_from", r.certificate_valid_from)?;
                check_scheduled("agent.registration.expires", r.expires)?;
                check_scheduled("agent.registration.next_renewal", r.next_renewal)?;
                check_intervals("agent.registration.intervals", &r.intervals)?;
                if let Some(last) = &r.last_renewal {
                    check_attempt("agent.registration.last_renewal", last)?;
                }
                r.clock_out_of_range_since
                    .map_or(Ok(()), |t| check_device_time("agent.registration.clock_out_of_range_since", t))
            }
            Registration::Reserved(r) => {
                check_device_time("agent.registration.installed_at", r.installed_at)?;
                for (n, l) in r.licenses.iter().enumerate() {
                    for (name, t) in [("start", l.start), ("end", l.end)] {
                        if let Some(t) = t {
                            check_scheduled(&format!("agent.registration.licenses[{n}].{name}"), t)?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Agent {
        Agent::new("PID", "SN", Timestamp(1_796_083_200_000))
    }

    #[test]
    fn the_bounds_are_the_years_clock_set_accepts() {
        assert_eq!(DEVICE_TIME_START.to_rfc3339(), "1993-01-01T00:00:00Z");
        assert_eq!(DEVICE_TIME_END.to_rfc3339(), "2036-01-01T00:00:00Z");
        assert_eq!(SCHEDULED_TIME_END.to_rfc3339(), "+10000-01-01T00:00:00Z");
    }

    #[test]
    fn a_state_out_of_bounds_names_its_field() {
        assert_eq!(fresh().check_bounds(), Ok(()));
        type Edit = fn(&mut Agent);
        let cases: [(&str, Edit); 5] = [
            ("agent.evaluation.used_ms is -1", |a| a.evaluation.used_ms = -1),
            ("agent.evaluation.used_ms is 7776000001", |a| a.evaluation.used_ms = schedule::EVALUATION_MS + 1),
            ("agent.clock is 9223372036854775807", |a| a.clock = Timestamp(i64::MAX)),
            ("agent.clock is 0", |a| a.clock = Timestamp(0)),
            ("agent.event_log[0].at is -5", |a| {
                a.event_log.push_back(LogEntry { at: Timestamp(-5), message: String::new() })
            }),
        ];
        for (want, edit) in cases {
            let mut agent = fresh();
            edit(&mut agent);
            let err = agent.check_bounds().unwrap_err();
            assert!(err.starts_with(want), "{err}");
        }
    }
}
