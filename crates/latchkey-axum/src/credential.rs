//! The credential edge: how a request says who it is, read in one place for every door
//! (the Frontend API, the Backend API, sync, `/metrics`, the guard layer and `latchkey proxy`),
//! so no door accepts a spelling another refuses.

use http::{header, HeaderMap};

/// The token of the `Authorization` header: `Bearer <token>`, the scheme in any case (RFC 9110
/// §11.1), or a bare token (Clerk's native SDKs send the client token so, and Clerk's backend
/// SDKs accept a bare session token). `None` when the header is missing, not ASCII, empty, or
/// holds whitespace inside the token (another scheme such as `Basic …`, or two values).
/// Borrowed: the guard's hot path copies nothing.
pub fn authorization_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        // `Bearer ` with nothing after it, trimmed.
        None if value.eq_ignore_ascii_case("bearer") => return None,
        None => value,
    };
    (!token.is_empty() && !token.contains(|c: char| c.is_ascii_whitespace())).then_some(token)
}

/// The value of the cookie `name`, parsed by the `cookie` crate (what `axum-extra`'s jar uses).
/// The first one sent wins: a browser sends the most specific (longest path) cookie first, and
/// a jar that kept the last would let a cookie planted for `/` shadow it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn authorization_tokens() {
        let token = |v| authorization_token(&with(header::AUTHORIZATION, v)).map(str::to_owned);
        assert_eq!(token("Bearer abc.def").as_deref(), Some("abc.def"));
        assert_eq!(token("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(token("BEARER\tabc").as_deref(), Some("abc"));
        assert_eq!(token("sk_live_123").as_deref(), Some("sk_live_123"));
        assert_eq!(token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(token("Bearer a b"), None);
        assert_eq!(token("Bearer "), None);
        assert_eq!(token(""), None);
        assert_eq!(authorization_token(&HeaderMap::new()), None);
    }

    #[test]
    fn cookies() {
        let mut h = with(header::COOKIE, "a=1; __client=tok; b=2");
        h.append(header::COOKIE, HeaderValue::from_static("__session=x.y.z"));
        assert_eq!(cookie(&h, "__client").as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "__session").as_deref(), Some("x.y.z"));
        assert_eq!(cookie(&h, "__client_uat"), None);
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        let twice = with(header::COOKIE, "__session=first; __session=second");
        assert_eq!(cookie(&twice, "__session").as_deref(), Some("first"));
    }
}
