//! A user's accounts at identity providers once they are joined (docs/identity-providers.md,
//! "On the user"): removed by their owner (never the last way to sign in) or by a backend, and
//! the provider's access token a backend asks for.

use latchkey_store::{ExternalAccountRow, UserRecord};
use zeroize::Zeroizing;

use crate::authority::{Operator, SignedIn};
use crate::error::{Result, ServiceError};
use crate::users::Users;
use crate::Services;

/// Whether `record` keeps a way to sign in once `account_id` is gone: a password (its
/// identifier is an address or a username), a verified address (a code can be mailed to it),
/// or another provider account whose provider is still configured (`configured` strategies).
pub(crate) fn keeps_a_way_in(record: &UserRecord, account_id: &str, configured: &[&str]) -> bool {
    record.user.password_hash.is_some()
        || record.emails.iter().any(|e| e.verified)
        || record.external_accounts.iter().any(|a| a.id != account_id && configured.contains(&a.provider.as_str()))
}

impl Users {
    /// Removes one of the user's provider accounts, with `user.updated`. `owner_asks`: the user
    /// themself may not remove their last way to sign in; a backend may.
    pub(crate) async fn remove_external_account(
        &self,
        user_id: &str,
        account_id: &str,
        owner_asks: bool,
    ) -> Result<ExternalAccountRow> {
        let record = self.user(user_id).await?;
        let account = record
            .external_accounts
            .iter()
            .find(|a| a.id == account_id)
            .cloned()
            .ok_or_else(|| ServiceError::not_found("External account"))?;
        let configured: Vec<&str> = self.config.oauth.iter().map(|p| p.strategy.as_str()).collect();
        if owner_asks && !keeps_a_way_in(&record, account_id, &configured) {
            return Err(ServiceError::bad_request(
                "last_identification_deletion_forbidden",
                "This account is your only way to sign in.",
            )
            .long("Add a password, a verified email address or another account first."));
        }
        let mut after = record;
        after.external_accounts.retain(|a| a.id != account_id);
        if !self
            .emitting(vec![self.user_event("user.updated", &after)])
            .delete_external_account(user_id, account_id)
            .await?
        {
            return Err(ServiceError::not_found("External account"));
        }
        tracing::info!(user_id, account_id, provider = %account.provider, "external account removed");
        Ok(account)
    }
}

impl crate::account::AccountService {
    /// `DELETE /v1/me/external_accounts/{id}`.
    pub async fn delete_external_account(&self, who: &SignedIn, account_id: &str) -> Result<ExternalAccountRow> {
        self.users.remove_external_account(who.user_id(), account_id, true).await
    }
}

impl crate::admin::AdminService {
    /// `DELETE /v1/users/{user_id}/external_accounts/{id}`.
    pub async fn delete_external_account(
        &self,
        _operator: &Operator,
        user_id: &str,
        account_id: &str,
    ) -> Result<ExternalAccountRow> {
        self.users.remove_external_account(user_id, account_id, false).await
    }
}

/// A provider's access token of one of a user's accounts, opened for a backend.
pub struct ProviderAccessToken {
    pub account: ExternalAccountRow,
    pub token: Zeroizing<String>,
}

impl Services {
    /// `GET /v1/users/{user_id}/oauth_access_tokens/{provider}`: the access tokens of the
    /// user's accounts at `provider` (a strategy, `oauth_google`). An unknown user is not
    /// found; a user without such an account has none.
    pub async fn provider_access_tokens(
        &self,
        _operator: &Operator,
        user_id: &str,
        provider: &str,
    ) -> Result<Vec<ProviderAccessToken>> {
        let record = self.users.user(user_id).await?;
        let mut tokens = Vec::new();
        for account in record.external_accounts.into_iter().filter(|a| a.provider == provider) {
            let Some(sealed) = account.access_token_sealed.as_deref() else { continue };
            let opened = self.keys.open_secret(sealed, &account.id)?;
            let token = String::from_utf8(opened.to_vec()).map_err(|_| ServiceError::internal())?;
            tokens.push(ProviderAccessToken { account, token: Zeroizing::new(token) });
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use latchkey_store::{CodeFields, EmailRow, UserRow};

    fn account(id: &str, provider: &str) -> ExternalAccountRow {
        ExternalAccountRow {
            id: id.into(),
            user_id: "u".into(),
            provider: provider.into(),
            provider_user_id: format!("sub-{id}"),
            email_address: None,
            email_verified: false,
            first_name: None,
            last_name: None,
            image_url: None,
            username: None,
            approved_scopes: String::new(),
            access_token_sealed: None,
            refresh_token_sealed: None,
            token_expires_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn email(verified: bool) -> EmailRow {
        EmailRow {
            id: "idn".into(),
            user_id: "u".into(),
            email: "ada@example.com".into(),
            verified,
            verified_at: None,
            code: CodeFields::default(),
            created_at: 0,
            updated_at: 0,
            version: 1,
        }
    }

    #[test]
    fn the_last_way_in_stays() {
        let google = account("g", "oauth_google");
        let github = account("h", "oauth_github");
        let record = |password: bool, emails: Vec<EmailRow>, accounts: Vec<ExternalAccountRow>| UserRecord {
            user: UserRow { password_hash: password.then(|| "hash".into()), ..UserRow::new("u".into(), 0) },
            emails,
            phones: vec![],
            external_accounts: accounts,
        };
        let both = ["oauth_google", "oauth_github"];
        // Only the provider account: it stays.
        assert!(!keeps_a_way_in(&record(false, vec![], vec![google.clone()]), "g", &both));
        // An unverified address is no way in; a verified one or a password is.
        assert!(!keeps_a_way_in(&record(false, vec![email(false)], vec![google.clone()]), "g", &both));
        assert!(keeps_a_way_in(&record(false, vec![email(true)], vec![google.clone()]), "g", &both));
        assert!(keeps_a_way_in(&record(true, vec![], vec![google.clone()]), "g", &both));
        // Another account counts while its provider is configured.
        let two = record(false, vec![], vec![google.clone(), github.clone()]);
        assert!(keeps_a_way_in(&two, "g", &both));
        assert!(!keeps_a_way_in(&two, "g", &["oauth_google"]));
    }
}
