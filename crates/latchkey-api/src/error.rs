//! The one error shape of every surface:
//! `{"errors":[{"code","message","long_message","meta"}],"clerk_trace_id"}` with
//! `Content-Type: application/json` exactly (Clerk's SDKs compare it with `===`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_service::{ErrorKind, ServiceError};
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl From<latchkey_store::StoreError> for ApiError {
    fn from(e: latchkey_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self(ServiceError::bad_request(code, message))
    }
    pub fn status(&self) -> StatusCode {
        match self.0.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

tokio::task_local! {
    /// The id of the request being handled (its `x-request-id`), set by the request-id layer.
    pub static TRACE_ID: String;
}

pub fn current_trace_id() -> String {
    TRACE_ID.try_with(Clone::clone).unwrap_or_default()
}

pub fn error_body(e: &ServiceError, trace_id: &str) -> Value {
    let mut meta = Map::new();
    if let Some(p) = e.param {
        meta.insert("param_name".into(), Value::String(p.into()));
    }
    for (k, v) in &e.meta {
        meta.insert((*k).into(), v.clone());
    }
    json!({
        "errors": [{"code": e.code, "message": e.message, "long_message": e.long_message, "meta": meta}],
        "clerk_trace_id": trace_id,
    })
}

/// The error code of a response made from an [`ApiError`] (a response extension).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = error_body(&self.0, &current_trace_id()).to_string();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The metrics layer counts refusals by their code (sign-in failures by reason).
        res.extensions_mut().insert(ErrorCode(self.0.code));
        if let ErrorKind::TooManyRequests { retry_after_secs } = self.0.kind {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// A JSON response with the exact content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
