//! Clerk's `setup-mfa` session task on the hosted pages (`/sign-in/tasks/setup-mfa`, the route
//! Clerk's components use). Under `[second_factors] policy = "required"` a user without a
//! second factor gets a pending session (docs/second-factors.md): every sign-in or sign-up of
//! the pages that ends with one comes here instead of going on to the app, and so does `/user`.
//! The page says the application requires two-step verification and walks through adding an
//! authenticator app with the pieces of `/user`'s section (`second_factors`): the QR code, the
//! key, a code of the app, then the backup codes once. Verifying the app finishes the task (the
//! service makes the session active); the cookies are minted again so the session token no
//! longer says pending, and the person goes on to the `redirect_url`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_service::authority::Client;

use super::form::PageForm;
use super::html::{button_form, esc, hidden, Page};
use super::second_factors::{codes_page, enrol_page, retry_page, secret_page, six_digits, Done, Enrol};
use super::{csrf_token, redirect, safe_redirect, signed_in_any, status_of, with_redirect, with_retry_after, Signed};
use crate::fapi::{client_state, Caller};
use crate::AppState;

const PATH: &str = "/sign-in/tasks/setup-mfa";
const START: &str = "/sign-in/tasks/setup-mfa/totp";
const VERIFY: &str = "/sign-in/tasks/setup-mfa/verify";
const TITLE: &str = "Set up two-step verification";
const WHY: &str =
    "This application requires two-step verification. Add an authenticator app to your account to continue.";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(page)).route(START, post(start)).route(VERIFY, post(verify))
}

/// The task's page, with the `redirect_url` to go on to once it is done.
pub(super) fn path(redirect_url: Option<&str>) -> String {
    with_redirect(PATH, redirect_url)
}

/// Whether the client's current session waits for its task (so it is not for the app yet).
pub(super) async fn due(state: &AppState, client: &Client) -> bool {
    let Ok(fresh) = state.services.refreshed_client(client).await else {
        return false;
    };
    let Some(sid) = fresh.last_active_session_id.as_deref() else {
        return false;
    };
    state.services.signed_in(&fresh, sid).await.is_ok_and(|(_, session)| session.pending_task.is_some())
}

#[derive(serde::Deserialize, Default)]
struct TaskQuery {
    redirect_url: Option<String>,
}

/// The signed-in caller with the task still to do; otherwise where they go instead: to sign in
/// (signed out), or on to the destination (nothing left to do).
async fn pending(state: &AppState, caller: &Caller, redirect_url: Option<&str>) -> Result<Signed, Response> {
    match signed_in_any(state, caller).await {
        None => Err(redirect(&with_redirect("/sign-in", redirect_url), &[])),
        Some(me) if me.session.pending_task.is_none() => Err(redirect(redirect_url.unwrap_or("/user"), &[])),
        Some(me) => Ok(me),
    }
}

/// The way out of the task: signing out (the session cannot be used for anything else).
fn leave(csrf: &str) -> String {
    format!(
        r#"<div class="foot"><span class="hint">Not now?</span> {}</div>"#,
        button_form("/sign-out", csrf, "Sign out", "link")
    )
}

fn links(csrf: &str, redirect_url: Option<&str>) -> Enrol {
    Enrol {
        verify: with_redirect(VERIFY, redirect_url),
        restart: with_redirect(START, redirect_url),
        leave: leave(csrf),
    }
}

async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TaskQuery>,
    caller: Caller,
) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let me = match pending(&state, &caller, redirect_url.as_deref()).await {
        Ok(me) => me,
        Err(res) => return res,
    };
    let (csrf, cookies) = csrf_token(&state, &headers);
    let u = &me.user;
    let primary = u.emails.iter().find(|e| u.user.primary_email_id.as_deref() == Some(e.id.as_str()));
    let who = primary.map(|e| e.email.clone()).or_else(|| u.user.username.clone()).unwrap_or_default();
    Page::new(TITLE, WHY)
        .body(format!(
            r#"<p class="hint">Signed in as <strong>{who}</strong>. After your password, signing in will also ask for a code from an app on your phone (1Password, Google Authenticator, Authy…), so a stolen password alone is not enough.</p>
<form method="post" action="{action}">{csrf_field}<button class="primary" type="submit">Add an authenticator app</button></form>
{leave}"#,
            who = esc(&who),
            action = esc(&with_redirect(START, redirect_url.as_deref())),
            csrf_field = hidden(&csrf),
            leave = leave(&csrf),
        ))
        .into_response(StatusCode::OK, &cookies)
}

/// A new key for the app, shown once (a new one each time: an unverified key is replaced).
async fn start(Query(q): Query<TaskQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, .. } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let me = match pending(&state, &caller, redirect_url.as_deref()).await {
        Ok(me) => me,
        Err(res) => return res,
    };
    let (csrf, cookies) = csrf_token(&state, &headers);
    match state.account.create_totp(&me.who).await {
        Ok(totp) => {
            let page = enrol_page(&csrf, &totp, &links(&csrf, redirect_url.as_deref())).notice(WHY);
            secret_page(page, StatusCode::OK, &cookies)
        }
        Err(e) => {
            let page = Page::new(TITLE, WHY).alert(&e.long_message).body(leave(&csrf));
            with_retry_after(page.into_response(status_of(&e), &cookies), &e)
        }
    }
}

/// The app's code: the app is on, the task is done and the session active. The backup codes
/// are shown once, then the person goes on to where they were going.
async fn verify(Query(q): Query<TaskQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let me = match pending(&state, &caller, redirect_url.as_deref()).await {
        Ok(me) => me,
        Err(res) => return res,
    };
    let (csrf, mut cookies) = csrf_token(&state, &headers);
    let to = links(&csrf, redirect_url.as_deref());
    let code = match six_digits(&p.text("code").unwrap_or_default()) {
        Ok(code) => code,
        Err(e) => return retry_page(&csrf, &e, &to),
    };
    let done = match state.account.verify_totp(&caller.ctx, &me.who, &code).await {
        Ok(done) => done,
        // No app waiting for its code (never started, or started over in another tab).
        Err(e) if e.code == "resource_not_found" => return redirect(&path(redirect_url.as_deref()), &[]),
        Err(e) => return retry_page(&csrf, &e, &to),
    };
    // The session is active now: new cookies, so its token no longer says pending.
    if let Some(client) = caller.client.as_ref() {
        match client_state(&state, &caller.ctx, client).await {
            Ok((_, c)) => cookies.extend(c),
            Err(e) => {
                return Page::new(TITLE, "").alert(&e.0.long_message).into_response(e.status(), &cookies);
            }
        }
    }
    let next = redirect_url.as_deref().unwrap_or("/user");
    match done.backup_codes {
        Some(codes) => {
            let done = Done { href: next, label: "I saved them: continue" };
            codes_page(&state, &codes, "Two-step verification is on.", &done, &cookies)
        }
        None => redirect(next, &cookies),
    }
}
