//! The sign-in's second step on the hosted pages (`/sign-in/factor-two`, the path Clerk's
//! hosted pages use): after the password (or a reset code and the new password) a user with an
//! authenticator app or backup codes proves one of them before any session exists. It calls
//! the service function the Frontend API's `attempt_second_factor` calls, so wrong codes count
//! on the attempt the same way (five, then it is dead) and against the same daily budget.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use latchkey_service::authority::Client;
use latchkey_service::identity::supported_second_factors;
use latchkey_service::ServiceError;
use latchkey_store::SignInRow;

use super::form::PageForm;
use super::html::{esc, hidden, Page};
use super::{
    csrf_token, finish_signed_in, has_active_session, redirect, safe_redirect, status_of, with_redirect,
    with_retry_after,
};
use crate::fapi::Caller;
use crate::AppState;

const PATH: &str = "/sign-in/factor-two";
const TITLE: &str = "Two-step verification";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(page).post(submit))
}

/// Where a sign-in whose first factor passed goes when it needs its second.
pub(super) fn path(redirect_url: Option<&str>) -> String {
    with_redirect(PATH, redirect_url)
}

#[derive(serde::Deserialize, Default)]
struct FactorQuery {
    redirect_url: Option<String>,
    /// `totp` (the default) or `backup_code`: which form the page shows.
    strategy: Option<String>,
}

/// The client's sign-in, when it waits for its second factor.
async fn waiting(state: &AppState, caller: &Caller) -> Option<(Client, SignInRow)> {
    let client = caller.client.clone()?;
    let id = client.sign_in_id.clone()?;
    let row = state.services.sign_in_of(&client, &id).await.ok()?;
    (row.status == "needs_second_factor").then_some((client, row))
}

/// The strategy asked for when the sign-in offers it, else the first it offers (the app).
fn chosen<'a>(row: &'a SignInRow, asked: Option<&str>) -> &'a str {
    let offered = supported_second_factors(row);
    offered.iter().copied().find(|s| Some(*s) == asked).or_else(|| offered.first().copied()).unwrap_or("totp")
}

fn sub(strategy: &str) -> &'static str {
    if strategy == "backup_code" {
        "Enter one of the backup codes you saved when you turned on two-step verification. Each code works once."
    } else {
        "Open your authenticator app and enter the 6-digit code it shows for this account."
    }
}

fn code_form(row: &SignInRow, csrf: &str, redirect_url: Option<&str>, strategy: &str) -> String {
    let action = path(redirect_url);
    let field = if strategy == "backup_code" {
        r#"<label for="code">Backup code</label>
<input id="code" name="code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="64" required autofocus>"#
    } else {
        r#"<label for="code">Code from your authenticator app</label>
<input id="code" name="code" class="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus>"#
    };
    // The other way, when the sign-in offers it.
    let other = if strategy == "backup_code" { "totp" } else { "backup_code" };
    let switch = if supported_second_factors(row).contains(&other) {
        let sep = if action.contains('?') { '&' } else { '?' };
        let label = if other == "backup_code" { "Use a backup code" } else { "Use your authenticator app" };
        format!(r#"<p class="foot"><a href="{}">{label}</a></p>"#, esc(&format!("{action}{sep}strategy={other}")))
    } else {
        String::new()
    };
    format!(
        r#"<form method="post" action="{action}" novalidate>{csrf}
<input type="hidden" name="strategy" value="{strategy}">
{field}
<button class="primary" type="submit">Continue</button>
</form>{switch}
<p class="foot"><a href="{again}">Sign in another way</a></p>"#,
        action = esc(&action),
        csrf = hidden(csrf),
        strategy = esc(strategy),
        again = esc(&with_redirect("/sign-in", redirect_url)),
    )
}

async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FactorQuery>,
    caller: Caller,
) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((_, row)) = waiting(&state, &caller).await else {
        return redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    };
    let (csrf, cookies) = csrf_token(&state, &headers);
    let strategy = chosen(&row, q.strategy.as_deref());
    Page::new(TITLE, sub(strategy))
        .body(code_form(&row, &csrf, redirect_url.as_deref(), strategy))
        .into_response(StatusCode::OK, &cookies)
}

/// A code that cannot be right, said before it costs one of the attempt's five tries.
fn malformed(strategy: &str, code: &str) -> Option<ServiceError> {
    let message = if strategy == "backup_code" {
        (code.is_empty() || code.len() > 64).then_some("Enter one of your backup codes.")
    } else {
        (code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()))
            .then_some("Enter the 6-digit code your authenticator app shows.")
    };
    message.map(|m| ServiceError::unprocessable("form_param_format_invalid", m).param("code"))
}

async fn submit(Query(q): Query<FactorQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((client, row)) = waiting(&state, &caller).await else {
        // Signed in meanwhile (another tab): go on; otherwise there is nothing to finish.
        if let Some(client) = caller.client.as_ref() {
            if has_active_session(&state, client).await {
                return finish_signed_in(&state, &caller, client, redirect_url, Vec::new()).await;
            }
        }
        return redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    };
    let strategy = chosen(&row, p.text("strategy").as_deref()).to_owned();
    let typed = p.text("code").unwrap_or_default();
    // Apps show the code in two groups of three; spaces are never part of it.
    let code = if strategy == "totp" { typed.split_whitespace().collect::<String>() } else { typed.trim().to_owned() };
    let render_error = |e: &ServiceError| {
        let (csrf, cookies) = csrf_token(&state, &headers);
        let page = Page::new(TITLE, sub(&strategy)).alert(&e.long_message).body(code_form(
            &row,
            &csrf,
            redirect_url.as_deref(),
            &strategy,
        ));
        with_retry_after(page.into_response(status_of(e), &cookies), e)
    };
    if let Some(e) = malformed(&strategy, &code) {
        return render_error(&e);
    }
    match state.services.attempt_second_factor(&caller.ctx, &client, &row.id, &strategy, &code).await {
        Ok(step) if step.row.status == "complete" => {
            // The completed sign-in replaced the client's token (session fixation).
            let cookies = step.new_client_token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
            finish_signed_in(&state, &caller, &client, redirect_url.clone(), cookies).await
        }
        Ok(_) => redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]),
        // Five wrong codes: this attempt is dead, only a new sign-in can go on.
        Err(e) if e.code == "verification_failed" => Page::new(TITLE, "")
            .alert(&e.long_message)
            .body(format!(
                r#"<p class="foot"><a href="{}">Start signing in again</a></p>"#,
                esc(&with_redirect("/sign-in", redirect_url.as_deref()))
            ))
            .into_response(status_of(&e), &[]),
        Err(e) if e.code == "sign_in_no_second_factor" => {
            redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[])
        }
        Err(e) => render_error(&e),
    }
}
