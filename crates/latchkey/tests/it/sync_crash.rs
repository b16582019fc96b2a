//! The real server killed with SIGKILL at random moments while four clients push, and started
//! again on the same database while they retry: every operation is taken exactly once, in
//! each client's order, and the final state is the merge of every operation written.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use latchkey_core::sync::merge::{merge, Change, RecordState};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::harness::Browser;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
const CLIENTS: usize = 4;
const OPS_PER_CLIENT: usize = 120;
const KILLS: usize = 5;

pub(crate) async fn spawn(dir: &Path, port: u16, env: &[(&str, &str)]) -> (Child, Option<String>) {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("LATCHKEY_LOG", "warn")
        .env("LATCHKEY_RATE_LIMITS__ENABLED", "false")
        .env_remove("LATCHKEY_DATABASE_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut key = None;
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(k) = line.split_whitespace().find(|w| w.starts_with("sk_live_")) {
                key = Some(k.to_owned());
            }
            if line.contains("next steps") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read).await.expect("latchkey starts");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, key)
}

struct Shared {
    browser: Browser,
    session_id: String,
    /// op_id → first (non-duplicate) results seen.
    first_results: Mutex<BTreeMap<String, u32>>,
    /// Attempts that found the server down (proof that the kills hit mid-run).
    refused: std::sync::atomic::AtomicUsize,
    /// Operations the server has taken so far (the killer waits for points of this progress).
    taken: std::sync::atomic::AtomicUsize,
    /// Clients holding back their last batch until every kill has happened.
    holding: std::sync::atomic::AtomicUsize,
    kills_done: std::sync::atomic::AtomicUsize,
}

impl Shared {
    async fn token(&self) -> Option<String> {
        let res = self
            .browser
            .http
            .post(self.browser.url(&format!("/v1/client/sessions/{}/tokens", self.session_id)))
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        body["jwt"].as_str().map(str::to_owned)
    }
}

/// One client: writes its operations in random batches and pushes each until it is taken,
/// whatever the server does meanwhile. Returns (client id, ops written).
async fn client(
    shared: Arc<Shared>,
    n: usize,
    seed: u64,
) -> (String, Vec<(String, Option<Map<String, Value>>, String)>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let id = format!("crash-client-{n}");
    let mut written = Vec::new();
    let mut seq = 1i64;
    while written.len() < OPS_PER_CLIENT {
        let size = rng.gen_range(1..=10).min(OPS_PER_CLIENT - written.len());
        if written.len() + size == OPS_PER_CLIENT {
            // The last batch waits for the kills, so they always fall while clients push.
            shared.holding.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            while shared.kills_done.load(std::sync::atomic::Ordering::SeqCst) < KILLS {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut ops = Vec::new();
        for _ in 0..size {
            let record = format!("baby-{}", rng.gen_range(0..6));
            let now = latchkey_core::Clock::now_ms(&latchkey_core::SystemClock);
            let hlc = format!("{now}-{seq}");
            let stamp = latchkey_core::sync::hlc::Stamp::parse(&hlc).unwrap().canonical(&id);
            let mut op = json!({"seq": seq, "op_id": format!("{id}-{seq}"), "space": "me", "table": "babies", "id": record, "hlc": hlc});
            let fields = if rng.gen_bool(0.15) {
                op["action"] = json!("delete");
                None
            } else {
                let mut f = Map::new();
                f.insert("name".into(), json!(format!("name {}", rng.gen_range(0..1000))));
                if rng.gen_bool(0.5) {
                    f.insert("color".into(), json!(["red", "blue", "green"][rng.gen_range(0..3)]));
                }
                op["action"] = json!("put");
                op["fields"] = Value::Object(f.clone());
                Some(f)
            };
            written.push((record, fields, stamp));
            ops.push(op);
            seq += 1;
        }
        let body = json!({"client_id": id, "schema_version": 1, "ops": ops});
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            assert!(tokio::time::Instant::now() < deadline, "client {n} could not push for two minutes");
            let Some(token) = shared.token().await else {
                shared.refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                continue;
            };
            let b = &shared.browser;
            let sent = b.http.post(b.url("/v1/sync/push")).bearer_auth(token).json(&body).send().await;
            let Ok(res) = sent else {
                shared.refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                continue; // the server is down: retry the same batch
            };
            if res.status() != StatusCode::OK {
                assert!(res.status().is_server_error() || res.status() == StatusCode::UNAUTHORIZED, "{}", res.status());
                tokio::time::sleep(Duration::from_millis(30)).await;
                continue;
            }
            let Ok(reply) = res.json::<Value>().await else { continue };
            shared.taken.fetch_add(size, std::sync::atomic::Ordering::SeqCst);
            let mut first = shared.first_results.lock().await;
            for r in reply["results"].as_array().unwrap() {
                let status = r["status"].as_str().unwrap();
                assert_ne!(status, "rejected", "{r}");
                if status != "duplicate" {
                    *first.entry(r["op_id"].as_str().unwrap().to_owned()).or_default() += 1;
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(10..60))).await;
    }
    (id, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_survive_sigkill_and_restart() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (mut server, key) = spawn(dir.path(), port, &[]).await;
    let key = key.expect("a secret key on first start");
    let base = format!("http://127.0.0.1:{port}");
    let admin = reqwest::Client::new();
    let created = admin
        .post(format!("{base}/v1/users"))
        .bearer_auth(&key)
        .json(&json!({"email_address": ["crash@example.com"], "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let user_id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let browser = Browser::new(&base);
    let r = browser
        .post(
            "/v1/client/sign_ins",
            &[
                ("identifier", "crash@example.com"),
                ("strategy", "password"),
                ("password", "correct horse battery staple"),
            ],
        )
        .await;
    let session_id = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    let shared = Arc::new(Shared {
        browser,
        session_id,
        first_results: Mutex::new(BTreeMap::new()),
        refused: Default::default(),
        taken: Default::default(),
        holding: Default::default(),
        kills_done: Default::default(),
    });

    let clients: Vec<_> =
        (0..CLIENTS).map(|n| tokio::spawn(client(shared.clone(), n, seed.wrapping_add(n as u64)))).collect();
    // Each kill waits for a random point of the clients' progress (or for every client to be
    // holding its last batch), then a random moment more, so it lands among pushes however fast
    // this machine is.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let total = CLIENTS * OPS_PER_CLIENT;
    let mut points: Vec<usize> = (0..KILLS).map(|_| rng.gen_range(total / 20..total * 3 / 4)).collect();
    points.sort_unstable();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    for point in points {
        while shared.taken.load(std::sync::atomic::Ordering::SeqCst) < point
            && shared.holding.load(std::sync::atomic::Ordering::SeqCst) < CLIENTS
        {
            assert!(tokio::time::Instant::now() < deadline, "the clients made no progress");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..40))).await;
        let pid = server.id().unwrap();
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status().await;
        let _ = server.wait().await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..100))).await;
        server = spawn(dir.path(), port, &[]).await.0;
        shared.kills_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let mut written = BTreeMap::new();
    for c in clients {
        let (id, ops) = c.await.unwrap();
        written.insert(id, ops);
    }

    // The final state is the merge of every operation, each taken once, in order.
    let mut expected: BTreeMap<String, RecordState> = BTreeMap::new();
    for ops in written.values() {
        for (record, fields, stamp) in ops {
            let state = expected.entry(record.clone()).or_default();
            merge(state, fields.as_ref().map_or(Change::Delete, Change::Put), stamp, &["name".to_owned()]).unwrap();
        }
    }
    let token = shared.token().await.unwrap();
    let page: Value = shared
        .browser
        .http
        .get(shared.browser.url("/v1/sync/pull?limit=1000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["has_more"], false);
    let held: BTreeMap<String, Value> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["fields"].clone()))
        .collect();
    let wanted: BTreeMap<String, Value> =
        expected.into_iter().filter(|(_, s)| s.is_live()).map(|(k, s)| (k, Value::Object(s.fields))).collect();
    assert_eq!(held, wanted, "seed {seed}");
    let first = shared.first_results.lock().await;
    for (id, ops) in &written {
        for seq in 1..=ops.len() {
            assert!(
                first.get(&format!("{id}-{seq}")).copied().unwrap_or(0) <= 1,
                "{id}-{seq} applied twice (seed {seed})"
            );
        }
    }
    let b = &shared.browser;
    for (id, ops) in &written {
        let r = b.send(b.http.get(b.url(&format!("/v1/sync/pull?client_id={id}&limit=1"))).bearer_auth(&token)).await;
        assert_eq!(r.body["last_seq"], ops.len() as i64, "{id}: every op taken (seed {seed})");
    }
    assert!(shared.refused.load(std::sync::atomic::Ordering::SeqCst) > 0, "no push ever found the server down");
    assert!(!user_id.is_empty());
    let _ = server.kill().await;
}
