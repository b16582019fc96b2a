//! A sign-in's second step (`needs_second_factor`, docs/second-factors.md): after the first
//! factor, a user with an authenticator app or backup codes proves one of them before the
//! session exists. Wrong codes are counted on the attempt (five, then it is dead) and against
//! the account's daily budget; nothing else changes.

use latchkey_core::second_factor::MAX_SECOND_FACTOR_ATTEMPTS;
use latchkey_store::{FailedAttempt, SignInRow};

use crate::attempts::CodePurpose;
use crate::authority::Client;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::second_factors::Strategy;
use crate::{Action, RequestContext, Services};

use super::sign_in::SignInWrites;
use super::Step;

fn strategy_invalid() -> ServiceError {
    ServiceError::unprocessable("strategy_for_user_invalid", "That strategy is not available for this sign-in.")
        .param("strategy")
}

/// The strategies a sign-in waiting for its second factor offers.
pub fn supported_second_factors(row: &SignInRow) -> Vec<&str> {
    match (&row.status[..], &row.second_factors_supported) {
        ("needs_second_factor", Some(list)) => list.split(',').filter(|s| !s.is_empty()).collect(),
        _ => Vec::new(),
    }
}

impl Services {
    /// A sign-in of this client that waits for its second factor.
    async fn awaiting_second_factor(&self, client: &Client, id: &str) -> Result<SignInRow> {
        let row = self.sign_in_of(client, id).await?;
        if row.status != "needs_second_factor" {
            return Err(ServiceError::bad_request(
                "sign_in_no_second_factor",
                "This sign-in does not need a second factor now.",
            ));
        }
        Ok(row)
    }

    /// Authenticator apps and backup codes need no preparation (nothing is sent); the phone
    /// and email strategies Clerk also prepares here are not offered.
    pub async fn prepare_second_factor(&self, client: &Client, id: &str, strategy: &str) -> Result<SignInRow> {
        let row = self.awaiting_second_factor(client, id).await?;
        match Strategy::parse(strategy) {
            Some(s) if supported_second_factors(&row).contains(&s.as_str()) => Ok(row),
            _ => Err(strategy_invalid()),
        }
    }

    pub async fn attempt_second_factor(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        strategy: &str,
        code: &str,
    ) -> Result<Step<SignInRow>> {
        self.limit_ip(Action::SignIn, ctx)?;
        let mut row = self.awaiting_second_factor(client, id).await?;
        let strategy = Strategy::parse(strategy)
            .filter(|s| supported_second_factors(&row).contains(&s.as_str()))
            .ok_or_else(strategy_invalid)?;
        if row.second_factor_attempts >= MAX_SECOND_FACTOR_ATTEMPTS {
            return Err(too_many_attempts());
        }
        let user_id = row.user_id.clone().unwrap_or_default();
        self.limit_identifier(&user_id)?;
        self.budgets.code_budget_left(CodePurpose::SecondFactor, &[&user_id]).await?;
        let record = self.users.user(&user_id).await?;
        row.second_factor_strategy = Some(strategy.as_str().to_owned());
        row.updated_at = self.now();
        row.version += 1;
        if self.factors.check(&record, strategy, code).await? {
            row.second_factor_status = Some("verified".into());
            let writes = SignInWrites { second_factor_proved: true, ..SignInWrites::default() };
            return self.finish_sign_in(client, row, &user_id, writes).await;
        }
        row.second_factor_attempts += 1;
        row.second_factor_status = Some("failed".into());
        let left = MAX_SECOND_FACTOR_ATTEMPTS - row.second_factor_attempts;
        let counters = vec![self.budgets.code_failure_counter(CodePurpose::SecondFactor, &user_id)];
        let now = self.now();
        self.store.record_failed_attempt(&FailedAttempt { sign_in: row, counters, account: None, now }).await?;
        Err(if left > 0 {
            ServiceError::code_incorrect()
                .long(format!("Incorrect code. {left} attempts remain."))
                .meta("attempts_remaining", left.into())
        } else {
            too_many_attempts()
        })
    }
}

/// The attempt is dead: every later code is refused, right or wrong.
pub(crate) fn too_many_attempts() -> ServiceError {
    ServiceError::new(ErrorKind::Forbidden, "verification_failed", "Too many failed attempts.")
        .long("Too many incorrect codes. Start signing in again.")
        .param("code")
}
