//! Authorization as values (docs/ARCHITECTURE.md, "Authorization in the types"): an action
//! that needs a right takes the proof of it, and only the check that grants the right can
//! make the proof. A handler that forgets the check does not compile.
//!
//! - [`Operator`]: the holder of a live secret key (the Backend API), or the operator at the
//!   server's own command line. Administers everything.
//! - [`Client`]: the browser or device whose client token the caller presented. Sign-in,
//!   sign-up and session actions take it, so none of them acts on a client named by id.
//! - [`SignedIn`]: a user proven by an active session of their client. Account actions take
//!   it and act on that user alone.
//! - [`Reverified`]: a signed-in user whose session proved its factors recently enough
//!   (step-up). Changing the password, removing a second factor and deleting the account
//!   take it.
//! - [`OrgAccess`]: what may act on one organization, and how far: a member's [`OrgActor`]
//!   (the permissions of their role) or an [`OperatorOrg`] (everything). Organization actions
//!   take it and ask it for the permission they need, so the handler cannot pick the wrong
//!   one.

use latchkey_core::authz::{has, AuthState, Check};
use latchkey_store::{ClientRow, MembershipRow, OrganizationRow};

use crate::error::{ErrorKind, Result, ServiceError};

/// A caller that may read the revocation feed (docs/revocations.md) and nothing else: a live
/// verifier key (`vk_live_…`) or a secret key. Made only by
/// [`crate::Services::authenticate_verifier_key`].
#[derive(Debug, Clone)]
pub struct FeedReader {
    key_id: String,
}

impl FeedReader {
    pub(crate) fn new(key_id: String) -> Self {
        Self { key_id }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// The Backend API's caller (a live secret key) or the operator at the command line.
#[derive(Debug, Clone)]
pub struct Operator {
    key_id: Option<String>,
}

impl Operator {
    /// Made only by [`crate::Services::authenticate_secret_key`].
    pub(crate) fn secret_key(key_id: String) -> Self {
        Self { key_id: Some(key_id) }
    }

    /// The operator at the server's own command line (`latchkey users …`), who holds the
    /// configuration and the database already. clippy's `disallowed-methods` (clippy.toml)
    /// keeps this out of every other place; the CLI allows it where it calls it.
    pub fn command_line() -> Self {
        Self { key_id: None }
    }

    /// The secret key that authenticated the request; none at the command line.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The operator's access to one organization (by id or slug).
    pub fn organization(&self, id_or_slug: &str) -> OperatorOrg {
        OperatorOrg { org: id_or_slug.to_owned() }
    }
}

/// A client the caller proved by presenting its token (cookie or bearer): made only by
/// [`crate::Services::client_by_token`] and [`crate::Services::new_client_for`] (and from one
/// of those by the actions that change it). Reads as the stored row.
#[derive(Debug, Clone)]
pub struct Client {
    row: ClientRow,
}

impl Client {
    pub(crate) fn new(row: ClientRow) -> Self {
        Self { row }
    }
}

impl std::ops::Deref for Client {
    type Target = ClientRow;

    fn deref(&self) -> &ClientRow {
        &self.row
    }
}

/// A signed-in user: made only by [`crate::Services::signed_in`] from an active session of
/// the caller's own client.
#[derive(Debug, Clone)]
pub struct SignedIn {
    user_id: String,
    session_id: String,
}

impl SignedIn {
    pub(crate) fn new(user_id: String, session_id: String) -> Self {
        Self { user_id, session_id }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }
}

/// A [`SignedIn`] user whose session proved its factors within a requirement's minutes: made
/// only by [`crate::users::Users::reverified`], which answers Clerk's reverification error
/// otherwise (docs/second-factors.md).
#[derive(Debug, Clone)]
pub struct Reverified {
    who: SignedIn,
}

impl Reverified {
    pub(crate) fn new(who: SignedIn) -> Self {
        Self { who }
    }

    pub fn signed_in(&self) -> &SignedIn {
        &self.who
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::OrgActor {}
    impl Sealed for super::OperatorOrg {}
}

/// What may act on one organization. Sealed: only this crate's proofs implement it.
pub trait OrgAccess: sealed::Sealed + Send + Sync {
    /// The organization (id or slug) once `permission` is allowed; 403 otherwise.
    fn allow(&self, permission: &str) -> Result<&str>;

    /// The member acting, or `None` for the operator, who is not bound by the rules an
    /// organization sets for its own members (such as `admin_delete_enabled`).
    fn member(&self) -> Option<&OrgActor>;
}

/// The operator's access to one organization: every permission.
#[derive(Debug, Clone)]
pub struct OperatorOrg {
    org: String,
}

impl OrgAccess for OperatorOrg {
    fn allow(&self, _permission: &str) -> Result<&str> {
        Ok(&self.org)
    }

    fn member(&self) -> Option<&OrgActor> {
        None
    }
}

/// The caller's own membership of an organization, and what it allows: made only by
/// [`crate::orgs::OrgService::org_actor`] from a [`SignedIn`].
#[derive(Debug, Clone)]
pub struct OrgActor {
    user_id: String,
    org: OrganizationRow,
    membership: MembershipRow,
    /// With the system permissions, which tokens leave out but the server checks.
    permissions: Vec<String>,
}

impl OrgActor {
    pub(crate) fn new(
        user_id: String,
        org: OrganizationRow,
        membership: MembershipRow,
        permissions: Vec<String>,
    ) -> Self {
        Self { user_id, org, membership, permissions }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn org(&self) -> &OrganizationRow {
        &self.org
    }

    pub fn membership(&self) -> &MembershipRow {
        &self.membership
    }

    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }

    /// `has({permission})` for this member in this organization.
    pub fn can(&self, permission: &str) -> bool {
        let state = AuthState {
            user_id: Some(self.user_id.clone()),
            org_id: Some(self.org.id.clone()),
            org_role: Some(self.membership.role.clone()),
            org_permissions: self.permissions.clone(),
            factor_verification_age: None,
        };
        has(&state, &[Check::Permission(permission.to_owned())])
    }

    /// Refuses with 403 unless the member holds `permission`.
    pub fn require(&self, permission: &str) -> Result<()> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(ServiceError::new(
                ErrorKind::Forbidden,
                "authorization_invalid",
                "You are not allowed to do this in this organization.",
            )
            .long(format!("This needs the {permission} permission, which your role does not have.")))
        }
    }
}

impl OrgAccess for OrgActor {
    fn allow(&self, permission: &str) -> Result<&str> {
        self.require(permission)?;
        Ok(&self.org.id)
    }

    fn member(&self) -> Option<&OrgActor> {
        Some(self)
    }
}
