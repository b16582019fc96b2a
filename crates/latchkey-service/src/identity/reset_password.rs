//! "Forgot password?": Clerk's reset flow on a sign-in attempt (docs/frontend-api.md §6).
//!
//! 1. `prepare_first_factor` with `reset_password_email_code` mails a code (the email code's
//!    path in `sign_in`: the same decoy for unknown addresses, the same mail and code budgets);
//! 2. `attempt_first_factor` with the code moves the attempt to `needs_new_password`;
//! 3. [`Services::reset_password`] sets the new password and completes the sign-in, in one
//!    transaction with the new session, the cleared lockout and the `user.updated` event.
//!
//! The lockout counter is cleared only by step 3: a proven code alone changes nothing.

use latchkey_core::code::CODE_TTL_MS;
use latchkey_core::password::check_new_password;
use latchkey_store::{SignInRow, UserRecord};

use crate::authority::Client;
use crate::error::{Result, ServiceError};
use crate::mail::password_changed_notice;
use crate::resources::primary_email;
use crate::{Action, RequestContext, Services};

use super::sign_in::SignInWrites;
use super::{password_error, Step};

pub(crate) const RESET_PASSWORD_EMAIL_CODE: &str = "reset_password_email_code";

/// How long after its code expired a proven reset may still set the password: the person
/// types a new one, but a forgotten tab does not keep the power to set it.
const NEW_PASSWORD_WINDOW_MS: i64 = CODE_TTL_MS;

pub(crate) fn reset_code_mail(app: &str, code: &str) -> (String, String) {
    (
        format!("{code} is your {app} password reset code"),
        format!(
            "Your {app} password reset code is {code}\n\nIt expires in 10 minutes. If you did not ask to reset your password, ignore this message: your password stays as it is.\n"
        ),
    )
}

/// The reset request of [`Services::reset_password`].
#[derive(Debug, Clone)]
pub struct NewPassword {
    pub password: String,
    /// Ends every other session of the account (always done when the account was locked).
    pub sign_out_of_other_sessions: bool,
}

impl Services {
    /// The code proved the address: the attempt now waits for the new password.
    pub(super) async fn await_new_password(&self, mut row: SignInRow) -> Result<Step<SignInRow>> {
        row.status = "needs_new_password".into();
        row.first_factor_status = Some("verified".into());
        self.store.update_sign_in(&row).await?;
        Ok(Step::pending(row))
    }

    /// Sets the new password of a sign-in whose reset code was proven, and completes it.
    pub async fn reset_password(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        request: NewPassword,
    ) -> Result<Step<SignInRow>> {
        self.limit_ip(Action::PasswordChange, ctx).await?;
        let mut row = self.sign_in_of(client, id).await?;
        if row.status == "complete" {
            return Err(ServiceError::bad_request("sign_in_already_complete", "This sign-in is already complete."));
        }
        let proven = row.status == "needs_new_password"
            && row.first_factor_strategy.as_deref() == Some(RESET_PASSWORD_EMAIL_CODE);
        let (true, Some(user_id)) = (proven, row.user_id.clone()) else {
            return Err(ServiceError::bad_request(
                "verification_missing",
                "Enter the code sent to your email address before choosing a new password.",
            ));
        };
        let now = self.now();
        if row.code.expires_at.is_none_or(|at| now >= at + NEW_PASSWORD_WINDOW_MS) {
            return Err(ServiceError::unprocessable(
                "verification_expired",
                "This password reset has expired. Request a new code.",
            ));
        }
        let record = self.users.user(&user_id).await?;
        self.users.refuse_blocked(&record.user)?;
        check_new_password(&request.password).map_err(password_error)?;
        if let Some(current) = &record.user.password_hash {
            if self.hasher.verify(&request.password, current).await?.ok {
                return Err(ServiceError::unprocessable(
                    "form_new_password_matches_current",
                    "Your new password cannot be the same as your current password.",
                )
                .param("password"));
            }
        }
        let hash = self.hasher.hash(&request.password).await?;
        // A reset by a locked-out account may be its owner taking it back: whoever caused the
        // lockout may hold a session, so every other one ends.
        let was_locked = record.user.locked_until.is_some_and(|until| until > now);
        let end_others = request.sign_out_of_other_sessions || was_locked;
        let event = self.users.user_event("user.updated", &with_new_password(&record, &hash, now));
        // Racing resets of one attempt: the versioned write lets exactly one through.
        row.updated_at = now;
        row.version += 1;
        let writes = SignInWrites {
            rehashed: Some(hash),
            password_changed: true,
            events: vec![event],
            ..SignInWrites::default()
        };
        let step = self.finish_sign_in(client, row, &user_id, writes).await?;
        if end_others {
            self.users.revoke_user_sessions(&user_id, step.row.created_session_id.as_deref(), now).await?;
        }
        tracing::info!(user_id, others_ended = end_others, "password reset");
        let to = primary_email(&record).or_else(|| step.row.identifier.clone().filter(|i| i.contains('@')));
        if let Some(to) = to {
            let (subject, text) =
                password_changed_notice(&self.config.app_name, now, ctx.user_agent.as_deref(), end_others);
            self.send_mail(&to, &subject, text);
        }
        Ok(step)
    }
}

/// The account as the `user.updated` event shows it after the reset.
fn with_new_password(record: &UserRecord, hash: &str, now: i64) -> UserRecord {
    let mut after = record.clone();
    after.user.password_hash = Some(hash.to_owned());
    after.user.password_updated_at = Some(now);
    after.user.failed_attempts = 0;
    after.user.locked_until = None;
    after.user.updated_at = now;
    after.user.version += 1;
    after
}
