//! Step-up checks (reverification) and the Backend API's second-factor routes
//! (docs/second-factors.md). On both backends.

use latchkey_core::Clock;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::harness::{Browser, TestServer};
use crate::second_factors::{code_at, enrolled, next_step, PASSWORD};
use crate::webhooks::{drain, worker, Admin, Receiver};

const ELEVEN_MINUTES: i64 = 11 * 60_000;

fn assert_needs_reverification(r: &crate::harness::Reply) {
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "session_reverification_required"), "{}", r.text);
    let meta = &r.body["errors"][0]["meta"]["session_verification"];
    assert_eq!(
        (meta["level"].as_str(), meta["after_minutes"].as_i64()),
        (Some("second_factor"), Some(10)),
        "{}",
        r.text
    );
}

async fn verify(b: &Browser, sid: &str, step: &str, form: &[(&str, &str)]) -> crate::harness::Reply {
    b.post(&format!("/v1/client/sessions/{sid}/verify{step}"), form).await
}

both_backends!(removing_an_app_needs_a_fresh_second_factor, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (user_id, sid, secret, backup) = enrolled(&server, &b, "ada@example.com").await;

    server.clock.advance_ms(ELEVEN_MINUTES);
    next_step(&server);
    let r = b.post("/v1/me/totp?_method=DELETE", &[]).await;
    assert_needs_reverification(&r);
    assert_needs_reverification(&b.post("/v1/me/backup_codes", &[]).await);
    assert!(server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.totp_enabled(), "nothing removed");
    let fva = b.get("/v1/client").await.body["response"]["sessions"][0]["factor_verification_age"].clone();
    assert_eq!(fva, json!([11, 11]));

    // The check: second factor for a user who has one; a wrong code changes nothing.
    let r = verify(&b, &sid, "", &[("level", "second_factor")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = &r.body["response"];
    assert_eq!(
        (v["object"].as_str(), v["status"].as_str()),
        (Some("session_reverification"), Some("needs_second_factor"))
    );
    assert_eq!(v["supported_second_factors"], json!([{"strategy": "totp"}, {"strategy": "backup_code"}]));
    assert_eq!(v["supported_first_factors"][0]["strategy"], "password");
    assert_eq!(v["session"]["id"], sid.as_str());
    let r = verify(&b, &sid, "/prepare_second_factor", &[("strategy", "totp")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = verify(&b, &sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", "000000")]).await;
    assert_eq!(r.error_code(), "form_code_incorrect");
    let r =
        verify(&b, &sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", &code_at(&server, &secret, 0))])
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"]["status"], "complete");
    // The answer's client already shows the new age and a token that carries it.
    let session = &r.body["client"]["sessions"][0];
    assert_eq!(session["factor_verification_age"], json!([11, 0]));
    let jwt = session["last_active_token"]["jwt"].as_str().unwrap();
    let claims = crate::flows::verifier_for(&server).await.verify(jwt, server.clock.now_secs()).unwrap();
    assert_eq!(claims.session_claims().unwrap().fva, [11, 0]);

    let r = b.post("/v1/me/totp?_method=DELETE", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"], json!({"object": "totp", "id": r.body["response"]["id"], "deleted": true}));
    let me = b.get("/v1/me").await.body["response"].clone();
    assert_eq!((me["totp_enabled"].as_bool(), me["backup_code_enabled"].as_bool()), (Some(false), Some(false)));
    // Its backup codes went with it: a sign-in is one step again.
    let c = server.browser();
    let r = server.sign_in(&c, "ada@example.com", PASSWORD).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert!(!backup.is_empty());
});

both_backends!(a_password_change_needs_a_recent_first_factor_without_an_app, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (_, sid) = server.sign_up(&b, "grace@example.com", PASSWORD).await;
    let change = [("current_password", PASSWORD), ("new_password", "another sturdy passphrase")];
    server.clock.advance_ms(ELEVEN_MINUTES);
    let r = b.post("/v1/me/change_password", &change).await;
    assert_needs_reverification(&r);

    // No second factor: the check falls back to the first (Clerk's rule).
    let r = verify(&b, &sid, "", &[("level", "second_factor")]).await;
    assert_eq!(r.body["response"]["status"], "needs_first_factor", "{}", r.text);
    assert!(r.body["response"]["supported_second_factors"].is_null());
    let r = verify(&b, &sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", "123456")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no second step to attempt: {}", r.text);
    let r = verify(&b, &sid, "/attempt_first_factor", &[("strategy", "password"), ("password", "not it at all")]).await;
    assert_eq!(r.error_code(), "form_password_incorrect");
    // An emailed code works too.
    let email_id = b.get("/v1/me").await.body["response"]["primary_email_address_id"].as_str().unwrap().to_owned();
    let r =
        verify(&b, &sid, "/prepare_first_factor", &[("strategy", "email_code"), ("email_address_id", &email_id)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = server.code_after("grace@example.com", 1).await;
    let r = verify(&b, &sid, "/attempt_first_factor", &[("strategy", "email_code"), ("code", &code)]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_eq!(r.body["client"]["sessions"][0]["factor_verification_age"], json!([0, -1]));
    let r = b.post("/v1/me/change_password", &change).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // The check ages out again; a bad level is refused.
    server.clock.advance_ms(ELEVEN_MINUTES);
    let r = b
        .post(
            "/v1/me/change_password",
            &[("current_password", "another sturdy passphrase"), ("new_password", PASSWORD)],
        )
        .await;
    assert_needs_reverification(&r);
    let r = verify(&b, &sid, "", &[("level", "everything")]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid"));
    // Another client's session cannot be checked.
    let other = server.browser();
    let r = verify(&other, &sid, "", &[("level", "first_factor")]).await;
    assert!(r.status == StatusCode::NOT_FOUND || r.status == StatusCode::UNAUTHORIZED, "{}", r.text);
});

both_backends!(deleting_the_account_needs_a_recent_check, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (user_id, sid, secret, _) = enrolled(&server, &b, "lin@example.com").await;
    server.clock.advance_ms(ELEVEN_MINUTES);
    assert_needs_reverification(&b.post("/v1/me?_method=DELETE", &[]).await);
    // multi_factor: the password, then the app.
    let r = verify(&b, &sid, "", &[("level", "multi_factor")]).await;
    assert_eq!(r.body["response"]["status"], "needs_first_factor");
    let r = verify(&b, &sid, "/attempt_first_factor", &[("strategy", "password"), ("password", PASSWORD)]).await;
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);
    next_step(&server);
    let r =
        verify(&b, &sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", &code_at(&server, &secret, 0))])
            .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let r = b.post("/v1/me?_method=DELETE", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"]["deleted"], true);
    assert!(server.store.get_user(&user_id).await.unwrap().is_none());
});

both_backends!(the_backend_api_imports_checks_and_removes_second_factors, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &["user.updated"]).await;
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DP";
    let r = admin
        .post(
            "/v1/users",
            json!({"email_address": ["imp@example.com"], "password": PASSWORD, "totp_secret": secret,
                   "backup_codes": ["alpha-bravo-1", "charlie-delta-2"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            r.body["totp_enabled"].as_bool(),
            r.body["backup_code_enabled"].as_bool(),
            r.body["two_factor_enabled"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    let id = r.body["id"].as_str().unwrap().to_owned();
    for bad in [
        json!({"email_address": ["b1@example.com"], "totp_secret": "not base32!"}),
        json!({"email_address": ["b2@example.com"], "backup_codes": ["$2a$10$abcdefghijklmnop"]}),
    ] {
        let r = admin.post("/v1/users", bad.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.text);
    }
    assert_eq!(admin.get("/v1/users?email_address=b1@example.com").await.body, json!([]), "nothing written");

    // verify_totp: the app's code, then a backup code (used up), then wrong ones.
    let path = format!("/v1/users/{id}/verify_totp");
    let r = admin.post(&path, json!({"code": code_at(&server, secret, 0)})).await;
    assert_eq!(r.body, json!({"verified": true, "code_type": "totp"}), "{}", r.text);
    let r = admin.post(&path, json!({"code": code_at(&server, secret, 0)})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_code_incorrect"), "replayed");
    let r = admin.post(&path, json!({"code": "ALPHA-BRAVO-1"})).await;
    assert_eq!(r.body, json!({"verified": true, "code_type": "backup_code"}), "{}", r.text);
    assert_eq!(admin.post(&path, json!({"code": "alpha-bravo-1"})).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(admin.post(&path, json!({})).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        admin.post("/v1/users/user_nobody/verify_totp", json!({"code": "123456"})).await.status,
        StatusCode::NOT_FOUND
    );

    // The imported factors sign in.
    let b = server.browser();
    let r = server.sign_in(&b, "imp@example.com", PASSWORD).await;
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);

    // Removal, piece by piece and all at once; unknown users are 404.
    let r = admin.delete(&format!("/v1/users/{id}/backup_code")).await;
    assert_eq!(r.body, json!({"user_id": id}), "{}", r.text);
    let user = admin.get(&format!("/v1/users/{id}")).await.body;
    assert_eq!((user["totp_enabled"].as_bool(), user["backup_code_enabled"].as_bool()), (Some(true), Some(false)));
    let r = admin.delete(&format!("/v1/users/{id}/totp")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(admin.get(&format!("/v1/users/{id}")).await.body["two_factor_enabled"], false);
    assert_eq!(admin.delete(&format!("/v1/users/{id}/mfa")).await.body, json!({"user_id": id}));
    assert_eq!(admin.delete("/v1/users/user_nobody/mfa").await.status, StatusCode::NOT_FOUND);
    let r = admin.post(&path, json!({"code": "123456"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "totp_not_enabled"));
    let r = server.sign_in(&server.browser(), "imp@example.com", PASSWORD).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);

    drain(&worker(&server)).await;
    let updated: Vec<_> =
        rx.all().await.into_iter().map(|m| m.json()).filter(|e| e["type"] == "user.updated").collect();
    assert!(updated.iter().any(|e| e["data"]["backup_code_enabled"] == false && e["data"]["totp_enabled"] == true));
    assert!(updated.iter().any(|e| e["data"]["two_factor_enabled"] == false));
});

// Starting a check again does not give fresh tries for the second factor.
both_backends!(a_restarted_check_keeps_its_wrong_codes, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (_, sid, secret, _) = enrolled(&server, &b, "eve@example.com").await;
    next_step(&server);
    for round in 0..5 {
        let r = verify(&b, &sid, "", &[("level", "second_factor")]).await;
        assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);
        let r = verify(&b, &sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", "000000")]).await;
        let want = if round < 4 { "form_code_incorrect" } else { "verification_failed" };
        assert_eq!(r.error_code(), want, "round {round}: {}", r.text);
    }
    verify(&b, &sid, "", &[("level", "second_factor")]).await;
    let r =
        verify(&b, &sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", &code_at(&server, &secret, 0))])
            .await;
    assert_eq!(r.error_code(), "verification_failed", "even the right code: {}", r.text);
});

// A session begun before its user added an app never proved it: a first factor alone does not
// make it recent, and its tokens do not say "no second factor" (-1).
both_backends!(a_session_older_than_the_app_must_prove_the_app, |backend| async move {
    let server = TestServer::start(backend).await;
    let phone = server.browser();
    let (_, phone_sid) = server.sign_up(&phone, "old@example.com", PASSWORD).await;
    let laptop = server.browser();
    let r = server.sign_in(&laptop, "old@example.com", PASSWORD).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let r = laptop.post("/v1/me/totp", &[]).await;
    let secret = r.body["response"]["secret"].as_str().unwrap().to_owned();
    let r = laptop.post("/v1/me/totp/attempt_verification", &[("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let age = phone.get("/v1/client").await.body["response"]["sessions"][0]["factor_verification_age"].clone();
    assert_eq!(age[0], 0);
    assert!(age[1].as_i64().unwrap() > 10_000, "stale, not -1: {age}");
    // The password alone, even just proved, does not pass a second-factor requirement.
    let r = verify(&phone, &phone_sid, "", &[("level", "first_factor")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r =
        verify(&phone, &phone_sid, "/attempt_first_factor", &[("strategy", "password"), ("password", PASSWORD)]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_needs_reverification(&phone.post("/v1/me/backup_codes", &[]).await);
    assert_needs_reverification(&phone.post("/v1/me/totp?_method=DELETE", &[]).await);
    // Proving the app makes it recent.
    next_step(&server);
    let r = verify(&phone, &phone_sid, "", &[("level", "second_factor")]).await;
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);
    let code = code_at(&server, &secret, 0);
    let r = verify(&phone, &phone_sid, "/attempt_second_factor", &[("strategy", "totp"), ("code", &code)]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_eq!(phone.post("/v1/me/backup_codes", &[]).await.status, StatusCode::OK);
});
