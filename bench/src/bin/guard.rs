//! Route-protection benchmarks (issue 5), each a ratio measured in one run:
//! 1. cold verification (token cache off) against the raw RS256 verification of the crypto
//!    library, per token, on one thread;
//! 2. the official `@clerk/backend` `verifyToken` with `jwtKey` in Node on the same tokens,
//!    cold and warm, against latchkey-axum cold and warm (one core each);
//! 3. `wrk` against a protected route with a valid bearer token (cache warm) and the same
//!    route unprotected;
//! 4. `wrk --latency` straight to an upstream and through `latchkey proxy`: p50 added.
//!
//! Usage: `cargo build --release -p latchkey-bench && target/release/guard` (needs `wrk` and
//! `node` on PATH and `sdk/clerk-backend`'s npm packages installed).
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use axum::routing::get;
use axum::Router;
use latchkey_axum::{Guard, GuardConfig, KeySource};
use latchkey_token::{SessionClaims, SigningKey, SESSION_TOKEN_CAT};

const ISS: &str = "https://auth.bench.test";
const TOKENS: usize = 2_000;

fn tokens(key: &SigningKey, n: usize) -> Vec<String> {
    let now = latchkey_core::Clock::now_secs(&latchkey_core::SystemClock);
    (0..n)
        .map(|i| {
            let c = SessionClaims {
                sub: format!("user_{i:027}"),
                sid: format!("sess_{i:027}"),
                iss: ISS.into(),
                azp: None,
                exp: now + 3_600,
                iat: now,
                nbf: now - 10,
                v: 2,
                fva: [0, -1],
                sts: "active".into(),
                o: None,
                fea: None,
                v1: Default::default(),
            };
            key.sign(&c, Some(SESSION_TOKEN_CAT)).unwrap()
        })
        .collect()
}

fn guard(key: &SigningKey, cache: usize) -> Guard {
    let mut config = GuardConfig::new(KeySource::Pem(key.public().to_spki_pem().unwrap()));
    config.issuer = Some(ISS.into());
    config.token_cache_capacity = cache;
    Guard::new(config).unwrap()
}

/// `(requests/s, p50 ms)` from a wrk run.
fn wrk(args: &[&str]) -> (f64, f64) {
    let out = Command::new("wrk").args(args).output().expect("wrk on PATH (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps =
        text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).map(|v| v.trim().parse().unwrap()).unwrap_or(0.0);
    let p50 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .map(|v| {
            let v = v.trim();
            let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
            let n: f64 = num.parse().unwrap_or(f64::NAN);
            match unit {
                "us" => n / 1000.0,
                "ms" => n,
                "s" => n * 1000.0,
                _ => f64::NAN,
            }
        })
        .unwrap_or(f64::NAN);
    assert!(text.contains("Requests/sec"), "wrk failed:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    if text.contains("Non-2xx") {
        panic!("wrk saw errors:\n{text}");
    }
    (rps, p50)
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn verification_ratios(key: &SigningKey, list: &[String]) -> (f64, f64, f64) {
    // Raw: the crypto library's RS256 verification of each token's signing input.
    let public = key.public().clone();
    let parts: Vec<(Vec<u8>, Vec<u8>)> = list
        .iter()
        .map(|t| {
            let (input, sig) = t.rsplit_once('.').unwrap();
            let sig = base64_url(sig);
            (input.as_bytes().to_vec(), sig)
        })
        .collect();
    let t = Instant::now();
    for (input, sig) in &parts {
        assert!(public.verify_rs256(input, sig));
    }
    let raw = t.elapsed().as_secs_f64() / list.len() as f64;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cold_guard = guard(key, 0);
    let cold = rt.block_on(async {
        let t = Instant::now();
        for token in list {
            cold_guard.verify(token).await.unwrap();
        }
        t.elapsed().as_secs_f64() / list.len() as f64
    });
    let warm_guard = guard(key, 10_000);
    let warm_n = 200_000;
    let warm = rt.block_on(async {
        warm_guard.verify(&list[0]).await.unwrap();
        let t = Instant::now();
        for _ in 0..warm_n {
            warm_guard.verify(&list[0]).await.unwrap();
        }
        t.elapsed().as_secs_f64() / f64::from(warm_n)
    });
    (raw, cold, warm)
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn main() {
    let key = SigningKey::generate(&mut rand::thread_rng()).unwrap();
    let list = tokens(&key, TOKENS);

    println!("== verification, one thread, {TOKENS} distinct RS256 (RSA-2048) tokens");
    let (raw, cold, warm) = verification_ratios(&key, &list);
    println!("raw RS256 verify (ring)          {:>9.1} us/token", raw * 1e6);
    println!("latchkey-axum cold (cache off)   {:>9.1} us/token   {:.2}x raw (target <= 1.3x)", cold * 1e6, cold / raw);
    println!("latchkey-axum warm (cached)      {:>9.3} us/token   {:.0}/s", warm * 1e6, 1.0 / warm);

    println!("== @clerk/backend verifyToken with jwtKey (Node), same tokens");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    let toks = dir.path().join("tokens.txt");
    std::fs::write(&pem, key.public().to_spki_pem().unwrap()).unwrap();
    std::fs::write(&toks, list.join("\n")).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let node = Command::new("node")
        .env("UV_THREADPOOL_SIZE", "1")
        .arg(format!("{root}/bench/node/verify.mjs"))
        .arg(&pem)
        .arg(&toks)
        .arg("20000")
        .output()
        .expect("node on PATH");
    let text = String::from_utf8_lossy(&node.stdout);
    match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(v) => {
            let (nc, nw) = (v["cold_per_sec"].as_f64().unwrap(), v["warm_per_sec"].as_f64().unwrap());
            println!(
                "node {} cold                   {:>9.0}/s   latchkey-axum cold {:.0}/s = {:.1}x (target >= 1.5x)",
                v["node"].as_str().unwrap_or("?"),
                nc,
                1.0 / cold,
                (1.0 / cold) / nc
            );
            println!(
                "node warm (same token)          {:>9.0}/s   latchkey-axum warm {:.0}/s = {:.0}x (target >= 20x)",
                nw,
                1.0 / warm,
                (1.0 / warm) / nw
            );
        }
        Err(_) => println!("node benchmark failed: {text}{}", String::from_utf8_lossy(&node.stderr)),
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        println!("== HTTP on loopback (server: 1 tokio worker; wrk: 1 thread, 16 connections, 8 s)");
        let hello = || Router::new().route("/hello", get(|| async { "hello" }));
        let open = serve(hello()).await;
        let g = guard(&key, 10_000);
        let protected = serve(hello().layer(g.layer())).await;
        let auth = format!("Authorization: Bearer {}", list[0]);
        let run = |url: String, auth: String| {
            tokio::task::spawn_blocking(move || {
                wrk(&["-t1", "-c16", "-d8s", "--latency", "-H", &auth, &format!("{url}/hello")])
            })
        };
        let (open_rps, _) = run(open.clone(), auth.clone()).await.unwrap();
        let (prot_rps, _) = run(protected.clone(), auth.clone()).await.unwrap();
        println!("unprotected                      {open_rps:>9.0} req/s");
        println!(
            "protected, valid bearer, warm    {prot_rps:>9.0} req/s   {:.2}x (target >= 0.8x)",
            prot_rps / open_rps
        );

        println!("== latchkey proxy (wrk: 1 thread, 1 connection, 8 s, --latency)");
        let rules = latchkey::proxy::ProxyRules {
            upstream: Some(open.clone()),
            issuer: Some(ISS.into()),
            ..Default::default()
        };
        let proxy = Arc::new(latchkey::proxy::Proxy::new(rules, guard(&key, 10_000), &Default::default()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let through = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { latchkey::proxy::serve(listener, proxy, std::future::pending()).await.unwrap() });
        let lat = |url: String, auth: String| {
            tokio::task::spawn_blocking(move || {
                wrk(&["-t1", "-c1", "-d8s", "--latency", "-H", &auth, &format!("{url}/hello")])
            })
        };
        let (_, direct_p50) = lat(open, auth.clone()).await.unwrap();
        let (_, proxy_p50) = lat(through, auth).await.unwrap();
        println!("straight to the upstream p50     {direct_p50:>9.3} ms");
        println!(
            "through latchkey proxy p50       {proxy_p50:>9.3} ms   +{:.3} ms (target < 0.2 ms)",
            proxy_p50 - direct_p50
        );
    });
}
