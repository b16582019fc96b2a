//! Sign-in with an identity provider, the rules without I/O (docs/identity-providers.md):
//! which providers latchkey knows by name and how Clerk names their strategies, the PKCE and
//! nonce values of one attempt, and what a verified ID token says about the person.
//!
//! Every per-attempt secret is derived from the attempt's `state` with an instance key, so the
//! store keeps only the state's digest: the PKCE verifier and the nonce are never stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The providers latchkey knows by name. Any other OpenID Connect provider is configured by
/// its issuer and signs in as `oauth_custom_<key>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Google,
    GitHub,
    Microsoft,
    Apple,
    Discord,
    GitLab,
}

/// How latchkey talks to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// OpenID Connect: endpoints and keys from the issuer's discovery document; the person is
    /// named by a verified ID token.
    OpenIdConnect { issuer: String },
    /// Plain OAuth 2.0 (GitHub, Discord): the person is read from the provider's user API with
    /// the access token.
    OAuth2 { authorize_url: String, token_url: String, user_url: String, emails_url: Option<String> },
}

impl Preset {
    pub const ALL: [Preset; 6] =
        [Preset::Google, Preset::GitHub, Preset::Microsoft, Preset::Apple, Preset::Discord, Preset::GitLab];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.key() == name)
    }

    /// The configuration name, and the suffix of Clerk's strategy (`oauth_google`).
    pub fn key(self) -> &'static str {
        match self {
            Preset::Google => "google",
            Preset::GitHub => "github",
            Preset::Microsoft => "microsoft",
            Preset::Apple => "apple",
            Preset::Discord => "discord",
            Preset::GitLab => "gitlab",
        }
    }

    /// The name a sign-in button shows.
    pub fn display_name(self) -> &'static str {
        match self {
            Preset::Google => "Google",
            Preset::GitHub => "GitHub",
            Preset::Microsoft => "Microsoft",
            Preset::Apple => "Apple",
            Preset::Discord => "Discord",
            Preset::GitLab => "GitLab",
        }
    }

    /// The provider's own endpoints. Microsoft's issuer depends on the tenant of each person
    /// (`common` accepts every tenant), so its ID tokens are checked against the tenant they
    /// name (see [`issuer_matches`]).
    pub fn protocol(self) -> Protocol {
        let oidc = |issuer: &str| Protocol::OpenIdConnect { issuer: issuer.to_owned() };
        match self {
            Preset::Google => oidc("https://accounts.google.com"),
            Preset::Microsoft => oidc("https://login.microsoftonline.com/common/v2.0"),
            Preset::Apple => oidc("https://appleid.apple.com"),
            Preset::GitLab => oidc("https://gitlab.com"),
            Preset::GitHub => Protocol::OAuth2 {
                authorize_url: "https://github.com/login/oauth/authorize".into(),
                token_url: "https://github.com/login/oauth/access_token".into(),
                user_url: "https://api.github.com/user".into(),
                emails_url: Some("https://api.github.com/user/emails".into()),
            },
            Preset::Discord => Protocol::OAuth2 {
                authorize_url: "https://discord.com/oauth2/authorize".into(),
                token_url: "https://discord.com/api/oauth2/token".into(),
                user_url: "https://discord.com/api/users/@me".into(),
                emails_url: None,
            },
        }
    }

    /// The scopes asked for unless the configuration names others.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Preset::GitHub => &["read:user", "user:email"],
            Preset::Discord => &["identify", "email"],
            Preset::Apple => &["openid", "email", "name"],
            _ => &["openid", "email", "profile"],
        }
    }
}

/// Why a provider's configuration key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderKeyError {
    #[error("a provider key is lower-case letters a-z only (it becomes the strategy oauth_custom_<key>)")]
    Characters,
}

/// Clerk's strategy for a configured provider: a preset's own name, `oauth_custom_<key>` for
/// any other. Clerk's document only allows lower-case letters after the prefix.
pub fn strategy_for(key: &str, preset: Option<Preset>) -> Result<String, ProviderKeyError> {
    if let Some(p) = preset {
        return Ok(format!("oauth_{}", p.key()));
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ProviderKeyError::Characters);
    }
    Ok(format!("oauth_custom_{key}"))
}

/// An ID token's issuer is the provider's. Microsoft's multi-tenant issuer names `{tenantid}`
/// (or `common`) in place of the person's tenant.
pub fn issuer_matches(expected: &str, actual: &str) -> bool {
    if expected == actual {
        return true;
    }
    match expected.strip_prefix("https://login.microsoftonline.com/").and_then(|r| r.strip_suffix("/v2.0")) {
        Some("common" | "organizations" | "consumers" | "{tenantid}") => actual
            .strip_prefix("https://login.microsoftonline.com/")
            .and_then(|r| r.strip_suffix("/v2.0"))
            .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/')),
        _ => false,
    }
}

/// The secrets of one attempt, derived from its `state` with the instance key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSecrets {
    /// RFC 7636 `code_verifier` (43 characters of base64url).
    pub pkce_verifier: String,
    /// `code_challenge` for `code_challenge_method=S256`.
    pub pkce_challenge: String,
    /// The ID token's expected `nonce`.
    pub nonce: String,
}

pub fn attempt_secrets(key: &[u8], state: &str) -> AttemptSecrets {
    let derive = |label: &str| {
        let digest = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(label.as_bytes());
                mac.update(b"\0");
                mac.update(state.as_bytes());
                mac.finalize().into_bytes()
            }
            // Unreachable (HMAC takes keys of any length); still keyed, never a constant.
            Err(_) => Sha256::new().chain_update(key).chain_update(label).chain_update(state).finalize(),
        };
        URL_SAFE_NO_PAD.encode(digest)
    };
    let pkce_verifier = derive("oauth pkce");
    let pkce_challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pkce_verifier.as_bytes()));
    AttemptSecrets { pkce_verifier, pkce_challenge, nonce: derive("oauth nonce") }
}

/// What a provider says about the person, from a verified ID token or a user API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderProfile {
    /// The provider's stable id of the person (`sub`).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for the address. Only such an address may join an account
    /// that already has it.
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub username: Option<String>,
}

/// Why an ID token's claims are refused (after its signature, `iss`, `aud` and `exp` passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the ID token's nonce is not this attempt's")]
    Nonce,
    #[error("the ID token names no subject")]
    Subject,
}

/// The person named by a verified ID token, once its `nonce` is this attempt's.
pub fn profile_from_id_token(claims: &Map<String, Value>, nonce: &str) -> Result<ProviderProfile, ClaimsError> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let nonce_ok = text("nonce").is_some_and(|n| crate::secret::constant_time_eq(n.as_bytes(), nonce.as_bytes()));
    if !nonce_ok {
        return Err(ClaimsError::Nonce);
    }
    let subject = text("sub").ok_or(ClaimsError::Subject)?.to_owned();
    // Apple sends `email_verified` as the string "true".
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(ProviderProfile {
        subject,
        email: text("email").map(str::to_owned),
        email_verified,
        first_name: text("given_name").map(str::to_owned),
        last_name: text("family_name").map(str::to_owned),
        image_url: text("picture").map(str::to_owned),
        username: text("preferred_username").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn presets_and_custom_keys_name_clerks_strategies() {
        assert_eq!(strategy_for("anything", Some(Preset::Google)).unwrap(), "oauth_google");
        assert_eq!(strategy_for("acme", None).unwrap(), "oauth_custom_acme");
        for bad in ["", "Acme", "acme_sso", "acme1", "ac-me"] {
            assert_eq!(strategy_for(bad, None), Err(ProviderKeyError::Characters), "{bad}");
        }
        for p in Preset::ALL {
            assert_eq!(Preset::parse(p.key()), Some(p));
        }
        assert_eq!(Preset::parse("myspace"), None);
    }

    #[test]
    fn microsoft_tokens_name_their_tenant() {
        let common = "https://login.microsoftonline.com/common/v2.0";
        assert!(issuer_matches(common, "https://login.microsoftonline.com/9188040d-6c67-4c5b/v2.0"));
        assert!(!issuer_matches(common, "https://login.microsoftonline.com//v2.0"));
        assert!(!issuer_matches(common, "https://evil.example/9188040d/v2.0"));
        assert!(!issuer_matches("https://accounts.google.com", "https://accounts.google.com.evil"));
        assert!(issuer_matches("https://accounts.google.com", "https://accounts.google.com"));
    }

    #[test]
    fn attempt_secrets_are_derived_and_distinct() {
        let a = attempt_secrets(b"instance key", "state-1");
        assert_eq!(a, attempt_secrets(b"instance key", "state-1"));
        assert_ne!(a, attempt_secrets(b"instance key", "state-2"));
        assert_ne!(a, attempt_secrets(b"another key", "state-1"));
        assert_ne!(a.pkce_verifier, a.nonce);
        assert_eq!(a.pkce_verifier.len(), 43);
        // RFC 7636 appendix B: the challenge is base64url(SHA-256(verifier)).
        let rfc = URL_SAFE_NO_PAD.encode(Sha256::digest(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert_eq!(rfc, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(a.pkce_challenge, URL_SAFE_NO_PAD.encode(Sha256::digest(a.pkce_verifier.as_bytes())));
    }

    #[test]
    fn the_profile_needs_this_attempts_nonce() {
        let claims = |v: Value| v.as_object().cloned().unwrap();
        let good = claims(json!({"sub": "g-1", "nonce": "n1", "email": "a@example.com", "email_verified": true,
            "given_name": "Ada", "family_name": "Lovelace", "picture": "https://img/ada.png"}));
        let p = profile_from_id_token(&good, "n1").unwrap();
        assert_eq!(p.subject, "g-1");
        assert!(p.email_verified);
        assert_eq!(p.first_name.as_deref(), Some("Ada"));
        assert_eq!(profile_from_id_token(&good, "n2"), Err(ClaimsError::Nonce));
        let no_nonce = claims(json!({"sub": "g-1", "email": "a@example.com"}));
        assert_eq!(profile_from_id_token(&no_nonce, "n1"), Err(ClaimsError::Nonce));
        let no_sub = claims(json!({"nonce": "n1"}));
        assert_eq!(profile_from_id_token(&no_sub, "n1"), Err(ClaimsError::Subject));
        let apple = claims(json!({"sub": "a-1", "nonce": "n1", "email": "b@example.com", "email_verified": "true"}));
        assert!(profile_from_id_token(&apple, "n1").unwrap().email_verified);
        let unverified = claims(json!({"sub": "a-1", "nonce": "n1", "email": "b@example.com"}));
        assert!(!profile_from_id_token(&unverified, "n1").unwrap().email_verified);
    }
}
