//! "Your data" on the hosted `/user` page (docs/account-data.md): download what latchkey holds
//! about you (the Frontend API's `/v1/me/data_export`, same origin, so the page needs no
//! script), and delete your account, confirmed by typing DELETE and by a recent check.

use axum::http::StatusCode;
use axum::response::Response;
use latchkey_core::reverification::STRICT;
use latchkey_store::UserRecord;

use super::form::PageForm;
use super::html::{hidden, Page};
use super::user::user_action_then;

/// What the person types to confirm: a word, not the address, so a screen reader or an
/// autofill cannot fill it in by accident.
pub(super) const CONFIRMATION: &str = "DELETE";

/// The card; "Delete account" only where both the instance (`delete_self_enabled`) and the
/// user (the Backend API's per-user setting) allow it.
pub(super) fn section(csrf: &str, user: &UserRecord, instance_allows: bool) -> String {
    let delete = if instance_allows && user.user.delete_self_enabled {
        format!(
            r#"<form method="post" action="/user/delete">{}
<p>Deleting your account signs you out everywhere and erases your profile, sessions, memberships and your own synced data. It cannot be undone.</p>
<label for="confirm-delete">Type {CONFIRMATION} to confirm</label><input id="confirm-delete" name="confirm" type="text" autocomplete="off" required>
<button class="danger" type="submit">Delete account</button></form>"#,
            hidden(csrf)
        )
    } else {
        String::new()
    };
    format!(
        r#"<section class="card" aria-labelledby="data-h"><h2 id="data-h">Your data</h2>
<p><a class="button secondary" href="/v1/me/data_export" download>Download my data</a></p>{delete}</section>"#
    )
}

/// `POST /user/delete`: with the typed confirmation and a recent check, the account goes, and
/// the page says so (no session is left to show `/user` to) with the signed-out cookies.
pub(super) async fn user_delete(form: PageForm) -> Response {
    let cookies = super::signed_out_cookies(&form.state);
    let done = move || {
        Page::new("Account deleted", "")
            .notice("Your account and its data are deleted. Goodbye.")
            .body(String::new())
            .into_response(StatusCode::OK, &cookies)
    };
    user_action_then(
        form,
        "account_deleted",
        |state, _caller, p, me| async move {
            if p.text("confirm").as_deref().map(str::trim) != Some(CONFIRMATION) {
                return Err(latchkey_service::ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "Type DELETE to confirm.",
                )
                .param("confirm"));
            }
            let recent = state.services.users().reverified(&me.who, STRICT).await?;
            state.account.delete_own_account(&recent).await.map(|_| ())
        },
        done,
    )
    .await
}
