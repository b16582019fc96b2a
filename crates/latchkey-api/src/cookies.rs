//! The cookies of the Frontend API (docs/frontend-api.md §5, docs/backend-api.md §9): `__client`
//! (HttpOnly, the opaque client token), `__client_uat` (seconds of the last sign-in state
//! change, `0` when signed out) and `__session` (the session token), each of the last two
//! also under the publishable key's suffix.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha1::{Digest, Sha1};

pub const CLIENT_COOKIE: &str = "__client";
/// The client cookie where the deployment allows the prefix (an `https://` public URL): the
/// browser takes it only from this origin (Secure, `Path=/`, no `Domain`), so a sibling
/// subdomain cannot plant one.
pub const HOST_CLIENT_COOKIE: &str = "__Host-client";
pub const UAT_COOKIE: &str = "__client_uat";
pub const SESSION_COOKIE: &str = "__session";
const YEAR_SECS: i64 = 365 * 24 * 3600;

/// `pk_live_` + base64(`host$`): the SDKs find the Frontend API host in it.
pub fn publishable_key(host: &str) -> String {
    format!("pk_live_{}", STANDARD.encode(format!("{host}$")))
}

/// First 8 characters of base64url(SHA-1(publishable key)).
pub fn cookie_suffix(publishable_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha1::digest(publishable_key.as_bytes())).chars().take(8).collect()
}

/// The client token a browser sent. Where latchkey sets `__Host-client` (an https public URL)
/// only that one counts: a plain `__client` there can only have been planted (by a sibling
/// subdomain), so it is ignored. Elsewhere the plain cookie is the client cookie.
pub fn read_client_cookie(headers: &HeaderMap, policy: &CookiePolicy) -> Option<String> {
    let name = if policy.secure { HOST_CLIENT_COOKIE } else { CLIENT_COOKIE };
    read_cookie(headers, name)
}

/// Whether the request carries a client cookie of either name (for routing only).
pub fn has_client_cookie(headers: &HeaderMap) -> bool {
    read_cookie(headers, HOST_CLIENT_COOKIE).is_some() || read_cookie(headers, CLIENT_COOKIE).is_some()
}

/// Reads a cookie from the request headers (the credential edge's one cookie parser).
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    latchkey_axum::credential::cookie(headers, name)
}

#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub secure: bool,
    pub suffix: String,
}

impl CookiePolicy {
    fn attrs(&self, http_only: bool, max_age: Option<i64>) -> String {
        let mut a = String::from("; Path=/; SameSite=Lax");
        if http_only {
            a.push_str("; HttpOnly");
        }
        if self.secure {
            a.push_str("; Secure");
        }
        if let Some(m) = max_age {
            a.push_str(&format!("; Max-Age={m}"));
        }
        a
    }

    /// The client cookie: `__Host-client` when cookies are `Secure`, `__client` otherwise.
    pub fn client(&self, token: &str) -> Vec<String> {
        let name = if self.secure { HOST_CLIENT_COOKIE } else { CLIENT_COOKIE };
        vec![format!("{name}={token}{}", self.attrs(true, Some(YEAR_SECS)))]
    }

    /// `__client_uat` and its suffixed twin.
    pub fn uat(&self, seconds: i64) -> Vec<String> {
        let attrs = self.attrs(false, Some(YEAR_SECS));
        vec![format!("{UAT_COOKIE}={seconds}{attrs}"), format!("{UAT_COOKIE}_{}={seconds}{attrs}", self.suffix)]
    }

    /// `__session` and its suffixed twin; `None` clears them.
    pub fn session(&self, jwt: Option<&str>) -> Vec<String> {
        let attrs = self.attrs(false, if jwt.is_some() { None } else { Some(0) });
        let v = jwt.unwrap_or("");
        vec![format!("{SESSION_COOKIE}={v}{attrs}"), format!("{SESSION_COOKIE}_{}={v}{attrs}", self.suffix)]
    }
}

pub fn append_set_cookies(headers: &mut HeaderMap, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_and_suffix() {
        let pk = publishable_key("127.0.0.1:4000");
        assert_eq!(pk, "pk_live_MTI3LjAuMC4xOjQwMDAk");
        assert_eq!(cookie_suffix(&pk).len(), 8);
    }

    #[test]
    fn reads_cookies() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; __client=tok; b=2"));
        assert_eq!(read_cookie(&h, "__client").as_deref(), Some("tok"));
        assert_eq!(read_cookie(&h, "__session"), None);
        let plain = CookiePolicy { secure: false, suffix: "abcdefgh".into() };
        let secure = CookiePolicy { secure: true, suffix: "abcdefgh".into() };
        assert_eq!(read_client_cookie(&h, &plain).as_deref(), Some("tok"));
        assert_eq!(read_client_cookie(&h, &secure), None, "on https a plain __client was planted");
        h.insert(header::COOKIE, HeaderValue::from_static("__client=planted; __Host-client=mine"));
        assert_eq!(read_client_cookie(&h, &secure).as_deref(), Some("mine"));
        assert!(has_client_cookie(&h));
    }

    #[test]
    fn attributes() {
        let p = CookiePolicy { secure: true, suffix: "abcdefgh".into() };
        let c = &p.client("t")[0];
        assert!(c.starts_with("__Host-client=t;"), "{c}");
        let plain = CookiePolicy { secure: false, suffix: "abcdefgh".into() };
        assert!(plain.client("t")[0].starts_with("__client=t;"));
        assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Lax") && c.contains("Path=/"));
        assert!(!c.contains("Domain"));
        assert_eq!(p.uat(0)[1], "__client_uat_abcdefgh=0; Path=/; SameSite=Lax; Secure; Max-Age=31536000");
        assert!(p.session(None)[0].contains("Max-Age=0"));
    }
}
