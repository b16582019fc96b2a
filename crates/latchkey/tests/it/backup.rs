//! `latchkey backup` while the server serves, `latchkey restore` after it stopped, and what
//! sync clients see of a database that went back in time: `reset` for their space.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Browser, Reply};
use crate::process::{command, start};
use crate::sync::feed;

/// A user with a session, made through the Backend API with the first start's secret key.
struct Account {
    b: Browser,
    key: String,
    session_id: String,
}

impl Account {
    async fn create(url: &str, key: &str) -> Self {
        let b = Browser::new(url);
        let user = b
            .send(b.http.post(b.url("/v1/users")).bearer_auth(key).json(&json!({"email_address": ["ada@example.com"]})))
            .await;
        assert_eq!(user.status, StatusCode::OK, "{}", user.text);
        let session = b
            .send(b.http.post(b.url("/v1/sessions")).bearer_auth(key).json(&json!({"user_id": user.body["id"]})))
            .await;
        assert_eq!(session.status, StatusCode::OK, "{}", session.text);
        Self { b, key: key.to_owned(), session_id: session.body["id"].as_str().unwrap().to_owned() }
    }

    /// The same account on a restarted server.
    fn at(&self, url: &str) -> Self {
        Self { b: Browser::new(url), key: self.key.clone(), session_id: self.session_id.clone() }
    }

    async fn token(&self) -> String {
        let path = format!("/v1/sessions/{}/tokens", self.session_id);
        let r = self.b.send(self.b.http.post(self.b.url(&path)).bearer_auth(&self.key).json(&json!({}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["jwt"].as_str().unwrap().to_owned()
    }

    async fn push(&self, seq: i64, id: &str) {
        self.push_from("phone", seq, id).await;
    }

    async fn push_from(&self, device: &str, seq: i64, id: &str) {
        let now = latchkey_core::Clock::now_ms(&latchkey_core::SystemClock);
        let mut op = feed(id, 10 * seq, &format!("{now}-{seq}"));
        op["seq"] = json!(seq);
        op["op_id"] = json!(format!("{device}-{seq}"));
        let body = json!({"client_id": device, "schema_version": 1, "ops": [op]});
        let r = self
            .b
            .send(self.b.http.post(self.b.url("/v1/sync/push")).bearer_auth(self.token().await).json(&body))
            .await;
        assert_eq!(r.body["results"][0]["status"], "applied", "{}", r.text);
    }

    async fn pull(&self, cursor: Option<&str>) -> Reply {
        let mut path = "/v1/sync/pull?client_id=phone".to_owned();
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = self.b.send(self.b.http.get(self.b.url(&path)).bearer_auth(self.token().await)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r
    }
}

fn ids(page: &Reply) -> Vec<String> {
    let mut ids: Vec<String> =
        page.body["changes"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

async fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = command(dir).args(args).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_and_sync_clients_reset() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let key = server.secret_key();
    let ada = Account::create(&server.url, &key).await;
    ada.push(1, "feed_1").await;
    let first = ada.pull(None).await;
    assert_eq!(ids(&first), ["feed_1"]);

    // Taken while the server serves (and keeps writing afterwards).
    let (ok, out) = cli(dir.path(), &["backup", "before.db"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("backed up"), "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("before.db")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "a backup is as private as the database");
    let (ok, out) = cli(dir.path(), &["backup", "before.db"]).await;
    assert!(!ok && out.contains("exists"), "a backup never overwrites a file: {out}");

    ada.push(2, "feed_2").await;
    ada.push(3, "feed_3").await;
    let later = ada.pull(first.body["cursor"].as_str()).await;
    assert_eq!(ids(&later), ["feed_2", "feed_3"]);
    let cursor_past_the_backup = later.body["cursor"].as_str().unwrap().to_owned();
    let (status, _) = server.stop().await;
    assert!(status.success());

    // A file that is not a latchkey backup is refused, and the database is left as it was.
    std::fs::write(dir.path().join("junk.db"), b"not a database").unwrap();
    let (ok, out) = cli(dir.path(), &["restore", "junk.db"]).await;
    assert!(!ok && out.contains("not a latchkey backup"), "{out}");

    let (ok, out) = cli(dir.path(), &["restore", "before.db"]).await;
    assert!(ok, "{out}");
    assert!(dir.path().join("data/latchkey.db.before-restore").exists(), "{out}");

    let server = start(dir.path(), &[]).await;
    let ada = ada.at(&server.url);
    // Another device writes first, so the space's counter climbs back to where the phone's
    // cursor points: the cursor must still not be taken for the same history.
    ada.push_from("tablet", 1, "feed_4").await;
    ada.push_from("tablet", 2, "feed_5").await;
    let reset = ada.pull(Some(&cursor_past_the_backup)).await;
    assert_eq!(reset.body["spaces"]["reset"], json!(["me"]), "{}", reset.text);
    assert_eq!(ids(&reset), ["feed_1", "feed_4", "feed_5"], "read again from zero: {}", reset.text);
    // A cursor from before the backup is reset too (every space has a new epoch) ...
    let older = ada.pull(first.body["cursor"].as_str()).await;
    assert_eq!(older.body["spaces"]["reset"], json!(["me"]), "{}", older.text);
    // ... and what was written after the backup is gone with it, nothing else.
    assert_eq!(ids(&ada.pull(None).await), ["feed_1", "feed_4", "feed_5"]);
    server.stop().await;

    // A second restore keeps the first one's copy too.
    let (ok, out) = cli(dir.path(), &["restore", "before.db"]).await;
    assert!(ok, "{out}");
    assert!(dir.path().join("data/latchkey.db.before-restore.1").exists(), "{out}");
    assert!(dir.path().join("data/latchkey.db.before-restore").exists(), "{out}");
}

#[tokio::test]
async fn backup_explains_the_postgresql_way() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .env("LATCHKEY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/none")
        .args(["backup", "x.db"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}
