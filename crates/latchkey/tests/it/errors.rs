//! Bad input gets a clear error in the one error shape, and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::flows::signed_in;
use crate::harness::{Backend, TestServer};

fn assert_error_shape(r: &crate::harness::Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type(), "application/json", "exactly application/json");
    assert!(r.body["errors"].is_array(), "{}", r.text);
    assert_eq!(r.error_code(), code, "{}", r.text);
    for key in ["message", "long_message"] {
        assert!(r.body["errors"][0][key].is_string(), "{key}");
    }
    assert!(r.body["errors"][0]["meta"].is_object());
    let trace = r.body["clerk_trace_id"].as_str().unwrap();
    assert_eq!(trace, r.headers["x-request-id"].to_str().unwrap(), "the trace id is the request id");
}

#[tokio::test]
async fn malformed_and_unsupported_bodies() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let bad_json = b
        .send(
            b.http
                .post(b.url("/v1/client/sign_ups"))
                .header("content-type", "application/json")
                .body("{\"email_address\": "),
        )
        .await;
    assert_error_shape(&bad_json, StatusCode::BAD_REQUEST, "malformed_request_body");
    let not_object = b
        .send(b.http.post(b.url("/v1/client/sign_ups")).header("content-type", "application/json").body("[1,2]"))
        .await;
    assert_error_shape(&not_object, StatusCode::BAD_REQUEST, "malformed_request_body");
    let text = b
        .send(b.http.post(b.url("/v1/client/sign_ups")).header("content-type", "text/plain").body("email_address=x"))
        .await;
    assert_error_shape(&text, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_content_type");
    let huge = "x".repeat(200 * 1024);
    let big = b.post("/v1/client/sign_ups", &[("email_address", "big@example.com"), ("first_name", &huge)]).await;
    assert_error_shape(&big, StatusCode::PAYLOAD_TOO_LARGE, "request_body_too_large");
    let bad_email =
        b.post("/v1/client/sign_ups", &[("email_address", "not-an-address"), ("password", "long enough pass")]).await;
    assert_error_shape(&bad_email, StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid");
    assert_eq!(bad_email.body["errors"][0]["meta"]["param_name"], "email_address");
    assert!(server.mail_to("big@example.com").await.is_empty(), "nothing happened for refused requests");
}

#[tokio::test]
async fn json_bodies_work_like_forms() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let r = b.post_json("/v1/client/sign_ups", &json!({"email_address": "json@example.com", "password": "json body passphrase", "unsafe_metadata": {"theme": "dark"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"]["unsafe_metadata"], json!({"theme": "dark"}));
    let r = b
        .post(
            "/v1/client/sign_ups",
            &[
                ("email_address", "form@example.com"),
                ("password", "json body passphrase"),
                ("unsafe_metadata", "{\"a\":1}"),
            ],
        )
        .await;
    assert_eq!(r.body["response"]["unsafe_metadata"], json!({"a": 1}));
    let r = b.post("/v1/client/sign_ups", &[("email_address", "form2@example.com"), ("unsafe_metadata", "[1]")]).await;
    assert_error_shape(&r, StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid");
}

#[tokio::test]
async fn unknown_fields_are_ignored_but_privileged_ones_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (b, user_id, _) = signed_in(&server, "fields@example.com").await;
    // Clerk's SDK sends fields a server may not know (locale, timezone, captcha_*): ignored.
    let ok = b.post("/v1/me?_method=PATCH", &[("first_name", "Ok"), ("tab_state", "focused"), ("locale", "en")]).await;
    assert_eq!(ok.status, StatusCode::OK);
    for field in ["role", "public_metadata", "banned", "id"] {
        let r = b.post("/v1/me?_method=PATCH", &[(field, "admin"), ("first_name", "Mallory")]).await;
        assert_error_shape(&r, StatusCode::BAD_REQUEST, "form_param_unknown");
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], field);
    }
    let r = b.post_json("/v1/me?_method=PATCH", &json!({"role": "admin"})).await;
    assert_error_shape(&r, StatusCode::BAD_REQUEST, "form_param_unknown");
    let user = server.services.users().user(&user_id).await.unwrap();
    assert_eq!(user.user.first_name.as_deref(), Some("Ok"), "refused requests changed nothing");
    assert_eq!(user.user.public_metadata, "{}");
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    assert_error_shape(&b.get("/v1/nope").await, StatusCode::NOT_FOUND, "resource_not_found");
    assert_error_shape(&b.get("/v1/client/sign_ups").await, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_error_shape(
        &b.get("/v1/client/sessions/sess_x/tokens").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_error_shape(
        &b.post("/v1/client/sign_ups/sua_nope/attempt_verification", &[("code", "123456")]).await,
        StatusCode::UNAUTHORIZED,
        "authentication_invalid",
    );
    let (b2, _, _) = signed_in(&server, "other@example.com").await;
    assert_error_shape(
        &b2.post("/v1/client/sign_ups/sua_nope/attempt_verification", &[("code", "123456")]).await,
        StatusCode::NOT_FOUND,
        "resource_not_found",
    );
    assert_error_shape(
        &b2.post("/v1/client/sessions/sess_x/touch", &[("active_organization_id", "org_x")]).await,
        StatusCode::NOT_FOUND,
        "resource_not_found",
    );
}

// Clerk's Frontend API answers a path with a trailing slash as the path without one: clerk-js's
// `user.createEmailAddress` posts to `/v1/me/email_addresses/`.
#[tokio::test]
async fn a_trailing_slash_reaches_the_same_endpoint() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (b, _, _) = signed_in(&server, "slash@example.com").await;
    let added = b.post("/v1/me/email_addresses/", &[("email_address", "second@example.com")]).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    assert_eq!(added.body["response"]["email_address"], "second@example.com");
    let me = b.get("/v1/me/").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["response"]["email_addresses"].as_array().map(Vec::len), Some(2));
    assert_error_shape(&b.get("/v1/nope/").await, StatusCode::NOT_FOUND, "resource_not_found");
}

#[tokio::test]
async fn sign_up_and_sign_in_need_a_signed_out_client() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (b, _, _) = signed_in(&server, "single@example.com").await;
    let r = server.sign_in(&b, "single@example.com", "correct horse battery staple").await;
    assert_error_shape(&r, StatusCode::BAD_REQUEST, "session_exists");
}

#[tokio::test]
async fn native_clients_use_a_bearer_client_token() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.sign_up(&server.browser(), "native@example.com", "correct horse battery staple").await;
    let b = server.browser();
    let r = b
        .send(b.http.post(b.url("/v1/client/sign_ins?_is_native=1")).form(&[
            ("identifier", "native@example.com"),
            ("strategy", "password"),
            ("password", "correct horse battery staple"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.set_cookies().is_empty(), "native clients get no cookies");
    let token = r.headers["authorization"].to_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);
    let sid = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    // A fresh HTTP client (no cookies) with the bearer token, even from a foreign origin.
    let fresh = reqwest::Client::new();
    let res = fresh
        .post(format!("{}/v1/client/sessions/{sid}/tokens", server.url))
        .header("authorization", format!("Bearer {token}"))
        .header("origin", "https://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let bad = fresh
        .post(format!("{}/v1/client/sessions/{sid}/tokens", server.url))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

/// Every route that acts on the caller's own attempts and sessions needs a client: without
/// one it is 401 in the error shape, before its body or query is read (so a malformed body
/// does not change the answer), and no client is made or stored.
#[tokio::test]
async fn client_routes_without_a_client_are_401_and_store_nothing() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let form = |method: reqwest::Method, path: &str| b.http.request(method, b.url(path)).form(&[("code", "123456")]);
    let broken = |path: &str| b.http.post(b.url(path)).header("content-type", "application/json").body("{not json");
    let requests = [
        ("GET sign_up", b.http.get(b.url("/v1/client/sign_ups/sua_1"))),
        ("PATCH sign_up", form(reqwest::Method::PATCH, "/v1/client/sign_ups/sua_1")),
        ("prepare_verification", form(reqwest::Method::POST, "/v1/client/sign_ups/sua_1/prepare_verification")),
        ("attempt_verification, broken body", broken("/v1/client/sign_ups/sua_1/attempt_verification")),
        ("GET sign_in", b.http.get(b.url("/v1/client/sign_ins/sia_1"))),
        ("prepare_first_factor", form(reqwest::Method::POST, "/v1/client/sign_ins/sia_1/prepare_first_factor")),
        ("attempt_first_factor, broken body", broken("/v1/client/sign_ins/sia_1/attempt_first_factor")),
        ("GET session", b.http.get(b.url("/v1/client/sessions/sess_1"))),
        ("touch", form(reqwest::Method::POST, "/v1/client/sessions/sess_1/touch")),
        ("tokens, broken body", broken("/v1/client/sessions/sess_1/tokens")),
        ("end", form(reqwest::Method::POST, "/v1/client/sessions/sess_1/end")),
        ("remove", form(reqwest::Method::POST, "/v1/client/sessions/sess_1/remove")),
        ("sign out of all", b.http.delete(b.url("/v1/client/sessions"))),
        ("DELETE client", b.http.delete(b.url("/v1/client"))),
    ];
    for (name, request) in requests {
        let r = b.send(request).await;
        assert_error_shape(&r, StatusCode::UNAUTHORIZED, "authentication_invalid");
        let cookies: Vec<&str> = r.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
        assert!(!cookies.iter().any(|c| c.starts_with("__client=")), "{name}: no client handed out: {cookies:?}");
    }
    assert_eq!(crate::hardening_two::count(&server, "clients").await, 0, "no client was stored");
}

/// `POST /v1/client` and sign-out answer with the client itself: one rendering for both
/// halves of the envelope, whose token is the one the `__session` cookie carries.
#[tokio::test]
async fn a_client_reply_is_the_client_once() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (b, _, sid) = signed_in(&server, "echo@example.com").await;
    let r = b.post("/v1/client", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"], r.body["client"], "one rendering of the client");
    let session = &r.body["client"]["sessions"][0];
    assert_eq!(session["id"], sid.as_str());
    let jwt = session["last_active_token"]["jwt"].as_str().unwrap();
    let cookie = r.set_cookies().into_iter().find_map(|c| c.strip_prefix("__session=").map(str::to_owned)).unwrap();
    assert_eq!(cookie.split(';').next().unwrap(), jwt, "the cookie carries the token the body shows");

    let out = b.send(b.http.delete(b.url("/v1/client/sessions"))).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.text);
    assert_eq!(out.body["response"], out.body["client"]);
    assert_eq!(out.body["client"]["sessions"], json!([]), "signed out of every session");
}
