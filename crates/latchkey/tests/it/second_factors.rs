//! Second factors over the Frontend API (docs/second-factors.md): enrolling an authenticator
//! app, backup codes, the sign-in's second step with its attempt limit, replays, drift, and
//! the instance policy. On both backends.

use latchkey_core::second_factor::TotpKey;
use latchkey_core::Clock;
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::harness::{Browser, TestServer};
use crate::webhooks::{drain, worker, Admin, Receiver};

pub const PASSWORD: &str = "correct horse battery staple";

/// The code an authenticator app shows now (or `steps` of 30 seconds from now).
pub fn code_at(server: &TestServer, secret: &str, steps: i64) -> String {
    let key = TotpKey::from_base32(secret, "test", "test").unwrap();
    let secs = server.clock.now_ms() / 1000 + steps * 30;
    key.code_at(u64::try_from(secs).unwrap())
}

/// Moves the clock to the start of the next 30-second step (so a fresh code is due).
pub fn next_step(server: &TestServer) {
    let now = server.clock.now_ms();
    server.clock.advance_ms(30_000 - now.rem_euclid(30_000));
}

/// Signs a new user up and enrols an authenticator app: (user id, session id, secret, backup codes).
pub async fn enrolled(server: &TestServer, b: &Browser, email: &str) -> (String, String, String, Vec<String>) {
    let (user_id, sid) = server.sign_up(b, email, PASSWORD).await;
    let r = b.post("/v1/me/totp", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = r.body["response"]["secret"].as_str().unwrap().to_owned();
    let code = code_at(server, &secret, 0);
    let r = b.post("/v1/me/totp/attempt_verification", &[("code", &code)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes = r.body["response"]["backup_codes"].as_array().unwrap();
    let codes = codes.iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (user_id, sid, secret, codes)
}

/// A password sign-in that stops at the second step: the attempt's id.
pub async fn first_factor(server: &TestServer, b: &Browser, email: &str) -> String {
    let r = server.sign_in(b, email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);
    r.body["response"]["id"].as_str().unwrap().to_owned()
}

pub async fn second_factor(b: &Browser, id: &str, strategy: &str, code: &str) -> crate::harness::Reply {
    b.post(&format!("/v1/client/sign_ins/{id}/attempt_second_factor"), &[("strategy", strategy), ("code", code)]).await
}

both_backends!(an_authenticator_app_is_enrolled_with_a_correct_code, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &["user.updated"]).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;

    let env = b.get("/v1/environment").await.body;
    let attrs = &env["user_settings"]["attributes"];
    assert_eq!(attrs["authenticator_app"]["second_factors"], serde_json::json!(["totp"]));
    assert_eq!(attrs["backup_code"]["used_for_second_factor"], true);
    assert_eq!(env["auth_config"]["reverification"], true);

    let r = b.post("/v1/me/totp", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t = &r.body["response"];
    assert_eq!((t["object"].as_str(), t["verified"].as_bool()), (Some("totp"), Some(false)));
    let secret = t["secret"].as_str().unwrap().to_owned();
    let uri = t["uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/latchkey:ada%40example.com?") && uri.contains(&secret), "{uri}");
    assert!(t["id"].as_str().unwrap().starts_with("totp_"));

    // Not yet a factor: the user shows none, and a sign-in needs no second step.
    let me = b.get("/v1/me").await.body;
    assert_eq!(
        (me["response"]["totp_enabled"].as_bool(), me["response"]["two_factor_enabled"].as_bool()),
        (Some(false), Some(false))
    );
    // The key is sealed at rest: the stored row holds neither the base32 secret nor the bytes.
    let stored = server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.totp.unwrap();
    assert!(!stored.verified);
    assert!(!stored.secret_sealed.contains(&secret) && !stored.secret_sealed.contains(&secret.to_lowercase()));

    // A wrong or malformed code changes nothing; a fresh enrolment replaces a pending one.
    for wrong in ["000000", "12345", "abcdef", ""] {
        let r = b.post("/v1/me/totp/attempt_verification", &[("code", wrong)]).await;
        assert!(r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST, "{}", r.text);
    }
    let r = b.post("/v1/me/totp", &[]).await;
    let secret2 = r.body["response"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(secret2, secret);
    let old = code_at(&server, &secret, 0);
    let r = b.post("/v1/me/totp/attempt_verification", &[("code", &old)]).await;
    assert_eq!(r.error_code(), "form_code_incorrect", "the replaced key is dead: {}", r.text);

    // The right code of the new key verifies it, once, and brings ten backup codes.
    let code = code_at(&server, &secret2, 0);
    let r = b.post("/v1/me/totp/attempt_verification", &[("code", &code)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t = &r.body["response"];
    assert_eq!((t["verified"].as_bool(), t["secret"].is_null(), t["uri"].is_null()), (Some(true), true, true));
    let codes = t["backup_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let me = b.get("/v1/me").await.body["response"].clone();
    assert_eq!(
        (me["totp_enabled"].as_bool(), me["backup_code_enabled"].as_bool(), me["two_factor_enabled"].as_bool()),
        (Some(true), Some(true), Some(true))
    );
    // The session that proved the code counts its second factor as just proved.
    assert_eq!(
        b.get("/v1/client").await.body["response"]["sessions"][0]["factor_verification_age"],
        serde_json::json!([0, 0])
    );
    // One app per user.
    let r = b.post("/v1/me/totp", &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "totp_already_enabled"));
    let stored = server.store.get_user(&user_id).await.unwrap().unwrap().second_factors;
    assert!(stored.backup_codes.iter().all(|c| !codes.iter().any(|k| c.digest.contains(k.as_str().unwrap()))));

    // New backup codes replace the old set (both paths clerk-js may call).
    for path in ["/v1/me/backup_codes", "/v1/me/backup_codes/"] {
        let r = b.post(path, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.body["response"]["object"], "backup_code");
        assert_eq!(r.body["response"]["codes"].as_array().unwrap().len(), 10);
    }

    drain(&worker(&server)).await;
    let updated: Vec<Value> =
        rx.all().await.into_iter().map(|m| m.json()).filter(|e| e["type"] == "user.updated").collect();
    assert!(updated.iter().any(|e| e["data"]["totp_enabled"] == true), "enrolment is announced");
    assert!(updated.len() >= 3, "{} events", updated.len());
    assert!(!updated.iter().any(|e| e.to_string().contains(&secret2)), "no secret in events");
});

both_backends!(a_sign_in_needs_the_second_factor_before_any_session, |backend| async move {
    let server = TestServer::start(backend).await;
    let phone = server.browser();
    let (user_id, _, secret, backup) = enrolled(&server, &phone, "grace@example.com").await;

    let b = server.browser();
    let r = server.sign_in(&b, "grace@example.com", PASSWORD).await;
    let s = &r.body["response"];
    assert_eq!(s["status"], "needs_second_factor", "{}", r.text);
    assert_eq!(s["supported_second_factors"], serde_json::json!([{"strategy": "totp"}, {"strategy": "backup_code"}]));
    assert_eq!(
        (s["created_session_id"].is_null(), s["first_factor_verification"]["status"].as_str()),
        (true, Some("verified"))
    );
    assert_eq!(r.body["client"]["sessions"], serde_json::json!([]), "no session, so no token can be minted");
    assert!(!r.set_cookies().iter().any(|c| c.starts_with("__session=e")), "no session cookie");
    let id = s["id"].as_str().unwrap().to_owned();
    let sessions = server.store.sessions_for_user(&user_id).await.unwrap();
    assert_eq!(sessions.len(), 1, "only the enrolling phone's session exists");

    // Preparing an app or backup code sends nothing and is allowed; other strategies are not.
    let prep = format!("/v1/client/sign_ins/{id}/prepare_second_factor");
    assert_eq!(b.post(&prep, &[("strategy", "totp")]).await.status, StatusCode::OK);
    assert_eq!(b.post(&prep, &[("strategy", "phone_code")]).await.error_code(), "strategy_for_user_invalid");
    assert_eq!(second_factor(&b, &id, "phone_code", "123456").await.error_code(), "strategy_for_user_invalid");

    // The code the enrolment used is spent (the same step); the next step's code works.
    let used = code_at(&server, &secret, 0);
    let r = second_factor(&b, &id, "totp", &used).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_code_incorrect"), "{}", r.text);
    next_step(&server);
    // One step of drift either way is accepted: the code of the step before this one now.
    let drifted = code_at(&server, &secret, -1);
    assert_eq!(drifted, used);
    let r = second_factor(&b, &id, "totp", &code_at(&server, &secret, 1)).await;
    assert_eq!(r.status, StatusCode::OK, "a phone a step ahead: {}", r.text);
    let s = &r.body["response"];
    assert_eq!(s["status"], "complete");
    assert_eq!(s["second_factor_verification"]["status"], "verified");
    assert_eq!(s["second_factor_verification"]["object"], "verification_totp");
    let sid = s["created_session_id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["client"]["sessions"][0]["factor_verification_age"], serde_json::json!([0, 0]));
    let jwt = b.token(&sid).await.body["jwt"].as_str().unwrap().to_owned();
    let claims = crate::flows::verifier_for(&server).await.verify(&jwt, server.clock.now_secs()).unwrap();
    assert_eq!(claims.session_claims().unwrap().fva, [0, 0]);

    // That code (and its step) is now spent too, even for another sign-in.
    let c = server.browser();
    let id2 = first_factor(&server, &c, "grace@example.com").await;
    let r = second_factor(&c, &id2, "totp", &code_at(&server, &secret, 1)).await;
    assert_eq!(r.error_code(), "form_code_incorrect", "replayed: {}", r.text);
    // A backup code works once.
    let r = second_factor(&c, &id2, "backup_code", &backup[0].to_uppercase()).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_eq!(r.body["response"]["second_factor_verification"]["object"], "verification_backup_code");
    let d = server.browser();
    let id3 = first_factor(&server, &d, "grace@example.com").await;
    let r = second_factor(&d, &id3, "backup_code", &backup[0]).await;
    assert_eq!(r.error_code(), "form_code_incorrect", "a backup code used twice: {}", r.text);
    let r = second_factor(&d, &id3, "backup_code", &backup[1]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_eq!(server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.backup_codes.len(), 8);
});

both_backends!(wrong_codes_kill_the_attempt_and_change_nothing_else, |backend| async move {
    let server = TestServer::start(backend).await;
    let phone = server.browser();
    let (user_id, _, secret, backup) = enrolled(&server, &phone, "lin@example.com").await;
    next_step(&server);
    let before = server.store.get_user(&user_id).await.unwrap().unwrap();

    let b = server.browser();
    let id = first_factor(&server, &b, "lin@example.com").await;
    for left in (1..5).rev() {
        let r = second_factor(&b, &id, "totp", "000000").await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_code_incorrect"));
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], "code");
        assert_eq!(r.body["errors"][0]["meta"]["attempts_remaining"], left, "{}", r.text);
    }
    let r = second_factor(&b, &id, "totp", "000000").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "verification_failed"), "{}", r.text);
    // Dead: even the right code and an unused backup code are refused now.
    let r = second_factor(&b, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.error_code(), "verification_failed");
    let r = second_factor(&b, &id, "backup_code", &backup[0]).await;
    assert_eq!(r.error_code(), "verification_failed");
    let after = server.store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(after.second_factors, before.second_factors, "refusals use up no code and no step");
    assert_eq!(after.user.failed_attempts, 0);
    let row = server.store.get_sign_in(&id).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.second_factor_attempts, row.created_session_id),
        ("needs_second_factor", 5, None)
    );

    // A new attempt starts over and the right code passes.
    let c = server.browser();
    let id = first_factor(&server, &c, "lin@example.com").await;
    let r = second_factor(&c, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    // Before the first factor passed, nothing is said of the second.
    let d = server.browser();
    let r = d.post("/v1/client/sign_ins", &[("identifier", "lin@example.com")]).await;
    let s = &r.body["response"];
    assert_eq!((s["status"].as_str(), s["supported_second_factors"].is_null()), (Some("needs_first_factor"), true));
    let id = s["id"].as_str().unwrap();
    let r = second_factor(&d, id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "sign_in_no_second_factor"));
    let r = server.sign_in(&d, "lin@example.com", "wrong password entirely").await;
    assert_eq!(r.error_code(), "form_password_incorrect");
    assert!(r.body["errors"][0].to_string().find("second").is_none(), "{}", r.text);
});

both_backends!(the_policy_turns_second_factors_off, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.second_factors.policy = latchkey_service::second_factors::Policy::Off;
    })
    .await;
    let b = server.browser();
    let env = b.get("/v1/environment").await.body;
    assert_eq!(env["user_settings"]["attributes"]["authenticator_app"]["enabled"], false);
    assert_eq!(env["user_settings"]["sign_in"]["second_factor"], serde_json::json!({"required": false}));
    // A factor stored while the policy was on (or imported) is not asked for.
    let admin = Admin::new(&server).await;
    let r = admin
        .post(
            "/v1/users",
            serde_json::json!({"email_address": ["off@example.com"], "password": PASSWORD, "totp_secret": "JBSWY3DPEHPK3PXPJBSWY3DP"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["totp_enabled"], true);
    let r = server.sign_in(&b, "off@example.com", PASSWORD).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
});

both_backends!(the_required_policy_makes_new_sessions_set_up_a_factor_first, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.second_factors.policy = latchkey_service::second_factors::Policy::Required;
    })
    .await;
    let b = server.browser();
    let env = b.get("/v1/environment").await.body;
    assert_eq!(env["user_settings"]["sign_in"]["second_factor"], serde_json::json!({"required": true}));
    assert_eq!(env["user_settings"]["sign_up"]["mfa"], serde_json::json!({"required": true}));
    // A new account's session waits for the `setup-mfa` task (Clerk's pending session).
    let (_, sid) = server.sign_up(&b, "new@example.com", PASSWORD).await;
    let client = b.get("/v1/client").await.body;
    let session = &client["response"]["sessions"][0];
    assert_eq!(session["status"], "pending", "{session}");
    assert_eq!(session["tasks"], serde_json::json!([{"key": "setup-mfa"}]));
    let jwt = b.token(&sid).await.body["jwt"].as_str().unwrap().to_owned();
    let verifier = crate::flows::verifier_for(&server).await;
    let claims = verifier.verify(&jwt, server.clock.now_secs()).unwrap().session_claims().unwrap();
    assert_eq!(claims.sts, "pending");
    // Its token reaches no data: sync answers as to the signed out.
    let pull = b.send(b.http.get(b.url("/v1/sync/pull")).bearer_auth(&jwt)).await;
    assert_eq!(pull.status, StatusCode::UNAUTHORIZED, "{}", pull.text);

    // Setting up an app finishes the task: the session is active and its tokens say so.
    let r = b.post("/v1/me/totp", &[]).await;
    let secret = r.body["response"]["secret"].as_str().unwrap().to_owned();
    let r = b.post("/v1/me/totp/attempt_verification", &[("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let session = &r.body["client"]["sessions"][0];
    assert_eq!((session["status"].as_str(), session["tasks"].is_null()), (Some("active"), true), "{session}");
    let jwt = session["last_active_token"]["jwt"].as_str().unwrap();
    assert_eq!(verifier.verify(jwt, server.clock.now_secs()).unwrap().session_claims().unwrap().sts, "active");
    let pull = b.send(b.http.get(b.url("/v1/sync/pull")).bearer_auth(jwt)).await;
    assert_eq!(pull.status, StatusCode::OK, "{}", pull.text);
    // The only factor cannot be removed while the policy requires one.
    let r = b.post("/v1/me/totp?_method=DELETE", &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "second_factor_required"), "{}", r.text);

    // An existing user without a factor (made by the Backend API) gets the same task at sign-in.
    let admin = Admin::new(&server).await;
    let made =
        admin.post("/v1/users", serde_json::json!({"email_address": ["old@example.com"], "password": PASSWORD})).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    let c = server.browser();
    let r = server.sign_in(&c, "old@example.com", PASSWORD).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_eq!(r.body["client"]["sessions"][0]["status"], "pending");
    // And a user with a factor signs in with it and is active at once.
    let d = server.browser();
    next_step(&server);
    let id = first_factor(&server, &d, "new@example.com").await;
    let r = second_factor(&d, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.body["client"]["sessions"][0]["status"], "active", "{}", r.text);
});

// A provider proves the first factor only: a user with an app is sent back to the app's
// callback page (not its home) with the attempt waiting for the code, and no session.
both_backends!(a_provider_sign_in_still_asks_for_the_second_factor, |backend| async move {
    use crate::oauth::{sign_in_as, signed_in_user, OpenIdProvider, APP_CALLBACK};
    let provider = OpenIdProvider::start().await;
    let server = crate::oauth::start(&provider, backend).await;
    let phone = server.browser();
    let (ada, _, secret, _) = enrolled(&server, &phone, "ada@example.com").await;
    next_step(&server);

    let b = server.browser();
    let done = sign_in_as(&server, &b, "oauth_google", "g-ada").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.headers["location"], APP_CALLBACK, "back to the page that continues the sign-in");
    assert!(!done.set_cookies().iter().any(|c| c.starts_with("__session=ey")), "no session yet");
    assert_eq!(signed_in_user(&b).await, None);
    let attempt = crate::oauth::current_sign_in(&b).await;
    assert_eq!(attempt["status"], "needs_second_factor", "{attempt}");
    let id = attempt["id"].as_str().unwrap().to_owned();
    let r = second_factor(&b, &id, "totp", &code_at(&server, &secret, 0)).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(ada.as_str()));
});
