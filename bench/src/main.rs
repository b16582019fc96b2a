//! Identity-core benchmarks against the real `latchkey` binary on loopback (SQLite).
//! Usage: `cargo build --release -p latchkey -p latchkey-bench && target/release/latchkey-bench target/release/latchkey`
//! Every figure that is compared is a ratio of two measurements taken in this one run.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "benchmark passphrase 2026";

struct Server {
    child: Child,
    url: String,
}

async fn start(bin: &Path, dir: &Path) -> anyhow::Result<(Server, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_RATE_LIMITS__ENABLED", "false")
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?).lines();
    let mut url = String::new();
    while let Some(line) = lines.next_line().await? {
        if let Some(u) = line.strip_prefix("latchkey listening on ") {
            url = u.trim().to_owned();
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok((Server { child, url }, started.elapsed()))
}

impl Server {
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().ok_or_else(|| anyhow!("exited"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or_else(|| anyhow!("no VmRSS"))?;
        Ok(line.split_whitespace().nth(1).unwrap_or("0").parse()?)
    }
    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx.min(samples.len() - 1)]
}

async fn healthz_latencies(http: &reqwest::Client, url: &str, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let _ = http.get(format!("{url}/healthz")).send().await.and_then(|r| r.error_for_status());
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

async fn sign_in(http: &reqwest::Client, url: &str, user: usize) -> bool {
    let email = format!("bench{user}@example.com");
    match http
        .post(format!("{url}/v1/client/sign_ins"))
        .form(&[("identifier", email.as_str()), ("strategy", "password"), ("password", PASSWORD)])
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

fn raw_argon2_rate(threads: usize, secs: f64) -> f64 {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let count = count.clone();
            std::thread::spawn(move || {
                let params = argon2::Params::new(19_456, 2, 1, Some(32)).unwrap_or_default();
                let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
                let salt = SaltString::from_b64("YmVuY2htYXJrc2FsdHNhbHQ")
                    .unwrap_or_else(|_| SaltString::generate(&mut rand_core()));
                while Instant::now() < deadline {
                    let _ = a.hash_password(PASSWORD.as_bytes(), &salt);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / secs
}

fn rand_core() -> argon2::password_hash::rand_core::OsRng {
    argon2::password_hash::rand_core::OsRng
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/release/latchkey".into()));
    let bin = std::fs::canonicalize(&bin).with_context(|| format!("build it first: {}", bin.display()))?;
    let dir = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    println!("machine: {cores} cores; latchkey at {}", bin.display());

    // Users, made with the CLI before the server runs.
    let users = 16;
    for i in 0..users {
        let mut c = Command::new(&bin)
            .current_dir(dir.path())
            .args(["users", "create", "--email", &format!("bench{i}@example.com"), "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = c.stdin.take() {
            stdin.write_all(format!("{PASSWORD}\n").as_bytes()).await?;
        }
        c.wait().await?;
    }

    // Ready time and idle memory on an existing database.
    let mut ready = Vec::new();
    for _ in 0..5 {
        let (s, t) = start(&bin, dir.path()).await?;
        ready.push(t.as_secs_f64() * 1000.0);
        s.stop().await;
    }
    let (server, _) = start(&bin, dir.path()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = server.rss_kib()?;
    let url = server.url.clone();
    println!(
        "ready on an existing database: median {:.0} ms (5 starts: {:?})",
        percentile(&mut ready.clone(), 0.5),
        ready.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!("idle RSS: {:.1} MiB", idle_rss as f64 / 1024.0);

    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    // Warm up.
    let _ = healthz_latencies(&http, &url, 500).await;
    let mut idle = healthz_latencies(&http, &url, 10_000).await;
    let idle_p50 = percentile(&mut idle, 0.5);
    let idle_p99 = percentile(&mut idle, 0.99);

    // 8 concurrent sign-in loops while /healthz is probed. Sign-in windows alternate with
    // windows of raw hashing (the server idle), so machine noise falls on both alike.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut loops = Vec::new();
    for w in 0..8 {
        let (http, url, stop, paused, done) = (http.clone(), url.clone(), stop.clone(), paused.clone(), done.clone());
        loops.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                if paused.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                if sign_in(&http, &url, i % users).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                i += 8;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut loaded = Vec::new();
    let (mut sign_in_count, mut sign_in_secs, mut raw_count, mut raw_secs) = (0u64, 0f64, 0f64, 0f64);
    let mut peak_rss = 0;
    for _window in 0..5 {
        paused.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = done.load(Ordering::Relaxed);
        let t = Instant::now();
        loaded.extend(healthz_latencies(&http, &url, 2000).await);
        while t.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sign_in_count += done.load(Ordering::Relaxed) - before;
        sign_in_secs += t.elapsed().as_secs_f64();
        peak_rss = peak_rss.max(server.rss_kib()?);
        paused.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let secs = 2.0;
        let rate = tokio::task::spawn_blocking(move || raw_argon2_rate(cores, secs)).await?;
        raw_count += rate * secs;
        raw_secs += secs;
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
    let sign_ins_per_sec = sign_in_count as f64 / sign_in_secs;
    let loaded_p99 = percentile(&mut loaded, 0.99);
    println!("/healthz idle: p50 {idle_p50:.3} ms, p99 {idle_p99:.3} ms");
    println!("/healthz with 8 concurrent sign-ins: p50 {:.3} ms, p99 {loaded_p99:.3} ms", percentile(&mut loaded, 0.5));
    println!("  ratio p99 loaded / idle: {:.2}x (target <= 5x)", loaded_p99 / idle_p99);
    println!("RSS under sign-in load: {:.1} MiB", peak_rss as f64 / 1024.0);

    let raw = raw_count / raw_secs;
    println!("sign-ins per second (8 concurrent clients, 5 windows of 3 s): {sign_ins_per_sec:.1}");
    println!(
        "raw argon2id m=19456,t=2,p=1 hashes per second on {cores} threads (5 windows of 2 s, between them): {raw:.1}"
    );
    println!("  ratio sign-in / raw hash: {:.2}x (target >= 0.8x)", sign_ins_per_sec / raw);

    // Token refresh: one signed-in client, 8 concurrent refreshers.
    let r = http
        .post(format!("{url}/v1/client/sign_ins"))
        .form(&[("identifier", "bench0@example.com"), ("strategy", "password"), ("password", PASSWORD)])
        .send()
        .await?;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__client="))
        .and_then(|c| c.split(';').next())
        .ok_or_else(|| anyhow!("no client cookie"))?
        .to_owned();
    let body: serde_json::Value = r.json().await?;
    let sid = body["response"]["created_session_id"].as_str().ok_or_else(|| anyhow!("no session"))?.to_owned();
    let refreshed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (http, url, cookie, sid, refreshed) =
            (http.clone(), url.clone(), cookie.clone(), sid.clone(), refreshed.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let ok = http
                    .post(format!("{url}/v1/client/sessions/{sid}/tokens"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    refreshed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    println!(
        "token refresh (client cookie -> new session token), 8 concurrent: {:.0} requests/s",
        refreshed.load(Ordering::Relaxed) as f64 / 10.0
    );
    server.stop().await;
    Ok(())
}
