//! The revocation feed (docs/revocations.md): a guard that follows it refuses a still-unexpired
//! token once its session is revoked, its user banned, its membership removed or its role
//! changed (a fresh token with the new role passes); the catch-up endpoint answers only a
//! secret key; and a guard whose server restarted catches up from its cursor, missing nothing
//! that happened while it was away.

use std::sync::Arc;
use std::time::Duration;

use latchkey_axum::{FeedFailure, Guard, GuardConfig, KeySource};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Backend, Browser, TestServer};
use crate::process::{start, start_listening};

/// The Backend API with a secret key.
struct Api {
    b: Browser,
    key: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.b.http.request(method, self.b.url(path)).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = self.b.send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        r.body
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// A user with a session, and a token of it (in `org` when given).
    async fn signed_in(&self, email: &str) -> (String, String) {
        let user = self.post("/v1/users", json!({"email_address": [email]})).await;
        let session = self.post("/v1/sessions", json!({"user_id": user["id"]})).await;
        (user["id"].as_str().unwrap().to_owned(), session["id"].as_str().unwrap().to_owned())
    }

    async fn token(&self, session_id: &str) -> String {
        let t = self.post(&format!("/v1/sessions/{session_id}/tokens"), json!({})).await;
        t["jwt"].as_str().unwrap().to_owned()
    }
}

/// Waits (within a generous deadline) until the guard refuses the token as revoked.
pub(crate) async fn refused_soon(guard: &Guard, token: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match guard.verify(token).await {
            Err(latchkey_token::VerifyError::Revoked) => return,
            Err(other) => panic!("{what}: refused for another reason: {other}"),
            Ok(_) if tokio::time::Instant::now() > deadline => panic!("{what}: the token is still accepted"),
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

pub(crate) async fn connected(guard: &Guard) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !guard.revocation_status().connected {
        assert!(tokio::time::Instant::now() < deadline, "the guard did not connect: {:?}", guard.revocation_status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn guards_hear_of_revocations_while_tokens_are_unexpired(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.services.create_secret_key(&latchkey::operator(), "verifier").await.unwrap().1;
    let api = Api { b: Browser::new(&server.url), key: key.clone() };
    let mut config = GuardConfig::new(KeySource::Issuer(server.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    let guard = Guard::new(config).unwrap();
    let feed = guard.follow_revocations(key.clone(), FeedFailure::Open).unwrap();
    connected(&guard).await;

    // A session revoked.
    let (_, ada_session) = api.signed_in("ada@example.com").await;
    let ada_token = api.token(&ada_session).await;
    assert!(guard.verify(&ada_token).await.is_ok());
    api.post(&format!("/v1/sessions/{ada_session}/revoke"), json!({})).await;
    refused_soon(&guard, &ada_token, "a revoked session").await;

    // A user banned: every session's token.
    let (bob, bob_session) = api.signed_in("bob@example.com").await;
    let bob_token = api.token(&bob_session).await;
    assert!(guard.verify(&bob_token).await.is_ok());
    api.post(&format!("/v1/users/{bob}/ban"), json!({})).await;
    refused_soon(&guard, &bob_token, "a banned user").await;

    // A role changed: the token with the old role is refused, a new one with the new role passes;
    // then the membership removed: no token for that organization passes.
    let (carol, _) = api.signed_in("carol@example.com").await;
    let org = api.post("/v1/organizations", json!({"name": "Carol's", "created_by": carol})).await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    let session = api.post("/v1/sessions", json!({"user_id": carol, "active_organization_id": org_id})).await;
    let carol_session = session["id"].as_str().unwrap().to_owned();
    let admin_token = api.token(&carol_session).await;
    assert_eq!(guard.verify(&admin_token).await.unwrap().org_role(), Some("org:admin"));
    let (dan, _) = api.signed_in("dan@example.com").await;
    let path = format!("/v1/organizations/{org_id}/memberships");
    api.post(&path, json!({"user_id": dan, "role": "org:admin"})).await;
    api.call(reqwest::Method::PATCH, &format!("{path}/{carol}"), Some(json!({"role": "org:member"}))).await;
    refused_soon(&guard, &admin_token, "a changed role").await;
    // Tokens carry whole seconds: the next second's token is surely after the change.
    server.clock.advance_ms(1_000);
    let member_token = api.token(&carol_session).await;
    assert_eq!(guard.verify(&member_token).await.unwrap().org_role(), Some("org:member"), "the new role passes");
    api.call(reqwest::Method::DELETE, &format!("{path}/{carol}"), None).await;
    refused_soon(&guard, &member_token, "a removed membership").await;

    // The catch-up endpoint lists what happened, and only to a secret key.
    let listed = api.call(reqwest::Method::GET, "/v1/revocations", None).await;
    let reasons: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
    for reason in ["revoked", "banned", "role_changed", "removed"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
    let cursor = listed["cursor"].as_i64().unwrap();
    let later = api.call(reqwest::Method::GET, &format!("/v1/revocations?since={}", cursor + 60_000), None).await;
    assert_eq!(later["data"], json!([]), "nothing after the cursor: {later}");
    let anonymous = api.b.get("/v1/revocations").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{}", anonymous.text);
    let stranger = api.b.send(api.b.http.get(api.b.url("/v1/revocations/stream")).bearer_auth("sk_live_nope")).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED, "{}", stranger.text);

    // Entries fall off once every token they affect has expired.
    let status = guard.revocation_status();
    assert!(status.entries >= 4 && status.refused >= 4, "{status:?}");
    feed.abort();
}

crate::both_backends!(guard_follows_the_feed, guards_hear_of_revocations_while_tokens_are_unexpired);

/// The real binary stopped and started again on its port: the guard reconnects from its cursor
/// and refuses a token whose session was revoked while it was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_catches_up_after_the_server_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let key = server.secret_key();
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let api = Api { b: Browser::new(&server.url), key: key.clone() };
    let guard = Guard::new(GuardConfig::new(KeySource::Issuer(server.url.clone()))).unwrap();
    let feed = guard.follow_revocations(key.clone(), FeedFailure::Open).unwrap();
    connected(&guard).await;
    let (_, session) = api.signed_in("ada@example.com").await;
    let token = api.token(&session).await;
    assert!(guard.verify(&token).await.is_ok());

    let (status, _) = server.stop().await;
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while guard.revocation_status().connected {
        assert!(tokio::time::Instant::now() < deadline, "the guard saw the stream end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Signatures alone while the feed is away (fail open).
    assert!(guard.verify(&token).await.is_ok());

    let server = start_listening(dir.path(), &format!("127.0.0.1:{port}"), &[]).await;
    // Revoked at once, before the guard is back: it must find it from its cursor.
    api.post(&format!("/v1/sessions/{session}/revoke"), json!({})).await;
    refused_soon(&guard, &token, "a session revoked while the guard was away").await;
    let status = guard.revocation_status();
    assert!(status.disconnects >= 1, "{status:?}");
    feed.abort();
    server.stop().await;
}

/// A guard told to fail closed refuses every token while the feed is unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_that_fails_closed_refuses_while_the_feed_is_away() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.services.create_secret_key(&latchkey::operator(), "verifier").await.unwrap().1;
    let api = Api { b: Browser::new(&server.url), key };
    let (_, session) = api.signed_in("ada@example.com").await;
    let token = api.token(&session).await;
    let mut config = GuardConfig::new(KeySource::Issuer(server.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    let guard = Guard::new(config).unwrap();
    // A key the feed refuses: it never connects.
    let feed = guard.follow_revocations("sk_live_wrong", FeedFailure::Closed).unwrap();
    assert!(matches!(guard.verify(&token).await, Err(latchkey_token::VerifyError::Revoked)));
    assert!(!guard.revocation_status().connected);
    feed.abort();
    let open = Guard::new({
        let mut c = GuardConfig::new(KeySource::Issuer(server.url.clone()));
        c.clock = Arc::new(server.clock.clone());
        c
    })
    .unwrap();
    let feed = open.follow_revocations("sk_live_wrong", FeedFailure::Open).unwrap();
    assert!(open.verify(&token).await.is_ok(), "fail open: signatures alone");
    feed.abort();
}

/// Two instances on one PostgreSQL database: a guard following one hears of a session revoked
/// through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_carries_every_instances_revocations() {
    let first = TestServer::start(Backend::Postgres).await;
    let (database_url, data_dir) = first.shared_storage();
    let second = TestServer::start_with(Backend::Postgres, move |c| {
        c.database_url = database_url.into();
        c.data_dir = data_dir;
    })
    .await;
    let key = first.services.create_secret_key(&latchkey::operator(), "verifier").await.unwrap().1;
    let at_first = Api { b: Browser::new(&first.url), key: key.clone() };
    let at_second = Api { b: Browser::new(&second.url), key: key.clone() };
    let mut config = GuardConfig::new(KeySource::Issuer(first.url.clone()));
    config.clock = Arc::new(first.clock.clone());
    let guard = Guard::new(config).unwrap();
    let feed = guard.follow_revocations(key, FeedFailure::Open).unwrap();
    connected(&guard).await;
    let (_, session) = at_first.signed_in("ada@example.com").await;
    let token = at_first.token(&session).await;
    assert!(guard.verify(&token).await.is_ok());
    at_second.post(&format!("/v1/sessions/{session}/revoke"), json!({})).await;
    refused_soon(&guard, &token, "a session revoked on the other instance").await;
    feed.abort();
}

/// `latchkey proxy` with a secret key follows the feed: a request with a revoked session's
/// still-unexpired token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_refuses_a_revoked_sessions_token() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.services.create_secret_key(&latchkey::operator(), "proxy").await.unwrap().1;
    let api = Api { b: Browser::new(&server.url), key: key.clone() };
    let upstream = crate::proxy::Upstream::start();
    let rules = latchkey::proxy::ProxyRules {
        upstream: Some(upstream.url.clone()),
        issuer: Some(server.url.clone()),
        ..Default::default()
    };
    let guard = latchkey::proxy::guard_for(&rules, &server.url, &Default::default()).unwrap();
    let feed = guard.follow_revocations(key, FeedFailure::Open).unwrap();
    connected(&guard).await;
    let proxy = Arc::new(latchkey::proxy::Proxy::new(rules, guard, &Default::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = latchkey::proxy::serve(listener, proxy, std::future::pending()).await;
    });

    let (_, session) = api.signed_in("ada@example.com").await;
    let token = api.token(&session).await;
    let b = Browser::new(&proxy_url);
    let through = b.send(b.http.get(b.url("/items")).bearer_auth(&token)).await;
    assert_eq!(through.status, StatusCode::OK, "{}", through.text);
    api.post(&format!("/v1/sessions/{session}/revoke"), json!({})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = b.send(b.http.get(b.url("/items")).bearer_auth(&token)).await;
        if r.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(tokio::time::Instant::now() < deadline, "the proxy still forwards the revoked session's token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    feed.abort();
}

/// A verifier key reads the feed (and a guard follows it with one) but administers nothing;
/// revoked, it reads nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_key_reads_the_feed_and_nothing_else() {
    let server = TestServer::start(Backend::Sqlite).await;
    let operator = latchkey::operator();
    let key = server.services.create_secret_key(&operator, "admin").await.unwrap().1;
    let (row, verifier) = server.services.create_verifier_key(&operator, "api backend").await.unwrap();
    assert!(verifier.starts_with("vk_live_") && row.id.starts_with("vk_"), "{} {}", row.id, verifier);
    let api = Api { b: Browser::new(&server.url), key };
    let as_verifier = |path: &str| {
        let b = &api.b;
        b.send(b.http.get(b.url(path)).bearer_auth(&verifier))
    };
    assert_eq!(as_verifier("/v1/revocations").await.status, StatusCode::OK);
    let users = as_verifier("/v1/users").await;
    assert_eq!(users.status, StatusCode::UNAUTHORIZED, "a verifier key administers nothing: {}", users.text);

    let mut config = GuardConfig::new(KeySource::Issuer(server.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    let guard = Guard::new(config).unwrap();
    let feed = guard.follow_revocations(verifier.clone(), FeedFailure::Open).unwrap();
    connected(&guard).await;
    let (_, session) = api.signed_in("ada@example.com").await;
    let token = api.token(&session).await;
    assert!(guard.verify(&token).await.is_ok());
    api.post(&format!("/v1/sessions/{session}/revoke"), json!({})).await;
    refused_soon(&guard, &token, "a session revoked, heard with a verifier key").await;
    feed.abort();

    server.services.revoke_secret_key(&operator, &row.id).await.unwrap();
    assert_eq!(as_verifier("/v1/revocations").await.status, StatusCode::UNAUTHORIZED, "revoked");
}

/// More entries within the overlap window than a page holds (a mass revocation): the catch-up
/// pages through them all and ends, and a following guard hears every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_revocation_pages_through_and_reaches_every_follower() {
    let server = TestServer::start(Backend::Sqlite).await;
    let key = server.services.create_secret_key(&latchkey::operator(), "verifier").await.unwrap().1;
    let mut config = GuardConfig::new(KeySource::Issuer(server.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    let guard = Guard::new(config).unwrap();
    let feed = guard.follow_revocations(key.clone(), FeedFailure::Open).unwrap();
    connected(&guard).await;

    let now = latchkey_core::Clock::now_ms(&server.clock);
    const ENTRIES: i64 = 2_500;
    for i in 0..ENTRIES {
        let entry = latchkey_core::revocation::Revocation {
            id: String::new(),
            kind: "session".into(),
            subject: format!("sess_mass{i}"),
            organization_id: None,
            role: None,
            reason: "revoked".into(),
            at: now + i / 2,
            expires_at: now + 120_000,
        };
        server.store.record_revocation(&format!("rev_mass{i}"), &entry).await.unwrap();
    }

    let api = Api { b: Browser::new(&server.url), key };
    let (mut ids, mut cursor, mut pages) = (std::collections::HashSet::new(), None::<i64>, 0);
    loop {
        let path = cursor.map_or("/v1/revocations".to_owned(), |c| format!("/v1/revocations?since={c}"));
        let page = api.call(reqwest::Method::GET, &path, None).await;
        ids.extend(page["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        cursor = page["cursor"].as_i64();
        pages += 1;
        assert!(pages < 20, "the catch-up keeps answering the same page");
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(ids.iter().filter(|id| id.starts_with("rev_mass")).count(), ENTRIES as usize);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while guard.revocation_status().entries < ENTRIES as usize {
        assert!(tokio::time::Instant::now() < deadline, "the guard heard {:?}", guard.revocation_status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    feed.abort();
}

/// A TCP relay between a guard and the server that can go silent on the connections it holds
/// (a half-open socket: nothing arrives, nothing is closed) while the server stays up and new
/// connections pass.
struct Relay {
    url: String,
    /// Connections opened before this count go silent.
    silenced_below: Arc<std::sync::atomic::AtomicU64>,
    opened: Arc<std::sync::atomic::AtomicU64>,
    target: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
}

impl Relay {
    async fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let relay =
            Relay { url, silenced_below: Default::default(), opened: Default::default(), target: Default::default() };
        let (silenced_below, opened, target) =
            (relay.silenced_below.clone(), relay.opened.clone(), relay.target.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let number = opened.fetch_add(1, Ordering::SeqCst);
                let Some(addr) = target.get().copied() else { continue };
                let Ok(outbound) = tokio::net::TcpStream::connect(addr).await else { continue };
                let silenced_below = silenced_below.clone();
                let live = move || silenced_below.load(Ordering::SeqCst) <= number;
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                let up_live = live.clone();
                tokio::spawn(async move { pipe(&mut in_read, &mut out_write, up_live).await });
                tokio::spawn(async move { pipe(&mut out_read, &mut in_write, live).await });
            }
        });
        relay
    }

    /// Every connection open now stops carrying bytes, and stays open.
    fn silence_open_connections(&self) {
        use std::sync::atomic::Ordering;
        self.silenced_below.store(self.opened.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Copies until either end closes; once `live` says no, holds both ends open and copies nothing.
async fn pipe(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    live: impl Fn() -> bool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else { return };
        if n == 0 {
            return;
        }
        if !live() {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// The stream's connection goes silent without closing while the server stays up (a NAT or a
/// load balancer dropping it): the guard takes the silence for a dead connection, opens a new
/// one and hears, from its cursor, of a session revoked while the old one was silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_reconnects_when_its_stream_goes_silent() {
    let relay = Relay::start().await;
    let relay_url = relay.url.clone();
    let server = TestServer::start_with(Backend::Sqlite, move |c| c.public_url = Some(relay_url)).await;
    relay.target.set(server.url.trim_start_matches("http://").parse().unwrap()).unwrap();
    let key = server.services.create_secret_key(&latchkey::operator(), "verifier").await.unwrap().1;
    let api = Api { b: Browser::new(&server.url), key: key.clone() };
    let mut config = GuardConfig::new(KeySource::Issuer(relay.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    config.revocation_silence = Duration::from_secs(1);
    let guard = Guard::new(config).unwrap();
    let feed = guard.follow_revocations(key, FeedFailure::Open).unwrap();
    connected(&guard).await;
    let (_, session) = api.signed_in("ada@example.com").await;
    let token = api.token(&session).await;
    assert!(guard.verify(&token).await.is_ok());

    relay.silence_open_connections();
    api.post(&format!("/v1/sessions/{session}/revoke"), json!({})).await;
    refused_soon(&guard, &token, "a session revoked while the stream was silent").await;
    let status = guard.revocation_status();
    assert!(status.disconnects >= 1, "the silent connection was given up: {status:?}");
    feed.abort();
}
