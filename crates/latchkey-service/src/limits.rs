//! Per-minute request limits (docs/SECURITY.md, "Limits and lockout"): per action and IP
//! address (and IPv6 site), per identifier, and sync pushes per user. Where the cells live
//! decides what "per minute" means for a fleet: on PostgreSQL, which several instances share,
//! they live in the database, so that three instances give an attacker one budget, not three;
//! on SQLite (one instance by design) they stay in memory, which is cheaper.

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::code::code_digest;
use latchkey_core::ratelimit::{Rate, RateLimiter, RetryAfter};
use latchkey_store::ThrottleStore;

use crate::error::{Result, ServiceError};
use crate::{ip_keys, Action, RateLimitConfig, RequestContext, SITE_BUDGET_FACTOR};

/// Where the cells of the request limits live.
#[derive(Clone)]
pub enum LimitCells {
    /// `[rate_limits] enabled = false`: nothing is limited.
    Off,
    /// In this process's memory.
    Process,
    /// In the database, shared by every instance; keys are stored as digests keyed by `key`
    /// (no address or identifier in clear).
    Shared { store: Arc<dyn ThrottleStore>, key: Vec<u8> },
}

impl LimitCells {
    /// In the database when it is PostgreSQL (shared by a fleet), in memory on SQLite.
    pub fn for_database(store: Arc<dyn latchkey_store::Store>, enabled: bool, digest_key: Vec<u8>) -> Self {
        match (enabled, store.backend()) {
            (false, _) => LimitCells::Off,
            (true, "postgres") => LimitCells::Shared { store, key: digest_key },
            _ => LimitCells::Process,
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, LimitCells::Shared { .. })
    }
}

/// One limit: `burst` requests per period for each key, in the cells [`LimitCells`] chose.
pub(crate) struct RateLimit {
    /// Names the limit's keys in the shared table.
    name: &'static str,
    rate: Rate,
    cells: Cells,
}

enum Cells {
    Off,
    Process(RateLimiter),
    Shared(Arc<dyn ThrottleStore>, Vec<u8>),
}

impl RateLimit {
    pub(crate) fn new(name: &'static str, burst: u32, period_ms: i64, place: &LimitCells) -> Self {
        let cells = match place {
            LimitCells::Off => Cells::Off,
            LimitCells::Process => Cells::Process(RateLimiter::new(burst, period_ms)),
            LimitCells::Shared { store, key } => Cells::Shared(store.clone(), key.clone()),
        };
        Self { name, rate: Rate::new(burst, period_ms), cells }
    }

    /// Spends one request of `key`'s budget; 429 with the wait when it is spent.
    pub(crate) async fn check(&self, key: &str, now: Millis) -> Result<()> {
        let refused = match &self.cells {
            Cells::Off => None,
            Cells::Process(limiter) => limiter.check(key, now).err(),
            Cells::Shared(store, digest_key) => {
                let digest = code_digest(digest_key, self.name, key);
                let cell = format!("{}:{}", self.name, digest.get(..32).unwrap_or(&digest));
                store
                    .spend_rate_cell(&cell, self.rate.interval_ms, self.rate.tolerance_ms, now)
                    .await?
                    .map(RetryAfter::from_ms)
            }
        };
        match refused {
            Some(wait) => Err(ServiceError::rate_limited(wait.0)),
            None => Ok(()),
        }
    }
}

/// The per-minute limits of sign-in, sign-up, verification and password changes, shared by
/// the services that apply them.
pub(crate) struct Limits {
    by_ip: [RateLimit; 4],
    /// The same limits for IPv6 /48s, at [`SITE_BUDGET_FACTOR`] times the budget.
    by_site: [RateLimit; 4],
    by_identifier: RateLimit,
    /// Checks of one account's factors by its own session (second factor, step-up, password
    /// change): a budget apart, so strangers naming the account cannot spend it.
    by_account: RateLimit,
}

impl Limits {
    pub(crate) fn new(config: &RateLimitConfig, place: &LimitCells) -> Self {
        let per_ip = config.per_ip_per_minute;
        let per_site = per_ip.saturating_mul(SITE_BUDGET_FACTOR);
        let ip = |name| RateLimit::new(name, per_ip, 60_000, place);
        let site = |name| RateLimit::new(name, per_site, 60_000, place);
        Self {
            by_ip: [ip("ip_sign_in"), ip("ip_sign_up"), ip("ip_verify"), ip("ip_password")],
            by_site: [site("site_sign_in"), site("site_sign_up"), site("site_verify"), site("site_password")],
            by_identifier: RateLimit::new("identifier", config.per_identifier_per_minute, 60_000, place),
            by_account: RateLimit::new("account", config.per_identifier_per_minute, 60_000, place),
        }
    }

    /// Applies the per-IP limit of `action`.
    pub(crate) async fn ip(&self, action: Action, ctx: &RequestContext, now: Millis) -> Result<()> {
        let idx = match action {
            Action::SignIn => 0,
            Action::SignUp => 1,
            Action::Verify => 2,
            Action::PasswordChange => 3,
        };
        // The widest prefix first: a /48 that is spent refuses before a /64 cell is written,
        // so rotating through /64s adds no rows.
        for (key, factor) in ip_keys(&ctx.ip).into_iter().rev() {
            let limit = if factor == 1 { &self.by_ip[idx] } else { &self.by_site[idx] };
            limit.check(&key, now).await?;
        }
        Ok(())
    }

    /// Applies the per-identifier limit (keyed even when no account has that identifier). An
    /// address is keyed in its normal form, so spellings of one mailbox (case, Unicode forms,
    /// ignorable characters) share one budget.
    pub(crate) async fn identifier(&self, identifier: &str, now: Millis) -> Result<()> {
        let key = latchkey_core::email::normalize_email(identifier).unwrap_or_else(|| identifier.to_lowercase());
        self.by_identifier.check(&key, now).await
    }

    /// Applies the per-account limit of checks made by the account's own session.
    pub(crate) async fn account(&self, user_id: &str, now: Millis) -> Result<()> {
        self.by_account.check(user_id, now).await
    }
}
