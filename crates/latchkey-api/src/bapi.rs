//! The Backend API (`/v1/…` with `Authorization: Bearer sk_…`), Clerk's wire format for
//! `@clerk/backend`. So far: secret-key authentication and `GET /v1/jwks`.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use latchkey_service::ServiceError;

use crate::error::{json_response, ApiError};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/jwks", get(jwks))
}

/// A request authenticated by a live secret key.
pub struct SecretKey {
    pub key_id: String,
}

impl FromRequestParts<AppState> for SecretKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError(
                    ServiceError::unauthenticated("Secret key missing")
                        .long("Send your secret key as `Authorization: Bearer sk_live_…`."),
                )
            })?;
        let key = state.services.authenticate_secret_key(presented).await?;
        Ok(Self { key_id: key.id })
    }
}

/// `GET /v1/jwks`: the keys that verify session tokens (what `verifyToken` with `secretKey`
/// fetches).
async fn jwks(State(state): State<AppState>, key: SecretKey) -> Result<Response, ApiError> {
    tracing::debug!(key_id = %key.key_id, "backend API: jwks");
    let jwks = state.services.keys.jwks().await?;
    Ok(json_response(StatusCode::OK, &serde_json::to_value(jwks).unwrap_or_default()))
}
