//! Permissions changed at run time through the Backend API's `/v1/organization_permissions`
//! (docs/organization-roles.md): a new key is carried into every role that names it, a deleted
//! permission leaves every role, a new one is given to `org:admin`; the system permissions are
//! fixed.

use latchkey_core::authz::{is_system_permission, parse_permission, ADMIN_ROLE};
use latchkey_core::ids::IdKind;
use latchkey_store::{OrgPermissionRow, OrgRoleRow, RoleChange};
use serde_json::json;

use super::role_admin::{invalid, page, permission_list, required, RoleListQuery};
use super::OrgService;
use crate::authority::Operator;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::resources::{permission, role_permission_keys};

/// A permission to create (`name` and `key` required) or the fields of one to change.
#[derive(Debug, Clone, Default)]
pub struct PermissionInput {
    pub name: Option<String>,
    pub key: Option<String>,
    pub description: Option<String>,
}

/// Clerk's permission keys: `org:<feature>:<action>` in lowercase letters, digits and
/// underscores, never `org:sys_*` (reserved for the system permissions).
fn permission_key(key: &str) -> Result<String> {
    let key = key.trim();
    let lower = |s: &str| s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let valid =
        key.len() <= 128 && parse_permission(key).is_some_and(|(feature, action)| lower(feature) && lower(action));
    if !valid {
        return Err(invalid(
            "key",
            "Permission keys have the form org:<feature>:<action> in lowercase letters, digits and underscores.",
        ));
    }
    if is_system_permission(key) {
        return Err(invalid("key", "Permission keys starting with org:sys_ are reserved for the system permissions."));
    }
    Ok(key.to_owned())
}

impl OrgService {
    pub async fn list_permission_rows(&self, q: &RoleListQuery) -> Result<(Vec<OrgPermissionRow>, i64)> {
        page(self.store.list_org_permissions().await?, q)
    }

    pub async fn permission_detail(&self, id: &str) -> Result<OrgPermissionRow> {
        self.permission_row(id).await
    }

    pub async fn create_permission(&self, _operator: &Operator, input: PermissionInput) -> Result<OrgPermissionRow> {
        let name = required(input.name.as_ref(), "name")?;
        let key = permission_key(&required(input.key.as_ref(), "key")?)?;
        let now = self.now();
        let p = OrgPermissionRow {
            id: self.new_id(IdKind::Permission),
            key,
            name,
            description: input.description.unwrap_or_default(),
            kind: "user".into(),
            created_at: now,
            updated_at: now,
        };
        // org:admin holds every permission, this one too.
        let mut roles = self.store.list_org_roles().await?;
        roles.retain(|r| r.key == ADMIN_ROLE);
        for admin in &mut roles {
            let mut keys = role_permission_keys(admin);
            keys.push(p.key.clone());
            admin.permissions = permission_list(&keys);
            admin.updated_at = now;
        }
        let events = vec![self.event("permission.created", permission(&p))];
        self.apply(RoleChange { permissions: vec![p.clone()], roles, ..Default::default() }, events).await?;
        Ok(p)
    }

    /// The roles naming `key`, with `replace` applied to their permission lists.
    async fn roles_naming(&self, key: &str, replace: impl Fn(&mut Vec<String>)) -> Result<Vec<OrgRoleRow>> {
        let now = self.now();
        let mut roles = self.store.list_org_roles().await?;
        roles.retain(|r| role_permission_keys(r).iter().any(|k| k == key));
        for r in &mut roles {
            let mut keys = role_permission_keys(r);
            replace(&mut keys);
            r.permissions = permission_list(&keys);
            r.updated_at = now;
        }
        Ok(roles)
    }

    fn system_fixed(p: &OrgPermissionRow) -> Result<()> {
        if p.kind == "system" {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "system_permission_fixed",
                "System permissions cannot be changed or deleted.",
            ));
        }
        Ok(())
    }

    pub async fn update_permission(
        &self,
        _operator: &Operator,
        id: &str,
        input: PermissionInput,
    ) -> Result<OrgPermissionRow> {
        let before = self.permission_row(id).await?;
        Self::system_fixed(&before)?;
        let mut p = before.clone();
        if input.name.is_some() {
            p.name = required(input.name.as_ref(), "name")?;
        }
        if let Some(description) = input.description {
            p.description = description;
        }
        if let Some(key) = &input.key {
            p.key = permission_key(key)?;
        }
        p.updated_at = self.now();
        let (old, new) = (before.key.clone(), p.key.clone());
        let roles = if old == new {
            Vec::new()
        } else {
            self.roles_naming(&old, |keys| keys.iter_mut().filter(|k| **k == old).for_each(|k| *k = new.clone()))
                .await?
        };
        let events = vec![self.event("permission.updated", permission(&p))];
        self.apply(RoleChange { permissions: vec![p.clone()], roles, ..Default::default() }, events).await?;
        Ok(p)
    }

    pub async fn delete_permission(&self, _operator: &Operator, id: &str) -> Result<()> {
        let p = self.permission_row(id).await?;
        Self::system_fixed(&p)?;
        let roles = self.roles_naming(&p.key, |keys| keys.retain(|k| *k != p.key)).await?;
        let events =
            vec![self.event("permission.deleted", json!({"object": "permission", "id": p.id, "deleted": true}))];
        self.apply(RoleChange { removed_permission: Some(p.id.clone()), roles, ..Default::default() }, events).await
    }
}
