//! `GET /v1/client/handshake` (docs/frontend-api.md §8): a server-rendered app's middleware sends
//! the browser here when its cookies cannot tell who is signed in. latchkey reads the client
//! from `__client`, mints the session token (in the organization asked for, if any), stores
//! the cookie directives under a single-use nonce and sends the browser back with it; the
//! app's backend trades the nonce for the directives at `GET /v1/clients/handshake_payload`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use latchkey_service::ServiceError;

use super::{client_state, Caller};
use crate::error::ApiError;
use crate::middleware::ViaProxy;
use crate::params::missing;
use crate::AppState;

pub const NONCE_PARAM: &str = "__clerk_handshake_nonce";
pub const TOKEN_PARAM: &str = "__clerk_handshake";

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/client/handshake", get(handshake))
}

async fn handshake(
    State(state): State<AppState>,
    caller: Caller,
    via: Option<Extension<ViaProxy>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let redirect = q.get("redirect_url").filter(|u| !u.is_empty()).ok_or_else(|| missing("redirect_url"))?;
    let (mut target, origin) = trusted_redirect(&state, via.as_deref(), redirect)?;
    // A navigation carries no Origin header: the tokens are for the app it returns to (`azp`).
    let ctx = latchkey_service::RequestContext { origin: Some(origin), ..caller.ctx.clone() };
    let directives = match &caller.client {
        Some(client) => {
            // Organization sync: `organization_id` (an id, a slug, or empty for the personal
            // account) becomes the active organization of the client's last active session.
            // Only from the app itself: through its authenticated proxy, or a navigation from the
            // same site. A link on another site must not switch a victim's organization.
            let from_the_app = via.is_some()
                || headers
                    .get("sec-fetch-site")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|site| matches!(site, "same-origin" | "same-site"));
            let org_sync = q.get("organization_id").filter(|_| from_the_app);
            if let (Some(org), Some(session_id)) = (org_sync, &client.last_active_session_id) {
                let org = Some(org.clone()).filter(|o| !o.is_empty());
                if let Err(e) = state.services.touch_session(client, session_id, Some(org)).await {
                    tracing::debug!(code = e.code, "handshake: organization not activated");
                }
            }
            client_state(&state, &ctx, client).await?.1
        }
        None => {
            let policy = &state.config.cookies;
            policy.uat(0).into_iter().chain(policy.session(None)).collect()
        }
    };
    // The app's cookies follow the scheme the browser uses for the app.
    let directives: Vec<String> = if target.scheme() == "https" {
        directives.into_iter().map(crate::middleware::secure_cookie).collect()
    } else {
        directives
    };
    if caller.client.is_some() {
        let nonce = state.services.issue_handshake_nonce(&directives).await?;
        target.query_pairs_mut().append_pair(NONCE_PARAM, &nonce);
    } else {
        // Signed out: nothing to keep, so nothing is stored (anyone can ask without limit).
        let token = state.services.signed_out_handshake_token(&directives).await?;
        target.query_pairs_mut().append_pair(TOKEN_PARAM, &token);
    }
    let mut res = StatusCode::TEMPORARY_REDIRECT.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(target.as_str()) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The handshake goes back only to an absolute http(s) URL on a trusted origin: the
/// instance's own, an allow-listed one, or the proxy's the request came through.
fn trusted_redirect(state: &AppState, via: Option<&ViaProxy>, redirect: &str) -> Result<(url::Url, String), ApiError> {
    let invalid = || {
        ApiError(
            ServiceError::unprocessable("form_param_value_invalid", "redirect_url is not on a trusted origin")
                .long("redirect_url must be an absolute http(s) URL on the instance's origin, an allowed origin (allowed_origins), or the origin of the Frontend API proxy.")
                .param("redirect_url"),
        )
    };
    let url = url::Url::parse(redirect).map_err(|_| invalid())?;
    let origin = crate::origin_of(url.as_str()).ok_or_else(invalid)?;
    let trusted = state.config.origin_allowed(&origin) || via.is_some_and(|p| p.origin == origin);
    if !matches!(url.scheme(), "http" | "https") || !trusted {
        return Err(invalid());
    }
    Ok((url, origin))
}
