//! A sign-up that takes over a provider's sign-in (`transfer`, docs/identity-providers.md):
//! the person the provider named has no account, so one is made from what the provider said.
//! An address the provider vouches for needs no code; any other is proven by the emailed code
//! like every sign-up's, so nobody gets an account on an address they cannot read.

use latchkey_core::ids::IdKind;
use latchkey_store::{CodeFields, ExternalAccountRow, SignUpRow};

use super::oauth_sign_in::PendingProfile;
use super::{Step, ATTEMPT_LIFETIME_MS};
use crate::authority::Client;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::{Action, RequestContext, Services};

impl Services {
    /// `POST /v1/client/sign_ups` with `transfer=true`.
    pub async fn transfer_sign_up(&self, ctx: &RequestContext, client: &Client) -> Result<Step<SignUpRow>> {
        self.limit_ip(Action::SignUp, ctx).await?;
        self.refuse_if_signed_in(client).await?;
        let missing = || {
            ServiceError::bad_request(
                "transfer_invalid",
                "There is no sign-in with an identity provider to continue as a sign-up.",
            )
        };
        let sign_in_id = client.sign_in_id.clone().ok_or_else(missing)?;
        let mut sign_in = self.sign_in_of(client, &sign_in_id).await?;
        let transferable =
            sign_in.first_factor_status.as_deref() == Some("transferable") && sign_in.status != "complete";
        let raw = sign_in.external_profile.clone().filter(|_| transferable).ok_or_else(missing)?;
        let pending: PendingProfile = serde_json::from_str(&raw).map_err(|_| missing())?;
        let allowed = self.config.oauth.iter().find(|p| p.key == pending.provider).is_some_and(|p| p.sign_up);
        if !allowed {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "oauth_sign_up_disabled",
                "New accounts cannot be created with this provider. Sign up another way, then connect it.",
            ));
        }
        // The attempt is spent: it cannot be taken over twice.
        sign_in.first_factor_status = Some("transferred".into());
        sign_in.external_profile = None;
        sign_in.updated_at = self.now();
        sign_in.version += 1;
        self.store.update_sign_in(&sign_in).await?;

        let now = self.now();
        let email = pending.email.as_deref().and_then(latchkey_core::email::normalize_email);
        let mut row = SignUpRow {
            id: self.new_id(IdKind::SignUp),
            client_id: client.id.clone(),
            status: "missing_requirements".into(),
            email: email.clone(),
            email_taken: false,
            email_verified: email.is_some() && pending.email_verified,
            username: None,
            first_name: pending.first_name.clone(),
            last_name: pending.last_name.clone(),
            password_hash: None,
            unsafe_metadata: "{}".into(),
            external_profile: Some(raw),
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
        if row.email_verified {
            self.store.insert_sign_up(&row).await?;
            return self.finish_sign_up(client, row).await;
        }
        // An address the provider does not vouch for is proven like any sign-up's.
        if let Some(address) = &email {
            self.sign_up_code_allowed(ctx, address).await?;
            let code = self.issue_sign_up_code(&mut row);
            self.store.insert_sign_up(&row).await?;
            self.mail_sign_up_code(&row, &code);
        } else {
            self.store.insert_sign_up(&row).await?;
        }
        Ok(Step { row, new_client_token: None })
    }

    /// The provider account a completed sign-up brings, if it took over a provider's sign-in.
    pub(super) fn transferred_account(
        &self,
        row: &SignUpRow,
        user_id: &str,
        now: i64,
    ) -> Result<Option<ExternalAccountRow>> {
        let Some(raw) = &row.external_profile else {
            return Ok(None);
        };
        let pending: PendingProfile = serde_json::from_str(raw).map_err(|_| ServiceError::internal())?;
        self.account_of_pending(&pending, user_id, now).map(Some)
    }
}
