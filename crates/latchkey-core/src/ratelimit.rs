//! Keyed rate limiting by the generic cell rate algorithm: `burst` requests at once, then one
//! every `period / burst`. [`Rate`] is the rule; [`RateLimiter`] keeps the cells in memory for
//! one instance (the service keeps them in the database when instances share one). Time
//! comes from the caller.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::Millis;

/// A limit's cell parameters: one request every `interval_ms`, with `tolerance_ms` of burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval_ms: i64,
    pub tolerance_ms: i64,
}

impl Rate {
    /// `burst` requests per `period_ms`.
    pub fn new(burst: u32, period_ms: i64) -> Self {
        let burst = i64::from(burst.max(1));
        let interval_ms = (period_ms / burst).max(1);
        Self { interval_ms, tolerance_ms: interval_ms * (burst - 1) }
    }
}

impl RetryAfter {
    /// A wait in milliseconds, in whole seconds rounded up (at least 1).
    pub fn from_ms(wait_ms: i64) -> Self {
        RetryAfter(((wait_ms + 999) / 1000).max(1) as u64)
    }
}

// Not governor's keyed RateLimiter: 1.0–1.15× per allowed check, 2.3–2.5× per refused one (docs/BENCHMARKS.md).
#[derive(Debug)]
pub struct RateLimiter {
    interval_ms: i64,
    tolerance_ms: i64,
    cells: Mutex<HashMap<String, Millis>>,
}

/// How long to wait before trying again, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

const PRUNE_AT: usize = 100_000;

impl RateLimiter {
    /// Allows `burst` requests per `period_ms` for each key.
    pub fn new(burst: u32, period_ms: i64) -> Self {
        let rate = Rate::new(burst, period_ms);
        Self { interval_ms: rate.interval_ms, tolerance_ms: rate.tolerance_ms, cells: Mutex::new(HashMap::new()) }
    }

    pub fn check(&self, key: &str, now: Millis) -> Result<(), RetryAfter> {
        let mut cells = match self.cells.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if cells.len() >= PRUNE_AT {
            cells.retain(|_, tat| *tat > now);
        }
        let tat = cells.get(key).copied().unwrap_or(now).max(now);
        let allow_at = tat - self.tolerance_ms;
        if now < allow_at {
            return Err(RetryAfter::from_ms(allow_at - now));
        }
        cells.insert(key.to_owned(), tat + self.interval_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(3, 60_000);
        assert!(rl.check("a", 0).is_ok());
        assert!(rl.check("a", 0).is_ok());
        assert!(rl.check("a", 0).is_ok());
        assert_eq!(rl.check("a", 0), Err(RetryAfter(20)));
        assert!(rl.check("b", 0).is_ok(), "keys are independent");
        assert!(rl.check("a", 20_000).is_ok());
        assert!(rl.check("a", 20_000).is_err());
    }
}
