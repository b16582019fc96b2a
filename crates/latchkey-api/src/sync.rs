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

use crate::error::{json_response, ApiError};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sync/push", post(push))
        .route("/v1/sync/pull", get(pull).layer(CompressionLayer::new().quality(CompressionLevel::Fastest)))
        .route("/v1/sync/events", get(events))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<SyncCaller, ApiError> {
    Ok(state.services.sync_caller(bearer(headers)).await?)
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
    let max = state.services.config.sync.max_push_bytes;
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
    let result = state.services.sync_push(&caller, &body).await?;
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
    let page = state.services.sync_pull(&caller, &query).await?;
    let mut res = (StatusCode::OK, Body::from(page)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `GET /v1/sync/events`: a `change` event `{space, seq}` whenever a visible space changes,
/// so the client pulls at once. The stream ends when the session token expires; the client
/// reconnects with a fresh one (which also picks up membership changes).
async fn events(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    let spaces = state.services.sync_spaces_of(&caller.user_id).await?;
    let names: HashMap<String, String> = spaces.into_iter().map(|s| (s.key, s.name)).collect();
    let receiver = state.services.sync_hub.subscribe();
    let lifetime = (caller.expires_at - state.services.clock.now_secs()).clamp(1, 3600);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(lifetime as u64);
    let stream = change_stream(receiver, names, deadline);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

fn change_stream(
    receiver: tokio::sync::broadcast::Receiver<latchkey_service::sync::SpaceChanged>,
    names: HashMap<String, String>,
    deadline: tokio::time::Instant,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let ready = Event::default().event("ready").data(r#"{"spaces":"subscribed"}"#);
    let first = stream::once(async move { Ok(ready) });
    let rest = stream::unfold(Some((receiver, names)), move |state| async move {
        let (mut receiver, names) = state?;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    let end = Event::default().event("expired").data("{}");
                    return Some((Ok(end), None));
                }
                received = receiver.recv() => match received {
                    Ok(change) => {
                        if let Some(name) = names.get(&change.space) {
                            let data = serde_json::json!({"space": name, "seq": change.seq}).to_string();
                            return Some((Ok(Event::default().event("change").data(data)), Some((receiver, names))));
                        }
                    }
                    // Missed events: tell the client to pull every space.
                    Err(RecvError::Lagged(_)) => {
                        let data = serde_json::json!({"space": PERSONAL_SPACE, "seq": null, "all": true}).to_string();
                        return Some((Ok(Event::default().event("change").data(data)), Some((receiver, names))));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    futures_util::StreamExt::chain(first, rest)
}
