//! What a license record is worth at a given time (C-4, C-5).

use crate::time::Timestamp;
use crate::validate::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseKind {
    Perpetual,
    Term,
    Subscription,
}

impl LicenseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseKind::Perpetual => "perpetual",
            LicenseKind::Term => "term",
            LicenseKind::Subscription => "subscription",
        }
    }

    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text.trim().to_ascii_lowercase().as_str() {
            "perpetual" => Ok(LicenseKind::Perpetual),
            "term" => Ok(LicenseKind::Term),
            "subscription" => Ok(LicenseKind::Subscription),
            other => Err(Invalid::new("type", format!("'{other}' is not one of perpetual, term, subscription"))),
        }
    }
}

/// The validity of one purchase record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseTerm {
    pub kind: LicenseKind,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

impl LicenseTerm {
    /// Checks that dates fit the kind: term and subscription licenses need an end after their start.
    pub fn new(kind: LicenseKind, start: Option<Timestamp>, end: Option<Timestamp>) -> Result<Self, Invalid> {
        match kind {
            LicenseKind::Perpetual if end.is_some() => {
                return Err(Invalid::new("end", "a perpetual license has no end date"));
            }
            LicenseKind::Term | LicenseKind::Subscription if end.is_none() => {
                return Err(Invalid::new("end", format!("a {} license needs an end date", kind.as_str())));
            }
            _ => {}
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e <= s {
                return Err(Invalid::new("end", "must be after the start date"));
            }
        }
        Ok(LicenseTerm { kind, start, end })
    }

    /// Whether the licenses count at `now`: started and not yet ended (C-5).
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.start.is_none_or(|s| s <= now) && self.end.is_none_or(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_licenses_expire() {
        let start = Timestamp::parse("2026-01-01").unwrap();
        let end = Timestamp::parse("2027-01-01").unwrap();
        let term = LicenseTerm::new(LicenseKind::Term, Some(start), Some(end)).unwrap();
        assert!(!term.active_at(start.plus_ms(-1)));
        assert!(term.active_at(start));
        assert!(term.active_at(end.plus_ms(-1)));
        assert!(!term.active_at(end));
        let perpetual = LicenseTerm::new(LicenseKind::Perpetual, None, None).unwrap();
        assert!(perpetual.active_at(end.plus_days(10_000)));
    }

    #[test]
    fn dates_must_fit_the_kind() {
        let d = Timestamp::parse("2026-01-01");
        assert!(LicenseTerm::new(LicenseKind::Term, None, None).is_err());
        assert!(LicenseTerm::new(LicenseKind::Perpetual, None, d).is_err());
        assert!(LicenseTerm::new(LicenseKind::Subscription, d, d).is_err());
        assert!(LicenseKind::parse("forever").is_err());
    }
}
