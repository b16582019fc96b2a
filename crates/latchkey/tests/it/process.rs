//! The real `latchkey` binary: first start, shutdown, logs, database failures, the CLI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::harness::{Backend, Browser, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

pub(crate) fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env("LATCHKEY_LOG", "info").env_remove("LATCHKEY_DATABASE_URL").env_remove("LATCHKEY_KEK");
    c
}

pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    stdout: Vec<String>,
    stderr: PathBuf,
}

pub(crate) async fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
    start_listening(dir, "127.0.0.1:0", env).await
}

/// [`start`] on a given address (an instance that comes back on its port after a restart).
pub(crate) async fn start_listening(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
    let stderr = dir.join(format!("stderr-{}.log", rand::random::<u32>()));
    let mut cmd = command(dir);
    cmd.args(["serve", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = Vec::new();
    let mut url = String::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(u) = line.strip_prefix("latchkey listening on ") {
                url = u.trim().to_owned();
            }
            // Behind a proxy the public URL is not where the process listens.
            if let Some(u) = line.trim_start().strip_prefix("bound to") {
                url = u.trim().to_owned();
            }
            // The banner ends with the mode line.
            let last = line.trim_start().starts_with("mode ");
            stdout.push(line);
            if last {
                break;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), read).await.is_err() || url.is_empty() {
        panic!("latchkey did not start: {stdout:?}\n{}", std::fs::read_to_string(&stderr).unwrap_or_default());
    }
    Server { child, url, stdout, stderr }
}

impl Server {
    /// The secret key a first start prints.
    pub(crate) fn secret_key(&self) -> String {
        self.stdout
            .iter()
            .find_map(|l| l.split_whitespace().find(|w| w.starts_with("sk_live_")).map(str::to_owned))
            .expect("a first start prints the secret key")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub(crate) fn kill(mut self) {
        let _ = self.child.start_kill();
    }

    pub(crate) async fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap() as i32;
        // SIGTERM, as a service manager would send.
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap();
        (status, std::fs::read_to_string(&self.stderr).unwrap_or_default())
    }
}

#[tokio::test]
async fn first_start_prints_keys_once_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    let out = s.stdout.join("\n");
    assert!(out.contains("publishable key  pk_live_"), "{out}");
    assert!(out.contains("secret key       sk_live_"), "{out}");
    assert!(dir.path().join("data/latchkey.db").exists(), "SQLite in ./data by default");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/kek")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let b = Browser::new(&s.url);
    assert_eq!(b.get("/readyz").await.status, StatusCode::OK);
    let (status, _) = s.stop().await;
    assert!(status.success(), "{status:?}");

    let again = start(dir.path(), &[]).await;
    let out = again.stdout.join("\n");
    assert!(!out.contains("sk_live_"), "the secret key is shown only on first start: {out}");
    assert!(out.contains("pk_live_"));
    assert!(again.stop().await.0.success());
}

/// Behind a reverse proxy (loopback listen address, https public URL) latchkey is in
/// production: the banner says so and why, and there is no mail sink.
#[tokio::test]
async fn behind_a_proxy_the_banner_says_production_and_there_is_no_mail_sink() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[("LATCHKEY_PUBLIC_URL", "https://auth.example.com")]).await;
    let banner = server.stdout.join("\n");
    assert!(
        banner.contains(
            "mode             production (the public URL https://auth.example.com is not http:// on a loopback host)"
        ),
        "{banner}"
    );
    assert!(!banner.contains("/dev/mail is kept"), "{banner}");
    let r = reqwest::get(format!("{}/dev/mail", server.url)).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
    let dev_dir = tempfile::tempdir().unwrap();
    let dev = start(dev_dir.path(), &[]).await;
    assert!(dev.stdout.join("\n").contains("development mode (the public URL http://127.0.0.1:"), "{:?}", dev.stdout);
}

#[tokio::test]
async fn logs_never_contain_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    let secret_key = s
        .stdout
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("sk_live_")).map(str::to_owned))
        .unwrap();
    let b = Browser::new(&s.url);
    let password = "a very secret passphrase 42";
    let r = b.post("/v1/client/sign_ups", &[("email_address", "logs@example.com"), ("password", password)]).await;
    let id = r.body["response"]["id"].as_str().unwrap().to_owned();
    let client_cookie = r
        .set_cookies()
        .iter()
        .find(|c| c.starts_with("__client="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__client=")
        .to_owned();
    // Mail goes out after the response: wait for it to be there.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mail = loop {
        let mail = b.get("/dev/mail").await;
        if mail.body["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            break mail;
        }
        assert!(std::time::Instant::now() < deadline, "no mail after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let code: String = mail.body["messages"][0]["subject"].as_str().unwrap().chars().take(6).collect();
    let done = b.post(&format!("/v1/client/sign_ups/{id}/attempt_verification"), &[("code", code.as_str())]).await;
    let sid = done.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    let jwt = b.token(&sid).await.body["jwt"].as_str().unwrap().to_owned();
    b.post("/v1/client/sign_ins", &[("identifier", "logs@example.com"), ("password", "wrong secret passphrase")]).await;
    let (_, logs) = s.stop().await;
    assert!(logs.contains("request"), "logging works: {logs}");
    assert!(logs.contains("logs@example.com") || !logs.is_empty());
    for secret in
        [password, "wrong secret passphrase", code.as_str(), jwt.as_str(), secret_key.as_str(), client_cookie.as_str()]
    {
        assert!(!logs.contains(secret), "the log contains a secret: {secret}");
    }
}

/// `ps` shows a process's arguments to every user: a password there earns a warning.
#[tokio::test]
async fn a_database_password_on_the_command_line_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let run = |url: &'static str| {
        let mut c = command(dir.path());
        c.args(["--database-url", url, "migrate"]);
        async move { tokio::time::timeout(Duration::from_secs(30), c.output()).await.unwrap().unwrap() }
    };
    let out = run("postgres://latchkey:hunter2secret@127.0.0.1:1/none").await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LATCHKEY_DATABASE_URL") && err.contains("ps"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
    let out = run("sqlite://./data/x.db").await;
    assert!(!String::from_utf8_lossy(&out.stderr).contains("LATCHKEY_DATABASE_URL"), "no password, no warning");
}

/// `/metrics` on its own address: served there, and not on the public listener.
#[tokio::test]
async fn metrics_can_have_their_own_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[("LATCHKEY_METRICS_LISTEN", "127.0.0.1:0")]).await;
    let line = server.stdout.iter().find_map(|l| l.trim_start().strip_prefix("metrics")).unwrap().trim().to_owned();
    assert!(line.starts_with("http://127.0.0.1:") && line.ends_with("/metrics"), "{line}");
    let metrics = reqwest::get(&line).await.unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
    assert!(metrics.text().await.unwrap().contains("latchkey_database_up 1"));
    let public = reqwest::get(format!("{}/metrics", server.url)).await.unwrap();
    assert_eq!(public.status(), reqwest::StatusCode::NOT_FOUND, "not on the public listener");
}

#[tokio::test]
async fn an_unreachable_database_at_start_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_DATABASE_URL", "postgres://latchkey:hunter2secret@127.0.0.1:1/none")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out).await.unwrap().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the PostgreSQL database"), "{err}");
    assert!(!err.contains("hunter2secret"), "the password is redacted: {err}");

    let out = command(dir.path()).args(["serve"]).env("LATCHKEY_DATABASE_URL", "mysql://x").output().await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

#[tokio::test]
async fn a_wrong_key_encryption_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    assert!(s.stop().await.0.success());
    let out = command(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_KEK", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LATCHKEY_KEK"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused).
async fn relay(target: &'static str) -> (u16, Arc<AtomicBool>, watch::Sender<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let up = Arc::new(AtomicBool::new(true));
    let (cut_tx, cut_rx) = watch::channel(0u64);
    let up2 = up.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            if !up2.load(Ordering::SeqCst) {
                let _ = inbound.shutdown().await;
                continue;
            }
            let mut cut = cut_rx.clone();
            cut.borrow_and_update();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    (port, up, cut_tx)
}

#[tokio::test]
async fn a_database_outage_answers_503_and_recovers_without_restart() {
    let db = TestDb::new(Backend::Postgres).await;
    let (port, up, cut) = relay("127.0.0.1:5432").await;
    let mut via_relay = url::Url::parse(&db.url).unwrap();
    via_relay.set_port(Some(port)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[("LATCHKEY_DATABASE_URL", via_relay.as_str())]).await;
    let b = Browser::new(&s.url);
    assert_eq!(b.get("/readyz").await.status, StatusCode::OK);
    let before = b
        .post("/v1/client/sign_ups", &[("email_address", "outage@example.com"), ("password", "outage passphrase")])
        .await;
    assert_eq!(before.status, StatusCode::OK);

    up.store(false, Ordering::SeqCst);
    cut.send_modify(|n| *n += 1);
    let down = b.get("/readyz").await;
    assert_eq!((down.status, down.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"));
    let r = b.post("/v1/client/sign_ins", &[("identifier", "outage@example.com")]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"), "{}", r.text);
    assert_eq!(r.content_type(), "application/json");

    up.store(true, Ordering::SeqCst);
    // Recovery is the event waited for, with a deadline far beyond what it needs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while b.get("/readyz").await.status != StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "latchkey did not recover by itself in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = b.get("/v1/client").await;
    assert_eq!(client.body["response"]["sign_up"]["email_address"], "outage@example.com", "nothing stored was lost");
    assert!(s.stop().await.0.success());
}

#[tokio::test]
async fn cli_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).arg("default-config").output().await.unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("database_url = \"sqlite://./data/latchkey.db\""));
    // The example is itself a valid configuration file.
    std::fs::write(dir.path().join("latchkey.toml"), &text).unwrap();

    let out = command(dir.path()).arg("migrate").output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut create = command(dir.path())
        .args([
            "users",
            "create",
            "--email",
            "cli@example.com",
            "--phone",
            "+15555550123",
            "--username",
            "cli_user",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    create.stdin.take().unwrap().write_all(b"cli passphrase here\n").await.unwrap();
    let out = create.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let user_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(user_id.starts_with("user_"));

    let dup = command(dir.path()).args(["users", "create", "--email", "CLI@example.com"]).output().await.unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("taken"));

    let list = command(dir.path()).args(["users", "list"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&format!("{user_id}\tcli@example.com\tcli_user")));
    let found = command(dir.path()).args(["users", "list", "--query", "CLI_U"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&found.stdout).contains(&user_id), "prefix search, any case");
    let none = command(dir.path()).args(["users", "list", "--query", "nobody"]).output().await.unwrap();
    assert!(!String::from_utf8_lossy(&none.stdout).contains(&user_id));

    // The CLI's ban is the Backend API's ban: the same service function, the same stored state.
    let ban = command(dir.path()).args(["users", "ban", &user_id]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&ban.stdout).contains("banned"), "{}", String::from_utf8_lossy(&ban.stderr));
    let db = format!("sqlite://{}", dir.path().join("data").join("latchkey.db").display());
    let store = latchkey_store_sqlite::open(&db).await.unwrap();
    assert!(latchkey_store::UserStore::get_user_row(&store, &user_id).await.unwrap().unwrap().banned);
    command(dir.path()).args(["users", "unban", &user_id]).output().await.unwrap();
    let missing = command(dir.path()).args(["users", "delete", "user_nobody"]).output().await.unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let rotate = command(dir.path()).args(["keys", "rotate"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&rotate.stdout).contains("starts signing in 300 s"));
    let show =
        String::from_utf8_lossy(&command(dir.path()).args(["keys", "show"]).output().await.unwrap().stdout).to_string();
    assert!(show.contains("active") && show.contains("pending"), "{show}");

    let created = command(dir.path()).args(["keys", "secret", "create", "--label", "ci"]).output().await.unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let secret = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(secret.starts_with("sk_live_") && secret.len() == 8 + 43, "{secret}");
    let list =
        String::from_utf8_lossy(&command(dir.path()).args(["keys", "secret", "list"]).output().await.unwrap().stdout)
            .to_string();
    assert!(list.contains("\tactive\t") && list.contains("\tci") && !list.contains("sk_live_"), "{list}");

    // The user made by the CLI signs in through the server: one core, several doors.
    let s = start(dir.path(), &[]).await;
    let b = Browser::new(&s.url);
    let r = b.post("/v1/client/sign_ins", &[("identifier", "cli_user"), ("password", "cli passphrase here")]).await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let sid = r.body["response"]["created_session_id"].as_str().unwrap().to_owned();
    let me = b.get(&format!("/v1/me?_clerk_session_id={sid}")).await;
    assert_eq!(me.body["response"]["phone_numbers"][0]["phone_number"], "+15555550123");
    assert_eq!(me.body["response"]["phone_numbers"][0]["verification"]["status"], "verified");
    let jwks = b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&secret)).await;
    assert_eq!(jwks.status, StatusCode::OK, "the CLI's secret key opens the Backend API");
    let id = list.lines().find(|l| l.ends_with("\tci")).unwrap().split('\t').next().unwrap().to_owned();
    let revoked = command(dir.path()).args(["keys", "secret", "revoke", &id]).output().await.unwrap();
    assert!(revoked.status.success());
    assert_eq!(b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&secret)).await.status, StatusCode::UNAUTHORIZED);
    let missing = command(dir.path()).args(["keys", "secret", "revoke", "ak_nope"]).output().await.unwrap();
    assert!(!missing.status.success());
    assert!(s.stop().await.0.success());

    let bad = command(dir.path()).args(["serve"]).env("LATCHKEY_LISTEN", "not an address").output().await.unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid configuration"));
}

/// `latchkey proxy` as a process: it starts from flags and a rules file, answers with the
/// guard's rules (401 for a signed-out call, 502 in the error shape when the upstream is down),
/// stops on SIGTERM, and refuses a bad rules file with a clear message.
#[tokio::test]
async fn the_proxy_command_starts_serves_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "public = [\"/health\"]\n[[routes]]\npath = \"/admin(.*)\"\nrole = \"org:admin\"\n")
        .unwrap();
    let stderr = dir.path().join("proxy-stderr.log");
    let mut child = command(dir.path())
        .args([
            "proxy",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            "http://127.0.0.1:9",
        ])
        .arg("--rules")
        .arg(&rules)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(u) = line.strip_prefix("latchkey proxy listening on ") {
                return u.trim().to_owned();
            }
        }
        String::new()
    })
    .await
    .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{}", std::fs::read_to_string(&stderr).unwrap_or_default());
    let http = reqwest::Client::new();
    let anon = http.get(format!("{url}/items")).send().await.unwrap();
    assert_eq!(anon.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(anon.headers()["content-type"], "application/json");
    let health = http.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::BAD_GATEWAY, "public, so forwarded; the upstream is down");
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "upstream_unavailable");
    let pid = child.id().unwrap().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status().await;
    let status =
        tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("exits after SIGTERM").unwrap();
    assert!(status.success(), "{status:?}");

    std::fs::write(&rules, "[[routes]]\npath = \"/orgs/:id\"\norganization_param = \"org_id\"\n").unwrap();
    let bad = command(dir.path())
        .args([
            "proxy",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            "http://127.0.0.1:9",
        ])
        .arg("--rules")
        .arg(&rules)
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("organization_param") && err.contains("org_id"), "{err}");
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "publik = []\n").unwrap();
    let bad = command(dir.path())
        .args(["proxy", "--upstream", "http://127.0.0.1:9"])
        .arg("--rules")
        .arg(&typo)
        .output()
        .await
        .unwrap();
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("publik"),
        "unknown keys are errors"
    );
}

#[tokio::test]
async fn webhooks_cli() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = command(dir.path());
        c.arg("webhooks").args(args);
        async move {
            let out = c.output().await.unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };
    let (ok, out, err) =
        run(&["create", "--url", "https://example.com/hook", "--events", "user.created,user.deleted"]).await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let (id, secret) = (lines[0].to_owned(), lines[1].to_owned());
    assert!(id.starts_with("whe_") && secret.starts_with("whsec_"), "{out}");
    let (_, out, _) = run(&["list"]).await;
    assert!(out.contains(&format!("{id}\tenabled\thttps://example.com/hook\tuser.created,user.deleted")), "{out}");
    let (_, out, _) = run(&["secret", &id]).await;
    assert_eq!(out.trim(), secret);

    let (ok, out, err) = run(&["update", &id, "--disable", "--events", ""]).await;
    assert!(ok && out.contains("disabled"), "{err}");
    let (_, out, _) = run(&["list"]).await;
    assert!(out.contains(&format!("{id}\tdisabled (manual)\thttps://example.com/hook\t*")), "{out}");
    let (ok, out, _) = run(&["rotate-secret", &id]).await;
    assert!(ok && out.trim().starts_with("whsec_") && out.trim() != secret);
    let (_, now_secret, _) = run(&["secret", &id]).await;
    assert_eq!(now_secret.trim(), out.trim());
    let (ok, _, err) = run(&["deliveries", &id]).await;
    assert!(ok && err.contains("0 deliveries in all"), "{err}");
    let (ok, out, _) = run(&["replay", &id, "--since", "0"]).await;
    assert!(ok && out.contains("deliveries queued"));

    // Refusals: a bad URL, an unknown event, a replay of nothing, an unknown endpoint.
    let (ok, _, err) = run(&["create", "--url", "http://169.254.169.254/"]).await;
    assert!(!ok && err.contains("may not reach"), "{err}");
    let (ok, _, err) = run(&["create", "--url", "https://example.com/", "--events", "user.exploded"]).await;
    assert!(!ok && err.contains("user.exploded"), "{err}");
    let (ok, _, err) = run(&["replay", &id]).await;
    assert!(!ok && err.contains("--message"), "{err}");
    let (ok, _, err) = run(&["delete", "whe_missing"]).await;
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, out, _) = run(&["delete", &id]).await;
    assert!(ok && out.contains("deleted"));
    let (_, out, _) = run(&["list"]).await;
    assert!(!out.contains(&id));
}
