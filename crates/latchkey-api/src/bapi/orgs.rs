//! Organizations (`clerkClient.organizations.*`): organizations, their memberships and
//! metadata, organization invitations, the instance-wide membership list and a user's
//! memberships. Lists are `{data, total_count}` (docs/backend-api.md §2).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use latchkey_service::admin::MetadataChange;
use latchkey_service::orgs::{NewOrganization, OrgInvitationInput, OrganizationUpdate};
use latchkey_service::ServiceError;
use latchkey_store::{MembershipQuery, MembershipRow, OrgOrder, OrgQuery, OrganizationRow};
use serde_json::{json, Value};

use super::input::{Body, BodyList, Query};
use super::openapi::{paginated_of, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::org_json::{self, Audience, MembershipContext};
use crate::AppState;

const WHO: Audience = Audience::Backend;

pub fn operations() -> Vec<Operation> {
    let metadata = json!({"public_metadata": {"type": "object"}, "private_metadata": {"type": "object"}});
    let org_fields = json!({
        "name": {"type": "string", "minLength": 1, "maxLength": 256}, "slug": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 64},
        "max_allowed_memberships": {"type": "integer", "minimum": 0}, "admin_delete_enabled": {"type": "boolean"},
        "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"},
    });
    let mut create_fields = org_fields.clone();
    if let Value::Object(m) = &mut create_fields {
        m.insert("created_by".into(), json!({"type": "string"}));
    }
    let invitation = json!({
        "email_address": {"type": "string"}, "role": {"type": "string"}, "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 365},
        "inviter_user_id": {"type": "string"}, "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"},
        "redirect_url": {"type": "string"},
    });
    let org = "/v1/organizations/{organization_id}";
    vec![
        Operation {
            method: Method::GET,
            path: "/v1/organizations",
            route: get(list_organizations),
            doc: Doc::new("organizations", "List organizations (newest first unless order_by says otherwise)", "ListOrganizations")
                .query("query", json!({"type": "string"}))
                .query_list("organization_id")
                .query("include_members_count", json!({"type": "boolean"}))
                .query("order_by", json!({"enum": ["created_at", "+created_at", "-created_at", "name", "+name", "-name", "members_count", "+members_count", "-members_count"]}))
                .paging()
                .ok_schema(paginated_of("Organization")),
        },
        Operation {
            method: Method::POST,
            path: "/v1/organizations",
            route: post(create_organization),
            doc: Doc::new("organizations", "Create an organization; created_by becomes its admin", "CreateOrganization")
                .body(create_fields, &["name"])
                .ok("Organization"),
        },
        Operation {
            method: Method::GET,
            path: org,
            route: get(get_organization),
            doc: Doc::new("organizations", "Get an organization by id or slug", "GetOrganization")
                .path("organization_id")
                .query("include_members_count", json!({"type": "boolean"}))
                .ok("Organization"),
        },
        Operation {
            method: Method::PATCH,
            path: org,
            route: patch(update_organization),
            doc: Doc::new("organizations", "Update an organization", "UpdateOrganization")
                .path("organization_id")
                .body(org_fields, &[])
                .ok("Organization"),
        },
        Operation {
            method: Method::DELETE,
            path: org,
            route: delete(delete_organization),
            doc: Doc::new("organizations", "Delete an organization with its memberships and invitations", "DeleteOrganization")
                .path("organization_id")
                .ok("DeletedObject"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/organizations/{organization_id}/metadata",
            route: patch(merge_metadata),
            doc: Doc::new("organizations", "Deep-merge an organization's metadata (null deletes a key)", "MergeOrganizationMetadata")
                .path("organization_id")
                .body(metadata.clone(), &[])
                .ok("Organization"),
        },
        Operation {
            method: Method::PUT,
            path: "/v1/organizations/{organization_id}/metadata",
            route: put(replace_metadata),
            doc: Doc::new("organizations", "Replace an organization's metadata", "ReplaceOrganizationMetadata")
                .path("organization_id")
                .body(metadata.clone(), &[])
                .ok("Organization"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/organizations/{organization_id}/memberships",
            route: get(list_memberships),
            doc: Doc::new("organization_memberships", "List an organization's members, newest first by default", "ListOrganizationMemberships")
                .path("organization_id")
                .query_list("user_id")
                .query_list("role")
                .query("order_by", json!({"enum": ["created_at", "+created_at", "-created_at"]}))
                .paging()
                .ok_schema(paginated_of("OrganizationMembership")),
        },
        Operation {
            method: Method::POST,
            path: "/v1/organizations/{organization_id}/memberships",
            route: post(create_membership),
            doc: Doc::new("organization_memberships", "Add a user to an organization", "CreateOrganizationMembership")
                .path("organization_id")
                .body(json!({"user_id": {"type": "string"}, "role": {"type": "string"}}), &["user_id"])
                .ok("OrganizationMembership"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/organizations/{organization_id}/memberships/{user_id}",
            route: patch(update_membership),
            doc: Doc::new("organization_memberships", "Change a member's role", "UpdateOrganizationMembership")
                .path("organization_id")
                .path("user_id")
                .body(json!({"role": {"type": "string"}}), &["role"])
                .ok("OrganizationMembership"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/organizations/{organization_id}/memberships/{user_id}",
            route: delete(delete_membership),
            doc: Doc::new("organization_memberships", "Remove a member (the last admin stays)", "DeleteOrganizationMembership")
                .path("organization_id")
                .path("user_id")
                .ok("OrganizationMembership"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/organizations/{organization_id}/memberships/{user_id}/metadata",
            route: patch(membership_metadata),
            doc: Doc::new("organization_memberships", "Deep-merge a membership's metadata", "UpdateOrganizationMembershipMetadata")
                .path("organization_id")
                .path("user_id")
                .body(metadata, &[])
                .ok("OrganizationMembership"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/organization_memberships",
            route: get(instance_memberships),
            doc: Doc::new("organization_memberships", "Every membership of the instance", "InstanceGetOrganizationMemberships")
                .query("order_by", json!({"enum": ["created_at", "+created_at", "-created_at"]}))
                .paging()
                .ok_schema(paginated_of("OrganizationMembership")),
        },
        Operation {
            method: Method::GET,
            path: "/v1/organizations/{organization_id}/invitations",
            route: get(list_invitations),
            doc: Doc::new("organization_invitations", "List an organization's invitations, newest first", "ListOrganizationInvitations")
                .path("organization_id")
                .query_list("status")
                .paging()
                .ok_schema(paginated_of("OrganizationInvitation")),
        },
        Operation {
            method: Method::POST,
            path: "/v1/organizations/{organization_id}/invitations",
            route: post(create_invitation),
            doc: Doc::new("organization_invitations", "Invite someone to an organization by email", "CreateOrganizationInvitation")
                .path("organization_id")
                .body(invitation.clone(), &["email_address"])
                .ok("OrganizationInvitation"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/organizations/{organization_id}/invitations/bulk",
            route: post(create_invitations),
            doc: Doc::new("organization_invitations", "Create several invitations at once (all or none)", "CreateOrganizationInvitationBulk")
                .path("organization_id")
                .body_schema(json!({"type": "array", "maxItems": 100, "items": {"type": "object", "properties": invitation, "required": ["email_address"]}}))
                .ok_schema(paginated_of("OrganizationInvitation")),
        },
        Operation {
            method: Method::GET,
            path: "/v1/organizations/{organization_id}/invitations/{organization_invitation_id}",
            route: get(get_invitation),
            doc: Doc::new("organization_invitations", "Get an organization invitation", "GetOrganizationInvitation")
                .path("organization_id")
                .path("organization_invitation_id")
                .ok("OrganizationInvitation"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/organizations/{organization_id}/invitations/{organization_invitation_id}/revoke",
            route: post(revoke_invitation),
            doc: Doc::new("organization_invitations", "Revoke a pending organization invitation", "RevokeOrganizationInvitation")
                .path("organization_id")
                .path("organization_invitation_id")
                .body(json!({"requesting_user_id": {"type": "string"}}), &[])
                .ok("OrganizationInvitation"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/users/{user_id}/organization_memberships",
            route: get(user_memberships),
            doc: Doc::new("users", "A user's organization memberships", "UsersGetOrganizationMemberships")
                .path("user_id")
                .paging()
                .ok_schema(paginated_of("OrganizationMembership")),
        },
    ]
}

/// `(descending, field)` of an `order_by` such as `-created_at` or `+name`.
fn order(q: &Query, allowed: &[&str]) -> Result<(bool, String), ApiError> {
    let raw = q.one("order_by").unwrap_or_else(|| "-created_at".into());
    let (descending, field) = match raw.strip_prefix('-') {
        Some(f) => (true, f.to_owned()),
        None => (false, raw.trim_start_matches('+').to_owned()),
    };
    if !allowed.contains(&field.as_str()) {
        return Err(ApiError(
            ServiceError::unprocessable(
                "form_param_value_invalid",
                format!("order_by must be one of {}, with an optional + or - prefix", allowed.join(", ")),
            )
            .param("order_by"),
        ));
    }
    Ok((descending, field))
}

async fn render_orgs(state: &AppState, orgs: &[OrganizationRow], with_counts: bool) -> Result<Vec<Value>, ApiError> {
    let counts = if with_counts {
        state.orgs.organization_counts(&orgs.iter().map(|o| o.id.clone()).collect::<Vec<_>>()).await?
    } else {
        Default::default()
    };
    Ok(orgs.iter().map(|o| org_json::organization(state, o, counts.get(&o.id).copied(), WHO)).collect())
}

async fn render_org(state: &AppState, org: &OrganizationRow, with_counts: bool) -> Result<Response, ApiError> {
    let mut list = render_orgs(state, std::slice::from_ref(org), with_counts).await?;
    ok(list.pop().unwrap_or(Value::Null))
}

async fn list_organizations(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let (descending, field) = order(&q, &["created_at", "name", "members_count"])?;
    let order_by = match field.as_str() {
        "name" => OrgOrder::Name,
        "members_count" => OrgOrder::MembersCount,
        _ => OrgOrder::CreatedAt,
    };
    let query = OrgQuery {
        query: q.one("query"),
        ids: q.all("organization_id"),
        order_by,
        descending,
        limit,
        offset,
        ..Default::default()
    };
    let (rows, total) = state.orgs.list_organizations(query).await?;
    let data = render_orgs(&state, &rows, q.flag("include_members_count")?).await?;
    ok(views::paginated(data, total))
}

fn metadata_change(b: &Body) -> Result<MetadataChange, ApiError> {
    Ok(MetadataChange {
        public_metadata: b.value("public_metadata"),
        private_metadata: b.value("private_metadata"),
        unsafe_metadata: None,
    })
}

async fn create_organization(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    b: Body,
) -> Result<Response, ApiError> {
    let input = NewOrganization {
        name: b.required_string("name")?,
        slug: b.string("slug")?,
        created_by: b.string("created_by")?.filter(|s| !s.is_empty()),
        max_allowed_memberships: b.int("max_allowed_memberships")?,
        admin_delete_enabled: b.bool("admin_delete_enabled")?,
        public_metadata: b.value("public_metadata"),
        private_metadata: b.value("private_metadata"),
    };
    let org = state.orgs.create_organization(&op, input).await?;
    render_org(&state, &org, false).await
}

async fn get_organization(
    State(state): State<AppState>,
    _: SecretKey,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let org = state.orgs.organization(&id).await?;
    render_org(&state, &org, q.flag("include_members_count")?).await
}

async fn update_organization(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let update = OrganizationUpdate {
        name: b.string("name")?,
        slug: b.string("slug")?,
        max_allowed_memberships: b.int("max_allowed_memberships")?,
        admin_delete_enabled: b.bool("admin_delete_enabled")?,
        public_metadata: b.value("public_metadata"),
        private_metadata: b.value("private_metadata"),
    };
    let org = state.orgs.update_organization(&op.organization(&id), update).await?;
    render_org(&state, &org, false).await
}

async fn merge_metadata(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let org = state.orgs.update_organization_metadata(&op.organization(&id), metadata_change(&b)?, true).await?;
    render_org(&state, &org, false).await
}

async fn replace_metadata(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let org = state.orgs.update_organization_metadata(&op.organization(&id), metadata_change(&b)?, false).await?;
    render_org(&state, &org, false).await
}

async fn delete_organization(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let org = state.orgs.delete_organization(&op.organization(&id)).await?;
    ok(org_json::deleted_organization(&org))
}

async fn render_memberships(state: &AppState, rows: &[MembershipRow], total: i64) -> Result<Response, ApiError> {
    let ctx = MembershipContext::load(state, rows).await?;
    ok(views::paginated(ctx.render_all(state, rows, WHO), total))
}

async fn render_membership(state: &AppState, m: &MembershipRow) -> Result<Response, ApiError> {
    let ctx = MembershipContext::load(state, std::slice::from_ref(m)).await?;
    ok(ctx.render(state, m, WHO))
}

async fn list_memberships(
    State(state): State<AppState>,
    _: SecretKey,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    // Newest first unless asked otherwise, as @clerk/backend documents.
    let (descending, _) = order(&q, &["created_at"])?;
    let org = state.orgs.organization(&id).await?;
    let query = MembershipQuery {
        organization_id: Some(org.id),
        user_ids: q.all("user_id"),
        roles: q.all("role"),
        descending,
        limit,
        offset,
    };
    let (rows, total) = state.orgs.list_memberships(query).await?;
    render_memberships(&state, &rows, total).await
}

async fn create_membership(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let user_id = b.required_string("user_id")?;
    let m = state.orgs.add_member(&op.organization(&id), &user_id, b.string("role")?.as_deref()).await?;
    render_membership(&state, &m).await
}

async fn update_membership(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((id, user_id)): Path<(String, String)>,
    b: Body,
) -> Result<Response, ApiError> {
    let m = state.orgs.set_member_role(&op.organization(&id), &user_id, &b.required_string("role")?).await?;
    render_membership(&state, &m).await
}

async fn membership_metadata(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((id, user_id)): Path<(String, String)>,
    b: Body,
) -> Result<Response, ApiError> {
    let m = state.orgs.update_membership_metadata(&op.organization(&id), &user_id, metadata_change(&b)?).await?;
    render_membership(&state, &m).await
}

async fn delete_membership(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let m = state.orgs.remove_member(&op.organization(&id), &user_id).await?;
    render_membership(&state, &m).await
}

async fn instance_memberships(State(state): State<AppState>, _: SecretKey, q: Query) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let (descending, _) = order(&q, &["created_at"])?;
    let (rows, total) =
        state.orgs.list_memberships(MembershipQuery { descending, limit, offset, ..Default::default() }).await?;
    render_memberships(&state, &rows, total).await
}

async fn user_memberships(
    State(state): State<AppState>,
    _: SecretKey,
    Path(user_id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    state.services.users().user(&user_id).await?;
    let query = MembershipQuery { user_ids: vec![user_id], limit, offset, ..Default::default() };
    let (rows, total) = state.orgs.list_memberships(query).await?;
    render_memberships(&state, &rows, total).await
}

fn invitation_input(b: &Body) -> Result<OrgInvitationInput, ApiError> {
    Ok(OrgInvitationInput {
        email_address: b.required_string("email_address")?,
        role: b.string("role")?.filter(|r| !r.is_empty()),
        inviter_user_id: b.string("inviter_user_id")?.filter(|s| !s.is_empty()),
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        expires_in_days: b.int("expires_in_days")?,
    })
}

async fn list_invitations(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let (limit, offset) = q.paging()?;
    let (rows, total) = state.orgs.list_org_invitations(&op.organization(&id), &q.all("status"), limit, offset).await?;
    let data = org_json::invitations(&state, &rows, None, WHO).await?;
    ok(views::paginated(data, total))
}

async fn create_invitation(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let (row, url) = state.orgs.invite_to_organization(&op.organization(&id), invitation_input(&b)?).await?;
    ok(org_json::invitation(&state, &row, Some(&url), WHO).await?)
}

/// Every entry is checked before any is created, so a bad entry creates nothing.
async fn create_invitations(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    BodyList(entries): BodyList,
) -> Result<Response, ApiError> {
    let inputs = entries.iter().map(invitation_input).collect::<Result<Vec<_>, _>>()?;
    let org = state.orgs.organization(&id).await?;
    for input in &inputs {
        state.orgs.check_org_invitation(&org, input).await?;
    }
    let mut created = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (row, url) = state.orgs.invite_to_organization(&op.organization(&org.id), input).await?;
        created.push(org_json::invitation(&state, &row, Some(&url), WHO).await?);
    }
    let n = created.len() as i64;
    ok(views::paginated(created, n))
}

async fn get_invitation(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((id, inv)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    ok(org_json::invitation(&state, &state.orgs.org_invitation(&op.organization(&id), &inv).await?, None, WHO).await?)
}

async fn revoke_invitation(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path((id, inv)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    ok(org_json::invitation(&state, &state.orgs.revoke_org_invitation(&op.organization(&id), &inv).await?, None, WHO)
        .await?)
}
