//! Request bodies of the Frontend API: Clerk's SDK sends `application/x-www-form-urlencoded`
//! (objects as JSON strings); `latchkey-js` and tools may send JSON. Both become one flat map.
//! Unknown fields are ignored, as Clerk's SDK requires, except fields that name privileges,
//! which are refused so that no client can try to assign them.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use latchkey_service::{ErrorKind, ServiceError};
use serde_json::Value;

use crate::error::ApiError;

/// Fields no Frontend API request may set.
const PRIVILEGED: &[&str] = &[
    "role",
    "public_metadata",
    "private_metadata",
    "banned",
    "locked",
    "user_id",
    "password_hash",
    "verified",
    "created_at",
    "updated_at",
    "external_id",
    "permissions",
    "id",
];

/// The error of a required field or query parameter that is absent or empty.
pub fn missing(key: &'static str) -> ApiError {
    ApiError(ServiceError::unprocessable("form_param_missing", format!("{key} is required")).param(key))
}

#[derive(Debug, Default, Clone)]
pub struct Params(pub HashMap<String, Value>);

impl Params {
    pub fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Every value of a field sent once, repeated, or as a JSON list.
    pub fn texts(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// A required text field.
    pub fn required(&self, key: &'static str) -> Result<String, ApiError> {
        self.text(key).filter(|s| !s.is_empty()).ok_or_else(|| missing(key))
    }

    /// A JSON object field, sent as an object (JSON bodies) or a JSON string (form bodies).
    pub fn object(&self, key: &'static str) -> Result<Option<Value>, ApiError> {
        let bad = || {
            ApiError(
                ServiceError::unprocessable("form_param_format_invalid", format!("{key} must be a JSON object"))
                    .param(key),
            )
        };
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => Ok(Some(v)),
                _ => Err(bad()),
            },
            Some(_) => Err(bad()),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.0.get(key), Some(Value::Bool(true))) || matches!(self.text(key).as_deref(), Some("true" | "1"))
    }

    pub fn refuse_privileged(&self) -> Result<(), ApiError> {
        if let Some(k) = PRIVILEGED.iter().find(|k| self.0.contains_key(**k)) {
            return Err(ApiError(
                ServiceError::bad_request(
                    "form_param_unknown",
                    format!("{k} is not a valid parameter for this request."),
                )
                .param(k),
            ));
        }
        Ok(())
    }

    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let essence = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match essence.as_deref() {
            Some("application/x-www-form-urlencoded") => {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
                    ApiError::bad_request("malformed_request_body", "The form body could not be parsed.")
                })?;
                // A repeated key (`email_address=a&email_address=b`) becomes a list.
                let mut map: HashMap<String, Value> = HashMap::new();
                for (k, v) in pairs {
                    match map.get_mut(&k) {
                        None => {
                            map.insert(k, Value::String(v));
                        }
                        Some(Value::Array(list)) => list.push(Value::String(v)),
                        Some(first) => *first = Value::Array(vec![first.take(), Value::String(v)]),
                    }
                }
                Ok(Self(map))
            }
            Some("application/json") => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Ok(Self(map.into_iter().collect())),
                Ok(_) => Err(ApiError::bad_request("malformed_request_body", "The JSON body must be an object.")),
                Err(_) => Err(ApiError::bad_request("malformed_request_body", "The JSON body is malformed.")),
            },
            _ => Err(ApiError(
                ServiceError::new(
                    ErrorKind::UnsupportedMediaType,
                    "unsupported_content_type",
                    "Send application/x-www-form-urlencoded or application/json.",
                )
                .long("The request body must be application/x-www-form-urlencoded or application/json."),
            )),
        }
        .and_then(|p| {
            if p.0.len() > 100 {
                Err(ApiError::bad_request("malformed_request_body", "Too many fields."))
            } else {
                Ok(p)
            }
        })
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(ServiceError::new(
                    ErrorKind::PayloadTooLarge,
                    "request_body_too_large",
                    "The request body is too large.",
                ))
            } else {
                ApiError::bad_request("malformed_request_body", "The request body could not be read.")
            }
        })?;
        Self::parse(content_type.as_deref(), &body)
    }
}
