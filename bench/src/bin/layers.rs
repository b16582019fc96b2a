//! HTTP layers and the rate limiter: latchkey's hand-written ones against tower-http and
//! governor (issue 20), each a ratio of two measurements taken alternately in one run:
//! 1. the request-id and security-header layers, driven with `oneshot` around two cheap routes
//!    (a plain answer with a fresh id, an HTML page with an incoming id): the hand-written
//!    middleware (a copy of `latchkey-api/src/middleware.rs`'s) against tower-http's
//!    `SetRequestIdLayer`/`PropagateRequestIdLayer` and `SetResponseHeaderLayer`s giving the
//!    same answers, together and one at a time;
//! 2. `latchkey_core::ratelimit::RateLimiter` against governor's keyed `RateLimiter` on the same
//!    kind of injected clock, for allowed and for refused checks over 10,000 keys;
//! 3. for scale, `GET /healthz` through the whole `latchkey_api::router` (no ratio).
//!
//! Usage: `cargo build --release -p latchkey-bench --bin layers && target/release/layers`.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::Quota;
use latchkey_core::{ManualClock, OsRandom, Random};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

const ROUNDS: usize = 15;
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

// ---- 1. the hand-written layers (copy of middleware.rs) --------------------------------------

#[derive(Clone)]
struct OldState {
    rng: Arc<dyn Random>,
    https: bool,
}

fn old_request_id(headers: &HeaderMap, state: &OldState) -> String {
    let incoming = headers.get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| {
        !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    match incoming {
        Some(v) => v.to_owned(),
        None => {
            let mut raw = [0u8; 12];
            state.rng.fill(&mut raw);
            latchkey_core::secret::hex(&raw)
        }
    }
}

/// The request-id part of `observe` (the rest of it is the same either way).
async fn old_observe(State(state): State<OldState>, req: Request, next: Next) -> Response {
    let id = old_request_id(req.headers(), &state);
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

async fn old_security_headers(State(state): State<OldState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("strict-origin-when-cross-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    let is_html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert("content-security-policy", HeaderValue::from_static(CSP));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    res
}

// ---- 1. the same answers from tower-http -----------------------------------------------------

fn request_id_valid(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 64 && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn drop_invalid_request_id(mut req: Request) -> Request {
    if req.headers().get("x-request-id").is_some_and(|v| !request_id_valid(v)) {
        req.headers_mut().remove("x-request-id");
    }
    req
}

#[derive(Clone)]
struct HexRequestId(Arc<dyn Random>);

impl MakeRequestId for HexRequestId {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let mut raw = [0u8; 12];
        self.0.fill(&mut raw);
        HeaderValue::from_str(&latchkey_core::secret::hex(&raw)).ok().map(RequestId::new)
    }
}

fn is_html(res: &Response) -> bool {
    res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"))
}

fn csp_for_html(res: &Response) -> Option<HeaderValue> {
    is_html(res).then(|| HeaderValue::from_static(CSP))
}

fn no_store_for_html(res: &Response) -> Option<HeaderValue> {
    is_html(res).then(|| HeaderValue::from_static("no-store"))
}

/// The request-id part of `observe` behind tower-http: it reads the id the layer set.
async fn new_observe(req: Request, next: Next) -> Response {
    let id = req.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or_default();
    let id = std::hint::black_box(id.to_owned());
    let res = next.run(req).await;
    drop(id);
    res
}

fn routes() -> Router {
    Router::new().route("/plain", get(|| async { "ok" })).route("/page", get(|| async { Html("<p>ok</p>") }))
}

fn old_router(rng: Arc<dyn Random>, https: bool) -> Router {
    let state = OldState { rng, https };
    routes()
        .layer(from_fn_with_state(state.clone(), old_security_headers))
        .layer(from_fn_with_state(state, old_observe))
}

/// tower-http's security headers with the hand-written request ids.
fn new_headers_router(rng: Arc<dyn Random>, https: bool) -> Router {
    let state = OldState { rng, https };
    routes().layer(security_headers(https)).layer(from_fn_with_state(state, old_observe))
}

/// tower-http's request ids with the hand-written security headers.
fn new_ids_router(rng: Arc<dyn Random>, https: bool) -> Router {
    let state = OldState { rng: rng.clone(), https };
    routes().layer(from_fn_with_state(state, old_security_headers)).layer(from_fn(new_observe)).layer(request_ids(rng))
}

fn security_headers(
    https: bool,
) -> impl tower::Layer<
    axum::routing::Route,
    Service: tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
                 + Clone
                 + Send
                 + Sync
                 + 'static,
> + Clone
       + Send
       + Sync
       + 'static {
    let hsts = https.then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    ServiceBuilder::new()
        .option_layer(hsts)
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, no_store_for_html))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, csp_for_html))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
}

fn request_ids(
    rng: Arc<dyn Random>,
) -> impl tower::Layer<
    axum::routing::Route,
    Service: tower::Service<Request, Response = Response, Error = std::convert::Infallible, Future: Send>
                 + Clone
                 + Send
                 + Sync
                 + 'static,
> + Clone
       + Send
       + Sync
       + 'static {
    ServiceBuilder::new()
        .map_request(drop_invalid_request_id)
        .layer(SetRequestIdLayer::x_request_id(HexRequestId(rng)))
        .layer(PropagateRequestIdLayer::x_request_id())
}

fn new_router(rng: Arc<dyn Random>, https: bool) -> Router {
    routes().layer(security_headers(https)).layer(from_fn(new_observe)).layer(request_ids(rng))
}

/// Nanoseconds per request for `n` requests alternating a plain answer with a fresh id and an
/// HTML page with an incoming id.
async fn drive(router: &Router, n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let req = if i % 2 == 0 {
            Request::get("/plain").body(axum::body::Body::empty()).unwrap()
        } else {
            Request::get("/page").header("x-request-id", "abc-123").body(axum::body::Body::empty()).unwrap()
        };
        let res = router.clone().oneshot(req).await.unwrap();
        assert!(res.headers().contains_key("x-request-id") && res.headers().contains_key("x-frame-options"));
        std::hint::black_box(res.into_response());
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

// ---- 2. the keyed GCRA on governor, as tried for issue 20 ----------------------------------

/// latchkey's clock as governor's: the time since the Unix epoch.
#[derive(Clone)]
struct EpochClock(Arc<dyn latchkey_core::Clock>);

impl governor::clock::Clock for EpochClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or(0))
    }
}

struct GovernorLimiter {
    cells: governor::RateLimiter<String, HashMapStateStore<String>, EpochClock, NoOpMiddleware<Duration>>,
    clock: EpochClock,
}

impl GovernorLimiter {
    fn new(burst: u32, period_ms: i64, clock: Arc<dyn latchkey_core::Clock>) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let interval_ms = u64::try_from(period_ms / i64::from(burst.get())).unwrap_or(0).max(1);
        let quota = Quota::with_period(Duration::from_millis(interval_ms)).unwrap().allow_burst(burst);
        let clock = EpochClock(clock);
        Self { cells: governor::RateLimiter::hashmap_with_clock(quota, clock.clone()), clock }
    }

    fn check(&self, key: &str) -> Result<(), u64> {
        if self.cells.len() >= 100_000 {
            self.cells.retain_recent();
        }
        self.cells.check_key(&key.to_owned()).map(|_| ()).map_err(|refused| {
            let wait_ms = refused.wait_time_from(governor::clock::Clock::now(&self.clock)).as_millis();
            u64::try_from(wait_ms.div_ceil(1000)).unwrap_or(u64::MAX).max(1)
        })
    }
}

/// Nanoseconds per check over `keys`, the clock moving 1 ms per pass.
fn limiter_round(keys: &[String], passes: usize, check: &dyn Fn(&str, i64) -> bool) -> f64 {
    let start = Instant::now();
    let mut allowed = 0usize;
    for pass in 0..passes {
        for k in keys {
            allowed += usize::from(check(k, 1_700_000_000_000 + pass as i64));
        }
    }
    std::hint::black_box(allowed);
    start.elapsed().as_nanos() as f64 / (passes * keys.len()) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `old` and `new` alternately, `ROUNDS` times each, and prints the medians and ratio.
fn compare(name: &str, mut old: impl FnMut() -> f64, mut new: impl FnMut() -> f64) {
    let (mut o, mut n) = (Vec::new(), Vec::new());
    old();
    new();
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            o.push(old());
            n.push(new());
        } else {
            n.push(new());
            o.push(old());
        }
    }
    let (mo, mn) = (median(o), median(n));
    println!("{name:<48} hand-written {mo:>8.0} ns   crate {mn:>8.0} ns   crate / hand-written {:.3}×", mn / mo);
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rng: Arc<dyn Random> = Arc::new(OsRandom);

    for https in [false, true] {
        let old = old_router(rng.clone(), https);
        let scheme = if https { "https" } else { "http" };
        for (what, new) in [
            ("both", new_router(rng.clone(), https)),
            ("security headers only", new_headers_router(rng.clone(), https)),
            ("request ids only", new_ids_router(rng.clone(), https)),
        ] {
            compare(
                &format!("layers ({what}), {scheme}"),
                || rt.block_on(drive(&old, 20_000)),
                || rt.block_on(drive(&new, 20_000)),
            );
        }
    }

    let keys: Vec<String> = (0..10_000).map(|i| format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256)).collect();
    for (label, burst) in
        [("limiter, 10,000 keys, every check allowed", 1_000_000), ("limiter, 10,000 keys, refused", 1)]
    {
        let old = latchkey_core::ratelimit::RateLimiter::new(burst, 60_000);
        let clock = ManualClock::new(1_700_000_000_000);
        let new = GovernorLimiter::new(burst, 60_000, Arc::new(clock.clone()));
        compare(
            label,
            || limiter_round(&keys, 20, &|k, now| old.check(k, now).is_ok()),
            || {
                limiter_round(&keys, 20, &|k, now| {
                    clock.set_ms(now);
                    new.check(k).is_ok()
                })
            },
        );
    }

    let (full, _dir) = rt.block_on(full_router());
    let mut runs: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..5_000 {
                    let req = Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
                    std::hint::black_box(full.clone().oneshot(req).await.unwrap());
                }
                start.elapsed().as_nanos() as f64 / 5_000.0
            })
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    println!(
        "{:<48} {:>8.0} ns per request (for scale)",
        "GET /healthz through latchkey_api::router",
        runs[ROUNDS / 2]
    );
}

/// The whole router on a temporary SQLite database, as the integration tests build it.
async fn full_router() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = latchkey::config::Config {
        database_url: format!("sqlite://{}", dir.path().join("latchkey.db").display()).into(),
        data_dir: dir.path().to_path_buf(),
        ..latchkey::config::Config::default()
    };
    let store = latchkey::app::open_store(&config).await.unwrap();
    let bound = "127.0.0.1:3000".parse().unwrap();
    let built = latchkey::app::build(&config, store, &config.public_url_for(bound)).await.unwrap();
    latchkey::app::seed_roles(&built).await.unwrap();
    let state = latchkey::app::app_state(&config, &built, bound).unwrap();
    (latchkey_api::router(state), dir)
}
