//! `GET /v1/revocations` and `GET /v1/revocations/stream` (docs/revocations.md): sessions
//! ended, users banned, locked or deleted, memberships removed or changed and signing keys
//! revoked, for verifiers holding a verifier key or a secret key, so they refuse a token at once instead of
//! trusting it until it expires.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream};
use futures_util::StreamExt;
use latchkey_core::revocation::Revocation;
use latchkey_service::{ErrorKind, ServiceError};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::bapi::ok;
use crate::error::ApiError;
use crate::AppState;

/// Keep-alive comments on an idle stream (proxies close silent connections).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/revocations", get(catch_up)).route("/v1/revocations/stream", get(stream_of))
}

/// A request with a verifier key (`vk_live_…`) or a secret key: the feed is all either reads.
struct Reader(#[allow(dead_code)] latchkey_service::FeedReader);

impl axum::extract::FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = latchkey_axum::credential::authorization_token(&parts.headers).ok_or_else(|| {
            ApiError(
                ServiceError::unauthenticated("Key missing")
                    .long("Send a verifier key or a secret key as `Authorization: Bearer vk_live_…`."),
            )
        })?;
        Ok(Self(state.services.authenticate_verifier_key(presented).await?))
    }
}

#[derive(Deserialize)]
struct Since {
    /// A cursor from an earlier answer (milliseconds); without it, every live entry.
    since: Option<i64>,
}

/// `GET /v1/revocations?since=<cursor>`: the entries from the cursor on, and the next cursor.
async fn catch_up(State(state): State<AppState>, _key: Reader, Query(q): Query<Since>) -> Result<Response, ApiError> {
    let page = state.services.revocations.catch_up(q.since).await?;
    ok(json!({"object": "list", "data": page.entries, "cursor": page.cursor, "has_more": page.more}))
}

/// `GET /v1/revocations/stream[?since=<cursor>]`: `revocation` events (the entry; its `id:` is
/// the cursor to resume from, which `EventSource` sends back as `Last-Event-ID`), first those
/// from the cursor on, then `ready`, then each new one as it happens. The stream ends with
/// `draining` when this instance stops, or `lagged` when the verifier fell behind: reconnect
/// with the last cursor either way.
async fn stream_of(
    State(state): State<AppState>,
    _key: Reader,
    headers: HeaderMap,
    Query(q): Query<Since>,
) -> Result<Response, ApiError> {
    if state.drain.is_draining() {
        return Err(ApiError(ServiceError::new(ErrorKind::Unavailable, "draining", "This instance is shutting down.")));
    }
    let last_event = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    let mut since = q.since.or(last_event);
    // Subscribed before catching up, so nothing falls between the two.
    let receiver = state.services.revocations.subscribe();
    let mut backlog = Vec::new();
    loop {
        let page = state.services.revocations.catch_up(since).await?;
        since = Some(page.cursor);
        backlog.extend(page.entries);
        if !page.more || backlog.len() > 100_000 {
            break;
        }
    }
    let cursor = since.unwrap_or_default();
    let first = stream::iter(backlog.into_iter().map(|e| Ok(entry_event(&e)))).chain(stream::once(async move {
        Ok(Event::default().event("ready").data(json!({"cursor": cursor}).to_string()))
    }));
    let rest = stream::unfold(Some(receiver), move |receiver| {
        let state = state.clone();
        async move {
            let mut receiver = receiver?;
            tokio::select! {
                _ = state.drain.started() => {
                    Some((Ok(Event::default().event("draining").data(r#"{"reason":"instance_draining"}"#)), None))
                }
                received = receiver.recv() => match received {
                    Ok(entry) => Some((Ok(entry_event(&entry)), Some(receiver))),
                    Err(RecvError::Lagged(_)) => Some((Ok(Event::default().event("lagged").data("{}")), None)),
                    Err(RecvError::Closed) => None,
                },
            }
        }
    });
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(first.chain(rest));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

fn entry_event(entry: &Revocation) -> Event {
    let data = serde_json::to_string(entry).unwrap_or_else(|_| "{}".into());
    Event::default().event("revocation").id(entry.at.to_string()).data(data)
}
