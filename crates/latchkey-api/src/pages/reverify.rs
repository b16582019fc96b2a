//! "Confirm it's you" on the hosted pages: a change that needs a recent check of the person
//! (the service answers `session_reverification_required`: changing the password, removing the
//! authenticator app) shows this form instead of a bare error. A person with a second factor
//! gives a code of their app or a backup code; anyone else their current password (or, without
//! one, a code emailed to them). The check is the Frontend API's (`/v1/client/sessions/{id}/
//! verify…`), level `second_factor`, kept on the session; once it passes, removing the app is
//! done at once and a password change is typed again (its passwords are never carried over).
//! Codes and passwords travel only in form bodies.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use latchkey_core::reverification::STRICT;
use latchkey_service::authority::Client;
use latchkey_service::identity::{Progress, Reverification};
use latchkey_service::second_factors::Strategy;
use latchkey_service::ServiceError;
use latchkey_store::UserRecord;

use super::form::PageForm;
use super::html::{esc, hidden, Page};
use super::user::render_user;
use super::{csrf_token, redirect, sign_in_first, signed_in, status_of, with_retry_after, Signed};
use crate::AppState;

/// The service's answer to a change that needs a recent check.
pub(super) const REQUIRED: &str = "session_reverification_required";
/// The level the hosted pages check: the second factor, or the first for a person without one.
const LEVEL: &str = "second_factor";
const TITLE: &str = "Confirm it's you";
const NEEDS_FIRST: &str = "needs_first_factor";
const NEEDS_SECOND: &str = "needs_second_factor";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/user/verify", post(submit)).route("/user/verify/email", post(send_email_code))
}

/// What happens once the check passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Remove the authenticator app (nothing to type again: done for the person).
    RemoveTotp,
    /// Back to `/user` to type the password change again.
    Password,
    /// Back to `/user` to add or remove the passkey again (`passkeys`).
    Passkey,
    /// Back to `/user`.
    Nothing,
}

impl Then {
    /// The change that was refused, by the notice it shows when it succeeds.
    pub(super) fn after(notice: &str) -> Self {
        match notice {
            "totp_removed" => Then::RemoveTotp,
            "password" => Then::Password,
            "passkey_removed" | "passkey_added" => Then::Passkey,
            _ => Then::Nothing,
        }
    }

    fn parse(s: Option<&str>) -> Self {
        match s {
            Some("remove_totp") => Then::RemoveTotp,
            Some("password") => Then::Password,
            Some("passkey") => Then::Passkey,
            _ => Then::Nothing,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Then::RemoveTotp => "remove_totp",
            Then::Password => "password",
            Then::Passkey => "passkey",
            Then::Nothing => "none",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Then::RemoveTotp => "Removing your authenticator app",
            Then::Password => "Changing your password",
            Then::Passkey => "Adding or removing a passkey",
            Then::Nothing => "This change",
        }
    }
}

/// Which form the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// A code of the app, or a backup code.
    SecondFactor,
    /// The current password (with the emailed code as the other way).
    Password,
    /// The code just emailed.
    EmailCode,
    /// Only a code by email can be sent (no password, no second factor).
    SendEmail,
}

fn has_second(user: &UserRecord) -> bool {
    !Strategy::available(&user.second_factors).is_empty()
}

/// The verified address a code goes to: the primary one if verified, else the first verified.
fn email_for(user: &UserRecord) -> Option<(&str, &str)> {
    let verified = || user.emails.iter().filter(|e| e.verified);
    verified()
        .find(|e| user.user.primary_email_id.as_deref() == Some(e.id.as_str()))
        .or_else(|| verified().next())
        .map(|e| (e.id.as_str(), e.email.as_str()))
}

/// The form for a check at `status`.
fn ask_for(status: &str, user: &UserRecord) -> Ask {
    if status == NEEDS_SECOND {
        Ask::SecondFactor
    } else if user.user.password_hash.is_some() {
        Ask::Password
    } else {
        Ask::SendEmail
    }
}

fn sub(ask: Ask, then: Then) -> String {
    let how = match ask {
        Ask::SecondFactor => "Enter a code from your authenticator app, or one of your backup codes.",
        Ask::Password => "Enter your current password.",
        Ask::EmailCode => "Enter the code we just emailed you.",
        Ask::SendEmail => "We'll email you a code.",
    };
    format!("{} needs a recent check that it's you. {how}", then.what())
}

fn form_html(csrf: &str, ask: Ask, then: Then, user: &UserRecord) -> String {
    let head = format!(
        r#"<form method="post" action="/user/verify" novalidate>{}<input type="hidden" name="then" value="{}">"#,
        hidden(csrf),
        esc(then.as_str())
    );
    let email_button = |label: &str| match email_for(user) {
        Some((_, address)) => format!(
            r#"<form method="post" action="/user/verify/email" class="foot">{}<input type="hidden" name="then" value="{}"><button class="link" type="submit">{}</button> <span class="muted">({})</span></form>"#,
            hidden(csrf),
            esc(then.as_str()),
            esc(label),
            esc(address)
        ),
        None => String::new(),
    };
    let body = match ask {
        Ask::SecondFactor => {
            let offered = Strategy::available(&user.second_factors);
            let app = offered.contains(&Strategy::Totp).then(|| format!(
                r#"{head}<input type="hidden" name="strategy" value="totp">
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" class="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required autofocus>
<button class="primary" type="submit">Confirm</button></form>"#
            ));
            let backup = offered.contains(&Strategy::BackupCode).then(|| format!(
                r#"{head}<input type="hidden" name="strategy" value="backup_code">
<label for="backup_code">Backup code</label>
<input id="backup_code" name="code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="64" required>
<button class="primary" type="submit">Confirm with a backup code</button></form>"#
            ));
            match (app, backup) {
                (Some(app), Some(backup)) => {
                    format!(r#"{app}<details><summary>Use a backup code</summary>{backup}</details>"#)
                }
                (app, backup) => app.or(backup).unwrap_or_default(),
            }
        }
        Ask::Password => format!(
            r#"{head}<input type="hidden" name="strategy" value="password">
<label for="password">Current password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
<button class="primary" type="submit">Confirm</button></form>{}"#,
            email_button("Email me a code instead")
        ),
        Ask::EmailCode => format!(
            r#"{head}<input type="hidden" name="strategy" value="email_code">
<label for="code">Code from the email</label>
<input id="code" name="code" class="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required autofocus>
<button class="primary" type="submit">Confirm</button></form>{}"#,
            email_button("Send a new code")
        ),
        Ask::SendEmail => match email_for(user) {
            Some(_) => email_button("Email me a code"),
            None => {
                r#"<p class="sub">This account has no password and no verified email address to confirm it with.</p>"#
                    .to_owned()
            }
        },
    };
    format!(r#"{body}<p class="foot"><a href="/user">Cancel</a></p>"#)
}

/// The page, with an error or a notice.
fn confirm_page(
    csrf: &str,
    cookies: &[String],
    ask: Ask,
    then: Then,
    user: &UserRecord,
    error: Option<&ServiceError>,
    status: StatusCode,
) -> Response {
    let mut page = Page::new(TITLE, &sub(ask, then));
    if let Some(e) = error {
        page = page.alert(&e.long_message);
    }
    if ask == Ask::EmailCode && error.is_none() {
        page = page.notice("A code is on its way. It expires in 10 minutes.");
    }
    let res = page.body(form_html(csrf, ask, then, user)).into_response(status, cookies);
    match error {
        Some(e) => with_retry_after(res, e),
        None => res,
    }
}

/// Answers a change the service refused for want of a recent check: a new check starts, and
/// the page asks for what it needs (403: the change was not made).
pub(super) async fn ask(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<&Client>,
    session_id: &str,
    then: Then,
) -> Response {
    let Some(client) = client else {
        return redirect("/sign-in?redirect_url=%2Fuser", &[]);
    };
    let started = match state.services.start_reverification(client, session_id, LEVEL).await {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let Ok(user) = state.services.users().user(&started.session.user_id).await else {
        return redirect("/sign-in?redirect_url=%2Fuser", &[]);
    };
    let (csrf, cookies) = csrf_token(state, headers);
    let ask = ask_for(&started.progress.status, &user);
    confirm_page(&csrf, &cookies, ask, then, &user, None, StatusCode::FORBIDDEN)
}

/// An error with nothing to retry on this page (the session ended, the service is down…).
fn failed(e: &ServiceError) -> Response {
    if e.code == "authentication_invalid" {
        return redirect("/sign-in?redirect_url=%2Fuser", &[]);
    }
    let page = Page::new(TITLE, "")
        .alert(&e.long_message)
        .body(r#"<p class="foot"><a href="/user">Back to your account</a></p>"#.to_owned());
    with_retry_after(page.into_response(status_of(e), &[]), e)
}

/// The check in progress on the session, if it is at `status`; else a new one.
async fn check_at(state: &AppState, client: &Client, me: &Signed, status: &str) -> Result<String, ServiceError> {
    let progress: Option<Progress> =
        me.session.reverification.as_deref().and_then(|text| serde_json::from_str(text).ok());
    if progress.as_ref().is_some_and(|p| p.status == status) {
        return Ok(status.to_owned());
    }
    let started: Reverification = state.services.start_reverification(client, &me.session.id, LEVEL).await?;
    Ok(started.progress.status)
}

async fn signed_in_with_client(state: &AppState, caller: &crate::fapi::Caller) -> Option<(Signed, Client)> {
    let me = signed_in(state, caller).await?;
    Some((me, caller.client.clone()?))
}

/// A code, a backup code or the password: the check, then the change it was for.
async fn submit(form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let Some((me, client)) = signed_in_with_client(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/user").await;
    };
    let then = Then::parse(p.text("then").as_deref());
    let strategy = p.text("strategy").unwrap_or_default();
    let (csrf, cookies) = csrf_token(&state, &headers);
    let (wanted, ask) = match strategy.as_str() {
        "totp" | "backup_code" => (NEEDS_SECOND, Ask::SecondFactor),
        "email_code" => (NEEDS_FIRST, Ask::EmailCode),
        "password" => (NEEDS_FIRST, Ask::Password),
        _ => {
            let e = ServiceError::unprocessable("form_param_value_invalid", "Choose how to confirm it's you.")
                .param("strategy");
            let fallback = if has_second(&me.user) { NEEDS_SECOND } else { NEEDS_FIRST };
            let ask = ask_for(fallback, &me.user);
            return confirm_page(&csrf, &cookies, ask, then, &me.user, Some(&e), status_of(&e));
        }
    };
    let refuse = |ask: Ask, e: &ServiceError| confirm_page(&csrf, &cookies, ask, then, &me.user, Some(e), status_of(e));
    let secret = if strategy == "password" { p.text("password") } else { p.text("code") }.unwrap_or_default();
    let secret = match strategy.as_str() {
        "password" => secret,
        "totp" | "email_code" => secret.split_whitespace().collect(),
        _ => secret.trim().to_owned(),
    };
    if secret.is_empty() {
        let message = match ask {
            Ask::Password => "Enter your current password.",
            Ask::SecondFactor if strategy == "backup_code" => "Enter one of your backup codes.",
            Ask::SecondFactor => "Enter the 6-digit code your authenticator app shows.",
            _ => "Enter the code we emailed you.",
        };
        let e = ServiceError::unprocessable("form_param_missing", message).param("code");
        return refuse(ask, &e);
    }
    let status = match check_at(&state, &client, &me, wanted).await {
        Ok(status) => status,
        Err(e) => return failed(&e),
    };
    if status != wanted {
        // A password for a person with a second factor, say: ask for what the check needs.
        let e = ServiceError::unprocessable(
            "strategy_for_user_invalid",
            "That way of confirming is not available for your account.",
        );
        return refuse(ask_for(&status, &me.user), &e);
    }
    let sid = me.session.id.as_str();
    let outcome = if wanted == NEEDS_SECOND {
        state.services.attempt_reverification_second_factor(&caller.ctx, &client, sid, &strategy, &secret).await
    } else {
        state.services.attempt_reverification_first_factor(&caller.ctx, &client, sid, &strategy, &secret).await
    };
    match outcome {
        Ok(r) if r.progress.status == "complete" => done(&state, &headers, &me, then).await,
        Ok(r) => {
            let ask = ask_for(&r.progress.status, &me.user);
            confirm_page(&csrf, &cookies, ask, then, &me.user, None, StatusCode::OK)
        }
        // Five wrong codes end this check; trying the change again starts another.
        Err(e) if e.code == "verification_failed" => {
            let e = e.long("Too many incorrect codes. Go back to your account and try the change again later.");
            failed(&e)
        }
        Err(e) if e.code == "authentication_invalid" => failed(&e),
        // A check that moved on meanwhile (another tab): ask again from the start.
        Err(e) if e.code == "session_verification_missing" || e.code == "verification_missing" => {
            let e = e.long("Start the check again: ask for a new code, or enter your password.");
            let retry =
                if wanted == NEEDS_FIRST && ask == Ask::EmailCode { ask_for(NEEDS_FIRST, &me.user) } else { ask };
            refuse(retry, &e)
        }
        Err(e) => refuse(ask, &e),
    }
}

/// The check passed: do the change, or send the person back to type it again.
async fn done(state: &AppState, headers: &HeaderMap, me: &Signed, then: Then) -> Response {
    match then {
        Then::RemoveTotp => {
            let removed = match state.services.users().reverified(&me.who, STRICT).await {
                Ok(recent) => state.account.delete_totp(&recent).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match removed {
                Ok(()) => redirect("/user?notice=totp_removed", &[]),
                Err(e) => render_user(state, headers, me, None, Some(&e), status_of(&e)).await,
            }
        }
        Then::Password => redirect("/user?notice=reverified_password", &[]),
        Then::Passkey => redirect("/user?notice=reverified_passkey", &[]),
        Then::Nothing => redirect("/user?notice=reverified", &[]),
    }
}

/// Emails a code for the check (a person without a password, or who prefers it).
async fn send_email_code(form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let Some((me, client)) = signed_in_with_client(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/user").await;
    };
    let then = Then::parse(p.text("then").as_deref());
    let (csrf, cookies) = csrf_token(&state, &headers);
    let status = match check_at(&state, &client, &me, NEEDS_FIRST).await {
        Ok(status) => status,
        Err(e) => return failed(&e),
    };
    if status != NEEDS_FIRST {
        let e = ServiceError::unprocessable(
            "strategy_for_user_invalid",
            "Confirm with your authenticator app or a backup code.",
        );
        return confirm_page(&csrf, &cookies, ask_for(&status, &me.user), then, &me.user, Some(&e), status_of(&e));
    }
    let email_id = email_for(&me.user).map(|(id, _)| id.to_owned());
    let sent = state
        .services
        .prepare_reverification_first_factor(&caller.ctx, &client, &me.session.id, "email_code", email_id.as_deref())
        .await;
    match sent {
        Ok(_) => confirm_page(&csrf, &cookies, Ask::EmailCode, then, &me.user, None, StatusCode::OK),
        Err(e) if e.code == "authentication_invalid" => failed(&e),
        Err(e) => {
            confirm_page(&csrf, &cookies, ask_for(NEEDS_FIRST, &me.user), then, &me.user, Some(&e), status_of(&e))
        }
    }
}
