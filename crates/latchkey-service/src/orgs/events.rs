//! The webhook events of organizations, memberships and invitations, as the Backend API shows
//! them.

use latchkey_store::OutboxEvent;

use super::OrgService;
use crate::error::Result;

/// Events of organizations, memberships and invitations.
impl OrgService {
    pub(crate) fn organization_event(&self, event_type: &str, org: &latchkey_store::OrganizationRow) -> OutboxEvent {
        let data = crate::resources::organization(&self.avatar(), org, None, crate::resources::Audience::Backend);
        self.event(event_type, data)
    }

    pub(crate) async fn membership_event(
        &self,
        event_type: &str,
        m: &latchkey_store::MembershipRow,
        org: &latchkey_store::OrganizationRow,
    ) -> Result<OutboxEvent> {
        let user = self.store.get_user(&m.user_id).await?;
        let data = crate::resources::membership(
            self,
            &self.avatar(),
            m,
            Some(org),
            None,
            user.as_ref(),
            crate::resources::Audience::Backend,
        );
        Ok(self.event(event_type, data))
    }

    pub(crate) async fn invitation_event(
        &self,
        event_type: &str,
        inv: &latchkey_store::OrgInvitationRow,
    ) -> Result<OutboxEvent> {
        let inviter = match &inv.inviter_user_id {
            Some(id) => self.store.get_user(id).await?,
            None => None,
        };
        let data =
            crate::resources::org_invitation(self, inv, None, inviter.as_ref(), crate::resources::Audience::Backend);
        Ok(self.event(event_type, data))
    }
}
