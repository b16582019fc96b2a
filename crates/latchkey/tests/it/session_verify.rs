//! The session verification Clerk's older SDKs call over the network (docs/clerk-sdks.md,
//! "Older SDK generations"): `POST /v1/sessions/{id}/verify` and `POST /v1/sessions/verify`
//! answer a live session for its valid token and refuse, with Clerk's error shape, a tampered,
//! expired or template token, another session's token, an ended session and a missing token,
//! changing nothing.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::TestServer;
use crate::webhooks::Admin;

crate::both_backends!(verifying_a_session_token_over_the_network, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let session_for = |email: &'static str| {
        let admin = &admin;
        async move {
            let user = admin.post("/v1/users", json!({"email_address": [email]})).await.body;
            let session = admin.post("/v1/sessions", json!({"user_id": user["id"]})).await.body;
            let id = session["id"].as_str().unwrap().to_owned();
            let token = admin.post(&format!("/v1/sessions/{id}/tokens"), json!({})).await.body["jwt"]
                .as_str()
                .unwrap()
                .to_owned();
            (user["id"].as_str().unwrap().to_owned(), id, token)
        }
    };
    let (ada, ada_session, ada_token) = session_for("ada@example.com").await;
    let (_, bob_session, bob_token) = session_for("bob@example.com").await;

    for path in [format!("/v1/sessions/{ada_session}/verify"), "/v1/sessions/verify".to_owned()] {
        let r = admin.post(&path, json!({"token": ada_token})).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(
            (r.body["object"].as_str(), r.body["id"].as_str(), r.body["user_id"].as_str(), r.body["status"].as_str()),
            (Some("session"), Some(ada_session.as_str()), Some(ada.as_str()), Some("active")),
            "{path}: {}",
            r.body
        );
    }
    let refused = |path: String, body: serde_json::Value, status: StatusCode, code: &'static str| {
        let admin = &admin;
        async move {
            let r = admin.post(&path, body.clone()).await;
            assert_eq!((r.status, r.error_code()), (status, code), "{path} {body}: {}", r.text);
            assert!(r.body["errors"][0]["long_message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
        }
    };
    let ada_path = format!("/v1/sessions/{ada_session}/verify");
    // Another session's token, an unknown session, a tampered signature.
    refused(ada_path.clone(), json!({"token": bob_token}), StatusCode::BAD_REQUEST, "token_invalid").await;
    refused(
        "/v1/sessions/sess_nobody/verify".into(),
        json!({"token": ada_token}),
        StatusCode::NOT_FOUND,
        "resource_not_found",
    )
    .await;
    let flipped = if ada_token.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{flipped}", &ada_token[..ada_token.len() - 1]);
    refused(ada_path.clone(), json!({"token": tampered}), StatusCode::BAD_REQUEST, "token_invalid").await;
    refused("/v1/sessions/verify".into(), json!({"token": "not.a.jwt"}), StatusCode::BAD_REQUEST, "token_invalid")
        .await;
    // A token from a JWT template is not a session token.
    let template = admin.post("/v1/jwt_templates", json!({"name": "api", "claims": {"aud": "api"}})).await;
    assert_eq!(template.status, StatusCode::OK, "{}", template.text);
    let from_template = admin.post(&format!("/v1/sessions/{ada_session}/tokens/api"), json!({})).await.body["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    refused(ada_path.clone(), json!({"token": from_template}), StatusCode::BAD_REQUEST, "token_invalid").await;
    // No token at all; no secret key.
    refused(ada_path.clone(), json!({}), StatusCode::UNPROCESSABLE_ENTITY, "form_param_missing").await;
    let anonymous = server.browser().post_json(&ada_path, &json!({"token": ada_token})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{}", anonymous.text);

    // A revoked session's still-unexpired token; then, past its lifetime, an expired token.
    assert_eq!(admin.post(&format!("/v1/sessions/{bob_session}/revoke"), json!({})).await.status, StatusCode::OK);
    refused(
        format!("/v1/sessions/{bob_session}/verify"),
        json!({"token": bob_token}),
        StatusCode::BAD_REQUEST,
        "session_not_active",
    )
    .await;
    server.clock.advance_ms(10 * 60 * 1000);
    refused(ada_path.clone(), json!({"token": ada_token}), StatusCode::BAD_REQUEST, "token_expired").await;

    // Nothing changed: Ada's session is still active, Bob's still revoked.
    let ada_now = admin.get(&format!("/v1/sessions/{ada_session}")).await;
    assert_eq!(ada_now.body["status"], "active", "{}", ada_now.text);
    assert_eq!(admin.get(&format!("/v1/sessions/{bob_session}")).await.body["status"], "revoked");
});

// `[organizations] v1_token_claims`: the active organization also in Clerk's v1 claims, which
// `@clerk/backend` 1.x reads (`auth().orgId`, `has()`); off, the tokens carry only `o`.
crate::both_backends!(v1_org_claims_are_added_only_when_configured, |backend| async move {
    use crate::orgs::Person;
    for v1 in [false, true] {
        let server = TestServer::start_with(backend, |c| {
            c.organizations.permissions = vec!["org:invoices:create".into()];
            c.organizations.v1_token_claims = v1;
        })
        .await;
        let ada = Person::sign_up(&server, "ada@example.com").await;
        let created = ada.call("POST", "/v1/organizations", &[("name", "Lovelace")]).await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.text);
        let org_id = created.body["response"]["id"].as_str().unwrap().to_owned();
        assert_eq!(ada.select_org(&org_id).await.status, StatusCode::OK);
        let claims = ada.claims(&server).await;
        assert_eq!(claims.o.as_ref().map(|o| o.id.as_str()), Some(org_id.as_str()), "v2 claims either way");
        let v1_claims = &claims.v1;
        if v1 {
            assert_eq!(v1_claims.org_id.as_deref(), Some(org_id.as_str()));
            assert_eq!(v1_claims.org_slug.as_deref(), Some("lovelace"));
            assert_eq!(v1_claims.org_role.as_deref(), Some("org:admin"));
            assert_eq!(
                v1_claims.org_permissions.as_deref(),
                Some(&["org:invoices:create".to_owned()][..]),
                "the app's own, no system ones"
            );
        } else {
            assert_eq!(*v1_claims, latchkey_token::V1OrgClaims::default());
        }
        // The personal account: no organization claims of either kind.
        assert_eq!(ada.select_org("").await.status, StatusCode::OK);
        let claims = ada.claims(&server).await;
        assert!(claims.o.is_none());
        assert_eq!(claims.v1, latchkey_token::V1OrgClaims::default());
    }
});
