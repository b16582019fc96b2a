//! The instance's organization roles and permissions, and one change of them
//! (docs/organization-roles.md).

/// A role defined for the instance, with the permissions it grants.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgRoleRow {
    /// `org:<name>`.
    pub key: String,
    pub name: String,
    pub description: String,
    /// JSON array of permission keys.
    pub permissions: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// `role_<name>` for the roles seeded from configuration, a generated id for the others;
    /// `None` on a row an older binary wrote (its id is then `role_<name>`, see `role_id`).
    pub id: Option<String>,
}

impl OrgRoleRow {
    /// The role's id: its own, or `role_<name>` for a row written without one.
    pub fn role_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| seeded_role_id(&self.key))
    }
}

/// The id of a role seeded from configuration, `role_<name>` (the id latchkey always showed).
pub fn seeded_role_id(key: &str) -> String {
    format!("role_{}", key.trim_start_matches("org:"))
}

/// A permission of the instance: one of Clerk's system permissions or one of the app's own.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgPermissionRow {
    pub id: String,
    /// `org:<feature>:<action>`.
    pub key: String,
    pub name: String,
    pub description: String,
    /// `system` or `user`.
    pub kind: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One change to the instance's roles and permissions, written in one transaction by
/// [`crate::RoleStore::change_roles`]. After the first, configuration no longer seeds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleChange {
    /// The roles and permissions as the change was computed from: each must still be stored
    /// exactly so (found by key, or by id for permissions), or nothing is written and the answer
    /// is [`StoreError::Stale`](crate::StoreError::Stale), so that two changes made at once cannot undo each other.
    pub read_roles: Vec<OrgRoleRow>,
    pub read_permissions: Vec<OrgPermissionRow>,
    /// A new role: `Conflict("role_key_exists")` when a role has its key, `Conflict("role_key_held")`
    /// when members or pending invitations still hold it (from a role removed earlier).
    pub new_role: Option<OrgRoleRow>,
    /// Roles written whole over the rows with their key (they must exist).
    pub roles: Vec<OrgRoleRow>,
    /// A key changed from the first to the second: the old row goes (the new one is among
    /// `roles`), and the members and pending invitations holding the old key get the new one;
    /// `Conflict("role_key_exists")` when the new key is taken.
    pub renamed_role: Option<(String, String)>,
    /// A role removed: `Conflict("role_in_use")` while a member or a pending invitation holds it.
    pub removed_role: Option<String>,
    /// A new permission; a key another permission has is a conflict.
    pub new_permission: Option<OrgPermissionRow>,
    /// Permissions written whole over the rows with their id (they must exist); a key another
    /// permission has is a conflict.
    pub permissions: Vec<OrgPermissionRow>,
    /// A permission removed, by id.
    pub removed_permission: Option<String>,
}
