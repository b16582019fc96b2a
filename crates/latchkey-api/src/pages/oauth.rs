//! "Continue with Google" on the hosted `/sign-in` and `/sign-up` pages
//! (docs/identity-providers.md): a button per configured provider posts here; the browser goes
//! to the provider, comes back through `/v1/oauth_callback`, and lands on
//! `/sign-in/sso-callback`, which finishes what the callback left: a new person's sign-up
//! (`transfer`), or the reason the trip failed.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use latchkey_service::ServiceError;

use super::form::PageForm;
use super::html::{esc, Page};
use super::{
    finish_signed_in, has_active_session, redirect, safe_redirect, status_of, with_redirect, with_retry_after,
    PageQuery,
};
use crate::fapi::{ensure_client, Caller};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/sign-in/oauth", post(start)).route("/sign-in/sso-callback", get(sso_callback))
}

/// The providers' buttons, or nothing when none is configured.
pub(super) fn buttons(state: &AppState, csrf: &str, redirect_url: Option<&str>) -> String {
    let providers = &state.services.config.oauth;
    if providers.is_empty() {
        return String::new();
    }
    let action = esc(&with_redirect("/sign-in/oauth", redirect_url));
    let mut out = String::new();
    for p in providers {
        out.push_str(&format!(
            r#"<form method="post" action="{action}" class="provider"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="strategy" value="{strategy}"><button type="submit">Continue with {name}</button></form>"#,
            csrf = esc(csrf),
            strategy = esc(&p.strategy),
            name = esc(&p.name),
        ));
    }
    out.push_str(r#"<p class="or">or</p>"#);
    out
}

fn sign_in_error(e: &ServiceError) -> Response {
    let page = Page::new("Sign in", "")
        .alert(&e.long_message)
        .body(r#"<p class="foot"><a href="/sign-in">Back to sign in</a></p>"#.to_owned());
    with_retry_after(page.into_response(provider_page_status(e), &[]), e)
}

/// The status of a page that says why a trip to a provider could not start: a provider that
/// cannot be reached is its outage, not latchkey's, so the page that says so is a plain 200
/// (the Frontend API answers 503 `oauth_provider_unavailable`).
pub(super) fn provider_page_status(e: &ServiceError) -> StatusCode {
    match e.kind {
        latchkey_service::ErrorKind::Unavailable => StatusCode::OK,
        _ => status_of(e),
    }
}

/// Sends the browser to the provider. It comes back to `/sign-in/sso-callback`, or straight to
/// `redirect_url` once signed in.
async fn start(Query(q): Query<PageQuery>, form: PageForm) -> Response {
    let PageForm { state, caller, p, .. } = form;
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let (client, token) = match ensure_client(&state, &caller).await {
        Ok(v) => v,
        Err(e) => return sign_in_error(&e.0),
    };
    let cookies = token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
    if has_active_session(&state, &client).await {
        return finish_signed_in(&state, &caller, &client, redirect_url, cookies).await;
    }
    let strategy = p.text("strategy").unwrap_or_default();
    let back = with_redirect("/sign-in/sso-callback", redirect_url.as_deref());
    let done = redirect_url.clone().unwrap_or_else(|| "/user".into());
    match state.services.start_oauth_sign_in(&caller.ctx, &client, &strategy, back, Some(done)).await {
        Ok((_, provider_url)) => redirect(&provider_url, &cookies),
        Err(e) => {
            let mut res = sign_in_error(&e);
            crate::cookies::append_set_cookies(res.headers_mut(), &cookies);
            res
        }
    }
}

/// What the provider's trip left on the client's sign-in: a new person becomes a sign-up
/// (signed in at once when the provider vouched for the address, else the code page), a
/// failure is said.
async fn sso_callback(State(state): State<AppState>, Query(q): Query<PageQuery>, caller: Caller) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    let Some(client) = caller.client.clone() else {
        return redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    };
    if has_active_session(&state, &client).await {
        return finish_signed_in(&state, &caller, &client, redirect_url, Vec::new()).await;
    }
    let attempt = match client.sign_in_id.as_deref() {
        Some(id) => state.services.sign_in_of(&client, id).await.ok(),
        None => None,
    };
    let Some(attempt) = attempt else {
        return redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]);
    };
    if attempt.status == "needs_second_factor" {
        return redirect(&super::factor_two::path(redirect_url.as_deref()), &[]);
    }
    match attempt.first_factor_status.as_deref() {
        Some("transferable") => match state.services.transfer_sign_up(&caller.ctx, &client).await {
            Ok(step) if step.row.status == "complete" => {
                let cookies = step.new_client_token.map(|t| state.config.cookies.client(&t)).unwrap_or_default();
                finish_signed_in(&state, &caller, &client, redirect_url, cookies).await
            }
            // The address is to be proven with the emailed code first.
            Ok(_) => redirect(&with_redirect("/sign-up/verify", redirect_url.as_deref()), &[]),
            Err(e) => sign_in_error(&e),
        },
        _ => {
            let code = attempt.first_factor_error.as_deref().unwrap_or("oauth_provider_error");
            let message = latchkey_service::oauth::trip_error_message(code);
            let page = Page::new("Sign in", "").alert(message).body(format!(
                r#"<p class="foot"><a href="{}">Back to sign in</a></p>"#,
                esc(&with_redirect("/sign-in", redirect_url.as_deref()))
            ));
            page.into_response(StatusCode::OK, &[])
        }
    }
}
