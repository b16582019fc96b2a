//! Passkeys on the hosted pages (docs/passkeys.md, "Hosted pages, latchkey-js and BabyLog"):
//! "Sign in with a passkey" and the browser's autofill on `/sign-in`, and the "Passkeys"
//! section of `/user` (rename, remove after a recent check, add). Shown when `[passkeys]` is on.
//!
//! WebAuthn needs the browser's JavaScript: a small script of this origin (`passkey.js`, the
//! pages' CSP allows no other) calls the Frontend API on this origin, as clerk-js would, then
//! comes back here: `/sign-in/passkey/done` finishes a completed sign-in as the password form
//! does (the session's cookies, the setup task, the redirect target). Renaming and removing are
//! plain form posts; adding posts its form natively only when the Frontend API asks for a recent
//! check, and this server then shows "Confirm it's you".

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use latchkey_core::reverification::STRICT;
use latchkey_store::UserRecord;

use super::form::PageForm;
use super::html::{button_form, esc, hidden, Page};
use super::user::{render_user, user_action};
use super::{
    factor_two, finish_signed_in, has_active_session, redirect, reverify, safe_redirect, sign_in_first, signed_in,
    status_of, with_redirect, PageQuery,
};
use crate::fapi::Caller;
use crate::AppState;

/// The pages' passkey script (the CSP allows scripts of this origin only).
const SCRIPT_PATH: &str = "/assets/latchkey-passkey.js";
/// Where the script goes once the Frontend API completed a passkey sign-in.
const DONE_PATH: &str = "/sign-in/passkey/done";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(SCRIPT_PATH, get(script))
        .route(DONE_PATH, get(done))
        .route("/user/passkeys/add", post(add))
        .route("/user/passkeys/{id}/rename", post(rename))
        .route("/user/passkeys/{id}/delete", post(remove))
}

fn enabled(state: &AppState) -> bool {
    state.services.config.passkeys.enabled()
}

/// The identifier field's `autocomplete`: `username webauthn` offers passkeys in its autofill.
pub(super) fn identifier_autocomplete(state: &AppState) -> &'static str {
    if enabled(state) && state.services.config.passkeys.allow_autofill {
        "username webauthn"
    } else {
        "username"
    }
}

/// "Sign in with a passkey" below the sign-in form: hidden until the script finds WebAuthn in
/// this browser; `data-autofill` also starts the autofill request (conditional mediation).
pub(super) fn sign_in_button(state: &AppState, redirect_url: Option<&str>) -> String {
    if !enabled(state) {
        return String::new();
    }
    let settings = &state.services.config.passkeys;
    let autofill = if settings.allow_autofill { " data-autofill" } else { "" };
    let button = if settings.show_sign_in_button {
        r#"<button type="button" class="secondary" data-passkey-button>Sign in with a passkey</button>"#
    } else {
        ""
    };
    format!(
        r#"<div class="passkey" data-passkey-sign-in data-done="{done}" data-second="{second}"{autofill} hidden>{button}
<div class="alert error" role="alert" data-passkey-error hidden></div></div>
<script src="{SCRIPT_PATH}" defer></script>"#,
        done = esc(&with_redirect(DONE_PATH, redirect_url)),
        second = esc(&factor_two::path(redirect_url)),
    )
}

/// After a passkey sign-in the script completed: the session's cookies and the way on, as after
/// the password form; a client that is not signed in goes back to sign in.
async fn done(State(state): State<AppState>, Query(q): Query<PageQuery>, caller: Caller) -> Response {
    let redirect_url = safe_redirect(&state, q.redirect_url.as_deref());
    match &caller.client {
        Some(client) if has_active_session(&state, client).await => {
            finish_signed_in(&state, &caller, client, redirect_url, Vec::new()).await
        }
        _ => redirect(&with_redirect("/sign-in", redirect_url.as_deref()), &[]),
    }
}

/// Milliseconds ago, in words.
fn ago(now: i64, then: i64) -> String {
    let mins = (now - then).max(0) / 60_000;
    match mins {
        0 => "just now".into(),
        1..=59 => format!("{mins} min ago"),
        60..=1439 => format!("{} h ago", mins / 60),
        _ => format!("{} days ago", mins / 1440),
    }
}

/// The "Passkeys" section of `/user`, or nothing when passkeys are off.
pub(super) fn section(state: &AppState, csrf: &str, user: &UserRecord) -> String {
    if !enabled(state) {
        return String::new();
    }
    let now = state.services.now();
    let mut items = String::new();
    for p in user.passkeys.iter().filter(|p| p.verified) {
        let used = match p.last_used_at {
            Some(t) => format!("last used {}", ago(now, t)),
            None => format!("added {}, not used yet", ago(now, p.created_at)),
        };
        items.push_str(&format!(
            r#"<li data-passkey="{id}"><span><span class="passkey-name">{name}</span> <span class="muted">{used}</span></span><span class="actions">{remove}</span>
<form method="post" action="/user/passkeys/{id}/rename" class="row full">{h}<div><label for="name-{id}">Name</label><input id="name-{id}" name="name" type="text" maxlength="64" required value="{name}"></div><div><button class="secondary push" type="submit">Rename</button></div></form></li>"#,
            id = esc(&p.id),
            name = esc(&p.name),
            used = esc(&used),
            h = hidden(csrf),
            remove = button_form(&format!("/user/passkeys/{}/delete", p.id), csrf, "Remove", "danger"),
        ));
    }
    let list = if items.is_empty() {
        r#"<p class="muted" data-passkeys-none>No passkeys yet.</p>"#.to_owned()
    } else {
        format!(r#"<ul class="items">{items}</ul>"#)
    };
    format!(
        r#"<section class="card" aria-labelledby="passkeys-h"><h2 id="passkeys-h">Passkeys</h2>
<p class="hint">Sign in with your fingerprint, face or device PIN instead of a password.</p>{list}
<form method="post" action="/user/passkeys/add" data-passkey-add>{h}<button class="primary" type="submit">Add a passkey</button>
<div class="alert error" role="alert" data-passkey-error hidden></div></form>
<script src="{SCRIPT_PATH}" defer></script></section>"#,
        h = hidden(csrf),
    )
}

fn turned_off() -> Response {
    Page::new("Passkeys", "")
        .alert("Passkeys are turned off for this application.")
        .body(r#"<p class="foot"><a href="/user">Back to your account</a></p>"#.to_owned())
        .into_response(StatusCode::NOT_FOUND, &[])
}

/// "Add a passkey" posted as a form: the script does so only when the Frontend API asked for a
/// recent check, so "Confirm it's you" comes first; without the script, the page says why
/// nothing happened.
async fn add(form: PageForm) -> Response {
    let PageForm { state, headers, caller, .. } = form;
    let Some(me) = signed_in(&state, &caller).await else {
        return sign_in_first(&state, &caller, "/user").await;
    };
    if !enabled(&state) {
        return turned_off();
    }
    match state.services.users().reverified(&me.who, STRICT).await {
        Ok(_) => {
            let e = latchkey_service::ServiceError::bad_request(
                "javascript_required",
                "Adding a passkey needs JavaScript in this browser: your device makes the passkey.",
            );
            render_user(&state, &headers, &me, None, Some(&e), StatusCode::BAD_REQUEST).await
        }
        Err(e) if e.code == reverify::REQUIRED => {
            let then = reverify::Then::Passkey;
            reverify::ask(&state, &headers, caller.client.as_ref(), &me.session.id, then).await
        }
        Err(e) => render_user(&state, &headers, &me, None, Some(&e), status_of(&e)).await,
    }
}

async fn rename(Path(id): Path<String>, form: PageForm) -> Response {
    if !enabled(&form.state) {
        return turned_off();
    }
    user_action(form, "passkey_renamed", |state, _caller, p, me| async move {
        let name = p.text("name").unwrap_or_default();
        state.account.rename_passkey(&me.who, &id, &name).await.map(|_| ())
    })
    .await
}

/// Removes a passkey: only after a recent check of the person ("Confirm it's you").
async fn remove(Path(id): Path<String>, form: PageForm) -> Response {
    if !enabled(&form.state) {
        return turned_off();
    }
    user_action(form, "passkey_removed", |state, _caller, _p, me| async move {
        let recent = state.services.users().reverified(&me.who, STRICT).await?;
        state.account.delete_passkey(&recent, &id).await.map(|_| ())
    })
    .await
}

/// The passkey buttons' script (`passkey.js`).
async fn script() -> Response {
    let mut res = include_str!("passkey.js").into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}
