//! Stopping one instance of a fleet: on SIGTERM `/readyz` answers 503 while requests are still
//! served (so the load balancer moves away first), live event streams end with `draining`,
//! and the process exits cleanly.

use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::{Backend, TestServer};
use crate::orgs::Person;
use crate::process::start;
use crate::sync::{read_until, Device};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readiness_first_then_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut server =
        start(dir.path(), &[("LATCHKEY_SHUTDOWN_DELAY_SECS", "30"), ("LATCHKEY_SHUTDOWN_TIMEOUT_SECS", "5")]).await;
    let http = reqwest::Client::new();
    let ready = http.get(format!("{}/readyz", server.url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let pid = server.pid();
    let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    // Wait for the drain to be seen (not for a guessed time): readiness goes to 503 ...
    let body = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let r = http.get(format!("{}/readyz", server.url)).send().await.unwrap();
            if r.status() == StatusCode::SERVICE_UNAVAILABLE {
                return r.json::<serde_json::Value>().await.unwrap();
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("readiness turns 503 after SIGTERM");
    assert_eq!(body["errors"][0]["code"], "draining", "{body}");
    // ... while every other request is still answered, for the delay.
    let live = http.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let jwks = http.get(format!("{}/.well-known/jwks.json", server.url)).send().await.unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);

    // Still there, still draining: the delay is the operator's, not cut short.
    assert!(server.is_running());
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_without_a_delay_exits_at_once_and_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[("LATCHKEY_SHUTDOWN_TIMEOUT_SECS", "5")]).await;
    let (status, stderr) = server.stop().await;
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(stderr.contains("latchkey stopped"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_end_with_draining_so_clients_reconnect_elsewhere() {
    let server = TestServer::start(Backend::Sqlite).await;
    let ada = Person::sign_up(&server, "drain@example.com").await;
    let phone = Device::new(&ada, "phone");
    let b = server.browser();
    let mut res = b.http.get(b.url("/v1/sync/events")).bearer_auth(phone.token().await).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut seen = String::new();
    read_until(&mut res, &mut seen, "event: ready").await;

    server.drain.start();
    read_until(&mut res, &mut seen, "event: draining").await;
    assert!(seen.contains(r#"{"reason":"instance_draining"}"#), "{seen}");
    let rest = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await.expect("the stream ends");
    assert!(rest.unwrap().is_none(), "nothing after the draining event");
    let ready = b.get("/readyz").await;
    assert_eq!((ready.status, ready.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "draining"));
    // A new stream is not opened on a draining instance: the client goes elsewhere.
    let late = b.send(b.http.get(b.url("/v1/sync/events")).bearer_auth(phone.token().await)).await;
    assert_eq!((late.status, late.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "draining"), "{}", late.text);
}
