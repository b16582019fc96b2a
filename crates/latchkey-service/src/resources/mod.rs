//! The wire objects as Clerk's APIs show them, as serde structs (one per object, rendered
//! once) built from the store's rows. Resource JSON as Clerk's APIs show it (docs/backend-api.md §5, docs/frontend-api.md §6, §10):
//! snake_case, `object` discriminators, epoch milliseconds. The Frontend API, the Backend API
//! and webhook payloads (docs/backend-api.md §12) render from these, so they never disagree.

mod external;
mod orgs;
mod passkeys;
mod roles;

pub use external::*;
pub use orgs::*;
pub use passkeys::{listed_passkeys, passkey_json};
pub use roles::*;

use latchkey_store::{EmailRow, PhoneRow, SessionRow, UserRecord};
use serde::Serialize;
use serde_json::Value;

/// Who is looking: a backend (secret key, webhooks) sees private fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Frontend,
    Backend,
}

pub fn primary_email(record: &UserRecord) -> Option<String> {
    let id = record.user.primary_email_id.as_deref()?;
    record.emails.iter().find(|e| e.id == id).map(|e| e.email.clone())
}

pub(crate) fn metadata_object(text: &str) -> Value {
    Value::Object(latchkey_core::metadata::parse(text))
}

/// Where avatars come from: latchkey serves a neutral placeholder at `/avatar.svg`.
pub fn avatar_url(base: &str) -> String {
    format!("{}/avatar.svg", base.trim_end_matches('/'))
}

fn metadata(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

/// A view as a JSON value, for the places that embed it in a larger body.
pub fn to_value(view: impl Serialize) -> Value {
    // A view is plain data (strings, numbers, maps with string keys): it always serializes.
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// A verification: by a one-time code (`verification_otp`) or by an administrator
/// (`verification_admin`).
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
        // Clerk's schema requires the code's expiry (docs/clerk-conformance.md). An address
        // verified with no code of its own (at sign-up, or added verified by the Backend API)
        // reports the moment it was added: a time already past, as a used code's is.
        let otp = |status| OtpVerification {
            object: "verification_otp",
            status,
            strategy: "email_code",
            attempts: Some(e.code.attempts),
            expire_at: Some(e.code.expires_at.unwrap_or(e.created_at)),
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
            object: "verification_admin",
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
    pub external_accounts: Vec<ExternalAccountView>,
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
}

impl UserView {
    /// The user as the Frontend API shows it to its owner, with their memberships.
    pub fn frontend(r: &UserRecord, img: &str, memberships: Vec<Value>) -> Self {
        let mut view = Self::base(r, img, Audience::Frontend, Some(memberships));
        // The Frontend API's schema has an integer here; clerk-js reads 0 as "no limit of
        // this user's own" (docs/clerk-conformance.md).
        view.create_organizations_limit = Some(view.create_organizations_limit.unwrap_or(0));
        view
    }

    /// The user as the Backend API (and webhooks) show it at `now`.
    pub fn backend(r: &UserRecord, img: &str, now: i64) -> Self {
        let mut view = Self::base(r, img, Audience::Backend, None);
        let lockout = r.user.locked_until.filter(|t| *t > now).map(|t| (t - now + 999) / 1000);
        view.lockout_expires_in_seconds = lockout;
        view.locked = r.user.locked || lockout.is_some();
        view.backend = Some(BackendUserFields {
            private_metadata: metadata_object(&r.user.private_metadata),
            deprovisioned: false,
            locale: None,
        });
        view
    }

    fn base(r: &UserRecord, img: &str, audience: Audience, organization_memberships: Option<Vec<Value>>) -> Self {
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
            two_factor_enabled: r.second_factors.any(),
            totp_enabled: r.second_factors.totp_enabled(),
            backup_code_enabled: r.second_factors.backup_code_enabled(),
            email_addresses: r.emails.iter().map(EmailView::of).collect(),
            phone_numbers: r.phones.iter().map(PhoneView::of).collect(),
            web3_wallets: Vec::new(),
            passkeys: listed_passkeys(&r.passkeys, audience),
            external_accounts: r.external_accounts.iter().map(|a| ExternalAccountView::of(a, audience)).collect(),
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
    /// Deprecated in Clerk's documents but still required there: the same as `image_url`.
    pub profile_image_url: Option<String>,
    pub has_image: bool,
    pub identifier: String,
    pub user_id: String,
    pub username: Option<String>,
}

impl PublicUserData {
    pub fn of(r: &UserRecord, img: &str) -> Self {
        Self {
            first_name: r.user.first_name.clone(),
            last_name: r.user.last_name.clone(),
            image_url: img.to_owned(),
            profile_image_url: Some(img.to_owned()),
            has_image: false,
            identifier: primary_email(r).or_else(|| r.user.username.clone()).unwrap_or_default(),
            user_id: r.user.id.clone(),
            username: r.user.username.clone(),
        }
    }

    /// A user who is gone: their id alone.
    pub(crate) fn unknown(user_id: &str, img: &str) -> Self {
        Self {
            first_name: None,
            last_name: None,
            image_url: img.to_owned(),
            profile_image_url: Some(img.to_owned()),
            has_image: false,
            identifier: String::new(),
            user_id: user_id.to_owned(),
            username: None,
        }
    }
}

pub fn public_user_data(r: &UserRecord, img: &str) -> Value {
    to_value(PublicUserData::of(r, img))
}

/// A user as the Backend API (and webhooks) show it: the Frontend API's user plus what only
/// a backend may see.
pub fn backend_user(img: &str, r: &UserRecord, now: i64) -> Value {
    to_value(UserView::backend(r, img, now))
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
    pub latest_activity: crate::SessionActivity,
}

/// `status`: what the session shows now (an active one past its deadline shows `expired`);
/// `activity`: the browser and device it is used from.
pub fn backend_session(session: &SessionRow, status: &'static str, activity: crate::SessionActivity) -> Value {
    to_value(BackendSessionView {
        object: "session",
        id: session.id.clone(),
        client_id: session.client_id.clone(),
        user_id: session.user_id.clone(),
        status,
        last_active_organization_id: session.active_org_id.clone(),
        actor: None,
        last_active_at: session.last_active_at,
        expire_at: session.expire_at,
        abandon_at: session.abandon_at,
        created_at: session.created_at,
        updated_at: session.updated_at,
        latest_activity: activity,
    })
}
