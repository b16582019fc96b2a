//! Cross-cutting layers: request ids and tracing, timeouts, metrics, `_method` tunnelling,
//! CORS for allow-listed origins, CSRF protection by origin, and security headers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_service::{ErrorKind, ServiceError};
use tracing::Instrument;

use crate::error::{ApiError, TRACE_ID};
use crate::AppState;

/// Where the Frontend API's `/v1/organizations…` routes live inside the router.
pub const FRONTEND_ORGS_PREFIX: &str = "/v1/_frontend/organizations";
/// Where a `/v1/organizations…` request without any credential goes: a 401 inside the router,
/// so it gets the request id, headers and CORS of every other answer.
pub const NO_CREDENTIAL_PATH: &str = "/v1/_no_credential";

/// Both APIs serve `/v1/organizations…`, as Clerk's do. A request goes to the Frontend API
/// when it carries a Frontend API credential — a `__client` cookie, or a bearer client token
/// (opaque, never `sk_…`, never a JWT) — and to the Backend API otherwise, so a request with
/// a secret key or a session token hears the Backend API's answer. Every route of both needs
/// a credential, so a request with none is sent to a 401. Runs before routing.
fn route_organizations(req: &mut Request) {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v1/organizations") else {
        return;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return;
    }
    let bearer = latchkey_axum::credential::authorization_token(req.headers());
    let frontend = match bearer {
        Some(token) => !token.starts_with("sk_") && !token.contains('.'),
        None if crate::cookies::has_client_cookie(req.headers()) => true,
        None => {
            if let Ok(uri) = NO_CREDENTIAL_PATH.parse() {
                *req.uri_mut() = uri;
            }
            return;
        }
    };
    if !frontend {
        return;
    }
    let rewritten = match req.uri().query() {
        Some(q) => format!("{FRONTEND_ORGS_PREFIX}{rest}?{q}"),
        None => format!("{FRONTEND_ORGS_PREFIX}{rest}"),
    };
    if let Ok(uri) = rewritten.parse() {
        *req.uri_mut() = uri;
    }
}

/// The answer to a `/v1/organizations…` request that carries no credential at all.
pub async fn no_credential() -> ApiError {
    ApiError(
        ServiceError::unauthenticated("You are signed out.")
            .long("Sign in, or call the Backend API with `Authorization: Bearer sk_live_…`."),
    )
}

/// Before routing: Clerk's SDK sends PATCH, PUT and DELETE as `POST …?_method=X` to avoid
/// CORS preflights; and `/v1/organizations…` goes to the API the credential names.
pub async fn method_override(mut req: Request, next: Next) -> Response {
    route_organizations(&mut req);
    if req.method() == Method::POST {
        let wanted = req.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "_method").map(|(_, v)| v.to_ascii_uppercase())
        });
        match wanted.as_deref() {
            Some("PATCH") => *req.method_mut() = Method::PATCH,
            Some("PUT") => *req.method_mut() = Method::PUT,
            Some("DELETE") => *req.method_mut() = Method::DELETE,
            _ => {}
        }
    }
    next.run(req).await
}

// Not tower-http's SetRequestId/PropagateRequestId: 1.18–1.35× the time per request (docs/BENCHMARKS.md).
fn request_id(headers: &HeaderMap, state: &AppState) -> String {
    let incoming = headers.get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| {
        !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    match incoming {
        Some(v) => v.to_owned(),
        None => {
            let mut raw = [0u8; 12];
            state.services.rng.fill(&mut raw);
            latchkey_core::secret::hex(&raw)
        }
    }
}

/// Rate-limit refusals by route, and refused sign-in requests by error code.
fn count_refusals(state: &AppState, route: &str, status: u16, code: Option<&crate::error::ErrorCode>) {
    let telemetry = state.services.telemetry();
    if status == 429 {
        telemetry.count("latchkey_rate_limited_total", &[("route", route)]);
    }
    if route.starts_with("/v1/client/sign_ins") && (400..500).contains(&status) {
        telemetry.count("latchkey_sign_in_failures_total", &[("reason", code.map_or("unknown", |c| c.0))]);
    }
}

/// Request id (echoed as `x-request-id` and used as `clerk_trace_id`), a tracing span, the
/// request timeout, metrics and one log line per request. Query strings are never logged.
/// Not tower-http's `TraceLayer`/`TimeoutLayer`: they cannot scope the trace id error bodies
/// read or give metrics the matched route, and their timeout answer has an empty body.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = request_id(req.headers(), &state);
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    let start = Instant::now();
    let timeout = state.config.request_timeout;
    let id_for_scope = id.clone();
    let mut res = TRACE_ID
        .scope(id.clone(), async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(res) => res,
                Err(_) => {
                    ApiError(ServiceError::new(ErrorKind::Unavailable, "request_timeout", "The request took too long."))
                        .into_response()
                }
            }
        })
        .instrument(span.clone())
        .await;
    let elapsed = start.elapsed();
    if let Ok(v) = HeaderValue::from_str(&id_for_scope) {
        res.headers_mut().insert("x-request-id", v);
    }
    let status = res.status().as_u16();
    state.metrics.observe(method.as_str(), &route, status, u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    count_refusals(&state, &route, status, res.extensions().get::<crate::error::ErrorCode>());
    span.in_scope(|| {
        tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, route = %route, "request");
    });
    res
}

// Not tower-http's SetResponseHeaderLayers: 1.05–1.18× the time per request (docs/BENCHMARKS.md).
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("strict-origin-when-cross-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    let is_html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
            ),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.public_url.starts_with("https://") {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    res
}

/// A request that came through an app's same-origin Frontend API proxy (`/__clerk`, as
/// `@clerk/nextjs`'s `frontendApiProxy` and `@clerk/backend/proxy` forward it), proven by the
/// instance's secret key in `Clerk-Secret-Key`: the origin of the proxy's public URL
/// (`Clerk-Proxy-Url`), which is the app's.
#[derive(Debug, Clone)]
pub struct ViaProxy {
    pub origin: String,
    /// The proxy's public URL (`Clerk-Proxy-Url`, no trailing `/`): the Frontend API as the
    /// app's browsers reach it, where mailed links point.
    pub url: String,
}

/// Whether `origin` is trusted for this request: the instance's own and allow-listed origins,
/// and the origin of the authenticated proxy the request came through.
pub fn origin_trusted(config: &crate::AppConfig, extensions: &http::Extensions, origin: &str) -> bool {
    config.origin_allowed(origin) || extensions.get::<ViaProxy>().is_some_and(|p| p.origin == origin)
}

/// Recognises the Frontend API proxy headers `Clerk-Proxy-Url` and `Clerk-Secret-Key`. A
/// proxy URL without a valid secret key is refused: an unproven proxy must not widen the
/// trusted origins, and a misconfigured one should hear so at once.
pub async fn proxy_context(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (url, secret) = (header_text("clerk-proxy-url"), header_text("clerk-secret-key"));
    let Some(url) = url else {
        return next.run(req).await;
    };
    let refuse = |message: &str| {
        ApiError(
            ServiceError::new(ErrorKind::Unauthenticated, "proxy_request_invalid", message.to_owned())
                .long("A Frontend API proxy must send the instance's secret key as Clerk-Secret-Key and its public URL as Clerk-Proxy-Url."),
        )
        .into_response()
    };
    let Some(origin) = crate::origin_of(&url) else {
        return refuse("Clerk-Proxy-Url is not an absolute http(s) URL.");
    };
    let proven = match secret {
        Some(s) => state.services.authenticate_secret_key(&s).await.is_ok(),
        None => false,
    };
    if !proven {
        tracing::warn!(proxy_url = %url, "Frontend API proxy request without a valid secret key refused");
        return refuse("Clerk-Secret-Key is missing or is not a secret key of this instance.");
    }
    let https = origin.starts_with("https://");
    req.extensions_mut().insert(ViaProxy { origin, url: url.trim_end_matches('/').to_owned() });
    let mut res = next.run(req).await;
    if https {
        secure_cookies(res.headers_mut());
    }
    res
}

/// A `Set-Cookie` value with the `Secure` attribute.
pub fn secure_cookie(cookie: String) -> String {
    if cookie.split(';').any(|a| a.trim().eq_ignore_ascii_case("secure")) {
        cookie
    } else {
        format!("{cookie}; Secure")
    }
}

/// Marks every cookie `Secure`: the browser reached latchkey over https through the proxy,
/// even when latchkey itself listens on plain http behind it.
fn secure_cookies(headers: &mut HeaderMap) {
    let cookies: Vec<String> =
        headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&secure_cookie(c)) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// CORS for allow-listed origins only, with credentials; never `*` with credentials.
/// Not tower-http's `CorsLayer`: it answers every OPTIONS itself (200, not 204) and sends the
/// allowed methods and headers to refused origins too.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let allowed = origin.as_deref().filter(|o| origin_trusted(&state.config, req.extensions(), o)).map(str::to_owned);
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if allowed.is_some() {
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization, content-type"));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        r
    } else {
        next.run(req).await
    };
    if let Some(origin) = allowed {
        if let Ok(v) = HeaderValue::from_str(&origin) {
            let h = res.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("authorization, x-request-id"));
        }
    }
    res.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    res
}

/// Cookie-authenticated writes must come from a trusted origin: `Sec-Fetch-Site` same-origin
/// or none, or an allow-listed `Origin`. Requests with an `Authorization` header carry their
/// credential explicitly and are exempt. So is an identity provider's form POST to the
/// callback (Apple's `form_post`, cross-site by nature): its handler reads no cookie and
/// writes nothing, it only answers a 303 to the same GET on this origin, where the state
/// decides (docs/identity-providers.md).
pub async fn origin_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let provider_form_post = *req.method() == Method::POST && req.uri().path() == latchkey_service::CALLBACK_PATH;
    if safe || provider_form_post || req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let h = req.headers();
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin_ok = origin.is_some_and(|o| origin_trusted(&state.config, req.extensions(), o));
    let ok = match site {
        Some("same-origin" | "none") => true,
        Some(_) => origin_ok,
        None => origin.is_none() || origin_ok,
    };
    if !ok {
        tracing::warn!(
            origin = origin.unwrap_or(""),
            site = site.unwrap_or(""),
            "write from an untrusted origin refused"
        );
        return ApiError(
            ServiceError::new(ErrorKind::Forbidden, "origin_invalid", "The request's origin is not allowed.")
                .long("Cookie-authenticated requests must come from an allowed origin."),
        )
        .into_response();
    }
    next.run(req).await
}
