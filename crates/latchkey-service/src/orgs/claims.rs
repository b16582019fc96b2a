//! What the session's active organization puts in session tokens (the `o` and `fea` claims)
//! and in templates.

use latchkey_core::authz::{self, pack_permissions, role_permissions};
use latchkey_store::{MembershipRow, OrganizationRow, SessionRow};
use latchkey_token::{OrgClaim, V1OrgClaims};
use serde_json::Value;

use super::OrgService;
use crate::error::Result;

impl OrgService {
    /// The v2 `o` and `fea` claims for the session's active organization, read fresh for every
    /// token so that a role change or a removal shows in the next one, and the v1 claims when
    /// the instance adds them. `None` when the session has no active organization or its user is
    /// no longer a member.
    pub(crate) async fn org_claims(
        &self,
        session: &SessionRow,
        org_id: Option<&str>,
    ) -> Result<Option<(OrgClaim, String, V1OrgClaims)>> {
        let Some((membership, org)) = self.membership_in(&session.user_id, org_id).await? else {
            return Ok(None);
        };
        let roles = self.current_roles().await?;
        let permissions = role_permissions(&roles, &membership.role);
        let packed = pack_permissions(permissions);
        let v1 = if self.config.organizations.v1_token_claims {
            V1OrgClaims {
                org_id: Some(org.id.clone()),
                org_slug: Some(org.slug.clone()),
                org_role: Some(membership.role.clone()),
                // Clerk's v1 tokens list the app's own permissions, not the system ones.
                org_permissions: Some(
                    permissions.iter().filter(|p| !authz::is_system_permission(p)).cloned().collect(),
                ),
            }
        } else {
            V1OrgClaims::default()
        };
        let claim = OrgClaim {
            id: org.id,
            slg: org.slug,
            rol: membership.role.trim_start_matches("org:").to_owned(),
            per: packed.per,
            fpm: packed.fpm,
        };
        Ok(Some((claim, packed.fea.join(","), v1)))
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
        let roles = self.current_roles().await?;
        let permissions: Vec<String> =
            role_permissions(&roles, &m.role).iter().filter(|p| !authz::is_system_permission(p)).cloned().collect();
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
