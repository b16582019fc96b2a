//! The caller's own organizations: their membership as an [`OrgActor`] with what it allows,
//! and creating or leaving an organization themselves.

use latchkey_core::authz::{has, AuthState, Check};
use latchkey_store::{MembershipRow, OrgQuery, OrganizationRow};

use crate::error::{ErrorKind, Result, ServiceError};
use crate::Services;

use super::NewOrganization;

/// The caller's own membership of an organization, and what it allows.
#[derive(Debug, Clone)]
pub struct OrgActor {
    pub user_id: String,
    pub org: OrganizationRow,
    pub membership: MembershipRow,
    /// With the system permissions, which tokens leave out but the server checks.
    pub permissions: Vec<String>,
}

impl OrgActor {
    /// `has({permission})` for this member in this organization.
    pub fn can(&self, permission: &str) -> bool {
        let state = AuthState {
            user_id: Some(self.user_id.clone()),
            org_id: Some(self.org.id.clone()),
            org_role: Some(self.membership.role.clone()),
            org_permissions: self.permissions.clone(),
            factor_verification_age: None,
        };
        has(&state, &[Check::Permission(permission.to_owned())])
    }

    /// Refuses with 403 unless the member holds `permission`.
    pub fn require(&self, permission: &str) -> Result<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ServiceError::new(
                ErrorKind::Forbidden,
                "authorization_invalid",
                "You are not allowed to do this in this organization.",
            )
            .long(format!("This needs the {permission} permission, which your role does not have.")))
        }
    }
}

impl Services {
    /// The caller's membership of an organization; an organization they are not a member of
    /// is reported as not found, whether it exists or not.
    pub async fn org_actor(&self, user_id: &str, org_id: &str) -> Result<OrgActor> {
        let not_found = || ServiceError::not_found("Organization");
        let org = self.organization(org_id).await.map_err(|_| not_found())?;
        let membership = self.store.get_membership(&org.id, user_id).await?.ok_or_else(not_found)?;
        let permissions = self.permissions_of(&membership.role);
        Ok(OrgActor { user_id: user_id.to_owned(), org, membership, permissions })
    }

    /// Whether the user may create an organization now: the instance allows it, the user's
    /// own setting does, and they are under their limit.
    pub async fn may_create_organization(&self, user_id: &str) -> Result<()> {
        let user = self.user(user_id).await?.user;
        if !self.config.organizations.enabled || !user.create_organization_enabled {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "organization_creation_not_allowed",
                "You are not allowed to create organizations.",
            ));
        }
        let limit = user.create_organizations_limit.unwrap_or(self.config.organizations.create_limit_per_user);
        if limit > 0 {
            let mine = OrgQuery { created_by: Some(user_id.to_owned()), limit: 1, ..Default::default() };
            if self.store.list_organizations(&mine).await?.1 >= limit {
                return Err(ServiceError::new(
                    ErrorKind::Forbidden,
                    "organization_quota_exceeded",
                    format!("You can create at most {limit} organizations."),
                ));
            }
        }
        Ok(())
    }

    /// An organization created by a signed-in user, who becomes its admin.
    pub async fn create_own_organization(
        &self,
        user_id: &str,
        name: &str,
        slug: Option<String>,
    ) -> Result<OrganizationRow> {
        self.may_create_organization(user_id).await?;
        self.create_organization(NewOrganization {
            name: name.to_owned(),
            slug,
            created_by: Some(user_id.to_owned()),
            ..Default::default()
        })
        .await
    }

    /// Leaves an organization (the last admin of an organization with others in it may not).
    pub async fn leave_organization(&self, user_id: &str, org_id: &str) -> Result<MembershipRow> {
        let actor = self.org_actor(user_id, org_id).await?;
        self.remove_member(&actor.org.id, user_id).await
    }
}
