//! Roles and permissions changed at run time: each change lands whole or not at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use super::orgs::{membership, org};
use super::{bare, uid, user};
use crate::records::*;
use crate::{Store, StoreError};

fn role(key: &str, permissions: &[&str]) -> OrgRoleRow {
    OrgRoleRow {
        key: key.into(),
        name: "Analyst".into(),
        description: "Reads reports".into(),
        permissions: serde_json::to_string(permissions).unwrap(),
        created_at: 1,
        updated_at: 1,
        id: Some(uid("role")),
    }
}

fn permission(key: &str) -> OrgPermissionRow {
    OrgPermissionRow {
        id: uid("perm"),
        key: key.into(),
        name: "Read reports".into(),
        description: String::new(),
        kind: "user".into(),
        created_at: 1,
        updated_at: 1,
    }
}

fn conflict(result: crate::error::Result<()>, rule: &str) {
    assert!(matches!(&result, Err(StoreError::Conflict(c)) if c == rule), "{rule}: {result:?}");
}

pub async fn role_changes_land_whole_or_not_at_all(store: &dyn Store) {
    let feature = uid("reports").to_lowercase();
    let read = permission(&format!("org:{feature}:read"));
    assert!(store.seed_org_permission(&read).await.unwrap());
    let again = OrgPermissionRow { id: uid("perm"), ..read.clone() };
    assert!(!store.seed_org_permission(&again).await.unwrap(), "seeding keeps the permission with that key");
    assert!(store.list_org_permissions().await.unwrap().contains(&read));

    // A new role with the permission; its key is unique.
    let key = format!("org:{}", uid("analyst").to_lowercase());
    let analyst = role(&key, &[&read.key]);
    let seeded = role(&format!("org:{}", uid("seeded").to_lowercase()), &[]);
    let seeding = !store.roles_managed_at_run_time().await.unwrap();
    assert_eq!(store.seed_roles(std::slice::from_ref(&seeded), &[]).await.unwrap(), seeding);
    store.change_roles(&RoleChange { new_role: Some(analyst.clone()), ..Default::default() }).await.unwrap();
    assert!(!store.seed_roles(&[], std::slice::from_ref(&seeded.key)).await.unwrap(), "no seeding once managed");
    assert_eq!(store.list_org_roles().await.unwrap().contains(&seeded), seeding, "nor removal");
    assert!(store.roles_managed_at_run_time().await.unwrap(), "a run-time change is recorded");
    assert!(store.list_org_roles().await.unwrap().contains(&analyst));
    let twice = RoleChange { new_role: Some(role(&key, &[])), ..Default::default() };
    conflict(store.change_roles(&twice).await, "role_key_exists");
    let dup_key = OrgPermissionRow { id: uid("perm"), ..read.clone() };
    let taken = store.change_roles(&RoleChange { new_permission: Some(dup_key), ..Default::default() }).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "permission keys are unique: {taken:?}");

    // A member and a pending invitation hold the role; renaming carries them along.
    let u = uid("user");
    store.create_user(&bare(user(&u, None))).await.unwrap();
    let o = org(&uid("org"), &uid("slug").to_lowercase());
    store.create_organization(&o, Some(&membership(&o.id, &u, &key))).await.unwrap();
    let invitation = OrgInvitationRow {
        id: uid("orginv"),
        organization_id: o.id.clone(),
        email: format!("{}@example.com", uid("oi")),
        role: key.clone(),
        status: "pending".into(),
        public_metadata: "{}".into(),
        private_metadata: "{}".into(),
        inviter_user_id: None,
        token_digest: uid("digest"),
        expires_at: 9_000,
        created_at: 1_000,
        updated_at: 1_000,
    };
    store.insert_org_invitation(&invitation).await.unwrap();
    let renamed_key = format!("{key}_2");
    let renamed = OrgRoleRow { key: renamed_key.clone(), updated_at: 2, ..analyst.clone() };
    // A change computed from a row that changed since is refused whole.
    let stale = RoleChange {
        read_roles: vec![OrgRoleRow { name: "Old name".into(), ..analyst.clone() }],
        roles: vec![OrgRoleRow { description: "lost".into(), ..analyst.clone() }],
        ..Default::default()
    };
    let refused = store.change_roles(&stale).await;
    assert!(matches!(refused, Err(StoreError::Stale)), "{refused:?}");
    assert!(store.list_org_roles().await.unwrap().contains(&analyst), "nothing of it landed");
    let rename = RoleChange {
        read_roles: vec![analyst.clone()],
        roles: vec![renamed.clone()],
        renamed_role: Some((key.clone(), renamed_key.clone())),
        ..Default::default()
    };
    store.change_roles(&rename).await.unwrap();
    let roles = store.list_org_roles().await.unwrap();
    assert!(roles.contains(&renamed) && !roles.iter().any(|r| r.key == key), "the row moved");
    assert_eq!(store.get_membership(&o.id, &u).await.unwrap().unwrap().role, renamed_key, "the member followed");
    let followed = store.get_org_invitation(&invitation.id).await.unwrap().unwrap().role;
    assert_eq!(followed, renamed_key, "the pending invitation followed");

    // Renaming onto a taken key changes nothing.
    let other = role(&format!("org:{}", uid("other").to_lowercase()), &[]);
    store.change_roles(&RoleChange { new_role: Some(other.clone()), ..Default::default() }).await.unwrap();
    let onto = RoleChange {
        roles: vec![OrgRoleRow { key: other.key.clone(), ..renamed.clone() }],
        renamed_role: Some((renamed_key.clone(), other.key.clone())),
        ..Default::default()
    };
    conflict(store.change_roles(&onto).await, "role_key_exists");
    let roles = store.list_org_roles().await.unwrap();
    assert!(roles.contains(&renamed) && roles.contains(&other), "nothing of the refused change landed");

    // A role a member holds is not removed; once nobody holds it, it is.
    let remove = RoleChange { removed_role: Some(renamed_key.clone()), ..Default::default() };
    conflict(store.change_roles(&remove).await, "role_in_use");
    assert!(store.list_org_roles().await.unwrap().contains(&renamed));
    // (The member moves to another role; the invitation, once revoked, no longer holds it.)
    let held = store.get_membership(&o.id, &u).await.unwrap().unwrap();
    store.update_membership(&MembershipRow { role: other.key.clone(), ..held }, &other.key).await.unwrap();
    let invited = store.get_org_invitation(&invitation.id).await.unwrap().unwrap();
    store.update_org_invitation(&OrgInvitationRow { status: "revoked".into(), ..invited }).await.unwrap();
    store.change_roles(&remove).await.unwrap();
    assert!(!store.list_org_roles().await.unwrap().iter().any(|r| r.key == renamed_key));
    // A key members still hold (here: of a role removed by seeding, before) is not reused.
    let ghost = format!("org:{}", uid("ghost").to_lowercase());
    let held = store.get_membership(&o.id, &u).await.unwrap().unwrap();
    store.update_membership(&MembershipRow { role: ghost.clone(), ..held.clone() }, &ghost).await.unwrap();
    let reuse = RoleChange { new_role: Some(role(&ghost, &[])), ..Default::default() };
    conflict(store.change_roles(&reuse).await, "role_key_held");
    store.update_membership(&held, &other.key).await.unwrap();

    // A permission removed together with the role lists that named it.
    let without = OrgRoleRow { permissions: "[]".into(), updated_at: 3, ..other.clone() };
    let drop =
        RoleChange { removed_permission: Some(read.id.clone()), roles: vec![without.clone()], ..Default::default() };
    store.change_roles(&drop).await.unwrap();
    assert!(!store.list_org_permissions().await.unwrap().iter().any(|p| p.id == read.id));
    assert!(store.list_org_roles().await.unwrap().contains(&without));
    // A role written over one that is gone is refused (it was deleted meanwhile).
    let gone =
        RoleChange { roles: vec![role(&format!("org:{}", uid("gone").to_lowercase()), &[])], ..Default::default() };
    assert!(matches!(store.change_roles(&gone).await, Err(StoreError::Stale)));
}
