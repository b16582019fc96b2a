//! The revocation feed's entries: written with the change whose event carries one (and not
//! when the change fails), read from a time on while live, written once per id, pruned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use latchkey_core::revocation::Revocation;

use super::{bare, uid, user};
use crate::OutboxEvent;
use crate::Store;

fn entry(kind: &str, subject: &str, at: i64) -> Revocation {
    Revocation {
        id: String::new(),
        kind: kind.into(),
        subject: subject.into(),
        organization_id: None,
        role: None,
        reason: "revoked".into(),
        at,
        expires_at: at + 120_000,
    }
}

pub async fn revocations_land_with_their_change_and_expire(store: &dyn Store) {
    // A far-off time of this scenario's own, so other scenarios' entries do not mix in.
    let t0 = 9_000_000_000_000 + (super::COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as i64) * 1_000_000;
    let id = uid("user");
    let event = |at: i64, subject: &str| OutboxEvent {
        id: uid("msg"),
        event_type: "session.revoked".into(),
        payload: "{}".into(),
        created_at: at,
        revocation: Some(entry("session", subject, at)),
    };
    let first = event(t0, "sess_a");
    store.emitting(vec![first.clone()]).create_user(&bare(user(&id, None))).await.unwrap();
    // A change that fails writes no entry.
    let failed = event(t0 + 10, "sess_b");
    assert!(store.emitting(vec![failed]).create_user(&bare(user(&id, None))).await.is_err());
    store.record_revocation("rev_key_k1", &entry("key", "k1", t0 + 20)).await.unwrap();
    store.record_revocation("rev_key_k1", &entry("key", "k1", t0 + 20)).await.unwrap();

    let live = store.revocations_since(t0, t0 + 30, 100).await.unwrap();
    let subjects: Vec<&str> = live.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(subjects, ["sess_a", "k1"], "{live:?}");
    assert_eq!(live[0].id, format!("rev_{}", first.id.trim_start_matches("msg_")));
    assert_eq!(live[1], Revocation { id: "rev_key_k1".into(), ..entry("key", "k1", t0 + 20) });
    assert_eq!(store.revocations_since(t0 + 15, t0 + 30, 100).await.unwrap().len(), 1, "from a time on");
    assert_eq!(store.revocations_since(t0, t0 + 30, 1).await.unwrap().len(), 1, "a page at most");
    assert!(store.revocations_since(t0, t0 + 120_000, 100).await.unwrap().len() == 1, "the first has expired");

    assert!(store.prune_revocations(t0 + 120_000).await.unwrap() >= 1);
    assert_eq!(store.revocations_since(t0, t0 + 30, 100).await.unwrap().len(), 1, "pruned: only the key's is left");
    store.prune_revocations(t0 + 200_000).await.unwrap();
    assert!(store.revocations_since(t0, t0, 100).await.unwrap().is_empty());
}
