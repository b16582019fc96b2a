//! Budgets against guessing and abuse, as pure rules over windowed counters that the store
//! keeps (so every instance sharing a database counts together). The policy, and why it is
//! so, is in docs/SECURITY.md ("Limits and lockout").
//!
//! Counters are keyed by what is attacked — an identifier, an address, a user, an IP — never
//! by whether an account exists, so a known and an unknown identifier are throttled alike.

use crate::clock::Millis;

pub const MINUTE_MS: Millis = 60_000;
pub const HOUR_MS: Millis = 60 * MINUTE_MS;
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// Failed first-factor attempts against one identifier that cost nothing.
pub const FREE_FAILURES: i64 = 5;
/// The longest wait growing delays impose before the next attempt.
pub const MAX_DELAY_MS: Millis = 5 * MINUTE_MS;
/// Failures against one identifier are counted over this window from the first one.
pub const FAILURE_WINDOW_MS: Millis = DAY_MS;

/// One windowed counter as stored: `count` events since `window_start`, the last at `last_at`;
/// the row means nothing once `now >= expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: i64,
    pub window_start: Millis,
    pub last_at: Millis,
    pub expires_at: Millis,
}

impl Counter {
    /// The count that still holds at `now` (0 once the window has ended).
    pub fn live_count(counter: Option<&Counter>, now: Millis) -> i64 {
        counter.filter(|c| now < c.expires_at).map_or(0, |c| c.count)
    }
}

/// How long growing delays make the next attempt wait after `failures` failures: nothing for
/// the first [`FREE_FAILURES`], then 1 s, 2 s, 4 s … doubling up to [`MAX_DELAY_MS`].
pub fn delay_after(failures: i64) -> Millis {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = u32::try_from((failures - FREE_FAILURES).min(30)).unwrap_or(30);
    (1000_i64 << doublings).min(MAX_DELAY_MS)
}

/// Seconds the caller must wait before another attempt against an identifier whose failures
/// the counter holds, or `None` when an attempt may be made now.
pub fn wait_for_attempt(failures: Option<&Counter>, now: Millis) -> Option<u64> {
    let c = failures.filter(|c| now < c.expires_at)?;
    let allowed_at = c.last_at + delay_after(c.count);
    (now < allowed_at).then(|| whole_seconds(allowed_at - now))
}

/// Seconds until a used-up budget of `limit` events is available again, or `None` while the
/// counter (after this event was counted) is within it.
pub fn over_budget(counter: &Counter, limit: u32, now: Millis) -> Option<u64> {
    (counter.count > i64::from(limit) && now < counter.expires_at).then(|| whole_seconds(counter.expires_at - now))
}

fn whole_seconds(ms: Millis) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(count: i64, last_at: Millis) -> Counter {
        Counter { count, window_start: 0, last_at, expires_at: FAILURE_WINDOW_MS }
    }

    #[test]
    fn delays_start_after_the_free_failures_and_double_up_to_the_cap() {
        assert_eq!((0..FREE_FAILURES).map(delay_after).max(), Some(0));
        assert_eq!(delay_after(FREE_FAILURES), 1000);
        assert_eq!(delay_after(FREE_FAILURES + 1), 2000);
        assert_eq!(delay_after(FREE_FAILURES + 8), 256_000);
        assert_eq!(delay_after(FREE_FAILURES + 9), MAX_DELAY_MS);
        assert_eq!(delay_after(i64::MAX), MAX_DELAY_MS);
    }

    #[test]
    fn an_attempt_waits_for_the_delay_of_the_last_failure() {
        assert_eq!(wait_for_attempt(None, 5), None);
        assert_eq!(wait_for_attempt(Some(&counter(4, 100)), 100), None);
        assert_eq!(wait_for_attempt(Some(&counter(5, 100)), 100), Some(1));
        assert_eq!(wait_for_attempt(Some(&counter(5, 100)), 1100), None);
        assert_eq!(wait_for_attempt(Some(&counter(7, 0)), 1), Some(4));
        let ended = Counter { expires_at: 10, ..counter(50, 0) };
        assert_eq!(wait_for_attempt(Some(&ended), 10), None, "a window that ended forgets its failures");
    }

    #[test]
    fn budgets_refuse_the_event_past_the_limit_until_the_window_ends() {
        let c = Counter { count: 10, window_start: 0, last_at: 0, expires_at: HOUR_MS };
        assert_eq!(over_budget(&c, 10, 0), None);
        let c = Counter { count: 11, ..c };
        assert_eq!(over_budget(&c, 10, HOUR_MS - 1500), Some(2));
        assert_eq!(over_budget(&c, 10, HOUR_MS), None);
        assert_eq!(Counter::live_count(Some(&c), HOUR_MS), 0);
        assert_eq!(Counter::live_count(Some(&c), 0), 11);
    }
}
