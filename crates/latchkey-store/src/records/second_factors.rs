//! A user's second factors and a session's step-up progress as stored
//! (docs/second-factors.md).

/// A user's authenticator-app key (one at most), sealed; it counts only once `verified`.
#[derive(Debug, Clone, PartialEq)]
pub struct TotpRow {
    pub id: String,
    pub user_id: String,
    pub secret_sealed: String,
    pub verified: bool,
    /// The newest 30-second step a code was accepted for.
    pub last_used_step: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One unused backup code: a keyed digest of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupCodeRow {
    pub id: String,
    pub user_id: String,
    pub digest: String,
    pub created_at: i64,
}

/// A session's step-up progress and newly proved factors (see
/// [`crate::SessionStore::record_session_verification`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionVerification {
    pub session_id: String,
    pub reverification: Option<String>,
    pub first_factor_verified_at: Option<i64>,
    pub second_factor_verified_at: Option<i64>,
    pub now: i64,
}

/// A user's second factors as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SecondFactors {
    pub totp: Option<TotpRow>,
    pub backup_codes: Vec<BackupCodeRow>,
}

impl SecondFactors {
    pub fn totp_enabled(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.verified)
    }

    pub fn backup_code_enabled(&self) -> bool {
        !self.backup_codes.is_empty()
    }

    /// Whether a sign-in needs a second step (Clerk's `two_factor_enabled`).
    pub fn any(&self) -> bool {
        self.totp_enabled() || self.backup_code_enabled()
    }
}
