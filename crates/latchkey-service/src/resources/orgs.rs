//! Organizations, memberships, invitations and roles as Clerk's APIs show them.

use latchkey_store::{MembershipRow, OrgCounts, OrgInvitationRow, OrganizationRow, UserRecord};
use serde::Serialize;
use serde_json::{json, Value};

use super::{metadata_object, to_value, Audience, PublicUserData};

/// What organization views need of the instance: its roles and what time it is. The
/// organization service provides it; a trait here keeps this module free of services.
pub trait OrgLens {
    fn role_name(&self, role: &str) -> String;
    /// The permissions a role grants, system permissions included.
    fn permissions_of(&self, role: &str) -> Vec<String>;
    /// The status an invitation shows now (pending past its expiry shows `expired`).
    fn invitation_status<'a>(&self, inv: &'a OrgInvitationRow) -> &'a str;
    /// The avatar URL the resources show.
    fn avatar(&self) -> String;
}

#[derive(Debug, Clone, Serialize)]
pub struct OrganizationView {
    pub object: &'static str,
    pub id: String,
    pub name: String,
    pub slug: String,
    pub image_url: String,
    pub has_image: bool,
    pub max_allowed_memberships: i64,
    pub admin_delete_enabled: bool,
    pub public_metadata: Value,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(flatten)]
    pub counts: Option<OrgCountsView>,
    #[serde(flatten)]
    pub backend: Option<BackendOrgFields>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrgCountsView {
    pub members_count: i64,
    pub pending_invitations_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendOrgFields {
    pub private_metadata: Value,
    pub created_by: Option<String>,
}

impl OrganizationView {
    pub fn of(img: &str, o: &OrganizationRow, counts: Option<OrgCounts>, who: Audience) -> Self {
        Self {
            object: "organization",
            id: o.id.clone(),
            name: o.name.clone(),
            slug: o.slug.clone(),
            image_url: o.image_url.clone().unwrap_or_else(|| img.to_owned()),
            has_image: o.image_url.is_some(),
            max_allowed_memberships: o.max_allowed_memberships,
            admin_delete_enabled: o.admin_delete_enabled,
            public_metadata: metadata_object(&o.public_metadata),
            created_at: o.created_at,
            updated_at: o.updated_at,
            counts: counts
                .map(|c| OrgCountsView { members_count: c.members, pending_invitations_count: c.pending_invitations }),
            backend: (who == Audience::Backend).then(|| BackendOrgFields {
                private_metadata: metadata_object(&o.private_metadata),
                created_by: o.created_by.clone(),
            }),
        }
    }
}

pub fn organization(img: &str, o: &OrganizationRow, counts: Option<OrgCounts>, who: Audience) -> Value {
    to_value(OrganizationView::of(img, o, counts, who))
}

#[derive(Debug, Clone, Serialize)]
pub struct MembershipView {
    pub object: &'static str,
    pub id: String,
    pub role: String,
    pub role_name: String,
    pub permissions: Vec<String>,
    pub public_metadata: Value,
    pub organization: Option<OrganizationView>,
    pub public_user_data: PublicUserData,
    pub created_at: i64,
    pub updated_at: i64,
    /// Backend only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_metadata: Option<Value>,
}

pub fn membership(
    s: &dyn OrgLens,
    img: &str,
    m: &MembershipRow,
    org: Option<&OrganizationRow>,
    counts: Option<OrgCounts>,
    user: Option<&UserRecord>,
    who: Audience,
) -> Value {
    to_value(MembershipView {
        object: "organization_membership",
        id: m.id.clone(),
        role: m.role.clone(),
        role_name: s.role_name(&m.role),
        permissions: s.permissions_of(&m.role),
        public_metadata: metadata_object(&m.public_metadata),
        organization: org.map(|o| OrganizationView::of(img, o, counts, who)),
        public_user_data: match user {
            Some(u) => PublicUserData::of(u, img),
            None => PublicUserData::unknown(&m.user_id, img),
        },
        created_at: m.created_at,
        updated_at: m.updated_at,
        private_metadata: (who == Audience::Backend).then(|| metadata_object(&m.private_metadata)),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct OrgInvitationView {
    pub object: &'static str,
    pub id: String,
    pub email_address: String,
    pub role: String,
    pub role_name: String,
    pub organization_id: String,
    /// Backend only: who invited (null when nobody did, or the operator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inviter_id: Option<Option<String>>,
    /// Backend only: the inviter as others may see them (null when none or gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_inviter_data: Option<Option<InviterData>>,
    pub status: String,
    pub public_metadata: Value,
    pub url: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Backend only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_metadata: Option<Value>,
    /// Only as the invitee sees it: the organization they are invited to (null when gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_organization_data: Option<Option<PublicOrganizationData>>,
}

/// The inviter of an organization invitation (Clerk's `OrganizationInvitationPublicUserData`).
#[derive(Debug, Clone, Serialize)]
pub struct InviterData {
    pub user_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: String,
    pub has_image: bool,
    pub identifier: String,
}

impl InviterData {
    fn of(r: &UserRecord, img: &str) -> Self {
        let data = PublicUserData::of(r, img);
        Self {
            user_id: data.user_id,
            first_name: data.first_name,
            last_name: data.last_name,
            image_url: data.image_url,
            has_image: data.has_image,
            identifier: data.identifier,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicOrganizationData {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub image_url: String,
    pub has_image: bool,
}

impl OrgInvitationView {
    /// An invitation as an organization's admins (and the Backend API) see it; `url` only
    /// when the invitation is created (the link carries its secret). `inviter`: the user who
    /// invited, which a backend sees.
    pub fn of(
        s: &dyn OrgLens,
        i: &OrgInvitationRow,
        url: Option<&str>,
        inviter: Option<&UserRecord>,
        who: Audience,
    ) -> Self {
        let backend = who == Audience::Backend;
        Self {
            object: "organization_invitation",
            id: i.id.clone(),
            email_address: i.email.clone(),
            role: i.role.clone(),
            role_name: s.role_name(&i.role),
            organization_id: i.organization_id.clone(),
            inviter_id: backend.then(|| i.inviter_user_id.clone()),
            public_inviter_data: backend.then(|| inviter.map(|u| InviterData::of(u, &s.avatar()))),
            status: s.invitation_status(i).to_owned(),
            public_metadata: metadata_object(&i.public_metadata),
            url: url.map(str::to_owned),
            expires_at: i.expires_at,
            created_at: i.created_at,
            updated_at: i.updated_at,
            private_metadata: backend.then(|| metadata_object(&i.private_metadata)),
            public_organization_data: None,
        }
    }

    /// The invitation as its invitee sees it (`/v1/me/organization_invitations`).
    pub fn for_invitee(s: &dyn OrgLens, img: &str, i: &OrgInvitationRow, org: Option<&OrganizationRow>) -> Self {
        let mut view = Self::of(s, i, None, None, Audience::Frontend);
        view.public_organization_data = Some(org.map(|o| PublicOrganizationData {
            id: o.id.clone(),
            name: o.name.clone(),
            slug: o.slug.clone(),
            image_url: o.image_url.clone().unwrap_or_else(|| img.to_owned()),
            has_image: o.image_url.is_some(),
        }));
        view
    }
}

pub fn org_invitation(
    s: &dyn OrgLens,
    i: &OrgInvitationRow,
    url: Option<&str>,
    inviter: Option<&UserRecord>,
    who: Audience,
) -> Value {
    to_value(OrgInvitationView::of(s, i, url, inviter, who))
}

pub fn deleted_organization(o: &OrganizationRow) -> Value {
    json!({"object": "organization", "id": o.id, "slug": o.slug, "deleted": true})
}
