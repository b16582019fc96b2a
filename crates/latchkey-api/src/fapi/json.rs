//! Clerk's Frontend API object shapes and their states (docs/frontend-api.md §6), built from
//! service records. Timestamps are epoch milliseconds.

use std::collections::HashMap;

use latchkey_core::reverification::factor_ages;
use latchkey_service::ClientView;
use latchkey_store::{SessionRow, SignInRow, SignUpRow, UserRecord};
use serde_json::{json, Value};

pub use latchkey_service::resources::{avatar_url, email_json, phone_json};
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
    pub latest_activity: Option<latchkey_service::SessionActivity>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub object: &'static str,
    pub jwt: String,
}

/// The client lists live sessions only: `active`, or `pending` while a task is due.
fn status_of(s: &SessionRow) -> &'static str {
    if s.pending_task.is_some() {
        "pending"
    } else {
        "active"
    }
}

/// `user` comes with the memberships its user object lists.
pub fn session_view(
    s: &SessionRow,
    status: &str,
    user: Option<(&UserRecord, Vec<Value>)>,
    token: Option<&str>,
    now: i64,
    look: &Look,
) -> SessionView {
    let (user, public_user_data) = match user {
        Some((u, memberships)) => (Some(frontend_user(u, memberships, look)), Some(PublicUserData::of(u, &look.img))),
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
        tasks: s.pending_task.as_ref().map(|key| json!([{"key": key}])),
        user,
        public_user_data,
        factor_verification_age: factor_ages(
            now,
            s.created_at,
            s.first_factor_verified_at,
            s.second_factor_verified_at,
        ),
        created_at: s.created_at,
        updated_at: s.updated_at,
        latest_activity: None,
    }
}

/// A one-time-code verification of a sign-up's email address.
#[derive(Debug, Clone, Serialize)]
pub struct CodeVerification {
    pub object: &'static str,
    pub status: &'static str,
    pub strategy: &'static str,
    pub attempts: i64,
    pub expire_at: Option<i64>,
    pub next_action: &'static str,
    pub supported_strategies: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at_client: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignUpVerifications {
    pub email_address: Option<CodeVerification>,
    pub phone_number: Option<Value>,
    pub web3_wallet: Option<Value>,
    pub external_account: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignUpView {
    pub object: &'static str,
    pub id: String,
    pub status: String,
    pub required_fields: [&'static str; 2],
    pub optional_fields: [&'static str; 3],
    pub missing_fields: Vec<&'static str>,
    pub unverified_fields: Vec<&'static str>,
    pub verifications: SignUpVerifications,
    pub username: Option<String>,
    pub email_address: Option<String>,
    pub phone_number: Option<String>,
    pub web3_wallet: Option<String>,
    pub password_enabled: bool,
    pub has_password: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub unsafe_metadata: Value,
    pub public_metadata: Value,
    pub custom_action: bool,
    pub external_id: Option<String>,
    pub created_session_id: Option<String>,
    pub created_user_id: Option<String>,
    pub abandon_at: i64,
    pub legal_accepted_at: Option<i64>,
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
        let link = s.link_redirect_url.is_some();
        let strategy = if link { "email_link" } else { "email_code" };
        CodeVerification {
            object: if link { "verification_email_link" } else { "verification_otp" },
            status,
            strategy,
            attempts: s.code.attempts,
            expire_at: s.code.expires_at,
            next_action: if status == "verified" { "" } else { "needs_attempt" },
            supported_strategies: [strategy],
            verified_at_client: link_client(link, s.link_verified_client.as_deref()),
        }
    });
    let mut missing = Vec::new();
    if s.email.is_none() {
        missing.push("email_address");
    }
    // A sign-up through an identity provider needs no password.
    let external = s.external_profile.as_deref().and_then(|raw| serde_json::from_str::<Value>(raw).ok());
    if s.password_hash.is_none() && s.status != "complete" && external.is_none() {
        missing.push("password");
    }
    let external_account = external.map(|p| {
        serde_json::json!({
            "object": "verification_oauth", "status": "verified", "strategy": p["strategy"],
            "attempts": null, "expire_at": s.abandon_at, "error": null,
        })
    });
    let unverified = if s.email.is_some() && !s.email_verified { vec!["email_address"] } else { vec![] };
    let has_password = s.password_hash.is_some() || s.status == "complete";
    to_value(SignUpView {
        object: "sign_up_attempt",
        id: s.id.clone(),
        status: s.status.clone(),
        required_fields: ["email_address", "password"],
        optional_fields: ["first_name", "last_name", "username"],
        missing_fields: missing,
        unverified_fields: unverified,
        verifications: SignUpVerifications {
            email_address: email_verification,
            phone_number: None,
            web3_wallet: None,
            external_account,
        },
        username: s.username.clone(),
        email_address: s.email.clone(),
        phone_number: None,
        web3_wallet: None,
        password_enabled: has_password,
        has_password,
        first_name: s.first_name.clone(),
        last_name: s.last_name.clone(),
        unsafe_metadata: metadata(&s.unsafe_metadata),
        public_metadata: json!({}),
        custom_action: false,
        external_id: None,
        created_session_id: s.created_session_id.clone(),
        created_user_id: s.created_user_id.clone(),
        abandon_at: s.abandon_at,
        legal_accepted_at: None,
    })
}

/// A first factor a sign-in may use.
#[derive(Debug, Clone, Serialize)]
pub struct FactorView {
    pub strategy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safe_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FactorVerification {
    pub object: &'static str,
    pub status: String,
    pub strategy: String,
    pub attempts: i64,
    pub expire_at: Option<i64>,
    /// A provider's sign-in: where to send the browser (only in the answer that started it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_verification_redirect_url: Option<String>,
    /// A provider's sign-in: why it failed, or `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// An email link: the client whose browser opened it (absent until then, and for other
    /// strategies). clerk-js compares it with its own client to say "signed in on other tab".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at_client: Option<Value>,
    /// A passkey: the options for `navigator.credentials.get` (JSON text), while the
    /// challenge is out. clerk-js parses it whenever present, so it is absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Clerk's document types `verified_at_client` as a string (not nullable): absent until known.
fn link_client(is_link: bool, client: Option<&str>) -> Option<Value> {
    client.filter(|_| is_link).map(|c| Value::String(c.to_owned()))
}

/// Clerk's error of a provider's trip (`first_factor_error`).
fn trip_error(code: &str) -> Value {
    let message = latchkey_service::oauth::trip_error_message(code);
    serde_json::json!({"code": code, "message": message, "long_message": message, "meta": {}})
}

/// Before success a sign-in shows no user data: this placeholder whatever the account.
#[derive(Debug, Clone, Serialize)]
pub struct SignInUserData {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: String,
    pub has_image: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignInView {
    pub object: &'static str,
    pub id: String,
    pub status: String,
    pub supported_identifiers: [&'static str; 2],
    pub identifier: Option<String>,
    pub supported_first_factors: Vec<FactorView>,
    pub supported_second_factors: Option<Vec<FactorView>>,
    pub first_factor_verification: Option<FactorVerification>,
    pub second_factor_verification: Option<FactorVerification>,
    pub user_data: SignInUserData,
    pub created_session_id: Option<String>,
    pub abandon_at: i64,
    pub client_trust_state: Option<String>,
}

/// The second factors a sign-in offers once its first factor passed (`null` before).
fn second_factors_of(s: &SignInRow) -> Option<Vec<FactorView>> {
    let list = latchkey_service::identity::supported_second_factors(s);
    (!list.is_empty()).then(|| list.into_iter().map(bare_factor).collect())
}

/// A factor named by its strategy alone (an authenticator app, backup codes, a password).
pub fn bare_factor(strategy: &str) -> FactorView {
    let strategy = match strategy {
        "totp" => "totp",
        "backup_code" => "backup_code",
        "email_code" => "email_code",
        "passkey" => "passkey",
        _ => "password",
    };
    FactorView { strategy, safe_identifier: None, email_address_id: None, primary: None }
}

/// Clerk's verification object of a second factor: `verification_totp` or
/// `verification_backup_code`.
pub fn second_factor_verification(strategy: &str, status: &str, attempts: i64) -> FactorVerification {
    FactorVerification {
        object: if strategy == "totp" { "verification_totp" } else { "verification_backup_code" },
        // Clerk's document knows only these two for a second factor.
        status: if status == "verified" { "verified" } else { "unverified" }.to_owned(),
        strategy: strategy.to_owned(),
        attempts,
        expire_at: None,
        external_verification_redirect_url: None,
        error: None,
        verified_at_client: None,
        nonce: None,
    }
}

/// What a sign-in's view depends on besides the attempt: the placeholder image, and whether
/// the instance offers email links.
#[derive(Debug, Clone)]
pub struct Look {
    pub img: String,
    pub email_link: bool,
    /// The instance lets people delete their own accounts: a user object says
    /// `delete_self_enabled` only when both the instance and the user allow it, as Clerk's, so
    /// `<UserProfile/>` (which reads only the user's flag) offers nothing the server refuses.
    pub delete_self: bool,
}

/// The Frontend API's user object (docs/account-data.md for `delete_self_enabled`).
pub fn user_json(u: &UserRecord, memberships: Vec<Value>, look: &Look) -> Value {
    to_value(frontend_user(u, memberships, look))
}

fn frontend_user(u: &UserRecord, memberships: Vec<Value>, look: &Look) -> UserView {
    let mut view = UserView::frontend(u, &look.img, memberships);
    view.delete_self_enabled &= look.delete_self;
    view
}

/// With enumeration protection the attempt looks the same whether or not the account exists:
/// the factors depend only on the identifier's kind, and no user data is shown before success.
pub fn sign_in_json(s: &SignInRow, look: &Look) -> Value {
    sign_in_json_with(s, look, None)
}

/// [`sign_in_json`], with the provider URL of a sign-in just started with a provider.
pub fn sign_in_json_with(s: &SignInRow, look: &Look, external_url: Option<&str>) -> Value {
    let img = &look.img;
    let password = FactorView { strategy: "password", safe_identifier: None, email_address_id: None, primary: None };
    let passkey = latchkey_service::identity::passkey_offered(s);
    let mut factors = Vec::new();
    if passkey {
        factors.push(bare_factor("passkey"));
    }
    // A sign-in begun with a passkey (no identifier) has no other factor.
    if !(passkey && s.identifier.is_none()) {
        factors.push(password);
    }
    if let (Some(email_id), Some(identifier)) = (&s.email_address_id, &s.identifier) {
        factors.push(FactorView {
            strategy: "email_code",
            safe_identifier: Some(identifier.clone()),
            email_address_id: Some(email_id.clone()),
            primary: Some(true),
        });
        if look.email_link {
            factors.push(FactorView {
                strategy: "email_link",
                safe_identifier: Some(identifier.clone()),
                email_address_id: Some(email_id.clone()),
                primary: Some(true),
            });
        }
        // Clerk's <SignIn/> offers "Forgot password?" when this factor is listed.
        factors.push(FactorView {
            strategy: "reset_password_email_code",
            safe_identifier: Some(identifier.clone()),
            email_address_id: Some(email_id.clone()),
            primary: None,
        });
    }
    let first_factor_verification = s.first_factor_strategy.as_ref().map(|strategy| {
        let oauth = strategy.starts_with("oauth_");
        FactorVerification {
            // Clerk's document: a password is `verification_password`, a code
            // `verification_otp`, a provider `verification_oauth`.
            object: match strategy.as_str() {
                "password" => "verification_password",
                "email_link" => "verification_email_link",
                "passkey" => "verification_passkey",
                _ if oauth => "verification_oauth",
                _ => "verification_otp",
            },
            status: s.first_factor_status.clone().unwrap_or_else(|| "unverified".into()),
            strategy: strategy.clone(),
            attempts: s.code.attempts,
            expire_at: if strategy == "passkey" {
                latchkey_service::identity::passkey_expire_at(s).or(Some(s.updated_at))
            } else {
                s.code.expires_at
            },
            external_verification_redirect_url: external_url.filter(|_| oauth).map(str::to_owned),
            error: oauth.then(|| s.first_factor_error.as_deref().map_or(Value::Null, trip_error)),
            verified_at_client: link_client(strategy == "email_link", s.link_verified_client.as_deref()),
            nonce: latchkey_service::identity::passkey_nonce(s).filter(|_| strategy == "passkey"),
        }
    });
    to_value(SignInView {
        object: "sign_in_attempt",
        id: s.id.clone(),
        status: s.status.clone(),
        supported_identifiers: ["email_address", "username"],
        identifier: s.identifier.clone(),
        supported_first_factors: factors,
        supported_second_factors: second_factors_of(s),
        first_factor_verification,
        second_factor_verification: s.second_factor_strategy.as_ref().map(|strategy| {
            second_factor_verification(
                strategy,
                s.second_factor_status.as_deref().unwrap_or("unverified"),
                s.second_factor_attempts,
            )
        }),
        user_data: SignInUserData { first_name: None, last_name: None, image_url: img.to_owned(), has_image: false },
        created_session_id: s.created_session_id.clone(),
        abandon_at: s.abandon_at,
        client_trust_state: None,
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
    look: &Look,
) -> Value {
    let sessions = v
        .sessions
        .iter()
        .map(|(s, u)| {
            let token = tokens.iter().find(|(id, _)| *id == s.id).map(|(_, t)| t.as_str());
            let joined = memberships.get(&u.user.id).cloned().unwrap_or_default();
            session_view(s, status_of(s), Some((u, joined)), token, now, look)
        })
        .collect();
    let last_active =
        v.client.last_active_session_id.as_ref().filter(|id| v.sessions.iter().any(|(s, _)| &s.id == *id)).cloned();
    to_value(ClientJson {
        object: "client",
        id: v.client.id.clone(),
        sessions,
        sign_in: v.sign_in.as_ref().map(|s| sign_in_json(s, look)),
        sign_up: v.sign_up.as_ref().map(|s| sign_up_json(s, now)),
        last_active_session_id: last_active,
        last_authentication_strategy: None,
        cookie_expires_at: None,
        captcha_bypass: false,
        created_at: v.client.created_at,
        updated_at: v.client.updated_at,
    })
}
