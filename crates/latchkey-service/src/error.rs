//! Failures of the service layer, each with a stable Clerk error code. The HTTP layer maps
//! [`ErrorKind`] to a status; messages are safe to show (they never carry secrets).

use latchkey_store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Unprocessable,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests { retry_after_secs: u64 },
    Unavailable,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub long_message: String,
    pub param: Option<&'static str>,
    /// Extra `meta` fields (e.g. `lockout_expires_in_seconds`).
    pub meta: Vec<(&'static str, serde_json::Value)>,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self { kind, code, long_message: message.clone(), message, param: None, meta: Vec::new() }
    }
    pub fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }
    pub fn long(mut self, long: impl Into<String>) -> Self {
        self.long_message = long.into();
        self
    }
    pub fn meta(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.meta.push((key, value));
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, "resource_not_found", format!("{what} not found"))
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, code, message)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, "authentication_invalid", message)
    }
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(ErrorKind::TooManyRequests { retry_after_secs }, "too_many_requests", "Too many requests")
            .long(format!("Too many requests. Try again in {retry_after_secs} seconds."))
    }
    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "internal_clerk_error", "Something went wrong")
    }
    pub fn identifier_exists(param: &'static str) -> Self {
        Self::unprocessable("form_identifier_exists", "That identifier is taken.")
            .long(format!("That {} is taken. Please try another.", param.replace('_', " ")))
            .param(param)
    }
    pub fn password_incorrect() -> Self {
        Self::unprocessable("form_password_incorrect", "Password is incorrect. Try again, or use another method.")
            .param("password")
    }
    pub fn code_incorrect() -> Self {
        Self::unprocessable("form_code_incorrect", "Incorrect code").param("code")
    }
    pub fn already_verified() -> Self {
        Self::bad_request("verification_already_verified", "This email address is already verified.")
    }
    pub fn stale() -> Self {
        Self::new(ErrorKind::Conflict, "conflict", "The resource changed at the same time; try again.")
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                Self::new(ErrorKind::Unavailable, "database_unavailable", "The service is temporarily unavailable")
                    .long("The database cannot be reached right now. Try again shortly.")
            }
            StoreError::Stale => Self::stale(),
            StoreError::NotFound => Self::not_found("Resource"),
            StoreError::Conflict(rule) => {
                tracing::info!(%rule, "uniqueness conflict");
                Self::new(ErrorKind::Conflict, "conflict", "The resource conflicts with an existing one")
            }
            StoreError::Other(detail) => {
                tracing::error!(%detail, "storage error");
                Self::internal()
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, ServiceError>;
