//! An organization invitation's link (`/sign-up?__clerk_ticket=…`) opened by someone who is
//! already signed in, with whatever address: "Join <organization>" names the invited address
//! and theirs, and the click accepts for them (docs/SECURITY.md, "Organizations"). Opening the
//! link accepts nothing: a mail scanner that fetches it must not join anyone. Signed out, the
//! link is the sign-up page (signing up with the invited address accepts), which also offers
//! to sign in first and come back here.

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use latchkey_service::resources::primary_email;

use super::form::PageForm;
use super::html::{esc, hidden, Page};
use super::{redirect, sign_in_first, signed_in, status_of, with_redirect, with_retry_after, Signed};
use crate::fapi::Caller;
use crate::AppState;

const ACCEPT: &str = "/user/invitations/accept-link";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(ACCEPT, post(accept))
}

/// The link's own address, where signing in first comes back to.
fn link_path(ticket: &str) -> String {
    format!("/sign-up?__clerk_ticket={}", url::form_urlencoded::byte_serialize(ticket.as_bytes()).collect::<String>())
}

/// The sign-up page's line for a signed-out visitor who came by an invitation link.
pub(super) fn sign_in_instead(ticket: &str) -> String {
    format!(
        r#"<p class="foot">Invited, and already have an account with another address? <a href="{}">Sign in</a> and you can join with it.</p>"#,
        esc(&with_redirect("/sign-in", Some(&link_path(ticket))))
    )
}

/// The page for a signed-in visitor: what they are invited to, and the button; or why the
/// link no longer works. `None` when nobody is signed in (the sign-up page shows instead).
pub(super) async fn landing(
    state: &AppState,
    caller: &Caller,
    csrf: &str,
    ticket: &str,
    cookies: &[String],
) -> Option<Response> {
    let me = signed_in(state, caller).await?;
    Some(match state.orgs.invitation_for_link(ticket).await {
        Ok((inv, org)) => Page::new(&format!("Join {}", org.name), "You were invited to an organization.")
            .body(accept_form(csrf, ticket, &inv.email, &me))
            .into_response(StatusCode::OK, cookies),
        Err(e) => gone(&e, cookies),
    })
}

fn accept_form(csrf: &str, ticket: &str, invited: &str, me: &Signed) -> String {
    let mine = primary_email(&me.user).unwrap_or_else(|| me.user.user.id.clone());
    format!(
        r#"<p>The invitation went to <strong>{invited}</strong>. You are signed in as <strong>{mine}</strong>; joining adds this account to the organization. Join only if you expected this invitation.</p>
<form method="post" action="{ACCEPT}">{csrf}
<input type="hidden" name="ticket" value="{ticket}">
<button class="primary" type="submit">Join as {mine}</button>
</form>
<p class="foot">Not you? <a href="/user">Your account</a></p>"#,
        invited = esc(invited),
        mine = esc(&mine),
        csrf = hidden(csrf),
        ticket = esc(ticket),
    )
}

fn gone(e: &latchkey_service::ServiceError, cookies: &[String]) -> Response {
    let page =
        Page::new("Invitation", "").alert(&e.long_message).body(r#"<p><a href="/user">Your account</a></p>"#.into());
    with_retry_after(page.into_response(status_of(e), cookies), e)
}

/// Joins, and shows the account page, where the new organization can be made the active one.
/// Joining does not switch it: a link from someone else must not redirect where the caller's
/// new data goes.
async fn accept(form: PageForm) -> Response {
    let PageForm { state, caller, p, .. } = form;
    let ticket = p.text("ticket").unwrap_or_default();
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, &link_path(&ticket)).await;
    };
    match state.orgs.accept_invitation_link(&me.who, &ticket).await {
        Ok(_) => redirect("/user?notice=invitation_accepted", &[]),
        Err(e) => gone(&e, &[]),
    }
}
