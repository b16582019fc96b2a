//! Users: creating (with a password or an imported argon2 digest), updating, deleting,
//! banning and locking, checking a password, and listing.

use latchkey_core::ids::IdKind;
use latchkey_core::password::check_new_password;
use latchkey_core::secret::ConfigSecret;
use latchkey_store::{EmailRow, PhoneRow, StoreError, UserQuery, UserRecord, UserRow};
use serde_json::Value;

use super::AdminService;
use crate::authority::Operator;
use crate::error::{Result, ServiceError};
use crate::identity::{email_param, password_error, username_param};
use crate::params::{primary_email_choice, trimmed};

use crate::params::{apply_metadata, metadata_param, paging, phone_param, MAX_PAGE};

use super::{external_id_param, limit_param, user_conflict, MetadataChange, NewUser, Unverified, UserUpdate};

impl AdminService {
    pub async fn admin_create_user(&self, _operator: &Operator, input: NewUser) -> Result<UserRecord> {
        let user_id = self.new_id(IdKind::User);
        let record = self.new_user_record(user_id.clone(), input, &Unverified::default()).await?;
        let event = self.users.user_event("user.created", &record);
        self.emitting(vec![event]).create_user(&record).await.map_err(user_conflict)?;
        tracing::info!(user_id = %user_id, "user created by an administrator");
        self.users.user(&user_id).await
    }

    /// The user `input` describes, with every rule of creation applied, not yet written: its
    /// email addresses and phone numbers are verified, but for those in `unverified` (imports).
    pub(super) async fn new_user_record(
        &self,
        user_id: String,
        input: NewUser,
        unverified: &Unverified,
    ) -> Result<UserRecord> {
        let now = self.now();
        let mut emails: Vec<EmailRow> = Vec::new();
        let addresses = input.email_addresses.iter().map(|a| (a, true));
        for (address, verified) in addresses.chain(unverified.email_addresses.iter().map(|a| (a, false))) {
            let email = email_param(address, "email_address")?;
            if emails.iter().any(|e| e.email == email) {
                continue;
            }
            emails.push(self.users.new_email_row(&user_id, email, verified));
        }
        let mut phones: Vec<PhoneRow> = Vec::new();
        let numbers = input.phone_numbers.iter().map(|n| (n, true));
        for (number, verified) in numbers.chain(unverified.phone_numbers.iter().map(|n| (n, false))) {
            let phone = phone_param(number)?;
            if phones.iter().any(|p| p.phone == phone) {
                continue;
            }
            phones.push(PhoneRow {
                id: self.new_id(IdKind::Identification),
                user_id: user_id.clone(),
                phone,
                verified,
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
        user.primary_email_id = emails.iter().find(|e| e.verified).map(|e| e.id.clone());
        user.primary_phone_id = phones.iter().find(|p| p.verified).map(|p| p.id.clone());
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
        let mut record = UserRecord {
            user,
            emails,
            phones,
            external_accounts: vec![],
            second_factors: Default::default(),
            passkeys: Vec::new(),
        };
        let codes: Option<Vec<String>> =
            input.backup_codes.as_ref().map(|c| c.iter().map(|s| s.expose().to_owned()).collect());
        record.second_factors =
            self.factors.imported(&record, input.totp_secret.as_ref().map(ConfigSecret::expose), codes.as_deref())?;
        Ok(record)
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
        if latchkey_core::legacy_digest::HASHERS.contains(&scheme) {
            return latchkey_core::legacy_digest::LegacyDigest::parse(scheme, digest)
                .map(|d| Some(d.stored()))
                .map_err(|reason| {
                    ServiceError::unprocessable(
                        "form_param_format_invalid",
                        "password_digest is not a digest of the named hasher",
                    )
                    .long(format!("password_digest is not a {scheme} digest: {reason}."))
                    .param("password_digest")
                });
        }
        let prefix_ok = match scheme {
            "argon2id" => digest.starts_with("$argon2id$"),
            "argon2i" => digest.starts_with("$argon2i$"),
            _ => {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "password_hasher is not one latchkey imports",
                )
                .long(format!(
                    "password_hasher must be argon2id, argon2i or one of: {}.",
                    // awscognito is named only to be refused with its own reason.
                    latchkey_core::legacy_digest::HASHERS
                        .iter()
                        .filter(|h| **h != "awscognito")
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .param("password_hasher"));
            }
        };
        if !prefix_ok || !is_complete_argon2_phc(digest) {
            return Err(ServiceError::unprocessable(
                "form_param_format_invalid",
                "password_digest is not a PHC string of the named hasher",
            )
            .long(
                "password_digest must be a complete argon2 PHC string of the named hasher, with a salt of 8 bytes or \
                 more, a hash of 16 to 64 bytes, and costs a sign-in can bear: m at most 262144 (KiB), m × t at most \
                 1048576, p at most 16.",
            )
            .param("password_digest"));
        }
        Ok(Some(digest.clone()))
    }

    pub async fn update_user(&self, _operator: &Operator, user_id: &str, update: UserUpdate) -> Result<UserRecord> {
        self.change_user(user_id, update).await
    }

    /// Applies an update to a user, for the operator or a flow of this crate.
    pub(crate) async fn change_user(&self, user_id: &str, update: UserUpdate) -> Result<UserRecord> {
        let record = self.users.user(user_id).await?;
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
        let event = self.users.user_event("user.updated", &UserRecord { user: user.clone(), ..record.clone() });
        self.emitting(vec![event]).update_user(&user).await.map_err(user_conflict)?;
        if update.sign_out_of_other_sessions {
            self.users.revoke_user_sessions(user_id, None, now).await?;
        }
        self.users.user(user_id).await
    }

    /// Deep-merges (`merge`) or replaces the given metadata objects.
    pub async fn update_user_metadata(
        &self,
        _operator: &Operator,
        user_id: &str,
        change: MetadataChange,
        merge: bool,
    ) -> Result<UserRecord> {
        let record = self.users.user(user_id).await?;
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
        let after = UserRecord {
            user: user.clone(),
            emails: record.emails.clone(),
            phones: record.phones.clone(),
            external_accounts: record.external_accounts.clone(),
            second_factors: Default::default(),
            passkeys: Vec::new(),
        };
        self.emitting(vec![self.users.user_event("user.updated", &after)]).update_user(&user).await?;
        self.users.user(user_id).await
    }

    pub async fn delete_user(&self, _operator: &Operator, user_id: &str) -> Result<()> {
        let event = self.users.deleted_event("user.deleted", "user", user_id);
        if self.emitting(vec![event]).delete_user(user_id).await? {
            tracing::info!(user_id, "user deleted");
            Ok(())
        } else {
            Err(ServiceError::not_found("User"))
        }
    }

    /// Bans or unbans; a ban revokes every session and refuses every later sign-in.
    pub async fn set_banned(&self, _operator: &Operator, user_id: &str, banned: bool) -> Result<UserRecord> {
        self.set_user_flags(user_id, |u| u.banned = banned, banned).await
    }

    /// Locks (revoking every session) or unlocks (clearing failed attempts too).
    pub async fn set_locked(&self, _operator: &Operator, user_id: &str, locked: bool) -> Result<UserRecord> {
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
            let mut events = vec![self.users.user_event("user.updated", &record)];
            let written = if end_sessions {
                events.extend(self.users.revocation_events(user_id, None, now).await?);
                self.emitting(events).update_user_revoking_sessions(&user, now).await.map(Some)
            } else {
                self.emitting(events).update_user(&user).await.map(|()| None)
            };
            match written {
                Ok(revoked) => {
                    if let Some(n) = revoked {
                        tracing::info!(user_id, sessions = n, "sessions revoked by a ban or lock");
                    }
                    return self.users.user(user_id).await;
                }
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::stale())
    }

    /// Checks a user's password without signing in (`users.verifyPassword`).
    pub async fn verify_user_password(&self, _operator: &Operator, user_id: &str, password: &str) -> Result<()> {
        let user = self.users.user(user_id).await?.user;
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
    pub async fn query_users(&self, _operator: &Operator, query: &UserQuery) -> Result<Vec<UserRecord>> {
        paging(query.limit, query.offset)?;
        Ok(self.store.query_users(query).await?)
    }

    pub async fn count_users(&self, _operator: &Operator, query: &UserQuery) -> Result<i64> {
        Ok(self.store.count_users_matching(query).await?)
    }

    /// Newest first, for the CLI.
    pub async fn list_users(&self, _operator: &Operator, limit: i64, offset: i64) -> Result<(Vec<UserRecord>, i64)> {
        let query = UserQuery {
            limit: limit.clamp(1, MAX_PAGE),
            offset: offset.max(0),
            descending: true,
            ..Default::default()
        };
        let users = self.store.query_users(&query).await?;
        Ok((users, self.store.count_users_matching(&query).await?))
    }
}

/// A PHC string that can verify a password: parameters argon2 accepts, a salt and a hash
/// (`$argon2id$garbage` parses as PHC, with `garbage` as its salt, and verifies nothing).
fn is_complete_argon2_phc(digest: &str) -> bool {
    let Ok(hash) = argon2::PasswordHash::new(digest) else {
        return false;
    };
    let output_ok = hash.hash.is_some_and(|h| (16..=64).contains(&h.len()));
    let salt_ok = hash.salt.is_some_and(|s| s.len() >= 8);
    output_ok
        && salt_ok
        && hash.version.is_none_or(|v| v == 0x13 || v == 0x10)
        && argon2::Params::try_from(&hash).is_ok_and(|p| crate::hasher::argon2_cost_bearable(&p))
}
