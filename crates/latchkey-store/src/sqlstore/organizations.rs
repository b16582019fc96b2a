//! Organizations: organizations, memberships (with their limit and last-admin rule),
//! and organization invitations.

use async_trait::async_trait;

use super::base::SqlStore;
use super::shared::{
    all, count_in, delete_space, insert_in, like_contains, lock_organization, update_in, Filter, MEMBERS,
    MEMBERS_WITH_ROLE,
};
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::sql::{SqlDriver, SqlTx};
use crate::store::OrganizationStore;

record!(OrganizationRow in "organizations" {
    id, name, slug, image_url, public_metadata, private_metadata, max_allowed_memberships, admin_delete_enabled,
    created_by, created_at, updated_at,
});
record!(MembershipRow in "organization_memberships" {
    id, organization_id, user_id, role, public_metadata, private_metadata, created_at, updated_at,
});
record!(OrgInvitationRow in "organization_invitations" {
    id, organization_id, email, role, status, public_metadata, private_metadata, inviter_user_id, token_digest,
    expires_at, created_at, updated_at,
});

/// `Conflict("membership_limit")` when the organization (locked by the caller) is full; 0 is
/// no limit.
async fn check_membership_limit(tx: &mut Box<dyn SqlTx>, organization_id: &str, max_allowed: i64) -> Result<()> {
    if max_allowed <= 0 {
        return Ok(());
    }
    if count_in(tx, MEMBERS, &[organization_id.into()]).await? >= max_allowed {
        return Err(StoreError::Conflict("membership_limit".into()));
    }
    Ok(())
}

/// `(organization id, count)` rows of a grouped count.
async fn counts_by_organization<D: SqlDriver>(s: &SqlStore<D>, sql: &str, f: &Filter) -> Result<Vec<(String, i64)>> {
    all(&s.db.read(sql, &f.params).await?, |r| Ok((r.text(0)?, r.int(1)?)))
}

#[async_trait]
impl<D: SqlDriver> OrganizationStore for SqlStore<D> {
    async fn create_organization(&self, org: &OrganizationRow, first: Option<&MembershipRow>) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_in(&mut tx, org).await?;
        if let Some(m) = first {
            insert_in(&mut tx, m).await?;
        }
        tx.commit().await
    }

    async fn get_organization(&self, id: &str) -> Result<Option<OrganizationRow>> {
        self.get(id).await
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<OrganizationRow>> {
        self.find("slug = $1", &[slug.into()]).await
    }

    async fn update_organization(&self, org: &OrganizationRow) -> Result<()> {
        match self.update(org).await? {
            1 => Ok(()),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn delete_organization(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        // Explicit, so the rule holds even where foreign keys are not enforced.
        tx.execute("DELETE FROM organization_invitations WHERE organization_id = $1", &[id.into()]).await?;
        tx.execute("DELETE FROM organization_memberships WHERE organization_id = $1", &[id.into()]).await?;
        delete_space(&mut tx, id).await?;
        let n = tx.execute("DELETE FROM organizations WHERE id = $1", &[id.into()]).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn list_organizations(&self, q: &OrgQuery) -> Result<(Vec<OrganizationRow>, i64)> {
        let mut f = Filter::default();
        f.any_of("id", &q.ids);
        if let Some(creator) = &q.created_by {
            f.equals("created_by", creator);
        }
        if let Some(text) = q.query.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let exact = f.param(text);
            let pattern = f.param(like_contains(&text.to_lowercase()));
            f.push(format!(
                "(id = {exact} OR {} OR {})",
                self.db.ci_like("name", &pattern),
                self.db.ci_like("slug", &pattern)
            ));
        }
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order = match q.order_by {
            OrgOrder::CreatedAt => format!("created_at {dir}, id {dir}"),
            OrgOrder::Name => format!("lower(name) {dir}, id {dir}"),
            OrgOrder::MembersCount => format!(
                "(SELECT COUNT(*) FROM organization_memberships m WHERE m.organization_id = organizations.id) {dir}, \
                 created_at {dir}, id {dir}"
            ),
        };
        self.page(f, &order, q.limit, q.offset).await
    }

    async fn org_counts(&self, ids: &[String], now: i64) -> Result<Vec<(String, OrgCounts)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut f = Filter::default();
        let members_in = f.in_list("organization_id", ids);
        let members_sql = format!(
            "SELECT organization_id, COUNT(*) FROM organization_memberships WHERE {members_in} GROUP BY organization_id"
        );
        let members = counts_by_organization(self, &members_sql, &f).await?;
        let mut g = Filter::default();
        let invites_in = g.in_list("organization_id", ids);
        let now = g.param(now);
        let invites_sql = format!(
            "SELECT organization_id, COUNT(*) FROM organization_invitations WHERE {invites_in} \
             AND status = 'pending' AND expires_at > {now} GROUP BY organization_id"
        );
        let invites = counts_by_organization(self, &invites_sql, &g).await?;
        let count_of = |list: &[(String, i64)], id: &str| list.iter().find(|(o, _)| o == id).map_or(0, |(_, n)| *n);
        Ok(ids
            .iter()
            .map(|id| {
                (id.clone(), OrgCounts { members: count_of(&members, id), pending_invitations: count_of(&invites, id) })
            })
            .collect())
    }

    async fn organizations_of_user(&self, user_id: &str) -> Result<Vec<(MembershipRow, OrganizationRow)>> {
        let memberships = self.memberships_of_user(user_id).await?;
        if memberships.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = memberships.iter().map(|m| m.organization_id.clone()).collect();
        let mut f = Filter::default();
        let filter = f.in_list("id", &ids);
        let orgs: Vec<OrganizationRow> = self.find_all(&filter, &f.params).await?;
        Ok(memberships
            .into_iter()
            .filter_map(|m| {
                let org = orgs.iter().find(|o| o.id == m.organization_id)?.clone();
                Some((m, org))
            })
            .collect())
    }

    async fn count_memberships(&self, organization_id: &str) -> Result<i64> {
        self.count(MEMBERS, &[organization_id.into()]).await
    }

    async fn insert_membership(&self, m: &MembershipRow, max_allowed: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        if !lock_organization(&mut tx, &m.organization_id).await? {
            return Err(StoreError::NotFound);
        }
        check_membership_limit(&mut tx, &m.organization_id, max_allowed).await?;
        insert_in(&mut tx, m).await?;
        tx.commit().await
    }

    async fn get_membership(&self, organization_id: &str, user_id: &str) -> Result<Option<MembershipRow>> {
        self.find("organization_id = $1 AND user_id = $2", &[organization_id.into(), user_id.into()]).await
    }

    async fn list_memberships(&self, q: &MembershipQuery) -> Result<(Vec<MembershipRow>, i64)> {
        let mut f = Filter::default();
        if let Some(org) = &q.organization_id {
            f.equals("organization_id", org);
        }
        f.any_of("user_id", &q.user_ids);
        f.any_of("role", &q.roles);
        let dir = if q.descending { "DESC" } else { "ASC" };
        self.page(f, &format!("created_at {dir}, id {dir}"), q.limit, q.offset).await
    }

    async fn memberships_of_user(&self, user_id: &str) -> Result<Vec<MembershipRow>> {
        self.find_all("user_id = $1 ORDER BY created_at, id", &[user_id.into()]).await
    }

    async fn update_membership(&self, m: &MembershipRow, admin_role: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        lock_organization(&mut tx, &m.organization_id).await?;
        if update_in(&mut tx, m).await? != 1 {
            return Err(StoreError::NotFound);
        }
        if count_in(&mut tx, MEMBERS_WITH_ROLE, &[m.organization_id.clone().into(), admin_role.into()]).await? == 0 {
            return Err(StoreError::Conflict("last_admin".into()));
        }
        tx.commit().await
    }

    async fn delete_membership(&self, organization_id: &str, user_id: &str, admin_role: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        lock_organization(&mut tx, organization_id).await?;
        let n = tx
            .execute(
                "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2",
                &[organization_id.into(), user_id.into()],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        let left = count_in(&mut tx, MEMBERS, &[organization_id.into()]).await?;
        let admins = count_in(&mut tx, MEMBERS_WITH_ROLE, &[organization_id.into(), admin_role.into()]).await?;
        // The last member may leave (the organization is then empty); the last admin of others may not.
        if left > 0 && admins == 0 {
            return Err(StoreError::Conflict("last_admin".into()));
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_org_invitation(&self, invitation: &OrgInvitationRow) -> Result<()> {
        self.insert(invitation).await
    }

    async fn get_org_invitation(&self, id: &str) -> Result<Option<OrgInvitationRow>> {
        self.get(id).await
    }

    async fn update_org_invitation(&self, invitation: &OrgInvitationRow) -> Result<()> {
        self.update(invitation).await.map(|_| ())
    }

    async fn list_org_invitations(
        &self,
        organization_id: &str,
        statuses: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OrgInvitationRow>, i64)> {
        let mut f = Filter::default();
        f.equals("organization_id", organization_id);
        f.any_of("status", statuses);
        self.page(f, "created_at DESC, id DESC", limit, offset).await
    }

    async fn pending_org_invitations_for(&self, email: &str) -> Result<Vec<OrgInvitationRow>> {
        self.find_all("email = $1 AND status = 'pending' ORDER BY created_at, id", &[email.into()]).await
    }

    async fn org_invitation_by_token_digest(&self, digest: &str) -> Result<Option<OrgInvitationRow>> {
        self.find("token_digest = $1", &[digest.into()]).await
    }

    async fn accept_org_invitation(
        &self,
        invitation: &OrgInvitationRow,
        m: &MembershipRow,
        max_allowed: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        if !lock_organization(&mut tx, &invitation.organization_id).await? {
            return Err(StoreError::NotFound);
        }
        let accepted = tx
            .execute(
                "UPDATE organization_invitations SET status = 'accepted', updated_at = $2 \
                 WHERE id = $1 AND status = 'pending'",
                &[invitation.id.clone().into(), m.updated_at.into()],
            )
            .await?;
        if accepted == 0 {
            return Ok(false);
        }
        let already = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1 AND user_id = $2",
            &[m.organization_id.clone().into(), m.user_id.clone().into()],
        )
        .await?;
        if already == 0 {
            check_membership_limit(&mut tx, &m.organization_id, max_allowed).await?;
            insert_in(&mut tx, m).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
