//! Organizations, their members with one role each, and invitations by email (Clerk's model,
//! docs/backend-api.md §4–§7, docs/frontend-api.md §10). Every action on an organization takes
//! an [`OrgAccess`] (crate::authority) and asks it for the system permission it needs: the
//! Frontend API and the hosted pages hold an [`OrgActor`], the caller's own membership; the
//! Backend API holds the operator's access, which allows everything.
//!
//! - `config`: `[organizations]` in the configuration;
//! - `roles`: the instance's roles and permissions;
//! - `organizations`: reading, creating, updating, deleting organizations;
//! - `memberships`: members and their roles;
//! - `invitations`: invitations by email;
//! - `actor`: the caller's own organizations (making their [`OrgActor`], leaving, creating);
//! - `claims`: the organization claims of session tokens, and the template context.
//!
//! This file holds the inputs and the errors they share.

mod actor;
mod claims;
mod config;
mod invitations;
mod memberships;
mod organizations;
mod roles;

pub use crate::authority::{OperatorOrg, OrgAccess, OrgActor};
pub use config::{OrganizationConfig, RoleConfig};

use latchkey_core::org::OrgFieldProblem;
use latchkey_store::StoreError;
use serde_json::Value;

use crate::error::{Result, ServiceError};

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
