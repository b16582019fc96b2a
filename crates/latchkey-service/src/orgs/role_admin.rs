//! Roles changed at run time through the Backend API's `/v1/organization_roles`, in Clerk's
//! shapes (docs/organization-roles.md; permissions are in permission_admin.rs). Every
//! change is one transaction with its webhook events; the next session token of every member
//! holding the role shows it, on every instance (tokens read the roles afresh, roles.rs).
//!
//! latchkey's own rules on top of Clerk's: `org:admin` holds every permission (a new permission
//! is given to it, none is taken from it, it is never removed and its key never changes), and
//! the configured `creator_role` and `default_role` keep their keys and are never removed.

use latchkey_core::authz::{with_org_prefix, ADMIN_ROLE};
use latchkey_core::ids::IdKind;
use latchkey_store::{OrgPermissionRow, OrgRoleRow, RoleChange, StoreError};
use serde_json::{json, Value};

use super::OrgService;
use crate::authority::Operator;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::resources::{role_permission_keys, stored_role};

/// A role to create (`name` and `key` required) or the fields of one to change.
#[derive(Debug, Clone, Default)]
pub struct RoleInput {
    pub name: Option<String>,
    pub key: Option<String>,
    pub description: Option<String>,
    /// Permission ids (or keys); replaces the role's permissions when given.
    pub permissions: Option<Vec<String>>,
}

/// The Backend API's list parameters: `query` matches an id exactly or a name or key in part;
/// `order_by` is `created_at`, `name` or `key`, with `+` or `-` (default `-created_at`).
#[derive(Debug, Clone, Default)]
pub struct RoleListQuery {
    pub query: Option<String>,
    pub order_by: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// A role with the permission rows it is shown with.
#[derive(Debug, Clone)]
pub struct RoleDetail {
    pub role: OrgRoleRow,
    pub known: Vec<OrgPermissionRow>,
}

impl RoleDetail {
    pub fn view(&self) -> Value {
        stored_role(&self.role, &self.known)
    }
}

pub(super) fn invalid(param: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::unprocessable("form_param_format_invalid", message).param(param)
}

pub(super) fn required(value: Option<&String>, param: &'static str) -> Result<String> {
    let value = value.map(|v| v.trim().to_owned()).unwrap_or_default();
    if value.is_empty() {
        return Err(ServiceError::unprocessable("form_param_missing", format!("{param} must be given.")).param(param));
    }
    if value.chars().count() > 256 {
        return Err(ServiceError::unprocessable(
            "form_param_exceeds_allowed_size",
            format!("{param} must be at most 256 characters long."),
        )
        .param(param));
    }
    Ok(value)
}

/// Clerk's role keys: `org:` and lowercase letters, digits and underscores.
fn role_key(key: &str) -> Result<String> {
    let key = key.trim();
    let name = key.strip_prefix("org:").unwrap_or_default();
    let valid = !name.is_empty()
        && key.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(key.to_owned())
    } else {
        Err(invalid("key", "Role keys start with org: followed by lowercase letters, digits and underscores."))
    }
}

/// A role's permission keys as stored (a JSON array).
pub(super) fn permission_list(keys: &[String]) -> String {
    serde_json::to_string(keys).unwrap_or_else(|_| "[]".into())
}

/// The code of a change that found a row changed since it read it (retried, then 409).
pub(super) const CHANGED_MEANWHILE: &str = "roles_changed_concurrently";

pub(super) fn conflict(e: StoreError) -> ServiceError {
    match e {
        StoreError::Stale => ServiceError::new(
            ErrorKind::Conflict,
            CHANGED_MEANWHILE,
            "The roles changed at the same time; try again.",
        ),
        StoreError::Conflict(rule) if rule == "role_in_use" => ServiceError::unprocessable(
            "role_in_use",
            "Members or pending invitations hold this role: give them another role first.",
        ),
        StoreError::Conflict(rule) if rule == "role_key_exists" => {
            ServiceError::unprocessable("duplicate_record", "Another role has this key.").param("key")
        }
        StoreError::Conflict(rule) if rule == "role_key_held" => ServiceError::unprocessable(
            "role_key_held",
            "Members or pending invitations still hold this key from a role removed earlier: give them another role first.",
        )
        .param("key"),
        // The unique key of org_permissions, as PostgreSQL (its constraint) and SQLite (its
        // message) name it.
        StoreError::Conflict(what) if what.contains("org_permissions") => {
            ServiceError::unprocessable("duplicate_record", "Another permission has this key.").param("key")
        }
        other => other.into(),
    }
}

/// What the Backend API's role and permission lists filter and sort by.
pub(super) trait Listed {
    fn fields(&self) -> (String, &str, &str, i64);
}

impl Listed for OrgRoleRow {
    fn fields(&self) -> (String, &str, &str, i64) {
        (self.role_id(), &self.name, &self.key, self.created_at)
    }
}

impl Listed for OrgPermissionRow {
    fn fields(&self) -> (String, &str, &str, i64) {
        (self.id.clone(), &self.name, &self.key, self.created_at)
    }
}

/// The items `q.query` selects (an id exactly, a name or key in part, any case), sorted by
/// `q.order_by`, cut to one page; `(page, total)`.
pub(super) fn page<T: Listed>(items: Vec<T>, q: &RoleListQuery) -> Result<(Vec<T>, i64)> {
    let order = q.order_by.as_deref().unwrap_or("-created_at");
    let (descending, by) = match order.strip_prefix('-') {
        Some(by) => (true, by),
        None => (false, order.strip_prefix('+').unwrap_or(order)),
    };
    if !["created_at", "name", "key"].contains(&by) {
        return Err(ServiceError::unprocessable(
            "form_param_value_invalid",
            "order_by must be created_at, name or key, with + or - in front.",
        )
        .param("order_by"));
    }
    let wanted = q.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let lower = wanted.map(str::to_lowercase).unwrap_or_default();
    let mut items: Vec<T> = items
        .into_iter()
        .filter(|item| {
            let (id, name, key, _) = item.fields();
            wanted
                .is_none_or(|q| id == q || name.to_lowercase().contains(&lower) || key.to_lowercase().contains(&lower))
        })
        .collect();
    items.sort_by_cached_key(|item| {
        let (id, name, key, created_at) = item.fields();
        match by {
            "name" => name.to_lowercase(),
            "key" => key.to_owned(),
            // Zero-padded, so that one string order serves every field.
            _ => format!("{created_at:020}{id}"),
        }
    });
    if descending {
        items.reverse();
    }
    let total = items.len() as i64;
    let page = items.into_iter().skip(q.offset.max(0) as usize).take(q.limit.max(0) as usize).collect();
    Ok((page, total))
}

impl OrgService {
    async fn role_row(&self, id: &str) -> Result<OrgRoleRow> {
        let roles = self.store.list_org_roles().await?;
        roles.into_iter().find(|r| r.role_id() == id).ok_or_else(|| ServiceError::not_found("Role"))
    }

    pub(super) async fn permission_row(&self, id: &str) -> Result<OrgPermissionRow> {
        let permissions = self.store.list_org_permissions().await?;
        permissions.into_iter().find(|p| p.id == id).ok_or_else(|| ServiceError::not_found("Permission"))
    }

    async fn detail(&self, role: OrgRoleRow) -> Result<RoleDetail> {
        Ok(RoleDetail { role, known: self.store.list_org_permissions().await? })
    }

    /// One page of the instance's roles, shown whole, and how many the query selects.
    pub async fn list_role_details(&self, q: &RoleListQuery) -> Result<(Vec<RoleDetail>, i64)> {
        let known = self.store.list_org_permissions().await?;
        let (roles, total) = page(self.store.list_org_roles().await?, q)?;
        Ok((roles.into_iter().map(|role| RoleDetail { role, known: known.clone() }).collect(), total))
    }

    /// Every role, as the Frontend API lists them for a role picker.
    pub async fn role_views(&self) -> Result<Vec<Value>> {
        let known = self.store.list_org_permissions().await?;
        let mut rows = self.store.list_org_roles().await?;
        rows.sort_by_key(|r| self.roles.rank(&r.key));
        Ok(rows.iter().map(|r| stored_role(r, &known)).collect())
    }

    pub async fn role_detail(&self, id: &str) -> Result<RoleDetail> {
        let role = self.role_row(id).await?;
        self.detail(role).await
    }

    /// The permissions given by id (or key), each once; an unknown one is refused.
    async fn permissions_named(&self, given: &[String]) -> Result<Vec<OrgPermissionRow>> {
        let known = self.store.list_org_permissions().await?;
        let mut rows: Vec<OrgPermissionRow> = Vec::new();
        for g in given {
            let p = known.iter().find(|p| &p.id == g || &p.key == g).ok_or_else(|| {
                ServiceError::unprocessable(
                    "form_param_value_invalid",
                    format!("{g:?} is not a permission of this instance"),
                )
                .param("permissions")
            })?;
            if !rows.iter().any(|r| r.id == p.id) {
                rows.push(p.clone());
            }
        }
        Ok(rows)
    }

    /// Refuses a change `org:admin` or a configured role may not undergo.
    fn guard_role(&self, role: &OrgRoleRow, new_key: Option<&str>, permissions: Option<&[String]>) -> Result<()> {
        let renamed = new_key.is_some_and(|k| k != role.key);
        if role.key == ADMIN_ROLE {
            let all = role_permission_keys(role);
            let kept = permissions.is_none_or(|p| all.iter().all(|k| p.contains(k)));
            if renamed || !kept {
                return Err(ServiceError::unprocessable(
                    "admin_role_fixed",
                    "org:admin keeps its key and every permission.",
                ));
            }
        }
        if renamed && self.configured_key(&role.key) {
            return Err(ServiceError::unprocessable(
                "role_in_configuration",
                format!(
                    "{} is named by [organizations] creator_role or default_role: change the configuration first.",
                    role.key
                ),
            ));
        }
        Ok(())
    }

    /// Whether configuration names the role for creators or new members.
    fn configured_key(&self, key: &str) -> bool {
        let configured = &self.config.organizations;
        [&configured.creator_role, &configured.default_role].iter().any(|k| with_org_prefix(k) == key)
    }

    /// Writes a change with its events and reads the roles again.
    pub(super) async fn apply(&self, change: RoleChange, events: Vec<latchkey_store::OutboxEvent>) -> Result<()> {
        self.emitting(events).change_roles(&change).await.map_err(conflict)?;
        self.current_roles().await?;
        Ok(())
    }

    /// Runs a change again when another one landed between its read and its write (each try
    /// reads afresh, and each round of racing changes lets at least one through, so up to ten
    /// changes at once all land); after ten tries the caller gets 409.
    pub(super) async fn retrying<T, F, Fut>(&self, mut once: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut tries = 1;
        loop {
            match once().await {
                Err(e) if e.code == CHANGED_MEANWHILE && tries < 10 => tries += 1,
                other => return other,
            }
        }
    }

    pub async fn create_role(&self, _operator: &Operator, input: RoleInput) -> Result<RoleDetail> {
        let name = required(input.name.as_ref(), "name")?;
        let key = role_key(&required(input.key.as_ref(), "key")?)?;
        let id = self.new_id(IdKind::Role);
        self.retrying(|| async {
            let granted = self.permissions_named(input.permissions.as_deref().unwrap_or_default()).await?;
            let now = self.now();
            let role = OrgRoleRow {
                key: key.clone(),
                name: name.clone(),
                description: input.description.clone().unwrap_or_default(),
                permissions: permission_list(&granted.iter().map(|p| p.key.clone()).collect::<Vec<_>>()),
                created_at: now,
                updated_at: now,
                id: Some(id.clone()),
            };
            let detail = self.detail(role).await?;
            let event = self.event("role.created", detail.view());
            let change =
                RoleChange { read_permissions: granted, new_role: Some(detail.role.clone()), ..Default::default() };
            self.apply(change, vec![event]).await?;
            Ok(detail)
        })
        .await
    }

    pub async fn update_role(&self, _operator: &Operator, id: &str, input: RoleInput) -> Result<RoleDetail> {
        self.retrying(|| self.update_role_once(id, &input)).await
    }

    async fn update_role_once(&self, id: &str, input: &RoleInput) -> Result<RoleDetail> {
        let before = self.role_row(id).await?;
        // The key it has is accepted as it is (a configured one may have another form).
        let key = input.key.as_deref().filter(|k| k.trim() != before.key).map(role_key).transpose()?;
        let granted = match &input.permissions {
            Some(given) => Some(self.permissions_named(given).await?),
            None => None,
        };
        let keys = granted.as_ref().map(|g| g.iter().map(|p| p.key.clone()).collect::<Vec<_>>());
        self.guard_role(&before, key.as_deref(), keys.as_deref())?;
        let mut role = before.clone();
        if input.name.is_some() {
            role.name = required(input.name.as_ref(), "name")?;
        }
        if let Some(description) = &input.description {
            role.description = description.clone();
        }
        if let Some(keys) = keys {
            role.permissions = permission_list(&keys);
        }
        if let Some(key) = key {
            role.key = key;
        }
        self.write_role(before, role, granted.unwrap_or_default()).await
    }

    /// Writes a changed role (moving its members along when its key changed), provided the
    /// role and the permissions `granted` are still as read.
    async fn write_role(
        &self,
        before: OrgRoleRow,
        mut role: OrgRoleRow,
        granted: Vec<OrgPermissionRow>,
    ) -> Result<RoleDetail> {
        role.updated_at = self.now();
        let renamed_role = (role.key != before.key).then(|| (before.key.clone(), role.key.clone()));
        let detail = self.detail(role).await?;
        let event = self.event("role.updated", detail.view());
        let change = RoleChange {
            read_roles: vec![before],
            read_permissions: granted,
            roles: vec![detail.role.clone()],
            renamed_role,
            ..Default::default()
        };
        self.apply(change, vec![event]).await?;
        Ok(detail)
    }

    pub async fn delete_role(&self, _operator: &Operator, id: &str) -> Result<()> {
        self.retrying(|| async {
            let role = self.role_row(id).await?;
            if role.key == ADMIN_ROLE || self.configured_key(&role.key) {
                return Err(ServiceError::unprocessable(
                    "role_in_configuration",
                    format!(
                        "{} is org:admin or named by [organizations] creator_role or default_role; it stays.",
                        role.key
                    ),
                ));
            }
            let event = self.event("role.deleted", json!({"object": "role", "id": role.role_id(), "deleted": true}));
            let change =
                RoleChange { removed_role: Some(role.key.clone()), read_roles: vec![role], ..Default::default() };
            self.apply(change, vec![event]).await
        })
        .await
    }

    /// Gives a role one permission (`give`) or takes it away.
    pub async fn grant_permission(
        &self,
        _operator: &Operator,
        role_id: &str,
        permission_id: &str,
        give: bool,
    ) -> Result<RoleDetail> {
        self.retrying(|| async {
            let before = self.role_row(role_id).await?;
            let p = self.permission_row(permission_id).await?;
            let mut keys = role_permission_keys(&before);
            match (give, keys.contains(&p.key)) {
                (true, true) => {
                    return Err(ServiceError::new(
                        ErrorKind::Conflict,
                        "permission_already_assigned",
                        "The role already has this permission.",
                    ))
                }
                (false, false) => {
                    return Err(ServiceError::unprocessable(
                        "permission_not_assigned",
                        "The role does not have this permission.",
                    ))
                }
                (true, false) => keys.push(p.key.clone()),
                (false, true) => keys.retain(|k| k != &p.key),
            }
            self.guard_role(&before, None, Some(&keys))?;
            let role = OrgRoleRow { permissions: permission_list(&keys), ..before.clone() };
            self.write_role(before, role, vec![p]).await
        })
        .await
    }
}
