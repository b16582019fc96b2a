//! The client's sessions (`/v1/client/sessions…`, docs/frontend-api.md §7): read, touch (and
//! switch the active organization), mint a session token or a JWT template's token, end, remove,
//! sign out of all.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use latchkey_core::session::SessionStatus;
use latchkey_store::{SessionRow, UserRecord};
use serde_json::{json, Value};

use super::{json as views, OnClient, Reply};
use crate::cookies::append_set_cookies;
use crate::error::{json_response, ApiError};
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/client/sessions", delete(sign_out_all))
        .route("/v1/client/sessions/{id}", get(get_session))
        .route("/v1/client/sessions/{id}/touch", post(touch_session))
        .route("/v1/client/sessions/{id}/tokens", post(session_token))
        .route("/v1/client/sessions/{id}/tokens/{template_name}", post(template_token))
        .route("/v1/client/sessions/{id}/end", post(end_session))
        .route("/v1/client/sessions/{id}/remove", post(remove_session))
}

async fn sign_out_all(State(state): State<AppState>, c: OnClient) -> Result<Response, ApiError> {
    let client = state.services.sign_out_client(&c.client).await?;
    Reply::client(&c.caller, client).send(&state, &c.caller.ctx).await
}

/// A session with its user; that user object lists no memberships here (only the client's
/// and `/v1/me`'s user objects load them).
fn session_body(state: &AppState, s: &SessionRow, user: Option<&UserRecord>, token: Option<&str>) -> Value {
    let user = user.map(|u| (u, Vec::new()));
    let view = views::session_view(
        s,
        state.services.users().session_status(s),
        user,
        token,
        state.services.now(),
        &state.look(),
    );
    latchkey_service::resources::to_value(view)
}

async fn get_session(State(state): State<AppState>, c: OnClient, Path(id): Path<String>) -> Result<Response, ApiError> {
    let session = state.services.active_session_of(&c.client, &id).await?;
    let user = state.services.users().user(&session.user_id).await?;
    c.reply(&state, session_body(&state, &session, Some(&user), None), None).await
}

async fn touch_session(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    // Absent: keep the active organization; empty: the personal account.
    let org =
        p.0.contains_key("active_organization_id").then(|| p.text("active_organization_id").filter(|s| !s.is_empty()));
    let (session, token) = state.services.touch_session_token(&c.caller.ctx, &c.client, &id, org).await?;
    let user = state.services.users().user(&session.user_id).await?;
    c.reply(&state, session_body(&state, &session, Some(&user), Some(&token)), None).await
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    organization_id: Option<String>,
}

/// The one bare response among the session routes: `{object:"token", jwt}`.
async fn session_token(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
    p: Params,
) -> Result<Response, ApiError> {
    let ctx = &c.caller.ctx;
    // Absent: the session's active organization; empty: the personal account; an id or a
    // slug: that organization, if the user is a member.
    let jwt = match p.text("organization_id").or(q.organization_id) {
        None => state.services.session_token(ctx, &c.client, &id).await?,
        Some(org) => {
            let org = Some(org).filter(|o| !o.is_empty());
            state.services.session_token_for_org(ctx, &c.client, &id, org.as_deref()).await?
        }
    };
    let mut res = json_response(StatusCode::OK, &json!({"object": "token", "jwt": jwt}));
    if !c.caller.native {
        append_set_cookies(res.headers_mut(), &state.config.cookies.session(Some(&jwt)));
    }
    Ok(res)
}

/// A token from a JWT template (`session.getToken({ template })`), bare like the session
/// token. It is never set as the `__session` cookie: it is meant for another backend.
async fn template_token(
    State(state): State<AppState>,
    c: OnClient,
    Path((id, template)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let jwt = state.services.client_template_token(&c.client, &id, &template).await?;
    Ok(json_response(StatusCode::OK, &json!({"object": "token", "jwt": jwt})))
}

async fn end_or_remove(state: AppState, c: OnClient, id: String, status: SessionStatus) -> Result<Response, ApiError> {
    let session = state.services.end_session(&c.client, &id, status).await?;
    let user = state.services.users().find_user(&session.user_id).await?;
    c.reply(&state, session_body(&state, &session, user.as_ref(), None), None).await
}

async fn end_session(State(state): State<AppState>, c: OnClient, Path(id): Path<String>) -> Result<Response, ApiError> {
    end_or_remove(state, c, id, SessionStatus::Ended).await
}

async fn remove_session(
    State(state): State<AppState>,
    c: OnClient,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    end_or_remove(state, c, id, SessionStatus::Removed).await
}
