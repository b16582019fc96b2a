//! The legacy handshake (docs/frontend-api.md §8, "The legacy form"): the 1.x-generation
//! `@clerk/backend` sends no `format` (or `format=token`) and reads only a signed
//! `__clerk_handshake` token. For a signed-in browser latchkey puts that token in a short-lived
//! cookie, never in the URL, stores nothing, and the directives it carries delete the cookie;
//! `format=nonce` is unchanged; any other format is refused. The real 1.x SDK judges the token
//! in sdk/clerk-sdk-node/handshake.test.mjs.

use axum::http::StatusCode;
use base64::Engine;
use serde_json::Value;

use crate::harness::{Browser, TestServer};

const PASSWORD: &str = "quiet-Harbor-1984-lantern";

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn nonces(server: &TestServer) -> i64 {
    crate::hardening_two::count(server, "handshake_nonces").await
}

crate::both_backends!(the_legacy_handshake_answers_a_token_in_a_cookie, |backend| async move {
    let server = TestServer::start(backend).await;
    let browser: Browser = server.browser();
    let (user_id, _) = server.sign_up(&browser, "legacy@example.com", PASSWORD).await;
    let target = format!("{}/dashboard?tab=1", server.url);
    let before = nonces(&server).await;

    for format in ["", "&format=token"] {
        let r = browser.get(&format!("/v1/client/handshake?redirect_url={}{format}", urlencode(&target))).await;
        assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{format}: {}", r.text);
        assert_eq!(r.headers["cache-control"], "no-store");
        let back = url::Url::parse(r.headers["location"].to_str().unwrap()).unwrap();
        assert_eq!(back.path(), "/dashboard");
        assert_eq!(back.query(), Some("tab=1"), "{format}: nothing added to the URL");
        let cookie = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("__clerk_handshake="))
            .unwrap_or_else(|| panic!("{format}: no handshake cookie in {:?}", r.headers));
        for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=120"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let token = cookie.trim_start_matches("__clerk_handshake=").split(';').next().unwrap();
        let payload = claims(token);
        let directives: Vec<&str> =
            payload["handshake"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
        let session = directives.iter().find(|d| d.starts_with("__session=")).expect("a session cookie");
        let jwt = session.trim_start_matches("__session=").split(';').next().unwrap();
        assert_eq!(claims(jwt)["sub"], user_id.as_str());
        assert!(directives.iter().any(|d| d.starts_with("__client_uat=") && !d.starts_with("__client_uat=0")));
        assert!(
            directives.iter().any(|d| d.starts_with("__clerk_handshake=;") && d.contains("Max-Age=0")),
            "the directives delete the handshake cookie: {directives:?}"
        );
        assert_eq!(payload["iss"], server.url.as_str());
    }
    assert_eq!(nonces(&server).await, before, "the legacy form stores nothing");

    // format=nonce is today's answer: a nonce in the URL, no cookie.
    let r = browser.get(&format!("/v1/client/handshake?redirect_url={}&format=nonce", urlencode(&target))).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{}", r.text);
    assert!(r.headers["location"].to_str().unwrap().contains("__clerk_handshake_nonce="));
    assert!(r.headers.get("set-cookie").is_none(), "{:?}", r.headers);
    assert_eq!(nonces(&server).await, before + 1);

    // An unknown format, and an untrusted redirect in the legacy form, are refused.
    let r = browser.get(&format!("/v1/client/handshake?redirect_url={}&format=jwt", urlencode(&target))).await;
    assert_eq!(
        (r.status, r.body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("form_param_value_invalid"))
    );
    assert_eq!(r.body["errors"][0]["meta"]["param_name"], "format");
    let r =
        browser.get(&format!("/v1/client/handshake?redirect_url={}", urlencode("https://evil.example/steal"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.headers.get("set-cookie").is_none(), "no token for an untrusted target: {:?}", r.headers);
});

// An app on another allowed origin would never see a cookie set on latchkey's host: there the
// legacy form falls back to the nonce (which the later 1.x SDKs read), and no cookie is left
// behind on the wrong host.
crate::both_backends!(the_legacy_cookie_is_only_set_on_the_apps_own_host, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.allowed_origins = vec!["http://app.example.test".into()]).await;
    let browser: Browser = server.browser();
    server.sign_up(&browser, "elsewhere@example.com", PASSWORD).await;
    let r =
        browser.get(&format!("/v1/client/handshake?redirect_url={}", urlencode("http://app.example.test/page"))).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{}", r.text);
    let back = r.headers["location"].to_str().unwrap();
    assert!(back.starts_with("http://app.example.test/page?__clerk_handshake_nonce="), "{back}");
    assert!(r.headers.get("set-cookie").is_none(), "{:?}", r.headers);
});
