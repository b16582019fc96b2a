//! `clerkClient.clients.*`: the handshake payload a server-rendered app's backend fetches
//! with the nonce the Frontend API's handshake redirect carried (docs/frontend-api.md §8).

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::input::Query;
use super::openapi::Doc;
use super::{ok, Operation, SecretKey};
use crate::error::ApiError;
use crate::params::missing;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    vec![Operation {
        method: Method::GET,
        path: "/v1/clients/handshake_payload",
        route: get(handshake_payload),
        doc: Doc::new("clients", "Trade a handshake nonce (once) for its cookie directives", "GetHandshakePayload")
            .query("nonce", json!({"type": "string"}))
            .ok_schema(json!({"type": "object", "required": ["directives"], "properties": {
                "directives": {"type": "array", "items": {"type": "string"}},
            }})),
    }]
}

async fn handshake_payload(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let nonce = q.one("nonce").filter(|n| !n.is_empty()).ok_or_else(|| missing("nonce"))?;
    let directives = state.services.take_handshake_nonce(&nonce).await?;
    ok(json!({"directives": directives}))
}
