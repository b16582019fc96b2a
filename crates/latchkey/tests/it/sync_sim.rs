//! A property-based simulation of the sync protocol (docs/sync-protocol.md §14): 3 to 8 clients
//! of two users and their family, random writes and deletes, offline windows, lost, duplicated
//! and replayed (reordered) requests, and tokens expiring mid-run. After a final sync every
//! client holds the server's state; that state is the merge of every operation written (none
//! lost, which the order-independence of the merge makes checkable); no operation got two first
//! results (none applied twice); every client's operations were taken in its order; and nobody
//! saw another person's personal space.

use std::collections::{BTreeMap, BTreeSet};

use latchkey_core::sync::merge::{merge, Change, RecordState};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::harness::{Backend, Browser, TestServer};
use crate::orgs::Person;

type Key = (String, String); // (space as the writer named it, record id)

#[derive(Debug, Clone)]
enum Step {
    Write {
        client: usize,
        family: bool,
        record: u8,
        field: u8,
        value: i64,
    },
    Delete {
        client: usize,
        family: bool,
        record: u8,
    },
    Sync {
        client: usize,
        fault: Fault,
    },
    Offline {
        client: usize,
    },
    Online {
        client: usize,
    },
    /// Minutes pass: session tokens (60 s) expire.
    Wait {
        minutes: u8,
    },
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// The push is applied but its response never arrives.
    LostPushResponse,
    /// The pull's response never arrives (the cursor stays).
    LostPullResponse,
    /// The push is sent twice.
    Duplicated,
    /// An earlier push of this client is sent again, after later ones.
    ReplayOld,
}

fn step() -> impl Strategy<Value = Step> {
    let c = 0..8usize;
    prop_oneof![
        4 => (c.clone(), any::<bool>(), 0..4u8, 0..3u8, 0..100i64)
            .prop_map(|(client, family, record, field, value)| Step::Write { client, family, record, field, value }),
        1 => (c.clone(), any::<bool>(), 0..4u8).prop_map(|(client, family, record)| Step::Delete { client, family, record }),
        3 => (c.clone(), prop_oneof![
                3 => Just(Fault::None), 1 => Just(Fault::LostPushResponse), 1 => Just(Fault::LostPullResponse),
                1 => Just(Fault::Duplicated), 1 => Just(Fault::ReplayOld)])
            .prop_map(|(client, fault)| Step::Sync { client, fault }),
        1 => c.clone().prop_map(|client| Step::Offline { client }),
        1 => c.prop_map(|client| Step::Online { client }),
        1 => (1..3u8).prop_map(|minutes| Step::Wait { minutes }),
    ]
}

struct Op {
    seq: i64,
    op_id: String,
    body: Value,
}

struct Client {
    id: String,
    user: usize,
    browser: Browser,
    session_id: String,
    token: Option<String>,
    online: bool,
    next_seq: i64,
    counter: u32,
    skew_ms: i64,
    outbox: Vec<Op>,
    sent: Vec<Value>,
    cursor: Option<String>,
    /// Pulled state: (space, table, id) → fields.
    data: BTreeMap<(String, String, String), Value>,
}

/// Every operation written, with the stamp the server will use.
struct Written {
    space_key: String,
    id: String,
    fields: Option<Map<String, Value>>,
    stamp: String,
}

struct World<'a> {
    server: &'a TestServer,
    users: Vec<Person>,
    org: String,
    clients: Vec<Client>,
    written: Vec<Written>,
    /// op_id → number of first (non-duplicate) results seen.
    first_results: BTreeMap<String, u32>,
}

impl World<'_> {
    async fn token(&mut self, c: usize, fresh: bool) -> String {
        let client = &mut self.clients[c];
        if fresh || client.token.is_none() {
            let r = client.browser.token(&client.session_id).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            client.token = r.body["jwt"].as_str().map(str::to_owned);
        }
        client.token.clone().unwrap()
    }

    /// Sends with the cached token; on 401 refreshes it and retries, outbox untouched.
    async fn send(&mut self, c: usize, push: Option<&Value>, url: &str) -> (StatusCode, Value) {
        for attempt in 0..2 {
            let token = self.token(c, attempt == 1).await;
            let b = &self.clients[c].browser;
            let req = match push {
                Some(body) => b.http.post(b.url(url)).json(body),
                None => b.http.get(b.url(url)),
            };
            let r = b.send(req.bearer_auth(token)).await;
            if r.status == StatusCode::UNAUTHORIZED && attempt == 0 {
                continue;
            }
            return (r.status, r.body);
        }
        unreachable!()
    }

    fn write(&mut self, c: usize, family: bool, record: u8, fields: Option<Map<String, Value>>) {
        let now = latchkey_core::Clock::now_ms(&self.server.clock);
        let client = &mut self.clients[c];
        let (space, space_key) = if family {
            (self.org.clone(), self.org.clone())
        } else {
            ("me".to_owned(), self.users[client.user].user_id.clone())
        };
        // Personal records carry their owner's name, so a leak would show.
        let id = if family { format!("fam-{record}") } else { format!("u{}-{record}", client.user) };
        client.counter += 1;
        let hlc = format!("{}-{}", now + client.skew_ms, client.counter);
        let stamp = latchkey_core::sync::hlc::Stamp::parse(&hlc).unwrap().bounded(now, 60_000).canonical(&client.id);
        let seq = client.next_seq;
        client.next_seq += 1;
        let op_id = format!("{}-op{seq}", client.id);
        let mut body = json!({"seq": seq, "op_id": op_id, "space": space, "table": "items", "id": id, "hlc": hlc});
        match &fields {
            Some(f) => {
                body["action"] = json!("put");
                body["fields"] = Value::Object(f.clone());
            }
            None => body["action"] = json!("delete"),
        }
        client.outbox.push(Op { seq, op_id, body });
        self.written.push(Written { space_key, id, fields, stamp });
    }

    async fn sync(&mut self, c: usize, fault: Fault) {
        if !self.clients[c].online {
            return;
        }
        if let Fault::ReplayOld = fault {
            if let Some(old) = self.clients[c].sent.first().cloned() {
                let (status, body) = self.send(c, Some(&old), "/v1/sync/push").await;
                assert_eq!(status, StatusCode::OK, "{body}");
                for r in body["results"].as_array().unwrap() {
                    assert_eq!(r["status"], "duplicate", "a replayed push changes nothing: {r}");
                }
            }
        }
        let batch: Vec<Value> = self.clients[c].outbox.iter().take(5).map(|op| op.body.clone()).collect();
        if !batch.is_empty() {
            let push = json!({"client_id": self.clients[c].id, "schema_version": 1, "ops": batch});
            let times = if let Fault::Duplicated = fault { 2 } else { 1 };
            for _ in 0..times {
                let (status, body) = self.send(c, Some(&push), "/v1/sync/push").await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let results = body["results"].as_array().unwrap();
                assert_eq!(results.len(), batch.len());
                for (r, op) in results.iter().zip(&self.clients[c].outbox) {
                    assert_eq!((r["seq"].as_i64(), r["op_id"].as_str()), (Some(op.seq), Some(op.op_id.as_str())));
                    let status = r["status"].as_str().unwrap();
                    assert_ne!(status, "rejected", "{r}");
                    if status != "duplicate" {
                        *self.first_results.entry(op.op_id.clone()).or_default() += 1;
                    }
                }
                if let Fault::LostPushResponse = fault {
                    return; // applied, but the client never hears of it
                }
            }
            self.clients[c].sent.push(push);
            self.clients[c].outbox.drain(..batch.len());
        }
        self.pull(c, matches!(fault, Fault::LostPullResponse)).await;
    }

    async fn pull(&mut self, c: usize, lose: bool) -> bool {
        let client = &self.clients[c];
        let mut url = format!("/v1/sync/pull?client_id={}&limit=7", client.id);
        if let Some(cursor) = &client.cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = self.send(c, None, &url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if lose {
            return true;
        }
        let client = &mut self.clients[c];
        let user = client.user;
        for change in page["changes"].as_array().unwrap() {
            let space = change["space"].as_str().unwrap().to_owned();
            let id = change["id"].as_str().unwrap().to_owned();
            assert!(space == "me" || space == self.org, "a space nobody shares: {space}");
            if space == "me" {
                assert!(id.starts_with(&format!("u{user}-")), "user {user} saw someone else's record {id}");
            }
            let key = (space, change["table"].as_str().unwrap().to_owned(), id);
            if change["deleted"] == true {
                client.data.remove(&key);
            } else {
                client.data.insert(key, change["fields"].clone());
            }
        }
        client.cursor = page["cursor"].as_str().map(str::to_owned);
        page["has_more"] == true
    }

    /// What the server must hold: every written operation merged (in any order: the merge
    /// does not depend on it).
    fn expected(&self) -> BTreeMap<Key, Map<String, Value>> {
        let mut states: BTreeMap<Key, RecordState> = BTreeMap::new();
        for w in &self.written {
            let state = states.entry((w.space_key.clone(), w.id.clone())).or_default();
            let change = w.fields.as_ref().map_or(Change::Delete, Change::Put);
            merge(state, change, &w.stamp, &[]).unwrap();
        }
        states.into_iter().filter(|(_, s)| s.is_live()).map(|(k, s)| (k, s.fields)).collect()
    }
}

async fn simulate(server: &TestServer, users: Vec<Person>, org: String, clients: usize, steps: Vec<Step>) {
    let mut world =
        World { server, users, org, clients: Vec::new(), written: Vec::new(), first_results: BTreeMap::new() };
    for i in 0..clients {
        let user = i % 2;
        let person = &world.users[user];
        world.clients.push(Client {
            id: format!("c{i}-{}", person.user_id.get(5..13).unwrap_or("x")),
            user,
            browser: person.b.clone(),
            session_id: person.session_id.clone(),
            token: None,
            online: true,
            next_seq: 1,
            counter: 0,
            skew_ms: (i as i64 - 3) * 1500,
            outbox: Vec::new(),
            sent: Vec::new(),
            cursor: None,
            data: BTreeMap::new(),
        });
    }
    for step in steps {
        match step {
            Step::Write { client, family, record, field, value } => {
                let mut fields = Map::new();
                fields.insert(["a", "b", "c"][field as usize].to_owned(), json!(value));
                world.write(client % clients, family, record, Some(fields));
            }
            Step::Delete { client, family, record } => world.write(client % clients, family, record, None),
            Step::Sync { client, fault } => world.sync(client % clients, fault).await,
            Step::Offline { client } => world.clients[client % clients].online = false,
            Step::Online { client } => world.clients[client % clients].online = true,
            Step::Wait { minutes } => server.clock.advance_ms(i64::from(minutes) * 60_000),
        }
        server.clock.advance_ms(250);
    }

    // Final sync: everyone online, outboxes drained, then pulled to the end.
    for c in 0..clients {
        world.clients[c].online = true;
        while !world.clients[c].outbox.is_empty() {
            world.sync(c, Fault::None).await;
        }
    }
    for c in 0..clients {
        while world.pull(c, false).await {}
    }

    let expected = world.expected();
    for c in 0..clients {
        let client = &world.clients[c];
        let user_id = &world.users[client.user].user_id;
        let mine: BTreeMap<Key, Map<String, Value>> = expected
            .iter()
            .filter(|((space, _), _)| space == user_id || *space == world.org)
            .map(|((space, id), f)| (((if space == user_id { "me" } else { space }).to_owned(), id.clone()), f.clone()))
            .collect();
        let held: BTreeMap<Key, Map<String, Value>> = client
            .data
            .iter()
            .map(|((space, _, id), f)| ((space.clone(), id.clone()), f.as_object().cloned().unwrap_or_default()))
            .collect();
        assert_eq!(held, mine, "client {c} differs from the merge of every operation written");
        let last = server.store.sync_client_last_seq(user_id, &client.id).await.unwrap().unwrap_or(0);
        assert_eq!(last, client.next_seq - 1, "client {c}: every op taken, in order");
    }
    let written_ids: BTreeSet<String> =
        world.clients.iter().flat_map(|c| (1..c.next_seq).map(move |s| format!("{}-op{s}", c.id))).collect();
    for id in &written_ids {
        assert!(world.first_results.get(id).copied().unwrap_or(0) <= 1, "{id} was applied twice");
    }
}

fn run(backend: Backend, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = rt.block_on(TestServer::start_with(backend, |c| {
        c.sync.tables.insert(
            "items".into(),
            toml::from_str(
                r#"
                [fields]
                a = { type = "integer" }
                b = { type = "integer" }
                c = { type = "integer" }
                "#,
            )
            .unwrap(),
        );
    }));
    let counter = std::sync::atomic::AtomicU32::new(0);
    let mut runner = TestRunner::new(RunnerConfig { cases, max_shrink_iters: 32, ..RunnerConfig::default() });
    let strategy = (3..=8usize, proptest::collection::vec(step(), 20..60));
    runner
        .run(&strategy, |(clients, steps)| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            rt.block_on(async {
                let a = Person::sign_up(&server, &format!("a{n}@example.com")).await;
                let b = Person::sign_up(&server, &format!("b{n}@example.com")).await;
                let created = a.call("POST", "/v1/organizations", &[("name", &format!("Family {n}"))]).await;
                let org = created.body["response"]["id"].as_str().unwrap().to_owned();
                server
                    .services
                    .orgs()
                    .add_member(&latchkey::operator().organization(&org), &b.user_id, Some("org:member"))
                    .await
                    .unwrap();
                let task = simulate(&server, vec![a, b], org, clients, steps);
                // A failing case panics; proptest shrinks it.
                task.await;
            });
            Ok(())
        })
        .unwrap();
}

#[test]
fn simulated_clients_converge_on_sqlite() {
    run(Backend::Sqlite, 24);
}

#[test]
fn simulated_clients_converge_on_postgres() {
    run(Backend::Postgres, 6);
}
