//! How soon a guard following the revocation feed refuses a token after the change, and what
//! following costs per request (docs/revocations.md).
//!
//! - 100 changes against a release `latchkey serve` on SQLite, 25 of each kind: a session
//!   revoked, a user banned, a member removed, a role changed. For each, the time from sending
//!   the Backend API request that makes the change until the guard (polling `verify` every
//!   millisecond) refuses the still-unexpired token: p50, p99 and the worst.
//! - `Guard::verify` of a cached token, a million times, without the feed and following it
//!   (with the entries of the 100 changes held): nanoseconds per call, and the ratio.
//! - `wrk` against a protected route (one tokio worker, a valid bearer token, cache warm) behind
//!   a guard that does not follow the feed and behind the following guard, alternately, twice
//!   each: requests a second and the ratio of the best runs (needs `wrk` on PATH).
//!
//! Usage: `cargo build --release -p latchkey -p latchkey-bench &&
//!   target/release/revocations target/release/latchkey`
#![allow(clippy::disallowed_methods)]

#[path = "../banner.rs"]
mod banner;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use latchkey_axum::{FeedFailure, Guard, GuardConfig, KeySource};
use serde_json::{json, Value};

struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("{path}: {status} {body}");
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn token(&self, session: &str) -> anyhow::Result<String> {
        let t = self.post(&format!("/v1/sessions/{session}/tokens"), json!({})).await?;
        Ok(t["jwt"].as_str().context("jwt")?.to_owned())
    }
}

fn id(v: &Value) -> anyhow::Result<String> {
    Ok(v["id"].as_str().context("id")?.to_owned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = std::env::args().nth(1).unwrap_or_else(|| "target/release/latchkey".into());
    let bin = Path::new(&bin).canonicalize()?;
    let dir = tempfile::tempdir()?;
    let (_child, url, key) = banner::start_server(&bin, dir.path(), None).await?;
    let api = Api { http: reqwest::Client::new(), url: url.clone(), key: key.clone() };
    let guard = Guard::new(GuardConfig::new(KeySource::Issuer(url.clone())))?;

    // Without the feed first: the guard's own cost per cached verification.
    let user = api.post("/v1/users", json!({"email_address": ["warm@example.com"]})).await?;
    let session = api.post("/v1/sessions", json!({"user_id": user["id"]})).await?;
    let warm = api.token(&id(&session)?).await?;
    guard.verify(&warm).await?;
    let off = per_call(&guard, &warm).await?;

    let feed = guard.follow_revocations(key.clone(), FeedFailure::Open)?;
    while !guard.revocation_status().connected {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let owner = id(&api.post("/v1/users", json!({"email_address": ["owner@example.com"]})).await?)?;
    let org = id(&api.post("/v1/organizations", json!({"name": "Bench", "created_by": owner})).await?)?;
    let mut latencies: Vec<(String, f64)> = Vec::new();
    for i in 0..100 {
        let kind = ["session revoked", "user banned", "member removed", "role changed"][i % 4];
        let user = id(&api.post("/v1/users", json!({"email_address": [format!("u{i}@example.com")]})).await?)?;
        let in_org = kind == "member removed" || kind == "role changed";
        let members = format!("/v1/organizations/{org}/memberships");
        if in_org {
            api.post(&members, json!({"user_id": user, "role": "org:admin"})).await?;
        }
        let body =
            if in_org { json!({"user_id": user, "active_organization_id": org}) } else { json!({"user_id": user}) };
        let session = id(&api.post("/v1/sessions", body).await?)?;
        let token = api.token(&session).await?;
        guard.verify(&token).await.context("a fresh token verifies")?;
        let started = Instant::now();
        match kind {
            "session revoked" => drop(api.post(&format!("/v1/sessions/{session}/revoke"), json!({})).await?),
            "user banned" => drop(api.post(&format!("/v1/users/{user}/ban"), json!({})).await?),
            "member removed" => drop(api.call(reqwest::Method::DELETE, &format!("{members}/{user}"), None).await?),
            _ => drop(
                api.call(reqwest::Method::PATCH, &format!("{members}/{user}"), Some(json!({"role": "org:member"})))
                    .await?,
            ),
        }
        loop {
            if guard.verify(&token).await.is_err() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{kind}: still accepted after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push((kind.to_owned(), started.elapsed().as_secs_f64() * 1000.0));
    }
    let on = per_call(&guard, &warm).await?;
    let routes = route_throughput(&url, guard.clone(), &warm).await?;
    feed.abort();

    let mut all: Vec<f64> = latencies.iter().map(|(_, ms)| *ms).collect();
    all.sort_by(f64::total_cmp);
    println!("revocation heard (request sent → token refused), {} changes:", all.len());
    println!(
        "  all           p50 {:>6.1} ms   p99 {:>6.1} ms   max {:>6.1} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all[all.len() - 1]
    );
    for kind in ["session revoked", "user banned", "member removed", "role changed"] {
        let mut of: Vec<f64> = latencies.iter().filter(|(k, _)| k == kind).map(|(_, ms)| *ms).collect();
        of.sort_by(f64::total_cmp);
        println!("  {kind:<14} p50 {:>6.1} ms   max {:>6.1} ms", percentile(&of, 0.5), of[of.len() - 1]);
    }
    let status = guard.revocation_status();
    println!(
        "Guard::verify of a cached token: {off:.0} ns without the feed, {on:.0} ns following it ({} entries held): {:.2}×",
        status.entries,
        on / off
    );
    let (unfollowed, followed) = routes;
    println!(
        "protected route (wrk, 1 worker, 16 connections, best of 2 × 8 s): {unfollowed:.0} req/s without the feed, \
         {followed:.0} req/s following it: {:.3}× (target >= 0.95×)",
        followed / unfollowed
    );
    Ok(())
}

/// Requests a second through a protected route behind a guard that does not follow the feed
/// and behind `following`, each served by one tokio worker of its own, measured alternately.
async fn route_throughput(issuer: &str, following: Guard, token: &str) -> anyhow::Result<(f64, f64)> {
    let unfollowed = Guard::new(GuardConfig::new(KeySource::Issuer(issuer.to_owned())))?;
    unfollowed.verify(token).await?;
    let mut urls = Vec::new();
    for guard in [unfollowed, following] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        urls.push(format!("http://{}/hello", listener.local_addr()?));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let app =
                    axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" })).layer(guard.layer());
                axum::serve(tokio::net::TcpListener::from_std(listener)?, app).await
            })
        });
    }
    let auth = format!("Authorization: Bearer {token}");
    let mut best = [0.0f64; 2];
    for _ in 0..2 {
        for (i, url) in urls.iter().enumerate() {
            let out = std::process::Command::new("wrk")
                .args(["-t1", "-c16", "-d8s", "-H", &auth, url])
                .output()
                .context("wrk on PATH (apt-get install wrk)")?;
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("Non-2xx") {
                bail!("wrk saw errors:\n{text}");
            }
            let rps: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("Requests/sec:"))
                .context("wrk's Requests/sec")?
                .trim()
                .parse()?;
            best[i] = best[i].max(rps);
        }
    }
    Ok((best[0], best[1]))
}

/// Nanoseconds per `verify` of a cached token (the best of three rounds of a million).
async fn per_call(guard: &Guard, token: &str) -> anyhow::Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        for _ in 0..1_000_000 {
            guard.verify(token).await?;
        }
        best = best.min(started.elapsed().as_nanos() as f64 / 1_000_000.0);
    }
    Ok(best)
}
