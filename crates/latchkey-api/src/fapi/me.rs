//! `/v1/me…`: the signed-in user's own account (docs/frontend-api.md §9). The session is the one
//! named by `_clerk_session_id`, or the client's last active session.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_service::account::ProfileUpdate;
use latchkey_service::ServiceError;
use latchkey_store::{ClientRow, SessionRow, UserRecord};
use serde_json::{json, Value};

use super::{json as views, Caller, Reply};
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(get_me).patch(update_me))
        .route("/v1/me/email_addresses", get(list_emails).post(add_email))
        .route("/v1/me/email_addresses/{id}", get(get_email).delete(delete_email))
        .route("/v1/me/email_addresses/{id}/prepare_verification", post(prepare_email))
        .route("/v1/me/email_addresses/{id}/attempt_verification", post(attempt_email))
        .route("/v1/me/change_password", post(change_password))
        .route("/v1/me/sessions", get(list_sessions))
        .route("/v1/me/sessions/active", get(list_sessions))
        .route("/v1/me/sessions/{id}/revoke", post(revoke_session))
}

#[derive(serde::Deserialize, Default)]
pub struct SessionQuery {
    #[serde(default)]
    _clerk_session_id: Option<String>,
}

pub struct Me {
    pub client: ClientRow,
    pub session: SessionRow,
    pub user: UserRecord,
}

pub async fn me(state: &AppState, caller: &Caller, q: &SessionQuery) -> Result<Me, ApiError> {
    let signed_out =
        || ApiError(ServiceError::unauthenticated("You are signed out.").long("Sign in to use this endpoint."));
    let client = caller.client.clone().ok_or_else(signed_out)?;
    let sid = q
        ._clerk_session_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| client.last_active_session_id.clone())
        .ok_or_else(signed_out)?;
    let session = state.services.active_session_of(&client, &sid).await.map_err(|_| signed_out())?;
    let user = state.services.user(&session.user_id).await?;
    Ok(Me { client, session, user })
}

async fn user_body(state: &AppState, u: &UserRecord) -> Result<Value, ApiError> {
    let mut v = views::user_json(u, &state.avatar());
    super::with_memberships(state, &mut v).await?;
    Ok(v)
}

async fn get_me(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    Reply::new(&caller, user_body(&state, &m.user).await?, Some(m.client)).send(&state, &caller.ctx).await
}

async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    p: Params,
) -> Result<Response, ApiError> {
    p.refuse_privileged()?;
    let m = me(&state, &caller, &q).await?;
    let update = ProfileUpdate {
        first_name: p.text("first_name"),
        last_name: p.text("last_name"),
        username: p.text("username"),
        primary_email_address_id: p.text("primary_email_address_id").filter(|s| !s.is_empty()),
        unsafe_metadata: p.object("unsafe_metadata")?,
    };
    let user = state.services.update_profile(&m.user.user.id, update).await?;
    Reply::new(&caller, user_body(&state, &user).await?, Some(m.client)).send(&state, &caller.ctx).await
}

fn list(data: Vec<Value>) -> Value {
    let n = data.len();
    json!({"data": data, "total_count": n})
}

async fn list_emails(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let data = m.user.emails.iter().map(views::email_json).collect();
    Reply::new(&caller, list(data), Some(m.client)).send(&state, &caller.ctx).await
}

async fn add_email(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    p: Params,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let address = p.required("email_address")?;
    let email = state.services.add_email(&caller.ctx, &m.user.user.id, &address).await?;
    Reply::new(&caller, views::email_json(&email), Some(m.client)).send(&state, &caller.ctx).await
}

async fn get_email(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let email =
        m.user.emails.iter().find(|e| e.id == id).ok_or_else(|| ApiError(ServiceError::not_found("Email address")))?;
    Reply::new(&caller, views::email_json(email), Some(m.client.clone())).send(&state, &caller.ctx).await
}

async fn delete_email(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    state.services.delete_email(&m.user.user.id, &id).await?;
    Reply::new(&caller, json!({"object": "email_address", "id": id, "deleted": true}), Some(m.client))
        .send(&state, &caller.ctx)
        .await
}

async fn prepare_email(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let email = state.services.prepare_email_verification(&caller.ctx, &m.user.user.id, &id).await?;
    Reply::new(&caller, views::email_json(&email), Some(m.client)).send(&state, &caller.ctx).await
}

async fn attempt_email(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let code = p.required("code")?;
    let email = state.services.attempt_email_verification(&caller.ctx, &m.user.user.id, &id, &code).await?;
    Reply::new(&caller, views::email_json(&email), Some(m.client)).send(&state, &caller.ctx).await
}

async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    p: Params,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let new = p.required("new_password")?;
    let current = p.text("current_password");
    let keep = p.flag("sign_out_of_other_sessions").then_some(m.session.id.as_str());
    let user = state.services.change_password(&caller.ctx, &m.user.user.id, current.as_deref(), &new, keep).await?;
    Reply::new(&caller, user_body(&state, &user).await?, Some(m.client)).send(&state, &caller.ctx).await
}

async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let sessions = state.services.active_sessions(&m.user.user.id).await?;
    let now = state.services.now();
    let data: Vec<Value> = sessions
        .iter()
        .map(|s| {
            let mut v = views::session_json(s, "active", None, None, now, &state.avatar());
            if let Some(o) = v.as_object_mut() {
                o.insert("latest_activity".into(), json!({"object": "session_activity", "id": s.id, "device_type": null, "browser_name": null, "browser_version": null, "ip_address": null, "city": null, "country": null, "is_mobile": false}));
            }
            v
        })
        .collect();
    // Clerk's SDK expects a bare array here.
    Reply::new(&caller, Value::Array(data), Some(m.client)).send(&state, &caller.ctx).await
}

async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SessionQuery>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let m = me(&state, &caller, &q).await?;
    let session = state.services.revoke_own_session(&m.user.user.id, &id).await?;
    let body = views::session_json(
        &session,
        state.services.session_status(&session),
        None,
        None,
        state.services.now(),
        &state.avatar(),
    );
    Reply::new(&caller, body, Some(m.client)).send(&state, &caller.ctx).await
}
