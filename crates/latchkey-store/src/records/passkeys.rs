//! A user's passkeys as stored (docs/passkeys.md).

/// A passkey, or one being registered (`verified` false, with its single-use state).
#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// The credential id, base64url; set once verified.
    pub credential_id: Option<String>,
    /// The verified credential (webauthn-rs's record, JSON).
    pub credential: Option<String>,
    pub counter: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// A registration in progress: its state and the options shown (JSON), single use.
    pub registration_state: Option<String>,
    pub verified: bool,
    pub expire_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a sign-in by passkey stores after a good assertion (see
/// [`crate::PasskeyStore::record_passkey_use`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyUse {
    pub id: String,
    pub credential: String,
    pub counter: i64,
    pub backup_state: bool,
    pub now: i64,
}
