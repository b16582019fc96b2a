//! The rules of parameters every service applies the same way (docs/backend-api.md): metadata
//! objects and their size, deep merges, phone numbers, paging, trimmed names, and the
//! identifier a uniqueness conflict names. One module that services import, so they never
//! import each other for them.

use latchkey_core::metadata::{self, MetadataProblem};
use latchkey_core::phone::normalize_phone;
use latchkey_store::{StoreError, UserRecord};
use serde_json::Value;

use crate::error::{Result, ServiceError};

/// Largest page a list returns.
pub const MAX_PAGE: i64 = 500;

pub(crate) fn metadata_param(value: &Value, param: &'static str) -> Result<String> {
    metadata::check(value).map_err(|p| {
        let message = match p {
            MetadataProblem::NotAnObject => format!("{param} must be a JSON object"),
            MetadataProblem::TooLarge => {
                format!("{param} exceeds the maximum size of {} bytes", metadata::MAX_METADATA_BYTES)
            }
        };
        let code = match p {
            MetadataProblem::NotAnObject => "form_param_format_invalid",
            MetadataProblem::TooLarge => "form_param_exceeds_allowed_size",
        };
        ServiceError::unprocessable(code, message).param(param)
    })?;
    Ok(value.to_string())
}

/// A metadata write: deep merge (`null` deletes a key) or replacement.
pub(crate) fn apply_metadata(stored: &str, patch: &Value, param: &'static str, merge: bool) -> Result<String> {
    if merge {
        merge_metadata(stored, patch, param)
    } else {
        metadata_param(patch, param)
    }
}

pub(crate) fn merge_metadata(stored: &str, patch: &Value, param: &'static str) -> Result<String> {
    let Value::Object(patch) = patch else {
        return Err(ServiceError::unprocessable("form_param_format_invalid", format!("{param} must be a JSON object"))
            .param(param));
    };
    let mut current = metadata::parse(stored);
    metadata::deep_merge(&mut current, patch);
    metadata_param(&Value::Object(current), param)
}

pub(crate) fn phone_param(value: &str) -> Result<String> {
    normalize_phone(value).ok_or_else(|| {
        ServiceError::unprocessable(
            "form_param_format_invalid",
            "Enter a phone number in international format, such as +15550100199.",
        )
        .param("phone_number")
    })
}

pub(crate) fn paging(limit: i64, offset: i64) -> Result<(i64, i64)> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ServiceError::unprocessable(
            "form_param_value_invalid",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )
        .param("limit"));
    }
    if offset < 0 {
        return Err(ServiceError::unprocessable("form_param_value_invalid", "offset must be 0 or more").param("offset"));
    }
    Ok((limit, offset))
}

pub(crate) fn trimmed(v: Option<String>, param: &'static str) -> Result<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some(v) if v.chars().count() > 256 => {
            Err(ServiceError::unprocessable("form_param_exceeds_allowed_size", format!("{param} is too long"))
                .param(param))
        }
        Some(v) => {
            let t = v.trim().to_owned();
            Ok(Some((!t.is_empty()).then_some(t)))
        }
    }
}

pub(crate) fn conflict_to_identifier(e: StoreError, param: &'static str) -> ServiceError {
    match e {
        StoreError::Conflict(_) => ServiceError::identifier_exists(param),
        other => other.into(),
    }
}

/// An address of the user's that may become primary: it must be theirs and verified.
pub(crate) fn primary_email_choice(record: &UserRecord, id: String) -> Result<String> {
    let email = record
        .emails
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ServiceError::not_found("Email address").param("primary_email_address_id"))?;
    if !email.verified {
        return Err(ServiceError::unprocessable(
            "form_identification_not_verified",
            "Verify this address before making it primary.",
        )
        .param("primary_email_address_id"));
    }
    Ok(id)
}
