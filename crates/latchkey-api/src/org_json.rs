//! Organization objects as Clerk's APIs show them (clerk-compat.md §3, clerk-fapi.md §7 (c),
//! `clerk-fapi-golden/me-organization_memberships.json`). The Frontend and Backend APIs share
//! one shape; the Backend API adds what only a backend may see (private metadata, creator).

use std::collections::HashMap;

use latchkey_core::authz::Role;
use latchkey_store::{MembershipRow, OrgCounts, OrgInvitationRow, OrganizationRow, UserRecord};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::fapi::json::public_user_data;
use crate::AppState;

/// Who is looking: a backend (secret key) sees private fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Frontend,
    Backend,
}

fn metadata(text: &str) -> Value {
    Value::Object(latchkey_core::metadata::parse(text))
}

pub fn organization(state: &AppState, o: &OrganizationRow, counts: Option<OrgCounts>, who: Audience) -> Value {
    let mut v = json!({
        "object": "organization",
        "id": o.id,
        "name": o.name,
        "slug": o.slug,
        "image_url": o.image_url.clone().unwrap_or_else(|| state.avatar()),
        "has_image": o.image_url.is_some(),
        "max_allowed_memberships": o.max_allowed_memberships,
        "admin_delete_enabled": o.admin_delete_enabled,
        "public_metadata": metadata(&o.public_metadata),
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    });
    if let Value::Object(map) = &mut v {
        if let Some(c) = counts {
            map.insert("members_count".into(), json!(c.members));
            map.insert("pending_invitations_count".into(), json!(c.pending_invitations));
        }
        if who == Audience::Backend {
            map.insert("private_metadata".into(), metadata(&o.private_metadata));
            map.insert("created_by".into(), json!(o.created_by));
        }
    }
    v
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
        let s = &state.services;
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
    let s = &state.services;
    let img = state.avatar();
    let public_user = match user {
        Some(u) => public_user_data(u, &img),
        None => {
            json!({"user_id": m.user_id, "identifier": "", "first_name": null, "last_name": null, "image_url": img, "has_image": false})
        }
    };
    let mut v = json!({
        "object": "organization_membership",
        "id": m.id,
        "role": m.role,
        "role_name": s.role_name(&m.role),
        "permissions": s.permissions_of(&m.role),
        "public_metadata": metadata(&m.public_metadata),
        "organization": org.map(|o| organization(state, o, counts, who)).unwrap_or(Value::Null),
        "public_user_data": public_user,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    });
    if who == Audience::Backend {
        if let Value::Object(map) = &mut v {
            map.insert("private_metadata".into(), metadata(&m.private_metadata));
        }
    }
    v
}

/// An invitation as an organization's admins (and the Backend API) see it; `url` only when
/// the invitation is created (the link carries its secret).
pub fn invitation(state: &AppState, i: &OrgInvitationRow, url: Option<&str>, who: Audience) -> Value {
    let s = &state.services;
    let mut v = json!({
        "object": "organization_invitation",
        "id": i.id,
        "email_address": i.email,
        "role": i.role,
        "role_name": s.role_name(&i.role),
        "organization_id": i.organization_id,
        "inviter_user_id": i.inviter_user_id,
        "status": s.org_invitation_status(i),
        "public_metadata": metadata(&i.public_metadata),
        "url": url,
        "expires_at": i.expires_at,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
    });
    if who == Audience::Backend {
        if let Value::Object(map) = &mut v {
            map.insert("private_metadata".into(), metadata(&i.private_metadata));
        }
    }
    v
}

/// An invitation as its invitee sees it (`/v1/me/organization_invitations`).
pub fn user_invitation(state: &AppState, i: &OrgInvitationRow, org: Option<&OrganizationRow>) -> Value {
    let mut v = invitation(state, i, None, Audience::Frontend);
    if let Value::Object(map) = &mut v {
        map.insert(
            "public_organization_data".into(),
            match org {
                Some(o) => json!({
                    "id": o.id, "name": o.name, "slug": o.slug,
                    "image_url": o.image_url.clone().unwrap_or_else(|| state.avatar()), "has_image": o.image_url.is_some(),
                }),
                None => Value::Null,
            },
        );
    }
    v
}

pub fn role(r: &Role) -> Value {
    let name = r.key.trim_start_matches("org:");
    let permissions: Vec<Value> = r
        .permissions
        .iter()
        .map(|p| {
            let kind = if latchkey_core::authz::is_system_permission(p) { "system" } else { "user" };
            json!({
                "object": "permission", "id": format!("perm_{}", p.trim_start_matches("org:").replace(':', "_")),
                "key": p, "name": p, "description": "", "type": kind, "created_at": 0, "updated_at": 0,
            })
        })
        .collect();
    json!({
        "object": "role",
        "id": format!("role_{name}"),
        "key": r.key,
        "name": r.name,
        "description": r.description,
        "permissions": permissions,
        "is_creator_eligible": r.key == latchkey_core::authz::ADMIN_ROLE,
        "created_at": 0,
        "updated_at": 0,
    })
}

pub fn deleted_organization(o: &OrganizationRow) -> Value {
    json!({"object": "organization", "id": o.id, "slug": o.slug, "deleted": true})
}
