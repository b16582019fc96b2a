//! Backend API benchmark: 100,000 users on SQLite, read through the real binary on loopback.
//! Usage: `cargo build --release -p latchkey -p latchkey-bench && target/release/bapi target/release/latchkey [users]`
//! Prints requests per second and p50/p99 latency for `GET /v1/users/{id}`,
//! `GET /v1/users?limit=100`, and a list filtered by email, plus the SQLite plan of each query.
#![allow(clippy::disallowed_methods)]

#[path = "../banner.rs"]
mod banner;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context};
use latchkey_store::{CodeFields, EmailRow, UserQuery, UserRecord, UserRow, UserStore};
use tokio::process::Command;

const CONCURRENCY: usize = 16;
const REQUESTS: usize = 4_000;

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `REQUESTS` GETs (paths from `path_for(i)`) with `CONCURRENCY` in flight.
async fn load(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path_for: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> anyhow::Result<(f64, f64, f64)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (http, base, key, path_for) = (http.clone(), base.to_owned(), key.to_owned(), path_for.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = worker;
            while i < REQUESTS {
                let t = Instant::now();
                let res = http.get(format!("{base}{}", path_for(i))).bearer_auth(&key).send().await?;
                let status = res.status();
                let body = res.bytes().await?;
                if !status.is_success() {
                    return Err(anyhow!("{status}: {}", String::from_utf8_lossy(&body)));
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                i += CONCURRENCY;
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    let p50 = percentile(&mut all, 0.50);
    let p99 = percentile(&mut all, 0.99);
    Ok((rps, p50, p99))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = std::fs::canonicalize(PathBuf::from(
        std::env::args().nth(1).unwrap_or_else(|| "target/release/latchkey".into()),
    ))?;
    let users: usize = std::env::args().nth(2).map(|n| n.parse()).transpose()?.unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut child = Command::new(&bin)
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting latchkey")?;
    let (url, key) = banner::read_banner(&mut child).await?;

    // Users go straight into the database (through the same store code the server uses).
    let store = latchkey_store_sqlite::open(&format!("sqlite://{}", data.join("latchkey.db").display())).await?;
    let seeded = Instant::now();
    let base_ms = 1_700_000_000_000i64;
    let mut ids = Vec::with_capacity(users);
    for i in 0..users {
        let id = format!("user_bench{i:022}");
        let at = base_ms + i as i64 * 1000;
        let email = EmailRow {
            id: format!("idn_bench{i:023}"),
            user_id: id.clone(),
            email: format!("bench{i}@example.com"),
            verified: true,
            verified_at: Some(at),
            code: CodeFields::default(),
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let mut user = UserRow::new(id.clone(), at);
        user.first_name = Some(format!("First{i}"));
        user.last_name = Some(format!("Last{}", i % 977));
        user.primary_email_id = Some(email.id.clone());
        store
            .create_user(&UserRecord {
                user,
                emails: vec![email],
                phones: vec![],
                external_accounts: vec![],
                second_factors: Default::default(),
                passkeys: Vec::new(),
            })
            .await?;
        ids.push(id);
    }
    println!("seeded {users} users in {:.1} s", seeded.elapsed().as_secs_f64());

    let plans: [(&str, UserQuery); 4] = [
        ("GET /v1/users?limit=100", UserQuery { limit: 100, descending: true, ..Default::default() }),
        (
            "GET /v1/users?email_address=…",
            UserQuery {
                email_addresses: vec!["bench7@example.com".into()],
                limit: 10,
                descending: true,
                ..Default::default()
            },
        ),
        (
            "GET /v1/users?query=bench7",
            UserQuery { query: Some("bench7".into()), limit: 10, descending: true, ..Default::default() },
        ),
        (
            "GET /v1/users?order_by=-last_active_at",
            UserQuery {
                order_by: latchkey_store::UserOrder::LastActiveAt,
                limit: 10,
                descending: true,
                ..Default::default()
            },
        ),
    ];
    for (name, q) in &plans {
        println!("plan {name}:");
        for step in store.explain_user_query("EXPLAIN QUERY PLAN", q).await? {
            println!("    {step}");
        }
    }

    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build()?;
    let n = ids.len();
    let ids = Arc::new(ids);
    let by_id = {
        let ids = ids.clone();
        Arc::new(move |i: usize| format!("/v1/users/{}", ids[(i * 7919) % n]))
            as Arc<dyn Fn(usize) -> String + Send + Sync>
    };
    let page: Arc<dyn Fn(usize) -> String + Send + Sync> = Arc::new(|_| "/v1/users?limit=100".to_owned());
    let by_email: Arc<dyn Fn(usize) -> String + Send + Sync> =
        Arc::new(move |i| format!("/v1/users?email_address=bench{}@example.com", (i * 7919) % n));
    // Warm-up, then the measured runs.
    load(&http, &url, &key, by_id.clone()).await?;
    for (name, f) in
        [("GET /v1/users/{id}", by_id), ("GET /v1/users?limit=100", page), ("GET /v1/users?email_address=…", by_email)]
    {
        let (rps, p50, p99) = load(&http, &url, &key, f).await?;
        println!("{name:<34} {rps:>8.0} req/s   p50 {p50:>6.2} ms   p99 {p99:>6.2} ms   ({REQUESTS} requests, {CONCURRENCY} in flight)");
    }
    let _ = child.kill().await;
    Ok(())
}
