//! The storage interface of the service layer. Methods that write several rows do so in one
//! transaction; updates of rows with a `version` succeed only if nobody changed the row since
//! it was read ([`StoreError::Stale`] otherwise).

use async_trait::async_trait;

use crate::error::Result;
use crate::records::*;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;

    // Instance settings: written once, then read.
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` unless `key` has one; returns the value that is stored either way.
    async fn init_setting(&self, key: &str, value: &str) -> Result<String>;

    // Secret keys for the Backend API.
    async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<()>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>>;
    async fn api_key_by_digest(&self, digest: &str) -> Result<Option<ApiKeyRow>>;
    async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool>;

    // Session-token signing keys.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
    async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()>;
    async fn revoke_signing_key(&self, kid: &str, now: i64) -> Result<bool>;
    async fn delete_signing_key(&self, kid: &str) -> Result<()>;

    // Clients (one per browser or device).
    async fn insert_client(&self, client: &ClientRow) -> Result<()>;
    async fn get_client(&self, id: &str) -> Result<Option<ClientRow>>;
    async fn client_by_token_digest(&self, digest: &str) -> Result<Option<ClientRow>>;
    async fn update_client(&self, client: &ClientRow) -> Result<()>;

    // Sign-up and sign-in attempts.
    /// Inserts a sign-up and makes it the client's current one, in one transaction.
    async fn insert_sign_up(&self, sign_up: &SignUpRow) -> Result<()>;
    async fn get_sign_up(&self, id: &str) -> Result<Option<SignUpRow>>;
    /// Writes `sign_up` if its stored version is `sign_up.version - 1`.
    async fn update_sign_up(&self, sign_up: &SignUpRow) -> Result<()>;
    async fn complete_sign_up(&self, done: &CompleteSignUp) -> Result<()>;
    /// Inserts a sign-in and makes it the client's current one, in one transaction.
    async fn insert_sign_in(&self, sign_in: &SignInRow) -> Result<()>;
    async fn get_sign_in(&self, id: &str) -> Result<Option<SignInRow>>;
    async fn update_sign_in(&self, sign_in: &SignInRow) -> Result<()>;
    async fn complete_sign_in(&self, done: &CompleteSignIn) -> Result<()>;

    // Users and their identifications.
    async fn create_user(&self, user: &UserRecord) -> Result<()>;
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>>;
    async fn user_id_by_verified_email(&self, email: &str) -> Result<Option<String>>;
    /// The owner of a verified address and the address's id.
    async fn verified_email_owner(&self, email: &str) -> Result<Option<(String, String)>>;
    /// The user row alone, without identifications.
    async fn get_user_row(&self, id: &str) -> Result<Option<UserRow>>;
    async fn user_id_by_username(&self, username: &str) -> Result<Option<String>>;
    async fn update_user(&self, user: &UserRow) -> Result<()>;
    /// Counts a failed sign-in without the optimistic check (failures must never be lost).
    async fn record_sign_in_failure(
        &self,
        user_id: &str,
        failed_attempts: i64,
        locked_until: Option<i64>,
    ) -> Result<()>;
    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRecord>>;
    async fn count_users(&self) -> Result<i64>;
    async fn delete_user(&self, id: &str) -> Result<bool>;
    async fn insert_email(&self, email: &EmailRow) -> Result<()>;
    async fn update_email(&self, email: &EmailRow) -> Result<()>;
    async fn delete_email(&self, id: &str) -> Result<()>;
    async fn insert_phone(&self, phone: &PhoneRow) -> Result<()>;

    // Sessions.
    async fn insert_session(&self, session: &SessionRow) -> Result<()>;
    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>>;
    async fn update_session(&self, session: &SessionRow) -> Result<()>;
    async fn sessions_for_client(&self, client_id: &str) -> Result<Vec<SessionRow>>;
    async fn sessions_for_user(&self, user_id: &str) -> Result<Vec<SessionRow>>;
    /// Sets every active session of the client to `status`; returns how many changed.
    async fn end_client_sessions(&self, client_id: &str, status: &str, now: i64) -> Result<u64>;
    /// Revokes every active session of the user except `keep`.
    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64>;
}
