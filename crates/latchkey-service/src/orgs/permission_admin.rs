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
use crate::resources::{permission, role_permission_keys, stored_role};

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
        let id = self.new_id(IdKind::Permission);
        self.retrying(|| async {
            let now = self.now();
            let p = OrgPermissionRow {
                id: id.clone(),
                key: key.clone(),
                name: name.clone(),
                description: input.description.clone().unwrap_or_default(),
                kind: "user".into(),
                created_at: now,
                updated_at: now,
            };
            // org:admin holds every permission, this one too.
            let (read_roles, roles) =
                self.roles_rewritten(|r| r.key == ADMIN_ROLE, |keys| keys.push(key.clone())).await?;
            let mut events = vec![self.event("permission.created", permission(&p))];
            events.extend(self.role_events(&roles, Some(&p)).await?);
            let change = RoleChange { read_roles, new_permission: Some(p.clone()), roles, ..Default::default() };
            self.apply(change, events).await?;
            Ok(p)
        })
        .await
    }

    /// The roles `pick` selects as read, and as written with `rewrite` applied to their
    /// permission lists.
    async fn roles_rewritten(
        &self,
        pick: impl Fn(&OrgRoleRow) -> bool,
        rewrite: impl Fn(&mut Vec<String>),
    ) -> Result<(Vec<OrgRoleRow>, Vec<OrgRoleRow>)> {
        let now = self.now();
        let mut read = self.store.list_org_roles().await?;
        read.retain(|r| pick(r));
        let written = read
            .iter()
            .map(|r| {
                let mut keys = role_permission_keys(r);
                rewrite(&mut keys);
                OrgRoleRow { permissions: permission_list(&keys), updated_at: now, ..r.clone() }
            })
            .collect();
        Ok((read, written))
    }

    /// `role.updated` for each role a permission change rewrote, shown with the permissions
    /// as they will be (`added` is the permission a creation adds).
    async fn role_events(
        &self,
        roles: &[OrgRoleRow],
        added: Option<&OrgPermissionRow>,
    ) -> Result<Vec<latchkey_store::OutboxEvent>> {
        let mut known = self.store.list_org_permissions().await?;
        known.extend(added.cloned());
        Ok(roles.iter().map(|r| self.event("role.updated", stored_role(r, &known))).collect())
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
        self.retrying(|| self.update_permission_once(id, &input)).await
    }

    async fn update_permission_once(&self, id: &str, input: &PermissionInput) -> Result<OrgPermissionRow> {
        let before = self.permission_row(id).await?;
        Self::system_fixed(&before)?;
        let mut p = before.clone();
        if input.name.is_some() {
            p.name = required(input.name.as_ref(), "name")?;
        }
        if let Some(description) = &input.description {
            p.description = description.clone();
        }
        // The key it has is accepted as it is (a configured one may have another form).
        if let Some(key) = input.key.as_deref().filter(|k| k.trim() != before.key) {
            p.key = permission_key(key)?;
        }
        p.updated_at = self.now();
        let (old, new) = (before.key.clone(), p.key.clone());
        let (read_roles, roles) = if old == new {
            (Vec::new(), Vec::new())
        } else {
            let names = |r: &OrgRoleRow| role_permission_keys(r).contains(&old);
            self.roles_rewritten(names, |keys| keys.iter_mut().filter(|k| **k == old).for_each(|k| *k = new.clone()))
                .await?
        };
        let mut events = vec![self.event("permission.updated", permission(&p))];
        events.extend(self.role_events(&roles, Some(&p)).await?);
        let change = RoleChange {
            read_roles,
            read_permissions: vec![before],
            permissions: vec![p.clone()],
            roles,
            ..Default::default()
        };
        self.apply(change, events).await?;
        Ok(p)
    }

    pub async fn delete_permission(&self, _operator: &Operator, id: &str) -> Result<()> {
        self.retrying(|| async {
            let p = self.permission_row(id).await?;
            Self::system_fixed(&p)?;
            let names = |r: &OrgRoleRow| role_permission_keys(r).contains(&p.key);
            let (read_roles, roles) = self.roles_rewritten(names, |keys| keys.retain(|k| *k != p.key)).await?;
            let mut events =
                vec![self.event("permission.deleted", json!({"object": "permission", "id": p.id, "deleted": true}))];
            events.extend(self.role_events(&roles, None).await?);
            let change = RoleChange {
                read_roles,
                removed_permission: Some(p.id.clone()),
                read_permissions: vec![p],
                roles,
                ..Default::default()
            };
            self.apply(change, events).await
        })
        .await
    }
}
