//! The hosted "Forgot password?" path: `/sign-in/forgot` (the address) → `/sign-in/reset` (the
//! mailed code) → `/sign-in/reset/password` (the new password) → signed in. Each step calls the
//! service functions the Frontend API's reset flow calls (docs/frontend-api.md §6), so an
//! unknown address gets the same pages (a decoy attempt), codes spend the same budgets, and the
//! "password changed" notice goes out the same way.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_service::authority::Client;
use latchkey_service::{NewPassword, ServiceError, SignInInput};
use latchkey_store::SignInRow;

use super::form::PageForm;
use super::html::{esc, Page};
use super::{
    csrf_token, finish_signed_in, has_active_session, redirect, safe_redirect, status_of, with_redirect,
    with_retry_after, PageQuery, CSRF_COOKIE,
};
use crate::cookies::read_cookie;
use crate::fapi::{ensure_client, Caller};
use crate::AppState;

/// Clerk's strategy name, the one the Frontend API takes too.
const STRATEGY: &str = "reset_password_email_code";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in/forgot", get(forgot_page).post(forgot_submit))
        .route("/sign-in/reset", get(code_page).post(code_submit))
        .route("/sign-in/reset/resend", post(resend))
        .route("/sign-in/reset/password", get(password_page).post(password_submit))
}

const FORGOT_TITLE: &str = "Forgot your password?";
const FORGOT_SUB: &str = "Enter the email address of your account and we'll send you a code to choose a new password.";

fn forgot_form(csrf: &str, redirect_url: Option<&str>, email: &str) -> String {
    format!(
        r#"<form method="post" action="{action}" novalidate>
<input type="hidden" name="csrf" value="{csrf}">
<label for="email_address">Email address</label>
<input id="email_address" name="email_address" type="email" autocomplete="email" required value="{email}" autofocus>
<button class="primary" type="submit">Send code</button>
</form>
<p class="foot">Remembered it? <a href="{signin}">Back to sign in</a></p>"#,
        action = esc(&with_redirect("/sign-in/forgot", redirect_url)),
        csrf = esc(csrf),
        email = esc(email),
        signin = esc(&with_redirect("/sign-in", redirect_url)),
    )
}

async fn forgot_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    let (csrf, cookies) = csrf_token(&state, &headers);
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    Page::new(FORGOT_TITLE, FORGOT_SUB)
        .body(forgot_form(&csrf, redirect_url.as_deref(), ""))
        .into_response(StatusCode::OK, &cookies)
}

/// Starts a sign-in for the address and mails the reset code. Known or not, the next page is
/// the same: whether the address has an account shows only in the mailbox.
async fn forgot_submit(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let email = p.text("email_address").map(|e| e.trim().to_owned()).unwrap_or_default();
    let render_error = |e: &ServiceError, cookies: &[String]| {
        let csrf = read_cookie(&headers, CSRF_COOKIE).unwrap_or_default();
        let page = Page::new(FORGOT_TITLE, FORGOT_SUB).alert(&e.long_message).body(forgot_form(
            &csrf,
            redirect_url.as_deref(),
            &email,
        ));
        with_retry_after(page.into_response(status_of(e), cookies), e)
    };
    // Usernames have no address to send a code to; the form asks for the address itself.
    if !email.contains('@') {
        let e = ServiceError::unprocessable("form_param_format_invalid", "Enter the email address of your account.")
            .param("email_address");
        return render_error(&e, &[]);
    }
    let (client, token) = match ensure_client(&state, &caller).await {
        Ok(v) => v,
        Err(e) => return render_error(&e.0, &[]),
    };
    let cookies = token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
    if has_active_session(&state, &client).await {
        return finish_signed_in(&state, &caller, &client, redirect_url, cookies).await;
    }
    let input = SignInInput { identifier: Some(email.clone()), strategy: None, password: None };
    let started = match state.services.create_sign_in(&caller.ctx, &client, input).await {
        Ok(step) => step.row,
        Err(e) => return render_error(&e, &cookies),
    };
    match state.services.prepare_first_factor(&caller.ctx, &client, &started.id, STRATEGY).await {
        Ok(_) => redirect(&with_redirect("/sign-in/reset", redirect_url.as_deref()), &cookies),
        Err(e) => render_error(&e, &cookies),
    }
}

/// The client's current sign-in, when it is a reset (a code was asked for this strategy).
async fn current_reset(state: &AppState, caller: &Caller) -> Option<(Client, SignInRow)> {
    let client = caller.client.clone()?;
    let id = client.sign_in_id.clone()?;
    let row = state.services.sign_in_of(&client, &id).await.ok()?;
    let resetting = row.first_factor_strategy.as_deref() == Some(STRATEGY) && row.status != "complete";
    resetting.then_some((client, row))
}

fn code_form(csrf: &str, redirect_url: Option<&str>, email: &str) -> String {
    format!(
        r#"<p class="sub">If <strong>{email}</strong> belongs to an account, we sent it a 6-digit code. It expires in 10 minutes.</p>
<form method="post" action="{action}" novalidate>
<input type="hidden" name="csrf" value="{csrf}">
<label for="code">Reset code</label>
<input id="code" name="code" class="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required autofocus>
<button class="primary" type="submit">Continue</button>
</form>
<form method="post" action="{resend}" class="foot"><input type="hidden" name="csrf" value="{csrf}">Didn't get it? <button class="link" type="submit">Send a new code</button></form>"#,
        email = esc(email),
        action = esc(&with_redirect("/sign-in/reset", redirect_url)),
        resend = esc(&with_redirect("/sign-in/reset/resend", redirect_url)),
        csrf = esc(csrf),
    )
}

async fn code_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
    caller: Caller,
) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((_, row)) = current_reset(&state, &caller).await else {
        return redirect(&with_redirect("/sign-in/forgot", redirect_url.as_deref()), &[]);
    };
    if row.status == "needs_new_password" {
        return redirect(&with_redirect("/sign-in/reset/password", redirect_url.as_deref()), &[]);
    }
    let (csrf, cookies) = csrf_token(&state, &headers);
    let mut page = Page::new("Check your email", "");
    if q.notice.as_deref() == Some("code_sent") {
        page = page.notice("A new code is on its way.");
    }
    page.body(code_form(&csrf, redirect_url.as_deref(), row.identifier.as_deref().unwrap_or("")))
        .into_response(StatusCode::OK, &cookies)
}

async fn code_submit(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((client, row)) = current_reset(&state, &caller).await else {
        return redirect(&with_redirect("/sign-in/forgot", redirect_url.as_deref()), &[]);
    };
    let code = p.text("code").unwrap_or_default();
    match state.services.attempt_first_factor(&caller.ctx, &client, &row.id, STRATEGY, code.trim()).await {
        Ok(_) => redirect(&with_redirect("/sign-in/reset/password", redirect_url.as_deref()), &[]),
        Err(e) => {
            let csrf = read_cookie(&headers, CSRF_COOKIE).unwrap_or_default();
            let page = Page::new("Check your email", "").alert(&e.long_message).body(code_form(
                &csrf,
                redirect_url.as_deref(),
                row.identifier.as_deref().unwrap_or(""),
            ));
            with_retry_after(page.into_response(status_of(&e), &[]), &e)
        }
    }
}

async fn resend(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, caller, .. } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((client, row)) = current_reset(&state, &caller).await else {
        return redirect(&with_redirect("/sign-in/forgot", redirect_url.as_deref()), &[]);
    };
    match state.services.prepare_first_factor(&caller.ctx, &client, &row.id, STRATEGY).await {
        Ok(_) => {
            let base = with_redirect("/sign-in/reset", redirect_url.as_deref());
            let sep = if base.contains('?') { '&' } else { '?' };
            redirect(&format!("{base}{sep}notice=code_sent"), &[])
        }
        Err(e) => with_retry_after(
            Page::new("Check your email", "").alert(&e.long_message).into_response(status_of(&e), &[]),
            &e,
        ),
    }
}

const NEW_PASSWORD_TITLE: &str = "Choose a new password";

fn password_form(csrf: &str, redirect_url: Option<&str>, sign_out_others: bool) -> String {
    format!(
        r#"<form method="post" action="{action}" novalidate>
<input type="hidden" name="csrf" value="{csrf}">
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required autofocus aria-describedby="pw-hint">
<p class="hint" id="pw-hint">At least 8 characters, not your previous password. A long passphrase is best.</p>
<label for="confirm_password">Confirm new password</label>
<input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required>
<label><input type="checkbox" name="sign_out_of_other_sessions" value="true"{checked}> Sign out of all other devices</label>
<button class="primary" type="submit">Reset password</button>
</form>"#,
        action = esc(&with_redirect("/sign-in/reset/password", redirect_url)),
        csrf = esc(csrf),
        checked = if sign_out_others { " checked" } else { "" },
    )
}

async fn password_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
    caller: Caller,
) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    match current_reset(&state, &caller).await {
        Some((_, row)) if row.status == "needs_new_password" => {
            let (csrf, cookies) = csrf_token(&state, &headers);
            Page::new(NEW_PASSWORD_TITLE, "Your address is confirmed.")
                .body(password_form(&csrf, redirect_url.as_deref(), true))
                .into_response(StatusCode::OK, &cookies)
        }
        // No code proven yet: the code page (or the start, when there is no reset at all).
        _ => redirect(&with_redirect("/sign-in/reset", redirect_url.as_deref()), &[]),
    }
}

async fn password_submit(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((client, row)) = current_reset(&state, &caller).await else {
        return redirect(&with_redirect("/sign-in/forgot", redirect_url.as_deref()), &[]);
    };
    let sign_out_others = p.flag("sign_out_of_other_sessions");
    let password = p.text("password").unwrap_or_default();
    let render_error = |e: &ServiceError| {
        let csrf = read_cookie(&headers, CSRF_COOKIE).unwrap_or_default();
        let mut page = Page::new(NEW_PASSWORD_TITLE, "").alert(&e.long_message);
        page = if e.code == "verification_expired" || e.code == "verification_missing" {
            // The proof is spent or too old: start again rather than retype a password.
            page.body(format!(
                r#"<p class="sub"><a href="{}">Ask for a new code</a></p>"#,
                esc(&with_redirect("/sign-in/forgot", redirect_url.as_deref()))
            ))
        } else {
            page.body(password_form(&csrf, redirect_url.as_deref(), sign_out_others))
        };
        with_retry_after(page.into_response(status_of(e), &[]), e)
    };
    if p.text("confirm_password").unwrap_or_default() != password {
        let e = ServiceError::unprocessable("form_password_not_match", "The passwords don't match.")
            .param("confirm_password");
        return render_error(&e);
    }
    let request = NewPassword { password, sign_out_of_other_sessions: sign_out_others };
    match state.services.reset_password(&caller.ctx, &client, &row.id, request).await {
        // The new password is set; the authenticator app or a backup code comes next.
        Ok(step) if step.row.status == "needs_second_factor" => {
            redirect(&super::factor_two::path(redirect_url.as_deref()), &[])
        }
        Ok(step) => {
            // The completed sign-in replaced the client's token (session fixation).
            let cookies = step.new_client_token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
            finish_signed_in(&state, &caller, &client, redirect_url, cookies).await
        }
        Err(e) => render_error(&e),
    }
}
