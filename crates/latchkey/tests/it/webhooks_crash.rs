//! The real server killed with SIGKILL at random moments while users are created and their
//! events delivered to a slow receiver, then started again on the same SQLite file: every
//! event of an acknowledged change arrives at least once, under one stable id, and no event
//! arrives for a change that did not happen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::sync_crash::spawn;
use crate::webhooks::Receiver;

const USERS: usize = 200;
const KILLS: usize = 4;
/// A short attempt timeout makes the claim lease short (2 × timeout + 5 s), so deliveries
/// cut off by a kill come due again within the test's time.
const ENV: &[(&str, &str)] = &[("LATCHKEY_WEBHOOKS__TIMEOUT_SECS", "1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_sigkill_and_restart() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (mut server, key) = spawn(dir.path(), port, ENV).await;
    let key = key.expect("a secret key on first start");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let rx = Receiver::start().await;
    rx.delay.store(250, std::sync::atomic::Ordering::Relaxed);
    let r = http
        .post(format!("{base}/v1/webhooks/endpoints"))
        .bearer_auth(&key)
        .json(&json!({"url": rx.url, "events": ["user.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let endpoint = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    // The creator retries each user until one answer says it exists (a retry after a lost
    // answer may meet "taken": the first attempt had landed).
    // It holds back its last user until every kill has happened, so the kills always fall
    // while users are being created, however fast this machine is.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let kills_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let creator = {
        let (http, base, key, acknowledged, refused, kills_done) =
            (http.clone(), base.clone(), key.clone(), acknowledged.clone(), refused.clone(), kills_done.clone());
        tokio::spawn(async move {
            for n in 0..USERS {
                if n == USERS - 1 {
                    while kills_done.load(std::sync::atomic::Ordering::SeqCst) < KILLS {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                let email = format!("crash{n}@example.com");
                loop {
                    let sent = http
                        .post(format!("{base}/v1/users"))
                        .bearer_auth(&key)
                        .json(&json!({"email_address": [email]}))
                        .send()
                        .await;
                    match sent {
                        Ok(res) if res.status() == StatusCode::OK => {
                            let body: Value = res.json().await.unwrap_or_default();
                            acknowledged.lock().await.insert(body["id"].as_str().unwrap_or_default().to_owned());
                            break;
                        }
                        Ok(res) if res.status().is_client_error() => break,
                        _ => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        })
    };

    // Each kill waits for the creator to reach a random point of its progress (an event, not
    // a guessed delay), then a random moment more, so it lands in the middle of requests.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut points: Vec<usize> = (0..KILLS).map(|_| rng.gen_range(5..USERS - 5)).collect();
    points.sort_unstable();
    for point in points {
        while acknowledged.lock().await.len() < point {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..40))).await;
        let pid = server.id().unwrap();
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status().await;
        let _ = server.wait().await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..100))).await;
        server = spawn(dir.path(), port, ENV).await.0;
        kills_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    creator.await.unwrap();
    assert!(refused.load(std::sync::atomic::Ordering::Relaxed) > 0, "no request ever found the server down");

    // Every acknowledged user's event arrives, and nothing stays owed (leases of cut-off
    // attempts run out in ≤ 7 s, then they are sent again).
    let acknowledged = acknowledged.lock().await.clone();
    assert!(!acknowledged.is_empty());
    let delivered = || async {
        rx.all()
            .await
            .iter()
            .map(|m| m.json()["data"]["id"].as_str().unwrap_or_default().to_owned())
            .collect::<BTreeSet<_>>()
    };
    let pending = || async {
        let r = http
            .get(format!("{base}/v1/webhooks/endpoints/{endpoint}/deliveries?status=pending"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["total_count"].as_i64().unwrap()
    };
    for _ in 0..400 {
        if acknowledged.is_subset(&delivered().await) && pending().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = rx.all().await;
    let ids = delivered().await;
    let missing: Vec<&String> = acknowledged.difference(&ids).collect();
    assert!(missing.is_empty(), "events never delivered for {missing:?}");
    assert_eq!(pending().await, 0, "deliveries still owed");

    // One id per event, the same bytes whenever it is sent again; one event per user.
    let mut by_message: BTreeMap<String, String> = BTreeMap::new();
    let mut message_of_user: BTreeMap<String, String> = BTreeMap::new();
    for m in &got {
        let id = m.header("webhook-id").to_owned();
        if let Some(body) = by_message.insert(id.clone(), m.body.clone()) {
            assert_eq!(body, m.body, "{id} was sent again with other content");
        }
        let user = m.json()["data"]["id"].as_str().unwrap().to_owned();
        if let Some(first) = message_of_user.insert(user.clone(), id.clone()) {
            assert_eq!(first, id, "two events for the creation of {user}");
        }
    }
    // No event without its change: each delivered user exists.
    for user in &ids {
        let r = http.get(format!("{base}/v1/users/{user}")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "an event for {user}, who does not exist");
    }
    let r = http
        .get(format!("{base}/v1/webhooks/endpoints/{endpoint}/deliveries?limit=500"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let failures: Vec<String> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["attempts"].as_array().unwrap().iter())
        .filter(|a| a["succeeded"] == false)
        .map(|a| a["error"].as_str().unwrap_or_default().to_owned())
        .collect();
    println!("{KILLS} kills, {} deliveries of {} events, failed attempts: {failures:?}", got.len(), by_message.len());
    // The receiver answers slowly, so kills cut attempts off mid-send: those were sent again.
    assert!(got.len() > by_message.len(), "no kill landed during a delivery");
    let _ = server.kill().await;
}
