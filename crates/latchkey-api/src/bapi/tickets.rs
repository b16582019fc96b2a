//! App-level invitations (`clerkClient.invitations.*`) and sign-in tokens
//! (`clerkClient.signInTokens.*`).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get, post};
use latchkey_service::tickets::InvitationInput;
use serde_json::{json, Value};

use super::input::{Body, BodyList, Query};
use super::openapi::{list_of, paginated_of, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    let invitation = json!({
        "email_address": {"type": "string"}, "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 365},
        "ignore_existing": {"type": "boolean"}, "notify": {"type": "boolean"}, "public_metadata": {"type": "object"},
        "redirect_url": {"type": "string"},
    });
    vec![
        Operation {
            method: Method::GET,
            path: "/v1/invitations",
            route: get(list_invitations),
            doc: Doc::new("invitations", "List invitations, newest first", "ListInvitations")
                .query_list("status")
                .query("query", json!({"type": "string"}))
                .query("paginated", json!({"type": "boolean"}))
                .paging()
                .ok_schema(json!({"oneOf": [list_of("Invitation"), paginated_of("Invitation")]})),
        },
        Operation {
            method: Method::POST,
            path: "/v1/invitations",
            route: post(create_invitation),
            doc: Doc::new("invitations", "Invite someone to sign up", "CreateInvitation")
                .body(invitation.clone(), &["email_address"])
                .ok("Invitation"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/invitations/bulk",
            route: post(create_invitations),
            doc: Doc::new("invitations", "Create several invitations at once (all or none)", "CreateBulkInvitations")
                .body_schema(json!({"type": "array", "maxItems": 100, "items": {"type": "object", "properties": invitation, "required": ["email_address"]}}))
                .ok_schema(list_of("Invitation")),
        },
        Operation {
            method: Method::POST,
            path: "/v1/invitations/{invitation_id}/revoke",
            route: post(revoke_invitation),
            doc: Doc::new("invitations", "Revoke a pending invitation", "RevokeInvitation").path("invitation_id").ok("Invitation"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/invitations/{invitation_id}",
            route: delete(delete_invitation),
            doc: Doc::new("invitations", "Delete an invitation", "DeleteInvitation").path("invitation_id").ok("DeletedObject"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sign_in_tokens",
            route: post(create_sign_in_token),
            doc: Doc::new("sign_in_tokens", "A single-use sign-in link for a user", "CreateSignInToken")
                .body(
                    json!({"user_id": {"type": "string"}, "expires_in_seconds": {"type": "integer", "minimum": 1, "maximum": 315360000}}),
                    &["user_id"],
                )
                .ok("SignInToken"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/sign_in_tokens/{sign_in_token_id}/revoke",
            route: post(revoke_sign_in_token),
            doc: Doc::new("sign_in_tokens", "Revoke a pending sign-in token", "RevokeSignInToken")
                .path("sign_in_token_id")
                .ok("SignInToken"),
        },
    ]
}

fn invitation_input(b: &Body) -> Result<InvitationInput, ApiError> {
    Ok(InvitationInput {
        email_address: b.required_string("email_address")?,
        expires_in_days: b.int("expires_in_days")?,
        ignore_existing: b.bool("ignore_existing")?.unwrap_or(false),
        notify: b.bool("notify")?,
        public_metadata: b.object("public_metadata")?,
        redirect_url: b.string("redirect_url")?,
    })
}

async fn list_invitations(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let query = q.one("query");
    let (rows, total) = state.services.list_invitations(&q.all("status"), query.as_deref(), limit, offset).await?;
    let data: Vec<Value> = rows.iter().map(|i| views::invitation(i, None)).collect();
    if q.flag("paginated")? {
        ok(views::paginated(data, total))
    } else {
        ok(Value::Array(data))
    }
}

async fn create_invitation(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    b: Body,
) -> Result<Response, ApiError> {
    let (row, url) = state.services.create_invitation(&op, invitation_input(&b)?).await?;
    ok(views::invitation(&row, Some(&url)))
}

/// Every entry is validated before any is created, so a bad entry creates nothing.
async fn create_invitations(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    BodyList(entries): BodyList,
) -> Result<Response, ApiError> {
    let inputs = entries.iter().map(invitation_input).collect::<Result<Vec<_>, _>>()?;
    let mut created = Vec::with_capacity(inputs.len());
    for input in &inputs {
        state.services.check_invitation(input).await?;
    }
    for input in inputs {
        let (row, url) = state.services.create_invitation(&op, input).await?;
        created.push(views::invitation(&row, Some(&url)));
    }
    ok(Value::Array(created))
}

async fn revoke_invitation(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::invitation(&state.services.revoke_invitation(&op, &id).await?, None))
}

async fn delete_invitation(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.services.delete_invitation(&op, &id).await?;
    ok(views::deleted("invitation", &id))
}

async fn create_sign_in_token(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    b: Body,
) -> Result<Response, ApiError> {
    let user_id = b.required_string("user_id")?;
    let (row, token, url) = state.services.create_sign_in_token(&op, &user_id, b.int("expires_in_seconds")?).await?;
    ok(views::sign_in_token(&row, Some(&token), Some(&url)))
}

async fn revoke_sign_in_token(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::sign_in_token(&state.services.revoke_sign_in_token(&op, &id).await?, None, None))
}
