//! One behavioural suite that every backend must pass (`run_all`). Each check uses its own ids,
//! so the suite can run against a database that already holds data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};

use crate::records::*;
use crate::{Store, StoreError};

static COUNTER: AtomicU64 = AtomicU64::new(1);

pub fn uid(prefix: &str) -> String {
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

fn sign_in(id: &str, client_id: &str) -> SignInRow {
    SignInRow {
        id: id.into(),
        client_id: client_id.into(),
        status: "needs_first_factor".into(),
        identifier: Some("someone@example.com".into()),
        user_id: None,
        email_address_id: None,
        first_factor_strategy: None,
        first_factor_status: None,
        code: CodeFields::default(),
        created_session_id: None,
        created_at: 1_000,
        updated_at: 1_000,
        abandon_at: 2_000,
        version: 1,
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
    user_queries(store).await;
    session_queries(store).await;
    invitations(store).await;
    sign_in_tokens(store).await;
    handshake_nonces(store).await;
    jwt_templates(store).await;
    phones_and_emails(store).await;
    organizations(store).await;
    a_ban_and_its_revocation_land_together(store).await;
    attempt_counters(store).await;
    abandoned_attempts_and_idle_clients_are_pruned(store).await;
    crate::conformance_sync::run(store).await;
    crate::conformance_webhooks::run(store).await;
}

async fn abandoned_attempts_and_idle_clients_are_pruned(store: &dyn Store) {
    // Far in the future, so rows of other checks (and of a database in use) are not judged.
    let far = 9_000_000_000_000_i64;
    let idle = ClientRow { updated_at: far - 10, ..client(&uid("client")) };
    let used = ClientRow { updated_at: far - 10, ..client(&uid("client")) };
    let fresh = ClientRow { updated_at: far + 10, ..client(&uid("client")) };
    for c in [&idle, &used, &fresh] {
        store.insert_client(c).await.unwrap();
    }
    let u = uid("user");
    store.create_user(&UserRecord { user: user(&u, None), emails: vec![], phones: vec![] }).await.unwrap();
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

/// Windowed counters: one count per bump, none lost under concurrency, a new window after the
/// old one ends, and pruning that removes only ended windows.
async fn attempt_counters(store: &dyn Store) {
    let key = uid("ctr");
    assert_eq!(store.get_counter(&key).await.unwrap(), None);
    let first = store.bump_counter(&key, 1_000, 10_000).await.unwrap();
    assert_eq!(first, crate::Counter { count: 1, window_start: 10_000, last_at: 10_000, expires_at: 11_000 });
    let second = store.bump_counter(&key, 1_000, 10_500).await.unwrap();
    assert_eq!((second.count, second.window_start, second.last_at, second.expires_at), (2, 10_000, 10_500, 11_000));
    let bump = || store.bump_counter(&key, 1_000, 10_600);
    let (c1, c2, c3, c4) = tokio::join!(bump(), bump(), bump(), bump());
    let mut counts: Vec<i64> = [c1, c2, c3, c4].into_iter().map(|c| c.unwrap().count).collect();
    counts.sort_unstable();
    assert_eq!(counts, [3, 4, 5, 6], "every concurrent bump counts once");
    let restarted = store.bump_counter(&key, 1_000, 11_000).await.unwrap();
    assert_eq!((restarted.count, restarted.window_start, restarted.expires_at), (1, 11_000, 12_000));
    assert_eq!(store.get_counter(&key).await.unwrap(), Some(restarted));
    let other = uid("ctr");
    store.bump_counter(&other, 100_000, 11_000).await.unwrap();
    assert!(store.prune_counters(12_000).await.unwrap() >= 1);
    assert_eq!(store.get_counter(&key).await.unwrap(), None, "an ended window is pruned");
    assert_eq!(store.get_counter(&other).await.unwrap().map(|c| c.count), Some(1), "a live one is kept");
    store.clear_counter(&other).await.unwrap();
    assert_eq!(store.get_counter(&other).await.unwrap(), None);

    // Compare and swap: of two callers that judged the same state, one counts.
    let key = uid("ctr");
    assert!(store.reserve_counter(&key, None, 1_000, 20_000).await.unwrap());
    assert!(!store.reserve_counter(&key, None, 1_000, 20_000).await.unwrap(), "a live window exists now");
    let seen = store.get_counter(&key).await.unwrap().unwrap();
    assert!(store.reserve_counter(&key, Some(&seen), 1_000, 20_100).await.unwrap());
    assert!(!store.reserve_counter(&key, Some(&seen), 1_000, 20_200).await.unwrap(), "the state moved on");
    let now = store.get_counter(&key).await.unwrap().unwrap();
    assert_eq!((now.count, now.last_at), (2, 20_100));
    assert!(store.reserve_counter(&key, Some(&now), 1_000, 21_000).await.unwrap(), "an ended window starts again");
    assert_eq!(store.get_counter(&key).await.unwrap().map(|c| (c.count, c.window_start)), Some((1, 21_000)));
}

async fn a_ban_and_its_revocation_land_together(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&UserRecord { user: user(&a, None), emails: vec![], phones: vec![] }).await.unwrap();
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

fn org(id: &str, slug: &str) -> OrganizationRow {
    OrganizationRow {
        id: id.into(),
        name: format!("Org {slug}"),
        slug: slug.into(),
        image_url: None,
        public_metadata: "{}".into(),
        private_metadata: "{}".into(),
        max_allowed_memberships: 3,
        admin_delete_enabled: true,
        created_by: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn membership(org_id: &str, user_id: &str, role: &str) -> MembershipRow {
    MembershipRow {
        id: uid("orgmem"),
        organization_id: org_id.into(),
        user_id: user_id.into(),
        role: role.into(),
        public_metadata: "{}".into(),
        private_metadata: "{}".into(),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

async fn organizations(store: &dyn Store) {
    const ADMIN: &str = "org:admin";
    let role = OrgRoleRow {
        key: format!("org:{}", uid("role").to_lowercase()),
        name: "Billing".into(),
        description: "Pays".into(),
        permissions: r#"["org:invoices:read"]"#.into(),
        created_at: 1,
        updated_at: 1,
    };
    store.upsert_org_role(&role).await.unwrap();
    let renamed = OrgRoleRow { name: "Billing team".into(), updated_at: 2, ..role.clone() };
    store.upsert_org_role(&renamed).await.unwrap();
    assert!(store.list_org_roles().await.unwrap().contains(&renamed));

    let users: Vec<String> = (0..4).map(|_| uid("user")).collect();
    for u in &users {
        store.create_user(&UserRecord { user: user(u, None), emails: vec![], phones: vec![] }).await.unwrap();
    }
    let slug = uid("slug").to_lowercase();
    let o = OrganizationRow { created_by: Some(users[0].clone()), ..org(&uid("org"), &slug) };
    let creator = membership(&o.id, &users[0], ADMIN);
    store.create_organization(&o, Some(&creator)).await.unwrap();
    assert_eq!(store.organization_by_slug(&slug).await.unwrap(), Some(o.clone()));
    let dup = org(&uid("org"), &slug);
    assert!(matches!(store.create_organization(&dup, None).await, Err(StoreError::Conflict(_))), "slugs are unique");
    let by = |query: Option<&str>, ids: &[String]| OrgQuery {
        query: query.map(str::to_owned),
        ids: ids.to_vec(),
        limit: 10,
        ..Default::default()
    };
    let (found, total) = store.list_organizations(&by(Some(&slug.to_uppercase()), &[])).await.unwrap();
    assert_eq!((found, total), (vec![o.clone()], 1));
    assert_eq!(store.list_organizations(&by(None, std::slice::from_ref(&o.id))).await.unwrap().1, 1);
    let created = OrgQuery { created_by: Some(users[0].clone()), ..by(None, &[]) };
    assert_eq!(store.list_organizations(&created).await.unwrap().0, vec![o.clone()], "by creator");

    // Members up to the limit; one role each; the last admin stays.
    store.insert_membership(&membership(&o.id, &users[1], "org:member"), o.max_allowed_memberships).await.unwrap();
    store.insert_membership(&membership(&o.id, &users[2], "org:member"), o.max_allowed_memberships).await.unwrap();
    let full = store.insert_membership(&membership(&o.id, &users[3], "org:member"), o.max_allowed_memberships).await;
    assert!(matches!(full, Err(StoreError::Conflict(ref c)) if c == "membership_limit"), "{full:?}");
    let twice = store.insert_membership(&membership(&o.id, &users[1], ADMIN), 0).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "one membership per user");
    assert_eq!(store.count_memberships(&o.id).await.unwrap(), 3);
    let of_org = MembershipQuery { organization_id: Some(o.id.clone()), limit: 2, ..Default::default() };
    let (page, total) = store.list_memberships(&of_org).await.unwrap();
    assert_eq!((page.len(), total), (2, 3));
    assert_eq!(page[0].user_id, users[0], "oldest first");
    let admins = MembershipQuery { roles: vec![ADMIN.into()], ..of_org.clone() };
    assert_eq!(store.list_memberships(&admins).await.unwrap().1, 1);
    let one_user = MembershipQuery { user_ids: vec![users[2].clone()], ..of_org.clone() };
    assert_eq!(store.list_memberships(&one_user).await.unwrap().0[0].user_id, users[2]);
    assert_eq!(store.memberships_of_user(&users[1]).await.unwrap().len(), 1);
    let joined = store.organizations_of_user(&users[1]).await.unwrap();
    assert_eq!((joined.len(), joined[0].1.id.as_str()), (1, o.id.as_str()));
    let members_of = UserQuery { organization_ids: vec![o.id.clone()], limit: 10, ..Default::default() };
    assert_eq!(store.count_users_matching(&members_of).await.unwrap(), 3, "users filtered by organization");

    let demote = MembershipRow { role: "org:member".into(), ..creator.clone() };
    let refused = store.update_membership(&demote, ADMIN).await;
    assert!(matches!(refused, Err(StoreError::Conflict(ref c)) if c == "last_admin"), "{refused:?}");
    assert_eq!(store.get_membership(&o.id, &users[0]).await.unwrap().unwrap().role, ADMIN, "nothing changed");
    let refused = store.delete_membership(&o.id, &users[0], ADMIN).await;
    assert!(matches!(refused, Err(StoreError::Conflict(ref c)) if c == "last_admin"));
    let promote = MembershipRow {
        role: ADMIN.into(),
        updated_at: 2,
        ..store.get_membership(&o.id, &users[1]).await.unwrap().unwrap()
    };
    store.update_membership(&promote, ADMIN).await.unwrap();
    store.update_membership(&demote, ADMIN).await.unwrap();
    assert!(store.delete_membership(&o.id, &users[2], ADMIN).await.unwrap());
    assert!(!store.delete_membership(&o.id, &users[2], ADMIN).await.unwrap());

    let inv = OrgInvitationRow {
        id: uid("orginv"),
        organization_id: o.id.clone(),
        email: format!("{}@example.com", uid("oi")),
        role: "org:member".into(),
        status: "pending".into(),
        public_metadata: "{}".into(),
        private_metadata: "{}".into(),
        inviter_user_id: Some(users[0].clone()),
        token_digest: uid("digest"),
        expires_at: 9_000,
        created_at: 1_000,
        updated_at: 1_000,
    };
    store.insert_org_invitation(&inv).await.unwrap();
    assert_eq!(store.pending_org_invitations_for(&inv.email).await.unwrap(), vec![inv.clone()]);
    let counts = store.org_counts(std::slice::from_ref(&o.id), 5_000).await.unwrap();
    assert_eq!(counts, vec![(o.id.clone(), OrgCounts { members: 2, pending_invitations: 1 })]);
    let after_expiry = store.org_counts(std::slice::from_ref(&o.id), 9_000).await.unwrap();
    assert_eq!(after_expiry[0].1.pending_invitations, 0, "expired invitations are not counted");

    // Accepting: the invitation and the membership land together, once.
    let accepting = OrgInvitationRow { id: uid("orginv"), token_digest: uid("digest"), ..inv.clone() };
    store.insert_org_invitation(&accepting).await.unwrap();
    let joining = membership(&o.id, &users[3], "org:member");
    assert!(store.accept_org_invitation(&accepting, &joining, 0).await.unwrap());
    assert!(!store.accept_org_invitation(&accepting, &joining, 0).await.unwrap(), "only once");
    assert_eq!(store.get_org_invitation(&accepting.id).await.unwrap().unwrap().status, "accepted");
    assert_eq!(store.get_membership(&o.id, &users[3]).await.unwrap().unwrap().id, joining.id);
    let full = OrgInvitationRow { id: uid("orginv"), token_digest: uid("digest"), ..inv.clone() };
    store.insert_org_invitation(&full).await.unwrap();
    let over = store.accept_org_invitation(&full, &membership(&o.id, &users[2], "org:member"), 3).await;
    assert!(matches!(over, Err(StoreError::Conflict(ref c)) if c == "membership_limit"), "{over:?}");
    assert_eq!(store.get_org_invitation(&full.id).await.unwrap().unwrap().status, "pending", "nothing written");
    assert!(store.delete_membership(&o.id, &users[3], ADMIN).await.unwrap());
    let revoked = OrgInvitationRow { status: "revoked".into(), updated_at: 2_000, ..inv.clone() };
    store.update_org_invitation(&revoked).await.unwrap();
    assert_eq!(store.list_org_invitations(&o.id, &["pending".into()], 10, 0).await.unwrap().1, 1);
    assert!(store.list_org_invitations(&o.id, &[], 10, 0).await.unwrap().0.contains(&revoked));

    let mut changed = o.clone();
    changed.name = "Renamed".into();
    changed.public_metadata = r#"{"tier":"gold"}"#.into();
    store.update_organization(&changed).await.unwrap();
    assert_eq!(store.get_organization(&o.id).await.unwrap(), Some(changed));
    assert!(store.delete_organization(&o.id).await.unwrap());
    assert_eq!(store.get_organization(&o.id).await.unwrap(), None);
    assert_eq!(store.get_membership(&o.id, &users[1]).await.unwrap(), None, "memberships go with it");
    assert_eq!(store.get_org_invitation(&inv.id).await.unwrap(), None, "invitations go with it");
    assert!(matches!(store.update_organization(&o).await, Err(StoreError::NotFound)));
}

fn query(marker: &str) -> UserQuery {
    UserQuery { query: Some(marker.into()), limit: 10, ..Default::default() }
}

async fn user_queries(store: &dyn Store) {
    let m = uid("q").to_lowercase();
    let mut ids = Vec::new();
    for (i, (first, active)) in [("Cleo", Some(5_000)), ("alma", None), ("Bea", Some(7_000))].into_iter().enumerate() {
        let id = uid("user");
        let mut u = user(&id, Some(&format!("{m}_user{i}")));
        u.first_name = Some(format!("{first}{m}"));
        u.created_at = 10_000 + i as i64;
        u.last_active_at = active;
        u.external_id = Some(format!("ext-{m}-{i}"));
        let mut rec =
            UserRecord { user: u, emails: vec![email(&id, &format!("{m}-{i}@example.com"), true)], phones: vec![] };
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
    assert_eq!(store.user_id_by_external_id(&format!("ext-{m}-2")).await.unwrap(), Some(ids[2].clone()));
    let mut dup = user(&uid("user"), None);
    dup.external_id = Some(format!("ext-{m}-2"));
    let err = store.create_user(&UserRecord { user: dup, emails: vec![], phones: vec![] }).await.unwrap_err();
    assert!(err.is_conflict_on("external_id"), "external ids are unique: {err:?}");
}

async fn session_queries(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&UserRecord { user: user(&a, None), emails: vec![], phones: vec![] }).await.unwrap();
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

async fn invitations(store: &dyn Store) {
    let m = uid("inv").to_lowercase();
    let row = |email: String, status: &str, expires_at: i64| InvitationRow {
        id: uid("inv"),
        email,
        status: status.into(),
        public_metadata: r#"{"team":"blue"}"#.into(),
        redirect_url: None,
        token_digest: uid("digest"),
        expires_at: Some(expires_at),
        created_at: 1_000,
        updated_at: 1_000,
    };
    let a = row(format!("{m}-a@example.com"), "pending", 100_000);
    let b = row(format!("{m}-b@example.com"), "pending", 5_000);
    let c = row(format!("{m}-c@example.com"), "revoked", 100_000);
    for i in [&a, &b, &c] {
        store.insert_invitation(i).await.unwrap();
    }
    assert_eq!(store.get_invitation(&a.id).await.unwrap(), Some(a.clone()));
    let (rows, total) = store.list_invitations(&[], Some(&m), 10, 0).await.unwrap();
    assert_eq!((rows.len(), total), (3, 3));
    assert!(store.expire_invitations(6_000).await.unwrap() >= 1);
    assert_eq!(store.get_invitation(&b.id).await.unwrap().unwrap().status, "expired");
    let (pending, total) = store.list_invitations(&["pending".into()], Some(&m), 10, 0).await.unwrap();
    assert_eq!((pending, total), (vec![a.clone()], 1));
    assert_eq!(store.pending_invitations_for(&a.email, 6_000).await.unwrap(), vec![a.clone()]);
    assert!(store.pending_invitations_for(&a.email, 100_000).await.unwrap().is_empty(), "not once expired");
    let mut accepted = a.clone();
    accepted.status = "accepted".into();
    store.update_invitation(&accepted).await.unwrap();
    assert!(store.pending_invitations_for(&a.email, 6_000).await.unwrap().is_empty());
    assert!(store.delete_invitation(&c.id).await.unwrap());
    assert!(!store.delete_invitation(&c.id).await.unwrap());
}

async fn sign_in_tokens(store: &dyn Store) {
    let a = uid("user");
    store.create_user(&UserRecord { user: user(&a, None), emails: vec![], phones: vec![] }).await.unwrap();
    let t = SignInTokenRow {
        id: uid("sit"),
        user_id: a.clone(),
        token_digest: uid("digest"),
        status: "pending".into(),
        expires_at: 9_000,
        created_at: 1_000,
        updated_at: 1_000,
    };
    store.insert_sign_in_token(&t).await.unwrap();
    assert_eq!(store.sign_in_token_by_digest(&t.token_digest).await.unwrap(), Some(t.clone()));
    let used = SignInTokenRow { status: "accepted".into(), updated_at: 2_000, ..t.clone() };
    assert!(store.transition_sign_in_token(&used, "pending").await.unwrap());
    assert!(!store.transition_sign_in_token(&used, "pending").await.unwrap(), "only one use wins");
    assert_eq!(store.get_sign_in_token(&t.id).await.unwrap(), Some(used));
    store.delete_user(&a).await.unwrap();
    assert_eq!(store.get_sign_in_token(&t.id).await.unwrap(), None, "deleted with its user");
}

async fn handshake_nonces(store: &dyn Store) {
    let (a, b, old) = (uid("hs"), uid("hs"), uid("hs"));
    store.insert_handshake_nonce(&a, r#"["__session=x"]"#, 10_000).await.unwrap();
    store.insert_handshake_nonce(&b, "[]", 10_000).await.unwrap();
    store.insert_handshake_nonce(&old, "[]", 5_000).await.unwrap();
    assert!(store.insert_handshake_nonce(&a, "[]", 10_000).await.is_err(), "a digest is stored once");
    // Racing takers: exactly one gets the directives.
    let t = || store.take_handshake_nonce(&a, 9_000);
    let (t1, t2, t3, t4) = tokio::join!(t(), t(), t(), t());
    let won: Vec<_> = [t1, t2, t3, t4].into_iter().map(|t| t.unwrap()).filter(Option::is_some).collect();
    assert_eq!(won, vec![Some(r#"["__session=x"]"#.to_owned())]);
    assert_eq!(store.take_handshake_nonce(&a, 9_000).await.unwrap(), None, "single use");
    assert_eq!(store.take_handshake_nonce(&uid("hs"), 9_000).await.unwrap(), None, "unknown");
    assert_eq!(store.take_handshake_nonce(&b, 10_000).await.unwrap(), None, "expired at its expiry");
    assert!(store.prune_handshake_nonces(6_000).await.unwrap() >= 1);
    assert_eq!(store.take_handshake_nonce(&old, 1_000).await.unwrap(), None, "pruned");
}

async fn jwt_templates(store: &dyn Store) {
    let name = uid("tmpl");
    let t = JwtTemplateRow {
        id: uid("jtmp"),
        name: name.clone(),
        claims: r#"{"aud":"x"}"#.into(),
        lifetime: 60,
        allowed_clock_skew: 5,
        signing_algorithm: "RS256".into(),
        signing_key_sealed: None,
        created_at: 1_000,
        updated_at: 1_000,
    };
    store.insert_jwt_template(&t).await.unwrap();
    assert_eq!(store.jwt_template_by_name(&name).await.unwrap(), Some(t.clone()));
    let dup = JwtTemplateRow { id: uid("jtmp"), ..t.clone() };
    assert!(matches!(store.insert_jwt_template(&dup).await, Err(StoreError::Conflict(_))), "names are unique");
    let changed = JwtTemplateRow {
        lifetime: 120,
        signing_algorithm: "HS256".into(),
        signing_key_sealed: Some("sealed".into()),
        ..t.clone()
    };
    store.update_jwt_template(&changed).await.unwrap();
    assert_eq!(store.get_jwt_template(&t.id).await.unwrap(), Some(changed.clone()));
    assert!(store.list_jwt_templates().await.unwrap().contains(&changed));
    assert!(store.delete_jwt_template(&t.id).await.unwrap());
    assert_eq!(store.get_jwt_template(&t.id).await.unwrap(), None);
}

async fn phones_and_emails(store: &dyn Store) {
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
        .create_user(&UserRecord { user: user(&a, None), emails: vec![e.clone()], phones: vec![p.clone()] })
        .await
        .unwrap();
    assert_eq!(store.get_email(&e.id).await.unwrap(), Some(e));
    let changed = PhoneRow { reserved_for_second_factor: true, updated_at: 2, ..p.clone() };
    store.update_phone(&changed).await.unwrap();
    assert_eq!(store.get_phone(&p.id).await.unwrap(), Some(changed));
    let other = uid("user");
    let taken = PhoneRow { id: uid("idn"), user_id: other.clone(), ..p.clone() };
    let err = store.create_user(&UserRecord { user: user(&other, None), emails: vec![], phones: vec![taken] }).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "a verified number belongs to one user");
    store.delete_phone(&p.id).await.unwrap();
    assert_eq!(store.get_phone(&p.id).await.unwrap(), None);
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
            client_token_digest: format!("new-token-of-{}", c.id),
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
