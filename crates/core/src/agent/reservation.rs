//! Offline license reservation on the device: the request in progress, the installed
//! authorization and what it covers. Codes are made and checked by the caller (signatures need
//! keys); the state machine only records their facts and stops all manager contact while a
//! reservation is installed.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationKind {
    Specific,
    Universal,
}

impl ReservationKind {
    pub fn display(self) -> &'static str {
        match self {
            ReservationKind::Specific => "SPECIFIC",
            ReservationKind::Universal => "UNIVERSAL",
        }
    }
}

/// A request code printed and not yet answered (survives restarts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRequest {
    pub kind: ReservationKind,
    pub code: String,
    pub at: Timestamp,
}

/// One reserved license of a specific reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedLicense {
    pub tag: String,
    pub count: u32,
    pub license_type: String,
    pub start: Option<Timestamp>,
    /// Term end, on the device clock; None for perpetual licenses.
    pub end: Option<Timestamp>,
    /// The term end was already announced.
    #[serde(default)]
    pub expiry_announced: bool,
}

/// An installed authorization code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub kind: ReservationKind,
    pub installed_at: Timestamp,
    pub request_code: String,
    /// Kept whole: the return code is made from it, and `show license all` prints it.
    pub authorization_code: String,
    pub confirmation_code: String,
    pub licenses: Vec<ReservedLicense>,
}

/// Whether a reservation lets a tag be used, and if not, why (the `NOT_AUTHORIZED` reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    Covered,
    /// Seed text: "License not present in SLR auth code".
    NotPresent,
    CountExceeded,
    Expired,
}

impl Coverage {
    pub fn reason(self) -> &'static str {
        match self {
            Coverage::Covered => "",
            Coverage::NotPresent => "License not present in SLR auth code",
            Coverage::CountExceeded => "Count in use exceeds the count in the SLR auth code",
            Coverage::Expired => "The license term in the SLR auth code has ended",
        }
    }
}

impl Reserved {
    /// Reserved count of `tag` still valid at `now`, and whether any of it has expired.
    fn valid_count(&self, tag: &str, now: Timestamp) -> (u32, bool) {
        let mut valid = 0;
        let mut expired = false;
        for l in self.licenses.iter().filter(|l| l.tag == tag) {
            if l.end.is_some_and(|end| end <= now) || l.start.is_some_and(|start| start > now) {
                expired = true;
            } else {
                valid += l.count;
            }
        }
        (valid, expired)
    }

    /// Whether using `count` of `tag` at `now` is authorized by this reservation.
    pub fn coverage(&self, tag: &str, count: u32, now: Timestamp) -> Coverage {
        if self.kind == ReservationKind::Universal {
            return Coverage::Covered;
        }
        match self.valid_count(tag, now) {
            (valid, _) if valid >= count => Coverage::Covered,
            (0, false) => Coverage::NotPresent,
            (0, true) => Coverage::Expired,
            _ => Coverage::CountExceeded,
        }
    }

    /// The next term end still to be announced.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.licenses.iter().filter(|l| !l.expiry_announced).filter_map(|l| l.end).min()
    }
}

/// Reservation bookkeeping of the device (`license smart reservation`, `show license all`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationInfo {
    /// `license smart reservation` configured.
    pub enabled: bool,
    pub request: Option<ReservationRequest>,
    pub last_return_code: Option<String>,
    pub last_confirmation_code: Option<String>,
}
