//! Clerk's Frontend API object shapes and their states (docs/frontend-api.md §6), built from
//! service records. Timestamps are epoch milliseconds.

use std::collections::HashMap;

use latchkey_service::ClientView;
use latchkey_store::{SessionRow, SignInRow, SignUpRow, UserRecord};
use serde_json::{json, Value};

pub use latchkey_service::resources::{avatar_url, email_json, phone_json, user_json};
use latchkey_service::resources::{to_value, PublicUserData, UserView};
use serde::Serialize;

fn metadata(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

/// A session as the Frontend API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub object: &'static str,
    pub id: String,
    pub status: String,
    pub expire_at: i64,
    pub abandon_at: i64,
    pub last_active_at: i64,
    pub last_active_token: Option<TokenView>,
    pub last_active_organization_id: Option<String>,
    pub actor: Option<Value>,
    pub tasks: Option<Value>,
    pub user: Option<UserView>,
    pub public_user_data: Option<PublicUserData>,
    pub factor_verification_age: [i64; 2],
    pub created_at: i64,
    pub updated_at: i64,
    /// Only in the signed-in user's own list of sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_activity: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub object: &'static str,
    pub jwt: String,
}

/// `user` comes with the memberships its user object lists.
pub fn session_view(
    s: &SessionRow,
    status: &str,
    user: Option<(&UserRecord, Vec<Value>)>,
    token: Option<&str>,
    now: i64,
    img: &str,
) -> SessionView {
    let minutes = (now - s.created_at).max(0) / 60_000;
    let (user, public_user_data) = match user {
        Some((u, memberships)) => (Some(UserView::frontend(u, img, memberships)), Some(PublicUserData::of(u, img))),
        None => (None, None),
    };
    SessionView {
        object: "session",
        id: s.id.clone(),
        status: status.to_owned(),
        expire_at: s.expire_at,
        abandon_at: s.abandon_at,
        last_active_at: s.last_active_at,
        last_active_token: token.map(|jwt| TokenView { object: "token", jwt: jwt.to_owned() }),
        last_active_organization_id: s.active_org_id.clone(),
        actor: None,
        tasks: None,
        user,
        public_user_data,
        factor_verification_age: [minutes, -1],
        created_at: s.created_at,
        updated_at: s.updated_at,
        latest_activity: None,
    }
}

fn verification_json(status: &str, expire_at: Option<i64>, attempts: i64) -> Value {
    json!({
        "object": "verification_otp",
        "status": status,
        "strategy": "email_code",
        "attempts": attempts,
        "expire_at": expire_at,
        "next_action": if status == "verified" { "" } else { "needs_attempt" },
        "supported_strategies": ["email_code"],
    })
}

pub fn sign_up_json(s: &SignUpRow, now: i64) -> Value {
    let email_verification = s.email.as_ref().map(|_| {
        let status = if s.email_verified {
            "verified"
        } else if s.code.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else if s.code.attempts >= i64::from(latchkey_core::code::MAX_CODE_ATTEMPTS) {
            "failed"
        } else {
            "unverified"
        };
        verification_json(status, s.code.expires_at, s.code.attempts)
    });
    let mut missing = Vec::new();
    if s.email.is_none() {
        missing.push("email_address");
    }
    if s.password_hash.is_none() && s.status != "complete" {
        missing.push("password");
    }
    let unverified: Vec<&str> = if s.email.is_some() && !s.email_verified { vec!["email_address"] } else { vec![] };
    json!({
        "object": "sign_up_attempt",
        "id": s.id,
        "status": s.status,
        "required_fields": ["email_address", "password"],
        "optional_fields": ["first_name", "last_name", "username"],
        "missing_fields": missing,
        "unverified_fields": unverified,
        "verifications": {
            "email_address": email_verification,
            "phone_number": null,
            "web3_wallet": null,
            "external_account": null,
        },
        "username": s.username,
        "email_address": s.email,
        "phone_number": null,
        "web3_wallet": null,
        "password_enabled": s.password_hash.is_some() || s.status == "complete",
        "has_password": s.password_hash.is_some() || s.status == "complete",
        "first_name": s.first_name,
        "last_name": s.last_name,
        "unsafe_metadata": metadata(&s.unsafe_metadata),
        "public_metadata": {},
        "custom_action": false,
        "external_id": null,
        "created_session_id": s.created_session_id,
        "created_user_id": s.created_user_id,
        "abandon_at": s.abandon_at,
        "legal_accepted_at": null,
    })
}

/// With enumeration protection the attempt looks the same whether or not the account exists:
/// the factors depend only on the identifier's kind, and no user data is shown before success.
pub fn sign_in_json(s: &SignInRow, img: &str) -> Value {
    let mut factors = vec![json!({"strategy": "password"})];
    if let (Some(email_id), Some(identifier)) = (&s.email_address_id, &s.identifier) {
        factors.push(json!({"strategy": "email_code", "safe_identifier": identifier, "email_address_id": email_id, "primary": true}));
    }
    let first_factor_verification = s.first_factor_strategy.as_ref().map(|strategy| {
        json!({
            "object": "verification_otp",
            "status": s.first_factor_status.clone().unwrap_or_else(|| "unverified".into()),
            "strategy": strategy,
            "attempts": s.code.attempts,
            "expire_at": s.code.expires_at,
        })
    });
    json!({
        "object": "sign_in_attempt",
        "id": s.id,
        "status": s.status,
        "supported_identifiers": ["email_address", "username"],
        "identifier": s.identifier,
        "supported_first_factors": factors,
        "supported_second_factors": null,
        "first_factor_verification": first_factor_verification,
        "second_factor_verification": null,
        "user_data": {"first_name": null, "last_name": null, "image_url": img, "has_image": false},
        "created_session_id": s.created_session_id,
        "abandon_at": s.abandon_at,
        "client_trust_state": null,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientJson {
    pub object: &'static str,
    pub id: String,
    pub sessions: Vec<SessionView>,
    pub sign_in: Option<Value>,
    pub sign_up: Option<Value>,
    pub last_active_session_id: Option<String>,
    pub last_authentication_strategy: Option<String>,
    pub cookie_expires_at: Option<i64>,
    pub captcha_bypass: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `tokens` pairs session ids with a freshly minted token; `memberships` holds each signed-in
/// user's organization memberships by user id.
pub fn client_json(
    v: &ClientView,
    tokens: &[(String, String)],
    memberships: &HashMap<String, Vec<Value>>,
    now: i64,
    img: &str,
) -> Value {
    let sessions = v
        .sessions
        .iter()
        .map(|(s, u)| {
            let token = tokens.iter().find(|(id, _)| *id == s.id).map(|(_, t)| t.as_str());
            let joined = memberships.get(&u.user.id).cloned().unwrap_or_default();
            session_view(s, "active", Some((u, joined)), token, now, img)
        })
        .collect();
    let last_active =
        v.client.last_active_session_id.as_ref().filter(|id| v.sessions.iter().any(|(s, _)| &s.id == *id)).cloned();
    to_value(ClientJson {
        object: "client",
        id: v.client.id.clone(),
        sessions,
        sign_in: v.sign_in.as_ref().map(|s| sign_in_json(s, img)),
        sign_up: v.sign_up.as_ref().map(|s| sign_up_json(s, now)),
        last_active_session_id: last_active,
        last_authentication_strategy: None,
        cookie_expires_at: None,
        captcha_bypass: false,
        created_at: v.client.created_at,
        updated_at: v.client.updated_at,
    })
}
