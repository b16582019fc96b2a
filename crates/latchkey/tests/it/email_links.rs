//! Email links (docs/email-links.md): a sign-in's or sign-up's link mailed to the address,
//! opened in the browser that asked or in another one, expired, reused, refused in another
//! browser where the instance requires the same one, and fuzzed. On both backends.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::second_factors::{code_at, enrolled, next_step, PASSWORD};

/// The page the app asks the link to lead to: its own query and fragment must survive.
fn app_page(server: &TestServer) -> String {
    format!("{}/sign-in?from=app#/verify?redirect_url=%2Fhome", server.url)
}

/// The path and query of the newest link mailed to `to`.
async fn link_for(server: &TestServer, to: &str) -> String {
    let mail = server.wait_for_mail(to, |m| m.text.contains("/v1/verify?token=")).await;
    let url = mail.text.split_whitespace().find(|w| w.contains("/v1/verify?token=")).unwrap().to_owned();
    url.strip_prefix(&server.url).unwrap_or_else(|| panic!("the link is on the instance: {url}")).to_owned()
}

/// Starts a sign-in for `email` and asks for a link: the attempt's id.
async fn ask_for_link(server: &TestServer, b: &Browser, email: &str) -> String {
    let r = b.post("/v1/client/sign_ins", &[("identifier", email)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s = &r.body["response"];
    let link = s["supported_first_factors"].as_array().unwrap().iter().find(|f| f["strategy"] == "email_link");
    let link = link.unwrap_or_else(|| panic!("email_link is offered: {}", r.text)).clone();
    assert_eq!(link["safe_identifier"], email);
    let id = s["id"].as_str().unwrap().to_owned();
    let form = [
        ("strategy", "email_link"),
        ("email_address_id", link["email_address_id"].as_str().unwrap()),
        ("redirect_url", &app_page(server)),
    ];
    let r = b.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = &r.body["response"]["first_factor_verification"];
    assert_eq!((v["object"].as_str(), v["status"].as_str()), (Some("verification_email_link"), Some("unverified")));
    assert!(v["verified_at_client"].is_null() && v["expire_at"].is_i64(), "{v}");
    id
}

/// Where the link sent the browser: the status and the new session Clerk's page reads.
fn onward(r: &Reply, server: &TestServer) -> (String, Option<String>) {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let location = r.headers["location"].to_str().unwrap();
    let (before, fragment) = location.split_once('#').unwrap();
    assert_eq!(fragment, "/verify?redirect_url=%2Fhome", "the app's fragment is kept");
    let url = url::Url::parse(before).unwrap();
    assert!(before.starts_with(&format!("{}/sign-in?from=app&", server.url)), "{location}");
    let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    (get("__clerk_status").unwrap(), get("__clerk_created_session"))
}

/// Opens `link` in a browser other than the one that asked: a page to confirm on (a GET alone,
/// as a mail scanner makes, does nothing), then the confirmation (a POST to the same URL).
async fn open_elsewhere(b: &Browser, link: &str) -> Reply {
    let r = b.get(link).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("<form method=\"post\">"), "{}", r.text);
    b.post(link, &[]).await
}

async fn poll(b: &Browser, id: &str) -> Reply {
    b.get(&format!("/v1/client/sign_ins/{id}")).await
}

both_backends!(a_link_opened_in_another_browser_completes_the_asking_one, |backend| async move {
    let server = TestServer::start(backend).await;
    let (user_id, _) = server.sign_up(&server.browser(), "ada@example.com", PASSWORD).await;
    let asking = server.browser();
    let id = ask_for_link(&server, &asking, "ada@example.com").await;
    let link = link_for(&server, "ada@example.com").await;
    // Before the link is opened, polling changes nothing.
    let r = poll(&asking, &id).await;
    assert_eq!(r.body["response"]["status"], "needs_first_factor", "{}", r.text);

    // Another browser, with a client of its own.
    let phone = server.browser();
    phone.get("/v1/client").await;
    phone.post("/v1/client/sign_ins", &[("identifier", "someone@example.com")]).await;
    // A mail scanner's fetch (a GET, no cookie) signs nobody in and uses nothing up.
    let scanner = server.browser();
    let r = scanner.get(&link).await;
    assert!(r.text.contains("Sign in on your other device?"), "{}", r.text);
    assert_eq!(poll(&asking, &id).await.body["response"]["status"], "needs_first_factor");
    assert_eq!(server.store.get_sign_in(&id).await.unwrap().unwrap().code.attempts, 0);
    let r = open_elsewhere(&phone, &link).await;
    assert_eq!(onward(&r, &server), ("verified".to_owned(), None));
    let phone_client = phone.get("/v1/client").await.body["response"]["id"].as_str().unwrap().to_owned();
    assert!(phone.get("/v1/client").await.body["response"]["sessions"].as_array().unwrap().is_empty());

    // The asking browser's next poll completes it, with the session in the client it reads.
    let r = poll(&asking, &id).await;
    let s = &r.body["response"];
    assert_eq!(s["status"], "complete", "{}", r.text);
    assert_eq!(s["first_factor_verification"]["status"], "verified");
    assert_eq!(s["first_factor_verification"]["verified_at_client"], phone_client.as_str());
    let sid = s["created_session_id"].as_str().unwrap().to_owned();
    let sessions = r.body["client"]["sessions"].as_array().unwrap();
    assert!(sessions.iter().any(|x| x["id"] == sid.as_str() && x["user"]["id"] == user_id.as_str()), "{}", r.text);
    // Its renewed token works: it mints a session token.
    assert_eq!(asking.token(&sid).await.status, StatusCode::OK);
    // Polling again is harmless.
    assert_eq!(poll(&asking, &id).await.body["response"]["created_session_id"], sid.as_str());

    // The same link again: refused, and nothing more is made.
    let r = phone.get(&link).await;
    assert_eq!(onward(&r, &server).0, "failed");
    let r = server.browser().post(&link, &[]).await;
    assert_eq!(onward(&r, &server).0, "failed");
    let sessions = server.store.sessions_for_user(&user_id).await.unwrap();
    assert_eq!(sessions.iter().filter(|s| s.status == "active").count(), 2, "the sign-up's and this one");
});

both_backends!(a_link_opened_in_the_asking_browser_signs_it_in_at_once, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "grace@example.com", PASSWORD).await;
    let b = server.browser();
    let id = ask_for_link(&server, &b, "grace@example.com").await;
    let link = link_for(&server, "grace@example.com").await;
    let r = b.get(&link).await;
    let (status, session) = onward(&r, &server);
    assert_eq!(status, "verified");
    let sid = session.expect("the new session is named for Clerk's page");
    assert!(r.set_cookies().iter().any(|c| c.starts_with("__client=")), "the client's token is renewed");
    let client = b.get("/v1/client").await;
    assert_eq!(client.body["response"]["last_active_session_id"], sid.as_str(), "{}", client.text);
    let s = &poll(&b, &id).await.body["response"];
    assert_eq!((s["status"].as_str(), s["created_session_id"].as_str()), (Some("complete"), Some(sid.as_str())));
    assert_eq!(s["first_factor_verification"]["verified_at_client"], client.body["response"]["id"]);
});

both_backends!(an_expired_or_mangled_link_is_refused_and_changes_nothing, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "lin@example.com", PASSWORD).await;
    let b = server.browser();
    let id = ask_for_link(&server, &b, "lin@example.com").await;
    let link = link_for(&server, "lin@example.com").await;
    let before = server.store.get_sign_in(&id).await.unwrap().unwrap();

    // A wrong secret for the right attempt, and junk of every shape: pages, never a 5xx.
    let token = link.split_once("token=").unwrap().1.to_owned();
    let (attempt, secret) = token.split_once('.').unwrap();
    let long = "x".repeat(5000);
    let junk = [
        String::new(),
        "token=".into(),
        format!("token={attempt}"),
        format!("token={attempt}.{}", secret.chars().rev().collect::<String>()),
        format!("token=sua_nothing.{secret}"),
        format!("token=usr_{secret}.{secret}"),
        format!("token={long}.{long}"),
        "token=%00%ff.%c3%28".into(),
        "token=..".into(),
    ];
    let html = |b: &Browser, path: String| b.http.get(b.url(&path)).header("accept", "text/html,*/*");
    for q in &junk {
        let b = server.browser();
        let r = b.send(html(&b, format!("/v1/verify?{q}"))).await;
        assert!(r.status.is_client_error() || r.status == StatusCode::SEE_OTHER, "{q}: {} {}", r.status, r.text);
        if r.status == StatusCode::SEE_OTHER {
            assert_eq!(onward(&r, &server).0, "failed", "{q}");
        } else {
            assert!(r.text.contains("not valid"), "{q}: {}", r.text);
        }
        // A program (no text/html) gets Clerk's error body instead of the page.
        let r = server.browser().get(&format!("/v1/verify?{q}")).await;
        if r.status == StatusCode::BAD_REQUEST {
            assert_eq!(r.error_code(), "verification_link_invalid", "{q}: {}", r.text);
        }
    }
    let after_junk = server.store.get_sign_in(&id).await.unwrap().unwrap();
    assert_eq!(after_junk.status, "needs_first_factor");
    assert_eq!(after_junk.code.attempts, 2, "the wrong secret for this attempt counted, twice tried");

    // Eleven minutes later the right link has expired.
    server.clock.advance_ms(11 * 60_000);
    let r = server.browser().get(&link).await;
    assert_eq!(onward(&r, &server).0, "expired");
    let s = &poll(&b, &id).await.body["response"];
    assert_eq!(s["status"], "needs_first_factor");
    assert_eq!(s["created_session_id"], Value::Null);
    assert_eq!(server.store.get_sign_in(&id).await.unwrap().unwrap().created_session_id, before.created_session_id);
});

both_backends!(the_same_browser_rule_refuses_others_and_second_factors_still_ask, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.email_links.require_same_client = true).await;
    let env = server.browser().get("/v1/environment").await.body;
    assert_eq!(env["user_settings"]["attack_protection"]["email_link"]["require_same_client"], true);
    let phone = server.browser();
    let (_, _, secret, _) = enrolled(&server, &phone, "eve@example.com").await;
    next_step(&server);

    let b = server.browser();
    let id = ask_for_link(&server, &b, "eve@example.com").await;
    let link = link_for(&server, "eve@example.com").await;
    let r = server.browser().get(&link).await;
    assert_eq!(onward(&r, &server).0, "client_mismatch");
    assert_eq!(poll(&b, &id).await.body["response"]["status"], "needs_first_factor");
    // The asking browser may still use it; a user with an app then proves it.
    let r = b.get(&link).await;
    assert_eq!(onward(&r, &server), ("verified".to_owned(), None));
    let s = &poll(&b, &id).await.body["response"];
    assert_eq!(s["status"], "needs_second_factor", "{s}");
    let r = b
        .post(
            &format!("/v1/client/sign_ins/{id}/attempt_second_factor"),
            &[("strategy", "totp"), ("code", &code_at(&server, &secret, 0))],
        )
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
});

both_backends!(links_for_sign_in_can_be_turned_off_and_unknown_addresses_get_no_mail, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.email_links.sign_in = false).await;
    let env = server.browser().get("/v1/environment").await.body;
    assert_eq!(env["user_settings"]["attributes"]["email_address"]["first_factors"], serde_json::json!(["email_code"]));
    let b = server.browser();
    let r = b.post("/v1/client/sign_ins", &[("identifier", "nobody@example.com")]).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    assert!(!r.text.contains("email_link"), "{}", r.text);
    let form = [("strategy", "email_link"), ("redirect_url", "/sign-in")];
    let r = b.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &form).await;
    assert_eq!(r.error_code(), "strategy_for_user_invalid", "{}", r.text);

    // On (the default): an address with no account gets the same answer and no mail.
    let server = TestServer::start(backend).await;
    let b = server.browser();
    let id = ask_for_link(&server, &b, "nobody@example.com").await;
    assert_eq!(server.mail_count("nobody@example.com").await, 0);
    // A redirect to a foreign origin, or none, is refused.
    for back in ["https://evil.example/steal", ""] {
        let form = [("strategy", "email_link"), ("redirect_url", back)];
        let r = b.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{back}: {}", r.text);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], "redirect_url");
    }
});

both_backends!(a_sign_up_proves_its_address_with_a_link, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.email_links.sign_up = true).await;
    let env = server.browser().get("/v1/environment").await.body;
    assert_eq!(env["user_settings"]["attributes"]["email_address"]["verifications"], serde_json::json!(["email_link"]));
    let b = server.browser();
    let r = b.post("/v1/client/sign_ups", &[("email_address", "new@example.com"), ("password", PASSWORD)]).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let form = [("strategy", "email_link"), ("redirect_url", &app_page(&server))];
    let r = b.post(&format!("/v1/client/sign_ups/{id}/prepare_verification"), &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = &r.body["response"]["verifications"]["email_address"];
    assert_eq!((v["object"].as_str(), v["strategy"].as_str()), (Some("verification_email_link"), Some("email_link")));
    let link = link_for(&server, "new@example.com").await;
    // The link is the only mail: creating the sign-up mailed no code first.
    assert_eq!(server.mail_count("new@example.com").await, 1);

    let r = open_elsewhere(&server.browser(), &link).await;
    assert_eq!(onward(&r, &server), ("verified".to_owned(), None));
    let r = b.get(&format!("/v1/client/sign_ups/{id}")).await;
    let s = &r.body["response"];
    assert_eq!(s["status"], "complete", "{}", r.text);
    assert_eq!(s["verifications"]["email_address"]["status"], "verified");
    let sid = s["created_session_id"].as_str().unwrap();
    assert!(r.body["client"]["sessions"].as_array().unwrap().iter().any(|x| x["id"] == sid));
    let r = server.browser().get(&link).await;
    assert_eq!(onward(&r, &server).0, "failed", "used once");
    // Codes still work where the app asks for one instead (and only then is one mailed).
    let b = server.browser();
    let r = b.post("/v1/client/sign_ups", &[("email_address", "coder@example.com"), ("password", PASSWORD)]).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.mail_count("coder@example.com").await, 0);
    let r = b.post(&format!("/v1/client/sign_ups/{id}/prepare_verification"), &[("strategy", "email_code")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = server.code_for("coder@example.com").await;
    let form = [("strategy", "email_code"), ("code", code.as_str())];
    let r = b.post(&format!("/v1/client/sign_ups/{id}/attempt_verification"), &form).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
});

both_backends!(links_point_only_at_configured_origins, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "mallory-target@example.com", PASSWORD).await;
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "proxy").await.unwrap();
    let mails = server.mail_count("mallory-target@example.com").await;
    // A request through an app's proxy whose Clerk-Proxy-Url came from a forged forwarded host.
    let b = server.browser();
    let via_forged = |path: &str, form: &[(&str, &str)]| {
        b.http
            .post(b.url(path))
            .header("clerk-proxy-url", "https://evil.example/__clerk")
            .header("clerk-secret-key", key.clone())
            .header("origin", "https://evil.example")
            .form(form)
    };
    let r = b.send(via_forged("/v1/client/sign_ins", &[("identifier", "mallory-target@example.com")])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/client/sign_ins/{id}/prepare_first_factor");
    let r = b.send(via_forged(&path, &[("strategy", "email_link"), ("redirect_url", "https://evil.example/x")])).await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a link may not lead to the proxy's origin alone: {}",
        r.text
    );
    assert_eq!(server.mail_count("mallory-target@example.com").await, mails, "no link was mailed");
    // A page of the instance is fine (a path would be the forged origin's), and the mailed link
    // is on the instance, not the proxy.
    let page = format!("{}/sign-in", server.url);
    let r = b.send(via_forged(&path, &[("strategy", "email_link"), ("redirect_url", &page)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mail = server.wait_for_mail("mallory-target@example.com", |m| m.text.contains("/v1/verify?token=")).await;
    assert!(mail.text.contains(&format!("{}/v1/verify?token=", server.url)), "{}", mail.text);
    assert!(!mail.text.contains("evil.example"), "{}", mail.text);
});

both_backends!(a_configured_proxy_gets_the_links, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.allowed_origins = vec!["https://app.example".into()]).await;
    server.sign_up(&server.browser(), "kim@example.com", PASSWORD).await;
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "proxy").await.unwrap();
    let b = server.browser();
    let via = |path: &str, form: &[(&str, &str)]| {
        b.http
            .post(b.url(path))
            .header("clerk-proxy-url", "https://app.example/__clerk/")
            .header("clerk-secret-key", key.clone())
            .header("origin", "https://app.example")
            .form(form)
    };
    let r = b.send(via("/v1/client/sign_ins", &[("identifier", "kim@example.com")])).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/client/sign_ins/{id}/prepare_first_factor");
    let r = b.send(via(&path, &[("strategy", "email_link"), ("redirect_url", "https://app.example/sign-in")])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mail = server.wait_for_mail("kim@example.com", |m| m.text.contains("/v1/verify?token=")).await;
    assert!(mail.text.contains("https://app.example/__clerk/v1/verify?token="), "{}", mail.text);
});

both_backends!(two_confirmations_of_one_link_at_once_verify_it_once, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "race@example.com", PASSWORD).await;
    let asking = server.browser();
    let id = ask_for_link(&server, &asking, "race@example.com").await;
    let link = link_for(&server, "race@example.com").await;
    let (one, two) = (server.browser(), server.browser());
    let (a, b) = tokio::join!(one.post(&link, &[]), two.post(&link, &[]));
    let mut statuses = vec![onward(&a, &server).0, onward(&b, &server).0];
    statuses.sort();
    assert_eq!(statuses, ["failed", "verified"], "one wins, the other is told the link is spent");
    let s = &poll(&asking, &id).await.body["response"];
    assert_eq!(s["status"], "complete", "{s}");
});
