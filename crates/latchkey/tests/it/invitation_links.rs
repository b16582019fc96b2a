//! An organization invitation's link opened by someone signed in with another address: the
//! hosted page offers to join with that account, opening it accepts nothing, the click (with
//! its CSRF token) accepts once, and a used, revoked or unknown link says so in words.
//! Signed out, the link is the sign-up page with a way to sign in first and come back.

use reqwest::StatusCode;

use crate::both_backends;
use crate::harness::{Browser, TestServer};
use crate::pages::{csrf_from, form};

const PASSWORD: &str = "correct horse battery staple";

/// The path of the invitation link mailed to `to` (the latest one).
async fn link_to(server: &TestServer, to: &str) -> String {
    server.mail_settled().await;
    let mail = server.mail_to(to).await;
    let text = &mail.last().expect("an invitation mail").text;
    let start = text.find("/sign-up?__clerk_ticket=").expect("a link in the mail");
    text[start..].split_whitespace().next().unwrap().to_owned()
}

async fn invite(server: &TestServer, ada: &Browser, csrf: &str, email: &str) -> String {
    let invited = ada.post("/organization/invitations", &[("csrf", csrf), ("email_address", email)]).await;
    assert_eq!(invited.headers["location"], "/organization?notice=invited", "{}", invited.text);
    link_to(server, email).await
}

async fn memberships(server: &TestServer, email: &str) -> Vec<(String, String)> {
    let user = server.store.user_id_by_verified_email(email).await.unwrap().unwrap();
    let orgs = server.services.orgs().user_organizations(&user).await.unwrap();
    orgs.into_iter().map(|(m, o)| (o.name, m.role)).collect()
}

both_backends!(a_signed_in_user_joins_by_an_invitation_link_sent_to_another_address, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = server.browser();
    server.sign_up(&ada, "ada@example.com", PASSWORD).await;
    let csrf = form(&ada, "/user").await;
    let made = ada.post("/organization/create", &[("csrf", csrf.as_str()), ("name", "The Smiths")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.text);
    let link = invite(&server, &ada, &csrf, "bob.work@example.com").await;

    // Bob has an account under his own address; opening the link shows both, and joins nobody.
    let bob = server.browser();
    server.sign_up(&bob, "bob@example.com", PASSWORD).await;
    let page = bob.get(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("Join The Smiths")
            && page.text.contains("bob.work@example.com")
            && page.text.contains("Join as bob@example.com"),
        "{}",
        page.text
    );
    assert!(memberships(&server, "bob@example.com").await.is_empty(), "opening the link accepts nothing");
    let ticket = link.split("__clerk_ticket=").nth(1).unwrap().to_owned();
    let forged = bob.post("/user/invitations/accept-link", &[("ticket", ticket.as_str())]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token, no joining");
    assert!(memberships(&server, "bob@example.com").await.is_empty());

    let csrf_b = csrf_from(&page.text);
    let joined =
        bob.post("/user/invitations/accept-link", &[("csrf", csrf_b.as_str()), ("ticket", ticket.as_str())]).await;
    assert_eq!(joined.status, StatusCode::SEE_OTHER, "{}", joined.text);
    assert_eq!(joined.headers["location"], "/user?notice=invitation_accepted");
    assert_eq!(memberships(&server, "bob@example.com").await, vec![("The Smiths".to_owned(), "org:member".to_owned())]);
    assert!(
        bob.get("/organization").await.text.contains("No active organization"),
        "joining does not switch where the caller's new data goes"
    );
    assert!(server.store.pending_org_invitations_for("bob.work@example.com").await.unwrap().is_empty(), "accepted");

    // Once: the link, opened or posted again, says it no longer works.
    let again = bob.get(&link).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.text.contains("already accepted, revoked or expired"), "{}", again.text);
    let twice =
        bob.post("/user/invitations/accept-link", &[("csrf", csrf_b.as_str()), ("ticket", ticket.as_str())]).await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A member already cannot use up an invitation meant for someone else.
    let spare = invite(&server, &ada, &csrf, "ada.other@example.com").await;
    let spare_ticket = spare.split("__clerk_ticket=").nth(1).unwrap().to_owned();
    let own =
        ada.post("/user/invitations/accept-link", &[("csrf", csrf.as_str()), ("ticket", spare_ticket.as_str())]).await;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(own.text.contains("already a member"), "{}", own.text);
    assert_eq!(
        server.store.pending_org_invitations_for("ada.other@example.com").await.unwrap().len(),
        1,
        "still pending"
    );

    // A revoked invitation's link and a made-up one: the same words, nobody joins.
    let carol = server.browser();
    server.sign_up(&carol, "carol@example.com", PASSWORD).await;
    let revoked_link = invite(&server, &ada, &csrf, "carol.other@example.com").await;
    let inv_id = server.store.pending_org_invitations_for("carol.other@example.com").await.unwrap()[0].id.clone();
    assert!(ada.get("/organization").await.text.contains(&format!("/organization/invitations/{inv_id}/revoke")));
    let revoked = ada.post(&format!("/organization/invitations/{inv_id}/revoke"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(revoked.headers["location"], "/organization?notice=revoked");
    for path in [revoked_link.as_str(), "/sign-up?__clerk_ticket=made-up"] {
        let r = carol.get(path).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(r.text.contains("invalid or has expired") || r.text.contains("already accepted, revoked or expired"));
    }
    let carol_csrf = form(&carol, "/user").await;
    let posted =
        carol.post("/user/invitations/accept-link", &[("csrf", carol_csrf.as_str()), ("ticket", "made-up")]).await;
    assert_eq!(posted.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(memberships(&server, "carol@example.com").await.is_empty());
});

both_backends!(signed_out_the_invitation_link_is_the_sign_up_page_with_a_way_to_sign_in_first, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = server.browser();
    server.sign_up(&ada, "ada@example.com", PASSWORD).await;
    let csrf = form(&ada, "/user").await;
    ada.post("/organization/create", &[("csrf", csrf.as_str()), ("name", "The Smiths")]).await;
    let link = invite(&server, &ada, &csrf, "dan.work@example.com").await;
    let dan = server.browser();
    server.sign_up(&dan, "dan@example.com", PASSWORD).await;
    let out = dan.post("/sign-out", &[("csrf", form(&dan, "/user").await.as_str())]).await;
    assert!(out.status.is_redirection(), "{}", out.text);

    let page = dan.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Create your account") && page.text.contains("/sign-in?redirect_url="), "{}", page.text);
    // Signing in comes back to the link, which now offers to join.
    let signed = dan
        .post(
            &format!(
                "/sign-in?redirect_url={}",
                url::form_urlencoded::byte_serialize(link.as_bytes()).collect::<String>()
            ),
            &[
                ("csrf", form(&dan, "/sign-in").await.as_str()),
                ("identifier", "dan@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
    let back = signed.headers["location"].to_str().unwrap().to_owned();
    assert!(back.ends_with(&link), "{back}");
    assert!(dan.get(&link).await.text.contains("Join as dan@example.com"));
    // A post after signing out goes to sign in first, and joins nobody.
    let csrf_d = form(&dan, "/user").await;
    dan.post("/sign-out", &[("csrf", csrf_d.as_str())]).await;
    let ticket = link.split("__clerk_ticket=").nth(1).unwrap();
    let refused = dan.post("/user/invitations/accept-link", &[("csrf", csrf_d.as_str()), ("ticket", ticket)]).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert!(refused.headers["location"].to_str().unwrap().starts_with("/sign-in?redirect_url="));
    assert!(memberships(&server, "dan@example.com").await.is_empty());
});
