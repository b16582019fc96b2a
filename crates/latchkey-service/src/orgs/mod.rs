//! Organizations, their members with one role each, and invitations by email (Clerk's model,
//! clerk-compat.md §2–§4). The trusted functions here serve the Backend API and the CLI as
//! they are; the Frontend API and the hosted pages reach them only through an [`OrgActor`],
//! the caller's own membership, which must hold the system permission an action needs.

use std::collections::{HashMap, HashSet};

use latchkey_core::authz::{
    self, has, pack_permissions, role_permissions, with_org_prefix, AuthState, Check, Role, ADMIN_ROLE,
    MEMBERSHIPS_MANAGE,
};
use latchkey_core::ids::IdKind;
use latchkey_core::org::{normalize_name, normalize_slug, slugify, OrgFieldProblem};
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_core::session::DAY_MS;
use latchkey_store::{
    MembershipQuery, MembershipRow, OrgCounts, OrgInvitationRow, OrgQuery, OrganizationRow, SessionRow, StoreError,
    UserQuery, UserRecord,
};
use latchkey_token::OrgClaim;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::{apply_metadata, merge_metadata, metadata_param, paging, MetadataChange};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::identity::email_param;
use crate::tickets::invitation_statuses;
use crate::{RequestContext, Services};

/// `[organizations]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrganizationConfig {
    pub enabled: bool,
    /// Members a new organization may have; 0 means no limit.
    pub max_allowed_memberships: i64,
    /// Whether admins may delete their organization (per organization, this is its default).
    pub admin_delete_enabled: bool,
    /// Organizations one user may create; 0 means no limit (a user's own limit wins).
    pub create_limit_per_user: i64,
    /// The role of whoever creates an organization.
    pub creator_role: String,
    /// The role invitations and new members get unless one is given.
    pub default_role: String,
    pub invitation_expiry_days: i64,
    /// The app's own permissions (`org:<feature>:<action>`); `org:admin` holds them all.
    pub permissions: Vec<String>,
    pub roles: Vec<RoleConfig>,
}

impl Default for OrganizationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_allowed_memberships: 0,
            admin_delete_enabled: true,
            create_limit_per_user: 0,
            creator_role: ADMIN_ROLE.into(),
            default_role: authz::MEMBER_ROLE.into(),
            invitation_expiry_days: 30,
            permissions: Vec::new(),
            roles: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RoleConfig {
    pub key: String,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
}

impl OrganizationConfig {
    /// The instance's roles; an error names what is wrong with the configuration.
    pub fn roles(&self) -> std::result::Result<Vec<Role>, String> {
        let specs: Vec<authz::RoleSpec> = self
            .roles
            .iter()
            .map(|r| authz::RoleSpec {
                key: r.key.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                permissions: r.permissions.clone(),
            })
            .collect();
        let roles = authz::instance_roles(&self.permissions, &specs)?;
        for (what, key) in [("creator_role", &self.creator_role), ("default_role", &self.default_role)] {
            if !roles.iter().any(|r| r.key == with_org_prefix(key)) {
                return Err(format!("organizations.{what} {key:?} is not a role of this instance"));
            }
        }
        if !(1..=365).contains(&self.invitation_expiry_days) {
            return Err("organizations.invitation_expiry_days must be between 1 and 365".into());
        }
        Ok(roles)
    }
}

/// The caller's own membership of an organization, and what it allows.
#[derive(Debug, Clone)]
pub struct OrgActor {
    pub user_id: String,
    pub org: OrganizationRow,
    pub membership: MembershipRow,
    /// With the system permissions, which tokens leave out but the server checks.
    pub permissions: Vec<String>,
}

impl OrgActor {
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

impl Services {
    // ---- roles ------------------------------------------------------------------------------

    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The permissions a role grants, system permissions included.
    pub fn permissions_of(&self, role: &str) -> Vec<String> {
        role_permissions(&self.roles, role).to_vec()
    }

    pub fn role_name(&self, role: &str) -> String {
        self.roles
            .iter()
            .find(|r| r.key == role)
            .map_or_else(|| role.trim_start_matches("org:").to_owned(), |r| r.name.clone())
    }

    /// A role named with or without `org:` that the instance defines.
    pub fn role_param(&self, role: &str) -> Result<String> {
        let key = with_org_prefix(role.trim());
        if self.roles.iter().any(|r| r.key == key) {
            Ok(key)
        } else {
            Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                format!("{role:?} is not a role of this instance"),
            )
            .long(format!(
                "The roles are: {}.",
                self.roles.iter().map(|r| r.key.as_str()).collect::<Vec<_>>().join(", ")
            ))
            .param("role"))
        }
    }

    /// Writes the instance's roles to the store, so the database describes itself.
    /// Writes the configured roles; a role that is new or changed since the last start is
    /// announced (`role.created`, `role.updated`, and `permission.created` for permissions
    /// no stored role had).
    pub async fn seed_roles(&self) -> Result<()> {
        let now = self.now();
        let stored = self.store.list_org_roles().await?;
        let known: std::collections::HashSet<String> = stored
            .iter()
            .flat_map(|r| serde_json::from_str::<Vec<String>>(&r.permissions).unwrap_or_default())
            .collect();
        let mut announced = std::collections::HashSet::new();
        for r in &self.roles {
            let permissions = serde_json::to_string(&r.permissions).unwrap_or_else(|_| "[]".into());
            let before = stored.iter().find(|s| s.key == r.key);
            let mut events = Vec::new();
            match before {
                None => events.push(self.event("role.created", crate::resources::role(r))),
                Some(b) if b.name != r.name || b.description != r.description || b.permissions != permissions => {
                    events.push(self.event("role.updated", crate::resources::role(r)))
                }
                Some(_) => {}
            }
            for p in r.permissions.iter().filter(|p| !known.contains(*p) && announced.insert((*p).clone())) {
                let kind = if latchkey_core::authz::is_system_permission(p) { "system" } else { "user" };
                events.push(self.event(
                    "permission.created",
                    serde_json::json!({"object": "permission", "id": format!("perm_{}", p.trim_start_matches("org:").replace(':', "_")), "key": p, "name": p, "description": "", "type": kind}),
                ));
            }
            let row = latchkey_store::OrgRoleRow {
                key: r.key.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                permissions,
                created_at: before.map_or(now, |b| b.created_at),
                updated_at: now,
            };
            if events.is_empty() {
                self.store.upsert_org_role(&row).await?;
            } else {
                self.emitting(events).upsert_org_role(&row).await?;
            }
        }
        Ok(())
    }

    // ---- reading ----------------------------------------------------------------------------

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

    pub async fn list_memberships(&self, mut query: MembershipQuery) -> Result<(Vec<MembershipRow>, i64)> {
        (query.limit, query.offset) = paging(query.limit, query.offset)?;
        query.roles = query.roles.iter().map(|r| with_org_prefix(r)).collect();
        Ok(self.store.list_memberships(&query).await?)
    }

    /// The users behind memberships, by id (one query).
    pub async fn member_users(&self, memberships: &[MembershipRow]) -> Result<HashMap<String, UserRecord>> {
        if memberships.is_empty() {
            return Ok(HashMap::new());
        }
        let mut ids: Vec<String> = memberships.iter().map(|m| m.user_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let query = UserQuery { limit: ids.len() as i64, user_ids: ids, ..Default::default() };
        Ok(self.store.query_users(&query).await?.into_iter().map(|u| (u.user.id.clone(), u)).collect())
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

    /// The user's memberships with their organizations, oldest first.
    pub async fn user_organizations(&self, user_id: &str) -> Result<Vec<(MembershipRow, OrganizationRow)>> {
        Ok(self.store.organizations_of_user(user_id).await?)
    }

    pub async fn membership(&self, org_id: &str, user_id: &str) -> Result<MembershipRow> {
        self.store.get_membership(org_id, user_id).await?.ok_or_else(member_not_found)
    }

    // ---- organizations ------------------------------------------------------------------------

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

    /// Creates an organization; `created_by` becomes its first member with the creator role,
    /// in the same transaction.
    pub async fn create_organization(&self, input: NewOrganization) -> Result<OrganizationRow> {
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

    fn new_membership(&self, org_id: &str, user_id: &str, role: &str) -> MembershipRow {
        let now = self.now();
        MembershipRow {
            id: self.new_id(IdKind::Membership),
            organization_id: org_id.to_owned(),
            user_id: user_id.to_owned(),
            role: role.to_owned(),
            public_metadata: "{}".into(),
            private_metadata: "{}".into(),
            created_at: now,
            updated_at: now,
        }
    }

    pub async fn update_organization(&self, id_or_slug: &str, update: OrganizationUpdate) -> Result<OrganizationRow> {
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
        id_or_slug: &str,
        change: MetadataChange,
        merge: bool,
    ) -> Result<OrganizationRow> {
        let mut org = self.organization(id_or_slug).await?;
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

    /// Deletes the organization with its memberships and invitations.
    pub async fn delete_organization(&self, id_or_slug: &str) -> Result<OrganizationRow> {
        let org = self.organization(id_or_slug).await?;
        let event = self.event("organization.deleted", crate::resources::deleted_organization(&org));
        if !self.emitting(vec![event]).delete_organization(&org.id).await? {
            return Err(ServiceError::not_found("Organization"));
        }
        tracing::info!(organization_id = %org.id, "organization deleted");
        Ok(org)
    }

    // ---- memberships ------------------------------------------------------------------------------

    pub async fn add_member(&self, org_id: &str, user_id: &str, role: Option<&str>) -> Result<MembershipRow> {
        let org = self.organization(org_id).await?;
        let role = match role {
            Some(r) => self.role_param(r)?,
            None => with_org_prefix(&self.config.organizations.default_role),
        };
        self.user(user_id)
            .await
            .map_err(|_| ServiceError::unprocessable("resource_not_found", "user_id names no user").param("user_id"))?;
        let already = || {
            ServiceError::unprocessable(
                "already_a_member_in_organization",
                "This user is already a member of the organization.",
            )
            .param("user_id")
        };
        // Asked first so that a member of a full organization hears the true reason; the
        // unique index still decides between racing requests.
        if self.store.get_membership(&org.id, user_id).await?.is_some() {
            return Err(already());
        }
        let m = self.new_membership(&org.id, user_id, &role);
        let event = self.membership_event("organizationMembership.created", &m, &org).await?;
        match self.emitting(vec![event]).insert_membership(&m, org.max_allowed_memberships).await {
            Ok(()) => Ok(m),
            Err(StoreError::Conflict(c)) if c == "membership_limit" => Err(membership_quota()),
            Err(StoreError::Conflict(_)) => Err(already()),
            Err(StoreError::NotFound) => Err(ServiceError::not_found("Organization")),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_member_role(&self, org_id: &str, user_id: &str, role: &str) -> Result<MembershipRow> {
        let org = self.organization(org_id).await?;
        let role = self.role_param(role)?;
        let mut m = self.membership(&org.id, user_id).await?;
        m.role = role;
        m.updated_at = self.now();
        self.write_membership(&m, &org).await?;
        Ok(m)
    }

    /// Deep-merges the membership's public and private metadata.
    pub async fn update_membership_metadata(
        &self,
        org_id: &str,
        user_id: &str,
        change: MetadataChange,
    ) -> Result<MembershipRow> {
        let org = self.organization(org_id).await?;
        let mut m = self.membership(&org.id, user_id).await?;
        if let Some(v) = &change.public_metadata {
            m.public_metadata = merge_metadata(&m.public_metadata, v, "public_metadata")?;
        }
        if let Some(v) = &change.private_metadata {
            m.private_metadata = merge_metadata(&m.private_metadata, v, "private_metadata")?;
        }
        m.updated_at = self.now();
        self.write_membership(&m, &org).await?;
        Ok(m)
    }

    async fn write_membership(&self, m: &MembershipRow, org: &OrganizationRow) -> Result<()> {
        let event = self.membership_event("organizationMembership.updated", m, org).await?;
        match self.emitting(vec![event]).update_membership(m, ADMIN_ROLE).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(c)) if c == "last_admin" => Err(last_admin()),
            Err(StoreError::NotFound) => Err(member_not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a member (the last admin of an organization with other members stays).
    pub async fn remove_member(&self, org_id: &str, user_id: &str) -> Result<MembershipRow> {
        let org = self.organization(org_id).await?;
        let m = self.membership(&org.id, user_id).await?;
        let event = self.membership_event("organizationMembership.deleted", &m, &org).await?;
        match self.emitting(vec![event]).delete_membership(&org.id, user_id, ADMIN_ROLE).await {
            Ok(true) => Ok(m),
            Ok(false) => Err(member_not_found()),
            Err(StoreError::Conflict(c)) if c == "last_admin" => Err(last_admin()),
            Err(e) => Err(e.into()),
        }
    }

    // ---- invitations ----------------------------------------------------------------------------

    /// The status an invitation shows now (pending past its expiry shows `expired`).
    pub fn org_invitation_status<'a>(&self, inv: &'a OrgInvitationRow) -> &'a str {
        if inv.status == "pending" && inv.expires_at <= self.now() {
            "expired"
        } else {
            &inv.status
        }
    }

    fn invitation_url(&self, token: &str) -> String {
        format!("{}/sign-up?__clerk_ticket={token}", self.config.issuer.trim_end_matches('/'))
    }

    /// Checks an invitation without creating it (bulk creation checks every entry first).
    pub async fn check_org_invitation(&self, org: &OrganizationRow, input: &OrgInvitationInput) -> Result<()> {
        self.validated_org_invitation(org, input).await.map(|_| ())
    }

    async fn validated_org_invitation(
        &self,
        org: &OrganizationRow,
        input: &OrgInvitationInput,
    ) -> Result<(String, String, i64)> {
        let email = email_param(&input.email_address, "email_address")?;
        let role = match &input.role {
            Some(r) => self.role_param(r)?,
            None => with_org_prefix(&self.config.organizations.default_role),
        };
        let days = input.expires_in_days.unwrap_or(self.config.organizations.invitation_expiry_days);
        if !(1..=365).contains(&days) {
            return Err(ServiceError::unprocessable(
                "form_param_value_invalid",
                "expires_in_days must be between 1 and 365",
            )
            .param("expires_in_days"));
        }
        for v in [&input.public_metadata, &input.private_metadata].into_iter().flatten() {
            metadata_param(v, "public_metadata")?;
        }
        if let Some(uid) = self.store.user_id_by_verified_email(&email).await? {
            if self.store.get_membership(&org.id, &uid).await?.is_some() {
                return Err(ServiceError::unprocessable(
                    "already_a_member_in_organization",
                    "Someone with this email address is already a member.",
                )
                .param("email_address"));
            }
        }
        let now = self.now();
        let duplicate = self
            .store
            .pending_org_invitations_for(&email)
            .await?
            .iter()
            .any(|i| i.organization_id == org.id && i.expires_at > now);
        if duplicate {
            return Err(ServiceError::unprocessable(
                "duplicate_record",
                "There is already a pending invitation for this email address.",
            )
            .param("email_address"));
        }
        Ok((email, role, days))
    }

    /// Invites `email_address` to the organization; returns the invitation with its link
    /// (shown once: the link carries a secret that is stored only as a digest).
    pub async fn invite_to_organization(
        &self,
        org_id: &str,
        input: OrgInvitationInput,
    ) -> Result<(OrgInvitationRow, String)> {
        let org = self.organization(org_id).await?;
        let (email, role, days) = self.validated_org_invitation(&org, &input).await?;
        let now = self.now();
        let token = new_opaque_secret(self.rng.as_ref());
        let row = OrgInvitationRow {
            id: self.new_id(IdKind::OrgInvitation),
            organization_id: org.id.clone(),
            email: email.clone(),
            role,
            status: "pending".into(),
            public_metadata: input.public_metadata.as_ref().map_or_else(|| "{}".into(), Value::to_string),
            private_metadata: input.private_metadata.as_ref().map_or_else(|| "{}".into(), Value::to_string),
            inviter_user_id: input.inviter_user_id.clone(),
            token_digest: secret_digest(&token),
            expires_at: now + days * DAY_MS,
            created_at: now,
            updated_at: now,
        };
        let event = self.invitation_event("organizationInvitation.created", &row);
        self.emitting(vec![event]).insert_org_invitation(&row).await?;
        let url = self.invitation_url(&token);
        let app = &self.config.app_name;
        self.send_mail(
            &email,
            &format!("You are invited to join {} on {app}", org.name),
            format!(
                "You have been invited to join {} on {app}.\n\nSign up with this address to join, or sign in and accept the invitation:\n{url}\n\nThe invitation expires in {days} days.\n",
                org.name
            ),
        );
        tracing::info!(organization_id = %org.id, invitation_id = %row.id, "organization invitation created");
        Ok((row, url))
    }

    /// The member addresses `viewer` already knows: those its organization invited (typed by
    /// its membership managers, who alone see them). Any other member's address stays hidden
    /// from other members (docs/SECURITY.md, "Organizations").
    pub async fn addresses_known_to(&self, viewer: &OrgActor) -> Result<HashSet<String>> {
        if !viewer.permissions.iter().any(|p| p == MEMBERSHIPS_MANAGE) {
            return Ok(HashSet::new());
        }
        let (invited, _) = self.store.list_org_invitations(&viewer.org.id, &[], 10_000, 0).await?;
        Ok(invited.into_iter().map(|i| i.email).collect())
    }

    /// Counts the mail of `count` invitations a member sends (Frontend API, hosted pages)
    /// against their and their IP address's mail budget; refused past either.
    pub async fn member_invitations_allowed(&self, ctx: &RequestContext, inviter: &OrgActor, count: u32) -> Result<()> {
        self.mail_budget(ctx, Some(&inviter.user_id), count).await
    }

    pub async fn org_invitation(&self, org_id: &str, invitation_id: &str) -> Result<OrgInvitationRow> {
        let org = self.organization(org_id).await?;
        match self.store.get_org_invitation(invitation_id).await? {
            Some(i) if i.organization_id == org.id => Ok(i),
            _ => Err(ServiceError::not_found("Organization invitation")),
        }
    }

    pub async fn list_org_invitations(
        &self,
        org_id: &str,
        statuses: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OrgInvitationRow>, i64)> {
        invitation_statuses(statuses)?;
        let (limit, offset) = paging(limit, offset)?;
        let org = self.organization(org_id).await?;
        self.expire_org_invitations(&org.id).await?;
        Ok(self.store.list_org_invitations(&org.id, statuses, limit, offset).await?)
    }

    /// Writes `expired` onto pending invitations past their expiry, so status filters agree
    /// with what is shown.
    async fn expire_org_invitations(&self, org_id: &str) -> Result<()> {
        let now = self.now();
        let (pending, _) = self.store.list_org_invitations(org_id, &["pending".into()], 500, 0).await?;
        for mut inv in pending.into_iter().filter(|i| i.expires_at <= now) {
            inv.status = "expired".into();
            inv.updated_at = now;
            self.store.update_org_invitation(&inv).await?;
        }
        Ok(())
    }

    pub async fn revoke_org_invitation(&self, org_id: &str, invitation_id: &str) -> Result<OrgInvitationRow> {
        let mut inv = self.org_invitation(org_id, invitation_id).await?;
        let status = self.org_invitation_status(&inv).to_owned();
        if status != "pending" {
            return Err(ServiceError::bad_request(
                "invitation_not_pending",
                format!("This invitation is {status} and can no longer be revoked."),
            ));
        }
        inv.status = "revoked".into();
        inv.updated_at = self.now();
        let event = self.invitation_event("organizationInvitation.revoked", &inv);
        self.emitting(vec![event]).update_org_invitation(&inv).await?;
        Ok(inv)
    }

    /// Live pending invitations addressed to any of the user's verified addresses.
    pub async fn invitations_for_user(&self, user_id: &str) -> Result<Vec<OrgInvitationRow>> {
        let user = self.user(user_id).await?;
        let now = self.now();
        let mut out = Vec::new();
        for e in user.emails.iter().filter(|e| e.verified) {
            for inv in self.store.pending_org_invitations_for(&e.email).await? {
                if inv.expires_at > now {
                    out.push(inv);
                }
            }
        }
        Ok(out)
    }

    /// Accepts one invitation addressed to the user: the membership and the status change
    /// land together.
    pub async fn accept_org_invitation(&self, user_id: &str, invitation_id: &str) -> Result<MembershipRow> {
        let inv = self
            .invitations_for_user(user_id)
            .await?
            .into_iter()
            .find(|i| i.id == invitation_id)
            .ok_or_else(|| ServiceError::not_found("Organization invitation"))?;
        self.accept(&inv, user_id).await
    }

    async fn accept(&self, inv: &OrgInvitationRow, user_id: &str) -> Result<MembershipRow> {
        let org = self.organization(&inv.organization_id).await?;
        let mut m = self.new_membership(&org.id, user_id, &inv.role);
        m.public_metadata = inv.public_metadata.clone();
        m.private_metadata = inv.private_metadata.clone();
        let mut accepted = inv.clone();
        accepted.status = "accepted".into();
        accepted.updated_at = self.now();
        let mut events = vec![self.invitation_event("organizationInvitation.accepted", &accepted)];
        if self.store.get_membership(&org.id, user_id).await?.is_none() {
            events.push(self.membership_event("organizationMembership.created", &m, &org).await?);
        }
        match self.emitting(events).accept_org_invitation(inv, &m, org.max_allowed_memberships).await {
            Ok(true) => {
                tracing::info!(invitation_id = %inv.id, organization_id = %org.id, "organization invitation accepted");
                self.membership(&org.id, user_id).await
            }
            Ok(false) => Err(ServiceError::not_found("Organization invitation")),
            Err(StoreError::Conflict(c)) if c == "membership_limit" => Err(membership_quota()),
            Err(e) => Err(e.into()),
        }
    }

    /// At sign-up: every live invitation to the address just proven is accepted (signing up
    /// with the address an invitation went to is the invitee's consent). An existing user who
    /// is invited later accepts explicitly; signing in accepts nothing. One that cannot be
    /// accepted (the organization is full) stays pending. Runs after the sign-up has
    /// committed, so a failure here is logged, never the sign-up's.
    pub(crate) async fn accept_invitations_at_sign_up(&self, user_id: &str) {
        let invitations = match self.invitations_for_user(user_id).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(user_id, code = e.code, "pending organization invitations not checked");
                return;
            }
        };
        for inv in invitations {
            if let Err(e) = self.accept(&inv, user_id).await {
                tracing::info!(invitation_id = %inv.id, code = e.code, "organization invitation left pending");
            }
        }
    }

    // ---- the caller's own organizations ---------------------------------------------------------

    /// The caller's membership of an organization; an organization they are not a member of
    /// is reported as not found, whether it exists or not.
    pub async fn org_actor(&self, user_id: &str, org_id: &str) -> Result<OrgActor> {
        let not_found = || ServiceError::not_found("Organization");
        let org = self.organization(org_id).await.map_err(|_| not_found())?;
        let membership = self.store.get_membership(&org.id, user_id).await?.ok_or_else(not_found)?;
        let permissions = self.permissions_of(&membership.role);
        Ok(OrgActor { user_id: user_id.to_owned(), org, membership, permissions })
    }

    /// Whether the user may create an organization now: the instance allows it, the user's
    /// own setting does, and they are under their limit.
    pub async fn may_create_organization(&self, user_id: &str) -> Result<()> {
        let user = self.user(user_id).await?.user;
        if !self.config.organizations.enabled || !user.create_organization_enabled {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "organization_creation_not_allowed",
                "You are not allowed to create organizations.",
            ));
        }
        let limit = user.create_organizations_limit.unwrap_or(self.config.organizations.create_limit_per_user);
        if limit > 0 {
            let mine = OrgQuery { created_by: Some(user_id.to_owned()), limit: 1, ..Default::default() };
            if self.store.list_organizations(&mine).await?.1 >= limit {
                return Err(ServiceError::new(
                    ErrorKind::Forbidden,
                    "organization_quota_exceeded",
                    format!("You can create at most {limit} organizations."),
                ));
            }
        }
        Ok(())
    }

    /// An organization created by a signed-in user, who becomes its admin.
    pub async fn create_own_organization(
        &self,
        user_id: &str,
        name: &str,
        slug: Option<String>,
    ) -> Result<OrganizationRow> {
        self.may_create_organization(user_id).await?;
        self.create_organization(NewOrganization {
            name: name.to_owned(),
            slug,
            created_by: Some(user_id.to_owned()),
            ..Default::default()
        })
        .await
    }

    /// Leaves an organization (the last admin of an organization with others in it may not).
    pub async fn leave_organization(&self, user_id: &str, org_id: &str) -> Result<MembershipRow> {
        let actor = self.org_actor(user_id, org_id).await?;
        self.remove_member(&actor.org.id, user_id).await
    }

    // ---- tokens --------------------------------------------------------------------------------

    /// The v2 `o` and `fea` claims for the session's active organization, read fresh for every
    /// token so that a role change or a removal shows in the next one. `None` when the session
    /// has no active organization or its user is no longer a member.
    pub(crate) async fn org_claims(
        &self,
        session: &SessionRow,
        org_id: Option<&str>,
    ) -> Result<Option<(OrgClaim, String)>> {
        let Some((membership, org)) = self.membership_in(&session.user_id, org_id).await? else {
            return Ok(None);
        };
        let packed = pack_permissions(role_permissions(&self.roles, &membership.role));
        let claim = OrgClaim {
            id: org.id,
            slg: org.slug,
            rol: membership.role.trim_start_matches("org:").to_owned(),
            per: packed.per,
            fpm: packed.fpm,
        };
        Ok(Some((claim, packed.fea.join(","))))
    }

    /// The user's membership of `org_id` with the organization, if both still exist.
    async fn membership_in(
        &self,
        user_id: &str,
        org_id: Option<&str>,
    ) -> Result<Option<(MembershipRow, OrganizationRow)>> {
        let Some(org_id) = org_id else {
            return Ok(None);
        };
        let Some(membership) = self.store.get_membership(org_id, user_id).await? else {
            return Ok(None);
        };
        Ok(self.store.get_organization(org_id).await?.map(|org| (membership, org)))
    }

    /// What template shortcodes see as `org`.
    pub(crate) async fn org_template_context(&self, session: &SessionRow) -> Result<Value> {
        let empty = serde_json::json!({"id": null, "name": null, "slug": null, "role": null, "image_url": null, "public_metadata": {}, "permissions": []});
        let Some((m, org)) = self.membership_in(&session.user_id, session.active_org_id.as_deref()).await? else {
            return Ok(empty);
        };
        let permissions: Vec<String> =
            self.permissions_of(&m.role).into_iter().filter(|p| !authz::is_system_permission(p)).collect();
        Ok(serde_json::json!({
            "id": org.id,
            "name": org.name,
            "slug": org.slug,
            "role": m.role,
            "image_url": org.image_url.unwrap_or_else(|| format!("{}/avatar.svg", self.config.issuer.trim_end_matches('/'))),
            "public_metadata": Value::Object(latchkey_core::metadata::parse(&org.public_metadata)),
            "membership_metadata": Value::Object(latchkey_core::metadata::parse(&m.public_metadata)),
            "permissions": permissions,
        }))
    }
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
