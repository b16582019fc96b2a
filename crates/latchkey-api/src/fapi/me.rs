//! `/v1/me…`: the signed-in user's own account (docs/frontend-api.md §9). The session is the one
//! named by `_clerk_session_id`, or the client's last active session.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_core::reverification::STRICT;
use latchkey_service::account::ProfileUpdate;
use latchkey_service::authority::Client;
use latchkey_service::resources::to_value;
use latchkey_service::{ServiceError, SignedIn};
use latchkey_store::{SessionRow, UserRecord};
use serde_json::{json, Value};

use super::{json as views, Caller, Reply};
use crate::error::{json_response, ApiError};
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(get_me).patch(update_me).delete(delete_me))
        .route("/v1/me/email_addresses", get(list_emails).post(add_email))
        .route("/v1/me/email_addresses/{id}", get(get_email).delete(delete_email))
        .route("/v1/me/email_addresses/{id}/prepare_verification", post(prepare_email))
        .route("/v1/me/email_addresses/{id}/attempt_verification", post(attempt_email))
        .route("/v1/me/change_password", post(change_password))
        .route("/v1/me/remove_password", post(remove_password))
        .route("/v1/me/sessions", get(list_sessions))
        .route("/v1/me/sessions/active", get(list_sessions))
        .route("/v1/me/sessions/{id}/revoke", post(revoke_session))
}

/// The signed-in caller: their client, the active session (`_clerk_session_id`, or the
/// client's last active one), their user, and the [`SignedIn`] proof that account and
/// organization actions take. An extractor: a handler that takes it answers 401 to anyone
/// signed out before it runs.
pub struct Me {
    pub caller: Caller,
    pub client: Client,
    pub session: SessionRow,
    pub user: UserRecord,
    pub who: SignedIn,
}

impl FromRequestParts<AppState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let named = parts.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "_clerk_session_id")
                .map(|(_, v)| v.into_owned())
        });
        me(state, caller, named).await
    }
}

impl Me {
    /// The `{response, client}` envelope with the client as it is now.
    pub async fn reply(self, state: &AppState, body: Value) -> Result<Response, ApiError> {
        Reply::new(&self.caller, body, Some(self.client)).send(state, &self.caller.ctx).await
    }
}

async fn me(state: &AppState, caller: Caller, named: Option<String>) -> Result<Me, ApiError> {
    let signed_out =
        || ApiError(ServiceError::unauthenticated("You are signed out.").long("Sign in to use this endpoint."));
    let client = caller.client.clone().ok_or_else(signed_out)?;
    let sid =
        named.filter(|s| !s.is_empty()).or_else(|| client.last_active_session_id.clone()).ok_or_else(signed_out)?;
    let (who, session) = state.services.signed_in(&client, &sid).await.map_err(|_| signed_out())?;
    let user = state.services.users().user(who.user_id()).await?;
    Ok(Me { caller, client, session, user, who })
}

pub(super) async fn user_body(state: &AppState, u: &UserRecord) -> Result<Value, ApiError> {
    let memberships = super::orgs::memberships_of(state, &u.user.id).await?;
    Ok(views::user_json(u, memberships, &state.look()))
}

async fn get_me(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    let body = user_body(&state, &m.user).await?;
    m.reply(&state, body).await
}

async fn update_me(State(state): State<AppState>, m: Me, p: Params) -> Result<Response, ApiError> {
    p.refuse_privileged()?;
    let update = ProfileUpdate {
        first_name: p.text("first_name"),
        last_name: p.text("last_name"),
        username: p.text("username"),
        primary_email_address_id: p.text("primary_email_address_id").filter(|s| !s.is_empty()),
        unsafe_metadata: p.object("unsafe_metadata")?,
    };
    let user = state.account.update_profile(&m.who, update).await?;
    m.reply(&state, user_body(&state, &user).await?).await
}

/// A bare array, as Clerk's document gives it (no envelope: nothing here changes the client).
async fn list_emails(m: Me) -> Response {
    let data: Vec<Value> = m.user.emails.iter().map(views::email_json).collect();
    json_response(StatusCode::OK, &Value::Array(data))
}

async fn add_email(State(state): State<AppState>, m: Me, p: Params) -> Result<Response, ApiError> {
    let address = p.required("email_address")?;
    let email = state.account.add_email(&m.caller.ctx, &m.who, &address).await?;
    m.reply(&state, views::email_json(&email)).await
}

async fn get_email(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    let email =
        m.user.emails.iter().find(|e| e.id == id).ok_or_else(|| ApiError(ServiceError::not_found("Email address")))?;
    let body = views::email_json(email);
    m.reply(&state, body).await
}

async fn delete_email(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    state.account.delete_email(&m.who, &id).await?;
    m.reply(&state, json!({"object": "email_address", "id": id, "deleted": true})).await
}

async fn prepare_email(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    let email = state.account.prepare_email_verification(&m.caller.ctx, &m.who, &id).await?;
    m.reply(&state, views::email_json(&email)).await
}

async fn attempt_email(
    State(state): State<AppState>,
    m: Me,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let code = p.required("code")?;
    let email = state.account.attempt_email_verification(&m.caller.ctx, &m.who, &id, &code).await?;
    m.reply(&state, views::email_json(&email)).await
}

async fn change_password(State(state): State<AppState>, m: Me, p: Params) -> Result<Response, ApiError> {
    let new = p.required("new_password")?;
    let current = p.text("current_password");
    let keep = p.flag("sign_out_of_other_sessions").then_some(m.session.id.as_str());
    let recent = state.services.users().reverified(&m.who, STRICT).await?;
    let user = state.account.change_password(&m.caller.ctx, &recent, current.as_deref(), &new, keep).await?;
    m.reply(&state, user_body(&state, &user).await?).await
}

/// `user.removePassword({ currentPassword })`: the same recent check as a change.
async fn remove_password(State(state): State<AppState>, m: Me, p: Params) -> Result<Response, ApiError> {
    let current = p.text("current_password");
    let recent = state.services.users().reverified(&m.who, STRICT).await?;
    let user = state.account.remove_password(&m.caller.ctx, &recent, current.as_deref()).await?;
    m.reply(&state, user_body(&state, &user).await?).await
}

/// Deletes the caller's own account after a recent check; the client goes with it.
async fn delete_me(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    let recent = state.services.users().reverified(&m.who, STRICT).await?;
    let id = state.account.delete_own_account(&recent).await?;
    let body = json!({"object": "user", "id": id, "deleted": true});
    Reply::new(&m.caller, body, None).send(&state, &m.caller.ctx).await
}

/// A bare array: clerk-js maps the payload itself (`payload.map`), and Clerk's document agrees.
/// Each session with its activity: the browser and device its own client last showed.
async fn list_sessions(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    let sessions = state.account.active_sessions(&m.who).await?;
    let memberships = super::orgs::memberships_of(&state, &m.user.user.id).await?;
    let now = state.services.now();
    let data: Vec<Value> = sessions
        .iter()
        .map(|s| {
            let mut v = views::session_view(
                s,
                state.services.users().session_status(s),
                Some((&m.user, memberships.clone())),
                None,
                now,
                &state.look(),
            );
            v.latest_activity = Some(state.services.activity_of(s));
            to_value(v)
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Value::Array(data)))
}

async fn revoke_session(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    let session = state.account.revoke_own_session(&m.who, &id).await?;
    let memberships = super::orgs::memberships_of(&state, &m.user.user.id).await?;
    let body = views::session_view(
        &session,
        state.services.users().session_status(&session),
        Some((&m.user, memberships)),
        None,
        state.services.now(),
        &state.look(),
    );
    m.reply(&state, to_value(body)).await
}
