//! Users' accounts at identity providers (docs/identity-providers.md, "On the user"):
//! `clerkClient.users.deleteUserExternalAccount` and `getUserOauthAccessToken`; and users'
//! passkeys (docs/passkeys.md): `clerkClient.users.deleteUserPasskey`.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get};
use serde::Serialize;
use serde_json::{json, Value};

use super::openapi::{list_of, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    vec![
        Operation {
            method: Method::DELETE,
            path: "/v1/users/{user_id}/external_accounts/{external_account_id}",
            route: delete(delete_external_account),
            doc: Doc::new("users", "Remove a user's account at an identity provider", "DeleteExternalAccount")
                .path("user_id")
                .path("external_account_id")
                .ok("DeletedObject"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/users/{user_id}/passkeys/{passkey_identification_id}",
            route: delete(delete_passkey),
            doc: Doc::new("users", "Remove a user's passkey (the user is told by mail)", "UserPasskeyDelete")
                .path("user_id")
                .path("passkey_identification_id")
                .ok("DeletedObject"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/users/{user_id}/oauth_access_tokens/{provider}",
            route: get(access_tokens),
            doc: Doc::new(
                "users",
                "The provider's access tokens of a user's accounts (a bare array)",
                "GetOAuthAccessToken",
            )
            .path("user_id")
            .path("provider")
            .paging()
            .query("paginated", json!({"type": "boolean"}))
            .ok_schema(list_of("OAuthAccessToken")),
        },
    ]
}

async fn delete_external_account(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.admin.delete_external_account(&op, &user_id, &id).await?;
    ok(views::deleted("external_account", &id))
}

async fn delete_passkey(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state.admin.delete_user_passkey(&op, &user_id, &id).await?;
    ok(views::deleted("passkey", &id))
}

/// Clerk's `OAuthAccessToken`.
#[derive(Serialize)]
struct AccessTokenView<'a> {
    object: &'static str,
    external_account_id: &'a str,
    provider_user_id: &'a str,
    token: &'a str,
    expires_at: Option<i64>,
    provider: &'a str,
    public_metadata: Value,
    label: Option<String>,
    scopes: Vec<&'a str>,
}

async fn access_tokens(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((user_id, provider)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let tokens = state.services.provider_access_tokens(&op, &user_id, &provider).await?;
    let list: Vec<Value> = tokens
        .iter()
        .map(|t| {
            latchkey_service::resources::to_value(AccessTokenView {
                object: "oauth_access_token",
                external_account_id: &t.account.id,
                provider_user_id: &t.account.provider_user_id,
                token: &t.token,
                // Clerk's document: seconds since 1970.
                expires_at: t.account.token_expires_at.map(|ms| ms / 1000),
                provider: &t.account.provider,
                public_metadata: json!({}),
                label: None,
                scopes: t.account.approved_scopes.split_whitespace().collect(),
            })
        })
        .collect();
    ok(Value::Array(list))
}
