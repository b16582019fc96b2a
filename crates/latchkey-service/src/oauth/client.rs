//! Talking to identity providers: their discovery documents and keys (cached), the exchange of
//! an authorization code or a refresh token, and the ID token's verification (a plain OAuth 2.0
//! provider's user API is in `user_api`). Every call is bounded in time and never follows
//! redirects; a provider that cannot be reached is a [`ProviderError`], which the flow turns
//! into a clear answer, never a 5xx.

use std::collections::HashMap;
use std::time::Duration;

use latchkey_core::oauth::{issuer_matches, Protocol};
use latchkey_token::{PublicKey, Verifier, VerifierOptions};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use super::Provider;

/// Discovery documents and keys are read again after this long.
const CACHE_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider did not answer, or answered with something other than what OAuth says.
    #[error("the identity provider could not be reached ({0})")]
    Unreachable(String),
    /// The provider refused the code (expired, used, or not ours), or a refresh token
    /// (revoked, expired, already used).
    #[error("the identity provider refused the authorization code ({0})")]
    CodeRefused(String),
    /// The ID token did not verify: its signature, issuer, audience, lifetime or nonce.
    #[error("the identity provider's ID token is not valid ({0})")]
    IdToken(String),
    /// A plain OAuth 2.0 provider's user API did not say who the person is: it refused the
    /// access token, failed, or answered without an id.
    #[error("the identity provider's user API did not name the person ({0})")]
    UserApi(String),
}

/// Where a provider's endpoints are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    /// OpenID Connect: the issuer its ID tokens must name.
    pub issuer: Option<String>,
}

/// What the token endpoint answered. Its `Debug` hides the tokens, so no log can carry them.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_in", &self.expires_in)
            .field("id_token", &self.id_token.as_ref().map(|_| "***"))
            .field("scope", &self.scope)
            .finish()
    }
}

struct Discovered {
    endpoints: Endpoints,
    keys: Vec<PublicKey>,
    fetched_at: i64,
}

pub struct ProviderClient {
    pub(super) http: reqwest::Client,
    cache: RwLock<HashMap<String, std::sync::Arc<Discovered>>>,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A JWK as providers publish it: Microsoft's carry no `alg`.
#[derive(Deserialize)]
struct LooseJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl Default for ProviderClient {
    fn default() -> Self {
        Self::new(&latchkey_core::tls::ExtraRoots::default())
    }
}

impl ProviderClient {
    pub fn new(extra_roots: &latchkey_core::tls::ExtraRoots) -> Self {
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("latchkey");
        let http = crate::trust_extra_roots(builder, extra_roots).build().unwrap_or_default();
        Self { http, cache: RwLock::new(HashMap::new()) }
    }

    /// The provider's endpoints: a preset's own, or its discovery document's.
    pub async fn endpoints(&self, provider: &Provider, now_ms: i64) -> Result<Endpoints, ProviderError> {
        match &provider.protocol {
            Protocol::OAuth2 { authorize_url, token_url, .. } => {
                Ok(Endpoints { authorization: authorize_url.clone(), token: token_url.clone(), issuer: None })
            }
            Protocol::OpenIdConnect { issuer } => Ok(self.discovered(issuer, now_ms, false).await?.endpoints.clone()),
        }
    }

    async fn discovered(
        &self,
        issuer: &str,
        now_ms: i64,
        refresh_keys: bool,
    ) -> Result<std::sync::Arc<Discovered>, ProviderError> {
        if let Some(d) = self.cache.read().await.get(issuer) {
            if now_ms - d.fetched_at < CACHE_MS && !refresh_keys {
                return Ok(d.clone());
            }
        }
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: DiscoveryDocument = self.get_json(&url).await?;
        if !issuer_matches(issuer, &doc.issuer) && doc.issuer != issuer {
            return Err(ProviderError::Unreachable(format!(
                "its discovery document names another issuer: {}",
                doc.issuer
            )));
        }
        // The document's endpoints are held to the issuer's rule: https (http only on
        // loopback), so the client secret and codes never travel in clear; and plain http only
        // for an issuer that is itself plain http, so a remote issuer cannot point latchkey at a
        // service on its own loopback.
        for endpoint in [&doc.authorization_endpoint, &doc.token_endpoint, &doc.jwks_uri] {
            if !discovered_endpoint_allowed(issuer, endpoint) {
                return Err(ProviderError::Unreachable(format!(
                    "its discovery document names an endpoint that is not https: {endpoint}"
                )));
            }
        }
        let keys = self.keys(&doc.jwks_uri).await?;
        let found = std::sync::Arc::new(Discovered {
            endpoints: Endpoints {
                authorization: doc.authorization_endpoint,
                token: doc.token_endpoint,
                issuer: Some(issuer.to_owned()),
            },
            keys,
            fetched_at: now_ms,
        });
        self.cache.write().await.insert(issuer.to_owned(), found.clone());
        Ok(found)
    }

    async fn keys(&self, jwks_uri: &str) -> Result<Vec<PublicKey>, ProviderError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<LooseJwk>,
        }
        let set: Set = self.get_json(jwks_uri).await?;
        Ok(set
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && k.alg.as_deref().is_none_or(|a| a == "RS256"))
            .filter(|k| k.usage.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let n = b64url(k.n.as_deref()?)?;
                let e = b64url(k.e.as_deref()?)?;
                let key = PublicKey::from_components(&n, &e, k.kid.unwrap_or_default()).ok()?;
                (key.modulus_bits() >= 2048).then_some(key)
            })
            .collect())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ProviderError> {
        let res = self.http.get(url).send().await.map_err(|e| ProviderError::Unreachable(kind_of(&e)))?;
        if !res.status().is_success() {
            return Err(ProviderError::Unreachable(format!("{url} answered {}", res.status().as_u16())));
        }
        let body = read_limited(res).await?;
        serde_json::from_slice(&body).map_err(|_| ProviderError::Unreachable(format!("{url} did not answer JSON")))
    }

    /// Exchanges the authorization code (with the PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        provider: &Provider,
        endpoints: &Endpoints,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: &str,
    ) -> Result<TokenResponse, ProviderError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", provider.client_id.as_str()),
            ("client_secret", provider.client_secret.expose()),
            ("code_verifier", pkce_verifier),
        ];
        self.token_request(endpoints, &form).await
    }

    /// Trades a refresh token for a new access token (RFC 6749 section 6). A refusal
    /// (`invalid_grant`: revoked, expired, already used) is [`ProviderError::CodeRefused`].
    pub async fn refresh_access_token(
        &self,
        provider: &Provider,
        endpoints: &Endpoints,
        refresh_token: &str,
    ) -> Result<TokenResponse, ProviderError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", provider.client_id.as_str()),
            ("client_secret", provider.client_secret.expose()),
        ];
        self.token_request(endpoints, &form).await
    }

    /// One request to the token endpoint (`client_secret_post`, JSON asked for, the answer
    /// bounded): the provider's refusal is [`ProviderError::CodeRefused`], its failure
    /// [`ProviderError::Unreachable`].
    async fn token_request(
        &self,
        endpoints: &Endpoints,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, ProviderError> {
        let res = self
            .http
            .post(&endpoints.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(kind_of(&e)))?;
        let status = res.status();
        let body: Value = serde_json::from_slice(&read_limited(res).await?).unwrap_or(Value::Null);
        if status.is_server_error() {
            return Err(ProviderError::Unreachable(format!("the token endpoint answered {}", status.as_u16())));
        }
        // GitHub answers errors with 200 and an `error` field.
        if let Some(error) = body.get("error").and_then(Value::as_str) {
            return Err(ProviderError::CodeRefused(error.chars().take(64).collect()));
        }
        if !status.is_success() {
            return Err(ProviderError::CodeRefused(format!("status {}", status.as_u16())));
        }
        serde_json::from_value(body).map_err(|_| ProviderError::Unreachable("the token endpoint's answer".into()))
    }

    /// Verifies an ID token (RS256 signature from the provider's keys, `iss`, `aud`, `exp`)
    /// and returns its claims; the nonce is checked by the caller. An unknown `kid` reads the
    /// keys once more (the provider rotated them).
    pub async fn verify_id_token(
        &self,
        provider: &Provider,
        issuer: &str,
        id_token: &str,
        now_ms: i64,
    ) -> Result<Map<String, Value>, ProviderError> {
        let mut discovered = self.discovered(issuer, now_ms, false).await?;
        let kid = Verifier::peek_kid(id_token).unwrap_or_default();
        if !discovered.keys.iter().any(|k| k.kid == kid) {
            discovered = self.discovered(issuer, now_ms, true).await?;
        }
        let options = VerifierOptions {
            // The tenant-specific issuer is checked below; the verifier takes any.
            issuers: None,
            authorized_parties: None,
            audiences: Some(vec![provider.client_id.clone()]),
            leeway_secs: 60,
        };
        let verifier = Verifier::new(discovered.keys.iter().cloned(), options);
        let verified = verifier.verify(id_token, now_ms / 1000).map_err(|e| ProviderError::IdToken(e.to_string()))?;
        let iss = verified.claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        if !issuer_matches(issuer, iss) {
            return Err(ProviderError::IdToken("the token's issuer is not the provider".into()));
        }
        Ok(verified.claims)
    }
}

/// Whether a discovery document's endpoint may be used: `https://`, or plain `http://` on a
/// loopback host for an issuer that is itself plain http (a development provider).
fn discovered_endpoint_allowed(issuer: &str, endpoint: &str) -> bool {
    match super::issuer_url(endpoint) {
        Ok(checked) => checked.starts_with("https://") || !issuer.starts_with("https://"),
        Err(_) => false,
    }
}

/// A provider's answers are small; a larger one is refused, not read into memory.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

pub(super) async fn read_limited(mut res: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let too_large = || ProviderError::Unreachable(format!("an answer larger than {MAX_ANSWER_BYTES} bytes"));
    if res.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| ProviderError::Unreachable(kind_of(&e)))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn b64url(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// What went wrong with a request, without its URL's query (which may hold a code).
pub(super) fn kind_of(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::discovered_endpoint_allowed;

    #[test]
    fn a_remote_issuer_cannot_point_at_loopback() {
        assert!(discovered_endpoint_allowed("https://id.example", "https://id.example/token"));
        assert!(!discovered_endpoint_allowed("https://id.example", "http://127.0.0.1:8080/token"));
        assert!(!discovered_endpoint_allowed("https://id.example", "http://id.example/token"));
        assert!(discovered_endpoint_allowed("http://127.0.0.1:9000", "http://127.0.0.1:9000/token"));
        assert!(!discovered_endpoint_allowed("http://127.0.0.1:9000", "http://10.0.0.1/token"));
    }
}
