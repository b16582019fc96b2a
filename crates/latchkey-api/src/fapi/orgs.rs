//! Organizations in the Frontend API (docs/frontend-api.md §10): the signed-in user's
//! memberships and invitations under `/v1/me`, and `/v1/organizations/…` for the
//! organizations they belong to. Every organization route takes the caller's own membership
//! ([`Member`], an extractor): not a member → 404, whether the organization exists or not.
//! The service action asks the membership for the system permission it needs: without it → 403.

use axum::extract::{FromRequestParts, Path, RawPathParams, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_core::authz::{MEMBERSHIPS_MANAGE, MEMBERSHIPS_READ, PROFILE_MANAGE};
use latchkey_service::orgs::{OrgActor, OrgInvitationInput, OrganizationUpdate};
use latchkey_service::{ErrorKind, ServiceError};
use latchkey_store::{MembershipQuery, MembershipRow, OrganizationRow};
use serde_json::{json, Value};

use super::me::Me;
use crate::bapi::input::Query as ListQuery;
use crate::error::ApiError;
use crate::middleware::FRONTEND_ORGS_PREFIX;
use crate::org_json::{self, Audience, MembershipContext};
use crate::params::Params;
use crate::AppState;

const WHO: Audience = Audience::Frontend;

pub fn routes() -> Router<AppState> {
    let p = FRONTEND_ORGS_PREFIX;
    Router::new()
        .route("/v1/me/organization_memberships", get(my_memberships))
        .route("/v1/me/organization_memberships/{org}", axum::routing::delete(leave))
        .route("/v1/me/organization_invitations", get(my_invitations))
        .route("/v1/me/organization_invitations/{id}/accept", post(accept_invitation))
        .route("/v1/me/organization_suggestions", get(empty_list))
        .route(p, post(create_organization))
        .route(&format!("{p}/{{org}}"), get(get_organization).patch(update_organization).delete(delete_organization))
        .route(&format!("{p}/{{org}}/memberships"), get(list_members).post(add_member))
        .route(&format!("{p}/{{org}}/memberships/{{user_id}}"), axum::routing::patch(set_role).delete(remove_member))
        .route(&format!("{p}/{{org}}/invitations"), get(list_invitations).post(invite))
        .route(&format!("{p}/{{org}}/invitations/bulk"), post(invite_many))
        .route(&format!("{p}/{{org}}/invitations/{{id}}/revoke"), post(revoke_invitation))
        .route(&format!("{p}/{{org}}/roles"), get(list_roles))
        // Domains and membership requests are not offered; Clerk's UI fetches them anyway.
        .route(&format!("{p}/{{org}}/domains"), get(empty_member_list))
        .route(&format!("{p}/{{org}}/membership_requests"), get(empty_member_list))
}

fn page(data: Vec<Value>, total: i64) -> Value {
    json!({"data": data, "total_count": total})
}

/// The signed-in caller's membership of the organization in the path (`{org}`): the
/// [`OrgActor`] proof that organization actions take.
struct Member {
    me: Me,
    actor: OrgActor,
}

impl FromRequestParts<AppState> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let me = Me::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError(ServiceError::not_found("Organization")))?;
        let org = params.iter().find(|(k, _)| *k == "org").map(|(_, v)| v.to_owned()).unwrap_or_default();
        let actor = state.orgs.org_actor(&me.who, &org).await?;
        Ok(Self { me, actor })
    }
}

async fn org_body(state: &AppState, org: &OrganizationRow) -> Result<Value, ApiError> {
    let counts = state.orgs.organization_counts(std::slice::from_ref(&org.id)).await?;
    Ok(org_json::organization(state, org, counts.get(&org.id).copied(), WHO))
}

/// The caller's own membership.
async fn own_membership_body(state: &AppState, m: &MembershipRow) -> Result<Value, ApiError> {
    let ctx = MembershipContext::load(state, std::slice::from_ref(m)).await?;
    Ok(ctx.render(state, m, WHO))
}

/// A membership of `viewer`'s organization as they may see it.
async fn membership_body(state: &AppState, viewer: &OrgActor, m: &MembershipRow) -> Result<Value, ApiError> {
    let mut body = [own_membership_body(state, m).await?];
    hide_unknown_addresses(state, viewer, &mut body).await?;
    let [body] = body;
    Ok(body)
}

/// Another member's address is shown only to a viewer who already knew it (their
/// organization invited it); others see the name alone, so a membership never turns a user
/// id into an address or a username, both identifiers to sign in with (docs/SECURITY.md,
/// "Organizations").
async fn hide_unknown_addresses(state: &AppState, viewer: &OrgActor, bodies: &mut [Value]) -> Result<(), ApiError> {
    let known = state.orgs.addresses_known_to(viewer).await?;
    for body in bodies {
        let Some(public) = body.get_mut("public_user_data").and_then(Value::as_object_mut) else {
            continue;
        };
        let own = public.get("user_id").and_then(Value::as_str) == Some(viewer.user_id());
        if !own {
            public.insert("username".into(), Value::Null);
        }
        let address = public.get("identifier").and_then(Value::as_str).filter(|i| i.contains('@'));
        if !own && address.is_some_and(|a| !known.contains(&a.to_lowercase())) {
            public.insert("identifier".into(), Value::String(String::new()));
        }
    }
    Ok(())
}

/// The user's memberships as the Frontend API's user object carries them.
pub async fn memberships_of(state: &AppState, user_id: &str) -> Result<Vec<Value>, ApiError> {
    let joined = state.orgs.user_organizations(user_id).await?;
    if joined.is_empty() {
        return Ok(Vec::new());
    }
    let ms: Vec<MembershipRow> = joined.iter().map(|(m, _)| m.clone()).collect();
    let ctx = MembershipContext::load(state, &ms).await?;
    Ok(ctx.render_all(state, &ms, WHO))
}

async fn my_memberships(State(state): State<AppState>, m: Me, list: ListQuery) -> Result<Response, ApiError> {
    let (limit, offset) = list.paging()?;
    let query = MembershipQuery { user_ids: vec![m.who.user_id().to_owned()], limit, offset, ..Default::default() };
    let (rows, total) = state.orgs.list_memberships(query).await?;
    let ctx = MembershipContext::load(&state, &rows).await?;
    let body = page(ctx.render_all(&state, &rows, WHO), total);
    m.reply(&state, body).await
}

async fn leave(State(state): State<AppState>, member: Member) -> Result<Response, ApiError> {
    let left = state.orgs.leave_organization(&member.actor).await?;
    let body = json!({"object": "organization_membership", "id": left.id, "deleted": true});
    member.me.reply(&state, body).await
}

async fn my_invitations(State(state): State<AppState>, m: Me, list: ListQuery) -> Result<Response, ApiError> {
    let (limit, offset) = list.paging()?;
    // Only live pending invitations can be listed to their invitee; asking for others is empty.
    let statuses = list.all("status");
    let invitations = if statuses.is_empty() || statuses.iter().any(|s| s == "pending") {
        state.orgs.invitations_for_user(&m.who).await?
    } else {
        Vec::new()
    };
    let orgs = state
        .orgs
        .organizations_by_id(&invitations.iter().map(|i| i.organization_id.clone()).collect::<Vec<_>>())
        .await?;
    let total = invitations.len() as i64;
    let data = invitations
        .iter()
        .skip(usize::try_from(offset).unwrap_or(0))
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|i| org_json::user_invitation(&state, i, orgs.get(&i.organization_id)))
        .collect();
    m.reply(&state, page(data, total)).await
}

async fn accept_invitation(State(state): State<AppState>, m: Me, Path(id): Path<String>) -> Result<Response, ApiError> {
    let membership = state.orgs.accept_org_invitation(&m.who, &id).await?;
    let inv = state.orgs.find_org_invitation(&id).await?;
    let orgs = state.orgs.organizations_by_id(std::slice::from_ref(&membership.organization_id)).await?;
    let body = match inv {
        Some(inv) => org_json::user_invitation(&state, &inv, orgs.get(&membership.organization_id)),
        None => own_membership_body(&state, &membership).await?,
    };
    m.reply(&state, body).await
}

async fn empty_list(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    m.reply(&state, page(Vec::new(), 0)).await
}

async fn empty_member_list(State(state): State<AppState>, member: Member) -> Result<Response, ApiError> {
    member.me.reply(&state, page(Vec::new(), 0)).await
}

async fn create_organization(State(state): State<AppState>, m: Me, p: Params) -> Result<Response, ApiError> {
    let name = p.required("name")?;
    let slug = p.text("slug").filter(|s| !s.trim().is_empty());
    let org = state.orgs.create_own_organization(&m.who, &name, slug).await?;
    let body = org_body(&state, &org).await?;
    m.reply(&state, body).await
}

async fn get_organization(State(state): State<AppState>, member: Member) -> Result<Response, ApiError> {
    let body = org_body(&state, member.actor.org()).await?;
    member.me.reply(&state, body).await
}

async fn update_organization(State(state): State<AppState>, member: Member, p: Params) -> Result<Response, ApiError> {
    // Only the profile: limits and metadata belong to the Backend API (a given key is refused
    // even when empty).
    let privileged = ["max_allowed_memberships", "admin_delete_enabled", "public_metadata", "private_metadata"];
    let update = OrganizationUpdate { name: p.text("name"), slug: p.text("slug"), ..Default::default() };
    let org = match privileged.iter().find(|k| p.0.contains_key(**k)) {
        Some(k) => {
            member.actor.require(PROFILE_MANAGE)?;
            return Err(ApiError::bad_request(
                "form_param_unknown",
                format!("{k} is not a valid parameter for this request."),
            ));
        }
        None => state.orgs.update_organization(&member.actor, update).await?,
    };
    let body = org_body(&state, &org).await?;
    member.me.reply(&state, body).await
}

async fn delete_organization(State(state): State<AppState>, member: Member) -> Result<Response, ApiError> {
    let org = state.orgs.delete_organization(&member.actor).await?;
    member.me.reply(&state, org_json::deleted_organization(&org)).await
}

async fn list_members(State(state): State<AppState>, member: Member, list: ListQuery) -> Result<Response, ApiError> {
    let (limit, offset) = list.paging()?;
    let (rows, total) = state.orgs.org_members(&member.actor, list.all("role"), limit, offset).await?;
    let ctx = MembershipContext::load(&state, &rows).await?;
    let mut members = ctx.render_all(&state, &rows, WHO);
    hide_unknown_addresses(&state, &member.actor, &mut members).await?;
    member.me.reply(&state, page(members, total)).await
}

/// Members join by invitation and their own acceptance: a user adds nobody directly (the
/// Backend API, which acts for the operator, still does).
async fn add_member(member: Member) -> Result<Response, ApiError> {
    member.actor.require(MEMBERSHIPS_MANAGE)?;
    Err(ApiError(ServiceError::new(ErrorKind::Forbidden, "not_allowed_access", "Members join by invitation.").long(
        "Invite the person by email address; they join when they accept. Only the Backend API adds members directly.",
    )))
}

async fn set_role(
    State(state): State<AppState>,
    member: Member,
    Path((_, user_id)): Path<(String, String)>,
    p: Params,
) -> Result<Response, ApiError> {
    member.actor.require(MEMBERSHIPS_MANAGE)?;
    let role = p.required("role")?;
    let changed = state.orgs.set_member_role(&member.actor, &user_id, &role).await?;
    let body = membership_body(&state, &member.actor, &changed).await?;
    member.me.reply(&state, body).await
}

async fn remove_member(
    State(state): State<AppState>,
    member: Member,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let removed = state.orgs.remove_member(&member.actor, &user_id).await?;
    let body = membership_body(&state, &member.actor, &removed).await?;
    member.me.reply(&state, body).await
}

async fn list_invitations(
    State(state): State<AppState>,
    member: Member,
    list: ListQuery,
) -> Result<Response, ApiError> {
    let (limit, offset) = list.paging()?;
    let (rows, total) = state.orgs.list_org_invitations(&member.actor, &list.all("status"), limit, offset).await?;
    let data = org_json::invitations(&state, &rows, None, WHO).await?;
    member.me.reply(&state, page(data, total)).await
}

fn invitation_input(actor: &OrgActor, email: String, p: &Params) -> OrgInvitationInput {
    OrgInvitationInput {
        email_address: email,
        role: p.text("role").filter(|r| !r.is_empty()),
        inviter_user_id: Some(actor.user_id().to_owned()),
        ..Default::default()
    }
}

async fn invite(State(state): State<AppState>, member: Member, p: Params) -> Result<Response, ApiError> {
    let Member { me, actor } = member;
    actor.require(MEMBERSHIPS_MANAGE)?;
    let input = invitation_input(&actor, p.required("email_address")?, &p);
    state.orgs.member_invitations_allowed(&me.caller.ctx, &actor, 1).await?;
    let (row, _url) = state.orgs.invite_to_organization(&actor, input).await?;
    me.reply(&state, org_json::invitation(&state, &row, None, WHO).await?).await
}

/// Several addresses with one role; every one is checked before any invitation is sent.
async fn invite_many(State(state): State<AppState>, member: Member, p: Params) -> Result<Response, ApiError> {
    let Member { me, actor } = member;
    actor.require(MEMBERSHIPS_MANAGE)?;
    let emails = p.texts("email_address");
    if emails.is_empty() || emails.len() > 100 {
        return Err(ApiError(
            ServiceError::unprocessable("form_param_missing", "Give 1 to 100 email addresses.").param("email_address"),
        ));
    }
    let inputs: Vec<OrgInvitationInput> = emails.into_iter().map(|e| invitation_input(&actor, e, &p)).collect();
    // Spent before the checks: answers about addresses (a member already?) cost mail budget.
    let count = u32::try_from(inputs.len()).unwrap_or(u32::MAX);
    state.orgs.member_invitations_allowed(&me.caller.ctx, &actor, count).await?;
    for input in &inputs {
        state.orgs.check_org_invitation(actor.org(), input).await?;
    }
    let mut created = Vec::with_capacity(inputs.len());
    for input in inputs {
        let (row, _url) = state.orgs.invite_to_organization(&actor, input).await?;
        created.push(org_json::invitation(&state, &row, None, WHO).await?);
    }
    // clerk-js reads a bare array here.
    me.reply(&state, Value::Array(created)).await
}

async fn revoke_invitation(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let inv = state.orgs.revoke_org_invitation(&member.actor, &id).await?;
    member.me.reply(&state, org_json::invitation(&state, &inv, None, WHO).await?).await
}

async fn list_roles(State(state): State<AppState>, member: Member) -> Result<Response, ApiError> {
    member.actor.require(MEMBERSHIPS_READ)?;
    let roles = state.orgs.role_views().await?;
    let n = roles.len() as i64;
    member.me.reply(&state, page(roles, n)).await
}
