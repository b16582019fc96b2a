//! The instance's roles: a snapshot every display reads, read again from the store wherever a
//! decision must see the latest change (every session token, every check of a member's
//! permissions, every role given to a member), and seeded from configuration at start until
//! roles are managed at run time (docs/organization-roles.md).

use std::sync::{Arc, RwLock};

use latchkey_core::authz::{is_system_permission, role_permissions, with_org_prefix, Role, SYSTEM_PERMISSIONS};
use latchkey_store::{seeded_role_id, OrgPermissionRow, OrgRoleRow};

use super::OrgService;
use crate::error::{Result, ServiceError};
use crate::resources::{role_permission_keys, seeded_permission_id};
use crate::ServiceConfig;

/// The roles as last read, shared by every request of this process, and the configured ones.
pub(crate) struct RoleSnapshot {
    current: RwLock<Arc<Vec<Role>>>,
    configured: Vec<Role>,
}

impl RoleSnapshot {
    /// Starts from the configured roles (the binary refuses invalid ones before it gets here;
    /// should one slip through, the default roles are the safe choice).
    pub(crate) fn configured(config: &ServiceConfig) -> Self {
        let configured = config
            .organizations
            .roles()
            .or_else(|_| latchkey_core::authz::instance_roles(&[], &[]))
            .unwrap_or_default();
        Self { current: RwLock::new(Arc::new(configured.clone())), configured }
    }

    fn get(&self) -> Arc<Vec<Role>> {
        match self.current.read() {
            Ok(roles) => roles.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, roles: Vec<Role>) -> Arc<Vec<Role>> {
        let roles = Arc::new(roles);
        match self.current.write() {
            Ok(mut current) => *current = roles.clone(),
            Err(poisoned) => *poisoned.into_inner() = roles.clone(),
        }
        roles
    }

    /// Where a role stands in lists: the configured ones in their order, then the others
    /// oldest first (the store lists them so).
    pub(super) fn rank(&self, key: &str) -> usize {
        self.configured.iter().position(|r| r.key == key).unwrap_or(usize::MAX)
    }
}

/// Clerk's names for its system permissions.
fn permission_name(key: &str) -> String {
    let name = match key {
        "org:sys_profile:manage" => "Manage organization",
        "org:sys_profile:delete" => "Delete organization",
        "org:sys_memberships:read" => "Read members",
        "org:sys_memberships:manage" => "Manage members",
        "org:sys_domains:read" => "Read domains",
        "org:sys_domains:manage" => "Manage domains",
        "org:sys_billing:read" => "Read billing",
        "org:sys_billing:manage" => "Manage billing",
        other => other,
    };
    name.to_owned()
}

pub(crate) fn role_of_row(r: &OrgRoleRow) -> Role {
    Role {
        key: r.key.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        permissions: role_permission_keys(r),
    }
}

impl OrgService {
    /// The roles as last read (for what is shown, not for what is decided).
    pub fn roles(&self) -> Arc<Vec<Role>> {
        self.roles.get()
    }

    /// The roles as the store holds them now, kept as the snapshot. A store that holds no role
    /// has not been seeded yet (`org:admin` cannot be removed): the snapshot stays.
    pub async fn current_roles(&self) -> Result<Arc<Vec<Role>>> {
        let mut rows = self.store.list_org_roles().await?;
        if rows.is_empty() {
            return Ok(self.roles.get());
        }
        rows.sort_by_key(|r| self.roles.rank(&r.key));
        Ok(self.roles.set(rows.iter().map(role_of_row).collect()))
    }

    /// The permissions a role grants, system permissions included (as last read).
    pub fn permissions_of(&self, role: &str) -> Vec<String> {
        role_permissions(&self.roles.get(), role).to_vec()
    }

    pub fn role_name(&self, role: &str) -> String {
        self.roles
            .get()
            .iter()
            .find(|r| r.key == role)
            .map_or_else(|| role.trim_start_matches("org:").to_owned(), |r| r.name.clone())
    }

    /// A role named with or without `org:` that the instance has now.
    pub async fn role_param(&self, role: &str) -> Result<String> {
        let key = with_org_prefix(role.trim());
        let roles = self.current_roles().await?;
        if roles.iter().any(|r| r.key == key) {
            Ok(key)
        } else {
            Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                format!("{role:?} is not a role of this instance"),
            )
            .long(format!("The roles are: {}.", roles.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", ")))
            .param("role"))
        }
    }

    /// Writes Clerk's system permissions and, until roles are managed at run time, the
    /// configured roles and their permissions, so the database describes itself. A role that
    /// is new or changed since the last start is announced (`role.created`, `role.updated`, and
    /// `permission.created` for permissions no stored role had); one that configuration no
    /// longer defines is removed (`role.deleted`): its members keep the key and hold no
    /// permission, as before roles were stored. Only `latchkey serve` seeds (a command run
    /// elsewhere with another configuration must not rewrite a fleet's roles).
    pub async fn seed_roles(&self) -> Result<()> {
        let managed = self.store.roles_managed_at_run_time().await?;
        self.seed_permissions(managed).await?;
        if managed || !self.seed_configured_roles().await? {
            tracing::info!(
                "organization roles are managed at run time (Backend API): [organizations] roles seed only a fresh instance"
            );
            self.check_configured_keys().await?;
        }
        self.current_roles().await?;
        Ok(())
    }

    /// Roles managed at run time may lack the roles configuration names for creators and new
    /// members: they would then hold no permission, which is safe but surprising.
    async fn check_configured_keys(&self) -> Result<()> {
        let stored = self.store.list_org_roles().await?;
        let organizations = &self.config.organizations;
        for (what, key) in
            [("creator_role", &organizations.creator_role), ("default_role", &organizations.default_role)]
        {
            let key = with_org_prefix(key);
            if !stored.iter().any(|r| r.key == key) {
                tracing::warn!(
                    "[organizations] {what} is {key}, which the roles managed at run time do not have: members given it hold no permission"
                );
            }
        }
        Ok(())
    }

    async fn seed_permissions(&self, managed: bool) -> Result<()> {
        let mut keys: Vec<String> = SYSTEM_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect();
        if !managed {
            for p in self.roles.configured.iter().flat_map(|r| &r.permissions) {
                if !keys.contains(p) {
                    keys.push(p.clone());
                }
            }
        }
        for key in keys {
            let row = self.seeded_permission(&key);
            if let Err(latchkey_store::StoreError::Conflict(_)) = self.store.seed_org_permission(&row).await {
                // Two keys can give one seeded id (`org:a_b:c`, `org:a:b_c`): the second gets its own.
                let fresh = OrgPermissionRow { id: self.new_id(latchkey_core::ids::IdKind::Permission), ..row };
                self.store.seed_org_permission(&fresh).await?;
            }
        }
        Ok(())
    }

    fn seeded_permission(&self, key: &str) -> OrgPermissionRow {
        let now = self.now();
        OrgPermissionRow {
            id: seeded_permission_id(key),
            name: permission_name(key),
            key: key.to_owned(),
            description: String::new(),
            kind: if is_system_permission(key) { "system" } else { "user" }.into(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Writes the configured roles that are new or changed; false when roles turned out to be
    /// managed at run time (nothing written).
    async fn seed_configured_roles(&self) -> Result<bool> {
        let now = self.now();
        let stored = self.store.list_org_roles().await?;
        let known: std::collections::HashSet<String> = stored.iter().flat_map(role_permission_keys).collect();
        let mut announced = std::collections::HashSet::new();
        let (mut rows, mut events) = (Vec::new(), Vec::new());
        for r in &self.roles.configured {
            let permissions = serde_json::to_string(&r.permissions).unwrap_or_else(|_| "[]".into());
            let before = stored.iter().find(|s| s.key == r.key);
            let changed = before
                .is_none_or(|b| b.name != r.name || b.description != r.description || b.permissions != permissions);
            match before {
                None => events.push(self.event("role.created", crate::resources::role(r))),
                Some(_) if changed => events.push(self.event("role.updated", crate::resources::role(r))),
                // Unchanged, and with its id (a row an older binary wrote gets it now).
                Some(b) if b.id.is_some() => continue,
                Some(_) => {}
            }
            for p in r.permissions.iter().filter(|p| !known.contains(*p) && announced.insert((*p).clone())) {
                events.push(self.event("permission.created", crate::resources::permission(&self.seeded_permission(p))));
            }
            rows.push(OrgRoleRow {
                key: r.key.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                permissions,
                created_at: before.map_or(now, |b| b.created_at),
                updated_at: if changed { now } else { before.map_or(now, |b| b.updated_at) },
                id: Some(before.map_or_else(|| seeded_role_id(&r.key), |b| b.role_id())),
            });
        }
        let mut removed = Vec::new();
        for gone in stored.iter().filter(|s| self.roles.rank(&s.key) == usize::MAX) {
            events.push(
                self.event(
                    "role.deleted",
                    serde_json::json!({"object": "role", "id": gone.role_id(), "deleted": true}),
                ),
            );
            removed.push(gone.key.clone());
        }
        if rows.is_empty() && removed.is_empty() {
            return Ok(!self.store.roles_managed_at_run_time().await?);
        }
        Ok(self.emitting(events).seed_roles(&rows, &removed).await?)
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
