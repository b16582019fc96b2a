//! Rows as the store keeps them. Timestamps are milliseconds since the Unix epoch; JSON
//! columns are kept as text and parsed by the service layer. A user's second factors and
//! passkeys, and the instance's organization roles, have rooms of their own
//! (`records/second_factors.rs`, `records/passkeys.rs`, `records/roles.rs`).

mod passkeys;
mod roles;
mod second_factors;

pub use passkeys::*;
pub use roles::*;
pub use second_factors::*;

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password_hash: Option<String>,
    pub primary_email_id: Option<String>,
    pub primary_phone_id: Option<String>,
    pub public_metadata: String,
    pub private_metadata: String,
    pub unsafe_metadata: String,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
    pub banned: bool,
    pub last_sign_in_at: Option<i64>,
    pub last_active_at: Option<i64>,
    pub password_updated_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub external_id: Option<String>,
    /// Locked by an administrator (unlike `locked_until`, which failed attempts set).
    pub locked: bool,
    pub legal_accepted_at: Option<i64>,
    pub delete_self_enabled: bool,
    pub create_organization_enabled: bool,
    pub create_organizations_limit: Option<i64>,
    /// The WebAuthn user handle (a random UUID) given to this user's passkeys; made at their
    /// first registration (docs/passkeys.md).
    pub webauthn_handle: Option<String>,
}

impl UserRow {
    /// A new user with no identifiers, empty metadata and default settings.
    pub fn new(id: String, now: i64) -> Self {
        Self {
            id,
            username: None,
            first_name: None,
            last_name: None,
            password_hash: None,
            primary_email_id: None,
            primary_phone_id: None,
            public_metadata: "{}".into(),
            private_metadata: "{}".into(),
            unsafe_metadata: "{}".into(),
            failed_attempts: 0,
            locked_until: None,
            banned: false,
            last_sign_in_at: None,
            last_active_at: None,
            password_updated_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
            external_id: None,
            locked: false,
            legal_accepted_at: None,
            delete_self_enabled: true,
            create_organization_enabled: true,
            create_organizations_limit: None,
            webauthn_handle: None,
        }
    }
}

/// Which users a list shows, and in what order (every filter is served by an index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserQuery {
    pub email_addresses: Vec<String>,
    pub phone_numbers: Vec<String>,
    pub usernames: Vec<String>,
    pub user_ids: Vec<String>,
    pub external_ids: Vec<String>,
    /// Members of any of these organizations.
    pub organization_ids: Vec<String>,
    /// Users with an account at this identity provider (Clerk's strategy, `oauth_google`)…
    pub provider: Option<String>,
    /// …whose id there is one of these (at any provider when `provider` is `None`; the Backend
    /// API asks for both together).
    pub provider_user_ids: Vec<String>,
    /// Filters that can match nothing yet (Web3 wallets): any value empties the list.
    pub unmatched_filter: bool,
    /// Only banned users (`Some(true)`) or only users not banned (`Some(false)`).
    pub banned: Option<bool>,
    /// Case-insensitive part of an email address, phone number, username, first or last
    /// name, or an exact user or external id.
    pub query: Option<String>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    pub last_active_after: Option<i64>,
    pub last_active_before: Option<i64>,
    pub last_sign_in_after: Option<i64>,
    pub last_sign_in_before: Option<i64>,
    pub order_by: UserOrder,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    #[default]
    CreatedAt,
    UpdatedAt,
    LastActiveAt,
    LastSignInAt,
    FirstName,
    LastName,
    Username,
    EmailAddress,
    PhoneNumber,
}

/// Which sessions a list shows, newest first. Status filtering needs the time and the idle
/// limit because an `active` row past its deadline is expired.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionQuery {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub status: Option<String>,
    pub now: i64,
    pub idle_timeout_ms: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InvitationRow {
    pub id: String,
    pub email: String,
    /// pending, accepted, revoked or expired.
    pub status: String,
    pub public_metadata: String,
    pub redirect_url: Option<String>,
    pub token_digest: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignInTokenRow {
    pub id: String,
    pub user_id: String,
    pub token_digest: String,
    /// pending, accepted or revoked.
    pub status: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtTemplateRow {
    pub id: String,
    pub name: String,
    /// The claims template, JSON text.
    pub claims: String,
    pub lifetime: i64,
    pub allowed_clock_skew: i64,
    pub signing_algorithm: String,
    /// The template's own key, sealed; `None` signs with the instance key.
    pub signing_key_sealed: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailRow {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub verified: bool,
    pub verified_at: Option<i64>,
    pub code: CodeFields,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhoneRow {
    pub id: String,
    pub user_id: String,
    pub phone: String,
    pub verified: bool,
    pub reserved_for_second_factor: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An outstanding one-time code, stored as a keyed digest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeFields {
    pub digest: Option<String>,
    pub expires_at: Option<i64>,
    pub attempts: i64,
    pub consumed: bool,
}

/// A user with the identifications that belong to it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub user: UserRow,
    pub emails: Vec<EmailRow>,
    pub phones: Vec<PhoneRow>,
    /// Accounts at identity providers joined to the user (docs/identity-providers.md): read
    /// with the user; written by the sign-in, sign-up or connection that joins them, never by
    /// `create_user`/`update_user`.
    pub external_accounts: Vec<ExternalAccountRow>,
    /// The authenticator-app key and unused backup codes (docs/second-factors.md): read with
    /// the user, written with a new user (imports) and otherwise by [`crate::SecondFactorStore`].
    pub second_factors: SecondFactors,
    /// Passkeys, verified or being registered (docs/passkeys.md): read with the user, written
    /// by [`crate::PasskeyStore`].
    pub passkeys: Vec<PasskeyRow>,
}

/// What a run that writes nothing (a dry run) has judged taken so far: the ids and the
/// identifiers (kind, value → holder) of the users it would have imported, so that each batch
/// is judged as a run that writes would judge it.
#[derive(Debug, Default)]
pub struct ImportClaims {
    pub(crate) ids: std::collections::HashSet<String>,
    pub(crate) owners: std::collections::HashMap<(&'static str, String), String>,
}

/// What became of one user of an imported batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported,
    /// A user with this id exists already (an import run again): left as it is.
    AlreadyPresent,
    /// Refused: the reason names the identifier and who holds it.
    Conflict(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    pub id: String,
    pub token_digest: String,
    pub sign_in_id: Option<String>,
    pub sign_up_id: Option<String>,
    pub last_active_session_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub status: String,
    pub active_org_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_active_at: i64,
    pub expire_at: i64,
    pub abandon_at: i64,
    /// When the holder last proved a first factor; `None` means when the session began.
    pub first_factor_verified_at: Option<i64>,
    /// When the holder last proved a second factor; `None` means never.
    pub second_factor_verified_at: Option<i64>,
    /// A step-up check in progress (JSON, the service's own shape), or `None`.
    pub reverification: Option<String>,
    /// A task the holder must finish first (`setup-mfa`): the session shows `pending` and its
    /// tokens say `sts: "pending"`. Proving a second factor finishes it.
    pub pending_task: Option<String>,
    /// The `User-Agent` its own client last sent (capped), parsed only when shown.
    pub user_agent: Option<String>,
    /// The address its own client's requests last came from.
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignUpRow {
    pub id: String,
    pub client_id: String,
    pub status: String,
    pub email: Option<String>,
    /// The address already belongs to a verified account (revealed only after proof of it).
    pub email_taken: bool,
    pub email_verified: bool,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password_hash: Option<String>,
    pub unsafe_metadata: String,
    /// A sign-up that took over a provider's sign-in (`transfer`): what the provider said (JSON).
    pub external_profile: Option<String>,
    pub code: CodeFields,
    pub created_user_id: Option<String>,
    pub created_session_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub abandon_at: i64,
    pub version: i64,
    /// An email link's page: where the browser that opens the link goes next.
    pub link_redirect_url: Option<String>,
    /// The client whose browser opened the email link (Clerk's `verified_at_client`).
    pub link_verified_client: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignInRow {
    pub id: String,
    pub client_id: String,
    pub status: String,
    pub identifier: Option<String>,
    /// `None` for an identifier with no account: the attempt proceeds indistinguishably.
    pub user_id: Option<String>,
    /// The id shown for the email-code factor: derived from the address, known or not.
    pub email_address_id: Option<String>,
    pub first_factor_strategy: Option<String>,
    pub first_factor_status: Option<String>,
    /// Why a provider's trip failed: Clerk's error code, shown on the verification.
    pub first_factor_error: Option<String>,
    /// What a provider said of a person without an account (JSON), for a sign-up's transfer.
    pub external_profile: Option<String>,
    pub code: CodeFields,
    pub created_session_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub abandon_at: i64,
    pub version: i64,
    /// The second step (`needs_second_factor`): the user's factors (comma-separated, set once
    /// the first factor passed), the factor tried, its status and the wrong codes.
    pub second_factors_supported: Option<String>,
    pub second_factor_strategy: Option<String>,
    pub second_factor_status: Option<String>,
    pub second_factor_attempts: i64,
    /// An email link's page: where the browser that opens the link goes next.
    pub link_redirect_url: Option<String>,
    /// The client whose browser opened the email link (Clerk's `verified_at_client`).
    pub link_verified_client: Option<String>,
    /// A passkey step: whether passkeys are offered and the challenge out (JSON, the
    /// service's own shape), single use.
    pub passkey_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyRow {
    pub kid: String,
    /// base64url modulus and exponent.
    pub public_n: String,
    pub public_e: String,
    /// The PKCS#8 private key sealed with the key-encryption key (base64 of nonce ‖ ciphertext).
    pub private_sealed: String,
    pub created_at: i64,
    pub activate_at: i64,
    pub revoked_at: Option<i64>,
}

/// A person's account at an identity provider, joined to a user.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAccountRow {
    pub id: String,
    pub user_id: String,
    /// Clerk's strategy: `oauth_google`, `oauth_custom_<key>`.
    pub provider: String,
    /// The provider's stable id of the person (`sub`).
    pub provider_user_id: String,
    pub email_address: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub username: Option<String>,
    /// Space-separated, as granted.
    pub approved_scopes: String,
    pub access_token_sealed: Option<String>,
    pub refresh_token_sealed: Option<String>,
    pub token_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    pub id: String,
    /// SHA-256 (hex) of the secret key; the key itself is shown once and never stored.
    pub digest: String,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Everything that a verified sign-up writes, in one transaction (the client's last active
/// session becomes the new session).
#[derive(Debug, Clone)]
pub struct CompleteSignUp {
    pub sign_up: SignUpRow,
    pub user: UserRow,
    pub email: EmailRow,
    pub session: SessionRow,
    /// The client's new token digest: a completed sign-up replaces the client's token, so a
    /// token planted before it (session fixation) never holds the new session.
    pub client_token_digest: String,
    /// A sign-up through an identity provider: its account, written with the user.
    pub external_account: Option<ExternalAccountRow>,
}

/// Everything that a successful sign-in writes, in one transaction (the client's last active
/// session becomes the new session).
#[derive(Debug, Clone)]
pub struct CompleteSignIn {
    pub sign_in: SignInRow,
    /// `None` when the first factor passed but a second is still due (`needs_second_factor`):
    /// the rest (a rehash, a reset password, a provider account) is written all the same.
    pub session: Option<SessionRow>,
    pub user_id: String,
    /// Set when the stored password hash is upgraded to current parameters, or replaced by a
    /// password reset.
    pub rehashed_password: Option<String>,
    /// Set by a password reset: the hash above is a new password, changed at this time.
    pub password_changed_at: Option<i64>,
    /// The client's new token digest (see [`CompleteSignUp::client_token_digest`]).
    pub client_token_digest: String,
    /// Set by a sign-in with an identity provider: the provider account, written (added, or
    /// its profile and tokens refreshed) with the session.
    pub external_account: Option<ExternalAccountRow>,
    pub now: i64,
}

/// Everything a failed sign-in factor writes, in one transaction: the attempt, the counters
/// of the budgets it spends, and (for an existing account) its failure count. One commit for
/// a known and an unknown identifier alike, so the two take the same time.
#[derive(Debug, Clone)]
pub struct FailedAttempt {
    /// Written if its stored version is `sign_in.version - 1`.
    pub sign_in: SignInRow,
    /// Counter keys to bump, each with its window (see `ThrottleStore::bump_counter`).
    pub counters: Vec<(String, i64)>,
    /// The account whose consecutive failures count one more, and its lock.
    pub account: Option<AccountFailure>,
    pub now: i64,
}

/// One more consecutive failure of an account, counted in SQL so that concurrent failures all
/// count: when the count reaches `lock_after` the account is locked until `locked_until`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFailure {
    pub user_id: String,
    pub lock_after: i64,
    pub locked_until: i64,
}

/// What a failed attempt's write counted.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAttemptCounts {
    /// The counters after their bump, in order.
    pub counters: Vec<crate::Counter>,
    /// The account's consecutive failures after this one.
    pub account_failures: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub image_url: Option<String>,
    pub public_metadata: String,
    pub private_metadata: String,
    /// 0 means unlimited.
    pub max_allowed_memberships: i64,
    pub admin_delete_enabled: bool,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MembershipRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub role: String,
    pub public_metadata: String,
    pub private_metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrgInvitationRow {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub role: String,
    /// pending, accepted, revoked or expired.
    pub status: String,
    pub public_metadata: String,
    pub private_metadata: String,
    pub inviter_user_id: Option<String>,
    pub token_digest: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which organizations a list shows, and in what order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgQuery {
    /// Case-insensitive part of the name or slug, or an exact id.
    pub query: Option<String>,
    pub ids: Vec<String>,
    pub created_by: Option<String>,
    pub order_by: OrgOrder,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrgOrder {
    #[default]
    CreatedAt,
    Name,
    MembersCount,
}

/// Which memberships a list shows: of one organization, or of the whole instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MembershipQuery {
    pub organization_id: Option<String>,
    pub user_ids: Vec<String>,
    pub roles: Vec<String>,
    /// Newest first instead of oldest first.
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// What an organization's JSON counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrgCounts {
    pub members: i64,
    /// Pending and not yet expired.
    pub pending_invitations: i64,
}
