//! `[organizations]` in the configuration, and the instance's roles it defines.

use latchkey_core::authz::{self, with_org_prefix, Role, ADMIN_ROLE};
use serde::{Deserialize, Serialize};

/// `[organizations]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrganizationConfig {
    pub enabled: bool,
    /// Members a new organization may have; 0 means no limit.
    pub max_allowed_memberships: i64,
    /// Whether admins may delete their organization (per organization, this is its default).
    pub admin_delete_enabled: bool,
    /// Organizations one user may create; 0 means no limit (a user's own limit wins).
    pub create_limit_per_user: i64,
    /// The role of whoever creates an organization.
    pub creator_role: String,
    /// The role invitations and new members get unless one is given.
    pub default_role: String,
    pub invitation_expiry_days: i64,
    /// The app's own permissions (`org:<feature>:<action>`); `org:admin` holds them all.
    pub permissions: Vec<String>,
    pub roles: Vec<RoleConfig>,
    /// Also put the active organization in session tokens as Clerk's v1 claims (`org_id`,
    /// `org_slug`, `org_role`, `org_permissions`), for apps on `@clerk/backend` 1.x
    /// (`@clerk/nextjs` 5, `@clerk/clerk-sdk-node` 5), which read no other (docs/clerk-sdks.md,
    /// "Older SDK generations"). Off by default: the tokens grow by the permission list.
    pub v1_token_claims: bool,
}

impl Default for OrganizationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_allowed_memberships: 0,
            admin_delete_enabled: true,
            create_limit_per_user: 0,
            creator_role: ADMIN_ROLE.into(),
            default_role: authz::MEMBER_ROLE.into(),
            invitation_expiry_days: 30,
            permissions: Vec::new(),
            roles: Vec::new(),
            v1_token_claims: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RoleConfig {
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

impl OrganizationConfig {
    /// The instance's roles; an error names what is wrong with the configuration.
    pub fn roles(&self) -> std::result::Result<Vec<Role>, String> {
        let specs: Vec<authz::RoleSpec> = self
            .roles
            .iter()
            .map(|r| authz::RoleSpec {
                key: r.key.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                permissions: r.permissions.clone(),
            })
            .collect();
        let roles = authz::instance_roles(&self.permissions, &specs)?;
        for (what, key) in [("creator_role", &self.creator_role), ("default_role", &self.default_role)] {
            if !roles.iter().any(|r| r.key == with_org_prefix(key)) {
                return Err(format!("organizations.{what} {key:?} is not a role of this instance"));
            }
        }
        if !(1..=365).contains(&self.invitation_expiry_days) {
            return Err("organizations.invitation_expiry_days must be between 1 and 365".into());
        }
        Ok(roles)
    }
}
