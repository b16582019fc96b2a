//! Hosted pages: `/sign-in` (with "Forgot password?", in `reset`, and the second step, in
//! `factor_two`), `/sign-up` (with the code step) and `/user` (profile, email addresses,
//! password, two-step verification in `second_factors`, sessions; "Confirm it's you" before
//! sensitive changes in `reverify`). Server-rendered HTML that works without JavaScript. Every
//! form posts back here and calls the same service functions as the Frontend API. Writes are
//! protected by the origin guard and a double-submit CSRF token; `redirect_url` may only point
//! at allow-listed origins.

mod account_data;
mod accounts;
mod email_link;
mod factor_two;
mod form;
pub(crate) mod html;
mod invitation_link;
mod oauth;
mod org;
mod passkeys;
mod reset;
mod reverify;
mod second_factors;
mod setup_task;
mod user;

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use latchkey_core::secret::new_opaque_secret;
use latchkey_service::authority::Client;
use latchkey_service::{ServiceError, SignInInput, SignUpInput};
use latchkey_store::{SessionRow, UserRecord};

use crate::cookies::{append_set_cookies, read_cookie};
use crate::fapi::{client_state, ensure_client, Caller};
use crate::AppState;
use form::PageForm;
use html::{esc, Page};

const CSRF_COOKIE: &str = "__latchkey_csrf";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_page).post(sign_in_submit))
        .route("/sign-up", get(sign_up_page).post(sign_up_submit))
        .route("/sign-up/verify", get(verify_page).post(verify_submit))
        .route("/sign-up/resend", post(verify_resend))
        .route("/sign-out", post(sign_out))
        .route("/user", get(user::user_page))
        .route("/user/profile", post(user::user_profile))
        .route("/user/email", post(user::user_add_email))
        .route("/user/email/{id}/verify", post(user::user_verify_email))
        .route("/user/email/{id}/resend", post(user::user_resend_email))
        .route("/user/email/{id}/primary", post(user::user_primary_email))
        .route("/user/email/{id}/delete", post(user::user_delete_email))
        .route("/user/password", post(user::user_password))
        .route("/user/sessions/{id}/revoke", post(user::user_revoke_session))
        .route("/user/delete", post(account_data::user_delete))
        .merge(org::routes())
        .merge(reset::routes())
        .merge(oauth::routes())
        .merge(accounts::routes())
        .merge(factor_two::routes())
        .merge(second_factors::routes())
        .merge(reverify::routes())
        .merge(setup_task::routes())
        .merge(email_link::routes())
        .merge(passkeys::routes())
        .merge(invitation_link::routes())
}

#[derive(serde::Deserialize, Default)]
pub(super) struct PageQuery {
    redirect_url: Option<String>,
    pub(super) notice: Option<String>,
    /// Why connecting an account failed (`/user`, back from the provider).
    pub(super) connect_error: Option<String>,
    /// A sign-in link's token (`createSignInToken().url`).
    #[serde(rename = "__clerk_ticket")]
    ticket: Option<String>,
}

/// A `redirect_url` we may send people to: resolved against the public URL, it must land on
/// this instance's origin or an allow-listed one. Control characters, whitespace and
/// backslashes are refused outright: browsers drop or reinterpret them (`/%09/evil.test`
/// becomes `//evil.test`), so a target that contains one cannot be judged by its text.
fn safe_redirect(state: &AppState, raw: Option<&str>) -> Option<String> {
    resolve_redirect(&state.config, raw?)
}

pub(crate) fn resolve_redirect(config: &crate::AppConfig, raw: &str) -> Option<String> {
    resolve_redirect_for(config, raw, None)
}

/// [`resolve_redirect`] for a request from a trusted app origin (`RequestContext::origin`: an
/// allow-listed one, or a proven proxy's): a relative target is the app's own path, so it is
/// resolved against that origin, and that origin is allowed too.
pub(crate) fn resolve_redirect_for(config: &crate::AppConfig, raw: &str, app_origin: Option<&str>) -> Option<String> {
    if raw.is_empty() || raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return None;
    }
    let base = url::Url::parse(app_origin.unwrap_or(&config.public_url)).ok()?;
    let target = base.join(raw).ok()?;
    if !matches!(target.scheme(), "http" | "https") || !target.username().is_empty() || target.password().is_some() {
        return None;
    }
    let origin = target.origin().ascii_serialization();
    if !config.origin_allowed(&origin) && app_origin != Some(origin.as_str()) {
        return None;
    }
    // On our own origin a path is enough, unless it would read as protocol-relative.
    let path = &target[url::Position::BeforePath..];
    if origin == config.own_origin() && !path.starts_with("//") {
        return Some(path.to_owned());
    }
    Some(target.to_string())
}

pub(super) fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    append_set_cookies(res.headers_mut(), cookies);
    res
}

pub(super) fn with_redirect(path: &str, redirect_url: Option<&str>) -> String {
    match redirect_url {
        Some(r) => {
            format!("{path}?redirect_url={}", url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>())
        }
        None => path.to_owned(),
    }
}

/// The CSRF token of this browser, minted (and set as a cookie) on first sight.
pub(super) fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Vec<String>) {
    if let Some(t) = read_cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 43) {
        return (t, Vec::new());
    }
    let t = new_opaque_secret(state.services.rng.as_ref());
    let secure = if state.config.cookies.secure { "; Secure" } else { "" };
    (t.clone(), vec![format!("{CSRF_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict{secure}")])
}

pub(super) fn status_of(e: &ServiceError) -> StatusCode {
    crate::error::ApiError(e.clone()).status()
}

pub(super) fn with_retry_after(mut res: Response, e: &ServiceError) -> Response {
    if let latchkey_service::ErrorKind::TooManyRequests { retry_after_secs } = e.kind {
        if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    res
}

// ---- sign-in ---------------------------------------------------------------------------------

fn sign_in_form(state: &AppState, csrf: &str, redirect_url: Option<&str>, identifier: &str) -> String {
    format!(
        r#"{providers}<form method="post" action="{action}" novalidate>
<input type="hidden" name="csrf" value="{csrf}">
<label for="identifier">Email address or username</label>
<input id="identifier" name="identifier" type="text" autocomplete="{autocomplete}" required value="{identifier}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<p class="hint"><a href="{forgot}">Forgot password?</a></p>
<button class="primary" type="submit">Continue</button>{link}
</form>{passkey}
<p class="foot">No account? <a href="{signup}">Sign up</a></p>"#,
        action = esc(&with_redirect("/sign-in", redirect_url)),
        csrf = esc(csrf),
        identifier = esc(identifier),
        signup = esc(&with_redirect("/sign-up", redirect_url)),
        forgot = esc(&with_redirect("/sign-in/forgot", redirect_url)),
        providers = oauth::buttons(state, csrf, redirect_url),
        link = email_link::sign_in_button(state, redirect_url),
        autocomplete = passkeys::identifier_autocomplete(state),
        passkey = passkeys::sign_in_button(state, redirect_url),
    )
}

/// A sign-in link asks for one click: opening the link (or a mail scanner prefetching it) must
/// not spend the single-use token.
fn ticket_form(csrf: &str, redirect_url: Option<&str>, ticket: &str) -> String {
    format!(
        r#"<form method="post" action="{action}">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="ticket" value="{ticket}">
<button class="primary" type="submit">Continue</button>
</form>
<p class="foot">Not expecting this link? <a href="/sign-in">Sign in with a password</a></p>"#,
        action = esc(&with_redirect("/sign-in", redirect_url)),
        csrf = esc(csrf),
        ticket = esc(ticket),
    )
}

async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    let (csrf, cookies) = csrf_token(&state, &headers);
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    if let Some(ticket) = q.ticket.as_deref().filter(|t| !t.is_empty() && t.len() <= 256) {
        return Page::new("Sign in", "You were sent a sign-in link. Continue to sign in.")
            .body(ticket_form(&csrf, redirect_url.as_deref(), ticket))
            .into_response(StatusCode::OK, &cookies);
    }
    let mut page = Page::new("Sign in", "Welcome back. Sign in to continue.");
    if q.notice.as_deref() == Some("signed_out") {
        page = page.notice("You have been signed out.");
    }
    page.body(sign_in_form(&state, &csrf, redirect_url.as_deref(), "")).into_response(StatusCode::OK, &cookies)
}

async fn sign_in_submit(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let identifier = p.text("identifier").unwrap_or_default();
    let render_error = |e: &ServiceError, cookies: &[String]| {
        let csrf = read_cookie(&headers, CSRF_COOKIE).unwrap_or_default();
        let page = Page::new("Sign in", "Welcome back. Sign in to continue.")
            .alert(&e.long_message)
            .body(sign_in_form(&state, &csrf, redirect_url.as_deref(), &identifier));
        with_retry_after(page.into_response(status_of(e), cookies), e)
    };
    let (client, token) = match ensure_client(&state, &caller).await {
        Ok(v) => v,
        Err(e) => return render_error(&e.0, &[]),
    };
    let new_cookie = token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
    // Already signed in: go on to the destination instead of failing.
    if has_active_session(&state, &client).await {
        return finish_signed_in(&state, &caller, &client, redirect_url, new_cookie).await;
    }
    let outcome = match p.text("ticket").filter(|t| !t.is_empty()) {
        Some(ticket) => state.services.sign_in_with_ticket(&caller.ctx, &client, &ticket).await,
        None => {
            let input = SignInInput {
                identifier: Some(identifier.clone()),
                strategy: Some("password".into()),
                password: p.text("password"),
            };
            state.services.create_sign_in(&caller.ctx, &client, input).await
        }
    };
    match outcome {
        Ok(step) if step.row.status == "complete" => {
            // The completed sign-in replaced the client's token (session fixation).
            let cookies = step.new_client_token.map(|t| state.config.cookies.client(&t)).unwrap_or(new_cookie);
            finish_signed_in(&state, &caller, &client, redirect_url, cookies).await
        }
        // The password passed; the authenticator app or a backup code comes next.
        Ok(step) if step.row.status == "needs_second_factor" => {
            redirect(&factor_two::path(redirect_url.as_deref()), &new_cookie)
        }
        Ok(_) => render_error(&ServiceError::password_incorrect(), &new_cookie),
        Err(e) => render_error(&e, &new_cookie),
    }
}

async fn has_active_session(state: &AppState, client: &Client) -> bool {
    state.services.client_has_active_session(client).await.unwrap_or(false)
}

async fn finish_signed_in(
    state: &AppState,
    caller: &Caller,
    client: &Client,
    redirect_url: Option<String>,
    mut cookies: Vec<String>,
) -> Response {
    match client_state(state, &caller.ctx, client).await {
        Ok((_, c)) => cookies.extend(c),
        Err(e) => {
            return Page::new("Something went wrong", "").alert(&e.0.long_message).into_response(e.status(), &cookies)
        }
    }
    // A session with a task to finish (the required second factor) is not for the app yet.
    if setup_task::due(state, client).await {
        return redirect(&setup_task::path(redirect_url.as_deref()), &cookies);
    }
    redirect(redirect_url.as_deref().unwrap_or("/user"), &cookies)
}

// ---- sign-up ---------------------------------------------------------------------------------

fn sign_up_form(state: &AppState, csrf: &str, redirect_url: Option<&str>, values: &HashMap<&str, String>) -> String {
    let v = |k: &str| esc(values.get(k).map(String::as_str).unwrap_or(""));
    format!(
        r#"{providers}<form method="post" action="{action}" novalidate>
<input type="hidden" name="csrf" value="{csrf}">
<div class="row"><div><label for="first_name">First name</label><input id="first_name" name="first_name" type="text" autocomplete="given-name" value="{first}"></div>
<div><label for="last_name">Last name</label><input id="last_name" name="last_name" type="text" autocomplete="family-name" value="{last}"></div></div>
<label for="email_address">Email address</label>
<input id="email_address" name="email_address" type="email" autocomplete="email" required value="{email}">
<label for="username">Username <span class="hint">(optional)</span></label>
<input id="username" name="username" type="text" autocomplete="username" value="{username}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required aria-describedby="pw-hint">
<p class="hint" id="pw-hint">At least 8 characters. A long passphrase is best.</p>
<button class="primary" type="submit">Create account</button>
</form>
<p class="foot">Have an account? <a href="{signin}">Sign in</a></p>"#,
        action = esc(&with_redirect("/sign-up", redirect_url)),
        csrf = esc(csrf),
        first = v("first_name"),
        last = v("last_name"),
        email = v("email_address"),
        username = v("username"),
        signin = esc(&with_redirect("/sign-in", redirect_url)),
        providers = oauth::buttons(state, csrf, redirect_url),
    )
}

fn sign_up_sub(state: &AppState) -> &'static str {
    if email_link::sign_up_links(state) {
        "It takes a minute. We'll email you a link to confirm your address."
    } else {
        "It takes a minute. We'll email you a code to confirm your address."
    }
}

async fn sign_up_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
    caller: Caller,
) -> Response {
    let (csrf, cookies) = csrf_token(&state, &headers);
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    // An organization invitation's link: someone signed in may join with their account.
    let ticket = q.ticket.as_deref().filter(|t| !t.is_empty() && t.len() <= 256);
    if let Some(ticket) = ticket {
        if let Some(page) = invitation_link::landing(&state, &caller, &csrf, ticket, &cookies).await {
            return page;
        }
    }
    let mut form = sign_up_form(&state, &csrf, redirect_url.as_deref(), &HashMap::new());
    if let Some(ticket) = ticket {
        form.push_str(&invitation_link::sign_in_instead(ticket));
    }
    Page::new("Create your account", sign_up_sub(&state)).body(form).into_response(StatusCode::OK, &cookies)
}

async fn sign_up_submit(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let values: HashMap<&str, String> = ["first_name", "last_name", "email_address", "username"]
        .into_iter()
        .map(|k| (k, p.text(k).unwrap_or_default()))
        .collect();
    let render_error = |e: &ServiceError, cookies: &[String]| {
        let csrf = read_cookie(&headers, CSRF_COOKIE).unwrap_or_default();
        let page = Page::new("Create your account", sign_up_sub(&state)).alert(&e.long_message).body(sign_up_form(
            &state,
            &csrf,
            redirect_url.as_deref(),
            &values,
        ));
        with_retry_after(page.into_response(status_of(e), cookies), e)
    };
    let (client, token) = match ensure_client(&state, &caller).await {
        Ok(v) => v,
        Err(e) => return render_error(&e.0, &[]),
    };
    let cookies = token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
    let input = SignUpInput {
        email_address: Some(values["email_address"].clone()),
        password: Some(p.text("password").unwrap_or_default()),
        username: Some(values["username"].clone()).filter(|u| !u.is_empty()),
        first_name: Some(values["first_name"].clone()),
        last_name: Some(values["last_name"].clone()),
        unsafe_metadata: None,
    };
    let row = match state.services.create_sign_up(&caller.ctx, &client, input).await {
        Ok(row) => row,
        Err(e) => return render_error(&e, &cookies),
    };
    // `[email_links] sign_up`: the address is proved by a link (docs/email-links.md).
    if email_link::sign_up_links(&state) {
        if let Err(e) = email_link::mail_sign_up_link(&state, &caller, &client, &row.id, redirect_url.as_deref()).await
        {
            return render_error(&e, &cookies);
        }
    }
    redirect(&with_redirect("/sign-up/verify", redirect_url.as_deref()), &cookies)
}

fn verify_form(csrf: &str, redirect_url: Option<&str>, email: &str) -> String {
    format!(
        r#"<p class="sub">We sent a 6-digit code to <strong>{email}</strong>. It expires in 10 minutes.</p>
<form method="post" action="{action}" novalidate>
<input type="hidden" name="csrf" value="{csrf}">
<label for="code">Verification code</label>
<input id="code" name="code" class="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required autofocus>
<button class="primary" type="submit">Verify</button>
</form>
<form method="post" action="{resend}" class="foot"><input type="hidden" name="csrf" value="{csrf}">Didn't get it? <button class="link" type="submit">Send a new code</button></form>"#,
        email = esc(email),
        action = esc(&with_redirect("/sign-up/verify", redirect_url)),
        resend = esc(&with_redirect("/sign-up/resend", redirect_url)),
        csrf = esc(csrf),
    )
}

async fn current_sign_up(state: &AppState, caller: &Caller) -> Option<(Client, latchkey_store::SignUpRow)> {
    let client = caller.client.clone()?;
    let id = client.sign_up_id.clone()?;
    let row = state.services.sign_up_of(&client, &id).await.ok()?;
    Some((client, row))
}

async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
    caller: Caller,
) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((client, row)) = current_sign_up(&state, &caller).await else {
        return redirect(&with_redirect("/sign-up", redirect_url.as_deref()), &[]);
    };
    if email_link::link_sign_up(&row) {
        return email_link::sign_up_waiting(
            &state,
            &headers,
            &caller,
            &client,
            &row,
            redirect_url,
            q.notice.as_deref(),
        )
        .await;
    }
    let (csrf, cookies) = csrf_token(&state, &headers);
    let mut page = Page::new("Check your email", "");
    if q.notice.as_deref() == Some("code_sent") {
        page = page.notice("A new code is on its way.");
    }
    page.body(verify_form(&csrf, redirect_url.as_deref(), row.email.as_deref().unwrap_or("")))
        .into_response(StatusCode::OK, &cookies)
}

async fn verify_submit(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((client, row)) = current_sign_up(&state, &caller).await else {
        return redirect(&with_redirect("/sign-up", redirect_url.as_deref()), &[]);
    };
    let code = p.text("code").unwrap_or_default();
    match state.services.attempt_sign_up_verification(&caller.ctx, &client, &row.id, &code).await {
        Ok(done) if done.row.status == "complete" => {
            let cookies = done.new_client_token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
            finish_signed_in(&state, &caller, &client, redirect_url, cookies).await
        }
        Ok(_) => redirect(&with_redirect("/sign-up", redirect_url.as_deref()), &[]),
        Err(e) => {
            let csrf = read_cookie(&headers, CSRF_COOKIE).unwrap_or_default();
            let mut page = Page::new("Check your email", "").alert(&e.long_message);
            if e.code == "form_identifier_exists" {
                page = page.body(format!(
                    r#"<p class="sub">Please <a href="{}">sign in</a> instead.</p>"#,
                    esc(&with_redirect("/sign-in", redirect_url.as_deref()))
                ));
            } else {
                page = page.body(verify_form(&csrf, redirect_url.as_deref(), row.email.as_deref().unwrap_or("")));
            }
            with_retry_after(page.into_response(status_of(&e), &[]), &e)
        }
    }
}

async fn verify_resend(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, caller, .. } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some((client, row)) = current_sign_up(&state, &caller).await else {
        return redirect(&with_redirect("/sign-up", redirect_url.as_deref()), &[]);
    };
    let (sent, notice) = if email_link::link_sign_up(&row) {
        (email_link::mail_sign_up_link(&state, &caller, &client, &row.id, redirect_url.as_deref()).await, "link_sent")
    } else {
        (
            state.services.prepare_sign_up_verification(&caller.ctx, &client, &row.id, "email_code").await.map(|_| ()),
            "code_sent",
        )
    };
    match sent {
        Ok(()) => {
            let base = with_redirect("/sign-up/verify", redirect_url.as_deref());
            let sep = if base.contains('?') { '&' } else { '?' };
            redirect(&format!("{base}{sep}notice={notice}"), &[])
        }
        Err(e) => with_retry_after(
            Page::new("Check your email", "").alert(&e.long_message).into_response(status_of(&e), &[]),
            &e,
        ),
    }
}

async fn sign_out(form: PageForm) -> Response {
    let PageForm { state, caller, .. } = form;
    let mut cookies = Vec::new();
    if let Some(client) = &caller.client {
        if let Err(e) = state.services.sign_out_client(client).await {
            return Page::new("Sign out failed", "").alert(&e.long_message).into_response(status_of(&e), &[]);
        }
    }
    cookies.extend(signed_out_cookies(&state));
    redirect("/sign-in?notice=signed_out", &cookies)
}

/// What tells the browser's SDKs it is signed out: `__client_uat=0` and no `__session`.
pub(super) fn signed_out_cookies(state: &AppState) -> Vec<String> {
    let mut cookies = state.config.cookies.uat(0);
    cookies.extend(state.config.cookies.session(None));
    cookies
}

// ---- the signed-in caller (the profile and organization pages) ------------------------------

pub(super) struct Signed {
    pub(super) session: SessionRow,
    pub(super) user: UserRecord,
    pub(super) who: latchkey_service::SignedIn,
}

/// The signed-in caller, when their session is active: a pending one (a task to finish first)
/// reaches only the task's page (`setup_task`).
pub(super) async fn signed_in(state: &AppState, caller: &Caller) -> Option<Signed> {
    signed_in_any(state, caller).await.filter(|me| me.session.pending_task.is_none())
}

/// Where a page for signed-in people sends a caller [`signed_in`] refused: to the session's
/// task when it has one, else to sign in; `back` (a path of ours) is where they return.
pub(super) async fn sign_in_first(state: &AppState, caller: &Caller, back: &str) -> Response {
    if signed_in_any(state, caller).await.is_some_and(|me| me.session.pending_task.is_some()) {
        return redirect(&setup_task::path(Some(back)), &[]);
    }
    redirect(&with_redirect("/sign-in", Some(back)), &[])
}

/// The signed-in caller, pending or active.
pub(super) async fn signed_in_any(state: &AppState, caller: &Caller) -> Option<Signed> {
    let client = caller.client.as_ref()?;
    let sid = client.last_active_session_id.as_deref()?;
    let (who, session) = state.services.signed_in(client, sid).await.ok()?;
    state.services.note_device(&caller.ctx, &session).await;
    let user = state.services.users().user(who.user_id()).await.ok()?;
    Some(Signed { session, user, who })
}
