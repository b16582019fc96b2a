//! A plain OAuth 2.0 provider's user API (GitHub, Discord; docs/identity-providers.md): who the
//! person is, read with the access token. Its answers are read like every provider answer:
//! bounded in time and size, never following a redirect. What they mean is
//! `latchkey_core::oauth::{profile_from_github, profile_from_discord}`.

use latchkey_core::oauth::{profile_from_discord, profile_from_github, Preset, Protocol, ProviderProfile};
use serde_json::Value;

use super::client::{kind_of, read_limited, ProviderClient, ProviderError};
use super::Provider;

impl ProviderClient {
    /// The person the access token belongs to. Any failure (the token refused, the API down,
    /// an answer without an id) is a [`ProviderError::UserApi`]: nobody is signed in.
    pub async fn user_profile(
        &self,
        provider: &Provider,
        access_token: &str,
    ) -> Result<ProviderProfile, ProviderError> {
        let Protocol::OAuth2 { user_url, emails_url, .. } = &provider.protocol else {
            return Err(ProviderError::UserApi("an OpenID Connect provider has no user API here".into()));
        };
        let github = provider.preset == Some(Preset::GitHub);
        let user = self.user_api_get(user_url, access_token, github).await?;
        let profile = match provider.preset {
            Some(Preset::GitHub) => {
                let emails = match emails_url {
                    Some(url) => self.user_api_get(url, access_token, github).await?,
                    None => Value::Null,
                };
                profile_from_github(&user, &emails)
            }
            Some(Preset::Discord) => profile_from_discord(&user),
            _ => return Err(ProviderError::UserApi("no user API is known for this provider".into())),
        };
        profile.map_err(|e| ProviderError::UserApi(e.to_string()))
    }

    /// `GET` with the access token as a Bearer token. GitHub also requires a `User-Agent`
    /// (every request of this client carries one) and is asked for its own media type.
    async fn user_api_get(&self, url: &str, access_token: &str, github: bool) -> Result<Value, ProviderError> {
        let mut req = self.http.get(url).bearer_auth(access_token);
        req = if github {
            req.header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
        } else {
            req.header(reqwest::header::ACCEPT, "application/json")
        };
        let res = req.send().await.map_err(|e| ProviderError::UserApi(kind_of(&e)))?;
        let status = res.status();
        if !status.is_success() {
            return Err(ProviderError::UserApi(format!("{url} answered {}", status.as_u16())));
        }
        let body = read_limited(res).await.map_err(|e| ProviderError::UserApi(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|_| ProviderError::UserApi(format!("{url} did not answer JSON")))
    }
}
