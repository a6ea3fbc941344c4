//! When a registration token may still register a device (C-7).

use crate::time::Timestamp;

/// The facts about a token that decide whether it is usable.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts {
    pub expires_at: Timestamp,
    pub max_uses: Option<i64>,
    pub uses: i64,
    pub revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
    UsedUp,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "ACTIVE",
            TokenStatus::Expired => "EXPIRED",
            TokenStatus::Revoked => "REVOKED",
            TokenStatus::UsedUp => "USED UP",
        }
    }
}

impl TokenFacts {
    pub fn status_at(&self, now: Timestamp) -> TokenStatus {
        if self.revoked {
            TokenStatus::Revoked
        } else if now >= self.expires_at {
            TokenStatus::Expired
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            TokenStatus::UsedUp
        } else {
            TokenStatus::Active
        }
    }
}

/// Longest token lifetime accepted, as in the original manager (365 days).
pub const MAX_EXPIRES_DAYS: i64 = 365;
/// Default lifetime when none is given.
pub const DEFAULT_EXPIRES_DAYS: i64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let now = Timestamp(1_000);
        let t = TokenFacts { expires_at: Timestamp(2_000), max_uses: Some(1), uses: 0, revoked: false };
        assert_eq!(t.status_at(now), TokenStatus::Active);
        assert_eq!(t.status_at(Timestamp(2_000)), TokenStatus::Expired);
        assert_eq!(TokenFacts { uses: 1, ..t }.status_at(now), TokenStatus::UsedUp);
        assert_eq!(TokenFacts { revoked: true, ..t }.status_at(now), TokenStatus::Revoked);
        assert_eq!(TokenFacts { max_uses: None, uses: 99, ..t }.status_at(now), TokenStatus::Active);
    }
}
