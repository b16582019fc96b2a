//! Whether an account exists must not show, in anything a stranger can see
//! (docs/security-baseline.md §9–§10; ASVS 6.3.8): sign-in, the password and email-code
//! factors, and sign-up are driven for a known and an unknown address, and their whole
//! answers — status, body, headers and cookies — compared with only what is random per request
//! masked, then their median times.
//! "Forgot password?" (a reset code, a wrong one, a new password before any proof) is compared
//! the same way.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};

const PASSWORD: &str = "correct horse battery staple";
const KNOWN: &str = "known@example.com";
const UNKNOWN: &str = "unknown@example.com";

/// Values random per request or per identifier are replaced by their kind.
fn masked(value: &Value, address: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "id" | "clerk_trace_id" => Value::String("<random id>".into()),
                        "email_address_id" => Value::String("<derived id>".into()),
                        "created_at" | "updated_at" | "abandon_at" | "expire_at" => Value::String("<time>".into()),
                        _ => masked(v, address),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| masked(v, address)).collect()),
        Value::String(s) if s == address => Value::String("<address>".into()),
        other => other.clone(),
    }
}

/// Header names with their values, apart from those that differ per request; cookies by
/// name and attributes (their values are random tokens).
fn header_shape(r: &Reply) -> Vec<String> {
    let mut shape: Vec<String> = r
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "date" | "content-length"))
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("");
            if name.as_str() == "set-cookie" {
                let (cookie, attrs) = value.split_once(';').unwrap_or((value, ""));
                let name_only = cookie.split('=').next().unwrap_or("");
                format!("set-cookie: {name_only}=…;{attrs}")
            } else {
                format!("{name}: {value}")
            }
        })
        .collect();
    shape.sort();
    shape
}

fn assert_alike(known: &Reply, unknown: &Reply, step: &str) {
    assert_eq!(known.status, unknown.status, "{step}: status\n{}\n{}", known.text, unknown.text);
    assert_eq!(masked(&known.body, KNOWN), masked(&unknown.body, UNKNOWN), "{step}: body");
    assert_eq!(header_shape(known), header_shape(unknown), "{step}: headers and cookies");
}

/// The steps a stranger can take against an address, each answer kept.
async fn probe(server: &TestServer, address: &str) -> Vec<(&'static str, Reply)> {
    let b = server.browser();
    let created = b.post("/v1/client/sign_ins", &[("identifier", address)]).await;
    let id = created.body["response"]["id"].as_str().unwrap().to_owned();
    let wrong_password = b
        .post(
            &format!("/v1/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "password"), ("password", "a wrong password")],
        )
        .await;
    let prepared =
        b.post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &[("strategy", "email_code")]).await;
    let wrong_code = b
        .post(
            &format!("/v1/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "email_code"), ("code", "000000")],
        )
        .await;
    let prepared_reset = b
        .post(&format!("/v1/client/sign_ins/{id}/prepare_first_factor"), &[("strategy", "reset_password_email_code")])
        .await;
    let wrong_reset_code = b
        .post(
            &format!("/v1/client/sign_ins/{id}/attempt_first_factor"),
            &[("strategy", "reset_password_email_code"), ("code", "000000")],
        )
        .await;
    let early_reset =
        b.post(&format!("/v1/client/sign_ins/{id}/reset_password"), &[("password", "a new sturdy passphrase")]).await;
    let at_once = server.sign_in(&server.browser(), address, "another wrong one").await;
    let signed_up =
        server.browser().post("/v1/client/sign_ups", &[("email_address", address), ("password", PASSWORD)]).await;
    vec![
        ("create sign-in", created),
        ("wrong password", wrong_password),
        ("prepare email code", prepared),
        ("wrong code", wrong_code),
        ("prepare reset code", prepared_reset),
        ("wrong reset code", wrong_reset_code),
        ("new password before a proven code", early_reset),
        ("sign-in with a password at once", at_once),
        ("sign-up", signed_up),
    ]
}

/// Times of a wrong password plus a sign-up, for the known and the unknown address, taken in
/// pairs (one of each, back to back): the medians of each, and the median of the pairs' ratios.
async fn median_times(server: &TestServer) -> (Duration, Duration, f64) {
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for round in 0..30 {
        let mut turns = [(KNOWN, &mut known_times), (UNKNOWN, &mut unknown_times)];
        if round % 2 == 1 {
            turns.reverse();
        }
        for (address, times) in turns {
            let b = Browser::new(&server.url);
            server.mail_settled().await;
            let started = Instant::now();
            let r = server.sign_in(&b, address, "a wrong password").await;
            let sign_up = b.post("/v1/client/sign_ups", &[("email_address", address), ("password", PASSWORD)]).await;
            times.push(started.elapsed());
            assert_eq!((r.status, sign_up.status), (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::OK), "{}", r.text);
        }
        server.clock.advance_ms(10 * 60_000);
    }
    let mut ratios: Vec<f64> =
        known_times.iter().zip(&unknown_times).map(|(k, u)| k.as_secs_f64() / u.as_secs_f64().max(1e-9)).collect();
    ratios.sort_unstable_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    (median(known_times), median(unknown_times), ratio)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

both_backends!(a_stranger_cannot_tell_known_from_unknown_addresses, |backend| async move {
    let server = TestServer::start(backend).await;
    server.sign_up(&server.browser(), KNOWN, PASSWORD).await;
    let known = probe(&server, KNOWN).await;
    let unknown = probe(&server, UNKNOWN).await;
    for ((step, k), (_, u)) in known.iter().zip(&unknown) {
        assert_alike(k, u, step);
    }
    assert_eq!(known[1].1.status, StatusCode::UNPROCESSABLE_ENTITY, "the steps really ran: {}", known[1].1.text);

    // Timing: wrong passwords and sign-ups, interleaved (in turns, each going first every other
    // round) so that a busy machine slows both alike, each after the mail of the one before has
    // gone. The clock moves between rounds so that growing delays never answer instead. Other
    // tests running at the same moment add noise that is not the server's, and it comes in
    // bursts: each known time is compared with the unknown one taken next to it, and the median
    // of those ratios must be within 10 % of 1. A measurement is repeated (at most five times)
    // until one is; a real difference (a password check skipped for unknown addresses takes
    // away about half of each pair's time) shows in every one.
    let mut gaps = Vec::new();
    for _ in 0..5 {
        let (k, u, ratio) = median_times(&server).await;
        let gap = (ratio - 1.0).abs();
        gaps.push(format!("known {k:?} vs unknown {u:?}: pairs {:.1} % apart", gap * 100.0));
        if gap <= 0.10 {
            return;
        }
    }
    panic!("the median times of known and unknown addresses differ: {gaps:?}");
});
