//! Moving from Clerk and back with the real binary (docs/import-export.md): `latchkey import
//! clerk` reads Clerk's user export (dry run, refused rows reported with their line and
//! reason, conflicts, a second run that changes nothing, an import killed mid-way and run
//! again), the imported sign in with their passwords and authenticator apps, `latchkey
//! export` writes what another latchkey imports, and `latchkey import clerk-api` copies one
//! running latchkey's users and organizations into another through the Backend API.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{Backend, Browser, TestDb};
use crate::process::{command, start};

const HEADER: &str = "id,first_name,last_name,username,primary_email_address,primary_phone_number,\
verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,\
totp_secret,password_digest,password_hasher";
/// Clerk's migration tool's sample: this bcrypt digest is of this password.
const BCRYPT: &str = "$2b$10$U4C0ZY8OG8y41F9LusfKyu3HRMBL0rCZcKBVsXhgr.n8Ou6FPhzO2";
const BCRYPT_PASSWORD: &str = "Kk4aPMeiaRpAs2OeX1NE";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

async fn cli(dir: &Path, database_url: &str, args: &[&str]) -> (bool, String) {
    let out = command(dir).env("LATCHKEY_DATABASE_URL", database_url).args(args).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

async fn bapi(
    b: &Browser,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> crate::harness::Reply {
    let mut req = b.http.request(method, b.url(path)).bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    b.send(req).await
}

fn totp_now(secret: &str) -> String {
    let key = latchkey_core::second_factor::TotpKey::from_base32(secret, "test", "test").unwrap();
    let now = latchkey_core::Clock::now_ms(&latchkey_core::SystemClock);
    key.code_at((now / 1000) as u64)
}

async fn csv_import_keeps_ids_reports_refusals_and_runs_again(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("LATCHKEY_DATABASE_URL", db.url.as_str())];
    let server = start(dir.path(), &env).await;
    let key = server.secret_key();
    let b = Browser::new(&server.url);
    let held =
        bapi(&b, &key, reqwest::Method::POST, "/v1/users", Some(json!({"email_address": ["held@example.com"]}))).await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.text);
    let holder = held.body["id"].as_str().unwrap().to_owned();

    let rows = [
        // 2: bcrypt, two verified addresses and an unverified one, a phone number, a key.
        format!(
            "user_2ada,Ada,Lovelace,adalove,ada@example.com,+15555550100,ada@example.com|ada@work.example.com,\
             ada@old.example.com,+15555550100,,{TOTP_SECRET},{BCRYPT},bcrypt"
        ),
        // 3: no password: signs in some other way.
        "user_2bob,Bob,,,bob@example.com,,bob@example.com,,,,,,".to_owned(),
        // 4: an address someone in latchkey holds.
        "user_2eve,Eve,,,held@example.com,,held@example.com,,,,,,".to_owned(),
        // 5: a digest that is not one of its hasher.
        "user_2mal,Mal,,,mal@example.com,,,,,,,$2b$10$short,bcrypt".to_owned(),
        // 6: an address taken earlier in the same file.
        "user_2dup,Dup,,,bob@example.com,,,,,,,,".to_owned(),
        // 7: not an email address.
        "user_2bad,Bad,,,not-an-address,,,,,,,,".to_owned(),
        // 8: bcrypt, only a username; the TOTP key is not base32.
        format!("user_2tom,Tom,,tomcat,,,,,,,not base32!,{BCRYPT},bcrypt"),
        // 9: only a username and the same password.
        format!("user_2cat,Cat,,catlady,,,,,,,,{BCRYPT},bcrypt"),
    ];
    std::fs::write(dir.path().join("export.csv"), format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
    let url = db.url.as_str();

    let (ok, out) = cli(dir.path(), url, &["import", "clerk", "--users", "export.csv", "--dry-run"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("would import 3 users; 0 already present; 5 refused"), "{out}");
    let ada = bapi(&b, &key, reqwest::Method::GET, "/v1/users/user_2ada", None).await;
    assert_eq!(ada.status, StatusCode::NOT_FOUND, "a dry run writes nothing: {}", ada.text);

    let (ok, out) = cli(dir.path(), url, &["import", "clerk", "--users", "export.csv"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("imported 3 users; 0 already present; 5 refused"), "{out}");
    let report = std::fs::read_to_string(dir.path().join("export.csv.refused.csv")).unwrap();
    let report: Vec<&str> = report.lines().collect();
    assert_eq!(report[0], "line,id,reason");
    let refused = |line: &str, id: &str, needle: &str| {
        assert!(
            report.iter().any(|r| r.starts_with(&format!("{line},{id},")) && r.contains(needle)),
            "line {line} ({id}) refused for {needle:?}: {report:?}"
        );
    };
    refused("4", "user_2eve", &format!("the email address held@example.com belongs to {holder}"));
    refused("5", "user_2mal", "bcrypt");
    refused("6", "user_2dup", "the email address bob@example.com belongs to user_2bob");
    refused("7", "user_2bad", "email");
    refused("8", "user_2tom", "totp_secret");
    assert_eq!(report.len(), 6, "{report:?}");

    // Ada keeps her id, her addresses with their verification, her phone and her key.
    let ada = bapi(&b, &key, reqwest::Method::GET, "/v1/users/user_2ada", None).await;
    assert_eq!(ada.status, StatusCode::OK, "{}", ada.text);
    let statuses: Vec<(String, String)> = ada.body["email_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let status = e["verification"]["status"].as_str().unwrap_or("none");
            (e["email_address"].as_str().unwrap().to_owned(), status.to_owned())
        })
        .collect();
    assert!(statuses.contains(&("ada@example.com".into(), "verified".into())), "{statuses:?}");
    assert!(statuses.contains(&("ada@work.example.com".into(), "verified".into())), "{statuses:?}");
    let old = statuses.iter().find(|(e, _)| e == "ada@old.example.com");
    assert!(old.is_some_and(|(_, s)| s != "verified"), "{statuses:?}: {}", ada.text);
    let primary = ada.body["primary_email_address_id"].as_str().unwrap();
    let primary = ada.body["email_addresses"].as_array().unwrap().iter().find(|e| e["id"] == primary).unwrap();
    assert_eq!(primary["email_address"], "ada@example.com");
    assert_eq!(ada.body["phone_numbers"][0]["phone_number"], "+15555550100");
    assert_eq!((ada.body["password_enabled"].clone(), ada.body["totp_enabled"].clone()), (json!(true), json!(true)));
    assert_eq!(ada.body["username"], "adalove");
    let code = totp_now(TOTP_SECRET);
    let verified =
        bapi(&b, &key, reqwest::Method::POST, "/v1/users/user_2ada/verify_totp", Some(json!({"code": code}))).await;
    assert_eq!(verified.status, StatusCode::OK, "the imported key is Ada's: {}", verified.text);

    // Cat signs in with the password her bcrypt digest was made from; a wrong one is refused.
    let browser = Browser::new(&server.url);
    let wrong = browser
        .post("/v1/client/sign_ins", &[("identifier", "catlady"), ("strategy", "password"), ("password", "nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.text);
    let signed_in = browser
        .post(
            "/v1/client/sign_ins",
            &[("identifier", "catlady"), ("strategy", "password"), ("password", BCRYPT_PASSWORD)],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.text);
    assert_eq!(signed_in.body["response"]["status"], "complete", "{}", signed_in.text);
    assert_eq!(signed_in.body["client"]["sessions"][0]["user"]["id"], "user_2cat", "{}", signed_in.text);
    // Bob exists without a password.
    let bob = bapi(&b, &key, reqwest::Method::GET, "/v1/users/user_2bob", None).await;
    assert_eq!(bob.body["password_enabled"], false, "{}", bob.text);

    // Run again: nothing new, nothing changed, the same refusals.
    let (ok, out) = cli(dir.path(), url, &["import", "clerk", "--users", "export.csv"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("imported 0 users; 3 already present; 5 refused"), "{out}");
    let list = bapi(&b, &key, reqwest::Method::GET, "/v1/users/count", None).await;
    assert_eq!(list.body["total_count"], 4, "{}", list.text);

    // A file that is not Clerk's export, and one that is missing, stop with the reason.
    std::fs::write(dir.path().join("other.csv"), "email,name\na@example.com,A\n").unwrap();
    let (ok, out) = cli(dir.path(), url, &["import", "clerk", "--users", "other.csv"]).await;
    assert!(!ok && out.contains("no `id` column"), "{out}");
    let (ok, out) = cli(dir.path(), url, &["import", "clerk", "--users", "missing.csv"]).await;
    assert!(!ok && out.contains("cannot open missing.csv"), "{out}");

    // Export, then import into a new latchkey: the same people sign in the same ways.
    let (ok, out) = cli(dir.path(), url, &["export", "--users", "out.csv", "--organizations", "orgs.json"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("exported 4 users"), "{out}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join("out.csv")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the export holds digests and keys");
    let (ok, out) = cli(dir.path(), url, &["export", "--users", "out.csv"]).await;
    assert!(!ok && out.contains("must not exist"), "an export never overwrites: {out}");
    server.stop().await;

    let other = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("out.csv"), other.path().join("out.csv")).unwrap();
    let second = start(other.path(), &[]).await;
    let second_key = second.secret_key();
    let second_url = format!("sqlite://{}", other.path().join("data/latchkey.db").display());
    let (ok, out) = cli(other.path(), &second_url, &["import", "clerk", "--users", "out.csv"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("imported 4 users; 0 already present; 0 refused"), "{out}");
    let b2 = Browser::new(&second.url);
    let ada2 = bapi(&b2, &second_key, reqwest::Method::GET, "/v1/users/user_2ada", None).await;
    assert_eq!(ada2.body["email_addresses"].as_array().map(Vec::len), Some(3), "{}", ada2.text);
    assert!(ada2.body["primary_email_address_id"].is_string(), "{}", ada2.text);
    let code = totp_now(TOTP_SECRET);
    let verified =
        bapi(&b2, &second_key, reqwest::Method::POST, "/v1/users/user_2ada/verify_totp", Some(json!({"code": code})))
            .await;
    assert_eq!(verified.status, StatusCode::OK, "the key travelled: {}", verified.text);
    // Cat's password is argon2id now (her sign-in replaced the digest): it travels as such.
    let browser = Browser::new(&second.url);
    let signed_in = browser
        .post(
            "/v1/client/sign_ins",
            &[("identifier", "catlady"), ("strategy", "password"), ("password", BCRYPT_PASSWORD)],
        )
        .await;
    assert_eq!(signed_in.body["response"]["status"], "complete", "{}", signed_in.text);
    let held2 = bapi(&b2, &second_key, reqwest::Method::GET, &format!("/v1/users/{holder}"), None).await;
    assert_eq!(held2.status, StatusCode::OK, "the user made in latchkey travelled too: {}", held2.text);
    second.stop().await;
}

crate::both_backends!(csv_import, csv_import_keeps_ids_reports_refusals_and_runs_again);

/// A big export, an import killed with SIGKILL after its first batches landed, then run
/// again: every row arrives exactly once.
async fn an_import_killed_midway_and_run_again_imports_each_row_once(backend: Backend) {
    const ROWS: usize = 20_000;
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::with_capacity(ROWS * 120);
    text.push_str(HEADER);
    text.push('\n');
    for i in 0..ROWS {
        text.push_str(&format!("user_k{i:07},First{i},Last,u{i:07},p{i}@example.com,,,,,,,{BCRYPT},bcrypt\n"));
    }
    std::fs::write(dir.path().join("big.csv"), text).unwrap();
    // Started first (its first start prints the secret key), it serves while the import runs.
    let server = start(dir.path(), &[("LATCHKEY_DATABASE_URL", db.url.as_str())]).await;
    let key = server.secret_key();

    let mut child = command(dir.path())
        .env("LATCHKEY_DATABASE_URL", &db.url)
        .args(["import", "clerk", "--users", "big.csv", "--batch", "500"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = 0u64;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.strip_prefix("committed ") {
            committed = rest.split_whitespace().next().unwrap().parse().unwrap();
            if committed >= 2000 {
                break;
            }
        }
    }
    assert!(committed >= 2000, "the import reported its batches");
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed mid-way: {status:?}");

    let (ok, out) = cli(dir.path(), &db.url, &["import", "clerk", "--users", "big.csv", "--batch", "500"]).await;
    assert!(ok, "{out}");
    let summary = out.lines().find(|l| l.starts_with("imported ")).unwrap();
    let numbers: Vec<u64> = summary.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    let (imported, present, refused) = (numbers[0], numbers[1], numbers[2]);
    assert_eq!(refused, 0, "{summary}");
    assert_eq!(imported + present, ROWS as u64, "{summary}");
    assert!(present >= committed, "what landed before the kill is present: {summary}");
    assert!(imported > 0, "the kill stopped it before the end: {summary}");

    // Each row once: as many users and addresses as rows, each id there.
    let b = Browser::new(&server.url);
    let count = bapi(&b, &key, reqwest::Method::GET, "/v1/users/count", None).await;
    assert_eq!(count.body["total_count"], ROWS, "{}", count.text);
    for i in [0, committed as usize - 1, committed as usize, ROWS - 1] {
        let user = bapi(&b, &key, reqwest::Method::GET, &format!("/v1/users/user_k{i:07}"), None).await;
        assert_eq!(user.status, StatusCode::OK, "{i}: {}", user.text);
        assert_eq!(user.body["email_addresses"].as_array().map(Vec::len), Some(1), "{}", user.text);
    }
    server.stop().await;
}

crate::both_backends!(killed_import, an_import_killed_midway_and_run_again_imports_each_row_once);

/// One latchkey's Backend API is the source of another's import: users with metadata and
/// external ids, organizations, memberships with roles and a pending invitation keep their ids;
/// a second run finds everything present.
async fn clerk_api_import_copies_users_and_organizations(backend: Backend) {
    let source_dir = tempfile::tempdir().unwrap();
    let source = start(source_dir.path(), &[]).await;
    let source_key = source.secret_key();
    let s = Browser::new(&source.url);
    let post = |path: &'static str, body: Value| {
        let (s, key) = (&s, &source_key);
        async move {
            let r = bapi(s, key, reqwest::Method::POST, path, Some(body)).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
            r.body
        }
    };
    let ada = post(
        "/v1/users",
        json!({"email_address": ["ada@example.com"], "external_id": "crm-1", "username": "adalove",
               "public_metadata": {"plan": "pro"}, "private_metadata": {"stripe": "cus_1"}}),
    )
    .await;
    let bob = post("/v1/users", json!({"email_address": ["bob@example.com"], "first_name": "Bob"})).await;
    let (ada_id, bob_id) = (ada["id"].as_str().unwrap().to_owned(), bob["id"].as_str().unwrap().to_owned());
    let org = post(
        "/v1/organizations",
        json!({"name": "The Lovelaces", "slug": "lovelaces", "created_by": ada_id, "public_metadata": {"tier": 2}}),
    )
    .await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/organizations/{org_id}/memberships");
    let member =
        bapi(&s, &source_key, reqwest::Method::POST, &path, Some(json!({"user_id": bob_id, "role": "org:member"})))
            .await;
    assert_eq!(member.status, StatusCode::OK, "{}", member.text);
    let path = format!("/v1/organizations/{org_id}/invitations");
    let invitation = bapi(
        &s,
        &source_key,
        reqwest::Method::POST,
        &path,
        Some(json!({"email_address": "carol@example.com", "role": "org:member", "inviter_user_id": ada_id})),
    )
    .await;
    assert_eq!(invitation.status, StatusCode::OK, "{}", invitation.text);
    let invitation_id = invitation.body["id"].as_str().unwrap().to_owned();

    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let target = start(dir.path(), &[("LATCHKEY_DATABASE_URL", db.url.as_str())]).await;
    let key = target.secret_key();
    let args = ["import", "clerk-api", "--api-url", source.url.as_str(), "--report", "refused.csv"];
    let run = || async {
        let out = command(dir.path())
            .env("LATCHKEY_DATABASE_URL", &db.url)
            .env("CLERK_SECRET_KEY", &source_key)
            .args(args)
            .output()
            .await
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        text
    };
    let out = run().await;
    assert!(
        out.contains(
            "done: users 2 imported, 0 present, 0 refused; organizations 1 imported, 0 present, 0 refused; \
                      memberships 2 imported, 0 present, 0 refused; invitations 1 imported, 0 present, 0 refused"
        ),
        "{out}"
    );
    // New users at the source arrive on a second run; an organization copied whole is left
    // alone (a membership removed here since stays removed).
    let carl = post("/v1/users", json!({"email_address": ["carl@example.com"]})).await;
    let carl_id = carl["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/organizations/{org_id}/memberships");
    let body = json!({"user_id": carl_id, "role": "org:member"});
    let member = bapi(&s, &source_key, reqwest::Method::POST, &path, Some(body)).await;
    assert_eq!(member.status, StatusCode::OK, "{}", member.text);
    let t = Browser::new(&target.url);
    let removed = bapi(&t, &key, reqwest::Method::DELETE, &format!("{path}/{bob_id}"), None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let out = run().await;
    assert!(
        out.contains(
            "done: users 1 imported, 2 present, 0 refused; organizations 0 imported, 1 present, 0 refused; \
                      memberships 0 imported, 0 present, 0 refused; invitations 0 imported, 0 present, 0 refused"
        ),
        "a second run brings new users and leaves a copied organization alone: {out}"
    );
    let members = bapi(&t, &key, reqwest::Method::GET, &format!("{path}?limit=10"), None).await;
    assert_eq!(members.body["total_count"], 1, "Bob stays removed: {}", members.text);

    // An organization whose copy was cut short (no line in the state file) is resumed: what is
    // missing arrives, what is present stays.
    std::fs::remove_file(dir.path().join("clerk-api-import.state")).unwrap();
    let out = run().await;
    assert!(
        out.contains(
            "done: users 0 imported, 3 present, 0 refused; organizations 0 imported, 1 present, 0 refused; \
                      memberships 2 imported, 1 present, 0 refused; invitations 0 imported, 1 present, 0 refused"
        ),
        "resumed: {out}"
    );

    // A wrong key stops at once with the source's reason.
    let out = command(dir.path())
        .env("LATCHKEY_DATABASE_URL", &db.url)
        .env("CLERK_SECRET_KEY", "sk_live_wrong")
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    source.stop().await;

    let get = |path: String| {
        let (t, key) = (&t, &key);
        async move {
            let r = bapi(t, key, reqwest::Method::GET, &path, None).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
            r.body
        }
    };
    let copied = get(format!("/v1/users/{ada_id}")).await;
    assert_eq!(copied["external_id"], "crm-1");
    assert_eq!(copied["username"], "adalove");
    assert_eq!(copied["public_metadata"], json!({"plan": "pro"}));
    assert_eq!(copied["private_metadata"], json!({"stripe": "cus_1"}));
    assert_eq!(copied["email_addresses"][0]["verification"]["status"], "verified");
    let copied_org = get(format!("/v1/organizations/{org_id}")).await;
    assert_eq!(
        (copied_org["slug"].clone(), copied_org["public_metadata"].clone()),
        (json!("lovelaces"), json!({"tier": 2}))
    );
    let members = get(format!("/v1/organizations/{org_id}/memberships?limit=10")).await;
    let mut roles: Vec<(String, String)> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["public_user_data"]["user_id"].as_str().unwrap().into(), m["role"].as_str().unwrap().into()))
        .collect();
    roles.sort();
    let mut expected = vec![
        (ada_id.clone(), "org:admin".to_owned()),
        (bob_id.clone(), "org:member".to_owned()),
        (carl_id.clone(), "org:member".to_owned()),
    ];
    expected.sort();
    assert_eq!(roles, expected);
    let pending = get(format!("/v1/organizations/{org_id}/invitations?status=pending")).await;
    assert_eq!(pending["data"][0]["id"], json!(invitation_id), "{pending}");
    assert_eq!(pending["data"][0]["email_address"], "carol@example.com");

    // The export writes the organization as it now is here.
    let out = command(dir.path())
        .env("LATCHKEY_DATABASE_URL", &db.url)
        .args(["export", "--users", "users.csv", "--organizations", "orgs.json"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("orgs.json")).unwrap()).unwrap();
    let org = &exported["organizations"][0];
    assert_eq!((org["id"].as_str(), org["slug"].as_str()), (Some(org_id.as_str()), Some("lovelaces")), "{exported}");
    assert_eq!(org["public_metadata"], json!({"tier": 2}));
    assert_eq!(org["memberships"].as_array().map(Vec::len), Some(3), "{exported}");
    assert_eq!(org["pending_invitations"][0]["id"], json!(invitation_id), "{exported}");
    assert_eq!(org["pending_invitations"][0]["email_address"], "carol@example.com");
    let users = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    assert!(users.lines().any(|l| l.starts_with(&format!("{ada_id},")) && l.contains("crm-1")), "{users}");
    target.stop().await;
}

crate::both_backends!(clerk_api_import, clerk_api_import_copies_users_and_organizations);

/// A dry run judges as the real run does across batches, and a row that is not UTF-8 is
/// refused alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_judges_across_batches_as_the_import_does() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!("{HEADER}\n").into_bytes();
    for row in [
        "user_2fil,,,,f@example.com,,,,,,,,",
        "user_2aaa,,,,a@example.com,,,,,,,,",
        // Batch two: X wants A's address (held after batch one), so X's username stays free for Y.
        "user_2xxx,,,sharedname,a@example.com,,,,,,,,",
        "user_2yyy,,,sharedname,,,,,,,,,",
    ] {
        text.extend_from_slice(row.as_bytes());
        text.push(b'\n');
    }
    text.extend_from_slice(b"user_2bin,\xff\xfe,,,bin@example.com,,,,,,,,\n");
    std::fs::write(dir.path().join("e.csv"), text).unwrap();
    let args = ["import", "clerk", "--users", "e.csv", "--batch", "2"];
    let (ok, dry) = cli(dir.path(), &db.url, &[&args[..], &["--dry-run"]].concat()).await;
    assert!(ok, "{dry}");
    assert!(dry.contains("would import 3 users; 0 already present; 2 refused"), "{dry}");
    let (ok, real) = cli(dir.path(), &db.url, &args).await;
    assert!(ok, "{real}");
    assert!(real.contains("imported 3 users; 0 already present; 2 refused"), "{real}");
    let report = std::fs::read_to_string(dir.path().join("e.csv.refused.csv")).unwrap();
    assert!(report.contains("4,user_2xxx,the email address a@example.com belongs to user_2aaa"), "{report}");
    assert!(report.contains("6,,the row is not UTF-8 text"), "{report}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("e.csv.refused.csv")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the report names people's addresses");
}

/// A Backend API stand-in answering `/v1/users` and `/v1/organizations` with fixed lists.
async fn stub_source(users: Value, organizations: Value) -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/v1/users", get(move || async move { axum::Json(users.clone()) }))
        .route("/v1/organizations", get(move || async move { axum::Json(organizations.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A source that answers every page with the same users (it does not page) stops the copy
/// with the reason instead of running for ever; an organization id that is no id is refused
/// and reported, not put in a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_does_not_page_or_sends_bad_ids_is_refused() {
    let users: Vec<Value> =
        (0..500).map(|i| json!({"id": format!("user_loop{i}"), "username": format!("loop{i:04}")})).collect();
    let evil = json!({"data": [{"id": "org_../../v1/users", "name": "Evil", "slug": "evil"}], "total_count": 1});
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let import = |source: String| {
        let (dir, url) = (dir.path().to_owned(), db.url.clone());
        async move {
            command(&dir)
                .env("LATCHKEY_DATABASE_URL", url)
                .env("CLERK_SECRET_KEY", "sk_live_source")
                .args(["import", "clerk-api", "--api-url", &source])
                .output()
                .await
                .unwrap()
        }
    };

    let out = import(stub_source(Value::Array(users), json!({"data": []})).await).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("the same page twice"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("users: 500 imported"), "the first page landed");

    let out = import(stub_source(json!([]), evil).await).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("organizations 0 imported, 0 present, 1 refused"), "{stdout}");
    let report = std::fs::read_to_string(dir.path().join("clerk-api-import.refused.csv")).unwrap();
    assert!(report.contains("organization,org_../../v1/users,") && report.contains("must be `org_`"), "{report}");
}
