//! Sign-ups: the attempt, its email code, and the account with its first session once the
//! address is proven.

use latchkey_core::code::{new_code, CodeOutcome, PendingCode};
use latchkey_core::ids::IdKind;
use latchkey_core::password::check_new_password;
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_store::{CodeFields, CompleteSignUp, SignUpRow, StoreError, UserRecord, UserRow};

use crate::attempts::CodePurpose;
use crate::authority::Client;
use crate::error::{Result, ServiceError};
use crate::{Action, RequestContext, Services};

use super::{
    code_error, code_fields, code_just_mailed, email_param, name_field, password_error, pending, username_param,
    SignUpInput, Step, ATTEMPT_LIFETIME_MS,
};

impl Services {
    pub async fn create_sign_up(&self, ctx: &RequestContext, client: &Client, input: SignUpInput) -> Result<SignUpRow> {
        self.limit_ip(Action::SignUp, ctx).await?;
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
            external_profile: None,
            code: CodeFields::default(),
            created_user_id: None,
            created_session_id: None,
            created_at: now,
            updated_at: now,
            abandon_at: now + ATTEMPT_LIFETIME_MS,
            version: 1,
            link_redirect_url: None,
            link_verified_client: None,
        };
        self.apply_sign_up_input(&mut row, input).await?;
        let mail_code = row.email.is_some() && self.mails_code_at_once();
        if let (Some(email), true) = (row.email.clone(), mail_code) {
            self.sign_up_code_allowed(ctx, &email).await?;
        }
        let code = mail_code.then(|| self.issue_sign_up_code(&mut row));
        self.store.insert_sign_up(&row).await?;
        if let Some(code) = code {
            self.mail_sign_up_code(&row, &code);
        }
        Ok(row)
    }

    pub async fn update_sign_up(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        input: SignUpInput,
    ) -> Result<Step<SignUpRow>> {
        self.limit_ip(Action::SignUp, ctx).await?;
        let mut row = self.sign_up_of(client, id).await?;
        if row.status == "complete" {
            return Err(ServiceError::bad_request("sign_up_already_complete", "This sign-up is already complete."));
        }
        let email_before = row.email.clone();
        self.apply_sign_up_input(&mut row, input).await?;
        let email_changed = row.email != email_before && row.email.is_some();
        if email_changed {
            row.email_verified = false;
            row.code = CodeFields::default();
        }
        let mail_code = email_changed && self.mails_code_at_once();
        if let (Some(email), true) = (row.email.clone(), mail_code) {
            self.sign_up_code_allowed(ctx, &email).await?;
        }
        let code = mail_code.then(|| self.issue_sign_up_code(&mut row));
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

    /// Whether a new address gets its code at once. Not when sign-ups prove their address with
    /// a link (`[email_links] sign_up`): the link comes when the app asks for it
    /// (`prepare_verification`), and a code mailed first would only confuse.
    fn mails_code_at_once(&self) -> bool {
        !self.config.email_links.sign_up
    }

    /// A sign-up code may be mailed to `email`: within the address's hourly code budget and
    /// the caller's mail budget.
    pub(super) async fn sign_up_code_allowed(&self, ctx: &RequestContext, email: &str) -> Result<()> {
        self.budgets.mail_budget(ctx, None, 1).await?;
        self.budgets.code_issued(email).await
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
            row.unsafe_metadata = crate::params::metadata_param(&meta, "unsafe_metadata")?;
        }
        if let Some(password) = input.password {
            check_new_password(&password).map_err(password_error)?;
            // Hashed here, before any write transaction opens.
            row.password_hash = Some(self.hasher.hash(&password).await?);
        }
        Ok(())
    }

    pub(super) fn issue_sign_up_code(&self, row: &mut SignUpRow) -> String {
        let code = new_code(self.rng.as_ref());
        let p = PendingCode::issue(&self.code_key, &row.id, &code, self.now());
        row.code = code_fields(&p);
        code
    }

    /// Mails the plain code, which is never stored or logged.
    pub(super) fn mail_sign_up_code(&self, row: &SignUpRow, code: &str) {
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
    pub async fn sign_up_of(&self, client: &Client, id: &str) -> Result<SignUpRow> {
        match self.store.get_sign_up(id).await? {
            Some(row) if row.client_id == client.id => Ok(row),
            _ => Err(ServiceError::not_found("Sign-up")),
        }
    }

    /// A sign-up of this client with an address still to prove, and that address, once the
    /// budgets allow another code or link for it (shared by codes and email links).
    pub(super) async fn sign_up_address_to_prove(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
    ) -> Result<(SignUpRow, String)> {
        let row = self.sign_up_of(client, id).await?;
        if row.status == "complete" || row.email_verified {
            return Err(ServiceError::already_verified());
        }
        let Some(email) = row.email.clone() else {
            return Err(ServiceError::unprocessable("form_param_missing", "Enter an email address first.")
                .param("email_address"));
        };
        self.sign_up_code_allowed(ctx, &email).await?;
        Ok((row, email))
    }

    pub async fn prepare_sign_up_verification(
        &self,
        ctx: &RequestContext,
        client: &Client,
        id: &str,
        strategy: &str,
    ) -> Result<SignUpRow> {
        self.limit_ip(Action::Verify, ctx).await?;
        if strategy != "email_code" {
            return Err(ServiceError::unprocessable(
                "strategy_for_user_invalid",
                "Only email_code verification is available",
            )
            .param("strategy"));
        }
        let row = self.sign_up_of(client, id).await?;
        let mailed_at_once = self.mails_code_at_once() && row.status != "complete" && !row.email_verified;
        if mailed_at_once && code_just_mailed(&row.code, self.now()) {
            // Clerk's SDKs ask for a code right after creating the sign-up, which already mailed
            // one: that code stands. A second would arrive with the first one dead, and the
            // person would likely type the first. A resend (clerk-js offers it after 30 s) gets a
            // new code.
            return Ok(row);
        }
        let (mut row, _) = self.sign_up_address_to_prove(ctx, client, id).await?;
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
        client: &Client,
        id: &str,
        code: &str,
    ) -> Result<Step<SignUpRow>> {
        self.limit_ip(Action::Verify, ctx).await?;
        let mut row = self.sign_up_of(client, id).await?;
        if row.status == "complete" || row.email_verified {
            return Err(ServiceError::already_verified());
        }
        let Some(mut p) = pending(&row.code) else {
            return Err(ServiceError::bad_request("verification_missing", "Request a verification code first."));
        };
        let address = row.email.clone().unwrap_or_default();
        self.budgets.code_budget_left(CodePurpose::SignUp, &[&address]).await?;
        let outcome = p.attempt(&self.code_key, &row.id, code, self.now());
        row.code = code_fields(&p);
        row.updated_at = self.now();
        if outcome != CodeOutcome::Verified {
            if matches!(outcome, CodeOutcome::Incorrect { .. } | CodeOutcome::TooManyAttempts) {
                row.version += 1;
                self.store.update_sign_up(&row).await?;
                self.budgets.code_failed(CodePurpose::SignUp, &[&address]).await?;
            }
            return Err(code_error(outcome));
        }
        row.email_verified = true;
        // A sign-up through an identity provider needs no password.
        let needs_password = row.password_hash.is_none() && row.external_profile.is_none();
        if row.email_taken || needs_password {
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
    pub(super) async fn finish_sign_up(&self, client: &Client, mut row: SignUpRow) -> Result<Step<SignUpRow>> {
        let now = self.now();
        let Some(email) = row.email.clone() else {
            return Ok(Step::pending(row));
        };
        let user_id = self.new_id(IdKind::User);
        let email_row = self.users.new_email_row(&user_id, email.clone(), true);
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
        let mut session = self.users.new_session(&client.id, &user_id);
        // A new account has no second factor: under the `required` policy it sets one up first.
        session.pending_task = self.users.setup_task(&Default::default());
        let mut done_row = row.clone();
        done_row.status = "complete".into();
        done_row.created_user_id = Some(user_id.clone());
        done_row.created_session_id = Some(session.id.clone());
        done_row.password_hash = None;
        done_row.version = row.version + 1;
        // A sign-up that took a provider's sign-in over joins that account in the same write.
        let external_account = self.transferred_account(&row, &user_id, now)?;
        let events = vec![
            self.users.user_event(
                "user.created",
                &UserRecord {
                    user: user.clone(),
                    emails: vec![email_row.clone()],
                    phones: vec![],
                    external_accounts: external_account.iter().cloned().collect(),
                    second_factors: Default::default(),
                    passkeys: Vec::new(),
                },
            ),
            self.users.session_event("session.created", &session),
        ];
        let client_token = new_opaque_secret(self.rng.as_ref());
        let done = CompleteSignUp {
            sign_up: done_row.clone(),
            user,
            email: email_row,
            session,
            client_token_digest: secret_digest(&client_token),
            external_account,
        };
        match self.emitting(events).complete_sign_up(&done).await {
            Ok(()) => {
                // The account exists now: what follows must not turn its creation into an error.
                if let Err(e) = self.accept_invitations(&email).await {
                    tracing::warn!(user_id, code = e.code, "invitations not marked accepted");
                }
                self.orgs.accept_invitations_at_sign_up(&user_id).await;
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
}
