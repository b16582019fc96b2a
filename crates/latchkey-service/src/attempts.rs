//! Budgets against guessing and abuse over the store's windowed counters (the rules are
//! `latchkey_core::throttle`; the policy is docs/SECURITY.md "Limits and lockout"):
//!
//! - growing delays per identifier and IP address after failed first factors (password or
//!   code), the same for identifiers with and without an account, none on the owner's own
//!   device; and per account for the current password of a password change;
//! - a budget of failed code attempts per address and purpose across re-issued codes, and of
//!   codes issued per address per hour;
//! - mail that a request makes latchkey send, per user and per IP.
//!
//! Counter keys are keyed digests of what they count, so the table holds no address in clear.

use std::sync::Arc;

use latchkey_core::code::code_digest;
use latchkey_core::second_factor::MAX_SECOND_FACTOR_ATTEMPTS;
use latchkey_core::throttle::{over_budget, wait_for_attempt, Counter, DAY_MS, FAILURE_WINDOW_MS, HOUR_MS, MINUTE_MS};
use latchkey_core::Clock;
use latchkey_store::ThrottleStore;

use crate::authority::Client;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::{RateLimitConfig, RequestContext, Services};

/// The budgets: windowed counters in the store's throttle area, keyed by digests. A value of
/// its own, over `ThrottleStore` alone, so any feature's service can hold one.
#[derive(Clone)]
pub(crate) struct Budgets {
    store: Arc<dyn ThrottleStore>,
    code_key: Vec<u8>,
    config: RateLimitConfig,
    clock: Arc<dyn Clock>,
}

/// A first-factor attempt that [`Services::begin_attempt`] let through (and counted).
#[derive(Debug)]
pub(crate) struct Attempt {
    /// The delay counter it was counted under (`None`: not counted).
    key: Option<String>,
    /// Made from a client that has held a session of the account: the owner's device, which
    /// budgets a stranger can spend do not hold back.
    pub(crate) recognized: bool,
}

/// What a one-time code proves, each with its own failure budget (so that exhausting one
/// flow's budget does not block another's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    SignIn,
    SignUp,
    /// Verifying an address added to an account.
    AddressVerification,
    /// A second factor's code (at sign-in or reverification), counted per account.
    SecondFactor,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            CodePurpose::SignIn => "sign_in",
            CodePurpose::SignUp => "sign_up",
            CodePurpose::AddressVerification => "verify",
            CodePurpose::SecondFactor => "second_factor",
        }
    }
}

impl Budgets {
    pub(crate) fn new(
        store: Arc<dyn ThrottleStore>,
        code_key: Vec<u8>,
        config: RateLimitConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, code_key, config, clock }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn counter_key(&self, kind: &str, subject: &str) -> String {
        let digest = code_digest(&self.code_key, kind, &subject.to_lowercase());
        format!("{kind}:{}", digest.get(..32).unwrap_or(&digest))
    }

    fn budgets_on(&self) -> bool {
        self.config.enabled
    }

    /// The counting half of [`Services::begin_attempt`].
    pub(crate) async fn first_factor_attempt(
        &self,
        ctx: &RequestContext,
        identifier: &str,
        recognized: bool,
    ) -> Result<Attempt> {
        if recognized || !self.budgets_on() {
            return Ok(Attempt { key: None, recognized });
        }
        let ip = crate::ip_keys(&ctx.ip).into_iter().next().map(|(k, _)| k).unwrap_or_default();
        let key = self.counter_key("fail", &format!("{identifier}\0{ip}"));
        self.reserve_after_delay(&key).await?;
        Ok(Attempt { key: Some(key), recognized })
    }

    /// Counts one attempt under `key` once the growing delay of its earlier failures is over
    /// (429 until then), with a compare and swap so that racing attempts count one by one.
    async fn reserve_after_delay(&self, key: &str) -> Result<()> {
        // Each lost swap means another attempt was counted; a few rounds settle it.
        for _ in 0..16 {
            let seen = self.store.get_counter(key).await?;
            if let Some(secs) = wait_for_attempt(seen.as_ref(), self.now()) {
                return Err(ServiceError::rate_limited(secs));
            }
            if self.store.reserve_counter(key, seen.as_ref(), FAILURE_WINDOW_MS, self.now()).await? {
                return Ok(());
            }
        }
        // Others' attempts keep moving the counter: one of them is being judged now.
        Err(ServiceError::rate_limited(1))
    }

    /// A password change checks the current password: guesses by whoever holds a session
    /// get the same growing delays as sign-in attempts, counted per account.
    pub(crate) async fn begin_password_check(&self, user_id: &str) -> Result<Attempt> {
        if !self.budgets_on() {
            return Ok(Attempt { key: None, recognized: false });
        }
        let key = self.counter_key("fail_pwchange", user_id);
        self.reserve_after_delay(&key).await?;
        Ok(Attempt { key: Some(key), recognized: false })
    }

    /// Forgets an attempt's failures once its factor proved right.
    pub(crate) async fn attempt_passed(&self, attempt: &Attempt) -> Result<()> {
        if let Some(key) = &attempt.key {
            self.store.clear_counter(key).await?;
        }
        Ok(())
    }

    /// The counter a failed code attempt of `purpose` against `subject` bumps, with its window.
    pub(crate) fn code_failure_counter(&self, purpose: CodePurpose, subject: &str) -> (String, i64) {
        (self.code_failures_key(purpose, subject), DAY_MS)
    }

    /// Forgets the failures of an attempt's identifier (from its address) and the code
    /// failures of its address after a successful sign-in.
    pub(crate) async fn attempt_succeeded(&self, attempt: &Attempt, identifier: &str) -> Result<()> {
        self.attempt_passed(attempt).await?;
        self.store.clear_counter(&self.code_failures_key(CodePurpose::SignIn, identifier)).await?;
        Ok(())
    }

    fn code_failures_key(&self, purpose: CodePurpose, address: &str) -> String {
        self.counter_key(&format!("codefail_{}", purpose.as_str()), address)
    }

    /// Counts a code about to be mailed to `address`; refused past the hourly budget.
    pub(crate) async fn code_issued(&self, address: &str) -> Result<()> {
        if !self.budgets_on() {
            return Ok(());
        }
        let limit = self.config.codes_per_address_per_hour;
        let counter = self.store.bump_counter(&self.counter_key("codes", address), HOUR_MS, self.now()).await?;
        match over_budget(&counter, limit, self.now()) {
            Some(secs) => Err(ServiceError::rate_limited(secs)
                .long("Too many codes were requested for this address. Try again later.")),
            None => Ok(()),
        }
    }

    /// Refuses a code attempt once the day's budget of failures for `subjects` (the address,
    /// and the account when there is one) is spent, as if the code had too many attempts.
    pub(crate) async fn code_budget_left(&self, purpose: CodePurpose, subjects: &[&str]) -> Result<()> {
        if !self.budgets_on() {
            return Ok(());
        }
        let limit = i64::from(self.config.code_failures_per_address_per_day);
        for subject in subjects {
            let counter = self.store.get_counter(&self.code_failures_key(purpose, subject)).await?;
            if Counter::live_count(counter.as_ref(), self.now()) >= limit {
                return Err(code_budget_spent());
            }
        }
        Ok(())
    }

    /// Counts a failed code attempt against each of `subjects`.
    pub(crate) async fn code_failed(&self, purpose: CodePurpose, subjects: &[&str]) -> Result<()> {
        for subject in subjects {
            let (key, window) = self.code_failure_counter(purpose, subject);
            self.store.bump_counter(&key, window, self.now()).await?;
        }
        Ok(())
    }

    /// Counts one second-factor try of `scope` (a sign-in or a session's step-up check) before
    /// its code is judged, and refuses it past the scope's [`MAX_SECOND_FACTOR_ATTEMPTS`] or
    /// the account's daily budget. Counting first, in one atomic bump each, is what makes
    /// parallel wrong codes all count (docs/second-factors.md "Attempts"). Returns the tries
    /// of `scope` so far, this one included.
    pub(crate) async fn second_factor_try(&self, scope: &str, user_id: &str) -> Result<i64> {
        let now = self.now();
        // Only the account's budget and the scope's limit are counted here: the scope's limit
        // holds even where budgets are off (it is the attempt's own rule, like a code's).
        if self.budgets_on() {
            let limit = i64::from(self.config.code_failures_per_address_per_day);
            let key = self.code_failures_key(CodePurpose::SecondFactor, user_id);
            if self.store.bump_counter(&key, DAY_MS, now).await?.count > limit {
                return Err(code_budget_spent());
            }
        }
        let tries = self.store.bump_counter(&self.counter_key("second_factor_try", scope), DAY_MS, now).await?.count;
        if tries > MAX_SECOND_FACTOR_ATTEMPTS {
            return Err(too_many_second_factor_attempts());
        }
        Ok(tries)
    }

    /// A second factor proved right in `scope`: its tries and the account's counted failures
    /// are forgotten (so a later step-up check of the same session starts afresh).
    pub(crate) async fn second_factor_passed(&self, scope: &str, user_id: &str) -> Result<()> {
        self.store.clear_counter(&self.counter_key("second_factor_try", scope)).await?;
        self.store.clear_counter(&self.code_failures_key(CodePurpose::SecondFactor, user_id)).await?;
        Ok(())
    }

    /// Counts `count` mails that a request of `user_id` (if signed in) from `ctx` makes
    /// latchkey send; refused past the hourly budget of the user or of the IP address.
    pub(crate) async fn mail_budget(&self, ctx: &RequestContext, user_id: Option<&str>, count: u32) -> Result<()> {
        if !self.budgets_on() || count == 0 {
            return Ok(());
        }
        let limits = &self.config;
        let mut checks = self.ip_budgets("mail_ip", ctx, limits.mail_per_ip_per_hour);
        if let Some(user) = user_id {
            checks.push((self.counter_key("mail_user", user), limits.mail_per_user_per_hour));
        }
        self.spend(&checks, count, "Too many messages were sent at your request. Try again later.").await
    }

    /// Counts a new client (a browser or device seen for the first time) from `ctx`'s address:
    /// clients are stored, so an address may make only so many an hour.
    pub(crate) async fn client_budget(&self, ctx: &RequestContext) -> Result<()> {
        if !self.budgets_on() {
            return Ok(());
        }
        let checks = self.ip_budgets("clients_ip", ctx, self.config.clients_per_ip_per_hour);
        self.spend(&checks, 1, "Too many new clients from your address. Try again later.").await
    }

    /// The counters of `kind` for the request's address and its wider IPv6 prefix, with their
    /// limits.
    fn ip_budgets(&self, kind: &str, ctx: &RequestContext, limit: u32) -> Vec<(String, u32)> {
        crate::ip_keys(&ctx.ip)
            .into_iter()
            .map(|(key, factor)| (self.counter_key(kind, &key), limit.saturating_mul(factor)))
            .collect()
    }

    /// Counts `count` events against each hourly budget; refused past any of them.
    async fn spend(&self, budgets: &[(String, u32)], count: u32, why: &str) -> Result<()> {
        for (key, limit) in budgets {
            let mut counter = None;
            for _ in 0..count {
                counter = Some(self.store.bump_counter(key, HOUR_MS, self.now()).await?);
            }
            if let Some(secs) = counter.and_then(|c| over_budget(&c, *limit, self.now())) {
                return Err(ServiceError::rate_limited(secs).long(why));
            }
        }
        Ok(())
    }

    /// Deletes counters whose window has ended.
    /// Forgets counters whose window ended and rate cells that are full again.
    async fn prune(&self) -> Result<u64> {
        let counters = self.store.prune_counters(self.now() - MINUTE_MS).await?;
        Ok(counters + self.store.prune_rate_cells(self.now()).await?)
    }
}

impl Services {
    /// Counts a first-factor attempt against `identifier` before the factor is checked, or
    /// refuses it (429) while the growing delay of earlier failures runs. The delay is kept
    /// per identifier and IP address (/64): a stranger's failures slow the stranger, not the
    /// owner elsewhere; and a client that has held a session of the account is not slowed at
    /// all (it is the owner's device). Counted with a compare and swap, so parallel attempts
    /// cannot all pass one check. Known and unknown identifiers take the same path.
    pub(crate) async fn begin_attempt(
        &self,
        ctx: &RequestContext,
        client: &Client,
        identifier: &str,
        user_id: Option<&str>,
    ) -> Result<Attempt> {
        // Read for every attempt, so a known and an unknown identifier cost the same.
        let sessions = self.store.sessions_for_client(&client.id).await?;
        let recognized = user_id.is_some_and(|uid| sessions.iter().any(|s| s.user_id == uid));
        self.budgets.first_factor_attempt(ctx, identifier, recognized).await
    }

    /// Deletes counters whose window has ended (housekeeping).
    pub async fn prune_attempt_counters(&self) -> Result<u64> {
        self.budgets.prune().await
    }
}

/// The answer once a code budget is spent: the same as a code with too many attempts.
fn code_budget_spent() -> ServiceError {
    ServiceError::new(ErrorKind::Forbidden, "verification_failed", "Too many failed attempts. Try again later.")
        .long("Too many codes were entered wrongly for this address today.")
        .param("code")
}

/// A second factor's attempt (a sign-in or a step-up check) is dead: every later code is
/// refused, right or wrong.
pub(crate) fn too_many_second_factor_attempts() -> ServiceError {
    ServiceError::new(ErrorKind::Forbidden, "verification_failed", "Too many failed attempts.")
        .long("Too many incorrect codes. Start signing in again.")
        .param("code")
}
