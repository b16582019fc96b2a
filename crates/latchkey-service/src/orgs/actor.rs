//! The caller's own organizations: their membership as an [`OrgActor`] (the proof of what it
//! allows, crate::authority), and creating or leaving an organization themselves.

use latchkey_core::authz::role_permissions;
use latchkey_store::{MembershipRow, OrgQuery, OrganizationRow};

use super::OrgService;
use crate::authority::{OrgActor, SignedIn};
use crate::error::{ErrorKind, Result, ServiceError};

use super::NewOrganization;

impl OrgService {
    /// The caller's membership of an organization; an organization they are not a member of
    /// is reported as not found, whether it exists or not.
    pub async fn org_actor(&self, who: &SignedIn, org_id: &str) -> Result<OrgActor> {
        self.member_actor(who.user_id(), org_id).await
    }

    /// The user's membership of an organization, for the session whose user this is.
    pub(crate) async fn member_actor(&self, user_id: &str, org_id: &str) -> Result<OrgActor> {
        let not_found = || ServiceError::not_found("Organization");
        let org = self.organization(org_id).await.map_err(|_| not_found())?;
        let membership = self.store.get_membership(&org.id, user_id).await?.ok_or_else(not_found)?;
        let permissions = role_permissions(&self.current_roles().await?, &membership.role).to_vec();
        Ok(OrgActor::new(user_id.to_owned(), org, membership, permissions))
    }

    /// The id of an organization (named by id or slug) the user belongs to, or `None` when
    /// none is named; one they do not belong to is refused naming `param`.
    pub(crate) async fn member_org_id(
        &self,
        user_id: &str,
        org: Option<&str>,
        param: &'static str,
    ) -> Result<Option<String>> {
        let Some(org) = org else {
            return Ok(None);
        };
        let actor = self.member_actor(user_id, org).await.map_err(|e| e.param(param))?;
        Ok(Some(actor.org().id.clone()))
    }

    /// Whether the user may create an organization now: the instance allows it, the user's
    /// own setting does, and they are under their limit.
    pub async fn may_create_organization(&self, who: &SignedIn) -> Result<()> {
        let user_id = who.user_id();
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
        who: &SignedIn,
        name: &str,
        slug: Option<String>,
    ) -> Result<OrganizationRow> {
        self.may_create_organization(who).await?;
        self.new_organization(NewOrganization {
            name: name.to_owned(),
            slug,
            created_by: Some(who.user_id().to_owned()),
            ..Default::default()
        })
        .await
    }

    /// Leaves an organization (the last admin of an organization with others in it may not).
    pub async fn leave_organization(&self, actor: &OrgActor) -> Result<MembershipRow> {
        self.delete_membership(&actor.org().id, actor.user_id()).await
    }
}
