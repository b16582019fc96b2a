//! `/v1/me/totp…` and `/v1/me/backup_codes`: the signed-in user's authenticator app and backup
//! codes (docs/second-factors.md). Removing the app and making new backup codes need a recent
//! check (reverification).

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use latchkey_core::reverification::STRICT;
use latchkey_service::second_factors::TotpEnrolment;
use serde_json::{json, Value};

use super::me::Me;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me/totp", post(create_totp).delete(delete_totp))
        .route("/v1/me/totp/attempt_verification", post(verify_totp))
        // clerk-js calls it with a trailing slash.
        .route("/v1/me/backup_codes", post(create_backup_codes))
        .route("/v1/me/backup_codes/", post(create_backup_codes))
}

/// Clerk's `TOTP`: the secret and URI only while it is being set up.
fn totp_json(t: &TotpEnrolment, backup_codes: Option<Vec<String>>) -> Value {
    let shown = |v: &str| if v.is_empty() { Value::Null } else { Value::String(v.to_owned()) };
    json!({
        "object": "totp",
        "id": t.id,
        "secret": shown(&t.secret),
        "uri": shown(&t.uri),
        "verified": t.verified,
        "backup_codes": backup_codes,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

async fn create_totp(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    let totp = state.account.create_totp(&m.who).await?;
    m.reply(&state, totp_json(&totp, None)).await
}

async fn verify_totp(State(state): State<AppState>, m: Me, p: Params) -> Result<Response, ApiError> {
    let code = p.required("code")?;
    let verified = state.account.verify_totp(&m.caller.ctx, &m.who, &code).await?;
    m.reply(&state, totp_json(&verified.totp, verified.backup_codes)).await
}

async fn delete_totp(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    let recent = state.services.users().reverified(&m.who, STRICT).await?;
    let id = state.account.delete_totp(&recent).await?;
    m.reply(&state, json!({"object": "totp", "id": id, "deleted": true})).await
}

async fn create_backup_codes(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    let recent = state.services.users().reverified(&m.who, STRICT).await?;
    let (user, codes) = state.account.create_backup_codes(&recent).await?;
    let first = user.second_factors.backup_codes.iter().min_by_key(|c| c.id.clone());
    let body = json!({
        "object": "backup_code",
        "id": first.map(|c| c.id.clone()).unwrap_or_default(),
        "codes": codes,
        "created_at": first.map_or(0, |c| c.created_at),
        "updated_at": first.map_or(0, |c| c.created_at),
    });
    m.reply(&state, body).await
}
