//! Second factors as every service uses them (docs/second-factors.md): enrolling an
//! authenticator app, checking a code of one (each step once), backup codes (a set of ten,
//! each once), and imports. A value of its own over [`PeopleStore`], shared by identity (the
//! sign-in's second step and reverification), the account service (`/v1/me/totp…`) and
//! administration (the Backend API).
//! The account service's `/v1/me/totp…` is in `account/second_factors.rs`, the Backend API's
//! in `admin/second_factors.rs`.

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::ids::IdKind;
use latchkey_core::second_factor::{backup_code_digest, backup_code_importable, new_backup_codes, TotpKey};
use latchkey_core::secret::constant_time_eq;
use latchkey_core::Random;
use latchkey_store::{BackupCodeRow, OutboxEvent, PeopleStore, SecondFactors, TotpRow, UserRecord};

pub use latchkey_core::second_factor::Policy;

use crate::error::{Result, ServiceError};
use crate::keys::KeyManager;
use crate::resources::primary_email;
use crate::users::Users;
use crate::webhooks::Events;

/// `[second_factors]` of the configuration.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecondFactorConfig {
    pub policy: Policy,
}

/// A second factor a sign-in or reverification may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Totp,
    BackupCode,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(Strategy::Totp),
            "backup_code" => Some(Strategy::BackupCode),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Totp => "totp",
            Strategy::BackupCode => "backup_code",
        }
    }

    /// The strategies a user can use, in the order Clerk lists them.
    pub fn available(factors: &SecondFactors) -> Vec<Strategy> {
        let mut out = Vec::new();
        if factors.totp_enabled() {
            out.push(Strategy::Totp);
        }
        if factors.backup_code_enabled() {
            out.push(Strategy::BackupCode);
        }
        out
    }
}

/// A new authenticator-app key: shown once (secret and URI), active after a correct code.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub id: String,
    pub secret: String,
    pub uri: String,
    pub verified: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Second factors for every service; built by [`crate::Services::new`].
pub struct Factors {
    pub(crate) users: Arc<Users>,
    pub(crate) store: Arc<dyn PeopleStore>,
    pub(crate) keys: Arc<KeyManager>,
    pub(crate) events: Events,
    pub(crate) rng: Arc<dyn Random>,
    /// Keys the digests of backup codes (the instance's code key).
    pub(crate) code_key: Vec<u8>,
    pub(crate) app_name: String,
}

impl Factors {
    pub(crate) fn now(&self) -> Millis {
        self.events.now()
    }

    /// What a sealed key is bound to: its user and id, so sealed keys cannot be swapped.
    pub(crate) fn sealing_owner(row: &TotpRow) -> String {
        format!("totp:{}:{}", row.user_id, row.id)
    }

    /// The name an authenticator app shows for the account.
    pub(crate) fn account_label(record: &UserRecord) -> String {
        primary_email(record).or_else(|| record.user.username.clone()).unwrap_or_else(|| record.user.id.clone())
    }

    pub(crate) fn enrolment(&self, row: &TotpRow, key: Option<&TotpKey>) -> TotpEnrolment {
        TotpEnrolment {
            id: row.id.clone(),
            secret: key.map(TotpKey::base32).unwrap_or_default(),
            uri: key.map(TotpKey::uri).unwrap_or_default(),
            verified: row.verified,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }

    pub(crate) fn key_of(&self, record: &UserRecord, row: &TotpRow) -> Result<TotpKey> {
        let secret = self.keys.open_secret(&row.secret_sealed, &Self::sealing_owner(row))?;
        TotpKey::new(secret.to_vec(), &self.app_name, &Self::account_label(record))
            .map_err(|_| ServiceError::internal())
    }

    /// `user.updated` with the user's factors as `change` leaves them.
    pub(crate) fn updated_event(&self, record: &UserRecord, change: impl FnOnce(&mut SecondFactors)) -> OutboxEvent {
        let mut after = record.clone();
        change(&mut after.second_factors);
        self.users.user_event("user.updated", &after)
    }

    pub(crate) fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn PeopleStore> {
        self.store.emitting_people(events)
    }

    /// Checks a code of `strategy` and uses it up: a TOTP code's step (and every earlier one)
    /// or a backup code can never pass again. False for a wrong code or a factor the user
    /// does not have; a refusal writes nothing.
    pub async fn check(&self, record: &UserRecord, strategy: Strategy, code: &str) -> Result<bool> {
        match strategy {
            Strategy::Totp => {
                let Some(row) = record.second_factors.totp.as_ref().filter(|t| t.verified) else {
                    return Ok(false);
                };
                let Some(step) = self.key_of(record, row)?.matching_step(code, self.now()) else {
                    return Ok(false);
                };
                Ok(self.store.use_totp_step(&row.id, step, false, self.now()).await?)
            }
            Strategy::BackupCode => {
                let digest = backup_code_digest(&self.code_key, &record.user.id, code);
                let codes = &record.second_factors.backup_codes;
                let mut found = None;
                for c in codes {
                    if constant_time_eq(c.digest.as_bytes(), digest.as_bytes()) {
                        found = Some(c.id.clone());
                    }
                }
                let Some(id) = found else { return Ok(false) };
                // The last code going changes `backup_code_enabled`: say so.
                let events = if codes.len() == 1 {
                    vec![self.updated_event(record, |f| f.backup_codes.clear())]
                } else {
                    Vec::new()
                };
                Ok(self.emitting(events).consume_backup_code(&record.user.id, &id).await?)
            }
        }
    }

    /// Ten new backup codes as stored rows, with the codes to show once.
    fn backup_code_rows(&self, user_id: &str, codes: &[String]) -> Vec<BackupCodeRow> {
        let now = self.now();
        codes
            .iter()
            .map(|code| BackupCodeRow {
                id: self.events.new_id(IdKind::BackupCode),
                user_id: user_id.to_owned(),
                digest: backup_code_digest(&self.code_key, user_id, code),
                created_at: now,
            })
            .collect()
    }

    /// Replaces the user's backup codes with a new set; the codes are shown this once.
    pub(crate) async fn regenerate_backup_codes(&self, record: &UserRecord) -> Result<Vec<String>> {
        let codes = new_backup_codes(self.rng.as_ref());
        let rows = self.backup_code_rows(&record.user.id, &codes);
        let event = self.updated_event(record, |f| f.backup_codes = rows.clone());
        self.emitting(vec![event]).replace_backup_codes(&record.user.id, &rows).await?;
        Ok(codes)
    }

    /// The factors of a user being created with `totp_secret` and `backup_codes` (the Backend
    /// API's import): a verified key and the given codes, checked before anything is written.
    pub(crate) fn imported(
        &self,
        record: &UserRecord,
        totp_secret: Option<&str>,
        backup_codes: Option<&[String]>,
    ) -> Result<SecondFactors> {
        let now = self.now();
        let mut factors = SecondFactors::default();
        if let Some(secret) = totp_secret.filter(|s| !s.trim().is_empty()) {
            let key = TotpKey::from_base32(secret, &self.app_name, &Self::account_label(record)).map_err(|e| {
                ServiceError::unprocessable("form_param_format_invalid", e.to_string()).param("totp_secret")
            })?;
            let mut row = TotpRow {
                id: self.events.new_id(IdKind::Totp),
                user_id: record.user.id.clone(),
                secret_sealed: String::new(),
                verified: true,
                last_used_step: None,
                created_at: now,
                updated_at: now,
            };
            row.secret_sealed = self.keys.seal_secret(key.secret_bytes(), &Self::sealing_owner(&row))?;
            factors.totp = Some(row);
        }
        if let Some(codes) = backup_codes.filter(|c| !c.is_empty()) {
            if codes.len() > 100 || !codes.iter().all(|c| backup_code_importable(c)) {
                return Err(ServiceError::unprocessable(
                    "form_param_format_invalid",
                    "Backup codes must be plain codes of 6 to 64 letters, digits, '-' or '_' (at most 100).",
                )
                .long("Backup codes are imported as plain codes; bcrypt digests are not accepted.")
                .param("backup_codes"));
            }
            factors.backup_codes = self.backup_code_rows(&record.user.id, codes);
        }
        Ok(factors)
    }
}
