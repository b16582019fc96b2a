//! "Connected accounts" on the hosted profile page (`/user`; docs/identity-providers.md, "On
//! the user" and "Connecting an account"): the person's accounts at identity providers, each
//! removable unless it is their last way to sign in, and a button per other provider to
//! connect one.

use axum::extract::Path;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use latchkey_store::UserRecord;

use super::form::PageForm;
use super::html::{button_form, esc, hidden, Page};
use super::user::user_action;
use super::{redirect, sign_in_first, signed_in, with_retry_after};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/user/accounts/connect", post(connect)).route("/user/accounts/{id}/delete", post(remove))
}

/// What `/user?connect_error=<code>` says: why the provider's trip did not connect an account.
pub(super) fn connect_error_message(code: &str) -> &'static str {
    match code {
        "external_account_exists" => "That account is already connected to another user.",
        "external_account_mismatch" => "The provider signed in another account than the one being reauthorized.",
        other => latchkey_service::oauth::trip_error_message(other),
    }
}

/// The section, or nothing when no provider is configured and none is joined.
pub(super) fn section(state: &AppState, csrf: &str, user: &UserRecord) -> String {
    let providers = &state.services.config.oauth;
    if providers.is_empty() && user.external_accounts.is_empty() {
        return String::new();
    }
    let mut items = String::new();
    for a in &user.external_accounts {
        // A provider no longer configured still shows, by its strategy.
        let name = providers.iter().find(|p| p.strategy == a.provider).map_or(a.provider.as_str(), |p| p.name.as_str());
        let who = a.email_address.as_deref().or(a.username.as_deref()).unwrap_or(&a.provider_user_id);
        items.push_str(&format!(
            r#"<li><span>{} <span class="muted">{}</span></span><span class="actions">{}</span></li>"#,
            esc(name),
            esc(who),
            button_form(&format!("/user/accounts/{}/delete", a.id), csrf, "Remove", "danger"),
        ));
    }
    if items.is_empty() {
        items.push_str(r#"<li><span class="muted">No account is connected.</span></li>"#);
    }
    let mut connect = String::new();
    for p in providers.iter().filter(|p| !user.external_accounts.iter().any(|a| a.provider == p.strategy)) {
        connect.push_str(&format!(
            r#"<form method="post" action="/user/accounts/connect" class="provider">{}<input type="hidden" name="strategy" value="{}"><button type="submit">Connect {}</button></form>"#,
            hidden(csrf),
            esc(&p.strategy),
            esc(&p.name),
        ));
    }
    format!(
        r#"<section class="card" aria-labelledby="accounts-h"><h2 id="accounts-h">Connected accounts</h2><ul class="items">{items}</ul>{connect}</section>"#
    )
}

/// Sends the browser to the provider; it comes back to `/user` (with `connect_error` when the
/// account could not be connected).
async fn connect(form: PageForm) -> Response {
    let PageForm { state, caller, p, .. } = form;
    let (Some(me), Some(client)) = (signed_in(&state, &caller).await, caller.client.as_ref()) else {
        return sign_in_first(&state, &caller, "/user").await;
    };
    let strategy = p.text("strategy");
    let started = state
        .services
        .start_oauth_connection(
            &caller.ctx,
            client,
            &me.who,
            strategy.as_deref(),
            "/user".into(),
            Some("/user?notice=account_connected".into()),
            &[],
            None,
        )
        .await;
    match started {
        Ok(s) => redirect(&s.provider_url, &[]),
        Err(e) => {
            let page = Page::new("Your account", "")
                .alert(&e.long_message)
                .body(r#"<p class="foot"><a href="/user">Back to your account</a></p>"#.to_owned());
            with_retry_after(page.into_response(super::oauth::provider_page_status(&e), &[]), &e)
        }
    }
}

async fn remove(Path(id): Path<String>, form: PageForm) -> Response {
    user_action(form, "account_removed", |state, _caller, _p, me| async move {
        state.account.delete_external_account(&me.who, &id).await.map(|_| ())
    })
    .await
}
