//! Sign-in with an identity provider, Clerk's way (docs/identity-providers.md): a sign-in
//! created with an `oauth_*` strategy sends the browser to the provider; the provider sends it
//! back to `/v1/oauth_callback`, where the code is exchanged, the ID token verified (or, for a
//! plain OAuth 2.0 provider, its user API read with the access token), and the person found:
//! by their provider account, or by a verified address the provider vouches for. A person
//! without an account leaves the attempt `transferable` for a sign-up.

use latchkey_core::ids::IdKind;
use latchkey_core::oauth::{
    attempt_secrets, open_state, profile_from_id_token, seal_state, ProviderProfile, StateClaims,
};
use latchkey_core::secret::new_opaque_secret;
use latchkey_store::{CodeFields, ExternalAccountRow, SignInRow};

use super::sign_in::SignInWrites;
use super::Step;
use crate::authority::Client;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::oauth::client::ProviderError;
use crate::oauth::Provider;
use crate::{Action, RequestContext, Services};

/// How long the browser may take at the provider.
pub const TRIP_MS: i64 = 10 * 60 * 1000;

/// What `/v1/oauth_callback` received.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

/// Where the callback sends the browser, and the client's new token when it signed in.
#[derive(Debug, Clone)]
pub struct CallbackOutcome {
    pub redirect_to: String,
    pub new_client_token: Option<String>,
}

/// The path providers send browsers back to.
pub const CALLBACK_PATH: &str = "/v1/oauth_callback";

impl Services {
    /// The configured provider of a strategy (`oauth_google`, `oauth_custom_acme`).
    pub(super) fn provider_for(&self, strategy: &str) -> Result<&Provider> {
        self.config.oauth.iter().find(|p| p.strategy == strategy).ok_or_else(|| {
            ServiceError::unprocessable("strategy_for_user_invalid", "That strategy is not available for this sign-in.")
                .param("strategy")
        })
    }

    /// Starts a sign-in with a provider: the attempt, and the provider's URL to send the
    /// browser to. `redirect_url` (already checked against the allowed origins) is where the
    /// browser comes back to.
    pub async fn start_oauth_sign_in(
        &self,
        ctx: &RequestContext,
        client: &Client,
        strategy: &str,
        redirect_url: String,
        action_complete_redirect_url: Option<String>,
    ) -> Result<(SignInRow, String)> {
        self.limit_ip(Action::SignIn, ctx).await?;
        self.refuse_if_signed_in(client).await?;
        let provider = self.provider_for(strategy)?;
        let now = self.now();
        let row = SignInRow {
            // Clerk's status for a provider trip: no identifier is known until the provider
            // answers (clerk-js reads `needs_identifier` with a `transferable` verification as
            // "no account yet").
            status: "needs_identifier".into(),
            first_factor_strategy: Some(strategy.to_owned()),
            first_factor_status: Some("unverified".into()),
            code: CodeFields { expires_at: Some(now + TRIP_MS), ..CodeFields::default() },
            ..self.new_sign_in(client)
        };
        let claims = StateClaims {
            attempt_id: row.id.clone(),
            client_id: client.id.clone(),
            version: row.version,
            provider: provider.key.clone(),
            expires_at: now + TRIP_MS,
            salt: new_opaque_secret(self.rng.as_ref()),
            redirect_url,
            action_complete_redirect_url,
            connect: None,
        };
        // The provider is asked before anything is stored: a provider that is down leaves
        // no attempt behind.
        let url = self.authorization_url(provider, &claims, &provider.scopes).await?;
        self.store.insert_sign_in(&row).await?;
        Ok((row, url))
    }

    /// The provider's authorization URL for one trip: the signed state, PKCE (S256), the
    /// scopes and, for OpenID Connect, the nonce. Asks the provider for its endpoints (503
    /// `oauth_provider_unavailable` when it cannot be reached).
    pub(crate) async fn authorization_url(
        &self,
        provider: &Provider,
        claims: &StateClaims,
        scopes: &[String],
    ) -> Result<String> {
        let state = seal_state(&self.code_key, claims);
        let secrets = attempt_secrets(&self.code_key, &state);
        let endpoints = self.providers.endpoints(provider, self.now()).await.map_err(provider_unavailable)?;
        let mut url = url::Url::parse(&endpoints.authorization)
            .map_err(|_| provider_unavailable(ProviderError::Unreachable("its authorization endpoint".into())))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &provider.client_id)
                .append_pair("redirect_uri", &self.callback_url())
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", &state)
                .append_pair("code_challenge", &secrets.pkce_challenge)
                .append_pair("code_challenge_method", "S256");
            if endpoints.issuer.is_some() {
                q.append_pair("nonce", &secrets.nonce);
            }
            // Apple sends the code back in a form POST when names or addresses are asked for;
            // `POST /v1/oauth_callback` turns it into the same GET.
            if provider.preset == Some(latchkey_core::oauth::Preset::Apple) {
                q.append_pair("response_mode", "form_post");
            }
        }
        Ok(url.into())
    }

    /// This instance's callback URL, as registered with providers.
    pub fn callback_url(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.config.issuer.trim_end_matches('/'))
    }

    /// The provider sent the browser back. A state that is not this browser's, or not this
    /// instance's, is refused outright (there is nowhere safe to send the browser); anything
    /// that goes wrong later is recorded on the attempt and the browser goes back to the app.
    pub async fn oauth_callback(
        &self,
        ctx: &RequestContext,
        client: Option<&Client>,
        params: CallbackParams,
    ) -> Result<CallbackOutcome> {
        self.limit_ip(Action::Verify, ctx).await?;
        let now = self.now();
        let refused = |why: &str| {
            tracing::info!(why, "oauth callback refused");
            ServiceError::bad_request(
                "oauth_state_invalid",
                "This sign-in link is not valid in this browser, or has expired. Start signing in again.",
            )
        };
        let state = params.state.as_deref().unwrap_or_default();
        let claims = open_state(&self.code_key, state, now).map_err(|e| refused(&e.to_string()))?;
        let Some(client) = client.filter(|c| c.id == claims.client_id) else {
            return Err(refused("another client"));
        };
        let provider = self
            .config
            .oauth
            .iter()
            .find(|p| p.key == claims.provider)
            .ok_or_else(|| refused("provider no longer configured"))?;
        if let Some(connect) = claims.connect.clone() {
            return self.finish_connection(client, provider, claims, connect, state, &params).await;
        }
        let row = self.store.get_sign_in(&claims.attempt_id).await?.ok_or_else(|| refused("no attempt"))?;
        let waiting = row.client_id == client.id
            && row.version == claims.version
            && row.status == "needs_identifier"
            && row.first_factor_strategy.as_deref() == Some(provider.strategy.as_str())
            && row.first_factor_status.as_deref() == Some("unverified");
        if !waiting {
            return Err(refused("the attempt moved on (a replayed callback)"));
        }
        let back = claims.redirect_url.clone();
        if let Some(error) = params.error.as_deref() {
            let code = if error == "access_denied" { "oauth_access_denied" } else { "oauth_provider_error" };
            self.fail_trip(row, code).await?;
            return Ok(CallbackOutcome { redirect_to: back, new_client_token: None });
        }
        let profile = match self.person_from_provider(provider, state, params.code.as_deref(), now).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(provider = %provider.key, error = %e, "oauth sign-in failed at the provider");
                self.fail_trip(row, trip_error_code(&e)).await?;
                return Ok(CallbackOutcome { redirect_to: back, new_client_token: None });
            }
        };
        let (profile, tokens) = profile;
        match self.account_for(provider, &profile).await? {
            Some((user_id, existing)) => {
                let joins = existing.is_none();
                let id = existing.as_ref().map_or_else(|| self.new_id(IdKind::ExternalAccount), |e| e.id.clone());
                let account = self.external_account(id, provider, &user_id, &profile, &tokens, existing, now)?;
                // A provider account joining its user changes the user: user.updated says so.
                let mut events = Vec::new();
                if joins {
                    let mut record = self.users.user(&user_id).await?;
                    record.external_accounts.push(account.clone());
                    events.push(self.users.user_event("user.updated", &record));
                }
                let writes = SignInWrites { external_account: Some(account), events, ..SignInWrites::default() };
                // Single-session: a browser that signed in meanwhile keeps that session.
                self.refuse_if_signed_in(client).await?;
                let mut row = row;
                row.identifier = profile.email.clone();
                row.user_id = Some(user_id.clone());
                row.updated_at = now;
                row.version += 1;
                let step: Step<SignInRow> = self.finish_sign_in(client, row, &user_id, writes).await?;
                // Only a completed sign-in goes on to the app; one that still needs its second
                // factor goes back to the page that continues it (Clerk's sso-callback reads
                // `needs_second_factor` and asks for the code).
                let to = if step.row.status == "complete" {
                    claims.action_complete_redirect_url.unwrap_or(back)
                } else {
                    back
                };
                Ok(CallbackOutcome { redirect_to: to, new_client_token: step.new_client_token })
            }
            None => {
                let mut row = row;
                row.first_factor_status = Some("transferable".into());
                row.first_factor_error = Some("external_account_not_found".into());
                row.identifier = profile.email.clone();
                row.external_profile = Some(self.pending_profile_json(provider, &profile, &tokens)?);
                row.updated_at = now;
                row.version += 1;
                self.store.update_sign_in(&row).await?;
                Ok(CallbackOutcome { redirect_to: back, new_client_token: None })
            }
        }
    }

    async fn fail_trip(&self, mut row: SignInRow, code: &str) -> Result<()> {
        row.first_factor_status = Some("failed".into());
        row.first_factor_error = Some(code.to_owned());
        row.updated_at = self.now();
        row.version += 1;
        self.store.update_sign_in(&row).await?;
        Ok(())
    }

    /// Exchanges the code and reads the person: from the verified ID token (OpenID Connect), or
    /// from the provider's user API (plain OAuth 2.0: GitHub, Discord).
    pub(super) async fn person_from_provider(
        &self,
        provider: &Provider,
        state: &str,
        code: Option<&str>,
        now: i64,
    ) -> std::result::Result<(ProviderProfile, ProviderTokens), ProviderError> {
        let code = code
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| ProviderError::CodeRefused("the provider sent no authorization code".into()))?;
        let secrets = attempt_secrets(&self.code_key, state);
        let endpoints = self.providers.endpoints(provider, now).await?;
        let tokens = self
            .providers
            .exchange_code(provider, &endpoints, code, &self.callback_url(), &secrets.pkce_verifier)
            .await?;
        let profile = match endpoints.issuer.as_deref() {
            Some(issuer) => {
                let id_token =
                    tokens.id_token.as_deref().ok_or_else(|| ProviderError::IdToken("no ID token".into()))?;
                let claims = self.providers.verify_id_token(provider, issuer, id_token, now).await?;
                profile_from_id_token(&claims, &secrets.nonce).map_err(|e| ProviderError::IdToken(e.to_string()))?
            }
            None => self.providers.user_profile(provider, &tokens.access_token).await?,
        };
        // GitHub lists the granted scopes with commas; they are kept space-separated.
        let scopes = tokens.scope.map(|s| s.split([',', ' ']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" "));
        let kept = ProviderTokens {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_in.map(|s| now.saturating_add(s.clamp(0, i64::MAX / 1000) * 1000)),
            scopes: scopes.unwrap_or_else(|| provider.scopes.join(" ")),
        };
        // Held to latchkey's limits, and vouched for only where that is safe (see `bounded`).
        Ok((profile.bounded(), kept))
    }

    /// The user this provider account signs in: the one it already belongs to, or the one
    /// whose verified address the provider vouches for (never an address it does not).
    async fn account_for(
        &self,
        provider: &Provider,
        profile: &ProviderProfile,
    ) -> Result<Option<(String, Option<ExternalAccountRow>)>> {
        if let Some(existing) = self.store.external_account_by_subject(&provider.strategy, &profile.subject).await? {
            return Ok(Some((existing.user_id.clone(), Some(existing))));
        }
        // Only the very address the provider verified (no look-alike: ProviderProfile::vouched_email).
        let Some(email) = profile.vouched_email() else {
            return Ok(None);
        };
        Ok(self.store.user_id_by_verified_email(&email).await?.map(|user_id| (user_id, None)))
    }

    /// The provider account as it is written: new (under `id`, to which the tokens are
    /// sealed), or the stored one (`existing`, same id) with this trip's profile and tokens.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn external_account(
        &self,
        id: String,
        provider: &Provider,
        user_id: &str,
        profile: &ProviderProfile,
        tokens: &ProviderTokens,
        existing: Option<ExternalAccountRow>,
        now: i64,
    ) -> Result<ExternalAccountRow> {
        let seal = |t: &str| self.keys.seal_secret(t.as_bytes(), &id);
        Ok(ExternalAccountRow {
            id: id.clone(),
            user_id: user_id.to_owned(),
            provider: provider.strategy.clone(),
            provider_user_id: profile.subject.clone(),
            email_address: profile.email.clone(),
            email_verified: profile.email_verified,
            first_name: profile.first_name.clone(),
            last_name: profile.last_name.clone(),
            image_url: profile.image_url.clone(),
            username: profile.username.clone(),
            approved_scopes: tokens.scopes.clone(),
            access_token_sealed: Some(seal(&tokens.access_token)?),
            // Providers such as Google send a refresh token on the first consent only: a
            // later sign-in without one keeps the stored one (sealed to the same id).
            refresh_token_sealed: match tokens.refresh_token.as_deref() {
                Some(t) => Some(seal(t)?),
                None => existing.as_ref().and_then(|e| e.refresh_token_sealed.clone()),
            },
            token_expires_at: tokens.expires_at,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }

    /// What a sign-up taking the attempt over needs, tokens sealed to the person's subject.
    fn pending_profile_json(
        &self,
        provider: &Provider,
        profile: &ProviderProfile,
        tokens: &ProviderTokens,
    ) -> Result<String> {
        let seal = |t: &str| self.keys.seal_secret(t.as_bytes(), &profile.subject);
        let pending = PendingProfile {
            provider: provider.key.clone(),
            strategy: provider.strategy.clone(),
            subject: profile.subject.clone(),
            email: profile.email.clone(),
            email_verified: profile.email_verified,
            first_name: profile.first_name.clone(),
            last_name: profile.last_name.clone(),
            image_url: profile.image_url.clone(),
            username: profile.username.clone(),
            scopes: tokens.scopes.clone(),
            access_token_sealed: seal(&tokens.access_token)?,
            refresh_token_sealed: tokens.refresh_token.as_deref().map(seal).transpose()?,
            token_expires_at: tokens.expires_at,
        };
        serde_json::to_string(&pending).map_err(|_| ServiceError::internal())
    }

    /// The provider account of a sign-up that took a provider's sign-in over, for its new
    /// user: the tokens sealed again, to the account.
    pub(super) fn account_of_pending(
        &self,
        pending: &PendingProfile,
        user_id: &str,
        now: i64,
    ) -> Result<ExternalAccountRow> {
        let id = self.new_id(IdKind::ExternalAccount);
        let reseal = |sealed: &str| -> Result<String> {
            let plain = self.keys.open_secret(sealed, &pending.subject)?;
            self.keys.seal_secret(&plain, &id)
        };
        Ok(ExternalAccountRow {
            id: id.clone(),
            user_id: user_id.to_owned(),
            provider: pending.strategy.clone(),
            provider_user_id: pending.subject.clone(),
            email_address: pending.email.clone(),
            email_verified: pending.email_verified,
            first_name: pending.first_name.clone(),
            last_name: pending.last_name.clone(),
            image_url: pending.image_url.clone(),
            username: pending.username.clone(),
            approved_scopes: pending.scopes.clone(),
            access_token_sealed: Some(reseal(&pending.access_token_sealed)?),
            refresh_token_sealed: pending.refresh_token_sealed.as_deref().map(reseal).transpose()?,
            token_expires_at: pending.token_expires_at,
            created_at: now,
            updated_at: now,
        })
    }
}

/// What a provider said of a person without an account, kept on the attempt (and on the
/// sign-up that takes it over) until the account is made.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct PendingProfile {
    pub provider: String,
    pub strategy: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub username: Option<String>,
    pub scopes: String,
    pub access_token_sealed: String,
    pub refresh_token_sealed: Option<String>,
    pub token_expires_at: Option<i64>,
}

/// Clerk's error code of a trip that failed at the provider.
pub(super) fn trip_error_code(e: &ProviderError) -> &'static str {
    match e {
        ProviderError::Unreachable(_) => "oauth_provider_unavailable",
        ProviderError::CodeRefused(_) => "oauth_token_exchange_error",
        ProviderError::IdToken(_) => "oauth_id_token_invalid",
        ProviderError::UserApi(_) => "oauth_fetch_user_error",
    }
}

/// The provider's tokens of one sign-in, before they are sealed.
pub(super) struct ProviderTokens {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<i64>,
    scopes: String,
}

pub(super) fn provider_unavailable(e: ProviderError) -> ServiceError {
    tracing::warn!(error = %e, "identity provider unavailable");
    ServiceError::new(
        ErrorKind::Unavailable,
        "oauth_provider_unavailable",
        "The identity provider cannot be reached right now. Try again in a moment, or sign in another way.",
    )
}
