//! Memberships: one role per member, listing, adding, changing roles and metadata, removing
//! (an organization always keeps an admin, and never grows past its member limit).

use std::collections::HashMap;

use latchkey_core::authz::{with_org_prefix, ADMIN_ROLE, MEMBERSHIPS_MANAGE, MEMBERSHIPS_READ};
use latchkey_core::ids::IdKind;
use latchkey_store::{
    MembershipQuery, MembershipRow, OrgInvitationRow, OrganizationRow, StoreError, UserQuery, UserRecord,
};

use super::OrgService;
use crate::admin::MetadataChange;
use crate::authority::{OperatorOrg, OrgAccess};
use crate::error::{Result, ServiceError};
use crate::params::{merge_metadata, paging};

use super::{last_admin, member_not_found, membership_quota};

impl OrgService {
    pub async fn list_memberships(&self, mut query: MembershipQuery) -> Result<(Vec<MembershipRow>, i64)> {
        (query.limit, query.offset) = paging(query.limit, query.offset)?;
        query.roles = query.roles.iter().map(|r| with_org_prefix(r)).collect();
        Ok(self.store.list_memberships(&query).await?)
    }

    /// The organization's members (optionally with one of `roles`), for whoever may read them.
    pub async fn org_members(
        &self,
        access: &dyn OrgAccess,
        roles: Vec<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<MembershipRow>, i64)> {
        let org = self.organization(access.allow(MEMBERSHIPS_READ)?).await?;
        let query = MembershipQuery { organization_id: Some(org.id), roles, limit, offset, ..Default::default() };
        self.list_memberships(query).await
    }

    /// The users behind memberships, by id (one query).
    pub async fn member_users(&self, memberships: &[MembershipRow]) -> Result<HashMap<String, UserRecord>> {
        self.users_by_id(memberships.iter().map(|m| m.user_id.clone()).collect()).await
    }

    /// The users who sent invitations, by id (one query).
    pub async fn inviters(&self, invitations: &[OrgInvitationRow]) -> Result<HashMap<String, UserRecord>> {
        self.users_by_id(invitations.iter().filter_map(|i| i.inviter_user_id.clone()).collect()).await
    }

    async fn users_by_id(&self, mut ids: Vec<String>) -> Result<HashMap<String, UserRecord>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        ids.sort();
        ids.dedup();
        let query = UserQuery { limit: ids.len() as i64, user_ids: ids, ..Default::default() };
        Ok(self.store.query_users(&query).await?.into_iter().map(|u| (u.user.id.clone(), u)).collect())
    }

    /// The user's memberships alone (what sync needs to know the spaces a user may reach).
    pub(crate) async fn memberships_of_user(&self, user_id: &str) -> Result<Vec<MembershipRow>> {
        Ok(self.store.memberships_of_user(user_id).await?)
    }

    /// The user's memberships with their organizations, oldest first.
    pub async fn user_organizations(&self, user_id: &str) -> Result<Vec<(MembershipRow, OrganizationRow)>> {
        Ok(self.store.organizations_of_user(user_id).await?)
    }

    pub async fn membership(&self, org_id: &str, user_id: &str) -> Result<MembershipRow> {
        self.store.get_membership(org_id, user_id).await?.ok_or_else(member_not_found)
    }

    pub(super) fn new_membership(&self, org_id: &str, user_id: &str, role: &str) -> MembershipRow {
        let now = self.now();
        MembershipRow {
            id: self.new_id(IdKind::Membership),
            organization_id: org_id.to_owned(),
            user_id: user_id.to_owned(),
            role: role.to_owned(),
            public_metadata: "{}".into(),
            private_metadata: "{}".into(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The operator adds a member directly; members join by invitation.
    pub async fn add_member(&self, access: &OperatorOrg, user_id: &str, role: Option<&str>) -> Result<MembershipRow> {
        let org = self.organization(access.allow(MEMBERSHIPS_MANAGE)?).await?;
        let role = match role {
            Some(r) => self.role_param(r).await?,
            None => with_org_prefix(&self.config.organizations.default_role),
        };
        self.user(user_id)
            .await
            .map_err(|_| ServiceError::unprocessable("resource_not_found", "user_id names no user").param("user_id"))?;
        let already = || {
            ServiceError::unprocessable(
                "already_a_member_in_organization",
                "This user is already a member of the organization.",
            )
            .param("user_id")
        };
        // Asked first so that a member of a full organization hears the true reason; the
        // unique index still decides between racing requests.
        if self.store.get_membership(&org.id, user_id).await?.is_some() {
            return Err(already());
        }
        let m = self.new_membership(&org.id, user_id, &role);
        let event = self.membership_event("organizationMembership.created", &m, &org).await?;
        match self.emitting(vec![event]).insert_membership(&m, org.max_allowed_memberships).await {
            Ok(()) => Ok(m),
            Err(StoreError::Conflict(c)) if c == "membership_limit" => Err(membership_quota()),
            Err(StoreError::Conflict(_)) => Err(already()),
            Err(StoreError::NotFound) => Err(ServiceError::not_found("Organization")),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_member_role(&self, access: &dyn OrgAccess, user_id: &str, role: &str) -> Result<MembershipRow> {
        let org = self.organization(access.allow(MEMBERSHIPS_MANAGE)?).await?;
        let role = self.role_param(role).await?;
        let mut m = self.membership(&org.id, user_id).await?;
        m.role = role;
        m.updated_at = self.now();
        self.write_membership(&m, &org).await?;
        Ok(m)
    }

    /// Deep-merges the membership's public and private metadata.
    pub async fn update_membership_metadata(
        &self,
        access: &OperatorOrg,
        user_id: &str,
        change: MetadataChange,
    ) -> Result<MembershipRow> {
        let org = self.organization(access.allow(MEMBERSHIPS_MANAGE)?).await?;
        let mut m = self.membership(&org.id, user_id).await?;
        if let Some(v) = &change.public_metadata {
            m.public_metadata = merge_metadata(&m.public_metadata, v, "public_metadata")?;
        }
        if let Some(v) = &change.private_metadata {
            m.private_metadata = merge_metadata(&m.private_metadata, v, "private_metadata")?;
        }
        m.updated_at = self.now();
        self.write_membership(&m, &org).await?;
        Ok(m)
    }

    async fn write_membership(&self, m: &MembershipRow, org: &OrganizationRow) -> Result<()> {
        let event = self.membership_event("organizationMembership.updated", m, org).await?;
        match self.emitting(vec![event]).update_membership(m, ADMIN_ROLE).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(c)) if c == "last_admin" => Err(last_admin()),
            Err(StoreError::NotFound) => Err(member_not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a member (the last admin of an organization with other members stays).
    pub async fn remove_member(&self, access: &dyn OrgAccess, user_id: &str) -> Result<MembershipRow> {
        self.delete_membership(access.allow(MEMBERSHIPS_MANAGE)?, user_id).await
    }

    /// Removes the membership, whoever asked (a manager, the operator, the member leaving).
    pub(super) async fn delete_membership(&self, org_id: &str, user_id: &str) -> Result<MembershipRow> {
        let org = self.organization(org_id).await?;
        let m = self.membership(&org.id, user_id).await?;
        let event = self.membership_event("organizationMembership.deleted", &m, &org).await?;
        match self.emitting(vec![event]).delete_membership(&org.id, user_id, ADMIN_ROLE).await {
            Ok(true) => Ok(m),
            Ok(false) => Err(member_not_found()),
            Err(StoreError::Conflict(c)) if c == "last_admin" => Err(last_admin()),
            Err(e) => Err(e.into()),
        }
    }
}
