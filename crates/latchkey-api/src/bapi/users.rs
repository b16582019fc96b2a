//! Users, their email addresses and phone numbers (`clerkClient.users.*`,
//! `emailAddresses.*`, `phoneNumbers.*`).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use latchkey_core::secret::ConfigSecret;
use latchkey_service::admin::{MetadataChange, NewUser, UserUpdate};
use latchkey_service::ServiceError;
use latchkey_store::{UserOrder, UserQuery};
use serde_json::{json, Value};

use super::input::{Body, Query};
use super::openapi::{list_of, Doc};
use super::{ok, views, Operation, SecretKey};
use crate::error::ApiError;
use crate::AppState;

pub fn operations() -> Vec<Operation> {
    let user_filters = |d: Doc| {
        d.query_list("email_address")
            .query_list("phone_number")
            .query_list("username")
            .query_list("user_id")
            .query_list("external_id")
            .query_list("web3_wallet")
            .query_list("organization_id")
            .query("provider", json!({"type": "string"}))
            .query_list("provider_user_id")
            .query("query", json!({"type": "string"}))
            .query("banned", json!({"type": "boolean"}))
            .query("created_at_before", json!({"type": "integer"}))
            .query("created_at_after", json!({"type": "integer"}))
            .query("last_active_at_before", json!({"type": "integer"}))
            .query("last_active_at_after", json!({"type": "integer"}))
            .query("last_sign_in_at_before", json!({"type": "integer"}))
            .query("last_sign_in_at_after", json!({"type": "integer"}))
    };
    let user_body = json!({
        "email_address": {"type": "array", "items": {"type": "string"}}, "phone_number": {"type": "array", "items": {"type": "string"}},
        "username": {"type": "string"}, "password": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
        "external_id": {"type": "string"}, "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"},
        "unsafe_metadata": {"type": "object"}, "skip_password_checks": {"type": "boolean"}, "skip_password_requirement": {"type": "boolean"},
        "password_digest": {"type": "string"}, "password_hasher": {"type": "string"},
        "legal_accepted_at": {"type": "string", "format": "date-time"}, "created_at": {"type": "string", "format": "date-time"},
        "banned": {"type": "boolean"}, "locked": {"type": "boolean"}, "delete_self_enabled": {"type": "boolean"},
        "create_organization_enabled": {"type": "boolean"}, "create_organizations_limit": {"type": "integer", "minimum": 0},
        "totp_secret": {"type": "string"}, "backup_codes": {"type": "array", "items": {"type": "string"}},
    });
    let update_body = json!({
        "first_name": {"type": ["string", "null"]}, "last_name": {"type": ["string", "null"]}, "username": {"type": ["string", "null"]},
        "external_id": {"type": ["string", "null"]}, "password": {"type": "string"}, "skip_password_checks": {"type": "boolean"},
        "password_digest": {"type": "string"}, "password_hasher": {"type": "string"},
        "sign_out_of_other_sessions": {"type": "boolean"}, "primary_email_address_id": {"type": "string"},
        "primary_phone_number_id": {"type": "string"}, "public_metadata": {"type": "object"}, "private_metadata": {"type": "object"},
        "unsafe_metadata": {"type": "object"}, "delete_self_enabled": {"type": "boolean"}, "create_organization_enabled": {"type": "boolean"},
        "create_organizations_limit": {"type": ["integer", "null"], "minimum": 0},
        "legal_accepted_at": {"type": "string", "format": "date-time"}, "created_at": {"type": "string", "format": "date-time"},
    });
    let metadata_body = json!({"public_metadata": {"type": "object"}, "private_metadata": {"type": "object"}, "unsafe_metadata": {"type": "object"}});
    let flag = |path, route, summary, id| Operation {
        method: Method::POST,
        path,
        route,
        doc: Doc::new("users", summary, id).path("user_id").ok("User"),
    };
    vec![
        Operation {
            method: Method::GET,
            path: "/v1/users",
            route: get(list_users),
            doc: user_filters(Doc::new("users", "List users (a bare array)", "GetUserList"))
                .paging()
                .query("order_by", json!({"type": "string", "default": "-created_at"}))
                .ok_schema(list_of("User")),
        },
        Operation {
            method: Method::POST,
            path: "/v1/users",
            route: post(create_user),
            doc: Doc::new("users", "Create a user", "CreateUser").body(user_body, &[]).ok("User"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/users/count",
            route: get(count_users),
            doc: user_filters(Doc::new("users", "Count users", "GetUsersCount")).ok("TotalCount"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/users/{user_id}",
            route: get(get_user),
            doc: Doc::new("users", "Get a user", "GetUser").path("user_id").ok("User"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/users/{user_id}",
            route: patch(update_user),
            doc: Doc::new("users", "Update a user", "UpdateUser").path("user_id").body(update_body, &[]).ok("User"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/users/{user_id}",
            route: delete(delete_user),
            doc: Doc::new("users", "Delete a user", "DeleteUser").path("user_id").ok("DeletedObject"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/users/{user_id}/metadata",
            route: patch(merge_metadata),
            doc: Doc::new("users", "Deep-merge metadata (null deletes a key)", "UpdateUserMetadata")
                .path("user_id")
                .body(metadata_body.clone(), &[])
                .ok("User"),
        },
        Operation {
            method: Method::PUT,
            path: "/v1/users/{user_id}/metadata",
            route: put(replace_metadata),
            doc: Doc::new("users", "Replace metadata", "ReplaceUserMetadata").path("user_id").body(metadata_body, &[]).ok("User"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/users/{user_id}/verify_password",
            route: post(verify_password),
            doc: Doc::new("users", "Check a user's password", "VerifyPassword")
                .path("user_id")
                .body(json!({"password": {"type": "string"}}), &["password"])
                .ok("Verified"),
        },
        flag("/v1/users/{user_id}/ban", post(ban), "Ban a user (revokes every session)", "BanUser"),
        flag("/v1/users/{user_id}/unban", post(unban), "Unban a user", "UnbanUser"),
        flag("/v1/users/{user_id}/lock", post(lock), "Lock a user (revokes every session)", "LockUser"),
        flag("/v1/users/{user_id}/unlock", post(unlock), "Unlock a user", "UnlockUser"),
        Operation {
            method: Method::POST,
            path: "/v1/email_addresses",
            route: post(create_email),
            doc: Doc::new("email_addresses", "Add an email address to a user", "CreateEmailAddress")
                .body(
                    json!({"user_id": {"type": "string"}, "email_address": {"type": "string"}, "verified": {"type": "boolean"}, "primary": {"type": "boolean"}}),
                    &["user_id", "email_address"],
                )
                .ok("EmailAddress"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/email_addresses/{email_address_id}",
            route: get(get_email),
            doc: Doc::new("email_addresses", "Get an email address", "GetEmailAddress").path("email_address_id").ok("EmailAddress"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/email_addresses/{email_address_id}",
            route: patch(update_email),
            doc: Doc::new("email_addresses", "Update an email address", "UpdateEmailAddress")
                .path("email_address_id")
                .body(json!({"verified": {"type": "boolean"}, "primary": {"type": "boolean"}}), &[])
                .ok("EmailAddress"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/email_addresses/{email_address_id}",
            route: delete(delete_email),
            doc: Doc::new("email_addresses", "Delete an email address", "DeleteEmailAddress").path("email_address_id").ok("DeletedObject"),
        },
        Operation {
            method: Method::POST,
            path: "/v1/phone_numbers",
            route: post(create_phone),
            doc: Doc::new("phone_numbers", "Add a phone number to a user", "CreatePhoneNumber")
                .body(
                    json!({"user_id": {"type": "string"}, "phone_number": {"type": "string"}, "verified": {"type": "boolean"}, "primary": {"type": "boolean"}, "reserved_for_second_factor": {"type": "boolean"}}),
                    &["user_id", "phone_number"],
                )
                .ok("PhoneNumber"),
        },
        Operation {
            method: Method::GET,
            path: "/v1/phone_numbers/{phone_number_id}",
            route: get(get_phone),
            doc: Doc::new("phone_numbers", "Get a phone number", "GetPhoneNumber").path("phone_number_id").ok("PhoneNumber"),
        },
        Operation {
            method: Method::PATCH,
            path: "/v1/phone_numbers/{phone_number_id}",
            route: patch(update_phone),
            doc: Doc::new("phone_numbers", "Update a phone number", "UpdatePhoneNumber")
                .path("phone_number_id")
                .body(json!({"verified": {"type": "boolean"}, "primary": {"type": "boolean"}, "reserved_for_second_factor": {"type": "boolean"}}), &[])
                .ok("PhoneNumber"),
        },
        Operation {
            method: Method::DELETE,
            path: "/v1/phone_numbers/{phone_number_id}",
            route: delete(delete_phone),
            doc: Doc::new("phone_numbers", "Delete a phone number", "DeletePhoneNumber").path("phone_number_id").ok("DeletedObject"),
        },
    ]
}

fn user_query(q: &Query) -> Result<UserQuery, ApiError> {
    let (limit, offset) = q.paging()?;
    let order = q.one("order_by").unwrap_or_else(|| "-created_at".into());
    let (descending, field) = match order.strip_prefix('-') {
        Some(f) => (true, f),
        None => (false, order.strip_prefix('+').unwrap_or(&order)),
    };
    let order_by = match field {
        "created_at" => UserOrder::CreatedAt,
        "updated_at" => UserOrder::UpdatedAt,
        "last_active_at" => UserOrder::LastActiveAt,
        "last_sign_in_at" => UserOrder::LastSignInAt,
        "first_name" => UserOrder::FirstName,
        "last_name" => UserOrder::LastName,
        "username" => UserOrder::Username,
        "email_address" => UserOrder::EmailAddress,
        "phone_number" => UserOrder::PhoneNumber,
        _ => {
            return Err(ApiError(
                ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "order_by must be created_at, updated_at, last_active_at, last_sign_in_at, first_name, last_name, username, email_address or phone_number, with an optional + or - prefix",
                )
                .param("order_by"),
            ))
        }
    };
    // Clerk's document: each of `provider` and `provider_user_id` must be used with the other.
    let provider = q.one("provider");
    let provider_user_ids = q.all("provider_user_id");
    let missing = match (&provider, provider_user_ids.is_empty()) {
        (Some(_), true) => Some(("provider_user_id", "provider")),
        (None, false) => Some(("provider", "provider_user_id")),
        _ => None,
    };
    if let Some((missing, given)) = missing {
        return Err(ApiError(
            ServiceError::unprocessable("form_param_missing", format!("{given} must be used with {missing}"))
                .long(format!(
                    "Users are found by an identity-provider account with both provider and provider_user_id, e.g. provider=oauth_google&provider_user_id=12345; {missing} is missing."
                ))
                .param(missing),
        ));
    }
    Ok(UserQuery {
        email_addresses: q.all("email_address"),
        phone_numbers: q
            .all("phone_number")
            .into_iter()
            .map(|p| latchkey_core::phone::normalize_phone(&p).unwrap_or(p))
            .collect(),
        usernames: q.all("username"),
        user_ids: q.all("user_id"),
        external_ids: q.all("external_id"),
        organization_ids: q.all("organization_id"),
        provider,
        provider_user_ids,
        unmatched_filter: !q.all("web3_wallet").is_empty(),
        banned: q.opt_bool("banned")?,
        query: q.one("query"),
        created_after: q.opt_int("created_at_after")?,
        created_before: q.opt_int("created_at_before")?,
        last_active_after: q.opt_int("last_active_at_after")?,
        last_active_before: q.opt_int("last_active_at_before")?,
        last_sign_in_after: q.opt_int("last_sign_in_at_after")?,
        last_sign_in_before: q.opt_int("last_sign_in_at_before")?,
        order_by,
        descending,
        limit,
        offset,
    })
}

async fn list_users(State(state): State<AppState>, SecretKey(op): SecretKey, q: Query) -> Result<Response, ApiError> {
    let query = user_query(&q)?;
    let users = state.admin.query_users(&op, &query).await?;
    ok(Value::Array(users.iter().map(|u| views::user(&state, u)).collect()))
}

async fn count_users(State(state): State<AppState>, SecretKey(op): SecretKey, q: Query) -> Result<Response, ApiError> {
    let query = user_query(&q)?;
    ok(views::total_count(state.admin.count_users(&op, &query).await?))
}

async fn get_user(State(state): State<AppState>, _: SecretKey, Path(id): Path<String>) -> Result<Response, ApiError> {
    ok(views::user(&state, &state.services.users().user(&id).await?))
}

async fn create_user(State(state): State<AppState>, SecretKey(op): SecretKey, b: Body) -> Result<Response, ApiError> {
    for unsupported in ["web3_wallet"] {
        if b.value(unsupported).is_some() {
            return Err(ApiError(
                ServiceError::unprocessable(
                    "form_param_unsupported",
                    format!("{unsupported} is not supported by latchkey"),
                )
                .long("latchkey does not offer wallets yet; create the user without one."),
            ));
        }
    }
    let input = NewUser {
        email_addresses: b.strings("email_address")?,
        phone_numbers: b.strings("phone_number")?,
        username: b.string("username")?,
        password: b.string("password")?,
        password_digest: b.string("password_digest")?,
        password_hasher: b.string("password_hasher")?,
        first_name: b.string("first_name")?,
        last_name: b.string("last_name")?,
        external_id: b.string("external_id")?,
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        skip_password_checks: b.bool("skip_password_checks")?.unwrap_or(false),
        legal_accepted_at: b.date("legal_accepted_at")?,
        created_at: b.date("created_at")?,
        banned: b.bool("banned")?.unwrap_or(false),
        locked: b.bool("locked")?.unwrap_or(false),
        delete_self_enabled: b.bool("delete_self_enabled")?,
        create_organization_enabled: b.bool("create_organization_enabled")?,
        create_organizations_limit: b.int("create_organizations_limit")?,
        totp_secret: b.string("totp_secret")?.map(ConfigSecret::new),
        backup_codes: b
            .value("backup_codes")
            .map(|_| b.strings("backup_codes"))
            .transpose()?
            .map(|codes| codes.into_iter().map(ConfigSecret::new).collect()),
    };
    let record = state.admin.admin_create_user(&op, input).await?;
    ok(views::user(&state, &record))
}

async fn update_user(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let update = UserUpdate {
        first_name: b.nullable_string("first_name")?,
        last_name: b.nullable_string("last_name")?,
        username: b.nullable_string("username")?,
        external_id: b.nullable_string("external_id")?,
        password: b.string("password")?,
        password_digest: b.string("password_digest")?,
        password_hasher: b.string("password_hasher")?,
        skip_password_checks: b.bool("skip_password_checks")?.unwrap_or(false),
        sign_out_of_other_sessions: b.bool("sign_out_of_other_sessions")?.unwrap_or(false),
        primary_email_address_id: b.string("primary_email_address_id")?,
        primary_phone_number_id: b.string("primary_phone_number_id")?,
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        delete_self_enabled: b.bool("delete_self_enabled")?,
        create_organization_enabled: b.bool("create_organization_enabled")?,
        create_organizations_limit: b.nullable_int("create_organizations_limit")?,
        legal_accepted_at: b.date("legal_accepted_at")?,
        created_at: b.date("created_at")?,
    };
    ok(views::user(&state, &state.admin.update_user(&op, &id, update).await?))
}

async fn delete_user(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.admin.delete_user(&op, &id).await?;
    ok(views::deleted("user", &id))
}

fn metadata_change(b: &Body) -> Result<MetadataChange, ApiError> {
    Ok(MetadataChange {
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
    })
}

async fn merge_metadata(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let record = state.admin.update_user_metadata(&op, &id, metadata_change(&b)?, true).await?;
    ok(views::user(&state, &record))
}

async fn replace_metadata(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let record = state.admin.update_user_metadata(&op, &id, metadata_change(&b)?, false).await?;
    ok(views::user(&state, &record))
}

async fn verify_password(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let password = b.required_string("password")?;
    state.admin.verify_user_password(&op, &id, &password).await?;
    ok(json!({"verified": true}))
}

async fn ban(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::user(&state, &state.admin.set_banned(&op, &id, true).await?))
}

async fn unban(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::user(&state, &state.admin.set_banned(&op, &id, false).await?))
}

async fn lock(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::user(&state, &state.admin.set_locked(&op, &id, true).await?))
}

async fn unlock(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ok(views::user(&state, &state.admin.set_locked(&op, &id, false).await?))
}

async fn create_email(State(state): State<AppState>, SecretKey(op): SecretKey, b: Body) -> Result<Response, ApiError> {
    let user_id = b.required_string("user_id")?;
    let address = b.required_string("email_address")?;
    let verified = b.bool("verified")?.unwrap_or(false);
    let primary = b.bool("primary")?.unwrap_or(false);
    let row = state.admin.admin_add_email(&op, &user_id, &address, verified, primary).await?;
    ok(views::email_json(&row))
}

async fn get_email(State(state): State<AppState>, _: SecretKey, Path(id): Path<String>) -> Result<Response, ApiError> {
    ok(views::email_json(&state.admin.email_address(&id).await?))
}

async fn update_email(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let row = state.admin.admin_update_email(&op, &id, b.bool("verified")?, b.bool("primary")?).await?;
    ok(views::email_json(&row))
}

async fn delete_email(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.admin.admin_delete_email(&op, &id).await?;
    ok(views::deleted("email_address", &id))
}

async fn create_phone(State(state): State<AppState>, SecretKey(op): SecretKey, b: Body) -> Result<Response, ApiError> {
    let user_id = b.required_string("user_id")?;
    let number = b.required_string("phone_number")?;
    let row = state
        .admin
        .admin_add_phone(
            &op,
            &user_id,
            &number,
            b.bool("verified")?.unwrap_or(false),
            b.bool("primary")?.unwrap_or(false),
            b.bool("reserved_for_second_factor")?.unwrap_or(false),
        )
        .await?;
    ok(views::phone_json(&row))
}

async fn get_phone(State(state): State<AppState>, _: SecretKey, Path(id): Path<String>) -> Result<Response, ApiError> {
    ok(views::phone_json(&state.admin.phone_number(&id).await?))
}

async fn update_phone(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let row = state
        .admin
        .admin_update_phone(&op, &id, b.bool("verified")?, b.bool("primary")?, b.bool("reserved_for_second_factor")?)
        .await?;
    ok(views::phone_json(&row))
}

async fn delete_phone(
    State(state): State<AppState>,
    SecretKey(op): SecretKey,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.admin.admin_delete_phone(&op, &id).await?;
    ok(views::deleted("phone_number", &id))
}
