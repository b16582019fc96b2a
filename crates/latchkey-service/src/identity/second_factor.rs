//! A sign-in's second step (`needs_second_factor`, docs/second-factors.md): after the first
//! factor, a user with an authenticator app or backup codes proves one of them before the
//! session exists. Every try is counted before its code is judged, on the attempt (five, then
//! it is dead) and against the account's daily budget; nothing else changes.

use latchkey_core::second_factor::MAX_SECOND_FACTOR_ATTEMPTS;
use latchkey_store::{SignInRow, StoreError};

use crate::attempts::too_many_second_factor_attempts;
use crate::authority::Client;
use crate::error::{Result, ServiceError};
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
        self.limit_ip(Action::SignIn, ctx).await?;
        let mut row = self.awaiting_second_factor(client, id).await?;
        let strategy = Strategy::parse(strategy)
            .filter(|s| supported_second_factors(&row).contains(&s.as_str()))
            .ok_or_else(strategy_invalid)?;
        let user_id = row.user_id.clone().unwrap_or_default();
        self.limit_account(&user_id).await?;
        let scope = format!("sign_in:{}", row.id);
        let tries = self.budgets.second_factor_try(&scope, &user_id).await?;
        let record = self.users.user(&user_id).await?;
        row.second_factor_strategy = Some(strategy.as_str().to_owned());
        row.updated_at = self.now();
        row.version += 1;
        if self.factors.check(&record, strategy, code).await? {
            self.budgets.second_factor_passed(&scope, &user_id).await?;
            row.second_factor_status = Some("verified".into());
            row.second_factor_attempts = tries - 1;
            let writes = SignInWrites { second_factor_proved: true, ..SignInWrites::default() };
            return self.finish_sign_in(client, row, &user_id, writes).await;
        }
        // Shown on the attempt only: the counter above is what limits it, so a write lost to
        // a parallel attempt loses nothing that matters.
        row.second_factor_attempts = tries;
        row.second_factor_status = Some("failed".into());
        match self.store.update_sign_in(&row).await {
            Ok(()) | Err(StoreError::Stale) => {}
            Err(e) => return Err(e.into()),
        }
        let left = MAX_SECOND_FACTOR_ATTEMPTS - tries;
        Err(if left > 0 {
            ServiceError::code_incorrect()
                .long(format!("Incorrect code. {left} attempts remain."))
                .meta("attempts_remaining", left.into())
        } else {
            too_many_second_factor_attempts()
        })
    }
}
