//! [`PageForm`]: a form post to a hosted page, its CSRF token already checked. Every page
//! write takes one, so a handler that forgets the CSRF check does not exist: the post never
//! reaches it (docs/security-baseline.md: double-submit token, compared in constant time).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_core::secret::constant_time_eq;

use super::html::Page;
use super::CSRF_COOKIE;
use crate::cookies::read_cookie;
use crate::fapi::Caller;
use crate::params::Params;
use crate::AppState;

pub(super) struct PageForm {
    pub(super) state: AppState,
    pub(super) headers: HeaderMap,
    pub(super) caller: Caller,
    pub(super) p: Params,
}

impl FromRequest<AppState> for PageForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await.map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let p =
            Params::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        if !csrf_matches(&headers, &p) {
            let page = Page::new("Request refused", "")
                .alert("This form has expired. Go back, reload the page and try again.");
            return Err(page.into_response(StatusCode::FORBIDDEN, &[]));
        }
        Ok(Self { state: state.clone(), headers, caller, p })
    }
}

/// The form's `csrf` field equals this browser's CSRF cookie (and the cookie exists).
fn csrf_matches(headers: &HeaderMap, p: &Params) -> bool {
    let cookie = read_cookie(headers, CSRF_COOKIE).unwrap_or_default();
    let field = p.text("csrf").unwrap_or_default();
    !cookie.is_empty() && constant_time_eq(cookie.as_bytes(), field.as_bytes())
}
