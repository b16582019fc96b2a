//! Verifying a session token over the network, for the Backend API endpoints Clerk's older SDKs
//! still call (`sessions.verifySession`, `POST /v1/sessions/{id}/verify`; `verifySessionToken`,
//! `POST /v1/sessions/verify`): the token is checked exactly as sync checks a caller's (one path
//! from a token to a caller, [`Services::token_caller`]) and the session it names must still be
//! live (docs/clerk-sdks.md, "Older SDK generations").

use latchkey_core::authz::AuthState;
use latchkey_core::caller::TokenCaller;
use latchkey_store::SessionRow;
use latchkey_token::{VerifierOptions, VerifyError};

use crate::authority::Operator;
use crate::{Result, ServiceError, Services};

/// A verified session token: who it names.
pub struct TokenHolder {
    pub user_id: String,
    pub session_id: String,
    /// When the token expires (seconds).
    pub expires_at: i64,
}

impl Services {
    /// Checks a session token's signature, issuer and lifetime against this instance's keys
    /// and reads who it names: sync's callers and the session verification endpoints both come
    /// through here. The outer error is the instance's own (its keys unreadable).
    pub(crate) async fn token_caller(&self, token: &str) -> Result<std::result::Result<TokenHolder, VerifyError>> {
        let options = VerifierOptions { issuers: Some(vec![self.config.issuer.clone()]), ..VerifierOptions::default() };
        let verifier = self.keys.verifier(options).await?;
        let verified = match verifier.verify(token, self.clock.now_secs()) {
            Ok(verified) => verified,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match TokenCaller::from_claims(&verified.claims) {
            Some(TokenCaller {
                state: AuthState { user_id: Some(user_id), .. },
                session_id: Some(session_id),
                expires_at,
                ..
            }) => Ok(TokenHolder { user_id, session_id, expires_at }),
            _ => Err(VerifyError::TokenType),
        })
    }

    /// The session a token belongs to, when the token verifies and the session is live
    /// (active, within its lifetime and inactivity limit, no task pending); with
    /// `session_id`, the token must be that session's.
    pub async fn verify_session_token(
        &self,
        _operator: &Operator,
        token: &str,
        session_id: Option<&str>,
    ) -> Result<SessionRow> {
        let holder = self.token_caller(token).await?.map_err(|e| match e {
            VerifyError::Expired => ServiceError::bad_request("token_expired", "The session token has expired.")
                .long("The token is past its expiry: the client must get a fresh one.")
                .param("token"),
            _ => ServiceError::bad_request("token_invalid", "The session token is invalid.")
                .long("The token is malformed, or not signed by this instance's keys for its issuer.")
                .param("token"),
        })?;
        if let Some(expected) = session_id {
            if expected != holder.session_id {
                // An unknown id is 404, as `GET /v1/sessions/{id}` tells the same secret key.
                self.users.session(expected).await?;
                return Err(ServiceError::bad_request("token_invalid", "The session token is invalid.")
                    .long("The token belongs to another session.")
                    .param("token"));
            }
        }
        let session = self.users.session(&holder.session_id).await?;
        let live = session.user_id == holder.user_id
            && self.users.session_is_active(&session)
            && session.pending_task.is_none();
        if !live {
            return Err(ServiceError::bad_request(
                "session_not_active",
                format!("This session is {}.", self.users.session_status(&session)),
            )
            .long(
                "The session has ended, expired or been revoked, or has a task to finish: its tokens verify no more.",
            ));
        }
        Ok(session)
    }
}
