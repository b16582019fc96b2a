//! The verified caller, as `auth()` shows it in Clerk's SDKs: user, session, active
//! organization with role and permissions, factor verification age, the raw claims, and
//! `has()` with the SDK's semantics (from `latchkey-core`).

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::Response;
use http::request::Parts;
use latchkey_core::authz::{self, AuthState, Check};
use latchkey_core::caller::TokenCaller;
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
    /// Reads a verified token's claims (v2 or v1) the one way every verifier does
    /// (`latchkey_core::caller`).
    pub(crate) fn from_claims(claims: Map<String, Value>) -> Option<Self> {
        let TokenCaller { state, session_id, org_slug, .. } = TokenCaller::from_claims(&claims)?;
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
