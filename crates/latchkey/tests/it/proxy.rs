//! `latchkey proxy` in front of a real upstream (a small Python `http.server` app): per-route
//! rules, identity headers (and spoofed ones removed), streamed bodies, server-sent events as
//! they are written, WebSocket upgrades, and an upstream that is down.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use latchkey::proxy::{guard_for, Proxy, ProxyRules, ReverificationRule, RouteRule};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, Browser, Reply, TestServer};
use crate::orgs::{server as org_server, Person};

pub(crate) struct Upstream {
    child: Child,
    pub(crate) url: String,
}

impl Upstream {
    pub(crate) fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/upstream.py");
        let mut child =
            Command::new("python3").arg(script).stdout(Stdio::piped()).spawn().expect("python3 runs the upstream");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        Self { child, url: format!("http://127.0.0.1:{}", line.trim()) }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_proxy(server: &TestServer, upstream: &str) -> String {
    let rules = ProxyRules {
        upstream: Some(upstream.to_owned()),
        issuer: Some(server.url.clone()),
        public: vec!["/health".into(), "/webhooks(.*)".into()],
        routes: vec![
            RouteRule { path: "/admin(.*)".into(), role: Some("org:admin".into()), ..Default::default() },
            RouteRule {
                path: "/orgs/:org_id/(.*)".into(),
                organization_param: Some("org_id".into()),
                ..Default::default()
            },
            RouteRule {
                path: "/invoices".into(),
                permission: Some("org:invoices:create".into()),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let guard = guard_for(&rules, &server.url, &Default::default()).unwrap();
    let proxy = Arc::new(Proxy::new(rules, guard, &Default::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = latchkey::proxy::serve(listener, proxy, std::future::pending()).await;
    });
    url
}

async fn get(proxy: &str, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let b = Browser::new(proxy);
    let mut req = b.http.get(b.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    b.send(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_applies_rules_and_forwards_identity() {
    let server = org_server(Backend::Sqlite).await;
    let upstream = Upstream::start();
    let proxy = start_proxy(&server, &upstream.url).await;

    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let org = ada.call("POST", "/v1/organizations", &[("name", "Acme")]).await.body["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = server.services.create_secret_key(&latchkey::operator(), "t").await.unwrap().1;
    let admin = Browser::new(&server.url);
    admin
        .send(
            admin
                .http
                .post(admin.url(&format!("/v1/organizations/{org}/memberships")))
                .bearer_auth(&key)
                .json(&json!({"user_id": bob.user_id})),
        )
        .await;
    let tok = |p: &Person| {
        let b = p.b.clone();
        let sid = p.session_id.clone();
        async move { b.token(&sid).await.body["jwt"].as_str().unwrap().to_owned() }
    };
    let bob_personal = tok(&bob).await;
    ada.select_org(&org).await;
    bob.select_org(&org).await;
    let (ada_t, bob_t) = (tok(&ada).await, tok(&bob).await);

    // Public: passes without a token, and spoofed identity headers never reach the upstream.
    // Underscored spellings too: CGI, WSGI and Rack read `X_Latchkey_User_Id` as ours.
    let spoofed = [
        ("x-latchkey-user-id", "user_evil"),
        ("x-latchkey-org-role", "org:admin"),
        ("x_latchkey_user_id", "user_evil"),
        ("X_Latchkey-Org_Id", "org_evil"),
        ("x-latchkey_org-permissions", "org:evil"),
    ];
    let public = get(&proxy, "/health", None, &spoofed).await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.text);
    let reached: Vec<&String> = public.body["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.replace('_', "-").starts_with("x-latchkey-"))
        .collect();
    assert!(reached.is_empty(), "spoofed identity headers reached the upstream: {reached:?}");

    // Signed out: 401 for API calls, 307 to sign in for pages.
    let anon = get(&proxy, "/items", None, &[]).await;
    assert_eq!(
        (anon.status, anon.error_code(), anon.content_type()),
        (StatusCode::UNAUTHORIZED, "authentication_invalid", "application/json")
    );
    let page = get(&proxy, "/items", None, &[("accept", "text/html")]).await;
    assert_eq!(page.status, StatusCode::TEMPORARY_REDIRECT);
    assert!(page.headers["location"].to_str().unwrap().starts_with(&format!("{}/sign-in?redirect_url=", server.url)));
    assert_eq!(get(&proxy, "/items", Some("garbage"), &[]).await.status, StatusCode::UNAUTHORIZED);

    // Signed in: the upstream sees who it is, and only that.
    let seen = get(&proxy, "/items?page=2", Some(&bob_t), &[("x-latchkey-user-id", "user_evil")]).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    let h = &seen.body["headers"];
    assert_eq!(
        (h["x-latchkey-user-id"].as_str(), h["x-latchkey-session-id"].as_str()),
        (Some(bob.user_id.as_str()), Some(bob.session_id.as_str()))
    );
    assert_eq!(
        (h["x-latchkey-org-id"].as_str(), h["x-latchkey-org-role"].as_str()),
        (Some(org.as_str()), Some("org:member"))
    );
    assert_eq!(seen.body["path"], "/items?page=2");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    let personal = get(&proxy, "/items", Some(&bob_personal), &[]).await;
    assert!(personal.body["headers"].get("x-latchkey-org-id").is_none(), "no active organization, no org headers");

    // Role, organization from the path, permission.
    assert_eq!(get(&proxy, "/admin/users", Some(&bob_t), &[]).await.error_code(), "authorization_invalid");
    let admin_seen = get(&proxy, "/admin/users", Some(&ada_t), &[]).await;
    assert_eq!(admin_seen.status, StatusCode::OK);
    assert!(admin_seen.body["headers"]["x-latchkey-org-permissions"].as_str().unwrap().contains("org:invoices:create"));
    assert_eq!(get(&proxy, &format!("/orgs/{org}/data"), Some(&bob_t), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&proxy, "/orgs/org_other/data", Some(&ada_t), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&proxy, &format!("/orgs/{org}/data"), Some(&bob_personal), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&proxy, "/invoices", Some(&bob_t), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&proxy, "/invoices", Some(&ada_t), &[]).await.status, StatusCode::OK);

    // A large body goes through whole.
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected_sum = body.iter().map(|b| u64::from(*b)).sum::<u64>() % 1_000_003;
    let b = Browser::new(&proxy);
    let posted = b.send(b.http.post(b.url("/upload")).bearer_auth(&ada_t).body(body)).await;
    assert_eq!(
        (posted.body["method"].as_str(), posted.body["length"].as_u64(), posted.body["sum"].as_u64()),
        (Some("POST"), Some(3_000_000), Some(expected_sum))
    );

    // Server-sent events arrive as they are written: the first before the second exists.
    let client = reqwest::Client::new();
    let mut events = client.get(format!("{proxy}/events")).bearer_auth(&ada_t).send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let first = tokio::time::timeout(Duration::from_secs(10), events.chunk())
        .await
        .expect("the first event is not held back")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    get(&proxy, "/release", Some(&ada_t), &[]).await;
    let mut rest = Vec::new();
    while let Some(c) = tokio::time::timeout(Duration::from_secs(10), events.chunk()).await.unwrap().unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"data: two\n\n");

    // A WebSocket upgrade is passed through, both ways.
    let addr = proxy.trim_start_matches("http://").to_owned();
    let mut ws = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ada_t}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    ws.write_all(handshake.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), ws.read(&mut buf)).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    ws.write_all(b"hello through the proxy").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), ws.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"hello through the proxy");
    let mut anon_ws = tokio::net::TcpStream::connect(&addr).await.unwrap();
    anon_ws.write_all(handshake.replace(&format!("Authorization: Bearer {ada_t}\r\n"), "").as_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), anon_ws.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"), "no upgrade without a token");

    // The upstream goes away: 502 in the error shape.
    // Dropping it kills the process and waits for it: its port is closed from here on.
    drop(upstream);
    let down = get(&proxy, "/items", Some(&ada_t), &[]).await;
    assert_eq!((down.status, down.error_code()), (StatusCode::BAD_GATEWAY, "upstream_unavailable"), "{}", down.text);
    let _: Value = down.body;
}

#[test]
fn bad_rules_are_refused_with_a_reason() {
    let guard = latchkey_axum::Guard::new(latchkey_axum::GuardConfig::new(latchkey_axum::KeySource::Issuer(
        "http://127.0.0.1:1".into(),
    )))
    .unwrap();
    let base = ProxyRules { upstream: Some("http://127.0.0.1:9".into()), ..Default::default() };
    let cases = [
        ProxyRules { upstream: None, ..base.clone() },
        ProxyRules { upstream: Some("ftp://x".into()), ..base.clone() },
        ProxyRules { public: vec!["/x(".into()], ..base.clone() },
        ProxyRules {
            routes: vec![RouteRule {
                path: "/x".into(),
                reverification: Some(ReverificationRule::Preset("loose".into())),
                ..Default::default()
            }],
            ..base.clone()
        },
        ProxyRules {
            routes: vec![RouteRule {
                path: "/x".into(),
                reverification: Some(ReverificationRule::Custom { level: "both".into(), after_minutes: 5 }),
                ..Default::default()
            }],
            ..base.clone()
        },
        ProxyRules {
            routes: vec![RouteRule {
                path: "/x".into(),
                reverification: Some(ReverificationRule::Custom { level: "first_factor".into(), after_minutes: 0 }),
                ..Default::default()
            }],
            ..base.clone()
        },
        ProxyRules {
            routes: vec![RouteRule {
                path: "/orgs/:id".into(),
                organization_param: Some("org_id".into()),
                ..Default::default()
            }],
            ..base.clone()
        },
    ];
    for rules in cases {
        assert!(Proxy::new(rules.clone(), guard.clone(), &Default::default()).is_err(), "{rules:?}");
    }
    assert!(Proxy::new(base, guard, &Default::default()).is_ok());
}

/// A proxy whose rules file asks for recent checks of the factors (read from TOML, as
/// `latchkey proxy --rules` reads it).
async fn reverifying_proxy(server: &TestServer, upstream: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        r#"
public = ["/health"]

[[routes]]
path = "/account/keys"
reverification = "strict_mfa"

[[routes]]
path = "/account(.*)"
reverification = "strict"

[[routes]]
path = "/admin(.*)"
role = "org:admin"
reverification = { level = "first_factor", after_minutes = 5 }
"#,
    )
    .unwrap();
    let rules =
        latchkey::proxy::load_rules(Some(&file), Some(upstream.to_owned()), Some(server.url.clone()), vec![]).unwrap();
    assert_eq!(rules.routes[0].reverification, Some(ReverificationRule::Preset("strict_mfa".into())));
    assert_eq!(
        rules.routes[2].reverification,
        Some(ReverificationRule::Custom { level: "first_factor".into(), after_minutes: 5 })
    );
    // The rules' guard, on the test server's clock (tokens are minted by it, minutes ahead).
    let mut config = latchkey_axum::GuardConfig::new(latchkey_axum::KeySource::Issuer(server.url.clone()));
    config.clock = Arc::new(server.clock.clone());
    let proxy = Arc::new(Proxy::new(rules, latchkey_axum::Guard::new(config).unwrap(), &Default::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = latchkey::proxy::serve(listener, proxy, std::future::pending()).await;
    });
    url
}

#[track_caller]
fn assert_needs_reverification(r: &Reply, level: &str, minutes: i64) {
    assert_eq!(
        (r.status, r.error_code(), r.content_type()),
        (StatusCode::FORBIDDEN, "session_reverification_required", "application/json"),
        "{}",
        r.text
    );
    assert!(r.body["clerk_trace_id"].is_string());
    assert_eq!(r.body["errors"][0]["meta"]["session_verification"], json!({"level": level, "after_minutes": minutes}));
    assert_eq!(
        r.body["clerk_error"],
        json!({"type": "forbidden", "reason": "reverification-error",
               "metadata": {"reverification": {"level": level, "afterMinutes": minutes}}}),
        "{}",
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_asks_for_a_recent_check_where_its_rules_say() {
    use crate::second_factors::{code_at, enrolled, next_step, PASSWORD};
    let server = org_server(Backend::Sqlite).await;
    let upstream = Upstream::start();
    let proxy = reverifying_proxy(&server, &upstream.url).await;
    let b = server.browser();
    let (user_id, sid, secret, _) = enrolled(&server, &b, "ada@example.com").await;
    let token = |b: Browser, sid: String| async move {
        let r = b.token(&sid).await;
        r.body["jwt"].as_str().unwrap().to_owned()
    };

    // Fresh factors: through, with the identity.
    let t = token(b.clone(), sid.clone()).await;
    let r = get(&proxy, "/account/keys", Some(&t), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["headers"]["x-latchkey-user-id"], user_id.as_str());
    assert_eq!(get(&proxy, "/account/email", None, &[]).await.status, StatusCode::UNAUTHORIZED, "signed out: 401");
    // No organization, no role: refused as such, not asked to verify.
    let r = get(&proxy, "/admin/x", Some(&t), &[]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "authorization_invalid"), "{}", r.text);

    // Eleven minutes on: each route asks for its own level; other paths need a sign-in only.
    server.clock.advance_ms(11 * 60_000);
    next_step(&server);
    let t = token(b.clone(), sid.clone()).await;
    assert_needs_reverification(&get(&proxy, "/account/keys", Some(&t), &[]).await, "multi_factor", 10);
    assert_needs_reverification(&get(&proxy, "/account/email", Some(&t), &[]).await, "second_factor", 10);
    assert_eq!(get(&proxy, "/items", Some(&t), &[]).await.status, StatusCode::OK);
    let r = get(&proxy, "/account/email", Some(&t), &[("accept", "text/html")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a signed-in page request is not sent to sign in");

    // The app's code through the Frontend API: `strict` is met, `strict_mfa` (first rule) not.
    let path = |step: &str| format!("/v1/client/sessions/{sid}/verify{step}");
    let r = b.post(&path(""), &[("level", "second_factor")]).await;
    assert_eq!(r.body["response"]["status"], "needs_second_factor", "{}", r.text);
    let r =
        b.post(&path("/attempt_second_factor"), &[("strategy", "totp"), ("code", &code_at(&server, &secret, 0))]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let t = token(b.clone(), sid.clone()).await;
    assert_eq!(get(&proxy, "/account/email", Some(&t), &[]).await.status, StatusCode::OK);
    assert_needs_reverification(&get(&proxy, "/account/keys", Some(&t), &[]).await, "multi_factor", 10);

    // An admin of an organization whose first factor is older than five minutes.
    let org =
        b.post("/v1/organizations", &[("name", "Acme")]).await.body["response"]["id"].as_str().unwrap().to_owned();
    let r = b.post(&format!("/v1/client/sessions/{sid}/touch"), &[("active_organization_id", &org)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t = token(b.clone(), sid.clone()).await;
    assert_needs_reverification(&get(&proxy, "/admin/x", Some(&t), &[]).await, "first_factor", 5);
    let r = b.post(&path(""), &[("level", "first_factor")]).await;
    assert_eq!(r.body["response"]["status"], "needs_first_factor", "{}", r.text);
    let r = b.post(&path("/attempt_first_factor"), &[("strategy", "password"), ("password", PASSWORD)]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let t = token(b.clone(), sid.clone()).await;
    let r = get(&proxy, "/admin/x", Some(&t), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["headers"]["x-latchkey-org-role"], "org:admin");
}
