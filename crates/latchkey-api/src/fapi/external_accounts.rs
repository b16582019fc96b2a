//! `/v1/me/external_accounts…`: the signed-in user's accounts at identity providers
//! (docs/identity-providers.md, "On the user" and "Connecting an account").

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, patch, post};
use axum::Router;
use latchkey_service::resources::{to_value, Audience, ExternalAccountView};
use latchkey_service::{ConnectionStart, ServiceError};
use serde_json::{json, Value};

use super::me::Me;
use super::oauth::target;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me/external_accounts", post(connect))
        .route("/v1/me/external_accounts/{id}", delete(remove))
        .route("/v1/me/external_accounts/{id}/reauthorize", patch(reauthorize))
}

/// Connects an account at another provider: the browser goes to
/// `verification.external_verification_redirect_url` and comes back through the callback.
async fn connect(State(state): State<AppState>, m: Me, p: Params) -> Result<Response, ApiError> {
    start(state, m, p, None).await
}

/// Asks the provider of one of the user's accounts again, for `additional_scope`.
async fn reauthorize(
    State(state): State<AppState>,
    m: Me,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    start(state, m, p, Some(id)).await
}

async fn start(state: AppState, m: Me, p: Params, reauthorize: Option<String>) -> Result<Response, ApiError> {
    let back = target(&state, &m.caller, &p, "redirect_url")?.ok_or_else(|| {
        ServiceError::unprocessable("form_param_missing", "Enter the URL to come back to.").param("redirect_url")
    })?;
    let complete = target(&state, &m.caller, &p, "action_complete_redirect_url")?;
    let strategy = p.text("strategy");
    let started = state
        .services
        .start_oauth_connection(
            &m.caller.ctx,
            &m.client,
            &m.who,
            strategy.as_deref(),
            back,
            complete,
            &p.texts("additional_scope"),
            reauthorize.as_deref(),
        )
        .await?;
    let body = pending_account(&started, state.services.now());
    m.reply(&state, body).await
}

/// The account as Clerk shows one whose provider has not answered yet: `unverified`, with
/// where to send the browser. A new connection has no profile yet.
fn pending_account(started: &ConnectionStart, now: i64) -> Value {
    let mut account = match &started.existing {
        Some(a) => to_value(ExternalAccountView::of(a, Audience::Frontend)),
        None => json!({
            "object": "external_account",
            "id": started.account_id,
            "provider": started.strategy.strip_prefix("oauth_").unwrap_or(&started.strategy),
            "identification_id": started.account_id,
            "provider_user_id": "",
            "approved_scopes": "",
            "email_address": "",
            "email_address_verified": null,
            "first_name": "",
            "last_name": "",
            "avatar_url": "",
            "image_url": null,
            "username": null,
            "phone_number": null,
            "public_metadata": {},
            "label": null,
            "created_at": now,
            "updated_at": now,
        }),
    };
    account["verification"] = json!({
        "object": "verification_oauth",
        "status": "unverified",
        "strategy": started.strategy,
        "external_verification_redirect_url": started.provider_url,
        "error": null,
        "attempts": null,
        "expire_at": started.expires_at,
    });
    account
}

/// Removes one, unless it is the user's last way to sign in.
async fn remove(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    state.account.delete_external_account(&m.who, &id).await?;
    m.reply(&state, json!({"object": "external_account", "id": id, "deleted": true})).await
}
