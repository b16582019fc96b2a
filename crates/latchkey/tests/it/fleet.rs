//! Several instances on one PostgreSQL database: the request limits are one budget for the
//! fleet (their cells live in the database), not one per instance.

use reqwest::StatusCode;

use crate::harness::{Backend, TestServer};

/// Three instances sharing `first`'s database, each configured by `tweak`.
async fn fleet(tweak: fn(&mut latchkey::config::Config)) -> Vec<TestServer> {
    let first = TestServer::start_with(Backend::Postgres, tweak).await;
    let (database_url, data_dir) = first.shared_storage();
    let mut servers = vec![first];
    for _ in 0..2 {
        let (database_url, data_dir) = (database_url.clone(), data_dir.clone());
        servers.push(
            TestServer::start_with(Backend::Postgres, move |c| {
                tweak(c);
                c.database_url = database_url.into();
                c.data_dir = data_dir;
            })
            .await,
        );
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_spreading_over_three_instances_gets_one_instances_budget() {
    let servers = fleet(|c| {
        c.rate_limits.per_identifier_per_minute = 3;
    })
    .await;
    // Wrong passwords for one identifier (fewer than the failures that start growing delays,
    // so that only the per-minute limit refuses), round robin over the instances, each from a new client.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let server = &servers[i % servers.len()];
        let r = server.sign_in(&server.browser(), "victim@example.com", &format!("guess-{i}")).await;
        statuses.push(r.status);
    }
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(refused, 12 - 3, "three attempts a minute for the whole fleet: {statuses:?}");
    assert!(statuses[..3].iter().all(|s| *s != StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");

    // Per IP too: 127.0.0.1's sign-ins are one budget across the instances.
    let servers = fleet(|c| {
        c.rate_limits.per_ip_per_minute = 4;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..9 {
        let server = &servers[i % servers.len()];
        statuses.push(server.sign_in(&server.browser(), &format!("someone{i}@example.com"), "pw").await.status);
    }
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(refused, 9 - 4, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_limits_stay_in_the_process() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.rate_limits.per_identifier_per_minute = 3).await;
    assert!(!server.services.limit_cells().is_shared());
    // Spellings of one mailbox (case, an ignorable soft hyphen in the domain) share one budget.
    let mut statuses = Vec::new();
    for spelling in
        ["ada@example.com", "ADA@example.com", "ada@exam\u{AD}ple.com", "Ada@EXAMPLE.com", "ada@example.com"]
    {
        statuses.push(server.sign_in(&server.browser(), spelling, "wrong").await.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 2, "{statuses:?}");
    let postgres = TestServer::start(Backend::Postgres).await;
    assert!(postgres.services.limit_cells().is_shared());
}

/// A rolling upgrade: a newer instance applied a migration this binary does not know. The
/// older instance (this one) must still start, since migrations only expand the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_instance_starts_on_a_schema_a_newer_one_expanded() {
    let newer = TestServer::start(Backend::Postgres).await;
    let (database_url, data_dir) = newer.shared_storage();
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    // What a newer latchkey's migration would have done: a new table, and its history row.
    sqlx::query("CREATE TABLE from_a_newer_latchkey (id TEXT PRIMARY KEY)").execute(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer latchkey', TRUE, '\\x00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let older = TestServer::start_with(Backend::Postgres, move |c| {
        c.database_url = database_url.into();
        c.data_dir = data_dir;
    })
    .await;
    let b = older.browser();
    assert_eq!(b.get("/readyz").await.status, StatusCode::OK);
    let (user_id, _) = older.sign_up(&b, "rolling@example.com", crate::orgs::PASSWORD).await;
    assert!(user_id.starts_with("user_"));
    pool.close().await;
}

async fn published_kids(server: &TestServer) -> Vec<String> {
    let jwks = server.browser().get("/.well-known/jwks.json").await;
    jwks.body["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn token_kid(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// A key rotated through one instance is published by every instance within their key-ring
/// reload (10 s), and every instance signs with it once it activates (after the JWKS cache age).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_on_one_instance_is_published_and_used_by_every_instance() {
    let servers = fleet(|_| {}).await;
    let rotated = servers[0].services.signing_keys(&latchkey::operator()).rotate().await.unwrap();
    for s in &servers {
        s.clock.advance_ms(11_000);
    }
    for s in &servers {
        assert!(published_kids(s).await.contains(&rotated.kid), "published by {}", s.url);
    }
    for s in &servers {
        s.clock.advance_ms(rotated.activate_at - latchkey_core::Clock::now_ms(&s.clock) + 1_000);
    }
    for (i, s) in servers.iter().enumerate() {
        let p = crate::orgs::Person::sign_up(s, &format!("rotation{i}@example.com")).await;
        let jwt = p.b.token(&p.session_id).await.body["jwt"].as_str().unwrap().to_owned();
        assert_eq!(token_kid(&jwt), rotated.kid, "signed by {}", s.url);
    }
}
