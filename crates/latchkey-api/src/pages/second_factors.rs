//! "Two-step verification" on the hosted profile page (`/user`): adding an authenticator app
//! (a QR code the server draws as inline SVG, the key as text, then a code of the app), the ten
//! backup codes shown once (copy, download), new backup codes, and removing the app, which
//! needs a recent check ("Confirm it's you", in `reverify`). Shown unless the instance's
//! `[second_factors] policy` is `off`. The same service functions as `/v1/me/totp…`.
//!
//! The key and the backup codes appear only in the answer of the post that made them (never in
//! a URL, never stored in the clear), with `Cache-Control: no-store`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use latchkey_core::reverification::STRICT;
use latchkey_service::second_factors::{Policy, TotpEnrolment};
use latchkey_service::ServiceError;
use latchkey_store::UserRecord;
use qrcode::render::svg;
use qrcode::QrCode;

use super::form::PageForm;
use super::html::{button_form, esc, hidden, Page};
use super::user::{render_user, user_action};
use super::{csrf_token, redirect, sign_in_first, signed_in, status_of, with_retry_after, Signed};
use crate::AppState;

/// The copy buttons' script (the pages' CSP allows scripts of this origin only).
const COPY_JS_PATH: &str = "/assets/latchkey-copy.js";
const ENROL_TITLE: &str = "Add an authenticator app";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/user/totp", post(start))
        .route("/user/totp/verify", post(verify))
        .route("/user/totp/delete", post(remove))
        .route("/user/backup-codes", post(regenerate))
        .route(COPY_JS_PATH, get(copy_script))
}

fn enabled(state: &AppState) -> bool {
    state.services.config.second_factors != Policy::Off
}

/// The section of `/user`, or nothing when the instance turned second factors off.
pub(super) fn section(state: &AppState, csrf: &str, user: &UserRecord) -> String {
    if !enabled(state) {
        return String::new();
    }
    let factors = &user.second_factors;
    let mut items = String::new();
    if factors.totp_enabled() {
        // Where every user must have one, the app stays (the service refuses to remove it).
        let remove = if state.services.config.second_factors == Policy::Required {
            r#"<span class="muted">Required by this application</span>"#.to_owned()
        } else {
            button_form("/user/totp/delete", csrf, "Remove", "danger")
        };
        items.push_str(&format!(r#"<li><span>Authenticator app: on</span><span class="actions">{remove}</span></li>"#));
    } else {
        items.push_str(r#"<li><span>Authenticator app: off</span></li>"#);
    }
    if factors.totp_enabled() || factors.backup_code_enabled() {
        let left = match factors.backup_codes.len() {
            0 => "none left".to_owned(),
            1 => "1 left".to_owned(),
            n => format!("{n} left"),
        };
        let regenerate = if factors.totp_enabled() {
            button_form("/user/backup-codes", csrf, "Regenerate backup codes", "secondary")
        } else {
            String::new()
        };
        items.push_str(&format!(
            r#"<li><span>Backup codes: <span class="muted">{}</span></span><span class="actions">{regenerate}</span></li>"#,
            esc(&left)
        ));
    }
    let (about, add) = if factors.totp_enabled() {
        ("Signing in asks for a code from your authenticator app after your password.", String::new())
    } else {
        (
            "With an authenticator app on your phone, signing in also asks for a code from it: a stolen password alone is not enough.",
            format!(
                r#"<form method="post" action="/user/totp">{}<button class="primary" type="submit">Add an authenticator app</button></form>"#,
                hidden(csrf)
            ),
        )
    };
    format!(
        r#"<section class="card" aria-labelledby="mfa-h"><h2 id="mfa-h">Two-step verification</h2>
<p class="hint">{about}</p>
<ul class="items">{items}</ul>{add}</section>"#
    )
}

/// Where the enrolment's forms and links go: `/user`'s section, or the sign-in's setup task
/// (`setup_task`), which reuses these pages.
pub(super) struct Enrol {
    /// Where the code of the app is posted.
    pub(super) verify: String,
    /// Where "Show a new QR code" posts.
    pub(super) restart: String,
    /// The way out, below the form (HTML).
    pub(super) leave: String,
}

impl Enrol {
    fn user() -> Self {
        Self {
            verify: "/user/totp/verify".into(),
            restart: "/user/totp".into(),
            leave: r#"<p class="foot"><a href="/user">Cancel</a></p>"#.into(),
        }
    }
}

/// A page that shows a secret: never kept by a cache or the browser's history cache.
pub(super) fn secret_page(page: Page, status: StatusCode, cookies: &[String]) -> Response {
    let mut res = page.into_response(status, cookies);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The `otpauth://` URI as a QR code: inline SVG (no request, no third party sees the key).
fn qr_svg(uri: &str) -> Option<String> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    let image = code.render::<svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    // Inline in the page: no XML prologue, and a name for screen readers.
    let start = image.find("<svg")?;
    Some(image[start..].replacen(
        "<svg ",
        r#"<svg role="img" aria-label="QR code of the authenticator app's key" class="qr" "#,
        1,
    ))
}

/// The key as it is typed into an app: groups of four.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

fn verify_form(csrf: &str, action: &str) -> String {
    format!(
        r#"<form method="post" action="{}" novalidate>{}
<label for="code">Code from the app</label>
<input id="code" name="code" class="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{{6}}" maxlength="6" required autofocus>
<button class="primary" type="submit">Verify and turn on</button></form>"#,
        esc(action),
        hidden(csrf)
    )
}

/// A code as typed (apps show it in two groups of three), when it can be an app's code.
pub(super) fn six_digits(typed: &str) -> Result<String, ServiceError> {
    let code = typed.split_whitespace().collect::<String>();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(code);
    }
    Err(ServiceError::unprocessable(
        "form_param_format_invalid",
        "Enter the 6-digit code your authenticator app shows.",
    )
    .param("code"))
}

pub(super) fn enrol_page(csrf: &str, totp: &TotpEnrolment, to: &Enrol) -> Page {
    let qr = qr_svg(&totp.uri).map(|svg| format!(r#"<div class="qr">{svg}</div>"#)).unwrap_or_default();
    Page::new(
        ENROL_TITLE,
        "Scan the QR code with an authenticator app (1Password, Google Authenticator, Authy…), then enter the 6-digit code it shows.",
    )
    .body(format!(
        r#"{qr}<p class="hint">Can't scan it? Enter this key in the app instead:</p>
<p><code id="totp-secret" class="secret">{secret}</code></p>
{form}{leave}"#,
        secret = esc(&grouped(&totp.secret)),
        form = verify_form(csrf, &to.verify),
        leave = to.leave,
    ))
}

/// The signed-in caller of a post, or the way to sign in.
async fn caller_of(state: &AppState, caller: &crate::fapi::Caller) -> Result<Signed, Response> {
    match signed_in(state, caller).await {
        Some(me) => Ok(me),
        None => Err(sign_in_first(state, caller, "/user").await),
    }
}

fn turned_off() -> Response {
    Page::new("Two-step verification", "")
        .alert("Two-step verification is turned off for this application.")
        .body(r#"<p class="foot"><a href="/user">Back to your account</a></p>"#.to_owned())
        .into_response(StatusCode::NOT_FOUND, &[])
}

/// Starts an authenticator app: a new key, shown once on this page.
async fn start(form: PageForm) -> Response {
    let PageForm { state, headers, caller, .. } = form;
    let me = match caller_of(&state, &caller).await {
        Ok(me) => me,
        Err(res) => return res,
    };
    if !enabled(&state) {
        return turned_off();
    }
    match state.account.create_totp(&me.who).await {
        Ok(totp) => {
            let (csrf, cookies) = csrf_token(&state, &headers);
            secret_page(enrol_page(&csrf, &totp, &Enrol::user()), StatusCode::OK, &cookies)
        }
        // A person who still holds backup codes confirms it is them before adding an app.
        Err(e) if e.code == super::reverify::REQUIRED => {
            let then = super::reverify::Then::Nothing;
            super::reverify::ask(&state, &headers, caller.client.as_ref(), &me.session.id, then).await
        }
        Err(e) => render_user(&state, &headers, &me, None, Some(&e), status_of(&e)).await,
    }
}

/// A wrong code: the key is not shown again (it is sealed now); the person types the code the
/// app shows now, or starts over with a new key.
pub(super) fn retry_page(csrf: &str, e: &ServiceError, to: &Enrol) -> Response {
    let page = Page::new(ENROL_TITLE, "").alert(&e.long_message).body(format!(
        r#"<p class="sub">Enter the code the app shows now: codes change every 30 seconds.</p>{}
<p class="hint">Lost the QR code? Start over with a new key (remove the old entry from your app).</p>
<div class="actions">{}</div>{}"#,
        verify_form(csrf, &to.verify),
        button_form(&to.restart, csrf, "Show a new QR code", "secondary"),
        to.leave,
    ));
    with_retry_after(page.into_response(status_of(e), &[]), e)
}

/// Turns the app on with a code of it; the first backup codes come with it (shown once).
async fn verify(form: PageForm) -> Response {
    let PageForm { state, headers, caller, p } = form;
    let me = match caller_of(&state, &caller).await {
        Ok(me) => me,
        Err(res) => return res,
    };
    if !enabled(&state) {
        return turned_off();
    }
    let (csrf, cookies) = csrf_token(&state, &headers);
    let code = match six_digits(&p.text("code").unwrap_or_default()) {
        Ok(code) => code,
        Err(e) => return retry_page(&csrf, &e, &Enrol::user()),
    };
    match state.account.verify_totp(&caller.ctx, &me.who, &code).await {
        Ok(done) => match done.backup_codes {
            Some(codes) => {
                let done = Done { href: "/user?notice=totp_added", label: BACK_TO_ACCOUNT };
                codes_page(&state, &codes, "Two-step verification is on.", &done, &cookies)
            }
            None => redirect("/user?notice=totp_added", &cookies),
        },
        // No app waiting for its code (already on, removed, or never started).
        Err(e) if e.code == "resource_not_found" => {
            render_user(&state, &headers, &me, None, Some(&e), StatusCode::NOT_FOUND).await
        }
        Err(e) => retry_page(&csrf, &e, &Enrol::user()),
    }
}

/// A new set of ten backup codes; the old set stops working.
async fn regenerate(form: PageForm) -> Response {
    let PageForm { state, headers, caller, .. } = form;
    let me = match caller_of(&state, &caller).await {
        Ok(me) => me,
        Err(res) => return res,
    };
    if !enabled(&state) {
        return turned_off();
    }
    let made = match state.services.users().reverified(&me.who, STRICT).await {
        Ok(recent) => state.account.create_backup_codes(&recent).await,
        Err(e) => Err(e),
    };
    match made {
        Ok((_, codes)) => {
            let said = "New backup codes are ready. The old ones no longer work.";
            let done = Done { href: "/user?notice=backup_codes", label: BACK_TO_ACCOUNT };
            codes_page(&state, &codes, said, &done, &[])
        }
        // New codes are a way in: they need a recent check, as removing the app does.
        Err(e) if e.code == super::reverify::REQUIRED => {
            let then = super::reverify::Then::Nothing;
            super::reverify::ask(&state, &headers, caller.client.as_ref(), &me.session.id, then).await
        }
        Err(e) => render_user(&state, &headers, &me, None, Some(&e), status_of(&e)).await,
    }
}

/// Removes the app and its backup codes: only after a recent check of the person.
async fn remove(form: PageForm) -> Response {
    user_action(form, "totp_removed", |state, _caller, _p, me| async move {
        let recent = state.services.users().reverified(&me.who, STRICT).await?;
        state.account.delete_totp(&recent).await.map(|_| ())
    })
    .await
}

/// Percent-encodes text for a `data:` URL.
fn data_url_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const BACK_TO_ACCOUNT: &str = "I saved them: back to my account";

/// Where the codes page goes on, once the codes are saved.
pub(super) struct Done<'a> {
    pub(super) href: &'a str,
    pub(super) label: &'a str,
}

/// The backup codes, shown this once: a list, a copy button (with the script) and a download.
pub(super) fn codes_page(
    state: &AppState,
    codes: &[String],
    notice: &str,
    done: &Done<'_>,
    cookies: &[String],
) -> Response {
    let app = &state.services.config.app_name;
    let items: String = codes.iter().map(|c| format!("<li><code>{}</code></li>", esc(c))).collect();
    let file = format!(
        "{app} backup codes\nEach code signs you in once, in place of a code from your authenticator app.\n\n{}\n",
        codes.join("\n")
    );
    let page = Page::new(
        "Save your backup codes",
        "If you lose your phone, each of these codes signs you in once. Keep them somewhere safe: they are shown only now.",
    )
    .notice(notice)
    .body(format!(
        r#"<ol class="codes" id="backup-codes">{items}</ol>
<div class="actions"><button type="button" class="secondary" data-copy="backup-codes" hidden>Copy codes</button>
<a class="button secondary" href="data:text/plain;charset=utf-8,{file}" download="backup-codes.txt">Download codes</a></div>
<p class="foot"><a href="{href}">{label}</a></p>
<script src="{COPY_JS_PATH}" defer></script>"#,
        file = data_url_text(&file),
        href = esc(done.href),
        label = esc(done.label),
    ));
    secret_page(page, StatusCode::OK, cookies)
}

/// Shows every `<button data-copy="id" hidden>` and makes it copy the text of `#id`.
async fn copy_script() -> Response {
    let mut res = include_str!("copy.js").into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_inline_svg_and_the_key_is_grouped() {
        let svg = qr_svg("otpauth://totp/latchkey:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=latchkey");
        let svg = svg.unwrap_or_default();
        assert!(svg.starts_with("<svg role=\"img\""), "{svg}");
        assert!(svg.ends_with("</svg>") && !svg.contains("<?xml"), "{svg}");
        assert_eq!(grouped("JBSWY3DPEHPK3PXPJ"), "JBSW Y3DP EHPK 3PXP J");
        assert_eq!(data_url_text("a b\n%"), "a%20b%0A%25");
    }
}
