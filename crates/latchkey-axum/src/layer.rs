//! The tower layer: reads the session token (`Authorization: Bearer` wins; else the `__session`
//! cookie, which counts only with a `__client_uat` no newer than the token), verifies it, puts
//! `Option<Auth>` into the request, and enforces the rules: public routes pass; on protected
//! ones a signed-out API request gets 401 in latchkey's error shape and a page request a 307
//! to the sign-in page with `redirect_url`; unmet role or permission requirements get 403 (or
//! 404 on request, to mimic Clerk's `auth.protect()`); a check of the session's factors that is
//! not recent enough gets 403 `session_reverification_required` with Clerk's reverification
//! hint. A token whose session is `pending` (waiting for a task) counts as signed out, as in
//! Clerk's SDKs by default.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use latchkey_core::authz::Check;
use latchkey_core::reverification::{self, Level};
use serde_json::json;
use tower::{Layer, Service};

use crate::auth::Auth;
use crate::credential::{authorization_token, cookie};
use crate::matcher::RouteMatcher;
use crate::{Guard, Slashes};

/// What a protected route needs beyond a signed-in caller.
#[derive(Clone)]
pub enum Requirement {
    Role(String),
    Permission(String),
    /// Every check must pass (`has({...})` with several dimensions).
    All(Vec<Check>),
    /// Any rule over the request and the caller (`latchkey proxy` checks that an organization
    /// named in the path is the caller's active one with it).
    Custom(RequestRule),
    /// A recent check of the session's factors (`has({ reverification })`), e.g.
    /// [`reverification::STRICT`]. Judged after every other requirement of the request: a
    /// caller who may not call the route at all is refused as such, not asked to verify.
    /// Unmet, it is answered 403 `session_reverification_required` with Clerk's hint — also
    /// with [`GuardLayer::not_found_when_forbidden`], so the app can prompt and retry.
    Reverification(reverification::Requirement),
}

/// A rule over the request and its verified caller: `true` lets it pass.
pub type RequestRule = Arc<dyn Fn(&Parts, &Auth) -> bool + Send + Sync>;

impl std::fmt::Debug for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requirement::Role(r) => f.debug_tuple("Role").field(r).finish(),
            Requirement::Permission(p) => f.debug_tuple("Permission").field(p).finish(),
            Requirement::All(c) => f.debug_tuple("All").field(c).finish(),
            Requirement::Custom(_) => f.write_str("Custom(..)"),
            Requirement::Reverification(r) => f.debug_tuple("Reverification").field(r).finish(),
        }
    }
}

impl Requirement {
    /// One of Clerk's named levels: `strict` (second factor, 10 minutes), `moderate` (an hour),
    /// `lax` (a day), `strict_mfa` (both factors, 10 minutes); `None` for another name.
    pub fn reverification(preset: &str) -> Option<Self> {
        reverification::Requirement::preset(preset).map(Requirement::Reverification)
    }

    fn met(&self, parts: &Parts, auth: &Auth) -> bool {
        match self {
            Requirement::Role(r) => auth.has_role(r),
            Requirement::Permission(p) => auth.has_permission(p),
            Requirement::All(checks) => auth.has(checks),
            Requirement::Custom(rule) => rule(parts, auth),
            Requirement::Reverification(r) => auth.has_reverification(*r),
        }
    }
}

/// One requirement that asks for everything two unmet ones ask: the higher level and the
/// shorter time (a check at that level makes every age 0, which meets both).
fn stricter(a: reverification::Requirement, b: reverification::Requirement) -> reverification::Requirement {
    let rank = |l: Level| match l {
        Level::FirstFactor => 0,
        Level::SecondFactor => 1,
        Level::MultiFactor => 2,
    };
    reverification::Requirement {
        level: if rank(b.level) > rank(a.level) { b.level } else { a.level },
        after_minutes: a.after_minutes.min(b.after_minutes),
    }
}

/// `latchkey_axum::Guard::layer()` builds one; add rules, then `.layer(...)` a router with it.
/// [`GuardLayer::decide`] is the whole decision, for servers that are not a tower stack
/// (`latchkey proxy` calls it).
#[derive(Clone)]
pub struct GuardLayer {
    guard: Guard,
    public: RouteMatcher,
    rules: Vec<(RouteMatcher, Requirement)>,
    not_found_when_forbidden: bool,
    slashes: Slashes,
}

impl GuardLayer {
    pub(crate) fn new(guard: Guard) -> Self {
        Self {
            guard,
            public: RouteMatcher::default(),
            rules: Vec::new(),
            not_found_when_forbidden: false,
            slashes: Slashes::KeepEncoded,
        }
    }

    /// Routes anyone may call (the token, if any, is still verified and offered to handlers).
    pub fn public(mut self, routes: RouteMatcher) -> Self {
        self.public = routes;
        self
    }

    /// Routes that also need `requirement` (every rule whose routes match must be met).
    pub fn require(mut self, routes: RouteMatcher, requirement: Requirement) -> Self {
        self.rules.push((routes, requirement));
        self
    }

    /// Answer an unmet requirement with 404, as Clerk's `auth.protect()` does, instead of 403.
    pub fn not_found_when_forbidden(mut self) -> Self {
        self.not_found_when_forbidden = true;
        self
    }

    /// How encoded slashes in paths are judged (see [`Slashes`]); a router that decodes `%2F`
    /// before routing (a proxy's upstream may) needs [`Slashes::Refuse`].
    pub fn slashes(mut self, slashes: Slashes) -> Self {
        self.slashes = slashes;
        self
    }

    /// The guard's whole decision on a request: the verified caller (`None` on a public route
    /// called signed out), or the response that refuses it (400 for a path with no canonical
    /// form, 307 to sign in for a signed-out page request, 401 for a signed-out API call, 403 —
    /// or 404 — for an unmet requirement, 403 `session_reverification_required` for a check of
    /// the factors that is not recent enough). A pending session counts as signed out.
    pub async fn decide(&self, parts: &Parts) -> Result<Option<Auth>, Response> {
        if let Some(refused) = non_canonical_path(parts, self.slashes) {
            return Err(refused);
        }
        let auth = match request_token(&parts.headers) {
            Some(token) => self.guard.verify(&token).await.ok().filter(|a| !a.is_pending()),
            None => None,
        };
        if self.public.matches(parts) {
            return Ok(auth);
        }
        let Some(caller) = &auth else {
            return Err(if is_page_request(&parts.headers) {
                self.guard.sign_in_redirect(parts)
            } else {
                error_response(
                    &parts.headers,
                    StatusCode::UNAUTHORIZED,
                    "authentication_invalid",
                    "You are signed out.",
                    "This route needs a valid session token: `Authorization: Bearer <token>` or the __session cookie.",
                )
            });
        };
        let applying = || self.rules.iter().filter(|(m, _)| m.matches(parts)).map(|(_, r)| r);
        let forbidden = applying().any(|r| !matches!(r, Requirement::Reverification(_)) && !r.met(parts, caller));
        if forbidden {
            return Err(if self.not_found_when_forbidden {
                error_response(
                    &parts.headers,
                    StatusCode::NOT_FOUND,
                    "resource_not_found",
                    "Not found.",
                    "No such resource.",
                )
            } else {
                error_response(
                    &parts.headers,
                    StatusCode::FORBIDDEN,
                    "authorization_invalid",
                    "You are not allowed to do this.",
                    "Your role, permissions or active organization do not allow this request.",
                )
            });
        }
        let unmet = applying()
            .filter_map(|r| match r {
                Requirement::Reverification(needed) if !caller.has_reverification(*needed) => Some(*needed),
                _ => None,
            })
            .reduce(stricter);
        if let Some(needed) = unmet {
            return Err(reverification_response(&parts.headers, needed));
        }
        Ok(auth)
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService { inner, config: Arc::new(self.clone()) }
    }
}

#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    /// Shared, so a request costs a reference count rather than a copy of the rules.
    config: Arc<GuardLayer>,
}

impl<S> Service<Request<Body>> for GuardService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The clone that was made ready is the one that serves the request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match config.decide(&parts).await {
                Ok(auth) => {
                    parts.extensions.insert(auth);
                    let request_id = parts.headers.get("x-request-id").cloned();
                    let res = inner.call(Request::from_parts(parts, body)).await?;
                    // A handler's `require_reverification` refusal gets the request's trace id
                    // (its body is written again; what layers inside set on it stays).
                    let refused = res.extensions().get::<crate::ReverificationRequired>().copied();
                    let (Some(refused), Some(id)) = (refused, request_id) else {
                        return Ok(res);
                    };
                    let mut headers = HeaderMap::new();
                    headers.insert("x-request-id", id);
                    let (mut res_parts, _) = res.into_parts();
                    res_parts.headers.remove(header::CONTENT_LENGTH);
                    let body = reverification_response(&headers, refused.required).into_body();
                    Ok(Response::from_parts(res_parts, body))
                }
                Err(refused) => Ok(refused),
            }
        })
    }
}

/// The token of a request: the `Authorization` header (Bearer, or a bare value) wins; a
/// `__session` cookie counts only with a `__client_uat` that is set, not `0`, and not newer
/// than the token's `iat` (otherwise the cookie is from before a sign-out or a new sign-in).
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    request_token(headers).map(Cow::into_owned)
}

/// [`session_token`], borrowed from the `Authorization` header (the hot path copies nothing).
fn request_token(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    if headers.contains_key(header::AUTHORIZATION) {
        return authorization_token(headers).map(Cow::Borrowed);
    }
    let session = cookie(headers, "__session").filter(|s| !s.is_empty())?;
    let uat: i64 = cookie(headers, "__client_uat")?.parse().ok()?;
    if uat <= 0 {
        return None;
    }
    let iat = latchkey_token_iat(&session)?;
    (iat >= uat).then_some(Cow::Owned(session))
}

/// `iat` of a token, read without verifying (only to apply the `__client_uat` rule; the token
/// is verified before anything else is believed).
fn latchkey_token_iat(token: &str) -> Option<i64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iat")?.as_i64()
}

/// A browser navigation, which is sent to the sign-in page rather than answered 401.
pub fn is_page_request(headers: &HeaderMap) -> bool {
    let dest = headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok());
    if matches!(dest, Some("document" | "iframe")) {
        return true;
    }
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// A 400 for a request whose path has no canonical form (see [`crate::canonical_path`]): no
/// rule may judge it, since what serves it may resolve it to another path.
pub fn non_canonical_path(parts: &Parts, slashes: Slashes) -> Option<Response> {
    let problem = crate::canonical_path(parts.uri.path(), slashes).err()?;
    Some(error_response_with_meta(
        &parts.headers,
        StatusCode::BAD_REQUEST,
        "path_not_canonical",
        "Bad request.",
        &format!("{problem}: send the path as a browser would, with `.`, `..` and `//` resolved."),
        json!({"param_name": "path"}),
    ))
}

/// latchkey's error shape (docs/ARCHITECTURE.md, "HTTP surfaces and errors"), with
/// `Content-Type: application/json` exactly; the trace id is the request's `x-request-id` when
/// it has a sane one.
pub fn error_response(headers: &HeaderMap, status: StatusCode, code: &str, message: &str, long: &str) -> Response {
    error_response_with_meta(headers, status, code, message, long, json!({}))
}

/// [`error_response`] with `meta` (e.g. `{"param_name": "title"}` for a bad field).
pub fn error_response_with_meta(
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    message: &str,
    long: &str,
    meta: serde_json::Value,
) -> Response {
    json_response(status, error_body(headers, code, message, long, meta))
}

/// 403 `session_reverification_required`: latchkey's error shape (`meta.session_verification`,
/// as the Frontend API answers it) and, beside it, the hint Clerk's `reverificationError()`
/// writes and `useReverification` reads (`clerk_error`, `afterMinutes` in camel case).
pub(crate) fn reverification_response(headers: &HeaderMap, required: reverification::Requirement) -> Response {
    let (level, minutes) = (required.level.as_str(), required.after_minutes);
    let mut body = error_body(
        headers,
        "session_reverification_required",
        "You need to provide additional verification to perform this operation",
        "This action needs a recent check of your identity. Verify again and retry.",
        json!({"session_verification": {"level": level, "after_minutes": minutes}}),
    );
    body["clerk_error"] = json!({
        "type": "forbidden",
        "reason": "reverification-error",
        "metadata": {"reverification": {"level": level, "afterMinutes": minutes}},
    });
    json_response(StatusCode::FORBIDDEN, body)
}

fn error_body(
    headers: &HeaderMap,
    code: &str,
    message: &str,
    long: &str,
    meta: serde_json::Value,
) -> serde_json::Value {
    let trace = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut raw = [0u8; 12];
            latchkey_core::Random::fill(&latchkey_core::OsRandom, &mut raw);
            latchkey_core::secret::hex(&raw)
        });
    json!({"errors": [{"code": code, "message": message, "long_message": long, "meta": meta}], "clerk_trace_id": trace})
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}
