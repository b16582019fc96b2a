//! Roles and permissions as Clerk's `Role` and `Permission` objects (docs/organization-roles.md).

use latchkey_core::authz::{is_system_permission, Role, SYSTEM_PERMISSIONS};
use latchkey_store::{seeded_role_id, OrgPermissionRow, OrgRoleRow};
use serde::Serialize;
use serde_json::Value;

use super::to_value;

#[derive(Debug, Clone, Serialize)]
pub struct PermissionView {
    pub object: &'static str,
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PermissionView {
    pub fn of(p: &OrgPermissionRow) -> Self {
        PermissionView {
            object: "permission",
            id: p.id.clone(),
            key: p.key.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            kind: p.kind.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }

    /// A permission a role names that has no row (a database seeded before permissions had
    /// rows of their own): its id is the one latchkey always showed for it.
    fn named(key: &str) -> Self {
        PermissionView {
            object: "permission",
            id: seeded_permission_id(key),
            key: key.to_owned(),
            name: key.to_owned(),
            description: String::new(),
            kind: if is_system_permission(key) { "system" } else { "user" }.into(),
            created_at: 0,
            updated_at: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub object: &'static str,
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<PermissionView>,
    pub is_creator_eligible: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The id of a permission seeded from configuration (or one of Clerk's system permissions).
pub fn seeded_permission_id(key: &str) -> String {
    format!("perm_{}", key.trim_start_matches("org:").replace(':', "_"))
}

/// The permission keys a stored role grants.
pub fn role_permission_keys(r: &OrgRoleRow) -> Vec<String> {
    serde_json::from_str(&r.permissions).unwrap_or_default()
}

/// A stored role; its permissions are shown from `known` where they have a row.
pub fn stored_role(r: &OrgRoleRow, known: &[OrgPermissionRow]) -> Value {
    let keys = role_permission_keys(r);
    let permissions = keys
        .iter()
        .map(|k| known.iter().find(|p| &p.key == k).map_or_else(|| PermissionView::named(k), PermissionView::of))
        .collect();
    to_value(RoleView {
        object: "role",
        id: r.role_id(),
        key: r.key.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        permissions,
        // latchkey's rule: whoever creates an organization must be able to run it (its profile
        // and its members).
        is_creator_eligible: creator_eligible(&keys),
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// A role as configuration defines it (the events of seeding, before it has a row).
pub fn role(r: &Role) -> Value {
    to_value(RoleView {
        object: "role",
        id: seeded_role_id(&r.key),
        key: r.key.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        permissions: r.permissions.iter().map(|k| PermissionView::named(k)).collect(),
        is_creator_eligible: creator_eligible(&r.permissions),
        created_at: 0,
        updated_at: 0,
    })
}

pub fn permission(p: &OrgPermissionRow) -> Value {
    to_value(PermissionView::of(p))
}

fn creator_eligible(keys: &[String]) -> bool {
    SYSTEM_PERMISSIONS
        .iter()
        .filter(|p| p.contains(":sys_profile:") || p.contains(":sys_memberships:"))
        .all(|p| keys.iter().any(|k| k == p))
}
