//! Backend API objects (docs/backend-api.md §5): snake_case, `object` discriminators, epoch
//! milliseconds. Users share the Frontend API's shape plus what only a backend may see.

use latchkey_service::resources::to_value;
use latchkey_store::{InvitationRow, JwtTemplateRow, SessionRow, SignInTokenRow, UserRecord};
use serde::Serialize;
use serde_json::{json, Value};

use crate::fapi::json as fapi;
use crate::AppState;

pub use fapi::{email_json, phone_json};

pub fn user(state: &AppState, r: &UserRecord) -> Value {
    latchkey_service::resources::backend_user(&state.avatar(), r, state.services.now())
}

pub fn session(state: &AppState, s: &SessionRow) -> Value {
    latchkey_service::resources::backend_session(
        s,
        state.services.users().session_status(s),
        state.services.activity_of(s),
    )
}

pub fn token(jwt: &str) -> Value {
    json!({"object": "token", "jwt": jwt})
}

#[derive(Debug, Clone, Serialize)]
pub struct JwtTemplateView {
    pub object: &'static str,
    pub id: String,
    pub name: String,
    pub claims: Value,
    pub lifetime: i64,
    pub allowed_clock_skew: i64,
    pub custom_signing_key: bool,
    pub signing_algorithm: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn jwt_template(t: &JwtTemplateRow) -> Value {
    to_value(JwtTemplateView {
        object: "jwt_template",
        id: t.id.clone(),
        name: t.name.clone(),
        claims: serde_json::from_str::<Value>(&t.claims).unwrap_or_else(|_| json!({})),
        lifetime: t.lifetime,
        allowed_clock_skew: t.allowed_clock_skew,
        custom_signing_key: t.signing_key_sealed.is_some(),
        signing_algorithm: t.signing_algorithm.clone(),
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct InvitationView {
    pub object: &'static str,
    pub id: String,
    pub email_address: String,
    pub public_metadata: Value,
    pub revoked: bool,
    pub status: String,
    /// Only when created; Clerk's document has no `null` here (docs/clerk-conformance.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `url` is known only when the invitation is created (the link carries a secret).
pub fn invitation(i: &InvitationRow, url: Option<&str>) -> Value {
    to_value(InvitationView {
        object: "invitation",
        id: i.id.clone(),
        email_address: i.email.clone(),
        public_metadata: Value::Object(latchkey_core::metadata::parse(&i.public_metadata)),
        revoked: i.status == "revoked",
        status: i.status.clone(),
        url: url.map(str::to_owned),
        expires_at: i.expires_at,
        created_at: i.created_at,
        updated_at: i.updated_at,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct SignInTokenView {
    pub object: &'static str,
    pub id: String,
    pub user_id: String,
    /// Only when created; Clerk's document has no `null` here (docs/clerk-conformance.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub status: String,
    pub url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `token` and `url` are shown only when the sign-in token is created.
pub fn sign_in_token(t: &SignInTokenRow, token: Option<&str>, url: Option<&str>) -> Value {
    to_value(SignInTokenView {
        object: "sign_in_token",
        id: t.id.clone(),
        user_id: t.user_id.clone(),
        token: token.map(str::to_owned),
        status: t.status.clone(),
        url: url.map(str::to_owned),
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

pub fn deleted(object: &str, id: &str) -> Value {
    json!({"object": object, "id": id, "deleted": true})
}

pub fn paginated(data: Vec<Value>, total: i64) -> Value {
    json!({"data": data, "total_count": total})
}

pub fn total_count(n: i64) -> Value {
    json!({"object": "total_count", "total_count": n})
}
