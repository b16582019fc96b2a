//! Invitations by email: creating (with a link shown once), listing, revoking and accepting
//! them, and accepting them at sign-up.

use std::collections::HashSet;

use latchkey_core::authz::{with_org_prefix, MEMBERSHIPS_MANAGE};
use latchkey_core::ids::IdKind;
use latchkey_core::secret::{new_opaque_secret, secret_digest};
use latchkey_core::session::DAY_MS;
use latchkey_store::{MembershipRow, OrgInvitationRow, OrganizationRow, StoreError};
use serde_json::Value;

use crate::authority::{OrgAccess, SignedIn};
use crate::error::{Result, ServiceError};
use crate::identity::email_param;
use crate::params::{metadata_param, paging};
use crate::tickets::invitation_statuses;
use crate::RequestContext;

use super::OrgService;

use super::{membership_quota, OrgActor, OrgInvitationInput};

impl OrgService {
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
            Some(r) => self.role_param(r).await?,
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
        access: &dyn OrgAccess,
        input: OrgInvitationInput,
    ) -> Result<(OrgInvitationRow, String)> {
        let org = self.organization(access.allow(MEMBERSHIPS_MANAGE)?).await?;
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
        let event = self.invitation_event("organizationInvitation.created", &row).await?;
        self.emitting(vec![event]).insert_org_invitation(&row).await?;
        let url = self.invitation_url(&token);
        let app = &self.config.app_name;
        self.postman.send(
            &email,
            &format!("You are invited to join {} on {app}", org.name),
            format!(
                "You have been invited to join {} on {app}.\n\nSign up with this address to join; if you already have an account (with this address or another), sign in and open the link to join with it:\n{url}\n\nThe invitation expires in {days} days.\n",
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
        if !viewer.permissions().iter().any(|p| p == MEMBERSHIPS_MANAGE) {
            return Ok(HashSet::new());
        }
        let (invited, _) = self.store.list_org_invitations(&viewer.org().id, &[], 10_000, 0).await?;
        Ok(invited.into_iter().map(|i| i.email).collect())
    }

    /// Counts the mail of `count` invitations a member sends (Frontend API, hosted pages)
    /// against their and their IP address's mail budget; refused past either.
    pub async fn member_invitations_allowed(&self, ctx: &RequestContext, inviter: &OrgActor, count: u32) -> Result<()> {
        self.budgets.mail_budget(ctx, Some(inviter.user_id()), count).await
    }

    /// One of the organization's invitations, for whoever manages its members.
    pub async fn org_invitation(&self, access: &dyn OrgAccess, invitation_id: &str) -> Result<OrgInvitationRow> {
        self.invitation_of(access.allow(MEMBERSHIPS_MANAGE)?, invitation_id).await
    }

    async fn invitation_of(&self, org_id: &str, invitation_id: &str) -> Result<OrgInvitationRow> {
        let org = self.organization(org_id).await?;
        match self.store.get_org_invitation(invitation_id).await? {
            Some(i) if i.organization_id == org.id => Ok(i),
            _ => Err(ServiceError::not_found("Organization invitation")),
        }
    }

    /// An invitation by id, whatever its organization; `None` when there is none.
    pub async fn find_org_invitation(&self, invitation_id: &str) -> Result<Option<OrgInvitationRow>> {
        Ok(self.store.get_org_invitation(invitation_id).await?)
    }

    /// Who was invited is the membership managers' business, as in Clerk.
    pub async fn list_org_invitations(
        &self,
        access: &dyn OrgAccess,
        statuses: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<OrgInvitationRow>, i64)> {
        let org_id = access.allow(MEMBERSHIPS_MANAGE)?;
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

    pub async fn revoke_org_invitation(&self, access: &dyn OrgAccess, invitation_id: &str) -> Result<OrgInvitationRow> {
        let mut inv = self.invitation_of(access.allow(MEMBERSHIPS_MANAGE)?, invitation_id).await?;
        let status = self.org_invitation_status(&inv).to_owned();
        if status != "pending" {
            return Err(ServiceError::bad_request(
                "invitation_not_pending",
                format!("This invitation is {status} and can no longer be revoked."),
            ));
        }
        inv.status = "revoked".into();
        inv.updated_at = self.now();
        let event = self.invitation_event("organizationInvitation.revoked", &inv).await?;
        self.emitting(vec![event]).update_org_invitation(&inv).await?;
        Ok(inv)
    }

    /// Live pending invitations addressed to any of the user's verified addresses.
    pub async fn invitations_for_user(&self, who: &SignedIn) -> Result<Vec<OrgInvitationRow>> {
        self.invitations_to(who.user_id()).await
    }

    async fn invitations_to(&self, user_id: &str) -> Result<Vec<OrgInvitationRow>> {
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
    pub async fn accept_org_invitation(&self, who: &SignedIn, invitation_id: &str) -> Result<MembershipRow> {
        let user_id = who.user_id();
        let inv = self
            .invitations_to(user_id)
            .await?
            .into_iter()
            .find(|i| i.id == invitation_id)
            .ok_or_else(|| ServiceError::not_found("Organization invitation"))?;
        self.accept(&inv, user_id).await
    }

    /// The live invitation an invitation link (`__clerk_ticket`) carries, with its
    /// organization, to show before accepting. docs/SECURITY.md, "Organizations".
    pub async fn invitation_for_link(&self, ticket: &str) -> Result<(OrgInvitationRow, OrganizationRow)> {
        let invalid = || {
            ServiceError::unprocessable("ticket_invalid", "This invitation link is invalid or has expired.")
                .long("The invitation is unknown, already accepted, revoked or expired. Ask for a new invitation.")
                .param("ticket")
        };
        if ticket.is_empty() || ticket.len() > 256 {
            return Err(invalid());
        }
        let inv = self.store.org_invitation_by_token_digest(&secret_digest(ticket)).await?.ok_or_else(invalid)?;
        if self.org_invitation_status(&inv) != "pending" {
            return Err(invalid());
        }
        let org = self.organization(&inv.organization_id).await?;
        Ok((inv, org))
    }

    /// Accepts the invitation a link carries for the signed-in user, whatever address they
    /// signed in with: the link was mailed to the invited address, so holding it is the proof
    /// a sign-up with it would give. Valid once (the store moves it out of `pending` once).
    pub async fn accept_invitation_link(
        &self,
        who: &SignedIn,
        ticket: &str,
    ) -> Result<(OrganizationRow, MembershipRow)> {
        let (inv, org) = self.invitation_for_link(ticket).await?;
        // A member already: the invitation stays for whoever it was meant for.
        if self.store.get_membership(&org.id, who.user_id()).await?.is_some() {
            return Err(ServiceError::unprocessable(
                "already_a_member_in_organization",
                "You are already a member of this organization.",
            )
            .param("ticket"));
        }
        let membership = self.accept(&inv, who.user_id()).await?;
        Ok((org, membership))
    }

    async fn accept(&self, inv: &OrgInvitationRow, user_id: &str) -> Result<MembershipRow> {
        let org = self.organization(&inv.organization_id).await?;
        let mut m = self.new_membership(&org.id, user_id, &inv.role);
        m.public_metadata = inv.public_metadata.clone();
        m.private_metadata = inv.private_metadata.clone();
        let mut accepted = inv.clone();
        accepted.status = "accepted".into();
        accepted.updated_at = self.now();
        let mut events = vec![self.invitation_event("organizationInvitation.accepted", &accepted).await?];
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
        let invitations = match self.invitations_to(user_id).await {
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
}
