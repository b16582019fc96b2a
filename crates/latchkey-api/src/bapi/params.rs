//! Every query parameter and body field of a Backend API request is one its operation honours;
//! any other, Clerk's parameters that latchkey does not support included, is refused with 400
//! naming it, never silently ignored (docs/clerk-conformance.md, "Parameters"). What an
//! operation honours is what its entry in [`super::operations`] documents, so
//! `/v1/openapi.json` and this check cannot disagree. The check runs once the caller's secret key is proven ([`super::SecretKey`]),
//! so an anonymous call hears 401 whatever its query.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use latchkey_service::ServiceError;
use serde_json::Value;

use crate::error::ApiError;

/// The query parameters and body fields the operation of a request honours, attached to the
/// request (`body` is `None` for an operation that documents no object body).
#[derive(Clone)]
pub(crate) struct Honoured {
    pub query: Arc<Vec<&'static str>>,
    pub body: Option<Arc<Vec<String>>>,
}

/// Attaches the operation's [`Honoured`] parameters for the secret-key extractor to check.
pub(super) async fn attach(honoured: Honoured, mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(honoured);
    next.run(request).await
}

/// Refuses the first key of `query` not in `honoured` (`key[]` counts as `key`); a query that
/// cannot be parsed is left to the handler's own refusal.
pub(super) fn check(query: Option<&str>, honoured: &Honoured) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    let Some(name) =
        pairs.iter().map(|(key, _)| key.strip_suffix("[]").unwrap_or(key)).find(|name| !honoured.query.contains(name))
    else {
        return Ok(());
    };
    let takes = if honoured.query.is_empty() {
        "This request takes no query parameters.".to_owned()
    } else {
        format!("This request takes: {}.", honoured.query.join(", "))
    };
    Err(ApiError(
        ServiceError::bad_request(
            "query_param_unknown",
            format!("{name} is not a query parameter latchkey honours for this request."),
        )
        .long(takes)
        .meta("param_name", Value::String(name.to_owned())),
    ))
}

/// Refuses the first field of a body that its operation does not document. Operations without
/// a documented object body (`None`) are not checked here: their handlers read no fields.
pub(crate) fn check_body<'a>(
    mut fields: impl Iterator<Item = &'a String>,
    honoured: Option<&Honoured>,
) -> Result<(), ApiError> {
    let Some(names) = honoured.and_then(|h| h.body.as_ref()) else {
        return Ok(());
    };
    let Some(name) = fields.find(|f| !names.contains(f)) else {
        return Ok(());
    };
    let takes = if names.is_empty() {
        "This request takes no body fields.".to_owned()
    } else {
        format!("This request takes: {}.", names.join(", "))
    };
    Err(ApiError(
        ServiceError::bad_request(
            "form_param_unknown",
            format!("{name} is not a body field latchkey honours for this request."),
        )
        .long(takes)
        .meta("param_name", Value::String(name.clone())),
    ))
}
