//! A person's own data (docs/account-data.md): `DELETE /v1/me` erases everything keyed to them
//! (checked column by column over every table of the database, so a new table that keeps a
//! user's id is caught), refuses the last admin of an organization with other members, needs a
//! recent check, sends its webhooks and feeds the revocation list; `GET /v1/me/data_export`
//! answers what latchkey holds about them, synced records included, page after page.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

use crate::harness::{Backend, TestServer};
use crate::orgs::Person;
use crate::sync::{feed, put, raw_push, Device};
use crate::webhooks::Admin;

/// Columns that may still hold a deleted user's id, and why: the revocation entry verifiers
/// must hear of until the user's last token has expired (docs/revocations.md).
const KEPT: &[(&str, &str)] = &[("revocations", "subject")];

/// Every (table, column) of text whose value equals `id` somewhere, with the count.
async fn columns_holding(server: &TestServer, backend: Backend, id: &str) -> Vec<(String, String, i64)> {
    let mut found = Vec::new();
    match backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(server.database_url()).await.unwrap();
            let tables: Vec<String> = sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
            )
            .fetch_all(&mut db)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
            for t in tables {
                let cols = sqlx::query(&format!("SELECT name FROM pragma_table_info('{t}') WHERE type = 'TEXT'"))
                    .fetch_all(&mut db)
                    .await
                    .unwrap();
                for c in cols.iter().map(|r| r.get::<String, _>(0)) {
                    let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM \"{t}\" WHERE \"{c}\" = ?1"))
                        .bind(id)
                        .fetch_one(&mut db)
                        .await
                        .unwrap()
                        .get(0);
                    if n > 0 {
                        found.push((t.clone(), c, n));
                    }
                }
            }
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
            let cols = sqlx::query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying') \
                 AND table_name <> '_sqlx_migrations' ORDER BY 1, 2",
            )
            .fetch_all(&mut db)
            .await
            .unwrap();
            for r in cols {
                let (t, c): (String, String) = (r.get(0), r.get(1));
                let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM \"{t}\" WHERE \"{c}\" = $1"))
                    .bind(id)
                    .fetch_one(&mut db)
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    found.push((t, c, n));
                }
            }
        }
    }
    found
}

crate::both_backends!(deleting_ones_account_leaves_nothing_of_it, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;

    // Ada's traces: synced records, an organization she runs with Bob in it, a second session.
    let mut phone = Device::new(&ada, "phone");
    let hlc = format!("{}-0", latchkey_core::Clock::now_ms(&server.clock));
    let pushed = phone.push(vec![put("me", "babies", "baby_1", json!({"name": "Ivy"}), &hlc)]).await;
    assert_eq!(pushed.status, StatusCode::OK, "{}", pushed.text);
    let org = ada.call("POST", "/v1/organizations", &[("name", "Night Shift")]).await;
    assert_eq!(org.status, StatusCode::OK, "{}", org.text);
    let org_id = org.body["response"]["id"].as_str().unwrap().to_owned();
    let joined = admin
        .post(&format!("/v1/organizations/{org_id}/memberships"), json!({"user_id": bob.user_id, "role": "org:member"}))
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    server.sign_in(&server.browser(), "ada@example.com", crate::orgs::PASSWORD).await;
    let token = phone.token().await;
    assert!(!columns_holding(&server, backend, &ada.user_id).await.is_empty());

    // The last admin of an organization with others in it stays, and nothing changes.
    let refused = ada.call("DELETE", "/v1/me", &[]).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "organization_minimum_permissions_needed"),
        "{}",
        refused.text
    );
    assert_eq!(admin.get(&format!("/v1/users/{}", ada.user_id)).await.status, StatusCode::OK);

    // A check older than ten minutes must be made again first.
    let promoted = admin
        .patch(&format!("/v1/organizations/{org_id}/memberships/{}", bob.user_id), json!({"role": "org:admin"}))
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    server.clock.advance_ms(11 * 60_000);
    let stale = ada.call("DELETE", "/v1/me", &[]).await;
    assert_eq!((stale.status, stale.error_code()), (StatusCode::FORBIDDEN, "session_reverification_required"));
    let fresh = server.browser();
    let signed = server.sign_in(&fresh, "ada@example.com", crate::orgs::PASSWORD).await;
    let fresh_sid = signed.body["response"]["created_session_id"].as_str().unwrap().to_owned();

    let gone = fresh.post(&format!("/v1/me?_method=DELETE&_clerk_session_id={fresh_sid}"), &[]).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    assert_eq!(gone.body["response"], json!({"object": "user", "id": ada.user_id, "deleted": true}));

    let left = columns_holding(&server, backend, &ada.user_id).await;
    let unexpected: Vec<_> = left.iter().filter(|(t, c, _)| !KEPT.contains(&(t.as_str(), c.as_str()))).collect();
    assert!(unexpected.is_empty(), "still holding the deleted user's id: {unexpected:?}");
    assert_eq!(admin.get(&format!("/v1/users/{}", ada.user_id)).await.status, StatusCode::NOT_FOUND);
    let members = admin.get(&format!("/v1/organizations/{org_id}/memberships")).await;
    assert_eq!(members.body["total_count"], 1, "Bob runs it now");

    // Her devices are refused: the Frontend API, sync, and the revocation feed says so.
    assert_eq!(phone.person_b.get("/v1/me").await.status, StatusCode::UNAUTHORIZED);
    let push = raw_push(&phone.person_b, &token, &json!({"client_id": "phone", "schema_version": 1, "ops": []})).await;
    assert_eq!(push.status, StatusCode::UNAUTHORIZED, "{}", push.text);
    let feed = admin.get("/v1/revocations").await;
    let entries = feed.body["data"].as_array().cloned().unwrap_or_default();
    assert!(
        entries.iter().any(|e| e["kind"] == "user" && e["subject"] == ada.user_id.as_str() && e["reason"] == "deleted"),
        "{}",
        feed.text
    );
    let sessions_ended = entries.iter().filter(|e| e["kind"] == "session" && e["reason"] == "removed").count();
    assert!(sessions_ended >= 2, "each live session ends with it: {}", feed.text);
});

crate::both_backends!(the_data_export_holds_everything_and_no_secret, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let hlc = format!("{}-0", latchkey_core::Clock::now_ms(&server.clock));
    // More than a page of the export's reads (500): 1,200 records over two pushes.
    for batch in 0..2 {
        let ops: Vec<Value> = (0..600).map(|i| feed(&format!("feed_{batch}_{i}"), i, &hlc)).collect();
        let r = phone.push(ops).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let applied = r.body["results"].as_array().unwrap().iter().filter(|x| x["status"] == "applied").count();
        assert_eq!(applied, 600, "{}", &r.text[..r.text.len().min(400)]);
    }
    let r = ada.call("GET", "/v1/me/data_export", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", &r.text[..r.text.len().min(500)]);
    assert_eq!(r.content_type(), "application/json");
    let disposition = r.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let doc: Value = serde_json::from_str(&r.text).expect("one JSON document");
    assert_eq!(doc["object"], "data_export");
    assert_eq!(doc["user"]["id"], ada.user_id.as_str());
    assert_eq!(doc["user"]["email_addresses"][0]["email_address"], "ada@example.com");
    assert_eq!(doc["sessions"][0]["id"], ada.session_id.as_str());
    assert_eq!(doc["sessions"][0]["latest_activity"]["object"], "session_activity");
    let records = doc["sync_records"].as_array().unwrap();
    assert_eq!(records.len(), 1_200);
    let one = records.iter().find(|r| r["id"] == "feed_1_599").expect("the last record");
    assert_eq!(
        (&one["space"], &one["table"], &one["fields"]["amount_ml"]),
        (&json!("me"), &json!("feeds"), &json!(599))
    );
    for secret in ["password_hash", "\"jwt\"", "token_digest", "code_digest", "private_metadata"] {
        assert!(!r.text.contains(secret), "the export holds no {secret}");
    }

    // Signed out, there is nothing to download.
    let stranger = server.browser();
    assert_eq!(stranger.get("/v1/me/data_export").await.status, StatusCode::UNAUTHORIZED);
});

#[tokio::test]
async fn the_hosted_page_downloads_and_deletes_with_a_typed_confirmation() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "page@example.com", crate::orgs::PASSWORD).await;
    let page = b.get("/user").await;
    assert!(page.text.contains(r#"href="/v1/me/data_export" download"#), "{}", page.text);
    let csrf = crate::pages::csrf_from(&page.text);
    let download = b.get("/v1/me/data_export").await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body["user"]["id"], user_id.as_str(), "the page's cookie is enough");

    let unconfirmed = b.post("/user/delete", &[("csrf", csrf.as_str()), ("confirm", "delete")]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.text.contains("Type DELETE to confirm."), "{}", unconfirmed.text);
    let no_csrf = b.post("/user/delete", &[("confirm", "DELETE")]).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.text);
    let admin = Admin::new(&server).await;
    assert_eq!(admin.get(&format!("/v1/users/{user_id}")).await.status, StatusCode::OK, "nothing deleted yet");

    // An old check asks "Confirm it's you" first, and deletes nothing.
    server.clock.advance_ms(11 * 60_000);
    let stale = b.post("/user/delete", &[("csrf", csrf.as_str()), ("confirm", "DELETE")]).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "{}", stale.text);
    assert!(stale.text.contains("Confirm it"), "{}", stale.text);
    assert_eq!(admin.get(&format!("/v1/users/{user_id}")).await.status, StatusCode::OK, "still there");

    let b = server.browser();
    server.sign_in(&b, "page@example.com", crate::orgs::PASSWORD).await;
    let csrf = crate::pages::csrf_from(&b.get("/user").await.text);
    let done = b.post("/user/delete", &[("csrf", csrf.as_str()), ("confirm", "DELETE")]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("Your account and its data are deleted."));
    let cookies = done.set_cookies();
    assert!(cookies.iter().any(|c| c.starts_with("__client_uat=0;")), "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("__session=;")), "{cookies:?}");
    assert_eq!(admin.get(&format!("/v1/users/{user_id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get("/user").await.status, StatusCode::SEE_OTHER, "signed out: to the sign-in page");
}

// With second factors required, a password alone leaves the session pending (setup-mfa): it
// may not download the account's data, delete the account or remove its password.
crate::both_backends!(a_pending_session_reaches_no_account_data, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.second_factors.policy = latchkey_service::second_factors::Policy::Required
    })
    .await;
    let b = server.browser();
    let (user_id, _) = server.sign_up(&b, "ada@example.com", crate::orgs::PASSWORD).await;
    assert_eq!(b.get("/v1/client").await.body["response"]["sessions"][0]["status"], "pending");
    let export = b.get("/v1/me/data_export").await;
    assert_eq!((export.status, export.error_code()), (StatusCode::FORBIDDEN, "session_pending"), "{}", export.text);
    let remove = b.post("/v1/me/remove_password", &[("current_password", crate::orgs::PASSWORD)]).await;
    assert_eq!((remove.status, remove.error_code()), (StatusCode::FORBIDDEN, "session_pending"), "{}", remove.text);
    let delete = b.post("/v1/me?_method=DELETE", &[]).await;
    assert_eq!((delete.status, delete.error_code()), (StatusCode::FORBIDDEN, "session_pending"), "{}", delete.text);
    let admin = Admin::new(&server).await;
    assert_eq!(admin.get(&format!("/v1/users/{user_id}")).await.body["password_enabled"], true, "nothing changed");
});

// Deleting is the instance's choice (`delete_self_enabled`, Clerk's "Allow users to delete
// their accounts") and the user's (the Backend API's per-user setting): refused either way,
// nothing deleted, and neither clerk-js nor the hosted page offers the button.
crate::both_backends!(deleting_is_refused_where_it_is_not_allowed, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.delete_self_enabled = false).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let env = ada.b.get("/v1/environment").await;
    assert_eq!(env.body["user_settings"]["actions"]["delete_self"], false);
    // <UserProfile/> reads only the user's flag: the Frontend API's user says both, as Clerk's.
    assert_eq!(ada.b.get("/v1/me").await.body["response"]["delete_self_enabled"], false);
    let client = ada.b.get("/v1/client").await;
    assert_eq!(client.body["response"]["sessions"][0]["user"]["delete_self_enabled"], false, "{}", client.text);
    let refused = ada.call("DELETE", "/v1/me", &[]).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::FORBIDDEN, "delete_self_not_enabled"));
    let page = ada.b.get("/user").await;
    assert!(page.text.contains("Download my data") && !page.text.contains("/user/delete"), "{}", page.text);
    let admin = Admin::new(&server).await;
    let stored = admin.get(&format!("/v1/users/{}", ada.user_id)).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(stored.body["delete_self_enabled"], true, "the Backend API shows the user's own setting");

    // Allowed for the instance, but not for this user.
    let server = TestServer::start(backend).await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    assert_eq!(bob.b.get("/v1/environment").await.body["user_settings"]["actions"]["delete_self"], true);
    let admin = Admin::new(&server).await;
    let off = admin.patch(&format!("/v1/users/{}", bob.user_id), json!({"delete_self_enabled": false})).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    let refused = bob.call("DELETE", "/v1/me", &[]).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::FORBIDDEN, "delete_self_not_enabled"));
    assert_eq!(bob.b.get("/v1/me").await.body["response"]["delete_self_enabled"], false);
    assert!(!bob.b.get("/user").await.text.contains("/user/delete"));
    assert_eq!(admin.get(&format!("/v1/users/{}", bob.user_id)).await.status, StatusCode::OK);
});

// An organization's space is exported only as far as the member's role may read it: a member
// whose role lacks the journal's read permission gets the family's babies, not its journal; a
// stranger gets nothing of the family.
crate::both_backends!(the_export_holds_only_the_organization_tables_the_member_may_read, |backend| async move {
    let server = crate::sync::family_server(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let eve = Person::sign_up(&server, "eve@example.com").await;
    let created = ada.call("POST", "/v1/organizations", &[("name", "Family")]).await;
    let org = created.body["response"]["id"].as_str().unwrap().to_owned();
    let admin = Admin::new(&server).await;
    let joined = admin
        .post(&format!("/v1/organizations/{org}/memberships"), json!({"user_id": bob.user_id, "role": "org:member"}))
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.text);
    let hlc = format!("{}-0", latchkey_core::Clock::now_ms(&server.clock));
    let r = Device::new(&ada, "ada-phone")
        .push(vec![
            put(&org, "babies", "baby_f", json!({"name": "Ivy"}), &hlc),
            put(&org, "journal", "j1", json!({"text": "first smile"}), &hlc),
            put("me", "notes", "ada_note", json!({"at": 1, "text": "Ada's own"}), &hlc),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = Device::new(&bob, "bob-phone")
        .push(vec![put("me", "notes", "bob_note", json!({"at": 2, "text": "Bob's own"}), &hlc)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let exported = |p: &Person| {
        let b = p.b.clone();
        async move {
            let r = b.get("/v1/me/data_export").await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let mut ids: Vec<(String, String, String)> = (r.body["sync_records"].as_array().unwrap().iter())
                .map(|x| {
                    (
                        x["space"].as_str().unwrap().into(),
                        x["table"].as_str().unwrap().into(),
                        x["id"].as_str().unwrap().into(),
                    )
                })
                .collect();
            ids.sort();
            ids
        }
    };
    let triple = |s: &str, t: &str, i: &str| (s.to_owned(), t.to_owned(), i.to_owned());
    assert_eq!(exported(&bob).await, vec![triple("me", "notes", "bob_note"), triple(&org, "babies", "baby_f")]);
    let mut ada_expected =
        vec![triple("me", "notes", "ada_note"), triple(&org, "babies", "baby_f"), triple(&org, "journal", "j1")];
    ada_expected.sort();
    assert_eq!(exported(&ada).await, ada_expected, "the admin reads the journal");
    assert_eq!(exported(&eve).await, Vec::<(String, String, String)>::new());
});

// A service protected by latchkey-axum's guard, following the revocation feed, refuses the
// deleted person's token while it is still unexpired (docs/revocations.md).
crate::both_backends!(a_guard_refuses_the_deleted_persons_unexpired_token, |backend| async move {
    use latchkey_axum::{FeedFailure, Guard, GuardConfig, KeySource};
    let server = TestServer::start(backend).await;
    let key = server.services.create_secret_key(&latchkey::operator(), "verifier").await.unwrap().1;
    let mut config = GuardConfig::new(KeySource::Issuer(server.url.clone()));
    config.clock = std::sync::Arc::new(server.clock.clone());
    let guard = Guard::new(config).unwrap();
    let feed = guard.follow_revocations(key, FeedFailure::Open).unwrap();
    crate::revocations::connected(&guard).await;

    let ada = Person::sign_up(&server, "ada@example.com").await;
    let token = Device::new(&ada, "phone").token().await;
    assert_eq!(guard.verify(&token).await.unwrap().user_id(), ada.user_id);
    let gone = ada.call("DELETE", "/v1/me", &[]).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    crate::revocations::refused_soon(&guard, &token, "the deleted person's token").await;
    feed.abort();
});
