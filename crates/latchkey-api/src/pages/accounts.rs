//! "Connected accounts" on the hosted profile page (`/user`; docs/identity-providers.md, "On
//! the user"): the person's accounts at identity providers, each removable unless it is their
//! last way to sign in.

use axum::extract::Path;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use latchkey_store::UserRecord;

use super::form::PageForm;
use super::html::{button_form, esc};
use super::user::user_action;
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/user/accounts/{id}/delete", post(remove))
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
    format!(
        r#"<section class="card" aria-labelledby="accounts-h"><h2 id="accounts-h">Connected accounts</h2><ul class="items">{items}</ul></section>"#
    )
}

async fn remove(Path(id): Path<String>, form: PageForm) -> Response {
    user_action(form, "account_removed", |state, _caller, _p, me| async move {
        state.account.delete_external_account(&me.who, &id).await.map(|_| ())
    })
    .await
}
