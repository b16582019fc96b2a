//! `/v1/me/external_accounts…`: the signed-in user's accounts at identity providers
//! (docs/identity-providers.md, "On the user").

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::delete;
use axum::Router;
use serde_json::json;

use super::me::Me;
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/me/external_accounts/{id}", delete(remove))
}

/// Removes one, unless it is the user's last way to sign in.
async fn remove(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    state.account.delete_external_account(&m.who, &id).await?;
    m.reply(&state, json!({"object": "external_account", "id": id, "deleted": true})).await
}
