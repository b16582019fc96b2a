//! Clients, sign-in and sign-up attempts (their completion and failures), sessions, and the
//! pruning of what was abandoned.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, client, email, session, sign_in, sign_up, uid, user};
use crate::records::*;
use crate::{Store, StoreError};

pub async fn sessions_and_clients(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&bare(user(&a, None))).await.unwrap();
    let c1 = client(&uid("client"));
    store.insert_client(&c1).await.unwrap();
    assert_eq!(store.client_by_token_digest(&c1.token_digest).await.unwrap(), Some(c1.clone()));
    assert_eq!(store.client_by_token_digest("nope").await.unwrap(), None);
    let mut c1b = c1.clone();
    c1b.updated_at = 2_000;
    store.update_client(&c1b).await.unwrap();
    assert_eq!(store.get_client(&c1.id).await.unwrap(), Some(c1b));

    let c2 = client(&uid("client"));
    store.insert_client(&c2).await.unwrap();
    let s1 = session(&uid("sess"), &c1.id, &a);
    let s2 = session(&uid("sess"), &c1.id, &a);
    let s3 = session(&uid("sess"), &c2.id, &a);
    for s in [&s1, &s2, &s3] {
        store.insert_session(s).await.unwrap();
    }
    assert_eq!(store.sessions_for_client(&c1.id).await.unwrap().len(), 2);
    assert_eq!(store.sessions_for_user(&a).await.unwrap().len(), 3);
    assert_eq!(store.end_client_sessions(&c1.id, "ended", 3_000).await.unwrap(), 2);
    assert_eq!(store.end_client_sessions(&c1.id, "ended", 3_000).await.unwrap(), 0, "only active sessions end");
    assert_eq!(store.get_session(&s1.id).await.unwrap().unwrap().status, "ended");
    assert_eq!(store.get_session(&s3.id).await.unwrap().unwrap().status, "active");
    let s4 = session(&uid("sess"), &c2.id, &a);
    store.insert_session(&s4).await.unwrap();
    assert_eq!(store.revoke_user_sessions(&a, Some(&s4.id), 4_000).await.unwrap(), 1);
    assert_eq!(store.get_session(&s3.id).await.unwrap().unwrap().status, "revoked");
    assert_eq!(store.get_session(&s4.id).await.unwrap().unwrap().status, "active");
    let mut s4b = store.get_session(&s4.id).await.unwrap().unwrap();
    s4b.active_org_id = Some("org_x".into());
    s4b.last_active_at = 5_000;
    store.update_session(&s4b).await.unwrap();
    assert_eq!(store.get_session(&s4.id).await.unwrap(), Some(s4b));
}

pub async fn sign_up_completion_is_atomic(store: &dyn Store) {
    let address = format!("{}@example.com", uid("race"));
    let mut outcomes = Vec::new();
    let mut sign_up_ids = Vec::new();
    for _ in 0..2 {
        let c = client(&uid("client"));
        store.insert_client(&c).await.unwrap();
        let su = sign_up(&uid("sua"), &c.id, &address);
        store.insert_sign_up(&su).await.unwrap();
        sign_up_ids.push(su.id.clone());
        let u = uid("user");
        let sess = uid("sess");
        let mut done_su = su.clone();
        done_su.status = "complete".into();
        done_su.created_user_id = Some(u.clone());
        done_su.created_session_id = Some(sess.clone());
        done_su.version += 1;
        let done = CompleteSignUp {
            sign_up: done_su,
            user: user(&u, None),
            email: email(&u, &address, true),
            session: session(&sess, &c.id, &u),
            client_token_digest: format!("new-token-of-{}", c.id),
            external_account: None,
        };
        outcomes.push((store.complete_sign_up(&done).await, u, c.id.clone()));
    }
    assert!(outcomes[0].0.is_ok());
    let winner_client = store.get_client(&outcomes[0].2).await.unwrap().unwrap();
    assert!(winner_client.last_active_session_id.is_some(), "the client points at its new session");
    assert_eq!(winner_client.token_digest, format!("new-token-of-{}", winner_client.id), "and has its new token");
    let by_new_token = store.client_by_token_digest(&winner_client.token_digest).await.unwrap();
    assert_eq!(by_new_token.map(|c| c.id), Some(winner_client.id.clone()));
    assert_eq!(
        winner_client.sign_up_id.as_deref(),
        Some(sign_up_ids[0].as_str()),
        "insert_sign_up set the client's sign-up"
    );
    let loser_client = store.get_client(&outcomes[1].2).await.unwrap().unwrap();
    assert_eq!(loser_client.last_active_session_id, None);
    assert_ne!(loser_client.token_digest, format!("new-token-of-{}", loser_client.id), "the loser keeps its token");
    assert!(matches!(&outcomes[1].0, Err(e) if e.is_conflict_on("email")), "{:?}", outcomes[1].0);
    // The loser wrote nothing: no user, no session, and its sign-up is unchanged.
    assert!(store.get_user(&outcomes[1].1).await.unwrap().is_none());
    assert!(store.sessions_for_client(&outcomes[1].2).await.unwrap().is_empty());
    let loser = store.get_sign_up(&sign_up_ids[1]).await.unwrap().unwrap();
    assert_eq!(loser.status, "missing_requirements");
    assert_eq!(loser.version, 1);
    let winner = store.get_sign_up(&sign_up_ids[0]).await.unwrap().unwrap();
    assert_eq!(winner.status, "complete");
}

pub async fn failures_are_counted(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&bare(user(&a, None))).await.unwrap();
    let c = client(&uid("client"));
    store.insert_client(&c).await.unwrap();
    let mut attempt = sign_in(&uid("sia"), &c.id);
    store.insert_sign_in(&attempt).await.unwrap();
    let key = uid("fail");
    let account = AccountFailure { user_id: a.clone(), lock_after: 4, locked_until: 77 };
    for round in 1..=3 {
        attempt.version += 1;
        attempt.first_factor_status = Some("failed".into());
        let failed = FailedAttempt {
            sign_in: attempt.clone(),
            counters: vec![(key.clone(), 60_000)],
            account: Some(account.clone()),
            now: 1_000,
        };
        let counts = store.record_failed_attempt(&failed).await.unwrap();
        assert_eq!(counts.counters.iter().map(|c| c.count).collect::<Vec<_>>(), [round]);
        assert_eq!(counts.account_failures, Some(round));
    }
    let u = store.get_user(&a).await.unwrap().unwrap().user;
    assert_eq!((u.failed_attempts, u.locked_until), (3, None), "not locked before the fourth");
    assert_eq!(store.get_sign_in(&attempt.id).await.unwrap().unwrap().version, attempt.version);
    attempt.version += 1;
    let locking = FailedAttempt { sign_in: attempt.clone(), counters: vec![], account: Some(account), now: 1_000 };
    assert_eq!(store.record_failed_attempt(&locking).await.unwrap().account_failures, Some(4));
    let u = store.get_user(&a).await.unwrap().unwrap().user;
    assert_eq!((u.failed_attempts, u.locked_until), (4, Some(77)), "the fourth locks, in SQL");
    // A stale attempt writes nothing: neither the counters nor the account.
    let stale = FailedAttempt { counters: vec![(key.clone(), 60_000)], ..locking };
    assert!(matches!(store.record_failed_attempt(&stale).await, Err(StoreError::Stale)));
    assert_eq!(store.get_counter(&key).await.unwrap().map(|c| c.count), Some(3));
    assert_eq!(store.get_user(&a).await.unwrap().unwrap().user.failed_attempts, 4);
}

pub async fn session_queries(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&bare(user(&a, None))).await.unwrap();
    let c = client(&uid("client"));
    store.insert_client(&c).await.unwrap();
    let live = SessionRow {
        expire_at: 100_000,
        last_active_at: 50_000,
        created_at: 2_000,
        ..session(&uid("sess"), &c.id, &a)
    };
    let old = SessionRow { expire_at: 10_000, ..session(&uid("sess"), &c.id, &a) };
    let revoked = SessionRow { status: "revoked".into(), expire_at: 100_000, ..session(&uid("sess"), &c.id, &a) };
    for s in [&live, &old, &revoked] {
        store.insert_session(s).await.unwrap();
    }
    let q = |status: Option<&str>| SessionQuery {
        user_id: Some(a.clone()),
        status: status.map(Into::into),
        now: 60_000,
        idle_timeout_ms: None,
        limit: 10,
        ..Default::default()
    };
    let (all_rows, total) = store.query_sessions(&q(None)).await.unwrap();
    assert_eq!((all_rows.len(), total), (3, 3));
    assert_eq!(all_rows[0].id, live.id, "newest first");
    assert_eq!(store.query_sessions(&q(Some("active"))).await.unwrap().0, vec![live.clone()]);
    assert_eq!(store.query_sessions(&q(Some("expired"))).await.unwrap().0, vec![old.clone()], "past its deadline");
    assert_eq!(store.query_sessions(&q(Some("revoked"))).await.unwrap().1, 1);
    let idle = SessionQuery { idle_timeout_ms: Some(5_000), ..q(Some("active")) };
    assert_eq!(store.query_sessions(&idle).await.unwrap().1, 0, "idle past the limit is not active");
    let by_client = SessionQuery { user_id: None, client_id: Some(c.id.clone()), limit: 1, offset: 1, ..q(None) };
    let (page, total) = store.query_sessions(&by_client).await.unwrap();
    assert_eq!((page.len(), total), (1, 3));
}

pub async fn abandoned_attempts_and_idle_clients_are_pruned(store: &dyn Store) {
    // Far in the future, so rows of other checks (and of a database in use) are not judged.
    let far = 9_000_000_000_000_i64;
    let idle = ClientRow { updated_at: far - 10, ..client(&uid("client")) };
    let used = ClientRow { updated_at: far - 10, ..client(&uid("client")) };
    let fresh = ClientRow { updated_at: far + 10, ..client(&uid("client")) };
    for c in [&idle, &used, &fresh] {
        store.insert_client(c).await.unwrap();
    }
    let u = uid("user");
    store.create_user(&bare(user(&u, None))).await.unwrap();
    store.insert_session(&session(&uid("sess"), &used.id, &u)).await.unwrap();
    let abandoned = SignInRow { abandon_at: far - 1, ..sign_in(&uid("sia"), &fresh.id) };
    let live = SignInRow { abandon_at: far + 1, ..sign_in(&uid("sia"), &fresh.id) };
    let gone_up = SignUpRow { abandon_at: far - 1, ..sign_up(&uid("sua"), &fresh.id, "pruned@example.com") };
    for s in [&abandoned, &live] {
        store.insert_sign_in(s).await.unwrap();
    }
    store.insert_sign_up(&gone_up).await.unwrap();
    assert!(store.prune_abandoned(far, far).await.unwrap() >= 3);
    assert!(store.get_sign_in(&abandoned.id).await.unwrap().is_none());
    assert!(store.get_sign_in(&live.id).await.unwrap().is_some(), "an attempt still running stays");
    assert!(store.get_sign_up(&gone_up.id).await.unwrap().is_none());
    assert!(store.get_client(&idle.id).await.unwrap().is_none(), "an idle client that never signed in goes");
    assert!(store.get_client(&used.id).await.unwrap().is_some(), "a client with a session stays");
    assert!(store.get_client(&fresh.id).await.unwrap().is_some(), "a recent client stays");
}
