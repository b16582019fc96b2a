//! The verified caller, as `auth()` shows it in Clerk's SDKs: user, session, active
//! organization with role and permissions, factor verification age, the raw claims, and
//! `has()` with the SDK's semantics (from `latchkey-core`); a step-up check
//! ([`Auth::require_reverification`]) and its refusal ([`ReverificationRequired`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::HeaderMap;
use latchkey_core::authz::{self, AuthState, Check};
use latchkey_core::caller::TokenCaller;
use latchkey_core::reverification;
use serde_json::{Map, Value};

use crate::layer::{error_response, reverification_response};

#[derive(Debug, Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: AuthState,
    session_id: Option<String>,
    org_slug: Option<String>,
    pending: bool,
    claims: Map<String, Value>,
}

impl Auth {
    /// Reads a verified token's claims (v2 or v1) the one way every verifier does
    /// (`latchkey_core::caller`).
    pub(crate) fn from_claims(claims: Map<String, Value>) -> Option<Self> {
        let TokenCaller { state, session_id, org_slug, pending, .. } = TokenCaller::from_claims(&claims)?;
        Some(Self { inner: Arc::new(Inner { state, session_id, org_slug, pending, claims }) })
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
    /// The token's `sts` is `pending`: the session waits for a task (e.g. setting up a second
    /// factor). The layer treats such a caller as signed out, so handlers behind it never see
    /// one; [`crate::Guard::verify`] returns it as it is.
    pub fn is_pending(&self) -> bool {
        self.inner.pending
    }
    /// `has({ reverification })`: whether the session proved its factors recently enough
    /// (the token's `fva`; a token without one never is).
    pub fn has_reverification(&self, required: reverification::Requirement) -> bool {
        self.factor_verification_age().is_some_and(|fva| required.is_met(fva))
    }
    /// [`Auth::has_reverification`], or the refusal to answer with (403
    /// `session_reverification_required` with Clerk's reverification hint):
    ///
    /// ```no_run
    /// # use latchkey_axum::{reverification, Auth, ReverificationRequired};
    /// async fn delete_account(auth: Auth) -> Result<&'static str, ReverificationRequired> {
    ///     auth.require_reverification(reverification::STRICT)?;
    ///     Ok("deleted")
    /// }
    /// ```
    pub fn require_reverification(&self, required: reverification::Requirement) -> Result<(), ReverificationRequired> {
        if self.has_reverification(required) {
            Ok(())
        } else {
            Err(ReverificationRequired { required })
        }
    }
}

/// A session that must prove its factors again before this request: answered 403 with code
/// `session_reverification_required` in latchkey's error shape plus Clerk's hint
/// (`clerk_error`, read by `useReverification` in Clerk's SDKs), so the app's front end can
/// ask for the check and retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReverificationRequired {
    pub required: reverification::Requirement,
}

impl ReverificationRequired {
    /// The refusal, with the request's `x-request-id` as its trace id when it has a sane one.
    pub fn response(&self, headers: &HeaderMap) -> Response {
        reverification_response(headers, self.required)
    }
}

/// Without the request's headers at hand, a fresh trace id; the layer puts the request's
/// `x-request-id` in when the refusal passes back through it (it finds the refusal in the
/// response's extensions).
impl IntoResponse for ReverificationRequired {
    fn into_response(self) -> Response {
        let mut res = self.response(&HeaderMap::new());
        res.extensions_mut().insert(self);
        res
    }
}

impl From<ReverificationRequired> for Response {
    fn from(refused: ReverificationRequired) -> Self {
        refused.into_response()
    }
}

impl std::fmt::Display for ReverificationRequired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the session must prove its factors again ({} within {} minutes)",
            self.required.level.as_str(),
            self.required.after_minutes
        )
    }
}

impl std::error::Error for ReverificationRequired {}

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
