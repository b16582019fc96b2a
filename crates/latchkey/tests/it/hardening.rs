//! The account-takeover and enumeration holes of the first security review (docs/SECURITY.md),
//! one test each: development mode follows the public URL, what a first factor shows is the
//! same for known and unknown identifiers, codes and passwords have budgets across attempts,
//! completed sign-ins replace the client token, mail-sending actions are limited, mail bodies
//! are stored only for subscribers, files are private, and forwarded addresses are read from
//! the right.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{Backend, Browser, Reply, TestServer};
use crate::orgs::Person;

const PASSWORD: &str = "correct horse battery staple";

async fn create_sign_in(b: &Browser, identifier: &str) -> Reply {
    b.post("/v1/client/sign_ins", &[("identifier", identifier)]).await
}

async fn prepare_code(b: &Browser, sign_in: &str) -> Reply {
    b.post(&format!("/v1/client/sign_ins/{sign_in}/prepare_first_factor"), &[("strategy", "email_code")]).await
}

async fn attempt_code(b: &Browser, sign_in: &str, code: &str) -> Reply {
    b.post(
        &format!("/v1/client/sign_ins/{sign_in}/attempt_first_factor"),
        &[("strategy", "email_code"), ("code", code)],
    )
    .await
}

fn id_of(r: &Reply) -> String {
    r.body["response"]["id"].as_str().unwrap_or_else(|| panic!("no id in {}", r.text)).to_owned()
}

/// The `email_address_id` a sign-in offers for the email-code factor.
fn offered_email_id(r: &Reply) -> String {
    r.body["response"]["supported_first_factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["strategy"] == "email_code")
        .and_then(|f| f["email_address_id"].as_str())
        .unwrap_or_else(|| panic!("no email_code factor in {}", r.text))
        .to_owned()
}

// ---- 1. development mode ----------------------------------------------------------------------

/// The ordinary deployment behind a reverse proxy listens on loopback with an https public
/// URL: production, whatever else is set.
#[tokio::test]
async fn an_https_public_url_turns_every_development_relaxation_off() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.public_url = Some("https://auth.example.com".into());
        c.dev_mode = Some(true);
        c.webhooks.allow_loopback = None;
        c.webhooks.require_https = None;
    })
    .await;
    let b = server.browser();
    assert_eq!(b.get("/dev/mail").await.status, StatusCode::NOT_FOUND, "no mail sink for the world");
    let r = b.post("/v1/client", &[]).await;
    let cookies = r.set_cookies();
    let client = cookies.iter().find(|c| c.contains("client=")).unwrap();
    assert!(client.starts_with("__Host-client=") && client.contains("Secure"), "{client}");
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "test").await.unwrap();
    for url in ["http://127.0.0.1:9/hook", "http://hooks.example.com/x"] {
        let r = b.send(b.http.post(b.url("/v1/webhooks/endpoints")).bearer_auth(&key).json(&json!({"url": url}))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {}", r.text);
    }
    let loopback = server.webhooks.config().policy();
    assert!(!loopback.allow_loopback, "the SSRF guard keeps loopback out");

    let dev = TestServer::start(Backend::Sqlite).await;
    assert_eq!(dev.browser().get("/dev/mail").await.status, StatusCode::OK, "http://127.0.0.1 is development");
}

// ---- 2. enumeration through ids -----------------------------------------------------------------

both_backends!(first_factor_ids_are_stable_per_address_and_carry_no_time, |backend| async move {
    let server = TestServer::start(backend).await;
    let (user_id, _) = server.sign_up(&server.browser(), "known@example.com", PASSWORD).await;
    let real_id = server.services.users().user(&user_id).await.unwrap().emails[0].id.clone();
    let shown = |address: &'static str| {
        let b = server.browser();
        async move { offered_email_id(&create_sign_in(&b, address).await) }
    };
    let (known, known_again) = (shown("known@example.com").await, shown("known@example.com").await);
    let (unknown, unknown_again) = (shown("unknown@example.com").await, shown("unknown@example.com").await);
    assert_eq!(known, known_again, "stable for a known address");
    assert_eq!(unknown, unknown_again, "stable for an unknown address, as for a known one");
    assert_ne!(known, real_id, "the stored id (which carries its creation time) is never shown");
    for id in [&known, &unknown] {
        assert!(latchkey_core::ids::is_id_of(latchkey_core::ids::IdKind::Identification, id), "{id}");
    }
    // Upper and lower case name one account, and show one id.
    assert_eq!(shown("Known@Example.com").await, known);
});

// ---- 3. code budgets ----------------------------------------------------------------------------

both_backends!(wrong_codes_have_a_budget_per_address_across_reissued_codes, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.code_failures_per_address_per_day = 4).await;
    server.sign_up(&server.browser(), "victim@example.com", PASSWORD).await;
    for address in ["victim@example.com", "nobody@example.com"] {
        let b = server.browser();
        let sign_in = id_of(&create_sign_in(&b, address).await);
        // Two codes, two wrong guesses each: without a budget each new code brings 5 more.
        for _ in 0..2 {
            assert_eq!(prepare_code(&b, &sign_in).await.status, StatusCode::OK);
            for _ in 0..2 {
                assert_eq!(attempt_code(&b, &sign_in, "000000").await.error_code(), "form_code_incorrect");
            }
        }
        let sent = server.mail_count(address).await;
        assert_eq!(prepare_code(&b, &sign_in).await.status, StatusCode::OK);
        let code = if address.starts_with("victim") { server.code_after(address, sent).await } else { "123456".into() };
        let r = attempt_code(&b, &sign_in, &code).await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::FORBIDDEN, "verification_failed"),
            "{address}: the budget is spent, even the right code is refused: {}",
            r.text
        );
    }
    // A day later the budget is back and the right code signs in.
    server.clock.advance_ms(24 * 3_600_000 + 1);
    let b = server.browser();
    let sign_in = id_of(&create_sign_in(&b, "victim@example.com").await);
    let sent = server.mail_count("victim@example.com").await;
    prepare_code(&b, &sign_in).await;
    let code = server.code_after("victim@example.com", sent).await;
    assert_eq!(attempt_code(&b, &sign_in, &code).await.body["response"]["status"], "complete");
});

both_backends!(codes_mailed_to_one_address_are_limited_per_hour, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.codes_per_address_per_hour = 3).await;
    server.sign_up(&server.browser(), "busy@example.com", PASSWORD).await; // one code: the sign-up's
    for (address, already) in [("busy@example.com", 1), ("idle@example.com", 0)] {
        let b = server.browser();
        let sign_in = id_of(&create_sign_in(&b, address).await);
        for _ in already..3 {
            assert_eq!(prepare_code(&b, &sign_in).await.status, StatusCode::OK);
        }
        let r = prepare_code(&b, &sign_in).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{address}: {}", r.text);
        assert!(r.headers.contains_key("retry-after"));
    }
    assert_eq!(server.mail_count("busy@example.com").await, 3, "the refused request mailed nothing");
    server.clock.advance_ms(3_600_000);
    let b = server.browser();
    let sign_in = id_of(&create_sign_in(&b, "busy@example.com").await);
    assert_eq!(prepare_code(&b, &sign_in).await.status, StatusCode::OK, "a new hour, a new budget");
});

// Verifying an added address: the budget belongs to the address, whoever adds it, so a second
// account does not bring fresh guesses.
both_backends!(verifying_an_added_address_has_a_budget_across_accounts, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.code_failures_per_address_per_day = 3).await;
    let mut last = None;
    for who in ["first@example.com", "second@example.com"] {
        let person = Person::sign_up(&server, who).await;
        let r = person.call("POST", "/v1/me/email_addresses", &[("email_address", "target@example.com")]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let email_id = r.body["response"]["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/me/email_addresses/{email_id}/attempt_verification");
        let guesses = if who.starts_with("first") { 3 } else { 0 };
        for _ in 0..guesses {
            assert_eq!(person.call("POST", &path, &[("code", "000000")]).await.error_code(), "form_code_incorrect");
        }
        last = Some((person, path));
    }
    let (second, path) = last.unwrap();
    let code = server.code_for("target@example.com").await;
    let r = second.call("POST", &path, &[("code", &code)]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "verification_failed"), "{}", r.text);
});

// ---- 4. growing delays, alike for every identifier -----------------------------------------------

both_backends!(wrong_passwords_slow_down_known_and_unknown_identifiers_alike, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "slow@example.com", PASSWORD).await;
    let mut answers = Vec::new();
    for address in ["slow@example.com", "ghost@example.com"] {
        let b = server.browser();
        for i in 0..5 {
            let r = server.sign_in(&b, address, "wrong password here").await;
            assert_eq!(r.error_code(), "form_password_incorrect", "{address} attempt {i}");
        }
        let waited = server.sign_in(&b, address, PASSWORD).await;
        assert_eq!(waited.status, StatusCode::TOO_MANY_REQUESTS, "{address}: {}", waited.text);
        let retry = waited.headers["retry-after"].to_str().unwrap().to_owned();
        server.clock.advance_ms(1_000);
        let next = server.sign_in(&b, address, "wrong again, sorry").await;
        assert_eq!(next.error_code(), "form_password_incorrect", "{address}: the delay is over");
        let longer = server.sign_in(&b, address, PASSWORD).await;
        answers.push((retry, longer.status, longer.headers["retry-after"].to_str().unwrap().to_owned()));
    }
    assert_eq!(answers[0], ("1".into(), StatusCode::TOO_MANY_REQUESTS, "2".into()), "the delay doubles");
    assert_eq!(answers[0], answers[1], "an unknown identifier is slowed down exactly like a known one");
    server.clock.advance_ms(2_000);
    let b = server.browser();
    assert_eq!(server.sign_in(&b, "slow@example.com", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        server.sign_in(&server.browser(), "slow@example.com", "wrong password here").await.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a success forgets the failures"
    );
});

// ---- 5. session fixation -------------------------------------------------------------------------

fn cookie_value(r: &Reply, name: &str) -> Option<String> {
    r.set_cookies()
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")).map(|v| v.split(';').next().unwrap_or("").to_owned()))
}

/// A cookie-less HTTP client that sends the client token it is given, like a browser whose
/// cookie was planted by a sibling subdomain.
async fn with_client_cookie(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Reply {
    let b = Browser { base: server.url.clone(), http: reqwest::Client::new() };
    let req = match method {
        "GET" => b.http.get(b.url(path)),
        _ => b.http.post(b.url(path)).form(form),
    };
    b.send(req.header("cookie", format!("__client={token}"))).await
}

both_backends!(a_completed_sign_in_or_sign_up_replaces_the_client_token, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "fixed@example.com", PASSWORD).await;
    // The attacker makes a client and plants its token in the victim's browser.
    let planted = cookie_value(&server.browser().post("/v1/client", &[]).await, "__client").unwrap();
    let r = with_client_cookie(
        &server,
        &planted,
        "POST",
        "/v1/client/sign_ins",
        &[("identifier", "fixed@example.com"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let fresh = cookie_value(&r, "__client").expect("a completed sign-in hands out a new client token");
    assert_ne!(fresh, planted);
    let attacker = with_client_cookie(&server, &planted, "GET", "/v1/client", &[]).await;
    assert_eq!(attacker.body["response"], Value::Null, "the planted token holds nothing: {}", attacker.text);
    let victim = with_client_cookie(&server, &fresh, "GET", "/v1/client", &[]).await;
    assert_eq!(victim.body["response"]["sessions"].as_array().map(Vec::len), Some(1), "{}", victim.text);

    // The same at sign-up, when the code completes it.
    let planted = cookie_value(&server.browser().post("/v1/client", &[]).await, "__client").unwrap();
    let r = with_client_cookie(
        &server,
        &planted,
        "POST",
        "/v1/client/sign_ups",
        &[("email_address", "newcomer@example.com"), ("password", PASSWORD)],
    )
    .await;
    let sign_up = id_of(&r);
    let code = server.code_for("newcomer@example.com").await;
    let r = with_client_cookie(
        &server,
        &planted,
        "POST",
        &format!("/v1/client/sign_ups/{sign_up}/attempt_verification"),
        &[("strategy", "email_code"), ("code", &code)],
    )
    .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    assert!(cookie_value(&r, "__client").is_some_and(|t| t != planted));
    let attacker = with_client_cookie(&server, &planted, "GET", "/v1/client", &[]).await;
    assert_eq!(attacker.body["response"], Value::Null);
});

/// Native apps hold the client token themselves: the new one comes in `Authorization`.
#[tokio::test]
async fn a_native_client_gets_its_new_token_in_authorization() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.sign_up(&server.browser(), "native@example.com", PASSWORD).await;
    let b = Browser { base: server.url.clone(), http: reqwest::Client::new() };
    let made = b.send(b.http.post(b.url("/v1/client?_is_native=1"))).await;
    let first = made.headers["authorization"].to_str().unwrap().to_owned();
    let r = b
        .send(
            b.http
                .post(b.url("/v1/client/sign_ins?_is_native=1"))
                .bearer_auth(&first)
                .form(&[("identifier", "native@example.com"), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let second = r.headers["authorization"].to_str().unwrap().to_owned();
    assert_ne!(first, second);
    let old = b.send(b.http.get(b.url("/v1/client?_is_native=1")).bearer_auth(&first)).await;
    assert_eq!(old.body["response"], Value::Null);
    let new = b.send(b.http.get(b.url("/v1/client?_is_native=1")).bearer_auth(&second)).await;
    assert_eq!(new.body["response"]["sessions"].as_array().map(Vec::len), Some(1));
}

// ---- 8. mail budgets -----------------------------------------------------------------------------

both_backends!(mail_sending_actions_are_limited_per_user_and_per_ip, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.rate_limits.mail_per_user_per_hour = 3;
        c.rate_limits.mail_per_ip_per_hour = 8;
    })
    .await;
    let ada = Person::sign_up(&server, "ada@example.com").await; // IP: 1 mail (the sign-up code)
    for i in 0..3 {
        let address = format!("extra{i}@example.com");
        let r = ada.call("POST", "/v1/me/email_addresses", &[("email_address", &address)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // The user's budget is spent: an invitation (which mails) is refused like another address.
    let refused = ada.call("POST", "/v1/me/email_addresses", &[("email_address", "extra3@example.com")]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text);
    let org = ada.call("POST", "/v1/organizations", &[("name", "Spam & Co")]).await;
    let org_id = org.body["response"]["id"].as_str().unwrap().to_owned();
    let invite = ada
        .call("POST", &format!("/v1/organizations/{org_id}/invitations"), &[("email_address", "victim@example.com")])
        .await;
    assert_eq!(invite.status, StatusCode::TOO_MANY_REQUESTS, "{}", invite.text);
    assert!(
        server.mail_to("extra3@example.com").await.is_empty() && server.mail_to("victim@example.com").await.is_empty()
    );
    // The IP's budget: 1 + 3 (+1 refused, counted) mails so far; sign-ups from the same
    // address spend the rest.
    let mut created = 0;
    for i in 0..10 {
        let r = server
            .browser()
            .post("/v1/client/sign_ups", &[("email_address", &format!("new{i}@example.com")), ("password", PASSWORD)])
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        created += 1;
    }
    assert!(created < 10, "sign-ups from one IP stop mailing");
    server.clock.advance_ms(3_600_000);
    let r = ada.call("POST", "/v1/me/email_addresses", &[("email_address", "later@example.com")]).await;
    assert_eq!(r.status, StatusCode::OK, "a new hour: {}", r.text);
});

// ---- 9. codes at rest ----------------------------------------------------------------------------

async fn stored_mail_events(server: &TestServer) -> i64 {
    let (url, _) = server.shared_storage();
    let sql = "SELECT count(*) FROM webhook_messages WHERE event_type = 'email.created'";
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

both_backends!(mail_bodies_are_stored_only_for_a_subscribed_endpoint, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.webhooks.enabled = false;
        c.webhooks.require_https = Some(false);
    })
    .await;
    server.sign_up(&server.browser(), "quiet@example.com", PASSWORD).await;
    server.mail_settled().await;
    assert_eq!(stored_mail_events(&server).await, 0, "no endpoint: the code mail is not kept");
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "test").await.unwrap();
    let b = server.browser();
    let users_only = json!({"url": "http://hooks.example.com/users", "events": ["user.created"]});
    let r = b.send(b.http.post(b.url("/v1/webhooks/endpoints")).bearer_auth(&key).json(&users_only)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    server.sign_up(&server.browser(), "still-quiet@example.com", PASSWORD).await;
    server.mail_settled().await;
    assert_eq!(stored_mail_events(&server).await, 0, "an endpoint that does not take email.created");
    let mail = json!({"url": "http://hooks.example.com/mail", "events": ["email.created"]});
    let r = b.send(b.http.post(b.url("/v1/webhooks/endpoints")).bearer_auth(&key).json(&mail)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    server.sign_up(&server.browser(), "heard@example.com", PASSWORD).await;
    server.mail_settled().await;
    assert_eq!(stored_mail_events(&server).await, 1, "a subscriber gets (and so the outbox keeps) the mail");
});

// ---- 10. file modes ------------------------------------------------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let db = data.join("latchkey.db");
    let database_url = format!("sqlite://{}", db.display());
    let (dir, url) = (data.clone(), database_url.clone());
    let server = TestServer::start_with(Backend::Sqlite, move |c| {
        c.data_dir = dir;
        c.database_url = url.into();
    })
    .await;
    server.sign_up(&server.browser(), "files@example.com", PASSWORD).await;
    assert_eq!(mode(&data), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    drop(server);

    // An installation from before: world-readable files are made private at start.
    let old = tempfile::tempdir().unwrap();
    let data = old.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = data.join("latchkey.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (dir, url) = (data.clone(), format!("sqlite://{}", db.display()));
    let _server = TestServer::start_with(Backend::Sqlite, move |c| {
        c.data_dir = dir;
        c.database_url = url.into();
    })
    .await;
    assert_eq!((mode(&data), mode(&db)), (0o700, 0o600));
}

// ---- 11. forwarded addresses ---------------------------------------------------------------------

/// Requests through an authenticated Frontend API proxy that appends to `X-Forwarded-For`:
/// the browser's own claims (the left end) never change whose budget is spent.
#[tokio::test]
async fn the_client_address_is_the_one_the_proxy_added() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.per_ip_per_minute = 3).await;
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "proxy").await.unwrap();
    let b = Browser { base: server.url.clone(), http: reqwest::Client::new() };
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = b
            .send(
                b.http
                    .post(b.url("/v1/client/sign_ins"))
                    .header("clerk-proxy-url", "https://app.example.com/__clerk")
                    .header("clerk-secret-key", &key)
                    .header("x-forwarded-for", format!("10.9.9.{i}, 203.0.113.7"))
                    .form(&[("identifier", "someone@example.com")]),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS],
        "rotating the claimed address does not buy a new budget"
    );
}

#[test]
fn forwarded_hops_count_from_the_right_past_trusted_proxies() {
    use latchkey_api::forwarded_client;
    let trusted: Vec<std::net::IpAddr> = vec!["10.0.0.2".parse().unwrap()];
    let xff = ["6.6.6.6, 198.51.100.4, 192.0.2.9"];
    let pick = |hops| forwarded_client(xff.iter().copied(), &trusted, hops).map(|ip| ip.to_string());
    assert_eq!(pick(1).as_deref(), Some("192.0.2.9"), "the address the nearest proxy added");
    assert_eq!(pick(2).as_deref(), Some("198.51.100.4"), "behind a CDN and a load balancer");
    let through_trusted = ["6.6.6.6, 198.51.100.4, 10.0.0.2"];
    assert_eq!(
        forwarded_client(through_trusted.iter().copied(), &trusted, 1).map(|ip| ip.to_string()).as_deref(),
        Some("198.51.100.4"),
        "a trusted proxy's own address is skipped"
    );
    assert_eq!(forwarded_client(["garbage"].iter().copied(), &trusted, 1), None);
}

// ---- 12. the smaller ones ------------------------------------------------------------------------

both_backends!(the_password_path_counts_each_attempt_once_against_the_identifier, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.per_identifier_per_minute = 4).await;
    let b = server.browser();
    for i in 0..4 {
        let r = server.sign_in(&b, "counted@example.com", "wrong password here").await;
        assert_eq!(r.error_code(), "form_password_incorrect", "attempt {i} of the configured 4: {}", r.text);
    }
    let r = server.sign_in(&b, "counted@example.com", "wrong password here").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
});

#[tokio::test]
async fn a_malformed_imported_digest_is_refused_with_its_parameter() {
    let server = TestServer::start(Backend::Sqlite).await;
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "test").await.unwrap();
    let b = server.browser();
    let create = |body: Value| b.send(b.http.post(b.url("/v1/users")).bearer_auth(&key).json(&body));
    for digest in ["$argon2id$garbage", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ", "not a digest"] {
        let r = create(
            json!({"email_address": ["import@example.com"], "password_digest": digest, "password_hasher": "argon2id"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{digest}: {}", r.text);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], "password_digest", "{}", r.text);
    }
    let good = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$rRO3ru1FDb2CgbA6C7Q8zcK6S8DQjdD5ybxaoYvK4WI";
    let r = create(
        json!({"email_address": ["import@example.com"], "password_digest": good, "password_hasher": "argon2id"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let update = b
        .send(
            b.http
                .patch(b.url(&format!("/v1/users/{id}")))
                .bearer_auth(&key)
                .json(&json!({"password_digest": "$argon2id$garbage", "password_hasher": "argon2id"})),
        )
        .await;
    assert_eq!(update.status, StatusCode::UNPROCESSABLE_ENTITY, "an update is checked the same way: {}", update.text);
}

both_backends!(sync_pushes_are_rate_limited_and_spaces_have_a_quota, |backend| async move {
    use crate::sync::{del, feed, Device};
    let server = TestServer::start_with(backend, |c| {
        c.sync.pushes_per_minute = 3;
        c.sync.max_space_bytes = 250;
    })
    .await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let stamp = |n: u32| format!("{}-{n}", latchkey_core::Clock::now_ms(&server.clock));
    let statuses = |r: &Reply| -> Vec<String> {
        r.body["results"].as_array().unwrap().iter().map(|x| x["status"].as_str().unwrap().to_owned()).collect()
    };
    // Each feed takes about 95 bytes as stored: the third crosses the quota (a soft one: taken).
    let r = phone
        .push(vec![feed("feed_1", 90, &stamp(1)), feed("feed_2", 90, &stamp(2)), feed("feed_3", 90, &stamp(3))])
        .await;
    assert_eq!(statuses(&r), ["applied", "applied", "applied"], "{}", r.text);
    let r = phone.push(vec![feed("feed_4", 90, &stamp(4)), del("me", "feeds", "feed_1", &stamp(5))]).await;
    assert_eq!(statuses(&r), ["rejected", "applied"], "{}", r.text);
    assert_eq!(r.body["results"][0]["reason"]["code"], "space_quota_exceeded");
    // The third push this minute; the fourth is refused whole.
    let r = phone.push(vec![feed("feed_4", 90, &stamp(6))]).await;
    assert_eq!(r.status, StatusCode::OK);
    let refused = phone.push(vec![feed("feed_5", 90, &stamp(7))]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text);
    assert!(refused.headers.contains_key("retry-after"));
    server.clock.advance_ms(60_000);
    let r = phone.push(vec![del("me", "feeds", "feed_2", &stamp(8)), del("me", "feeds", "feed_3", &stamp(9))]).await;
    assert_eq!(statuses(&r), ["applied", "applied"], "deletes are always taken");
    let r = phone.push(vec![feed("feed_5", 90, &stamp(10))]).await;
    assert_eq!(statuses(&r), ["applied"], "room again after deletes: {}", r.text);
});

// ---- found by the attacker's review of the fixes above ------------------------------------------

// Attempts are counted before the factor is checked: parallel guesses cannot all pass one
// check of the growing delay.
both_backends!(parallel_wrong_passwords_get_no_more_than_the_free_attempts, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "parallel@example.com", PASSWORD).await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let b = server.browser();
        attempts.spawn(async move {
            let form =
                [("identifier", "parallel@example.com"), ("strategy", "password"), ("password", "a wrong password")];
            b.post("/v1/client/sign_ins", &form).await.status
        });
    }
    let statuses = attempts.join_all().await;
    let guessed = statuses.iter().filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY).count();
    let held = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((guessed, held), (5, 5), "{statuses:?}");
});

// A stranger's failures slow the stranger: the owner's own device, and the owner from
// another address, still sign in.
both_backends!(a_strangers_failures_do_not_keep_the_owner_out, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), "owner@example.com", PASSWORD).await;
    let device = server.browser();
    assert_eq!(server.sign_in(&device, "owner@example.com", PASSWORD).await.status, StatusCode::OK);
    let sid = device.get("/v1/client").await.body["response"]["last_active_session_id"].as_str().unwrap().to_owned();
    device.post(&format!("/v1/client/sessions/{sid}/end"), &[]).await;
    let stranger = server.browser();
    for _ in 0..6 {
        server.sign_in(&stranger, "owner@example.com", "a wrong password").await;
    }
    assert_eq!(server.sign_in(&stranger, "owner@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        server.sign_in(&device, "owner@example.com", PASSWORD).await.status,
        StatusCode::OK,
        "the device the owner signed in on before is not held back"
    );
    // The owner on a new device elsewhere (through the app's proxy, which names the address).
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "proxy").await.unwrap();
    let via = |ip: &'static str, password: &'static str| {
        let b = Browser { base: server.url.clone(), http: reqwest::Client::new() };
        let key = key.clone();
        async move {
            b.send(
                b.http
                    .post(b.url("/v1/client/sign_ins"))
                    .header("clerk-proxy-url", "https://app.example.com/__clerk")
                    .header("clerk-secret-key", key)
                    .header("x-forwarded-for", ip)
                    .form(&[("identifier", "owner@example.com"), ("password", password)]),
            )
            .await
            .status
        }
    };
    for _ in 0..6 {
        via("198.51.100.7", "a wrong password").await;
    }
    assert_eq!(via("198.51.100.7", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(via("203.0.113.9", PASSWORD).await, StatusCode::OK, "another address is not held back");
});

// Whoever holds a session cannot guess the current password at request speed.
both_backends!(password_change_guesses_are_slowed_down, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "changer@example.com").await;
    let ada = &ada;
    let change = |current: &'static str| async move {
        let form = [("current_password", current), ("new_password", "another fine passphrase")];
        ada.call("POST", "/v1/me/change_password", &form).await
    };
    for _ in 0..5 {
        assert_eq!(change("a wrong password").await.error_code(), "form_password_incorrect");
    }
    assert_eq!(change("a wrong password").await.status, StatusCode::TOO_MANY_REQUESTS);
    server.clock.advance_ms(1_000);
    assert_eq!(change(PASSWORD).await.status, StatusCode::OK, "the right one after the delay");
});

/// On https latchkey sets `__Host-client`; a plain `__client` (which a sibling subdomain can
/// set) is not read at all.
#[tokio::test]
async fn on_https_a_plain_client_cookie_is_ignored() {
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.public_url = Some("https://auth.example.com".into())).await;
    let made = server.browser().post("/v1/client", &[]).await;
    let token = cookie_value(&made, "__Host-client").expect("the __Host- cookie");
    let b = Browser { base: server.url.clone(), http: reqwest::Client::new() };
    let with = |cookie: String| b.send(b.http.get(b.url("/v1/client")).header("cookie", cookie));
    assert_eq!(
        with(format!("__client={token}")).await.body["response"],
        Value::Null,
        "a planted __client counts for nothing"
    );
    assert!(with(format!("__Host-client={token}")).await.body["response"]["id"].is_string());
}
