//! Passkeys on the hosted pages (docs/passkeys.md, "Hosted pages, latchkey-js and BabyLog"),
//! driven like a browser without JavaScript (the WebAuthn part, done by the pages' script in a
//! real browser, is the software authenticator over the Frontend API here): `/sign-in`'s button
//! and autofill field, `/sign-in/passkey/done` after a passkey sign-in, and `/user`'s
//! "Passkeys" section (list, rename, remove after "Confirm it's you", add's way to the check);
//! refusals: another user's passkey, a missing CSRF token, passkeys turned off. On both
//! backends.

use reqwest::StatusCode;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::pages::{csrf_from, form};
use crate::passkeys::{attempt, begin, register, start, APP};
use crate::second_factors::PASSWORD;
use crate::soft_authenticator::SoftAuthenticator;

const ELEVEN_MINUTES: i64 = 11 * 60_000;

fn location(r: &Reply) -> &str {
    r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A passkey sign-in of browser `b` over the Frontend API, as the pages' script makes it.
async fn sign_in_with_passkey(b: &Browser, soft: &mut SoftAuthenticator) {
    let (id, request) = begin(b).await;
    let r = attempt(b, &id, &soft.assert(&request, 0).to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
}

both_backends!(sign_in_offers_passkeys_and_done_finishes_the_sign_in, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let mut soft = SoftAuthenticator::new(APP, "localhost");
    register(&b, &mut soft).await;

    // The page: the autofill field, the button (shown by the script), where the script goes on.
    let phone = server.browser();
    let target = format!("{APP}/after");
    let query = format!("?redirect_url={}", urlencoding(&target));
    let page = phone.get(&format!("/sign-in{query}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(r#"autocomplete="username webauthn""#), "{}", page.text);
    assert!(page.text.contains("Sign in with a passkey") && page.text.contains("data-autofill"), "{}", page.text);
    assert!(page.text.contains(&format!(r#"data-done="/sign-in/passkey/done{query}""#)), "{}", page.text);
    assert!(page.text.contains(&format!(r#"data-second="/sign-in/factor-two{query}""#)), "{}", page.text);
    assert!(page.text.contains(r#"<script src="/assets/latchkey-passkey.js" defer></script>"#));
    let script = phone.get("/assets/latchkey-passkey.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.content_type().starts_with("text/javascript"), "{}", script.content_type());
    assert!(script.text.contains("navigator.credentials.get") && script.text.contains("public_key_credential"));

    // Not signed in yet: done sends the browser back to sign in, keeping the target.
    let r = phone.get(&format!("/sign-in/passkey/done{query}")).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, format!("/sign-in{query}").as_str()));

    // Signed in by passkey: done sets the session's cookies and goes to the target.
    sign_in_with_passkey(&phone, &mut soft).await;
    let r = phone.get(&format!("/sign-in/passkey/done{query}")).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, target.as_str()), "{}", r.text);
    assert!(r.set_cookies().iter().any(|c| c.starts_with("__session=ey")), "{:?}", r.set_cookies());
    // A target not allowed is dropped: the profile page.
    let r = phone.get("/sign-in/passkey/done?redirect_url=https%3A%2F%2Fevil.test%2F").await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/user"));
    let page = phone.get("/user").await;
    assert!(page.text.contains("Passkeys") && page.text.contains("last used just now"), "{}", page.text);
});

both_backends!(the_user_page_lists_renames_and_removes_passkeys, |backend| async move {
    let server = start(backend).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let page = b.get("/user").await;
    assert!(page.text.contains(r#"<h2 id="passkeys-h">Passkeys</h2>"#), "{}", page.text);
    assert!(page.text.contains("No passkeys yet.") && page.text.contains(r#"action="/user/passkeys/add""#));
    assert!(page.text.contains(r#"src="/assets/latchkey-passkey.js""#));
    let csrf = csrf_from(&page.text);

    let mut soft = SoftAuthenticator::new(APP, "localhost");
    let p = register(&b, &mut soft).await;
    let id = p["id"].as_str().unwrap().to_owned();
    let page = b.get("/user").await;
    assert!(page.text.contains(&format!(r#"action="/user/passkeys/{id}/rename""#)), "{}", page.text);
    assert!(page.text.contains(&format!(r#"action="/user/passkeys/{id}/delete""#)), "{}", page.text);
    assert!(page.text.contains(r#"<span class="passkey-name">Passkey</span>"#), "{}", page.text);
    assert!(page.text.contains("not used yet") && !page.text.contains("No passkeys yet."), "{}", page.text);

    // Renamed by a form (the name escaped when shown); an empty name is refused in words.
    let r = b.post(&format!("/user/passkeys/{id}/rename"), &[("csrf", &csrf), ("name", "Ada's <laptop>")]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/user?notice=passkey_renamed"), "{}", r.text);
    let page = b.get("/user?notice=passkey_renamed").await;
    assert!(page.text.contains("Passkey renamed.") && page.text.contains("Ada&#39;s &lt;laptop&gt;"), "{}", page.text);
    let r = b.post(&format!("/user/passkeys/{id}/rename"), &[("csrf", &csrf), ("name", "  ")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains(r#"class="alert error""#), "{}", r.text);

    // Without the CSRF token nothing changes.
    let r = b.post(&format!("/user/passkeys/{id}/rename"), &[("name", "Stolen")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("This form has expired"), "{}", r.text);
    let r = b.post(&format!("/user/passkeys/{id}/delete"), &[("csrf", "x".repeat(43).as_str())]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let stored = server.store.get_user(&user_id).await.unwrap().unwrap().passkeys;
    assert_eq!(stored.iter().filter(|p| p.verified).map(|p| p.name.as_str()).collect::<Vec<_>>(), ["Ada's <laptop>"]);

    // Another signed-in user can neither rename nor remove it (not found, as for no passkey).
    let mallory = server.browser();
    server.sign_up(&mallory, "mallory@example.com", PASSWORD).await;
    let theirs = form(&mallory, "/user").await;
    let r = mallory.post(&format!("/user/passkeys/{id}/rename"), &[("csrf", &theirs), ("name", "Mine")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = mallory.post(&format!("/user/passkeys/{id}/delete"), &[("csrf", &theirs)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(!r.text.contains("Ada&#39;s"), "nothing of Ada's passkey is shown");
    let stored = server.store.get_user(&user_id).await.unwrap().unwrap().passkeys;
    assert_eq!(stored.iter().filter(|p| p.verified).count(), 1);

    // "Add a passkey" posted without the script: recent, the page says the browser must do it.
    let r = b.post("/user/passkeys/add", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("needs JavaScript"), "{}", r.text);

    // After ten minutes, removing (and adding) needs "Confirm it's you" first.
    server.clock.advance_ms(ELEVEN_MINUTES);
    let r = b.post("/user/passkeys/add", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("Confirm it") && r.text.contains("Adding or removing a passkey"), "{}", r.text);
    let r = b.post(&format!("/user/passkeys/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains(r#"name="then" value="passkey""#), "{}", r.text);
    assert_eq!(server.store.get_user(&user_id).await.unwrap().unwrap().passkeys.len(), 1, "not removed yet");
    let then = ("then", "passkey");
    let r = b.post("/user/verify", &[("csrf", &csrf), then, ("strategy", "password"), ("password", PASSWORD)]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/user?notice=reverified_passkey"), "{}", r.text);
    let page = b.get("/user?notice=reverified_passkey").await;
    assert!(page.text.contains("Add or remove the passkey again."), "{}", page.text);
    let r = b.post(&format!("/user/passkeys/{id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, "/user?notice=passkey_removed"), "{}", r.text);
    assert!(server.store.get_user(&user_id).await.unwrap().unwrap().passkeys.is_empty());
    let page = b.get("/user?notice=passkey_removed").await;
    assert!(page.text.contains("Passkey removed.") && page.text.contains("No passkeys yet."), "{}", page.text);

    // The removed passkey no longer signs in.
    let phone = server.browser();
    let (sign_in, request) = begin(&phone).await;
    let r = attempt(&phone, &sign_in, &soft.assert(&request, 0).to_string()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "verification_failed"), "{}", r.text);
});

both_backends!(with_passkeys_off_the_pages_offer_none, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let page = b.get("/sign-in").await;
    assert!(page.text.contains(r#"autocomplete="username""#), "{}", page.text);
    assert!(!page.text.contains("passkey"), "{}", page.text);
    server.sign_up(&b, "ada@example.com", PASSWORD).await;
    let page = b.get("/user").await;
    assert!(!page.text.contains("Passkeys") && !page.text.contains("latchkey-passkey.js"), "{}", page.text);
    let csrf = csrf_from(&page.text);
    for path in ["/user/passkeys/add", "/user/passkeys/idn_x/rename", "/user/passkeys/idn_x/delete"] {
        let r = b.post(path, &[("csrf", &csrf), ("name", "x")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert!(r.text.contains("Passkeys are turned off"), "{path}: {}", r.text);
    }
});

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
