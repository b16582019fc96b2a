//! The identity flows end to end over HTTP, on both backends.

use latchkey_token::{Jwks, Verifier, VerifierOptions};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::harness::{Browser, TestServer};

const PASSWORD: &str = "correct horse battery staple";

pub async fn verifier_for(server: &TestServer) -> Verifier {
    let jwks: Jwks = serde_json::from_value(server.browser().get("/.well-known/jwks.json").await.body).unwrap();
    let keys = jwks.keys.iter().map(|k| k.to_public_key().unwrap());
    Verifier::new(keys, VerifierOptions { issuers: Some(vec![server.url.clone()]), ..VerifierOptions::default() })
}

fn now_secs(server: &TestServer) -> i64 {
    latchkey_core::Clock::now_secs(&server.clock)
}

both_backends!(sign_up_sign_in_tokens_and_sign_out, |backend| async move {
    let server = TestServer::start(backend).await;
    let a = server.browser();
    let (user_id, session_id) = server.sign_up(&a, "ada@example.com", PASSWORD).await;
    assert!(user_id.starts_with("user_") && user_id.len() == 32, "{user_id}");
    assert!(session_id.starts_with("sess_"));

    let r = a.token(&session_id).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.body["object"], "token");
    let jwt = r.body["jwt"].as_str().unwrap();
    let claims = verifier_for(&server).await.verify(jwt, now_secs(&server)).unwrap().session_claims().unwrap();
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.sid, session_id);
    assert_eq!(claims.iss, server.url);
    assert_eq!(claims.exp - claims.iat, 60);
    assert_eq!((claims.v, claims.fva, claims.sts.as_str()), (2, [0, -1], "active"));
    assert!(r.set_cookies().iter().any(|c| c.starts_with(&format!("__session={jwt}"))));

    let me = a.get(&format!("/v1/me?_clerk_session_id={session_id}")).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["response"]["email_addresses"][0]["email_address"], "ada@example.com");
    assert_eq!(me.body["response"]["email_addresses"][0]["linked_to"], serde_json::json!([]));
    assert_eq!(me.body["client"]["last_active_session_id"], session_id.as_str());

    // Sign out: no sessions left, __client_uat = 0, and the old session is dead for this client.
    let out = a.post("/v1/client/sessions?_method=DELETE", &[]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.body["response"]["sessions"], serde_json::json!([]));
    assert!(out.set_cookies().iter().any(|c| c.starts_with("__client_uat=0;")));
    assert!(out.set_cookies().iter().any(|c| c.starts_with("__session=;") && c.contains("Max-Age=0")));
    let replay = a.token(&session_id).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
    assert_eq!(a.get("/v1/me").await.status, StatusCode::UNAUTHORIZED);

    // Sign in again: a new session id; the old one stays dead.
    let b = server.browser();
    let r = server.sign_in(&b, "ADA@example.com ", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"]["status"], "complete");
    let new_sid = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    assert_ne!(new_sid, session_id);
    assert_eq!(r.body["client"]["sessions"][0]["id"], new_sid.as_str());
    assert!(r.body["client"]["sessions"][0]["last_active_token"]["jwt"].is_string());
    assert_eq!(b.token(&new_sid).await.status, StatusCode::OK);
    assert_eq!(b.token(&session_id).await.status, StatusCode::NOT_FOUND, "another client's session is not visible");
});

both_backends!(a_revoked_session_cannot_refresh, |backend| async move {
    let server = TestServer::start(backend).await;
    let a = server.browser();
    let (_, sid_a) = server.sign_up(&a, "grace@example.com", PASSWORD).await;
    let b = server.browser();
    let r = server.sign_in(&b, "grace@example.com", PASSWORD).await;
    let sid_b = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    let sessions = a.get("/v1/me/sessions/active").await;
    // A bare array, as clerk-js reads it (`payload.map`), each session with its user.
    let listed = sessions.body.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|s| s["user"]["object"] == "user" && s["latest_activity"]["is_mobile"] == false));
    let revoke = a.post(&format!("/v1/me/sessions/{sid_b}/revoke?_clerk_session_id={sid_a}"), &[]).await;
    assert_eq!(revoke.status, StatusCode::OK, "{}", revoke.text);
    assert_eq!(revoke.body["response"]["status"], "revoked");
    assert_eq!(revoke.body["response"]["user"]["id"], listed[0]["user"]["id"]);
    let refresh = b.token(&sid_b).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh.body["errors"][0]["code"], "authentication_invalid");
    assert_eq!(a.token(&sid_a).await.status, StatusCode::OK);
});

both_backends!(concurrent_sign_ups_with_one_email_have_one_winner, |backend| async move {
    let server = TestServer::start(backend).await;
    let (a, b) = (server.browser(), server.browser());
    let ra = a.post("/v1/client/sign_ups", &[("email_address", "twin@example.com"), ("password", PASSWORD)]).await;
    server.code_for("twin@example.com").await;
    let rb = b.post("/v1/client/sign_ups", &[("email_address", "twin@example.com"), ("password", PASSWORD)]).await;
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = server.mail_to("twin@example.com").await;
        if mails.len() >= 2 {
            break;
        }
    }
    let code = |i: usize| -> String { mails[i].subject.chars().take(6).collect() };
    let (code_a, code_b) = (code(0), code(1));
    let (ida, idb) = (ra.body["response"]["id"].as_str().unwrap(), rb.body["response"]["id"].as_str().unwrap());
    let pa = format!("/v1/client/sign_ups/{ida}/attempt_verification");
    let pb = format!("/v1/client/sign_ups/{idb}/attempt_verification");
    let form_a = [("strategy", "email_code"), ("code", code_a.as_str())];
    let form_b = [("strategy", "email_code"), ("code", code_b.as_str())];
    let (x, y) = tokio::join!(a.post(&pa, &form_a), b.post(&pb, &form_b));
    let mut statuses = [x.status, y.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY], "{} / {}", x.text, y.text);
    let loser = if x.status == StatusCode::OK { &y } else { &x };
    assert_eq!(loser.error_code(), "form_identifier_exists");
    assert_eq!(loser.body["errors"][0]["meta"]["param_name"], "email_address");
    let (users, _) = server.services.admin().list_users(&latchkey::operator(), 100, 0).await.unwrap();
    assert_eq!(users.iter().filter(|u| u.emails.iter().any(|e| e.email == "twin@example.com")).count(), 1);
});

// Clerk's SDKs create the sign-up (which mails a code at once) and then ask for a code: the
// first code stands, so the person gets one mail with a live code. Asked later, a new one.
both_backends!(a_code_asked_for_right_after_sign_up_is_the_one_mailed, |backend| async move {
    let server = TestServer::start(backend).await;
    let prepare_and_attempt = |b: Browser, email: &'static str, wait_ms: i64| {
        let server = &server;
        async move {
            let r = b.post("/v1/client/sign_ups", &[("email_address", email), ("password", PASSWORD)]).await;
            let id = r.body["response"]["id"].as_str().unwrap().to_owned();
            let first = server.code_for(email).await;
            server.clock.advance_ms(wait_ms);
            let r =
                b.post(&format!("/v1/client/sign_ups/{id}/prepare_verification"), &[("strategy", "email_code")]).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let attempt = format!("/v1/client/sign_ups/{id}/attempt_verification");
            (b, attempt, first)
        }
    };
    let (b, attempt, first) = prepare_and_attempt(server.browser(), "once@example.com", 2_000).await;
    assert_eq!(server.mail_count("once@example.com").await, 1, "one mail");
    let r = b.post(&attempt, &[("strategy", "email_code"), ("code", &first)]).await;
    assert_eq!(r.body["response"]["status"], "complete", "the first code still works: {}", r.text);

    let (b, attempt, first) = prepare_and_attempt(server.browser(), "resend@example.com", 10_000).await;
    assert_eq!(server.mail_count("resend@example.com").await, 2, "a resend mails a new code");
    let fresh = server.code_after("resend@example.com", 1).await;
    if fresh != first {
        let r = b.post(&attempt, &[("strategy", "email_code"), ("code", &first)]).await;
        assert_eq!(r.error_code(), "form_code_incorrect", "the new code replaces the first: {}", r.text);
    }
    let r = b.post(&attempt, &[("strategy", "email_code"), ("code", &fresh)]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);

    // The same for an address added to an account (clerk-js's `createEmailAddress` and then
    // `prepareVerification`).
    let added = b.post("/v1/me/email_addresses", &[("email_address", "added@example.com")]).await;
    let email_id = added.body["response"]["id"].as_str().unwrap().to_owned();
    let first = server.code_for("added@example.com").await;
    let r =
        b.post(&format!("/v1/me/email_addresses/{email_id}/prepare_verification"), &[("strategy", "email_code")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(server.mail_count("added@example.com").await, 1, "one mail");
    let r =
        b.post(&format!("/v1/me/email_addresses/{email_id}/attempt_verification"), &[("code", first.as_str())]).await;
    assert_eq!(r.body["response"]["verification"]["status"], "verified", "{}", r.text);
});

both_backends!(codes_expire_are_single_use_and_limited, |backend| async move {
    let server = TestServer::start(backend).await;
    let a = server.browser();
    let r = a.post("/v1/client/sign_ups", &[("email_address", "code@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(r.body["response"]["verifications"]["email_address"]["status"], "unverified");
    assert_eq!(r.body["response"]["verifications"]["email_address"]["strategy"], "email_code");
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let attempt = format!("/v1/client/sign_ups/{id}/attempt_verification");
    let code = server.code_for("code@example.com").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        let r = a.post(&attempt, &[("strategy", "email_code"), ("code", wrong)]).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_code_incorrect"));
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], "code");
    }
    let r = a.post(&attempt, &[("strategy", "email_code"), ("code", wrong)]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "verification_failed"));
    let r = a.post(&attempt, &[("strategy", "email_code"), ("code", &code)]).await;
    assert_eq!(r.error_code(), "verification_failed", "the right code no longer helps");

    // A new code; it expires after 10 minutes.
    let r = a.post(&format!("/v1/client/sign_ups/{id}/prepare_verification"), &[("strategy", "email_code")]).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut fresh = server.code_for("code@example.com").await;
    for _ in 0..50 {
        if fresh != code {
            break;
        }
        fresh = server.code_for("code@example.com").await;
    }
    server.clock.advance_ms(10 * 60 * 1000);
    let r = a.post(&attempt, &[("strategy", "email_code"), ("code", &fresh)]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "verification_expired"));

    a.post(&format!("/v1/client/sign_ups/{id}/prepare_verification"), &[("strategy", "email_code")]).await;
    let mails = server.mail_to("code@example.com").await;
    let latest: String = mails.last().unwrap().subject.chars().take(6).collect();
    let ok = a.post(&attempt, &[("strategy", "email_code"), ("code", &latest)]).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let again = a.post(&attempt, &[("strategy", "email_code"), ("code", &latest)]).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::BAD_REQUEST, "verification_already_verified"));
});

/// Removes what legitimately differs between two attempts: ids and times.
fn scrub(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let scrubbed = if k.ends_with("id")
                        || k.ends_with("_at")
                        || k == "identifier"
                        || k == "safe_identifier"
                        || k == "email_address"
                    {
                        Value::String("*".into())
                    } else {
                        scrub(v)
                    };
                    (k.clone(), scrubbed)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
        other => other.clone(),
    }
}

both_backends!(unknown_wrong_and_unverified_look_the_same, |backend| async move {
    let server = TestServer::start(backend).await;
    let a = server.browser();
    let (user_id, _) = server.sign_up(&a, "known@example.com", PASSWORD).await;
    server
        .services
        .admin()
        .admin_add_email(&latchkey::operator(), &user_id, "unverified@example.com", false, false)
        .await
        .unwrap();

    let known = server.browser().post("/v1/client/sign_ins", &[("identifier", "known@example.com")]).await;
    let unknown = server.browser().post("/v1/client/sign_ins", &[("identifier", "nobody@example.com")]).await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(scrub(&known.body["response"]), scrub(&unknown.body["response"]), "sign-in attempts differ only in ids");
    assert_eq!(unknown.body["response"]["status"], "needs_first_factor");

    let mut replies = Vec::new();
    for (identifier, password) in [
        ("known@example.com", "wrong password here"),
        ("nobody@example.com", PASSWORD),
        ("unverified@example.com", PASSWORD),
    ] {
        replies.push(server.sign_in(&server.browser(), identifier, password).await);
    }
    for r in &replies {
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["errors"], replies[0].body["errors"], "same error body");
        let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k != "date").collect();
        names.sort();
        let mut first: Vec<_> =
            replies[0].headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k != "date").collect();
        first.sort();
        assert_eq!(names, first, "same headers");
    }
    assert_eq!(replies[0].error_code(), "form_password_incorrect");
});

both_backends!(a_taken_email_looks_new_until_the_address_is_proven, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "taken@example.com", PASSWORD).await;
    let fresh = server
        .browser()
        .post("/v1/client/sign_ups", &[("email_address", "fresh@example.com"), ("password", PASSWORD)])
        .await;
    let b = server.browser();
    let taken = b.post("/v1/client/sign_ups", &[("email_address", "taken@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(fresh.status, taken.status);
    assert_eq!(scrub(&fresh.body["response"]), scrub(&taken.body["response"]));
    let mails = server.mail_to("taken@example.com").await;
    assert!(mails.last().unwrap().text.contains("already exists"), "the owner learns someone tried");
    let code = server.code_for("taken@example.com").await;
    let id = taken.body["response"]["id"].as_str().unwrap();
    let r = b
        .post(&format!("/v1/client/sign_ups/{id}/attempt_verification"), &[("strategy", "email_code"), ("code", &code)])
        .await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_identifier_exists"));
});

// After 100 consecutive failures the password factor pauses for an hour, but answers exactly
// like a wrong password (to a stranger a locked account looks like any other); the owner is
// told by mail, and an emailed code still signs them in and lifts the pause.
both_backends!(accounts_lock_after_100_failures_then_cool_down, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.enabled = false).await;
    let (user_id, _) = server.sign_up(&server.browser(), "locked@example.com", PASSWORD).await;
    let b = server.browser();
    for i in 0..100 {
        let r = server.sign_in(&b, "locked@example.com", "not the password").await;
        assert_eq!(r.error_code(), "form_password_incorrect", "attempt {i}");
    }
    let locked = server.sign_in(&b, "locked@example.com", PASSWORD).await;
    let unknown = server.sign_in(&b, "nobody-here@example.com", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", locked.text);
    assert_eq!(locked.body["errors"], unknown.body["errors"], "a locked account answers like any wrong password");
    let user = server.services.users().user(&user_id).await.unwrap();
    assert!(user.user.locked_until.is_some() && user.user.failed_attempts >= 100);
    let notice = server.wait_for_mail("locked@example.com", |m| m.subject.contains("paused")).await;
    assert!(notice.text.contains("sign in with a code"), "{}", notice.text);

    server.clock.advance_ms(3_600_000);
    let r = server.sign_in(&b, "locked@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let user = server.services.users().user(&user_id).await.unwrap();
    assert_eq!((user.user.failed_attempts, user.user.locked_until), (0, None), "success resets the count");

    // Locked again, the owner signs in with a code from their mailbox: the pause is lifted.
    let b = server.browser();
    for _ in 0..100 {
        server.sign_in(&b, "locked@example.com", "not the password").await;
    }
    let r = b.post("/v1/client/sign_ins", &[("identifier", "locked@example.com")]).await;
    let sia = r.body["response"]["id"].as_str().unwrap().to_owned();
    let sent = server.mail_count("locked@example.com").await;
    let r = b.post(&format!("/v1/client/sign_ins/{sia}/prepare_first_factor"), &[("strategy", "email_code")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = server.code_after("locked@example.com", sent).await;
    let r = b
        .post(
            &format!("/v1/client/sign_ins/{sia}/attempt_first_factor"),
            &[("strategy", "email_code"), ("code", &code)],
        )
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let user = server.services.users().user(&user_id).await.unwrap();
    assert_eq!((user.user.failed_attempts, user.user.locked_until), (0, None), "the code lifted the pause");
});

both_backends!(rate_limits_answer_429_with_retry_after, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.rate_limits.per_ip_per_minute = 3;
    })
    .await;
    let b = server.browser();
    for _ in 0..3 {
        let r = b.post("/v1/client/sign_ins", &[("identifier", "someone@example.com")]).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = b.post("/v1/client/sign_ins", &[("identifier", "someone@example.com")]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"));
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.content_type(), "application/json");
    server.clock.advance_ms(60_000);
    assert_eq!(b.post("/v1/client/sign_ins", &[("identifier", "someone@example.com")]).await.status, StatusCode::OK);
});

both_backends!(per_identifier_limits_hold_across_ips, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.per_identifier_per_minute = 2).await;
    for _ in 0..2 {
        assert_eq!(
            server.browser().post("/v1/client/sign_ins", &[("identifier", "target@example.com")]).await.status,
            StatusCode::OK
        );
    }
    let r = server.browser().post("/v1/client/sign_ins", &[("identifier", "target@example.com")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
});

both_backends!(sessions_end_at_their_absolute_lifetime, |backend| async move {
    let server = TestServer::start(backend).await;
    let a = server.browser();
    let (_, sid) = server.sign_up(&a, "life@example.com", PASSWORD).await;
    server.clock.advance_ms(7 * 24 * 3600 * 1000 - 1000);
    assert_eq!(a.token(&sid).await.status, StatusCode::OK);
    server.clock.advance_ms(1000);
    assert_eq!(a.token(&sid).await.status, StatusCode::UNAUTHORIZED);
    let client = a.get("/v1/client").await;
    assert_eq!(client.body["response"]["sessions"], serde_json::json!([]));
});

both_backends!(weak_hashes_are_upgraded_at_sign_in, |backend| async move {
    let server = TestServer::start(backend).await;
    let (user_id, _) = server.sign_up(&server.browser(), "old@example.com", PASSWORD).await;
    let mut user = server.services.users().user(&user_id).await.unwrap().user;
    let salt = argon2::password_hash::SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
    user.password_hash = Some(
        latchkey_service::hasher::hash_blocking(
            latchkey_service::HashParams { m_kib: 4096, t: 1, p: 1 },
            PASSWORD,
            &salt,
        )
        .unwrap(),
    );
    user.version += 1;
    server.store.update_user(&user).await.unwrap();
    let r = server.sign_in(&server.browser(), "old@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let stored = server.services.users().user(&user_id).await.unwrap().user.password_hash.unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
});

both_backends!(account_changes_through_me, |backend| async move {
    let server = TestServer::start(backend).await;
    let a = server.browser();
    let (_, sid) = server.sign_up(&a, "me@example.com", PASSWORD).await;
    let other = server.browser();
    server.sign_in(&other, "me@example.com", PASSWORD).await;

    let r = a
        .post("/v1/me?_method=PATCH", &[("first_name", "Ada"), ("last_name", "Lovelace"), ("username", "ada_l")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["response"]["first_name"].as_str(), r.body["response"]["username"].as_str()),
        (Some("Ada"), Some("ada_l"))
    );
    assert_eq!(server.sign_in(&server.browser(), "ada_l", PASSWORD).await.status, StatusCode::OK, "usernames sign in");

    let added = a.post("/v1/me/email_addresses", &[("email_address", "second@example.com")]).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    let email_id = added.body["response"]["id"].as_str().unwrap().to_owned();
    let make_primary = a.post("/v1/me?_method=PATCH", &[("primary_email_address_id", email_id.as_str())]).await;
    assert_eq!(make_primary.error_code(), "form_identification_not_verified");
    let code = server.code_for("second@example.com").await;
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let path = format!("/v1/me/email_addresses/{email_id}/attempt_verification");
    let wrong = a.post(&path, &[("code", wrong_code)]).await;
    assert_eq!((wrong.status, wrong.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_code_incorrect"));
    let v =
        a.post(&format!("/v1/me/email_addresses/{email_id}/attempt_verification"), &[("code", code.as_str())]).await;
    assert_eq!(v.body["response"]["verification"]["status"], "verified", "{}", v.text);
    let again = a.post(&path, &[("code", code.as_str())]).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::BAD_REQUEST, "verification_already_verified"));
    let p = a.post("/v1/me?_method=PATCH", &[("primary_email_address_id", email_id.as_str())]).await;
    assert_eq!(p.body["response"]["primary_email_address_id"], email_id.as_str());
    let first_id = p.body["response"]["email_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .find(|id| *id != email_id)
        .unwrap();
    let del = a.post(&format!("/v1/me/email_addresses/{email_id}?_method=DELETE"), &[]).await;
    assert_eq!(del.error_code(), "primary_identification_deletion_forbidden");
    let del = a.post(&format!("/v1/me/email_addresses/{first_id}?_method=DELETE"), &[]).await;
    assert_eq!(del.body["response"]["deleted"], true);

    let wrong = a
        .post(
            "/v1/me/change_password",
            &[("current_password", "nope nope nope"), ("new_password", "a brand new passphrase")],
        )
        .await;
    assert_eq!((wrong.status, wrong.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_password_incorrect"));
    let weak =
        a.post("/v1/me/change_password", &[("current_password", PASSWORD), ("new_password", "password123")]).await;
    assert_eq!(weak.error_code(), "form_password_pwned");
    let ok = a
        .post(
            "/v1/me/change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
                ("sign_out_of_other_sessions", "true"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(server.mail_to("second@example.com").await.iter().any(|m| m.subject.contains("password was changed")));
    let sessions = a.get("/v1/me/sessions/active").await;
    assert_eq!(sessions.body.as_array().unwrap().len(), 1, "other sessions were signed out");
    assert_eq!(a.token(&sid).await.status, StatusCode::OK);
    assert_eq!(
        server.sign_in(&server.browser(), "second@example.com", "a brand new passphrase").await.status,
        StatusCode::OK
    );
});

#[tokio::test]
async fn passwords_follow_nist_rules() {
    let server = TestServer::start(crate::harness::Backend::Sqlite).await;
    let b = server.browser();
    for (password, code) in [
        ("short", "form_password_length_too_short"),
        ("password1", "form_password_pwned"),
        ("qwertyuiop", "form_password_pwned"),
    ] {
        let r = b.post("/v1/client/sign_ups", &[("email_address", "nist@example.com"), ("password", password)]).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{password}");
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], "password");
    }
    // Letters only, 15 characters: fine. A 64-character emoji passphrase round-trips.
    server.sign_up(&server.browser(), "letters@example.com", "abcdefghijklmno").await;
    let emoji = "🍼".repeat(64);
    server.sign_up(&server.browser(), "emoji@example.com", &emoji).await;
    assert_eq!(server.sign_in(&server.browser(), "emoji@example.com", &emoji).await.status, StatusCode::OK);
    let mut almost = emoji.clone();
    almost.push('x');
    assert_eq!(
        server.sign_in(&server.browser(), "emoji@example.com", &almost).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

pub async fn signed_in(server: &TestServer, email: &str) -> (Browser, String, String) {
    let b = server.browser();
    let (uid, sid) = server.sign_up(&b, email, PASSWORD).await;
    (b, uid, sid)
}
