//! Sign-in with an identity provider (docs/identity-providers.md): the start, from a sign-in
//! created with an `oauth_*` strategy, and `/v1/oauth_callback`, where providers send the
//! browser back (GET; Apple posts a form, which is turned into the same GET so that the
//! browser's SameSite cookies come along).

use axum::extract::{Query, RawForm, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use latchkey_service::authority::Client;
use latchkey_service::{CallbackParams, ServiceError, CALLBACK_PATH};
use latchkey_store::SignInRow;

use super::{client_state, Caller};
use crate::cookies::append_set_cookies;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(CALLBACK_PATH, get(callback).post(callback_form))
}

/// A redirect target the app gave: on an allowed origin or the calling app's own (a relative
/// one, as Clerk's components send `/`, is the app's path), or refused naming the parameter.
pub(super) fn target(
    state: &AppState,
    caller: &Caller,
    p: &Params,
    name: &'static str,
) -> Result<Option<String>, ServiceError> {
    match p.text(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) if raw.len() <= 1024 => {
            let app = caller.ctx.origin.as_deref();
            crate::pages::resolve_redirect_for(&state.config, &raw, app).map(Some).ok_or_else(|| {
                ServiceError::unprocessable("form_param_format_invalid", "This redirect URL is not allowed.")
                    .param(name)
            })
        }
        Some(_) => {
            Err(ServiceError::unprocessable("form_param_format_invalid", "This redirect URL is too long.").param(name))
        }
    }
}

/// Starts the trip: the attempt and the provider's URL.
pub(super) async fn start(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    strategy: &str,
    p: &Params,
) -> Result<(SignInRow, String), ServiceError> {
    let back = target(state, caller, p, "redirect_url")?.ok_or_else(|| {
        ServiceError::unprocessable("form_param_missing", "Enter the URL to come back to.").param("redirect_url")
    })?;
    let complete = target(state, caller, p, "action_complete_redirect_url")?;
    state.services.start_oauth_sign_in(&caller.ctx, client, strategy, back, complete).await
}

#[derive(serde::Deserialize, Default)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

async fn callback(State(state): State<AppState>, caller: Caller, Query(q): Query<CallbackQuery>) -> Response {
    let params = CallbackParams { state: q.state, code: q.code, error: q.error };
    match state.services.oauth_callback(&caller.ctx, caller.client.as_ref(), params).await {
        Ok(outcome) => {
            let mut cookies = Vec::new();
            if let (Some(token), Some(client)) = (outcome.new_client_token, caller.client.as_ref()) {
                cookies.extend(state.config.cookies.client(&token));
                // The signed-in state the app's server reads (`__client_uat`, `__session`).
                if let Ok((_, more)) = client_state(&state, &caller.ctx, client).await {
                    cookies.extend(more);
                }
            }
            let mut res = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&outcome.redirect_to) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            append_set_cookies(res.headers_mut(), &cookies);
            res
        }
        // Clerk's error body, as its document says for this route.
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// Apple's `response_mode=form_post`: the same parameters, sent back as a GET from this
/// origin, so the cross-site POST (which carries no SameSite=Lax cookie) never decides. Only
/// the callback's own parameters travel, encoded again.
async fn callback_form(RawForm(body): RawForm) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for name in ["state", "code", "error"] {
        let value = url::form_urlencoded::parse(&body).find(|(k, _)| k == name).map(|(_, v)| v);
        if let Some(v) = value.filter(|v| v.len() <= 4096) {
            query.append_pair(name, &v);
        }
    }
    let to = format!("{CALLBACK_PATH}?{}", query.finish());
    let mut res = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(&to) {
        Ok(v) => {
            res.headers_mut().insert(header::LOCATION, v);
            res
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
