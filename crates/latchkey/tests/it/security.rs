//! Cookies, CSRF by origin, CORS, security headers, development-only surfaces.

use reqwest::StatusCode;

use crate::flows::signed_in;
use crate::harness::{Backend, TestServer};

#[tokio::test]
async fn cookie_writes_from_foreign_origins_are_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (b, _, sid) = signed_in(&server, "csrf@example.com").await;
    let path = format!("/v1/client/sessions/{sid}/tokens");
    let evil = b.send(b.http.post(b.url(&path)).header("origin", "https://evil.test")).await;
    assert_eq!((evil.status, evil.error_code()), (StatusCode::FORBIDDEN, "origin_invalid"));
    let cross = b.send(b.http.post(b.url(&path)).header("sec-fetch-site", "cross-site")).await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let allowed = b
        .send(b.http.post(b.url(&path)).header("origin", "http://app.test:3000").header("sec-fetch-site", "same-site"))
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    let claims = crate::flows::verifier_for(&server)
        .await
        .verify(allowed.body["jwt"].as_str().unwrap(), latchkey_core::Clock::now_secs(&server.clock))
        .unwrap()
        .session_claims()
        .unwrap();
    assert_eq!(claims.azp.as_deref(), Some("http://app.test:3000"), "azp is the allowed requesting origin");
    let same = b
        .send(b.http.post(b.url(&path)).header("origin", server.url.as_str()).header("sec-fetch-site", "same-origin"))
        .await;
    assert_eq!(same.status, StatusCode::OK);
    let sign_out =
        b.send(b.http.post(b.url("/v1/client/sessions?_method=DELETE")).header("origin", "https://evil.test")).await;
    assert_eq!(sign_out.status, StatusCode::FORBIDDEN, "no sign-out by a foreign page either");
    assert_eq!(b.token(&sid).await.status, StatusCode::OK, "the refused request changed nothing");
}

#[tokio::test]
async fn cors_only_for_allowed_origins() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let pre = |origin: &'static str| {
        b.http
            .request(reqwest::Method::OPTIONS, b.url("/v1/client/sign_ins"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
    };
    let denied = b.send(pre("https://evil.test")).await;
    assert!(denied.headers.get("access-control-allow-origin").is_none());
    let ok = b.send(pre("http://app.test:3000")).await;
    assert_eq!(ok.headers["access-control-allow-origin"], "http://app.test:3000");
    assert_eq!(ok.headers["access-control-allow-credentials"], "true");
    let env = b.send(b.http.get(b.url("/v1/environment")).header("origin", "http://app.test:3000")).await;
    assert_eq!(env.headers["access-control-allow-origin"], "http://app.test:3000");
    assert_ne!(env.headers["access-control-allow-origin"], "*");

    // The sync API is reachable cross-origin from an allowed origin (docs/sync-protocol.md §12):
    // a preflight allows the bearer header, and a refusal is readable by the page.
    let sync_pre = b
        .send(
            b.http
                .request(reqwest::Method::OPTIONS, b.url("/v1/sync/push"))
                .header("origin", "http://app.test:3000")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type"),
        )
        .await;
    assert_eq!(sync_pre.headers["access-control-allow-origin"], "http://app.test:3000");
    assert!(sync_pre.headers["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let refused = b
        .send(b.http.get(b.url("/v1/sync/pull")).header("origin", "http://app.test:3000").bearer_auth("not-a-token"))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers["access-control-allow-origin"], "http://app.test:3000");
    let evil = b.send(b.http.get(b.url("/v1/sync/pull")).header("origin", "https://evil.test")).await;
    assert!(evil.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cookies_have_the_right_attributes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let r = b
        .post("/v1/client/sign_ups", &[("email_address", "cookie@example.com"), ("password", "cookie passphrase")])
        .await;
    let cookies = r.set_cookies();
    let client = cookies.iter().find(|c| c.starts_with("__client=")).expect("client cookie");
    assert!(client.contains("HttpOnly") && client.contains("SameSite=Lax") && client.contains("Path=/"));
    assert!(!client.contains("Domain"), "host-only");
    assert!(!client.contains("Secure"), "plain http on 127.0.0.1 in development");
    let token = client.trim_start_matches("__client=").split(';').next().unwrap();
    assert_eq!(token.len(), 43, "256 random bits");
    let suffixed = cookies.iter().any(|c| c.starts_with("__client_uat_") && c.contains("=0;"));
    assert!(suffixed, "{cookies:?}");

    // On an https public URL every cookie is Secure, and HSTS is sent.
    let secure =
        TestServer::start_with(Backend::Sqlite, |c| c.public_url = Some("https://auth.example.test".into())).await;
    let b = secure.browser();
    let r = b
        .post("/v1/client/sign_ups", &[("email_address", "cookie@example.com"), ("password", "cookie passphrase")])
        .await;
    assert!(r.set_cookies().iter().all(|c| c.contains("; Secure")), "{:?}", r.set_cookies());
    assert!(r.headers["strict-transport-security"].to_str().unwrap().contains("max-age=31536000"));
}

#[tokio::test]
async fn security_headers_and_request_ids() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let page = b.get("/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["x-request-id"].len(), 24);
    let echoed = b.send(b.http.get(b.url("/healthz")).header("x-request-id", "abc-123")).await;
    assert_eq!(echoed.headers["x-request-id"], "abc-123");
    let injected = b.send(b.http.get(b.url("/healthz")).header("x-request-id", "bad id\twith spaces")).await;
    assert_ne!(injected.headers["x-request-id"], "bad id\twith spaces");
}

#[tokio::test]
async fn dev_mail_only_in_development() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.dev_mode = Some(false)).await;
    assert_eq!(server.browser().get("/dev/mail").await.status, StatusCode::NOT_FOUND);
    let dev = TestServer::start(Backend::Sqlite).await;
    assert_eq!(dev.browser().get("/dev/mail").await.status, StatusCode::OK);
}

#[tokio::test]
async fn health_readiness_metrics_discovery() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    assert_eq!(b.get("/healthz").await.body["status"], "ok");
    assert_eq!(b.get("/readyz").await.body["database"], "sqlite");
    let oidc = b.get("/.well-known/openid-configuration").await;
    assert_eq!(oidc.body["issuer"], server.url.as_str());
    assert_eq!(oidc.body["jwks_uri"], format!("{}/.well-known/jwks.json", server.url));
    let jwks = b.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.headers["cache-control"], "public, max-age=300");
    assert_eq!(jwks.body["keys"][0]["alg"], "RS256");
    let metrics = b.get("/metrics").await;
    assert!(
        metrics.text.contains("latchkey_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains("latchkey_database_up 1"));
    let env = b.get("/v1/environment").await;
    assert_eq!(env.body["auth_config"]["object"], "auth_config");
    assert_eq!(env.body["display_config"]["sign_in_url"], format!("{}/sign-in", server.url));
    assert!(env.body.get("commerce_settings").is_none());
    assert_eq!(env.body["user_settings"]["attributes"].as_object().unwrap().len(), 11);
}

#[tokio::test]
async fn babylog_is_served_at_the_root_with_the_html_security_headers() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type().starts_with("text/html"));
    assert!(page.text.contains("<title>BabyLog</title>") && page.text.contains("/babylog/app.js"));
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    for (path, kind) in [
        ("/babylog/app.js", "text/javascript"),
        ("/babylog/styles.css", "text/css"),
        ("/babylog/manifest.webmanifest", "application/manifest+json"),
        ("/babylog/icon.svg", "image/svg+xml"),
        ("/sw.js", "text/javascript"),
    ] {
        let asset = b.get(path).await;
        assert_eq!(asset.status, StatusCode::OK, "{path}");
        assert!(asset.content_type().starts_with(kind), "{path}: {}", asset.content_type());
        assert_eq!(asset.headers["cache-control"], "no-cache", "{path}");
    }
    assert_eq!(b.get("/babylog/nope.js").await.status, StatusCode::NOT_FOUND);

    // Without sync (or without BabyLog's tables) there is no app to serve.
    let without: [fn(&mut latchkey::config::Config); 2] =
        [|c| c.sync.enabled = false, |c| c.sync.include_babylog = false];
    for off in without {
        let server = TestServer::start_with(Backend::Sqlite, off).await;
        let root = server.browser().get("/").await;
        assert_eq!(root.status, StatusCode::NOT_FOUND);
        assert_eq!(root.error_code(), "resource_not_found");
    }
}
