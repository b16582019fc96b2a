//! JWT templates (`clerkClient.jwtTemplates.*`).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use latchkey_service::templates::TemplateInput;
use serde_json::{json, Value};

use super::input::{Body, Query};
use super::openapi::{list_of, paginated_of, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    let body = json!({
        "name": {"type": "string"}, "claims": {"type": "object"},
        "lifetime": {"type": "integer", "minimum": 30, "maximum": 315360000},
        "allowed_clock_skew": {"type": "integer", "minimum": 0, "maximum": 300},
        "custom_signing_key": {"type": "boolean"},
        "signing_algorithm": {"enum": ["RS256", "RS384", "RS512", "HS256", "HS384", "HS512"]},
        "signing_key": {"type": "string"},
    });
    vec![
        Operation {
            method: Method::GET,
            path: "/v1/jwt_templates",
            route: get(list),
            doc: Doc::new("jwt_templates", "List JWT templates", "ListJWTTemplates")
                .query("paginated", json!({"type": "boolean"}))
                .paging()
                .ok_schema(json!({"oneOf": [list_of("JwtTemplate"), paginated_of("JwtTemplate")]})),
        },
        Operation {
            method: Method::POST,
            path: "/v1/jwt_templates",
            route: post(create),
            doc: Doc::new("jwt_templates", "Create a JWT template", "CreateJWTTemplate")
                .body(body.clone(), &["name", "claims"])
                .ok("JwtTemplate"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/jwt_templates/{template_id}",
            route: get(get_one),
            doc: Doc::new("jwt_templates", "Get a JWT template", "GetJWTTemplate")
                .path("template_id")
                .ok("JwtTemplate"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/jwt_templates/{template_id}",
            route: patch(update),
            doc: Doc::new("jwt_templates", "Update a JWT template", "UpdateJWTTemplate")
                .path("template_id")
                .body(body, &[])
                .ok("JwtTemplate"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/jwt_templates/{template_id}",
            route: delete(remove),
            doc: Doc::new("jwt_templates", "Delete a JWT template", "DeleteJWTTemplate")
                .path("template_id")
                .ok("DeletedObject"),
        },
    ]
}

fn input(b: &Body) -> Result<TemplateInput, ApiError> {
    Ok(TemplateInput {
        name: b.string("name")?,
        claims: b.value("claims").map(|v| match v {
            // Forms carry the claims as a JSON string.
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            other => other,
        }),
        lifetime: b.int("lifetime")?,
        allowed_clock_skew: b.int("allowed_clock_skew")?,
        custom_signing_key: b.bool("custom_signing_key")?,
        signing_algorithm: b.string("signing_algorithm")?,
        signing_key: b.string("signing_key")?,
    })
}

async fn list(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let all = state.services.list_jwt_templates().await?;
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let page: Vec<Value> = all
        .iter()
        .skip(usize::try_from(offset.max(0)).unwrap_or(usize::MAX))
        .take(usize::try_from(limit.clamp(1, 500)).unwrap_or(10))
        .map(views::jwt_template)
        .collect();
    if q.flag("paginated")? {
        ok(views::paginated(page, total))
    } else {
        ok(Value::Array(page))
    }
}

async fn create(State(state): State<AppState>, SecretKey(op): SecretKey, b: Body) -> Result<Response, ApiError> {
    ok(views::jwt_template(&state.services.create_jwt_template(&op, input(&b)?).await?))
}

async fn get_one(State(state): State<AppState>, _: SecretKey, Path(id): Path<String>) -> Result<Response, ApiError> {
    ok(views::jwt_template(&state.services.jwt_template(&id).await?))
}

async fn update(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    ok(views::jwt_template(&state.services.update_jwt_template(&op, &id, input(&b)?).await?))
}

async fn remove(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.services.delete_jwt_template(&op, &id).await?;
    ok(views::deleted("jwt_template", &id))
}
