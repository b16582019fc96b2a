//! The wire objects as Clerk's APIs show them, as serde structs (one per object, rendered
//! once) built from the store's rows. Resource JSON as Clerk's APIs show it (docs/backend-api.md §5, docs/frontend-api.md §6, §10):
//! snake_case, `object` discriminators, epoch milliseconds. The Frontend API, the Backend API
//! and webhook payloads (docs/backend-api.md §12) render from these, so they never disagree.

use latchkey_core::authz::Role;
use latchkey_store::{
    EmailRow, MembershipRow, OrgCounts, OrgInvitationRow, OrganizationRow, PhoneRow, SessionRow, UserRecord,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::account::primary_email;
use crate::orgs::OrgService;
use crate::users::Users;

/// Who is looking: a backend (secret key, webhooks) sees private fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Frontend,
    Backend,
}

fn metadata_object(text: &str) -> Value {
    Value::Object(latchkey_core::metadata::parse(text))
}

/// Where avatars come from: latchkey serves a neutral placeholder at `/avatar.svg`.
pub fn avatar_url(base: &str) -> String {
    format!("{}/avatar.svg", base.trim_end_matches('/'))
}

fn metadata(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

/// A view as a JSON value, for the places that embed it in a larger body.
pub fn to_value(view: impl Serialize) -> Value {
    // A view is plain data (strings, numbers, maps with string keys): it always serializes.
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// A one-time-code verification (`verification_otp`).
#[derive(Debug, Clone, Serialize)]
pub struct OtpVerification {
    pub object: &'static str,
    pub status: &'static str,
    pub strategy: &'static str,
    pub attempts: Option<i64>,
    pub expire_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmailView {
    pub object: &'static str,
    pub id: String,
    pub email_address: String,
    pub reserved: bool,
    pub verification: Option<OtpVerification>,
    pub linked_to: Vec<Value>,
    pub matches_sso_connection: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EmailView {
    pub fn of(e: &EmailRow) -> Self {
        let otp = |status| OtpVerification {
            object: "verification_otp",
            status,
            strategy: "email_code",
            attempts: Some(e.code.attempts),
            expire_at: e.code.expires_at,
        };
        let verification = if e.verified {
            Some(otp("verified"))
        } else if e.code.digest.is_some() {
            Some(otp("unverified"))
        } else {
            None
        };
        Self {
            object: "email_address",
            id: e.id.clone(),
            email_address: e.email.clone(),
            reserved: false,
            verification,
            linked_to: Vec::new(),
            matches_sso_connection: false,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhoneView {
    pub object: &'static str,
    pub id: String,
    pub phone_number: String,
    pub reserved_for_second_factor: bool,
    pub default_second_factor: bool,
    pub reserved: bool,
    pub verification: Option<OtpVerification>,
    pub linked_to: Vec<Value>,
    pub backup_codes: Option<Vec<String>>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl PhoneView {
    pub fn of(p: &PhoneRow) -> Self {
        let verified = OtpVerification {
            object: "verification_otp",
            status: "verified",
            strategy: "admin",
            attempts: None,
            expire_at: None,
        };
        Self {
            object: "phone_number",
            id: p.id.clone(),
            phone_number: p.phone.clone(),
            reserved_for_second_factor: p.reserved_for_second_factor,
            default_second_factor: false,
            reserved: false,
            verification: p.verified.then_some(verified),
            linked_to: Vec::new(),
            backup_codes: None,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// Who is looking decides the extra fields: the Frontend API's user lists the user's
/// organization memberships; a backend's adds private metadata and the lockout state.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub object: &'static str,
    pub id: String,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: String,
    pub has_image: bool,
    pub primary_email_address_id: Option<String>,
    pub primary_phone_number_id: Option<String>,
    pub primary_web3_wallet_id: Option<String>,
    pub password_enabled: bool,
    pub two_factor_enabled: bool,
    pub totp_enabled: bool,
    pub backup_code_enabled: bool,
    pub email_addresses: Vec<EmailView>,
    pub phone_numbers: Vec<PhoneView>,
    pub web3_wallets: Vec<Value>,
    pub passkeys: Vec<Value>,
    pub external_accounts: Vec<Value>,
    pub saml_accounts: Vec<Value>,
    pub enterprise_accounts: Vec<Value>,
    /// Frontend only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_memberships: Option<Vec<Value>>,
    pub public_metadata: Value,
    pub unsafe_metadata: Value,
    pub external_id: Option<String>,
    pub last_sign_in_at: Option<i64>,
    pub banned: bool,
    pub locked: bool,
    pub lockout_expires_in_seconds: Option<i64>,
    pub verification_attempts_remaining: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub password_last_updated_at: Option<i64>,
    pub delete_self_enabled: bool,
    pub create_organization_enabled: bool,
    pub create_organizations_limit: Option<i64>,
    pub last_active_at: Option<i64>,
    pub mfa_enabled_at: Option<i64>,
    pub mfa_disabled_at: Option<i64>,
    pub legal_accepted_at: Option<i64>,
    #[serde(flatten)]
    pub backend: Option<BackendUserFields>,
}

/// What only a backend sees of a user.
#[derive(Debug, Clone, Serialize)]
pub struct BackendUserFields {
    pub private_metadata: Value,
    pub deprovisioned: bool,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

impl UserView {
    /// The user as the Frontend API shows it to its owner, with their memberships.
    pub fn frontend(r: &UserRecord, img: &str, memberships: Vec<Value>) -> Self {
        Self::base(r, img, Some(memberships))
    }

    /// The user as the Backend API (and webhooks) show it at `now`.
    pub fn backend(r: &UserRecord, img: &str, now: i64) -> Self {
        let mut view = Self::base(r, img, None);
        let lockout = r.user.locked_until.filter(|t| *t > now).map(|t| (t - now + 999) / 1000);
        view.lockout_expires_in_seconds = lockout;
        view.locked = r.user.locked || lockout.is_some();
        view.backend = Some(BackendUserFields {
            private_metadata: metadata_object(&r.user.private_metadata),
            deprovisioned: false,
            locale: None,
            timezone: None,
        });
        view
    }

    fn base(r: &UserRecord, img: &str, organization_memberships: Option<Vec<Value>>) -> Self {
        let u = &r.user;
        Self {
            object: "user",
            id: u.id.clone(),
            username: u.username.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            image_url: img.to_owned(),
            has_image: false,
            primary_email_address_id: u.primary_email_id.clone(),
            primary_phone_number_id: u.primary_phone_id.clone(),
            primary_web3_wallet_id: None,
            password_enabled: u.password_hash.is_some(),
            two_factor_enabled: false,
            totp_enabled: false,
            backup_code_enabled: false,
            email_addresses: r.emails.iter().map(EmailView::of).collect(),
            phone_numbers: r.phones.iter().map(PhoneView::of).collect(),
            web3_wallets: Vec::new(),
            passkeys: Vec::new(),
            external_accounts: Vec::new(),
            saml_accounts: Vec::new(),
            enterprise_accounts: Vec::new(),
            organization_memberships,
            public_metadata: metadata(&u.public_metadata),
            unsafe_metadata: metadata(&u.unsafe_metadata),
            external_id: u.external_id.clone(),
            last_sign_in_at: u.last_sign_in_at,
            banned: u.banned,
            locked: u.locked,
            lockout_expires_in_seconds: None,
            verification_attempts_remaining: 100 - u.failed_attempts.clamp(0, 100),
            created_at: u.created_at,
            updated_at: u.updated_at,
            password_last_updated_at: u.password_updated_at,
            delete_self_enabled: u.delete_self_enabled,
            create_organization_enabled: u.create_organization_enabled,
            create_organizations_limit: u.create_organizations_limit,
            last_active_at: u.last_active_at,
            mfa_enabled_at: None,
            mfa_disabled_at: None,
            legal_accepted_at: u.legal_accepted_at,
            backend: None,
        }
    }
}

pub fn email_json(e: &EmailRow) -> Value {
    to_value(EmailView::of(e))
}

pub fn phone_json(p: &PhoneRow) -> Value {
    to_value(PhoneView::of(p))
}

/// The Frontend API's user, with the memberships the caller loaded.
pub fn user_json(r: &UserRecord, img: &str, memberships: Vec<Value>) -> Value {
    to_value(UserView::frontend(r, img, memberships))
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicUserData {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: String,
    pub has_image: bool,
    pub identifier: String,
    pub user_id: String,
}

impl PublicUserData {
    pub fn of(r: &UserRecord, img: &str) -> Self {
        Self {
            first_name: r.user.first_name.clone(),
            last_name: r.user.last_name.clone(),
            image_url: img.to_owned(),
            has_image: false,
            identifier: primary_email(r).or_else(|| r.user.username.clone()).unwrap_or_default(),
            user_id: r.user.id.clone(),
        }
    }

    /// A user who is gone: their id alone.
    fn unknown(user_id: &str, img: &str) -> Self {
        Self {
            first_name: None,
            last_name: None,
            image_url: img.to_owned(),
            has_image: false,
            identifier: String::new(),
            user_id: user_id.to_owned(),
        }
    }
}

pub fn public_user_data(r: &UserRecord, img: &str) -> Value {
    to_value(PublicUserData::of(r, img))
}

/// A user as the Backend API (and webhooks) show it: the Frontend API's user plus what only
/// a backend may see.
pub fn backend_user(s: &Users, img: &str, r: &UserRecord) -> Value {
    to_value(UserView::backend(r, img, s.now()))
}

/// A session as the Backend API (and webhooks) show it.
#[derive(Debug, Clone, Serialize)]
pub struct BackendSessionView {
    pub object: &'static str,
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub status: &'static str,
    pub last_active_organization_id: Option<String>,
    pub actor: Option<Value>,
    pub last_active_at: i64,
    pub expire_at: i64,
    pub abandon_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn backend_session(s: &Users, session: &SessionRow) -> Value {
    to_value(BackendSessionView {
        object: "session",
        id: session.id.clone(),
        client_id: session.client_id.clone(),
        user_id: session.user_id.clone(),
        status: s.session_status(session),
        last_active_organization_id: session.active_org_id.clone(),
        actor: None,
        last_active_at: session.last_active_at,
        expire_at: session.expire_at,
        abandon_at: session.abandon_at,
        created_at: session.created_at,
        updated_at: session.updated_at,
    })
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
    s: &OrgService,
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
    pub inviter_user_id: Option<String>,
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
    /// when the invitation is created (the link carries its secret).
    pub fn of(s: &OrgService, i: &OrgInvitationRow, url: Option<&str>, who: Audience) -> Self {
        Self {
            object: "organization_invitation",
            id: i.id.clone(),
            email_address: i.email.clone(),
            role: i.role.clone(),
            role_name: s.role_name(&i.role),
            organization_id: i.organization_id.clone(),
            inviter_user_id: i.inviter_user_id.clone(),
            status: s.org_invitation_status(i).to_owned(),
            public_metadata: metadata_object(&i.public_metadata),
            url: url.map(str::to_owned),
            expires_at: i.expires_at,
            created_at: i.created_at,
            updated_at: i.updated_at,
            private_metadata: (who == Audience::Backend).then(|| metadata_object(&i.private_metadata)),
            public_organization_data: None,
        }
    }

    /// The invitation as its invitee sees it (`/v1/me/organization_invitations`).
    pub fn for_invitee(s: &OrgService, img: &str, i: &OrgInvitationRow, org: Option<&OrganizationRow>) -> Self {
        let mut view = Self::of(s, i, None, Audience::Frontend);
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

pub fn org_invitation(s: &OrgService, i: &OrgInvitationRow, url: Option<&str>, who: Audience) -> Value {
    to_value(OrgInvitationView::of(s, i, url, who))
}

#[derive(Debug, Clone, Serialize)]
pub struct PermissionView {
    pub object: &'static str,
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub object: &'static str,
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<PermissionView>,
    pub is_creator_eligible: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn role(r: &Role) -> Value {
    let name = r.key.trim_start_matches("org:");
    let permissions = r
        .permissions
        .iter()
        .map(|p| PermissionView {
            object: "permission",
            id: format!("perm_{}", p.trim_start_matches("org:").replace(':', "_")),
            key: p.clone(),
            name: p.clone(),
            description: "",
            kind: if latchkey_core::authz::is_system_permission(p) { "system" } else { "user" },
            created_at: 0,
            updated_at: 0,
        })
        .collect();
    to_value(RoleView {
        object: "role",
        id: format!("role_{name}"),
        key: r.key.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        permissions,
        is_creator_eligible: r.key == latchkey_core::authz::ADMIN_ROLE,
        created_at: 0,
        updated_at: 0,
    })
}

pub fn deleted_organization(o: &OrganizationRow) -> Value {
    json!({"object": "organization", "id": o.id, "slug": o.slug, "deleted": true})
}
