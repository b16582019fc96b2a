//! The instance's roles: their permissions and names, role parameters, and the roles written
//! to the store at start.

use latchkey_core::authz::{role_permissions, with_org_prefix, Role};

use super::OrgService;
use crate::error::{Result, ServiceError};

impl OrgService {
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The permissions a role grants, system permissions included.
    pub fn permissions_of(&self, role: &str) -> Vec<String> {
        role_permissions(&self.roles, role).to_vec()
    }

    pub fn role_name(&self, role: &str) -> String {
        self.roles
            .iter()
            .find(|r| r.key == role)
            .map_or_else(|| role.trim_start_matches("org:").to_owned(), |r| r.name.clone())
    }

    /// A role named with or without `org:` that the instance defines.
    pub fn role_param(&self, role: &str) -> Result<String> {
        let key = with_org_prefix(role.trim());
        if self.roles.iter().any(|r| r.key == key) {
            Ok(key)
        } else {
            Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                format!("{role:?} is not a role of this instance"),
            )
            .long(format!(
                "The roles are: {}.",
                self.roles.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .param("role"))
        }
    }

    /// Writes the instance's roles to the store, so the database describes itself.
    /// Writes the configured roles; a role that is new or changed since the last start is
    /// announced (`role.created`, `role.updated`, and `permission.created` for permissions
    /// no stored role had).
    pub async fn seed_roles(&self) -> Result<()> {
        let now = self.now();
        let stored = self.store.list_org_roles().await?;
        let known: std::collections::HashSet<String> = stored
            .iter()
            .flat_map(|r| serde_json::from_str::<Vec<String>>(&r.permissions).unwrap_or_default())
            .collect();
        let mut announced = std::collections::HashSet::new();
        for r in &self.roles {
            let permissions = serde_json::to_string(&r.permissions).unwrap_or_else(|_| "[]".into());
            let before = stored.iter().find(|s| s.key == r.key);
            let mut events = Vec::new();
            match before {
                None => events.push(self.event("role.created", crate::resources::role(r))),
                Some(b) if b.name != r.name || b.description != r.description || b.permissions != permissions => {
                    events.push(self.event("role.updated", crate::resources::role(r)))
                }
                Some(_) => {}
            }
            for p in r.permissions.iter().filter(|p| !known.contains(*p) && announced.insert((*p).clone())) {
                let kind = if latchkey_core::authz::is_system_permission(p) { "system" } else { "user" };
                events.push(self.event(
                    "permission.created",
                    serde_json::json!({"object": "permission", "id": format!("perm_{}", p.trim_start_matches("org:").replace(':', "_")), "key": p, "name": p, "description": "", "type": kind}),
                ));
            }
            let row = latchkey_store::OrgRoleRow {
                key: r.key.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                permissions,
                created_at: before.map_or(now, |b| b.created_at),
                updated_at: now,
            };
            if events.is_empty() {
                self.store.upsert_org_role(&row).await?;
            } else {
                self.emitting(events).upsert_org_role(&row).await?;
            }
        }
        Ok(())
    }
}

/// What the organization views need of the instance (crate::resources::OrgLens).
impl crate::resources::OrgLens for OrgService {
    fn role_name(&self, role: &str) -> String {
        OrgService::role_name(self, role)
    }

    fn permissions_of(&self, role: &str) -> Vec<String> {
        OrgService::permissions_of(self, role)
    }

    fn invitation_status<'a>(&self, inv: &'a latchkey_store::OrgInvitationRow) -> &'a str {
        self.org_invitation_status(inv)
    }

    fn avatar(&self) -> String {
        OrgService::avatar(self)
    }
}
