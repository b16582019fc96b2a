//! Sign-in attempts (`/v1/client/sign_ins…`, docs/frontend-api.md §6): create (with an
//! identifier and password, a sign-in token as `ticket`, or a provider's `oauth_*` strategy,
//! see `oauth.rs`), read, the first factor, the second factor (docs/second-factors.md), and the
//! new password of a reset (`reset_password`, after a `reset_password_email_code` factor), and
//! the email link's start (the link itself is `email_link.rs`).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;
use latchkey_service::identity::{LinkRequest, EMAIL_LINK};
use latchkey_service::{NewPassword, ServiceError, SignInInput};

use super::{ensure_client, error_keeping_new_client, json, Caller, OnClient, Reply};
use crate::error::ApiError;
use crate::middleware::ViaProxy;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/client/sign_ins", post(create_sign_in))
        .route("/v1/client/sign_ins/{id}", get(get_sign_in))
        .route("/v1/client/sign_ins/{id}/prepare_first_factor", post(prepare_first_factor))
        .route("/v1/client/sign_ins/{id}/attempt_first_factor", post(attempt_first_factor))
        .route("/v1/client/sign_ins/{id}/prepare_second_factor", post(prepare_second_factor))
        .route("/v1/client/sign_ins/{id}/attempt_second_factor", post(attempt_second_factor))
        .route("/v1/client/sign_ins/{id}/reset_password", post(reset_password))
}

/// The first step may come before the browser has a client: one is made for it.
async fn create_sign_in(State(state): State<AppState>, caller: Caller, p: Params) -> Result<Response, ApiError> {
    p.refuse_privileged()?;
    let input =
        SignInInput { identifier: p.text("identifier"), strategy: p.text("strategy"), password: p.text("password") };
    let (client, token) = ensure_client(&state, &caller).await?;
    if let Some(strategy) = p.text("strategy").filter(|s| s.starts_with("oauth_")) {
        return match super::oauth::start(&state, &caller, &client, &strategy, &p).await {
            Ok((row, url)) => {
                let view = json::sign_in_json_with(&row, &state.look(), Some(&url));
                let mut reply = Reply::new(&caller, view, Some(client));
                reply.new_token = token;
                reply.send(&state, &caller.ctx).await
            }
            Err(e) => Ok(error_keeping_new_client(&state, &caller, e, token)),
        };
    }
    let outcome = match (p.text("strategy").as_deref(), p.text("ticket")) {
        // A sign-in token from the Backend API signs its user in at once.
        (Some("ticket"), ticket) => {
            state.services.sign_in_with_ticket(&caller.ctx, &client, ticket.as_deref().unwrap_or_default()).await
        }
        _ => state.services.create_sign_in(&caller.ctx, &client, input).await,
    };
    match outcome {
        Ok(step) => {
            let mut reply = Reply::new(&caller, json::sign_in_json(&step.row, &state.look()), Some(client));
            // A completed sign-in replaced the token of the client it may just have created.
            reply.new_token = step.new_client_token.or(token);
            reply.send(&state, &caller.ctx).await
        }
        Err(e) => Ok(error_keeping_new_client(&state, &caller, e, token)),
    }
}

/// What clerk-js polls while an email link is out: a link opened in another browser completes
/// the attempt here, in the answer of the browser that asked (docs/email-links.md).
async fn get_sign_in(State(state): State<AppState>, c: OnClient, Path(id): Path<String>) -> Result<Response, ApiError> {
    let step = state.services.poll_sign_in(&c.client, &id).await?;
    c.reply(&state, json::sign_in_json(&step.row, &state.look()), step.new_client_token).await
}

async fn prepare_first_factor(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    via: Option<Extension<ViaProxy>>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.required("strategy")?;
    let row = if strategy == EMAIL_LINK {
        let link = link_request(&state, &c, via, &p)?;
        let address = p.text("email_address_id");
        state.services.prepare_sign_in_link(&c.caller.ctx, &c.client, &id, address.as_deref(), link).await?
    } else {
        state.services.prepare_first_factor(&c.caller.ctx, &c.client, &id, &strategy).await?
    };
    c.reply(&state, json::sign_in_json(&row, &state.look()), None).await
}

async fn attempt_first_factor(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.required("strategy")?;
    let secret = match strategy.as_str() {
        "password" => p.required("password")?,
        "passkey" => p.required("public_key_credential")?,
        _ => p.required("code")?,
    };
    let step = state.services.attempt_first_factor(&c.caller.ctx, &c.client, &id, &strategy, &secret).await?;
    c.reply(&state, json::sign_in_json(&step.row, &state.look()), step.new_client_token).await
}

/// An email link's request: the page it leads to and the Frontend API it points at. Both go
/// into a mail that a stranger can make latchkey send to anyone, so both must be on origins the
/// operator configured (the instance's own and `allowed_origins`). Never the request's
/// `Origin` or the proxy's `Clerk-Proxy-Url` alone: a proxy builds that from forwarded headers a
/// client can set (docs/email-links.md "Security notes").
pub(super) fn link_request(
    state: &AppState,
    c: &OnClient,
    via: Option<Extension<ViaProxy>>,
    p: &Params,
) -> Result<LinkRequest, ApiError> {
    let refused = || {
        ServiceError::unprocessable("form_param_format_invalid", "This redirect URL is not allowed.")
            .long("An email link may lead only to the instance's origin or one of its allowed_origins.")
            .param("redirect_url")
    };
    let back = super::oauth::target(state, &c.caller, p, "redirect_url")?.ok_or_else(|| {
        ServiceError::unprocessable("form_param_missing", "Enter the page the link leads to.").param("redirect_url")
    })?;
    let configured = |url: &str| crate::origin_of(url).is_some_and(|o| state.config.origin_allowed(&o));
    // A path is on the instance's own origin (`target` shortens those).
    if !back.starts_with('/') && !configured(&back) {
        return Err(refused().into());
    }
    let base = via.map(|Extension(v)| v.url).filter(|url| configured(url));
    Ok(LinkRequest { redirect_url: back, base })
}

/// Authenticator apps and backup codes need no preparation (docs/second-factors.md).
async fn prepare_second_factor(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.text("strategy").unwrap_or_default();
    let row = state.services.prepare_second_factor(&c.client, &id, &strategy).await?;
    c.reply(&state, json::sign_in_json(&row, &state.look()), None).await
}

/// The second step: a code of the user's authenticator app or a backup code; the session
/// exists only once it passes.
async fn attempt_second_factor(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.required("strategy")?;
    let code = p.required("code")?;
    let step = state.services.attempt_second_factor(&c.caller.ctx, &c.client, &id, &strategy, &code).await?;
    c.reply(&state, json::sign_in_json(&step.row, &state.look()), step.new_client_token).await
}

/// The last step of "Forgot password?": the new password, once the reset code was proven.
async fn reset_password(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let request = NewPassword {
        password: p.required("password")?,
        sign_out_of_other_sessions: p.flag("sign_out_of_other_sessions"),
    };
    let step = state.services.reset_password(&c.caller.ctx, &c.client, &id, request).await?;
    c.reply(&state, json::sign_in_json(&step.row, &state.look()), step.new_client_token).await
}
