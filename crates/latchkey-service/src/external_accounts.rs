//! A user's accounts at identity providers once they are joined (docs/identity-providers.md,
//! "On the user"): removed by their owner (never the last way to sign in) or by a backend, and
//! the provider's access token a backend asks for (renewed with the refresh token once expired).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use latchkey_store::{ExternalAccountRow, UserRecord};
use zeroize::Zeroizing;

use crate::authority::{Operator, SignedIn};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::oauth::client::ProviderError;
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

/// An access token this close to its expiry is refreshed before it is handed out: the backend
/// gets time to use it.
const REFRESH_MARGIN_MS: i64 = 60 * 1000;

/// Whether the account's access token is (nearly) expired and a refresh token can renew it. An
/// unknown expiry is never guessed at.
fn needs_refresh(account: &ExternalAccountRow, now: i64) -> bool {
    account.refresh_token_sealed.is_some()
        && account.token_expires_at.is_some_and(|at| at <= now.saturating_add(REFRESH_MARGIN_MS))
}

/// One refresh at a time per account in this process: a provider that rotates refresh tokens
/// treats a second use of the old one as theft and revokes the grant.
fn refresh_lock(account_id: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    locks.retain(|_, lock| lock.strong_count() > 0);
    if let Some(lock) = locks.get(account_id).and_then(Weak::upgrade) {
        return lock;
    }
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(account_id.to_owned(), Arc::downgrade(&lock));
    lock
}

/// What a backend is told when the provider would not renew the access token.
fn refresh_failed(account: &ExternalAccountRow, e: ProviderError) -> ServiceError {
    tracing::warn!(account_id = %account.id, provider = %account.provider, error = %e, "oauth token refresh failed");
    match e {
        ProviderError::Unreachable(_) => ServiceError::new(
            ErrorKind::Unavailable,
            "oauth_provider_unavailable",
            "The identity provider cannot be reached right now to renew the access token. Try again in a moment.",
        ),
        // Clerk's code and words for a provider that refuses the refresh token.
        _ => ServiceError::bad_request("oauth_token_retrieval_error", "Token retrieval failed")
            .long("Failed to retrieve a new access token from the OAuth provider"),
    }
}

impl Services {
    /// `GET /v1/users/{user_id}/oauth_access_tokens/{provider}`: the access tokens of the
    /// user's accounts at `provider` (a strategy, `oauth_google`). An unknown user is not
    /// found; a user without such an account has none. An expired token is renewed first
    /// when a refresh token is stored ([`Self::fresh_tokens`]).
    pub async fn provider_access_tokens(
        &self,
        _operator: &Operator,
        user_id: &str,
        provider: &str,
    ) -> Result<Vec<ProviderAccessToken>> {
        let record = self.users.user(user_id).await?;
        let mut tokens = Vec::new();
        for account in record.external_accounts.into_iter().filter(|a| a.provider == provider) {
            let account = self.fresh_tokens(account).await?;
            let Some(sealed) = account.access_token_sealed.as_deref() else { continue };
            let opened = self.keys.open_secret(sealed, &account.id)?;
            let token = String::from_utf8(opened.to_vec()).map_err(|_| ServiceError::internal())?;
            tokens.push(ProviderAccessToken { account, token: Zeroizing::new(token) });
        }
        Ok(tokens)
    }

    /// The account with a usable access token: as stored while it is valid for another minute
    /// (or its expiry is unknown); otherwise renewed at the provider's token endpoint with the
    /// stored refresh token, sealed and saved (a rotated refresh token replaces the old one).
    /// Without a refresh token, or when the provider is no longer configured, the stored
    /// (expired) token is returned: its `expires_at` says so. A provider that refuses the
    /// refresh is `oauth_token_retrieval_error`, one that cannot be reached
    /// `oauth_provider_unavailable`; either way the stored tokens stay as they were.
    async fn fresh_tokens(&self, account: ExternalAccountRow) -> Result<ExternalAccountRow> {
        if !needs_refresh(&account, self.now()) {
            return Ok(account);
        }
        let Some(provider) = self.config.oauth.iter().find(|p| p.strategy == account.provider) else {
            return Ok(account);
        };
        let lock = refresh_lock(&account.id);
        let _one_at_a_time = lock.lock().await;
        // Another request may have renewed it meanwhile: read it again.
        let Some(account) =
            self.store.external_accounts_for_user(&account.user_id).await?.into_iter().find(|a| a.id == account.id)
        else {
            return Err(ServiceError::not_found("External account"));
        };
        let now = self.now();
        let Some(sealed_refresh) = account.refresh_token_sealed.as_deref().filter(|_| needs_refresh(&account, now))
        else {
            return Ok(account);
        };
        let refresh_token = self.keys.open_secret(sealed_refresh, &account.id)?;
        let refresh_token = std::str::from_utf8(&refresh_token).map_err(|_| ServiceError::internal())?;
        let answer = match self.providers.endpoints(provider, now).await {
            Ok(endpoints) => self.providers.refresh_access_token(provider, &endpoints, refresh_token).await,
            Err(e) => Err(e),
        };
        let tokens = answer.map_err(|e| refresh_failed(&account, e))?;
        let access_token = Zeroizing::new(tokens.access_token);
        let seal = |t: &str| self.keys.seal_secret(t.as_bytes(), &account.id);
        let mut fresh = account.clone();
        fresh.access_token_sealed = Some(seal(&access_token)?);
        // A provider that rotates refresh tokens sends a new one; one that does not sends the
        // same again, or none: the stored one stays.
        if let Some(rotated) = tokens.refresh_token.map(Zeroizing::new).filter(|r| r.as_str() != refresh_token) {
            fresh.refresh_token_sealed = Some(seal(&rotated)?);
        }
        fresh.token_expires_at = tokens.expires_in.map(|s| now.saturating_add(s.clamp(0, i64::MAX / 1000) * 1000));
        // GitHub lists the granted scopes with commas; they are kept space-separated.
        if let Some(scope) = tokens.scope.filter(|s| !s.trim().is_empty()) {
            fresh.approved_scopes = scope.split([',', ' ']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
        }
        fresh.updated_at = now;
        // Update only: an account removed while the provider answered stays removed, and its
        // new token is handed to nobody.
        if !self.store.update_external_account(&fresh).await? {
            return Err(ServiceError::not_found("External account"));
        }
        tracing::info!(account_id = %fresh.id, provider = %fresh.provider, "oauth access token refreshed");
        Ok(fresh)
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
    fn only_an_expiring_token_with_a_refresh_token_is_renewed() {
        let now = 1_000_000;
        let with = |expires: Option<i64>, refresh: bool| ExternalAccountRow {
            token_expires_at: expires,
            refresh_token_sealed: refresh.then(|| "sealed".into()),
            ..account("g", "oauth_google")
        };
        assert!(needs_refresh(&with(Some(now - 1), true), now));
        assert!(needs_refresh(&with(Some(now), true), now));
        // Within the margin: renewed before it is handed out.
        assert!(needs_refresh(&with(Some(now + REFRESH_MARGIN_MS), true), now));
        assert!(!needs_refresh(&with(Some(now + REFRESH_MARGIN_MS + 1), true), now));
        // No refresh token, or an unknown expiry: as stored.
        assert!(!needs_refresh(&with(Some(now - 1), false), now));
        assert!(!needs_refresh(&with(None, true), now));
    }

    #[tokio::test]
    async fn refreshes_of_one_account_take_turns() {
        let first = refresh_lock("eac_1");
        assert!(Arc::ptr_eq(&first, &refresh_lock("eac_1")));
        assert!(!Arc::ptr_eq(&first, &refresh_lock("eac_2")));
        let held = first.lock().await;
        assert!(refresh_lock("eac_1").try_lock().is_err());
        drop(held);
        drop(first);
        // Forgotten once nobody holds it.
        assert!(refresh_lock("eac_1").try_lock().is_ok());
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
            second_factors: Default::default(),
            passkeys: Vec::new(),
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
