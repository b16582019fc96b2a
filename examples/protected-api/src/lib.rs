//! An API protected by latchkey as `../shared/seeds/` does it with Clerk: public health and
//! webhook routes; items for signed-in users, every query scoped by the caller's user id (never
//! an id from the request); DELETE for organization admins only; `/api/orgs/{org_id}/data` only
//! for the caller's active organization; POST `/api/invoices` needing `org:invoices:create`.
//! 401 for anonymous callers, 403 for signed-in callers without the right, 400 for bad input,
//! all in latchkey's error shape.

use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use latchkey_axum::{error_response, error_response_with_meta, Auth, Guard, Requirement, RouteMatcher};
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Item {
    pub id: u64,
    pub owner: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Invoice {
    pub id: u64,
    pub organization_id: String,
    pub created_by: String,
    pub customer: String,
    pub amount_cents: i64,
}

#[derive(Default)]
struct Db {
    next_id: u64,
    items: Vec<Item>,
    invoices: Vec<Invoice>,
}

#[derive(Clone, Default)]
pub struct AppState {
    db: Arc<Mutex<Db>>,
}

/// The routes behind the guard: everything is protected except health and webhooks.
pub fn app(guard: &Guard) -> Result<Router, latchkey_axum::PatternError> {
    let layer = guard
        .layer()
        .public(RouteMatcher::new(["/api/health", "/api/webhooks(.*)"])?)
        .require(RouteMatcher::new(["/api/invoices"])?, Requirement::Permission("org:invoices:create".into()));
    Ok(Router::new()
        .route("/api/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/api/webhooks/{source}", post(webhook))
        .route("/api/items", get(list_items).post(create_item))
        .route("/api/items/{id}", delete(delete_item))
        .route("/api/orgs/{org_id}/data", get(org_data))
        .route("/api/invoices", post(create_invoice))
        .fallback(|headers: HeaderMap| async move {
            error_response(&headers, StatusCode::NOT_FOUND, "resource_not_found", "Not found.", "No such route.")
        })
        .with_state(AppState::default())
        .layer(layer))
}

fn bad_request(headers: &HeaderMap, param: &str, message: &str) -> Response {
    let meta = json!({"param_name": param});
    error_response_with_meta(headers, StatusCode::BAD_REQUEST, "form_param_invalid", message, message, meta)
}

fn forbidden(headers: &HeaderMap, why: &str) -> Response {
    error_response(headers, StatusCode::FORBIDDEN, "authorization_invalid", "Forbidden.", why)
}

/// A JSON object body, or a 400 saying what is wrong with it.
fn object(
    headers: &HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<serde_json::Map<String, Value>, Box<Response>> {
    match body {
        Ok(Json(Value::Object(map))) => Ok(map),
        Ok(_) => Err(Box::new(bad_request(headers, "body", "The body must be a JSON object."))),
        Err(e) => {
            Err(Box::new(bad_request(headers, "body", &format!("The body is not valid JSON: {}", e.body_text()))))
        }
    }
}

async fn webhook(Path(source): Path<String>) -> Response {
    tracing::info!(%source, "webhook received");
    StatusCode::NO_CONTENT.into_response()
}

async fn list_items(State(s): State<AppState>, auth: Auth) -> Response {
    let db = s.db.lock().unwrap_or_else(|p| p.into_inner());
    let mine: Vec<&Item> = db.items.iter().filter(|i| i.owner == auth.user_id()).collect();
    Json(json!({"data": mine, "total_count": mine.len()})).into_response()
}

async fn create_item(
    State(s): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let map = match object(&headers, body) {
        Ok(m) => m,
        Err(res) => return *res,
    };
    let title = match map.get("title") {
        Some(Value::String(t)) if !t.trim().is_empty() && t.chars().count() <= 200 => t.trim().to_owned(),
        Some(Value::String(_)) => return bad_request(&headers, "title", "title must be 1 to 200 characters."),
        _ => return bad_request(&headers, "title", "title is required and must be a string."),
    };
    if map.contains_key("owner") {
        return bad_request(&headers, "owner", "owner is not accepted: items belong to whoever creates them.");
    }
    let mut db = s.db.lock().unwrap_or_else(|p| p.into_inner());
    db.next_id += 1;
    let item = Item { id: db.next_id, owner: auth.user_id().to_owned(), title };
    db.items.push(item.clone());
    (StatusCode::CREATED, Json(item)).into_response()
}

/// Admins only; and even an admin deletes only items of their own (never by an id alone).
async fn delete_item(State(s): State<AppState>, auth: Auth, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !auth.has_role("org:admin") {
        return forbidden(&headers, "Deleting items needs the org:admin role in the active organization.");
    }
    let Ok(id) = id.parse::<u64>() else {
        return bad_request(&headers, "id", "id must be a number.");
    };
    let mut db = s.db.lock().unwrap_or_else(|p| p.into_inner());
    let before = db.items.len();
    db.items.retain(|i| !(i.id == id && i.owner == auth.user_id()));
    if db.items.len() == before {
        return error_response(
            &headers,
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "Not found.",
            "No such item of yours.",
        );
    }
    Json(json!({"deleted": true, "id": id})).into_response()
}

/// Only for the caller's active organization.
async fn org_data(State(s): State<AppState>, auth: Auth, headers: HeaderMap, Path(org_id): Path<String>) -> Response {
    if auth.org_id() != Some(org_id.as_str()) {
        return forbidden(&headers, "This is not your active organization.");
    }
    let db = s.db.lock().unwrap_or_else(|p| p.into_inner());
    let invoices: Vec<&Invoice> = db.invoices.iter().filter(|i| i.organization_id == org_id).collect();
    Json(json!({"organization_id": org_id, "invoices": invoices})).into_response()
}

/// The layer already required `org:invoices:create`; the handler checks again (defence in
/// depth) and files the invoice under the active organization from the token.
async fn create_invoice(
    State(s): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let (Some(org_id), true) = (auth.org_id(), auth.has_permission("org:invoices:create")) else {
        return forbidden(&headers, "Creating invoices needs org:invoices:create.");
    };
    let map = match object(&headers, body) {
        Ok(m) => m,
        Err(res) => return *res,
    };
    let customer = match map.get("customer") {
        Some(Value::String(c)) if !c.trim().is_empty() && c.len() <= 200 => c.trim().to_owned(),
        _ => return bad_request(&headers, "customer", "customer is required: a string of 1 to 200 characters."),
    };
    let amount_cents = match map.get("amount_cents").and_then(Value::as_i64) {
        Some(a) if a > 0 => a,
        _ => return bad_request(&headers, "amount_cents", "amount_cents must be a positive integer."),
    };
    let mut db = s.db.lock().unwrap_or_else(|p| p.into_inner());
    db.next_id += 1;
    let invoice = Invoice {
        id: db.next_id,
        organization_id: org_id.to_owned(),
        created_by: auth.user_id().to_owned(),
        customer,
        amount_cents,
    };
    db.invoices.push(invoice.clone());
    (StatusCode::CREATED, Json(invoice)).into_response()
}
