//! The Backend API's secret-key authentication.

use reqwest::StatusCode;

use crate::harness::{Backend, TestServer};

#[tokio::test]
async fn the_backend_api_needs_a_live_secret_key() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let none = b.get("/v1/jwks").await;
    assert_eq!((none.status, none.error_code()), (StatusCode::UNAUTHORIZED, "authentication_invalid"));
    assert_eq!(none.content_type(), "application/json");
    for wrong in ["sk_live_wrong", "pk_live_MTI3LjAuMC4xOjQwMDAk", "x"] {
        let r = b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(wrong)).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "clerk_key_invalid"), "{wrong}");
        assert!(r.body["clerk_trace_id"].is_string());
    }
    let (row, secret) = server.services.create_secret_key(&latchkey::operator(), "test").await.unwrap();
    let ok = b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&secret)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.content_type(), "application/json");
    assert_eq!(ok.body["keys"][0]["alg"], "RS256");
    assert_eq!(ok.body["keys"], b.get("/.well-known/jwks.json").await.body["keys"]);
    let (_, second) = server.services.create_secret_key(&latchkey::operator(), "second").await.unwrap();
    server.services.revoke_secret_key(&latchkey::operator(), &row.id).await.unwrap();
    assert_eq!(b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&secret)).await.error_code(), "clerk_key_invalid");
    assert_eq!(
        b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&second)).await.status,
        StatusCode::OK,
        "several keys per instance"
    );
    assert!(
        server.services.revoke_secret_key(&latchkey::operator(), &row.id).await.is_err(),
        "revoking twice is refused"
    );
}

/// A Backend API caller: the secret key on every request, JSON bodies.
struct Admin {
    b: crate::harness::Browser,
    key: String,
}

impl Admin {
    async fn new(server: &TestServer) -> Self {
        let (_, key) = server.services.create_secret_key(&latchkey::operator(), "tests").await.unwrap();
        Self { b: server.browser(), key }
    }
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> crate::harness::Reply {
        let mut req = self.b.http.request(method, self.b.url(path)).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.b.send(req).await
    }
    async fn get(&self, path: &str) -> crate::harness::Reply {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: serde_json::Value) -> crate::harness::Reply {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

const PASSWORD: &str = "correct horse battery staple";

crate::both_backends!(users_lists_metadata_and_deletion, |backend| async move {
    use serde_json::json;
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = admin
            .post(
                "/v1/users",
                json!({"email_address": [format!("u{i}@example.com")], "first_name": format!("U{i}"), "public_metadata": {"n": i, "deep": {"keep": 1, "drop": 2}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.content_type(), "application/json", "exactly, without a charset");
        assert_eq!(r.body["object"], "user");
        ids.push(r.body["id"].as_str().unwrap().to_owned());
        server.clock.advance_ms(1_000);
    }
    let list = admin.get("/v1/users?limit=2").await;
    let page: Vec<&str> =
        list.body.as_array().expect("a bare array").iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(page, vec![ids[2].as_str(), ids[1].as_str()], "newest first by default");
    let rest = admin.get("/v1/users?limit=2&offset=2").await;
    assert_eq!(rest.body[0]["id"], ids[0].as_str());
    let filtered = admin.get(&format!("/v1/users?user_id={}&user_id={}&order_by=%2Bcreated_at", ids[0], ids[2])).await;
    assert_eq!(filtered.body.as_array().unwrap().len(), 2, "repeated keys are a list");
    assert_eq!(filtered.body[0]["id"], ids[0].as_str(), "+created_at is oldest first");
    assert_eq!(
        admin.get("/v1/users/count?email_address=U1@Example.com").await.body,
        json!({"object": "total_count", "total_count": 1})
    );

    let merged = admin
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/users/{}/metadata", ids[0]),
            Some(json!({"public_metadata": {"deep": {"drop": null, "new": true}}, "private_metadata": {"p": 1}})),
        )
        .await;
    assert_eq!(merged.body["public_metadata"], json!({"n": 0, "deep": {"keep": 1, "new": true}}));
    assert_eq!(merged.body["private_metadata"], json!({"p": 1}));
    let bad = admin
        .call(reqwest::Method::PATCH, &format!("/v1/users/{}/metadata", ids[0]), Some(json!({"public_metadata": [1]})))
        .await;
    assert_eq!((bad.status, bad.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid"));
    assert_eq!(bad.body["errors"][0]["meta"]["param_name"], "public_metadata");
    let big = admin
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/users/{}/metadata", ids[0]),
            Some(json!({"public_metadata": {"x": "y".repeat(9000)}})),
        )
        .await;
    assert_eq!(big.error_code(), "form_param_exceeds_allowed_size");
    let unchanged = admin.get(&format!("/v1/users/{}", ids[0])).await;
    assert_eq!(unchanged.body["public_metadata"], merged.body["public_metadata"], "a refused change loses nothing");

    let bad_date =
        admin.post("/v1/users", json!({"email_address": ["d@example.com"], "created_at": "yesterday"})).await;
    assert_eq!(
        (bad_date.status, bad_date.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid")
    );
    let wrong_type = admin.post("/v1/users", json!({"email_address": ["t@example.com"], "first_name": 7})).await;
    assert_eq!(wrong_type.body["errors"][0]["meta"]["param_name"], "first_name");
    assert_eq!(admin.get("/v1/users?limit=0").await.error_code(), "form_param_value_invalid");
    assert_eq!(admin.get("/v1/users?order_by=-password").await.error_code(), "form_param_value_invalid");

    let deleted = admin.call(reqwest::Method::DELETE, &format!("/v1/users/{}", ids[1]), None).await;
    assert_eq!(deleted.body, json!({"object": "user", "id": ids[1], "deleted": true}));
    assert_eq!(admin.get(&format!("/v1/users/{}", ids[1])).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        admin.call(reqwest::Method::DELETE, &format!("/v1/users/{}", ids[1]), None).await.status,
        StatusCode::NOT_FOUND
    );
});

crate::both_backends!(ban_lock_sessions_and_templates, |backend| async move {
    use serde_json::json;
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let user = admin
        .post(
            "/v1/users",
            json!({"email_address": ["ban@example.com"], "password": PASSWORD, "public_metadata": {"plan": "pro"}}),
        )
        .await;
    let user_id = user.body["id"].as_str().unwrap().to_owned();
    let browser = server.browser();
    let signed_in = server.sign_in(&browser, "ban@example.com", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    let session_id = signed_in.body["response"]["created_session_id"].as_str().unwrap().to_owned();

    let sessions = admin.get(&format!("/v1/sessions?user_id={user_id}&paginated=true")).await;
    assert_eq!(sessions.body["total_count"], 1);
    assert_eq!(sessions.body["data"][0]["id"], session_id.as_str());
    assert!(
        admin.get(&format!("/v1/sessions?user_id={user_id}")).await.body.is_array(),
        "without paginated: a bare array"
    );

    // A template token carries rendered claims and verifies with the instance key.
    let t = admin.post("/v1/jwt_templates", json!({"name": "api", "claims": {"aud": "api", "plan": "{{user.public_metadata.plan}}", "mail": "{{user.primary_email_address}}"}, "lifetime": 300})).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let token = admin.post(&format!("/v1/sessions/{session_id}/tokens/api"), json!({})).await;
    let jwt = token.body["jwt"].as_str().unwrap().to_owned();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks: latchkey_token::Jwks =
        serde_json::from_value(server.browser().get("/.well-known/jwks.json").await.body).unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let key = jwks.keys[0].to_public_key().unwrap();
    assert!(key.verify_rs256(input.as_bytes(), &b64.decode(sig).unwrap()), "signed by the instance key");
    let now = latchkey_core::Clock::now_secs(&server.clock);
    assert!(crate::flows::verifier_for(&server).await.verify(&jwt, now).is_err(), "not accepted as a session token");
    let claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(input.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(
        (claims["plan"].as_str(), claims["mail"].as_str(), claims["aud"].as_str()),
        (Some("pro"), Some("ban@example.com"), Some("api"))
    );
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    let reserved = admin.post("/v1/jwt_templates", json!({"name": "bad", "claims": {"iss": "me"}})).await;
    assert_eq!(reserved.error_code(), "form_param_value_invalid");

    let banned = admin.post(&format!("/v1/users/{user_id}/ban"), json!({})).await;
    assert_eq!(banned.body["banned"], true);
    assert_eq!(admin.get(&format!("/v1/sessions/{session_id}")).await.body["status"], "revoked");
    assert_eq!(browser.token(&session_id).await.status, StatusCode::UNAUTHORIZED, "the browser's session ended");
    let refused = server.sign_in(&server.browser(), "ban@example.com", PASSWORD).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::FORBIDDEN, "user_banned"));
    let wrong = server.sign_in(&server.browser(), "ban@example.com", "wrong password here").await;
    assert_eq!(wrong.error_code(), "form_password_incorrect", "a ban is revealed only to the password's holder");
    admin.post(&format!("/v1/users/{user_id}/unban"), json!({})).await;
    admin.post(&format!("/v1/users/{user_id}/lock"), json!({})).await;
    assert_eq!(server.sign_in(&server.browser(), "ban@example.com", PASSWORD).await.error_code(), "user_locked");
    let unlocked = admin.post(&format!("/v1/users/{user_id}/unlock"), json!({})).await;
    assert_eq!(unlocked.body["locked"], false);
    assert_eq!(server.sign_in(&server.browser(), "ban@example.com", PASSWORD).await.status, StatusCode::OK);

    let created = admin.post("/v1/sessions", json!({"user_id": user_id})).await;
    assert_eq!(created.body["status"], "active");
    let revoked = admin.post(&format!("/v1/sessions/{}/revoke", created.body["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(admin.post("/v1/sessions", json!({"user_id": "user_nobody"})).await.status, StatusCode::NOT_FOUND);
});

#[tokio::test]
async fn the_openapi_document_describes_every_backend_route() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = Admin::new(&server).await;
    let doc = admin.get("/v1/openapi.json").await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/users", vec!["get", "post"]),
        ("/v1/users/{user_id}", vec!["get", "patch", "delete"]),
        ("/v1/users/{user_id}/metadata", vec!["patch", "put"]),
        ("/v1/sessions/{session_id}/tokens/{template_name}", vec!["post"]),
        ("/v1/jwt_templates/{template_id}", vec!["get", "patch", "delete"]),
        ("/v1/invitations/bulk", vec!["post"]),
        ("/v1/sign_in_tokens", vec!["post"]),
        ("/v1/jwks", vec!["get"]),
    ] {
        for m in methods {
            assert!(paths[path].get(m).is_some(), "{m} {path} is documented");
        }
    }
    // Every documented operation is served (a 404 would be the router's, not the resource's).
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let concrete = path.replace(['{', '}'], "");
            let r = admin
                .call(
                    reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &concrete,
                    Some(serde_json::json!({})),
                )
                .await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                r.error_code() != "resource_not_found" || r.body["errors"][0]["message"] != "Route not found",
                "{method} {path}"
            );
            assert!(!r.status.is_server_error(), "{method} {path}: {}", r.text);
        }
    }
}

crate::both_backends!(expired_invitations_neither_block_nor_apply, |backend| async move {
    use serde_json::json;
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let old = admin
        .post("/v1/invitations", json!({"email_address": "late@example.com", "expires_in_days": 1, "notify": false, "public_metadata": {"from": "old"}}))
        .await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.text);
    let dup = admin.post("/v1/invitations", json!({"email_address": "late@example.com", "notify": false})).await;
    assert_eq!(dup.error_code(), "duplicate_record", "a pending invitation blocks a second one");
    server.clock.advance_ms(2 * 24 * 3600 * 1000);
    let fresh = admin
        .post(
            "/v1/invitations",
            json!({"email_address": "late@example.com", "notify": false, "public_metadata": {"from": "new"}}),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "an expired invitation does not block: {}", fresh.text);
    let (user_id, _) = server.sign_up(&server.browser(), "late@example.com", PASSWORD).await;
    let user = admin.get(&format!("/v1/users/{user_id}")).await;
    assert_eq!(user.body["public_metadata"], json!({"from": "new"}), "only the live invitation applies");
    let expired = admin.get("/v1/invitations?status=expired&paginated=true").await;
    assert_eq!(expired.body["data"][0]["id"], old.body["id"]);
    let accepted = admin.get("/v1/invitations?status=accepted&paginated=true").await;
    assert_eq!(accepted.body["data"][0]["id"], fresh.body["id"]);
    assert_eq!(accepted.body["total_count"], 1);
    let revoke = admin.post(&format!("/v1/invitations/{}/revoke", old.body["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(revoke.error_code(), "invitation_not_pending");
});
