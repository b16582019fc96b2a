//! Clients, sign-ups, sign-ins, sessions and session tokens: Clerk's Frontend API state
//! machines, with enumeration protection and failure lockout.
//!
//! - `clients`: the client a token names, new clients, the client view;
//! - `sign_up`: sign-up attempts, their email code, the new account;
//! - `sign_in`: sign-in attempts, password and email-code factors, lockout;
//! - `email_link`: links mailed for a sign-in or a sign-up, `/v1/verify`, completion on poll;
//! - `reset_password`: "Forgot password?", a reset code and the new password on a sign-in;
//! - `second_factor`: the sign-in's second step (authenticator app or backup code);
//! - `reverification`: step-up checks of a session (`/v1/client/sessions/{id}/verify…`);
//! - `oauth_sign_in`: sign-in with an identity provider, its callback, account linking;
//! - `oauth_sign_up`: the sign-up that takes a provider's sign-in over (`transfer`);
//! - `sessions`: active sessions, session tokens, touch, end, sign-out;
//! - `activity`: the browser and device a session is used from.
//!
//! This file holds what they share: the inputs, [`Step`], and the parameter and error rules.

mod activity;
mod clients;
mod email_link;
pub mod geoip;
mod oauth_connect;
mod oauth_sign_in;
mod oauth_sign_up;
mod passkey_sign_in;
mod reset_password;
mod reverification;
mod second_factor;
mod secret_keys;
mod session_verify;
mod sessions;
mod sign_in;
mod sign_up;

pub use activity::{session_activity, Place, SessionActivity};
pub use clients::ClientView;
pub use email_link::{
    sign_in_link_verified, EmailLinkConfig, LinkOutcome, LinkRequest, LinkStatus, EMAIL_LINK, VERIFY_PATH,
};
pub use geoip::GeoIp;
pub use oauth_connect::ConnectionStart;
pub use oauth_sign_in::{CallbackOutcome, CallbackParams, CALLBACK_PATH};
pub use passkey_sign_in::{passkey_expire_at, passkey_nonce, passkey_offered, PASSKEY};
pub use reset_password::NewPassword;
pub use reverification::{FactorState, FirstFactorOption, Progress, Reverification};
pub use second_factor::supported_second_factors;
pub use session_verify::TokenHolder;

use latchkey_core::code::{CodeOutcome, PendingCode};
use latchkey_core::email::normalize_email;
use latchkey_core::password::PasswordProblem;
use latchkey_core::session::DAY_MS;
use latchkey_core::username::{normalize_username, UsernameProblem};
use latchkey_store::CodeFields;

use crate::error::{ErrorKind, Result, ServiceError};

const ATTEMPT_LIFETIME_MS: i64 = DAY_MS;

impl crate::Services {
    /// A new sign-in attempt of `client` that needs its first factor and knows nothing yet;
    /// each way of signing in sets what it knows on it.
    pub(crate) fn new_sign_in(&self, client: &crate::authority::Client) -> latchkey_store::SignInRow {
        let now = self.now();
        latchkey_store::SignInRow {
            id: self.new_id(latchkey_core::ids::IdKind::SignIn),
            client_id: client.id.clone(),
            status: "needs_first_factor".into(),
            identifier: None,
            user_id: None,
            email_address_id: None,
            first_factor_strategy: None,
            first_factor_status: None,
            first_factor_error: None,
            external_profile: None,
            code: CodeFields::default(),
            created_session_id: None,
            created_at: now,
            updated_at: now,
            abandon_at: now + ATTEMPT_LIFETIME_MS,
            version: 1,
            second_factors_supported: None,
            second_factor_strategy: None,
            second_factor_status: None,
            second_factor_attempts: 0,
            link_redirect_url: None,
            link_verified_client: None,
            passkey_state: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SignUpInput {
    pub email_address: Option<String>,
    pub password: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub unsafe_metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default)]
pub struct SignInInput {
    pub identifier: Option<String>,
    pub strategy: Option<String>,
    pub password: Option<String>,
}

/// A step of a sign-in or sign-up. When it completed the attempt, the client's token was
/// replaced (session fixation: docs/SECURITY.md), and the new token must reach the caller.
#[derive(Debug, Clone)]
pub struct Step<T> {
    pub row: T,
    pub new_client_token: Option<String>,
}

impl<T> Step<T> {
    fn pending(row: T) -> Self {
        Self { row, new_client_token: None }
    }
}

pub(crate) fn code_fields(p: &PendingCode) -> CodeFields {
    CodeFields {
        digest: Some(p.digest.clone()),
        expires_at: Some(p.expires_at),
        attempts: i64::from(p.attempts),
        consumed: p.consumed,
    }
}

/// How long after a code was mailed a request for one keeps it instead of mailing another.
const FRESH_CODE_MS: i64 = 10_000;

/// Whether a code was mailed in the last [`FRESH_CODE_MS`] and nobody has tried it yet. latchkey
/// mails a code as soon as an address needs one (a sign-up, an added address); Clerk's SDKs then
/// ask for one at once (`prepare_verification`). Mailing a second would leave the person with
/// two, the first already dead: the first stands instead (docs/frontend-api.md, "SignUp").
pub(crate) fn code_just_mailed(code: &CodeFields, now: i64) -> bool {
    pending(code).is_some_and(|p| {
        let issued_at = p.expires_at - latchkey_core::code::CODE_TTL_MS;
        p.attempts == 0 && !p.consumed && now - issued_at < FRESH_CODE_MS
    })
}

pub(crate) fn pending(c: &CodeFields) -> Option<PendingCode> {
    Some(PendingCode {
        digest: c.digest.clone()?,
        expires_at: c.expires_at?,
        attempts: u32::try_from(c.attempts).unwrap_or(u32::MAX),
        consumed: c.consumed,
    })
}

fn name_field(value: Option<String>, param: &'static str) -> Result<Option<String>> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if v.chars().count() > 256 => {
            Err(ServiceError::unprocessable("form_param_exceeds_allowed_size", format!("{param} is too long"))
                .param(param))
        }
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub(crate) fn password_error(problem: PasswordProblem) -> ServiceError {
    match problem {
        PasswordProblem::TooShort => {
            ServiceError::unprocessable("form_password_length_too_short", "Passwords must be 8 characters or more.")
                .param("password")
        }
        PasswordProblem::TooLong => {
            ServiceError::unprocessable("form_password_length_too_long", "Passwords must be 256 characters or fewer.")
                .param("password")
        }
        PasswordProblem::Common => ServiceError::unprocessable(
            "form_password_pwned",
            "This password is among the most common passwords. Please choose another.",
        )
        .param("password"),
    }
}

pub(crate) fn email_param(value: &str, param: &'static str) -> Result<String> {
    normalize_email(value).ok_or_else(|| {
        ServiceError::unprocessable("form_param_format_invalid", "Enter a valid email address.").param(param)
    })
}

pub(crate) fn username_param(value: &str) -> Result<String> {
    normalize_username(value).map_err(|p| match p {
        UsernameProblem::Length => ServiceError::unprocessable(
            "form_username_invalid_length",
            "Usernames must be between 4 and 64 characters long.",
        )
        .param("username"),
        UsernameProblem::Characters => ServiceError::unprocessable(
            "form_username_invalid_character",
            "Usernames may contain only letters, digits, '_' and '-'.",
        )
        .param("username"),
    })
}

pub(crate) fn code_error(outcome: CodeOutcome) -> ServiceError {
    match outcome {
        CodeOutcome::Incorrect { attempts_left } => {
            ServiceError::code_incorrect().meta("attempts_remaining", attempts_left.into())
        }
        CodeOutcome::Expired => {
            ServiceError::unprocessable("verification_expired", "This verification has expired. Request a new code.")
                .param("code")
        }
        CodeOutcome::TooManyAttempts => ServiceError::new(
            ErrorKind::Forbidden,
            "verification_failed",
            "Too many failed attempts. Request a new code.",
        )
        .param("code"),
        CodeOutcome::AlreadyUsed => {
            ServiceError::bad_request("verification_already_verified", "This code has already been used.")
        }
        CodeOutcome::Verified => ServiceError::internal(),
    }
}
