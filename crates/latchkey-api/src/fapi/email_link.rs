//! `GET /v1/verify?token=…`, where a mailed email link leads (docs/email-links.md). The
//! browser goes on to the page the attempt named, with Clerk's `__clerk_status` (and
//! `__clerk_created_session` when this browser's own attempt completed) in the query, before
//! any `#` fragment, where clerk-js's `handleEmailLinkVerification` reads them. A link of no
//! known attempt gets a page of latchkey's own (Clerk's error body for a caller that is not a
//! browser).

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use latchkey_service::identity::{LinkOutcome, LinkStatus, VERIFY_PATH};
use latchkey_service::ServiceError;

use super::{client_state, Caller};
use crate::cookies::append_set_cookies;
use crate::error::ApiError;
use crate::pages::html::Page;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(VERIFY_PATH, get(verify).post(confirm))
}

#[derive(serde::Deserialize, Default)]
struct VerifyQuery {
    token: Option<String>,
}

/// Opening the link (GET): the browser that asked completes at once; another one is asked to
/// confirm first.
async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Response {
    answer(state, caller, headers, q, false).await
}

/// The confirmation's form, posted back to the same URL (the token is its query): the token
/// itself is the secret, so no other check of the form is needed.
async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<VerifyQuery>,
) -> Response {
    answer(state, caller, headers, q, true).await
}

async fn answer(state: AppState, caller: Caller, headers: HeaderMap, q: VerifyQuery, confirmed: bool) -> Response {
    let token = q.token.unwrap_or_default();
    let outcome = state.services.open_email_link(&caller.ctx, caller.client.as_ref(), &token, confirmed).await;
    if outcome.status == LinkStatus::NeedsConfirmation {
        return confirm_page(&state, &outcome);
    }
    let mut cookies = Vec::new();
    if let (Some(token), Some(client)) = (&outcome.new_client_token, caller.client.as_ref()) {
        cookies.extend(state.config.cookies.client(token));
        // The signed-in state the app's server reads (`__client_uat`, `__session`).
        if let Ok((_, more)) = client_state(&state, &caller.ctx, client).await {
            cookies.extend(more);
        }
    }
    let mut res =
        match outcome.redirect_url.as_deref().and_then(|back| onward(&state.config.public_url, back, &outcome)) {
            Some(location) => {
                let mut res = StatusCode::SEE_OTHER.into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    res.headers_mut().insert(header::LOCATION, v);
                }
                res
            }
            // A person who clicked gets words; a program, Clerk's error body (as the document says).
            None if wants_html(&headers) => page(&outcome),
            None => ApiError(
                ServiceError::bad_request("verification_link_invalid", "This link is not valid.")
                    .long("The link is unknown, used already or mistyped. Ask for a new one."),
            )
            .into_response(),
        };
    append_set_cookies(res.headers_mut(), &cookies);
    res
}

/// `back` (checked when the link was asked for; a path is on this instance) with Clerk's
/// parameters added to its query, its fragment kept after them.
fn onward(public_url: &str, back: &str, outcome: &LinkOutcome) -> Option<String> {
    let mut url = url::Url::parse(public_url).ok()?.join(back).ok()?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("__clerk_status", outcome.status.as_str());
        if let Some(session) = &outcome.created_session_id {
            query.append_pair("__clerk_created_session", session);
        }
    }
    Some(url.into())
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// Asks the person who opened a right link in another browser whether it was them.
fn confirm_page(state: &AppState, outcome: &LinkOutcome) -> Response {
    let app = &state.services.config.app_name;
    let (title, said, button) = if outcome.sign_up {
        (
            "Confirm your email address",
            format!("Confirm this address to finish signing up for {app} in the browser where you started."),
            "Confirm",
        )
    } else {
        (
            "Sign in on your other device?",
            format!("Someone asked to sign in to {app} with this address in another browser or on another device. If that was you, confirm. If not, close this page: nothing happens."),
            "Yes, sign me in there",
        )
    };
    // No action: the form posts to this same URL, token and all.
    let form = format!(r#"<form method="post"><button type="submit" class="primary">{button}</button></form>"#);
    Page::new(title, &said).body(form).into_response(StatusCode::OK, &[])
}

/// The words for a link with nowhere to go.
fn page(outcome: &LinkOutcome) -> Response {
    let (title, said, status) = match outcome.status {
        LinkStatus::Verified | LinkStatus::NeedsConfirmation => {
            ("You're verified", "Return to the tab where you started.", StatusCode::OK)
        }
        LinkStatus::Expired => {
            ("This link has expired", "Links work for 10 minutes. Ask for a new one.", StatusCode::BAD_REQUEST)
        }
        LinkStatus::ClientMismatch => (
            "Open this link in the same browser",
            "This link works only in the browser where you asked for it.",
            StatusCode::BAD_REQUEST,
        ),
        LinkStatus::Failed => (
            "This link is not valid",
            "It may have been used already or mistyped. Ask for a new one.",
            StatusCode::BAD_REQUEST,
        ),
    };
    Page::new(title, said).into_response(status, &[])
}
