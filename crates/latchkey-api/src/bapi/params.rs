//! Every query parameter of a Backend API request is one its operation honours; any other,
//! Clerk's parameters that latchkey does not support included, is refused with 400 naming it,
//! never silently ignored (docs/clerk-conformance.md, "Parameters"). What an operation honours
//! is what its entry in [`super::operations`] documents, so `/v1/openapi.json` and this check
//! cannot disagree.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_service::ServiceError;
use serde_json::Value;

use crate::error::ApiError;

/// Passes the request on when every key of its query is in `honoured` (`key[]` counts as
/// `key`); a query that cannot be parsed is left to the handler's own refusal.
pub(super) async fn only_honoured(honoured: Arc<Vec<&'static str>>, request: Request, next: Next) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or("")).unwrap_or_default();
    for (key, _) in &pairs {
        let name = key.strip_suffix("[]").unwrap_or(key);
        if !honoured.contains(&name) {
            let takes = if honoured.is_empty() {
                "This request takes no query parameters.".to_owned()
            } else {
                format!("This request takes: {}.", honoured.join(", "))
            };
            let error = ServiceError::bad_request(
                "query_param_unknown",
                format!("{name} is not a query parameter latchkey honours for this request."),
            )
            .long(takes)
            .meta("param_name", Value::String(name.to_owned()));
            return ApiError(error).into_response();
        }
    }
    next.run(request).await
}
