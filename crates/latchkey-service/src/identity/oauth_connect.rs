//! Connecting another account at an identity provider while signed in
//! (docs/identity-providers.md, "Connecting an account"): `POST /v1/me/external_accounts`
//! starts a trip like a sign-in's, bound to the browser and the session; `PATCH
//! /v1/me/external_accounts/{id}/reauthorize` asks the same provider again for more scopes. The
//! callback joins the account to the user, or sends the browser back with `connect_error`.

use latchkey_core::ids::IdKind;
use latchkey_core::oauth::{ConnectClaims, StateClaims};
use latchkey_core::secret::new_opaque_secret;
use latchkey_store::{ExternalAccountRow, StoreError};

use super::oauth_sign_in::{trip_error_code, CallbackOutcome, CallbackParams, TRIP_MS};
use crate::authority::{Client, SignedIn};
use crate::error::{Result, ServiceError};
use crate::oauth::Provider;
use crate::{Action, RequestContext, Services};

/// A connection on its way to the provider.
#[derive(Debug, Clone)]
pub struct ConnectionStart {
    /// The id the account will have (or has, when reauthorized).
    pub account_id: String,
    pub strategy: String,
    /// Where to send the browser.
    pub provider_url: String,
    pub expires_at: i64,
    /// Reauthorizing: the account as it is now.
    pub existing: Option<ExternalAccountRow>,
}

/// At most this many extra scopes, each a printable token of at most 200 characters.
const MAX_EXTRA_SCOPES: usize = 20;

fn extra_scopes(provider: &Provider, extra: &[String]) -> Result<Vec<String>> {
    let bad =
        || ServiceError::unprocessable("form_param_format_invalid", "A scope is not valid.").param("additional_scope");
    let mut scopes = provider.scopes.clone();
    let extra: Vec<&str> = extra.iter().flat_map(|s| s.split([',', ' '])).filter(|s| !s.is_empty()).collect();
    if extra.len() > MAX_EXTRA_SCOPES {
        return Err(bad());
    }
    for s in extra {
        if s.len() > 200 || !s.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') {
            return Err(bad());
        }
        if !scopes.iter().any(|k| k == s) {
            scopes.push(s.to_owned());
        }
    }
    Ok(scopes)
}

/// `url` with `connect_error=<code>` added: where a failed connection sends the browser.
fn with_error(url: &str, code: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair("connect_error", code);
            u.into()
        }
        // A path on this instance (the hosted pages).
        Err(_) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}connect_error={code}")
        }
    }
}

impl Services {
    /// Starts connecting an account at `strategy`'s provider to the signed-in user, or
    /// reauthorizing one of theirs (`reauthorize`: its id) with `additional_scopes`.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_oauth_connection(
        &self,
        ctx: &RequestContext,
        client: &Client,
        who: &SignedIn,
        strategy: Option<&str>,
        redirect_url: String,
        action_complete_redirect_url: Option<String>,
        additional_scopes: &[String],
        reauthorize: Option<&str>,
    ) -> Result<ConnectionStart> {
        self.limit_ip(Action::SignIn, ctx).await?;
        let record = self.users.user(who.user_id()).await?;
        let existing = match reauthorize {
            Some(id) => Some(
                record
                    .external_accounts
                    .iter()
                    .find(|a| a.id == id)
                    .cloned()
                    .ok_or_else(|| ServiceError::not_found("External account"))?,
            ),
            None => None,
        };
        let strategy = match (&existing, strategy) {
            (Some(a), _) => a.provider.clone(),
            (None, Some(s)) if !s.is_empty() => s.to_owned(),
            (None, _) => {
                return Err(ServiceError::unprocessable("form_param_missing", "Choose a provider.").param("strategy"))
            }
        };
        let provider = self.provider_for(&strategy)?;
        let scopes = extra_scopes(provider, additional_scopes)?;
        let now = self.now();
        let account_id = existing.as_ref().map_or_else(|| self.new_id(IdKind::ExternalAccount), |a| a.id.clone());
        let claims = StateClaims {
            attempt_id: who.session_id().to_owned(),
            client_id: client.id.clone(),
            version: 0,
            provider: provider.key.clone(),
            expires_at: now + TRIP_MS,
            salt: new_opaque_secret(self.rng.as_ref()),
            redirect_url,
            action_complete_redirect_url,
            connect: Some(ConnectClaims {
                user_id: who.user_id().to_owned(),
                account_id: account_id.clone(),
                reauthorize: existing.is_some(),
            }),
        };
        let provider_url = self.authorization_url(provider, &claims, &scopes).await?;
        Ok(ConnectionStart { account_id, strategy, provider_url, expires_at: now + TRIP_MS, existing })
    }

    /// The provider sent a connecting browser back (the state is this browser's and this
    /// instance's already).
    pub(super) async fn finish_connection(
        &self,
        client: &Client,
        provider: &Provider,
        claims: StateClaims,
        connect: ConnectClaims,
        state: &str,
        params: &CallbackParams,
    ) -> Result<CallbackOutcome> {
        let refused = || {
            tracing::info!("oauth connection callback refused (another session, or spent)");
            ServiceError::bad_request(
                "oauth_state_invalid",
                "This link is not valid in this browser, or has expired. Connect the account again.",
            )
        };
        // The session that started it must still be this browser's, signed in, and its user's.
        let session = self.store.get_session(&claims.attempt_id).await?.ok_or_else(refused)?;
        if session.client_id != client.id
            || session.user_id != connect.user_id
            || !self.users.session_is_active(&session)
        {
            return Err(refused());
        }
        let record = self.users.user(&connect.user_id).await?;
        let current = record.external_accounts.iter().find(|a| a.id == connect.account_id).cloned();
        // A new connection's account must not exist yet (else this is a replay); a
        // reauthorized one must still be there.
        if current.is_some() != connect.reauthorize {
            return Err(refused());
        }
        let back = claims.redirect_url.clone();
        let failed = |code: &str| Ok(CallbackOutcome { redirect_to: with_error(&back, code), new_client_token: None });
        if let Some(error) = params.error.as_deref() {
            return failed(if error == "access_denied" { "oauth_access_denied" } else { "oauth_provider_error" });
        }
        let now = self.now();
        let (profile, tokens) = match self.person_from_provider(provider, state, params.code.as_deref(), now).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(provider = %provider.key, error = %e, "connecting an account failed at the provider");
                return failed(trip_error_code(&e));
            }
        };
        let known = self.store.external_account_by_subject(&provider.strategy, &profile.subject).await?;
        // The provider account is someone else's: never moved.
        if known.as_ref().is_some_and(|k| k.user_id != connect.user_id) {
            return failed("external_account_exists");
        }
        if let Some(current) = &current {
            if current.provider_user_id != profile.subject {
                return failed("external_account_mismatch");
            }
        }
        // Already joined to this user (connected twice): that account is refreshed.
        let refreshing = known.is_some() || current.is_some();
        let (id, existing) = match known.or(current) {
            Some(k) => (k.id.clone(), Some(k)),
            None => (connect.account_id.clone(), None),
        };
        let account = self.external_account(id, provider, &connect.user_id, &profile, &tokens, existing, now)?;
        let mut after = record;
        after.external_accounts.retain(|a| a.id != account.id);
        after.external_accounts.push(account.clone());
        let event = self.users.user_event("user.updated", &after);
        let store = self.emitting(vec![event]);
        if refreshing {
            // Update only: an account removed while the browser was at the provider stays removed.
            if !store.update_external_account(&account).await? {
                return failed("external_account_not_found");
            }
        } else {
            match store.save_external_account(&account).await {
                Ok(()) => {}
                // Joined to someone else meanwhile.
                Err(StoreError::Conflict(_)) => return failed("external_account_exists"),
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(user_id = %connect.user_id, provider = %provider.key, "external account connected");
        Ok(CallbackOutcome { redirect_to: claims.action_complete_redirect_url.unwrap_or(back), new_client_token: None })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn failures_go_back_with_their_code() {
        assert_eq!(
            with_error("http://app.test/p?x=1", "oauth_access_denied"),
            "http://app.test/p?x=1&connect_error=oauth_access_denied"
        );
        assert_eq!(with_error("/user", "external_account_exists"), "/user?connect_error=external_account_exists");
        assert_eq!(with_error("/user?a=b", "x"), "/user?a=b&connect_error=x");
    }
}
