//! Sign-ins: the attempt, its first factor (password or email code, with enumeration
//! protection and failure lockout), and the session it creates. The reset-password code
//! shares the email code's path here; what follows it is in `reset_password`.

use latchkey_core::code::{new_code, CodeOutcome, PendingCode};
use latchkey_core::ids::{keyed_id, IdKind};
use latchkey_core::lockout::{FailureState, COOL_DOWN_MS, MAX_CONSECUTIVE_FAILURES};
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_store::{AccountFailure, CompleteSignIn, FailedAttempt, OutboxEvent, SignInRow};

use crate::attempts::CodePurpose;
use crate::authority::Client;
use crate::error::{Result, ServiceError};
use crate::second_factors::{Policy, Strategy};
use crate::{Action, RequestContext, Services};

use super::passkey_sign_in::PASSKEY;
use super::reset_password::{reset_code_mail, RESET_PASSWORD_EMAIL_CODE};
use super::{code_error, code_fields, email_param, pending, SignInInput, Step};

impl Services {
    pub async fn create_sign_in(
        &self,
        ctx: &RequestContext,
        client: &Client,
        input: SignInInput,
    ) -> Result<Step<SignInRow>> {
        let identifier = input.identifier.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if identifier.is_none() && input.strategy.as_deref() == Some(PASSKEY) {
            return Ok(Step::pending(self.create_passkey_sign_in(ctx, client).await?));
        }
        self.limit_ip(Action::SignIn, ctx).await?;
        self.refuse_if_signed_in(client).await?;
        let identifier = identifier.ok_or_else(|| {
            ServiceError::unprocessable("form_param_missing", "Enter an email address or username.").param("identifier")
        })?;
        if identifier.chars().count() > 256 {
            return Err(
                ServiceError::unprocessable("form_param_format_invalid", "Identifier is too long").param("identifier")
            );
        }
        self.limit_identifier(identifier).await?;
        let (identifier, user_id, email_id) = if identifier.contains('@') {
            let email = email_param(identifier, "identifier")?;
            let user_id = self.store.user_id_by_verified_email(&email).await?;
            // Known or not, the address shows the same id, derived from the address alone: a
            // stored id would carry its creation time, a fresh decoy would change per request.
            let email_id = keyed_id(IdKind::Identification, &self.code_key, &email);
            (email, user_id, Some(email_id))
        } else {
            let name = identifier.to_lowercase();
            let user_id = self.store.user_id_by_username(&name).await?;
            (name, user_id, None)
        };
        if user_id.is_none() && !self.config.enumeration_protection {
            return Err(ServiceError::unprocessable("form_identifier_not_found", "Couldn't find your account.")
                .param("identifier"));
        }
        let mut row =
            SignInRow { identifier: Some(identifier), user_id, email_address_id: email_id, ..self.new_sign_in(client) };
        self.offer_passkey(&mut row).await?;
        self.store.insert_sign_in(&row).await?;
        // A code strategy named at creation prepares it at once, as Clerk does
        // (`signIn.create({ strategy: 'reset_password_email_code', identifier })`).
        if let Some(code_strategy @ ("email_code" | RESET_PASSWORD_EMAIL_CODE)) = input.strategy.as_deref() {
            return Ok(Step::pending(self.prepare_first_factor(ctx, client, &row.id, code_strategy).await?));
        }
        if input.strategy.as_deref() == Some("password") || (input.strategy.is_none() && input.password.is_some()) {
            if let Some(password) = input.password {
                return self.attempt_password(ctx, client, row, &password).await;
            }
        }
        Ok(Step::pending(row))
    }

    /// A sign-in of this client (another client's is reported as not found).
    pub async fn sign_in_of(&self, client: &Client, id: &str) -> Result<SignInRow> {
        match self.store.get_sign_in(id).await? {
            Some(row) if row.client_id == client.id => Ok(row),
            _ => Err(ServiceError::not_found("Sign-in")),
        }
    }

    pub async fn prepare_first_factor(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        strategy: &str,
    ) -> Result<SignInRow> {
        self.limit_ip(Action::Verify, ctx).await?;
        let mut row = self.sign_in_of(client, id).await?;
        if row.status == "complete" {
            return Err(ServiceError::bad_request("sign_in_already_complete", "This sign-in is already complete."));
        }
        match strategy {
            "password" => {}
            PASSKEY => self.prepare_passkey(&mut row)?,
            "email_code" | RESET_PASSWORD_EMAIL_CODE if row.email_address_id.is_some() => {
                // Counted alike for addresses with and without an account, and for both
                // purposes: a reset code spends the sign-in code budgets.
                let address = row.identifier.clone().unwrap_or_default();
                self.budgets.mail_budget(ctx, None, 1).await?;
                self.budgets.code_issued(&address).await?;
                let code = new_code(self.rng.as_ref());
                let p = PendingCode::issue(&self.code_key, &row.id, &code, self.now());
                row.code = code_fields(&p);
                if row.user_id.is_some() {
                    let app = &self.config.app_name;
                    let (subject, text) = if strategy == RESET_PASSWORD_EMAIL_CODE {
                        reset_code_mail(app, &code)
                    } else {
                        (
                            format!("{code} is your {app} sign-in code"),
                            format!("Your {app} sign-in code is {code}\n\nIt expires in 10 minutes. If you did not try to sign in, ignore this message.\n"),
                        )
                    };
                    self.send_mail(&address, &subject, text);
                }
            }
            _ => {
                return Err(ServiceError::unprocessable(
                    "strategy_for_user_invalid",
                    "That strategy is not available for this sign-in.",
                )
                .param("strategy"))
            }
        }
        // A new factor starts over (a reset already proven must be proven again).
        row.status = "needs_first_factor".into();
        row.first_factor_strategy = Some(strategy.to_owned());
        row.first_factor_status = Some("unverified".into());
        row.updated_at = self.now();
        row.version += 1;
        self.store.update_sign_in(&row).await?;
        Ok(row)
    }

    pub async fn attempt_first_factor(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        strategy: &str,
        secret: &str,
    ) -> Result<Step<SignInRow>> {
        self.limit_ip(Action::SignIn, ctx).await?;
        let row = self.sign_in_of(client, id).await?;
        if row.status == "complete" {
            return Err(ServiceError::bad_request("sign_in_already_complete", "This sign-in is already complete."));
        }
        match strategy {
            "password" => {
                if let Some(identifier) = &row.identifier {
                    self.limit_identifier(identifier).await?;
                }
                self.attempt_password(ctx, client, row, secret).await
            }
            "email_code" => {
                let row = self.check_code(ctx, client, row, strategy, secret).await?;
                let uid = row.user_id.clone().unwrap_or_default();
                self.complete_sign_in(client, row, &uid, None).await
            }
            RESET_PASSWORD_EMAIL_CODE => {
                let row = self.check_code(ctx, client, row, strategy, secret).await?;
                self.await_new_password(row).await
            }
            // The secret is the browser's answer (`public_key_credential`).
            PASSKEY => self.attempt_passkey(client, row, secret).await,
            _ => Err(ServiceError::unprocessable(
                "strategy_for_user_invalid",
                "That strategy is not available for this sign-in.",
            )
            .param("strategy")),
        }
    }

    /// The password step. Unknown account, wrong password, unverified address and an account
    /// locked by failures take the same path: one argon2id verification, the same error, the
    /// same status (docs/SECURITY.md "Limits and lockout").
    async fn attempt_password(
        &self,
        ctx: &RequestContext,
        client: &Client,
        mut row: SignInRow,
        password: &str,
    ) -> Result<Step<SignInRow>> {
        let identifier = row.identifier.clone().unwrap_or_default();
        let attempt = self.begin_attempt(ctx, client, &identifier, row.user_id.as_deref()).await?;
        let now = self.now();
        let user = match &row.user_id {
            Some(uid) => self.store.get_user_row(uid).await?,
            None => None,
        };
        let failures = user.as_ref().map(|u| FailureState {
            consecutive_failures: u32::try_from(u.failed_attempts).unwrap_or(u32::MAX),
            locked_until: u.locked_until,
        });
        let locked = failures.is_some_and(|s| s.is_locked(now));
        let verdict = match user.as_ref().and_then(|u| u.password_hash.clone()) {
            Some(phc) => Some(self.hasher.verify(password, &phc).await?),
            None => {
                self.hasher.verify_dummy(password).await?;
                None
            }
        };
        row.first_factor_strategy = Some("password".into());
        row.updated_at = now;
        row.version += 1;
        let (Some(user), Some(verdict)) = (user, verdict.filter(|v| v.ok && !locked)) else {
            row.first_factor_status = Some("failed".into());
            let account = row.user_id.clone().filter(|_| failures.is_some()).map(|user_id| AccountFailure {
                user_id,
                lock_after: i64::from(MAX_CONSECUTIVE_FAILURES),
                locked_until: now + COOL_DOWN_MS,
            });
            let failed = FailedAttempt { sign_in: row, counters: Vec::new(), account, now };
            let counts = self.store.record_failed_attempt(&failed).await?;
            if counts.account_failures == Some(i64::from(MAX_CONSECUTIVE_FAILURES)) {
                self.mail_lockout_notice(&identifier);
            }
            return Err(ServiceError::password_incorrect());
        };
        self.budgets.attempt_succeeded(&attempt, &identifier).await?;
        let rehashed = if verdict.needs_rehash { Some(self.hasher.hash(password).await?) } else { None };
        self.complete_sign_in(client, row, &user.id, rehashed).await
    }

    /// Tells the owner of a locked account (by mail, which only they read) why their password
    /// stopped working and how to get back in.
    fn mail_lockout_notice(&self, identifier: &str) {
        if !identifier.contains('@') {
            return;
        }
        let app = &self.config.app_name;
        self.send_mail(
            identifier,
            &format!("Password sign-in to your {app} account is paused"),
            format!(
                "Someone entered a wrong password for your {app} account many times, so password sign-in is paused for an hour.\n\n\
                 You can still sign in with a code sent to this address; doing so lifts the pause at once.\n"
            ),
        );
    }

    /// Checks an emailed code of `strategy` (the one prepared), spending the attempt and code
    /// budgets; on success returns the attempt with its code used, not yet stored.
    async fn check_code(
        &self,
        ctx: &RequestContext,
        client: &Client,
        mut row: SignInRow,
        strategy: &str,
        code: &str,
    ) -> Result<SignInRow> {
        let prepared = row.first_factor_strategy.as_deref() == Some(strategy);
        let Some(mut p) = pending(&row.code).filter(|_| prepared) else {
            return Err(ServiceError::bad_request("verification_missing", "Request a code first."));
        };
        let identifier = row.identifier.clone().unwrap_or_default();
        let attempt = self.begin_attempt(ctx, client, &identifier, row.user_id.as_deref()).await?;
        if !attempt.recognized {
            self.budgets.code_budget_left(CodePurpose::SignIn, &[&identifier]).await?;
        }
        let mut outcome = p.attempt(&self.code_key, &row.id, code, self.now());
        if outcome == CodeOutcome::Verified && row.user_id.is_none() {
            // No code was ever sent for an unknown account; nothing can verify it.
            outcome = CodeOutcome::Incorrect { attempts_left: 0 };
        }
        row.code = code_fields(&p);
        row.updated_at = self.now();
        row.version += 1;
        if outcome != CodeOutcome::Verified {
            let counters = match outcome {
                CodeOutcome::Incorrect { .. } | CodeOutcome::TooManyAttempts => {
                    vec![self.budgets.code_failure_counter(CodePurpose::SignIn, &identifier)]
                }
                _ => Vec::new(),
            };
            let now = self.now();
            self.store.record_failed_attempt(&FailedAttempt { sign_in: row, counters, account: None, now }).await?;
            return Err(match outcome {
                CodeOutcome::Incorrect { .. } => ServiceError::code_incorrect(),
                other => code_error(other),
            });
        }
        self.budgets.attempt_succeeded(&attempt, &identifier).await?;
        Ok(row)
    }

    pub(crate) async fn complete_sign_in(
        &self,
        client: &Client,
        row: SignInRow,
        user_id: &str,
        rehashed: Option<String>,
    ) -> Result<Step<SignInRow>> {
        self.finish_sign_in(client, row, user_id, SignInWrites { rehashed, ..SignInWrites::default() }).await
    }

    /// Completes the attempt with a new session; `writes` adds what the same transaction
    /// stores besides (a rehashed or reset password, the events of a reset).
    pub(crate) async fn finish_sign_in(
        &self,
        client: &Client,
        mut row: SignInRow,
        user_id: &str,
        writes: SignInWrites,
    ) -> Result<Step<SignInRow>> {
        let now = self.now();
        let record = self.store.get_user(user_id).await?;
        if let Some(user) = &record {
            self.users.refuse_blocked(&user.user)?;
        }
        row.first_factor_status = Some("verified".into());
        let second_factors = record.as_ref().map(|r| Strategy::available(&r.second_factors)).unwrap_or_default();
        if !writes.second_factor_proved && self.config.second_factors != Policy::Off && !second_factors.is_empty() {
            // The first factor passed; the session waits for the second (docs/second-factors.md).
            row.status = "needs_second_factor".into();
            row.second_factors_supported =
                Some(second_factors.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","));
            let done = CompleteSignIn {
                sign_in: row.clone(),
                session: None,
                user_id: user_id.to_owned(),
                rehashed_password: writes.rehashed,
                password_changed_at: writes.password_changed.then_some(now),
                client_token_digest: String::new(),
                external_account: writes.external_account,
                now,
            };
            self.emitting(writes.events).complete_sign_in(&done).await?;
            return Ok(Step::pending(row));
        }
        let mut session = self.users.new_session(&client.id, user_id);
        if writes.second_factor_proved {
            session.second_factor_verified_at = Some(now);
        } else if let Some(user) = &record {
            session.pending_task = self.users.setup_task(&user.second_factors);
        }
        row.status = "complete".into();
        row.created_session_id = Some(session.id.clone());
        let mut events = vec![self.users.session_event("session.created", &session)];
        events.extend(writes.events);
        let client_token = new_opaque_secret(self.rng.as_ref());
        let done = CompleteSignIn {
            sign_in: row.clone(),
            session: Some(session),
            user_id: user_id.to_owned(),
            rehashed_password: writes.rehashed,
            password_changed_at: writes.password_changed.then_some(now),
            client_token_digest: secret_digest(&client_token),
            external_account: writes.external_account,
            now,
        };
        self.emitting(events).complete_sign_in(&done).await?;
        tracing::info!(user_id, session_id = ?row.created_session_id, "sign-in complete");
        let strategy = row.first_factor_strategy.as_deref().unwrap_or("unknown");
        self.telemetry.count("latchkey_sign_ins_total", &[("strategy", strategy)]);
        Ok(Step { row, new_client_token: Some(client_token) })
    }
}

/// What completing a sign-in writes besides the session, in the same transaction.
#[derive(Default)]
pub(crate) struct SignInWrites {
    /// A new hash of the password: an upgrade of the stored one, or the new password of a reset.
    pub rehashed: Option<String>,
    /// The hash is a new password (a reset): its change time is stamped.
    pub password_changed: bool,
    /// Events besides `session.created` (`user.updated` after a reset).
    pub events: Vec<OutboxEvent>,
    /// The identity provider's account that signed in (added or refreshed).
    pub external_account: Option<latchkey_store::ExternalAccountRow>,
    /// The second factor passed just now: the session starts with it proved.
    pub second_factor_proved: bool,
}
