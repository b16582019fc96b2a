//! "Forgot password?" through the Frontend API (docs/frontend-api.md §6): a reset code, the new
//! password, the session; with the safety rules of docs/SECURITY.md (code and attempt budgets,
//! the password policy, other sessions ended, the lockout cleared only by a completed reset,
//! a notice to the owner). What a stranger sees is compared in `enumeration.rs`.

use latchkey_core::Clock;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::webhooks::{drain, worker, Admin, Receiver};

const OLD: &str = "correct horse battery staple";
const NEW: &str = "a brand new sturdy passphrase";
const RESET: &str = "reset_password_email_code";

/// A sign-in attempt on `b` for `email`; returns its id.
async fn start(b: &Browser, email: &str) -> String {
    let r = b.post("/v1/client/sign_ins", &[("identifier", email)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["response"]["id"].as_str().unwrap().to_owned()
}

async fn prepare(b: &Browser, id: &str, strategy: &str) -> Reply {
    b.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &[("strategy", strategy)]).await
}

async fn attempt(b: &Browser, id: &str, strategy: &str, code: &str) -> Reply {
    b.post(&format!("/v1/client/sign_ins/{id}/attempt_first_factor"), &[("strategy", strategy), ("code", code)]).await
}

async fn reset(b: &Browser, id: &str, password: &str, sign_out_others: bool) -> Reply {
    let flag = if sign_out_others { "true" } else { "false" };
    b.post(
        &format!("/v1/client/sign_ins/{id}/reset_password"),
        &[("password", password), ("sign_out_of_other_sessions", flag)],
    )
    .await
}

/// Starts a reset on a new browser and proves its code: the browser and the attempt's id.
async fn proven_reset(server: &TestServer, email: &str) -> (Browser, String) {
    let b = server.browser();
    let id = start(&b, email).await;
    let sent = server.mail_count(email).await;
    let r = prepare(&b, &id, RESET).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = server.code_after(email, sent).await;
    let r = attempt(&b, &id, RESET, &code).await;
    assert_eq!(r.body["response"]["status"], "needs_new_password", "{}", r.text);
    (b, id)
}

/// Whether the session still mints tokens on the browser that holds it.
async fn session_alive(b: &Browser, session_id: &str) -> bool {
    b.token(session_id).await.status == StatusCode::OK
}

both_backends!(a_forgotten_password_is_reset_with_an_emailed_code, |backend| async move {
    let server = TestServer::start(backend).await;
    let laptop = server.browser();
    let (user_id, laptop_session) = server.sign_up(&laptop, "parent@example.com", OLD).await;

    let phone = server.browser();
    // The environment advertises the strategy, as Clerk's does, so its components offer it.
    let env = phone.get("/v1/environment").await;
    let advertised = env.body["auth_config"]["first_factors"].as_array().unwrap();
    assert!(advertised.iter().any(|s| s == RESET), "{advertised:?}");
    let id = start(&phone, "parent@example.com").await;
    let r = phone.get(&format!("/v1/client/sign_ins/{id}")).await;
    let factors = r.body["response"]["supported_first_factors"].as_array().unwrap().clone();
    let offered = factors.iter().find(|f| f["strategy"] == RESET).expect("the reset factor is offered");
    assert_eq!(offered["safe_identifier"], "parent@example.com");
    assert!(offered["email_address_id"].is_string());

    // Choosing a new password before proving the address is refused.
    let r = reset(&phone, &id, NEW, false).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "verification_missing"), "{}", r.text);

    let sent = server.mail_count("parent@example.com").await;
    let r = prepare(&phone, &id, RESET).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = &r.body["response"]["first_factor_verification"];
    assert_eq!(
        (v["object"].as_str(), v["strategy"].as_str(), v["status"].as_str()),
        (Some("verification_otp"), Some(RESET), Some("unverified"))
    );
    let mail = server.mail_to("parent@example.com").await.pop().unwrap();
    assert!(mail.subject.contains("password reset code"), "{}", mail.subject);
    let code = server.code_after("parent@example.com", sent).await;

    let r = attempt(&phone, &id, RESET, "000000").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_code_incorrect"), "{}", r.text);
    let r = attempt(&phone, &id, RESET, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = &r.body["response"];
    assert_eq!(s["status"], "needs_new_password");
    assert_eq!(s["first_factor_verification"]["status"], "verified");
    assert!(s["created_session_id"].is_null(), "no session before the new password");
    // A proven code is not a second sign-in: the code cannot be spent twice.
    let r = attempt(&phone, &id, RESET, &code).await;
    assert!(r.status.is_client_error(), "{}", r.text);

    // The password policy, then the previous password, are checked before anything changes.
    for (password, code) in [
        ("short", "form_password_length_too_short"),
        ("password1", "form_password_pwned"),
        (OLD, "form_new_password_matches_current"),
    ] {
        let r = reset(&phone, &id, password, false).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{password}: {}", r.text);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], "password");
    }
    let r = phone.post(&format!("/v1/client/sign_ins/{id}/reset_password"), &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_missing"));
    assert_eq!(server.sign_in(&server.browser(), "parent@example.com", OLD).await.status, StatusCode::OK);

    let before = server.services.users().user(&user_id).await.unwrap();
    server.clock.advance_ms(1000);
    let r = reset(&phone, &id, NEW, false).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = &r.body["response"];
    assert_eq!(s["status"], "complete");
    let new_session = s["created_session_id"].as_str().unwrap().to_owned();
    assert!(r.set_cookies().iter().any(|c| c.starts_with("__client=")), "a new client token (session fixation)");
    assert!(session_alive(&phone, &new_session).await);
    assert!(session_alive(&laptop, &laptop_session).await, "other sessions stay unless asked");
    let after = server.services.users().user(&user_id).await.unwrap();
    assert!(after.user.password_updated_at > before.user.password_updated_at);

    let notice = server.wait_for_mail("parent@example.com", |m| m.subject.contains("password was changed")).await;
    assert!(notice.text.contains("GMT"), "when: {}", notice.text);
    assert!(notice.text.contains("stay signed in"), "{}", notice.text);

    // The old password is gone, the new one signs in.
    let r = server.sign_in(&server.browser(), "parent@example.com", OLD).await;
    assert_eq!(r.error_code(), "form_password_incorrect", "{}", r.text);
    let r = server.sign_in(&server.browser(), "parent@example.com", NEW).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    // A completed reset cannot be replayed.
    let r = reset(&phone, &id, "yet another sturdy passphrase", false).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "sign_in_already_complete"));
});

both_backends!(a_reset_can_end_every_other_session_and_is_announced, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &["user.updated"]).await;
    let laptop = server.browser();
    let (user_id, laptop_session) = server.sign_up(&laptop, "other@example.com", OLD).await;

    let (phone, id) = proven_reset(&server, "other@example.com").await;
    let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    let r = phone
        .send(
            phone
                .http
                .post(phone.url(&format!("/v1/client/sign_ins/{id}/reset_password")))
                .header("user-agent", ua)
                .form(&[("password", NEW), ("sign_out_of_other_sessions", "true")]),
        )
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let new_session = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    assert!(!session_alive(&laptop, &laptop_session).await, "the laptop was signed out");
    assert!(session_alive(&phone, &new_session).await, "the new session lives");
    let notice = server.wait_for_mail("other@example.com", |m| m.subject.contains("password was changed")).await;
    assert!(notice.text.contains("Chrome on Linux"), "{}", notice.text);
    assert!(notice.text.contains("signed out"), "{}", notice.text);

    drain(&worker(&server)).await;
    let updated: Vec<_> =
        rx.all().await.into_iter().map(|m| m.json()).filter(|e| e["type"] == "user.updated").collect();
    let last = updated.last().expect("a user.updated event");
    assert_eq!(last["data"]["id"], user_id.as_str());
    assert_eq!(last["data"]["password_enabled"], true);
    assert!(last["data"]["password_last_updated_at"].as_i64().is_some(), "{last}");
    assert!(!last.to_string().contains(NEW), "no password in events");
});

// A locked account's reset may be its owner taking it back: every other session ends even
// unasked; the lockout is lifted by the completed reset, not by the proven code.
both_backends!(a_locked_account_reset_ends_every_session_and_lifts_the_lock, |backend| async move {
    let server = TestServer::start(backend).await;
    let laptop = server.browser();
    let (user_id, laptop_session) = server.sign_up(&laptop, "locked-out@example.com", OLD).await;
    let mut row = server.services.users().user(&user_id).await.unwrap().user;
    row.failed_attempts = 100;
    row.locked_until = Some(server.clock.now_ms() + 3_600_000);
    row.version += 1;
    server.store.update_user(&row).await.unwrap();

    let (phone, id) = proven_reset(&server, "locked-out@example.com").await;
    let still = server.services.users().user(&user_id).await.unwrap().user;
    assert_eq!((still.failed_attempts, still.locked_until.is_some()), (100, true), "a proven code lifts nothing");
    let r = reset(&phone, &id, NEW, false).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert!(!session_alive(&laptop, &laptop_session).await, "every other session ended, unasked");
    let lifted = server.services.users().user(&user_id).await.unwrap().user;
    assert_eq!((lifted.failed_attempts, lifted.locked_until), (0, None));
    let r = server.sign_in(&server.browser(), "locked-out@example.com", NEW).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
});

both_backends!(reset_codes_expire_and_share_the_sign_in_code_budgets, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.code_failures_per_address_per_day = 7).await;
    server.sign_up(&server.browser(), "budget@example.com", OLD).await;

    // A code past its ten minutes is refused.
    let b = server.browser();
    let id = start(&b, "budget@example.com").await;
    let sent = server.mail_count("budget@example.com").await;
    prepare(&b, &id, RESET).await;
    let code = server.code_after("budget@example.com", sent).await;
    server.clock.advance_ms(10 * 60 * 1000);
    let r = attempt(&b, &id, RESET, &code).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "verification_expired"), "{}", r.text);

    // A proven reset left too long must be proven again.
    let (b, id) = proven_reset(&server, "budget@example.com").await;
    server.clock.advance_ms(20 * 60 * 1000 + 1);
    let r = reset(&b, &id, NEW, false).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "verification_expired"), "{}", r.text);

    // A sign-in code cannot be spent as a reset code.
    let b = server.browser();
    let id = start(&b, "budget@example.com").await;
    let sent = server.mail_count("budget@example.com").await;
    prepare(&b, &id, "email_code").await;
    let code = server.code_after("budget@example.com", sent).await;
    let r = attempt(&b, &id, RESET, &code).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "verification_missing"), "{}", r.text);

    // Five wrong guesses end a code. (Between attempts the clock passes the growing delays
    // of failures from one address, which are not under test here.)
    let pause = || server.clock.advance_ms(10_000);
    let id = start(&b, "budget@example.com").await;
    let sent = server.mail_count("budget@example.com").await;
    prepare(&b, &id, RESET).await;
    let code = server.code_after("budget@example.com", sent).await;
    for _ in 0..5 {
        pause();
        attempt(&b, &id, RESET, "000000").await;
    }
    pause();
    let r = attempt(&b, &id, RESET, &code).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "verification_failed"), "{}", r.text);

    // Wrong sign-in codes and wrong reset codes fill one daily budget of the address (7 here):
    // six reset failures above, one sign-in guess here, and the right reset code is refused.
    let id = start(&b, "budget@example.com").await;
    prepare(&b, &id, "email_code").await;
    pause();
    let r = attempt(&b, &id, "email_code", "000000").await;
    assert_eq!(r.error_code(), "form_code_incorrect", "{}", r.text);
    let id = start(&b, "budget@example.com").await;
    let sent = server.mail_count("budget@example.com").await;
    prepare(&b, &id, RESET).await;
    let code = server.code_after("budget@example.com", sent).await;
    pause();
    let r = attempt(&b, &id, RESET, &code).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "verification_failed"), "{}", r.text);
    server.clock.advance_ms(5 * 60 * 1000);
    let r = server.sign_in(&server.browser(), "budget@example.com", OLD).await;
    assert_eq!(r.body["response"]["status"], "complete", "the password was never changed: {}", r.text);
});

both_backends!(a_username_sign_in_offers_no_reset, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let r = admin
        .post("/v1/users", json!({"email_address": ["named@example.com"], "username": "named_parent", "password": OLD}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let b = server.browser();
    let id = start(&b, "named_parent").await;
    let r = b.get(&format!("/v1/client/sign_ins/{id}")).await;
    let factors = r.body["response"]["supported_first_factors"].as_array().unwrap().clone();
    assert!(factors.iter().all(|f| f["strategy"] != RESET), "{factors:?}");
    let r = prepare(&b, &id, RESET).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "strategy_for_user_invalid"));
    assert!(server.mail_to("named@example.com").await.is_empty(), "nothing mailed");
});

both_backends!(the_hosted_pages_reset_a_forgotten_password, |backend| async move {
    let server = TestServer::start(backend).await;
    let laptop = server.browser();
    let (_, laptop_session) = server.sign_up(&laptop, "hosted@example.com", OLD).await;
    let back = "http://app.test:3000/after";
    let q = format!("?redirect_url={}", url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>());

    // The sign-in page links to the reset, keeping where to go afterwards.
    let b = server.browser();
    let sign_in = b.get(&format!("/sign-in{q}")).await;
    let link = format!("/sign-in/forgot{q}");
    assert!(sign_in.text.contains(&format!(r#"<a href="{link}">Forgot password?</a>"#)), "{}", sign_in.text);
    let csrf = crate::pages::form(&b, &link).await;

    // A username has no address to mail; the form asks for the address.
    let r = b.post(&link, &[("csrf", csrf.as_str()), ("email_address", "hosted")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Enter the email address of your account."), "{}", r.text);
    // A form without its CSRF token is refused.
    let r = b.post(&link, &[("email_address", "hosted@example.com")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Known and unknown addresses lead to the same page; only the owner's mailbox differs.
    let stranger = server.browser();
    let stranger_csrf = crate::pages::form(&stranger, &link).await;
    let r = stranger.post(&link, &[("csrf", stranger_csrf.as_str()), ("email_address", "nobody@example.com")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let stranger_code_page = stranger.get(r.headers["location"].to_str().unwrap()).await;

    let sent = server.mail_count("hosted@example.com").await;
    let r = b.post(&link, &[("csrf", csrf.as_str()), ("email_address", "hosted@example.com")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let code_page = r.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(code_page, format!("/sign-in/reset{q}"));
    let page = b.get(&code_page).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("hosted@example.com"), "{}", page.text);
    assert_eq!(
        page.text.replace("hosted@example.com", "ADDRESS").replace(&csrf, "CSRF"),
        stranger_code_page.text.replace("nobody@example.com", "ADDRESS").replace(&stranger_csrf, "CSRF")
    );
    assert!(server.mail_to("nobody@example.com").await.is_empty());

    // The new-password page waits for the code.
    let password_page = format!("/sign-in/reset/password{q}");
    let r = b.get(&password_page).await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, code_page.as_str()));
    let r = b.post(&code_page, &[("csrf", csrf.as_str()), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Incorrect code"), "{}", r.text);
    let code = server.code_after("hosted@example.com", sent).await;
    let r = b.post(&code_page, &[("csrf", csrf.as_str()), ("code", code.as_str())]).await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, password_page.as_str()));
    let r = b.get(&password_page).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains(r#"name="sign_out_of_other_sessions" value="true" checked"#), "{}", r.text);

    // The two fields must agree, and the password policy applies.
    let form = |password: &'static str, confirm: &'static str| {
        vec![("csrf", csrf.clone()), ("password", password.into()), ("confirm_password", confirm.into())]
    };
    let post = |fields: Vec<(&'static str, String)>| {
        let b = &b;
        let page = password_page.clone();
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post(&page, &pairs).await
        }
    };
    let r = post(form(NEW, "something else entirely")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("The passwords don&#39;t match."), "{}", r.text);
    let r = post(form("short", "short")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = post(form(OLD, OLD)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(session_alive(&laptop, &laptop_session).await, "a refused reset ends nothing");

    // Done: signed in, sent back to the app, every other session ended (the box was ticked).
    let mut fields = form(NEW, NEW);
    fields.push(("sign_out_of_other_sessions", "true".into()));
    let r = post(fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.headers["location"], back);
    assert!(r.set_cookies().iter().any(|c| c.starts_with("__session=ey")));
    assert_eq!(b.get("/user").await.status, StatusCode::OK);
    assert!(!session_alive(&laptop, &laptop_session).await);
    let notice = server.wait_for_mail("hosted@example.com", |m| m.subject.contains("password was changed")).await;
    assert!(notice.text.contains("signed out"), "{}", notice.text);

    // The old password no longer signs in; the new one does.
    for (password, expected) in [(OLD, StatusCode::UNPROCESSABLE_ENTITY), (NEW, StatusCode::SEE_OTHER)] {
        let other = server.browser();
        let csrf = crate::pages::form(&other, "/sign-in").await;
        let r = other
            .post("/sign-in", &[("csrf", csrf.as_str()), ("identifier", "hosted@example.com"), ("password", password)])
            .await;
        assert_eq!(r.status, expected, "{}", r.text);
    }
});

// Clerk's custom "Forgot password?" flow names the strategy when it creates the sign-in
// (`signIn.create({ strategy, identifier })`): the code is mailed at once, as after a prepare;
// a username (no address to mail) is refused with the strategy error, nothing mailed.
both_backends!(a_reset_named_at_creation_mails_its_code_at_once, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "custom@example.com", OLD).await;
    let b = server.browser();
    let sent = server.mail_count("custom@example.com").await;
    let r = b.post("/v1/client/sign_ins", &[("strategy", RESET), ("identifier", "custom@example.com")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let verification = &r.body["response"]["first_factor_verification"];
    assert_eq!(
        (&verification["strategy"], &verification["status"]),
        (&json!(RESET), &json!("unverified")),
        "{}",
        r.text
    );
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let code = server.code_after("custom@example.com", sent).await;
    let r = attempt(&b, &id, RESET, &code).await;
    assert_eq!(r.body["response"]["status"], "needs_new_password", "{}", r.text);

    let by_name = b.post("/v1/client/sign_ins", &[("strategy", RESET), ("identifier", "nobody_here")]).await;
    assert_eq!(by_name.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", by_name.text);
    assert_eq!(by_name.error_code(), "strategy_for_user_invalid");
});
