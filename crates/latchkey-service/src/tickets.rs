//! Single-use links: app-level invitations (accepted when the invitee signs up with the
//! invited address, which also copies the invitation's public metadata onto the new user) and
//! sign-in tokens (a `ticket` that signs its user in once, for tests, impersonation tooling
//! and magic links an application sends itself). Only digests of the secrets are stored.

use latchkey_core::ids::IdKind;
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_store::{InvitationRow, SignInRow, SignInTokenRow};
use serde_json::Value;

use crate::authority::Client;
use crate::authority::Operator;
use crate::error::{Result, ServiceError};
use crate::identity::email_param;
use crate::params::{metadata_param, MAX_PAGE};
use crate::{RequestContext, Services};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Default)]
pub struct InvitationInput {
    pub email_address: String,
    pub expires_in_days: Option<i64>,
    pub ignore_existing: bool,
    pub notify: Option<bool>,
    pub public_metadata: Option<Value>,
    pub redirect_url: Option<String>,
}

/// A status filter of an invitation list: each one must be a status invitations have.
pub(crate) fn invitation_statuses(statuses: &[String]) -> Result<()> {
    for s in statuses {
        if !["pending", "accepted", "revoked", "expired"].contains(&s.as_str()) {
            return Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                "status must be pending, accepted, revoked or expired",
            )
            .param("status"));
        }
    }
    Ok(())
}

impl Services {
    fn ticket_url(&self, page: &str, token: &str) -> String {
        format!("{}/{page}?__clerk_ticket={token}", self.config.issuer.trim_end_matches('/'))
    }

    // ---- invitations -----------------------------------------------------------------------

    /// Checks an invitation without creating it (bulk creation checks every entry first).
    pub async fn check_invitation(&self, input: &InvitationInput) -> Result<()> {
        self.validated_invitation(input).await.map(|_| ())
    }

    /// The normalized address, lifetime in days and metadata of a valid invitation.
    async fn validated_invitation(&self, input: &InvitationInput) -> Result<(String, i64, String)> {
        let email = email_param(&input.email_address, "email_address")?;
        let days = input.expires_in_days.unwrap_or(30);
        if !(1..=365).contains(&days) {
            return Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                "expires_in_days must be between 1 and 365",
            )
            .param("expires_in_days"));
        }
        let public_metadata = match &input.public_metadata {
            Some(v) => metadata_param(v, "public_metadata")?,
            None => "{}".into(),
        };
        if let Some(url) = &input.redirect_url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(ServiceError::unprocessable(
                    "form_param_format_invalid",
                    "redirect_url must be an absolute http(s) URL",
                )
                .param("redirect_url"));
            }
        }
        if !input.ignore_existing {
            if self.store.user_id_by_verified_email(&email).await?.is_some() {
                return Err(ServiceError::identifier_exists("email_address")
                    .long("A user with this email address already exists."));
            }
            if !self.store.pending_invitations_for(&email, self.now()).await?.is_empty() {
                return Err(ServiceError::unprocessable(
                    "duplicate_record",
                    "There is already a pending invitation for this email address.",
                )
                .param("email_address"));
            }
        }
        Ok((email, days, public_metadata))
    }

    /// Creates an invitation; returns it with the link that accepts it (shown once).
    pub async fn create_invitation(
        &self,
        _operator: &Operator,
        input: InvitationInput,
    ) -> Result<(InvitationRow, String)> {
        let (email, days, public_metadata) = self.validated_invitation(&input).await?;
        let now = self.now();
        let token = new_opaque_secret(self.rng.as_ref());
        let row = InvitationRow {
            id: self.new_id(IdKind::Invitation),
            email: email.clone(),
            status: "pending".into(),
            public_metadata,
            redirect_url: input.redirect_url,
            token_digest: secret_digest(&token),
            expires_at: Some(now + days * DAY_MS),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_invitation(&row).await?;
        let url = self.ticket_url("sign-up", &token);
        if input.notify.unwrap_or(true) {
            let app = &self.config.app_name;
            self.send_mail(
                &email,
                &format!("You are invited to {app}"),
                format!("You have been invited to join {app}.\n\nAccept the invitation by signing up with this address:\n{url}\n\nThe invitation expires in {days} days.\n"),
            );
        }
        Ok((row, url))
    }

    async fn expire_invitations(&self) -> Result<()> {
        self.store.expire_invitations(self.now()).await?;
        Ok(())
    }

    pub async fn invitation(&self, id: &str) -> Result<InvitationRow> {
        self.store.get_invitation(id).await?.ok_or_else(|| ServiceError::not_found("Invitation"))
    }

    pub async fn list_invitations(
        &self,
        statuses: &[String],
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InvitationRow>, i64)> {
        invitation_statuses(statuses)?;
        if !(1..=MAX_PAGE).contains(&limit) || offset < 0 {
            return Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                format!("limit must be between 1 and {MAX_PAGE} and offset 0 or more"),
            )
            .param("limit"));
        }
        self.expire_invitations().await?;
        Ok(self.store.list_invitations(statuses, query, limit, offset).await?)
    }

    pub async fn revoke_invitation(&self, _operator: &Operator, id: &str) -> Result<InvitationRow> {
        self.expire_invitations().await?;
        let mut row = self.invitation(id).await?;
        if row.status != "pending" {
            return Err(ServiceError::bad_request(
                "invitation_not_pending",
                format!("This invitation is {} and can no longer be revoked.", row.status),
            ));
        }
        row.status = "revoked".into();
        row.updated_at = self.now();
        self.store.update_invitation(&row).await?;
        Ok(row)
    }

    pub async fn delete_invitation(&self, _operator: &Operator, id: &str) -> Result<()> {
        if self.store.delete_invitation(id).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found("Invitation"))
        }
    }

    /// The public metadata that pending invitations for `email` give a new user.
    pub(crate) async fn invited_metadata(&self, email: &str) -> Result<String> {
        let mut merged = serde_json::Map::new();
        for inv in self.store.pending_invitations_for(email, self.now()).await? {
            latchkey_core::metadata::deep_merge(&mut merged, &latchkey_core::metadata::parse(&inv.public_metadata));
        }
        Ok(Value::Object(merged).to_string())
    }

    pub(crate) async fn accept_invitations(&self, email: &str) -> Result<()> {
        for mut inv in self.store.pending_invitations_for(email, self.now()).await? {
            inv.status = "accepted".into();
            inv.updated_at = self.now();
            self.store.update_invitation(&inv).await?;
            tracing::info!(invitation_id = %inv.id, "invitation accepted");
        }
        Ok(())
    }

    // ---- sign-in tokens -------------------------------------------------------------------

    /// A single-use sign-in link for `user_id`; the token is returned once.
    pub async fn create_sign_in_token(
        &self,
        _operator: &Operator,
        user_id: &str,
        expires_in_seconds: Option<i64>,
    ) -> Result<(SignInTokenRow, String, String)> {
        self.users.user(user_id).await?;
        let secs = expires_in_seconds.unwrap_or(30 * 24 * 3600);
        if !(1..=315_360_000).contains(&secs) {
            return Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                "expires_in_seconds must be between 1 and 315360000",
            )
            .param("expires_in_seconds"));
        }
        let now = self.now();
        let token = new_opaque_secret(self.rng.as_ref());
        let row = SignInTokenRow {
            id: self.new_id(IdKind::SignInToken),
            user_id: user_id.to_owned(),
            token_digest: secret_digest(&token),
            status: "pending".into(),
            expires_at: now + secs * 1000,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_sign_in_token(&row).await?;
        let url = self.ticket_url("sign-in", &token);
        Ok((row, token, url))
    }

    pub async fn revoke_sign_in_token(&self, _operator: &Operator, id: &str) -> Result<SignInTokenRow> {
        let mut row =
            self.store.get_sign_in_token(id).await?.ok_or_else(|| ServiceError::not_found("Sign-in token"))?;
        if row.status != "pending" {
            return Err(ServiceError::bad_request(
                "sign_in_token_not_pending",
                format!("This sign-in token is {} and can no longer be revoked.", row.status),
            ));
        }
        row.status = "revoked".into();
        row.updated_at = self.now();
        if !self.store.transition_sign_in_token(&row, "pending").await? {
            return Err(ServiceError::stale());
        }
        Ok(row)
    }

    /// Signs in with a sign-in token (`strategy=ticket`): valid once, before it expires.
    pub async fn sign_in_with_ticket(
        &self,
        ctx: &RequestContext,
        client: &Client,
        ticket: &str,
    ) -> Result<crate::identity::Step<SignInRow>> {
        self.limit_ip(crate::Action::SignIn, ctx).await?;
        self.refuse_if_signed_in(client).await?;
        let invalid = || {
            ServiceError::unprocessable("ticket_invalid", "This sign-in link is invalid or has expired.")
                .long("The sign-in token is unknown, already used, revoked or expired. Ask for a new link.")
                .param("ticket")
        };
        if ticket.is_empty() || ticket.len() > 256 {
            return Err(invalid());
        }
        let now = self.now();
        let mut token = self.store.sign_in_token_by_digest(&secret_digest(ticket)).await?.ok_or_else(invalid)?;
        if token.status != "pending" || token.expires_at <= now {
            return Err(invalid());
        }
        if let Some(user) = self.store.get_user_row(&token.user_id).await? {
            self.users.refuse_blocked(&user)?;
        }
        token.status = "accepted".into();
        token.updated_at = now;
        // Two racing uses: only the one that moves it out of `pending` signs in.
        if !self.store.transition_sign_in_token(&token, "pending").await? {
            return Err(invalid());
        }
        let mut row = SignInRow {
            user_id: Some(token.user_id.clone()),
            first_factor_strategy: Some("ticket".into()),
            first_factor_status: Some("unverified".into()),
            ..self.new_sign_in(client)
        };
        self.store.insert_sign_in(&row).await?;
        row.version += 1;
        self.complete_sign_in(client, row, &token.user_id, None).await
    }
}
