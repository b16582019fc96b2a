//! The hosted profile page (`/user`): the signed-in person's name, email addresses, password,
//! two-step verification and sessions, each change a form post with the CSRF token. A change
//! that needs a recent check of the person ("reverification") asks for it first (`reverify`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_core::reverification::STRICT;
use latchkey_service::account::ProfileUpdate;
use latchkey_service::ServiceError;

use super::form::PageForm;
use super::html::{self, Page};
use super::{account_data, accounts, org, passkeys, reverify, second_factors};
use super::{csrf_token, redirect, sign_in_first, signed_in, status_of, with_retry_after, PageQuery, Signed};
use crate::fapi::Caller;
use crate::params::Params;
use crate::AppState;

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "profile" => "Profile saved.",
        "email_added" => "Address added. Enter the code we emailed to verify it.",
        "email_verified" => "Address verified.",
        "email_primary" => "Primary address changed.",
        "email_deleted" => "Address removed.",
        "code_sent" => "A new code is on its way.",
        "password" => "Password changed.",
        "session_revoked" => "Session signed out.",
        "account_removed" => "Account disconnected.",
        "account_connected" => "Account connected.",
        "org_selected" => "Active organization changed.",
        "org_left" => "You left the organization.",
        "org_deleted" => "Organization deleted.",
        "invitation_accepted" => "Invitation accepted. Welcome aboard.",
        "totp_added" => "Two-step verification is on.",
        "totp_removed" => "Authenticator app removed. Two-step verification is off.",
        "reverified" => "Thanks, that's confirmed.",
        "reverified_password" => "Thanks, that's confirmed. Enter your passwords again to change it.",
        "reverified_passkey" => "Thanks, that's confirmed. Add or remove the passkey again.",
        "passkey_added" => "Passkey added. You can sign in with it now.",
        "passkey_renamed" => "Passkey renamed.",
        "passkey_removed" => "Passkey removed.",
        _ => return None,
    })
}

pub(super) async fn user_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
    caller: Caller,
) -> Response {
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/user").await;
    };
    // A provider trip that did not connect an account comes back saying why.
    let failed = q.connect_error.as_deref().map(|code| {
        let message = accounts::connect_error_message(code);
        ServiceError::bad_request("external_account_connect_failed", message).long(message)
    });
    let notice = q.notice.as_deref().and_then(notice_text);
    render_user(&state, &headers, &me, notice, failed.as_ref(), StatusCode::OK).await
}

pub(super) async fn render_user(
    state: &AppState,
    headers: &HeaderMap,
    me: &Signed,
    notice: Option<&str>,
    error: Option<&ServiceError>,
    status: StatusCode,
) -> Response {
    let (csrf, cookies) = csrf_token(state, headers);
    let sessions: Vec<_> = (state.account.active_sessions(&me.who).await.unwrap_or_default().into_iter())
        .map(|s| {
            let activity = state.services.activity_of(&s);
            (s, activity)
        })
        .collect();
    let mut page = Page::new("Your account", "").wide();
    if let Some(n) = notice {
        page = page.notice(n);
    }
    if let Some(e) = error {
        page = page.alert(&e.long_message);
    }
    let organizations = org::switcher(state, &csrf, me).await;
    let accounts = accounts::section(state, &csrf, &me.user);
    let security =
        format!("{}{}", passkeys::section(state, &csrf, &me.user), second_factors::section(state, &csrf, &me.user));
    let data = account_data::section(&csrf, &me.user, state.services.config.delete_self_enabled);
    let body = html::user_sections(
        &csrf,
        &me.user,
        &sessions,
        &me.session.id,
        state.services.now(),
        &organizations,
        &accounts,
        &security,
    );
    let res = page.body(body + &data).into_response(status, &cookies);
    match error {
        Some(e) => with_retry_after(res, e),
        None => res,
    }
}

/// Runs a profile action for the signed-in user, then shows the page with a notice or error;
/// an action that needs a recent check asks for it ("Confirm it's you") instead.
pub(super) async fn user_action<F, Fut>(form: PageForm, notice: &'static str, action: F) -> Response
where
    F: FnOnce(AppState, Caller, Params, Signed) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    user_action_then(form, notice, action, || redirect(&format!("/user?notice={notice}"), &[])).await
}

/// [`user_action`], answering `done()` when the action succeeds.
pub(super) async fn user_action_then<F, Fut>(
    form: PageForm,
    notice: &'static str,
    action: F,
    done: impl FnOnce() -> Response,
) -> Response
where
    F: FnOnce(AppState, Caller, Params, Signed) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    let PageForm { state, headers, caller, p } = form;
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/user").await;
    };
    let user_id = me.user.user.id.clone();
    let session_id = me.session.id.clone();
    let who = me.who.clone();
    let client = caller.client.clone();
    match action(state.clone(), caller, p, me).await {
        Ok(()) => done(),
        Err(e) if e.code == reverify::REQUIRED => {
            reverify::ask(&state, &headers, client.as_ref(), &session_id, reverify::Then::after(notice)).await
        }
        Err(e) => {
            let Ok(user) = state.services.users().user(&user_id).await else {
                return redirect("/sign-in", &[]);
            };
            let Ok(session) = state.services.users().session(&session_id).await else {
                return redirect("/sign-in", &[]);
            };
            render_user(&state, &headers, &Signed { session, user, who }, None, Some(&e), status_of(&e)).await
        }
    }
}

pub(super) async fn user_profile(form: PageForm) -> Response {
    user_action(form, "profile", |state, _caller, p, me| async move {
        let update = ProfileUpdate {
            first_name: p.text("first_name"),
            last_name: p.text("last_name"),
            username: p.text("username"),
            ..Default::default()
        };
        state.account.update_profile(&me.who, update).await.map(|_| ())
    })
    .await
}

pub(super) async fn user_add_email(form: PageForm) -> Response {
    user_action(form, "email_added", |state, caller, p, me| async move {
        state.account.add_email(&caller.ctx, &me.who, &p.text("email_address").unwrap_or_default()).await.map(|_| ())
    })
    .await
}

pub(super) async fn user_verify_email(Path(id): Path<String>, form: PageForm) -> Response {
    user_action(form, "email_verified", |state, caller, p, me| async move {
        let code = p.text("code").unwrap_or_default();
        state.account.attempt_email_verification(&caller.ctx, &me.who, &id, &code).await.map(|_| ())
    })
    .await
}

pub(super) async fn user_resend_email(Path(id): Path<String>, form: PageForm) -> Response {
    user_action(form, "code_sent", |state, caller, _p, me| async move {
        state.account.prepare_email_verification(&caller.ctx, &me.who, &id).await.map(|_| ())
    })
    .await
}

pub(super) async fn user_primary_email(Path(id): Path<String>, form: PageForm) -> Response {
    user_action(form, "email_primary", |state, _caller, _p, me| async move {
        let update = ProfileUpdate { primary_email_address_id: Some(id), ..Default::default() };
        state.account.update_profile(&me.who, update).await.map(|_| ())
    })
    .await
}

pub(super) async fn user_delete_email(Path(id): Path<String>, form: PageForm) -> Response {
    user_action(form, "email_deleted", |state, _caller, _p, me| async move {
        state.account.delete_email(&me.who, &id).await
    })
    .await
}

pub(super) async fn user_password(form: PageForm) -> Response {
    user_action(form, "password", |state, caller, p, me| async move {
        let keep = p.flag("sign_out_of_other_sessions").then_some(me.session.id.as_str());
        let current = p.text("current_password");
        let new = p.text("new_password").unwrap_or_default();
        let recent = state.services.users().reverified(&me.who, STRICT).await?;
        state.account.change_password(&caller.ctx, &recent, current.as_deref(), &new, keep).await.map(|_| ())
    })
    .await
}

pub(super) async fn user_revoke_session(Path(id): Path<String>, form: PageForm) -> Response {
    user_action(form, "session_revoked", |state, _caller, _p, me| async move {
        state.account.revoke_own_session(&me.who, &id).await.map(|_| ())
    })
    .await
}
