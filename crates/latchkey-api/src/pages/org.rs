//! Hosted organization pages: the switcher on `/user` (memberships, the personal account,
//! pending invitations, creating an organization) and `/organization` for the session's active
//! organization (profile, members and their roles, invitations, leave, delete). Each action is
//! the Frontend API's: the caller's membership must hold the permission it needs, and what a
//! member may not do is not offered.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_core::authz::{MEMBERSHIPS_MANAGE, MEMBERSHIPS_READ, PROFILE_DELETE, PROFILE_MANAGE};
use latchkey_service::orgs::{OrgActor, OrgInvitationInput, OrganizationUpdate};
use latchkey_service::ServiceError;
use latchkey_store::MembershipQuery;

use super::form::PageForm;
use super::html::{button_form, esc, hidden, Page};
use super::{csrf_token, redirect, sign_in_first, signed_in, status_of, with_retry_after, PageQuery, Signed};
use crate::fapi::Caller;
use crate::params::Params;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/user/organizations/select", post(select))
        .route("/user/invitations/{id}/accept", post(accept))
        .route("/organization", get(organization_page))
        .route("/organization/create", post(create))
        .route("/organization/profile", post(profile))
        .route("/organization/members/{user_id}/role", post(change_role))
        .route("/organization/members/{user_id}/remove", post(remove))
        .route("/organization/invitations", post(invite))
        .route("/organization/invitations/{id}/revoke", post(revoke))
        .route("/organization/leave", post(leave))
        .route("/organization/delete", post(delete))
}

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "created" => "Organization created. It is now your active organization.",
        "profile" => "Organization saved.",
        "role" => "Role changed.",
        "removed" => "Member removed.",
        "invited" => "Invitation sent.",
        "revoked" => "Invitation revoked.",
        "left" => "You left the organization.",
        "deleted" => "Organization deleted.",
        _ => return None,
    })
}

/// The organizations section of `/user`: switch, accept invitations, create.
pub async fn switcher(state: &AppState, csrf: &str, me: &Signed) -> String {
    let s = &state.orgs;
    let joined = s.user_organizations(&me.user.user.id).await.unwrap_or_default();
    let invitations = s.invitations_for_user(&me.who).await.unwrap_or_default();
    let active = me.session.active_org_id.as_deref();
    let select = |org: &str, label: &str| {
        format!(
            r#"<form method="post" action="/user/organizations/select">{}<input type="hidden" name="organization_id" value="{}"><button class="secondary" type="submit">{}</button></form>"#,
            hidden(csrf),
            esc(org),
            esc(label)
        )
    };
    let mut items = String::new();
    let personal_action =
        if active.is_none() { r#"<span class="badge">Active</span>"#.to_owned() } else { select("", "Switch") };
    items.push_str(&format!(r#"<li><span>Personal account</span><span class="actions">{personal_action}</span></li>"#));
    for (m, org) in &joined {
        let action = if active == Some(org.id.as_str()) {
            r#"<span class="badge">Active</span> <a href="/organization">Manage</a>"#.to_owned()
        } else {
            select(&org.id, "Switch")
        };
        items.push_str(&format!(
            r#"<li><span>{} <span class="badge">{}</span></span><span class="actions">{action}</span></li>"#,
            esc(&org.name),
            esc(&s.role_name(&m.role))
        ));
    }
    let orgs = s
        .organizations_by_id(&invitations.iter().map(|i| i.organization_id.clone()).collect::<Vec<_>>())
        .await
        .unwrap_or_default();
    let mut invited = String::new();
    for i in &invitations {
        let name = orgs.get(&i.organization_id).map_or("an organization", |o| o.name.as_str());
        invited.push_str(&format!(
            r#"<li><span>Invited to {} as {}</span><span class="actions">{}</span></li>"#,
            esc(name),
            esc(&s.role_name(&i.role)),
            button_form(&format!("/user/invitations/{}/accept", i.id), csrf, "Accept", "primary")
        ));
    }
    let invited = if invited.is_empty() {
        String::new()
    } else {
        format!(r#"<h3>Invitations</h3><ul class="items">{invited}</ul>"#)
    };
    format!(
        r#"<section class="card" aria-labelledby="org-h"><h2 id="org-h">Organizations</h2><ul class="items">{items}</ul>{invited}{}</section>"#,
        create_form(state, csrf)
    )
}

fn create_form(state: &AppState, csrf: &str) -> String {
    if !state.services.config.organizations.enabled {
        return String::new();
    }
    format!(
        r#"<form method="post" action="/organization/create">{}
<div class="row"><div><label for="org-name">New organization</label><input id="org-name" name="name" type="text" required maxlength="256"></div>
<div><label for="org-slug">Slug (optional)</label><input id="org-slug" name="slug" type="text" pattern="[a-z0-9]+(-[a-z0-9]+)*" maxlength="64"></div></div>
<button class="primary" type="submit">Create organization</button></form>"#,
        hidden(csrf)
    )
}

async fn organization_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
    caller: Caller,
) -> Response {
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/organization").await;
    };
    render(&state, &headers, &me, q.notice.as_deref().and_then(notice_text), None, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    me: &Signed,
    notice: Option<&str>,
    error: Option<&ServiceError>,
    status: StatusCode,
) -> Response {
    let (csrf, cookies) = csrf_token(state, headers);
    let actor = match me.session.active_org_id.as_deref() {
        Some(org) => state.orgs.org_actor(&me.who, org).await.ok(),
        None => None,
    };
    let title = actor.as_ref().map_or("Organization".to_owned(), |a| a.org().name.clone());
    let mut page = Page::new(&title, "").wide();
    if let Some(n) = notice {
        page = page.notice(n);
    }
    if let Some(e) = error {
        page = page.alert(&e.long_message);
    }
    let body = match &actor {
        Some(a) => sections(state, &csrf, a).await,
        None => format!(
            r#"<div class="top"><a href="/user">Your account</a></div><section class="card"><h2>No active organization</h2><p>Choose one on <a href="/user">your account page</a>, or create one.</p>{}</section>"#,
            create_form(state, &csrf)
        ),
    };
    let res = page.body(body).into_response(status, &cookies);
    match error {
        Some(e) => with_retry_after(res, e),
        None => res,
    }
}

fn role_options(state: &AppState, selected: &str) -> String {
    state
        .orgs
        .roles()
        .iter()
        .map(|r| {
            let sel = if r.key == selected { " selected" } else { "" };
            format!(r#"<option value="{}"{sel}>{}</option>"#, esc(&r.key), esc(&r.name))
        })
        .collect()
}

async fn sections(state: &AppState, csrf: &str, a: &OrgActor) -> String {
    let s = &state.orgs;
    let manage = a.can(MEMBERSHIPS_MANAGE);
    let mut out = format!(
        r#"<div class="top"><a href="/user">Your account</a><span class="badge">{}</span></div>"#,
        esc(&s.role_name(&a.membership().role))
    );

    if a.can(PROFILE_MANAGE) {
        out.push_str(&format!(
            r#"<section class="card" aria-labelledby="oprof-h"><h2 id="oprof-h">Profile</h2><form method="post" action="/organization/profile">{}
<div class="row"><div><label for="oname">Name</label><input id="oname" name="name" type="text" value="{}" required maxlength="256"></div>
<div><label for="oslug">Slug</label><input id="oslug" name="slug" type="text" value="{}" pattern="[a-z0-9]+(-[a-z0-9]+)*" maxlength="64"></div></div>
<button class="primary" type="submit">Save</button></form></section>"#,
            hidden(csrf),
            esc(&a.org().name),
            esc(&a.org().slug)
        ));
    }

    if a.can(MEMBERSHIPS_READ) {
        let query = MembershipQuery { organization_id: Some(a.org().id.clone()), limit: 500, ..Default::default() };
        let (members, total) = s.list_memberships(query).await.unwrap_or_default();
        let users = s.member_users(&members).await.unwrap_or_default();
        // Another member's address only for a viewer whose organization invited it.
        let known = s.addresses_known_to(a).await.unwrap_or_default();
        let mut items = String::new();
        for m in &members {
            let who = users.get(&m.user_id).map(|u| {
                let name = [u.user.first_name.as_deref(), u.user.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                let id = latchkey_service::resources::primary_email(u)
                    .filter(|e| m.user_id == a.user_id() || known.contains(e))
                    .or_else(|| u.user.username.clone());
                match (name.is_empty(), id) {
                    (false, Some(id)) => format!("{name} ({id})"),
                    (false, None) => name,
                    (true, Some(id)) => id,
                    (true, None) => "A member".to_owned(),
                }
            });
            let who = who.unwrap_or_else(|| m.user_id.clone());
            let you = if m.user_id == a.user_id() { r#" <span class="badge">You</span>"# } else { "" };
            let actions = if manage {
                format!(
                    r#"<form method="post" action="/organization/members/{id}/role" class="inline">{h}<label class="sr-only" for="role-{id}">Role</label><select id="role-{id}" name="role">{opts}</select><button class="secondary" type="submit">Change role</button></form>{remove}"#,
                    id = esc(&m.user_id),
                    h = hidden(csrf),
                    opts = role_options(state, &m.role),
                    remove = if m.user_id == a.user_id() {
                        String::new()
                    } else {
                        button_form(&format!("/organization/members/{}/remove", m.user_id), csrf, "Remove", "danger")
                    },
                )
            } else {
                format!(r#"<span class="badge">{}</span>"#, esc(&s.role_name(&m.role)))
            };
            items.push_str(&format!(
                r#"<li><span>{}{you}</span><span class="actions">{actions}</span></li>"#,
                esc(&who)
            ));
        }
        out.push_str(&format!(
            r#"<section class="card" aria-labelledby="mem-h"><h2 id="mem-h">Members ({total})</h2><ul class="items">{items}</ul></section>"#
        ));
    }

    if manage {
        let (invitations, _) = s.list_org_invitations(a, &["pending".into()], 100, 0).await.unwrap_or_default();
        let mut items = String::new();
        for i in &invitations {
            items.push_str(&format!(
                r#"<li><span>{} <span class="badge">{}</span></span><span class="actions">{}</span></li>"#,
                esc(&i.email),
                esc(&s.role_name(&i.role)),
                button_form(&format!("/organization/invitations/{}/revoke", i.id), csrf, "Revoke", "danger")
            ));
        }
        if items.is_empty() {
            items.push_str("<li><span>No pending invitations.</span></li>");
        }
        out.push_str(&format!(
            r#"<section class="card" aria-labelledby="inv-h"><h2 id="inv-h">Invitations</h2><ul class="items">{items}</ul>
<form method="post" action="/organization/invitations">{}<div class="row"><div><label for="inv-email">Invite by email</label><input id="inv-email" name="email_address" type="email" required autocomplete="off"></div>
<div><label for="inv-role">Role</label><select id="inv-role" name="role">{}</select></div></div>
<button class="primary" type="submit">Send invitation</button></form></section>"#,
            hidden(csrf),
            role_options(state, &state.services.config.organizations.default_role)
        ));
    }

    let mut danger = button_form("/organization/leave", csrf, "Leave organization", "danger");
    if a.can(PROFILE_DELETE) && a.org().admin_delete_enabled {
        danger.push_str(&button_form("/organization/delete", csrf, "Delete organization", "danger"));
    }
    out.push_str(&format!(r#"<section class="card" aria-labelledby="dz-h"><h2 id="dz-h">Leave or delete</h2><div class="actions">{danger}</div></section>"#));
    out
}

/// Runs an action on the active organization as its member, then shows the page again.
async fn org_action<F, Fut>(form: PageForm, notice: &'static str, action: F) -> Response
where
    F: FnOnce(AppState, Caller, Params, OrgActor) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    let PageForm { state, headers, caller, p } = form;
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/organization").await;
    };
    let Some(org) = me.session.active_org_id.clone() else {
        return redirect("/organization", &[]);
    };
    let outcome = match state.orgs.org_actor(&me.who, &org).await {
        Ok(actor) => action(state.clone(), caller, p, actor).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => redirect(&format!("/organization?notice={notice}"), &[]),
        Err(e) => render(&state, &headers, &me, None, Some(&e), status_of(&e)).await,
    }
}

async fn profile(form: PageForm) -> Response {
    org_action(form, "profile", |state, _, p, a| async move {
        let update = OrganizationUpdate { name: p.text("name"), slug: p.text("slug"), ..Default::default() };
        state.orgs.update_organization(&a, update).await.map(|_| ())
    })
    .await
}

async fn change_role(Path(user_id): Path<String>, form: PageForm) -> Response {
    org_action(form, "role", |state, _, p, a| async move {
        state.orgs.set_member_role(&a, &user_id, &p.text("role").unwrap_or_default()).await.map(|_| ())
    })
    .await
}

async fn remove(Path(user_id): Path<String>, form: PageForm) -> Response {
    org_action(
        form,
        "removed",
        |state, _, _, a| async move { state.orgs.remove_member(&a, &user_id).await.map(|_| ()) },
    )
    .await
}

async fn invite(form: PageForm) -> Response {
    org_action(form, "invited", |state, caller, p, a| async move {
        a.require(MEMBERSHIPS_MANAGE)?;
        state.orgs.member_invitations_allowed(&caller.ctx, &a, 1).await?;
        let input = OrgInvitationInput {
            email_address: p.text("email_address").unwrap_or_default(),
            role: p.text("role").filter(|r| !r.is_empty()),
            inviter_user_id: Some(a.user_id().to_owned()),
            ..Default::default()
        };
        state.orgs.invite_to_organization(&a, input).await.map(|_| ())
    })
    .await
}

async fn revoke(Path(id): Path<String>, form: PageForm) -> Response {
    org_action(
        form,
        "revoked",
        |state, _, _, a| async move { state.orgs.revoke_org_invitation(&a, &id).await.map(|_| ()) },
    )
    .await
}

/// Leaving or deleting ends on `/user`, since there is no active organization left to show.
async fn leave(form: PageForm) -> Response {
    let res =
        org_action(form, "left", |state, _, _, a| async move { state.orgs.leave_organization(&a).await.map(|_| ()) })
            .await;
    to_user_page_on_success(res, "left")
}

async fn delete(form: PageForm) -> Response {
    let res =
        org_action(
            form,
            "deleted",
            |state, _, _, a| async move { state.orgs.delete_organization(&a).await.map(|_| ()) },
        )
        .await;
    to_user_page_on_success(res, "deleted")
}

fn to_user_page_on_success(res: Response, notice: &str) -> Response {
    if res.status() == StatusCode::SEE_OTHER {
        redirect(&format!("/user?notice=org_{notice}"), &[])
    } else {
        res
    }
}

/// Actions of `/user` about organizations: they redirect back to it.
async fn user_org_action<F, Fut>(form: PageForm, notice: &str, action: F) -> Response
where
    F: FnOnce(AppState, Caller, Params, Signed) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    let PageForm { state, caller, p, .. } = form;
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/user").await;
    };
    match action(state.clone(), caller, p, me).await {
        Ok(()) => redirect(&format!("/user?notice={notice}"), &[]),
        Err(e) => {
            let page = Page::new("Organizations", "")
                .alert(&e.long_message)
                .body(r#"<p><a href="/user">Back to your account</a></p>"#.into());
            with_retry_after(page.into_response(status_of(&e), &[]), &e)
        }
    }
}

async fn select(form: PageForm) -> Response {
    user_org_action(form, "org_selected", |state, caller, p, me| async move {
        let Some(client) = caller.client else {
            return Err(ServiceError::unauthenticated("You are signed out."));
        };
        let org = p.text("organization_id").filter(|o| !o.is_empty());
        state.services.touch_session(&client, &me.session.id, Some(org)).await.map(|_| ())
    })
    .await
}

async fn accept(Path(id): Path<String>, form: PageForm) -> Response {
    user_org_action(form, "invitation_accepted", |state, _, _, me| async move {
        state.orgs.accept_org_invitation(&me.who, &id).await.map(|_| ())
    })
    .await
}

/// Creates an organization and makes it the session's active one.
async fn create(form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/organization").await;
    };
    let name = p.text("name").unwrap_or_default();
    let slug = p.text("slug").filter(|s| !s.trim().is_empty());
    let outcome = match state.orgs.create_own_organization(&me.who, &name, slug).await {
        Ok(org) => match caller.client.as_ref() {
            Some(client) => state.services.touch_session(client, &me.session.id, Some(Some(org.id))).await.map(|_| ()),
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => redirect("/organization?notice=created", &[]),
        Err(e) => render(&state, &headers, &me, None, Some(&e), status_of(&e)).await,
    }
}
