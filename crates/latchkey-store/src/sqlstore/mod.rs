//! [`Store`] implemented once in portable SQL over a backend's [`SqlDriver`], by area: each
//! module below holds the statements of one area and describes its tables once
//! ([`shared::Record`]); this module only says which area answers each method. The areas
//! import [`base`], [`shared`] and [`outbox`], never each other; [`SyncStore`](crate::SyncStore),
//! [`WebhookStore`](crate::WebhookStore) and [`ThrottleStore`](crate::ThrottleStore) are
//! implemented in their own areas.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::error::Result;
use crate::records::*;
use crate::sql::SqlDriver;
use crate::store::Store;
use crate::webhooks::OutboxEvent;

#[macro_use]
mod shared;
mod base;
mod invitations;
mod keys;
mod organizations;
mod outbox;
mod sessions;
mod sync;
mod throttle;
mod users;
mod webhooks;

pub use base::SqlStore;

#[async_trait]
impl<D: SqlDriver> Store for SqlStore<D> {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }

    fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn Store> {
        Arc::new(self.with_events(events))
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.db.ping().await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        keys::get_setting(self, key).await
    }

    async fn init_setting(&self, key: &str, value: &str) -> Result<String> {
        keys::init_setting(self, key, value).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRow) -> Result<()> {
        self.insert(key).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        keys::list_api_keys(self).await
    }

    async fn api_key_by_digest(&self, digest: &str) -> Result<Option<ApiKeyRow>> {
        keys::api_key_by_digest(self, digest).await
    }

    async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        keys::revoke_api_key(self, id, now).await
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        keys::list_signing_keys(self).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<()> {
        self.insert(key).await
    }

    async fn revoke_signing_key(&self, kid: &str, now: i64) -> Result<bool> {
        keys::revoke_signing_key(self, kid, now).await
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<()> {
        self.delete::<SigningKeyRow>(kid).await.map(|_| ())
    }

    async fn insert_client(&self, client: &ClientRow) -> Result<()> {
        self.insert(client).await
    }

    async fn get_client(&self, id: &str) -> Result<Option<ClientRow>> {
        self.get(id).await
    }

    async fn client_by_token_digest(&self, digest: &str) -> Result<Option<ClientRow>> {
        sessions::client_by_token_digest(self, digest).await
    }

    async fn update_client(&self, client: &ClientRow) -> Result<()> {
        self.update(client).await.map(|_| ())
    }

    async fn insert_sign_up(&self, sign_up: &SignUpRow) -> Result<()> {
        sessions::insert_sign_up(self, sign_up).await
    }

    async fn get_sign_up(&self, id: &str) -> Result<Option<SignUpRow>> {
        self.get(id).await
    }

    async fn update_sign_up(&self, sign_up: &SignUpRow) -> Result<()> {
        self.update_versioned(sign_up).await
    }

    async fn complete_sign_up(&self, done: &CompleteSignUp) -> Result<()> {
        sessions::complete_sign_up(self, done).await
    }

    async fn insert_sign_in(&self, sign_in: &SignInRow) -> Result<()> {
        sessions::insert_sign_in(self, sign_in).await
    }

    async fn get_sign_in(&self, id: &str) -> Result<Option<SignInRow>> {
        self.get(id).await
    }

    async fn update_sign_in(&self, sign_in: &SignInRow) -> Result<()> {
        self.update_versioned(sign_in).await
    }

    async fn complete_sign_in(&self, done: &CompleteSignIn) -> Result<()> {
        sessions::complete_sign_in(self, done).await
    }

    async fn create_user(&self, user: &UserRecord) -> Result<()> {
        users::create_user(self, user).await
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>> {
        users::get_user(self, id).await
    }

    async fn user_id_by_verified_email(&self, email: &str) -> Result<Option<String>> {
        users::user_id_by_verified_email(self, email).await
    }

    async fn verified_email_owner(&self, email: &str) -> Result<Option<(String, String)>> {
        users::verified_email_owner(self, email).await
    }

    async fn get_user_row(&self, id: &str) -> Result<Option<UserRow>> {
        self.get(id).await
    }

    async fn user_id_by_username(&self, username: &str) -> Result<Option<String>> {
        users::user_id_by_username(self, username).await
    }

    async fn update_user(&self, user: &UserRow) -> Result<()> {
        self.update_versioned(user).await
    }

    async fn update_user_revoking_sessions(&self, user: &UserRow, now: i64) -> Result<u64> {
        users::update_user_revoking_sessions(self, user, now).await
    }

    async fn record_failed_attempt(&self, failed: &FailedAttempt) -> Result<FailedAttemptCounts> {
        sessions::record_failed_attempt(self, failed).await
    }

    async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRecord>> {
        users::list_users(self, limit, offset).await
    }

    async fn count_users(&self) -> Result<i64> {
        users::count_users(self).await
    }

    async fn query_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>> {
        users::query_users(self, query).await
    }

    async fn count_users_matching(&self, query: &UserQuery) -> Result<i64> {
        users::count_users_matching(self, query).await
    }

    async fn user_id_by_external_id(&self, external_id: &str) -> Result<Option<String>> {
        users::user_id_by_external_id(self, external_id).await
    }

    async fn delete_user(&self, id: &str) -> Result<bool> {
        users::delete_user(self, id).await
    }

    async fn insert_email(&self, email: &EmailRow) -> Result<()> {
        self.insert(email).await
    }

    async fn update_email(&self, email: &EmailRow) -> Result<()> {
        self.update_versioned(email).await
    }

    async fn delete_email(&self, id: &str) -> Result<()> {
        self.delete::<EmailRow>(id).await.map(|_| ())
    }

    async fn get_email(&self, id: &str) -> Result<Option<EmailRow>> {
        self.get(id).await
    }

    async fn insert_phone(&self, phone: &PhoneRow) -> Result<()> {
        self.insert(phone).await
    }

    async fn get_phone(&self, id: &str) -> Result<Option<PhoneRow>> {
        self.get(id).await
    }

    async fn update_phone(&self, phone: &PhoneRow) -> Result<()> {
        self.update(phone).await.map(|_| ())
    }

    async fn delete_phone(&self, id: &str) -> Result<()> {
        self.delete::<PhoneRow>(id).await.map(|_| ())
    }

    async fn insert_session(&self, session: &SessionRow) -> Result<()> {
        self.insert(session).await
    }

    async fn get_session(&self, id: &str) -> Result<Option<SessionRow>> {
        self.get(id).await
    }

    async fn update_session(&self, session: &SessionRow) -> Result<()> {
        self.update(session).await.map(|_| ())
    }

    async fn sessions_for_client(&self, client_id: &str) -> Result<Vec<SessionRow>> {
        sessions::sessions_for_client(self, client_id).await
    }

    async fn sessions_for_user(&self, user_id: &str) -> Result<Vec<SessionRow>> {
        sessions::sessions_for_user(self, user_id).await
    }

    async fn end_client_sessions(&self, client_id: &str, status: &str, now: i64) -> Result<u64> {
        sessions::end_client_sessions(self, client_id, status, now).await
    }

    async fn query_sessions(&self, query: &SessionQuery) -> Result<(Vec<SessionRow>, i64)> {
        sessions::query_sessions(self, query).await
    }

    async fn revoke_user_sessions(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64> {
        sessions::revoke_user_sessions(self, user_id, keep, now).await
    }

    async fn insert_invitation(&self, invitation: &InvitationRow) -> Result<()> {
        self.insert(invitation).await
    }

    async fn get_invitation(&self, id: &str) -> Result<Option<InvitationRow>> {
        self.get(id).await
    }

    async fn update_invitation(&self, invitation: &InvitationRow) -> Result<()> {
        self.update(invitation).await.map(|_| ())
    }

    async fn delete_invitation(&self, id: &str) -> Result<bool> {
        self.delete::<InvitationRow>(id).await
    }

    async fn list_invitations(
        &self,
        statuses: &[String],
        query: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InvitationRow>, i64)> {
        invitations::list_invitations(self, statuses, query, limit, offset).await
    }

    async fn expire_invitations(&self, now: i64) -> Result<u64> {
        invitations::expire_invitations(self, now).await
    }

    async fn pending_invitations_for(&self, email: &str, now: i64) -> Result<Vec<InvitationRow>> {
        invitations::pending_invitations_for(self, email, now).await
    }

    async fn insert_sign_in_token(&self, token: &SignInTokenRow) -> Result<()> {
        self.insert(token).await
    }

    async fn get_sign_in_token(&self, id: &str) -> Result<Option<SignInTokenRow>> {
        self.get(id).await
    }

    async fn sign_in_token_by_digest(&self, digest: &str) -> Result<Option<SignInTokenRow>> {
        invitations::sign_in_token_by_digest(self, digest).await
    }

    async fn transition_sign_in_token(&self, token: &SignInTokenRow, from: &str) -> Result<bool> {
        invitations::transition_sign_in_token(self, token, from).await
    }

    async fn insert_jwt_template(&self, template: &JwtTemplateRow) -> Result<()> {
        self.insert(template).await
    }

    async fn get_jwt_template(&self, id: &str) -> Result<Option<JwtTemplateRow>> {
        self.get(id).await
    }

    async fn jwt_template_by_name(&self, name: &str) -> Result<Option<JwtTemplateRow>> {
        keys::jwt_template_by_name(self, name).await
    }

    async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplateRow>> {
        keys::list_jwt_templates(self).await
    }

    async fn update_jwt_template(&self, template: &JwtTemplateRow) -> Result<()> {
        self.update(template).await.map(|_| ())
    }

    async fn delete_jwt_template(&self, id: &str) -> Result<bool> {
        self.delete::<JwtTemplateRow>(id).await
    }

    async fn upsert_org_role(&self, role: &OrgRoleRow) -> Result<()> {
        organizations::upsert_org_role(self, role).await
    }

    async fn list_org_roles(&self) -> Result<Vec<OrgRoleRow>> {
        organizations::list_org_roles(self).await
    }

    async fn create_organization(&self, org: &OrganizationRow, first: Option<&MembershipRow>) -> Result<()> {
        organizations::create_organization(self, org, first).await
    }

    async fn get_organization(&self, id: &str) -> Result<Option<OrganizationRow>> {
        self.get(id).await
    }

    async fn organization_by_slug(&self, slug: &str) -> Result<Option<OrganizationRow>> {
        organizations::organization_by_slug(self, slug).await
    }

    async fn update_organization(&self, org: &OrganizationRow) -> Result<()> {
        organizations::update_organization(self, org).await
    }

    async fn delete_organization(&self, id: &str) -> Result<bool> {
        organizations::delete_organization(self, id).await
    }

    async fn list_organizations(&self, query: &OrgQuery) -> Result<(Vec<OrganizationRow>, i64)> {
        organizations::list_organizations(self, query).await
    }

    async fn org_counts(&self, ids: &[String], now: i64) -> Result<Vec<(String, OrgCounts)>> {
        organizations::org_counts(self, ids, now).await
    }

    async fn organizations_of_user(&self, user_id: &str) -> Result<Vec<(MembershipRow, OrganizationRow)>> {
        organizations::organizations_of_user(self, user_id).await
    }

    async fn count_memberships(&self, organization_id: &str) -> Result<i64> {
        organizations::count_memberships(self, organization_id).await
    }

    async fn insert_membership(&self, membership: &MembershipRow, max_allowed: i64) -> Result<()> {
        organizations::insert_membership(self, membership, max_allowed).await
    }

    async fn get_membership(&self, organization_id: &str, user_id: &str) -> Result<Option<MembershipRow>> {
        organizations::get_membership(self, organization_id, user_id).await
    }

    async fn list_memberships(&self, query: &MembershipQuery) -> Result<(Vec<MembershipRow>, i64)> {
        organizations::list_memberships(self, query).await
    }

    async fn memberships_of_user(&self, user_id: &str) -> Result<Vec<MembershipRow>> {
        organizations::memberships_of_user(self, user_id).await
    }

    async fn update_membership(&self, membership: &MembershipRow, admin_role: &str) -> Result<()> {
        organizations::update_membership(self, membership, admin_role).await
    }

    async fn delete_membership(&self, organization_id: &str, user_id: &str, admin_role: &str) -> Result<bool> {
        organizations::delete_membership(self, organization_id, user_id, admin_role).await
    }

    async fn insert_org_invitation(&self, invitation: &OrgInvitationRow) -> Result<()> {
        self.insert(invitation).await
    }

    async fn get_org_invitation(&self, id: &str) -> Result<Option<OrgInvitationRow>> {
        self.get(id).await
    }

    async fn update_org_invitation(&self, invitation: &OrgInvitationRow) -> Result<()> {
        self.update(invitation).await.map(|_| ())
    }

    async fn list_org_invitations(
        &self,
        organization_id: &str,
        statuses: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OrgInvitationRow>, i64)> {
        organizations::list_org_invitations(self, organization_id, statuses, limit, offset).await
    }

    async fn pending_org_invitations_for(&self, email: &str) -> Result<Vec<OrgInvitationRow>> {
        organizations::pending_org_invitations_for(self, email).await
    }

    async fn accept_org_invitation(
        &self,
        invitation: &OrgInvitationRow,
        membership: &MembershipRow,
        max_allowed: i64,
    ) -> Result<bool> {
        organizations::accept_org_invitation(self, invitation, membership, max_allowed).await
    }

    async fn prune_abandoned(&self, now: i64, idle_before: i64) -> Result<u64> {
        sessions::prune_abandoned(self, now, idle_before).await
    }

    async fn insert_handshake_nonce(&self, digest: &str, directives: &str, expires_at: i64) -> Result<()> {
        sessions::insert_handshake_nonce(self, digest, directives, expires_at).await
    }

    async fn take_handshake_nonce(&self, digest: &str, now: i64) -> Result<Option<String>> {
        sessions::take_handshake_nonce(self, digest, now).await
    }

    async fn prune_handshake_nonces(&self, now: i64) -> Result<u64> {
        sessions::prune_handshake_nonces(self, now).await
    }
}
