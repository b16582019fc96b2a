//! The verified caller, as `auth()` shows it in Clerk's SDKs: user, session, active
//! organization with role and permissions, factor verification age, the raw claims, and
//! `has()` with the SDK's semantics (from `latchkey-core`).

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::request::Parts;
use latchkey_core::authz::{self, AuthState, Check};
use serde_json::{Map, Value};

use crate::layer::error_response;

#[derive(Debug, Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: AuthState,
    session_id: Option<String>,
    org_slug: Option<String>,
    claims: Map<String, Value>,
}

impl Auth {
    /// Reads a verified token's claims: v2 (`o`, `fea`) or v1 (`org_id`, `org_role`, …).
    pub(crate) fn from_claims(claims: Map<String, Value>) -> Option<Self> {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let user_id = text(claims.get("sub"))?;
        let session_id = text(claims.get("sid"));
        let fva = claims.get("fva").and_then(Value::as_array).and_then(|a| {
            let first = a.first()?.as_i64()?;
            let second = a.get(1)?.as_i64()?;
            Some([first, second])
        });
        let (org_id, org_role, org_slug, org_permissions) = match claims.get("o").and_then(Value::as_object) {
            Some(o) => {
                let fea = claims.get("fea").and_then(Value::as_str).unwrap_or("");
                let per = o.get("per").and_then(Value::as_str);
                let fpm = o.get("fpm").and_then(Value::as_str);
                (
                    text(o.get("id")),
                    text(o.get("rol")).map(|r| authz::with_org_prefix(&r)),
                    text(o.get("slg")),
                    authz::unpack_permissions(fea, per, fpm),
                )
            }
            None => (
                text(claims.get("org_id")),
                text(claims.get("org_role")),
                text(claims.get("org_slug")),
                claims
                    .get("org_permissions")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
            ),
        };
        let state =
            AuthState { user_id: Some(user_id), org_id, org_role, org_permissions, factor_verification_age: fva };
        Some(Self { inner: Arc::new(Inner { state, session_id, org_slug, claims }) })
    }

    pub fn user_id(&self) -> &str {
        self.inner.state.user_id.as_deref().unwrap_or("")
    }
    pub fn session_id(&self) -> Option<&str> {
        self.inner.session_id.as_deref()
    }
    pub fn org_id(&self) -> Option<&str> {
        self.inner.state.org_id.as_deref()
    }
    /// With the `org:` prefix, as `auth().orgRole`.
    pub fn org_role(&self) -> Option<&str> {
        self.inner.state.org_role.as_deref()
    }
    pub fn org_slug(&self) -> Option<&str> {
        self.inner.org_slug.as_deref()
    }
    pub fn org_permissions(&self) -> &[String] {
        &self.inner.state.org_permissions
    }
    /// Minutes since the first and the second factor were verified (-1: not enrolled).
    pub fn factor_verification_age(&self) -> Option<[i64; 2]> {
        self.inner.state.factor_verification_age
    }
    pub fn claims(&self) -> &Map<String, Value> {
        &self.inner.claims
    }
    /// `has()`: every check must pass.
    pub fn has(&self, checks: &[Check]) -> bool {
        authz::has(&self.inner.state, checks)
    }
    pub fn has_role(&self, role: &str) -> bool {
        self.has(&[Check::Role(role.to_owned())])
    }
    pub fn has_permission(&self, permission: &str) -> bool {
        self.has(&[Check::Permission(permission.to_owned())])
    }
}

/// Required: a request without a verified token is answered 401.
impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Option<Auth>>() {
            Some(Some(auth)) => Ok(auth.clone()),
            Some(None) => Err(error_response(
                &parts.headers,
                http::StatusCode::UNAUTHORIZED,
                "authentication_invalid",
                "You are signed out.",
                "Send a valid session token.",
            )),
            None => {
                tracing::error!("the Auth extractor needs latchkey_axum's layer in front of the route");
                Err(error_response(
                    &parts.headers,
                    http::StatusCode::UNAUTHORIZED,
                    "authentication_invalid",
                    "You are signed out.",
                    "Send a valid session token.",
                ))
            }
        }
    }
}

/// Optional: `Option<Auth>` is `None` for a signed-out caller.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Auth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Option<Auth>>().cloned().flatten())
    }
}
