//! Users' second factors (docs/second-factors.md): `clerkClient.users.disableUserMFA`,
//! `deleteUserTOTP`, `deleteUserBackupCodes` and `verifyTOTP`.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, post};
use latchkey_service::admin::Removal;
use serde_json::json;

use super::input::Body;
use super::openapi::Doc;
use super::{ok, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    let user_id = json!({"type": "object", "properties": {"user_id": {"type": "string"}}, "required": ["user_id"]});
    let removal = |path, route, summary, id| Operation {
        method: Method::DELETE,
        path,
        route,
        doc: Doc::new("users", summary, id).path("user_id").ok_schema(user_id.clone()),
    };
    vec![
        removal("/v1/users/{user_id}/mfa", delete(disable_mfa), "Remove every second factor of a user", "DisableMFA"),
        removal("/v1/users/{user_id}/totp", delete(delete_totp), "Remove a user's authenticator app", "DeleteTOTP"),
        removal(
            "/v1/users/{user_id}/backup_code",
            delete(delete_backup_codes),
            "Remove a user's backup codes",
            "DeleteBackupCode",
        ),
        Operation {
            method: Method::POST,
            path: "/v1/users/{user_id}/verify_totp",
            route: post(verify_totp),
            doc: Doc::new("users", "Check a code of a user's authenticator app, or a backup code", "VerifyTOTP")
                .path("user_id")
                .body(json!({"code": {"type": "string"}}), &["code"])
                .ok_schema(json!({
                    "type": "object",
                    "properties": {"verified": {"type": "boolean"}, "code_type": {"type": "string", "enum": ["totp", "backup_code"]}},
                    "required": ["verified", "code_type"],
                })),
        },
    ]
}

async fn remove(
    state: &AppState,
    op: &latchkey_service::Operator,
    user_id: &str,
    what: Removal,
) -> Result<Response, ApiError> {
    state.admin.remove_second_factors(op, user_id, what).await?;
    ok(json!({"user_id": user_id}))
}

async fn disable_mfa(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    remove(&state, &op, &id, Removal::All).await
}

async fn delete_totp(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    remove(&state, &op, &id, Removal::Totp).await
}

async fn delete_backup_codes(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    remove(&state, &op, &id, Removal::BackupCodes).await
}

async fn verify_totp(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let code = b.required_string("code")?;
    let verified = state.admin.verify_second_factor(&op, &id, &code).await?;
    ok(json!({"verified": true, "code_type": verified.strategy.as_str()}))
}
