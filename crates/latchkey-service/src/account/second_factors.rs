//! The signed-in user's own second factors (`/v1/me/totp`, `/v1/me/backup_codes`).

use latchkey_core::ids::IdKind;
use latchkey_core::reverification::STRICT;
use latchkey_core::second_factor::TotpKey;
use latchkey_store::{SessionVerification, TotpRow, UserRecord};

use super::AccountService;
use crate::authority::{Reverified, SignedIn};
use crate::error::{Result, ServiceError};
use crate::second_factors::{Factors, TotpEnrolment};
use crate::{Action, RequestContext};

/// What verifying a new authenticator app returns: the key, now verified, and the backup codes
/// made with it for a user who had none (shown this once).
#[derive(Debug, Clone)]
pub struct TotpVerified {
    pub totp: TotpEnrolment,
    pub backup_codes: Option<Vec<String>>,
}

impl AccountService {
    fn factors(&self) -> &Factors {
        &self.factors
    }

    /// Starts an authenticator app: a new key, shown once, that counts after a correct code.
    /// A user whose app is verified must remove it first (one per user, as in Clerk). A user
    /// who still holds backup codes proves a recent check first (Clerk's `strict`): a new app
    /// is a new way in, and a stolen session alone must not add one.
    pub async fn create_totp(&self, who: &SignedIn) -> Result<TotpEnrolment> {
        let f = self.factors();
        let record = self.users.user(who.user_id()).await?;
        if record.second_factors.totp_enabled() {
            return Err(ServiceError::bad_request(
                "totp_already_enabled",
                "An authenticator app is already set up for this account.",
            )
            .long("Remove the authenticator app before adding another."));
        }
        if record.second_factors.any() {
            let _recent: Reverified = self.users.reverified(who, STRICT).await?;
        }
        // A passkey holder's session waiting for `setup-mfa` began with a password alone: an
        // app added there would stand in for the passkey the account already has
        // (docs/passkeys.md "Factors"). The holder signs in with the passkey instead.
        if record.passkeys.iter().any(|p| p.verified) {
            self.refuse_pending(who, "Sign in with your passkey to finish two-step verification.").await?;
        }
        let key = TotpKey::generate(f.rng.as_ref(), &f.app_name, &Factors::account_label(&record))
            .map_err(|_| ServiceError::internal())?;
        let now = f.now();
        let mut row = TotpRow {
            id: f.events.new_id(IdKind::Totp),
            user_id: record.user.id.clone(),
            secret_sealed: String::new(),
            verified: false,
            last_used_step: None,
            created_at: now,
            updated_at: now,
        };
        row.secret_sealed = f.keys.seal_secret(key.secret_bytes(), &Factors::sealing_owner(&row))?;
        self.store.save_pending_totp(&row).await?;
        Ok(f.enrolment(&row, Some(&key)))
    }

    /// Activates the pending authenticator app with a code of it. The session counts as having
    /// proved its second factor now; a user without backup codes gets a set.
    pub async fn verify_totp(&self, ctx: &RequestContext, who: &SignedIn, code: &str) -> Result<TotpVerified> {
        self.limit_ip(Action::Verify, ctx).await?;
        let f = self.factors();
        let record = self.users.user(who.user_id()).await?;
        let Some(row) = record.second_factors.totp.clone().filter(|t| !t.verified) else {
            return Err(ServiceError::not_found("TOTP").long("Add an authenticator app first."));
        };
        let key = f.key_of(&record, &row)?;
        let now = f.now();
        let accepted = match key.matching_step(code, now) {
            Some(step) => {
                let event = f.updated_event(&record, |s| {
                    if let Some(t) = s.totp.as_mut() {
                        t.verified = true;
                    }
                });
                f.emitting(vec![event]).use_totp_step(&row.id, step, true, now).await?
            }
            None => false,
        };
        if !accepted {
            return Err(ServiceError::code_incorrect());
        }
        self.store
            .record_session_verification(&SessionVerification {
                session_id: who.session_id().to_owned(),
                reverification: None,
                first_factor_verified_at: None,
                second_factor_verified_at: Some(now),
                now,
            })
            .await?;
        // Sessions begun before the app existed never proved it: a first factor alone must not
        // pass their step-up checks from now on (their `fva` second age is stale, not -1).
        self.store.second_factor_unproved_elsewhere(who.user_id(), who.session_id()).await?;
        let record = self.users.user(who.user_id()).await?;
        let backup_codes = if record.second_factors.backup_code_enabled() {
            None
        } else {
            Some(f.regenerate_backup_codes(&record).await?)
        };
        let row = record.second_factors.totp.clone().unwrap_or(row);
        Ok(TotpVerified { totp: f.enrolment(&row, None), backup_codes })
    }

    /// Removes the authenticator app, and the backup codes that only stood beside it; refused
    /// when the instance requires a second factor (the user's only one).
    pub async fn delete_totp(&self, who: &Reverified) -> Result<String> {
        if self.config.second_factors == crate::second_factors::Policy::Required {
            return Err(ServiceError::unprocessable(
                "second_factor_required",
                "This application requires two-step verification; the authenticator app cannot be removed.",
            ));
        }
        let f = self.factors();
        let record = self.users.user(who.signed_in().user_id()).await?;
        let Some(row) = record.second_factors.totp.clone() else {
            return Err(ServiceError::not_found("TOTP"));
        };
        let event = f.updated_event(&record, |s| *s = Default::default());
        f.emitting(vec![event]).delete_totp(&record.user.id, true).await?;
        Ok(row.id)
    }

    /// A new set of ten backup codes (the old set dies), for a user with an authenticator app;
    /// after a recent check, as Clerk asks (new codes are a way in).
    pub async fn create_backup_codes(&self, who: &Reverified) -> Result<(UserRecord, Vec<String>)> {
        let who = who.signed_in();
        let f = self.factors();
        let record = self.users.user(who.user_id()).await?;
        if !record.second_factors.totp_enabled() {
            return Err(ServiceError::unprocessable(
                "second_factor_required",
                "Set up an authenticator app before creating backup codes.",
            ));
        }
        let codes = f.regenerate_backup_codes(&record).await?;
        Ok((self.users.user(who.user_id()).await?, codes))
    }
}
