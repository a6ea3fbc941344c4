//! Time as the domain sees it: UTC instants in milliseconds and one [`Clock`] trait, so that
//! every timer can be tested by moving a clock rather than by sleeping.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// A UTC instant, milliseconds since the Unix epoch (the unit devices send on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Saturates rather than overflowing: a time read from a file or a request cannot make a
    /// later sum wrap around (or panic) however far out it is.
    pub fn plus_days(self, days: i64) -> Timestamp {
        self.plus_ms(days.saturating_mul(DAY_MS))
    }

    /// Saturating, as [`plus_days`](Self::plus_days).
    pub fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0).single().unwrap_or_default()
    }

    /// RFC 3339 with a `Z`, the form used in every API answer.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Accepts `YYYY-MM-DD` (midnight UTC) or a full RFC 3339 instant.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            let dt = date.and_hms_opt(0, 0, 0)?.and_utc();
            return Some(Timestamp(dt.timestamp_millis()));
        }
        DateTime::parse_from_rfc3339(text).ok().map(|dt| Timestamp(dt.timestamp_millis()))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The one source of "now" for the manager and its jobs.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time; the only place that reads the system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }
}

/// Wall-clock time shifted by an offset that an operator (or a test) can set, so that months
/// of licensing behaviour can be shown in seconds. Time keeps flowing after a jump.
#[derive(Debug, Default)]
pub struct SimulatedClock {
    offset_ms: AtomicI64,
}

impl SimulatedClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `now()` return `to` at this instant.
    pub fn set(&self, to: Timestamp) {
        let offset = to.0 - SystemClock.now().0;
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    /// Makes `now()` wall time plus `ms` (an offset another replica stored).
    pub fn set_offset_ms(&self, ms: i64) {
        self.offset_ms.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> Timestamp {
        Timestamp(SystemClock.now().0 + self.offset_ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_instants() {
        assert_eq!(Timestamp::parse("1970-01-02"), Some(Timestamp(DAY_MS)));
        assert_eq!(Timestamp::parse("1970-01-01T00:00:01Z"), Some(Timestamp(1000)));
        assert_eq!(Timestamp::parse("2026-13-01"), None);
        assert_eq!(Timestamp(DAY_MS).to_rfc3339(), "1970-01-02T00:00:00Z");
    }

    #[test]
    fn simulated_clock_jumps() {
        let clock = SimulatedClock::new();
        let target = Timestamp::parse("2030-01-01").unwrap();
        clock.set(target);
        let now = clock.now();
        assert!(now >= target && now.0 - target.0 < 5_000);
        clock.advance(DAY_MS);
        assert!(clock.now().0 - target.0 >= DAY_MS);
    }
}
