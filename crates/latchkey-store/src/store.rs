//! The storage interface of the service layer. Methods that write several rows do so in one
//! transaction; updates of rows with a `version` succeed only if nobody changed the row since
//! it was read ([`StoreError::Stale`] otherwise).

use async_trait::async_trait;

use crate::error::Result;
use crate::records::*;

/// Everything the service layer stores, by area: each area is a trait of its own, implemented
/// in its own module of [`crate::SqlStore`].
#[async_trait]
pub trait Store:
    KeyStore
    + SessionStore
    + UserStore
    + ExternalAccountStore
    + SecondFactorStore
    + PasskeyStore
    + InvitationStore
    + OrganizationStore
    + RoleStore
    + OrgStore
    + PeopleStore
    + IdentityStore
    + Database
    + crate::sync::SyncStore
    + crate::webhooks::WebhookStore
    + crate::throttle::ThrottleStore
    + RevocationStore
    + Send
    + Sync
    + 'static
{
    /// This store, with every write transaction it opens also writing `events` to the outbox
    /// at commit, provided the transaction changed a row: no event without its change, and
    /// no change without its event.
    fn emitting(&self, events: Vec<crate::webhooks::OutboxEvent>) -> std::sync::Arc<dyn Store>;
    /// Notified after every commit that wrote events (wakes this instance's delivery worker).
    fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
}

/// The database itself: which one, and whether it answers.
#[async_trait]
pub trait Database: Send + Sync {
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
}

/// Identity's view of the store: clients, sign-ups, sign-ins and sessions, users, invitations
/// and sign-in tokens, keys and templates, the throttle counters, and the database's health.
pub trait IdentityStore:
    KeyStore
    + SessionStore
    + UserStore
    + ExternalAccountStore
    + SecondFactorStore
    + PasskeyStore
    + InvitationStore
    + crate::throttle::ThrottleStore
    + Database
    + Send
    + Sync
{
    /// This view, with the next write transaction also writing `events` (see
    /// [`Store::emitting`]).
    fn emitting_identity(&self, events: Vec<crate::webhooks::OutboxEvent>) -> std::sync::Arc<dyn IdentityStore>;
}

/// The organization service's view of the store: organizations with their roles, memberships
/// and invitations, and the users they name (read to show members and to match invitations).
pub trait OrgStore: OrganizationStore + RoleStore + UserStore + Send + Sync {
    /// This view, with the next write transaction also writing `events` (see
    /// [`Store::emitting`]).
    fn emitting_org(&self, events: Vec<crate::webhooks::OutboxEvent>) -> std::sync::Arc<dyn OrgStore>;
}

/// Users with their identifications and sessions, as the account and administration services
/// (and what they share with identity) reach them.
pub trait PeopleStore:
    UserStore + SessionStore + ExternalAccountStore + SecondFactorStore + PasskeyStore + ImportStore + Send + Sync
{
    /// This view, with the next write transaction also writing `events` (see
    /// [`Store::emitting`]).
    fn emitting_people(&self, events: Vec<crate::webhooks::OutboxEvent>) -> std::sync::Arc<dyn PeopleStore>;
}

/// Instance settings, the Backend API's secret keys, session-token signing keys and JWT templates.
#[async_trait]
pub trait KeyStore: RevocationStore + Send + Sync {
    async fn get_setting(&self, key: &str) -> Result<Option<String>>;
    /// Stores `value` unless `key` has one; returns the value that is stored either way.
    async fn init_setting(&self, key: &str, value: &str) -> Result<String>;
    async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<()>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>>;
    async fn api_key_by_digest(&self, digest: &str) -> Result<Option<ApiKeyRow>>;
    async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool>;
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
    async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()>;
    async fn revoke_signing_key(&self, kid: &str, now: i64) -> Result<bool>;
    async fn delete_signing_key(&self, kid: &str) -> Result<()>;
    async fn insert_jwt_template(&self, template: &JwtTemplateRow) -> Result<()>;
    async fn get_jwt_template(&self, id: &str) -> Result<Option<JwtTemplateRow>>;
    async fn jwt_template_by_name(&self, name: &str) -> Result<Option<JwtTemplateRow>>;
    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplateRow>>;
    async fn update_jwt_template(&self, template: &JwtTemplateRow) -> Result<()>;
    async fn delete_jwt_template(&self, id: &str) -> Result<bool>;
}

/// Clients, sign-up and sign-in attempts, sessions, failed factors, handshake nonces and the housekeeping of what anyone can make without an account.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_client(&self, client: &ClientRow) -> Result<()>;
    async fn get_client(&self, id: &str) -> Result<Option<ClientRow>>;
    async fn client_by_token_digest(&self, digest: &str) -> Result<Option<ClientRow>>;
    async fn update_client(&self, client: &ClientRow) -> Result<()>;
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
    /// Writes a failed sign-in factor in one transaction (see [`FailedAttempt`]); the account's
    /// count is kept without the optimistic check (failures must never be lost).
    async fn record_failed_attempt(&self, failed: &FailedAttempt) -> Result<FailedAttemptCounts>;
    async fn insert_session(&self, session: &SessionRow) -> Result<()>;
    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>>;
    async fn update_session(&self, session: &SessionRow) -> Result<()>;
    /// Marks an active session used at `now` and sets its active organization; false when the
    /// session is no longer active (a revocation meanwhile is never undone).
    async fn record_session_activity(&self, id: &str, active_org_id: Option<&str>, now: i64) -> Result<bool>;
    /// Records the device an active session's own client last showed (its `User-Agent` and
    /// address); false when the session is no longer active.
    async fn record_session_device(&self, id: &str, user_agent: Option<&str>, ip_address: &str) -> Result<bool>;
    /// Stores a step-up check's progress on an active session (`None` ends it) and, when a
    /// factor was just proved, when: `None` keeps the stored time; a second factor proved
    /// finishes the session's pending task. False when the session is no longer active.
    async fn record_session_verification(&self, v: &SessionVerification) -> Result<bool>;
    /// The user's other active sessions that never proved a second factor count theirs as
    /// proved long ago (at time 0): the user has one now, and those sessions must prove it
    /// before any step-up check passes. Returns how many changed.
    async fn second_factor_unproved_elsewhere(&self, user_id: &str, except_session: &str) -> Result<u64>;
    async fn sessions_for_client(&self, client_id: &str) -> Result<Vec<SessionRow>>;
    async fn sessions_for_user(&self, user_id: &str) -> Result<Vec<SessionRow>>;
    /// Sets every active session of the client to `status`; returns how many changed.
    async fn end_client_sessions(&self, client_id: &str, status: &str, now: i64) -> Result<u64>;
    async fn query_sessions(&self, query: &SessionQuery) -> Result<(Vec<SessionRow>, i64)>;
    /// Revokes every active session of the user except `keep`.
    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64>;
    /// Housekeeping: deletes sign-in and sign-up attempts abandoned before `now`, and clients
    /// that never held a session and have been idle since `idle_before` (what anyone can make
    /// without an account must not pile up). Works in batches; returns how many rows went.
    async fn prune_abandoned(&self, now: i64, idle_before: i64) -> Result<u64>;
    /// Keeps handshake cookie directives (a JSON array) under a nonce's digest until `expires_at`.
    async fn insert_handshake_nonce(&self, digest: &str, directives: &str, expires_at: i64) -> Result<()>;
    /// Takes the directives stored under `digest` once: the first call before expiry gets them
    /// and deletes them; every later call, or one after expiry, gets `None`.
    async fn take_handshake_nonce(&self, digest: &str, now: i64) -> Result<Option<String>>;
    /// Deletes expired handshake nonces; returns how many.
    async fn prune_handshake_nonces(&self, now: i64) -> Result<u64>;
}

/// Users' accounts at identity providers.
#[async_trait]
pub trait ExternalAccountStore: Send + Sync {
    /// The account a provider names with `provider_user_id`.
    async fn external_account_by_subject(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Option<ExternalAccountRow>>;
    /// A user's provider accounts, oldest first.
    async fn external_accounts_for_user(&self, user_id: &str) -> Result<Vec<ExternalAccountRow>>;
    /// Adds the account, or refreshes the stored one with the same id (profile, scopes,
    /// tokens). A provider account joined to another user is refused
    /// ([`crate::StoreError::Conflict`]).
    async fn save_external_account(&self, account: &ExternalAccountRow) -> Result<()>;
    /// Writes new tokens or profile onto the stored account (same id and user) and never adds
    /// one: false when it is gone (removed meanwhile), so a removed link cannot come back.
    async fn update_external_account(&self, account: &ExternalAccountRow) -> Result<bool>;
    /// Removes `user_id`'s account `id`; false when that user has no such account.
    async fn delete_external_account(&self, user_id: &str, id: &str) -> Result<bool>;
}

/// Users' passkeys (docs/passkeys.md). Every write is one transaction, so an emitting view
/// writes its `user.updated` with it.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Gives the user `handle` as their WebAuthn user handle unless they have one; returns the
    /// handle they have now (the first one set wins a race).
    async fn set_webauthn_handle(&self, user_id: &str, handle: &str) -> Result<String>;
    /// Stores a registration in progress in place of the user's other unfinished ones (one at
    /// a time per user).
    async fn save_pending_passkey(&self, passkey: &PasskeyRow) -> Result<()>;
    /// Turns the user's registration `pending.id` into a passkey: true only if it was still
    /// unverified with the same single-use state (so a registration finishes once). A
    /// credential id already stored is refused ([`crate::StoreError::Conflict`]).
    async fn finish_passkey_registration(&self, pending: &PasskeyRow, state: &str) -> Result<bool>;
    /// Spends a registration's state without a passkey (a refused answer).
    async fn fail_passkey_registration(&self, user_id: &str, id: &str, now: i64) -> Result<()>;
    /// The verified passkey with this credential id, whoever's it is.
    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<PasskeyRow>>;
    /// Stores a sign-in's new counter, credential and backup state, and when it was used; false
    /// (nothing written) when the stored counter is not below the new one, which refuses a
    /// counter going backwards or a parallel use of the same signature count. Counters of 0
    /// (authenticators that keep none) always pass.
    async fn record_passkey_use(&self, used: &PasskeyUse) -> Result<bool>;
    /// Renames the user's verified passkey `id`; false when the user has no such passkey.
    async fn rename_passkey(&self, user_id: &str, id: &str, name: &str, now: i64) -> Result<bool>;
    /// Removes the user's passkey `id`; false when the user has no such passkey.
    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool>;
}

/// Users' second factors (docs/second-factors.md). Every write is one transaction, so an
/// emitting view writes its `user.updated` with it.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    /// Stores a new, unverified authenticator-app key in place of an unverified one; a user
    /// whose key is verified keeps it ([`crate::StoreError::Conflict`]).
    async fn save_pending_totp(&self, totp: &TotpRow) -> Result<()>;
    /// Accepts a code of `step` for the key `id` (verifying it when `verify`): true only if no
    /// code of this step or a later one was accepted before, so each code works once.
    async fn use_totp_step(&self, id: &str, step: i64, verify: bool, now: i64) -> Result<bool>;
    /// Removes the user's authenticator-app key and, with `and_backup_codes`, their backup
    /// codes; false when there was nothing to remove.
    async fn delete_totp(&self, user_id: &str, and_backup_codes: bool) -> Result<bool>;
    /// Replaces every backup code of the user with `codes` (the old set dies).
    async fn replace_backup_codes(&self, user_id: &str, codes: &[BackupCodeRow]) -> Result<()>;
    /// Uses the backup code `id` of the user: true once, false ever after.
    async fn consume_backup_code(&self, user_id: &str, id: &str) -> Result<bool>;
    /// Removes every backup code of the user; false when there were none.
    async fn delete_backup_codes(&self, user_id: &str) -> Result<bool>;
}

/// The revocation feed's entries (docs/revocations.md); most are written with the events that
/// cause them ([`crate::OutboxEvent::revocation`]).
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// An entry of its own (a signing key revoked); the same `id` twice is written once.
    async fn record_revocation(&self, id: &str, revocation: &latchkey_core::revocation::Revocation) -> Result<()>;
    /// Entries that happened at `at_least` or later and are still live at `now`, oldest first.
    async fn revocations_since(
        &self,
        at_least: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<latchkey_core::revocation::Revocation>>;
    /// Drops the entries expired by `now`; how many.
    async fn prune_revocations(&self, now: i64) -> Result<u64>;
}

/// Users arriving in bulk from another system (docs/import-export.md).
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Judges each user of a batch against the database and the users before it in the batch
    /// (an id present already, or a verified address, phone number, username or external id
    /// someone else holds) and inserts those judged [`ImportOutcome::Imported`] in one
    /// transaction: the batch lands whole or not at all. With `judge_only`, writes nothing and
    /// judges against what earlier batches of the same run would have taken, too.
    async fn import_users(
        &self,
        users: &[UserRecord],
        judge_only: Option<&mut ImportClaims>,
    ) -> Result<Vec<ImportOutcome>>;
}

/// Users with their email addresses and phone numbers.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, user: &UserRecord) -> Result<()>;
    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>>;
    async fn user_id_by_verified_email(&self, email: &str) -> Result<Option<String>>;
    /// The owner of a verified address and the address's id.
    async fn verified_email_owner(&self, email: &str) -> Result<Option<(String, String)>>;
    /// The user row alone, without identifications.
    async fn get_user_row(&self, id: &str) -> Result<Option<UserRow>>;
    async fn user_id_by_username(&self, username: &str) -> Result<Option<String>>;
    async fn update_user(&self, user: &UserRow) -> Result<()>;
    /// Writes the user (optimistically, like `update_user`) and revokes every active session of
    /// theirs in the same transaction, so a ban or lock never lands without its revocation.
    async fn update_user_revoking_sessions(&self, user: &UserRow, now: i64) -> Result<u64>;
    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRecord>>;
    /// Up to `limit` users whose ids sort after `after` ("" for the first), in id order: a walk
    /// over every user that stays exact while others are added (exports).
    async fn users_after(&self, after: &str, limit: i64) -> Result<Vec<UserRecord>>;
    async fn count_users(&self) -> Result<i64>;
    /// One page of the users a query selects.
    async fn query_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>>;
    /// How many users the query selects, ignoring its paging.
    async fn count_users_matching(&self, query: &UserQuery) -> Result<i64>;
    async fn user_id_by_external_id(&self, external_id: &str) -> Result<Option<String>>;
    async fn delete_user(&self, id: &str) -> Result<bool>;
    /// [`UserStore::delete_user`] for the person themself: refused with
    /// `Conflict("last_admin:<organization id>")` while they are the only `admin_role` member of
    /// an organization with other members (checked in the deleting transaction).
    async fn delete_own_user(&self, id: &str, admin_role: &str) -> Result<bool>;
    async fn insert_email(&self, email: &EmailRow) -> Result<()>;
    async fn update_email(&self, email: &EmailRow) -> Result<()>;
    async fn delete_email(&self, id: &str) -> Result<()>;
    async fn get_email(&self, id: &str) -> Result<Option<EmailRow>>;
    async fn insert_phone(&self, phone: &PhoneRow) -> Result<()>;
    async fn get_phone(&self, id: &str) -> Result<Option<PhoneRow>>;
    async fn update_phone(&self, phone: &PhoneRow) -> Result<()>;
    async fn delete_phone(&self, id: &str) -> Result<()>;
}

/// Invitations to the application and sign-in tokens.
#[async_trait]
pub trait InvitationStore: Send + Sync {
    async fn insert_invitation(&self, invitation: &InvitationRow) -> Result<()>;
    async fn get_invitation(&self, id: &str) -> Result<Option<InvitationRow>>;
    async fn update_invitation(&self, invitation: &InvitationRow) -> Result<()>;
    async fn delete_invitation(&self, id: &str) -> Result<bool>;
    /// Newest first; `statuses` empty means all.
    async fn list_invitations(
        &self,
        statuses: &[String],
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InvitationRow>, i64)>;
    /// Marks pending invitations past their expiry as expired.
    async fn expire_invitations(&self, now: i64) -> Result<u64>;
    /// Invitations for the address that are pending and not expired at `now` (read only: the
    /// sign-up path must not write to find them).
    async fn pending_invitations_for(&self, email: &str, now: i64) -> Result<Vec<InvitationRow>>;
    async fn insert_sign_in_token(&self, token: &SignInTokenRow) -> Result<()>;
    async fn get_sign_in_token(&self, id: &str) -> Result<Option<SignInTokenRow>>;
    async fn sign_in_token_by_digest(&self, digest: &str) -> Result<Option<SignInTokenRow>>;
    /// Moves a token from `from` to `token.status`; false if it was no longer in `from`.
    async fn transition_sign_in_token(&self, token: &SignInTokenRow, from: &str) -> Result<bool>;
}

/// The instance's organization roles and permissions: seeded from configuration at start,
/// changed at run time through the Backend API (docs/organization-roles.md).
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Writes the configured roles over the stored ones with their keys and removes the roles
    /// `removed` names, in one transaction, unless roles are managed at run time (then it writes
    /// nothing and answers false).
    async fn seed_roles(&self, roles: &[OrgRoleRow], removed: &[String]) -> Result<bool>;
    /// Oldest first.
    async fn list_org_roles(&self) -> Result<Vec<OrgRoleRow>>;
    /// Writes a permission unless one with its key exists; whether it wrote it (seeding).
    async fn seed_org_permission(&self, permission: &OrgPermissionRow) -> Result<bool>;
    /// Oldest first.
    async fn list_org_permissions(&self) -> Result<Vec<OrgPermissionRow>>;
    /// Applies a change made at run time, whole or not at all (`Stale` when a row it was
    /// computed from changed meanwhile), and records that roles are now managed at run time.
    async fn change_roles(&self, change: &RoleChange) -> Result<()>;
    /// Whether a change was ever made at run time (then configuration seeds no more roles).
    async fn roles_managed_at_run_time(&self) -> Result<bool>;
}

/// Organizations, their memberships and invitations.
#[async_trait]
pub trait OrganizationStore: Send + Sync {
    /// Creates the organization and, when given, its first membership, in one transaction.
    async fn create_organization(&self, org: &OrganizationRow, first: Option<&MembershipRow>) -> Result<()>;
    async fn get_organization(&self, id: &str) -> Result<Option<OrganizationRow>>;
    async fn organization_by_slug(&self, slug: &str) -> Result<Option<OrganizationRow>>;
    async fn update_organization(&self, org: &OrganizationRow) -> Result<()>;
    /// Removes the organization with its memberships and invitations.
    async fn delete_organization(&self, id: &str) -> Result<bool>;
    /// One page of the organizations a query selects, and how many it selects in all.
    async fn list_organizations(&self, query: &OrgQuery) -> Result<(Vec<OrganizationRow>, i64)>;
    /// Members and live pending invitations of each organization named.
    async fn org_counts(&self, ids: &[String], now: i64) -> Result<Vec<(String, OrgCounts)>>;
    /// The user's memberships with their organizations, oldest first.
    async fn organizations_of_user(&self, user_id: &str) -> Result<Vec<(MembershipRow, OrganizationRow)>>;
    async fn count_memberships(&self, organization_id: &str) -> Result<i64>;
    /// Adds a member unless the organization is full (`StoreError::Conflict("membership_limit")`).
    async fn insert_membership(&self, membership: &MembershipRow, max_allowed: i64) -> Result<()>;
    async fn get_membership(&self, organization_id: &str, user_id: &str) -> Result<Option<MembershipRow>>;
    /// Oldest first (newest with `descending`), and how many the query selects in all.
    async fn list_memberships(&self, query: &MembershipQuery) -> Result<(Vec<MembershipRow>, i64)>;
    async fn memberships_of_user(&self, user_id: &str) -> Result<Vec<MembershipRow>>;
    /// Writes a membership (role, metadata); refused with `Conflict("last_admin")` when the
    /// organization would be left without a member holding `admin_role`.
    async fn update_membership(&self, membership: &MembershipRow, admin_role: &str) -> Result<()>;
    /// Removes a membership, with the same last-admin rule.
    async fn delete_membership(&self, organization_id: &str, user_id: &str, admin_role: &str) -> Result<bool>;
    async fn insert_org_invitation(&self, invitation: &OrgInvitationRow) -> Result<()>;
    async fn get_org_invitation(&self, id: &str) -> Result<Option<OrgInvitationRow>>;
    async fn update_org_invitation(&self, invitation: &OrgInvitationRow) -> Result<()>;
    /// Newest first; `statuses` empty means all.
    async fn list_org_invitations(
        &self,
        organization_id: &str,
        statuses: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OrgInvitationRow>, i64)>;
    async fn pending_org_invitations_for(&self, email: &str) -> Result<Vec<OrgInvitationRow>>;
    /// The invitation whose link carries the secret with this digest, whatever its status.
    async fn org_invitation_by_token_digest(&self, digest: &str) -> Result<Option<OrgInvitationRow>>;
    /// In one transaction: marks a pending invitation accepted and adds its membership (unless
    /// the user is a member already). False if the invitation was no longer pending;
    /// `Conflict("membership_limit")` (and nothing written) if the organization is full.
    async fn accept_org_invitation(
        &self,
        invitation: &OrgInvitationRow,
        membership: &MembershipRow,
        max_allowed: i64,
    ) -> Result<bool>;
}
