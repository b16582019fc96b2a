//! Test servers: latchkey assembled in process (injected clock, in-memory mail sink) on
//! 127.0.0.1:0 against a temporary SQLite file or a fresh PostgreSQL database, and helpers
//! to drive it like a browser.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use latchkey::config::Config;
use latchkey_core::{ManualClock, OsRandom, SystemClock};
use latchkey_service::{DevMailSink, Mailer, Services};
use latchkey_store::Store;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database that lives as long as the test: a temp SQLite file, or a PostgreSQL database
/// created for it and dropped afterwards.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
                Self { url, dir, pg_name: None }
            }
            Backend::Postgres => {
                let name = format!("lk_test_{}_{}", std::process::id(), DB_COUNTER.fetch_add(1, Ordering::SeqCst));
                let admin = postgres_admin_url();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("PostgreSQL must be running for the test suite");
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .expect("drop");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
                let mut url = url::Url::parse(&admin).expect("admin url");
                url.set_path(&name);
                Self { url: url.to_string(), dir, pg_name: Some(name) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async {
                    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestServer {
    pub url: String,
    pub clock: ManualClock,
    pub mail: Arc<DevMailSink>,
    pub services: Arc<Services>,
    pub sync: Arc<latchkey_service::sync::SyncService>,
    pub webhooks: Arc<latchkey_service::webhooks::WebhookService>,
    /// The store the server was built on, for tests that inspect or set up stored state
    /// directly (the service keeps its own handle private).
    pub store: Arc<dyn Store>,
    /// The server's drain switch (what SIGTERM flips in the binary).
    pub drain: latchkey_api::Drain,
    shutdown: Option<oneshot::Sender<()>>,
    _db: TestDb,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server; `tweak` adjusts the configuration (limits are generous by default so
    /// that tests which are not about rate limiting are not limited).
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new(backend).await;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: db.url.clone().into(),
            data_dir: db.dir.path().to_path_buf(),
            allowed_origins: vec!["http://app.test:3000".into()],
            ..Config::default()
        };
        config.rate_limits.per_ip_per_minute = 100_000;
        config.rate_limits.per_identifier_per_minute = 100_000;
        config.rate_limits.codes_per_address_per_hour = 100_000;
        config.rate_limits.code_failures_per_address_per_day = 100_000;
        config.rate_limits.mail_per_user_per_hour = 100_000;
        config.rate_limits.mail_per_ip_per_hour = 100_000;
        config.rate_limits.clients_per_ip_per_hour = 100_000;
        config.hash_concurrency = 4;
        tweak(&mut config);
        let store = latchkey::app::open_store(&config).await.expect("open store");
        let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
        let bound = listener.local_addr().expect("addr");
        let clock = ManualClock::new(latchkey_core::Clock::now_ms(&SystemClock));
        let mail = Arc::new(DevMailSink::default());
        let built = latchkey::app::build_with(
            &config,
            store.clone(),
            &config.public_url_for(bound),
            Arc::new(clock.clone()),
            Arc::new(OsRandom),
            Some(mail.clone() as Arc<dyn Mailer>),
        )
        .await
        .expect("build services");
        latchkey::app::seed_roles(&built).await.expect("seed roles");
        let state = latchkey::app::app_state(&config, &built, bound).expect("state");
        let (tx, rx) = oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = latchkey_api::serve(listener, serve_state, async move {
                let _ = rx.await;
            })
            .await;
        });
        Self {
            url: format!("http://{bound}"),
            clock,
            mail,
            services: built.services,
            sync: built.sync,
            webhooks: built.webhooks,
            store,
            drain: state.drain.clone(),
            shutdown: Some(tx),
            _db: db,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }

    /// The test database's URL, for tests that look at every table themselves.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// The database and data directory, for a second instance that shares them.
    pub fn shared_storage(&self) -> (String, std::path::PathBuf) {
        (self._db.url.clone(), self._db.dir.path().to_path_buf())
    }

    /// Waits until every message asked for so far has been through the mailer. Mail is sent
    /// after the response that asked for it (docs/SECURITY.md, "Mail"), so a test that reads
    /// the sink waits for this first: never for a guessed delay.
    pub async fn mail_settled(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.services.mail_in_flight() > 0 {
            assert!(std::time::Instant::now() < deadline, "mail still in flight after 30 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Every message mailed to `to` so far, oldest first.
    pub async fn mail_to(&self, to: &str) -> Vec<latchkey_service::MailMessage> {
        self.mail_settled().await;
        self.mail.sink().unwrap_or_default().into_iter().filter(|m| m.to == to).collect()
    }

    /// How many messages were mailed to `to` so far (take it before a request, then
    /// [`TestServer::code_after`] reads the code that request mailed).
    pub async fn mail_count(&self, to: &str) -> usize {
        self.mail_to(to).await.len()
    }

    /// The newest message to `to` that `matches`.
    pub async fn wait_for_mail(
        &self,
        to: &str,
        matches: impl Fn(&latchkey_service::MailMessage) -> bool,
    ) -> latchkey_service::MailMessage {
        let mails = self.mail_to(to).await;
        mails.into_iter().rev().find(|m| matches(m)).unwrap_or_else(|| panic!("no such message was mailed to {to}"))
    }

    /// The code of the newest message mailed to `to`.
    pub async fn code_for(&self, to: &str) -> String {
        self.code_after(to, 0).await
    }

    /// The code in the newest message to `to` that holds one, among those after the first
    /// `count` (the ones a request made after counting them).
    pub async fn code_after(&self, to: &str, count: usize) -> String {
        let mails = self.mail_to(to).await;
        mails
            .iter()
            .skip(count)
            .rev()
            .map(|m| m.subject.chars().take_while(char::is_ascii_digit).collect::<String>())
            .find(|code| code.len() == 6)
            .unwrap_or_else(|| panic!("no code was mailed to {to} after its first {count} messages"))
    }

    /// Signs a new account up through the Frontend API; returns (user id, session id).
    pub async fn sign_up(&self, b: &Browser, email: &str, password: &str) -> (String, String) {
        let r = b.post("/v1/client/sign_ups", &[("email_address", email), ("password", password)]).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let id = r.body["response"]["id"].as_str().expect("sign-up id").to_owned();
        let code = self.code_for(email).await;
        let r = b
            .post(
                &format!("/v1/client/sign_ups/{id}/attempt_verification"),
                &[("strategy", "email_code"), ("code", &code)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["response"]["status"], "complete");
        (
            r.body["response"]["created_user_id"].as_str().expect("user").to_owned(),
            r.body["response"]["created_session_id"].as_str().expect("session").to_owned(),
        )
    }

    pub async fn sign_in(&self, b: &Browser, identifier: &str, password: &str) -> Reply {
        b.post("/v1/client/sign_ins", &[("identifier", identifier), ("strategy", "password"), ("password", password)])
            .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["code"].as_str().unwrap_or("")
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A cookie-keeping HTTP client, like one browser profile.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self { base: base.to_owned(), http }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, text, body }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(self.http.post(self.url(path)).form(form)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn token(&self, session_id: &str) -> Reply {
        self.post(&format!("/v1/client/sessions/{session_id}/tokens"), &[]).await
    }
}

/// Runs a test body once against each backend.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::harness::Backend::Postgres).await
            }
        }
    };
}
