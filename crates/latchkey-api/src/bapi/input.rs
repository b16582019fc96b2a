//! Reading Backend API requests: query strings with repeated keys (`user_id=a&user_id=b`, also
//! `user_id[]=…`), and JSON (or form) bodies whose fields are checked for their type, with
//! Clerk's error codes naming the parameter at fault.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use latchkey_service::ServiceError;
use serde_json::Value;

use super::params::{check_body, Honoured};
use crate::error::ApiError;
use crate::params::Params;

fn invalid(param: &'static str, message: String) -> ApiError {
    ApiError(ServiceError::unprocessable("form_param_format_invalid", message).param(param))
}

/// The query string as ordered pairs.
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|_| ApiError::bad_request("malformed_query", "The query string could not be parsed."))?;
        if pairs.len() > 200 {
            return Err(ApiError::bad_request("malformed_query", "Too many query parameters."));
        }
        Ok(Self(pairs))
    }
}

impl Query {
    /// Every value of `key` (sent repeated, or as `key[]`), blanks dropped.
    pub fn all(&self, key: &str) -> Vec<String> {
        let bracketed = format!("{key}[]");
        self.0
            .iter()
            .filter(|(k, v)| (k == key || *k == bracketed) && !v.trim().is_empty() && !v.contains('\0'))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub fn one(&self, key: &str) -> Option<String> {
        self.all(key).into_iter().next()
    }

    pub fn int(&self, key: &'static str, default: i64) -> Result<i64, ApiError> {
        match self.one(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| invalid(key, format!("{key} must be an integer"))),
        }
    }

    pub fn opt_int(&self, key: &'static str) -> Result<Option<i64>, ApiError> {
        self.one(key).map(|v| v.parse().map_err(|_| invalid(key, format!("{key} must be an integer")))).transpose()
    }

    pub fn flag(&self, key: &'static str) -> Result<bool, ApiError> {
        Ok(self.opt_bool(key)?.unwrap_or(false))
    }

    /// A boolean filter: `None` when not given.
    pub fn opt_bool(&self, key: &'static str) -> Result<Option<bool>, ApiError> {
        match self.one(key).as_deref() {
            None => Ok(None),
            Some("false") | Some("0") => Ok(Some(false)),
            Some("true") | Some("1") => Ok(Some(true)),
            Some(_) => Err(invalid(key, format!("{key} must be true or false"))),
        }
    }

    /// `(limit, offset)` with Clerk's defaults: the SDK never sends a falsy value.
    pub fn paging(&self) -> Result<(i64, i64), ApiError> {
        Ok((self.int("limit", 10)?, self.int("offset", 0)?))
    }
}

/// A request body as a flat map (JSON object or form).
pub struct Body(Params);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let honoured = req.extensions().get::<Honoured>().cloned();
        let params = Params::from_request(req, state).await?;
        check_body(params.0.keys(), honoured.as_ref())?;
        Ok(Self(params))
    }
}

/// A bulk body: a JSON array of at most 100 objects, each read like a [`Body`] and checked for
/// fields its operation does not honour.
pub struct BodyList(pub Vec<Body>);

impl<S: Send + Sync> FromRequest<S> for BodyList {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let honoured = req.extensions().get::<Honoured>().cloned();
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::bad_request("malformed_request_body", "The body could not be read."))?;
        let items = Body::list(&bytes, "entries")?;
        for item in &items {
            check_body(item.0 .0.keys(), honoured.as_ref())?;
        }
        Ok(Self(items))
    }
}

impl Body {
    /// A bulk request: a JSON array of at most 100 objects, each read like a body.
    pub fn list(bytes: &[u8], what: &str) -> Result<Vec<Self>, ApiError> {
        let items: Vec<Value> = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(items)) if items.len() <= 100 => items,
            Ok(Value::Array(_)) => {
                return Err(ApiError::bad_request("malformed_request_body", format!("At most 100 {what} at once.")))
            }
            _ => {
                return Err(ApiError::bad_request(
                    "malformed_request_body",
                    format!("The body must be a JSON array of {what}."),
                ))
            }
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(Self(Params(map.into_iter().collect()))),
                _ => Err(ApiError::bad_request(
                    "malformed_request_body",
                    format!("Each of the {what} must be a JSON object."),
                )),
            })
            .collect()
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0 .0.get(key)
    }

    /// Absent → `None`; `null` → `Some(None)`; a string → `Some(Some(..))`.
    pub fn nullable_string(&self, key: &'static str) -> Result<Option<Option<String>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) if s.contains('\0') => Err(invalid(key, format!("{key} contains a NUL character"))),
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(_) => Err(invalid(key, format!("{key} must be a string"))),
        }
    }

    pub fn string(&self, key: &'static str) -> Result<Option<String>, ApiError> {
        Ok(self.nullable_string(key)?.flatten())
    }

    pub fn required_string(&self, key: &'static str) -> Result<String, ApiError> {
        self.string(key)?.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            ApiError(ServiceError::unprocessable("form_param_missing", format!("{key} is required")).param(key))
        })
    }

    pub fn bool(&self, key: &'static str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(invalid(key, format!("{key} must be a boolean"))),
        }
    }

    pub fn int(&self, key: &'static str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| invalid(key, format!("{key} must be an integer")))
            }
            Some(Value::String(s)) => {
                s.parse().map(Some).map_err(|_| invalid(key, format!("{key} must be an integer")))
            }
            Some(_) => Err(invalid(key, format!("{key} must be an integer"))),
        }
    }

    /// `null` clears; an integer sets.
    pub fn nullable_int(&self, key: &'static str) -> Result<Option<Option<i64>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(_) => Ok(Some(self.int(key)?)),
        }
    }

    /// A timestamp: an ISO 8601 string (what the SDK sends for a `Date`) or epoch milliseconds.
    pub fn date(&self, key: &'static str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(key, format!("{key} must be a date"))),
            Some(Value::String(s)) => latchkey_core::clock::parse_rfc3339(s)
                .map(Some)
                .ok_or_else(|| invalid(key, format!("{key} must be an ISO 8601 date such as 2024-05-01T12:00:00Z"))),
            Some(_) => Err(invalid(key, format!("{key} must be a date"))),
        }
    }

    /// A JSON object (or, from a form, a JSON string of one).
    pub fn object(&self, key: &'static str) -> Result<Option<Value>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => Ok(Some(v)),
                _ => Err(invalid(key, format!("{key} must be a JSON object"))),
            },
            Some(_) => Err(invalid(key, format!("{key} must be a JSON object"))),
        }
    }

    /// Any JSON value, as sent.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.get(key).filter(|v| !v.is_null()).cloned()
    }

    /// A list of strings (a lone string counts as a list of one).
    pub fn strings(&self, key: &'static str) -> Result<Vec<String>, ApiError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) if !s.contains('\0') => Ok(vec![s.clone()]),
            Some(Value::Array(items)) if items.len() <= 100 => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .filter(|s| !s.contains('\0'))
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(key, format!("{key} must be a list of strings")))
                })
                .collect(),
            Some(_) => Err(invalid(key, format!("{key} must be a list of strings"))),
        }
    }
}
