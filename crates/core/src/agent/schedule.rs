//! The timers of the smart agent, as pure functions of a count or a time left. Each one names the
//! requirement and seed sentence it implements, so a test can check them one by one.

use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Evaluation: 90 days of *use* (A-3).
pub const EVALUATION_MS: i64 = 90 * DAY_MS;
/// A clock moved outside the ID certificate's validity gets this long to come back (public facts §3.1).
pub const CLOCK_GRACE_MS: i64 = HOUR_MS;
/// Out of compliance: the agent re-requests authorization every day (seed 004).
pub const OOC_RENEW_MS: i64 = DAY_MS;
/// ID-certificate renewal failures are retried hourly until success or expiry (A-8, seed 001).
pub const ID_RENEW_RETRY_MS: i64 = HOUR_MS;
/// EVALUATION EXPIRED is announced at expiry and every hour after (public facts §3.1).
pub const EVAL_EXPIRED_NOTICE_MS: i64 = HOUR_MS;

/// Default intervals (seed 001, public facts §3.3) when an answer carries none.
pub const DEFAULT_ID_RENEW_MS: i64 = 180 * DAY_MS;
pub const DEFAULT_AUTH_RENEW_MS: i64 = 30 * DAY_MS;
pub const DEFAULT_AUTH_VALIDITY_MS: i64 = 90 * DAY_MS;

/// Registration retries 15 minutes apart after the first failure: 16 fill the 4 hours of A-5.
pub const REGISTRATION_QUICK_RETRIES: u32 = 16;

/// Delay before the next registration attempt after `failures` consecutive failures (A-5, seed 001:
/// "every 15 minutes for 4 hours, then every hour until successful"): the first 16 retries are 15
/// minutes apart (the 16th lands 4 hours after the first failure), then hourly.
pub fn registration_retry_ms(failures: u32) -> i64 {
    if !registration_retries_exhausted(failures) {
        15 * MINUTE_MS
    } else {
        HOUR_MS
    }
}

/// The 15-minute retries have run out (G-4, seed 000: a wrong address "could take a few minutes to
/// exhaust the retry"): from the failure of the 16th retry, 4 hours after the first failure, the
/// registration reads as failed, and is still tried hourly.
pub fn registration_retries_exhausted(failures: u32) -> bool {
    failures > REGISTRATION_QUICK_RETRIES
}

/// Which retry schedule an authorization failure follows: it depends on the authorization
/// status the agent is in when the request fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthRetry {
    /// AUTHORIZED (and NO LICENSES IN USE): "retry every 23 hours".
    Authorized,
    /// OUT OF COMPLIANCE: "every 15 minutes for two hours, then once every 4 hours".
    OutOfCompliance,
    /// AUTHORIZATION EXPIRED: "retry once every hour".
    Expired,
    /// Registered but never authorized yet (still in evaluation): the seeds give no schedule; the
    /// first authorization completes the registration, so it follows the registration schedule.
    Initial,
}

/// Delay before the next authorization attempt after `failures` consecutive failures.
pub fn auth_retry_ms(schedule: AuthRetry, failures: u32) -> i64 {
    match schedule {
        AuthRetry::Authorized => 23 * HOUR_MS,
        AuthRetry::OutOfCompliance if failures <= 8 => 15 * MINUTE_MS,
        AuthRetry::OutOfCompliance => 4 * HOUR_MS,
        AuthRetry::Expired => HOUR_MS,
        AuthRetry::Initial => registration_retry_ms(failures),
    }
}

/// Evaluation warnings, as evaluation time left (A-3, public facts §3.1): 60, 30, 21, 14 and 7 days,
/// every day in the last week, every hour on the last day. Descending.
pub fn evaluation_warnings() -> impl Iterator<Item = i64> {
    [60, 30, 21, 14, 7, 6, 5, 4, 3, 2, 1].into_iter().map(|d| d * DAY_MS).chain((1..=23).rev().map(|h| h * HOUR_MS))
}

/// The largest warning threshold strictly below `left` (0 = the expiry itself), if `left > 0`.
pub fn next_evaluation_mark(left: i64) -> Option<i64> {
    if left <= 0 {
        return None;
    }
    Some(evaluation_warnings().find(|&t| t < left).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_retries_fill_four_hours_then_hourly() {
        let mut t = 0;
        let mut times = vec![];
        for failures in 1..=19 {
            t += registration_retry_ms(failures);
            times.push(t / MINUTE_MS);
        }
        assert_eq!(&times[..16], &(1..=16).map(|n| n * 15).collect::<Vec<_>>()[..]);
        assert_eq!(&times[16..], &[300, 360, 420]);
    }

    #[test]
    fn ooc_retries_fill_two_hours_then_every_four() {
        let mut t = 0;
        let times: Vec<i64> = (1..=10)
            .map(|f| {
                t += auth_retry_ms(AuthRetry::OutOfCompliance, f);
                t / MINUTE_MS
            })
            .collect();
        assert_eq!(times, vec![15, 30, 45, 60, 75, 90, 105, 120, 360, 600]);
    }

    #[test]
    fn warnings_descend_and_cover_the_last_day_hourly() {
        let w: Vec<i64> = evaluation_warnings().collect();
        assert_eq!(w.len(), 11 + 23);
        assert!(w.windows(2).all(|p| p[0] > p[1]));
        assert_eq!(next_evaluation_mark(EVALUATION_MS), Some(60 * DAY_MS));
        assert_eq!(next_evaluation_mark(60 * DAY_MS), Some(30 * DAY_MS));
        assert_eq!(next_evaluation_mark(HOUR_MS), Some(0));
        assert_eq!(next_evaluation_mark(0), None);
    }
}
