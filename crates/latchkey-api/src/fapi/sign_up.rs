//! Sign-up attempts (`/v1/client/sign_ups…`, docs/frontend-api.md §6): create, read, update,
//! and verify the email address with a code or an email link (docs/email-links.md).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use latchkey_service::identity::EMAIL_LINK;
use latchkey_service::SignUpInput;

use super::{ensure_client, error_keeping_new_client, json, Caller, OnClient, Reply};
use crate::error::ApiError;
use crate::middleware::ViaProxy;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/client/sign_ups", post(create_sign_up))
        .route("/v1/client/sign_ups/{id}", get(get_sign_up).patch(update_sign_up))
        .route("/v1/client/sign_ups/{id}/prepare_verification", post(prepare_verification))
        .route("/v1/client/sign_ups/{id}/attempt_verification", post(attempt_verification))
}

fn sign_up_input(p: &Params) -> Result<SignUpInput, ApiError> {
    p.refuse_privileged()?;
    Ok(SignUpInput {
        email_address: p.text("email_address"),
        password: p.text("password"),
        username: p.text("username"),
        first_name: p.text("first_name"),
        last_name: p.text("last_name"),
        unsafe_metadata: p.object("unsafe_metadata")?,
    })
}

/// The first step may come before the browser has a client: one is made for it.
async fn create_sign_up(State(state): State<AppState>, caller: Caller, p: Params) -> Result<Response, ApiError> {
    // Taking over a provider's sign-in for a person without an account reads no fields.
    let input = if p.flag("transfer") { None } else { Some(sign_up_input(&p)?) };
    let (client, token) = ensure_client(&state, &caller).await?;
    let Some(input) = input else {
        return match state.services.transfer_sign_up(&caller.ctx, &client).await {
            Ok(step) => {
                let mut reply = Reply::new(&caller, json::sign_up_json(&step.row, state.services.now()), Some(client));
                reply.new_token = step.new_client_token.or(token);
                reply.send(&state, &caller.ctx).await
            }
            Err(e) => Ok(error_keeping_new_client(&state, &caller, e, token)),
        };
    };
    match state.services.create_sign_up(&caller.ctx, &client, input).await {
        Ok(row) => {
            let mut reply = Reply::new(&caller, json::sign_up_json(&row, state.services.now()), Some(client));
            reply.new_token = token;
            reply.send(&state, &caller.ctx).await
        }
        Err(e) => Ok(error_keeping_new_client(&state, &caller, e, token)),
    }
}

/// What clerk-js polls while an email link is out (see `sign_in.rs`).
async fn get_sign_up(State(state): State<AppState>, c: OnClient, Path(id): Path<String>) -> Result<Response, ApiError> {
    let step = state.services.poll_sign_up(&c.client, &id).await?;
    c.reply(&state, json::sign_up_json(&step.row, state.services.now()), step.new_client_token).await
}

async fn update_sign_up(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let input = sign_up_input(&p)?;
    let step = state.services.update_sign_up(&c.caller.ctx, &c.client, &id, input).await?;
    c.reply(&state, json::sign_up_json(&step.row, state.services.now()), step.new_client_token).await
}

async fn prepare_verification(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    via: Option<Extension<ViaProxy>>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.text("strategy").unwrap_or_else(|| "email_code".into());
    let row = if strategy == EMAIL_LINK {
        let link = super::sign_in::link_request(&state, &c, via, &p)?;
        state.services.prepare_sign_up_link(&c.caller.ctx, &c.client, &id, link).await?
    } else {
        state.services.prepare_sign_up_verification(&c.caller.ctx, &c.client, &id, &strategy).await?
    };
    c.reply(&state, json::sign_up_json(&row, state.services.now()), None).await
}

async fn attempt_verification(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let code = p.required("code")?;
    let step = state.services.attempt_sign_up_verification(&c.caller.ctx, &c.client, &id, &code).await?;
    c.reply(&state, json::sign_up_json(&step.row, state.services.now()), step.new_client_token).await
}
