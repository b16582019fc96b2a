//! Public endpoints: JWKS and OpenID discovery, health, readiness, metrics, static assets and,
//! in development mode only, the mail sink.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use latchkey_service::{ErrorKind, ServiceError};
use serde_json::json;

use crate::error::{json_response, ApiError};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(openid_configuration))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/avatar.svg", get(avatar))
        .route("/assets/latchkey.css", get(stylesheet))
        .route("/dev/mail", get(dev_mail))
}

async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let jwks = state.services.jwks().await?;
    let mut res = json_response(StatusCode::OK, &serde_json::to_value(jwks).unwrap_or_default());
    let max_age = state.services.jwks_max_age_ms() / 1000;
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    Ok(res)
}

async fn openid_configuration(State(state): State<AppState>) -> Response {
    let issuer = state.config.public_url.trim_end_matches('/');
    let mut res = json_response(
        StatusCode::OK,
        &json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "claims_supported": ["sub", "sid", "iss", "azp", "exp", "iat", "nbf"],
        }),
    );
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// Ready when the database answers and the instance is not draining; 503 otherwise (and
/// ready again as soon as the database answers).
async fn readyz(State(state): State<AppState>) -> Response {
    if state.drain.is_draining() {
        return ApiError(ServiceError::new(ErrorKind::Unavailable, "draining", "This instance is shutting down."))
            .into_response();
    }
    match state.services.readiness().await {
        Ok(()) => {
            json_response(StatusCode::OK, &json!({"status": "ready", "database": state.services.database_backend()}))
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe: database unavailable");
            ApiError(ServiceError::new(ErrorKind::Unavailable, "database_unavailable", "The database is unreachable."))
                .into_response()
        }
    }
}

/// `/metrics` on the main listener: per-route and per-status counts help an attacker (and each
/// call pings the database), so it answers only with the configured bearer token, or in
/// development mode; otherwise it is served on `metrics_listen` alone (docs/SECURITY.md).
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let allowed = match &state.config.metrics {
        crate::MetricsAccess::Open => true,
        crate::MetricsAccess::Closed => false,
        crate::MetricsAccess::Token(token) => latchkey_axum::credential::authorization_token(&headers)
            .is_some_and(|given| latchkey_core::secret::constant_time_eq(given.as_bytes(), token.as_bytes())),
    };
    if !allowed {
        return ApiError(ServiceError::not_found("Resource")).into_response();
    }
    render_metrics(&state).await
}

/// The metrics, for the main listener (when allowed) or the separate metrics listener.
pub async fn render_metrics(state: &AppState) -> Response {
    let up = state.services.readiness().await.is_ok();
    let mut text = state.metrics.render(up);
    state.services.telemetry().render(&mut text);
    if let Ok(depth) = state.webhooks.queue_depth().await {
        text.push_str(
            "# HELP latchkey_webhook_queue_depth Webhook deliveries still owed (fleet-wide, from the database).\n",
        );
        text.push_str("# TYPE latchkey_webhook_queue_depth gauge\n");
        text.push_str(&format!("latchkey_webhook_queue_depth {depth}\n"));
    }
    let mut res = text.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    res
}

async fn avatar() -> Response {
    let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="32" fill="#d9dde8"/><circle cx="32" cy="25" r="11" fill="#8a93a8"/><path d="M12 54c3-11 12-16 20-16s17 5 20 16" fill="#8a93a8"/></svg>"##;
    let mut res = svg.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    // Clerk's components load avatars with `crossorigin`: any page may show this public image.
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res.headers_mut().insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    res
}

async fn stylesheet() -> Response {
    let mut res = include_str!("pages/latchkey.css").into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

#[derive(serde::Deserialize)]
struct MailQuery {
    to: Option<String>,
}

/// The development mail sink: every message "sent", newest last. Absent outside development.
async fn dev_mail(State(state): State<AppState>, Query(q): Query<MailQuery>) -> Result<Response, ApiError> {
    let messages = match (state.config.dev_mode, state.services.mailer.sink()) {
        (true, Some(m)) => m,
        _ => return Err(ApiError(ServiceError::not_found("Route"))),
    };
    let filtered: Vec<_> =
        messages.into_iter().filter(|m| q.to.as_deref().is_none_or(|to| m.to.eq_ignore_ascii_case(to))).collect();
    Ok(json_response(StatusCode::OK, &json!({"messages": filtered})))
}
