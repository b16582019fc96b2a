//! Organization objects as Clerk's APIs show them (docs/backend-api.md §5,
//! docs/frontend-api.md §10), rendered by
//! `latchkey_service::resources` (shared with webhook payloads), plus the loading of what
//! memberships refer to.

use std::collections::HashMap;

use latchkey_service::resources;
use latchkey_store::{MembershipRow, OrgCounts, OrgInvitationRow, OrganizationRow, UserRecord};
use serde_json::Value;

use crate::error::ApiError;
use crate::AppState;

pub use resources::{deleted_organization, Audience};

pub fn organization(state: &AppState, o: &OrganizationRow, counts: Option<OrgCounts>, who: Audience) -> Value {
    resources::organization(&state.avatar(), o, counts, who)
}

/// Everything needed to render memberships: their organizations (with counts) and users.
#[derive(Default)]
pub struct MembershipContext {
    pub orgs: HashMap<String, OrganizationRow>,
    pub counts: HashMap<String, OrgCounts>,
    pub users: HashMap<String, UserRecord>,
}

impl MembershipContext {
    /// Loads what `memberships` refer to, in three queries whatever their number.
    pub async fn load(state: &AppState, memberships: &[MembershipRow]) -> Result<Self, ApiError> {
        let s = &state.orgs;
        let org_ids: Vec<String> = memberships.iter().map(|m| m.organization_id.clone()).collect();
        Ok(Self {
            orgs: s.organizations_by_id(&org_ids).await?,
            counts: s.organization_counts(&org_ids).await?,
            users: s.member_users(memberships).await?,
        })
    }

    pub fn render(&self, state: &AppState, m: &MembershipRow, who: Audience) -> Value {
        let org = self.orgs.get(&m.organization_id);
        let counts = self.counts.get(&m.organization_id).copied();
        membership(state, m, org, counts, self.users.get(&m.user_id), who)
    }

    pub fn render_all(&self, state: &AppState, ms: &[MembershipRow], who: Audience) -> Vec<Value> {
        ms.iter().map(|m| self.render(state, m, who)).collect()
    }
}

pub fn membership(
    state: &AppState,
    m: &MembershipRow,
    org: Option<&OrganizationRow>,
    counts: Option<OrgCounts>,
    user: Option<&UserRecord>,
    who: Audience,
) -> Value {
    resources::membership(state.orgs.as_ref(), &state.avatar(), m, org, counts, user, who)
}

/// Invitations as an organization's admins (and the Backend API) see them; `url` only when
/// the invitation is created (the link carries its secret). A backend also sees who invited:
/// their users are read in one query.
pub async fn invitations(
    state: &AppState,
    rows: &[OrgInvitationRow],
    url: Option<&str>,
    who: Audience,
) -> Result<Vec<Value>, ApiError> {
    let inviters = if who == Audience::Backend { state.orgs.inviters(rows).await? } else { HashMap::new() };
    Ok(rows
        .iter()
        .map(|i| {
            let inviter = i.inviter_user_id.as_ref().and_then(|id| inviters.get(id));
            resources::org_invitation(state.orgs.as_ref(), i, url, inviter, who)
        })
        .collect())
}

/// One invitation (see [`invitations`]).
pub async fn invitation(
    state: &AppState,
    i: &OrgInvitationRow,
    url: Option<&str>,
    who: Audience,
) -> Result<Value, ApiError> {
    Ok(invitations(state, std::slice::from_ref(i), url, who).await?.pop().unwrap_or_default())
}

/// An invitation as its invitee sees it (`/v1/me/organization_invitations`).
pub fn user_invitation(state: &AppState, i: &OrgInvitationRow, org: Option<&OrganizationRow>) -> Value {
    resources::to_value(resources::OrgInvitationView::for_invitee(state.orgs.as_ref(), &state.avatar(), i, org))
}
