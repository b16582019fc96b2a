//! Step-up checks of a session ("reverification", `/v1/client/sessions/{id}/verify…`,
//! docs/second-factors.md): the holder proves a first factor (password or an emailed code),
//! a second (authenticator app or backup code), or both, and the session's factor times —
//! its tokens' `fva` — start again. The progress is kept on the session.

use latchkey_core::code::{new_code, CodeOutcome, PendingCode};
use latchkey_core::reverification::Level;
use latchkey_core::second_factor::MAX_SECOND_FACTOR_ATTEMPTS;
use latchkey_store::{SessionRow, SessionVerification, UserRecord};
use serde::{Deserialize, Serialize};

use crate::attempts::{too_many_second_factor_attempts, CodePurpose};
use crate::authority::Client;
use crate::error::{Result, ServiceError};
use crate::second_factors::Strategy;
use crate::{Action, RequestContext, Services};

use super::code_error;
use super::passkey_sign_in::PASSKEY;
use crate::passkeys::{refused, Challenge};

/// One factor's verification within a check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FactorState {
    pub strategy: String,
    pub status: String,
    pub attempts: i64,
    pub expire_at: Option<i64>,
    /// An emailed code's digest (never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_digest: Option<String>,
    /// A passkey's challenge, until an answer spends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    challenge: Option<Challenge>,
}

impl FactorState {
    /// The options of a passkey's challenge (Clerk's `nonce`), while it is out.
    pub fn nonce(&self) -> Option<&str> {
        self.challenge.as_ref().map(|c| c.options.as_str())
    }
}

/// A check in progress, as stored on the session (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    pub level: String,
    /// `needs_first_factor`, `needs_second_factor` or `complete`.
    pub status: String,
    pub first_factor: Option<FactorState>,
    pub second_factor: Option<FactorState>,
}

/// Which factors a step proved (bits), for the session's factor times.
const FIRST: u8 = 1;
const SECOND: u8 = 2;

/// A first factor a check may use.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstFactorOption {
    pub strategy: &'static str,
    pub email_address_id: Option<String>,
    pub safe_identifier: Option<String>,
    pub primary: bool,
}

/// What the Frontend API shows of a check: its progress, the factors the user may use and
/// the session as it is now.
#[derive(Debug, Clone)]
pub struct Reverification {
    pub progress: Progress,
    pub first_factors: Vec<FirstFactorOption>,
    pub second_factors: Vec<Strategy>,
    pub session: SessionRow,
}

fn first_factors_of(user: &UserRecord, passkeys: bool) -> Vec<FirstFactorOption> {
    let mut out = Vec::new();
    if passkeys && user.passkeys.iter().any(|p| p.verified) {
        out.push(FirstFactorOption {
            strategy: PASSKEY,
            email_address_id: None,
            safe_identifier: None,
            primary: false,
        });
    }
    if user.user.password_hash.is_some() {
        out.push(FirstFactorOption {
            strategy: "password",
            email_address_id: None,
            safe_identifier: None,
            primary: false,
        });
    }
    for e in user.emails.iter().filter(|e| e.verified) {
        out.push(FirstFactorOption {
            strategy: "email_code",
            email_address_id: Some(e.id.clone()),
            safe_identifier: Some(e.email.clone()),
            primary: user.user.primary_email_id.as_deref() == Some(e.id.as_str()),
        });
    }
    out
}

fn no_check() -> ServiceError {
    ServiceError::bad_request("session_verification_missing", "Start a verification of this session first.")
}

fn strategy_invalid() -> ServiceError {
    ServiceError::unprocessable("strategy_for_user_invalid", "That strategy is not available for this verification.")
        .param("strategy")
}

impl Services {
    /// The session, its user and the check in progress (if any).
    async fn check_of(&self, client: &Client, session_id: &str) -> Result<(SessionRow, UserRecord, Option<Progress>)> {
        let session = self.active_session_of(client, session_id).await?;
        let user = self.users.user(&session.user_id).await?;
        let progress = session.reverification.as_deref().and_then(|text| serde_json::from_str(text).ok());
        Ok((session, user, progress))
    }

    fn reverification_view(&self, session: SessionRow, user: &UserRecord, progress: Progress) -> Reverification {
        Reverification {
            progress,
            first_factors: first_factors_of(user, self.passkeys.enabled()),
            second_factors: Strategy::available(&user.second_factors),
            session,
        }
    }

    /// Stores the progress, and the factor just proved; 401 when the session ended meanwhile.
    async fn save_progress(
        &self,
        mut session: SessionRow,
        user: &UserRecord,
        progress: Progress,
        proved: Option<u8>,
    ) -> Result<Reverification> {
        let now = self.now();
        let text = serde_json::to_string(&progress).map_err(|_| ServiceError::internal())?;
        let v = SessionVerification {
            session_id: session.id.clone(),
            reverification: Some(text.clone()),
            first_factor_verified_at: proved.is_some_and(|p| p & FIRST != 0).then_some(now),
            second_factor_verified_at: proved.is_some_and(|p| p & SECOND != 0).then_some(now),
            now,
        };
        if !self.store.record_session_verification(&v).await? {
            return Err(ServiceError::unauthenticated("The session is no longer active."));
        }
        session.reverification = Some(text);
        session.first_factor_verified_at = v.first_factor_verified_at.or(session.first_factor_verified_at);
        session.second_factor_verified_at = v.second_factor_verified_at.or(session.second_factor_verified_at);
        session.updated_at = now;
        Ok(self.reverification_view(session, user, progress))
    }

    /// Starts a check at `level`; a user without a second factor proves the first instead,
    /// as Clerk does.
    pub async fn start_reverification(&self, client: &Client, session_id: &str, level: &str) -> Result<Reverification> {
        let level = Level::parse(level).ok_or_else(|| {
            ServiceError::unprocessable(
                "form_param_value_invalid",
                "level must be first_factor, second_factor or multi_factor.",
            )
            .param("level")
        })?;
        let (session, user, _) = self.check_of(client, session_id).await?;
        let has_second = !Strategy::available(&user.second_factors).is_empty();
        let status =
            if level == Level::SecondFactor && has_second { "needs_second_factor" } else { "needs_first_factor" };
        let progress =
            Progress { level: level.as_str().into(), status: status.into(), first_factor: None, second_factor: None };
        self.save_progress(session, &user, progress, None).await
    }

    /// Mails a code for the `email_code` first factor (to one of the user's verified
    /// addresses); the password needs no preparation.
    pub async fn prepare_reverification_first_factor(
        &self,
        ctx: &RequestContext,
        client: &Client,
        session_id: &str,
        strategy: &str,
        email_address_id: Option<&str>,
    ) -> Result<Reverification> {
        self.limit_ip(Action::Verify, ctx).await?;
        let (session, user, progress) = self.check_of(client, session_id).await?;
        let mut progress = progress.filter(|p| p.status == "needs_first_factor").ok_or_else(no_check)?;
        let mut factor =
            FactorState { strategy: strategy.to_owned(), status: "unverified".into(), ..Default::default() };
        match strategy {
            "password" if user.user.password_hash.is_some() => {}
            PASSKEY if first_factors_of(&user, self.passkeys.enabled()).iter().any(|o| o.strategy == PASSKEY) => {
                let challenge = self.passkeys.challenge()?;
                factor.expire_at = Some(challenge.expire_at);
                factor.challenge = Some(challenge);
            }
            "email_code" => {
                let options = first_factors_of(&user, false);
                let chosen = options
                    .iter()
                    .find(|o| {
                        o.strategy == "email_code"
                            && (email_address_id.is_none() || o.email_address_id.as_deref() == email_address_id)
                    })
                    .and_then(|o| o.safe_identifier.clone())
                    .ok_or_else(strategy_invalid)?;
                self.budgets.mail_budget(ctx, Some(&user.user.id), 1).await?;
                self.budgets.code_issued(&chosen).await?;
                let code = new_code(self.rng.as_ref());
                let pending =
                    PendingCode::issue(&self.code_key, &format!("reverify:{}", session.id), &code, self.now());
                factor.code_digest = Some(pending.digest);
                factor.expire_at = Some(pending.expires_at);
                let app = &self.config.app_name;
                self.send_mail(
                    &chosen,
                    &format!("{code} is your {app} verification code"),
                    format!("Your {app} verification code is {code}\n\nIt expires in 10 minutes. If you did not ask to verify your identity, change your password.\n"),
                );
            }
            _ => return Err(strategy_invalid()),
        }
        progress.first_factor = Some(factor);
        self.save_progress(session, &user, progress, None).await
    }

    pub async fn attempt_reverification_first_factor(
        &self,
        ctx: &RequestContext,
        client: &Client,
        session_id: &str,
        strategy: &str,
        secret: &str,
    ) -> Result<Reverification> {
        self.limit_ip(Action::SignIn, ctx).await?;
        let (session, user, progress) = self.check_of(client, session_id).await?;
        let mut progress = progress.filter(|p| p.status == "needs_first_factor").ok_or_else(no_check)?;
        let user_id = user.user.id.clone();
        if strategy == PASSKEY {
            return self.attempt_reverification_passkey(session, user, progress, secret).await;
        }
        let passed = match strategy {
            "password" => {
                let Some(phc) = &user.user.password_hash else { return Err(strategy_invalid()) };
                let attempt = self.budgets.begin_password_check(&user_id).await?;
                let ok = self.hasher.verify(secret, phc).await?.ok;
                if ok {
                    self.budgets.attempt_passed(&attempt).await?;
                }
                progress.first_factor = Some(FactorState {
                    strategy: "password".into(),
                    status: if ok { "verified" } else { "failed" }.into(),
                    ..Default::default()
                });
                if !ok {
                    return Err(ServiceError::password_incorrect());
                }
                true
            }
            "email_code" => {
                let factor = progress
                    .first_factor
                    .as_mut()
                    .filter(|f| f.strategy == "email_code")
                    .ok_or_else(|| ServiceError::bad_request("verification_missing", "Request a code first."))?;
                self.budgets.code_budget_left(CodePurpose::SignIn, &[&user_id]).await?;
                let mut pending = PendingCode {
                    digest: factor.code_digest.clone().unwrap_or_default(),
                    expires_at: factor.expire_at.unwrap_or(0),
                    attempts: u32::try_from(factor.attempts).unwrap_or(u32::MAX),
                    consumed: factor.status == "verified",
                };
                let outcome = pending.attempt(&self.code_key, &format!("reverify:{}", session.id), secret, self.now());
                factor.attempts = i64::from(pending.attempts);
                factor.status = if outcome == CodeOutcome::Verified { "verified" } else { "failed" }.into();
                if outcome != CodeOutcome::Verified {
                    self.budgets.code_failed(CodePurpose::SignIn, &[&user_id]).await?;
                    self.save_progress(session, &user, progress, None).await?;
                    return Err(code_error(outcome));
                }
                true
            }
            _ => return Err(strategy_invalid()),
        };
        let has_second = !Strategy::available(&user.second_factors).is_empty();
        progress.status =
            if passed && progress.level == "multi_factor" && has_second { "needs_second_factor" } else { "complete" }
                .into();
        self.save_progress(session, &user, progress, Some(FIRST)).await
    }

    /// A passkey's answer to the check's challenge (spent before it is checked). With
    /// `satisfies_second_factor` it proves both factors and completes any check.
    async fn attempt_reverification_passkey(
        &self,
        session: SessionRow,
        user: UserRecord,
        mut progress: Progress,
        credential: &str,
    ) -> Result<Reverification> {
        let factor =
            progress.first_factor.as_mut().filter(|f| f.strategy == PASSKEY).ok_or_else(|| {
                ServiceError::bad_request("verification_missing", "Request a passkey challenge first.")
            })?;
        let challenge = factor.challenge.take().ok_or_else(refused)?;
        let spent = progress.clone();
        let session = self.save_progress(session, &user, spent, None).await?.session;
        let outcome = self.passkeys.authenticate(challenge, credential, Some(&user.user.id)).await;
        let verified = outcome.is_ok();
        if let Some(f) = progress.first_factor.as_mut() {
            f.status = if verified { "verified" } else { "failed" }.into();
        }
        if let Err(e) = outcome {
            self.save_progress(session, &user, progress, None).await?;
            return Err(e);
        }
        let both = self.config.passkeys.satisfies_second_factor;
        let has_second = !Strategy::available(&user.second_factors).is_empty();
        progress.status =
            if !both && progress.level == "multi_factor" && has_second { "needs_second_factor" } else { "complete" }
                .into();
        self.save_progress(session, &user, progress, Some(if both { FIRST | SECOND } else { FIRST })).await
    }

    /// Authenticator apps and backup codes need no preparation (nothing is sent): the check
    /// as it stands, for a strategy the user has; the phone code Clerk prepares is not offered.
    pub async fn prepare_reverification_second_factor(
        &self,
        client: &Client,
        session_id: &str,
        strategy: &str,
    ) -> Result<Reverification> {
        let (session, user, progress) = self.check_of(client, session_id).await?;
        let progress = progress.filter(|p| p.status == "needs_second_factor").ok_or_else(no_check)?;
        if !Strategy::parse(strategy).is_some_and(|s| Strategy::available(&user.second_factors).contains(&s)) {
            return Err(strategy_invalid());
        }
        Ok(self.reverification_view(session, &user, progress))
    }

    pub async fn attempt_reverification_second_factor(
        &self,
        ctx: &RequestContext,
        client: &Client,
        session_id: &str,
        strategy: &str,
        code: &str,
    ) -> Result<Reverification> {
        self.limit_ip(Action::SignIn, ctx).await?;
        let (session, user, progress) = self.check_of(client, session_id).await?;
        let mut progress = progress.filter(|p| p.status == "needs_second_factor").ok_or_else(no_check)?;
        let strategy = Strategy::parse(strategy)
            .filter(|s| Strategy::available(&user.second_factors).contains(s))
            .ok_or_else(strategy_invalid)?;
        let user_id = user.user.id.clone();
        self.limit_account(&user_id).await?;
        // Counted per session, not per check: starting the check again gives no fresh tries.
        let scope = format!("session:{}", session.id);
        let tries = self.budgets.second_factor_try(&scope, &user_id).await?;
        let ok = self.factors.check(&user, strategy, code).await?;
        progress.second_factor = Some(FactorState {
            strategy: strategy.as_str().into(),
            status: if ok { "verified" } else { "failed" }.into(),
            attempts: if ok { tries - 1 } else { tries },
            ..Default::default()
        });
        if !ok {
            self.save_progress(session, &user, progress, None).await?;
            return Err(if tries < MAX_SECOND_FACTOR_ATTEMPTS {
                ServiceError::code_incorrect()
            } else {
                too_many_second_factor_attempts()
            });
        }
        self.budgets.second_factor_passed(&scope, &user_id).await?;
        progress.status = "complete".into();
        self.save_progress(session, &user, progress, Some(SECOND)).await
    }
}
