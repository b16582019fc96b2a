//! Webhook management: endpoints (URL, event filter, secret and its rotation), deliveries
//! with their attempts, and replays.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use latchkey_service::webhooks::{DeliveryView, EndpointPatch, NewEndpoint, EVENT_TYPES};
use latchkey_store::WebhookEndpointRow;
use serde_json::{json, Value};

use super::input::{Body, Query};
use super::openapi::{paginated_of, reference, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    let body = json!({
        "url": {"type": "string"},
        "description": {"type": "string", "maxLength": 512},
        "events": {"type": "array", "items": {"enum": EVENT_TYPES}},
        "disabled": {"type": "boolean"},
    });
    vec![
        Operation {
            method: Method::GET,
            path: "/v1/webhooks/endpoints",
            route: get(list),
            doc: Doc::new("webhooks", "List webhook endpoints", "ListWebhookEndpoints")
                .paging()
                .ok_schema(paginated_of("WebhookEndpoint")),
        },
        Operation {
            method: Method::POST,
            path: "/v1/webhooks/endpoints",
            route: post(create),
            doc: Doc::new(
                "webhooks",
                "Create a webhook endpoint (its secret is in the answer)",
                "CreateWebhookEndpoint",
            )
            .body(body.clone(), &["url"])
            .ok("WebhookEndpoint"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/webhooks/endpoints/{endpoint_id}",
            route: get(get_one),
            doc: Doc::new("webhooks", "Get a webhook endpoint", "GetWebhookEndpoint")
                .path("endpoint_id")
                .ok("WebhookEndpoint"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/webhooks/endpoints/{endpoint_id}",
            route: patch(update),
            doc: Doc::new("webhooks", "Update a webhook endpoint (URL, filter, enabled)", "UpdateWebhookEndpoint")
                .path("endpoint_id")
                .body(body, &[])
                .ok("WebhookEndpoint"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/webhooks/endpoints/{endpoint_id}",
            route: delete(remove),
            doc: Doc::new("webhooks", "Delete a webhook endpoint", "DeleteWebhookEndpoint")
                .path("endpoint_id")
                .ok("DeletedObject"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/webhooks/endpoints/{endpoint_id}/secret",
            route: get(secret),
            doc: Doc::new("webhooks", "Get the endpoint's signing secret", "GetWebhookEndpointSecret")
                .path("endpoint_id")
                .ok("WebhookSecret"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/webhooks/endpoints/{endpoint_id}/secret/rotate",
            route: post(rotate),
            doc: Doc::new(
                "webhooks",
                "Rotate the signing secret (the previous one keeps signing during the overlap)",
                "RotateWebhookEndpointSecret",
            )
            .path("endpoint_id")
            .ok("WebhookEndpoint"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/webhooks/endpoints/{endpoint_id}/deliveries",
            route: get(deliveries),
            doc: Doc::new("webhooks", "List deliveries with their attempts, newest first", "ListWebhookDeliveries")
                .path("endpoint_id")
                .query("status", json!({"enum": ["pending", "succeeded", "failed"]}))
                .paging()
                .ok_schema(paginated_of("WebhookDelivery")),
        },
        Operation {
            method: Method::POST,
            path: "/v1/webhooks/endpoints/{endpoint_id}/replay",
            route: post(replay),
            doc: Doc::new("webhooks", "Send one message again, or every message since a time", "ReplayWebhookMessages")
                .path("endpoint_id")
                .body(json!({"message_id": {"type": "string"}, "since": {"type": "integer"}}), &[])
                .ok_schema(reference("WebhookReplay")),
        },
    ]
}

/// The schemas of this module's objects, for `/v1/openapi.json`.
pub fn schemas() -> Value {
    let nullable = |t: &str| json!({"type": [t, "null"]});
    json!({
        "WebhookEndpoint": {"type": "object",
            "required": ["object", "id", "url", "description", "events", "disabled", "disabled_reason", "created_at", "updated_at"],
            "properties": {
                "object": {"const": "webhook_endpoint"}, "id": {"type": "string"}, "url": {"type": "string"},
                "description": {"type": "string"}, "events": {"type": "array", "items": {"type": "string"}},
                "disabled": {"type": "boolean"}, "disabled_reason": nullable("string"),
                "secret": {"type": "string"}, "previous_secret_expires_at": nullable("integer"),
                "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
            }},
        "WebhookSecret": {"type": "object", "required": ["object", "key"],
            "properties": {"object": {"const": "webhook_secret"}, "key": {"type": "string"}}},
        "WebhookDelivery": {"type": "object",
            "required": ["object", "id", "message_id", "endpoint_id", "event_type", "status", "attempt_count", "next_attempt_at", "attempts", "created_at", "updated_at"],
            "properties": {
                "object": {"const": "webhook_delivery"}, "id": {"type": "string"}, "message_id": {"type": "string"},
                "endpoint_id": {"type": "string"}, "event_type": {"type": "string"},
                "status": {"enum": ["pending", "succeeded", "failed"]}, "attempt_count": {"type": "integer"},
                "next_attempt_at": nullable("integer"), "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
                "attempts": {"type": "array", "items": {"type": "object",
                    "required": ["object", "id", "attempted_at", "status_code", "succeeded", "error", "duration_ms"],
                    "properties": {
                        "object": {"const": "webhook_attempt"}, "id": {"type": "string"}, "attempted_at": {"type": "integer"},
                        "status_code": nullable("integer"), "succeeded": {"type": "boolean"}, "error": nullable("string"),
                        "duration_ms": {"type": "integer"},
                    }}},
            }},
        "WebhookReplay": {"type": "object", "required": ["object", "queued"],
            "properties": {"object": {"const": "webhook_replay"}, "queued": {"type": "integer"}}},
    })
}

fn endpoint_json(e: &WebhookEndpointRow, secret: Option<&str>) -> Value {
    let mut v = json!({
        "object": "webhook_endpoint",
        "id": e.id,
        "url": e.url,
        "description": e.description,
        "events": e.event_types,
        "disabled": e.disabled_reason.is_some(),
        "disabled_reason": e.disabled_reason,
        "previous_secret_expires_at": e.previous_secret_expires_at,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    });
    if let (Some(s), Value::Object(map)) = (secret, &mut v) {
        map.insert("secret".into(), json!(s));
    }
    v
}

fn delivery_json(d: &DeliveryView) -> Value {
    let r = &d.delivery;
    json!({
        "object": "webhook_delivery",
        "id": r.id,
        "message_id": r.message_id,
        "endpoint_id": r.endpoint_id,
        "event_type": r.event_type,
        "status": r.status.as_str(),
        "attempt_count": r.attempts,
        "next_attempt_at": r.next_attempt_at,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "attempts": d.attempts.iter().map(|a| json!({
            "object": "webhook_attempt",
            "id": a.id,
            "attempted_at": a.attempted_at,
            "status_code": a.status_code,
            "succeeded": a.succeeded,
            "error": a.error,
            "duration_ms": a.duration_ms,
        })).collect::<Vec<_>>(),
    })
}

async fn list(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let (rows, total) = state.webhooks.list_webhook_endpoints(limit, offset).await?;
    ok(views::paginated(rows.iter().map(|e| endpoint_json(e, None)).collect(), total))
}

async fn create(State(state): State<AppState>, SecretKey(op): SecretKey, b: Body) -> Result<Response, ApiError> {
    let new = NewEndpoint {
        url: b.required_string("url")?,
        description: b.string("description")?,
        event_types: b.strings("events")?,
    };
    let (row, secret) = state.webhooks.create_webhook_endpoint(&op, new).await?;
    ok(endpoint_json(&row, Some(&secret)))
}

async fn get_one(State(state): State<AppState>, _: SecretKey, Path(id): Path<String>) -> Result<Response, ApiError> {
    ok(endpoint_json(&state.webhooks.webhook_endpoint(&id).await?, None))
}

async fn update(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let patch = EndpointPatch {
        url: b.string("url")?,
        description: b.string("description")?,
        event_types: if b.value("events").is_some() { Some(b.strings("events")?) } else { None },
        disabled: b.bool("disabled")?,
    };
    ok(endpoint_json(&state.webhooks.update_webhook_endpoint(&op, &id, patch).await?, None))
}

async fn remove(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.webhooks.delete_webhook_endpoint(&op, &id).await?;
    ok(views::deleted("webhook_endpoint", &id))
}

async fn secret(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(json!({"object": "webhook_secret", "key": state.webhooks.webhook_secret(&op, &id).await?}))
}

async fn rotate(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (row, secret) = state.webhooks.rotate_webhook_secret(&op, &id).await?;
    ok(endpoint_json(&row, Some(&secret)))
}

async fn deliveries(
    State(state): State<AppState>,
    _: SecretKey,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let status = q.one("status");
    let (rows, total) = state.webhooks.webhook_deliveries(&id, status.as_deref(), limit, offset).await?;
    ok(views::paginated(rows.iter().map(delivery_json).collect(), total))
}

async fn replay(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let s = &state.webhooks;
    let queued = match (b.string("message_id")?, b.int("since")?) {
        (Some(message), _) => s.replay_webhook_message(&op, &id, &message).await?,
        (None, Some(since)) => s.replay_webhook_since(&op, &id, since).await?,
        (None, None) => {
            return Err(ApiError(
                latchkey_service::ServiceError::unprocessable("form_param_missing", "message_id or since is required")
                    .long("Name one message (message_id) or a time in epoch milliseconds (since).")
                    .param("message_id"),
            ))
        }
    };
    ok(json!({"object": "webhook_replay", "queued": queued}))
}
