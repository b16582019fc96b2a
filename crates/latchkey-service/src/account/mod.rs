//! A signed-in user's own account (profile, password, email addresses, sessions): a service of
//! its own, [`AccountService`], over the users and sessions of the store ([`PeopleStore`]) and
//! the [`Users`] value it shares with identity and administration. Same rules as the sign-up
//! flow. Its second factors (`/v1/me/totp…`, `/v1/me/backup_codes`) are in `second_factors`.

mod passkeys;
mod remove_password;
mod second_factors;

pub use second_factors::TotpVerified;

use latchkey_core::code::{new_code, CodeOutcome, PendingCode};
use latchkey_core::password::check_new_password;
use std::sync::Arc;

use latchkey_core::authz::ADMIN_ROLE;
use latchkey_core::clock::Millis;
use latchkey_core::Random;
use latchkey_store::{EmailRow, OutboxEvent, PeopleStore, SessionRow, StoreError, UserRecord};

use crate::attempts::{Budgets, CodePurpose};
use crate::authority::{Reverified, SignedIn};
use crate::error::{Result, ServiceError};
use crate::hasher::PasswordHasher;
use crate::identity::{code_error, code_fields, email_param, password_error, pending, username_param};
use crate::mail::{password_changed_notice, Postman};
use crate::params::{conflict_to_identifier, primary_email_choice, trimmed};
use crate::resources::primary_email;
use crate::users::Users;
use crate::webhooks::Events;
use crate::{Action, Limits, RequestContext, ServiceConfig};

/// A signed-in user's own account. Built by [`crate::Services::new`].
pub struct AccountService {
    pub(crate) users: Arc<Users>,
    pub(crate) store: Arc<dyn PeopleStore>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    pub(crate) budgets: Budgets,
    /// The per-minute limits of password changes and verifications, shared with identity.
    pub(crate) limits: Arc<Limits>,
    pub(crate) postman: Postman,
    pub(crate) events: Events,
    pub(crate) rng: Arc<dyn Random>,
    /// Keys the digests of one-time codes.
    pub(crate) code_key: Vec<u8>,
    pub(crate) config: ServiceConfig,
    /// The user's second factors (`/v1/me/totp`, `/v1/me/backup_codes`).
    pub(crate) factors: Arc<crate::second_factors::Factors>,
    /// The user's passkeys (`/v1/me/passkeys…`).
    pub(crate) passkeys: Arc<crate::passkeys::Passkeys>,
}

impl AccountService {
    fn now(&self) -> Millis {
        self.events.now()
    }

    /// The store, writing `events` in the transaction of the next write.
    fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn PeopleStore> {
        self.store.emitting_people(events)
    }

    pub(crate) async fn limit_ip(&self, action: Action, ctx: &RequestContext) -> Result<()> {
        self.limits.ip(action, ctx, self.now()).await
    }

    async fn limit_account(&self, user_id: &str) -> Result<()> {
        self.limits.account(user_id, self.now()).await
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub primary_email_address_id: Option<String>,
    pub unsafe_metadata: Option<serde_json::Value>,
}

impl AccountService {
    pub async fn update_profile(&self, who: &SignedIn, update: ProfileUpdate) -> Result<UserRecord> {
        let user_id = who.user_id();
        let record = self.users.user(user_id).await?;
        let mut user = record.user.clone();
        if let Some(v) = trimmed(update.first_name, "first_name")? {
            user.first_name = v;
        }
        if let Some(v) = trimmed(update.last_name, "last_name")? {
            user.last_name = v;
        }
        if let Some(v) = trimmed(update.username, "username")? {
            user.username = v.as_deref().map(username_param).transpose()?;
        }
        if let Some(id) = update.primary_email_address_id {
            user.primary_email_id = Some(primary_email_choice(&record, id)?);
        }
        if let Some(meta) = update.unsafe_metadata {
            // The Backend API's rules: an object of at most 8 KiB.
            user.unsafe_metadata = crate::params::metadata_param(&meta, "unsafe_metadata")?;
        }
        user.updated_at = self.now();
        user.version += 1;
        let event = self.users.user_event("user.updated", &UserRecord { user: user.clone(), ..record.clone() });
        self.emitting(vec![event]).update_user(&user).await.map_err(|e| conflict_to_identifier(e, "username"))?;
        self.users.user(user_id).await
    }

    /// Changes the password after checking the current one (ASVS 6.2.3) and tells the user by mail.
    /// Takes a [`Reverified`] proof: a stolen session alone cannot change the password.
    pub async fn change_password(
        &self,
        ctx: &RequestContext,
        who: &Reverified,
        current: Option<&str>,
        new: &str,
        sign_out_others_except: Option<&str>,
    ) -> Result<UserRecord> {
        let user_id = who.signed_in().user_id();
        self.limit_ip(Action::PasswordChange, ctx).await?;
        self.limit_account(user_id).await?;
        let record = self.users.user(user_id).await?;
        self.check_current_password(&record, current).await?;
        check_new_password(new).map_err(|p| {
            let mut e = password_error(p);
            e.param = Some("new_password");
            e
        })?;
        let hash = self.hasher.hash(new).await?;
        let mut user = record.user.clone();
        let now = self.now();
        user.password_hash = Some(hash);
        user.password_updated_at = Some(now);
        user.updated_at = now;
        user.version += 1;
        let event = self.users.user_event("user.updated", &UserRecord { user: user.clone(), ..record.clone() });
        self.emitting(vec![event]).update_user(&user).await?;
        if let Some(keep) = sign_out_others_except {
            self.users.revoke_user_sessions(user_id, Some(keep), now).await?;
        }
        if let Some(email) = primary_email(&record) {
            let ua = ctx.user_agent.as_deref();
            let (subject, text) =
                password_changed_notice(&self.config.app_name, now, ua, sign_out_others_except.is_some());
            self.postman.send(&email, &subject, text);
        }
        self.users.user(user_id).await
    }

    /// Adds an unverified address to the caller's account and mails it a code (within the
    /// caller's mail budget and the address's code budget).
    pub async fn add_email(&self, ctx: &RequestContext, who: &SignedIn, address: &str) -> Result<EmailRow> {
        let user_id = who.user_id();
        let record = self.users.user(user_id).await?;
        let email = email_param(address, "email_address")?;
        if record.emails.iter().any(|e| e.email == email) {
            return Err(ServiceError::identifier_exists("email_address"));
        }
        self.budgets.mail_budget(ctx, Some(user_id), 1).await?;
        self.budgets.code_issued(&email).await?;
        let mut row = self.users.new_email_row(user_id, email, false);
        let code = self.issue_email_code(&mut row);
        let event = self.users.user_changed(user_id, |r| crate::webhooks::put_email(r, &row)).await?;
        self.emitting(vec![event]).insert_email(&row).await.map_err(|e| conflict_to_identifier(e, "email_address"))?;
        self.mail_email_code(&row, &code);
        Ok(row)
    }

    fn issue_email_code(&self, row: &mut EmailRow) -> String {
        let code = new_code(self.rng.as_ref());
        row.code = code_fields(&PendingCode::issue(&self.code_key, &row.id, &code, self.now()));
        code
    }

    fn mail_email_code(&self, row: &EmailRow, code: &str) {
        let app = &self.config.app_name;
        self.postman.send(
            &row.email,
            &format!("{code} is your {app} verification code"),
            format!("Your {app} verification code is {code}\n\nIt expires in 10 minutes.\n"),
        );
    }

    /// The opening of both verification steps: the IP budget, then the caller's own address
    /// `email_id`, which must not be verified yet. Returns the user and a copy of the address.
    async fn unverified_email_of(
        &self,
        ctx: &RequestContext,
        who: &SignedIn,
        email_id: &str,
    ) -> Result<(UserRecord, EmailRow)> {
        self.limit_ip(Action::Verify, ctx).await?;
        let record = self.users.user(who.user_id()).await?;
        let row = crate::users::Users::email_of(&record, email_id)?.clone();
        if row.verified {
            return Err(ServiceError::already_verified());
        }
        Ok((record, row))
    }

    pub async fn prepare_email_verification(
        &self,
        ctx: &RequestContext,
        who: &SignedIn,
        email_id: &str,
    ) -> Result<EmailRow> {
        let (record, mut row) = self.unverified_email_of(ctx, who, email_id).await?;
        if crate::identity::code_just_mailed(&row.code, self.now()) {
            // The code mailed when the address was added stands (clerk-js asks right after).
            return Ok(row);
        }
        self.budgets.mail_budget(ctx, Some(who.user_id()), 1).await?;
        self.budgets.code_issued(&row.email).await?;
        let code = self.issue_email_code(&mut row);
        row.updated_at = self.now();
        row.version += 1;
        let mut after = record.clone();
        crate::webhooks::put_email(&mut after, &row);
        self.emitting(vec![self.users.user_event("user.updated", &after)]).update_email(&row).await?;
        self.mail_email_code(&row, &code);
        Ok(row)
    }

    pub async fn attempt_email_verification(
        &self,
        ctx: &RequestContext,
        who: &SignedIn,
        email_id: &str,
        code: &str,
    ) -> Result<EmailRow> {
        let user_id = who.user_id();
        let (record, mut row) = self.unverified_email_of(ctx, who, email_id).await?;
        let Some(mut p) = pending(&row.code) else {
            return Err(ServiceError::bad_request("verification_missing", "Request a verification code first."));
        };
        // Budgets of the address (whoever adds it) and of the account (whatever it adds).
        let subjects = [row.email.clone(), user_id.to_owned()];
        let subjects = [subjects[0].as_str(), subjects[1].as_str()];
        self.budgets.code_budget_left(CodePurpose::AddressVerification, &subjects).await?;
        let outcome = p.attempt(&self.code_key, &row.id, code, self.now());
        row.code = code_fields(&p);
        row.updated_at = self.now();
        row.version += 1;
        if outcome == CodeOutcome::Verified {
            row.verified = true;
            row.verified_at = Some(self.now());
            let mut after = record.clone();
            crate::webhooks::put_email(&mut after, &row);
            self.emitting(vec![self.users.user_event("user.updated", &after)])
                .update_email(&row)
                .await
                .map_err(|e| conflict_to_identifier(e, "email_address"))?;
            return Ok(row);
        }
        self.store.update_email(&row).await?;
        if matches!(outcome, CodeOutcome::Incorrect { .. } | CodeOutcome::TooManyAttempts) {
            self.budgets.code_failed(CodePurpose::AddressVerification, &subjects).await?;
        }
        Err(code_error(outcome))
    }

    pub async fn delete_email(&self, who: &SignedIn, email_id: &str) -> Result<()> {
        self.users.remove_email(who.user_id(), email_id).await
    }

    /// Deletes the caller's own account (Clerk's `DELETE /v1/me`), when the instance lets users
    /// do so: every session, factor and identification goes with it.
    pub async fn delete_own_account(&self, who: &Reverified) -> Result<String> {
        let user_id = who.signed_in().user_id();
        let record = self.users.user(user_id).await?;
        if !self.config.delete_self_enabled || !record.user.delete_self_enabled {
            return Err(ServiceError::new(
                crate::error::ErrorKind::Forbidden,
                "delete_self_not_enabled",
                "You cannot delete your own account.",
            )
            .long("This application does not let users delete their own accounts."));
        }
        // Each live session ends with the account (`session.removed`), then `user.deleted`.
        let now = self.now();
        let mut events: Vec<OutboxEvent> = (self.store.sessions_for_user(user_id).await?.into_iter())
            .filter(|s| self.users.session_is_active(s))
            .map(|s| SessionRow { status: "removed".into(), updated_at: now, ..s })
            .map(|s| self.users.session_event("session.removed", &s))
            .collect();
        events.push(self.users.deleted_event("user.deleted", "user", user_id));
        match self.emitting(events).delete_own_user(user_id, ADMIN_ROLE).await {
            Ok(true) => {}
            Ok(false) => return Err(ServiceError::not_found("User")),
            Err(StoreError::Conflict(rule)) if rule.starts_with("last_admin:") => {
                return Err(ServiceError::unprocessable(
                    "organization_minimum_permissions_needed",
                    "You are the only admin of an organization with other members.",
                )
                .long("Make another member an admin, or delete the organization, before deleting your account."))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user_id, "user deleted their own account");
        Ok(user_id.to_owned())
    }

    /// The user's sessions that are still active, newest first.
    pub async fn active_sessions(&self, who: &SignedIn) -> Result<Vec<SessionRow>> {
        let user_id = who.user_id();
        Ok(self
            .store
            .sessions_for_user(user_id)
            .await?
            .into_iter()
            .filter(|s| self.users.session_is_active(s))
            .collect())
    }

    pub async fn revoke_own_session(&self, who: &SignedIn, session_id: &str) -> Result<SessionRow> {
        let user_id = who.user_id();
        let mut session = match self.store.get_session(session_id).await? {
            Some(s) if s.user_id == user_id => s,
            _ => return Err(ServiceError::not_found("Session")),
        };
        if session.status == "active" {
            session.status = "revoked".into();
            session.updated_at = self.now();
            self.emitting(vec![self.users.session_event("session.revoked", &session)]).update_session(&session).await?;
        }
        Ok(session)
    }
}
