//! Consecutive sign-in failures per account (NIST SP 800-63B: at most 100), then a cool-down.
//! The count lives in the database, so rotating IPs or instances cannot reset it.

use crate::clock::Millis;

pub const MAX_CONSECUTIVE_FAILURES: u32 = 100;
pub const COOL_DOWN_MS: Millis = 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureState {
    pub consecutive_failures: u32,
    pub locked_until: Option<Millis>,
}

impl FailureState {
    pub fn is_locked(&self, now: Millis) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    /// Seconds until the account may be tried again, when locked.
    pub fn lockout_remaining_secs(&self, now: Millis) -> Option<i64> {
        self.locked_until.filter(|u| *u > now).map(|u| (u - now + 999) / 1000)
    }

    pub fn attempts_remaining(&self) -> u32 {
        MAX_CONSECUTIVE_FAILURES.saturating_sub(self.consecutive_failures)
    }

    pub fn after_failure(self, now: Millis) -> Self {
        let consecutive_failures = self.consecutive_failures.saturating_add(1);
        let locked_until =
            if consecutive_failures >= MAX_CONSECUTIVE_FAILURES { Some(now + COOL_DOWN_MS) } else { self.locked_until };
        Self { consecutive_failures, locked_until }
    }

    pub fn after_success() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hundredth_failure_locks_for_the_cool_down() {
        let mut s = FailureState::default();
        for _ in 0..99 {
            s = s.after_failure(0);
            assert!(!s.is_locked(0));
        }
        s = s.after_failure(5);
        assert!(s.is_locked(5));
        assert_eq!(s.lockout_remaining_secs(5), Some(3600));
        assert!(!s.is_locked(5 + COOL_DOWN_MS));
        // Still at the limit: the next failure locks again at once.
        assert!(s.after_failure(5 + COOL_DOWN_MS).is_locked(6 + COOL_DOWN_MS));
        assert_eq!(FailureState::after_success().attempts_remaining(), 100);
    }
}
