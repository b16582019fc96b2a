//! Organizations: roles, memberships with their limit and last-admin rule, invitations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::{bare, uid, user};
use crate::records::*;
use crate::{Store, StoreError};

pub(super) fn org(id: &str, slug: &str) -> OrganizationRow {
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

pub(super) fn membership(org_id: &str, user_id: &str, role: &str) -> MembershipRow {
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

pub async fn organizations(store: &dyn Store) {
    const ADMIN: &str = "org:admin";
    let role = OrgRoleRow {
        key: format!("org:{}", uid("role").to_lowercase()),
        name: "Billing".into(),
        description: "Pays".into(),
        permissions: r#"["org:invoices:read"]"#.into(),
        created_at: 1,
        updated_at: 1,
        id: Some(uid("role")),
    };
    // (A database whose roles are managed at run time takes no seed: roles.rs.)
    let seeding = !store.roles_managed_at_run_time().await.unwrap();
    assert_eq!(store.seed_roles(std::slice::from_ref(&role), &[]).await.unwrap(), seeding);
    let renamed = OrgRoleRow { name: "Billing team".into(), updated_at: 2, ..role.clone() };
    assert_eq!(store.seed_roles(std::slice::from_ref(&renamed), &[]).await.unwrap(), seeding);
    assert_eq!(store.list_org_roles().await.unwrap().contains(&renamed), seeding);

    let users: Vec<String> = (0..4).map(|_| uid("user")).collect();
    for u in &users {
        store.create_user(&bare(user(u, None))).await.unwrap();
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
    assert_eq!(store.org_invitation_by_token_digest(&inv.token_digest).await.unwrap(), Some(inv.clone()));
    assert_eq!(store.org_invitation_by_token_digest("no-such-digest").await.unwrap(), None);
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

/// A person deleting their own account: refused, changing nothing, while they are the only
/// admin of an organization with other members; allowed as the sole member of one (as leaving
/// is), and once another member is an admin. Operators' deletion has no such rule.
pub async fn the_last_admin_keeps_their_account(store: &dyn Store) {
    const ADMIN: &str = "org:admin";
    let (ada, bob, cy) = (uid("user"), uid("user"), uid("user"));
    for u in [&ada, &bob, &cy] {
        store.create_user(&bare(user(u, None))).await.unwrap();
    }
    let shared = org(&uid("org"), &uid("slug").to_lowercase());
    store.create_organization(&shared, Some(&membership(&shared.id, &ada, ADMIN))).await.unwrap();
    store.insert_membership(&membership(&shared.id, &bob, "org:member"), 0).await.unwrap();
    let alone = org(&uid("org"), &uid("slug").to_lowercase());
    store.create_organization(&alone, Some(&membership(&alone.id, &cy, ADMIN))).await.unwrap();

    let refused = store.delete_own_user(&ada, ADMIN).await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(c)) if *c == format!("last_admin:{}", shared.id)),
        "{refused:?}"
    );
    assert!(store.get_user(&ada).await.unwrap().is_some(), "nothing deleted");
    assert_eq!(store.count_memberships(&shared.id).await.unwrap(), 2);

    let bob_admin = store.get_membership(&shared.id, &bob).await.unwrap().unwrap();
    store.update_membership(&MembershipRow { role: ADMIN.into(), ..bob_admin }, ADMIN).await.unwrap();
    assert!(store.delete_own_user(&ada, ADMIN).await.unwrap());
    assert!(store.get_user(&ada).await.unwrap().is_none());
    assert_eq!(store.count_memberships(&shared.id).await.unwrap(), 1);

    assert!(store.delete_own_user(&cy, ADMIN).await.unwrap(), "the sole member may go");
    assert_eq!(store.count_memberships(&alone.id).await.unwrap(), 0);
}
