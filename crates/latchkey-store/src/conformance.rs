//! One behavioural suite that every backend must pass (`run_all`). Each check uses its own ids,
//! so the suite can run against a database that already holds data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};

use crate::records::*;
use crate::{Store, StoreError};

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn uid(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}_{nanos:x}{n}")
}

pub fn user(id: &str, username: Option<&str>) -> UserRow {
    UserRow {
        id: id.into(),
        username: username.map(Into::into),
        first_name: Some("Ada".into()),
        last_name: None,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$x$y".into()),
        primary_email_id: None,
        primary_phone_id: None,
        password_updated_at: Some(1),
        ..UserRow::new(id.into(), 1_000)
    }
}

pub fn email(user_id: &str, address: &str, verified: bool) -> EmailRow {
    EmailRow {
        id: uid("idn"),
        user_id: user_id.into(),
        email: address.into(),
        verified,
        verified_at: verified.then_some(1_000),
        code: CodeFields::default(),
        created_at: 1_000,
        updated_at: 1_000,
        version: 1,
    }
}

fn client(id: &str) -> ClientRow {
    ClientRow {
        id: id.into(),
        token_digest: uid("digest"),
        sign_in_id: None,
        sign_up_id: None,
        last_active_session_id: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn session(id: &str, client_id: &str, user_id: &str) -> SessionRow {
    SessionRow {
        id: id.into(),
        client_id: client_id.into(),
        user_id: user_id.into(),
        status: "active".into(),
        active_org_id: None,
        created_at: 1_000,
        updated_at: 1_000,
        last_active_at: 1_000,
        expire_at: 10_000,
        abandon_at: 20_000,
    }
}

fn sign_up(id: &str, client_id: &str, address: &str) -> SignUpRow {
    SignUpRow {
        id: id.into(),
        client_id: client_id.into(),
        status: "missing_requirements".into(),
        email: Some(address.into()),
        email_taken: false,
        email_verified: false,
        username: None,
        first_name: None,
        last_name: None,
        password_hash: Some("hash".into()),
        unsafe_metadata: "{}".into(),
        code: CodeFields { digest: Some("d".into()), expires_at: Some(5_000), attempts: 0, consumed: false },
        created_user_id: None,
        created_session_id: None,
        created_at: 1_000,
        updated_at: 1_000,
        abandon_at: 90_000,
        version: 1,
    }
}

pub async fn run_all(store: &dyn Store) {
    store.ping().await.unwrap();
    settings(store).await;
    users_and_uniqueness(store).await;
    optimistic_updates(store).await;
    sessions_and_clients(store).await;
    sign_up_completion_is_atomic(store).await;
    keys(store).await;
    failures_are_counted(store).await;
}

async fn settings(store: &dyn Store) {
    let key = uid("setting");
    assert_eq!(store.get_setting(&key).await.unwrap(), None);
    assert_eq!(store.init_setting(&key, "first").await.unwrap(), "first");
    assert_eq!(store.init_setting(&key, "second").await.unwrap(), "first", "init never overwrites");
    assert_eq!(store.get_setting(&key).await.unwrap().as_deref(), Some("first"));
}

async fn users_and_uniqueness(store: &dyn Store) {
    let name = uid("name").to_lowercase();
    let address = format!("{}@example.com", uid("u"));
    let a = uid("user");
    let mut rec = UserRecord { user: user(&a, Some(&name)), emails: vec![email(&a, &address, true)], phones: vec![] };
    rec.user.primary_email_id = Some(rec.emails[0].id.clone());
    rec.phones.push(PhoneRow {
        id: uid("idn"),
        user_id: a.clone(),
        phone: "+15555550100".into(),
        verified: true,
        created_at: 1,
        updated_at: 1,
        reserved_for_second_factor: false,
    });
    store.create_user(&rec).await.unwrap();
    let got = store.get_user(&a).await.unwrap().unwrap();
    assert_eq!(got, rec, "a user reads back exactly as written");
    assert_eq!(store.user_id_by_verified_email(&address).await.unwrap(), Some(a.clone()));
    assert_eq!(store.verified_email_owner(&address).await.unwrap(), Some((a.clone(), rec.emails[0].id.clone())));
    assert_eq!(store.verified_email_owner("nobody@example.com").await.unwrap(), None);
    assert_eq!(store.get_user_row(&a).await.unwrap(), Some(rec.user.clone()));
    assert_eq!(store.user_id_by_username(&name).await.unwrap(), Some(a.clone()));

    // A second account may not take the username or the verified address; nothing is half-written.
    let b = uid("user");
    let err = store.create_user(&UserRecord { user: user(&b, Some(&name)), emails: vec![], phones: vec![] }).await;
    assert!(matches!(&err, Err(e) if e.is_conflict_on("username")), "{err:?}");
    let err = store
        .create_user(&UserRecord { user: user(&b, None), emails: vec![email(&b, &address, true)], phones: vec![] })
        .await;
    assert!(matches!(&err, Err(e) if e.is_conflict_on("email")), "{err:?}");
    assert!(store.get_user(&b).await.unwrap().is_none(), "the failed create left no user");
    // An unverified copy of the address does not block anyone.
    store
        .create_user(&UserRecord { user: user(&b, None), emails: vec![email(&b, &address, false)], phones: vec![] })
        .await
        .unwrap();
    assert_eq!(store.user_id_by_verified_email(&address).await.unwrap(), Some(a.clone()));

    let before = store.count_users().await.unwrap();
    assert!(before >= 2);
    let page = store.list_users(1, 0).await.unwrap();
    assert_eq!(page.len(), 1);

    let c = uid("client");
    store.insert_client(&client(&c)).await.unwrap();
    let s = uid("sess");
    store.insert_session(&session(&s, &c, &b)).await.unwrap();
    assert!(store.delete_user(&b).await.unwrap());
    assert!(!store.delete_user(&b).await.unwrap());
    assert!(store.get_session(&s).await.unwrap().is_none(), "sessions go with their user");
    assert_eq!(store.count_users().await.unwrap(), before - 1);
    assert!(store.get_user(&a).await.unwrap().is_some());
}

async fn optimistic_updates(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&UserRecord { user: user(&a, None), emails: vec![], phones: vec![] }).await.unwrap();
    let mut u = store.get_user(&a).await.unwrap().unwrap().user;
    let stale = u.clone();
    u.first_name = Some("Grace".into());
    u.version += 1;
    store.update_user(&u).await.unwrap();
    let mut late = stale;
    late.first_name = Some("Lost".into());
    late.version += 1;
    assert!(matches!(store.update_user(&late).await, Err(StoreError::Stale)));
    assert_eq!(store.get_user(&a).await.unwrap().unwrap().user.first_name.as_deref(), Some("Grace"));

    let e = email(&a, &format!("{}@example.com", uid("x")), false);
    store.insert_email(&e).await.unwrap();
    let mut e2 = e.clone();
    e2.code.attempts = 1;
    e2.version = 2;
    store.update_email(&e2).await.unwrap();
    assert!(matches!(store.update_email(&e2).await, Err(StoreError::Stale)));
    store.delete_email(&e.id).await.unwrap();
    assert!(store.get_user(&a).await.unwrap().unwrap().emails.is_empty());
}

async fn sessions_and_clients(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&UserRecord { user: user(&a, None), emails: vec![], phones: vec![] }).await.unwrap();
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

async fn sign_up_completion_is_atomic(store: &dyn Store) {
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
        };
        outcomes.push((store.complete_sign_up(&done).await, u, c.id.clone()));
    }
    assert!(outcomes[0].0.is_ok());
    let winner_client = store.get_client(&outcomes[0].2).await.unwrap().unwrap();
    assert!(winner_client.last_active_session_id.is_some(), "the client points at its new session");
    assert_eq!(
        winner_client.sign_up_id.as_deref(),
        Some(sign_up_ids[0].as_str()),
        "insert_sign_up set the client's sign-up"
    );
    let loser_client = store.get_client(&outcomes[1].2).await.unwrap().unwrap();
    assert_eq!(loser_client.last_active_session_id, None);
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

async fn keys(store: &dyn Store) {
    let kid = uid("kid");
    let row = SigningKeyRow {
        kid: kid.clone(),
        public_n: "n".into(),
        public_e: "AQAB".into(),
        private_sealed: "sealed".into(),
        created_at: 1,
        activate_at: 2,
        revoked_at: None,
    };
    store.insert_signing_key(&row).await.unwrap();
    assert!(store.list_signing_keys().await.unwrap().contains(&row));
    assert!(store.revoke_signing_key(&kid, 5).await.unwrap());
    assert!(!store.revoke_signing_key(&kid, 6).await.unwrap(), "revocation happens once");
    let listed = store.list_signing_keys().await.unwrap();
    assert_eq!(listed.iter().find(|k| k.kid == kid).and_then(|k| k.revoked_at), Some(5));
    store.delete_signing_key(&kid).await.unwrap();
    assert!(store.list_signing_keys().await.unwrap().iter().all(|k| k.kid != kid));

    let api = ApiKeyRow { id: uid("ak"), digest: uid("dg"), label: "ci".into(), created_at: 1, revoked_at: None };
    store.insert_api_key(&api).await.unwrap();
    assert_eq!(store.api_key_by_digest(&api.digest).await.unwrap(), Some(api.clone()));
    assert!(store.revoke_api_key(&api.id, 9).await.unwrap());
    assert_eq!(store.api_key_by_digest(&api.digest).await.unwrap().unwrap().revoked_at, Some(9));
    assert!(store.list_api_keys().await.unwrap().iter().any(|k| k.id == api.id));
}

async fn failures_are_counted(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&UserRecord { user: user(&a, None), emails: vec![], phones: vec![] }).await.unwrap();
    for _ in 0..3 {
        store.record_sign_in_failure(&a, 1, None).await.unwrap();
    }
    assert_eq!(store.get_user(&a).await.unwrap().unwrap().user.failed_attempts, 3);
    store.record_sign_in_failure(&a, 1, Some(77)).await.unwrap();
    let u = store.get_user(&a).await.unwrap().unwrap().user;
    assert_eq!((u.failed_attempts, u.locked_until), (4, Some(77)));
}
