//! Administration of users, their identifications and sessions: what the Backend API and the
//! `latchkey users` CLI do. Every rule (formats, uniqueness, metadata limits, password policy)
//! is the one the self-service flows apply.
//!
//! - `users`: creating, updating, deleting, banning, locking and listing users;
//! - `identifications`: a user's email addresses and phone numbers;
//! - `sessions`: reading, listing, creating and revoking sessions;
//! - `second_factors`: removing a user's second factors, checking a code of one.
//!
//! Administration is a service of its own, [`AdminService`], over the users and sessions of the
//! store ([`PeopleStore`]) and the [`Users`] value it shares with identity and accounts.
//! Organizations are administered in [`crate::orgs`], webhook endpoints in [`crate::webhooks`].
//! This file holds the service, the inputs and the parameter rules (metadata, paging) other
//! modules share.

mod export;
mod identifications;
mod import;
mod passkeys;
mod second_factors;
mod sessions;
mod users;

use std::sync::Arc;

use latchkey_core::clock::Millis;
use latchkey_core::ids::IdKind;
use latchkey_core::secret::ConfigSecret;
use latchkey_store::{OutboxEvent, PeopleStore, StoreError};
use serde_json::Value;

use crate::error::{Result, ServiceError};
use crate::hasher::PasswordHasher;
use crate::params::{conflict_to_identifier, trimmed};
use crate::users::Users;
use crate::webhooks::Events;

use crate::ServiceConfig;
pub use export::PortableUser;
pub use import::ImportedUser;
pub use latchkey_store::{ImportClaims, ImportOutcome};
pub use second_factors::{Removal, VerifiedCode};

/// Users, their email addresses and phone numbers, and sessions, as the Backend API and the
/// CLI administer them. Built by [`crate::Services::new`].
pub struct AdminService {
    pub(crate) users: Arc<Users>,
    pub(crate) store: Arc<dyn PeopleStore>,
    pub(crate) hasher: Arc<dyn PasswordHasher>,
    /// Sessions it creates may start with an organization of the user's active.
    pub(crate) orgs: Arc<crate::orgs::OrgService>,
    pub(crate) events: Events,
    pub(crate) config: ServiceConfig,
    /// Users' second factors: imports, removal, checking a code.
    pub(crate) factors: Arc<crate::second_factors::Factors>,
    /// Users' passkeys: removal.
    pub(crate) passkeys: Arc<crate::passkeys::Passkeys>,
    /// Tells users of changes an operator made to how they sign in.
    pub(crate) postman: crate::mail::Postman,
}

impl AdminService {
    fn now(&self) -> Millis {
        self.events.now()
    }

    fn new_id(&self, kind: IdKind) -> String {
        self.events.new_id(kind)
    }

    /// The store, writing `events` in the transaction of the next write.
    fn emitting(&self, events: Vec<OutboxEvent>) -> Arc<dyn PeopleStore> {
        self.store.emitting_people(events)
    }
}

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
    /// An authenticator-app key to import (base32), enabled at once.
    pub totp_secret: Option<ConfigSecret>,
    /// Backup codes to import, in plain.
    pub backup_codes: Option<Vec<ConfigSecret>>,
}

/// The email addresses and phone numbers of a new user that nobody has verified yet (an
/// import's); those of [`NewUser`] are verified.
#[derive(Debug, Clone, Default)]
pub struct Unverified {
    pub email_addresses: Vec<String>,
    pub phone_numbers: Vec<String>,
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
