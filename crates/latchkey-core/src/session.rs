//! Session lifetimes and statuses, with Clerk's status names.

use crate::clock::Millis;

pub const DAY_MS: Millis = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    Ended,
    Revoked,
    Removed,
    Expired,
    Abandoned,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Ended => "ended",
            SessionStatus::Revoked => "revoked",
            SessionStatus::Removed => "removed",
            SessionStatus::Expired => "expired",
            SessionStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => SessionStatus::Active,
            "ended" => SessionStatus::Ended,
            "revoked" => SessionStatus::Revoked,
            "removed" => SessionStatus::Removed,
            "expired" => SessionStatus::Expired,
            "abandoned" => SessionStatus::Abandoned,
            _ => return None,
        })
    }
}

/// How long sessions live (ASVS 7.3: absolute and idle limits).
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Absolute lifetime from sign-in.
    pub max_lifetime_ms: Millis,
    /// Ends a session not used for this long; `None` disables the idle limit.
    pub inactivity_timeout_ms: Option<Millis>,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self { max_lifetime_ms: 7 * DAY_MS, inactivity_timeout_ms: None }
    }
}

impl SessionPolicy {
    pub fn expire_at(&self, created_at: Millis) -> Millis {
        created_at + self.max_lifetime_ms
    }

    /// Clerk's `abandon_at`: after this the session cannot be revived at all.
    pub fn abandon_at(&self, created_at: Millis) -> Millis {
        created_at + self.max_lifetime_ms.max(30 * DAY_MS)
    }

    /// The status a stored session has at `now`, taking its deadlines into account.
    pub fn effective_status(
        &self,
        stored: SessionStatus,
        expire_at: Millis,
        last_active_at: Millis,
        now: Millis,
    ) -> SessionStatus {
        if stored != SessionStatus::Active {
            return stored;
        }
        let idle_expired = self.inactivity_timeout_ms.is_some_and(|idle| now >= last_active_at + idle);
        if now >= expire_at || idle_expired {
            SessionStatus::Expired
        } else {
            SessionStatus::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_idle_limits() {
        let p = SessionPolicy { max_lifetime_ms: 1000, inactivity_timeout_ms: Some(100) };
        assert_eq!(p.effective_status(SessionStatus::Active, 1000, 0, 50), SessionStatus::Active);
        assert_eq!(p.effective_status(SessionStatus::Active, 1000, 0, 100), SessionStatus::Expired);
        assert_eq!(p.effective_status(SessionStatus::Active, 1000, 950, 1000), SessionStatus::Expired);
        assert_eq!(p.effective_status(SessionStatus::Revoked, 1000, 0, 5), SessionStatus::Revoked);
        for s in ["active", "ended", "revoked", "removed", "expired", "abandoned"] {
            assert_eq!(SessionStatus::parse(s).map(|x| x.as_str()), Some(s));
        }
    }
}
