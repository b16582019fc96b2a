//! Users with their email addresses and phone numbers, optimistic updates, and user queries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use std::sync::atomic::Ordering;

use super::{bare, client, email, session, uid, user, COUNTER};
use crate::records::*;
use crate::{Store, StoreError};

pub async fn users_and_uniqueness(store: &dyn Store) {
    let name = uid("name").to_lowercase();
    let address = format!("{}@example.com", uid("u"));
    let a = uid("user");
    let mut rec = UserRecord {
        user: user(&a, Some(&name)),
        emails: vec![email(&a, &address, true)],
        phones: vec![],
        external_accounts: vec![],
        second_factors: Default::default(),
        passkeys: Vec::new(),
    };
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
    let err = store
        .create_user(&UserRecord {
            user: user(&b, Some(&name)),
            emails: vec![],
            phones: vec![],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        })
        .await;
    assert!(matches!(&err, Err(e) if e.is_conflict_on("username")), "{err:?}");
    let err = store
        .create_user(&UserRecord {
            user: user(&b, None),
            emails: vec![email(&b, &address, true)],
            phones: vec![],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        })
        .await;
    assert!(matches!(&err, Err(e) if e.is_conflict_on("email")), "{err:?}");
    assert!(store.get_user(&b).await.unwrap().is_none(), "the failed create left no user");
    // An unverified copy of the address does not block anyone.
    store
        .create_user(&UserRecord {
            user: user(&b, None),
            emails: vec![email(&b, &address, false)],
            phones: vec![],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        })
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

pub async fn optimistic_updates(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&bare(user(&a, None))).await.unwrap();
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

pub async fn phones_and_emails(store: &dyn Store) {
    let a = uid("user");
    let e = email(&a, &format!("{}@example.com", uid("pe")), false);
    let p = PhoneRow {
        id: uid("idn"),
        user_id: a.clone(),
        phone: format!("+1{}", 5_550_000_000u64 + COUNTER.fetch_add(1, Ordering::SeqCst)),
        verified: true,
        created_at: 1,
        updated_at: 1,
        reserved_for_second_factor: false,
    };
    store
        .create_user(&UserRecord {
            user: user(&a, None),
            emails: vec![e.clone()],
            phones: vec![p.clone()],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(store.get_email(&e.id).await.unwrap(), Some(e));
    let changed = PhoneRow { reserved_for_second_factor: true, updated_at: 2, ..p.clone() };
    store.update_phone(&changed).await.unwrap();
    assert_eq!(store.get_phone(&p.id).await.unwrap(), Some(changed));
    let other = uid("user");
    let taken = PhoneRow { id: uid("idn"), user_id: other.clone(), ..p.clone() };
    let err = store
        .create_user(&UserRecord {
            user: user(&other, None),
            emails: vec![],
            phones: vec![taken],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        })
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "a verified number belongs to one user");
    store.delete_phone(&p.id).await.unwrap();
    assert_eq!(store.get_phone(&p.id).await.unwrap(), None);
}

pub async fn a_ban_and_its_revocation_land_together(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&bare(user(&a, None))).await.unwrap();
    let c = client(&uid("client"));
    store.insert_client(&c).await.unwrap();
    let s = session(&uid("sess"), &c.id, &a);
    store.insert_session(&s).await.unwrap();
    let mut banned = store.get_user_row(&a).await.unwrap().unwrap();
    banned.banned = true;
    banned.version += 1;
    // A stale write changes nothing: neither the flag nor the sessions.
    let mut stale = banned.clone();
    stale.version += 5;
    assert!(matches!(store.update_user_revoking_sessions(&stale, 2_000).await, Err(StoreError::Stale)));
    assert_eq!(store.get_session(&s.id).await.unwrap().unwrap().status, "active");
    assert!(!store.get_user_row(&a).await.unwrap().unwrap().banned);
    assert_eq!(store.update_user_revoking_sessions(&banned, 2_000).await.unwrap(), 1);
    assert!(store.get_user_row(&a).await.unwrap().unwrap().banned);
    assert_eq!(store.get_session(&s.id).await.unwrap().unwrap().status, "revoked");
}

fn query(marker: &str) -> UserQuery {
    UserQuery { query: Some(marker.into()), limit: 10, ..Default::default() }
}

pub async fn user_queries(store: &dyn Store) {
    let m = uid("q").to_lowercase();
    let mut ids = Vec::new();
    for (i, (first, active)) in [("Cleo", Some(5_000)), ("alma", None), ("Bea", Some(7_000))].into_iter().enumerate() {
        let id = uid("user");
        let mut u = user(&id, Some(&format!("{m}_user{i}")));
        u.first_name = Some(format!("{first}{m}"));
        u.created_at = 10_000 + i as i64;
        u.last_active_at = active;
        u.external_id = Some(format!("ext-{m}-{i}"));
        let mut rec = UserRecord {
            user: u,
            emails: vec![email(&id, &format!("{m}-{i}@example.com"), true)],
            phones: vec![],
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        };
        rec.phones.push(PhoneRow {
            id: uid("idn"),
            user_id: id.clone(),
            phone: format!("+1555{}{i}", &m.len().to_string()),
            verified: false,
            created_at: 1,
            updated_at: 1,
            reserved_for_second_factor: false,
        });
        store.create_user(&rec).await.unwrap();
        ids.push(id);
    }
    let names =
        |rows: Vec<UserRecord>| rows.into_iter().map(|r| r.user.first_name.unwrap_or_default()).collect::<Vec<_>>();
    assert_eq!(store.count_users_matching(&query(&m)).await.unwrap(), 3, "prefix of usernames and emails");
    assert_eq!(store.count_users_matching(&query(&m.to_uppercase())).await.unwrap(), 3, "case-insensitive");
    assert_eq!(store.count_users_matching(&query(&ids[1])).await.unwrap(), 1, "exact id");
    assert_eq!(store.count_users_matching(&query("%")).await.unwrap(), 0, "wildcards are literal");
    assert_eq!(store.count_users_matching(&query(&format!("{}_", &m[..m.len() - 1]))).await.unwrap(), 0);
    let page = store.query_users(&UserQuery { limit: 2, ..query(&m) }).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].emails.len(), 1, "identifications are loaded");
    let by_first = UserQuery { order_by: UserOrder::FirstName, ..query(&m) };
    let expected = vec![format!("alma{m}"), format!("Bea{m}"), format!("Cleo{m}")];
    assert_eq!(names(store.query_users(&by_first).await.unwrap()), expected, "names sort case-insensitively");
    let desc = store.query_users(&UserQuery { descending: true, ..by_first }).await.unwrap();
    assert_eq!(names(desc), expected.iter().rev().cloned().collect::<Vec<_>>());
    let active = UserQuery { order_by: UserOrder::LastActiveAt, descending: true, ..query(&m) };
    assert_eq!(
        names(store.query_users(&active).await.unwrap()),
        vec![format!("Bea{m}"), format!("Cleo{m}"), format!("alma{m}")],
        "nulls last"
    );
    let active_asc = UserQuery { descending: false, ..active };
    assert_eq!(
        names(store.query_users(&active_asc).await.unwrap()),
        vec![format!("Cleo{m}"), format!("Bea{m}"), format!("alma{m}")],
        "nulls last"
    );
    let created = UserQuery { descending: true, ..query(&m) };
    assert_eq!(store.query_users(&created).await.unwrap()[0].user.id, ids[2]);
    let email_filter = UserQuery {
        email_addresses: vec![format!("{m}-0@example.com"), format!("{m}-2@example.com")],
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.count_users_matching(&email_filter).await.unwrap(), 2);
    let ext = UserQuery { external_ids: vec![format!("ext-{m}-1")], limit: 10, ..Default::default() };
    assert_eq!(store.query_users(&ext).await.unwrap()[0].user.id, ids[1]);
    let both = UserQuery {
        user_ids: ids.clone(),
        created_after: Some(10_000),
        created_before: Some(10_002),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.count_users_matching(&both).await.unwrap(), 1, "bounds are exclusive");
    let seen = UserQuery { user_ids: ids.clone(), last_active_after: Some(6_000), limit: 10, ..Default::default() };
    assert_eq!(store.count_users_matching(&seen).await.unwrap(), 1);
    let none = UserQuery { unmatched_filter: true, ..query(&m) };
    assert_eq!(store.count_users_matching(&none).await.unwrap(), 0);

    // By their accounts at identity providers: ids[0] has one at Google, ids[1] two there and
    // one at GitHub whose id there is the id of ids[0] at Google (someone else).
    let subject = |i: usize| format!("sub-{m}-{i}");
    for (user_id, provider, provider_user_id) in [
        (&ids[0], "oauth_google", subject(0)),
        (&ids[1], "oauth_google", subject(1)),
        (&ids[1], "oauth_google", subject(2)),
        (&ids[1], "oauth_github", subject(0)),
    ] {
        store.save_external_account(&super::provider_account(user_id, provider, &provider_user_id)).await.unwrap();
    }
    let at = |provider: &str, subjects: &[String]| UserQuery {
        provider: Some(provider.into()),
        provider_user_ids: subjects.to_vec(),
        limit: 10,
        ..Default::default()
    };
    let user_ids = |rows: Vec<UserRecord>| rows.into_iter().map(|r| r.user.id).collect::<Vec<_>>();
    let google = at("oauth_google", &[subject(0), subject(1), format!("missing-{m}")]);
    assert_eq!(
        user_ids(store.query_users(&google).await.unwrap()),
        vec![ids[0].clone(), ids[1].clone()],
        "ids not found are ignored"
    );
    assert_eq!(store.count_users_matching(&google).await.unwrap(), 2);
    assert_eq!(
        user_ids(store.query_users(&at("oauth_github", &[subject(0)])).await.unwrap()),
        vec![ids[1].clone()],
        "the same id at another provider is another person"
    );
    let twice = at("oauth_google", &[subject(1), subject(2)]);
    assert_eq!(store.count_users_matching(&twice).await.unwrap(), 1, "a user with two matching accounts counts once");
    assert_eq!(store.query_users(&twice).await.unwrap().len(), 1);
    assert_eq!(store.count_users_matching(&at("oauth_gitlab", &[subject(0)])).await.unwrap(), 0);
    let narrowed = UserQuery { banned: Some(true), ..at("oauth_google", &[subject(0), subject(1)]) };
    assert_eq!(store.count_users_matching(&narrowed).await.unwrap(), 0, "with the other filters");
    let at_google =
        UserQuery { provider: Some("oauth_google".into()), user_ids: ids.clone(), limit: 10, ..Default::default() };
    assert_eq!(store.count_users_matching(&at_google).await.unwrap(), 2, "any account at the provider");
    let found = store.query_users(&at("oauth_google", &[subject(0)])).await.unwrap();
    assert_eq!(found[0].external_accounts.len(), 1, "the accounts are loaded");

    assert_eq!(store.user_id_by_external_id(&format!("ext-{m}-2")).await.unwrap(), Some(ids[2].clone()));
    let mut dup = user(&uid("user"), None);
    dup.external_id = Some(format!("ext-{m}-2"));
    let err = store.create_user(&bare(dup)).await.unwrap_err();
    assert!(err.is_conflict_on("external_id"), "external ids are unique: {err:?}");
}
