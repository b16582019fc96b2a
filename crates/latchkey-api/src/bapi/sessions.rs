//! Sessions (`clerkClient.sessions.*`): list, get, create (for tests), revoke, and tokens —
//! the session token or one from a JWT template; and the session verification Clerk removed
//! from its document but its older SDKs still call (docs/clerk-sdks.md, "Older SDK
//! generations").

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{json, Value};

use super::input::{Body, Query};
use super::openapi::{list_of, paginated_of, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    let expires = json!({"expires_in_seconds": {"type": ["integer", "null"], "minimum": 30, "maximum": 315360000}});
    vec![
        Operation {
            method: Method::GET,
            path: "/v1/sessions",
            route: get(list_sessions),
            doc: Doc::new("sessions", "List sessions, newest first (paginated=true gives {data,total_count})", "GetSessionList")
                .query("client_id", json!({"type": "string"}))
                .query("user_id", json!({"type": "string"}))
                .query("status", json!({"enum": ["active", "revoked", "ended", "expired", "removed", "abandoned", "replaced", "pending"]}))
                .query("paginated", json!({"type": "boolean"}))
                .paging()
                .ok_schema(json!({"oneOf": [list_of("Session"), paginated_of("Session")]})),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sessions",
            route: post(create_session),
            doc: Doc::new("sessions", "Create a session for a user (for tests)", "createSession")
                .body(json!({"user_id": {"type": "string"}, "active_organization_id": {"type": "string"}}), &["user_id"])
                .ok("Session"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/sessions/{session_id}",
            route: get(get_session),
            doc: Doc::new("sessions", "Get a session", "GetSession").path("session_id").ok("Session"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sessions/{session_id}/revoke",
            route: post(revoke_session),
            doc: Doc::new("sessions", "Revoke a session", "RevokeSession").path("session_id").ok("Session"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sessions/verify",
            route: post(verify_token),
            doc: Doc::new("sessions", "The live session a session token belongs to (older SDKs' verifySessionToken)", "VerifySessionToken")
                .body(json!({"token": {"type": "string"}}), &["token"])
                .ok("Session"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sessions/{session_id}/verify",
            route: post(verify_session),
            doc: Doc::new("sessions", "Verify that a session token is this live session's (older SDKs' sessions.verifySession)", "VerifySession")
                .path("session_id")
                .body(json!({"token": {"type": "string"}}), &["token"])
                .ok("Session"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sessions/{session_id}/tokens",
            route: post(session_token),
            doc: Doc::new("sessions", "A session token for an active session", "CreateSessionToken")
                .path("session_id")
                .body(expires.clone(), &[])
                .ok("Token"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sessions/{session_id}/tokens/{template_name}",
            route: post(template_token),
            doc: Doc::new("sessions", "A token from a JWT template for an active session", "CreateSessionTokenFromTemplate")
                .path("session_id")
                .path("template_name")
                .body(expires, &[])
                .ok("Token"),
        },
    ]
}

async fn list_sessions(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let (rows, total) =
        state.admin.list_sessions(q.one("user_id"), q.one("client_id"), q.one("status"), limit, offset).await?;
    let data: Vec<Value> = rows.iter().map(|s| views::session(&state, s)).collect();
    if q.flag("paginated")? {
        ok(views::paginated(data, total))
    } else {
        ok(Value::Array(data))
    }
}

async fn create_session(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    b: Body,
) -> Result<Response, ApiError> {
    let user_id = b.required_string("user_id")?;
    let active_org = b.string("active_organization_id")?.filter(|s| !s.is_empty());
    ok(views::session(&state, &state.admin.admin_create_session(&op, &user_id, active_org.as_deref()).await?))
}

async fn get_session(
    State(state): State<AppState>,
    _: SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::session(&state, &state.services.users().session(&id).await?))
}

async fn revoke_session(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::session(&state, &state.admin.admin_revoke_session(&op, &id).await?))
}

async fn verify_token(State(state): State<AppState>, SecretKey(op): SecretKey, b: Body) -> Result<Response, ApiError> {
    let token = b.required_string("token")?;
    ok(views::session(&state, &state.services.verify_session_token(&op, &token, None).await?))
}

async fn verify_session(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let token = b.required_string("token")?;
    ok(views::session(&state, &state.services.verify_session_token(&op, &token, Some(&id)).await?))
}

async fn session_token(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let jwt = state.services.admin_session_token(&op, &id, b.int("expires_in_seconds")?).await?;
    ok(views::token(&jwt))
}

async fn template_token(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((id, template)): Path<(String, String)>,
    b: Body,
) -> Result<Response, ApiError> {
    let jwt = state.services.template_token(&op, &id, &template, b.int("expires_in_seconds")?).await?;
    ok(views::token(&jwt))
}
