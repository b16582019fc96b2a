//! Protect axum routes with latchkey session tokens (Clerk-compatible). Depends on the token
//! crate and the core's permission model only — no server, no database.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use latchkey_axum::{reverification, Auth, Guard, GuardConfig, KeySource, Requirement, RouteMatcher};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = Guard::new(GuardConfig::new(KeySource::Issuer("https://auth.example.com".into())))?;
//! let app: Router = Router::new()
//!     .route("/api/items", get(|auth: Auth| async move { auth.user_id().to_owned() }))
//!     .layer(
//!         guard
//!             .layer()
//!             .public(RouteMatcher::new(["/api/health", "/api/webhooks(.*)"])?)
//!             .require(RouteMatcher::new(["/api/admin(.*)"])?, Requirement::Role("org:admin".into()))
//!             // A second factor proved within 10 minutes (Clerk's `strict`).
//!             .require(RouteMatcher::new(["/api/account/delete"])?, Requirement::Reverification(reverification::STRICT)),
//!     );
//! # Ok(()) }
//! ```

mod auth;
mod cache;
pub mod credential;
mod keys;
mod layer;
mod matcher;
mod revocations;

use std::sync::Arc;

use latchkey_core::{Clock, SystemClock};
use latchkey_token::{VerifierOptions, VerifyError};

pub use auth::{Auth, ReverificationRequired};
pub use keys::{KeyError, KeySource, REFRESH_SECS, UNKNOWN_KID_REFETCH_SECS};
pub use latchkey_core::authz::Check;
/// Step-up levels and Clerk's presets (`STRICT`, `MODERATE`, `LAX`, `STRICT_MFA`).
pub use latchkey_core::reverification;
pub use layer::{
    error_response, error_response_with_meta, is_page_request, non_canonical_path, session_token, GuardLayer,
    GuardService, RequestRule, Requirement,
};
pub use matcher::{canonical_path, PathProblem, PatternError, RouteMatcher, RoutePattern, Slashes};
pub use revocations::{FeedFailure, RevocationStatus};

pub struct GuardConfig {
    pub keys: KeySource,
    /// The accepted `iss`; defaults to the issuer of [`KeySource::Issuer`].
    pub issuer: Option<String>,
    /// When set, `azp` is required and must be one of these origins (your app's).
    pub authorized_parties: Option<Vec<String>>,
    /// Allowed clock skew, in seconds (5 by default, as Clerk's SDKs).
    pub clock_skew_secs: i64,
    /// Verified tokens kept (0 turns the cache off).
    pub token_cache_capacity: usize,
    /// Where signed-out page requests are sent; defaults to `<issuer>/sign-in`.
    pub sign_in_url: Option<String>,
    /// This app's origin, for the `redirect_url` back (default: from the request's `Host`).
    pub app_url: Option<String>,
    pub clock: Arc<dyn Clock>,
    /// Certificates trusted beside the system's roots for an `https://` issuer or JWKS URL
    /// signed by a private CA.
    pub extra_roots: latchkey_core::tls::ExtraRoots,
    /// How long the revocation stream may stay silent before its connection is taken for dead
    /// and opened again (45 s; the feed sends a keep-alive every 15 s).
    pub revocation_silence: std::time::Duration,
}

impl GuardConfig {
    pub fn new(keys: KeySource) -> Self {
        Self {
            keys,
            issuer: None,
            authorized_parties: None,
            clock_skew_secs: 5,
            token_cache_capacity: 10_000,
            sign_in_url: None,
            app_url: None,
            clock: Arc::new(SystemClock),
            extra_roots: Default::default(),
            revocation_silence: std::time::Duration::from_secs(45),
        }
    }
}

struct Inner {
    keys: keys::Keys,
    cache: cache::TokenCache,
    sign_in_url: Option<String>,
    app_url: Option<String>,
    /// Where the revocation feed is (the issuer), and what it said (docs/revocations.md).
    issuer: Option<String>,
    revoked: Arc<revocations::Revoked>,
    clock: Arc<dyn Clock>,
    extra_roots: latchkey_core::tls::ExtraRoots,
    revocation_silence: std::time::Duration,
}

/// Verifies session tokens; cheap to clone. Make one per process.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Result<Self, KeyError> {
        let issuer = config.issuer.clone().or(match &config.keys {
            KeySource::Issuer(i) => Some(i.trim_end_matches('/').to_owned()),
            _ => None,
        });
        let options = VerifierOptions {
            issuers: issuer.clone().map(|i| vec![i]),
            authorized_parties: config.authorized_parties.clone(),
            audiences: None,
            leeway_secs: config.clock_skew_secs,
        };
        let sign_in_url = config.sign_in_url.clone().or(issuer.as_ref().map(|i| format!("{i}/sign-in")));
        Ok(Self {
            inner: Arc::new(Inner {
                keys: keys::Keys::new(config.keys, options, config.clock.clone(), &config.extra_roots)?,
                cache: cache::TokenCache::new(config.token_cache_capacity),
                sign_in_url,
                app_url: config.app_url.map(|u| u.trim_end_matches('/').to_owned()),
                issuer,
                revoked: Default::default(),
                clock: config.clock,
                extra_roots: config.extra_roots,
                revocation_silence: config.revocation_silence,
            }),
        })
    }

    /// A layer with no public routes and no requirements beyond being signed in.
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone())
    }

    /// Verifies a token: from the cache if it was verified before and has not expired, else
    /// the signature and claims (fetching keys when its `kid` is new, at most every 30 s).
    pub async fn verify(&self, token: &str) -> Result<Auth, VerifyError> {
        let inner = &self.inner;
        let now = inner.keys_clock_now();
        // Checked first, so that a warm token cache does not keep a stale key set alive.
        if inner.keys.claim_background_refresh() {
            let me = self.clone();
            tokio::spawn(async move {
                if let Some(removed) = me.inner.keys.refresh().await {
                    me.inner.cache.flush_keys(&removed);
                }
            });
        }
        if let Some(auth) = inner.cache.get(token, now) {
            if inner.revoked.refuses(&auth) {
                return Err(VerifyError::Revoked);
            }
            return Ok(auth);
        }
        let verified = match inner.keys.current().verify(token, now) {
            Err(VerifyError::UnknownKey) => {
                let kid = latchkey_token::Verifier::peek_kid(token).ok_or(VerifyError::UnknownKey)?;
                if let Some(removed) = inner.keys.refresh_for_unknown_kid(&kid).await {
                    inner.cache.flush_keys(&removed);
                }
                inner.keys.current().verify(token, now)?
            }
            other => other?,
        };
        let exp = verified.claims.get("exp").and_then(serde_json::Value::as_i64).unwrap_or(0);
        let kid = verified.kid.clone();
        let auth = Auth::from_claims(verified.claims).ok_or(VerifyError::MissingClaim)?;
        inner.cache.insert(token, auth.clone(), exp, kid, now);
        if inner.revoked.refuses(&auth) {
            return Err(VerifyError::Revoked);
        }
        Ok(auth)
    }

    /// Fetches the key set now (for example at start-up, or when told a key was revoked).
    pub async fn refresh_keys(&self) {
        if let Some(removed) = self.inner.keys.refresh().await {
            self.inner.cache.flush_keys(&removed);
        }
    }

    /// How many times the JWKS has been fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.keys.fetch_count()
    }

    /// How many verified tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }

    /// 307 to the sign-in page, with `redirect_url` back to the page asked for.
    pub fn sign_in_redirect(&self, parts: &http::request::Parts) -> axum::response::Response {
        use axum::response::IntoResponse;
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let back = match &self.inner.app_url {
            Some(app) => format!("{app}{path}"),
            None => {
                let host = parts.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
                format!("http://{host}{path}")
            }
        };
        let Some(sign_in) = &self.inner.sign_in_url else {
            return layer::error_response(
                &parts.headers,
                http::StatusCode::UNAUTHORIZED,
                "authentication_invalid",
                "You are signed out.",
                "Sign in first.",
            );
        };
        let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        let sep = if sign_in.contains('?') { '&' } else { '?' };
        let location = format!("{sign_in}{sep}redirect_url={encoded}");
        let mut res = http::StatusCode::TEMPORARY_REDIRECT.into_response();
        if let Ok(v) = http::HeaderValue::from_str(&location) {
            res.headers_mut().insert(http::header::LOCATION, v);
        }
        res
    }
}

impl Inner {
    fn keys_clock_now(&self) -> i64 {
        self.keys.now()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use latchkey_core::ManualClock;
    use latchkey_token::{OrgClaim, SessionClaims, SigningKey};
    use tower::ServiceExt;

    const ISS: &str = "https://auth.example.test";

    fn claims(now: i64, org: Option<(&str, &[&str])>) -> SessionClaims {
        let (o, fea) = match org {
            Some((role, perms)) => {
                let packed =
                    latchkey_core::authz::pack_permissions(&perms.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>());
                let claim = OrgClaim {
                    id: "org_1".into(),
                    slg: "acme".into(),
                    rol: role.into(),
                    per: packed.per,
                    fpm: packed.fpm,
                };
                (Some(claim), Some(packed.fea.join(",")))
            }
            None => (None, None),
        };
        SessionClaims {
            sub: "user_1".into(),
            sid: "sess_1".into(),
            iss: ISS.into(),
            azp: None,
            exp: now + 60,
            iat: now,
            nbf: now - 10,
            v: 2,
            fva: [3, -1],
            sts: "active".into(),
            o,
            fea,
            v1: Default::default(),
        }
    }

    fn setup() -> (SigningKey, ManualClock, Guard) {
        let key = SigningKey::generate(&mut rand::thread_rng()).unwrap();
        let clock = ManualClock::new(1_800_000_000_000);
        let mut config = GuardConfig::new(KeySource::Pem(key.public().to_spki_pem().unwrap()));
        config.issuer = Some(ISS.into());
        config.clock = Arc::new(clock.clone());
        (key, clock, Guard::new(config).unwrap())
    }

    fn app(guard: &Guard, not_found: bool) -> Router {
        let mut layer = guard
            .layer()
            .public(RouteMatcher::new(["/public(.*)"]).unwrap())
            .require(RouteMatcher::new(["/admin(.*)"]).unwrap(), Requirement::Role("admin".into()))
            .require(RouteMatcher::new(["/invoices"]).unwrap(), Requirement::Permission("org:invoices:create".into()));
        if not_found {
            layer = layer.not_found_when_forbidden();
        }
        Router::new()
            .route(
                "/public",
                get(
                    |auth: Option<Auth>| async move { auth.map_or("anonymous".to_owned(), |a| a.user_id().to_owned()) },
                ),
            )
            .route(
                "/me",
                get(|auth: Auth| async move {
                    format!("{} {:?} {:?}", auth.user_id(), auth.org_role(), auth.org_permissions())
                }),
            )
            .route("/admin/x", get(|| async { "admin" }))
            .route("/invoices", get(|| async { "invoices" }))
            .layer(layer)
    }

    async fn get_with(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn requirements_public_routes_and_the_extractors() {
        let (key, clock, guard) = setup();
        let now = latchkey_core::Clock::now_secs(&clock);
        let admin = key
            .sign(&claims(now, Some(("admin", &["org:invoices:create"]))), Some(latchkey_token::SESSION_TOKEN_CAT))
            .unwrap();
        let member = key.sign(&claims(now, Some(("member", &[]))), Some(latchkey_token::SESSION_TOKEN_CAT)).unwrap();
        let personal = key.sign(&claims(now, None), Some(latchkey_token::SESSION_TOKEN_CAT)).unwrap();
        let app = app(&guard, false);

        assert_eq!(get_with(&app, "/public", None).await, (StatusCode::OK, "anonymous".into()));
        assert_eq!(
            get_with(&app, "/public", Some(&member)).await,
            (StatusCode::OK, "user_1".into()),
            "public routes still see the caller"
        );
        assert_eq!(
            get_with(&app, "/public", Some("garbage")).await.0,
            StatusCode::OK,
            "a bad token on a public route is just anonymous"
        );
        let (status, body) = get_with(&app, "/me", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("authentication_invalid") && body.contains("clerk_trace_id"), "{body}");
        let (status, body) = get_with(&app, "/me", Some(&admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"user_1 Some("org:admin") ["org:invoices:create"]"#);

        assert_eq!(get_with(&app, "/admin/x", Some(&admin)).await.0, StatusCode::OK);
        // A path the rules cannot judge as the router will read it is refused outright.
        for path in ["/public/../admin/x", "/public/%2e%2e/admin/x", "/public//x"] {
            let (status, body) = get_with(&app, path, Some(&member)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert!(body.contains("path_not_canonical"), "{body}");
        }
        let (status, body) = get_with(&app, "/admin/x", Some(&member)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("authorization_invalid"));
        assert_eq!(
            get_with(&app, "/admin/x", Some(&personal)).await.0,
            StatusCode::FORBIDDEN,
            "no active organization, no role"
        );
        assert_eq!(get_with(&app, "/invoices", Some(&admin)).await.0, StatusCode::OK);
        assert_eq!(get_with(&app, "/invoices", Some(&member)).await.0, StatusCode::FORBIDDEN);
        let hidden = app_with_404(&guard);
        assert_eq!(
            get_with(&hidden, "/admin/x", Some(&member)).await.0,
            StatusCode::NOT_FOUND,
            "404 on request, as Clerk's protect()"
        );

        // The skew: 5 seconds past exp is still accepted, 6 are not; the cache ends at exp.
        clock.advance_ms(64_000);
        assert_eq!(get_with(&app, "/me", Some(&admin)).await.0, StatusCode::OK);
        clock.advance_ms(2_000);
        assert_eq!(get_with(&app, "/me", Some(&admin)).await.0, StatusCode::UNAUTHORIZED);

        // A template token (another `cat`) or another issuer is not a session token.
        let template = key
            .sign(&claims(latchkey_core::Clock::now_secs(&clock), None), Some(latchkey_token::TEMPLATE_TOKEN_CAT))
            .unwrap();
        assert_eq!(get_with(&app, "/me", Some(&template)).await.0, StatusCode::UNAUTHORIZED);
        let mut foreign = claims(latchkey_core::Clock::now_secs(&clock), None);
        foreign.iss = "https://evil.example".into();
        let foreign = key.sign(&foreign, Some(latchkey_token::SESSION_TOKEN_CAT)).unwrap();
        assert_eq!(get_with(&app, "/me", Some(&foreign)).await.0, StatusCode::UNAUTHORIZED);
    }

    fn app_with_404(guard: &Guard) -> Router {
        app(guard, true)
    }

    /// Routes that need a recent check: by the layer's rules and in a handler.
    fn reverifying_app(guard: &Guard, not_found: bool) -> Router {
        let mut layer = guard
            .layer()
            .public(RouteMatcher::new(["/public(.*)"]).unwrap())
            .require(RouteMatcher::new(["/account(.*)"]).unwrap(), Requirement::reverification("strict").unwrap())
            .require(RouteMatcher::new(["/account/keys"]).unwrap(), Requirement::reverification("strict_mfa").unwrap())
            .require(RouteMatcher::new(["/settings"]).unwrap(), Requirement::reverification("lax").unwrap())
            .require(RouteMatcher::new(["/admin/wipe"]).unwrap(), Requirement::Role("admin".into()))
            .require(
                RouteMatcher::new(["/admin/wipe"]).unwrap(),
                Requirement::Reverification(reverification::MODERATE),
            );
        if not_found {
            layer = layer.not_found_when_forbidden();
        }
        let ok = || async { "ok" };
        Router::new()
            .route(
                "/public",
                get(
                    |auth: Option<Auth>| async move { auth.map_or("anonymous".to_owned(), |a| a.user_id().to_owned()) },
                ),
            )
            .route("/me", get(|auth: Auth| async move { auth.user_id().to_owned() }))
            .route("/account", get(ok))
            .route("/account/keys", get(ok))
            .route("/settings", get(ok))
            .route("/admin/wipe", get(ok))
            .route(
                "/handler",
                get(|auth: Auth| async move {
                    auth.require_reverification(reverification::STRICT)?;
                    Ok::<_, ReverificationRequired>("checked here")
                }),
            )
            .layer(layer)
    }

    async fn get_json(app: &Router, path: &str, token: &str) -> (StatusCode, serde_json::Value, String) {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .header("x-request-id", "req-1")
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null), ct)
    }

    fn assert_needs(reply: &(StatusCode, serde_json::Value, String), level: &str, minutes: i64) {
        let (status, body, ct) = reply;
        assert_eq!((*status, ct.as_str()), (StatusCode::FORBIDDEN, "application/json"), "{body}");
        let error = &body["errors"][0];
        assert_eq!(error["code"], "session_reverification_required", "{body}");
        assert!(error["message"].is_string() && error["long_message"].is_string(), "{body}");
        assert_eq!(
            error["meta"]["session_verification"],
            serde_json::json!({"level": level, "after_minutes": minutes}),
            "{body}"
        );
        assert_eq!(body["clerk_trace_id"], "req-1");
        // What `isReverificationHint` in @clerk/shared tests, and what `useReverification` reads.
        assert_eq!(
            body["clerk_error"],
            serde_json::json!({"type": "forbidden", "reason": "reverification-error",
                "metadata": {"reverification": {"level": level, "afterMinutes": minutes}}}),
            "{body}"
        );
    }

    #[tokio::test]
    async fn reverification_rules_and_the_handler_check() {
        let (key, clock, guard) = setup();
        let now = latchkey_core::Clock::now_secs(&clock);
        let sign = |fva: [i64; 2], role: Option<&str>| {
            let mut c = claims(now, role.map(|r| (r, &[][..])));
            c.fva = fva;
            key.sign(&c, Some(latchkey_token::SESSION_TOKEN_CAT)).unwrap()
        };
        let app = reverifying_app(&guard, false);

        // Fresh first factor, no second factor: strict is met by the first (Clerk's rule).
        let fresh_one = sign([3, -1], None);
        for path in ["/account", "/account/keys", "/settings", "/handler"] {
            assert_eq!(get_json(&app, path, &fresh_one).await.0, StatusCode::OK, "{path}");
        }
        // Both factors fresh.
        let fresh_two = sign([9, 9], None);
        assert_eq!(get_json(&app, "/account/keys", &fresh_two).await.0, StatusCode::OK);

        // Second factor proved 10 minutes ago: not strict, still lax.
        let stale_two = sign([0, 10], None);
        assert_needs(&get_json(&app, "/account", &stale_two).await, "second_factor", 10);
        assert_needs(&get_json(&app, "/handler", &stale_two).await, "second_factor", 10);
        assert_eq!(get_json(&app, "/settings", &stale_two).await.0, StatusCode::OK);
        assert_eq!(get_json(&app, "/me", &stale_two).await.0, StatusCode::OK, "no rule on /me");
        // Two unmet rules on one path: one answer asking for both (the higher level, the
        // shorter time).
        assert_needs(&get_json(&app, "/account/keys", &stale_two).await, "multi_factor", 10);
        // A stale first factor fails strict_mfa alone.
        let stale_one = sign([30, 2], None);
        assert_eq!(get_json(&app, "/account", &stale_one).await.0, StatusCode::OK);
        assert_needs(&get_json(&app, "/account/keys", &stale_one).await, "multi_factor", 10);
        // Never proved, and a day old.
        assert_needs(&get_json(&app, "/settings", &sign([-1, -1], None)).await, "second_factor", 1440);
        assert_needs(&get_json(&app, "/settings", &sign([1440, -1], None)).await, "second_factor", 1440);

        // Authorization first: a caller without the role is refused as such, not asked to verify.
        let (status, body, _) = get_json(&app, "/admin/wipe", &stale_two).await;
        assert_eq!(
            (status, body["errors"][0]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("authorization_invalid"))
        );
        assert!(body.get("clerk_error").is_none(), "{body}");
        let admin_stale = sign([0, 61], Some("admin"));
        assert_needs(&get_json(&app, "/admin/wipe", &admin_stale).await, "second_factor", 60);
        assert_eq!(get_json(&app, "/admin/wipe", &sign([0, 59], Some("admin"))).await.0, StatusCode::OK);
        // With 404 for unmet roles, a missing check is still answered 403 with the hint.
        let hidden = reverifying_app(&guard, true);
        assert_eq!(get_json(&hidden, "/admin/wipe", &stale_two).await.0, StatusCode::NOT_FOUND);
        assert_needs(&get_json(&hidden, "/admin/wipe", &admin_stale).await, "second_factor", 60);

        // Signed out stays 401, even on a route that needs a check.
        let res = app.clone().oneshot(Request::get("/account").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

        // The refusal outside the layer: a fresh trace id, the same shape.
        let refused =
            Auth::from_claims(serde_json::json!({"sub": "user_1", "fva": [0, 10]}).as_object().cloned().unwrap())
                .unwrap()
                .require_reverification(reverification::STRICT)
                .unwrap_err();
        assert!(refused.to_string().contains("second_factor within 10 minutes"));
        let res = axum::response::IntoResponse::into_response(refused);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["clerk_error"]["metadata"]["reverification"]["afterMinutes"], 10);
        assert_eq!(body["clerk_trace_id"].as_str().map(str::len), Some(24));
        let no_fva = Auth::from_claims(serde_json::json!({"sub": "user_1"}).as_object().cloned().unwrap()).unwrap();
        assert!(!no_fva.has_reverification(reverification::LAX), "a token without fva never passes");
    }

    #[tokio::test]
    async fn a_pending_session_is_signed_out() {
        let (key, clock, guard) = setup();
        let now = latchkey_core::Clock::now_secs(&clock);
        let mut c = claims(now, Some(("admin", &[])));
        c.sts = "pending".into();
        let pending = key.sign(&c, Some(latchkey_token::SESSION_TOKEN_CAT)).unwrap();
        let auth = guard.verify(&pending).await.unwrap();
        assert!(auth.is_pending(), "verify itself returns the caller as it is");
        let app = reverifying_app(&guard, false);
        let (status, body, _) = get_json(&app, "/me", &pending).await;
        assert_eq!(
            (status, body["errors"][0]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("authentication_invalid"))
        );
        assert_eq!(get_json(&app, "/account", &pending).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            get_with(&reverifying_app(&guard, false), "/public", Some(&pending)).await,
            (StatusCode::OK, "anonymous".into())
        );
        // A page request is sent to sign in (where the task is finished).
        let res = app
            .clone()
            .oneshot(
                Request::get("/me")
                    .header("authorization", format!("Bearer {pending}"))
                    .header("sec-fetch-dest", "document")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
        c.sts = "active".into();
        let active = key.sign(&c, Some(latchkey_token::SESSION_TOKEN_CAT)).unwrap();
        assert_eq!(get_with(&app, "/me", Some(&active)).await, (StatusCode::OK, "user_1".into()));
    }
}
