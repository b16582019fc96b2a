//! The sync part of the conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use latchkey_core::sync::Rejection;
use serde_json::{json, Value};

use super::{uid, user};
use crate::{Store, SyncOpBody, SyncOpIn, SyncPush, SyncPushDone, SyncPushOutcome, SyncWrite};

fn put(space: &str, id: &str, fields: Value, stamp: &str) -> SyncOpBody {
    SyncOpBody::Write(SyncWrite {
        space: space.into(),
        table: "feeds".into(),
        id: id.into(),
        fields: Some(fields.as_object().unwrap().clone()),
        stamp: stamp.into(),
        required: vec!["kind".to_owned()].into(),
    })
}

fn delete(space: &str, id: &str, stamp: &str) -> SyncOpBody {
    SyncOpBody::Write(SyncWrite {
        space: space.into(),
        table: "feeds".into(),
        id: id.into(),
        fields: None,
        stamp: stamp.into(),
        required: Vec::new().into(),
    })
}

fn push(user: &str, client: &str, ops: Vec<(i64, &str, SyncOpBody)>) -> SyncPush {
    SyncPush {
        user_id: user.into(),
        client_id: client.into(),
        ops: ops.into_iter().map(|(seq, op_id, body)| SyncOpIn { seq, op_id: op_id.into(), body }).collect(),
        now: 5_000,
        new_epoch: uid("ep"),
        full_spaces: Vec::new(),
    }
}

async fn done(store: &dyn Store, p: &SyncPush) -> SyncPushDone {
    match store.sync_push(p).await.unwrap() {
        SyncPushOutcome::Done(d) => d,
        other => panic!("expected the push to be applied, got {other:?}"),
    }
}

fn statuses(d: &SyncPushDone) -> Vec<&str> {
    d.results.iter().map(|r| r["status"].as_str().unwrap()).collect()
}

pub async fn space_bytes_are_kept_and_full_spaces_take_no_new_tombstones(store: &dyn Store) {
    let (space, client) = (owner(store).await, uid("cl"));
    let bytes = |space: String| async move { store.sync_spaces(&[space]).await.unwrap()[0].bytes };
    done(
        store,
        &push(&space, &client, vec![(1, &uid("op"), put(&space, "f1", json!({"kind": "bottle", "ml": 90}), "1-0-x"))]),
    )
    .await;
    let one = bytes(space.clone()).await;
    // table + id + fields + clocks, as stored.
    assert!(one >= ("feeds".len() + "f1".len() + r#"{"kind":"bottle","ml":90}"#.len()) as i64, "{one}");
    done(
        store,
        &push(&space, &client, vec![(2, &uid("op"), put(&space, "f2", json!({"kind": "bottle", "ml": 90}), "1-0-x"))]),
    )
    .await;
    assert_eq!(bytes(space.clone()).await, 2 * one, "two records of one shape take twice the bytes");
    done(store, &push(&space, &client, vec![(3, &uid("op"), delete(&space, "f2", "2-0-x"))])).await;
    let after_delete = bytes(space.clone()).await;
    assert!(after_delete < 2 * one, "a tombstone is smaller than its record ({after_delete})");
    // A full space: a delete of a record it holds is taken, one of a record it never held is not.
    let full = SyncPush {
        full_spaces: vec![space.clone()],
        ..push(
            &space,
            &client,
            vec![(4, &uid("op"), delete(&space, "f1", "3-0-x")), (5, &uid("op"), delete(&space, "never", "3-0-x"))],
        )
    };
    let d = done(store, &full).await;
    assert_eq!(statuses(&d), ["applied", "rejected"]);
    assert_eq!(d.results[1]["reason"]["code"], "space_quota_exceeded");
}

pub async fn pushes_apply_in_order_and_replays_change_nothing(store: &dyn Store) {
    let (space, client) = (owner(store).await, uid("cl"));
    let (a, b, c) = (uid("op"), uid("op"), uid("op"));
    let first = push(
        &space,
        &client,
        vec![
            (1, &a, put(&space, "f1", json!({"kind": "bottle", "ml": 90}), "1-0-x")),
            (2, &b, SyncOpBody::Rejected(Rejection::new("unknown_table", "no such table"))),
            (3, &c, put(&space, "f1", json!({"ml": 120}), "2-0-x")),
        ],
    );
    let d = done(store, &first).await;
    assert_eq!(statuses(&d), ["applied", "rejected", "applied"]);
    assert_eq!(d.last_seq, 3, "a rejected op counts as processed");
    assert_eq!(d.changed.len(), 1);
    assert_eq!(store.sync_client_last_seq(&space, &client).await.unwrap(), Some(3));
    let changes = store.sync_changes(&space, 0, 100, true).await.unwrap();
    assert_eq!(changes.len(), 1, "a record changed twice is served once");
    assert_eq!((space.clone(), changes[0].seq), d.changed[0], "the space's counter is the latest change");
    let data: Value = serde_json::from_str(&changes[0].data).unwrap();
    assert_eq!(data, json!({"kind": "bottle", "ml": 120}));

    // The same batch again: every op is a duplicate carrying its first result, nothing moves.
    let again = done(store, &first).await;
    assert_eq!(statuses(&again), ["duplicate"; 3]);
    assert_eq!(again.results[1]["original"]["status"], "rejected");
    assert_eq!(again.results[0]["original"]["status"], "applied");
    assert!(again.changed.is_empty());
    assert_eq!(store.sync_spaces(std::slice::from_ref(&space)).await.unwrap()[0].seq, changes[0].seq);

    // A used seq with an op id never seen is no replay: it is refused visibly, nothing moves.
    let reused = push(&space, &client, vec![(2, "r1", put(&space, "f1", json!({"ml": 999}), "9-0-x"))]);
    let r = done(store, &reused).await;
    assert_eq!(statuses(&r), ["rejected"]);
    assert_eq!(r.results[0]["reason"]["code"], "seq_reused");
    assert!(r.changed.is_empty());
    assert_eq!(store.sync_client_last_seq(&space, &client).await.unwrap(), Some(3));
    let now: Value = serde_json::from_str(&store.sync_changes(&space, 0, 100, true).await.unwrap()[0].data).unwrap();
    assert_eq!(now, json!({"kind": "bottle", "ml": 120}));

    // A gap is refused whole; the ops before it are not applied either.
    let gap = push(
        &space,
        &client,
        vec![
            (4, "g1", put(&space, "f2", json!({"kind": "solids"}), "3-0-x")),
            (6, "g2", delete(&space, "f1", "4-0-x")),
        ],
    );
    // Nothing was applied, so what the server expects is still 4, not the 5 the push skipped.
    assert_eq!(store.sync_push(&gap).await.unwrap(), SyncPushOutcome::Gap { expected_seq: 4 });
    let skip = push(&space, &client, vec![(5, "g3", delete(&space, "f1", "4-0-x"))]);
    assert_eq!(store.sync_push(&skip).await.unwrap(), SyncPushOutcome::Gap { expected_seq: 4 });
    assert_eq!(store.sync_client_last_seq(&space, &client).await.unwrap(), Some(3));
    assert_eq!(store.sync_changes(&space, 0, 100, false).await.unwrap().len(), 1);

    // A client never seen must start at 1; refusing it leaves no client row behind.
    let stranger = uid("cl");
    let late = push(&space, &stranger, vec![(7, "s1", put(&space, "f3", json!({"kind": "solids"}), "5-0-y"))]);
    assert_eq!(store.sync_push(&late).await.unwrap(), SyncPushOutcome::UnknownClient);
    assert_eq!(store.sync_client_last_seq(&space, &stranger).await.unwrap(), None);

    // An op id seen from another client of the same user is a duplicate, and consumes its seq.
    let other = push(
        &space,
        &stranger,
        vec![
            (1, &a, put(&space, "f1", json!({"ml": 1}), "9-0-y")),
            (2, "fresh", put(&space, "f4", json!({"kind": "solids"}), "9-1-y")),
        ],
    );
    let d = done(store, &other).await;
    assert_eq!(statuses(&d), ["duplicate", "applied"]);
    assert_eq!(d.results[0]["original"]["status"], "applied");
    assert_eq!(d.last_seq, 2);
    let data: Value = serde_json::from_str(&store.sync_changes(&space, 0, 100, true).await.unwrap()[0].data).unwrap();
    assert_eq!(data["ml"], 120, "the duplicate op was not applied again");

    // Another user's clients have their own op ids and seqs.
    let stranger_user = owner(store).await;
    let d = done(
        store,
        &push(&stranger_user, &client, vec![(1, &a, put(&stranger_user, "f1", json!({"kind": "bottle"}), "1-0-x"))]),
    )
    .await;
    assert_eq!(statuses(&d), ["applied"]);

    // A client seen since keeps its op ids through the expiry below.
    let mut recent = push(&space, &uid("cl"), vec![(1, "kept", put(&space, "f5", json!({"kind": "solids"}), "9-2-x"))]);
    recent.now = 9_000;
    assert_eq!(statuses(&done(store, &recent).await), ["applied"]);

    // Idle clients expire with their results.
    assert!(store.sync_expire_clients(5_001).await.unwrap() >= 3);
    assert_eq!(store.sync_client_last_seq(&space, &client).await.unwrap(), None);
    // Their op ids went with them: the same op id from a new client is no duplicate now.
    let d = done(store, &push(&space, &uid("cl"), vec![(1, &c, put(&space, "f1", json!({"ml": 120}), "2-0-x"))])).await;
    assert_ne!(statuses(&d), ["duplicate"]);
    let again = push(&space, &uid("cl"), vec![(1, "kept", put(&space, "f5", json!({"kind": "solids"}), "9-2-x"))]);
    assert_eq!(statuses(&done(store, &again).await), ["duplicate"], "the recent client's op id stays");
}

pub async fn an_op_id_twice_in_one_push_is_applied_once(store: &dyn Store) {
    let (space, client) = (owner(store).await, uid("cl"));
    let twice = push(
        &space,
        &client,
        vec![
            (1, "same", put(&space, "t1", json!({"kind": "bottle", "ml": 1}), "1-0-x")),
            (2, "same", put(&space, "t1", json!({"kind": "bottle", "ml": 2}), "1-1-x")),
            (3, "other", put(&space, "t2", json!({"kind": "solids"}), "1-2-x")),
        ],
    );
    let d = done(store, &twice).await;
    assert_eq!(statuses(&d), ["applied", "duplicate", "applied"]);
    assert_eq!(d.results[1]["original"], json!({"seq": 1, "op_id": "same", "status": "applied"}));
    assert_eq!(d.last_seq, 3, "the duplicate consumes its seq");
    let data: Value = serde_json::from_str(&store.sync_changes(&space, 0, 10, true).await.unwrap()[0].data).unwrap();
    assert_eq!(data["ml"], 1, "the second op with the same id was not applied");
    // Replayed whole (its answer was lost): the same answers, nothing applied.
    let again = done(store, &twice).await;
    assert_eq!(statuses(&again), ["duplicate"; 3]);
    assert_eq!(again.results[1]["original"], d.results[1]["original"]);
    assert_eq!(again.results[0]["original"], json!({"seq": 1, "op_id": "same", "status": "applied"}));
    assert!(again.changed.is_empty());
}

pub async fn merge_results_and_tombstones(store: &dyn Store) {
    let (space, client) = (owner(store).await, uid("cl"));
    let d = done(
        store,
        &push(
            &space,
            &client,
            vec![
                (1, "m1", put(&space, "r1", json!({"kind": "bottle", "ml": 100}), "10-0-x")),
                (2, "m2", put(&space, "r1", json!({"ml": 50, "note": "old"}), "05-0-x")),
                (3, "m3", put(&space, "r2", json!({"ml": 5}), "10-0-x")),
                (4, "m4", put(&space, "r3", json!({"kind": "solids"}), "10-0-x")),
            ],
        ),
    )
    .await;
    assert_eq!(statuses(&d), ["applied", "superseded", "rejected", "applied"]);
    assert_eq!(d.results[1]["winning"], json!({"deleted": false, "fields": {"ml": 100}}));
    assert_eq!(d.results[2]["reason"]["code"], "required_field");
    let after_put = store.sync_spaces(std::slice::from_ref(&space)).await.unwrap()[0].seq;

    let d = done(store, &push(&space, &client, vec![(5, "m5", delete(&space, "r3", "11-0-x"))])).await;
    assert_eq!(statuses(&d), ["applied"]);
    let tail = store.sync_changes(&space, after_put, 100, false).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert!(tail[0].deleted && tail[0].id == "r3" && tail[0].seq == after_put + 1);
    let fresh = store.sync_changes(&space, 0, 100, true).await.unwrap();
    assert_eq!(fresh.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["r1"], "a fresh pull skips tombstones");

    // A put older than the delete loses to it.
    let d =
        done(store, &push(&space, &client, vec![(6, "m6", put(&space, "r3", json!({"kind": "bottle"}), "10-5-x"))]))
            .await;
    assert_eq!(d.results[0]["winning"], json!({"deleted": true}));
    // Limits and order of a pull.
    let page = store.sync_changes(&space, 0, 1, false).await.unwrap();
    assert_eq!(page.len(), 1);
    let seqs: Vec<i64> = store.sync_changes(&space, 0, 100, false).await.unwrap().iter().map(|c| c.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

/// A new user: pushes are taken only for a user who exists.
async fn owner(store: &dyn Store) -> String {
    let id = uid("user");
    store
        .create_user(&crate::UserRecord {
            user: user(&id, None),
            emails: vec![],
            phones: vec![],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        })
        .await
        .unwrap();
    id
}

pub async fn deleting_the_owner_deletes_the_space(store: &dyn Store) {
    let id = owner(store).await;
    done(store, &push(&id, "c1", vec![(1, "d1", put(&id, "x", json!({"kind": "bottle"}), "1-0-c1"))])).await;
    assert_eq!(store.sync_changes(&id, 0, 10, true).await.unwrap().len(), 1);
    assert!(store.delete_user(&id).await.unwrap());
    assert!(store.sync_changes(&id, 0, 10, false).await.unwrap().is_empty());
    assert!(store.sync_spaces(std::slice::from_ref(&id)).await.unwrap().is_empty());
    assert_eq!(store.sync_client_last_seq(&id, "c1").await.unwrap(), None);

    // A push that was checked before the deletion and reaches the store after it brings
    // nothing back: no client, no space, no record.
    let late = push(&id, "c2", vec![(1, "d2", put(&id, "y", json!({"kind": "bottle"}), "2-0-c2"))]);
    assert_eq!(store.sync_push(&late).await.unwrap(), SyncPushOutcome::UserGone);
    assert!(store.sync_changes(&id, 0, 10, true).await.unwrap().is_empty());
    assert!(store.sync_spaces(std::slice::from_ref(&id)).await.unwrap().is_empty());
    assert_eq!(store.sync_client_last_seq(&id, "c2").await.unwrap(), None);
}

pub async fn old_tombstones_are_compacted(store: &dyn Store) {
    let (space, client) = (owner(store).await, uid("cl"));
    let at = |now: i64, p: SyncPush| SyncPush { now, ..p };
    let old = at(
        1_000,
        push(
            &space,
            &client,
            vec![
                (1, "t1", put(&space, "kept", json!({"kind": "bottle"}), "1-0-x")),
                (2, "t2", put(&space, "gone", json!({"kind": "bottle"}), "1-1-x")),
                (3, "t3", delete(&space, "gone", "1-2-x")),
            ],
        ),
    );
    done(store, &old).await;
    let gone_seq = store.sync_changes(&space, 0, 10, false).await.unwrap().iter().find(|c| c.id == "gone").unwrap().seq;
    let recent = at(
        9_000,
        push(
            &space,
            &client,
            vec![
                (4, "t4", put(&space, "recent", json!({"kind": "bottle"}), "9-0-x")),
                (5, "t5", delete(&space, "recent", "9-1-x")),
            ],
        ),
    );
    done(store, &recent).await;
    let untouched = owner(store).await;
    done(store, &push(&untouched, &client, vec![(1, "u1", put(&untouched, "x", json!({"kind": "bottle"}), "1-0-x"))]))
        .await;

    assert!(store.sync_compact_tombstones(5_000).await.unwrap() >= 1);
    let ids: Vec<String> = store.sync_changes(&space, 0, 10, false).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["kept", "recent"], "the old tombstone is gone; live records and a recent tombstone stay");
    let states = store.sync_spaces(&[space.clone(), untouched.clone()]).await.unwrap();
    let compacted = |key: &str| states.iter().find(|s| s.space == key).unwrap().compacted_seq;
    assert_eq!(compacted(&space), gone_seq);
    assert_eq!(compacted(&untouched), 0);
    assert_eq!(store.sync_compact_tombstones(5_000).await.unwrap(), 0, "nothing left to compact");
    assert_eq!(store.sync_spaces(std::slice::from_ref(&space)).await.unwrap()[0].compacted_seq, gone_seq);

    // The record can be written again; it starts over.
    let again =
        at(9_500, push(&space, &client, vec![(6, "t6", put(&space, "gone", json!({"kind": "solids"}), "9-5-x"))]));
    assert_eq!(statuses(&done(store, &again).await), ["applied"]);
}
