//! The hosted pages, driven like a browser without JavaScript.

use reqwest::StatusCode;

use crate::harness::{Backend, Browser, TestServer};

fn csrf_from(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[start..start + 43].to_owned()
}

async fn form(b: &Browser, page: &str) -> String {
    let r = b.get(page).await;
    assert_eq!(r.status, StatusCode::OK, "{page}");
    assert_eq!(r.content_type(), "text/html; charset=utf-8");
    csrf_from(&r.text)
}

#[tokio::test]
async fn sign_up_verify_and_return_to_the_app() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let back = "http://app.test:3000/after?x=1";
    let q = format!("?redirect_url={}", url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>());
    let csrf = form(&b, &format!("/sign-up{q}")).await;
    let r = b
        .post(
            &format!("/sign-up{q}"),
            &[
                ("csrf", csrf.as_str()),
                ("email_address", "page@example.com"),
                ("password", "page passphrase 1"),
                ("first_name", "Page"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let verify = r.headers["location"].to_str().unwrap().to_owned();
    assert!(verify.starts_with("/sign-up/verify?redirect_url="), "{verify}");
    let page = b.get(&verify).await;
    assert!(page.text.contains("page@example.com"));
    let wrong = b.post(&verify, &[("csrf", csrf.as_str()), ("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text.contains("Incorrect code"));
    let code = server.code_for("page@example.com").await;
    let done = b.post(&verify, &[("csrf", csrf.as_str()), ("code", code.as_str())]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.headers["location"], back);
    assert!(done.set_cookies().iter().any(|c| c.starts_with("__session=ey")));
    let user = b.get("/user").await;
    assert_eq!(user.status, StatusCode::OK);
    assert!(
        user.text.contains("page@example.com")
            && user.text.contains("Active sessions")
            && user.text.contains("value=\"Page\"")
    );
}

#[tokio::test]
async fn redirects_only_to_allowed_origins() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.sign_up(&server.browser(), "redir@example.com", "redirect passphrase").await;
    for (target, expected) in [
        ("https://evil.test/steal", "/user"),
        ("//evil.test/x", "/user"),
        ("/user?tab=1", "/user?tab=1"),
        ("http://app.test:3000/ok", "http://app.test:3000/ok"),
    ] {
        let b = server.browser();
        let q =
            format!("?redirect_url={}", url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>());
        let csrf = form(&b, &format!("/sign-in{q}")).await;
        let r = b
            .post(
                &format!("/sign-in{q}"),
                &[("csrf", csrf.as_str()), ("identifier", "redir@example.com"), ("password", "redirect passphrase")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert_eq!(r.headers["location"], expected, "{target}");
    }
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let _ = form(&b, "/sign-in").await;
    let r =
        b.post("/sign-in", &[("csrf", "forged"), ("identifier", "x@example.com"), ("password", "whatever pass")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let fresh = server.browser();
    let r = fresh.post("/sign-in", &[("identifier", "x@example.com"), ("password", "whatever pass")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_in_errors_and_the_user_page() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.sign_up(&server.browser(), "profile@example.com", "profile passphrase").await;
    let b = server.browser();
    assert_eq!(b.get("/user").await.headers["location"], "/sign-in?redirect_url=%2Fuser");
    let csrf = form(&b, "/sign-in").await;
    let bad = b
        .post(
            "/sign-in",
            &[("csrf", csrf.as_str()), ("identifier", "profile@example.com"), ("password", "wrong passphrase")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("Password is incorrect") && bad.text.contains("value=\"profile@example.com\""));
    let ok = b
        .post(
            "/sign-in",
            &[("csrf", csrf.as_str()), ("identifier", "profile@example.com"), ("password", "profile passphrase")],
        )
        .await;
    assert_eq!(ok.headers["location"], "/user");

    let r =
        b.post("/user/profile", &[("csrf", csrf.as_str()), ("first_name", "<b>Bold</b>"), ("last_name", "Doe")]).await;
    assert_eq!(r.headers["location"], "/user?notice=profile");
    let page = b.get("/user?notice=profile").await;
    assert!(page.text.contains("&lt;b&gt;Bold&lt;/b&gt;") && !page.text.contains("<b>Bold</b>"), "escaped");
    assert!(page.text.contains("Profile saved."));

    let r = b
        .post(
            "/user/password",
            &[("csrf", csrf.as_str()), ("current_password", "nope nope nope"), ("new_password", "another passphrase")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = b
        .post(
            "/user/password",
            &[
                ("csrf", csrf.as_str()),
                ("current_password", "profile passphrase"),
                ("new_password", "another passphrase"),
            ],
        )
        .await;
    assert_eq!(r.headers["location"], "/user?notice=password");

    let r = b.post("/user/email", &[("csrf", csrf.as_str()), ("email_address", "extra@example.com")]).await;
    assert_eq!(r.headers["location"], "/user?notice=email_added");
    let out = b.post("/sign-out", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.headers["location"], "/sign-in?notice=signed_out");
    assert_eq!(b.get("/user").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_sign_in_link_signs_in_once_after_one_click() {
    let server = TestServer::start(Backend::Sqlite).await;
    let user = server
        .services
        .admin_create_user(latchkey_service::admin::NewUser {
            email_addresses: vec!["link@example.com".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, _token, url) = server.services.create_sign_in_token(&user.user.id, Some(600)).await.unwrap();
    let path = url.strip_prefix(&server.url).expect("a link to this instance").to_owned();
    assert!(path.starts_with("/sign-in?__clerk_ticket="), "{path}");

    let b = server.browser();
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("name=\"ticket\""));
    assert!(b.get("/user").await.status != StatusCode::OK, "opening the link alone signs nobody in");
    let csrf = csrf_from(&page.text);
    let ticket = path.split('=').nth(1).unwrap().to_owned();
    let done = b.post("/sign-in", &[("csrf", csrf.as_str()), ("ticket", ticket.as_str())]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert!(done.set_cookies().iter().any(|c| c.starts_with("__session=ey")));
    assert!(b.get("/user").await.text.contains("link@example.com"));

    let other = server.browser();
    let page = other.get(&path).await;
    let again = other.post("/sign-in", &[("csrf", csrf_from(&page.text).as_str()), ("ticket", ticket.as_str())]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "a link works once");
    assert!(again.text.contains("invalid or has expired") || again.text.contains("already used"), "{}", again.text);
}
