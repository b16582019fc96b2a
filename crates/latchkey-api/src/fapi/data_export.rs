//! "Download my data" (`GET /v1/me/data_export`, docs/account-data.md): one JSON document with
//! the signed-in person's profile (addresses, phone numbers, connected accounts, second
//! factors and passkeys as the Frontend API shows them: no secrets), their sessions with their
//! activity (no tokens), and every synced record they may read. Streamed: the records are read
//! and written a page at a time.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{stream, StreamExt};
use latchkey_service::sync::ExportCursor;
use serde_json::{json, Value};

use super::me::{user_body, Me};
use crate::error::ApiError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/me/data_export", get(data_export))
}

/// Where the stream stands: the head is written, then the records page by page, then the tail.
enum Part {
    Records { cursor: ExportCursor, first: bool },
    Done,
}

async fn data_export(State(state): State<AppState>, m: Me) -> Result<Response, ApiError> {
    // A session waiting for its second factor to be set up reaches no account data.
    state.account.refuse_pending(&m.who, "Finish setting up two-step verification first.").await?;
    let user = user_body(&state, &m.user).await?;
    let sessions: Vec<Value> = (state.account.active_sessions(&m.who).await?.iter())
        .map(|s| {
            json!({
                "id": s.id, "status": state.services.users().session_status(s), "created_at": s.created_at,
                "last_active_at": s.last_active_at, "expire_at": s.expire_at,
                "latest_activity": state.services.activity_of(s),
            })
        })
        .collect();
    let cursor = state.sync.own_export(&m.who).await?;
    let head =
        json!({"object": "data_export", "exported_at": state.services.now(), "user": user, "sessions": sessions});
    // The head object without its closing brace, then `"sync_records":[…]}`.
    let mut head = head.to_string();
    head.pop();
    head.push_str(",\"sync_records\":[");

    let sync = state.sync.clone();
    let pages = stream::unfold(Part::Records { cursor, first: true }, move |part| {
        let sync = sync.clone();
        async move {
            let Part::Records { mut cursor, first } = part else {
                return None;
            };
            match sync.own_export_page(&mut cursor).await {
                Ok(Some(records)) => {
                    let mut chunk = String::new();
                    let mut first = first;
                    for r in records {
                        if !first {
                            chunk.push(',');
                        }
                        first = false;
                        chunk.push_str(&serde_json::to_string(&r).unwrap_or_default());
                    }
                    Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), Part::Records { cursor, first }))
                }
                Ok(None) => Some((Ok(Bytes::from_static(b"]}")), Part::Done)),
                // Cut short: the document does not parse, so a partial export is never taken
                // for a whole one.
                Err(e) => {
                    tracing::warn!(error = %e.message, "data export cut short");
                    Some((Err(std::io::Error::other("data export failed")), Part::Done))
                }
            }
        }
    });
    let body = Body::from_stream(stream::iter([Ok::<_, std::io::Error>(Bytes::from(head))]).chain(pages));
    let mut res = (StatusCode::OK, body).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let disposition = format!("attachment; filename=\"{}-data.json\"", m.user.user.id);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
