//! The handshake of server-rendered apps (docs/frontend-api.md §8): the Frontend API answers a
//! navigation with a single-use nonce; the app's backend trades it, with its secret key, for
//! the cookie directives (`Set-Cookie` strings) that bring its domain's `__session` and
//! `__client_uat` up to date. Only the nonce's digest is stored, for a short while.
//!
//! A browser with no client at all is signed out: its directives only clear cookies and hold
//! nothing secret, so they travel in a signed handshake token (`__clerk_handshake`, which
//! `@clerk/backend` verifies with the JWKS) and nothing is stored for a request anyone can
//! make without limit. The SDKs of the 1.x generation read only that token, so for them the
//! signed-in directives travel in it too (docs/frontend-api.md §8, "The legacy form").

use latchkey_core::secret::{new_opaque_secret, secret_digest};

use crate::error::{Result, ServiceError};
use crate::Services;

/// How long a nonce waits for the app's backend: the browser follows the redirect at once.
pub const HANDSHAKE_NONCE_TTL_MS: i64 = 120_000;

impl Services {
    /// Stores `directives` and returns the nonce that takes them once.
    pub async fn issue_handshake_nonce(&self, directives: &[String]) -> Result<String> {
        let nonce = new_opaque_secret(self.rng.as_ref());
        let body = serde_json::to_string(directives).map_err(|_| ServiceError::internal())?;
        let expires_at = self.now() + HANDSHAKE_NONCE_TTL_MS;
        self.store.insert_handshake_nonce(&secret_digest(&nonce), &body, expires_at).await?;
        Ok(nonce)
    }

    /// A signed handshake token carrying `directives` (`__clerk_handshake`, which
    /// `@clerk/backend` verifies with the JWKS): the signed-out answer, and the legacy form of the
    /// signed-in one.
    pub async fn handshake_token(&self, directives: &[String]) -> Result<String> {
        let now = self.clock.now_secs();
        let claims = serde_json::json!({
            "handshake": directives,
            "iss": self.config.issuer,
            "iat": now,
            "exp": now + HANDSHAKE_NONCE_TTL_MS / 1000,
        });
        let key = self.keys.signing_key().await?;
        key.sign(&claims, Some(latchkey_token::SESSION_TOKEN_CAT)).map_err(|_| ServiceError::internal())
    }

    /// The directives of a nonce, once; unknown, used or expired nonces are not found.
    pub async fn take_handshake_nonce(&self, nonce: &str) -> Result<Vec<String>> {
        let stored = self.store.take_handshake_nonce(&secret_digest(nonce), self.now()).await?;
        let body = stored.ok_or_else(|| ServiceError::not_found("Handshake nonce"))?;
        serde_json::from_str(&body).map_err(|_| ServiceError::internal())
    }

    /// Housekeeping: forgets abandoned sign-in and sign-up attempts, and clients idle for two
    /// days that never held a session.
    pub async fn prune_abandoned(&self) -> Result<u64> {
        let now = self.now();
        Ok(self.store.prune_abandoned(now, now - 2 * latchkey_core::throttle::DAY_MS).await?)
    }

    /// Housekeeping: forgets nonces nobody took.
    pub async fn prune_handshake_nonces(&self) -> Result<u64> {
        Ok(self.store.prune_handshake_nonces(self.now()).await?)
    }
}
