//! JWT template tokens through the Frontend API (`POST /v1/client/sessions/{id}/tokens/{name}`,
//! clerk-js's `session.getToken({ template })`): rendered from the session's user and active
//! organization, with the template's lifetime, never set as a cookie, and refused as the
//! Backend API refuses them (unknown template, another client's session, a session that
//! ended, a session still waiting for a task). On both backends.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::second_factors::PASSWORD;
use crate::webhooks::Admin;

fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn template_token(b: &Browser, session_id: &str, name: &str) -> Reply {
    b.post(&format!("/v1/client/sessions/{session_id}/tokens/{name}"), &[]).await
}

both_backends!(a_browser_gets_a_template_token_for_its_own_active_session, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let t = admin
        .post(
            "/v1/jwt_templates",
            json!({"name": "supabase", "lifetime": 600, "claims": {"aud": "authenticated", "role": "authenticated", "email": "{{user.primary_email_address}}", "org": "{{org.slug}}", "org_role": "{{org.role}}"}}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let b = server.browser();
    let (user_id, sid) = server.sign_up(&b, "tpl@example.com", PASSWORD).await;

    let r = template_token(&b, &sid, "supabase").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["object"], "token", "bare, like the session token: {}", r.text);
    assert!(
        !r.set_cookies().iter().any(|c| c.starts_with("__session=")),
        "a template token is never the session cookie: {:?}",
        r.set_cookies()
    );
    let jwt = r.body["jwt"].as_str().unwrap().to_owned();
    let c = claims(&jwt);
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str(), c["email"].as_str(), c["org"].clone()),
        (Some(user_id.as_str()), Some("authenticated"), Some("tpl@example.com"), Value::Null)
    );
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600, "the template's lifetime");
    let now = latchkey_core::Clock::now_secs(&server.clock);
    assert!(crate::flows::verifier_for(&server).await.verify(&jwt, now).is_err(), "not a session token");

    // With an active organization, the organization shortcodes are that organization's.
    let org = b.post("/v1/organizations", &[("name", "Family"), ("slug", "family")]).await;
    assert_eq!(org.status, StatusCode::OK, "{}", org.text);
    let org_id = org.body["response"]["id"].as_str().unwrap().to_owned();
    let touched = b.post(&format!("/v1/client/sessions/{sid}/touch"), &[("active_organization_id", &org_id)]).await;
    assert_eq!(touched.status, StatusCode::OK, "{}", touched.text);
    let c = claims(template_token(&b, &sid, "supabase").await.body["jwt"].as_str().unwrap());
    assert_eq!((c["org"].as_str(), c["org_role"].as_str()), (Some("family"), Some("org:admin")));

    // Refusals, in the one error shape.
    let unknown = template_token(&b, &sid, "nope").await;
    assert_eq!((unknown.status, unknown.error_code()), (StatusCode::NOT_FOUND, "resource_not_found"));
    let other = server.browser();
    let (_, other_sid) = server.sign_up(&other, "other@example.com", PASSWORD).await;
    let foreign = template_token(&b, &other_sid, "supabase").await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "another client's session: {}", foreign.text);
    let anonymous = template_token(&server.browser(), &sid, "supabase").await;
    assert!(anonymous.status.is_client_error() && anonymous.body["jwt"].is_null(), "{}", anonymous.text);
    let ended = b.post(&format!("/v1/client/sessions/{sid}/end"), &[]).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text);
    let after_end = template_token(&b, &sid, "supabase").await;
    assert_eq!(after_end.status, StatusCode::UNAUTHORIZED, "{}", after_end.text);
});

both_backends!(a_session_waiting_for_a_task_gets_no_template_token, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.second_factors.policy = latchkey_service::second_factors::Policy::Required;
    })
    .await;
    let admin = Admin::new(&server).await;
    let t = admin.post("/v1/jwt_templates", json!({"name": "api", "claims": {"aud": "api"}})).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let b = server.browser();
    let (_, sid) = server.sign_up(&b, "pending@example.com", PASSWORD).await;
    let r = template_token(&b, &sid, "api").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "session_pending"), "{}", r.text);
    // The Backend API refuses it too.
    let r = admin.post(&format!("/v1/sessions/{sid}/tokens/api"), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
});
