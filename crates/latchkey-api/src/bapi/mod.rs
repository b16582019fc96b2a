//! The Backend API (`/v1/…` with `Authorization: Bearer sk_…`) in Clerk's wire format, so the
//! official `@clerk/backend` works against latchkey unmodified (docs/backend-api.md §1–§5, §13).
//!
//! Every operation is declared once, in [`operations`], with its route and its documentation:
//! the router and `/v1/openapi.json` are both built from that list, so they cannot disagree.

mod clients;
mod external_accounts;
pub(crate) mod input;
mod openapi;
mod orgs;
mod params;
mod roles;
mod second_factors;
mod sessions;
mod sync;
mod templates;
mod tickets;
mod users;
mod views;
mod webhooks;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use axum::Router;
use latchkey_axum::credential::authorization_token;
use latchkey_service::{Operator, ServiceError};
use serde_json::Value;

use crate::error::{json_response, ApiError};
use crate::AppState;
use openapi::Doc;

/// One Backend API operation: where it lives, what serves it, how it is documented.
pub struct Operation {
    pub method: Method,
    pub path: &'static str,
    pub route: MethodRouter<AppState>,
    pub doc: Doc,
}

fn operations() -> Vec<Operation> {
    let mut ops = vec![Operation {
        method: Method::GET,
        path: "/v1/jwks",
        route: get(jwks),
        doc: Doc::new("jwks", "The keys that verify session tokens", "GetJWKS").ok("Jwks"),
    }];
    ops.extend(users::operations());
    ops.extend(external_accounts::operations());
    ops.extend(second_factors::operations());
    ops.extend(clients::operations());
    ops.extend(sessions::operations());
    ops.extend(templates::operations());
    ops.extend(tickets::operations());
    ops.extend(orgs::operations());
    ops.extend(roles::operations());
    ops.extend(sync::operations());
    ops.extend(webhooks::operations());
    ops
}

pub fn routes() -> Router<AppState> {
    let ops = operations();
    let spec = std::sync::Arc::new(openapi::document(&ops));
    let mut router = Router::new();
    for op in ops {
        let honoured = params::Honoured {
            query: std::sync::Arc::new(op.doc.query_names()),
            body: op.doc.body_names().map(std::sync::Arc::new),
        };
        let route = op.route.route_layer(axum::middleware::from_fn(move |request, next| {
            params::attach(honoured.clone(), request, next)
        }));
        router = router.route(op.path, route);
    }
    router.route("/v1/openapi.json", get(move || async move { json_response(StatusCode::OK, &spec) }))
}

/// A request authenticated by a live secret key, and the [`Operator`] proof that
/// administrative actions take.
pub struct SecretKey(pub Operator);

impl FromRequestParts<AppState> for SecretKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let presented = authorization_token(&parts.headers).ok_or_else(|| {
            ApiError(
                ServiceError::unauthenticated("Secret key missing")
                    .long("Send your secret key as `Authorization: Bearer sk_live_…`."),
            )
        })?;
        let operator = state.services.authenticate_secret_key(presented).await?;
        if let Some(honoured) = parts.extensions.get::<params::Honoured>() {
            params::check(parts.uri.query(), honoured)?;
        }
        Ok(Self(operator))
    }
}

pub(crate) fn ok(body: Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /v1/jwks`: the keys that verify session tokens (what `verifyToken` with `secretKey`
/// fetches).
async fn jwks(State(state): State<AppState>, key: SecretKey) -> Result<Response, ApiError> {
    tracing::debug!(key_id = key.0.key_id(), "backend API: jwks");
    let jwks = state.services.jwks().await?;
    ok(serde_json::to_value(jwks).unwrap_or_default())
}
