//! `/v1/me/passkeys…`: the signed-in user's passkeys (docs/passkeys.md). Adding one and
//! removing one need a recent check (reverification), as Clerk's `<UserProfile/>` asks;
//! reading and renaming do not.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_core::reverification::STRICT;
use latchkey_service::resources::{passkey_json, Audience};
use latchkey_store::PasskeyRow;
use serde_json::{json, Value};

use super::me::Me;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me/passkeys", post(create))
        .route("/v1/me/passkeys/{id}", get(read).patch(rename).delete(remove))
        .route("/v1/me/passkeys/{id}/attempt_verification", post(attempt_verification))
}

fn view(state: &AppState, p: &PasskeyRow) -> Value {
    passkey_json(p, Audience::Frontend, state.services.now())
}

async fn create(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    let recent = state.services.users().reverified(&m.who, STRICT).await?;
    let row = state.account.create_passkey(&m.caller.ctx, &recent).await?;
    let body = view(&state, &row);
    m.reply(&state, body).await
}

async fn read(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    let row = state.account.passkey(&m.who, &id).await?;
    let body = view(&state, &row);
    m.reply(&state, body).await
}

async fn rename(State(state): State<AppState>, m: Me, Path(id): Path<String>, p: Params) -> Result<Response, ApiError> {
    let name = p.required("name")?;
    let row = state.account.rename_passkey(&m.who, &id, &name).await?;
    let body = view(&state, &row);
    m.reply(&state, body).await
}

async fn remove(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    let recent = state.services.users().reverified(&m.who, STRICT).await?;
    let id = state.account.delete_passkey(&recent, &id).await?;
    m.reply(&state, json!({"object": "passkey", "id": id, "deleted": true})).await
}

/// The browser's answer to the registration's options (`public_key_credential`, JSON).
async fn attempt_verification(
    State(state): State<AppState>,
    m: Me,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.required("strategy")?;
    if strategy != "passkey" {
        return Err(latchkey_service::ServiceError::unprocessable(
            "form_param_value_invalid",
            "strategy must be passkey.",
        )
        .param("strategy")
        .into());
    }
    let credential = p.required("public_key_credential")?;
    let row = state.account.verify_passkey(&m.caller.ctx, &m.who, &id, &credential).await?;
    let body = view(&state, &row);
    m.reply(&state, body).await
}
