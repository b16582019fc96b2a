//! `latchkey-axum` against a real latchkey: `examples/protected-api` answering as the seeds say,
//! and the guard's key and token caches (single-flight refetch, outage, revocation, PEM).

use std::sync::Arc;

use latchkey_axum::{Guard, GuardConfig, KeySource};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Backend, Browser, Reply, TestServer};
use crate::orgs::{server as org_server, Person};

/// Serves `app` on 127.0.0.1:0 until the test ends; returns its URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn guard_for(server: &TestServer) -> Guard {
    let mut config = GuardConfig::new(KeySource::Issuer(server.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    Guard::new(config).unwrap()
}

async fn token(p: &Person) -> String {
    p.b.token(&p.session_id).await.body["jwt"].as_str().unwrap().to_owned()
}

/// An API call with a bearer token (or none), JSON body optional.
async fn call(api: &str, method: reqwest::Method, path: &str, bearer: Option<&str>, body: Option<Value>) -> Reply {
    let b = Browser::new(api);
    let mut req = b.http.request(method, b.url(path));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    b.send(req).await
}

fn assert_error_shape(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.error_code(), code, "{}", r.text);
    assert!(r.body["clerk_trace_id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protected_api_answers_as_the_seeds_say() {
    let server = org_server(Backend::Sqlite).await;
    let guard = guard_for(&server);
    let api = serve(protected_api::app(&guard).unwrap()).await;
    use reqwest::Method as M;

    // Public routes need nothing.
    assert_eq!(call(&api, M::GET, "/api/health", None, None).await.body, json!({"ok": true}));
    assert_eq!(
        call(&api, M::POST, "/api/webhooks/stripe", None, Some(json!({"type": "x"}))).await.status,
        StatusCode::NO_CONTENT
    );

    // Signed out: an API call gets 401, a page request goes to the hosted sign-in page.
    assert_error_shape(
        &call(&api, M::GET, "/api/items", None, None).await,
        StatusCode::UNAUTHORIZED,
        "authentication_invalid",
    );
    assert_error_shape(
        &call(&api, M::GET, "/api/items", Some("not.a.token"), None).await,
        StatusCode::UNAUTHORIZED,
        "authentication_invalid",
    );
    let b = Browser::new(&api);
    let page = b.send(b.http.get(b.url("/api/items?x=1")).header("accept", "text/html,application/xhtml+xml")).await;
    assert_eq!(page.status, StatusCode::TEMPORARY_REDIRECT);
    let back: String = url::form_urlencoded::byte_serialize(format!("{api}/api/items?x=1").as_bytes()).collect();
    assert_eq!(page.headers["location"].to_str().unwrap(), format!("{}/sign-in?redirect_url={back}", server.url));
    let nav = b.send(b.http.get(b.url("/dashboard")).header("sec-fetch-dest", "document")).await;
    assert_eq!(nav.status, StatusCode::TEMPORARY_REDIRECT, "a navigation, even to an unknown page");

    // Two people; the admin's organization is active for both.
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let org = ada.call("POST", "/v1/organizations", &[("name", "Acme")]).await.body["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = server.services.create_secret_key(&latchkey::operator(), "t").await.unwrap().1;
    let add = Browser::new(&server.url);
    add.send(
        add.http
            .post(add.url(&format!("/v1/organizations/{org}/memberships")))
            .bearer_auth(&key)
            .json(&json!({"user_id": bob.user_id})),
    )
    .await;
    let (ada_personal, bob_personal) = (token(&ada).await, token(&bob).await);

    // Items are scoped by the caller, never by an id from the request.
    let made = call(&api, M::POST, "/api/items", Some(&ada_personal), Some(json!({"title": "Buy milk"}))).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.body["owner"], ada.user_id.as_str());
    let item = made.body["id"].as_u64().unwrap();
    call(&api, M::POST, "/api/items", Some(&bob_personal), Some(json!({"title": "Bob's"}))).await;
    let mine = call(&api, M::GET, "/api/items", Some(&ada_personal), None).await;
    assert_eq!(
        (mine.body["total_count"].as_i64(), mine.body["data"][0]["title"].as_str()),
        (Some(1), Some("Buy milk"))
    );
    for (body, param) in [
        (json!({}), "title"),
        (json!({"title": ""}), "title"),
        (json!({"title": 7}), "title"),
        (json!({"title": "x", "owner": bob.user_id}), "owner"),
        (json!([1]), "body"),
    ] {
        let bad = call(&api, M::POST, "/api/items", Some(&ada_personal), Some(body.clone())).await;
        assert_error_shape(&bad, StatusCode::BAD_REQUEST, "form_param_invalid");
        assert_eq!(bad.body["errors"][0]["meta"]["param_name"], param, "{body}");
    }
    let b = Browser::new(&api);
    let broken = b
        .send(
            b.http
                .post(b.url("/api/items"))
                .bearer_auth(&ada_personal)
                .header("content-type", "application/json")
                .body("{oops"),
        )
        .await;
    assert_error_shape(&broken, StatusCode::BAD_REQUEST, "form_param_invalid");

    // DELETE needs org:admin in the active organization.
    assert_error_shape(
        &call(&api, M::DELETE, &format!("/api/items/{item}"), Some(&ada_personal), None).await,
        StatusCode::FORBIDDEN,
        "authorization_invalid",
    );
    ada.select_org(&org).await;
    bob.select_org(&org).await;
    let (ada_org, bob_org) = (token(&ada).await, token(&bob).await);
    assert_error_shape(
        &call(&api, M::DELETE, &format!("/api/items/{item}"), Some(&bob_org), None).await,
        StatusCode::FORBIDDEN,
        "authorization_invalid",
    );
    let bobs = call(&api, M::GET, "/api/items", Some(&bob_org), None).await.body["data"][0]["id"].as_u64().unwrap();
    assert_eq!(
        call(&api, M::DELETE, &format!("/api/items/{bobs}"), Some(&ada_org), None).await.status,
        StatusCode::NOT_FOUND,
        "not another user's item"
    );
    assert_eq!(call(&api, M::DELETE, &format!("/api/items/{item}"), Some(&ada_org), None).await.status, StatusCode::OK);

    // Org-scoped data: only the caller's active organization.
    assert_eq!(call(&api, M::GET, &format!("/api/orgs/{org}/data"), Some(&bob_org), None).await.status, StatusCode::OK);
    assert_error_shape(
        &call(&api, M::GET, &format!("/api/orgs/{org}/data"), Some(&bob_personal), None).await,
        StatusCode::FORBIDDEN,
        "authorization_invalid",
    );
    assert_error_shape(
        &call(&api, M::GET, "/api/orgs/org_someoneelse/data", Some(&ada_org), None).await,
        StatusCode::FORBIDDEN,
        "authorization_invalid",
    );

    // Invoices need org:invoices:create: the admin has it, the member does not.
    let inv =
        call(&api, M::POST, "/api/invoices", Some(&ada_org), Some(json!({"customer": "Globex", "amount_cents": 1200})))
            .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.text);
    assert_eq!(inv.body["organization_id"], org.as_str());
    assert_error_shape(
        &call(&api, M::POST, "/api/invoices", Some(&bob_org), Some(json!({"customer": "G", "amount_cents": 1}))).await,
        StatusCode::FORBIDDEN,
        "authorization_invalid",
    );
    let bad =
        call(&api, M::POST, "/api/invoices", Some(&ada_org), Some(json!({"customer": "Globex", "amount_cents": -5})))
            .await;
    assert_eq!(bad.body["errors"][0]["meta"]["param_name"], "amount_cents");
    let data = call(&api, M::GET, &format!("/api/orgs/{org}/data"), Some(&bob_org), None).await;
    assert_eq!(data.body["invoices"][0]["customer"], "Globex");

    // The __session cookie counts with a __client_uat no newer than the token.
    let b = Browser::new(&api);
    let with = |uat: &str| format!("__session={ada_org}; __client_uat={uat}");
    let iat = guard.verify(&ada_org).await.unwrap().claims()["iat"].as_i64().unwrap();
    let ok = b.send(b.http.get(b.url("/api/items")).header("cookie", with(&iat.to_string()))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    for uat in ["0".to_owned(), (iat + 1).to_string()] {
        let r = b.send(b.http.get(b.url("/api/items")).header("cookie", with(&uat))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "__client_uat={uat}");
    }
    let r = b.send(b.http.get(b.url("/api/items")).header("cookie", format!("__session={ada_org}"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a __session without __client_uat");

    // Expired tokens are refused (past the 5-second skew), even from the cache.
    server.clock.advance_ms(66_000);
    assert_error_shape(
        &call(&api, M::GET, "/api/items", Some(&ada_org), None).await,
        StatusCode::UNAUTHORIZED,
        "authentication_invalid",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_parties_are_checked() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mut config = GuardConfig::new(KeySource::Issuer(server.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    config.authorized_parties = Some(vec!["http://app.test:3000".into()]);
    let guard = Guard::new(config).unwrap();
    let p = Person::sign_up(&server, "azp@example.com").await;
    assert!(guard.verify(&token(&p).await).await.is_err(), "a token without azp");
    let from_app =
        p.b.send(
            p.b.http
                .post(p.b.url(&format!("/v1/client/sessions/{}/tokens", p.session_id)))
                .header("origin", "http://app.test:3000"),
        )
        .await;
    let jwt = from_app.body["jwt"].as_str().unwrap();
    assert_eq!(guard.verify(jwt).await.unwrap().claims()["azp"], "http://app.test:3000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_once_cached_through_an_outage_and_flushed_on_revocation() {
    let server = TestServer::start(Backend::Sqlite).await;
    let guard = guard_for(&server);
    let p = Person::sign_up(&server, "cache@example.com").await;
    let t1 = token(&p).await;

    // First use discovers and fetches the key set once; the same token verifies from the cache.
    let auth = guard.verify(&t1).await.unwrap();
    assert_eq!(auth.user_id(), p.user_id);
    assert_eq!(guard.jwks_fetches(), 1);
    for _ in 0..50 {
        guard.verify(&t1).await.unwrap();
    }
    assert_eq!((guard.jwks_fetches(), guard.cached_tokens()), (1, 1));

    // Many tokens naming unknown kids, at once: at most one refetch per 30 seconds (the first
    // use was one), shared by all of them.
    server.clock.advance_ms(31_000);
    let forged: Vec<String> = (0..200)
        .map(|i| {
            let header = format!(r#"{{"alg":"RS256","kid":"random-{i}","typ":"JWT"}}"#);
            let h = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header);
            format!("{h}.{}", t1.split_once('.').unwrap().1)
        })
        .collect();
    let racing: Vec<_> = forged
        .iter()
        .cloned()
        .map(|t| {
            let g = guard.clone();
            tokio::spawn(async move { g.verify(&t).await })
        })
        .collect();
    for r in racing {
        assert!(r.await.unwrap().is_err(), "a forged kid never verifies");
    }
    assert_eq!(guard.jwks_fetches(), 2, "one refetch shared by 200 unknown kids");
    assert!(guard.verify(&t1).await.is_ok(), "the known key still verifies");
    server.clock.advance_ms(10_000);
    assert!(guard.verify(&forged[0]).await.is_err());
    assert_eq!(guard.jwks_fetches(), 2, "not again within 30 seconds");
    server.clock.advance_ms(21_000);
    assert!(guard.verify(&forged[1]).await.is_err());
    assert_eq!(guard.jwks_fetches(), 3, "again after 30 seconds");

    // Revocation: once the key leaves the set, tokens it signed fail even if cached.
    let t2 = token(&p).await;
    guard.verify(&t2).await.unwrap();
    let old = latchkey_token::Verifier::peek_kid(&t2).unwrap();
    server.services.signing_keys(&latchkey::operator()).rotate().await.unwrap();
    server.clock.advance_ms(300_000);
    let t3 = token(&p).await;
    assert_ne!(latchkey_token::Verifier::peek_kid(&t3).unwrap(), old, "the new key signs");
    assert!(guard.verify(&t3).await.is_ok(), "a new kid is fetched");
    server.services.signing_keys(&latchkey::operator()).revoke(&old).await.unwrap();
    guard.refresh_keys().await;
    let t4_same_key_as_t2 = t2.clone();
    assert!(guard.verify(&t4_same_key_as_t2).await.is_err(), "the revoked key's cached token is flushed");

    // An outage: latchkey stops answering. Tokens signed by a cached key still verify, and a
    // failed background refresh keeps the cached keys. (Hour-long tokens from the Backend API,
    // minted before the outage, outlive the stale-cache wait.)
    let key = server.services.create_secret_key(&latchkey::operator(), "t").await.unwrap().1;
    let admin = Browser::new(&server.url);
    let mut long = Vec::new();
    for _ in 0..2 {
        let r = admin
            .send(
                admin
                    .http
                    .post(admin.url(&format!("/v1/sessions/{}/tokens", p.session_id)))
                    .bearer_auth(&key)
                    .json(&json!({"expires_in_seconds": 3600})),
            )
            .await;
        long.push(r.body["jwt"].as_str().unwrap().to_owned());
    }
    let fetches = guard.jwks_fetches();
    let clock = server.clock.clone();
    let address = server.url.trim_start_matches("http://").to_owned();
    drop(p);
    drop(server);
    // Down means the port refuses connections: wait for that, not for a guessed delay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&address).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "latchkey still answers 30 s after it was stopped");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(guard.verify(&long[0]).await.is_ok(), "verified with the cached keys while latchkey is down");
    clock.advance_ms(301_000);
    assert!(guard.verify(&long[0]).await.is_ok(), "still, with the cache stale");
    while guard.jwks_fetches() == fetches {
        assert!(std::time::Instant::now() < deadline, "the stale set was never refreshed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(guard.jwks_fetches(), fetches + 1, "the stale set was refreshed in the background, once");
    // A refresh that fails (latchkey is down), awaited here: the cached keys stay.
    guard.refresh_keys().await;
    assert!(guard.verify(&long[1]).await.is_ok(), "the failed refresh kept the cached keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pem_key_needs_no_network() {
    let server = TestServer::start(Backend::Sqlite).await;
    let p = Person::sign_up(&server, "pem@example.com").await;
    let jwt = token(&p).await;
    let jwks: latchkey_token::Jwks =
        serde_json::from_value(server.browser().get("/.well-known/jwks.json").await.body).unwrap();
    let pem = jwks.keys[0].to_public_key().unwrap().to_spki_pem().unwrap();
    let mut config = GuardConfig::new(KeySource::Pem(pem));
    config.issuer = Some(server.url.clone());
    config.clock = Arc::new(server.clock.clone());
    let guard = Guard::new(config).unwrap();
    drop(server);
    let auth = guard.verify(&jwt).await.unwrap();
    assert_eq!((auth.user_id(), auth.session_id()), (p.user_id.as_str(), Some(p.session_id.as_str())));
    assert_eq!(guard.jwks_fetches(), 0);
    let tampered = format!("{}x", &jwt[..jwt.len() - 1]);
    assert!(guard.verify(&tampered).await.is_err());
    assert!(Guard::new(GuardConfig::new(KeySource::Pem("not a pem".into()))).is_err());
}

const ELEVEN_MINUTES: i64 = 11 * 60_000;

/// A fresh session token of the browser's session (it carries the session's `fva` and `sts`).
async fn fresh_token(b: &Browser, sid: &str) -> String {
    let r = b.token(sid).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["jwt"].as_str().unwrap().to_owned()
}

/// An app whose rules need recent checks: `strict` on a route by the layer's rules, and
/// `strict_mfa` asked by a handler itself.
fn reverifying_app(guard: &Guard) -> axum::Router {
    use axum::routing::get;
    use latchkey_axum::{reverification, Auth, Requirement, ReverificationRequired, RouteMatcher};
    let layer = guard
        .layer()
        .public(RouteMatcher::new(["/api/public"]).unwrap())
        .require(RouteMatcher::new(["/api/sensitive(.*)"]).unwrap(), Requirement::reverification("strict").unwrap());
    axum::Router::new()
        .route(
            "/api/public",
            get(|auth: Option<Auth>| async move { auth.map_or("anonymous".to_owned(), |a| a.user_id().to_owned()) }),
        )
        .route("/api/me", get(|auth: Auth| async move { auth.user_id().to_owned() }))
        .route("/api/sensitive", get(|| async { "sensitive" }))
        .route(
            "/api/keys",
            get(|auth: Auth| async move {
                auth.require_reverification(reverification::STRICT_MFA)?;
                Ok::<_, ReverificationRequired>("keys")
            }),
        )
        .layer(layer)
}

fn assert_needs_reverification(r: &Reply, level: &str) {
    assert_error_shape(r, StatusCode::FORBIDDEN, "session_reverification_required");
    assert_eq!(
        r.body["errors"][0]["meta"]["session_verification"],
        json!({"level": level, "after_minutes": 10}),
        "{}",
        r.text
    );
    // Clerk's hint, as `reverificationError()` writes it and `useReverification` reads it.
    assert_eq!(
        r.body["clerk_error"],
        json!({"type": "forbidden", "reason": "reverification-error",
               "metadata": {"reverification": {"level": level, "afterMinutes": 10}}}),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_that_need_a_recent_check_of_the_factors() {
    use crate::second_factors::{code_at, enrolled, next_step, PASSWORD};
    use reqwest::Method as M;
    let server = TestServer::start(Backend::Sqlite).await;
    let guard = guard_for(&server);
    let api = serve(reverifying_app(&guard)).await;
    let b = server.browser();
    let (user_id, sid, secret, _) = enrolled(&server, &b, "ada@example.com").await;

    // Just signed in and enrolled: both factors are fresh.
    let t = fresh_token(&b, &sid).await;
    for path in ["/api/me", "/api/sensitive", "/api/keys"] {
        let r = call(&api, M::GET, path, Some(&t), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
    assert_error_shape(
        &call(&api, M::GET, "/api/sensitive", None, None).await,
        StatusCode::UNAUTHORIZED,
        "authentication_invalid",
    );

    // Eleven minutes on, a new token says so (fva [11, 11]): the rule and the handler refuse.
    server.clock.advance_ms(ELEVEN_MINUTES);
    next_step(&server);
    let t = fresh_token(&b, &sid).await;
    assert_eq!(guard.verify(&t).await.unwrap().factor_verification_age(), Some([11, 11]));
    assert_eq!(call(&api, M::GET, "/api/me", Some(&t), None).await.text, user_id, "no check needed there");
    assert_needs_reverification(&call(&api, M::GET, "/api/sensitive", Some(&t), None).await, "second_factor");
    let asked = Browser::new(&api);
    let r = asked.send(asked.http.get(asked.url("/api/keys")).bearer_auth(&t).header("x-request-id", "trace-7")).await;
    assert_needs_reverification(&r, "multi_factor");
    assert_eq!(r.body["clerk_trace_id"], "trace-7", "the handler's refusal carries the request's trace id");

    // The check through the Frontend API: the app's code. `strict` is met, `strict_mfa` not yet.
    let verify = |step: &'static str, form: Vec<(&'static str, String)>| {
        let b = b.clone();
        let sid = sid.clone();
        async move { b.send(b.http.post(b.url(&format!("/v1/client/sessions/{sid}/verify{step}"))).form(&form)).await }
    };
    let r = verify("", vec![("level", "second_factor".into())]).await;
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);
    let r = verify("/attempt_second_factor", vec![("strategy", "totp".into()), ("code", code_at(&server, &secret, 0))])
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let t = fresh_token(&b, &sid).await;
    assert_eq!(call(&api, M::GET, "/api/sensitive", Some(&t), None).await.status, StatusCode::OK);
    assert_needs_reverification(&call(&api, M::GET, "/api/keys", Some(&t), None).await, "multi_factor");

    // Both factors (multi_factor): the password, then the next code.
    let r = verify("", vec![("level", "multi_factor".into())]).await;
    assert_eq!(r.body["response"]["status"], "needs_first_factor", "{}", r.text);
    let r = verify("/attempt_first_factor", vec![("strategy", "password".into()), ("password", PASSWORD.into())]).await;
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);
    next_step(&server);
    let r = verify("/attempt_second_factor", vec![("strategy", "totp".into()), ("code", code_at(&server, &secret, 0))])
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let t = fresh_token(&b, &sid).await;
    assert_eq!(call(&api, M::GET, "/api/keys", Some(&t), None).await.text, "keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_session_is_signed_out_to_the_guard() {
    use crate::second_factors::{code_at, PASSWORD};
    use reqwest::Method as M;
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.second_factors.policy = latchkey_service::second_factors::Policy::Required;
    })
    .await;
    let guard = guard_for(&server);
    let api = serve(reverifying_app(&guard)).await;
    let b = server.browser();
    // A new account must set up a second factor first: its session is pending.
    let (user_id, sid) = server.sign_up(&b, "new@example.com", PASSWORD).await;
    let t = fresh_token(&b, &sid).await;
    assert!(guard.verify(&t).await.unwrap().is_pending());
    for path in ["/api/me", "/api/sensitive"] {
        assert_error_shape(
            &call(&api, M::GET, path, Some(&t), None).await,
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
        );
    }
    assert_eq!(call(&api, M::GET, "/api/public", Some(&t), None).await.text, "anonymous");
    let page = Browser::new(&api);
    let r = page.send(page.http.get(page.url("/api/me")).bearer_auth(&t).header("sec-fetch-dest", "document")).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "a page request goes to sign in, where the task is done");

    // Setting up the app finishes the task: the next token is signed in.
    let r = b.post("/v1/me/totp", &[]).await;
    let secret = r.body["response"]["secret"].as_str().unwrap().to_owned();
    let r = b.post("/v1/me/totp/attempt_verification", &[("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t = fresh_token(&b, &sid).await;
    assert_eq!(call(&api, M::GET, "/api/me", Some(&t), None).await.text, user_id);
    assert_eq!(call(&api, M::GET, "/api/public", Some(&t), None).await.text, user_id);
    assert_eq!(call(&api, M::GET, "/api/sensitive", Some(&t), None).await.status, StatusCode::OK);
}
