//! The second security review (docs/SECURITY.md), one test each: consent to membership and
//! private member addresses, IPv6 budgets per /64 and /48, unauthenticated growth (clients,
//! handshake nonces, abandoned attempts), metadata size on the Frontend API, organization sync
//! only from the app, live streams that follow access, and who may read `/metrics`. (The
//! proxy's path check is `proxy_paths.rs`; secrets in arguments and the metrics listener are
//! in `process.rs`.)

use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{Backend, Browser, Reply, TestServer};
use crate::orgs::Person;

const PASSWORD: &str = "correct horse battery staple";

async fn org_of(person: &Person, name: &str) -> String {
    let r = person.call("POST", "/v1/organizations", &[("name", name)]).await;
    r.body["response"]["id"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_owned()
}

fn identifiers(r: &Reply) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r.body["response"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.text))
        .iter()
        .map(|m| {
            let p = &m["public_user_data"];
            (p["user_id"].as_str().unwrap().to_owned(), p["identifier"].as_str().unwrap().to_owned())
        })
        .collect();
    v.sort();
    v
}

// ---- 2. membership by consent, addresses kept private ---------------------------------------------

both_backends!(members_join_by_their_own_consent_and_addresses_stay_private, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let org = org_of(&ada, "Family").await;

    // A user id never becomes a membership (nor an address) through the Frontend API.
    let added = ada.call("POST", &format!("/v1/organizations/{org}/memberships"), &[("user_id", &bob.user_id)]).await;
    assert_eq!((added.status, added.error_code()), (StatusCode::FORBIDDEN, "not_allowed_access"), "{}", added.text);
    assert!(!added.text.contains("bob@example.com"));
    let bobs = bob.call("GET", "/v1/me/organization_memberships", &[]).await;
    assert_eq!(bobs.body["response"]["total_count"], 0, "bob is in nothing he did not choose");

    // An invitation to an address that signs up later is accepted by that sign-up.
    ada.call("POST", &format!("/v1/organizations/{org}/invitations"), &[("email_address", "cyd@example.com")]).await;
    let cyd = Person::sign_up(&server, "cyd@example.com").await;
    // The operator adds dan directly (the Backend API acts for them).
    let dan = Person::sign_up(&server, "dan@example.com").await;
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "ops").await.unwrap();
    let b = server.browser();
    let r = b
        .send(
            b.http
                .post(b.url(&format!("/v1/organizations/{org}/memberships")))
                .bearer_auth(&key)
                .json(&json!({"user_id": dan.user_id})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let members = |who: &Person| {
        let (b, sid) = (who.b.clone(), who.session_id.clone());
        let path = format!("/v1/organizations/{org}/memberships?_clerk_session_id={sid}");
        async move { b.get(&path).await }
    };
    let seen_by_ada = identifiers(&members(&ada).await);
    let mut expected = vec![
        (ada.user_id.clone(), "ada@example.com".to_owned()),
        (cyd.user_id.clone(), "cyd@example.com".to_owned()),
        (dan.user_id.clone(), String::new()),
    ];
    expected.sort();
    assert_eq!(seen_by_ada, expected, "the admin sees the address she invited, not one she never knew");
    let seen_by_cyd = identifiers(&members(&cyd).await);
    let mut expected = vec![
        (ada.user_id.clone(), String::new()),
        (cyd.user_id.clone(), "cyd@example.com".to_owned()),
        (dan.user_id.clone(), String::new()),
    ];
    expected.sort();
    assert_eq!(seen_by_cyd, expected, "a member sees only their own address");
});

// ---- 3. IPv6 budgets per /64, and per /48 at a larger budget --------------------------------------

async fn via_proxy_from(server: &TestServer, key: &str, ip: &str) -> StatusCode {
    let b = Browser { base: server.url.clone(), http: reqwest::Client::new() };
    b.send(
        b.http
            .post(b.url("/v1/client/sign_ins"))
            .header("clerk-proxy-url", "https://app.example.com/__clerk")
            .header("clerk-secret-key", key)
            .header("x-forwarded-for", ip)
            .form(&[("identifier", "someone@example.com")]),
    )
    .await
    .status
}

#[tokio::test]
async fn ipv6_addresses_share_the_budget_of_their_64_and_their_48() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.per_ip_per_minute = 3).await;
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "proxy").await.unwrap();
    let mut statuses = Vec::new();
    for host in 1..=4 {
        statuses.push(via_proxy_from(&server, &key, &format!("2001:db8:1:2::{host:x}")).await);
    }
    assert_eq!(statuses[..3], [StatusCode::OK; 3]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "rotating addresses inside one /64 buys nothing");
    // Rotating /64s of one /48: each /64 has its budget of 3, the /48 eight times that.
    let mut ok = 0;
    for subnet in 0..12 {
        for host in 1..=3 {
            if via_proxy_from(&server, &key, &format!("2001:db8:9:{subnet:x}::{host:x}")).await == StatusCode::OK {
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 3 * 8, "a /48 has eight /64s' budget");
    assert_eq!(via_proxy_from(&server, &key, "2001:db8:7::1").await, StatusCode::OK, "another /48 is not limited");
}

// ---- 4. unauthenticated growth ---------------------------------------------------------------------

pub async fn count(server: &TestServer, table: &str) -> i64 {
    let (url, _) = server.shared_storage();
    let sql = format!("SELECT count(*) FROM {table}");
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

both_backends!(strangers_cannot_grow_the_database, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.rate_limits.clients_per_ip_per_hour = 3).await;
    // Browsers without a cookie jar: every call is a stranger's first.
    let fresh = || {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { base: server.url.clone(), http }
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(fresh().post("/v1/client", &[]).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429].map(|s| StatusCode::from_u16(s).unwrap()));
    assert_eq!(count(&server, "clients").await, 3, "refused calls store nothing");

    // A cookie-less handshake answers signed out with a signed token and stores no nonce.
    let before = count(&server, "handshake_nonces").await;
    let target = format!("{}/after", server.url);
    let r = fresh().get(&format!("/v1/client/handshake?redirect_url={}", urlencode(&target))).await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT, "{}", r.text);
    assert_eq!(count(&server, "handshake_nonces").await, before);
    let back = url::Url::parse(r.headers["location"].to_str().unwrap()).unwrap();
    let token = back.query_pairs().find(|(k, _)| k == "__clerk_handshake").map(|(_, v)| v.into_owned()).unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    let directives: Vec<&str> = payload["handshake"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    assert!(directives.iter().any(|d| d.starts_with("__client_uat=0")), "{directives:?}");
    assert!(directives.iter().any(|d| d.starts_with("__session=;")), "{directives:?}");

    // Abandoned attempts and clients that never signed in are forgotten by the housekeeping;
    // a client with a session stays. (An hour later: a new budget of clients.)
    server.clock.advance_ms(3_600_000);
    let (user_id, _) = server.sign_up(&server.browser(), "stays@example.com", PASSWORD).await;
    let b = server.browser();
    b.post("/v1/client/sign_ins", &[("identifier", "nobody@example.com")]).await;
    server.clock.advance_ms(3 * 24 * 3_600_000);
    assert!(server.services.prune_abandoned().await.unwrap() >= 4);
    assert_eq!(count(&server, "sign_ins").await, 0);
    assert_eq!(count(&server, "sign_ups").await, 0);
    assert_eq!(count(&server, "clients").await, 1, "only the client that holds a session");
    let sessions = server.store.sessions_for_user(&user_id).await.unwrap();
    assert_eq!(sessions.len(), 1);
});

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- 5. metadata size everywhere -------------------------------------------------------------------

both_backends!(unsafe_metadata_has_the_backend_apis_limit_everywhere, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let big = json!({ "blob": "x".repeat(60_000) }).to_string();
    let r = ada.call("PATCH", "/v1/me", &[("unsafe_metadata", &big)]).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "form_param_exceeds_allowed_size"),
        "{}",
        r.text
    );
    assert_eq!(r.body["errors"][0]["meta"]["param_name"], "unsafe_metadata");
    let fits = json!({ "blob": "x".repeat(7_000) }).to_string();
    assert_eq!(ada.call("PATCH", "/v1/me", &[("unsafe_metadata", &fits)]).await.status, StatusCode::OK);
    let r = server
        .browser()
        .post(
            "/v1/client/sign_ups",
            &[("email_address", "big@example.com"), ("password", PASSWORD), ("unsafe_metadata", &big)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(server.mail_to("big@example.com").await.is_empty(), "nothing was started");
});

// ---- 6. organization sync only from the app ----------------------------------------------------------

both_backends!(a_cross_site_handshake_does_not_switch_the_organization, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let org = org_of(&ada, "Work").await;
    let active = || async {
        let r = ada.b.get("/v1/client").await;
        r.body["response"]["sessions"][0]["last_active_organization_id"].clone()
    };
    assert_eq!(active().await, Value::Null);
    let path =
        format!("/v1/client/handshake?redirect_url={}&organization_id={org}", urlencode(&format!("{}/x", server.url)));
    let handshake = |site: &'static str| {
        let (b, path) = (ada.b.clone(), path.clone());
        async move { b.send(b.http.get(b.url(&path)).header("sec-fetch-site", site)).await }
    };
    assert_eq!(handshake("cross-site").await.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(active().await, Value::Null, "a link on another site switches nothing");
    assert_eq!(handshake("same-site").await.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(active().await, json!(org), "the app's own navigation does");
});

// ---- 7. live streams follow access -------------------------------------------------------------------

/// Reads a stream until `needle` arrives; `false` if the stream ends first.
async fn read_until(res: &mut reqwest::Response, seen: &mut String, needle: &str) -> bool {
    read_until_count(res, seen, needle, 1).await
}

/// Reads a stream until `needle` has arrived `times` times; `false` if the stream ends first.
async fn read_until_count(res: &mut reqwest::Response, seen: &mut String, needle: &str, times: usize) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.matches(needle).count() < times {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(c))) => seen.push_str(&String::from_utf8_lossy(&c)),
            Ok(_) => return seen.matches(needle).count() >= times,
            Err(_) => panic!("nothing like {needle:?} within 30 s; got {seen:?}"),
        }
    }
    true
}

both_backends!(live_streams_close_or_narrow_when_access_ends, |backend| async move {
    use crate::sync::{feed, put, Device};
    let server = TestServer::start_with(backend, |c| c.sync.events_recheck_secs = 1).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let org = org_of(&ada, "Family").await;
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "ops").await.unwrap();
    let admin = server.browser();
    admin
        .send(
            admin
                .http
                .post(admin.url(&format!("/v1/organizations/{org}/memberships")))
                .bearer_auth(&key)
                .json(&json!({"user_id": bob.user_id})),
        )
        .await;
    let bob_device = Device::new(&bob, "bob-phone");
    let token = bob_device.token().await;
    let open = || bob.b.http.get(bob.b.url("/v1/sync/events")).bearer_auth(&token).send();
    let mut stream = open().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut seen = String::new();
    assert!(read_until(&mut stream, &mut seen, "ready").await);

    // Ada writes in the family's space: Bob hears of it.
    let mut ada_phone = Device::new(&ada, "ada-phone");
    let stamp = |n: u32| format!("{}-{n}", latchkey_core::Clock::now_ms(&server.clock));
    let baby = |id: &str, n| put(&org, "babies", id, json!({"name": "Noah"}), &stamp(n));
    assert_eq!(ada_phone.push(vec![baby("baby_1", 1)]).await.status, StatusCode::OK);
    assert!(read_until(&mut stream, &mut seen, &format!("\"space\":\"{org}\"")).await);

    // Removed from the family, Bob's open stream stops announcing it within one interval:
    // the next change of his own space is heard, the family's meanwhile is not.
    let removed = admin
        .send(
            admin
                .http
                .delete(admin.url(&format!("/v1/organizations/{org}/memberships/{}", bob.user_id)))
                .bearer_auth(&key),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    // Two keep-alives (an empty comment each idle interval) after the removal: at least one
    // check has run since.
    seen.clear();
    while seen.matches(":\n\n").count() < 2 {
        let more = seen.matches(":\n\n").count() + 1;
        assert!(read_until_count(&mut stream, &mut seen, ":\n\n", more).await, "{seen}");
    }
    seen.clear();
    assert_eq!(ada_phone.push(vec![baby("baby_2", 2)]).await.status, StatusCode::OK);
    let mut bob_phone = Device::new(&bob, "bob-own");
    assert_eq!(bob_phone.push(vec![feed("feed_1", 90, &stamp(3))]).await.status, StatusCode::OK);
    assert!(read_until(&mut stream, &mut seen, "\"space\":\"me\"").await);
    assert!(!seen.contains(&org), "no word of a family he left: {seen}");

    // Signed out, the stream ends with `ended`.
    let out = bob.b.post(&format!("/v1/client/sessions/{}/end", bob.session_id), &[]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(read_until(&mut stream, &mut seen, "event: ended").await, "{seen}");
});

#[tokio::test]
async fn a_session_holds_a_bounded_number_of_live_streams() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let token = crate::sync::Device::new(&ada, "x").token().await;
    let mut open = Vec::new();
    for _ in 0..5 {
        let r = ada.b.http.get(ada.b.url("/v1/sync/events")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        open.push(r);
    }
    let sixth = ada.b.http.get(ada.b.url("/v1/sync/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(open.pop());
    // The freed place is taken again once the server has seen the stream go.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let again = ada.b.http.get(ada.b.url("/v1/sync/events")).bearer_auth(&token).send().await.unwrap();
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the closed stream's place was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- 8. who may read /metrics --------------------------------------------------------------------------

#[tokio::test]
async fn metrics_need_a_token_outside_development() {
    let production =
        TestServer::start_with(Backend::Sqlite, |c| c.public_url = Some("https://auth.example.com".into())).await;
    assert_eq!(production.browser().get("/metrics").await.status, StatusCode::NOT_FOUND);
    let token = "a-long-random-metrics-token-0123456789";
    let with_token = TestServer::start_with(Backend::Sqlite, move |c| {
        c.public_url = Some("https://auth.example.com".into());
        c.metrics_token = Some(latchkey_core::secret::ConfigSecret::new(token));
    })
    .await;
    let b = with_token.browser();
    assert_eq!(b.get("/metrics").await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.send(b.http.get(b.url("/metrics")).bearer_auth("wrong-token")).await.status, StatusCode::NOT_FOUND);
    let ok = b.send(b.http.get(b.url("/metrics")).bearer_auth(token)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.text.contains("latchkey_database_up 1"));
    let dev = TestServer::start(Backend::Sqlite).await;
    assert_eq!(dev.browser().get("/metrics").await.status, StatusCode::OK, "development mode keeps it open");
}
