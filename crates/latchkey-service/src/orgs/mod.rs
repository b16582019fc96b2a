//! Organizations, their members with one role each, and invitations by email (Clerk's model,
//! docs/backend-api.md §4–§7, docs/frontend-api.md §10). Every action on an organization takes
//! an [`OrgAccess`] (crate::authority) and asks it for the system permission it needs: the
//! Frontend API and the hosted pages hold an [`OrgActor`], the caller's own membership; the
//! Backend API holds the operator's access, which allows everything.
//!
//! - `config`: `[organizations]` in the configuration;
//! - `roles`: the instance's roles and permissions, read fresh where a decision needs them;
//! - `role_admin`, `permission_admin`: roles and permissions changed at run time (the Backend API);
//! - `organizations`: reading, creating, updating, deleting organizations;
//! - `memberships`: members and their roles;
//! - `invitations`: invitations by email;
//! - `actor`: the caller's own organizations (making their [`OrgActor`], leaving, creating);
//! - `claims`: the organization claims of session tokens, and the template context.
//!
//! Organizations are a service of their own, [`OrgService`], over the store's organization
//! view ([`OrgStore`]); identity holds it to put organization claims in session tokens and to
//! accept invitations at sign-up. This file holds the service, the inputs and the errors they
//! share.

mod actor;
mod claims;
mod config;
mod events;
mod invitations;
mod memberships;
mod organizations;
mod permission_admin;
mod portable;
mod role_admin;
mod roles;

pub use crate::authority::{OperatorOrg, OrgAccess, OrgActor};
pub use config::{OrganizationConfig, RoleConfig};
pub use permission_admin::PermissionInput;
pub use portable::{ImportedInvitation, ImportedMembership, PortableOrganization};
pub use role_admin::{RoleDetail, RoleInput, RoleListQuery};
pub(crate) use roles::RoleSnapshot;

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::ids::IdKind;
use latchkey_core::org::OrgFieldProblem;
use latchkey_core::Random;
use latchkey_store::{OrgStore, OutboxEvent, StoreError, UserRecord};
use serde_json::Value;

use crate::attempts::Budgets;
use crate::error::{Result, ServiceError};
use crate::mail::Postman;
use crate::webhooks::Events;
use crate::ServiceConfig;

/// Organizations, memberships, invitations and roles. Built by [`crate::Services::new`].
pub struct OrgService {
    pub(crate) store: Arc<dyn OrgStore>,
    pub(crate) rng: Arc<dyn Random>,
    pub(crate) events: Events,
    pub(crate) postman: Postman,
    /// Invitations that members send count against their mail budget.
    pub(crate) budgets: Budgets,
    /// The instance's roles as last read (roles.rs).
    pub(crate) roles: roles::RoleSnapshot,
    pub(crate) config: ServiceConfig,
}

impl OrgService {
    fn now(&self) -> Millis {
        self.events.now()
    }

    fn new_id(&self, kind: IdKind) -> String {
        self.events.new_id(kind)
    }

    fn event(&self, event_type: &str, data: Value) -> OutboxEvent {
        self.events.event(event_type, data)
    }

    /// The store, writing `events` in the transaction of the next write.
    fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn OrgStore> {
        self.store.emitting_org(events)
    }

    async fn user(&self, user_id: &str) -> Result<UserRecord> {
        self.store.get_user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))
    }

    /// The avatar URL the resources show.
    pub(crate) fn avatar(&self) -> String {
        crate::resources::avatar_url(&self.config.issuer)
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewOrganization {
    pub name: String,
    pub slug: Option<String>,
    /// Becomes the first member, with the creator role.
    pub created_by: Option<String>,
    pub max_allowed_memberships: Option<i64>,
    pub admin_delete_enabled: Option<bool>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
}

/// A change to an organization; `None` leaves a field alone. Metadata given here replaces.
#[derive(Debug, Clone, Default)]
pub struct OrganizationUpdate {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub max_allowed_memberships: Option<i64>,
    pub admin_delete_enabled: Option<bool>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct OrgInvitationInput {
    pub email_address: String,
    /// `None` gives the instance's default role.
    pub role: Option<String>,
    pub inviter_user_id: Option<String>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub expires_in_days: Option<i64>,
}

fn field_error(problem: OrgFieldProblem) -> ServiceError {
    match problem {
        OrgFieldProblem::NameEmpty => ServiceError::unprocessable("form_param_missing", "Enter a name.").param("name"),
        OrgFieldProblem::NameTooLong => {
            ServiceError::unprocessable("form_param_exceeds_allowed_size", "Names must be at most 256 characters long.")
                .param("name")
        }
        OrgFieldProblem::SlugFormat => ServiceError::unprocessable(
            "form_param_format_invalid",
            "Slugs may contain only lowercase letters, digits and single dashes between them.",
        )
        .param("slug"),
    }
}

fn limit_param(value: i64) -> Result<i64> {
    if value < 0 {
        return Err(ServiceError::unprocessable(
            "form_param_value_invalid",
            "max_allowed_memberships must be 0 (no limit) or more",
        )
        .param("max_allowed_memberships"));
    }
    Ok(value)
}

fn last_admin() -> ServiceError {
    ServiceError::unprocessable("organization_minimum_permissions_needed", "An organization needs at least one admin.")
        .long("Make another member an admin first: an organization always keeps at least one admin.")
}

fn membership_quota() -> ServiceError {
    ServiceError::unprocessable(
        "organization_membership_quota_exceeded",
        "This organization has reached its maximum number of members.",
    )
}

fn member_not_found() -> ServiceError {
    ServiceError::not_found("Organization membership")
}

/// A uniqueness conflict on an organization write is a taken slug.
fn slug_conflict(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(_) => ServiceError::unprocessable("form_identifier_exists", "That slug is taken.")
            .long("Another organization uses this slug. Please choose another.")
            .param("slug"),
        StoreError::NotFound => ServiceError::not_found("Organization"),
        other => other.into(),
    }
}
