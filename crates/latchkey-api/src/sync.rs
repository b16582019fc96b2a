//! The sync API (`/v1/sync/…`), called by `latchkey-js` with the session token as bearer:
//! push, pull (compressed) and a live stream of "this space changed" events. Every failure
//! is in the one error shape; an expired or revoked token is a 401 before anything is read.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream};
use latchkey_service::sync::{PullQuery, SyncCaller, PERSONAL_SPACE};
use latchkey_service::{ErrorKind, ServiceError};
use tokio::sync::broadcast::error::RecvError;
use tower_http::compression::{CompressionLayer, CompressionLevel};

use latchkey_axum::credential::authorization_token;

use crate::error::{json_response, ApiError};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sync/push", post(push))
        .route("/v1/sync/pull", get(pull).layer(CompressionLayer::new().quality(CompressionLevel::Fastest)))
        .route("/v1/sync/events", get(events))
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<SyncCaller, ApiError> {
    Ok(state.sync.caller(authorization_token(headers)).await?)
}

async fn push(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let caller = caller(&state, req.headers()).await?;
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Err(ApiError(ServiceError::new(
            ErrorKind::UnsupportedMediaType,
            "unsupported_media_type",
            "A push must be sent as application/json.",
        )));
    }
    let max = state.sync.config().max_push_bytes;
    let body = axum::body::to_bytes(req.into_body(), max).await.map_err(|_| {
        ApiError(
            ServiceError::new(
                ErrorKind::PayloadTooLarge,
                "sync_push_too_large",
                format!("A push may be at most {max} bytes."),
            )
            .long("Nothing was applied. Push the outbox in smaller batches."),
        )
    })?;
    let result = state.sync.push(&caller, &body).await?;
    let mut res = json_response(StatusCode::OK, &result);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn pull_query(raw: Option<&str>) -> Result<PullQuery, ApiError> {
    let mut query = PullQuery::default();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let number = |param: &'static str| {
            value.parse::<i64>().map_err(|_| {
                ApiError(
                    ServiceError::bad_request("sync_pull_invalid", format!("{param} must be an integer.")).param(param),
                )
            })
        };
        match key.as_ref() {
            "cursor" => query.cursor = Some(value.to_string()),
            "client_id" => query.client_id = Some(value.to_string()),
            "limit" => query.limit = Some(number("limit")?),
            "schema_version" => query.schema_version = Some(number("schema_version")?),
            _ => {}
        }
    }
    Ok(query)
}

async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    let query = pull_query(raw.as_deref())?;
    let page = state.sync.pull(&caller, &query).await?;
    let mut res = (StatusCode::OK, Body::from(page)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `GET /v1/sync/events`: a `change` event `{space, seq}` whenever a visible space changes
/// (and `draining` when the instance begins to stop: the stream ends, the client reconnects),
/// so the client pulls at once. At every keep-alive the session and its spaces are checked
/// again: a session that ended closes the stream (`ended`), a space the user left is no longer
/// announced. The stream also ends when the session token expires (`expired`); the client
/// reconnects with a fresh one.
async fn events(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if state.drain.is_draining() {
        // A stream opened here would end at once: the client should reconnect elsewhere.
        return Err(ApiError(ServiceError::new(ErrorKind::Unavailable, "draining", "This instance is shutting down.")));
    }
    let caller = caller(&state, &headers).await?;
    let slot = state.sync.open_stream(&caller)?;
    let names = state.sync.stream_spaces(&caller).await?;
    let receiver = state.sync.hub().subscribe();
    let lifetime = (caller.expires_at() - state.services.clock.now_secs()).clamp(1, 3600);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(lifetime as u64);
    let every = Duration::from_secs(state.sync.config().events_recheck_secs.max(1));
    let live = LiveStream {
        receiver,
        names,
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + every, every),
        caller,
        _slot: slot,
    };
    let stream = change_stream(state, live, deadline);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(every)).into_response())
}

/// What one open stream holds: its subscription, the spaces it may hear of, when to check
/// them again, and its place among the session's streams (freed when the stream ends).
struct LiveStream {
    receiver: tokio::sync::broadcast::Receiver<latchkey_service::sync::SpaceChanged>,
    names: HashMap<String, String>,
    recheck: tokio::time::Interval,
    caller: SyncCaller,
    _slot: latchkey_service::sync::events::StreamSlot,
}

fn change_stream(
    state: AppState,
    live: LiveStream,
    deadline: tokio::time::Instant,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let ready = Event::default().event("ready").data(r#"{"spaces":"subscribed"}"#);
    let first = stream::once(async move { Ok(ready) });
    let rest = stream::unfold(Some(live), move |live| {
        let state = state.clone();
        async move {
            let mut live = live?;
            loop {
                tokio::select! {
                    // The instance is stopping: the client pulls, then reconnects elsewhere.
                    _ = state.drain.started() => {
                        let end = Event::default().event("draining").data(r#"{"reason":"instance_draining"}"#);
                        return Some((Ok(end), None));
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        let end = Event::default().event("expired").data("{}");
                        return Some((Ok(end), None));
                    }
                    _ = live.recheck.tick() => match state.sync.stream_spaces(&live.caller).await {
                        Ok(names) => live.names = names,
                        Err(e) if e.kind == ErrorKind::Unauthenticated => {
                            let end = Event::default().event("ended").data(r#"{"reason":"session_ended"}"#);
                            return Some((Ok(end), None));
                        }
                        // The database is away: keep the spaces it last allowed, try again later.
                        Err(_) => {}
                    },
                    received = live.receiver.recv() => match received {
                        Ok(change) => {
                            if let Some(name) = live.names.get(&change.space) {
                                let data = serde_json::json!({"space": name, "seq": change.seq}).to_string();
                                return Some((Ok(Event::default().event("change").data(data)), Some(live)));
                            }
                        }
                        // Missed events: tell the client to pull every space.
                        Err(RecvError::Lagged(_)) => {
                            let data = serde_json::json!({"space": PERSONAL_SPACE, "seq": null, "all": true}).to_string();
                            return Some((Ok(Event::default().event("change").data(data)), Some(live)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        }
    });
    futures_util::StreamExt::chain(first, rest)
}
