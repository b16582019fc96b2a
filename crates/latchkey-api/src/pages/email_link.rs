//! Email links on the hosted pages (docs/email-links.md, "Hosted pages, latchkey-js and
//! BabyLog"): "Email me a sign-in link" on `/sign-in`, and the link step of `/sign-up` when
//! `[email_links] sign_up` is on. They call the service functions the Frontend API calls.
//!
//! The pages stay free of JavaScript. The tab that asked shows "Check your email" and loads
//! itself again every few seconds (`<meta http-equiv="refresh">`); each load is the Frontend
//! API's poll (`poll_sign_in`/`poll_sign_up`), which completes the attempt in this browser
//! once the link was confirmed in another one. A link opened in this browser completes at once
//! in `/v1/verify`, which sends it to this module's finishing page with Clerk's
//! `__clerk_status`; that page goes on to the app, or says in words why the link did not work.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_service::authority::Client;
use latchkey_service::identity::{LinkRequest, EMAIL_LINK};
use latchkey_service::{ServiceError, SignInInput};
use latchkey_store::{SignInRow, SignUpRow};

use super::form::PageForm;
use super::html::{esc, hidden, Page};
use super::{
    csrf_token, factor_two, finish_signed_in, has_active_session, redirect, safe_redirect, status_of, with_redirect,
    with_retry_after,
};
use crate::fapi::{ensure_client, Caller};
use crate::AppState;

const START: &str = "/sign-in/email-link";
const WAIT: &str = "/sign-in/email-link/wait";
const RESEND: &str = "/sign-in/email-link/resend";
const SIGN_IN_DONE: &str = "/sign-in/email-link/done";
const SIGN_UP_DONE: &str = "/sign-up/email-link/done";
/// How often a waiting page loads itself again.
pub(super) const REFRESH_SECS: u32 = 3;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(START, get(start_page).post(start))
        .route(WAIT, get(wait_page))
        .route(RESEND, post(resend))
        .route(SIGN_IN_DONE, get(sign_in_done))
        .route(SIGN_UP_DONE, get(sign_up_done))
}

pub(super) fn sign_in_links(state: &AppState) -> bool {
    state.services.config.email_links.sign_in
}

pub(super) fn sign_up_links(state: &AppState) -> bool {
    state.services.config.email_links.sign_up
}

#[derive(serde::Deserialize, Default)]
struct LinkQuery {
    redirect_url: Option<String>,
    notice: Option<String>,
}

/// Where `/v1/verify` sends the browser: the attempt's id, and what opening the link did.
#[derive(serde::Deserialize, Default)]
struct DoneQuery {
    redirect_url: Option<String>,
    attempt: Option<String>,
    #[serde(rename = "__clerk_status")]
    status: Option<String>,
}

/// The page a link of attempt `id` leads to (a path of this instance, as `/v1/verify` joins it
/// to the public URL), carrying the app's checked `redirect_url`.
fn done_path(path: &str, redirect_url: Option<&str>, id: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(r) = redirect_url {
        query.append_pair("redirect_url", r);
    }
    query.append_pair("attempt", id);
    format!("{path}?{}", query.finish())
}

fn with_notice(path: &str, notice: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}notice={notice}")
}

/// The button under the password form's: it posts the same form (the address typed) here.
pub(super) fn sign_in_button(state: &AppState, redirect_url: Option<&str>) -> String {
    if !sign_in_links(state) {
        return String::new();
    }
    format!(
        r#"<button class="alt" type="submit" formaction="{}">Email me a sign-in link</button>"#,
        esc(&with_redirect(START, redirect_url))
    )
}

// ---- asking for a sign-in link ----------------------------------------------------------------

fn start_form(csrf: &str, redirect_url: Option<&str>, identifier: &str) -> String {
    format!(
        r#"<form method="post" action="{action}" novalidate>{csrf}
<label for="identifier">Email address</label>
<input id="identifier" name="identifier" type="email" autocomplete="email" required value="{identifier}" autofocus>
<button class="primary" type="submit">Email me a sign-in link</button>
</form>
<p class="foot"><a href="{password}">Sign in with a password instead</a></p>"#,
        action = esc(&with_redirect(START, redirect_url)),
        csrf = hidden(csrf),
        identifier = esc(identifier),
        password = esc(&with_redirect("/sign-in", redirect_url)),
    )
}

const START_TITLE: &str = "Sign in with an email link";
const START_SUB: &str = "We'll email you a link. Open it and you're signed in: no password needed.";

async fn start_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<LinkQuery>) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    if !sign_in_links(&state) {
        return redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    }
    let (csrf, cookies) = csrf_token(&state, &headers);
    Page::new(START_TITLE, START_SUB)
        .body(start_form(&csrf, redirect_url.as_deref(), ""))
        .into_response(StatusCode::OK, &cookies)
}

/// "Email me a sign-in link": a sign-in for the address, its link mailed, and the waiting page.
/// An address with no account gets the same page (the service mails nothing).
async fn start(Query(q): Query<LinkQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    if !sign_in_links(&state) {
        return redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    }
    let identifier = p.text("identifier").unwrap_or_default().trim().to_owned();
    let render_error = |e: &ServiceError, cookies: &[String]| {
        let (csrf, _) = csrf_token(&state, &headers);
        let page = Page::new(START_TITLE, START_SUB).alert(&e.long_message).body(start_form(
            &csrf,
            redirect_url.as_deref(),
            &identifier,
        ));
        with_retry_after(page.into_response(status_of(e), cookies), e)
    };
    if !identifier.contains('@') {
        let e =
            ServiceError::unprocessable("form_param_format_invalid", "Enter your email address to get a sign-in link.")
                .param("identifier");
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
    let input = SignInInput { identifier: Some(identifier.clone()), strategy: None, password: None };
    let row = match state.services.create_sign_in(&caller.ctx, &client, input).await {
        Ok(step) => step.row,
        Err(e) => return render_error(&e, &cookies),
    };
    match mail_sign_in_link(&state, &caller, &client, &row.id, redirect_url.as_deref()).await {
        Ok(()) => redirect(&with_redirect(WAIT, redirect_url.as_deref()), &cookies),
        Err(e) => render_error(&e, &cookies),
    }
}

async fn mail_sign_in_link(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    id: &str,
    redirect_url: Option<&str>,
) -> Result<(), ServiceError> {
    let link = LinkRequest { redirect_url: done_path(SIGN_IN_DONE, redirect_url, id), base: None };
    state.services.prepare_sign_in_link(&caller.ctx, client, id, None, link).await.map(|_| ())
}

// ---- waiting for it ---------------------------------------------------------------------------

/// The link of this attempt (`code`) outlived its ten minutes.
fn link_expired(state: &AppState, code: &latchkey_store::CodeFields) -> bool {
    code.expires_at.is_some_and(|at| at <= state.services.now())
}

/// "Check your email" (loading itself again every few seconds), or, once the link expired,
/// the way to a new one.
fn waiting(csrf: &str, resend: &str, address: &str, what: &str, expired: bool) -> Page {
    let again = format!(
        r#"<form method="post" action="{}" class="foot">{}Didn't get it? <button class="link" type="submit">Send a new link</button></form>"#,
        esc(resend),
        hidden(csrf)
    );
    if expired {
        return Page::new("This link has expired", "").body(format!(
            r#"<p class="sub">The link we sent to <strong>{}</strong> worked for 10 minutes. Ask for a new one.</p>
<form method="post" action="{}">{}<button class="primary" type="submit">Send a new link</button></form>"#,
            esc(address),
            esc(resend),
            hidden(csrf)
        ));
    }
    Page::new("Check your email", "").refresh(REFRESH_SECS).body(format!(
        r#"<p class="sub">We sent a link to <strong>{}</strong>. Open it on this device or another one to {what}: this page goes on by itself once you have.</p>
<p class="hint" role="status">Waiting for the link to be opened. It works once and expires in 10 minutes.</p>{again}"#,
        esc(address),
    ))
}

async fn wait_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
    caller: Caller,
) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let to_sign_in = || redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    let Some(client) = caller.client.clone() else { return to_sign_in() };
    // Opened in another tab of this browser: that tab signed it in already.
    if has_active_session(&state, &client).await {
        return finish_signed_in(&state, &caller, &client, redirect_url, Vec::new()).await;
    }
    let Some(id) = client.sign_in_id.clone() else { return to_sign_in() };
    // The Frontend API's poll: a link confirmed in another browser completes it here.
    let Ok(step) = state.services.poll_sign_in(&client, &id).await else { return to_sign_in() };
    match step.row.status.as_str() {
        "complete" => match step.new_client_token {
            // The completed sign-in replaced the client's token (session fixation).
            Some(t) => finish_signed_in(&state, &caller, &client, redirect_url, state.config.cookies.client(&t)).await,
            None => to_sign_in(),
        },
        "needs_second_factor" => redirect(&factor_two::path(redirect_url.as_deref()), &[]),
        _ if link_sign_in(&step.row) => {
            let (csrf, cookies) = csrf_token(&state, &headers);
            let address = step.row.identifier.as_deref().unwrap_or("");
            let resend = with_redirect(RESEND, redirect_url.as_deref());
            let mut page =
                waiting(&csrf, &resend, address, "sign in", link_expired(&state, &step.row.code)).body(format!(
                    r#"<p class="foot"><a href="{}">Sign in another way</a></p>"#,
                    esc(&with_redirect("/sign-in", redirect_url.as_deref()))
                ));
            if q.notice.as_deref() == Some("link_sent") {
                page = page.notice("A new link is on its way.");
            }
            page.into_response(StatusCode::OK, &cookies)
        }
        _ => to_sign_in(),
    }
}

/// A sign-in waiting for its link to be opened.
fn link_sign_in(row: &SignInRow) -> bool {
    row.status == "needs_first_factor" && row.first_factor_strategy.as_deref() == Some(EMAIL_LINK)
}

/// "Send a new link": a new link for the client's sign-in (the old one stops working).
async fn resend(Query(q): Query<LinkQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, .. } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let waiting_sign_in = match (&caller.client, caller.client.as_ref().and_then(|c| c.sign_in_id.clone())) {
        (Some(client), Some(id)) => match state.services.sign_in_of(client, &id).await {
            Ok(row) if link_sign_in(&row) => Some((client.clone(), row)),
            _ => None,
        },
        _ => None,
    };
    let Some((client, row)) = waiting_sign_in else {
        return redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    };
    match mail_sign_in_link(&state, &caller, &client, &row.id, redirect_url.as_deref()).await {
        Ok(()) => redirect(&with_notice(&with_redirect(WAIT, redirect_url.as_deref()), "link_sent"), &[]),
        Err(e) => {
            let (csrf, cookies) = csrf_token(&state, &headers);
            let resend = with_redirect(RESEND, redirect_url.as_deref());
            let address = row.identifier.as_deref().unwrap_or("");
            let page = waiting(&csrf, &resend, address, "sign in", false).alert(&e.long_message);
            with_retry_after(page.into_response(status_of(&e), &cookies), &e)
        }
    }
}

// ---- where the link leads -----------------------------------------------------------------

/// What a refused link's page says: its title and the words under it.
fn refusal(status: &str) -> (&'static str, &'static str) {
    match status {
        "expired" => ("This link has expired", "Links work for 10 minutes. Ask for a new one."),
        "client_mismatch" => (
            "Open this link in the same browser",
            "For your safety, this link works only in the browser where you asked for it. Open it there, or ask for a new one here.",
        ),
        _ => ("This link can't be used", "It was used already, or it is not valid. Each link works once. Ask for a new one."),
    }
}

async fn refused(
    state: &AppState,
    caller: &Caller,
    status: &str,
    sign_up: bool,
    redirect_url: Option<&str>,
) -> Response {
    let (title, said) = refusal(status);
    let signed_in = match caller.client.as_ref() {
        Some(client) => has_active_session(state, client).await,
        None => false,
    };
    let next = if signed_in {
        format!(
            r#"<p class="foot">You are signed in already. <a href="{}">Continue</a></p>"#,
            esc(redirect_url.unwrap_or("/user"))
        )
    } else if sign_up {
        format!(r#"<p class="foot"><a href="{}">Sign up again</a></p>"#, esc(&with_redirect("/sign-up", redirect_url)))
    } else {
        format!(r#"<p class="foot"><a href="{}">Get a new link</a></p>"#, esc(&with_redirect(START, redirect_url)))
    };
    Page::new(title, said).body(next).into_response(StatusCode::BAD_REQUEST, &[])
}

/// The link was confirmed in a browser other than the one that asked.
fn confirmed_elsewhere(sign_up: bool) -> Response {
    let (title, said) = if sign_up {
        ("Your address is confirmed", "Go back to the tab where you signed up: it goes on by itself.")
    } else {
        ("Sign-in confirmed", "Go back to the tab where you asked for the link: it signs you in by itself.")
    };
    Page::new(title, said).into_response(StatusCode::OK, &[])
}

/// Where a sign-in link leads (`/v1/verify` adds `__clerk_status`). In the browser that asked,
/// the sign-in is complete already (or waits for its second factor): on to the app.
async fn sign_in_done(State(state): State<AppState>, Query(q): Query<DoneQuery>, caller: Caller) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let status = q.status.as_deref().unwrap_or("failed");
    if status != "verified" {
        return refused(&state, &caller, status, false, redirect_url.as_deref()).await;
    }
    if let (Some(client), Some(id)) = (caller.client.as_ref(), q.attempt.as_deref()) {
        // Only this browser's own attempt is found.
        if let Ok(step) = state.services.poll_sign_in(client, id).await {
            match step.row.status.as_str() {
                "complete" if step.new_client_token.is_some() || has_active_session(&state, client).await => {
                    let cookies = step.new_client_token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
                    return finish_signed_in(&state, &caller, client, redirect_url, cookies).await;
                }
                "needs_second_factor" => return redirect(&factor_two::path(redirect_url.as_deref()), &[]),
                _ => {}
            }
        }
    }
    confirmed_elsewhere(false)
}

// ---- sign-ups that prove their address with a link ---------------------------------------

/// Mails the sign-up's link (instead of relying on the code); its page is `/sign-up/verify`.
pub(super) async fn mail_sign_up_link(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    id: &str,
    redirect_url: Option<&str>,
) -> Result<(), ServiceError> {
    let link = LinkRequest { redirect_url: done_path(SIGN_UP_DONE, redirect_url, id), base: None };
    state.services.prepare_sign_up_link(&caller.ctx, client, id, link).await.map(|_| ())
}

/// A sign-up whose address is proved by a link.
pub(super) fn link_sign_up(row: &SignUpRow) -> bool {
    row.link_redirect_url.is_some()
}

/// `/sign-up/verify` of a link sign-up: "we sent you a link", polled like the sign-in's.
pub(super) async fn sign_up_waiting(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    client: &Client,
    row: &SignUpRow,
    redirect_url: Option<String>,
    notice: Option<&str>,
) -> Response {
    let to_sign_up = || redirect(&with_redirect("/sign-up", redirect_url.as_deref()), &[]);
    let Ok(step) = state.services.poll_sign_up(client, &row.id).await else { return to_sign_up() };
    let row = &step.row;
    if row.status == "complete" {
        return match step.new_client_token {
            Some(t) => finish_signed_in(state, caller, client, redirect_url, state.config.cookies.client(&t)).await,
            None if has_active_session(state, client).await => {
                finish_signed_in(state, caller, client, redirect_url, Vec::new()).await
            }
            None => to_sign_up(),
        };
    }
    let (csrf, cookies) = csrf_token(state, headers);
    if row.email_verified && row.email_taken {
        // The address's owner opened the link: they may hear that the account exists.
        let e = ServiceError::identifier_exists("email_address");
        return Page::new("Check your email", "")
            .alert(&e.long_message)
            .body(format!(
                r#"<p class="sub">Please <a href="{}">sign in</a> instead.</p>"#,
                esc(&with_redirect("/sign-in", redirect_url.as_deref()))
            ))
            .into_response(status_of(&e), &cookies);
    }
    let resend = with_redirect("/sign-up/resend", redirect_url.as_deref());
    let address = row.email.as_deref().unwrap_or("");
    let mut page = waiting(&csrf, &resend, address, "finish signing up", link_expired(state, &row.code));
    if notice == Some("link_sent") {
        page = page.notice("A new link is on its way.");
    }
    page.into_response(StatusCode::OK, &cookies)
}

/// Where a sign-up's link leads: on to the app in the browser that signed up.
async fn sign_up_done(State(state): State<AppState>, Query(q): Query<DoneQuery>, caller: Caller) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let status = q.status.as_deref().unwrap_or("failed");
    if status != "verified" {
        return refused(&state, &caller, status, true, redirect_url.as_deref()).await;
    }
    if let (Some(client), Some(id)) = (caller.client.as_ref(), q.attempt.as_deref()) {
        if let Ok(row) = state.services.sign_up_of(client, id).await {
            // This browser's own sign-up: its page finishes it (or says why not).
            if row.status == "complete" && has_active_session(&state, client).await {
                return finish_signed_in(&state, &caller, client, redirect_url, Vec::new()).await;
            }
            return redirect(&with_redirect("/sign-up/verify", redirect_url.as_deref()), &[]);
        }
    }
    confirmed_elsewhere(true)
}
