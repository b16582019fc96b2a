//! Step-up checks of a session (`/v1/client/sessions/{id}/verify…`, docs/second-factors.md):
//! what Clerk's `useReverification` modal calls. Every answer carries the client, whose
//! session then shows its new `factor_verification_age` and a fresh token with that `fva`.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use latchkey_service::identity::{FactorState, Reverification};
use latchkey_service::resources::to_value;
use serde_json::{json, Value};

use super::json::{bare_factor, second_factor_verification, session_view, FactorVerification, FactorView};
use super::OnClient;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/client/sessions/{id}/verify", post(start))
        .route("/v1/client/sessions/{id}/verify/prepare_first_factor", post(prepare_first_factor))
        .route("/v1/client/sessions/{id}/verify/attempt_first_factor", post(attempt_first_factor))
        .route("/v1/client/sessions/{id}/verify/prepare_second_factor", post(prepare_second_factor))
        .route("/v1/client/sessions/{id}/verify/attempt_second_factor", post(attempt_second_factor))
}

fn first_factor_verification(f: &FactorState) -> FactorVerification {
    FactorVerification {
        object: match f.strategy.as_str() {
            "password" => "verification_password",
            "passkey" => "verification_passkey",
            _ => "verification_otp",
        },
        status: f.status.clone(),
        strategy: f.strategy.clone(),
        attempts: f.attempts,
        expire_at: f.expire_at,
        external_verification_redirect_url: None,
        error: None,
        verified_at_client: None,
        nonce: f.nonce().map(str::to_owned),
    }
}

/// Clerk's `session_reverification`.
fn view(state: &AppState, r: &Reverification, user: &latchkey_store::UserRecord) -> Value {
    let first: Vec<FactorView> = r
        .first_factors
        .iter()
        .map(|o| FactorView {
            strategy: o.strategy,
            safe_identifier: o.safe_identifier.clone(),
            email_address_id: o.email_address_id.clone(),
            primary: (o.strategy == "email_code").then_some(o.primary),
        })
        .collect();
    let second: Vec<FactorView> = r.second_factors.iter().map(|s| bare_factor(s.as_str())).collect();
    let p = &r.progress;
    let session = session_view(
        &r.session,
        state.services.users().session_status(&r.session),
        Some((user, Vec::new())),
        None,
        state.services.now(),
        &state.look(),
    );
    json!({
        "object": "session_reverification",
        "level": p.level,
        "status": p.status,
        "supported_first_factors": first,
        "supported_second_factors": (!second.is_empty()).then_some(second),
        "first_factor_verification": p.first_factor.as_ref().map(first_factor_verification).map(to_value),
        "second_factor_verification": p
            .second_factor
            .as_ref()
            .map(|f| to_value(second_factor_verification(&f.strategy, &f.status, f.attempts))),
        "session": to_value(session),
    })
}

async fn reply(state: &AppState, c: OnClient, r: Reverification) -> Result<Response, ApiError> {
    let user = state.services.users().user(&r.session.user_id).await?;
    let body = view(state, &r, &user);
    c.reply(state, body, None).await
}

async fn start(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let level = p.required("level")?;
    let r = state.services.start_reverification(&c.client, &id, &level).await?;
    reply(&state, c, r).await
}

async fn prepare_first_factor(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.required("strategy")?;
    let email = p.text("email_address_id");
    let r = state
        .services
        .prepare_reverification_first_factor(&c.caller.ctx, &c.client, &id, &strategy, email.as_deref())
        .await?;
    reply(&state, c, r).await
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
    let r =
        state.services.attempt_reverification_first_factor(&c.caller.ctx, &c.client, &id, &strategy, &secret).await?;
    reply(&state, c, r).await
}

/// Authenticator apps and backup codes need no preparation: the check as it stands.
async fn prepare_second_factor(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.text("strategy").unwrap_or_default();
    let r = state.services.prepare_reverification_second_factor(&c.client, &id, &strategy).await?;
    reply(&state, c, r).await
}

async fn attempt_second_factor(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let strategy = p.required("strategy")?;
    let code = p.required("code")?;
    let r =
        state.services.attempt_reverification_second_factor(&c.caller.ctx, &c.client, &id, &strategy, &code).await?;
    reply(&state, c, r).await
}
