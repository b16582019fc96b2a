//! Backend API objects (docs/backend-api.md §5): snake_case, `object` discriminators, epoch
//! milliseconds. Users share the Frontend API's shape plus what only a backend may see.

use latchkey_store::{InvitationRow, JwtTemplateRow, SessionRow, SignInTokenRow, UserRecord};
use serde_json::{json, Value};

use crate::fapi::json as fapi;
use crate::AppState;

pub use fapi::{email_json, phone_json};

pub fn user(state: &AppState, r: &UserRecord) -> Value {
    latchkey_service::resources::backend_user(&state.services, &state.avatar(), r)
}

pub fn session(state: &AppState, s: &SessionRow) -> Value {
    latchkey_service::resources::backend_session(&state.services, s)
}

pub fn token(jwt: &str) -> Value {
    json!({"object": "token", "jwt": jwt})
}

pub fn jwt_template(t: &JwtTemplateRow) -> Value {
    json!({
        "object": "jwt_template",
        "id": t.id,
        "name": t.name,
        "claims": serde_json::from_str::<Value>(&t.claims).unwrap_or_else(|_| json!({})),
        "lifetime": t.lifetime,
        "allowed_clock_skew": t.allowed_clock_skew,
        "custom_signing_key": t.signing_key_sealed.is_some(),
        "signing_algorithm": t.signing_algorithm,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

/// `url` is known only when the invitation is created (the link carries a secret).
pub fn invitation(i: &InvitationRow, url: Option<&str>) -> Value {
    json!({
        "object": "invitation",
        "id": i.id,
        "email_address": i.email,
        "public_metadata": Value::Object(latchkey_core::metadata::parse(&i.public_metadata)),
        "revoked": i.status == "revoked",
        "status": i.status,
        "url": url,
        "expires_at": i.expires_at,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
    })
}

/// `token` and `url` are shown only when the sign-in token is created.
pub fn sign_in_token(t: &SignInTokenRow, token: Option<&str>, url: Option<&str>) -> Value {
    json!({
        "object": "sign_in_token",
        "id": t.id,
        "user_id": t.user_id,
        "token": token,
        "status": t.status,
        "url": url,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
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
