//! Windowed counters behind the budgets of `latchkey_core::throttle`: failed attempts per
//! identifier, codes and mail per address, user and IP. Kept in the database so that every
//! instance sharing it counts together and a restart forgets nothing.

use async_trait::async_trait;
pub use latchkey_core::throttle::Counter;

use crate::error::Result;

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Counts one event under `key` and returns the counter after it. A window lasts
    /// `window_ms` from its first event; the first event after it ends starts a new one.
    async fn bump_counter(&self, key: &str, window_ms: i64, now: i64) -> Result<Counter>;
    /// The counter as stored (its window may have ended: see [`Counter::live_count`]).
    async fn get_counter(&self, key: &str) -> Result<Option<Counter>>;
    async fn clear_counter(&self, key: &str) -> Result<()>;
    /// Counts one event under `key` only if the counter is still as `seen` (compare and swap):
    /// `seen` is what the caller judged the event by, so two racing callers cannot both pass a
    /// check that only one of them may. `None` (or an ended window) starts a new window.
    /// Returns whether this caller's event was counted.
    async fn reserve_counter(&self, key: &str, seen: Option<&Counter>, window_ms: i64, now: i64) -> Result<bool>;
    /// Deletes counters whose window ended before `now`; returns how many.
    async fn prune_counters(&self, now: i64) -> Result<u64>;

    /// Spends one request from the rate cell `key`, atomically for every instance sharing the
    /// database (the generic cell rate algorithm of `latchkey_core::ratelimit`: the cell holds
    /// a theoretical arrival time; a request is allowed when that time, or `now` if later, less
    /// `tolerance_ms` is not after `now`, and moves it on by `interval_ms`). Returns `None`
    /// when allowed, or how many milliseconds to wait; a refused request spends nothing.
    async fn spend_rate_cell(&self, key: &str, interval_ms: i64, tolerance_ms: i64, now: i64) -> Result<Option<i64>>;
    /// Deletes cells that are full again by `now` (forgetting them changes no answer).
    async fn prune_rate_cells(&self, now: i64) -> Result<u64>;
}
