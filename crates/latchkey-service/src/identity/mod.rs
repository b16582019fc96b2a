//! Clients, sign-ups, sign-ins, sessions and session tokens: Clerk's Frontend API state
//! machines, with enumeration protection and failure lockout.

use latchkey_core::code::{new_code, CodeOutcome, PendingCode};
use latchkey_core::email::normalize_email;
use latchkey_core::ids::{keyed_id, IdKind};
use latchkey_core::lockout::{FailureState, COOL_DOWN_MS, MAX_CONSECUTIVE_FAILURES};
use latchkey_core::password::{check_new_password, PasswordProblem};
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_core::session::{SessionStatus, DAY_MS};
use latchkey_core::username::{normalize_username, UsernameProblem};
use latchkey_store::{
    AccountFailure, ClientRow, CodeFields, CompleteSignIn, CompleteSignUp, EmailRow, FailedAttempt, SessionRow,
    SignInRow, SignUpRow, StoreError, UserRecord, UserRow,
};
use latchkey_token::{SessionClaims, SESSION_TOKEN_CAT};

use crate::attempts::CodePurpose;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::{Action, RequestContext, Services};

const ATTEMPT_LIFETIME_MS: i64 = DAY_MS;

#[derive(Debug, Clone, Default)]
pub struct SignUpInput {
    pub email_address: Option<String>,
    pub password: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub unsafe_metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default)]
pub struct SignInInput {
    pub identifier: Option<String>,
    pub strategy: Option<String>,
    pub password: Option<String>,
}

/// A step of a sign-in or sign-up. When it completed the attempt, the client's token was
/// replaced (session fixation: docs/SECURITY.md), and the new token must reach the caller.
#[derive(Debug, Clone)]
pub struct Step<T> {
    pub row: T,
    pub new_client_token: Option<String>,
}

impl<T> Step<T> {
    fn pending(row: T) -> Self {
        Self { row, new_client_token: None }
    }
}

/// A client as the Frontend API shows it: its live sessions with their users, and the
/// current sign-in and sign-up attempts.
#[derive(Debug, Clone)]
pub struct ClientView {
    pub client: ClientRow,
    pub sessions: Vec<(SessionRow, UserRecord)>,
    pub sign_in: Option<SignInRow>,
    pub sign_up: Option<SignUpRow>,
}

pub(crate) fn code_fields(p: &PendingCode) -> CodeFields {
    CodeFields {
        digest: Some(p.digest.clone()),
        expires_at: Some(p.expires_at),
        attempts: i64::from(p.attempts),
        consumed: p.consumed,
    }
}

pub(crate) fn pending(c: &CodeFields) -> Option<PendingCode> {
    Some(PendingCode {
        digest: c.digest.clone()?,
        expires_at: c.expires_at?,
        attempts: u32::try_from(c.attempts).unwrap_or(u32::MAX),
        consumed: c.consumed,
    })
}

fn name_field(value: Option<String>, param: &'static str) -> Result<Option<String>> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if v.chars().count() > 256 => {
            Err(ServiceError::unprocessable("form_param_exceeds_allowed_size", format!("{param} is too long"))
                .param(param))
        }
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub(crate) fn password_error(problem: PasswordProblem) -> ServiceError {
    match problem {
        PasswordProblem::TooShort => {
            ServiceError::unprocessable("form_password_length_too_short", "Passwords must be 8 characters or more.")
                .param("password")
        }
        PasswordProblem::TooLong => {
            ServiceError::unprocessable("form_password_length_too_long", "Passwords must be 256 characters or fewer.")
                .param("password")
        }
        PasswordProblem::Common => ServiceError::unprocessable(
            "form_password_pwned",
            "This password is among the most common passwords. Please choose another.",
        )
        .param("password"),
    }
}

pub(crate) fn email_param(value: &str, param: &'static str) -> Result<String> {
    normalize_email(value).ok_or_else(|| {
        ServiceError::unprocessable("form_param_format_invalid", "Enter a valid email address.").param(param)
    })
}

pub(crate) fn username_param(value: &str) -> Result<String> {
    normalize_username(value).map_err(|p| match p {
        UsernameProblem::Length => ServiceError::unprocessable(
            "form_username_invalid_length",
            "Usernames must be between 4 and 64 characters long.",
        )
        .param("username"),
        UsernameProblem::Characters => ServiceError::unprocessable(
            "form_username_invalid_character",
            "Usernames may contain only letters, digits, '_' and '-'.",
        )
        .param("username"),
    })
}

pub(crate) fn code_error(outcome: CodeOutcome) -> ServiceError {
    match outcome {
        CodeOutcome::Incorrect { attempts_left } => {
            ServiceError::code_incorrect().meta("attempts_remaining", attempts_left.into())
        }
        CodeOutcome::Expired => {
            ServiceError::unprocessable("verification_expired", "This verification has expired. Request a new code.")
                .param("code")
        }
        CodeOutcome::TooManyAttempts => ServiceError::new(
            ErrorKind::Forbidden,
            "verification_failed",
            "Too many failed attempts. Request a new code.",
        )
        .param("code"),
        CodeOutcome::AlreadyUsed => {
            ServiceError::bad_request("verification_already_verified", "This code has already been used.")
        }
        CodeOutcome::Verified => ServiceError::internal(),
    }
}

impl Services {
    // ---- clients -------------------------------------------------------------------------

    /// The client a cookie or bearer token names, if it exists.
    pub async fn client_by_token(&self, token: &str) -> Result<Option<ClientRow>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(self.store.client_by_token_digest(&secret_digest(token)).await?)
    }

    /// A new client for a browser or device seen for the first time, within its address's
    /// hourly budget of new clients (clients are stored).
    pub async fn new_client_for(&self, ctx: &RequestContext) -> Result<(ClientRow, String)> {
        self.client_budget(ctx).await?;
        self.new_client().await
    }

    /// A new client and the opaque token that identifies it (shown once, stored hashed).
    pub(crate) async fn new_client(&self) -> Result<(ClientRow, String)> {
        let token = new_opaque_secret(self.rng.as_ref());
        let now = self.now();
        let client = ClientRow {
            id: self.new_id(IdKind::Client),
            token_digest: secret_digest(&token),
            sign_in_id: None,
            sign_up_id: None,
            last_active_session_id: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_client(&client).await?;
        Ok((client, token))
    }

    pub fn session_is_active(&self, s: &SessionRow) -> bool {
        let status = SessionStatus::parse(&s.status).unwrap_or(SessionStatus::Ended);
        self.config.session.effective_status(status, s.expire_at, s.last_active_at, self.now()) == SessionStatus::Active
    }

    /// The status a session shows now (an active session past its deadline shows `expired`).
    pub fn session_status(&self, s: &SessionRow) -> &'static str {
        let status = SessionStatus::parse(&s.status).unwrap_or(SessionStatus::Ended);
        self.config.session.effective_status(status, s.expire_at, s.last_active_at, self.now()).as_str()
    }

    pub async fn client_view(&self, client: &ClientRow) -> Result<ClientView> {
        let mut sessions = Vec::new();
        for s in self.store.sessions_for_client(&client.id).await? {
            if !self.session_is_active(&s) {
                continue;
            }
            if let Some(user) = self.store.get_user(&s.user_id).await? {
                sessions.push((s, user));
            }
        }
        let sign_in = match &client.sign_in_id {
            Some(id) => self.store.get_sign_in(id).await?,
            None => None,
        };
        let sign_up = match &client.sign_up_id {
            Some(id) => self.store.get_sign_up(id).await?,
            None => None,
        };
        Ok(ClientView { client: client.clone(), sessions, sign_in, sign_up })
    }

    pub(crate) async fn refuse_if_signed_in(&self, client: &ClientRow) -> Result<()> {
        // In single-session mode (as Clerk's environment announces) a client with no last active
        // session has no active session at all: nothing to look up.
        if client.last_active_session_id.is_none() {
            return Ok(());
        }
        let active = self.store.sessions_for_client(&client.id).await?.iter().any(|s| self.session_is_active(s));
        if active {
            return Err(ServiceError::bad_request("session_exists", "You're already signed in."));
        }
        Ok(())
    }

    pub(crate) fn new_session(&self, client_id: &str, user_id: &str) -> SessionRow {
        let now = self.now();
        SessionRow {
            id: self.new_id(IdKind::Session),
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            status: SessionStatus::Active.as_str().to_owned(),
            active_org_id: None,
            created_at: now,
            updated_at: now,
            last_active_at: now,
            expire_at: self.config.session.expire_at(now),
            abandon_at: self.config.session.abandon_at(now),
        }
    }

    // ---- sign-up ---------------------------------------------------------------------------

    pub async fn create_sign_up(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        input: SignUpInput,
    ) -> Result<SignUpRow> {
        self.limit_ip(Action::SignUp, ctx)?;
        self.refuse_if_signed_in(client).await?;
        let now = self.now();
        let mut row = SignUpRow {
            id: self.new_id(IdKind::SignUp),
            client_id: client.id.clone(),
            status: "missing_requirements".into(),
            email: None,
            email_taken: false,
            email_verified: false,
            username: None,
            first_name: None,
            last_name: None,
            password_hash: None,
            unsafe_metadata: "{}".into(),
            code: CodeFields::default(),
            created_user_id: None,
            created_session_id: None,
            created_at: now,
            updated_at: now,
            abandon_at: now + ATTEMPT_LIFETIME_MS,
            version: 1,
        };
        self.apply_sign_up_input(&mut row, input).await?;
        if let Some(email) = row.email.clone() {
            self.sign_up_code_allowed(ctx, &email).await?;
        }
        let code = row.email.is_some().then(|| self.issue_sign_up_code(&mut row));
        self.store.insert_sign_up(&row).await?;
        if let Some(code) = code {
            self.mail_sign_up_code(&row, &code);
        }
        Ok(row)
    }

    pub async fn update_sign_up(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        id: &str,
        input: SignUpInput,
    ) -> Result<Step<SignUpRow>> {
        self.limit_ip(Action::SignUp, ctx)?;
        let mut row = self.sign_up_of(client, id).await?;
        if row.status == "complete" {
            return Err(ServiceError::bad_request("sign_up_already_complete", "This sign-up is already complete."));
        }
        let email_before = row.email.clone();
        self.apply_sign_up_input(&mut row, input).await?;
        let email_changed = row.email != email_before && row.email.is_some();
        if email_changed {
            row.email_verified = false;
            if let Some(email) = row.email.clone() {
                self.sign_up_code_allowed(ctx, &email).await?;
            }
        }
        let code = email_changed.then(|| self.issue_sign_up_code(&mut row));
        row.updated_at = self.now();
        row.version += 1;
        self.store.update_sign_up(&row).await?;
        if let Some(code) = code {
            self.mail_sign_up_code(&row, &code);
        }
        // A verified sign-up that only lacked fields may be complete now.
        if row.email_verified && row.password_hash.is_some() {
            return self.finish_sign_up(client, row).await;
        }
        Ok(Step::pending(row))
    }

    /// A sign-up code may be mailed to `email`: within the address's hourly code budget and
    /// the caller's mail budget.
    async fn sign_up_code_allowed(&self, ctx: &RequestContext, email: &str) -> Result<()> {
        self.mail_budget(ctx, None, 1).await?;
        self.code_issued(email).await
    }

    async fn apply_sign_up_input(&self, row: &mut SignUpRow, input: SignUpInput) -> Result<()> {
        if let Some(email) = input.email_address.as_deref() {
            let email = email_param(email, "email_address")?;
            row.email_taken = self.store.user_id_by_verified_email(&email).await?.is_some();
            row.email = Some(email);
        }
        if let Some(username) = input.username.as_deref().filter(|u| !u.trim().is_empty()) {
            let username = username_param(username)?;
            if self.store.user_id_by_username(&username).await?.is_some() {
                return Err(ServiceError::identifier_exists("username"));
            }
            row.username = Some(username);
        }
        if let Some(v) = name_field(input.first_name, "first_name")? {
            row.first_name = Some(v);
        }
        if let Some(v) = name_field(input.last_name, "last_name")? {
            row.last_name = Some(v);
        }
        if let Some(meta) = input.unsafe_metadata {
            // The Backend API's rules: an object of at most 8 KiB.
            row.unsafe_metadata = crate::admin::metadata_param(&meta, "unsafe_metadata")?;
        }
        if let Some(password) = input.password {
            check_new_password(&password).map_err(password_error)?;
            // Hashed here, before any write transaction opens.
            row.password_hash = Some(self.hasher.hash(&password).await?);
        }
        Ok(())
    }

    fn issue_sign_up_code(&self, row: &mut SignUpRow) -> String {
        let code = new_code(self.rng.as_ref());
        let p = PendingCode::issue(&self.code_key, &row.id, &code, self.now());
        row.code = code_fields(&p);
        code
    }

    /// Mails the plain code, which is never stored or logged.
    fn mail_sign_up_code(&self, row: &SignUpRow, code: &str) {
        let Some(email) = row.email.as_deref() else {
            return;
        };
        let app = &self.config.app_name;
        let text = if row.email_taken {
            format!(
                "Someone (hopefully you) tried to create a {app} account with this address, but an account \
                 already exists for it. If this was you, sign in instead, or reset your password.\n\n\
                 To confirm this address anyway, the code is {code}. It expires in 10 minutes.\n"
            )
        } else {
            format!("Your {app} verification code is {code}\n\nIt expires in 10 minutes. If you did not ask for it, ignore this message.\n")
        };
        self.send_mail(email, &format!("{code} is your {app} verification code"), text);
    }

    /// A sign-up of this client (another client's is reported as not found).
    pub async fn sign_up_of(&self, client: &ClientRow, id: &str) -> Result<SignUpRow> {
        match self.store.get_sign_up(id).await? {
            Some(row) if row.client_id == client.id => Ok(row),
            _ => Err(ServiceError::not_found("Sign-up")),
        }
    }

    pub async fn prepare_sign_up_verification(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        id: &str,
        strategy: &str,
    ) -> Result<SignUpRow> {
        self.limit_ip(Action::Verify, ctx)?;
        if strategy != "email_code" {
            return Err(ServiceError::unprocessable(
                "strategy_for_user_invalid",
                "Only email_code verification is available",
            )
            .param("strategy"));
        }
        let mut row = self.sign_up_of(client, id).await?;
        if row.status == "complete" || row.email_verified {
            return Err(ServiceError::already_verified());
        }
        let Some(email) = row.email.clone() else {
            return Err(ServiceError::unprocessable("form_param_missing", "Enter an email address first.")
                .param("email_address"));
        };
        self.sign_up_code_allowed(ctx, &email).await?;
        let code = self.issue_sign_up_code(&mut row);
        row.updated_at = self.now();
        row.version += 1;
        self.store.update_sign_up(&row).await?;
        self.mail_sign_up_code(&row, &code);
        Ok(row)
    }

    pub async fn attempt_sign_up_verification(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        id: &str,
        code: &str,
    ) -> Result<Step<SignUpRow>> {
        self.limit_ip(Action::Verify, ctx)?;
        let mut row = self.sign_up_of(client, id).await?;
        if row.status == "complete" || row.email_verified {
            return Err(ServiceError::already_verified());
        }
        let Some(mut p) = pending(&row.code) else {
            return Err(ServiceError::bad_request("verification_missing", "Request a verification code first."));
        };
        let address = row.email.clone().unwrap_or_default();
        self.code_budget_left(CodePurpose::SignUp, &[&address]).await?;
        let outcome = p.attempt(&self.code_key, &row.id, code, self.now());
        row.code = code_fields(&p);
        row.updated_at = self.now();
        if outcome != CodeOutcome::Verified {
            if matches!(outcome, CodeOutcome::Incorrect { .. } | CodeOutcome::TooManyAttempts) {
                row.version += 1;
                self.store.update_sign_up(&row).await?;
                self.code_failed(CodePurpose::SignUp, &[&address]).await?;
            }
            return Err(code_error(outcome));
        }
        row.email_verified = true;
        if row.email_taken || row.password_hash.is_none() {
            row.version += 1;
            self.store.update_sign_up(&row).await?;
            if row.email_taken {
                // The caller proved the address, so telling them it is taken reveals nothing new.
                return Err(ServiceError::identifier_exists("email_address"));
            }
            return Ok(Step::pending(row));
        }
        // `finish_sign_up` writes the consumed code together with the new account.
        self.finish_sign_up(client, row).await
    }

    /// Creates the user and the first session; exactly one of two racing sign-ups with the
    /// same address wins (the unique index decides), the other gets `form_identifier_exists`.
    async fn finish_sign_up(&self, client: &ClientRow, mut row: SignUpRow) -> Result<Step<SignUpRow>> {
        let now = self.now();
        let Some(email) = row.email.clone() else {
            return Ok(Step::pending(row));
        };
        let user_id = self.new_id(IdKind::User);
        let email_row = EmailRow {
            id: self.new_id(IdKind::Identification),
            user_id: user_id.clone(),
            email: email.clone(),
            verified: true,
            verified_at: Some(now),
            code: CodeFields::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let user = UserRow {
            id: user_id.clone(),
            username: row.username.clone(),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            password_hash: row.password_hash.clone(),
            primary_email_id: Some(email_row.id.clone()),
            primary_phone_id: None,
            unsafe_metadata: row.unsafe_metadata.clone(),
            last_sign_in_at: Some(now),
            last_active_at: Some(now),
            password_updated_at: Some(now),
            public_metadata: self.invited_metadata(&email).await?,
            ..UserRow::new(user_id.clone(), now)
        };
        let session = self.new_session(&client.id, &user_id);
        let mut done_row = row.clone();
        done_row.status = "complete".into();
        done_row.created_user_id = Some(user_id.clone());
        done_row.created_session_id = Some(session.id.clone());
        done_row.password_hash = None;
        done_row.version = row.version + 1;
        let events = vec![
            self.user_event(
                "user.created",
                &UserRecord { user: user.clone(), emails: vec![email_row.clone()], phones: vec![] },
            ),
            self.session_event("session.created", &session),
        ];
        let client_token = new_opaque_secret(self.rng.as_ref());
        let done = CompleteSignUp {
            sign_up: done_row.clone(),
            user,
            email: email_row,
            session,
            client_token_digest: secret_digest(&client_token),
        };
        match self.emitting(events).complete_sign_up(&done).await {
            Ok(()) => {
                // The account exists now: what follows must not turn its creation into an error.
                if let Err(e) = self.accept_invitations(&email).await {
                    tracing::warn!(user_id, code = e.code, "invitations not marked accepted");
                }
                self.accept_invitations_at_sign_up(&user_id).await;
                Ok(Step { row: done_row, new_client_token: Some(client_token) })
            }
            Err(e @ StoreError::Conflict(_)) => {
                let field = if e.is_conflict_on("username") { "username" } else { "email_address" };
                row.email_taken = field == "email_address";
                row.version += 1;
                self.store.update_sign_up(&row).await?;
                Err(ServiceError::identifier_exists(field))
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- sign-in ---------------------------------------------------------------------------

    pub async fn create_sign_in(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        input: SignInInput,
    ) -> Result<Step<SignInRow>> {
        self.limit_ip(Action::SignIn, ctx)?;
        self.refuse_if_signed_in(client).await?;
        let identifier = input.identifier.as_deref().map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
            ServiceError::unprocessable("form_param_missing", "Enter an email address or username.").param("identifier")
        })?;
        if identifier.chars().count() > 256 {
            return Err(
                ServiceError::unprocessable("form_param_format_invalid", "Identifier is too long").param("identifier")
            );
        }
        self.limit_identifier(identifier)?;
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
        let now = self.now();
        let row = SignInRow {
            id: self.new_id(IdKind::SignIn),
            client_id: client.id.clone(),
            status: "needs_first_factor".into(),
            identifier: Some(identifier),
            user_id,
            email_address_id: email_id,
            first_factor_strategy: None,
            first_factor_status: None,
            code: CodeFields::default(),
            created_session_id: None,
            created_at: now,
            updated_at: now,
            abandon_at: now + ATTEMPT_LIFETIME_MS,
            version: 1,
        };
        self.store.insert_sign_in(&row).await?;
        if input.strategy.as_deref() == Some("password") || (input.strategy.is_none() && input.password.is_some()) {
            if let Some(password) = input.password {
                return self.attempt_password(ctx, client, row, &password).await;
            }
        }
        Ok(Step::pending(row))
    }

    /// A sign-in of this client (another client's is reported as not found).
    pub async fn sign_in_of(&self, client: &ClientRow, id: &str) -> Result<SignInRow> {
        match self.store.get_sign_in(id).await? {
            Some(row) if row.client_id == client.id => Ok(row),
            _ => Err(ServiceError::not_found("Sign-in")),
        }
    }

    pub async fn prepare_first_factor(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        id: &str,
        strategy: &str,
    ) -> Result<SignInRow> {
        self.limit_ip(Action::Verify, ctx)?;
        let mut row = self.sign_in_of(client, id).await?;
        if row.status == "complete" {
            return Err(ServiceError::bad_request("sign_in_already_complete", "This sign-in is already complete."));
        }
        match strategy {
            "password" => {}
            "email_code" if row.email_address_id.is_some() => {
                // Counted alike for addresses with and without an account.
                let address = row.identifier.clone().unwrap_or_default();
                self.mail_budget(ctx, None, 1).await?;
                self.code_issued(&address).await?;
                let code = new_code(self.rng.as_ref());
                let p = PendingCode::issue(&self.code_key, &row.id, &code, self.now());
                row.code = code_fields(&p);
                if row.user_id.is_some() {
                    if let Some(email) = row.identifier.clone() {
                        let app = &self.config.app_name;
                        self.send_mail(
                            &email,
                            &format!("{code} is your {app} sign-in code"),
                            format!("Your {app} sign-in code is {code}\n\nIt expires in 10 minutes. If you did not try to sign in, ignore this message.\n"),
                        );
                    }
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
        client: &ClientRow,
        id: &str,
        strategy: &str,
        secret: &str,
    ) -> Result<Step<SignInRow>> {
        self.limit_ip(Action::SignIn, ctx)?;
        let row = self.sign_in_of(client, id).await?;
        if row.status == "complete" {
            return Err(ServiceError::bad_request("sign_in_already_complete", "This sign-in is already complete."));
        }
        match strategy {
            "password" => {
                if let Some(identifier) = &row.identifier {
                    self.limit_identifier(identifier)?;
                }
                self.attempt_password(ctx, client, row, secret).await
            }
            "email_code" => self.attempt_code(ctx, client, row, secret).await,
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
        client: &ClientRow,
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
        self.attempt_succeeded(&attempt, &identifier).await?;
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

    async fn attempt_code(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        mut row: SignInRow,
        code: &str,
    ) -> Result<Step<SignInRow>> {
        let Some(mut p) = pending(&row.code) else {
            return Err(ServiceError::bad_request("verification_missing", "Request a sign-in code first."));
        };
        let identifier = row.identifier.clone().unwrap_or_default();
        let attempt = self.begin_attempt(ctx, client, &identifier, row.user_id.as_deref()).await?;
        if !attempt.recognized {
            self.code_budget_left(CodePurpose::SignIn, &[&identifier]).await?;
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
                    vec![self.code_failure_counter(CodePurpose::SignIn, &identifier)]
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
        self.attempt_succeeded(&attempt, &identifier).await?;
        let uid = row.user_id.clone().unwrap_or_default();
        self.complete_sign_in(client, row, &uid, None).await
    }

    pub(crate) async fn complete_sign_in(
        &self,
        client: &ClientRow,
        mut row: SignInRow,
        user_id: &str,
        rehashed: Option<String>,
    ) -> Result<Step<SignInRow>> {
        let now = self.now();
        if let Some(user) = self.store.get_user_row(user_id).await? {
            self.refuse_blocked(&user)?;
        }
        let session = self.new_session(&client.id, user_id);
        row.status = "complete".into();
        row.first_factor_status = Some("verified".into());
        row.created_session_id = Some(session.id.clone());
        let event = self.session_event("session.created", &session);
        let client_token = new_opaque_secret(self.rng.as_ref());
        let done = CompleteSignIn {
            sign_in: row.clone(),
            session,
            user_id: user_id.to_owned(),
            rehashed_password: rehashed,
            client_token_digest: secret_digest(&client_token),
            now,
        };
        self.emitting(vec![event]).complete_sign_in(&done).await?;
        tracing::info!(user_id, session_id = ?row.created_session_id, "sign-in complete");
        Ok(Step { row, new_client_token: Some(client_token) })
    }

    // ---- sessions and tokens ------------------------------------------------------------------

    /// A session of this client that is still active.
    pub async fn active_session_of(&self, client: &ClientRow, session_id: &str) -> Result<SessionRow> {
        match self.store.get_session(session_id).await? {
            Some(s) if s.client_id == client.id && self.session_is_active(&s) => Ok(s),
            Some(s) if s.client_id == client.id => {
                Err(ServiceError::unauthenticated("The session is no longer active.")
                    .long("The session has ended, expired or been revoked. Sign in again."))
            }
            _ => Err(ServiceError::not_found("Session")),
        }
    }

    /// Mints a fresh session token; `last_active_at` is refreshed at most once a minute.
    pub async fn session_token(&self, ctx: &RequestContext, client: &ClientRow, session_id: &str) -> Result<String> {
        let mut session = self.active_session_of(client, session_id).await?;
        let now = self.now();
        if now - session.last_active_at > 60_000 {
            session.last_active_at = now;
            session.updated_at = now;
            self.store.update_session(&session).await?;
        }
        self.sign_session_token(ctx, &session).await
    }

    pub async fn sign_session_token(&self, ctx: &RequestContext, session: &SessionRow) -> Result<String> {
        self.sign_session_token_ttl(ctx, session, self.config.token_ttl_secs).await
    }

    pub async fn sign_session_token_ttl(
        &self,
        ctx: &RequestContext,
        session: &SessionRow,
        ttl_secs: i64,
    ) -> Result<String> {
        self.sign_token_for(ctx, session, session.active_org_id.as_deref(), ttl_secs).await
    }

    /// A session token for `org_id` instead of the session's active organization (the
    /// Frontend API's `organization_id` on `/tokens`); the caller must be a member.
    pub async fn session_token_for_org(
        &self,
        ctx: &RequestContext,
        client: &ClientRow,
        session_id: &str,
        org_id: Option<&str>,
    ) -> Result<String> {
        let session = self.active_session_of(client, session_id).await?;
        let org = match org_id {
            Some(id) => {
                Some(self.org_actor(&session.user_id, id).await.map_err(|e| e.param("organization_id"))?.org.id)
            }
            None => None,
        };
        self.sign_token_for(ctx, &session, org.as_deref(), self.config.token_ttl_secs).await
    }

    async fn sign_token_for(
        &self,
        ctx: &RequestContext,
        session: &SessionRow,
        org_id: Option<&str>,
        ttl_secs: i64,
    ) -> Result<String> {
        let (o, fea) = match self.org_claims(session, org_id).await? {
            Some((claim, fea)) => (Some(claim), (!fea.is_empty()).then_some(fea)),
            None => (None, None),
        };
        let now_s = self.clock.now_secs();
        let minutes_since_sign_in = (self.now() - session.created_at).max(0) / 60_000;
        let claims = SessionClaims {
            sub: session.user_id.clone(),
            sid: session.id.clone(),
            iss: self.config.issuer.clone(),
            azp: ctx.origin.clone(),
            exp: now_s + ttl_secs,
            iat: now_s,
            nbf: now_s - 10,
            v: 2,
            fva: [minutes_since_sign_in, -1],
            sts: "active".into(),
            o,
            fea,
        };
        let key = self.keys.signing_key().await?;
        key.sign(&claims, Some(SESSION_TOKEN_CAT)).map_err(|_| ServiceError::internal())
    }

    /// Touches a session; `active_org` is `Some(None)` to select the personal account.
    pub async fn touch_session(
        &self,
        client: &ClientRow,
        session_id: &str,
        active_org: Option<Option<String>>,
    ) -> Result<SessionRow> {
        let mut session = self.active_session_of(client, session_id).await?;
        if let Some(choice) = active_org {
            // Only an organization the user belongs to can become active (by id or slug).
            session.active_org_id = match choice {
                Some(org) => Some(
                    self.org_actor(&session.user_id, &org).await.map_err(|e| e.param("active_organization_id"))?.org.id,
                ),
                None => None,
            };
        }
        let now = self.now();
        session.last_active_at = now;
        session.updated_at = now;
        self.store.update_session(&session).await?;
        let mut client = client.clone();
        if client.last_active_session_id.as_deref() != Some(session_id) {
            client.last_active_session_id = Some(session_id.to_owned());
            self.store.update_client(&client).await?;
        }
        Ok(session)
    }

    /// Ends one session of this client (`ended` for sign-out, `removed` for remove).
    pub async fn end_session(&self, client: &ClientRow, session_id: &str, status: SessionStatus) -> Result<SessionRow> {
        let mut session = match self.store.get_session(session_id).await? {
            Some(s) if s.client_id == client.id => s,
            _ => return Err(ServiceError::not_found("Session")),
        };
        let now = self.now();
        if session.status == "active" {
            session.status = status.as_str().to_owned();
            session.updated_at = now;
            let event = self.session_event(&format!("session.{}", status.as_str()), &session);
            self.emitting(vec![event]).update_session(&session).await?;
        }
        let mut client = client.clone();
        if client.last_active_session_id.as_deref() == Some(session_id) {
            client.last_active_session_id = None;
        }
        client.updated_at = now;
        self.store.update_client(&client).await?;
        Ok(session)
    }

    /// Signs the client out of every session; the client itself (and its cookie) remain.
    pub async fn sign_out_client(&self, client: &ClientRow) -> Result<ClientRow> {
        let now = self.now();
        let events = self
            .store
            .sessions_for_client(&client.id)
            .await?
            .into_iter()
            .filter(|s| s.status == "active")
            .map(|mut s| {
                s.status = SessionStatus::Ended.as_str().to_owned();
                s.updated_at = now;
                self.session_event("session.ended", &s)
            })
            .collect();
        self.emitting(events).end_client_sessions(&client.id, SessionStatus::Ended.as_str(), now).await?;
        let mut client = client.clone();
        client.last_active_session_id = None;
        client.sign_in_id = None;
        client.sign_up_id = None;
        client.updated_at = now;
        self.store.update_client(&client).await?;
        Ok(client)
    }
}
