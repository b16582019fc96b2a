//! Sync benchmark, over HTTP on loopback against the real binary: one client pushes 10,000
//! records of about 220 bytes in batches of 100, then a fresh client pulls them all
//! (gzip, decompressed and parsed by the client: end to end). Server RSS is sampled every
//! 5 ms throughout. Three rounds, each into a new user's space; the median is reported.
//! Usage: `cargo build --release -p latchkey -p latchkey-bench &&
//!   target/release/sync target/release/latchkey [postgres://…]`
#![allow(clippy::disallowed_methods)]

#[path = "../banner.rs"]
mod banner;

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

const RECORDS: usize = 10_000;
const BATCH: usize = 100;
const PULL_LIMIT: usize = 2_000;
const ROUNDS: usize = 3;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0)
}

/// A feed of about 220 bytes of JSON fields.
fn record(i: usize) -> Value {
    json!({
        "baby_id": "baby_00000000000000000001",
        "kind": "bottle",
        "side": "left",
        "started_at": 1_700_000_000_000_i64 + i as i64 * 60_000,
        "ended_at": 1_700_000_000_000_i64 + i as i64 * 60_000 + 900_000,
        "amount_ml": 120 + (i % 50) as i64,
        "note": format!("{i:06} took the bottle well, a little fussy at the end, burped twice"),
    })
}

struct Session {
    http: reqwest::Client,
    base: String,
    session_id: String,
}

impl Session {
    async fn token(&self) -> anyhow::Result<String> {
        let r: Value = self
            .http
            .post(format!("{}/v1/client/sessions/{}/tokens", self.base, self.session_id))
            .send()
            .await?
            .json()
            .await?;
        r["jwt"].as_str().map(str::to_owned).ok_or_else(|| anyhow!("no token: {r}"))
    }
}

async fn sign_in(base: &str, key: &str, email: &str) -> anyhow::Result<Session> {
    let password = "benchmark passphrase 2026";
    let admin = reqwest::Client::new();
    let created = admin
        .post(format!("{base}/v1/users"))
        .bearer_auth(key)
        .json(&json!({"email_address": [email], "password": password}))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!("creating the user: {}", created.text().await?);
    }
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let r: Value = http
        .post(format!("{base}/v1/client/sign_ins"))
        .form(&[("identifier", email), ("strategy", "password"), ("password", password)])
        .send()
        .await?
        .json()
        .await?;
    let session_id = r["response"]["created_session_id"].as_str().ok_or_else(|| anyhow!("no session: {r}"))?;
    Ok(Session { http, base: base.to_owned(), session_id: session_id.to_owned() })
}

struct Round {
    push_ops_per_sec: f64,
    pull_records_per_sec: f64,
    wire_bytes: usize,
    json_bytes: usize,
}

async fn round(base: &str, key: &str, n: usize, pid: u32) -> anyhow::Result<Round> {
    let session = sign_in(base, key, &format!("bench{n}@example.com")).await?;
    let after_sign_in = rss_kib(pid);
    let http = reqwest::Client::new();
    let batches: Vec<String> = (0..RECORDS / BATCH)
        .map(|b| {
            let ops: Vec<Value> = (0..BATCH)
                .map(|i| {
                    let k = b * BATCH + i;
                    json!({"seq": k + 1, "op_id": format!("op_{n}_{k:06}"), "space": "me", "table": "feeds",
                        "id": format!("feed_{k:06}"), "action": "put", "fields": record(k), "hlc": format!("1700000000000-{k}")})
                })
                .collect();
            json!({"client_id": format!("pusher{n}"), "schema_version": 1, "ops": ops}).to_string()
        })
        .collect();
    let token = session.token().await?;
    let started = Instant::now();
    for body in batches {
        let res = http
            .post(format!("{base}/v1/sync/push"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("push: {}", res.text().await?);
        }
        let done: Value = res.json().await?;
        if done["results"][BATCH - 1]["status"] != "applied" {
            bail!("push not applied: {done}");
        }
    }
    let push_secs = started.elapsed().as_secs_f64();
    let after_push = rss_kib(pid);

    let token = session.token().await?;
    let started = Instant::now();
    let (mut cursor, mut got, mut wire, mut json_bytes) = (String::new(), 0, 0, 0);
    loop {
        let url = format!("{base}/v1/sync/pull?client_id=puller{n}&limit={PULL_LIMIT}&cursor={cursor}");
        let res = http.get(url).bearer_auth(&token).header("accept-encoding", "gzip").send().await?;
        if res.headers().get("content-encoding").and_then(|v| v.to_str().ok()) != Some("gzip") {
            bail!("pull not compressed");
        }
        let compressed = res.bytes().await?;
        wire += compressed.len();
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut text)?;
        json_bytes += text.len();
        let page: Value = serde_json::from_slice(&text)?;
        got += page["changes"].as_array().map_or(0, Vec::len);
        cursor = page["cursor"].as_str().unwrap_or_default().to_owned();
        if page["has_more"] != true {
            break;
        }
    }
    let pull_secs = started.elapsed().as_secs_f64();
    println!(
        "  RSS after sign-in {:.1} MiB, after push {:.1} MiB, after pull {:.1} MiB",
        after_sign_in as f64 / 1024.0,
        after_push as f64 / 1024.0,
        rss_kib(pid) as f64 / 1024.0
    );
    if got != RECORDS {
        bail!("pulled {got} records, expected {RECORDS}");
    }
    Ok(Round {
        push_ops_per_sec: RECORDS as f64 / push_secs,
        pull_records_per_sec: RECORDS as f64 / pull_secs,
        wire_bytes: wire,
        json_bytes,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = std::fs::canonicalize(PathBuf::from(
        std::env::args().nth(1).unwrap_or_else(|| "target/release/latchkey".into()),
    ))?;
    let postgres = std::env::args().nth(2);
    let dir = tempfile::tempdir()?;
    let (mut child, url, key) = banner::start_server(&bin, dir.path(), postgres.as_deref()).await?;
    let pid = child.id().ok_or_else(|| anyhow!("no pid"))?;
    if key.is_empty() {
        bail!("no secret key was printed: use a fresh database");
    }
    let idle = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(idle));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut rounds = Vec::new();
    for n in 0..ROUNDS {
        let r = round(&url, &key, n, pid).await?;
        println!(
            "round {n}: push {:>8.0} ops/s   pull {:>8.0} records/s   pull on the wire {} bytes (JSON {} bytes)",
            r.push_ops_per_sec, r.pull_records_per_sec, r.wire_bytes, r.json_bytes
        );
        rounds.push(r);
    }
    stop.store(true, Ordering::Relaxed);
    sampler.await?;
    let backend = if postgres.is_some() { "PostgreSQL" } else { "SQLite" };
    println!(
        "backend {backend}, {RECORDS} records in batches of {BATCH}, pulled {PULL_LIMIT} per page, median of {ROUNDS}:"
    );
    println!("  push  {:>8.0} ops/s", median(rounds.iter().map(|r| r.push_ops_per_sec).collect()));
    println!("  pull  {:>8.0} records/s", median(rounds.iter().map(|r| r.pull_records_per_sec).collect()));
    println!("  pull on the wire {} bytes gzip, {} bytes JSON", rounds[0].wire_bytes, rounds[0].json_bytes);
    println!(
        "  server RSS idle {:.1} MiB, peak {:.1} MiB",
        idle as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
    let _ = child.kill().await;
    Ok(())
}
