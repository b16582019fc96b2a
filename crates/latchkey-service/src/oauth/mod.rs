//! Sign-in with identity providers (docs/identity-providers.md): the providers of
//! `[oauth.<key>]`, checked once at start. The rules without I/O are in
//! `latchkey_core::oauth`.

use std::collections::BTreeMap;

use latchkey_core::oauth::{strategy_for, Preset, Protocol};
use latchkey_core::secret::ConfigSecret;
use serde::{Deserialize, Serialize};

/// One `[oauth.<key>]` table of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    pub client_id: String,
    pub client_secret: ConfigSecret,
    /// `google`, `github`, `microsoft`, `apple`, `discord` or `gitlab`; without it, a key
    /// that is a preset's name means that preset, and any other key needs an `issuer`.
    pub preset: Option<String>,
    /// Any OpenID Connect provider, by its issuer (endpoints and keys come from its discovery
    /// document). With a preset of OpenID Connect, replaces the preset's issuer.
    pub issuer: Option<String>,
    /// The scopes asked for; the preset's (or `openid email profile`) when absent.
    pub scopes: Option<Vec<String>>,
    /// Whether a person without an account may create one with this provider.
    pub sign_up: bool,
    /// The button's label for a custom provider (a preset has its own name).
    pub name: Option<String>,
    /// A plain OAuth 2.0 preset's endpoints (GitHub, Discord), replaced (a test provider, an
    /// enterprise server): `https://`, or `http://` on a loopback host only, like `issuer`.
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub user_url: Option<String>,
    /// GitHub's `/user/emails`.
    pub emails_url: Option<String>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: ConfigSecret::default(),
            preset: None,
            issuer: None,
            scopes: None,
            sign_up: true,
            name: None,
            authorize_url: None,
            token_url: None,
            user_url: None,
            emails_url: None,
        }
    }
}

/// `[oauth]`: the providers, by key.
pub mod client;
/// GitHub's and Discord's user APIs.
pub mod user_api;

/// What a person is told when a provider's trip failed (Clerk's error `code` on the
/// verification), on the hosted pages and in the Frontend API's error.
pub fn trip_error_message(code: &str) -> &'static str {
    match code {
        "external_account_not_found" => "The External Account was not found.",
        "oauth_access_denied" => "You did not grant access to your account at the provider.",
        "oauth_provider_unavailable" => "The identity provider could not be reached. Try again in a moment.",
        "oauth_fetch_user_error" => "The identity provider did not say who you are. Try again in a moment.",
        _ => "Signing in with the identity provider failed. Try again.",
    }
}

pub type OAuthConfig = BTreeMap<String, ProviderConfig>;

/// A provider ready to use.
#[derive(Debug, Clone)]
pub struct Provider {
    pub key: String,
    /// Clerk's strategy: `oauth_google`, `oauth_custom_<key>`.
    pub strategy: String,
    pub name: String,
    /// The preset, when the provider is one (a plain OAuth 2.0 preset's user API is its own).
    pub preset: Option<Preset>,
    pub protocol: Protocol,
    pub client_id: String,
    pub client_secret: ConfigSecret,
    pub scopes: Vec<String>,
    pub sign_up: bool,
}

/// The configured providers, or what is wrong with one (a start-up error).
pub fn providers(config: &OAuthConfig) -> Result<Vec<Provider>, String> {
    let list: Vec<Provider> = config
        .iter()
        .map(|(key, c)| provider(key, c).map_err(|e| format!("[oauth.{key}]: {e}")))
        .collect::<Result<_, _>>()?;
    // A strategy names one provider: two tables with the same preset would shadow each other.
    for (i, p) in list.iter().enumerate() {
        if let Some(first) = list[..i].iter().find(|q| q.strategy == p.strategy) {
            return Err(format!("[oauth.{}] and [oauth.{}] are both {}: keep one", first.key, p.key, p.strategy));
        }
    }
    Ok(list)
}

fn provider(key: &str, c: &ProviderConfig) -> Result<Provider, String> {
    let preset = match c.preset.as_deref() {
        Some(name) => Some(Preset::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Preset::ALL.iter().map(|p| p.key()).collect();
            format!("unknown preset {name:?} (known: {})", known.join(", "))
        })?),
        // A key that is a preset's name is that preset (its issuer may still be replaced).
        None => match Preset::parse(key) {
            Some(p) => Some(p),
            None if c.issuer.is_none() => {
                return Err("set `preset` (google, github, …) or `issuer` (any OpenID Connect provider)".into())
            }
            None => None,
        },
    };
    let strategy = strategy_for(key, preset).map_err(|e| e.to_string())?;
    if c.client_id.trim().is_empty() || c.client_secret.expose().is_empty() {
        return Err("client_id and client_secret are required".into());
    }
    let protocol = match (&c.issuer, preset.map(Preset::protocol)) {
        (Some(_), Some(Protocol::OAuth2 { .. })) => {
            return Err("`issuer` is for OpenID Connect providers; this preset speaks plain OAuth 2.0".into())
        }
        (Some(issuer), _) => Protocol::OpenIdConnect { issuer: issuer_url(issuer)? },
        (None, Some(p)) => p,
        (None, None) => return Err("set `preset` or `issuer`".into()),
    };
    let protocol = with_endpoints(protocol, c)?;
    let scopes = match &c.scopes {
        Some(s) => s.clone(),
        None => preset
            .map_or(&["openid", "email", "profile"][..], Preset::default_scopes)
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    };
    let name = match (preset, &c.name) {
        (_, Some(n)) => n.clone(),
        (Some(p), None) => p.display_name().to_owned(),
        (None, None) => key.to_owned(),
    };
    Ok(Provider {
        key: key.to_owned(),
        strategy,
        name,
        preset,
        protocol,
        client_id: c.client_id.trim().to_owned(),
        client_secret: c.client_secret.clone(),
        scopes,
        sign_up: c.sign_up,
    })
}

/// A plain OAuth 2.0 preset's endpoints, with those the table replaces. Only such a preset
/// has them to replace.
fn with_endpoints(protocol: Protocol, c: &ProviderConfig) -> Result<Protocol, String> {
    let overrides = [&c.authorize_url, &c.token_url, &c.user_url, &c.emails_url];
    let Protocol::OAuth2 { authorize_url, token_url, user_url, emails_url } = protocol else {
        if overrides.iter().any(|o| o.is_some()) {
            return Err("`authorize_url`, `token_url`, `user_url` and `emails_url` replace the endpoints of a plain \
                        OAuth 2.0 preset (github, discord); an OpenID Connect provider is named by its `issuer`"
                .into());
        }
        return Ok(protocol);
    };
    let pick = |what: &str, given: &Option<String>, preset: String| match given {
        Some(raw) => endpoint_url(what, raw),
        None => Ok(preset),
    };
    let emails_url = match (emails_url, &c.emails_url) {
        (None, Some(_)) => return Err("`emails_url`: this preset reads the address from its user API".into()),
        (None, None) => None,
        (Some(preset), given) => Some(pick("emails_url", given, preset)?),
    };
    Ok(Protocol::OAuth2 {
        authorize_url: pick("authorize_url", &c.authorize_url, authorize_url)?,
        token_url: pick("token_url", &c.token_url, token_url)?,
        user_url: pick("user_url", &c.user_url, user_url)?,
        emails_url,
    })
}

/// An issuer is an `https://` URL (`http://` only on a loopback host, for development and
/// tests), without a query or fragment.
pub(crate) fn issuer_url(raw: &str) -> Result<String, String> {
    Ok(endpoint_url("issuer", raw)?.trim_end_matches('/').to_owned())
}

/// An endpoint of a provider, held to the issuer's rule: `https://` (`http://` only on a
/// loopback host), without a query or fragment, so the client secret, codes and tokens never
/// travel in clear.
fn endpoint_url(what: &str, raw: &str) -> Result<String, String> {
    let u = url::Url::parse(raw).map_err(|_| format!("{what} {raw:?} is not a URL"))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    let secure = u.scheme() == "https" || (u.scheme() == "http" && loopback);
    if !secure || u.query().is_some() || u.fragment().is_some() || u.host().is_none() {
        return Err(format!("{what} {raw:?} must be an https:// URL without query or fragment"));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(toml_text: &str) -> Result<Vec<Provider>, String> {
        let config: OAuthConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        providers(&config)
    }

    #[test]
    fn presets_custom_issuers_and_their_strategies() {
        let p = parse(
            "[google]\nclient_id = \"g\"\nclient_secret = \"gs\"\n\
             [github]\nclient_id = \"h\"\nclient_secret = \"hs\"\n\
             [acme]\nclient_id = \"a\"\nclient_secret = \"as\"\nissuer = \"https://login.acme.test/\"\nname = \"Acme\"\nsign_up = false\n\
             [work]\npreset = \"microsoft\"\nissuer = \"http://127.0.0.1:9000\"\nclient_id = \"w\"\nclient_secret = \"ws\"\n",
        )
        .unwrap();
        let by_key = |k: &str| p.iter().find(|x| x.key == k).unwrap();
        assert_eq!(by_key("google").strategy, "oauth_google");
        assert_eq!(by_key("google").name, "Google");
        assert_eq!(by_key("google").scopes, ["openid", "email", "profile"]);
        assert!(matches!(by_key("github").protocol, Protocol::OAuth2 { .. }));
        assert_eq!(by_key("acme").strategy, "oauth_custom_acme");
        assert_eq!(by_key("acme").protocol, Protocol::OpenIdConnect { issuer: "https://login.acme.test".into() });
        assert!(!by_key("acme").sign_up);
        assert_eq!(by_key("work").strategy, "oauth_microsoft");
        assert_eq!(by_key("work").protocol, Protocol::OpenIdConnect { issuer: "http://127.0.0.1:9000".into() });
        assert!(!format!("{p:?}").contains("gs"), "secrets never in Debug");
        assert_eq!(by_key("github").preset, Some(Preset::GitHub));
        assert_eq!(by_key("acme").preset, None);
    }

    #[test]
    fn a_plain_oauth_presets_endpoints_may_be_replaced() {
        let p = parse(
            "[github]\nclient_id = \"h\"\nclient_secret = \"hs\"\n\
             authorize_url = \"http://127.0.0.1:9000/login/oauth/authorize\"\n\
             token_url = \"http://[::1]:9000/login/oauth/access_token\"\n\
             user_url = \"https://ghe.example/api/v3/user\"\n\
             [discord]\nclient_id = \"d\"\nclient_secret = \"ds\"\n",
        )
        .unwrap();
        let by_key = |k: &str| p.iter().find(|x| x.key == k).unwrap();
        assert_eq!(
            by_key("github").protocol,
            Protocol::OAuth2 {
                authorize_url: "http://127.0.0.1:9000/login/oauth/authorize".into(),
                token_url: "http://[::1]:9000/login/oauth/access_token".into(),
                user_url: "https://ghe.example/api/v3/user".into(),
                emails_url: Some("https://api.github.com/user/emails".into()),
            }
        );
        assert_eq!(by_key("discord").protocol, Preset::Discord.protocol());
        assert_eq!(by_key("discord").scopes, ["identify", "email"]);
        // Plain http is for loopback only, whatever the host claims to be.
        for host in ["github.test", "127.0.0.1.nip.io", "localhost.evil.test", "10.0.0.1"] {
            let text =
                format!("[github]\nclient_id = \"a\"\nclient_secret = \"b\"\nuser_url = \"http://{host}/user\"\n");
            assert!(parse(&text).unwrap_err().contains("user_url"), "{host}");
        }
    }

    #[test]
    fn mistakes_are_named_at_start() {
        for (text, says) in [
            ("[myspace]\nclient_id = \"a\"\nclient_secret = \"b\"\n", "set `preset`"),
            ("[x]\npreset = \"myspace\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "unknown preset"),
            ("[google]\nclient_id = \"a\"\n", "client_secret are required"),
            ("[acme]\nissuer = \"http://login.acme.test\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "https://"),
            ("[Acme]\nissuer = \"https://login.acme.test\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "lower-case"),
            ("[github]\nissuer = \"https://github.com\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "plain OAuth"),
            ("[google]\nclient_id = \"a\"\nclient_secret = \"b\"\ncolour = \"red\"\n", "unknown field"),
            ("[github]\ntoken_url = \"http://github.test/t\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "token_url"),
            ("[github]\nuser_url = \"https://api.test/u?x=1\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "user_url"),
            ("[google]\nuser_url = \"https://api.test/u\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "plain OAuth"),
            ("[discord]\nemails_url = \"https://api.test/e\"\nclient_id = \"a\"\nclient_secret = \"b\"\n", "emails_url"),
            (
                "[google]\nclient_id = \"a\"\nclient_secret = \"b\"\n[work]\npreset = \"google\"\nclient_id = \"a\"\nclient_secret = \"b\"\n",
                "both oauth_google",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
