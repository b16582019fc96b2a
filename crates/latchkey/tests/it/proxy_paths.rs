//! `latchkey proxy` judges and forwards one path: random paths made of dots, slashes and
//! backslashes in every encoding are sent raw (a URL library would resolve them first) to the
//! proxy in front of an upstream that resolves dot segments, decodes escapes and reads
//! backslashes as slashes. Whatever the upstream is reached with must be a path the proxy's
//! rules allowed; everything else is a 400 (or the rules' own 401/403).

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, Browser};
use crate::orgs::{server as org_server, Person};
use crate::proxy::{start_proxy, Upstream};

/// A GET with the path exactly as given; returns the status and the JSON body (if any).
async fn raw_get(proxy: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let addr = proxy.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: application/json\r\n{auth}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Pieces of attacking paths: the rules' own words, organization ids, and dots and slashes
/// in every spelling.
fn pieces(org: &str, other: &str) -> Vec<String> {
    [
        "admin",
        "webhooks",
        "health",
        "orgs",
        "data",
        "x",
        "",
        ".",
        "..",
        "%2e",
        "%2E%2e",
        ".%2E",
        "%2f",
        "%2F",
        "%5c",
        "\\",
        "..%2f",
        "%2f..%2f",
        "%252e%252e",
        "..\\",
        ";",
        "%00",
        "..;",
        "admin;x",
        "%2e%2e;",
        "%3b",
        ";jsessionid=1",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .chain([org.to_owned(), other.to_owned()])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_upstream_is_reached_with_is_what_the_rules_allowed() {
    let server = org_server(Backend::Sqlite).await;
    let upstream = Upstream::start();
    let proxy = start_proxy(&server, &upstream.url).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let org_of = |r: &crate::harness::Reply| r.body["response"]["id"].as_str().unwrap().to_owned();
    let org = org_of(&ada.call("POST", "/v1/organizations", &[("name", "Mine")]).await);
    let other = org_of(&ada.call("POST", "/v1/organizations", &[("name", "Theirs")]).await);
    let key = server.services.create_secret_key(&latchkey::operator(), "t").await.unwrap().1;
    let admin = Browser::new(&server.url);
    let added = admin
        .send(
            admin
                .http
                .post(admin.url(&format!("/v1/organizations/{org}/memberships")))
                .bearer_auth(&key)
                .json(&json!({"user_id": bob.user_id, "role": "org:member"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    bob.select_org(&org).await;
    let bob_token = bob.b.token(&bob.session_id).await.body["jwt"].as_str().unwrap().to_owned();

    // The review's own examples first: each is refused before any rule is read.
    for path in [
        "/webhooks/../admin/secret".to_owned(),
        "/webhooks/%2e%2e/admin/secret".to_owned(),
        "/webhooks%2f..%2fadmin/secret".to_owned(),
        "/webhooks/..\\admin".to_owned(),
        "/x/../admin/users".to_owned(),
        format!("/orgs/{org}/../{other}/data"),
        "/webhooks//x".to_owned(),
        "/webhooks/..;/admin/secret".to_owned(),
        "/admin;x/secret".to_owned(),
        format!("/orgs/{org}/..;/{other}/data"),
        "/webhooks/..%00".to_owned(),
    ] {
        let (status, body) = raw_get(&proxy, &path, Some(&bob_token)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["errors"][0]["code"], "path_not_canonical", "{path}");
    }
    assert_eq!(raw_get(&proxy, "/webhooks/stripe", None).await.0, 200, "public paths still pass");
    assert_eq!(raw_get(&proxy, &format!("/orgs/{org}/data"), Some(&bob_token)).await.0, 200);

    // Then random ones, with no token and with a member's.
    let words = pieces(&org, &other);
    let strategy = proptest::collection::vec(proptest::sample::select(words), 1..6);
    let mut runner = TestRunner::new(Config { cases: 300, ..Config::default() });
    let mut forwarded = 0;
    for _ in 0..300 {
        let path = format!("/{}", strategy.new_tree(&mut runner).unwrap().current().join("/"));
        for (who, token) in [("nobody", None), ("member", Some(bob_token.as_str()))] {
            let (status, body) = raw_get(&proxy, &path, token).await;
            if status != 200 {
                assert!([400, 401, 403].contains(&status), "{who} {path}: {status} {body}");
                continue;
            }
            forwarded += 1;
            let reached = body["resolved"].as_str().unwrap_or_else(|| panic!("{path}: {body}")).to_owned();
            let lower = reached.to_ascii_lowercase();
            assert!(!lower.starts_with("/admin"), "{who} reached {reached} with {path}");
            if token.is_none() {
                assert!(
                    lower.starts_with("/health") || lower.starts_with("/webhooks"),
                    "nobody reached {reached} with {path}"
                );
            }
            // The rule `/orgs/:org_id/(.*)` judged the same path the upstream routes.
            if let Some((org_in_path, _)) = lower.strip_prefix("/orgs/").and_then(|rest| rest.split_once('/')) {
                assert_eq!(org_in_path, org.to_ascii_lowercase(), "{who} reached {reached} with {path}");
            }
            // And above all: what the rules read (the decoded path) is what the upstream reads.
            let judged = latchkey_axum::canonical_path(&path, latchkey_axum::Slashes::Refuse).unwrap();
            assert_eq!(reached, judged, "{who}: the proxy judged {judged}, the upstream routes {reached}");
        }
    }
    assert!(forwarded > 20, "the random paths exercised forwarding too ({forwarded})");
}
