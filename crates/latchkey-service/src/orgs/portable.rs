//! Organizations leaving or arriving with their ids (`latchkey export`, `latchkey import
//! clerk-api`; docs/import-export.md): each organization, membership and pending invitation
//! keeps the id it had, and one already present is left alone, so an interrupted import is
//! run again. Nothing is sent to webhooks and no invitation mail goes out: these are not new.

use latchkey_core::org::{normalize_name, normalize_slug};
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_core::session::DAY_MS;
use latchkey_store::{
    ImportOutcome, MembershipQuery, MembershipRow, OrgInvitationRow, OrgQuery, OrganizationRow, StoreError,
};
use serde_json::Value;

use super::{field_error, limit_param, NewOrganization, OrgService};
use crate::authority::Operator;
use crate::error::{Result, ServiceError};
use crate::params::metadata_param;

/// Pages read at a time.
const PAGE: i64 = 500;
/// How long an imported pending invitation may still run.
const MAX_INVITATION_DAYS: i64 = 30;

/// An id kept from the source: `prefix` then letters, digits or `_`, 100 characters at most.
fn imported_id(id: &str, prefix: &str, what: &str) -> Result<()> {
    let rest = id.strip_prefix(prefix).unwrap_or_default();
    if rest.is_empty() || id.len() > 100 || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ServiceError::unprocessable("form_param_format_invalid", format!("id is not {what} id"))
            .long(format!("The id of {what} must be `{prefix}` then letters, digits or `_`, not {id:?}."))
            .param("id"));
    }
    Ok(())
}

/// An organization as an export writes it.
#[derive(Debug, Clone)]
pub struct PortableOrganization {
    pub organization: OrganizationRow,
    pub memberships: Vec<MembershipRow>,
    /// Pending invitations only: the others are history.
    pub invitations: Vec<OrgInvitationRow>,
}

/// One membership to import.
#[derive(Debug, Clone)]
pub struct ImportedMembership {
    pub id: Option<String>,
    pub user_id: String,
    pub role: String,
    pub created_at: Option<i64>,
}

/// One pending invitation to import.
#[derive(Debug, Clone)]
pub struct ImportedInvitation {
    pub id: String,
    pub email_address: String,
    pub role: String,
    pub created_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl OrgService {
    /// Every organization, oldest first, with its members and pending invitations.
    pub async fn export_organizations(&self, _operator: &Operator) -> Result<Vec<PortableOrganization>> {
        let mut out = Vec::new();
        loop {
            let query = OrgQuery { limit: PAGE, offset: out.len() as i64, ..OrgQuery::default() };
            let (page, _) = self.store.list_organizations(&query).await?;
            if page.is_empty() {
                return Ok(out);
            }
            for organization in page {
                let (mut memberships, mut invitations) = (Vec::new(), Vec::new());
                loop {
                    let query = MembershipQuery {
                        organization_id: Some(organization.id.clone()),
                        limit: PAGE,
                        offset: memberships.len() as i64,
                        ..MembershipQuery::default()
                    };
                    let (page, _) = self.store.list_memberships(&query).await?;
                    if page.is_empty() {
                        break;
                    }
                    memberships.extend(page);
                }
                loop {
                    let pending = ["pending".to_owned()];
                    let (page, _) = self
                        .store
                        .list_org_invitations(&organization.id, &pending, PAGE, invitations.len() as i64)
                        .await?;
                    if page.is_empty() {
                        break;
                    }
                    invitations.extend(page);
                }
                out.push(PortableOrganization { organization, memberships, invitations });
            }
        }
    }

    /// Creates the organization `id` as `input` describes it (no member: memberships arrive
    /// on their own), or leaves the one present alone.
    pub async fn import_organization(
        &self,
        _operator: &Operator,
        id: &str,
        input: NewOrganization,
        created_at: Option<i64>,
    ) -> Result<ImportOutcome> {
        imported_id(id, "org_", "an organization")?;
        if self.store.get_organization(id).await?.is_some() {
            return Ok(ImportOutcome::AlreadyPresent);
        }
        let name = normalize_name(&input.name).map_err(field_error)?;
        let slug = normalize_slug(input.slug.as_deref().unwrap_or_default()).map_err(field_error)?;
        let now = self.now();
        let metadata = |v: &Option<Value>, name: &'static str| match v {
            Some(v) => metadata_param(v, name),
            None => Ok("{}".to_owned()),
        };
        let org = OrganizationRow {
            id: id.to_owned(),
            name,
            slug,
            image_url: None,
            public_metadata: metadata(&input.public_metadata, "public_metadata")?,
            private_metadata: metadata(&input.private_metadata, "private_metadata")?,
            max_allowed_memberships: limit_param(
                input.max_allowed_memberships.unwrap_or(self.config.organizations.max_allowed_memberships),
            )?,
            admin_delete_enabled: input.admin_delete_enabled.unwrap_or(self.config.organizations.admin_delete_enabled),
            created_by: input.created_by,
            created_at: created_at.unwrap_or(now),
            updated_at: now,
        };
        match self.store.create_organization(&org, None).await {
            Ok(()) => Ok(ImportOutcome::Imported),
            Err(StoreError::Conflict(_)) => match self.store.get_organization(id).await? {
                Some(_) => Ok(ImportOutcome::AlreadyPresent),
                None => Ok(ImportOutcome::Conflict(format!("the slug {} belongs to another organization", org.slug))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `input.user_id` a member of the organization with the role named, or leaves the
    /// membership present alone (its role included).
    pub async fn import_membership(
        &self,
        _operator: &Operator,
        org_id: &str,
        input: ImportedMembership,
    ) -> Result<ImportOutcome> {
        if let Some(id) = &input.id {
            imported_id(id, "orgmem_", "a membership")?;
        }
        let role = self.role_param(&input.role).await?;
        if self.store.get_membership(org_id, &input.user_id).await?.is_some() {
            return Ok(ImportOutcome::AlreadyPresent);
        }
        if self.store.get_user(&input.user_id).await?.is_none() {
            return Ok(ImportOutcome::Conflict(format!("no user {} to be a member", input.user_id)));
        }
        let mut m = self.new_membership(org_id, &input.user_id, &role);
        if let Some(id) = input.id {
            m.id = id;
        }
        m.created_at = input.created_at.unwrap_or(m.created_at);
        // Memberships that existed are not refused by a limit set after they were made.
        match self.store.insert_membership(&m, 0).await {
            Ok(()) => Ok(ImportOutcome::Imported),
            Err(StoreError::Conflict(rule)) => Ok(ImportOutcome::Conflict(format!("membership refused ({rule})"))),
            Err(StoreError::NotFound) => Err(ServiceError::not_found("Organization")),
            Err(e) => Err(e.into()),
        }
    }

    /// A pending invitation to the organization, with a fresh secret (the invitee joins by
    /// signing up with the address; no mail is sent), or the one present left alone.
    pub async fn import_invitation(
        &self,
        _operator: &Operator,
        org_id: &str,
        input: ImportedInvitation,
    ) -> Result<ImportOutcome> {
        imported_id(&input.id, "orginv_", "an invitation")?;
        if self.store.get_org_invitation(&input.id).await?.is_some() {
            return Ok(ImportOutcome::AlreadyPresent);
        }
        let email = crate::identity::email_param(&input.email_address, "email_address")?;
        let role = self.role_param(&input.role).await?;
        let now = self.now();
        // Never longer than an invitation made here can live.
        let longest = now + MAX_INVITATION_DAYS * DAY_MS;
        let expires_at = input.expires_at.unwrap_or(longest).min(longest);
        if expires_at <= now {
            return Ok(ImportOutcome::Conflict("the invitation has expired".into()));
        }
        let row = OrgInvitationRow {
            id: input.id,
            organization_id: org_id.to_owned(),
            email,
            role,
            status: "pending".into(),
            public_metadata: "{}".into(),
            private_metadata: "{}".into(),
            inviter_user_id: None,
            token_digest: secret_digest(&new_opaque_secret(self.rng.as_ref())),
            expires_at,
            created_at: input.created_at.unwrap_or(now),
            updated_at: now,
        };
        match self.store.insert_org_invitation(&row).await {
            Ok(()) => Ok(ImportOutcome::Imported),
            Err(StoreError::Conflict(rule)) => Ok(ImportOutcome::Conflict(format!("invitation refused ({rule})"))),
            Err(e) => Err(e.into()),
        }
    }
}
