//! The sync API end to end, on both backends: push and pull round trips, replays, field-level
//! last-write-wins, the clock bound, paging and cursors, organization spaces and table
//! permissions, every refused input with nothing applied, live events, export and deletion,
//! and (on PostgreSQL above all) concurrent pushers that a puller must never skip.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use latchkey_service::orgs::RoleConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{Backend, Reply, TestServer};
use crate::orgs::Person;

pub const BABY: &str = "baby_1";

/// One device: its client id, its own `seq`, its cursor.
pub struct Device {
    pub person_b: crate::harness::Browser,
    pub session_id: String,
    pub client_id: String,
    pub next_seq: i64,
    pub cursor: Option<String>,
    /// What the device has pulled: (space, table, id) → fields (None when deleted).
    pub data: BTreeMap<(String, String, String), Option<Value>>,
}

impl Device {
    pub fn new(person: &Person, client_id: &str) -> Self {
        Self {
            person_b: person.b.clone(),
            session_id: person.session_id.clone(),
            client_id: client_id.into(),
            next_seq: 1,
            cursor: None,
            data: BTreeMap::new(),
        }
    }

    pub async fn token(&self) -> String {
        let r = self.person_b.token(&self.session_id).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["jwt"].as_str().unwrap().to_owned()
    }

    /// Numbers `ops` from this device's next seq and pushes them.
    pub async fn push(&mut self, ops: Vec<Value>) -> Reply {
        let ops: Vec<Value> = ops
            .into_iter()
            .enumerate()
            .map(|(i, mut op)| {
                op["seq"] = json!(self.next_seq + i as i64);
                if op.get("op_id").is_none() {
                    op["op_id"] = json!(format!("{}-{}", self.client_id, self.next_seq + i as i64));
                }
                op
            })
            .collect();
        let n = ops.len() as i64;
        let token = self.token().await;
        let body = json!({"client_id": self.client_id, "schema_version": 1, "ops": ops});
        let r = raw_push(&self.person_b, &token, &body).await;
        if r.status == StatusCode::OK {
            self.next_seq += n;
        }
        r
    }

    pub async fn pull_page(&mut self, limit: i64) -> Reply {
        let token = self.token().await;
        let mut url = format!("/v1/sync/pull?client_id={}&limit={limit}", self.client_id);
        if let Some(c) = &self.cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let b = &self.person_b;
        let r = b.send(b.http.get(b.url(&url)).bearer_auth(&token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for space in
            r.body["spaces"]["removed"].as_array().unwrap().iter().chain(r.body["spaces"]["reset"].as_array().unwrap())
        {
            self.data.retain(|(s, _, _), _| s != space.as_str().unwrap());
        }
        for c in r.body["changes"].as_array().unwrap() {
            let key = (
                c["space"].as_str().unwrap().into(),
                c["table"].as_str().unwrap().into(),
                c["id"].as_str().unwrap().into(),
            );
            let value = if c["deleted"] == true { None } else { Some(c["fields"].clone()) };
            self.data.insert(key, value);
        }
        self.cursor = Some(r.body["cursor"].as_str().unwrap().to_owned());
        r
    }

    /// Pulls until `has_more` is false; returns the pages.
    pub async fn pull_all(&mut self, limit: i64) -> Vec<Reply> {
        let mut pages = Vec::new();
        loop {
            let r = self.pull_page(limit).await;
            let more = r.body["has_more"] == true;
            pages.push(r);
            if !more {
                return pages;
            }
        }
    }

    /// The live records the device holds.
    pub fn live(&self) -> BTreeMap<(String, String, String), Value> {
        self.data.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect()
    }
}

pub async fn raw_push(b: &crate::harness::Browser, token: &str, body: &Value) -> Reply {
    b.send(b.http.post(b.url("/v1/sync/push")).bearer_auth(token).json(body)).await
}

pub fn put(space: &str, table: &str, id: &str, fields: Value, hlc: &str) -> Value {
    json!({"space": space, "table": table, "id": id, "action": "put", "fields": fields, "hlc": hlc})
}

pub fn del(space: &str, table: &str, id: &str, hlc: &str) -> Value {
    json!({"space": space, "table": table, "id": id, "action": "delete", "hlc": hlc})
}

pub fn feed(id: &str, ml: i64, hlc: &str) -> Value {
    put(
        "me",
        "feeds",
        id,
        json!({"baby_id": BABY, "kind": "bottle", "started_at": 1_700_000_000_000_i64, "amount_ml": ml}),
        hlc,
    )
}

fn statuses(r: &Reply) -> Vec<String> {
    r.body["results"].as_array().unwrap().iter().map(|x| x["status"].as_str().unwrap().to_owned()).collect()
}

fn stamp(server: &TestServer, counter: u32) -> String {
    format!("{}-{counter}", latchkey_core::Clock::now_ms(&server.clock))
}

both_backends!(push_pull_replay_and_merge, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let h = stamp(&server, 0);
    let r = phone
        .push(vec![
            put("me", "babies", BABY, json!({"name": "Ivy"}), &h),
            feed("feed_1", 90, &h),
            feed("feed_2", 120, &h),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(statuses(&r), ["applied"; 3]);
    assert_eq!(r.body["last_seq"], 3);

    // A second device of the same person pulls everything, with the spaces it can see.
    let mut tablet = Device::new(&ada, "tablet");
    let pages = tablet.pull_all(100).await;
    assert_eq!(pages.len(), 1);
    let page = &pages[0].body;
    assert_eq!(page["spaces"]["added"], json!(["me"]));
    assert_eq!(page["last_seq"], Value::Null, "the tablet has pushed nothing");
    assert_eq!(tablet.live().len(), 3);
    assert_eq!(tablet.live()[&("me".into(), "feeds".into(), "feed_2".into())]["amount_ml"], 120);

    // The phone's own pull reports its last applied seq, so it knows its writes are in.
    let mut phone_pull = phone.pull_all(100).await;
    assert_eq!(phone_pull.remove(0).body["last_seq"], 3);

    // The same push again (a lost response): duplicates with their first results, no change.
    let token = phone.token().await;
    let replay = json!({"client_id": "phone", "schema_version": 1, "ops": [
        {"seq": 2, "op_id": "phone-2", "space": "me", "table": "feeds", "id": "feed_1", "action": "put", "fields": {"amount_ml": 1}, "hlc": h},
    ]});
    let r = raw_push(&phone.person_b, &token, &replay).await;
    assert_eq!(statuses(&r), ["duplicate"]);
    assert_eq!(r.body["results"][0]["original"]["status"], "applied");
    let r = tablet.pull_page(100).await;
    assert_eq!(r.body["changes"], json!([]), "a replay changes nothing");

    // Field-level last-write-wins: the tablet's newer amount wins, the phone's older note
    // still lands because nobody else wrote the note.
    server.clock.advance_ms(10);
    let newer = stamp(&server, 0);
    let r = tablet.push(vec![put("me", "feeds", "feed_1", json!({"amount_ml": 100}), &newer)]).await;
    assert_eq!(statuses(&r), ["applied"]);
    let r = phone
        .push(vec![put("me", "feeds", "feed_1", json!({"amount_ml": 95, "note": "spat up"}), &h.replace("-0", "-1"))])
        .await;
    assert_eq!(statuses(&r), ["superseded"]);
    assert_eq!(r.body["results"][0]["winning"], json!({"deleted": false, "fields": {"amount_ml": 100}}));
    tablet.pull_all(100).await;
    let feed_1 = &tablet.live()[&("me".into(), "feeds".into(), "feed_1".into())];
    assert_eq!((feed_1["amount_ml"].as_i64(), feed_1["note"].as_str()), (Some(100), Some("spat up")));

    // Deletes are tombstones that sync; a fresh device never sees them.
    server.clock.advance_ms(10);
    let r = phone.push(vec![del("me", "feeds", "feed_2", &stamp(&server, 0))]).await;
    assert_eq!(statuses(&r), ["applied"]);
    let r = tablet.pull_page(100).await;
    assert_eq!(r.body["changes"], json!([{"space": "me", "table": "feeds", "id": "feed_2", "deleted": true}]));
    assert_eq!(tablet.live().len(), 2);
    let mut fresh = Device::new(&ada, "fresh");
    let r = fresh.pull_page(100).await;
    assert_eq!(r.body["changes"].as_array().unwrap().len(), 2, "no tombstones for a fresh client: {}", r.text);

    // A clock far ahead is pulled back to the bound, so it cannot win forever.
    let year_ahead = format!("{}-0", latchkey_core::Clock::now_ms(&server.clock) + 365 * 86_400_000);
    let r = phone.push(vec![put("me", "babies", BABY, json!({"name": "Future"}), &year_ahead)]).await;
    assert_eq!(statuses(&r), ["applied"]);
    server.clock.advance_ms(120_000);
    let r = tablet.push(vec![put("me", "babies", BABY, json!({"name": "Ivy Rose"}), &stamp(&server, 0))]).await;
    assert_eq!(statuses(&r), ["applied"], "two minutes later, a correct clock wins again: {}", r.text);
});

both_backends!(tokens_and_bad_input_change_nothing, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.sync.max_ops_per_push = 5;
        c.sync.max_push_bytes = 4096;
    })
    .await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let h = stamp(&server, 0);
    assert_eq!(statuses(&phone.push(vec![feed("feed_1", 90, &h)]).await), ["applied"]);
    let browser = phone.person_b.clone();
    let b = &browser;
    let body = json!({"client_id": "phone", "schema_version": 1, "ops": [{"seq": 2, "op_id": "x2", "space": "me", "table": "feeds", "id": "feed_1", "action": "delete", "hlc": h}]});

    // No token, a forged one, an expired one, one of an ended session: 401, nothing applied.
    let none = b.send(b.http.post(b.url("/v1/sync/push")).json(&body)).await;
    assert_eq!((none.status, none.error_code()), (StatusCode::UNAUTHORIZED, "authentication_invalid"));
    assert_eq!(none.content_type(), "application/json");
    assert!(none.body["clerk_trace_id"].is_string());
    let forged = raw_push(b, "eyJhbGciOiJub25lIn0.e30.", &body).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let token = phone.token().await;
    server.clock.advance_ms(120_000);
    let expired = raw_push(b, &token, &body).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{}", expired.text);
    assert!(expired.body["errors"][0]["long_message"].as_str().unwrap().contains("expired"));
    let pull = b.send(b.http.get(b.url("/v1/sync/pull")).bearer_auth(&token)).await;
    assert_eq!(pull.status, StatusCode::UNAUTHORIZED);
    let events = b.send(b.http.get(b.url("/v1/sync/events")).bearer_auth(&token)).await;
    assert_eq!(events.status, StatusCode::UNAUTHORIZED);

    let other = Person::sign_up(&server, "grace@example.com").await;
    let other_token = Device::new(&other, "x").token().await;
    let r = other.b.post(&format!("/v1/client/sessions/{}/end", other.session_id), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ended = raw_push(&other.b, &other_token, &body).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "a token of an ended session is refused");

    // Malformed envelopes: 400 (or 413, 415, 409), each in the error shape, nothing applied.
    let token = phone.token().await;
    let send_raw = |content_type: &'static str, text: String| {
        let token = token.clone();
        async move {
            b.send(
                b.http.post(b.url("/v1/sync/push")).bearer_auth(token).header("content-type", content_type).body(text),
            )
            .await
        }
    };
    let r = send_raw("application/json", "{not json".into()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "sync_push_invalid"));
    let r = send_raw("text/plain", body.to_string()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let cases = [
        (json!({"schema_version": 1, "ops": []}), StatusCode::BAD_REQUEST, "sync_push_invalid"),
        (
            json!({"client_id": "has space", "schema_version": 1, "ops": []}),
            StatusCode::BAD_REQUEST,
            "sync_push_invalid",
        ),
        (json!({"client_id": "phone", "schema_version": "1", "ops": []}), StatusCode::BAD_REQUEST, "sync_push_invalid"),
        (
            json!({"client_id": "phone", "schema_version": 99, "ops": []}),
            StatusCode::CONFLICT,
            "sync_schema_version_unsupported",
        ),
        (
            json!({"client_id": "phone", "schema_version": 1, "ops": [{"op_id": "a"}]}),
            StatusCode::BAD_REQUEST,
            "sync_push_invalid",
        ),
        (
            json!({"client_id": "phone", "schema_version": 1, "ops": [{"seq": 2}]}),
            StatusCode::BAD_REQUEST,
            "sync_push_invalid",
        ),
        (
            json!({"client_id": "phone", "schema_version": 1, "ops": [{"seq": 2, "op_id": "a"}, {"seq": 4, "op_id": "b"}]}),
            StatusCode::BAD_REQUEST,
            "sync_push_invalid",
        ),
        (
            json!({"client_id": "phone", "schema_version": 1, "ops": [{"seq": 3, "op_id": "a", "action": "delete"}]}),
            StatusCode::CONFLICT,
            "sync_seq_gap",
        ),
        (
            json!({"client_id": "newcomer", "schema_version": 1, "ops": [{"seq": 7, "op_id": "a"}]}),
            StatusCode::CONFLICT,
            "sync_client_unknown",
        ),
        (
            json!({"client_id": "phone", "schema_version": 1, "ops": (2..9).map(|s| json!({"seq": s, "op_id": format!("o{s}")})).collect::<Vec<_>>()}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "sync_push_too_large",
        ),
        (
            json!({"client_id": "phone", "schema_version": 1, "ops": [put("me", "notes", "n1", json!({"at": 1, "text": "x".repeat(5000)}), &h)]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "sync_push_too_large",
        ),
    ];
    for (bad, status, code) in cases {
        let r = raw_push(b, &token, &bad).await;
        assert_eq!((r.status, r.error_code()), (status, code), "{bad}: {}", r.text);
        assert_eq!(r.content_type(), "application/json");
    }
    let gap =
        raw_push(b, &token, &json!({"client_id": "phone", "schema_version": 1, "ops": [{"seq": 3, "op_id": "a"}]}))
            .await;
    assert_eq!(gap.body["errors"][0]["meta"]["expected_seq"], 2);
    let old = raw_push(b, &token, &json!({"client_id": "phone", "schema_version": 0, "ops": []})).await;
    assert_eq!(old.body["errors"][0]["meta"]["min_schema_version"], 1);

    // Nothing of the above was applied: the feed is intact and the next seq is still 2.
    let mut check = Device::new(&ada, "check");
    check.pull_all(100).await;
    assert_eq!(check.live().len(), 1);
    assert_eq!(server.store.sync_client_last_seq(&ada.user_id, "phone").await.unwrap(), Some(1));

    // Bad operations are rejected one by one, counted as processed, and never wedge the queue.
    let r = phone
        .push(vec![
            put("me", "nope", "x", json!({"a": 1}), &h),
            put("me", "feeds", "feed_9", json!({"amount_ml": 10}), &h),
            put("me", "feeds", "feed_1", json!({"colour": "red"}), &h),
            put("me", "feeds", "feed_1", json!({"amount_ml": -1}), &h),
            put("me", "feeds", "bad id", json!({"amount_ml": 1}), &h),
        ])
        .await;
    assert_eq!(statuses(&r), ["rejected"; 5], "{}", r.text);
    let codes: Vec<&str> =
        r.body["results"].as_array().unwrap().iter().map(|x| x["reason"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["unknown_table", "required_field", "unknown_field", "invalid_field", "invalid_id"]);
    assert_eq!(r.body["last_seq"], 6);
    let r = phone
        .push(vec![
            put("me", "feeds", "feed_1", json!({"amount_ml": 10}), "yesterday"),
            json!({"space": "me", "table": "feeds", "id": "feed_1", "action": "upsert", "hlc": h}),
            put("org_not_mine", "feeds", "feed_1", json!({"amount_ml": 10}), &h),
            json!({"table": "feeds", "id": "feed_1", "action": "delete", "hlc": h}),
            json!({"space": "me", "table": "feeds", "id": "feed_1", "action": "put", "fields": [1], "hlc": h}),
        ])
        .await;
    let codes: Vec<&str> =
        r.body["results"].as_array().unwrap().iter().map(|x| x["reason"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["invalid_hlc", "invalid_action", "space_not_found", "invalid_space", "invalid_fields"]);
    assert_eq!(statuses(&phone.push(vec![feed("feed_3", 30, &h)]).await), ["applied"], "the queue moves on");

    // Bad pulls.
    let token = phone.token().await;
    for (query, param) in [
        ("cursor=nope", "cursor"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=100000", "limit"),
        ("client_id=a%20b", "client_id"),
        ("schema_version=7", "schema_version"),
    ] {
        let r = b.send(b.http.get(b.url(&format!("/v1/sync/pull?{query}"))).bearer_auth(&token)).await;
        assert!(r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::CONFLICT, "{query}: {}", r.text);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], param, "{query}");
    }
});

both_backends!(paging_cursors_reset_and_compression, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let h = stamp(&server, 0);
    for batch in 0..5 {
        let ops = (0..50).map(|i| feed(&format!("feed_{batch}_{i}"), i, &h)).collect();
        assert_eq!(phone.push(ops).await.status, StatusCode::OK);
    }
    // One large push (past the 64 KiB limit of other request bodies, within sync's 1 MiB).
    let big: Vec<Value> = (0..400)
        .map(|i| {
            put("me", "notes", &format!("note_{i}"), json!({"at": 1, "text": format!("{i} {}", "z".repeat(200))}), &h)
        })
        .collect();
    let r = phone.push(big).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["last_seq"], 650);
    let mut tablet = Device::new(&ada, "tablet");
    let pages = tablet.pull_all(100).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.body["changes"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [100, 100, 100, 100, 100, 100, 50]);
    let more: Vec<bool> = pages.iter().map(|p| p.body["has_more"] == true).collect();
    assert_eq!(more, [true, true, true, true, true, true, false]);
    assert_eq!(tablet.live().len(), 650);
    assert_eq!(tablet.pull_page(100).await.body["changes"], json!([]));

    // A cursor ahead of the server (a restore from backup) is answered with a reset.
    let key = &ada.user_id;
    let ahead = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"v": 1, "s": {key: [999_999, "someone-elses-epoch", "00000000"]}}).to_string());
    tablet.cursor = Some(ahead);
    tablet.data.insert(("me".into(), "feeds".into(), "ghost".into()), Some(json!({})));
    let r = tablet.pull_page(1000).await;
    assert_eq!(r.body["spaces"]["reset"], json!(["me"]));
    assert_eq!(tablet.live().len(), 650, "the reset dropped the ghost and refilled the space");

    // Compressed when the client accepts it.
    let token = tablet.token().await;
    let b = &tablet.person_b;
    let res = b
        .http
        .get(b.url("/v1/sync/pull?limit=1000"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let compressed = res.bytes().await.unwrap().len();
    let plain = b.send(b.http.get(b.url("/v1/sync/pull?limit=1000")).bearer_auth(&token)).await.text.len();
    assert!(compressed * 4 < plain, "gzip {compressed} bytes vs {plain}");
});

both_backends!(old_tombstones_are_compacted_and_stale_cursors_reset, |backend| async move {
    let server = TestServer::start_with(backend, |c| c.sync.tombstone_ttl_days = 1).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let h = stamp(&server, 0);
    let r = phone.push(vec![feed("feed_1", 1, &h), feed("feed_2", 2, &h), feed("feed_3", 3, &h)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut tablet = Device::new(&ada, "tablet");
    tablet.pull_all(100).await;
    assert_eq!(tablet.live().len(), 3);

    server.clock.advance_ms(10);
    assert_eq!(phone.push(vec![del("me", "feeds", "feed_2", &stamp(&server, 0))]).await.status, StatusCode::OK);
    let mut laptop = Device::new(&ada, "laptop");
    laptop.pull_all(100).await;
    // Within the limit nothing is compacted.
    assert_eq!(server.sync.compact_tombstones().await.unwrap(), 0);

    server.clock.advance_ms(25 * 3_600_000);
    assert_eq!(server.sync.compact_tombstones().await.unwrap(), 1);
    // The tablet's cursor predates the removed delete: it is told to start over, and does
    // not keep the deleted record.
    let r = tablet.pull_page(100).await;
    assert_eq!(r.body["spaces"]["reset"], json!(["me"]), "{}", r.text);
    let ids: Vec<String> = tablet.live().keys().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(ids, ["feed_1", "feed_3"]);
    // The laptop saw the delete: its cursor is still good.
    let r = laptop.pull_page(100).await;
    assert_eq!(r.body["spaces"]["reset"], json!([]), "{}", r.text);
    assert_eq!(r.body["changes"], json!([]));
    assert_eq!(laptop.live().len(), 2);
    // The store keeps no tombstone, and a record written again starts over.
    let changes = server.store.sync_changes(&ada.user_id, 0, 100, false).await.unwrap();
    assert!(changes.iter().all(|c| !c.deleted), "{changes:?}");
    let r = phone.push(vec![feed("feed_2", 20, &stamp(&server, 0))]).await;
    assert_eq!(statuses(&r), ["applied"]);
});

both_backends!(ops_of_an_older_schema_version_are_brought_forward, |backend| async move {
    let server = TestServer::start_with(backend, |c| {
        c.sync.schema_version = 2;
        c.sync.migrations = vec![latchkey_core::sync::migration::Migration {
            version: 2,
            table: "feeds".into(),
            rename: [("ml".to_owned(), "amount_ml".to_owned())].into(),
            remove: vec!["legacy_flag".into()],
        }];
    })
    .await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let old_fields =
        json!({"baby_id": BABY, "kind": "bottle", "started_at": 1_700_000_000_000_i64, "ml": 90, "legacy_flag": true});
    let h = stamp(&server, 0);
    // Written by an app of version 1 (the device pushes schema_version 1).
    let mut phone = Device::new(&ada, "phone");
    let r = phone.push(vec![put("me", "feeds", "feed_1", old_fields.clone(), &h)]).await;
    assert_eq!(statuses(&r), ["applied"], "{}", r.text);
    let changes = server.store.sync_changes(&ada.user_id, 0, 10, false).await.unwrap();
    let stored: Value = serde_json::from_str(&changes[0].data).unwrap();
    assert_eq!(stored["amount_ml"], 90);
    assert!(stored.get("ml").is_none() && stored.get("legacy_flag").is_none(), "{stored}");
    // The current version has no field `ml`: the same op is refused there.
    let token = phone.token().await;
    let body = json!({"client_id": "tablet", "schema_version": 2, "ops": [
        {"seq": 1, "op_id": "t1", "space": "me", "table": "feeds", "id": "feed_2", "action": "put", "fields": old_fields, "hlc": h}]});
    let r = raw_push(&phone.person_b, &token, &body).await;
    assert_eq!(statuses(&r), ["rejected"], "{}", r.text);
    assert_eq!(r.body["results"][0]["reason"]["code"], "unknown_field");
});

#[test]
fn a_migration_of_an_unknown_table_is_a_configuration_error() {
    let config = latchkey_service::sync::SyncConfig {
        schema_version: 2,
        migrations: vec![latchkey_core::sync::migration::Migration {
            version: 2,
            table: "invoices".into(),
            rename: Default::default(),
            remove: vec![],
        }],
        ..Default::default()
    };
    let err = config.all_tables().unwrap_err();
    assert!(err.contains("no sync table `invoices`"), "{err}");
}

/// An instance where reading and writing `journal` in a family needs permissions that only
/// the custom role `org:parent` has.
pub(crate) async fn family_server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.organizations.permissions = vec!["org:journal:read".into(), "org:journal:write".into()];
        c.organizations.roles = vec![RoleConfig {
            key: "parent".into(),
            name: "Parent".into(),
            description: "Reads and writes the journal".into(),
            permissions: vec!["org:journal:read".into(), "org:journal:write".into()],
        }];
        let journal: latchkey_core::sync::schema::TableSpec = toml::from_str(
            r#"
            read_permission = "org:journal:read"
            write_permission = "org:journal:write"
            [fields]
            text = { type = "string", required = true }
            "#,
        )
        .unwrap();
        c.sync.tables.insert("journal".into(), journal);
    })
    .await
}

both_backends!(organization_spaces_and_permissions, |backend| async move {
    let server = family_server(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let eve = Person::sign_up(&server, "eve@example.com").await;
    let created = ada.call("POST", "/v1/organizations", &[("name", "Family")]).await;
    let org = created.body["response"]["id"].as_str().unwrap().to_owned();
    server
        .services
        .orgs()
        .add_member(&latchkey::operator().organization(&org), &bob.user_id, Some("org:member"))
        .await
        .unwrap();

    let mut ada_phone = Device::new(&ada, "ada-phone");
    let h = stamp(&server, 0);
    let r = ada_phone
        .push(vec![
            put(&org, "babies", BABY, json!({"name": "Ivy"}), &h),
            put(&org, "journal", "j1", json!({"text": "first smile"}), &h),
            put("me", "notes", "private", json!({"at": 1, "text": "mine alone"}), &h),
        ])
        .await;
    assert_eq!(statuses(&r), ["applied"; 3]);

    // Bob, a member, sees the family's babies but not the journal his role cannot read, and
    // never Ada's personal space.
    let mut bob_phone = Device::new(&bob, "bob-phone");
    let r = bob_phone.pull_page(100).await;
    assert_eq!(r.body["spaces"]["added"], json!(["me", org]));
    let live = bob_phone.live();
    assert_eq!(live.keys().cloned().collect::<Vec<_>>(), vec![(org.clone(), "babies".to_owned(), BABY.to_owned())]);
    let r = bob_phone
        .push(vec![
            put(&org, "journal", "j2", json!({"text": "hi"}), &h),
            put(&org, "babies", BABY, json!({"name": "Ivy B"}), &stamp(&server, 1)),
        ])
        .await;
    assert_eq!(statuses(&r), ["rejected", "applied"]);
    assert_eq!(r.body["results"][0]["reason"]["code"], "permission_denied");

    // Eve, not a member, can neither write nor read the family's space.
    let mut eve_phone = Device::new(&eve, "eve-phone");
    let r = eve_phone.push(vec![put(&org, "babies", BABY, json!({"name": "Mine now"}), &stamp(&server, 2))]).await;
    assert_eq!(r.body["results"][0]["reason"]["code"], "space_not_found");
    let r = eve_phone.pull_page(100).await;
    assert_eq!(r.body["spaces"]["added"], json!(["me"]));
    assert!(eve_phone.live().is_empty());

    // Promoted to parent, Bob's phone starts the family's space over and now gets the journal
    // written before; removed, he drops the space.
    server
        .services
        .orgs()
        .set_member_role(&latchkey::operator().organization(&org), &bob.user_id, "org:parent")
        .await
        .unwrap();
    let r = bob_phone.pull_page(100).await;
    assert_eq!(r.body["spaces"]["reset"], json!([org]), "{}", r.text);
    assert!(bob_phone.live().contains_key(&(org.clone(), "journal".to_owned(), "j1".to_owned())));
    let mut bob_tablet = Device::new(&bob, "bob-tablet");
    bob_tablet.pull_all(100).await;
    assert_eq!(bob_tablet.live(), bob_phone.live());
    server.services.orgs().remove_member(&latchkey::operator().organization(&org), &bob.user_id).await.unwrap();
    let r = bob_tablet.pull_page(100).await;
    assert_eq!(r.body["spaces"]["removed"], json!([org]));
    assert!(bob_tablet.live().is_empty());
    let r = bob_tablet.push(vec![put(&org, "babies", BABY, json!({"name": "x"}), &stamp(&server, 3))]).await;
    assert_eq!(r.body["results"][0]["reason"]["code"], "space_not_found");

    // Export (Backend API) and deletion: the organization's space goes with it.
    let (_, key) = server.services.create_secret_key(&latchkey::operator(), "tests").await.unwrap();
    let b = server.browser();
    let export = b.send(b.http.get(b.url(&format!("/v1/organizations/{org}/sync_export"))).bearer_auth(&key)).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert_eq!(export.body["total_count"], 2);
    assert_eq!(export.body["tables"]["babies"][0]["fields"]["name"], "Ivy B");
    let mine = b.send(b.http.get(b.url(&format!("/v1/users/{}/sync_export", ada.user_id))).bearer_auth(&key)).await;
    assert_eq!(mine.body["tables"]["notes"][0]["fields"]["text"], "mine alone");
    let anonymous = b.get(&format!("/v1/users/{}/sync_export", ada.user_id)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let with_token = b
        .send(b.http.get(b.url(&format!("/v1/users/{}/sync_export", ada.user_id))).bearer_auth(ada_phone.token().await))
        .await;
    assert_eq!(with_token.status, StatusCode::UNAUTHORIZED, "a session token is not a secret key");
    let missing = b.send(b.http.get(b.url("/v1/users/user_nope/sync_export")).bearer_auth(&key)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    server.services.orgs().delete_organization(&latchkey::operator().organization(&org)).await.unwrap();
    assert!(server.store.sync_changes(&org, 0, 100, false).await.unwrap().is_empty());
    let r = b.send(b.http.delete(b.url(&format!("/v1/users/{}", ada.user_id))).bearer_auth(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(server.store.sync_changes(&ada.user_id, 0, 100, false).await.unwrap().is_empty());
});

both_backends!(live_events_announce_changes, |backend| async move {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let tablet = Device::new(&ada, "tablet");
    let token = tablet.token().await;
    let b = &tablet.person_b;
    let mut res = b.http.get(b.url("/v1/sync/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    read_until(&mut res, &mut seen, "event: ready").await;
    assert_eq!(statuses(&phone.push(vec![feed("feed_1", 10, &stamp(&server, 0))]).await), ["applied"]);
    read_until(&mut res, &mut seen, "event: change").await;
    assert!(seen.contains(r#""space":"me""#), "{seen}");
});

pub(crate) async fn read_until(res: &mut reqwest::Response, seen: &mut String, needle: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(needle) {
            let chunk = res.chunk().await.unwrap().expect("stream ended early");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("event in time");
}

/// Many pushers write new records into one space at once while a puller follows by cursor:
/// with sequence numbers handed out in commit order, the puller ends with exactly the final
/// state, never having skipped a change that committed late.
async fn concurrent_pushers_are_never_skipped(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let created = ada.call("POST", "/v1/organizations", &[("name", "Family")]).await;
    let org = created.body["response"]["id"].as_str().unwrap().to_owned();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pushers = Vec::new();
    for p in 0..8 {
        let (ada_b, session, org) = (ada.b.clone(), ada.session_id.clone(), org.clone());
        let h = stamp(&server, p);
        pushers.push(tokio::spawn(async move {
            let person = Person { b: ada_b, user_id: String::new(), session_id: session };
            let mut device = Device::new(&person, &format!("pusher-{p}"));
            for batch in 0..15 {
                let ops = (0..4)
                    .map(|i| {
                        put(
                            &org,
                            "babies",
                            &format!("b{p}_{batch}_{i}"),
                            json!({"name": format!("{p}/{batch}/{i}")}),
                            &h,
                        )
                    })
                    .collect();
                let r = device.push(ops).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
        }));
    }
    let puller = {
        let person = Person { b: ada.b.clone(), user_id: String::new(), session_id: ada.session_id.clone() };
        let done = done.clone();
        tokio::spawn(async move {
            let mut device = Device::new(&person, "puller");
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                device.pull_all(7).await;
                if finished {
                    return device.live();
                }
            }
        })
    };
    for p in pushers {
        p.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let followed = puller.await.unwrap();
    let mut fresh = Device::new(&ada, "fresh");
    fresh.pull_all(1000).await;
    assert_eq!(fresh.live().len(), 8 * 15 * 4);
    let expected = fresh.live();
    let missed: Vec<_> = expected.keys().filter(|k| !followed.contains_key(*k)).take(5).collect();
    assert!(missed.is_empty(), "the following puller skipped changes, e.g. {missed:?}");
    assert!(followed == expected, "the following puller holds records the server does not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushers_are_never_skipped_on_postgres() {
    concurrent_pushers_are_never_skipped(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushers_are_never_skipped_on_sqlite() {
    concurrent_pushers_are_never_skipped(Backend::Sqlite).await;
}

/// Two instances on one PostgreSQL database: a push taken by one reaches the live streams of
/// both (`LISTEN/NOTIFY`), and a token of one is good at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_reach_every_instance_on_postgres() {
    let issuer = "http://127.0.0.1:9";
    let first = TestServer::start_with(Backend::Postgres, |c| c.public_url = Some(issuer.into())).await;
    let (database_url, data_dir) = first.shared_storage();
    let second = TestServer::start_with(Backend::Postgres, move |c| {
        c.public_url = Some(issuer.into());
        c.database_url = database_url.into();
        c.data_dir = data_dir;
    })
    .await;
    let ada = Person::sign_up(&first, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let token = phone.token().await;
    let listen = |server: &TestServer| {
        let (b, token) = (server.browser(), token.clone());
        async move { b.http.get(b.url("/v1/sync/events")).bearer_auth(token).send().await.unwrap() }
    };
    let (mut on_first, mut on_second) = (listen(&first).await, listen(&second).await);
    assert_eq!((on_first.status(), on_second.status()), (StatusCode::OK, StatusCode::OK));
    let (mut seen_first, mut seen_second) = (String::new(), String::new());
    read_until(&mut on_first, &mut seen_first, "event: ready").await;
    read_until(&mut on_second, &mut seen_second, "event: ready").await;
    assert_eq!(statuses(&phone.push(vec![feed("feed_1", 10, &stamp(&first, 0))]).await), ["applied"]);
    read_until(&mut on_second, &mut seen_second, "event: change").await;
    read_until(&mut on_first, &mut seen_first, "event: change").await;
    assert!(seen_second.contains(r#""space":"me""#), "{seen_second}");
    // The other instance serves the same data.
    let b = second.browser();
    let r = b.send(b.http.get(b.url("/v1/sync/pull")).bearer_auth(phone.token().await)).await;
    assert_eq!(r.body["changes"].as_array().map(Vec::len), Some(1), "{}", r.text);
}

/// With `[sync] enabled = false` every sync endpoint is a 404 in the error shape, even with a
/// valid token, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_sync_answers_not_found() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.sync.enabled = false).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let mut phone = Device::new(&ada, "phone");
    let r = phone.push(vec![feed("feed_1", 10, &stamp(&server, 0))]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "resource_not_found"), "{}", r.text);
    assert_eq!(r.content_type(), "application/json");
    let token = phone.token().await;
    let b = &phone.person_b;
    for path in ["/v1/sync/pull", "/v1/sync/events"] {
        let r = b.send(b.http.get(b.url(path)).bearer_auth(&token)).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "resource_not_found"), "{path}");
    }
    assert!(server.store.sync_changes(&ada.user_id, 0, 10, false).await.unwrap().is_empty());
    assert_eq!(server.store.sync_client_last_seq(&ada.user_id, "phone").await.unwrap(), None);
}
