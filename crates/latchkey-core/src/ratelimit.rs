//! Keyed rate limiting by the generic cell rate algorithm (governor's): `burst` requests at
//! once, then one every `period / burst`. In memory and per instance; time comes from the
//! injected [`Clock`], so tests move it by hand.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::Quota;

use crate::clock::Clock;

/// latchkey's clock as governor's: the time since the Unix epoch (never before it).
#[derive(Clone)]
struct EpochClock(Arc<dyn Clock>);

impl governor::clock::Clock for EpochClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or(0))
    }
}

pub struct RateLimiter {
    cells: governor::RateLimiter<String, HashMapStateStore<String>, EpochClock, NoOpMiddleware<Duration>>,
    clock: EpochClock,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("keys", &self.cells.len()).finish()
    }
}

/// How long to wait before trying again, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// Past this many keys, those whose budget is back to full are dropped.
const PRUNE_AT: usize = 100_000;

impl RateLimiter {
    /// Allows `burst` requests per `period_ms` for each key, time read from `clock`.
    pub fn new(burst: u32, period_ms: i64, clock: Arc<dyn Clock>) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        // One cell every whole number of milliseconds, rounded down, as the limits are written.
        let interval_ms = u64::try_from(period_ms / i64::from(burst.get())).unwrap_or(0).max(1);
        let quota = Quota::with_period(Duration::from_millis(interval_ms))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let clock = EpochClock(clock);
        Self { cells: governor::RateLimiter::hashmap_with_clock(quota, clock.clone()), clock }
    }

    pub fn check(&self, key: &str) -> Result<(), RetryAfter> {
        if self.cells.len() >= PRUNE_AT {
            self.cells.retain_recent();
        }
        self.cells.check_key(&key.to_owned()).map(|_| ()).map_err(|refused| {
            let wait_ms = refused.wait_time_from(governor::clock::Clock::now(&self.clock)).as_millis();
            RetryAfter(u64::try_from(wait_ms.div_ceil(1000)).unwrap_or(u64::MAX).max(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn burst_then_refill() {
        let clock = ManualClock::new(0);
        let rl = RateLimiter::new(3, 60_000, Arc::new(clock.clone()));
        assert!(rl.check("a").is_ok());
        assert!(rl.check("a").is_ok());
        assert!(rl.check("a").is_ok());
        assert_eq!(rl.check("a"), Err(RetryAfter(20)));
        assert!(rl.check("b").is_ok(), "keys are independent");
        clock.set_ms(20_000);
        assert!(rl.check("a").is_ok());
        assert!(rl.check("a").is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let clock = ManualClock::new(1_700_000_000_000);
        let rl = RateLimiter::new(1, 60_000, Arc::new(clock.clone()));
        assert!(rl.check("a").is_ok());
        clock.advance_ms(58_500);
        assert_eq!(rl.check("a"), Err(RetryAfter(2)), "1.5 s left");
        clock.advance_ms(1_499);
        assert_eq!(rl.check("a"), Err(RetryAfter(1)), "1 ms left");
        clock.advance_ms(1);
        assert!(rl.check("a").is_ok());
    }
}
