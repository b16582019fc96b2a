//! Organizations: reading (by id or slug, counts, lists), creating, updating and deleting.

use std::collections::HashMap;

use latchkey_core::authz::{with_org_prefix, PROFILE_DELETE, PROFILE_MANAGE};
use latchkey_core::ids::IdKind;
use latchkey_core::org::{normalize_name, normalize_slug, slugify};
use latchkey_store::{OrgCounts, OrgQuery, OrganizationRow};
use serde_json::Value;

use super::OrgService;
use crate::admin::MetadataChange;
use crate::authority::{Operator, OperatorOrg, OrgAccess};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::params::{apply_metadata, metadata_param, paging};

use super::{field_error, limit_param, slug_conflict, NewOrganization, OrganizationUpdate};

impl OrgService {
    /// An organization by id or by slug.
    pub async fn organization(&self, id_or_slug: &str) -> Result<OrganizationRow> {
        let found = if id_or_slug.starts_with("org_") { self.store.get_organization(id_or_slug).await? } else { None };
        let found = match found {
            Some(o) => Some(o),
            None => self.store.organization_by_slug(&id_or_slug.to_ascii_lowercase()).await?,
        };
        found.ok_or_else(|| ServiceError::not_found("Organization"))
    }

    pub async fn organization_counts(&self, ids: &[String]) -> Result<HashMap<String, OrgCounts>> {
        Ok(self.store.org_counts(ids, self.now()).await?.into_iter().collect())
    }

    pub async fn list_organizations(&self, mut query: OrgQuery) -> Result<(Vec<OrganizationRow>, i64)> {
        (query.limit, query.offset) = paging(query.limit, query.offset)?;
        Ok(self.store.list_organizations(&query).await?)
    }

    /// The organizations with those ids, by id.
    pub async fn organizations_by_id(&self, ids: &[String]) -> Result<HashMap<String, OrganizationRow>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let query = OrgQuery { limit: ids.len() as i64, ids, ..Default::default() };
        Ok(self.store.list_organizations(&query).await?.0.into_iter().map(|o| (o.id.clone(), o)).collect())
    }

    /// A free slug for `name`: the name's own, or it with a short random suffix.
    async fn free_slug(&self, name: &str) -> Result<String> {
        let base = slugify(name);
        if self.store.organization_by_slug(&base).await?.is_none() {
            return Ok(base);
        }
        for _ in 0..5 {
            let mut raw = [0u8; 4];
            self.rng.fill(&mut raw);
            let candidate = format!("{base}-{:08x}", u32::from_be_bytes(raw));
            if self.store.organization_by_slug(&candidate).await?.is_none() {
                return Ok(candidate);
            }
        }
        Err(ServiceError::stale())
    }

    /// The operator creates an organization (the Backend API, with any creator).
    pub async fn create_organization(&self, _operator: &Operator, input: NewOrganization) -> Result<OrganizationRow> {
        self.new_organization(input).await
    }

    /// Creates an organization; `created_by` becomes its first member with the creator role,
    /// in the same transaction.
    pub(crate) async fn new_organization(&self, input: NewOrganization) -> Result<OrganizationRow> {
        let name = normalize_name(&input.name).map_err(field_error)?;
        let slug = match input.slug.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => normalize_slug(s).map_err(field_error)?,
            None => self.free_slug(&name).await?,
        };
        if let Some(creator) = &input.created_by {
            self.user(creator).await.map_err(|_| {
                ServiceError::unprocessable("resource_not_found", "created_by names no user").param("created_by")
            })?;
        }
        let now = self.now();
        let org = OrganizationRow {
            id: self.new_id(IdKind::Organization),
            name,
            slug,
            image_url: None,
            public_metadata: match &input.public_metadata {
                Some(v) => metadata_param(v, "public_metadata")?,
                None => "{}".into(),
            },
            private_metadata: match &input.private_metadata {
                Some(v) => metadata_param(v, "private_metadata")?,
                None => "{}".into(),
            },
            max_allowed_memberships: limit_param(
                input.max_allowed_memberships.unwrap_or(self.config.organizations.max_allowed_memberships),
            )?,
            admin_delete_enabled: input.admin_delete_enabled.unwrap_or(self.config.organizations.admin_delete_enabled),
            created_by: input.created_by.clone(),
            created_at: now,
            updated_at: now,
        };
        let first =
            input.created_by.as_ref().map(|user_id| self.new_membership(&org.id, user_id, &self.creator_role()));
        let mut events = vec![self.organization_event("organization.created", &org)];
        if let Some(m) = &first {
            events.push(self.membership_event("organizationMembership.created", m, &org).await?);
        }
        self.emitting(events).create_organization(&org, first.as_ref()).await.map_err(slug_conflict)?;
        tracing::info!(organization_id = %org.id, "organization created");
        Ok(org)
    }

    fn creator_role(&self) -> String {
        with_org_prefix(&self.config.organizations.creator_role)
    }

    /// Members change the profile (name, slug) only; limits and metadata are the operator's.
    pub async fn update_organization(
        &self,
        access: &dyn OrgAccess,
        update: OrganizationUpdate,
    ) -> Result<OrganizationRow> {
        let id_or_slug = access.allow(PROFILE_MANAGE)?;
        if access.member().is_some() {
            let privileged = [
                ("max_allowed_memberships", update.max_allowed_memberships.is_some()),
                ("admin_delete_enabled", update.admin_delete_enabled.is_some()),
                ("public_metadata", update.public_metadata.is_some()),
                ("private_metadata", update.private_metadata.is_some()),
            ];
            if let Some((param, _)) = privileged.iter().find(|(_, given)| *given) {
                return Err(ServiceError::bad_request(
                    "form_param_unknown",
                    format!("{param} is not a valid parameter for this request."),
                ));
            }
        }
        let mut org = self.organization(id_or_slug).await?;
        if let Some(name) = &update.name {
            org.name = normalize_name(name).map_err(field_error)?;
        }
        if let Some(slug) = &update.slug {
            org.slug = normalize_slug(slug).map_err(field_error)?;
        }
        if let Some(n) = update.max_allowed_memberships {
            org.max_allowed_memberships = limit_param(n)?;
        }
        if let Some(b) = update.admin_delete_enabled {
            org.admin_delete_enabled = b;
        }
        if let Some(v) = &update.public_metadata {
            org.public_metadata = metadata_param(v, "public_metadata")?;
        }
        if let Some(v) = &update.private_metadata {
            org.private_metadata = metadata_param(v, "private_metadata")?;
        }
        org.updated_at = self.now();
        let event = self.organization_event("organization.updated", &org);
        self.emitting(vec![event]).update_organization(&org).await.map_err(slug_conflict)?;
        Ok(org)
    }

    /// Deep-merges (`merge`) or replaces the organization's public and private metadata.
    pub async fn update_organization_metadata(
        &self,
        access: &OperatorOrg,
        change: MetadataChange,
        merge: bool,
    ) -> Result<OrganizationRow> {
        let mut org = self.organization(access.allow(PROFILE_MANAGE)?).await?;
        let apply = |stored: &str, patch: &Value, param: &'static str| apply_metadata(stored, patch, param, merge);
        if let Some(v) = &change.public_metadata {
            org.public_metadata = apply(&org.public_metadata, v, "public_metadata")?;
        }
        if let Some(v) = &change.private_metadata {
            org.private_metadata = apply(&org.private_metadata, v, "private_metadata")?;
        }
        org.updated_at = self.now();
        let event = self.organization_event("organization.updated", &org);
        self.emitting(vec![event]).update_organization(&org).await?;
        Ok(org)
    }

    /// Deletes the organization with its memberships and invitations. A member may only
    /// where the organization allows its admins to (`admin_delete_enabled`).
    pub async fn delete_organization(&self, access: &dyn OrgAccess) -> Result<OrganizationRow> {
        let org = self.organization(access.allow(PROFILE_DELETE)?).await?;
        if access.member().is_some() && !org.admin_delete_enabled {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "organization_deletion_not_allowed",
                "Deleting this organization is turned off.",
            ));
        }
        let event = self.event("organization.deleted", crate::resources::deleted_organization(&org));
        if !self.emitting(vec![event]).delete_organization(&org.id).await? {
            return Err(ServiceError::not_found("Organization"));
        }
        tracing::info!(organization_id = %org.id, "organization deleted");
        Ok(org)
    }
}
