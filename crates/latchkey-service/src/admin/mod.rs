//! Administration of users, their identifications and sessions: what the Backend API and the
//! `latchkey users` CLI do. Every rule (formats, uniqueness, metadata limits, password policy)
//! is the one the self-service flows apply.

use latchkey_core::ids::IdKind;
use latchkey_core::metadata::{self, MetadataProblem};
use latchkey_core::password::check_new_password;
use latchkey_core::phone::normalize_phone;
use latchkey_store::{
    CodeFields, EmailRow, PhoneRow, SessionQuery, SessionRow, StoreError, UserQuery, UserRecord, UserRow,
};
use serde_json::Value;

use crate::account::{conflict_to_identifier, primary_email_choice, trimmed};
use crate::error::{ErrorKind, Result, ServiceError};
use crate::identity::{email_param, password_error, username_param};
use crate::Services;

/// Largest page a list returns.
pub const MAX_PAGE: i64 = 500;

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email_addresses: Vec<String>,
    pub phone_numbers: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// An existing hash to import, with `password_hasher` naming its scheme.
    pub password_digest: Option<String>,
    pub password_hasher: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub external_id: Option<String>,
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub unsafe_metadata: Option<Value>,
    pub skip_password_checks: bool,
    pub legal_accepted_at: Option<i64>,
    pub created_at: Option<i64>,
    pub banned: bool,
    pub locked: bool,
    pub delete_self_enabled: Option<bool>,
    pub create_organization_enabled: Option<bool>,
    pub create_organizations_limit: Option<i64>,
}

/// A change to a user; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
    pub password: Option<String>,
    /// An argon2 digest to import instead of a password, as on creation.
    pub password_digest: Option<String>,
    pub password_hasher: Option<String>,
    pub skip_password_checks: bool,
    pub sign_out_of_other_sessions: bool,
    pub primary_email_address_id: Option<String>,
    pub primary_phone_number_id: Option<String>,
    /// Replaced whole (the v2 SDK sends metadata inline in the update).
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub unsafe_metadata: Option<Value>,
    pub delete_self_enabled: Option<bool>,
    pub create_organization_enabled: Option<bool>,
    pub create_organizations_limit: Option<Option<i64>>,
    pub legal_accepted_at: Option<i64>,
    pub created_at: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct MetadataChange {
    pub public_metadata: Option<Value>,
    pub private_metadata: Option<Value>,
    pub unsafe_metadata: Option<Value>,
}

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

fn external_id_param(value: Option<String>) -> Result<Option<String>> {
    match trimmed(value, "external_id")? {
        Some(v) => Ok(v),
        None => Ok(None),
    }
}

fn limit_param(value: Option<i64>) -> Result<Option<i64>> {
    match value {
        Some(n) if n < 0 => {
            Err(ServiceError::unprocessable("form_param_value_invalid", "create_organizations_limit must be 0 or more")
                .param("create_organizations_limit"))
        }
        other => Ok(other),
    }
}

/// Maps a uniqueness conflict on a user write to the identifier it names.
fn user_conflict(e: StoreError) -> ServiceError {
    let param = if e.is_conflict_on("username") {
        "username"
    } else if e.is_conflict_on("external_id") {
        "external_id"
    } else if e.is_conflict_on("phone") {
        "phone_number"
    } else {
        "email_address"
    };
    conflict_to_identifier(e, param)
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

impl Services {
    pub async fn admin_create_user(&self, input: NewUser) -> Result<UserRecord> {
        let now = self.now();
        let user_id = self.new_id(IdKind::User);
        let mut emails: Vec<EmailRow> = Vec::new();
        for address in &input.email_addresses {
            let email = email_param(address, "email_address")?;
            if emails.iter().any(|e| e.email == email) {
                continue;
            }
            emails.push(EmailRow {
                id: self.new_id(IdKind::Identification),
                user_id: user_id.clone(),
                email,
                verified: true,
                verified_at: Some(now),
                code: CodeFields::default(),
                created_at: now,
                updated_at: now,
                version: 1,
            });
        }
        let mut phones: Vec<PhoneRow> = Vec::new();
        for number in &input.phone_numbers {
            let phone = phone_param(number)?;
            if phones.iter().any(|p| p.phone == phone) {
                continue;
            }
            phones.push(PhoneRow {
                id: self.new_id(IdKind::Identification),
                user_id: user_id.clone(),
                phone,
                verified: true,
                created_at: now,
                updated_at: now,
                reserved_for_second_factor: false,
            });
        }
        let username = trimmed(input.username, "username")?.flatten().as_deref().map(username_param).transpose()?;
        if emails.is_empty() && phones.is_empty() && username.is_none() {
            return Err(ServiceError::unprocessable(
                "form_data_missing",
                "An email address, a phone number or a username is required.",
            )
            .param("email_address"));
        }
        let password_hash = self
            .initial_password(
                &input.password,
                &input.password_digest,
                &input.password_hasher,
                input.skip_password_checks,
            )
            .await?;
        let mut user = UserRow::new(user_id.clone(), input.created_at.unwrap_or(now));
        user.updated_at = now;
        user.username = username;
        user.first_name = trimmed(input.first_name, "first_name")?.flatten();
        user.last_name = trimmed(input.last_name, "last_name")?.flatten();
        user.external_id = external_id_param(input.external_id)?;
        user.password_updated_at = password_hash.as_ref().map(|_| now);
        user.password_hash = password_hash;
        user.primary_email_id = emails.first().map(|e| e.id.clone());
        user.primary_phone_id = phones.first().map(|p| p.id.clone());
        if let Some(v) = &input.public_metadata {
            user.public_metadata = metadata_param(v, "public_metadata")?;
        }
        if let Some(v) = &input.private_metadata {
            user.private_metadata = metadata_param(v, "private_metadata")?;
        }
        if let Some(v) = &input.unsafe_metadata {
            user.unsafe_metadata = metadata_param(v, "unsafe_metadata")?;
        }
        user.legal_accepted_at = input.legal_accepted_at;
        user.banned = input.banned;
        user.locked = input.locked;
        user.delete_self_enabled = input.delete_self_enabled.unwrap_or(true);
        user.create_organization_enabled = input.create_organization_enabled.unwrap_or(true);
        user.create_organizations_limit = limit_param(input.create_organizations_limit)?;
        let record = UserRecord { user, emails, phones };
        let event = self.user_event("user.created", &record);
        self.emitting(vec![event]).create_user(&record).await.map_err(user_conflict)?;
        tracing::info!(user_id = %user_id, "user created by an administrator");
        self.user(&user_id).await
    }

    /// The hash a new user starts with: from a password (checked unless told not to), or an
    /// imported argon2 digest.
    async fn initial_password(
        &self,
        password: &Option<String>,
        digest: &Option<String>,
        hasher: &Option<String>,
        skip_checks: bool,
    ) -> Result<Option<String>> {
        if let Some(p) = password {
            if !skip_checks {
                check_new_password(p).map_err(password_error)?;
            } else if p.is_empty() {
                return Err(password_error(latchkey_core::password::PasswordProblem::TooShort));
            } else if p.chars().count() > 256 {
                return Err(password_error(latchkey_core::password::PasswordProblem::TooLong));
            }
            return Ok(Some(self.hasher.hash(p).await?));
        }
        let Some(digest) = digest else {
            return Ok(None);
        };
        let scheme = hasher.as_deref().unwrap_or_default();
        let prefix_ok = match scheme {
            "argon2id" => digest.starts_with("$argon2id$"),
            "argon2i" => digest.starts_with("$argon2i$"),
            _ => {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "password_hasher must be argon2id or argon2i",
                )
                .long("latchkey imports argon2 digests in PHC string format; other hashers are not supported.")
                .param("password_hasher"))
            }
        };
        if !prefix_ok || !is_complete_argon2_phc(digest) {
            return Err(ServiceError::unprocessable(
                "form_param_format_invalid",
                "password_digest is not a PHC string of the named hasher",
            )
            .param("password_digest"));
        }
        Ok(Some(digest.clone()))
    }
}

/// A PHC string that can verify a password: parameters argon2 accepts, a salt and a hash
/// (`$argon2id$garbage` parses as PHC, with `garbage` as its salt, and verifies nothing).
fn is_complete_argon2_phc(digest: &str) -> bool {
    let Ok(hash) = argon2::PasswordHash::new(digest) else {
        return false;
    };
    let output_ok = hash.hash.is_some_and(|h| h.len() >= 16);
    let salt_ok = hash.salt.is_some_and(|s| s.len() >= 8);
    output_ok
        && salt_ok
        && hash.version.is_none_or(|v| v == 0x13 || v == 0x10)
        && argon2::Params::try_from(&hash).is_ok()
}

impl Services {
    pub async fn update_user(&self, user_id: &str, update: UserUpdate) -> Result<UserRecord> {
        let record = self.user(user_id).await?;
        let mut user = record.user.clone();
        let now = self.now();
        if let Some(v) = update.first_name {
            user.first_name = trimmed(v, "first_name")?.flatten();
        }
        if let Some(v) = update.last_name {
            user.last_name = trimmed(v, "last_name")?.flatten();
        }
        if let Some(v) = update.username {
            user.username = trimmed(v, "username")?.flatten().as_deref().map(username_param).transpose()?;
        }
        if let Some(v) = update.external_id {
            user.external_id = external_id_param(v)?;
        }
        if let Some(id) = update.primary_email_address_id {
            user.primary_email_id = Some(primary_email_choice(&record, id)?);
        }
        if let Some(id) = update.primary_phone_number_id {
            if !record.phones.iter().any(|p| p.id == id && p.verified) {
                return Err(ServiceError::not_found("Verified phone number").param("primary_phone_number_id"));
            }
            user.primary_phone_id = Some(id);
        }
        if let Some(v) = &update.public_metadata {
            user.public_metadata = metadata_param(v, "public_metadata")?;
        }
        if let Some(v) = &update.private_metadata {
            user.private_metadata = metadata_param(v, "private_metadata")?;
        }
        if let Some(v) = &update.unsafe_metadata {
            user.unsafe_metadata = metadata_param(v, "unsafe_metadata")?;
        }
        if let Some(v) = update.delete_self_enabled {
            user.delete_self_enabled = v;
        }
        if let Some(v) = update.create_organization_enabled {
            user.create_organization_enabled = v;
        }
        if let Some(v) = update.create_organizations_limit {
            user.create_organizations_limit = limit_param(v)?;
        }
        if let Some(v) = update.legal_accepted_at {
            user.legal_accepted_at = Some(v);
        }
        if let Some(v) = update.created_at {
            user.created_at = v;
        }
        if update.password.is_some() || update.password_digest.is_some() {
            user.password_hash = self
                .initial_password(
                    &update.password,
                    &update.password_digest,
                    &update.password_hasher,
                    update.skip_password_checks,
                )
                .await?;
            user.password_updated_at = Some(now);
        }
        user.updated_at = now;
        user.version += 1;
        let event = self.user_event("user.updated", &UserRecord { user: user.clone(), ..record.clone() });
        self.emitting(vec![event]).update_user(&user).await.map_err(user_conflict)?;
        if update.sign_out_of_other_sessions {
            self.revoke_user_sessions(user_id, None, now).await?;
        }
        self.user(user_id).await
    }

    /// Deep-merges (`merge`) or replaces the given metadata objects.
    pub async fn update_user_metadata(&self, user_id: &str, change: MetadataChange, merge: bool) -> Result<UserRecord> {
        let record = self.user(user_id).await?;
        let mut user = record.user;
        let apply = |stored: &str, patch: &Value, param: &'static str| apply_metadata(stored, patch, param, merge);
        if let Some(v) = &change.public_metadata {
            user.public_metadata = apply(&user.public_metadata, v, "public_metadata")?;
        }
        if let Some(v) = &change.private_metadata {
            user.private_metadata = apply(&user.private_metadata, v, "private_metadata")?;
        }
        if let Some(v) = &change.unsafe_metadata {
            user.unsafe_metadata = apply(&user.unsafe_metadata, v, "unsafe_metadata")?;
        }
        user.updated_at = self.now();
        user.version += 1;
        let after = UserRecord { user: user.clone(), emails: record.emails.clone(), phones: record.phones.clone() };
        self.emitting(vec![self.user_event("user.updated", &after)]).update_user(&user).await?;
        self.user(user_id).await
    }

    pub async fn delete_user(&self, user_id: &str) -> Result<()> {
        let event = self.deleted_event("user.deleted", "user", user_id);
        if self.emitting(vec![event]).delete_user(user_id).await? {
            tracing::info!(user_id, "user deleted");
            Ok(())
        } else {
            Err(ServiceError::not_found("User"))
        }
    }

    /// Bans or unbans; a ban revokes every session and refuses every later sign-in.
    pub async fn set_banned(&self, user_id: &str, banned: bool) -> Result<UserRecord> {
        self.set_user_flags(user_id, |u| u.banned = banned, banned).await
    }

    /// Locks (revoking every session) or unlocks (clearing failed attempts too).
    pub async fn set_locked(&self, user_id: &str, locked: bool) -> Result<UserRecord> {
        self.set_user_flags(
            user_id,
            |u| {
                u.locked = locked;
                if !locked {
                    u.failed_attempts = 0;
                    u.locked_until = None;
                }
            },
            locked,
        )
        .await
    }

    async fn set_user_flags(
        &self,
        user_id: &str,
        change: impl Fn(&mut UserRow),
        end_sessions: bool,
    ) -> Result<UserRecord> {
        let now = self.now();
        // Retried on a concurrent change: these are administrative overrides that must land.
        for _ in 0..3 {
            let mut record = self.store.get_user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
            let user = &mut record.user;
            change(user);
            user.updated_at = now;
            user.version += 1;
            let user = user.clone();
            let mut events = vec![self.user_event("user.updated", &record)];
            let written = if end_sessions {
                events.extend(self.revocation_events(user_id, None, now).await?);
                self.emitting(events).update_user_revoking_sessions(&user, now).await.map(Some)
            } else {
                self.emitting(events).update_user(&user).await.map(|()| None)
            };
            match written {
                Ok(revoked) => {
                    if let Some(n) = revoked {
                        tracing::info!(user_id, sessions = n, "sessions revoked by a ban or lock");
                    }
                    return self.user(user_id).await;
                }
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::stale())
    }

    /// Checks a user's password without signing in (`users.verifyPassword`).
    pub async fn verify_user_password(&self, user_id: &str, password: &str) -> Result<()> {
        let user = self.user(user_id).await?.user;
        let Some(phc) = user.password_hash else {
            self.hasher.verify_dummy(password).await?;
            return Err(ServiceError::unprocessable("password_not_set", "This user has no password.")
                .long("The user signs in without a password, so there is nothing to verify."));
        };
        if self.hasher.verify(password, &phc).await?.ok {
            Ok(())
        } else {
            Err(ServiceError::password_incorrect())
        }
    }

    /// One page of users and the number the filters select.
    pub async fn query_users(&self, query: &UserQuery) -> Result<Vec<UserRecord>> {
        paging(query.limit, query.offset)?;
        Ok(self.store.query_users(query).await?)
    }

    pub async fn count_users(&self, query: &UserQuery) -> Result<i64> {
        Ok(self.store.count_users_matching(query).await?)
    }

    /// Newest first, for the CLI.
    pub async fn list_users(&self, limit: i64, offset: i64) -> Result<(Vec<UserRecord>, i64)> {
        let query = UserQuery {
            limit: limit.clamp(1, MAX_PAGE),
            offset: offset.max(0),
            descending: true,
            ..Default::default()
        };
        let users = self.store.query_users(&query).await?;
        Ok((users, self.store.count_users_matching(&query).await?))
    }

    // ---- email addresses and phone numbers ---------------------------------------------------

    pub async fn email_address(&self, id: &str) -> Result<EmailRow> {
        self.store.get_email(id).await?.ok_or_else(|| ServiceError::not_found("Email address"))
    }

    pub async fn admin_add_email(
        &self,
        user_id: &str,
        address: &str,
        verified: bool,
        primary: bool,
    ) -> Result<EmailRow> {
        let record = self.user(user_id).await?;
        let email = email_param(address, "email_address")?;
        if record.emails.iter().any(|e| e.email == email) {
            return Err(ServiceError::identifier_exists("email_address"));
        }
        if primary && !verified {
            return Err(ServiceError::unprocessable(
                "form_identification_not_verified",
                "Only a verified email address can be primary.",
            )
            .param("primary"));
        }
        let now = self.now();
        let row = EmailRow {
            id: self.new_id(IdKind::Identification),
            user_id: user_id.to_owned(),
            email,
            verified,
            verified_at: verified.then_some(now),
            code: CodeFields::default(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut after = record.clone();
        crate::webhooks::put_email(&mut after, &row);
        let event = self.user_event("user.updated", &after);
        self.emitting(vec![event]).insert_email(&row).await.map_err(|e| conflict_to_identifier(e, "email_address"))?;
        if primary || (verified && record.user.primary_email_id.is_none()) {
            self.make_primary_email(user_id, &row.id).await?;
        }
        Ok(row)
    }

    async fn make_primary_email(&self, user_id: &str, email_id: &str) -> Result<()> {
        self.update_user(
            user_id,
            UserUpdate { primary_email_address_id: Some(email_id.to_owned()), ..Default::default() },
        )
        .await
        .map(|_| ())
    }

    pub async fn admin_update_email(
        &self,
        id: &str,
        verified: Option<bool>,
        primary: Option<bool>,
    ) -> Result<EmailRow> {
        let mut row = self.email_address(id).await?;
        if let Some(v) = verified {
            if v != row.verified {
                let user = self.user(&row.user_id).await?.user;
                if !v && user.primary_email_id.as_deref() == Some(id) {
                    return Err(ServiceError::unprocessable(
                        "form_identification_not_verified",
                        "The primary email address must stay verified.",
                    )
                    .param("verified"));
                }
                row.verified = v;
                row.verified_at = v.then(|| self.now());
                row.updated_at = self.now();
                row.version += 1;
                let event = self.user_changed(&row.user_id, |r| crate::webhooks::put_email(r, &row)).await?;
                self.emitting(vec![event])
                    .update_email(&row)
                    .await
                    .map_err(|e| conflict_to_identifier(e, "email_address"))?;
            }
        }
        if primary == Some(true) {
            self.make_primary_email(&row.user_id, id).await?;
        }
        self.email_address(id).await
    }

    pub async fn admin_delete_email(&self, id: &str) -> Result<()> {
        let row = self.email_address(id).await?;
        self.delete_email(&row.user_id, id).await
    }

    pub async fn phone_number(&self, id: &str) -> Result<PhoneRow> {
        self.store.get_phone(id).await?.ok_or_else(|| ServiceError::not_found("Phone number"))
    }

    pub async fn admin_add_phone(
        &self,
        user_id: &str,
        number: &str,
        verified: bool,
        primary: bool,
        reserved_for_second_factor: bool,
    ) -> Result<PhoneRow> {
        let record = self.user(user_id).await?;
        let phone = phone_param(number)?;
        if record.phones.iter().any(|p| p.phone == phone) {
            return Err(ServiceError::identifier_exists("phone_number"));
        }
        if primary && !verified {
            return Err(ServiceError::unprocessable(
                "form_identification_not_verified",
                "Only a verified phone number can be primary.",
            )
            .param("primary"));
        }
        let now = self.now();
        let row = PhoneRow {
            id: self.new_id(IdKind::Identification),
            user_id: user_id.to_owned(),
            phone,
            verified,
            created_at: now,
            updated_at: now,
            reserved_for_second_factor,
        };
        let mut after = record.clone();
        crate::webhooks::put_phone(&mut after, &row);
        let event = self.user_event("user.updated", &after);
        self.emitting(vec![event]).insert_phone(&row).await.map_err(|e| conflict_to_identifier(e, "phone_number"))?;
        if primary || (verified && record.user.primary_phone_id.is_none()) {
            self.update_user(
                user_id,
                UserUpdate { primary_phone_number_id: Some(row.id.clone()), ..Default::default() },
            )
            .await?;
        }
        Ok(row)
    }

    pub async fn admin_update_phone(
        &self,
        id: &str,
        verified: Option<bool>,
        primary: Option<bool>,
        reserved_for_second_factor: Option<bool>,
    ) -> Result<PhoneRow> {
        let mut row = self.phone_number(id).await?;
        let user = self.user(&row.user_id).await?.user;
        if verified == Some(false) && user.primary_phone_id.as_deref() == Some(id) {
            return Err(ServiceError::unprocessable(
                "form_identification_not_verified",
                "The primary phone number must stay verified.",
            )
            .param("verified"));
        }
        if let Some(v) = verified {
            row.verified = v;
        }
        if let Some(v) = reserved_for_second_factor {
            row.reserved_for_second_factor = v;
        }
        row.updated_at = self.now();
        let event = self.user_changed(&row.user_id, |r| crate::webhooks::put_phone(r, &row)).await?;
        self.emitting(vec![event]).update_phone(&row).await.map_err(|e| conflict_to_identifier(e, "phone_number"))?;
        if primary == Some(true) {
            self.update_user(
                &row.user_id,
                UserUpdate { primary_phone_number_id: Some(id.to_owned()), ..Default::default() },
            )
            .await?;
        }
        self.phone_number(id).await
    }

    pub async fn admin_delete_phone(&self, id: &str) -> Result<()> {
        let row = self.phone_number(id).await?;
        let user = self.user(&row.user_id).await?.user;
        if user.primary_phone_id.as_deref() == Some(id) {
            let mut user = user;
            user.primary_phone_id = None;
            user.updated_at = self.now();
            user.version += 1;
            let event = self.user_changed(&user.id.clone(), |r| r.user = user.clone()).await?;
            self.emitting(vec![event]).update_user(&user).await?;
        }
        let event = self.user_changed(&row.user_id, |r| r.phones.retain(|p| p.id != id)).await?;
        self.emitting(vec![event]).delete_phone(id).await?;
        Ok(())
    }

    // ---- sessions ------------------------------------------------------------------------------

    pub async fn session(&self, id: &str) -> Result<SessionRow> {
        self.store.get_session(id).await?.ok_or_else(|| ServiceError::not_found("Session"))
    }

    pub async fn list_sessions(
        &self,
        user_id: Option<String>,
        client_id: Option<String>,
        status: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SessionRow>, i64)> {
        let (limit, offset) = paging(limit, offset)?;
        if let Some(s) = &status {
            const STATUSES: &[&str] =
                &["active", "revoked", "ended", "expired", "removed", "abandoned", "replaced", "pending"];
            if !STATUSES.contains(&s.as_str()) {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    format!("status must be one of {}", STATUSES.join(", ")),
                )
                .param("status"));
            }
        }
        let query = SessionQuery {
            user_id,
            client_id,
            status,
            now: self.now(),
            idle_timeout_ms: self.config.session.inactivity_timeout_ms,
            limit,
            offset,
        };
        Ok(self.store.query_sessions(&query).await?)
    }

    /// A new session on a new client for `user_id` (Clerk's testing endpoint).
    pub async fn admin_create_session(&self, user_id: &str) -> Result<SessionRow> {
        let user = self.user(user_id).await?.user;
        self.refuse_blocked(&user)?;
        let (client, _token) = self.new_client().await?;
        let session = self.new_session(&client.id, user_id);
        self.emitting(vec![self.session_event("session.created", &session)]).insert_session(&session).await?;
        let mut client = client;
        client.last_active_session_id = Some(session.id.clone());
        client.updated_at = session.created_at;
        self.store.update_client(&client).await?;
        tracing::info!(user_id, session_id = %session.id, "session created by an administrator");
        Ok(session)
    }

    pub async fn admin_revoke_session(&self, id: &str) -> Result<SessionRow> {
        let mut session = self.session(id).await?;
        if session.status == "active" {
            session.status = "revoked".into();
            session.updated_at = self.now();
            self.emitting(vec![self.session_event("session.revoked", &session)]).update_session(&session).await?;
        }
        Ok(session)
    }

    /// Refuses banned and administratively locked users.
    pub(crate) fn refuse_blocked(&self, user: &UserRow) -> Result<()> {
        if user.banned {
            return Err(ServiceError::new(ErrorKind::Forbidden, "user_banned", "This account is banned.")
                .long("This account has been banned. Contact the application's support."));
        }
        if user.locked {
            return Err(ServiceError::new(ErrorKind::Forbidden, "user_locked", "Your account is locked.")
                .long("This account has been locked by an administrator.")
                .meta("lockout_expires_in_seconds", Value::Null));
        }
        Ok(())
    }
}
