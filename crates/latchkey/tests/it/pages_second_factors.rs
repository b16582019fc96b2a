//! Second factors on the hosted pages, driven like a browser without JavaScript: enrolling an
//! authenticator app on `/user` (QR code, key, backup codes), the sign-in's second step
//! (`/sign-in/factor-two`), backup codes, and "Confirm it's you" before removing the app or
//! changing the password. On both backends.

use latchkey_core::second_factor::TotpKey;
use reqwest::StatusCode;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::pages::{csrf_from, form};
use crate::second_factors::{code_at, enrolled, next_step, PASSWORD};

const ELEVEN_MINUTES: i64 = 11 * 60_000;

/// The key the enrolment page shows (grouped in fours for typing), without its spaces.
fn secret_from(html: &str) -> String {
    let start = html.find(r#"id="totp-secret" class="secret">"#).expect("the key is shown")
        + r#"id="totp-secret" class="secret">"#.len();
    let end = start + html[start..].find("</code>").expect("end of the key");
    html[start..end].split_whitespace().collect()
}

/// The backup codes a page lists.
fn codes_from(html: &str) -> Vec<String> {
    let start = html.find(r#"<ol class="codes" id="backup-codes">"#).expect("the codes are listed");
    let end = start + html[start..].find("</ol>").expect("end of the list");
    html[start..end].split("<li><code>").skip(1).map(|s| s.split("</code>").next().unwrap().to_owned()).collect()
}

fn no_store(r: &Reply) -> bool {
    r.headers.get("cache-control").and_then(|v| v.to_str().ok()) == Some("no-store")
}

fn location(r: &Reply) -> &str {
    r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Enrols an authenticator app through `/user`: (the key, the backup codes).
async fn enrol_on_pages(server: &TestServer, b: &Browser) -> (String, Vec<String>) {
    let csrf = form(b, "/user").await;
    let r = b.post("/user/totp", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = secret_from(&r.text);
    let r = b.post("/user/totp/verify", &[("csrf", &csrf), ("code", &code_at(server, &secret, 0))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (secret, codes_from(&r.text))
}

/// A password sign-in on `/sign-in` (with `query`, e.g. a redirect_url) that stops at the
/// second step: the step's path.
async fn password_step(b: &Browser, email: &str, query: &str) -> String {
    let csrf = form(b, &format!("/sign-in{query}")).await;
    let r = b
        .post(&format!("/sign-in{query}"), &[("csrf", csrf.as_str()), ("identifier", email), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(!r.set_cookies().iter().any(|c| c.starts_with("__session=ey")), "no session before the second step");
    let next = location(&r).to_owned();
    assert!(next.starts_with("/sign-in/factor-two"), "{next}");
    next
}

both_backends!(an_authenticator_app_is_added_on_the_user_page, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let page = b.get("/user").await;
    assert!(
        page.text.contains("Two-step verification")
            && page.text.contains("Authenticator app: off")
            && page.text.contains("Add an authenticator app"),
        "{}",
        page.text
    );
    let csrf = csrf_from(&page.text);

    // The enrolment page: the QR code drawn inline, the key as text, a code field; never cached.
    let r = b.post("/user/totp", &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, "text/html; charset=utf-8"), "{}", r.text);
    assert!(no_store(&r));
    assert!(r.text.contains(r#"<svg role="img""#) && r.text.contains("</svg>") && !r.text.contains("<?xml"));
    assert!(r.text.contains(r##"<path fill="#000" d="M"##), "the QR code has modules");
    let secret = secret_from(&r.text);
    assert_eq!(TotpKey::from_base32(&secret, "t", "t").unwrap().secret_bytes().len(), 20);
    assert!(r.text.contains(r#"action="/user/totp/verify""#));
    let stored = server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.totp.unwrap();
    assert!(!stored.verified, "pending until a code of it");

    // Wrong and malformed codes are refused with a message; nothing is turned on.
    let r = b.post("/user/totp/verify", &[("csrf", &csrf), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Incorrect code") && r.text.contains("Show a new QR code"), "{}", r.text);
    assert!(!r.text.contains(&secret), "the key is shown only once");
    for bad in ["", "12ab56", "1234567"] {
        let r = b.post("/user/totp/verify", &[("csrf", &csrf), ("code", bad)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {}", r.text);
        assert!(r.text.contains("Enter the 6-digit code your authenticator app shows."), "{bad:?}");
    }
    assert!(!server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.totp_enabled());

    // The right code (spaces as apps show them are fine): on, and ten backup codes shown once.
    let code = code_at(&server, &secret, 0);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let r = b.post("/user/totp/verify", &[("csrf", &csrf), ("code", &spaced)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(no_store(&r));
    let codes = codes_from(&r.text);
    assert_eq!(codes.len(), 10, "{}", r.text);
    assert!(r.text.contains("Two-step verification is on.") && r.text.contains("Save your backup codes"));
    assert!(r.text.contains(r#"data-copy="backup-codes""#) && r.text.contains(r#"src="/assets/latchkey-copy.js""#));
    let download = r.text.split(r#"href="data:text/plain;charset=utf-8,"#).nth(1).unwrap().split('"').next().unwrap();
    assert!(codes.iter().all(|c| download.contains(c.as_str())), "the download holds every code");
    let script = b.get("/assets/latchkey-copy.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.content_type().starts_with("text/javascript") && script.text.contains("clipboard"));

    let factors = server.store.get_user(&user_id).await.unwrap().unwrap().second_factors;
    assert!(factors.totp_enabled() && factors.backup_codes.len() == 10);
    let page = b.get("/user?notice=totp_added").await;
    assert!(page.text.contains("Two-step verification is on.") && page.text.contains("Authenticator app: on"));
    assert!(page.text.contains("Backup codes: <span class=\"muted\">10 left</span>"), "{}", page.text);
    assert!(!page.text.contains("Add an authenticator app") && !page.text.contains(&codes[0]));
    // One app per account: a second start says so on /user.
    let r = b.post("/user/totp", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("Remove the authenticator app before adding another."), "{}", r.text);
    // A code with nothing waiting for it.
    let r = b.post("/user/totp/verify", &[("csrf", &csrf), ("code", "123456")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("Add an authenticator app first."));

    // New backup codes replace the set; the page shows them once.
    let r = b.post("/user/backup-codes", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(no_store(&r) && r.text.contains("The old ones no longer work."));
    let fresh = codes_from(&r.text);
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));

    // Every new form refuses a forged CSRF token.
    for path in [
        "/user/totp",
        "/user/totp/verify",
        "/user/totp/delete",
        "/user/backup-codes",
        "/user/verify",
        "/user/verify/email",
        "/sign-in/factor-two",
    ] {
        let r = b.post(path, &[("csrf", "forged"), ("code", "123456")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.text.contains("This form has expired"), "{path}");
    }
    assert!(server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.totp_enabled());
});

both_backends!(a_sign_in_on_the_pages_asks_for_the_code, |backend| async move {
    let server = TestServer::start(backend).await;
    let phone = server.browser();
    let (_, _, secret, _) = enrolled(&server, &phone, "grace@example.com").await;
    next_step(&server);

    let b = server.browser();
    let step = password_step(&b, "grace@example.com", "").await;
    assert_eq!(step, "/sign-in/factor-two");
    assert_eq!(b.get("/user").await.status, StatusCode::SEE_OTHER, "not signed in yet");
    let page = b.get(&step).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Code from your authenticator app") && page.text.contains("Use a backup code"));
    let csrf = csrf_from(&page.text);

    // A wrong code says how many tries are left; a malformed one costs none.
    let r = b.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Incorrect code. 4 attempts remain."), "{}", r.text);
    let r = b.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", "12")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Enter the 6-digit code your authenticator app shows."), "{}", r.text);
    let r = b.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", "111111")]).await;
    assert!(r.text.contains("Incorrect code. 3 attempts remain."), "{}", r.text);

    // The right code signs in as the password alone did before: cookies, then /user.
    let r = b.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(location(&r), "/user");
    assert!(r.set_cookies().iter().any(|c| c.starts_with("__session=ey")));
    let user = b.get("/user").await;
    assert_eq!(user.status, StatusCode::OK);
    assert!(user.text.contains("grace@example.com") && user.text.contains("Authenticator app: on"));
    // The step is done: its page sends the browser back to sign in.
    assert_eq!(location(&b.get(&step).await), "/sign-in");

    // The redirect_url survives the second step.
    next_step(&server);
    let back = "http://app.test:3000/after?x=1";
    let q = format!("?redirect_url={}", url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>());
    let c = server.browser();
    let step = password_step(&c, "grace@example.com", &q).await;
    assert_eq!(step, format!("/sign-in/factor-two{q}"));
    let csrf = form(&c, &step).await;
    let r = c.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, back), "{}", r.text);

    // Five wrong codes kill the attempt: the page says to start again, even the right code fails.
    next_step(&server);
    let d = server.browser();
    let step = password_step(&d, "grace@example.com", "").await;
    let csrf = form(&d, &step).await;
    for _ in 0..4 {
        let r = d.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", "000000")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for code in ["000000".to_owned(), code_at(&server, &secret, 0)] {
        let r = d.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", &code)]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(r.text.contains("Too many incorrect codes. Start signing in again."), "{}", r.text);
        assert!(r.text.contains(r#"<a href="/sign-in">Start signing in again</a>"#));
    }
    assert_eq!(d.get("/user").await.status, StatusCode::SEE_OTHER);
    // Starting again works.
    let step = password_step(&d, "grace@example.com", "").await;
    let csrf = form(&d, &step).await;
    let r = d.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(location(&r), "/user", "{}", r.text);
});

both_backends!(a_password_reset_on_the_pages_asks_for_the_code_too, |backend| async move {
    let server = TestServer::start(backend).await;
    let phone = server.browser();
    let (_, _, secret, _) = enrolled(&server, &phone, "reset@example.com").await;
    next_step(&server);

    let b = server.browser();
    let csrf = form(&b, "/sign-in/forgot").await;
    let mailed = server.mail_count("reset@example.com").await;
    let r = b.post("/sign-in/forgot", &[("csrf", csrf.as_str()), ("email_address", "reset@example.com")]).await;
    assert_eq!(location(&r), "/sign-in/reset", "{}", r.text);
    let code = server.code_after("reset@example.com", mailed).await;
    let r = b.post("/sign-in/reset", &[("csrf", csrf.as_str()), ("code", code.as_str())]).await;
    assert_eq!(location(&r), "/sign-in/reset/password", "{}", r.text);
    let fresh = "a brand new passphrase";
    let r = b
        .post("/sign-in/reset/password", &[("csrf", csrf.as_str()), ("password", fresh), ("confirm_password", fresh)])
        .await;
    // The emailed code was the first factor: the app's code comes next, then the session.
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/sign-in/factor-two"), "{}", r.text);
    assert!(!r.set_cookies().iter().any(|c| c.starts_with("__session=ey")));
    let r = b
        .post("/sign-in/factor-two", &[("csrf", &csrf), ("strategy", "totp"), ("code", &code_at(&server, &secret, 0))])
        .await;
    assert_eq!(location(&r), "/user", "{}", r.text);
    assert!(b.get("/user").await.text.contains("reset@example.com"));
});

both_backends!(a_backup_code_signs_in_once_on_the_pages, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    server.sign_up(&b, "lin@example.com", PASSWORD).await;
    let (_, codes) = enrol_on_pages(&server, &b).await;
    assert_eq!(codes.len(), 10);

    let c = server.browser();
    let step = password_step(&c, "lin@example.com", "").await;
    let page = c.get(&format!("{step}?strategy=backup_code")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains(r#"<label for="code">Backup code</label>"#)
            && page.text.contains("Use your authenticator app")
    );
    let csrf = csrf_from(&page.text);
    let r = c.post(&step, &[("csrf", &csrf), ("strategy", "backup_code"), ("code", "")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Enter one of your backup codes."));
    // Typed in capitals with spaces around: still the code.
    let typed = format!(" {} ", codes[0].to_uppercase());
    let r = c.post(&step, &[("csrf", &csrf), ("strategy", "backup_code"), ("code", &typed)]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/user"), "{}", r.text);
    assert!(c.get("/user").await.text.contains("Backup codes: <span class=\"muted\">9 left</span>"));

    // Used once, never again; another code of the set works.
    let d = server.browser();
    let step = password_step(&d, "lin@example.com", "").await;
    let csrf = form(&d, &step).await;
    let r = d.post(&step, &[("csrf", &csrf), ("strategy", "backup_code"), ("code", &codes[0])]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Incorrect code. 4 attempts remain.") && r.text.contains("Backup code"));
    let r = d.post(&step, &[("csrf", &csrf), ("strategy", "backup_code"), ("code", &codes[1])]).await;
    assert_eq!(location(&r), "/user", "{}", r.text);
});

both_backends!(removing_the_app_asks_to_confirm_once_the_session_is_old, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "mae@example.com", PASSWORD).await;
    let (secret, _) = enrol_on_pages(&server, &b).await;
    let csrf = form(&b, "/user").await;
    server.clock.advance_ms(ELEVEN_MINUTES);
    next_step(&server);
    let enabled = || async { server.store.get_user(&user_id).await.unwrap().unwrap().second_factors.totp_enabled() };

    // Eleven minutes on: "Confirm it's you" with the app (or a backup code), nothing removed.
    let r = b.post("/user/totp/delete", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.text.contains("Confirm it&#39;s you") && r.text.contains("Removing your authenticator app"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Code from your authenticator app") && r.text.contains("Use a backup code"));
    assert!(r.text.contains(r#"name="then" value="remove_totp""#) && !r.text.contains("Current password"));
    assert!(enabled().await);

    let then = ("then", "remove_totp");
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "totp"), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Incorrect code") && r.text.contains("Confirm it&#39;s you"));
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "totp"), ("code", "")]).await;
    assert!(r.text.contains("Enter the 6-digit code your authenticator app shows."), "{}", r.text);
    // The password is not the check for a person with an app.
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "password"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text.contains("That way of confirming is not available")
            && r.text.contains("Code from your authenticator app")
    );
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "magic"), ("code", "1")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Choose how to confirm it"), "{}", r.text);
    assert!(enabled().await, "refusals remove nothing");

    // The right code: confirmed, and the app is removed at once.
    let r = b
        .post("/user/verify", &[("csrf", &csrf), then, ("strategy", "totp"), ("code", &code_at(&server, &secret, 0))])
        .await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/user?notice=totp_removed"), "{}", r.text);
    assert!(!enabled().await);
    let page = b.get("/user?notice=totp_removed").await;
    assert!(page.text.contains("Authenticator app removed.") && page.text.contains("Authenticator app: off"));
    // A sign-in is one step again.
    let c = server.browser();
    let csrf_c = form(&c, "/sign-in").await;
    let r = c
        .post("/sign-in", &[("csrf", csrf_c.as_str()), ("identifier", "mae@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(location(&r), "/user");

    // Again with a backup code as the check; a fresh check needs nothing (removal right away).
    let (_, codes) = enrol_on_pages(&server, &b).await;
    server.clock.advance_ms(ELEVEN_MINUTES);
    let r = b.post("/user/totp/delete", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "backup_code"), ("code", &codes[3])]).await;
    assert_eq!(location(&r), "/user?notice=totp_removed", "{}", r.text);
    assert!(!enabled().await);
    enrol_on_pages(&server, &b).await;
    let r = b.post("/user/totp/delete", &[("csrf", &csrf)]).await;
    assert_eq!(location(&r), "/user?notice=totp_removed", "just enrolled: the app's code is recent");
});

both_backends!(a_password_change_without_an_app_confirms_with_the_password, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    server.sign_up(&b, "ida@example.com", PASSWORD).await;
    let csrf = form(&b, "/user").await;
    server.clock.advance_ms(ELEVEN_MINUTES);
    let change =
        [("csrf", csrf.as_str()), ("current_password", PASSWORD), ("new_password", "another sturdy passphrase")];
    let r = b.post("/user/password", &change).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("Confirm it&#39;s you") && r.text.contains("Changing your password"), "{}", r.text);
    assert!(r.text.contains("Current password") && r.text.contains(r#"name="then" value="password""#));
    assert!(!r.text.contains("authenticator app") && r.text.contains("Email me a code instead"));
    assert!(!r.text.contains(PASSWORD), "passwords are never carried over");

    let then = ("then", "password");
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "password"), ("password", "")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Enter your current password."));
    let r =
        b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "password"), ("password", "not it at all")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Password is incorrect"), "{}", r.text);
    // No second factor to give.
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "totp"), ("code", "123456")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("That way of confirming is not available") && r.text.contains("Current password"));
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "password"), ("password", PASSWORD)]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/user?notice=reverified_password"), "{}", r.text);
    assert!(b.get("/user?notice=reverified_password").await.text.contains("Enter your passwords again"));

    // Typed again, the change goes through; the new password signs in.
    let r = b.post("/user/password", &change).await;
    assert_eq!(location(&r), "/user?notice=password", "{}", r.text);
    let r = server.sign_in(&server.browser(), "ida@example.com", "another sturdy passphrase").await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);

    // An emailed code is the other way.
    server.clock.advance_ms(ELEVEN_MINUTES);
    let back = [("csrf", csrf.as_str()), ("current_password", "another sturdy passphrase"), ("new_password", PASSWORD)];
    assert_eq!(b.post("/user/password", &back).await.status, StatusCode::FORBIDDEN);
    let mailed = server.mail_count("ida@example.com").await;
    let r = b.post("/user/verify/email", &[("csrf", &csrf), then]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("A code is on its way") && r.text.contains(r#"value="email_code""#));
    let code = server.code_after("ida@example.com", mailed).await;
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "email_code"), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "email_code"), ("code", &code)]).await;
    assert_eq!(location(&r), "/user?notice=reverified_password", "{}", r.text);
    assert_eq!(location(&b.post("/user/password", &back).await), "/user?notice=password");
});

both_backends!(second_factors_turned_off_hide_the_section, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.second_factors.policy = latchkey_service::second_factors::Policy::Off;
    })
    .await;
    let b = server.browser();
    server.sign_up(&b, "off@example.com", PASSWORD).await;
    let page = b.get("/user").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("Two-step verification") && !page.text.contains("Add an authenticator app"));
    let csrf = csrf_from(&page.text);
    for path in ["/user/totp", "/user/totp/verify", "/user/backup-codes"] {
        let r = b.post(path, &[("csrf", &csrf), ("code", "123456")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert!(r.text.contains("Two-step verification is turned off"), "{path}");
    }
});

// ---- the `required` policy: the setup-mfa task (`/sign-in/tasks/setup-mfa`) ----------------

const TASK: &str = "/sign-in/tasks/setup-mfa";

async fn requiring(backend: crate::harness::Backend) -> TestServer {
    TestServer::start_with(backend, |c| c.second_factors.policy = latchkey_service::second_factors::Policy::Required)
        .await
}

fn encoded(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

/// The `sts` claim of the session cookie a reply sets.
async fn cookie_sts(server: &TestServer, r: &Reply) -> String {
    let cookies = r.set_cookies();
    let jwt = cookies.iter().find_map(|c| c.strip_prefix("__session=ey")).expect("a session cookie");
    let jwt = format!("ey{}", jwt.split(';').next().unwrap());
    let verifier = crate::flows::verifier_for(server).await;
    let now = latchkey_core::Clock::now_secs(&server.clock);
    verifier.verify(&jwt, now).unwrap().session_claims().unwrap().sts
}

async fn session_status(b: &Browser) -> String {
    let client = b.get("/v1/client").await.body;
    client["response"]["sessions"][0]["status"].as_str().unwrap_or("none").to_owned()
}

/// Walks the task from its page (`task`, with its query) to the backup codes: (the key, the
/// reply that showed the codes).
async fn do_the_task(server: &TestServer, b: &Browser, task: &str, query: &str) -> (String, Reply) {
    let page = b.get(task).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("This application requires two-step verification."), "{}", page.text);
    assert!(page.text.contains(&format!(r#"action="{TASK}/totp{}""#, query.replace('&', "&amp;"))), "{}", page.text);
    let csrf = csrf_from(&page.text);
    let r = b.post(&format!("{TASK}/totp{query}"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(no_store(&r) && r.text.contains(r#"<svg role="img""#) && r.text.contains("requires two-step verification"));
    let secret = secret_from(&r.text);
    let verify = format!("{TASK}/verify{query}");
    let r = b.post(&verify, &[("csrf", &csrf), ("code", &code_at(server, &secret, 0))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(no_store(&r) && r.text.contains("Save your backup codes"));
    assert_eq!(codes_from(&r.text).len(), 10);
    (secret, r)
}

both_backends!(a_sign_up_under_required_sets_up_an_app_before_the_app, |backend| async move {
    let server = requiring(backend).await;
    let b = server.browser();
    let back = "http://app.test:3000/after?x=1";
    let q = format!("?redirect_url={}", encoded(back));
    let csrf = form(&b, &format!("/sign-up{q}")).await;
    let r = b
        .post(
            &format!("/sign-up{q}"),
            &[("csrf", csrf.as_str()), ("email_address", "new@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&r), format!("/sign-up/verify{q}"), "{}", r.text);
    let code = server.code_for("new@example.com").await;
    let r = b.post(&format!("/sign-up/verify{q}"), &[("csrf", csrf.as_str()), ("code", code.as_str())]).await;
    // Not on to the app: to the task, the redirect_url kept; the session is pending.
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, format!("{TASK}{q}").as_str()), "{}", r.text);
    assert_eq!(cookie_sts(&server, &r).await, "pending");
    assert_eq!(session_status(&b).await, "pending");

    // /user and its forms send a pending session to the task; nothing changes.
    assert_eq!(location(&b.get("/user").await), format!("{TASK}?redirect_url=%2Fuser"));
    let r = b.post("/user/profile", &[("csrf", &csrf), ("first_name", "Mallory")]).await;
    assert_eq!(location(&r), format!("{TASK}?redirect_url=%2Fuser"), "{}", r.text);
    assert_eq!(location(&b.get("/organization").await), format!("{TASK}?redirect_url=%2Forganization"));
    let client = b.get("/v1/client").await.body;
    assert_eq!(client["response"]["sessions"][0]["user"]["first_name"], serde_json::Value::Null, "{client}");

    // Bad inputs on the task say what went wrong; the session stays pending.
    let task = format!("{TASK}{q}");
    let csrf = form(&b, &task).await;
    let r = b.post(&format!("{TASK}/totp{q}"), &[("csrf", "forged")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("This form has expired"));
    let r = b.post(&format!("{TASK}/totp{q}"), &[("csrf", &csrf)]).await;
    let secret = secret_from(&r.text);
    let verify = format!("{TASK}/verify{q}");
    let r = b.post(&verify, &[("csrf", &csrf), ("code", "12")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Enter the 6-digit code your authenticator app shows."), "{}", r.text);
    let r = b.post(&verify, &[("csrf", &csrf), ("code", "000000")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Incorrect code") && r.text.contains("Show a new QR code") && !r.text.contains(&secret));
    assert!(r.text.contains(&format!(r#"action="{TASK}/verify{q}""#)), "the retry stays in the task");
    let r = b.post(&verify, &[("csrf", "forged"), ("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(session_status(&b).await, "pending");

    // The right code: on, codes shown once, fresh cookies of an active session, then the app.
    next_step(&server);
    let (_, r) = do_the_task(&server, &b, &task, &q).await;
    assert_eq!(cookie_sts(&server, &r).await, "active");
    assert!(r.text.contains(&format!(r#"<a href="{back}">I saved them: continue</a>"#)), "{}", r.text);
    assert_eq!(session_status(&b).await, "active");
    // Done: the task's page goes straight on; /user is open.
    assert_eq!(location(&b.get(&task).await), back);
    let user = b.get("/user").await;
    assert_eq!(user.status, StatusCode::OK);
    assert!(user.text.contains("Authenticator app: on") && user.text.contains("Required by this application"));
});

both_backends!(a_sign_in_under_required_without_a_factor_does_the_task, |backend| async move {
    let server = requiring(backend).await;
    let admin = crate::webhooks::Admin::new(&server).await;
    let r =
        admin.post("/v1/users", serde_json::json!({"email_address": ["old@example.com"], "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Signed out, the task's page sends the visitor to sign in (the redirect_url kept).
    let b = server.browser();
    assert_eq!(location(&b.get(TASK).await), "/sign-in");
    let q = format!("?redirect_url={}", encoded("/elsewhere"));
    assert_eq!(location(&b.get(&format!("{TASK}{q}")).await), format!("/sign-in{q}"));
    // An outside redirect_url is dropped, as the pages do everywhere.
    let evil = format!("?redirect_url={}", encoded("https://evil.test/"));
    assert_eq!(location(&b.get(&format!("{TASK}{evil}")).await), "/sign-in");

    let csrf = form(&b, "/sign-in").await;
    let r =
        b.post("/sign-in", &[("csrf", csrf.as_str()), ("identifier", "old@example.com"), ("password", PASSWORD)]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, TASK), "{}", r.text);
    assert_eq!(cookie_sts(&server, &r).await, "pending");
    // Signing in again while pending lands on the task too.
    let r =
        b.post("/sign-in", &[("csrf", csrf.as_str()), ("identifier", "old@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(location(&r), TASK, "{}", r.text);
    let page = b.get(TASK).await;
    assert!(page.text.contains("Signed in as <strong>old@example.com</strong>") && page.text.contains("Sign out"));

    let (secret, r) = do_the_task(&server, &b, TASK, "").await;
    assert_eq!(cookie_sts(&server, &r).await, "active");
    assert!(r.text.contains(r#"<a href="/user">I saved them: continue</a>"#), "{}", r.text);
    assert_eq!(b.get("/user").await.status, StatusCode::OK);

    // The next sign-in asks for the app's code, and never for the task.
    next_step(&server);
    let c = server.browser();
    let step = password_step(&c, "old@example.com", "").await;
    let csrf = form(&c, &step).await;
    let r = c.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(location(&r), "/user", "{}", r.text);
    assert_eq!(cookie_sts(&server, &r).await, "active");
});

both_backends!(a_user_with_an_app_under_required_never_sees_the_task, |backend| async move {
    let server = requiring(backend).await;
    let phone = server.browser();
    let (_, _, secret, _) = enrolled(&server, &phone, "has@example.com").await;
    next_step(&server);

    let b = server.browser();
    let back = "http://app.test:3000/after";
    let q = format!("?redirect_url={}", encoded(back));
    let step = password_step(&b, "has@example.com", &q).await;
    let csrf = form(&b, &step).await;
    let r = b.post(&step, &[("csrf", &csrf), ("strategy", "totp"), ("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, back), "{}", r.text);
    assert_eq!(cookie_sts(&server, &r).await, "active");
    assert_eq!(session_status(&b).await, "active");
    // The task's page has nothing to do: straight on.
    assert_eq!(location(&b.get(&format!("{TASK}{q}")).await), back);
    assert_eq!(b.get("/user").await.status, StatusCode::OK);
});
