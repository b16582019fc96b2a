//! Webhook benchmark. (1) What the outbox adds to a user update, in the store: the same
//! update on SQLite without and with its event (p50, p99). (2) Over HTTP against the real
//! binary: `PATCH /v1/users/{id}` latency with no endpoint and with one endpoint whose
//! deliveries run meanwhile. (3) Delivery throughput: every message so far replayed to a
//! fast local receiver, events per second until the last arrives.
//! Usage: `cargo build --release -p latchkey -p latchkey-bench &&
//!   target/release/webhooks target/release/latchkey [postgres://…]`
#![allow(clippy::disallowed_methods)]

#[path = "../banner.rs"]
mod banner;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use latchkey_store::{OutboxEvent, Store, UserRecord, UserRow, UserStore};
use serde_json::{json, Value};

const UPDATES: usize = 1_000;

fn percentiles(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (at(0.50), at(0.99))
}

/// (1): the outbox's cost inside the store, without HTTP.
async fn store_cost() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = latchkey_store_sqlite::open(&url).await?;
    let mut user = UserRow::new("user_bench".into(), 1_000);
    store
        .create_user(&UserRecord {
            user: user.clone(),
            emails: vec![],
            phones: vec![],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        })
        .await?;
    // A user.updated payload of the usual size (about 1.4 KB).
    let payload = json!({"data": {"object": "user", "id": "user_bench", "first_name": "x".repeat(1_200)}, "object": "event", "type": "user.updated"}).to_string();
    let (mut plain, mut with_event) = (Vec::new(), Vec::new());
    for i in 0..UPDATES * 2 {
        user.version += 1;
        user.first_name = Some(format!("n{i}"));
        let started = Instant::now();
        if i % 2 == 0 {
            store.update_user(&user).await?;
            plain.push(started.elapsed().as_secs_f64() * 1000.0);
        } else {
            let event = OutboxEvent {
                id: format!("msg_bench{i}"),
                event_type: "user.updated".into(),
                payload: payload.clone(),
                created_at: 1_000,
                revocation: None,
            };
            store.emitting(vec![event]).update_user(&user).await?;
            with_event.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let (p50, p99) = percentiles(plain);
    let (e50, e99) = percentiles(with_event);
    println!("store (SQLite), {UPDATES} updates each, interleaved:");
    println!("  update_user alone            p50 {p50:.3} ms   p99 {p99:.3} ms");
    println!(
        "  update_user with its event   p50 {e50:.3} ms   p99 {e99:.3} ms   (outbox adds {:.3} ms at p50)",
        e50 - p50
    );
    Ok(())
}

/// A fast receiver: 204 to every POST, counting them.
async fn receiver() -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, count))
}

async fn updates(http: &reqwest::Client, base: &str, key: &str, user: &str, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let r = http
            .patch(format!("{base}/v1/users/{user}"))
            .bearer_auth(key)
            .json(&json!({"first_name": format!("n{i}")}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("update: {}", r.text().await?);
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(percentiles(ms))
}

async fn wait_for(count: &AtomicU64, n: u64, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while count.load(Ordering::Relaxed) < n {
        if started.elapsed() > limit {
            bail!("{} of {n} deliveries after {limit:?}", count.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = std::fs::canonicalize(PathBuf::from(
        std::env::args().nth(1).unwrap_or_else(|| "target/release/latchkey".into()),
    ))?;
    let postgres = std::env::args().nth(2);
    if postgres.is_none() {
        store_cost().await?;
    }
    let dir = tempfile::tempdir()?;
    let (mut child, base, key) = banner::start_server(&bin, dir.path(), postgres.as_deref()).await?;
    if key.is_empty() {
        bail!("the database must be fresh (no secret key was printed)");
    }
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/v1/users"))
        .bearer_auth(&key)
        .json(&json!({"email_address": ["bench@example.com"]}))
        .send()
        .await?
        .json()
        .await?;
    let user = created["id"].as_str().ok_or_else(|| anyhow!("no user: {created}"))?.to_owned();
    println!(
        "HTTP against {} ({}), {UPDATES} sequential PATCH /v1/users/{{id}}:",
        bin.display(),
        postgres.as_deref().map_or("SQLite", |_| "PostgreSQL")
    );
    let (p50, p99) = updates(&http, &base, &key, &user, UPDATES).await?;
    println!("  no endpoint                            p50 {p50:.2} ms   p99 {p99:.2} ms");

    let (hook, delivered) = receiver().await?;
    let endpoint = |url: &str| json!({"url": url, "events": ["user.updated"]});
    let r: Value = http
        .post(format!("{base}/v1/webhooks/endpoints"))
        .bearer_auth(&key)
        .json(&endpoint(&hook))
        .send()
        .await?
        .json()
        .await?;
    r["id"].as_str().ok_or_else(|| anyhow!("no endpoint: {r}"))?;
    let (p50, p99) = updates(&http, &base, &key, &user, UPDATES).await?;
    println!("  one endpoint, delivering meanwhile     p50 {p50:.2} ms   p99 {p99:.2} ms");
    wait_for(&delivered, UPDATES as u64, Duration::from_secs(60)).await?;

    // Throughput: every user.updated so far, replayed at once to a second fast receiver.
    let (hook2, delivered2) = receiver().await?;
    let r: Value = http
        .post(format!("{base}/v1/webhooks/endpoints"))
        .bearer_auth(&key)
        .json(&endpoint(&hook2))
        .send()
        .await?
        .json()
        .await?;
    let id = r["id"].as_str().ok_or_else(|| anyhow!("no endpoint: {r}"))?.to_owned();
    let started = Instant::now();
    let r: Value = http
        .post(format!("{base}/v1/webhooks/endpoints/{id}/replay"))
        .bearer_auth(&key)
        .json(&json!({"since": 0}))
        .send()
        .await?
        .json()
        .await?;
    let queued = r["queued"].as_u64().ok_or_else(|| anyhow!("no replay: {r}"))?;
    wait_for(&delivered2, queued, Duration::from_secs(120)).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "throughput: {queued} events replayed to a fast local receiver in {secs:.2} s: {:.0} events/s",
        queued as f64 / secs
    );
    let _ = child.kill().await;
    Ok(())
}
