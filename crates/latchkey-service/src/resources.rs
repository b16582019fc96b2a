//! Resource JSON as Clerk's APIs show it (docs/backend-api.md §5, docs/frontend-api.md §6, §10):
//! snake_case, `object` discriminators, epoch milliseconds. The Frontend API, the Backend API
//! and webhook payloads (docs/backend-api.md §12) render from these, so they never disagree.

use latchkey_core::authz::Role;
use latchkey_store::{
    EmailRow, MembershipRow, OrgCounts, OrgInvitationRow, OrganizationRow, PhoneRow, SessionRow, UserRecord,
};
use serde_json::{json, Value};

use crate::account::primary_email;
use crate::Services;

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

pub fn email_json(e: &EmailRow) -> Value {
    let verification = if e.verified {
        json!({"object": "verification_otp", "status": "verified", "strategy": "email_code", "attempts": e.code.attempts, "expire_at": e.code.expires_at})
    } else if e.code.digest.is_some() {
        json!({"object": "verification_otp", "status": "unverified", "strategy": "email_code", "attempts": e.code.attempts, "expire_at": e.code.expires_at})
    } else {
        Value::Null
    };
    json!({
        "object": "email_address",
        "id": e.id,
        "email_address": e.email,
        "reserved": false,
        "verification": verification,
        "linked_to": [],
        "matches_sso_connection": false,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    })
}

pub fn phone_json(p: &PhoneRow) -> Value {
    json!({
        "object": "phone_number",
        "id": p.id,
        "phone_number": p.phone,
        "reserved_for_second_factor": p.reserved_for_second_factor,
        "default_second_factor": false,
        "reserved": false,
        "verification": if p.verified { json!({"object": "verification_otp", "status": "verified", "strategy": "admin", "attempts": null, "expire_at": null}) } else { Value::Null },
        "linked_to": [],
        "backup_codes": null,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

pub fn user_json(r: &UserRecord, img: &str) -> Value {
    let u = &r.user;
    json!({
        "object": "user",
        "id": u.id,
        "username": u.username,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "image_url": img,
        "has_image": false,
        "primary_email_address_id": u.primary_email_id,
        "primary_phone_number_id": u.primary_phone_id,
        "primary_web3_wallet_id": null,
        "password_enabled": u.password_hash.is_some(),
        "two_factor_enabled": false,
        "totp_enabled": false,
        "backup_code_enabled": false,
        "email_addresses": r.emails.iter().map(email_json).collect::<Vec<_>>(),
        "phone_numbers": r.phones.iter().map(phone_json).collect::<Vec<_>>(),
        "web3_wallets": [],
        "passkeys": [],
        "external_accounts": [],
        "saml_accounts": [],
        "enterprise_accounts": [],
        "organization_memberships": [],
        "public_metadata": metadata(&u.public_metadata),
        "unsafe_metadata": metadata(&u.unsafe_metadata),
        "external_id": u.external_id,
        "last_sign_in_at": u.last_sign_in_at,
        "banned": u.banned,
        "locked": u.locked,
        "lockout_expires_in_seconds": null,
        "verification_attempts_remaining": 100 - u.failed_attempts.clamp(0, 100),
        "created_at": u.created_at,
        "updated_at": u.updated_at,
        "password_last_updated_at": u.password_updated_at,
        "delete_self_enabled": u.delete_self_enabled,
        "create_organization_enabled": u.create_organization_enabled,
        "create_organizations_limit": u.create_organizations_limit,
        "last_active_at": u.last_active_at,
        "mfa_enabled_at": null,
        "mfa_disabled_at": null,
        "legal_accepted_at": u.legal_accepted_at,
    })
}

pub fn public_user_data(r: &UserRecord, img: &str) -> Value {
    let identifier = primary_email(r).or_else(|| r.user.username.clone()).unwrap_or_default();
    json!({
        "first_name": r.user.first_name,
        "last_name": r.user.last_name,
        "image_url": img,
        "has_image": false,
        "identifier": identifier,
        "user_id": r.user.id,
    })
}

/// A user as the Backend API (and webhooks) show it: the Frontend API's user plus what only
/// a backend may see.
pub fn backend_user(s: &Services, img: &str, r: &UserRecord) -> Value {
    let mut v = user_json(r, img);
    if let Value::Object(map) = &mut v {
        // Not part of the Frontend API's user: private metadata and the membership list.
        map.insert("private_metadata".into(), metadata_object(&r.user.private_metadata));
        map.remove("organization_memberships");
        let now = s.now();
        let lockout = r.user.locked_until.filter(|t| *t > now).map(|t| (t - now + 999) / 1000);
        map.insert("lockout_expires_in_seconds".into(), json!(lockout));
        map.insert("locked".into(), json!(r.user.locked || lockout.is_some()));
        map.insert("deprovisioned".into(), json!(false));
        map.insert("locale".into(), Value::Null);
        map.insert("timezone".into(), Value::Null);
    }
    v
}

/// A session as the Backend API (and webhooks) show it.
pub fn backend_session(s: &Services, session: &SessionRow) -> Value {
    json!({
        "object": "session",
        "id": session.id,
        "client_id": session.client_id,
        "user_id": session.user_id,
        "status": s.session_status(session),
        "last_active_organization_id": session.active_org_id,
        "actor": null,
        "last_active_at": session.last_active_at,
        "expire_at": session.expire_at,
        "abandon_at": session.abandon_at,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    })
}

pub fn organization(img: &str, o: &OrganizationRow, counts: Option<OrgCounts>, who: Audience) -> Value {
    let mut v = json!({
        "object": "organization",
        "id": o.id,
        "name": o.name,
        "slug": o.slug,
        "image_url": o.image_url.clone().unwrap_or_else(|| img.to_owned()),
        "has_image": o.image_url.is_some(),
        "max_allowed_memberships": o.max_allowed_memberships,
        "admin_delete_enabled": o.admin_delete_enabled,
        "public_metadata": metadata_object(&o.public_metadata),
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    });
    if let Value::Object(map) = &mut v {
        if let Some(c) = counts {
            map.insert("members_count".into(), json!(c.members));
            map.insert("pending_invitations_count".into(), json!(c.pending_invitations));
        }
        if who == Audience::Backend {
            map.insert("private_metadata".into(), metadata_object(&o.private_metadata));
            map.insert("created_by".into(), json!(o.created_by));
        }
    }
    v
}

pub fn membership(
    s: &Services,
    img: &str,
    m: &MembershipRow,
    org: Option<&OrganizationRow>,
    counts: Option<OrgCounts>,
    user: Option<&UserRecord>,
    who: Audience,
) -> Value {
    let public_user = match user {
        Some(u) => public_user_data(u, img),
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
        "public_metadata": metadata_object(&m.public_metadata),
        "organization": org.map(|o| organization(img, o, counts, who)).unwrap_or(Value::Null),
        "public_user_data": public_user,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    });
    if who == Audience::Backend {
        if let Value::Object(map) = &mut v {
            map.insert("private_metadata".into(), metadata_object(&m.private_metadata));
        }
    }
    v
}

/// An invitation as an organization's admins (and the Backend API) see it; `url` only when
/// the invitation is created (the link carries its secret).
pub fn org_invitation(s: &Services, i: &OrgInvitationRow, url: Option<&str>, who: Audience) -> Value {
    let mut v = json!({
        "object": "organization_invitation",
        "id": i.id,
        "email_address": i.email,
        "role": i.role,
        "role_name": s.role_name(&i.role),
        "organization_id": i.organization_id,
        "inviter_user_id": i.inviter_user_id,
        "status": s.org_invitation_status(i),
        "public_metadata": metadata_object(&i.public_metadata),
        "url": url,
        "expires_at": i.expires_at,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
    });
    if who == Audience::Backend {
        if let Value::Object(map) = &mut v {
            map.insert("private_metadata".into(), metadata_object(&i.private_metadata));
        }
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
