//! Exports of sync spaces: every live record of a user's personal space or of an
//! organization's space, for backups and data requests.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::openapi::Doc;
use super::{ok, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    let export = json!({"type": "object", "required": ["object", "space", "tables", "total_count"], "properties": {
        "object": {"const": "sync_export"}, "space": {"type": "string"}, "exported_at": {"type": "integer"},
        "total_count": {"type": "integer"},
        "tables": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object",
            "properties": {"id": {"type": "string"}, "fields": {"type": "object"}, "updated_at": {"type": "integer"}}}}},
    }});
    vec![
        Operation {
            method: Method::GET,
            path: "/v1/users/{user_id}/sync_export",
            route: get(export_user),
            doc: Doc::new("sync", "Export the user's personal sync space", "ExportUserSyncSpace")
                .path("user_id")
                .ok_schema(export.clone()),
        },
        Operation {
            method: Method::GET,
            path: "/v1/organizations/{organization_id}/sync_export",
            route: get(export_organization),
            doc: Doc::new("sync", "Export the organization's sync space", "ExportOrganizationSyncSpace")
                .path("organization_id")
                .ok_schema(export),
        },
    ]
}

async fn export_user(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = state.services.users().user(&id).await?;
    ok(state.sync.export(&op, &user.user.id).await?)
}

async fn export_organization(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let org = state.orgs.organization(&id).await?;
    ok(state.sync.export(&op, &org.id).await?)
}
