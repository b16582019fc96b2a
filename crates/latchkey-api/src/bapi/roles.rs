//! Organization roles and permissions at run time (Clerk's `/v1/organization_roles` and
//! `/v1/organization_permissions`, docs/organization-roles.md).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use latchkey_service::orgs::{PermissionInput, RoleInput, RoleListQuery};
use latchkey_service::resources;
use serde_json::{json, Value};

use super::input::{Body, Query};
use super::openapi::{paginated_of, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

const ROLE: &str = "/v1/organization_roles/{organization_role_id}";
const ROLE_PERMISSION: &str = "/v1/organization_roles/{organization_role_id}/permissions/{permission_id}";
const PERMISSION: &str = "/v1/organization_permissions/{permission_id}";

fn listing(tag: &'static str, summary: &'static str, id: &'static str, component: &str) -> Doc {
    Doc::new(tag, summary, id)
        .query("query", json!({"type": "string"}))
        .query("order_by", json!({"type": "string"}))
        .paging()
        .ok_schema(paginated_of(component))
}

pub fn operations() -> Vec<Operation> {
    let role_body = json!({
        "name": {"type": "string"}, "key": {"type": "string"}, "description": {"type": ["string", "null"]},
        "permissions": {"type": ["array", "null"], "items": {"type": "string"}},
        "include_in_initial_role_set": {"type": ["boolean", "null"]},
    });
    let permission_body =
        json!({"name": {"type": "string"}, "key": {"type": "string"}, "description": {"type": "string"}});
    let role = |summary, id| Doc::new("organization_roles", summary, id).path("organization_role_id");
    let permission = |summary, id| Doc::new("organization_permissions", summary, id).path("permission_id");
    let role_permission = |summary, id| role(summary, id).path("permission_id").ok("Role");
    let op = |method, path, route, doc| Operation { method, path, route, doc };
    vec![
        op(
            Method::GET,
            "/v1/organization_roles",
            get(list_roles),
            listing("organization_roles", "List the instance's roles", "ListOrganizationRoles", "Role"),
        ),
        op(
            Method::POST,
            "/v1/organization_roles",
            post(create_role),
            Doc::new("organization_roles", "Create a role", "CreateOrganizationRole")
                .body(role_body.clone(), &["name", "key"])
                .ok("Role"),
        ),
        op(Method::GET, ROLE, get(get_role), role("Get a role", "GetOrganizationRole").ok("Role")),
        op(
            Method::PATCH,
            ROLE,
            patch(update_role),
            role("Update a role (members holding it follow a new key)", "UpdateOrganizationRole")
                .body(role_body, &[])
                .ok("Role"),
        ),
        op(
            Method::DELETE,
            ROLE,
            delete(delete_role),
            role("Delete a role nobody holds", "DeleteOrganizationRole").ok("DeletedObject"),
        ),
        op(
            Method::POST,
            ROLE_PERMISSION,
            post(assign),
            role_permission("Give a role a permission", "AssignPermissionToOrganizationRole"),
        ),
        op(
            Method::DELETE,
            ROLE_PERMISSION,
            delete(unassign),
            role_permission("Take a permission from a role", "RemovePermissionFromOrganizationRole"),
        ),
        op(
            Method::GET,
            "/v1/organization_permissions",
            get(list_permissions),
            listing(
                "organization_permissions",
                "List the instance's permissions",
                "ListOrganizationPermissions",
                "Permission",
            ),
        ),
        op(
            Method::POST,
            "/v1/organization_permissions",
            post(create_permission),
            Doc::new("organization_permissions", "Create a permission", "CreateOrganizationPermission")
                .body(permission_body.clone(), &["name", "key"])
                .ok("Permission"),
        ),
        op(
            Method::GET,
            PERMISSION,
            get(get_permission),
            permission("Get a permission", "GetOrganizationPermission").ok("Permission"),
        ),
        op(
            Method::PATCH,
            PERMISSION,
            patch(update_permission),
            permission("Update a permission (roles follow a new key)", "UpdateOrganizationPermission")
                .body(permission_body, &[])
                .ok("Permission"),
        ),
        op(
            Method::DELETE,
            PERMISSION,
            delete(delete_permission),
            permission("Delete a permission (roles lose it)", "DeleteOrganizationPermission").ok("DeletedObject"),
        ),
    ]
}

/// Clerk's `Role` and `Permission` objects.
pub fn schemas() -> Value {
    let permission = json!({"type": "object",
    "required": ["object", "id", "name", "key", "description", "type", "created_at", "updated_at"],
    "properties": {
        "object": {"const": "permission"}, "id": {"type": "string"}, "name": {"type": "string"},
        "key": {"type": "string"}, "description": {"type": "string"}, "type": {"enum": ["system", "user"]},
        "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
    }});
    let role = json!({"type": "object",
    "required": ["object", "id", "name", "key", "description", "is_creator_eligible", "permissions", "created_at", "updated_at"],
    "properties": {
        "object": {"const": "role"}, "id": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"},
        "description": {"type": ["string", "null"]}, "is_creator_eligible": {"type": "boolean"},
        "permissions": {"type": "array", "items": {"$ref": "#/components/schemas/Permission"}},
        "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
    }});
    json!({"Permission": permission, "Role": role})
}

fn list_query(q: &Query) -> Result<RoleListQuery, ApiError> {
    let (limit, offset) = q.paging()?;
    Ok(RoleListQuery { query: q.one("query"), order_by: q.one("order_by"), limit: limit.clamp(1, 500), offset })
}

fn role_input(b: &Body) -> Result<RoleInput, ApiError> {
    let permissions = match b.value("permissions") {
        Some(_) => Some(b.strings("permissions")?),
        None => None,
    };
    Ok(RoleInput { name: b.string("name")?, key: b.string("key")?, description: b.string("description")?, permissions })
}

fn permission_input(b: &Body) -> Result<PermissionInput, ApiError> {
    Ok(PermissionInput { name: b.string("name")?, key: b.string("key")?, description: b.string("description")? })
}

async fn list_roles(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (roles, total) = state.orgs.list_role_details(&list_query(&q)?).await?;
    ok(views::paginated(roles.iter().map(|r| r.view()).collect(), total))
}

async fn create_role(State(state): State<AppState>, SecretKey(op): SecretKey, b: Body) -> Result<Response, ApiError> {
    ok(state.orgs.create_role(&op, role_input(&b)?).await?.view())
}

async fn get_role(State(state): State<AppState>, _: SecretKey, Path(id): Path<String>) -> Result<Response, ApiError> {
    ok(state.orgs.role_detail(&id).await?.view())
}

async fn update_role(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    ok(state.orgs.update_role(&op, &id, role_input(&b)?).await?.view())
}

async fn delete_role(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.orgs.delete_role(&op, &id).await?;
    ok(views::deleted("role", &id))
}

async fn assign(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((role, permission)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    ok(state.orgs.grant_permission(&op, &role, &permission, true).await?.view())
}

async fn unassign(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((role, permission)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    ok(state.orgs.grant_permission(&op, &role, &permission, false).await?.view())
}

async fn list_permissions(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (rows, total) = state.orgs.list_permission_rows(&list_query(&q)?).await?;
    ok(views::paginated(rows.iter().map(resources::permission).collect(), total))
}

async fn create_permission(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    b: Body,
) -> Result<Response, ApiError> {
    ok(resources::permission(&state.orgs.create_permission(&op, permission_input(&b)?).await?))
}

async fn get_permission(
    State(state): State<AppState>,
    _: SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(resources::permission(&state.orgs.permission_detail(&id).await?))
}

async fn update_permission(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    ok(resources::permission(&state.orgs.update_permission(&op, &id, permission_input(&b)?).await?))
}

async fn delete_permission(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.orgs.delete_permission(&op, &id).await?;
    ok(views::deleted("permission", &id))
}
