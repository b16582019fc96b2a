//! Prometheus text metrics, kept in process: request counts by route and status, a latency
//! histogram, and sign-in outcomes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    buckets: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, micros: u64) {
        {
            let mut map = match self.requests.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            *map.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        }
        for (i, le) in BUCKETS_MS.iter().enumerate() {
            if micros <= le * 1000 {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn render(&self, database_up: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP latchkey_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE latchkey_http_requests_total counter");
        let map = match self.requests.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for ((method, route, status), n) in map {
            let _ = writeln!(
                out,
                "latchkey_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP latchkey_http_request_duration_seconds Request latency.");
        let _ = writeln!(out, "# TYPE latchkey_http_request_duration_seconds histogram");
        for (i, le) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "latchkey_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                *le as f64 / 1000.0,
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "latchkey_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "latchkey_http_request_duration_seconds_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "latchkey_http_request_duration_seconds_count {count}");
        let _ = writeln!(out, "# HELP latchkey_database_up Whether the database answered the last probe.");
        let _ = writeln!(out, "# TYPE latchkey_database_up gauge");
        let _ = writeln!(out, "latchkey_database_up {}", u8::from(database_up));
        out
    }
}
