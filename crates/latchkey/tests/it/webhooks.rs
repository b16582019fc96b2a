//! Webhooks end to end: events of every kind of change, signatures and rotation, the retry
//! schedule under the injected clock, Retry-After, 410, 3xx, the SSRF guard, management
//! errors, and (on PostgreSQL) two instances' workers never attempting a delivery twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use latchkey_service::webhooks::worker::WebhookWorker;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::harness::{Backend, Browser, Reply, TestServer};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Scripted replies: status and extra headers.
type Script = Arc<Mutex<VecDeque<(u16, Vec<(String, String)>)>>>;

/// A webhook receiver on 127.0.0.1: answers each request with the next scripted reply
/// (status and extra headers), then with 204 once the script is spent.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    script: Script,
    /// How long each answer takes.
    pub delay: Arc<std::sync::atomic::AtomicU64>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let me = Self { url, got: Default::default(), script: Default::default(), delay: Default::default() };
        let (got, script, delay) = (me.got.clone(), me.script.clone(), me.delay.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (got, script, delay) = (got.clone(), script.clone(), delay.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = stream.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    lines.next();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = buf[head_end + 4..].to_vec();
                    while body.len() < len {
                        let Ok(n) = stream.read(&mut chunk).await else { return };
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    let wait = delay.load(std::sync::atomic::Ordering::Relaxed);
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    let (status, extra) = script.lock().await.pop_front().unwrap_or((204, Vec::new()));
                    got.lock().await.push(Received { headers, body: String::from_utf8_lossy(&body).to_string() });
                    let mut reply = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n");
                    for (k, v) in extra {
                        reply.push_str(&format!("{k}: {v}\r\n"));
                    }
                    reply.push_str("\r\n");
                    let _ = stream.write_all(reply.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        me
    }

    pub async fn answer(&self, status: u16, headers: &[(&str, &str)]) {
        let h = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.script.lock().await.push_back((status, h));
    }

    pub async fn count(&self) -> usize {
        self.got.lock().await.len()
    }

    pub async fn all(&self) -> Vec<Received> {
        self.got.lock().await.clone()
    }
}

/// A Backend API caller with a fresh secret key.
pub struct Admin {
    b: Browser,
    key: String,
}

impl Admin {
    pub async fn new(server: &TestServer) -> Self {
        let (_, key) = server.services.create_secret_key(&latchkey::operator(), "webhook tests").await.unwrap();
        Self { b: server.browser(), key }
    }
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.b.http.request(method, self.b.url(path)).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.b.send(req).await
    }
    pub async fn get(&self, path: &str) -> Reply {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(reqwest::Method::DELETE, path, None).await
    }
    /// Creates an endpoint; returns (id, secret).
    pub async fn endpoint(&self, url: &str, events: &[&str]) -> (String, String) {
        let r = self.post("/v1/webhooks/endpoints", json!({"url": url, "events": events})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (r.body["id"].as_str().unwrap().to_owned(), r.body["secret"].as_str().unwrap().to_owned())
    }
}

pub(crate) fn worker(server: &TestServer) -> Arc<WebhookWorker> {
    Arc::new(WebhookWorker::new(server.webhooks.clone(), &Default::default()).unwrap())
}

/// Runs the worker until nothing is due now.
pub(crate) async fn drain(w: &Arc<WebhookWorker>) -> usize {
    let mut total = 0;
    loop {
        let n = w.run_once().await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// The signature Standard Webhooks defines, computed independently of latchkey's signer.
fn expected_signature(secret: &str, id: &str, ts: &str, body: &str) -> String {
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

async fn new_user(admin: &Admin, email: &str) -> String {
    let r =
        admin.post("/v1/users", json!({"email_address": [email], "password": "correct horse battery staple"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

crate::both_backends!(every_change_sends_its_event, every_change_sends_its_event_on);
async fn every_change_sends_its_event_on(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &[]).await;
    let w = worker(&server);

    // Users through the Backend API.
    let user_id = new_user(&admin, "hooks@example.com").await;
    let r = admin.patch(&format!("/v1/users/{user_id}"), json!({"first_name": "Grace"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = admin.patch(&format!("/v1/users/{user_id}/metadata"), json!({"public_metadata": {"plan": "pro"}})).await;
    assert_eq!(r.status, StatusCode::OK);
    // Organizations, memberships, invitations.
    let other = new_user(&admin, "member@example.com").await;
    let r = admin.post("/v1/organizations", json!({"name": "Family", "created_by": user_id})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let org_id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin.patch(&format!("/v1/organizations/{org_id}"), json!({"name": "Family 2"})).await.status,
        StatusCode::OK
    );
    let r = admin
        .post(&format!("/v1/organizations/{org_id}/memberships"), json!({"user_id": other, "role": "org:member"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = admin.patch(&format!("/v1/organizations/{org_id}/memberships/{other}"), json!({"role": "org:admin"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = admin
        .post(
            &format!("/v1/organizations/{org_id}/invitations"),
            json!({"email_address": "partner@example.com", "role": "org:member", "inviter_user_id": user_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let inv = r.body["id"].as_str().unwrap().to_owned();
    let r = admin.post(&format!("/v1/organizations/{org_id}/invitations/{inv}/revoke"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(admin.delete(&format!("/v1/organizations/{org_id}/memberships/{other}")).await.status, StatusCode::OK);
    assert_eq!(admin.delete(&format!("/v1/organizations/{org_id}")).await.status, StatusCode::OK);
    // A sign-up and a sign-out in the browser.
    let b = server.browser();
    let (_, session_id) = server.sign_up(&b, "new@example.com", "correct horse battery staple").await;
    let r = b.post(&format!("/v1/client/sessions/{session_id}/end"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Refused changes send nothing.
    let r = admin.post("/v1/users", json!({"email_address": ["hooks@example.com"]})).await;
    assert_ne!(r.status, StatusCode::OK);
    assert_eq!(admin.delete("/v1/users/user_nobody").await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin.delete(&format!("/v1/users/{other}")).await.status, StatusCode::OK);

    // Mail is sent in the background: once it has all gone, its events are written.
    server.mail_settled().await;
    drain(&w).await;
    let got = rx.all().await;
    let types: Vec<String> = got.iter().map(|m| m.json()["type"].as_str().unwrap().to_owned()).collect();
    let expect = [
        "user.created",
        "user.updated",
        "user.updated",
        "user.created",
        "organization.created",
        "organizationMembership.created",
        "organization.updated",
        "organizationMembership.created",
        "organizationMembership.updated",
        "organizationInvitation.created",
        "organizationInvitation.revoked",
        "organizationMembership.deleted",
        "organization.deleted",
        "user.created",
        "session.created",
        "session.ended",
        "user.deleted",
    ];
    // Deliveries run concurrently, so they arrive in any order: compare what arrived.
    let mut without_mail: Vec<&str> = types.iter().map(String::as_str).filter(|t| *t != "email.created").collect();
    without_mail.sort_unstable();
    let mut expect = expect.to_vec();
    expect.sort_unstable();
    assert_eq!(without_mail, expect, "every change once");
    assert!(types.iter().any(|t| t == "email.created"), "the verification mail is announced: {types:?}");

    // Payloads are Clerk's envelope around the resource as the Backend API shows it.
    // Of one type, in the order of their changes (ids are time-ordered, then random).
    let by_type = |t: &str| got.iter().map(Received::json).filter(|m| m["type"] == t).collect::<Vec<_>>();
    let created = by_type("user.created").into_iter().find(|m| m["data"]["id"] == user_id.as_str()).unwrap();
    assert_eq!(created["object"], "event");
    assert_eq!(created["instance_id"].as_str().unwrap()[..4].to_owned(), "ins_");
    assert!(created["timestamp"].as_i64().unwrap() > 1_600_000_000_000, "milliseconds");
    assert_eq!(created["data"]["object"], "user");
    assert_eq!(created["data"]["id"], user_id);
    assert_eq!(created["data"]["email_addresses"][0]["email_address"], "hooks@example.com");
    assert!(created["data"]["private_metadata"].is_object(), "the backend's view");
    let updated = by_type("user.updated");
    assert!(updated
        .iter()
        .any(|u| u["data"]["first_name"] == "Grace" && u["data"]["public_metadata"]["plan"].is_null()));
    assert!(updated
        .iter()
        .any(|u| u["data"]["first_name"] == "Grace" && u["data"]["public_metadata"]["plan"] == "pro"));
    assert_eq!(by_type("user.deleted")[0]["data"], json!({"object": "user", "id": other, "deleted": true}));
    let m = &by_type("organizationMembership.updated")[0]["data"];
    assert_eq!((m["object"].as_str(), m["role"].as_str()), (Some("organization_membership"), Some("org:admin")));
    assert_eq!(m["organization"]["id"], org_id);
    assert_eq!(m["public_user_data"]["user_id"], other);
    assert_eq!(by_type("organization.updated")[0]["data"]["name"], "Family 2");
    assert_eq!(by_type("organization.deleted")[0]["data"]["deleted"], true);
    assert_eq!(by_type("organizationInvitation.revoked")[0]["data"]["status"], "revoked");
    assert_eq!(by_type("session.ended")[0]["data"]["status"], "ended");
    assert_eq!(by_type("session.ended")[0]["data"]["id"], session_id);
    let mails = by_type("email.created");
    assert!(mails.iter().any(|m| m["data"]["to_email_address"] == "partner@example.com"), "the invitation too");
    let mail = &mails.iter().find(|m| m["data"]["to_email_address"] == "new@example.com").unwrap()["data"];
    let code = server.code_for("new@example.com").await;
    assert!(mail["body_plain"].as_str().unwrap().contains(&code), "an app can send the code itself");

    // Each message went out once, with distinct ids, and its deliveries list it as succeeded.
    let mut ids: Vec<&str> = got.iter().map(|m| m.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len());
    server.clock.advance_ms(3_600_000);
    assert_eq!(drain(&w).await, 0, "nothing is delivered twice");
}

crate::both_backends!(signatures_and_secret_rotation, signatures_and_secret_rotation_on);
async fn signatures_and_secret_rotation_on(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    let (endpoint, secret) = admin.endpoint(&rx.url, &["user.created"]).await;
    assert!(secret.starts_with("whsec_"));
    let r = admin.get(&format!("/v1/webhooks/endpoints/{endpoint}/secret")).await;
    assert_eq!(r.body["key"], secret.as_str());
    let r = admin.get(&format!("/v1/webhooks/endpoints/{endpoint}")).await;
    assert!(r.body.get("secret").is_none(), "the secret is shown on creation and on request only");
    let w = worker(&server);

    new_user(&admin, "a@example.com").await;
    drain(&w).await;
    let m = rx.all().await.remove(0);
    let (id, ts) = (m.header("webhook-id").to_owned(), m.header("webhook-timestamp").to_owned());
    assert!(id.starts_with("msg_") && !id.contains('.'));
    assert_eq!(ts.parse::<i64>().unwrap(), latchkey_core::Clock::now_ms(&server.clock) / 1000, "seconds");
    assert_eq!(m.header("webhook-signature"), expected_signature(&secret, &id, &ts, &m.body));
    assert_eq!(m.header("svix-id"), id);
    assert_eq!(m.header("svix-timestamp"), ts);
    assert_eq!(m.header("svix-signature"), m.header("webhook-signature"));
    assert_eq!(m.header("content-type"), "application/json");

    // During the overlap both secrets sign; after it only the new one.
    let r = admin.post(&format!("/v1/webhooks/endpoints/{endpoint}/secret/rotate"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new_secret = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    new_user(&admin, "b@example.com").await;
    drain(&w).await;
    let m = rx.all().await.remove(1);
    let (id, ts) = (m.header("webhook-id").to_owned(), m.header("webhook-timestamp").to_owned());
    let sigs: Vec<&str> = m.header("webhook-signature").split(' ').collect();
    assert_eq!(
        sigs,
        vec![expected_signature(&new_secret, &id, &ts, &m.body), expected_signature(&secret, &id, &ts, &m.body)]
    );
    server.clock.advance_ms(24 * 3_600_000 + 1);
    new_user(&admin, "c@example.com").await;
    drain(&w).await;
    let m = rx.all().await.remove(2);
    let (id, ts) = (m.header("webhook-id").to_owned(), m.header("webhook-timestamp").to_owned());
    assert_eq!(m.header("webhook-signature"), expected_signature(&new_secret, &id, &ts, &m.body));
}

#[tokio::test]
async fn attempts_follow_the_schedule_under_the_injected_clock() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    for _ in 0..8 {
        rx.answer(500, &[]).await;
    }
    let (endpoint, _) = admin.endpoint(&rx.url, &["user.created"]).await;
    let w = worker(&server);
    new_user(&admin, "sched@example.com").await;
    let t0 = latchkey_core::Clock::now_ms(&server.clock);
    assert_eq!(drain(&w).await, 1, "the first attempt is immediate");
    let offsets_secs = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
    let mut at = t0;
    for (n, delay) in offsets_secs.iter().enumerate() {
        at += delay * 1000;
        server.clock.set_ms(at - 1);
        assert_eq!(drain(&w).await, 0, "attempt {} came early", n + 2);
        server.clock.set_ms(at);
        assert_eq!(drain(&w).await, 1, "attempt {} is due {delay} s after the previous one", n + 2);
    }
    assert_eq!(rx.count().await, 8);
    server.clock.advance_ms(7 * 86_400_000);
    assert_eq!(drain(&w).await, 0, "eight attempts in all");
    let r = admin.get(&format!("/v1/webhooks/endpoints/{endpoint}/deliveries")).await;
    let d = &r.body["data"][0];
    assert_eq!((d["status"].as_str(), d["attempt_count"].as_i64()), (Some("failed"), Some(8)));
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 8);
    let gaps: Vec<i64> = attempts
        .windows(2)
        .map(|p| (p[1]["attempted_at"].as_i64().unwrap() - p[0]["attempted_at"].as_i64().unwrap()) / 1000)
        .collect();
    assert_eq!(gaps, offsets_secs);
    assert!(attempts.iter().all(|a| a["status_code"] == 500 && a["error"] == "HTTP 500"));
    // Every attempt carries the same message id.
    let got = rx.all().await;
    assert!(got.iter().all(|m| m.header("webhook-id") == got[0].header("webhook-id")));

    // A receiver that fails twice then succeeds: three attempts, then done.
    let rx2 = Receiver::start().await;
    rx2.answer(503, &[]).await;
    rx2.answer(502, &[]).await;
    admin.endpoint(&rx2.url, &["user.created"]).await;
    new_user(&admin, "twice@example.com").await;
    drain(&w).await;
    server.clock.advance_ms(5_000);
    drain(&w).await;
    server.clock.advance_ms(300_000);
    drain(&w).await;
    assert_eq!(rx2.count().await, 3);
    server.clock.advance_ms(86_400_000);
    assert_eq!(drain(&w).await, 0);
    assert_eq!(rx2.count().await, 3);
}

#[tokio::test]
async fn retry_after_gone_and_redirects() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = Admin::new(&server).await;
    let w = worker(&server);

    // Retry-After longer than the schedule wins.
    let slow = Receiver::start().await;
    slow.answer(429, &[("retry-after", "120")]).await;
    admin.endpoint(&slow.url, &["user.created"]).await;
    new_user(&admin, "slow@example.com").await;
    drain(&w).await;
    server.clock.advance_ms(119_999);
    assert_eq!(drain(&w).await, 0, "Retry-After: 120 is honoured");
    server.clock.advance_ms(1);
    assert_eq!(drain(&w).await, 1);
    assert_eq!(slow.count().await, 2);
    let r = admin.get("/v1/webhooks/endpoints").await;
    for e in r.body["data"].as_array().unwrap() {
        admin.delete(&format!("/v1/webhooks/endpoints/{}", e["id"].as_str().unwrap())).await;
    }

    // 410 disables the endpoint after one attempt; nothing more goes to it until re-enabled.
    let gone = Receiver::start().await;
    gone.answer(410, &[]).await;
    let since = latchkey_core::Clock::now_ms(&server.clock);
    let (endpoint, _) = admin.endpoint(&gone.url, &["user.created"]).await;
    new_user(&admin, "gone1@example.com").await;
    drain(&w).await;
    let r = admin.get(&format!("/v1/webhooks/endpoints/{endpoint}")).await;
    assert_eq!((r.body["disabled"].as_bool(), r.body["disabled_reason"].as_str()), (Some(true), Some("gone")));
    new_user(&admin, "gone2@example.com").await;
    server.clock.advance_ms(86_400_000);
    assert_eq!(drain(&w).await, 0);
    assert_eq!(gone.count().await, 1);
    let r = admin.get(&format!("/v1/webhooks/endpoints/{endpoint}/deliveries")).await;
    assert_eq!(r.body["total_count"], 1, "a disabled endpoint is owed nothing new");
    assert_eq!(r.body["data"][0]["status"], "failed");
    let r = admin.patch(&format!("/v1/webhooks/endpoints/{endpoint}"), json!({"disabled": false})).await;
    assert_eq!(r.body["disabled"], false);
    // Replaying everything since the start sends both users' events, with their first ids.
    let r = admin.post(&format!("/v1/webhooks/endpoints/{endpoint}/replay"), json!({"since": since})).await;
    assert_eq!(r.body, json!({"object": "webhook_replay", "queued": 2}));
    drain(&w).await;
    let got = gone.all().await;
    assert_eq!(got.len(), 3);
    let replayed: Vec<&str> = got[1..].iter().map(|m| m.header("webhook-id")).collect();
    assert!(replayed.contains(&got[0].header("webhook-id")), "a replay keeps the message id");
    assert_ne!(replayed[0], replayed[1]);
    let one = replayed[0].to_owned();
    let r = admin.post(&format!("/v1/webhooks/endpoints/{endpoint}/replay"), json!({"message_id": one})).await;
    assert_eq!(r.body["queued"], 1);
    drain(&w).await;
    assert_eq!(gone.all().await[3].header("webhook-id"), one);
    admin.delete(&format!("/v1/webhooks/endpoints/{endpoint}")).await;

    // A 302 is a failure, and its Location is not followed.
    let target = Receiver::start().await;
    let redirect = Receiver::start().await;
    redirect.answer(302, &[("location", &target.url)]).await;
    let (endpoint, _) = admin.endpoint(&redirect.url, &["user.created"]).await;
    new_user(&admin, "moved@example.com").await;
    drain(&w).await;
    assert_eq!(target.count().await, 0, "redirects are not followed");
    let r = admin.get(&format!("/v1/webhooks/endpoints/{endpoint}/deliveries?status=pending")).await;
    assert_eq!(r.body["total_count"], 1);
    let a = &r.body["data"][0]["attempts"][0];
    assert_eq!((a["status_code"].as_i64(), a["succeeded"].as_bool()), (Some(302), Some(false)));
    assert!(a["error"].as_str().unwrap().contains("not followed"));
    server.clock.advance_ms(5_000);
    drain(&w).await;
    assert_eq!(redirect.count().await, 2, "and retried on schedule");
}

#[tokio::test]
async fn the_ssrf_guard_refuses_non_public_addresses() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.webhooks.allow_loopback = Some(false);
    })
    .await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    for url in [
        rx.url.clone(),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]:9/".into(),
        "http://10.0.0.7/hook".into(),
        "http://[::ffff:127.0.0.1]/".into(),
        "http://0.0.0.0/".into(),
    ] {
        let r = admin.post("/v1/webhooks/endpoints", json!({"url": url})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {}", r.body);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], "url");
    }
    // A name that resolves to loopback passes creation but is refused before connecting.
    let port = rx.url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_owned();
    let (endpoint, _) = admin.endpoint(&format!("http://localhost:{port}/hook"), &["user.created"]).await;
    let w = worker(&server);
    new_user(&admin, "ssrf@example.com").await;
    drain(&w).await;
    assert_eq!(rx.count().await, 0, "nothing reached the loopback receiver");
    let r = admin.get(&format!("/v1/webhooks/endpoints/{endpoint}/deliveries")).await;
    let a = &r.body["data"][0]["attempts"][0];
    assert_eq!(a["status_code"], Value::Null);
    assert!(a["error"].as_str().unwrap().contains("loopback"), "{a}");
}

#[tokio::test]
async fn management_refuses_bad_input_and_changes_nothing() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = Admin::new(&server).await;
    let cases = [
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (json!({"url": "ftp://example.com/x"}), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (json!({"url": "not a url"}), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (json!({"url": "https://user:pw@example.com/"}), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (json!({"url": 7}), StatusCode::UNPROCESSABLE_ENTITY, "url"),
        (
            json!({"url": "https://example.com/", "events": ["user.exploded"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events",
        ),
        (json!({"url": "https://example.com/", "events": [7]}), StatusCode::UNPROCESSABLE_ENTITY, "events"),
        (
            json!({"url": "https://example.com/", "description": "x".repeat(513)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
        ),
    ];
    for (body, status, param) in cases {
        let r = admin.post("/v1/webhooks/endpoints", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], param, "{body}");
        assert_eq!(r.content_type(), "application/json");
    }
    assert_eq!(admin.get("/v1/webhooks/endpoints").await.body["total_count"], 0, "nothing was created");

    let (endpoint, _) = admin.endpoint("https://example.com/hook", &[]).await;
    let path = format!("/v1/webhooks/endpoints/{endpoint}");
    let r = admin.patch(&path, json!({"url": "http://169.254.169.254/"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin.patch(&path, json!({"events": ["nope"]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin.get(&path).await;
    assert_eq!((r.body["url"].as_str(), r.body["events"].clone()), (Some("https://example.com/hook"), json!([])));
    let r = admin.post(&format!("{path}/replay"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_missing"));
    let r = admin.post(&format!("{path}/replay"), json!({"message_id": "msg_unknown"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = admin.get(&format!("{path}/deliveries?status=lost")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for p in ["/v1/webhooks/endpoints/whe_missing", "/v1/webhooks/endpoints/whe_missing/secret"] {
        assert_eq!(admin.get(p).await.status, StatusCode::NOT_FOUND, "{p}");
    }
    assert_eq!(admin.delete("/v1/webhooks/endpoints/whe_missing").await.status, StatusCode::NOT_FOUND);
    let anonymous = server.browser();
    assert_eq!(anonymous.get("/v1/webhooks/endpoints").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(admin.delete(&path).await.body, json!({"object": "webhook_endpoint", "id": endpoint, "deleted": true}));
    assert_eq!(admin.get(&path).await.status, StatusCode::NOT_FOUND);
}

/// Two instances on one PostgreSQL database, each with its worker, racing over the same
/// deliveries: `FOR UPDATE SKIP LOCKED` hands each delivery to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_of_two_instances_never_attempt_a_delivery_twice() {
    let first = TestServer::start(Backend::Postgres).await;
    let (url, dir) = first.shared_storage();
    let second = TestServer::start_with(Backend::Postgres, |c| {
        c.database_url = url.clone().into();
        c.data_dir = dir.clone();
    })
    .await;
    let admin = Admin::new(&first).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &["user.created"]).await;
    const USERS: usize = 60;
    for n in 0..USERS {
        new_user(&admin, &format!("race{n}@example.com")).await;
    }
    let (a, b) = (worker(&first), worker(&second));
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let w = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { drain(&w).await })
        })
        .collect();
    let mut attempted = 0;
    for r in runs {
        attempted += r.await.unwrap();
    }
    assert_eq!(attempted, USERS, "each delivery claimed once across the workers");
    let got = rx.all().await;
    let mut ids: Vec<&str> = got.iter().map(|m| m.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (USERS, USERS));
}

#[tokio::test]
async fn sessions_invitations_roles_and_timeouts() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.organizations.permissions = vec!["org:invoices:create".into()];
        c.webhooks.timeout_secs = 1;
    })
    .await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    let (endpoint, _) = admin.endpoint(&rx.url, &[]).await;
    let w = worker(&server);

    let owner = new_user(&admin, "owner@example.com").await;
    let r = admin.post("/v1/organizations", json!({"name": "Home", "created_by": owner})).await;
    let org_id = r.body["id"].as_str().unwrap().to_owned();
    let r = admin
        .post(
            &format!("/v1/organizations/{org_id}/invitations"),
            json!({"email_address": "partner@example.com", "role": "org:member", "inviter_user_id": owner}),
        )
        .await;
    let invitation = r.body["id"].as_str().unwrap().to_owned();
    // The invitee signs up with the invited address: the invitation is accepted.
    let (partner, _) = server.sign_up(&server.browser(), "partner@example.com", "correct horse battery staple").await;

    // A session revoked by the backend, another removed by its client.
    let b = server.browser();
    let r = server.sign_in(&b, "owner@example.com", "correct horse battery staple").await;
    let first = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    assert_eq!(admin.post(&format!("/v1/sessions/{first}/revoke"), json!({})).await.status, StatusCode::OK);
    let r = server.sign_in(&b, "owner@example.com", "correct horse battery staple").await;
    let second = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    let r = b.post(&format!("/v1/client/sessions/{second}/remove"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    drain(&w).await;

    let events: Vec<Value> = rx.all().await.iter().map(Received::json).collect();
    let find = |t: &str, f: &dyn Fn(&Value) -> bool| events.iter().any(|e| e["type"] == t && f(&e["data"]));
    assert!(find("organizationInvitation.accepted", &|d| d["id"] == invitation.as_str() && d["status"] == "accepted"));
    assert!(find("organizationMembership.created", &|d| d["public_user_data"]["user_id"] == partner.as_str()
        && d["organization"]["id"] == org_id.as_str()));
    assert!(find("session.revoked", &|d| d["id"] == first.as_str() && d["status"] == "revoked"));
    assert!(find("session.removed", &|d| d["id"] == second.as_str() && d["status"] == "removed"));
    assert_eq!(events.iter().filter(|e| e["type"] == "session.created").count(), 3, "the sign-up's and two sign-ins'");

    // Roles and permissions were announced at the first start, before any endpoint: a replay
    // of everything since then brings them.
    let r = admin.post(&format!("/v1/webhooks/endpoints/{endpoint}/replay"), json!({"since": 0})).await;
    assert!(r.body["queued"].as_u64().unwrap() > events.len() as u64);
    drain(&w).await;
    let all: Vec<Value> = rx.all().await.iter().map(Received::json).collect();
    let role = all.iter().find(|e| e["type"] == "role.created" && e["data"]["key"] == "org:admin").unwrap();
    assert!(role["data"]["permissions"].as_array().unwrap().iter().any(|p| p["key"] == "org:invoices:create"));
    assert!(all.iter().any(|e| e["type"] == "role.created" && e["data"]["key"] == "org:member"));
    assert!(all.iter().any(|e| e["type"] == "permission.created" && e["data"]["key"] == "org:invoices:create"));

    // An endpoint that does not answer within the timeout: a failed attempt, retried later.
    let silent = Receiver::start().await;
    silent.delay.store(2_500, std::sync::atomic::Ordering::Relaxed);
    let (slow, _) = admin.endpoint(&silent.url, &["user.created"]).await;
    new_user(&admin, "late@example.com").await;
    drain(&w).await;
    let r = admin.get(&format!("/v1/webhooks/endpoints/{slow}/deliveries")).await;
    let d = &r.body["data"][0];
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"][0]["status_code"], Value::Null);
    assert_eq!(d["attempts"][0]["error"], "no response within 1 s");
    assert_eq!(d["next_attempt_at"].as_i64().unwrap(), d["attempts"][0]["attempted_at"].as_i64().unwrap() + 5_000);
}
