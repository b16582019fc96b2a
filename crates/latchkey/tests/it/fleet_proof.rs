//! The fleet under faults: three `latchkey serve` processes on one PostgreSQL database behind
//! Debian's HAProxy (health checks on `/readyz`), a mixed load for a bounded time — sign-ins,
//! token refreshes, Backend API writes, sync pushes from several devices, webhook deliveries
//! to a loopback receiver — while one instance is killed with SIGKILL and restarted and another
//! is restarted with SIGTERM. Then: no acknowledged write lost, no sync op applied twice, every
//! webhook event delivered under one id, sessions valid on every instance, client errors only
//! for requests in flight on the killed instance, and a password guesser spreading attempts
//! over the instances stopped at one instance's budget.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::harness::{Backend, TestDb};
use crate::process::{start_listening, Server};
use crate::sync::feed;

const PASSWORD: &str = "correct horse battery staple";
/// How long the mixed load runs.
const LOAD: Duration = Duration::from_secs(24);

/// A free loopback port (bound, then released for the process that takes it).
async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// Debian's haproxy in front of `ports`, checking `/readyz` every 300 ms.
struct Balancer {
    /// Killed when the balancer is dropped.
    _child: tokio::process::Child,
    url: String,
}

impl Balancer {
    async fn start(dir: &Path, ports: &[u16]) -> Self {
        let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("Debian's haproxy is installed (scripts/test.sh installs it)");
        let port = free_port().await;
        let servers: String =
            ports.iter().enumerate().map(|(i, p)| format!("  server i{i} 127.0.0.1:{p} check\n")).collect();
        let config = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  \
             retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response\n\
             frontend fleet\n  bind 127.0.0.1:{port}\n  default_backend instances\n\
             backend instances\n  balance roundrobin\n  option httpchk GET /readyz\n  \
             http-check expect status 200\n  default-server inter 300ms fall 2 rise 2\n{servers}"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let child = tokio::process::Command::new(haproxy)
            .arg("-f")
            .arg(&file)
            .arg("-db")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { _child: child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Waits until every instance is in service (HAProxy's health checks saw them ready).
    async fn all_ready(&self, ports: &[u16]) {
        let http = reqwest::Client::new();
        tokio::time::timeout(Duration::from_secs(30), async {
            for port in ports {
                while !http
                    .get(format!("http://127.0.0.1:{port}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK)
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            // Then through the balancer, which needs two good checks per instance.
            let mut answered = 0;
            while answered < 6 {
                let ok =
                    http.get(format!("{}/readyz", self.url)).send().await.is_ok_and(|r| r.status() == StatusCode::OK);
                answered = if ok { answered + 1 } else { 0 };
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("haproxy answers through ready instances");
    }
}

/// One instance: its directory, port and process (none while it is down).
struct Instance {
    dir: PathBuf,
    port: u16,
    server: Option<Server>,
}

fn instance_env<'a>(database_url: &'a str, public_url: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("LATCHKEY_DATABASE_URL", database_url),
        ("LATCHKEY_PUBLIC_URL", public_url),
        // One key-encryption key for the fleet: every instance opens the same signing keys.
        ("LATCHKEY_KEK", "bGF0Y2hrZXktZmxlZXQtdGVzdC1rZWstMzItYnl0ZXM="),
        ("LATCHKEY_SHUTDOWN_DELAY_SECS", "1"),
        ("LATCHKEY_RATE_LIMITS__PER_IP_PER_MINUTE", "100000"),
        ("LATCHKEY_RATE_LIMITS__CLIENTS_PER_IP_PER_HOUR", "100000"),
        ("LATCHKEY_RATE_LIMITS__PER_IDENTIFIER_PER_MINUTE", "3"),
        ("LATCHKEY_HASH_CONCURRENCY", "2"),
    ]
}

/// What the load saw: per kind, answers and errors (a 5xx or a broken connection).
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.lock().unwrap().push(what);
    }
}

/// Sends without panicking: `None` for a connection error or a 5xx (an error the client saw).
async fn attempt(tally: &Tally, what: &str, req: reqwest::RequestBuilder) -> Option<(StatusCode, Value)> {
    match req.send().await {
        Ok(res) if res.status().is_server_error() => {
            tally.error(format!("{what}: {}", res.status()));
            None
        }
        Ok(res) => {
            let status = res.status();
            let body = res.json::<Value>().await.unwrap_or(Value::Null);
            tally.ok.fetch_add(1, Ordering::Relaxed);
            Some((status, body))
        }
        Err(e) => {
            tally.error(format!("{what}: {e}"));
            None
        }
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(30)).build().unwrap()
}

/// The webhook receiver: every delivery's id with its body.
type Deliveries = Arc<Mutex<Vec<(String, Value)>>>;

async fn receiver() -> (String, Deliveries) {
    let got: Deliveries = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                seen.lock().unwrap().push((id, serde_json::from_str(&body).unwrap_or(Value::Null)));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_haproxy_survive_a_kill_and_a_rolling_restart() {
    let db = TestDb::new(Backend::Postgres).await;
    let root = tempfile::tempdir().unwrap();
    let mut instances = Vec::new();
    for i in 0..3 {
        let dir = root.path().join(format!("i{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        instances.push(Instance { dir, port: free_port().await, server: None });
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
    let balancer = Balancer::start(root.path(), &ports).await;
    let lb = balancer.url.clone();
    let env = instance_env(&db.url, &lb);
    // One at a time: the first creates the schema and the secret key.
    for inst in instances.iter_mut() {
        inst.server = Some(start_listening(&inst.dir, &format!("127.0.0.1:{}", inst.port), &env).await);
    }
    balancer.all_ready(&ports).await;
    let key = instances[0].server.as_ref().unwrap().secret_key();
    let admin = reqwest::Client::new();

    // People: 40 who sign in during the load, 4 with sessions (token refreshes, sync devices).
    let create_user = |email: String| {
        let (admin, lb, key) = (admin.clone(), lb.clone(), key.clone());
        async move {
            let body = json!({"email_address": [email], "password": PASSWORD, "skip_password_checks": true});
            let r = admin.post(format!("{lb}/v1/users")).bearer_auth(&key).json(&body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let mut signers = Vec::new();
    for i in 0..40 {
        signers.push(format!("signer{i}@example.com"));
        create_user(signers[i].clone()).await;
    }
    let mut members = Vec::new();
    for i in 0..4 {
        let email = format!("member{i}@example.com");
        let user_id = create_user(email.clone()).await;
        let b = browser();
        let r = b
            .post(format!("{lb}/v1/client/sign_ins"))
            .form(&[("identifier", email.as_str()), ("strategy", "password"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let session_id = body["response"]["created_session_id"].as_str().unwrap().to_owned();
        members.push((user_id, session_id, b));
    }
    let (hook_url, deliveries) = receiver().await;
    let r = admin
        .post(format!("{lb}/v1/webhooks/endpoints"))
        .bearer_auth(&key)
        .json(&json!({"url": hook_url, "events": ["user.updated"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // The load.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = tokio::task::JoinSet::new();
    // Sign-ins: each person once, by new browsers.
    {
        let (lb, tally, stop) = (lb.clone(), tally.clone(), stop.clone());
        tasks.spawn(async move {
            let mut done = 0;
            for email in signers {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let form = [("identifier", email.as_str()), ("strategy", "password"), ("password", PASSWORD)];
                let req = browser().post(format!("{lb}/v1/client/sign_ins")).form(&form);
                if let Some((status, body)) = attempt(&tally, "sign-in", req).await {
                    assert_eq!(status, StatusCode::OK, "{body}");
                    assert_eq!(body["response"]["status"], "complete", "{body}");
                    done += 1;
                }
            }
            ("sign-ins", done)
        });
    }
    // Token refreshes, Backend API writes and sync pushes, one loop per member.
    // Per user, the metadata writes that were acknowledged; per op id, its "applied" answers and
    // whether any answer came (a lost answer's op is pushed again and answered `duplicate`).
    let acknowledged: Arc<Mutex<BTreeMap<String, Vec<i64>>>> = Arc::default();
    let applied: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    for (user_id, session_id, b) in members.clone() {
        let (lb, tally, stop, key, acknowledged, applied) =
            (lb.clone(), tally.clone(), stop.clone(), key.clone(), acknowledged.clone(), applied.clone());
        tasks.spawn(async move {
            let (mut n, mut seq) = (0_i64, 1_i64);
            let device = format!("device-{user_id}");
            while !stop.load(Ordering::Relaxed) {
                let req = b.post(format!("{lb}/v1/client/sessions/{session_id}/tokens"));
                let Some((status, token)) = attempt(&tally, "token", req).await else { continue };
                assert_eq!(status, StatusCode::OK, "{token}");
                let jwt = token["jwt"].as_str().unwrap().to_owned();

                n += 1;
                let body = json!({"public_metadata": {"n": n}});
                let req = reqwest::Client::new()
                    .patch(format!("{lb}/v1/users/{user_id}/metadata"))
                    .bearer_auth(&key)
                    .json(&body);
                if let Some((status, _)) = attempt(&tally, "metadata", req).await {
                    assert_eq!(status, StatusCode::OK);
                    acknowledged.lock().unwrap().entry(user_id.clone()).or_default().push(n);
                }

                // A push is sent again, unchanged, until one answer arrives (the client's outbox).
                let now = latchkey_core::Clock::now_ms(&latchkey_core::SystemClock);
                let mut op = feed(&format!("feed-{seq}"), seq, &format!("{now}-0"));
                op["seq"] = json!(seq);
                op["op_id"] = json!(format!("{device}-{seq}"));
                let push = json!({"client_id": device, "schema_version": 1, "ops": [op]});
                loop {
                    let req = reqwest::Client::new().post(format!("{lb}/v1/sync/push")).bearer_auth(&jwt).json(&push);
                    if let Some((status, body)) = attempt(&tally, "push", req).await {
                        assert_eq!(status, StatusCode::OK, "{body}");
                        let result = body["results"][0]["status"].as_str().unwrap().to_owned();
                        assert!(result == "applied" || result == "duplicate", "{body}");
                        *applied.lock().unwrap().entry(format!("{device}-{seq}")).or_default() +=
                            usize::from(result == "applied");
                        break;
                    }
                }
                seq += 1;
            }
            ("members", seq as usize - 1)
        });
    }

    // The faults, while the load runs: SIGKILL one instance and bring it back; then a rolling
    // restart (SIGTERM, drained, back) of another.
    tokio::time::sleep(LOAD / 3).await;
    let killed = instances[0].server.take().unwrap();
    killed.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    instances[0].server =
        Some(start_listening(&instances[0].dir, &format!("127.0.0.1:{}", instances[0].port), &env).await);
    tokio::time::sleep(LOAD / 3).await;
    let (status, stderr) = instances[1].server.take().unwrap().stop().await;
    assert!(status.success(), "a drained instance exits cleanly: {stderr}");
    instances[1].server =
        Some(start_listening(&instances[1].dir, &format!("127.0.0.1:{}", instances[1].port), &env).await);
    tokio::time::sleep(LOAD / 3).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let (kind, n) = r.unwrap();
        *done.entry(kind).or_insert(0) += n;
    }
    let errors = tally.errors.lock().unwrap().clone();
    let acknowledged = acknowledged.lock().unwrap().clone();
    println!(
        "fleet load: {} answers, {} client errors {errors:?}; done: {done:?}",
        tally.ok.load(Ordering::Relaxed),
        errors.len()
    );
    // Errors only for requests in flight on the killed instance: at most one per load task.
    assert!(errors.len() <= 5, "{errors:?}");
    assert!(done["sign-ins"] >= 30, "{done:?}");
    assert!(done["members"] >= 8, "{done:?}");

    // No acknowledged write lost: each member's metadata is the last write acknowledged.
    for (user_id, ns) in acknowledged.iter() {
        let n = ns.last().unwrap();
        let r = admin.get(format!("{lb}/v1/users/{user_id}")).bearer_auth(&key).send().await.unwrap();
        let user: Value = r.json().await.unwrap();
        assert!(user["public_metadata"]["n"].as_i64().unwrap() >= *n, "{user_id}: {user}");
    }
    // No sync op applied twice, and every pushed record is there once.
    assert!(applied.lock().unwrap().values().all(|n| *n <= 1), "{:?}", applied.lock().unwrap());
    for (user_id, session_id, b) in &members {
        let token: Value =
            b.post(format!("{lb}/v1/client/sessions/{session_id}/tokens")).send().await.unwrap().json().await.unwrap();
        let pull: Value = reqwest::Client::new()
            .get(format!("{lb}/v1/sync/pull?client_id=device-{user_id}&limit=1000"))
            .bearer_auth(token["jwt"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = pull["changes"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "{pull}");
        let pushed = applied.lock().unwrap().keys().filter(|k| k.starts_with(&format!("device-{user_id}-"))).count();
        assert_eq!(unique.len(), pushed, "every answered op's record, once");
    }
    // Sessions and tokens are valid on every instance, reached directly.
    for inst in &instances {
        let direct = format!("http://127.0.0.1:{}", inst.port);
        for (_, session_id, b) in &members {
            let r = b.post(format!("{direct}/v1/client/sessions/{session_id}/tokens")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{direct}");
        }
    }
    // Every user.updated event delivered at least once, each under one id with one body.
    let expected: usize = acknowledged.values().map(Vec::len).sum();
    let delivered = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let by_id: BTreeMap<String, Value> = deliveries.lock().unwrap().iter().cloned().collect();
            if by_id.len() >= expected {
                return by_id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("every event is delivered");
    for (id, body) in deliveries.lock().unwrap().iter() {
        assert_eq!(&delivered[id], body, "one id, one event");
    }
    for (user_id, ns) in acknowledged.iter() {
        let seen = |k: &i64| {
            delivered.values().any(|b| b["data"]["id"] == user_id.as_str() && b["data"]["public_metadata"]["n"] == *k)
        };
        assert!(ns.iter().all(seen), "{user_id}: every acknowledged update was announced");
    }

    // A guesser spreading wrong passwords over the instances: three a minute in all, as one
    // instance would allow, not three per instance.
    let mut refused = 0;
    for i in 0..9 {
        let form = [("identifier", "signer0@example.com"), ("strategy", "password"), ("password", "wrong")];
        let r = browser().post(format!("{lb}/v1/client/sign_ins")).form(&form).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        } else {
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "guess {i}");
        }
    }
    // signer0 signed in once during the load, within this minute's budget too.
    assert!(refused >= 9 - 3, "{refused} of 9 refused");
    drop(balancer);
    for inst in instances.iter_mut() {
        if let Some(s) = inst.server.take() {
            s.stop().await;
        }
    }
}
