//! The hosted pages, driven like a browser without JavaScript.

use reqwest::StatusCode;

use crate::harness::{Backend, Browser, TestServer};

pub(crate) fn csrf_from(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    html[start..start + 43].to_owned()
}

/// The CSRF token of a hosted page (which must load as HTML).
pub(crate) async fn form(b: &Browser, page: &str) -> String {
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
        // A browser drops the tab, reading `//evil.test/x`; backslashes read as slashes.
        ("/\t/evil.test/x", "/user"),
        ("/\\evil.test/x", "/user"),
        ("\\\\evil.test", "/user"),
        (" //evil.test", "/user"),
        ("/x\n/evil.test", "/user"),
        ("https://app.test:3000@evil.test/", "/user"),
        ("http://user@app.test:3000/ok", "/user"),
        ("javascript:alert(1)", "/user"),
        ("/a/..//evil.test/x", "http://REPLACE//evil.test/x"),
        ("/user?tab=1", "/user?tab=1"),
        ("user?tab=2", "/user?tab=2"),
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
        let expected = expected.replace("http://REPLACE", &server.url);
        assert_eq!(r.headers["location"], expected.as_str(), "{target:?}");
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

/// Every form post of the hosted pages takes `PageForm`, which checks the CSRF token before
/// the handler runs: a signed-in browser posting a forged token to any of them is refused and
/// nothing changes.
#[tokio::test]
async fn every_page_form_refuses_a_forged_csrf_token() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.sign_up(&server.browser(), "forged@example.com", "forged passphrase").await;
    let b = server.browser();
    let csrf = form(&b, "/sign-in").await;
    let ok = b
        .post(
            "/sign-in",
            &[("csrf", csrf.as_str()), ("identifier", "forged@example.com"), ("password", "forged passphrase")],
        )
        .await;
    assert_eq!(ok.headers["location"], "/user");
    let before = b.get("/user").await;
    assert_eq!(before.status, StatusCode::OK);
    let posts = [
        "/sign-in",
        "/sign-up",
        "/sign-up/verify",
        "/sign-up/resend",
        "/sign-in/forgot",
        "/sign-in/reset",
        "/sign-in/reset/resend",
        "/sign-in/reset/password",
        "/sign-in/oauth",
        "/sign-out",
        "/user/profile",
        "/user/email",
        "/user/email/idn_x/verify",
        "/user/email/idn_x/resend",
        "/user/email/idn_x/primary",
        "/user/email/idn_x/delete",
        "/user/password",
        "/user/sessions/sess_x/revoke",
        "/user/accounts/eac_x/delete",
        "/user/accounts/connect",
        "/user/organizations/select",
        "/user/invitations/orginv_x/accept",
        "/organization/create",
        "/organization/profile",
        "/organization/members/user_x/role",
        "/organization/members/user_x/remove",
        "/organization/invitations",
        "/organization/invitations/orginv_x/revoke",
        "/organization/leave",
        "/organization/delete",
    ];
    for path in posts {
        let r = b
            .post(path, &[("csrf", "forged"), ("first_name", "Mallory"), ("name", "Evil Org"), ("new_password", "x")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.text.contains("This form has expired"), "{path}");
    }
    // Still signed in, profile untouched, no organization created.
    let after = b.get("/user").await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(!after.text.contains("Mallory") && !after.text.contains("Evil Org"));
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
        .admin()
        .admin_create_user(
            &latchkey::operator(),
            latchkey_service::admin::NewUser { email_addresses: vec!["link@example.com".into()], ..Default::default() },
        )
        .await
        .unwrap();
    let (_, _token, url) =
        server.services.create_sign_in_token(&latchkey::operator(), &user.user.id, Some(600)).await.unwrap();
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

#[tokio::test]
async fn organizations_on_the_hosted_pages() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ada = server.browser();
    server.sign_up(&ada, "ada@example.com", "correct horse battery staple").await;
    let csrf = form(&ada, "/user").await;
    let user = ada.get("/user").await;
    assert!(user.text.contains("Organizations") && user.text.contains("Personal account"), "{}", user.text);
    let no_org = ada.get("/organization").await;
    assert!(no_org.text.contains("No active organization"));

    // Create: it becomes the active organization and its page shows the admin's tools.
    let made = ada.post("/organization/create", &[("csrf", csrf.as_str()), ("name", "The <Smiths>")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    assert_eq!(made.headers["location"], "/organization?notice=created");
    let page = ada.get("/organization").await;
    assert!(page.text.contains("The &lt;Smiths&gt;"), "names are escaped");
    assert!(
        page.text.contains("Members (1)")
            && page.text.contains("Send invitation")
            && page.text.contains("Delete organization")
    );
    let invited = ada
        .post(
            "/organization/invitations",
            &[("csrf", csrf.as_str()), ("email_address", "bob@example.com"), ("role", "org:member")],
        )
        .await;
    assert_eq!(invited.headers["location"], "/organization?notice=invited");
    assert!(ada.get("/organization").await.text.contains("bob@example.com"));
    let bad =
        ada.post("/organization/invitations", &[("csrf", csrf.as_str()), ("email_address", "not an email")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("valid email"), "{}", bad.text);
    let forged = ada.post("/organization/invitations", &[("email_address", "eve@example.com")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token, no invitation");

    // The invitee signs up, switches to it, and sees a member's page: no admin tools.
    let bob = server.browser();
    server.sign_up(&bob, "bob@example.com", "correct horse battery staple").await;
    let bob_csrf = form(&bob, "/user").await;
    let bob_user = bob.get("/user").await;
    assert!(bob_user.text.contains("The &lt;Smiths&gt;") && bob_user.text.contains("Switch"), "{}", bob_user.text);
    let org_id = server
        .services
        .orgs()
        .user_organizations(&server.store.user_id_by_verified_email("bob@example.com").await.unwrap().unwrap())
        .await
        .unwrap()[0]
        .1
        .id
        .clone();
    let switched = bob
        .post("/user/organizations/select", &[("csrf", bob_csrf.as_str()), ("organization_id", org_id.as_str())])
        .await;
    assert_eq!(switched.headers["location"], "/user?notice=org_selected");
    let member_page = bob.get("/organization").await;
    assert!(
        member_page.text.contains("Members (2)")
            && !member_page.text.contains("Send invitation")
            && !member_page.text.contains("Change role")
    );
    let refused = bob
        .post("/organization/invitations", &[("csrf", bob_csrf.as_str()), ("email_address", "eve@example.com")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a member may not invite");
    assert!(refused.text.contains("permission"));

    // Promoted, the same page offers the tools; then bob leaves and ada deletes.
    let bob_id = server.store.user_id_by_verified_email("bob@example.com").await.unwrap().unwrap();
    let promoted = ada
        .post(&format!("/organization/members/{bob_id}/role"), &[("csrf", csrf.as_str()), ("role", "org:admin")])
        .await;
    assert_eq!(promoted.headers["location"], "/organization?notice=role");
    assert!(bob.get("/organization").await.text.contains("Send invitation"));
    let left = bob.post("/organization/leave", &[("csrf", bob_csrf.as_str())]).await;
    assert_eq!(left.headers["location"], "/user?notice=org_left");
    assert!(bob.get("/organization").await.text.contains("No active organization"), "bob is no longer a member");
    let last = ada.post("/organization/leave", &[("csrf", csrf.as_str())]).await;
    assert_eq!(last.headers["location"], "/user?notice=org_left", "the last member may leave");
    let again = ada.post("/organization/create", &[("csrf", csrf.as_str()), ("name", "Second")]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let deleted = ada.post("/organization/delete", &[("csrf", csrf.as_str())]).await;
    assert_eq!(deleted.headers["location"], "/user?notice=org_deleted");
    assert!(!ada.get("/user").await.text.contains("Second"));
}
