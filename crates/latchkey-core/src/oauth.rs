//! Sign-in with an identity provider, the rules without I/O (docs/identity-providers.md):
//! which providers latchkey knows by name and how Clerk names their strategies, the PKCE and
//! nonce values of one attempt, and what a verified ID token or a user API (GitHub, Discord)
//! says about the person.
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
/// (or `common`) in place of the person's tenant. The configured issuer is kept without a
/// trailing `/`, which some providers' issuers end with (Auth0's `https://<tenant>.auth0.com/`):
/// one `/` more is the same issuer, anything else is not.
pub fn issuer_matches(expected: &str, actual: &str) -> bool {
    if expected == actual || actual.strip_suffix('/') == Some(expected) {
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

/// What the `state` of one trip to a provider carries. It is signed with the instance key, so
/// nothing is stored for it: the attempt it names is checked to be still where the state left
/// it (same client, same version), which makes it single use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateClaims {
    /// The sign-in or sign-up this trip belongs to.
    #[serde(rename = "a")]
    pub attempt_id: String,
    /// The client that started it: only that browser may come back with it.
    #[serde(rename = "c")]
    pub client_id: String,
    /// The attempt's version when the trip started: any later change spends the state.
    #[serde(rename = "v")]
    pub version: i64,
    /// The provider's configuration key.
    #[serde(rename = "p")]
    pub provider: String,
    /// Milliseconds since 1970.
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// Random, so that two trips never share a state (nor their PKCE verifier and nonce).
    #[serde(rename = "s")]
    pub salt: String,
    /// Where the browser goes back to (the app's callback page), already checked.
    #[serde(rename = "r")]
    pub redirect_url: String,
    /// Where it goes once signed in, when the app names a page of its own.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub action_complete_redirect_url: Option<String>,
    /// A signed-in user connecting an account (`/v1/me/external_accounts`) rather than a
    /// sign-in: `attempt_id` is then their session, and `version` 0.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectClaims>,
}

/// Who connects which account on a trip that is not a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectClaims {
    #[serde(rename = "u")]
    pub user_id: String,
    /// The id the account will have (a new one), or the account being reauthorized.
    #[serde(rename = "i")]
    pub account_id: String,
    /// Reauthorizing `account_id` (more scopes): the provider must name the same person.
    #[serde(rename = "r", default)]
    pub reauthorize: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is missing or malformed")]
    Malformed,
    #[error("the state was not made by this instance")]
    Signature,
    #[error("the state has expired")]
    Expired,
}

fn state_mac(key: &[u8], payload: &str) -> Vec<u8> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(b"oauth state\0");
            mac.update(payload.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Sha256::new().chain_update(key).chain_update(payload).finalize().to_vec(),
    }
}

/// `base64url(JSON).base64url(HMAC)`.
pub fn seal_state(key: &[u8], claims: &StateClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let mac = URL_SAFE_NO_PAD.encode(state_mac(key, &payload));
    format!("{payload}.{mac}")
}

/// The claims of a state this instance made, unless it has expired.
pub fn open_state(key: &[u8], state: &str, now_ms: i64) -> Result<StateClaims, StateError> {
    if state.len() > 4096 {
        return Err(StateError::Malformed);
    }
    let (payload, mac) = state.split_once('.').ok_or(StateError::Malformed)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| StateError::Malformed)?;
    if !crate::secret::constant_time_eq(&mac, &state_mac(key, payload)) {
        return Err(StateError::Signature);
    }
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| StateError::Malformed)?;
    let claims: StateClaims = serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
    if claims.expires_at <= now_ms {
        return Err(StateError::Expired);
    }
    Ok(claims)
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

/// The longest name or username kept from a provider, in characters (the users table's rule).
const MAX_NAME_CHARS: usize = 256;
/// The longest picture URL kept from a provider; a longer one is dropped.
const MAX_IMAGE_URL_LEN: usize = 2048;

impl ProviderProfile {
    /// The address the provider vouches for, normalized, when it may stand for a mailbox: an
    /// ASCII address that normalizing leaves as it is. A look-alike that normalizes to another
    /// (a KELVIN SIGN lower-cases to `k`) is another mailbox, so it is vouched for by nobody:
    /// it neither joins an account nor makes a verified address on sign-up.
    pub fn vouched_email(&self) -> Option<String> {
        let raw = self.email.as_deref().filter(|e| self.email_verified && e.is_ascii())?;
        crate::email::normalize_email(raw).filter(|n| *n == raw.trim().to_ascii_lowercase())
    }

    /// The profile with what a provider sent held to latchkey's limits: names and username cut
    /// to 256 characters, a picture URL longer than 2048 bytes dropped, and `email_verified`
    /// kept only for an address [`Self::vouched_email`] accepts.
    pub fn bounded(mut self) -> Self {
        let cut = |v: Option<String>| v.map(|s| s.chars().take(MAX_NAME_CHARS).collect::<String>());
        self.first_name = cut(self.first_name);
        self.last_name = cut(self.last_name);
        self.username = cut(self.username);
        self.image_url = self.image_url.filter(|u| u.len() <= MAX_IMAGE_URL_LEN);
        self.email_verified = self.vouched_email().is_some();
        self
    }
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

/// Why a user API's answer names nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserApiError {
    #[error("the user API's answer names no id")]
    Id,
}

/// A JSON value as trimmed, non-empty text.
fn text_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The provider's id of the person: a number (GitHub) or a string (Discord's snowflakes).
fn id_of(v: Option<&Value>) -> Result<String, UserApiError> {
    match v {
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => Ok(s.trim().to_owned()),
        _ => Err(UserApiError::Id),
    }
}

/// GitHub's `GET /user` and `GET /user/emails`. The address is the primary one, and it is
/// vouched for only when GitHub says it is verified; any other (a verified secondary address)
/// is never taken for the person's. `name` is split at its first space.
pub fn profile_from_github(user: &Value, emails: &Value) -> Result<ProviderProfile, UserApiError> {
    let subject = id_of(user.get("id"))?;
    let primary = emails
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .and_then(|e| Some((text_of(e.get("email"))?, e.get("verified").and_then(Value::as_bool) == Some(true))));
    // Without a primary address, the public one of the profile (never vouched for).
    let (email, email_verified) = match primary {
        Some((email, verified)) => (Some(email), verified),
        None => (text_of(user.get("email")), false),
    };
    let name = text_of(user.get("name"));
    let (first_name, last_name) = match name.as_deref().map(|n| n.split_once(' ')) {
        Some(Some((first, last))) => (Some(first.to_owned()), Some(last.trim().to_owned()).filter(|l| !l.is_empty())),
        Some(None) => (name.clone(), None),
        None => (None, None),
    };
    Ok(ProviderProfile {
        subject,
        email,
        email_verified,
        first_name,
        last_name,
        image_url: text_of(user.get("avatar_url")),
        username: text_of(user.get("login")),
    })
}

/// Discord's `GET /users/@me`: the address is vouched for when `verified` is true. The picture
/// is built from the avatar's hash on Discord's CDN.
pub fn profile_from_discord(user: &Value) -> Result<ProviderProfile, UserApiError> {
    let subject = id_of(user.get("id"))?;
    let email = text_of(user.get("email"));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let image_url = text_of(user.get("avatar"))
        .filter(|hash| plain(hash) && plain(&subject))
        .map(|hash| format!("https://cdn.discordapp.com/avatars/{subject}/{hash}.png"));
    Ok(ProviderProfile {
        email_verified: email.is_some() && user.get("verified").and_then(Value::as_bool) == Some(true),
        email,
        first_name: text_of(user.get("global_name")),
        last_name: None,
        image_url,
        username: text_of(user.get("username")),
        subject,
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
        // A trailing slash (Auth0), once; nothing more.
        assert!(issuer_matches("https://tenant.auth0.com", "https://tenant.auth0.com/"));
        assert!(!issuer_matches("https://tenant.auth0.com", "https://tenant.auth0.com//"));
        assert!(!issuer_matches("https://tenant.auth0.com", "https://tenant.auth0.com/x"));
        assert!(!issuer_matches("https://tenant.auth0.com/", "https://tenant.auth0.com"));
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
    fn only_plain_addresses_are_vouched_for_and_profiles_are_bounded() {
        let profile = |email: &str, verified: bool| ProviderProfile {
            subject: "s".into(),
            email: Some(email.into()),
            email_verified: verified,
            first_name: Some("é".repeat(300)),
            last_name: None,
            image_url: Some(format!("https://img.test/{}", "a".repeat(3000))),
            username: Some("u".into()),
        };
        assert_eq!(profile(" Ada@Example.com", true).vouched_email().as_deref(), Some("ada@example.com"));
        assert_eq!(profile("ada@example.com", false).vouched_email(), None);
        // KELVIN SIGN: normalizes to kevin@, which is another mailbox.
        let kelvin = profile("\u{212A}evin@example.com", true);
        assert_eq!(kelvin.vouched_email(), None);
        let bounded = kelvin.bounded();
        assert!(!bounded.email_verified, "a look-alike is not verified on sign-up either");
        assert_eq!(bounded.first_name.as_ref().map(|n| n.chars().count()), Some(256));
        assert_eq!((bounded.image_url, bounded.username.as_deref()), (None, Some("u")));
        assert!(profile("ada@example.com", true).bounded().email_verified);
    }

    #[test]
    fn states_are_signed_and_expire() {
        let claims = StateClaims {
            attempt_id: "sia_1".into(),
            client_id: "client_1".into(),
            version: 1,
            provider: "google".into(),
            expires_at: 10_000,
            salt: "abc".into(),
            redirect_url: "http://app.test/sso-callback".into(),
            action_complete_redirect_url: None,
            connect: None,
        };
        let state = seal_state(b"key", &claims);
        // A connection's claims travel too.
        let connect = StateClaims {
            connect: Some(ConnectClaims { user_id: "user_1".into(), account_id: "eac_1".into(), reauthorize: true }),
            ..claims.clone()
        };
        assert_eq!(open_state(b"key", &seal_state(b"key", &connect), 1), Ok(connect));
        assert_eq!(open_state(b"key", &state, 9_999), Ok(claims.clone()));
        assert_eq!(open_state(b"key", &state, 10_000), Err(StateError::Expired));
        assert_eq!(open_state(b"other key", &state, 1), Err(StateError::Signature));
        let (payload, mac) = state.split_once('.').unwrap();
        let mut forged = claims.clone();
        forged.client_id = "client_2".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(open_state(b"key", &format!("{forged_payload}.{mac}"), 1), Err(StateError::Signature));
        for bad in ["", "nodot", &format!("{payload}."), &format!("{payload}.!!")] {
            assert!(open_state(b"key", bad, 1).is_err(), "{bad}");
        }
        assert_eq!(open_state(b"key", &"a".repeat(5000), 1), Err(StateError::Malformed));
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

    #[test]
    fn github_vouches_only_for_a_verified_primary_address() {
        let user = json!({"id": 1001, "login": "ada-l", "name": "Ada King Lovelace",
            "avatar_url": "https://avatars.example/1001", "email": "public@example.com"});
        let emails = json!([
            {"email": "work@example.com", "primary": false, "verified": true},
            {"email": "ada@example.com", "primary": true, "verified": true},
        ]);
        let p = profile_from_github(&user, &emails).unwrap();
        assert_eq!(p.subject, "1001");
        assert_eq!((p.email.as_deref(), p.email_verified), (Some("ada@example.com"), true));
        assert_eq!((p.first_name.as_deref(), p.last_name.as_deref()), (Some("Ada"), Some("King Lovelace")));
        assert_eq!(p.username.as_deref(), Some("ada-l"));
        assert_eq!(p.image_url.as_deref(), Some("https://avatars.example/1001"));

        // An unverified primary address is carried, never vouched for; a verified secondary
        // one is not taken for it.
        let emails = json!([
            {"email": "victim@example.com", "primary": true, "verified": false},
            {"email": "eve@example.com", "primary": false, "verified": true},
        ]);
        let p = profile_from_github(&user, &emails).unwrap();
        assert_eq!((p.email.as_deref(), p.email_verified), (Some("victim@example.com"), false));
        // No addresses at all: the profile's public one, unvouched.
        let p = profile_from_github(&user, &json!([])).unwrap();
        assert_eq!((p.email.as_deref(), p.email_verified), (Some("public@example.com"), false));
        let p = profile_from_github(&json!({"id": 7, "name": "Cher"}), &Value::Null).unwrap();
        assert_eq!((p.email, p.first_name.as_deref(), p.last_name), (None, Some("Cher"), None));
        assert!(!p.email_verified);
        // An id is required: a number, or a non-empty string.
        for bad in [json!({}), json!({"id": null}), json!({"id": ""}), json!({"id": -1}), json!({"id": 1.5})] {
            assert_eq!(profile_from_github(&bad, &emails), Err(UserApiError::Id), "{bad}");
        }
    }

    #[test]
    fn discord_vouches_for_a_verified_address() {
        let user = json!({"id": "80351110224678912", "username": "nelly", "global_name": "Nelly",
            "avatar": "8342729096ea3675442027381ff50dfe", "email": "nelly@example.com", "verified": true});
        let p = profile_from_discord(&user).unwrap();
        assert_eq!(p.subject, "80351110224678912");
        assert_eq!((p.email.as_deref(), p.email_verified), (Some("nelly@example.com"), true));
        assert_eq!((p.username.as_deref(), p.first_name.as_deref()), (Some("nelly"), Some("Nelly")));
        assert_eq!(
            p.image_url.as_deref(),
            Some("https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png")
        );
        let unverified = json!({"id": "1", "email": "a@example.com", "verified": false, "avatar": "../x"});
        let p = profile_from_discord(&unverified).unwrap();
        assert!(!p.email_verified);
        assert_eq!(p.image_url, None, "an avatar hash that is not plain makes no URL");
        let no_email = profile_from_discord(&json!({"id": "1", "verified": true})).unwrap();
        assert!(!no_email.email_verified);
        assert_eq!(profile_from_discord(&json!({"username": "x"})), Err(UserApiError::Id));
    }
}
