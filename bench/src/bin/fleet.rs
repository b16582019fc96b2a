//! A fleet on one PostgreSQL database: 1, 2 and 3 `latchkey serve` processes, each figure with
//! the request limits on (their cells shared in the database) and off, so the cost of the
//! shared limits is a ratio measured in one run. Eight concurrent workers spread requests
//! round robin over the instances for 5 s per figure:
//! - token refreshes (`POST /v1/client/sessions/{id}/tokens`, a signed-in client each);
//! - sign-in starts (`POST /v1/client/sign_ins` with the identifier only: the per-IP and
//!   per-identifier limits are checked, no password is hashed);
//! - password sign-ins (a new client each, the password hashed);
//! - sync pushes (one op each, a device per worker).
//!
//! Usage: `cargo build --release -p latchkey -p latchkey-bench &&
//!   target/release/fleet target/release/latchkey postgres://postgres@127.0.0.1:5432/test`
#![allow(clippy::disallowed_methods)]

#[path = "../banner.rs"]
mod banner;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const PASSWORD: &str = "benchmark passphrase 2026";
const WORKERS: usize = 8;
const WINDOW: Duration = Duration::from_secs(5);
const KEK: &str = "bGF0Y2hrZXktZmxlZXQtdGVzdC1rZWstMzItYnl0ZXM=";

/// Creates a fresh database beside the one `admin_url` names; returns its URL.
fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let status = std::process::Command::new("psql")
        .arg(admin_url)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .stdout(Stdio::null())
        .status()
        .context("psql")?;
    if !status.success() {
        bail!("cannot create database {name}");
    }
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

fn drop_database(admin_url: &str, name: &str) {
    let _ = std::process::Command::new("psql")
        .arg(admin_url)
        .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
        .stdout(Stdio::null())
        .status();
}

async fn start_instance(
    bin: &Path,
    dir: &Path,
    database_url: &str,
    limits: bool,
) -> anyhow::Result<(Child, String, String)> {
    let mut command = Command::new(bin);
    command
        .current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_DATABASE_URL", database_url)
        // One issuer and one key-encryption key for the fleet, as behind a load balancer.
        .env("LATCHKEY_PUBLIC_URL", "http://127.0.0.1:1")
        .env("LATCHKEY_KEK", KEK)
        .env("LATCHKEY_RATE_LIMITS__ENABLED", limits.to_string())
        // Checked on every request but never reached: the figure is the checks' cost.
        .env("LATCHKEY_RATE_LIMITS__PER_IP_PER_MINUTE", "1000000000")
        .env("LATCHKEY_RATE_LIMITS__PER_IDENTIFIER_PER_MINUTE", "1000000000")
        .env("LATCHKEY_RATE_LIMITS__CLIENTS_PER_IP_PER_HOUR", "1000000000")
        .env("LATCHKEY_SYNC__PUSHES_PER_MINUTE", "1000000000")
        .env("LATCHKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().context("starting latchkey")?;
    let (url, key) = banner::read_banner(&mut child).await?;
    Ok((child, url, key))
}

struct Member {
    http: reqwest::Client,
    session_id: String,
    email: String,
}

async fn member(base: &str, key: &str, email: String) -> anyhow::Result<Member> {
    let created = reqwest::Client::new()
        .post(format!("{base}/v1/users"))
        .bearer_auth(key)
        .json(&json!({"email_address": [email], "password": PASSWORD}))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!("creating a user: {}", created.text().await?);
    }
    let http = reqwest::Client::builder().cookie_store(true).build()?;
    let r: Value = http
        .post(format!("{base}/v1/client/sign_ins"))
        .form(&[("identifier", email.as_str()), ("strategy", "password"), ("password", PASSWORD)])
        .send()
        .await?
        .json()
        .await?;
    let session_id = r["response"]["created_session_id"].as_str().ok_or_else(|| anyhow!("no session: {r}"))?;
    Ok(Member { http, session_id: session_id.to_owned(), email })
}

#[derive(Clone, Copy)]
enum Load {
    Tokens,
    SignInStarts,
    SignIns,
    Pushes,
}

/// Requests per second over the window: worker `w` sends its `i`-th request to instance
/// `(w + i) % n`.
async fn measure(load: Load, urls: &[String], members: &Arc<Vec<Member>>) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let (urls, members, done, stop) = (urls.to_vec(), members.clone(), done.clone(), stop.clone());
        tasks.spawn(async move {
            let me = &members[w];
            let plain = reqwest::Client::new();
            let mut i = 0_usize;
            while !stop.load(Ordering::Relaxed) {
                let base = &urls[(w + i) % urls.len()];
                let ok = match load {
                    Load::Tokens => {
                        let r = me.http.post(format!("{base}/v1/client/sessions/{}/tokens", me.session_id)).send().await?;
                        r.status().is_success()
                    }
                    Load::SignInStarts => {
                        let r = reqwest::Client::new()
                            .post(format!("{base}/v1/client/sign_ins"))
                            .form(&[("identifier", me.email.as_str())])
                            .send()
                            .await?;
                        r.status().is_success()
                    }
                    Load::SignIns => {
                        let form = [("identifier", me.email.as_str()), ("strategy", "password"), ("password", PASSWORD)];
                        let r = reqwest::Client::new().post(format!("{base}/v1/client/sign_ins")).form(&form).send().await?;
                        r.status().is_success()
                    }
                    Load::Pushes => {
                        let token: Value = me
                            .http
                            .post(format!("{base}/v1/client/sessions/{}/tokens", me.session_id))
                            .send()
                            .await?
                            .json()
                            .await?;
                        // One token per 50 pushes, as a client refreshes it.
                        let jwt = token["jwt"].as_str().unwrap_or_default().to_owned();
                        for _ in 0..50 {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let base = &urls[(w + i) % urls.len()];
                            i += 1;
                            let seq = i as i64;
                            let op = json!({"seq": seq, "op_id": format!("w{w}-{seq}"), "space": "me", "table": "feeds",
                                "id": format!("feed_{seq}"), "action": "put",
                                "fields": {"baby_id": "baby_1", "kind": "bottle", "started_at": 1_700_000_000_000_i64, "amount_ml": seq},
                                "hlc": format!("1700000000000-{seq}")});
                            let body = json!({"client_id": format!("device-{w}-{}", me.session_id), "schema_version": 1, "ops": [op]});
                            let r = plain.post(format!("{base}/v1/sync/push")).bearer_auth(&jwt).json(&body).send().await?;
                            if !r.status().is_success() {
                                bail!("push: {}", r.text().await?);
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                };
                if !ok {
                    bail!("a request failed");
                }
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(counted as f64 / secs)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = std::fs::canonicalize(PathBuf::from(
        std::env::args().nth(1).unwrap_or_else(|| "target/release/latchkey".into()),
    ))?;
    let admin_url = std::env::args().nth(2).unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    println!("| instances | limits | token refreshes/s | sign-in starts/s | password sign-ins/s | sync pushes/s |");
    println!("|---|---|---|---|---|---|");
    for n in 1..=3 {
        for limits in [true, false] {
            let name = format!("latchkey_fleet_bench_{}_{n}_{}", std::process::id(), u8::from(limits));
            let database_url = create_database(&admin_url, &name)?;
            let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
            let mut children = Vec::new();
            let mut urls = Vec::new();
            let mut key = String::new();
            for dir in &dirs {
                let (child, url, k) = start_instance(&bin, dir.path(), &database_url, limits).await?;
                if key.is_empty() {
                    key = k;
                }
                children.push(child);
                urls.push(url);
            }
            let mut members = Vec::new();
            for w in 0..WORKERS {
                members.push(member(&urls[w % n], &key, format!("w{w}@example.com")).await?);
            }
            let members = Arc::new(members);
            let mut row = Vec::new();
            for load in [Load::Tokens, Load::SignInStarts, Load::SignIns, Load::Pushes] {
                row.push(measure(load, &urls, &members).await?);
            }
            println!(
                "| {n} | {} | {:.0} | {:.0} | {:.1} | {:.0} |",
                if limits { "on (shared)" } else { "off" },
                row[0],
                row[1],
                row[2],
                row[3]
            );
            drop(children);
            // Let the processes go before the database does.
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop_database(&admin_url, &name);
        }
    }
    Ok(())
}
