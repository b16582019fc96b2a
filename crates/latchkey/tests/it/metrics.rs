//! `/metrics` counts what a fleet watches: sign-ins and failures by reason, mail, tokens,
//! sync operations by result, webhook attempts with their delivery time and queue depth, and
//! rate-limit refusals.

use reqwest::StatusCode;

use crate::harness::{Backend, TestServer};
use crate::orgs::{Person, PASSWORD};
use crate::sync::{feed, Device};
use crate::webhooks::{drain, worker, Admin, Receiver};

/// The value of the sample `line` (metric with labels) in the text, or 0.
fn sample(text: &str, line: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(line).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sign_ins_mail_tokens_sync_webhooks_and_refusals() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.per_identifier_per_minute = 2).await;
    let ada = Person::sign_up(&server, "metrics@example.com").await;
    server.mail_settled().await;
    // A wrong password, then a refusal of the per-identifier limit (2 a minute).
    let b = server.browser();
    assert_eq!(server.sign_in(&b, "metrics@example.com", "wrong").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(server.sign_in(&b, "metrics@example.com", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        server.sign_in(&server.browser(), "metrics@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let mut phone = Device::new(&ada, "phone");
    let now = latchkey_core::Clock::now_ms(&server.clock);
    phone.push(vec![feed("feed_1", 10, &format!("{now}-0")), feed("feed_2", 20, &format!("{now}-1"))]).await;

    let text = server.browser().get("/metrics").await.text;
    assert_eq!(sample(&text, "latchkey_sign_ins_total{strategy=\"password\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "latchkey_sign_in_failures_total{reason=\"form_password_incorrect\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "latchkey_sign_in_failures_total{reason=\"too_many_requests\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "latchkey_rate_limited_total{route=\"/v1/client/sign_ins\"}"), 1.0, "{text}");
    assert_eq!(sample(&text, "latchkey_mail_total{result=\"sent\"}"), 1.0, "the sign-up's code: {text}");
    assert!(sample(&text, "latchkey_tokens_minted_total{kind=\"session\"}") >= 2.0, "{text}");
    assert_eq!(sample(&text, "latchkey_sync_ops_total{result=\"applied\"}"), 2.0, "{text}");
    assert!(text.contains("latchkey_webhook_queue_depth 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_webhook_attempts_their_delivery_time_and_the_queue() {
    let server = TestServer::start(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    Admin::new(&server).await.endpoint(&receiver.url, &[]).await;
    Person::sign_up(&server, "hooked@example.com").await;
    let text = server.browser().get("/metrics").await.text;
    assert!(sample(&text, "latchkey_webhook_queue_depth") >= 1.0, "user.created and session.created are owed: {text}");

    let delivered_now = drain(&worker(&server)).await;
    assert!(delivered_now >= 2 && receiver.count().await >= 2);
    let text = server.browser().get("/metrics").await.text;
    let delivered = sample(&text, "latchkey_webhook_attempts_total{result=\"delivered\"}");
    assert!(delivered >= 2.0, "{text}");
    assert_eq!(sample(&text, "latchkey_webhook_delivery_seconds_count"), delivered, "{text}");
    assert!(text.contains("latchkey_webhook_queue_depth 0"), "{text}");
}

/// Every series the example dashboard (docs/dashboards/latchkey-grafana.json) queries is one
/// `/metrics` declares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_dashboard_queries_only_metrics_latchkey_serves() {
    let server = TestServer::start(Backend::Sqlite).await;
    let text = server.browser().get("/metrics").await.text;
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboards/latchkey-grafana.json"))
            .unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("latchkey_") {
                let end =
                    expr[at..].find(|c: char| !(c.is_ascii_lowercase() || c == '_')).map_or(expr.len(), |e| at + e);
                let name = expr[at..end].trim_end_matches("_bucket");
                assert!(text.contains(&format!("# TYPE {name} ")), "{name} is not in /metrics");
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "{checked}");
}
