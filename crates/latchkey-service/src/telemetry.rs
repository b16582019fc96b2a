//! What a fleet watches besides HTTP (docs/operations.md, "Metrics"): sign-ins and their
//! failures by reason, mail sent, tokens minted, sync operations by outcome, webhook attempts
//! and how long an event takes to reach its endpoint, and rate-limit refusals. Counted per
//! instance (Prometheus sums the instances) and rendered into `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The counters latchkey keeps, with their help text.
const COUNTERS: &[(&str, &str)] = &[
    ("latchkey_sign_ins_total", "Sign-ins completed (a session made), by the first factor's strategy."),
    ("latchkey_sign_in_failures_total", "Sign-in requests refused, by error code."),
    ("latchkey_mail_total", "Mail handed to the mailer (one-time codes, links, notices), by result."),
    ("latchkey_tokens_minted_total", "Signed tokens made, by kind (session, template)."),
    ("latchkey_sync_ops_total", "Sync operations pushed, by result (applied, duplicate, rejected, ...)."),
    ("latchkey_webhook_attempts_total", "Webhook delivery attempts, by result (delivered, failed)."),
    ("latchkey_rate_limited_total", "Requests refused by a rate limit (429), by route."),
];

/// Seconds from an event to its successful delivery.
const DELIVERY_BUCKETS_S: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0];

#[derive(Default)]
pub struct Telemetry {
    /// (metric, rendered labels) → count.
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    delivery_buckets: [AtomicU64; DELIVERY_BUCKETS_S.len()],
    delivery_count: AtomicU64,
    delivery_sum_ms: AtomicU64,
}

impl Telemetry {
    /// Adds one to `metric` (one of [`COUNTERS`]) with `labels`.
    pub fn count(&self, metric: &'static str, labels: &[(&str, &str)]) {
        self.add(metric, labels, 1);
    }

    pub fn add(&self, metric: &'static str, labels: &[(&str, &str)], n: u64) {
        let rendered = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(",");
        let mut map = match self.counters.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *map.entry((metric, rendered)).or_default() += n;
    }

    /// One event delivered `ms` after it happened.
    pub fn observe_delivery(&self, ms: i64) {
        let ms = u64::try_from(ms).unwrap_or(0);
        for (i, le) in DELIVERY_BUCKETS_S.iter().enumerate() {
            if ms as f64 <= le * 1000.0 {
                self.delivery_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.delivery_count.fetch_add(1, Ordering::Relaxed);
        self.delivery_sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The Prometheus text of every counter (each declared even before its first count) and of
    /// the delivery histogram.
    pub fn render(&self, out: &mut String) {
        let map = match self.counters.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for (metric, help) in COUNTERS {
            let _ = writeln!(out, "# HELP {metric} {help}");
            let _ = writeln!(out, "# TYPE {metric} counter");
            for ((name, labels), n) in map.iter().filter(|((name, _), _)| name == metric) {
                let _ = writeln!(out, "{name}{{{labels}}} {n}");
            }
        }
        let name = "latchkey_webhook_delivery_seconds";
        let _ = writeln!(out, "# HELP {name} Time from an event to its successful delivery.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, le) in DELIVERY_BUCKETS_S.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", self.delivery_buckets[i].load(Ordering::Relaxed));
        }
        let count = self.delivery_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.delivery_sum_ms.load(Ordering::Relaxed) as f64 / 1000.0);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_labels_and_the_histogram_counts_each_delivery() {
        let t = Telemetry::default();
        t.count("latchkey_sync_ops_total", &[("result", "applied")]);
        t.add("latchkey_sync_ops_total", &[("result", "applied")], 2);
        t.count("latchkey_sign_in_failures_total", &[("reason", "form_password_incorrect")]);
        t.observe_delivery(120);
        let mut out = String::new();
        t.render(&mut out);
        assert!(out.contains("latchkey_sync_ops_total{result=\"applied\"} 3"), "{out}");
        assert!(out.contains("latchkey_sign_in_failures_total{reason=\"form_password_incorrect\"} 1"));
        assert!(out.contains("# TYPE latchkey_tokens_minted_total counter"), "declared before any count");
        assert!(out.contains("latchkey_webhook_delivery_seconds_bucket{le=\"0.1\"} 0"));
        assert!(out.contains("latchkey_webhook_delivery_seconds_bucket{le=\"0.25\"} 1"));
        assert!(out.contains("latchkey_webhook_delivery_seconds_count 1"));
    }
}
