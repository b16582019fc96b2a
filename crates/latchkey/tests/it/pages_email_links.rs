//! Email links on the hosted pages (docs/email-links.md, "Hosted pages, latchkey-js and
//! BabyLog"), driven like a browser without JavaScript: "Email me a sign-in link" on
//! `/sign-in`, the waiting page that completes by itself, the link opened in the same browser
//! or in another one, used twice, expired, refused in another browser, asked for an unknown
//! address, and the sign-up's link step. On both backends.

use reqwest::StatusCode;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::pages::{csrf_from, form};
use crate::second_factors::{enrolled, PASSWORD};

const APP: &str = "http://app.test:3000/after?x=1";
const WAIT: &str = "/sign-in/email-link/wait";
const REFRESH: &str = r#"<meta http-equiv="refresh" content="3">"#;

fn query() -> String {
    format!("?redirect_url={}", url::form_urlencoded::byte_serialize(APP.as_bytes()).collect::<String>())
}

fn location(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// A location of this instance as a path (the Browser helper takes paths).
fn path_of(server: &TestServer, location: &str) -> String {
    location.strip_prefix(&server.url).unwrap_or(location).to_owned()
}

fn has_session_cookie(r: &Reply) -> bool {
    r.set_cookies().iter().any(|c| c.starts_with("__session=ey"))
}

/// "Email me a sign-in link" on `/sign-in`: the form's second button posts the address typed.
/// Returns the answer (a redirect to the waiting page).
async fn ask_on_sign_in(b: &Browser, email: &str) -> Reply {
    let q = query();
    let page = b.get(&format!("/sign-in{q}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let action = format!("/sign-in/email-link{}", q.replace('&', "&amp;"));
    assert!(page.text.contains(&format!(r#"formaction="{action}">Email me a sign-in link</button>"#)), "{}", page.text);
    let csrf = csrf_from(&page.text);
    // The whole form is posted, the password field empty.
    b.post(&format!("/sign-in/email-link{q}"), &[("csrf", &csrf), ("identifier", email), ("password", "")]).await
}

/// Asks for a link and checks where it leads: the waiting page.
async fn ask(b: &Browser, email: &str) {
    let r = ask_on_sign_in(b, email).await;
    assert_eq!(location(&r), format!("{WAIT}{}", query()));
}

/// The path of the newest link mailed to `to`.
async fn link_for(server: &TestServer, to: &str) -> String {
    let mail = server.wait_for_mail(to, |m| m.text.contains("/v1/verify?token=")).await;
    let url = mail.text.split_whitespace().find(|w| w.contains("/v1/verify?token=")).unwrap().to_owned();
    path_of(server, &url)
}

/// The waiting page, still waiting: it loads itself again every 3 seconds.
async fn still_waiting(b: &Browser, email: &str) -> Reply {
    let r = b.get(&format!("{WAIT}{}", query())).await;
    assert_eq!((r.status, r.content_type()), (StatusCode::OK, "text/html; charset=utf-8"), "{}", r.text);
    assert!(r.text.contains("<h1>Check your email</h1>") && r.text.contains(REFRESH), "{}", r.text);
    assert!(r.text.contains(&format!("We sent a link to <strong>{email}</strong>")), "{}", r.text);
    r
}

/// Opens `link` in a browser that did not ask: the page to confirm on, then the confirmation.
/// Returns where it leads (the hosted finishing page).
async fn confirm_elsewhere(server: &TestServer, b: &Browser, link: &str) -> String {
    let r = b.get(link).await;
    assert!(r.status == StatusCode::OK && r.text.contains("Sign in on your other device?"), "{}", r.text);
    path_of(server, &location(&b.post(link, &[]).await))
}

fn status_in(location: &str) -> String {
    let url = url::Url::parse(&format!("http://x{location}")).unwrap();
    url.query_pairs().find(|(k, _)| k == "__clerk_status").map(|(_, v)| v.into_owned()).unwrap_or_default()
}

both_backends!(a_link_opened_in_the_same_browser_signs_it_in, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "ada@example.com", PASSWORD).await;
    let b = server.browser();
    ask(&b, "ada@example.com").await;
    still_waiting(&b, "ada@example.com").await;
    let link = link_for(&server, "ada@example.com").await;

    // The link completes the sign-in at once and leads to the hosted finishing page...
    let done = path_of(&server, &location(&b.get(&link).await));
    assert!(done.starts_with("/sign-in/email-link/done?"), "{done}");
    assert_eq!(status_in(&done), "verified");
    // ...which goes on to the app, signed in.
    let r = b.get(&done).await;
    assert_eq!(location(&r), APP);
    assert!(has_session_cookie(&r), "{:?}", r.set_cookies());
    let user = b.get("/user").await;
    assert!(user.status == StatusCode::OK && user.text.contains("ada@example.com"), "{}", user.text);
    // The waiting tab's next load goes on to the app too.
    assert_eq!(location(&b.get(&format!("{WAIT}{}", query())).await), APP);
});

both_backends!(a_link_confirmed_in_another_browser_completes_the_waiting_page, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "grace@example.com", PASSWORD).await;
    let laptop = server.browser();
    ask(&laptop, "grace@example.com").await;
    let link = link_for(&server, "grace@example.com").await;

    // A mail scanner's GET changes nothing: the laptop still waits.
    server.browser().get(&link).await;
    still_waiting(&laptop, "grace@example.com").await;

    let phone = server.browser();
    let done = confirm_elsewhere(&server, &phone, &link).await;
    assert_eq!(status_in(&done), "verified");
    let r = phone.get(&done).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("Sign-in confirmed") && r.text.contains("Go back to the tab where you asked"),
        "{}",
        r.text
    );
    assert!(!has_session_cookie(&r), "the phone is not signed in");
    assert_eq!(phone.get("/user").await.status, StatusCode::SEE_OTHER, "the phone is not signed in");

    // The laptop's next load (what the meta refresh does) completes the sign-in there.
    let r = laptop.get(&format!("{WAIT}{}", query())).await;
    assert_eq!(location(&r), APP);
    assert!(has_session_cookie(&r), "{:?}", r.set_cookies());
    assert!(r.set_cookies().iter().any(|c| c.starts_with("__client=")), "the client's token is renewed");
    let user = laptop.get("/user").await;
    assert!(user.status == StatusCode::OK && user.text.contains("grace@example.com"), "{}", user.text);
});

both_backends!(a_link_used_twice_is_refused_with_a_clear_page, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "lin@example.com", PASSWORD).await;
    let b = server.browser();
    ask(&b, "lin@example.com").await;
    let link = link_for(&server, "lin@example.com").await;
    let done = path_of(&server, &location(&b.get(&link).await));
    assert_eq!(location(&b.get(&done).await), APP);

    // Again, in the same browser (signed in now) and in another one: refused, in words, with
    // the way on (signed in) or the way to a new link.
    for (who, again, next) in [
        ("the same browser", b.clone(), format!(r#"You are signed in already. <a href="{}">Continue</a>"#, APP)),
        ("another browser", server.browser(), r#"<a href="/sign-in/email-link?redirect_url="#.to_owned()),
    ] {
        let done = path_of(&server, &location(&again.get(&link).await));
        assert_eq!(status_in(&done), "failed", "{who}");
        let r = again.get(&done).await;
        assert_eq!((r.status, r.content_type()), (StatusCode::BAD_REQUEST, "text/html; charset=utf-8"), "{who}");
        assert!(r.text.contains("<h1>This link can&#39;t be used</h1>"), "{who}: {}", r.text);
        assert!(r.text.contains("It was used already, or it is not valid."), "{who}: {}", r.text);
        assert!(r.text.contains(&next.replace('&', "&amp;")), "{who}: {}", r.text);
        assert!(!has_session_cookie(&r), "{who}");
    }
    let user_id = server.store.user_id_by_verified_email("lin@example.com").await.unwrap().unwrap();
    let sessions = server.store.sessions_for_user(&user_id).await.unwrap();
    assert_eq!(sessions.iter().filter(|s| s.status == "active").count(), 2, "the sign-up's and the link's");
});

both_backends!(an_expired_link_gives_a_clear_page_and_a_new_one_works, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "kim@example.com", PASSWORD).await;
    let b = server.browser();
    ask(&b, "kim@example.com").await;
    let link = link_for(&server, "kim@example.com").await;
    server.clock.advance_ms(11 * 60_000);

    // The waiting page stops waiting and offers a new link.
    let r = b.get(&format!("{WAIT}{}", query())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("<h1>This link has expired</h1>") && !r.text.contains(REFRESH), "{}", r.text);
    // The link itself leads to a page that says so.
    let done = path_of(&server, &location(&b.get(&link).await));
    assert_eq!(status_in(&done), "expired");
    let r = b.get(&done).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("<h1>This link has expired</h1>") && r.text.contains("Links work for 10 minutes."));
    assert!(!has_session_cookie(&r));

    // "Send a new link": mailed, and it works.
    let csrf = csrf_from(&b.get(&format!("{WAIT}{}", query())).await.text);
    let mails = server.mail_count("kim@example.com").await;
    let r = b.post(&format!("/sign-in/email-link/resend{}", query()), &[("csrf", &csrf)]).await;
    let back = location(&r);
    assert_eq!(back, format!("{WAIT}{}&notice=link_sent", query()));
    assert!(b.get(&back).await.text.contains("A new link is on its way."));
    assert_eq!(server.mail_count("kim@example.com").await, mails + 1);
    let fresh = link_for(&server, "kim@example.com").await;
    assert_ne!(fresh, link);
    let done = path_of(&server, &location(&b.get(&fresh).await));
    assert_eq!(location(&b.get(&done).await), APP);
});

both_backends!(an_unknown_address_gets_the_same_page_and_no_mail, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "known@example.com", PASSWORD).await;
    let mut pages = Vec::new();
    for email in ["known@example.com", "nobody@example.com"] {
        let b = server.browser();
        ask(&b, email).await;
        let r = still_waiting(&b, email).await;
        let csrf = csrf_from(&r.text);
        pages.push((r.status, r.text.replace(email, "ADDRESS").replace(&csrf, "CSRF")));
    }
    assert_eq!(pages[0], pages[1], "the same page for an address with and without an account");
    assert_eq!(server.mail_count("nobody@example.com").await, 0);
    assert_eq!(server.mail_to("known@example.com").await.iter().filter(|m| m.text.contains("/v1/verify")).count(), 1);
    // A username cannot get a link: the form says so.
    let b = server.browser();
    let r = ask_on_sign_in(&b, "known_user").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Enter your email address to get a sign-in link."), "{}", r.text);
});

both_backends!(a_link_opened_in_another_browser_is_refused_where_the_same_one_is_required, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.email_links.require_same_client = true).await;
    server.sign_up(&server.browser(), "eve@example.com", PASSWORD).await;
    let b = server.browser();
    ask(&b, "eve@example.com").await;
    let link = link_for(&server, "eve@example.com").await;
    let other = server.browser();
    let done = path_of(&server, &location(&other.get(&link).await));
    assert_eq!(status_in(&done), "client_mismatch");
    let r = other.get(&done).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("<h1>Open this link in the same browser</h1>"), "{}", r.text);
    still_waiting(&b, "eve@example.com").await;
    // In the browser that asked it still works.
    let done = path_of(&server, &location(&b.get(&link).await));
    assert_eq!(location(&b.get(&done).await), APP);
});

both_backends!(a_user_with_an_authenticator_app_still_proves_it_after_the_link, |backend| async move {
    let server = TestServer::start(backend).await;
    enrolled(&server, &server.browser(), "two@example.com").await;
    let b = server.browser();
    ask(&b, "two@example.com").await;
    let link = link_for(&server, "two@example.com").await;
    let done = path_of(&server, &location(&b.get(&link).await));
    let r = b.get(&done).await;
    assert!(location(&r).starts_with("/sign-in/factor-two?redirect_url="), "{}", location(&r));
    assert!(!has_session_cookie(&r));
    // The waiting tab goes there too.
    assert!(location(&b.get(&format!("{WAIT}{}", query())).await).starts_with("/sign-in/factor-two"));
});

both_backends!(links_turned_off_are_not_offered, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.email_links.sign_in = false).await;
    let b = server.browser();
    let page = b.get("/sign-in").await;
    assert!(!page.text.contains("Email me a sign-in link"), "{}", page.text);
    let csrf = csrf_from(&page.text);
    let r = b.post("/sign-in/email-link", &[("csrf", &csrf), ("identifier", "x@example.com")]).await;
    assert_eq!(location(&r), "/sign-in");
    assert_eq!(server.mail_count("x@example.com").await, 0);
});

/// Signs up on `/sign-up` where sign-ups prove their address with a link: the verify step.
async fn sign_up_with_link(b: &Browser, email: &str) -> String {
    let q = query();
    let csrf = form(b, &format!("/sign-up{q}")).await;
    let r = b
        .post(&format!("/sign-up{q}"), &[("csrf", csrf.as_str()), ("email_address", email), ("password", PASSWORD)])
        .await;
    let verify = location(&r);
    assert_eq!(verify, format!("/sign-up/verify{q}"));
    let page = b.get(&verify).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains(&format!("We sent a link to <strong>{email}</strong>")), "{}", page.text);
    assert!(page.text.contains(REFRESH) && !page.text.contains(r#"name="code""#), "no code field: {}", page.text);
    verify
}

both_backends!(a_sign_up_proves_its_address_with_a_link_on_the_hosted_pages, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.email_links.sign_up = true).await;
    let sign_up_page = server.browser().get("/sign-up").await;
    assert!(sign_up_page.text.contains("We&#39;ll email you a link to confirm your address."), "{}", sign_up_page.text);

    // Confirmed in another browser: the page that waits completes by itself.
    let laptop = server.browser();
    let verify = sign_up_with_link(&laptop, "new@example.com").await;
    let link = link_for(&server, "new@example.com").await;
    let phone = server.browser();
    let r = phone.get(&link).await;
    assert!(r.text.contains("Confirm your email address"), "{}", r.text);
    let done = path_of(&server, &location(&phone.post(&link, &[]).await));
    assert!(done.starts_with("/sign-up/email-link/done?"), "{done}");
    let r = phone.get(&done).await;
    assert!(r.status == StatusCode::OK && r.text.contains("Your address is confirmed"), "{}", r.text);
    let r = laptop.get(&verify).await;
    assert_eq!(location(&r), APP);
    assert!(has_session_cookie(&r));
    assert!(laptop.get("/user").await.text.contains("new@example.com"));

    // Opened in the same browser: on to the app at once.
    let b = server.browser();
    sign_up_with_link(&b, "same@example.com").await;
    let link = link_for(&server, "same@example.com").await;
    let done = path_of(&server, &location(&b.get(&link).await));
    let r = b.get(&done).await;
    assert_eq!(location(&r), APP);
    assert!(has_session_cookie(&r));
    // Used twice: refused in words.
    let done = path_of(&server, &location(&b.get(&link).await));
    let r = b.get(&done).await;
    assert!(r.status == StatusCode::BAD_REQUEST && r.text.contains("This link can&#39;t be used"), "{}", r.text);

    // "Send a new link" on the verify step mails a link, not a code.
    let b = server.browser();
    let verify = sign_up_with_link(&b, "again@example.com").await;
    let csrf = csrf_from(&b.get(&verify).await.text);
    let r = b.post(&format!("/sign-up/resend{}", query()), &[("csrf", &csrf)]).await;
    let back = location(&r);
    assert!(back.ends_with("&notice=link_sent"), "{back}");
    assert!(b.get(&back).await.text.contains("A new link is on its way."));
    let mails = server.mail_to("again@example.com").await;
    assert!(mails.last().unwrap().text.contains("/v1/verify?token="), "{:?}", mails.last());
});
