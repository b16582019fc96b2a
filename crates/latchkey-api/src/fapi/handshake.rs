//! `GET /v1/client/handshake` (docs/frontend-api.md §8): a server-rendered app's middleware sends
//! the browser here when its cookies cannot tell who is signed in. latchkey reads the client
//! from `__client`, mints the session token (in the organization asked for, if any) and sends
//! the browser back with the cookie directives, in one of two forms:
//!
//! - `format=nonce` (today's SDKs): the directives are stored under a single-use nonce that the
//!   app's backend trades at `GET /v1/clients/handshake_payload`;
//! - the legacy form (`format=token`, or no `format`: the 1.x-generation `@clerk/backend` that
//!   `@clerk/nextjs` 5 and `@clerk/clerk-sdk-node` 5 run): the directives travel in a signed
//!   `__clerk_handshake` token, in a short-lived cookie of the app's origin (never in the URL
//!   while it holds a session token); the directives clear that cookie once applied.

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
/// What browsers keep of one cookie (name, value and attributes), with a little margin.
const MAX_COOKIE_BYTES: usize = 4_000;

/// How the directives go back: what the SDK asked for (`format`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Nonce,
    Token,
}

impl Format {
    fn of(q: &HashMap<String, String>) -> Result<Format, ApiError> {
        match q.get("format").map(String::as_str) {
            Some("nonce") => Ok(Format::Nonce),
            // The 1.x-generation SDKs send no `format` and read only the token.
            None | Some("token") | Some("") => Ok(Format::Token),
            Some(_) => Err(ApiError(
                ServiceError::unprocessable("form_param_value_invalid", "format must be nonce or token")
                    .long("The handshake answers with a single-use nonce (format=nonce) or a signed token (format=token, or no format).")
                    .param("format"),
            )),
        }
    }
}

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
    let format = Format::of(&q)?;
    let (mut target, origin) = trusted_redirect(&state, via.as_deref(), redirect)?;
    // A navigation carries no Origin header: the tokens are for the app it returns to (`azp`).
    // The legacy cookie only reaches the app where the browser is on the app's own host when
    // latchkey answers: through the app's proxy, or latchkey serving the app's origin itself.
    // Elsewhere (another allowed origin) it would sit on the wrong host, so the nonce it is.
    let cookie_reaches_app = via.as_deref().is_some_and(|p| p.origin == origin) || origin == state.config.own_origin();
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
    let secure = target.scheme() == "https";
    // The app's cookies follow the scheme the browser uses for the app.
    let secured = |directives: Vec<String>| -> Vec<String> {
        if secure {
            directives.into_iter().map(crate::middleware::secure_cookie).collect()
        } else {
            directives
        }
    };
    let mut set_cookie = None;
    let mut nonce_directives = None;
    match (&caller.client, format) {
        (Some(_), Format::Token) if cookie_reaches_app => {
            // The token holds a live session token: it goes in a cookie, not the URL (history,
            // logs, Referer), and its directives delete that cookie when the app applies them.
            let mut with_deletion = directives.clone();
            with_deletion.push(handshake_cookie("", 0));
            let token = state.services.handshake_token(&secured(with_deletion)).await?;
            let cookie = handshake_cookie(&token, latchkey_service::handshake::HANDSHAKE_NONCE_TTL_MS / 1000);
            if cookie.len() <= MAX_COOKIE_BYTES {
                set_cookie = Some(secured(vec![cookie]));
            } else {
                // A browser drops a cookie this large without a word: the nonce instead.
                nonce_directives = Some(directives);
            }
        }
        (Some(_), _) => nonce_directives = Some(directives),
        (None, _) => {
            // Signed out: nothing to keep, so nothing is stored (anyone can ask without limit),
            // and the token holds nothing secret: it travels in the URL, which every SDK reads.
            let token = state.services.handshake_token(&secured(directives)).await?;
            target.query_pairs_mut().append_pair(TOKEN_PARAM, &token);
        }
    }
    if let Some(directives) = nonce_directives {
        let nonce = state.services.issue_handshake_nonce(&secured(directives)).await?;
        target.query_pairs_mut().append_pair(NONCE_PARAM, &nonce);
    }
    let mut res = StatusCode::TEMPORARY_REDIRECT.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(target.as_str()) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookies) = set_cookie {
        crate::cookies::append_set_cookies(h, &cookies);
    }
    Ok(res)
}

/// The legacy handshake cookie: on the app's origin (the handshake reaches latchkey through the
/// app's `/__clerk` proxy) for every path, read only by the app's backend (`HttpOnly`), and gone
/// after `max_age` seconds.
fn handshake_cookie(token: &str, max_age: i64) -> String {
    format!("{TOKEN_PARAM}={token}; Path=/; SameSite=Lax; HttpOnly; Max-Age={max_age}")
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
